# syntax=docker/dockerfile:1
# The Dagster system image: dagster-webserver and dagster-daemon (ECS services dagster-webserver and
# dagster-daemon). No project code: definitions are loaded over gRPC from the code location, so a code
# change redeploys the code service only.
#
# Build from the repository root:
#   docker build --platform linux/amd64 -f terraform/docker/dagster.Dockerfile -t "$ECR/dagster:$TAG" .
FROM python:3.11-slim-bookworm AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY constraints.txt ./

# Same pins as the code image (constraints.txt), so webserver, daemon and run workers speak one version.
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --upgrade "pip>=24" \
 && /opt/venv/bin/pip install -c constraints.txt dagster dagster-webserver dagster-graphql dagster-aws dagster-postgres

FROM python:3.11-slim-bookworm

RUN groupadd --system --gid 10001 dagster \
 && useradd --system --uid 10001 --gid dagster --home-dir /opt/dagster --shell /usr/sbin/nologin dagster

COPY --from=build /opt/venv /opt/venv
COPY terraform/dagster/dagster.yaml /opt/dagster/dagster_home/dagster.yaml
COPY terraform/dagster/workspace.yaml /opt/dagster/app/workspace.yaml

ENV PATH=/opt/venv/bin:$PATH \
    DAGSTER_HOME=/opt/dagster/dagster_home \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN chown -R dagster:dagster /opt/dagster
USER dagster
WORKDIR /opt/dagster/app

EXPOSE 3000

HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:3000/server_info', timeout=5)"]

# ECS sets the command per service: dagster-webserver ... or dagster-daemon run ...
CMD ["dagster-webserver", "-h", "0.0.0.0", "-p", "3000", "-w", "/opt/dagster/app/workspace.yaml"]

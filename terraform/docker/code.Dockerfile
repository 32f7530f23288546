# syntax=docker/dockerfile:1
# The code location image: mlops_assets and its pinned dependencies. It serves the gRPC code location
# (ECS service dagster-code) and is the image of EVERY RUN TASK the EcsRunLauncher starts.
#
# Build from the repository root (the context needs pyproject.toml, constraints.txt and mlops_assets/):
#   docker build --platform linux/amd64 -f terraform/docker/code.Dockerfile -t "$ECR/code:$TAG" .
FROM python:3.11-slim-bookworm AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml setup.py constraints.txt README.md ./
COPY mlops_assets ./mlops_assets

# The project's exact tested set (constraints.txt), plus dagster-postgres for the instance storage in
# dagster.yaml (a no-op once the project depends on it itself; pip picks the release matching the pinned
# dagster).
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --upgrade "pip>=24" \
 && /opt/venv/bin/pip install -c constraints.txt . dagster-postgres

FROM python:3.11-slim-bookworm

RUN groupadd --system --gid 10001 dagster \
 && useradd --system --uid 10001 --gid dagster --home-dir /opt/dagster --shell /usr/sbin/nologin dagster

COPY --from=build /opt/venv /opt/venv
COPY terraform/dagster/dagster.yaml /opt/dagster/dagster_home/dagster.yaml
COPY terraform/docker/create_databases.py /opt/dagster/bin/create_databases.py

ENV PATH=/opt/venv/bin:$PATH \
    DAGSTER_HOME=/opt/dagster/dagster_home \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN chown -R dagster:dagster /opt/dagster
USER dagster
WORKDIR /opt/dagster/app

EXPOSE 4000

# ECS uses the task definition's health check; this one serves `docker run` and local compose.
HEALTHCHECK --interval=30s --timeout=10s --start-period=120s --retries=3 \
  CMD ["dagster", "api", "grpc-health-check", "-p", "4000"]

# The ECS service overrides this to create the MLflow database first (terraform/modules/ecs); run tasks
# override it with `dagster api execute_run ...`.
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-m", "mlops_assets.definitions", "--location-name", "mlops_assets"]

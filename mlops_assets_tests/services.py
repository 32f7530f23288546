"""Real servers on loopback for the `aws` profile tests: a private PostgreSQL 15 cluster and a moto S3 server.

Nothing needs to be running beforehand (CI starts from a fresh clone with no services): the cluster is
made with the machine's PostgreSQL binaries (`initdb` into a temporary folder, as the `postgres` user
when we are root), listens on a free port with password authentication, and is stopped and deleted
afterwards. Other engineers' databases on this machine are never touched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PG_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


class ServiceUnavailable(RuntimeError):
    """A server cannot be started on this machine; the message says why (tests skip with it)."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for_port(port: int, seconds: float, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise ServiceUnavailable(f"the server exited with code {process.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.2)
    raise ServiceUnavailable(f"nothing listens on 127.0.0.1:{port} after {seconds:.0f}s")


@dataclass
class Postgres:
    host: str
    port: int
    user: str
    password: str

    def dsn(self, database: str) -> str:
        """A SQLAlchemy URL (MLflow's tracking URI) with the psycopg2 driver that dagster-postgres installs."""
        return f"postgresql+psycopg2://{self.user}:{self.password}@{self.host}:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg2

        connection = psycopg2.connect(host=self.host, port=self.port, user=self.user, password=self.password,
                                      dbname="postgres")
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            connection.close()
        return name


@contextlib.contextmanager
def postgres_server() -> Iterator[Postgres]:
    """A private PostgreSQL cluster on a free loopback port, password-protected; removed afterwards."""
    binaries = next((d for d in PG_BIN_DIRS if (d / "initdb").exists() and (d / "pg_ctl").exists()), None)
    if binaries is None:
        raise ServiceUnavailable("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin "
                                 "(apt-get install postgresql-15)")
    as_postgres: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            raise ServiceUnavailable("running as root without `runuser` to start PostgreSQL as the postgres user")
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            raise ServiceUnavailable("running as root and there is no `postgres` user to own the cluster") from None
        as_postgres = ["runuser", "-u", "postgres", "--"]
    workdir = Path(tempfile.mkdtemp(prefix="mlops-pg-"))
    data, sockets = workdir / "pgdata", workdir / "pgsock"
    sockets.mkdir(exist_ok=True)
    password_file = workdir / "pgpass.txt"
    password = "mlops-test-" + os.urandom(6).hex()
    password_file.write_text(password + "\n")
    if as_postgres:
        for path in (workdir, sockets, password_file):
            shutil.chown(path, "postgres", "postgres")
    user = "mlops"
    run = lambda *args, **kw: subprocess.run([*as_postgres, *args], capture_output=True, text=True, **kw)  # noqa: E731
    made = run(str(binaries / "initdb"), "-D", str(data), "-U", user, "--auth=scram-sha-256",
               f"--pwfile={password_file}", "-E", "UTF8", "--locale=C", timeout=180)
    if made.returncode != 0:
        raise ServiceUnavailable(f"initdb failed: {made.stderr.strip()[-500:]}")
    port = free_port()
    options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    started = run(str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(workdir / "postgres.log"),
                  "-w", "-t", "120", "start", timeout=180)
    if started.returncode != 0:
        log = (workdir / "postgres.log").read_text()[-800:] if (workdir / "postgres.log").exists() else ""
        raise ServiceUnavailable(f"PostgreSQL did not start: {started.stderr.strip()[-300:]} {log}")
    try:
        _wait_for_port(port, 60)
        yield Postgres("127.0.0.1", port, user, password)
    finally:
        run(str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop", timeout=120)
        shutil.rmtree(workdir, ignore_errors=True)


@dataclass
class MotoS3:
    endpoint: str
    process: subprocess.Popen


@contextlib.contextmanager
def moto_server(workdir: Path) -> Iterator[MotoS3]:
    """moto's S3 API as a separate server process on a free loopback port (every run process can reach it)."""
    try:
        import moto.server  # noqa: F401
    except ImportError:
        raise ServiceUnavailable("moto[server] is not installed (pip install -c constraints.txt -e '.[dev]')") from None
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = (workdir / "moto.log").open("w")
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                               stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_for_port(port, 120, process)
        endpoint = f"http://127.0.0.1:{port}"
        urllib.request.urlopen(endpoint + "/moto-api/", timeout=30).close()
        yield MotoS3(endpoint, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()

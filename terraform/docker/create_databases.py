"""Create the PostgreSQL databases that RDS does not create by itself: MLflow's tracking store.

RDS creates one database (MLOPS_PG_DB: Dagster storage and the DuckLake catalog). MLflow keeps its own,
because MLflow and Dagster both manage an `alembic_version` table. The code location's ECS service runs
this before starting its gRPC server; it is idempotent and safe when two tasks start at once.

Usage: python create_databases.py [NAME ...]   (default: $MLOPS_MLFLOW_DB, else "mlflow")
Connection: MLOPS_PG_HOST, MLOPS_PG_PORT, MLOPS_PG_DB, MLOPS_PG_USER, MLOPS_PG_PASSWORD, PGSSLMODE.
"""

from __future__ import annotations

import logging
import os
import sys

log = logging.getLogger("create_databases")


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    import psycopg2  # in the image through dagster-postgres
    from psycopg2 import errors, sql

    names = argv or [os.environ.get("MLOPS_MLFLOW_DB", "mlflow")]
    missing = [
        v for v in ("MLOPS_PG_HOST", "MLOPS_PG_DB", "MLOPS_PG_USER", "MLOPS_PG_PASSWORD") if not os.environ.get(v)
    ]
    if missing:
        log.error("cannot connect to PostgreSQL: %s not set (the ECS task definition sets them)", ", ".join(missing))
        return 2
    conn = psycopg2.connect(
        host=os.environ["MLOPS_PG_HOST"],
        port=int(os.environ.get("MLOPS_PG_PORT", "5432")),
        dbname=os.environ["MLOPS_PG_DB"],
        user=os.environ["MLOPS_PG_USER"],
        password=os.environ["MLOPS_PG_PASSWORD"],
        sslmode=os.environ.get("PGSSLMODE", "require"),
        connect_timeout=15,
    )
    conn.autocommit = True  # CREATE DATABASE cannot run inside a transaction
    try:
        with conn.cursor() as cur:
            for name in names:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if cur.fetchone():
                    log.info("database %s exists", name)
                    continue
                try:
                    cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                    log.info("database %s created", name)
                except errors.DuplicateDatabase:
                    log.info("database %s created by another task meanwhile", name)
    finally:
        conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

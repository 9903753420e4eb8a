"""A throwaway warehouse database for a benchmark run: on DATABASE_URL's server when given,
else on an embedded PostgreSQL kept under the run's work folder and stopped afterwards."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
from psycopg import sql

from resources.warehouse import bootstrap, embedded_server, stop_embedded_server, with_database


@contextlib.contextmanager
def scratch_warehouse(database_url: str | None, work: Path) -> Iterator[str]:
    """Yield the URL of a new, bootstrapped database."""
    pg_dir = None
    try:
        if database_url:
            admin = database_url
        else:
            pg_dir = work / "pg"
            admin = embedded_server(pg_dir).get_uri("postgres")
        name = f"bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
        url = with_database(admin, name)
        bootstrap(url)
        yield url
    finally:
        if pg_dir is not None:
            stop_embedded_server(pg_dir)

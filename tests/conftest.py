"""Shared fixtures: a real PostgreSQL (DATABASE_URL, or an embedded server for the session),
a fresh database per test that needs one, and the simulated network served on loopback."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from resources.warehouse import bootstrap, embedded_server, stop_embedded_server, with_database
from simulator.network import build_network
from simulator.server import SimulatorServer
from simulator.truth import ground_truth

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"


@pytest.fixture(scope="session")
def admin_url():
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    root = Path(tempfile.mkdtemp(prefix="pa-test-pg-"))
    server = embedded_server(root / "pg")
    yield server.get_uri("postgres")
    stop_embedded_server(root / "pg")
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def fresh_db(admin_url):
    """A new, bootstrapped warehouse database; dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    url = with_database(admin_url, name)
    bootstrap(url)
    yield url
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


@pytest.fixture(scope="module")
def new_warehouse(admin_url):
    """Bootstrapped databases made on demand (`new_warehouse("t_prefix")`), dropped when the
    test module ends."""
    created: list[str] = []

    def make(prefix: str = "t") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
        created.append(name)
        url = with_database(admin_url, name)
        bootstrap(url)
        return url

    yield make
    with psycopg.connect(admin_url, autocommit=True) as conn:
        for name in created:
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def network():
    return build_network(seed=7)


@pytest.fixture(scope="session")
def simulator(network):
    with SimulatorServer(network, hang_seconds=4.0) as server:
        yield server


@pytest.fixture(scope="session")
def truth(network, simulator):
    return ground_truth(network, simulator.base_url)


def query(url: str, statement: str, params=None) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(statement, params).fetchall()

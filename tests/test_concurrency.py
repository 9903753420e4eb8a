"""Sessions and concurrency against one small warehouse: asset runs issue no DDL (dbt's own table
swaps aside, told apart by their session names); a reader left idle in a transaction on a mart
is ended by its timeout and dbt's swap then goes through (and without it, dbt stops at its lock
timeout instead of hanging); two builds of the same models at once take turns in the `dbt` pool."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid

import dagster as dg
import psycopg
import pytest
from psycopg import sql

from assets.dbt import build_dbt_assets, dbt_resource
from assets.ingestion.rss import rss_feeds
from assets.quality import sla_status
from pipelines.checks import CHECKS
from resources.http import HttpResource
from resources.warehouse import DBT_APPLICATION_NAME, WarehouseResource, psycopg2_url, with_database
from tests.conftest import REPO_ROOT, query
from tests.test_pipeline import FEED_GRAPH, _write_sources

DIM_PODCASTS = dg.AssetKey(["marts", "dim_podcasts"])

# Any DDL on the warehouse's own objects from a session that is not dbt's fails the statement (and
# so the asset); what passes is recorded. Temporary tables (a load's staging) are the session's own.
DDL_GUARD = """
create table public.ddl_seen (application_name text, command_tag text, object_identity text, temporary boolean);

create function public.guard_ddl() returns event_trigger language plpgsql as $$
declare
    command record;
    session text := current_setting('application_name');
begin
    for command in select * from pg_event_trigger_ddl_commands() loop
        if coalesce(command.schema_name, '') not like 'pg_temp%' and session <> 'podcast-analytics/dbt' then
            raise exception 'DDL from session "%": % %', session, command.command_tag, command.object_identity;
        end if;
        insert into public.ddl_seen
        values (session, command.command_tag, command.object_identity, coalesce(command.schema_name, '') like 'pg_temp%');
    end loop;
end $$;

create function public.guard_drop() returns event_trigger language plpgsql as $$
declare
    dropped record;
    session text := current_setting('application_name');
begin
    for dropped in select * from pg_event_trigger_dropped_objects() loop
        if not dropped.is_temporary and session <> 'podcast-analytics/dbt' then
            raise exception 'DROP from session "%": % %', session, dropped.object_type, dropped.object_identity;
        end if;
    end loop;
end $$;

create event trigger guard_ddl on ddl_command_end execute function public.guard_ddl();
create event trigger guard_drop on sql_drop execute function public.guard_drop();
"""


def _resources(url: str, **warehouse) -> dict:
    return {"warehouse": WarehouseResource(database_url=url, **warehouse), "http": HttpResource(allow_private_hosts=True),
            "dbt": dbt_resource()}


@pytest.fixture(scope="module")
def guarded(new_warehouse, truth, tmp_path_factory):
    """A migrated warehouse under the DDL guard, with the feeds, their dbt models, checks and the
    SLA snapshot materialized once."""
    url = new_warehouse("t_conc")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(DDL_GUARD)
    sources_file = _write_sources(tmp_path_factory.mktemp("conc"), truth)
    result = dg.materialize(
        [rss_feeds, build_dbt_assets(), *CHECKS, sla_status],
        selection=FEED_GRAPH | dg.AssetSelection.assets(sla_status), resources=_resources(url),
        run_config={"ops": {"rss_feeds": {"config": {"sources_file": sources_file}}}}, raise_on_error=False)
    return url, result


def test_asset_runs_issue_no_ddl_outside_dbt(guarded):
    url, result = guarded
    failures = [e.message for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert result.success, failures
    seen = query(url, "select application_name, command_tag, temporary from public.ddl_seen")
    durable = {(app, tag) for app, tag, temporary in seen if not temporary}
    # dbt's own: it creates the models' tables and views and swaps them in
    assert {app for app, _ in durable} == {DBT_APPLICATION_NAME}
    assert {"CREATE TABLE AS", "ALTER TABLE"} <= {tag for _, tag in durable}
    # the feed load's staging tables are temporary, in a session named for its asset
    assert ("podcast-analytics:rss_feeds", "CREATE TABLE") in {(app, tag) for app, tag, temporary in seen if temporary}

    # the guard refuses what the old per-run bootstrap did, from a session of the platform
    with psycopg.connect(url, autocommit=True, application_name="podcast-analytics:listener_logs") as conn:
        with pytest.raises(psycopg.errors.RaiseException, match='DDL from session "podcast-analytics:listener_logs"'):
            conn.execute("create index if not exists listener_events_extra_idx on raw.listener_events (tenant_id)")


@pytest.fixture
def reader_role(admin_url):
    """A log-in role in podcast_reader (as a BI tool's); dropped afterwards."""
    role = f"bi_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("create role {} login password 'pw' in role podcast_reader").format(sql.Identifier(role)))
    yield role
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(role)))


def _reader_holding_a_mart(url: str, role: str) -> psycopg.Connection:
    """A reader session idle in a transaction that read marts.dim_podcasts (so holds its lock)."""
    params = psycopg.conninfo.conninfo_to_dict(url)
    reader = psycopg.connect(**{**params, "user": role, "password": "pw"})
    assert reader.execute("select count(*) from marts.dim_podcasts").fetchone()[0] > 0
    return reader


def _failure_text(result: dg.ExecuteInProcessResult) -> str:
    """The text of the step failures' errors, causes included."""
    texts = []
    for event in result.all_events:
        error = event.event_specific_data.error if event.event_type_value == "STEP_FAILURE" else None
        while error is not None:
            texts.append(error.message)
            error = error.cause
    return "\n".join(texts)


def _build_dim_podcasts(url: str, **warehouse) -> dg.ExecuteInProcessResult:
    return dg.materialize([build_dbt_assets()], selection=[DIM_PODCASTS], resources=_resources(url, **warehouse),
                          raise_on_error=False)


def test_an_idle_reader_is_ended_by_its_timeout_and_dbt_swaps_the_mart(guarded, admin_url, reader_role):
    url, _ = guarded
    # Without a timeout the reader holds the mart: dbt stops at its lock timeout (set short here)
    # instead of waiting for ever with every later reader of the mart queued behind it.
    reader = _reader_holding_a_mart(url, reader_role)
    blocked = _build_dim_podcasts(url, dbt_lock_timeout="1s")
    assert not blocked.success
    assert "canceling statement due to lock timeout" in _failure_text(blocked)
    reader.close()

    # With the readers' idle-in-transaction timeout (a minute in production, a second here) the
    # server ends the session and the build goes through.
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("alter role {} set idle_in_transaction_session_timeout = '1s'").format(
            sql.Identifier(reader_role)))
    reader = _reader_holding_a_mart(url, reader_role)
    built = _build_dim_podcasts(url)
    assert built.success
    with pytest.raises(psycopg.Error, match="idle-in-transaction timeout"):
        reader.execute("select 1")
    reader.close()


BUILD = textwrap.dedent("""
    import sys

    import dagster as dg

    from assets.dbt import build_dbt_assets, dbt_resource
    from resources.warehouse import WarehouseResource

    result = dg.materialize(
        [build_dbt_assets()], selection=[dg.AssetKey(["marts", "dim_podcasts"]), dg.AssetKey(["marts", "dim_episodes"])],
        instance=dg.DagsterInstance.get(), raise_on_error=False,
        resources={"warehouse": WarehouseResource(database_url=sys.argv[1]), "dbt": dbt_resource()})
    print(result.run_id)
    sys.exit(0 if result.success else 1)
""")


def test_two_builds_of_the_same_models_take_turns(guarded, admin_url, tmp_path):
    """Two runs (processes) build the same marts at once, with the instance the platform uses
    (dagster.yaml, PostgreSQL storage): both succeed and their dbt builds do not overlap. Each
    starts from the parse of the project the last build of the warehouse left (assets/dbt.py):
    dbt does not parse it all again."""
    url, _ = guarded
    storage = f"t_dagster_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(storage)))
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO_ROOT / "dagster.yaml").read_text())
    env = {**os.environ, "DAGSTER_HOME": str(home), "DAGSTER_PG_URL": psycopg2_url(with_database(admin_url, storage)),
           "PODCAST_JSON_LOG": str(tmp_path / "runs.jsonl"), "PODCAST_DATA_DIR": str(tmp_path / "data"),
           "PYTHONPATH": str(REPO_ROOT)}
    try:
        # The pool's limit row is made once before the runs: two runs of a new instance that both
        # made it at once raced on its unique key inside Dagster's storage (seen in CI).
        saved_url = os.environ.get("DAGSTER_PG_URL")
        os.environ["DAGSTER_PG_URL"] = env["DAGSTER_PG_URL"]
        try:
            with dg.DagsterInstance.from_config(str(home)) as instance:
                instance.event_log_storage.initialize_concurrency_limit_to_default("dbt")
        finally:
            if saved_url is None:
                os.environ.pop("DAGSTER_PG_URL")
            else:
                os.environ["DAGSTER_PG_URL"] = saved_url
        builds = [subprocess.Popen([sys.executable, "-c", BUILD, url], env=env, cwd=REPO_ROOT, text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
        outputs = [build.communicate(timeout=600) for build in builds]
        for build, (out, err) in zip(builds, outputs, strict=True):
            assert build.returncode == 0, out[-2000:] + err[-4000:]
        run_ids = [out.strip().splitlines()[-1] for out, _ in outputs]

        # The two dbt invocations (each run's dbt.log, from dbt's first line to its last) did not
        # overlap: the second waited for the first (the pool, and the warehouse's dbt lock).
        spans, logs = [], []
        for run_id in run_ids:
            [log] = (REPO_ROOT / "dbt_project" / "target").glob(f"dbt_models-{run_id[:7]}-*/dbt.log")
            stamps = [json.loads(line)["info"]["ts"] for line in log.read_text().splitlines() if line.startswith("{")]
            spans.append((min(stamps), max(stamps)))
            logs.append(log)
        first, second = sorted(spans)
        assert first[1] <= second[0], f"the dbt builds overlapped: {spans}"
        for log in logs:
            parse = [line for line in log.read_text().splitlines() if "partial pars" in line.lower()]
            assert parse and not [line for line in parse if "Unable to do partial parsing" in line], parse
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(storage)))

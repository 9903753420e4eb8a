"""Schema migrations: `podcast-analytics migrate` applies each revision once; a warehouse of the
old per-run bootstrap adopts the baseline; asset runs refuse a warehouse at another revision with
one line instead of changing it; a migration never queues behind a load; the reader roles get
their timeouts; a new revision is one file; Docker Compose migrates before the platform starts."""

from __future__ import annotations

import shutil
import uuid

import dagster as dg
import psycopg
import pytest
import yaml
from psycopg import sql

from resources.schema import MIGRATIONS_DIR, VERSION_TABLE, head_revision, migrate, new_revision, require_schema
from resources.warehouse import WarehouseError, bootstrap_sql, with_database
from tests.conftest import REPO_ROOT, query
from tests.test_cli import run_cli

HEAD = head_revision()
REVISIONS = sorted(path.name[:4] for path in (MIGRATIONS_DIR / "versions").glob("[0-9]*.py"))
NEXT = f"{int(HEAD) + 1:04d}"


@pytest.fixture
def empty_db(admin_url):
    """A new database nothing has touched; dropped afterwards."""
    name = f"t_mig_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    yield with_database(admin_url, name)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


def _catalog(url: str) -> list[tuple]:
    """Every column, index and constraint of the platform's schemas."""
    return query(url, """
        select 'column', table_schema || '.' || table_name, column_name || ' ' || data_type || ' ' || is_nullable
        from information_schema.columns where table_schema in ('raw', 'quarantine', 'ops', 'reports', 'marts')
        union all
        select 'index', schemaname || '.' || tablename, indexdef from pg_indexes
        where schemaname in ('raw', 'quarantine', 'ops', 'reports', 'marts')
        union all
        select 'constraint', conrelid::regclass::text, pg_get_constraintdef(oid) from pg_constraint
        where connamespace::regnamespace::text in ('raw', 'quarantine', 'ops', 'reports', 'marts')
        order by 1, 2, 3""")


def test_migrate_applies_each_revision_once_and_says_so(empty_db, tmp_path):
    assert HEAD == REVISIONS[-1]
    first = run_cli("migrate", data_dir=tmp_path, DATABASE_URL=empty_db)
    assert first.returncode == 0, first.stderr
    assert f"schema at {HEAD} (head), from an empty or pre-migration warehouse: applied {', '.join(REVISIONS)}" in first.stdout
    catalog = _catalog(empty_db)
    assert len(catalog) > 300
    assert query(empty_db, f"select version_num from {VERSION_TABLE}") == [(HEAD,)]

    again = run_cli("migrate", data_dir=tmp_path, DATABASE_URL=empty_db)
    assert again.returncode == 0, again.stderr
    assert f"schema at {HEAD} (head), nothing to apply" in again.stdout
    assert _catalog(empty_db) == catalog


def test_a_warehouse_of_the_old_bootstrap_adopts_the_baseline(empty_db, fresh_db):
    """The old bootstrap's SQL, then rows, as a warehouse in production has them: `migrate` runs
    the baseline over it (idempotent), keeps the rows and ends with the schema of a new warehouse."""
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute(bootstrap_sql())
        conn.execute("insert into raw.sponsors (tenant_id, sponsor_id, name, _source, _ingested_at) "
                     "values ('acme', 'sp-1', 'Acme', 'api', now())")
    migration = migrate(empty_db)
    assert (migration.before, migration.after, migration.applied) == (None, HEAD, REVISIONS)
    assert query(empty_db, "select tenant_id, sponsor_id, name from raw.sponsors") == [("acme", "sp-1", "Acme")]
    assert _catalog(empty_db) == _catalog(fresh_db)


def test_asset_runs_refuse_a_warehouse_at_another_revision_with_one_line(empty_db):
    """No DDL from an asset: on a warehouse never migrated, or one revision behind, the asset stops
    with the line that says what to run, and changes nothing."""
    from assets.quality import sla_status
    from resources.warehouse import WarehouseResource

    def run():
        result = dg.materialize([sla_status], resources={"warehouse": WarehouseResource(database_url=empty_db)},
                                raise_on_error=False)
        assert not result.success
        failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
        error = failure.event_specific_data.error
        while error.cause is not None:  # Dagster's step error, caused by the asset's
            error = error.cause
        return error.message.strip()

    assert run().endswith(f"warehouse schema at none, code expects {HEAD}: run `podcast-analytics migrate`")
    assert query(empty_db, "select count(*) from information_schema.schemata where schema_name = 'marts'") == [(0,)]

    migrate(empty_db)
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute(f"update {VERSION_TABLE} set version_num = '0001'")
    assert run().endswith(f"warehouse schema at 0001, code expects {HEAD}: run `podcast-analytics migrate`")
    assert migrate(empty_db).applied == REVISIONS[1:]
    require_schema(empty_db)  # and at the head, the check passes (and is cached for this process)


def test_a_migration_waits_at_most_its_lock_timeout_behind_a_load(empty_db):
    """A load holds raw.listener_events (its COPY): the baseline's `alter table` stops after the lock
    timeout, with one line, instead of queueing every later query of the table behind it; the
    revision is rolled back whole and applies once the load is done."""
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute(bootstrap_sql())
    with psycopg.connect(empty_db) as load:
        load.execute("lock table raw.listener_events in row exclusive mode")  # as COPY takes it
        with pytest.raises(WarehouseError) as refused:
            migrate(empty_db, lock_timeout="200ms")
        load.rollback()
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith("cannot migrate postgres@") and f"from none to {HEAD}: " in message
    assert "canceling statement due to lock timeout" in message and "lock_timeout 200ms" in message
    assert query(empty_db, f"select to_regclass('public.{VERSION_TABLE}') is null") == [(True,)]
    assert migrate(empty_db, lock_timeout="200ms").applied == REVISIONS


def test_reader_roles_get_statement_and_idle_transaction_timeouts(empty_db, admin_url):
    """podcast_reader and its log-in members (a BI tool's role) get both timeouts; a superuser
    member is left alone."""
    role = f"bi_{uuid.uuid4().hex[:8]}"
    migrate(empty_db)  # podcast_reader exists (the baseline creates it)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("create role {} login in role podcast_reader").format(sql.Identifier(role)))
    try:
        with psycopg.connect(empty_db, autocommit=True) as conn:
            conn.execute(f"delete from {VERSION_TABLE}")
            conn.execute(f"insert into {VERSION_TABLE} values ('0001')")
        assert migrate(empty_db).applied == REVISIONS[1:]
        settings = dict(query(admin_url, """
            select r.rolname, s.setconfig from pg_db_role_setting s join pg_roles r on r.oid = s.setrole
            where s.setdatabase = 0 and r.rolname = any(%s)""", (["podcast_reader", role],)))
        for name in ("podcast_reader", role):
            assert {"statement_timeout=60s", "idle_in_transaction_session_timeout=60s"} <= set(settings[name])
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(role)))


def test_a_new_revision_is_one_file(tmp_path, fresh_db):
    """`new_revision` (`podcast-analytics migrate --new`) writes the next revision after the head
    (into a copy of the migrations here); with its statements filled in, `migrate` applies it to a
    warehouse at the old head, and code that does not know it refuses that warehouse."""
    location = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, location, ignore=shutil.ignore_patterns("__pycache__"))
    path = new_revision("Example table for reports", script_location=location)
    assert path == location / "versions" / f"{NEXT}_example_table_for_reports.py"
    text = path.read_text()
    assert f"revision = '{NEXT}'" in text and f"down_revision = '{HEAD}'" in text
    path.write_text(text.replace("-- the statements of this revision",
                                 "create table if not exists ops.example (example_id integer primary key);"))
    assert head_revision(location) == NEXT
    assert migrate(fresh_db, script_location=location).applied == [NEXT]
    assert query(fresh_db, "select to_regclass('ops.example') is not null") == [(True,)]
    with pytest.raises(WarehouseError, match=f"warehouse schema at {NEXT}, code expects {HEAD}: run"):
        require_schema(fresh_db)


def test_compose_migrates_before_the_platform_starts():
    """The `migrate` service runs `podcast-analytics migrate` once the database answers; every
    service that runs assets or reads the warehouse starts after it succeeded."""
    services = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())["services"]
    migrate_service = services["migrate"]
    assert migrate_service["command"] == "podcast-analytics migrate"
    assert migrate_service["depends_on"]["timescaledb"]["condition"] == "service_healthy"
    assert migrate_service["restart"] == "on-failure"
    for name in ("user_code", "webserver", "daemon", "metrics"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully", name

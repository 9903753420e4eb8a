"""TimescaleDB as a first-class target: detection and the fall-back to plain tables, the embedded
server preloading the extension, hypertables with the chunk intervals, compression and retention of
the settings, and rebuilds that retention cannot silently shrink.

The tests that need TimescaleDB run on the server at DATABASE_URL when it preloads the extension,
otherwise on an embedded server of their own when the library is installed for it (in the wheel's
own lib folder or in PODCAST_PG_EXTENSION_DIR, README "TimescaleDB"); they skip, saying why, when
neither has it. The others run on any PostgreSQL."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest
import yaml
from psycopg import sql

from resources.schema import migrate
from resources.settings import Settings, get_settings
from resources.warehouse import (
    EMBEDDED_CONF, TIME_SERIES_TABLES, TimescaleStatus, WarehouseError, check_rebuild, embedded_install_dir,
    embedded_server, embedded_server_conf, find_timescaledb, retention_horizons, stop_embedded_server,
    timescale_decision, timescale_status, with_database,
)
from tests.conftest import REPO_ROOT, query

DEFAULTS = Settings.model_construct().time_series_policies()  # the defaults, whatever the environment says


def _policies(**changes: str) -> dict[str, dict[str, str]]:
    """The default policies with some changed: `listener_events__retention="30d"`."""
    policies = {table: dict(policy) for table, policy in DEFAULTS.items()}
    for key, value in changes.items():
        table, what = key.split("__")
        policies[f"raw.{table}"][what] = value
    return policies


def _extension_dir() -> Path | None:
    return get_settings().resolved_pg_extension_dir()


def _not_available_reason() -> str:
    where = os.environ.get("PODCAST_PG_EXTENSION_DIR") or "unset"
    return (f"TimescaleDB is not installed in the embedded PostgreSQL ({embedded_install_dir() / 'lib'}) nor in "
            f"PODCAST_PG_EXTENSION_DIR ({where}), and DATABASE_URL is not set to a server that preloads it: "
            "build it for the embedded server (README, \"TimescaleDB\") or set DATABASE_URL")


@pytest.fixture(scope="module")
def timescale_admin():
    """The admin URL of a server that preloads TimescaleDB; the module's tests skip without one."""
    if os.environ.get("DATABASE_URL"):
        url = os.environ["DATABASE_URL"]
        with psycopg.connect(url) as conn:
            status = timescale_status(conn)
        if not status.usable:
            pytest.skip(f"the server at DATABASE_URL does not preload TimescaleDB ({timescale_decision(status, 'auto')[1]})")
        yield url
        return
    extension_dir = _extension_dir()
    if find_timescaledb(extension_dir) is None:
        pytest.skip(_not_available_reason())
    root = Path(tempfile.mkdtemp(prefix="pa-test-tsdb-"))
    try:
        server = embedded_server(root / "pg", timescaledb="preload", extension_dir=extension_dir)
        yield server.get_uri("postgres")
    finally:
        stop_embedded_server(root / "pg")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def plain_embedded():
    """(admin URL, data folder) of an embedded server started with PODCAST_TIMESCALEDB=off."""
    root = Path(tempfile.mkdtemp(prefix="pa-test-plain-"))
    try:
        server = embedded_server(root / "pg", timescaledb="off", extension_dir=None)
        yield server.get_uri("postgres"), root / "pg"
    finally:
        stop_embedded_server(root / "pg")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def new_db():
    """`new_db(admin_url)`: an empty database on that server, dropped after the test."""
    made: list[tuple[str, str]] = []

    def make(admin_url: str) -> str:
        name = f"t_tsdb_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
        made.append((admin_url, name))
        return with_database(admin_url, name)

    yield make
    for admin_url, name in made:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


def _hypertables(url: str) -> dict[str, str]:
    """Hypertable -> its chunk interval."""
    return dict(query(url, """
        select format('%I.%I', hypertable_schema, hypertable_name), time_interval::text
        from timescaledb_information.dimensions where dimension_number = 1"""))


def _jobs(url: str) -> dict[tuple[str, str], str]:
    """(hypertable, policy) -> its interval."""
    return {(table, proc): interval for table, proc, interval in query(url, """
        select format('%I.%I', hypertable_schema, hypertable_name), proc_name,
               coalesce(config ->> 'compress_after', config ->> 'drop_after')::interval::text
        from timescaledb_information.jobs where proc_name in ('policy_compression', 'policy_retention')""")}


# --- any PostgreSQL ---------------------------------------------------------------------------------

def test_the_decision_says_why_for_each_kind_of_server():
    absent = TimescaleStatus(available=None, preloaded=False, created=None, preload_libraries="")
    installed = TimescaleStatus(available="2.29.2", preloaded=False, created=None, preload_libraries="pg_stat_statements")
    preloaded = TimescaleStatus(available="2.29.2", preloaded=True, created=None, preload_libraries="timescaledb")
    stale = TimescaleStatus(available="2.29.2", preloaded=False, created="2.29.2", preload_libraries=None)

    assert timescale_decision(absent, "auto") == (False, (
        "TimescaleDB is not installed on this server: the raw time-series tables are plain tables (preload it and "
        "restart the server, then run `podcast-analytics migrate` to make them hypertables)"))
    use, line = timescale_decision(installed, "auto")
    assert not use and line.startswith("TimescaleDB 2.29.2 is installed but not preloaded "
                                       "(shared_preload_libraries 'pg_stat_statements'): the raw time-series tables "
                                       "are plain tables")
    assert timescale_decision(preloaded, "auto") == (
        True, "TimescaleDB 2.29.2 (preloaded): the raw time-series tables are hypertables")
    assert timescale_decision(preloaded, "off") == (False, "PODCAST_TIMESCALEDB=off: the raw time-series tables are plain tables")
    created = TimescaleStatus(available="2.29.2", preloaded=True, created="2.29.2", preload_libraries="timescaledb")
    assert timescale_decision(created, "off") == (False, (
        "PODCAST_TIMESCALEDB=off: TimescaleDB 2.29.2 is created in this database and left as it is (its hypertables "
        "and their policies unchanged)"))
    with pytest.raises(WarehouseError, match=r"^PODCAST_TIMESCALEDB=preload, but TimescaleDB 2\.29\.2 is installed "
                                             r"but not preloaded \(shared_preload_libraries 'pg_stat_statements'\)$"):
        timescale_decision(installed, "preload")
    with pytest.raises(WarehouseError, match="^PODCAST_TIMESCALEDB=preload, but TimescaleDB is not installed"):
        timescale_decision(absent, "preload")
    # created in the database, the server restarted without it: whatever the mode, its hypertables cannot be written
    for mode in ("auto", "off"):
        with pytest.raises(WarehouseError, match=r"TimescaleDB 2\.29\.2 is created in this database but the server "
                                                 r"does not preload it \(shared_preload_libraries not visible"):
            timescale_decision(stale, mode)


def test_the_embedded_server_conf_preloads_what_it_finds(tmp_path):
    header = "# Written by podcast-analytics at each start of the embedded server (PODCAST_TIMESCALEDB): do not edit.\n"
    assert embedded_server_conf("off", tmp_path) == header
    if find_timescaledb(None) is None:  # not in the wheel itself
        assert embedded_server_conf("auto", tmp_path) == header  # nothing found, nothing preloaded
        with pytest.raises(WarehouseError, match=rf"^PODCAST_TIMESCALEDB=preload, but TimescaleDB is not installed in "
                                                 rf"{re.escape(str(embedded_install_dir() / 'lib'))} nor in "
                                                 rf"{re.escape(str(tmp_path / 'lib'))} \(build it"):
            embedded_server_conf("preload", tmp_path)
        (tmp_path / "lib").mkdir()
        (tmp_path / "share" / "extension").mkdir(parents=True)
        (tmp_path / "lib" / "timescaledb.so").write_bytes(b"")
        (tmp_path / "share" / "extension" / "timescaledb.control").write_text("default_version = '0'\n")
        assert find_timescaledb(tmp_path) == tmp_path
        assert embedded_server_conf("auto", tmp_path) == (
            f"{header}shared_preload_libraries = 'timescaledb'\n"
            f"dynamic_library_path = '$libdir:{tmp_path.resolve() / 'lib'}'\n"
            f"extension_control_path = '$system:{tmp_path.resolve() / 'share'}'\n")
    else:
        assert embedded_server_conf("auto", None) == f"{header}shared_preload_libraries = 'timescaledb'\n"


def test_a_server_started_with_timescaledb_off_keeps_plain_tables(plain_embedded, new_db):
    """No preload on the embedded server (its settings file says so), and `migrate` leaves the raw
    time-series tables plain, with the line that says why."""
    admin_url, pg_dir = plain_embedded
    assert f"include_if_exists = '{EMBEDDED_CONF}'" in (pg_dir / "postgresql.conf").read_text()
    assert "shared_preload_libraries" not in (pg_dir / EMBEDDED_CONF).read_text()
    url = new_db(admin_url)
    with psycopg.connect(url) as conn:
        status = timescale_status(conn)
    assert (status.preloaded, status.created, status.preload_libraries) == (False, None, "")
    migration = migrate(url, timescaledb="auto", policies=DEFAULTS)
    assert "0010" in migration.applied
    if status.available is None:
        assert migration.timescale.startswith("TimescaleDB is not installed on this server: the raw time-series "
                                              "tables are plain tables")
    else:
        assert migration.timescale.startswith(f"TimescaleDB {status.available} is installed but not preloaded")
    assert migration.describe().endswith("; " + migration.timescale)
    assert query(url, "select count(*) from pg_extension where extname = 'timescaledb'") == [(0,)]
    kinds = query(url, "select c.oid::regclass::text, c.relkind from pg_class as c where c.oid = any(%s::regclass[])",
                  ([t.name for t in TIME_SERIES_TABLES],))
    assert sorted(kinds) == sorted((t.name, "r") for t in TIME_SERIES_TABLES)
    with psycopg.connect(url) as conn:
        assert retention_horizons(conn) == {}  # no retention without TimescaleDB: no rebuild to refuse
        check_rebuild(conn)
    with pytest.raises(WarehouseError, match=r"^cannot migrate .*: PODCAST_TIMESCALEDB=preload, but TimescaleDB"):
        migrate(url, timescaledb="preload", policies=DEFAULTS)


def test_compose_runs_the_embedded_servers_postgresql_major():
    import subprocess

    version = subprocess.run([str(embedded_install_dir() / "bin" / "pg_config"), "--version"], capture_output=True,
                             text=True, check=True).stdout
    embedded_major = re.match(r"PostgreSQL (\d+)", version).group(1)
    database = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())["services"]["timescaledb"]
    image = re.fullmatch(r"timescale/timescaledb:(\d+)\.(\d+)\.(\d+)-pg(\d+)", database["image"])
    assert image is not None, database["image"]
    assert image.group(4) == embedded_major == "18"
    # PostgreSQL 18 images keep their data in /var/lib/postgresql/18/docker: the volume is mounted above it
    assert any(volume.endswith(":/var/lib/postgresql") for volume in database["volumes"])


# --- a server that has TimescaleDB installed, not preloaded --------------------------------------

def test_installed_but_not_preloaded_falls_back_to_plain_tables(plain_embedded, new_db):
    """The extension installed on the server (here: the embedded one, told where the build is) but
    not in shared_preload_libraries: `create extension` would fail, so the bootstrap keeps plain
    tables and says how to get hypertables; `preload` refuses with one line."""
    prefix = find_timescaledb(_extension_dir())
    if prefix is None:
        pytest.skip(_not_available_reason())
    admin_url, _ = plain_embedded
    if prefix != embedded_install_dir():
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("alter system set extension_control_path = {}").format(
                sql.Literal(f"$system:{prefix.resolve() / 'share'}")))
            conn.execute(sql.SQL("alter system set dynamic_library_path = {}").format(
                sql.Literal(f"$libdir:{prefix.resolve() / 'lib'}")))
            conn.execute("select pg_reload_conf()")
    url = new_db(admin_url)
    with psycopg.connect(url) as conn:
        status = timescale_status(conn)
    assert status.available is not None and not status.preloaded and status.created is None
    migration = migrate(url, timescaledb="auto", policies=DEFAULTS)
    assert migration.timescale == (
        f"TimescaleDB {status.available} is installed but not preloaded (shared_preload_libraries ''): the raw "
        "time-series tables are plain tables (preload it and restart the server, then run `podcast-analytics "
        "migrate` to make them hypertables)")
    assert query(url, "select count(*) from pg_extension where extname = 'timescaledb'") == [(0,)]
    assert query(url, "select relkind from pg_class where oid = 'raw.listener_events'::regclass") == [("r",)]
    with psycopg.connect(url, autocommit=True) as conn:  # what the baseline used to run, and failed on
        with pytest.raises(psycopg.errors.InternalError, match='extension "timescaledb" must be preloaded'):
            conn.execute("create extension timescaledb")
    with pytest.raises(WarehouseError, match=rf"PODCAST_TIMESCALEDB=preload, but TimescaleDB {status.available} "
                                             r"is installed but not preloaded \(shared_preload_libraries ''\)$"):
        migrate(url, timescaledb="preload", policies=DEFAULTS)


# --- a server that preloads TimescaleDB -----------------------------------------------------------

def test_the_embedded_server_preloads_timescaledb(timescale_admin):
    if os.environ.get("DATABASE_URL"):
        pytest.skip("the server at DATABASE_URL is not an embedded one")
    assert query(timescale_admin, "show shared_preload_libraries") == [("timescaledb",)]
    pg_dir = Path(query(timescale_admin, "show data_directory")[0][0])
    assert "shared_preload_libraries = 'timescaledb'" in (pg_dir / EMBEDDED_CONF).read_text()


def test_bootstrap_makes_hypertables_with_the_settings_chunks_compression_and_retention(timescale_admin, new_db):
    url = new_db(timescale_admin)
    policies = _policies(listener_events__chunk_interval="1d", listener_events__compress_after="7d",
                         listener_events__retention="30d", attribution_events__chunk_interval="30d",
                         attribution_events__compress_after="0", attribution_events__retention="0",
                         rss_feed_fetches__chunk_interval="12h", rss_feed_fetches__compress_after="14d",
                         rss_feed_fetches__retention="90d")
    migration = migrate(url, timescaledb="auto", policies=policies)
    version = query(url, "select extversion from pg_extension where extname = 'timescaledb'")[0][0]
    assert migration.timescale == f"TimescaleDB {version} (preloaded): the raw time-series tables are hypertables"
    assert _hypertables(url) == {"raw.listener_events": "1 day", "raw.attribution_events": "30 days",
                                 "raw.rss_feed_fetches": "12:00:00"}
    assert _jobs(url) == {("raw.listener_events", "policy_compression"): "7 days",
                          ("raw.listener_events", "policy_retention"): "30 days",
                          ("raw.rss_feed_fetches", "policy_compression"): "14 days",
                          ("raw.rss_feed_fetches", "policy_retention"): "90 days"}
    segments = query(url, """
        select format('%I.%I', hypertable_schema, hypertable_name), string_agg(attname, ', ' order by segmentby_column_index)
        from timescaledb_information.compression_settings where segmentby_column_index is not null group by 1""")
    assert sorted(segments) == [("raw.listener_events", "tenant_id"), ("raw.rss_feed_fetches", "tenant_id, feed_url")]

    # settings changed: the next `migrate` brings the chunks (from now on) and the jobs to them
    changed = _policies(listener_events__chunk_interval="2d", listener_events__compress_after="3d",
                        listener_events__retention="0", attribution_events__compress_after="60d",
                        attribution_events__retention="400d", rss_feed_fetches__chunk_interval="12h",
                        rss_feed_fetches__compress_after="14d", rss_feed_fetches__retention="90d")
    again = migrate(url, timescaledb="auto", policies=changed)
    assert again.applied == []
    assert _hypertables(url)["raw.listener_events"] == "2 days"
    assert _jobs(url) == {("raw.listener_events", "policy_compression"): "3 days",
                          ("raw.attribution_events", "policy_compression"): "60 days",
                          ("raw.attribution_events", "policy_retention"): "400 days",
                          ("raw.rss_feed_fetches", "policy_compression"): "14 days",
                          ("raw.rss_feed_fetches", "policy_retention"): "90 days"}
    jobs = query(url, "select job_id from timescaledb_information.jobs where hypertable_schema = 'raw' order by 1")
    assert migrate(url, timescaledb="auto", policies=changed).applied == []
    assert query(url, "select job_id from timescaledb_information.jobs where hypertable_schema = 'raw' order by 1") == jobs


def test_chunks_are_sized_to_the_tables_volume(timescale_admin, new_db):
    """The demo's 1,016 conversion events over 13 weeks filled 13 chunks of TimescaleDB's default
    7 days; the setting's 30 days make one chunk per month of conversions, and the access log's
    one day one chunk per log day (what a day's reload and retention act on)."""
    url = new_db(timescale_admin)
    migrate(url, timescaledb="auto", policies=DEFAULTS)
    first = datetime(2026, 8, 7, tzinfo=timezone.utc)
    times = [first + timedelta(hours=2.1 * n) for n in range(1016)]  # 1,016 events over 88.8 days
    with psycopg.connect(url) as conn:
        with conn.cursor().copy("copy raw.attribution_events (tenant_id, source, event_id, occurred_at, sponsor_id, "
                                "event_type) from stdin") as copy:
            for n, at in enumerate(times):
                copy.write_row(("acme", "shop_orders", f"o-{n}", at, "sp-1", "order"))
        with conn.cursor().copy("copy raw.listener_events (tenant_id, event_time, log_date, file_key, line_no, path, "
                                "method, status, bytes_sent, ip_hash, ip_prefix_hash, ip_version, _source) "
                                "from stdin") as copy:
            for n in range(3 * 24):
                at = datetime(2026, 11, 1, tzinfo=timezone.utc) + timedelta(hours=n)
                copy.write_row(("acme", at, at.date(), "f", n, "/e.mp3", "GET", 200, 1000, "h", "p", 4, "logs"))

    def buckets(days: int) -> int:  # chunks of `days` are aligned on the epoch
        return len({int(at.timestamp()) // (days * 86400) for at in times})

    chunks = dict(query(url, "select hypertable_name, count(*) from timescaledb_information.chunks group by 1"))
    assert buckets(7) == 13 and chunks["attribution_events"] == buckets(30) == 4
    assert chunks["listener_events"] == 3
    assert query(url, "select count(*) from raw.attribution_events") == [(1016,)]


def test_plain_tables_with_rows_become_hypertables_once_the_server_preloads_it(timescale_admin, new_db):
    """A warehouse bootstrapped with plain tables (PODCAST_TIMESCALEDB=off standing for a server
    without the preload) gets hypertables at the next `migrate` where it is preloaded; rows move
    into chunks, none lost."""
    url = new_db(timescale_admin)
    assert migrate(url, timescaledb="off", policies=DEFAULTS).timescale == (
        "PODCAST_TIMESCALEDB=off: the raw time-series tables are plain tables")
    with psycopg.connect(url) as conn:
        conn.execute("insert into raw.rss_feed_fetches (tenant_id, feed_url, fetched_at, outcome) "
                     "select 'acme', 'https://f.example/rss', timestamptz '2026-01-01' + n * interval '1 day', 'fetched' "
                     "from generate_series(0, 89) as n")
    assert query(url, "select count(*) from pg_extension where extname = 'timescaledb'") == [(0,)]
    migration = migrate(url, timescaledb="auto", policies=DEFAULTS)
    assert migration.applied == [] and migration.timescale.endswith("the raw time-series tables are hypertables")
    assert set(_hypertables(url)) == {t.name for t in TIME_SERIES_TABLES}
    assert query(url, "select count(*) from raw.rss_feed_fetches") == [(90,)]
    assert query(url, "select count(*) from only raw.rss_feed_fetches") == [(0,)]  # all of them in chunks
    assert query(url, "select count(*) from timescaledb_information.chunks "
                      "where hypertable_name = 'rss_feed_fetches'") == [(4,)]  # 90 days in chunks of 30


def test_a_rebuild_never_reaches_past_the_retention(timescale_admin, new_db):
    """Retention drops raw chunks; the facts keep their history. A rebuild that would replace fact
    rows older than what the raw table keeps is refused, naming the fact, the rows and the first
    day the raw table keeps; a rebuild of the kept days goes ahead."""
    url = new_db(timescale_admin)
    migrate(url, timescaledb="auto", policies=_policies(listener_events__retention="30d"))
    now = datetime(2026, 11, 3, 12, tzinfo=timezone.utc)
    with psycopg.connect(url) as conn:
        conn.execute("""
            insert into raw.listener_events (tenant_id, event_time, log_date, file_key, line_no, path, method, status,
                                             bytes_sent, ip_hash, ip_prefix_hash, ip_version, _source)
            select 'acme', timestamptz '2026-09-01' + n * interval '1 day' + interval '6 hours', date '2026-09-01' + n,
                   'f', n, '/e.mp3', 'GET', 200, 1000, 'h', 'p', 4, 'logs'
            from generate_series(0, 63) as n""")
        # the fact as dbt builds it, dated by download day (a stand-in with the one column the check reads)
        conn.execute("create table marts.fct_downloads (download_date date not null)")
        conn.execute("insert into marts.fct_downloads select date '2026-09-01' + n from generate_series(0, 63) as n")
        conn.commit()
        # 30 days before noon on 3 November is noon on 4 October: the chunk of that day ends after it
        horizons = retention_horizons(conn, now)
        assert horizons["raw.listener_events"] == datetime(2026, 10, 4, tzinfo=timezone.utc)
        assert horizons["raw.rss_feed_fetches"] == datetime(2025, 9, 29, 12, tzinfo=timezone.utc)  # 400 days, no chunk
        with pytest.raises(WarehouseError) as refused:
            check_rebuild(conn, now=now)
        assert str(refused.value) == (
            "a rebuild of marts.fct_downloads in full would lose 33 rows dated 2026-09-01 to 2026-10-03: "
            "raw.listener_events keeps whole days from 2026-10-04 on (its retention, PODCAST_LISTENER_EVENTS_RETENTION); "
            "rebuild the days from 2026-10-04 on only, or restore raw.listener_events before that day first")
        with pytest.raises(WarehouseError, match=r"^a rebuild of marts.fct_downloads from 2026-10-01 on would lose "
                                                 r"3 rows dated 2026-10-01 to 2026-10-03: "):
            check_rebuild(conn, since=date(2026, 10, 1), now=now)
        check_rebuild(conn, since=date(2026, 10, 4), now=now)  # the kept days: nothing to lose
        # the job has run: the chunks before the horizon are gone, and the answer is the same
        dropped = conn.execute("select count(*) from drop_chunks('raw.listener_events', "
                               "older_than => %s::timestamptz - interval '30 days')", (now,)).fetchone()[0]
        assert dropped == 33
        assert conn.execute("select min(event_time)::date from raw.listener_events").fetchone()[0] == date(2026, 10, 4)
        with pytest.raises(WarehouseError, match="would lose 33 rows dated 2026-09-01 to 2026-10-03"):
            check_rebuild(conn, now=now)


def test_the_cli_refuses_a_full_refresh_that_would_shrink_history(timescale_admin, new_db, tmp_path):
    """`podcast-analytics dbt -- build --full-refresh` checks before dbt builds anything: refused
    with one line (exit 1) when its selection holds the fact, not when it leaves it out."""
    from tests.test_cli import one_line_error, run_cli

    url = new_db(timescale_admin)
    migrate(url, timescaledb="auto", policies=_policies(listener_events__retention="30d"))
    with psycopg.connect(url) as conn:
        conn.execute("create table marts.fct_downloads (download_date date not null)")
        conn.execute("insert into marts.fct_downloads values (current_date - 100), (current_date - 1)")
    variables = {"DATABASE_URL": url, "PODCAST_LISTENER_EVENTS_RETENTION": "30d"}
    line = one_line_error(run_cli("dbt", "--", "build", "--full-refresh", data_dir=tmp_path, **variables))
    assert line.startswith("error: a rebuild of marts.fct_downloads in full would lose 1 rows dated ")
    assert "raw.listener_events keeps whole days from" in line and "PODCAST_LISTENER_EVENTS_RETENTION" in line
    line = one_line_error(run_cli("dbt", "--", "run", "--full-refresh", "--select", "int_downloads_iab_filtered+",
                                  "--threads", "1", data_dir=tmp_path, **variables))
    assert line.startswith("error: a rebuild of marts.fct_downloads in full would lose 1 rows")
    # a selection without the fact: dbt runs (and fails here, on a warehouse without its staging views)
    other = run_cli("dbt", "--", "run", "--full-refresh", "--select", "dim_podcasts", data_dir=tmp_path, **variables)
    assert "would lose" not in other.stderr and "1 of 1 START sql table model marts.dim_podcasts" in other.stdout


FACT_CHUNKS = {"marts.fct_downloads": "7 days", "marts.fct_downloads_daily_by_tenant": "90 days",
               "marts.fct_downloads_daily_by_episode": "90 days", "marts.fct_attributed_conversions": "30 days",
               "marts.fct_campaign_credits_daily": "90 days"}


def _fact_rows(url: str) -> dict[str, list[tuple]]:
    from tests.test_request_retention import _facts

    return {
        **_facts(url),
        "by_episode": sorted(query(url, "select download_date, episode_id, downloads, unique_listeners "
                                        "from marts.fct_downloads_daily_by_episode")),
        "exposures": sorted(query(url, "select * from intermediate.int_exposures")),
    }


def test_the_daily_partitioned_facts_are_hypertables_through_partition_runs_and_full_refreshes(
        timescale_admin, new_db, simulator, truth, tmp_path):
    """A build where TimescaleDB is preloaded makes the daily-partitioned facts hypertables on their
    day column (chunks sized to each one's volume; row-level security kept); two partition runs in
    a row (their window filters are literal bounds: no SkipScan error in the models that read the
    facts, int_exposures among them) and a full refresh leave the same rows, and the facts still
    hypertables."""
    import json

    from assets.ingestion.rss_ingest import ingest_rss
    from assets.ingestion.user_agents import read_patterns, store_patterns
    from resources.warehouse import warehouse_at
    from simulator.logs import generate_logs
    from tests.conftest import UA_PATTERNS
    from tests.test_downloads_incremental import dbt_build, load_days
    from tests.test_rss_ingest import sources_for

    url = new_db(timescale_admin)
    migrate(url, timescaledb="auto", policies=DEFAULTS)
    days = [date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3)]
    ingest_rss(warehouse_at(url), sources_for(truth), batch_id="rss")
    with psycopg.connect(url, autocommit=True) as conn:
        store_patterns(conn, read_patterns(UA_PATTERNS), "t")
    generate_logs(truth, tmp_path / "landing", days, seed=6, listeners_per_tenant=20)
    load_days(url, tmp_path / "landing", set(days))
    target = str(tmp_path / "target")
    facts = ("fct_downloads_daily_by_tenant", "fct_downloads_daily_by_episode", "fct_campaign_credits_daily",
             "int_exposures")
    dbt_build(url, target, "--select", *(f"+{name}" for name in facts), "--indirect-selection", "cautious")
    built = _fact_rows(url)
    assert len(built["downloads"]) > 50 and {row[2] for row in built["downloads"]} == set(days)
    hypertables = {table: chunk for table, chunk in _hypertables(url).items() if not table.startswith("raw.")}
    assert hypertables == FACT_CHUNKS
    assert query(url, "select relrowsecurity from pg_class where oid = 'marts.fct_downloads'::regclass") == [(True,)]
    assert query(url, "select count(*) from timescaledb_information.chunks where hypertable_name = 'fct_downloads'") \
        == [(1,)]  # 1 to 3 November: the week from Thursday 29 October (chunks align on the epoch, a Thursday)

    for day in days[1:]:  # day by day, as the partition sensor requests them
        window = {"min_date": day.isoformat(), "max_date": (day + timedelta(days=1)).isoformat()}
        dbt_build(url, target, "--select", *(f"tag:partitioned,+{name}" for name in facts),
                  "--indirect-selection", "cautious", "--vars", json.dumps(window))
    assert _fact_rows(url) == built

    dbt_build(url, target, "--full-refresh", "--select", *(f"tag:partitioned,+{name}" for name in facts),
              "--indirect-selection", "cautious")
    assert _fact_rows(url) == built
    assert {table: chunk for table, chunk in _hypertables(url).items() if not table.startswith("raw.")} == FACT_CHUNKS
    assert query(url, "select relrowsecurity from pg_class where oid = 'marts.fct_downloads'::regclass") == [(True,)]

"""IAB download marts built incrementally equal a full rebuild, day by day."""

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import psycopg

from assets.ingestion.listener_logs_load import discover, forget_missing, load_file
from assets.ingestion.listener_logs_parse import IpHasher
from assets.ingestion.rss_ingest import ingest_rss
from assets.ingestion.user_agents import read_patterns, store_patterns
from resources.settings import REPO_ROOT
from resources.warehouse import dbt_env, warehouse_at
from simulator.logs import generate_logs
from tests.conftest import UA_PATTERNS, query
from tests.test_rss_ingest import sources_for

# The download marts and everything they read (with their tests): what these tests build.
DOWNLOADS = ("--select", "+path:models/marts/downloads", "--indirect-selection", "cautious")


def dbt_build(url: str, target: str, *extra: str, command: str = "build", check: bool = True):
    env = {**os.environ, **dbt_env(url)}
    project = REPO_ROOT / "dbt_project"
    result = subprocess.run(
        [str(Path(sys.executable).with_name("dbt")), command, "--project-dir", str(project),
         "--profiles-dir", str(project), "--target-path", target, "--log-path", target + "/logs",
         "--exclude", "test_type:unit", *extra],
        capture_output=True, text=True, env=env, timeout=540,
    )
    assert result.returncode == 0 or not check, result.stdout[-4000:]
    return result


def snapshot(url):
    return {
        "downloads": sorted(query(url, "select download_id, episode_id, download_date, bytes_covered from marts.fct_downloads")),
        "reasons": sorted(query(url, "select request_id, coalesce(exclusion_reason, '') from intermediate.int_downloads_iab_filtered")),
        "by_episode": sorted(query(url, "select download_date, episode_id, downloads, unique_listeners "
                                        "from marts.fct_downloads_daily_by_episode")),
        "by_tenant": sorted(query(url, "select download_date, tenant_id, downloads, unique_listeners "
                                       "from marts.fct_downloads_daily_by_tenant")),
        "engagement": sorted(query(url, "select episode_id, downloads, unique_listeners, avg_completion, "
                                        "first_download_date, last_download_date from marts.fct_listener_engagement")),
    }


def load_days(url, landing, days):
    with psycopg.connect(url, autocommit=True) as conn:
        for log in discover(landing, settle_seconds=0):
            if log.log_date in days:
                load_file(conn, log, IpHasher.for_tenant(b"k", log.tenant_id), "t")


def test_incremental_runs_equal_a_full_rebuild(fresh_db, simulator, truth, tmp_path):
    ingest_rss(warehouse_at(fresh_db), sources_for(truth), batch_id="rss")
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        store_patterns(conn, read_patterns(UA_PATTERNS), "t")
    landing = tmp_path / "landing"
    generate_logs(truth, landing, [date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3)], seed=9, listeners_per_tenant=30)
    all_days = {f.log_date for f in discover(landing, settle_seconds=0)}
    target = str(tmp_path / "target")

    load_days(fresh_db, landing, {date(2026, 11, 1)})
    dbt_build(fresh_db, target, *DOWNLOADS)
    first_rows = query(fresh_db, "select request_id, xmin::text from intermediate.int_listener_requests_screened")

    load_days(fresh_db, landing, all_days - {date(2026, 11, 1)})   # the next days arrive
    dbt_build(fresh_db, target, *DOWNLOADS)                          # incremental
    incremental = snapshot(fresh_db)
    untouched = dict(query(fresh_db, "select request_id, xmin::text from intermediate.int_listener_requests_screened"))
    # Requests of the day already processed were not rewritten by the incremental run.
    assert all(untouched[request_id] == xmin for request_id, xmin in first_rows)

    dbt_build(fresh_db, target, *DOWNLOADS)                          # nothing new: nothing changes
    assert snapshot(fresh_db) == incremental

    dbt_build(fresh_db, target, *DOWNLOADS, "--full-refresh")
    assert snapshot(fresh_db) == incremental
    assert len(incremental["downloads"]) > 100
    # A rebuilt table gets its indexes again (the old table, renamed aside until the end of the
    # rebuild, must not keep their names and leave the new one without them).
    indexes = dict(query(fresh_db, "select tablename, count(*) from pg_indexes where schemaname in "
                                   "('intermediate', 'marts') group by tablename"))
    assert indexes["fct_downloads"] == 4 and indexes["int_listener_requests_screened"] == 5
    assert indexes["int_downloads_iab_filtered"] == 4 and indexes["int_episode_media"] == 1

    # The request-level data tests check the rows of the last run: a duplicate written with the
    # last run's stamp fails them.
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("insert into intermediate.int_listener_requests_screened "
                     "select * from intermediate.int_listener_requests_screened limit 1")
    tested = dbt_build(fresh_db, target, "-s", "int_listener_requests_screened", command="test", check=False)
    assert tested.returncode == 1 and "unique_int_listener_requests_screened_request_id" in tested.stdout


def test_files_loaded_again_emptied_or_committed_late_reach_the_marts(fresh_db, simulator, truth, tmp_path):
    """The incremental models find pending files in the loader's ledger, not by load time: a file
    loaded again with fewer lines, a file emptied, and a file whose load committed after a dbt
    run that started later all end up exactly as a full rebuild has them."""
    ingest_rss(warehouse_at(fresh_db), sources_for(truth), batch_id="rss")
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        store_patterns(conn, read_patterns(UA_PATTERNS), "t")
    landing = tmp_path / "landing"
    days = [date(2026, 11, 1), date(2026, 11, 2)]
    generate_logs(truth, landing, days, seed=11, listeners_per_tenant=30)
    files = discover(landing, settle_seconds=0)
    plain = [f for f in files if f.path.suffix == ".log" and f.log_date == days[1]]
    shrunk, emptied = plain[0], plain[1]
    late = next(f for f in files if f.log_date == days[1] and f not in (shrunk, emptied))
    gone = next(f for f in files if f not in (shrunk, emptied, late))
    target = str(tmp_path / "target")

    with psycopg.connect(fresh_db, autocommit=True) as conn:
        for log in files:
            if log != late:
                load_file(conn, log, IpHasher.for_tenant(b"k", log.tenant_id), "t")
    dbt_build(fresh_db, target, *DOWNLOADS)
    before = dict(query(fresh_db, "select file_key, count(*) from intermediate.int_downloads_iab_filtered "
                                  "join intermediate.int_listener_requests_screened using (request_id) group by 1"))
    assert before[shrunk.file_key] > 10 and before[emptied.file_key] > 0 and late.file_key not in before
    assert before[gone.file_key] > 0

    lines = shrunk.path.read_text().splitlines(keepends=True)
    shrunk.path.write_text("".join(lines[: len(lines) // 3]))
    emptied.path.write_text("this is not a log line\n")
    gone.path.unlink()  # deleted from the landing folder: its rows go, and so do its downloads
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        assert forget_missing(conn, landing, gone.log_date, "t") == [gone.file_key]
        for log in discover(landing, settle_seconds=0):
            if log.file_key in (shrunk.file_key, emptied.file_key, late.file_key):
                assert load_file(conn, log, IpHasher.for_tenant(b"k", log.tenant_id), "t").status == "loaded"
        # As if its transaction had started long before the last dbt run and committed after it.
        conn.execute("update raw.listener_events set _ingested_at = '2000-01-01' where file_key = %s", (late.file_key,))
        conn.execute("update ops.listener_log_files set loaded_at = '2000-01-01' where file_key = %s", (late.file_key,))
    dbt_build(fresh_db, target, *DOWNLOADS)
    incremental = snapshot(fresh_db)
    after = dict(query(fresh_db, "select file_key, count(*) from intermediate.int_downloads_iab_filtered "
                                 "join intermediate.int_listener_requests_screened using (request_id) group by 1"))
    shrunk_rows = query(fresh_db, "select count(*) from raw.listener_events where file_key = %s", (shrunk.file_key,))
    assert after[shrunk.file_key] == shrunk_rows[0][0] < before[shrunk.file_key] and shrunk_rows[0][0] > 600
    assert emptied.file_key not in after and gone.file_key not in after and after[late.file_key] > 10
    raw_total = query(fresh_db, "select count(*) from raw.listener_events")[0][0]
    assert query(fresh_db, "select count(*) from intermediate.int_downloads_iab_filtered")[0][0] == raw_total

    dbt_build(fresh_db, target, *DOWNLOADS, "--full-refresh")
    assert snapshot(fresh_db) == incremental

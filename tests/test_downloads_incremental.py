"""IAB download marts built partition by partition, for the days the loader's ledger says changed,
equal a full rebuild."""

import json
from datetime import date, datetime, timedelta, timezone

import psycopg

from assets.ingestion.listener_logs_load import discover, forget_missing, load_file
from assets.ingestion.listener_logs_parse import IpHasher
from assets.ingestion.rss_ingest import ingest_rss
from assets.ingestion.user_agents import read_patterns, store_patterns
from resources.warehouse import warehouse_at
from simulator.logs import generate_logs
from assets.dbt import window_reach_days
from pipelines.partition_sensor import day_ranges, out_of_date
from tests.conftest import UA_PATTERNS, query
from tests.dbt_cli import run_dbt
from tests.test_rss_ingest import sources_for

# The download marts and everything they read (with their tests): what these tests build.
DOWNLOADS = ("--select", "+path:models/marts/downloads", "--indirect-selection", "cautious")


def dbt_build(url: str, target: str, *extra: str, command: str = "build", check: bool = True):
    return run_dbt(url, target, command, "--exclude", "test_type:unit", *extra, check=check)


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


def run_changed_days(url: str, target: str, cursor: dict) -> tuple[dict, list[tuple[date, date]]]:
    """What the partition sensor would request since `cursor` (pipelines/partition_sensor.py), run
    as the dbt_partitioned job runs it: each range of days as one build of the partitioned models
    of the download marts with the range's vars; then the tables built from them. No range, no run."""
    with psycopg.connect(url, autocommit=True) as conn:
        days, _, after = out_of_date(conn, cursor, window_reach_days())
    ranges = day_ranges(days)
    for low, high in ranges:
        window = json.dumps({"min_date": low.isoformat(), "max_date": (high + timedelta(days=1)).isoformat()})
        dbt_build(url, target, "--select", "tag:partitioned,+path:models/marts/downloads", "--vars", window)
    if ranges:
        dbt_build(url, target, "--select", "fct_listener_engagement")
    return after, ranges


def island_lines(host_line: str, ip: str, agent: str, times: list[datetime]) -> str:
    """Whole-file requests of one listener at the given times, in the shape of a vhost_combined line."""
    host, _, rest = host_line.partition(" ")
    request = rest[rest.index('"GET'):]
    request = request[:request.index('"', 1) + 1] + " 200 " + request.split()[4] + ' "-" "' + agent + '" "-"'
    return "".join(f"{host} {ip} - - [{at.strftime('%d/%b/%Y:%H:%M:%S +0000')}] {request}\n" for at in times)


def test_partitions_run_for_the_changed_days_equal_a_full_rebuild(fresh_db, simulator, truth, tmp_path):
    ingest_rss(warehouse_at(fresh_db), sources_for(truth), batch_id="rss")
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        store_patterns(conn, read_patterns(UA_PATTERNS), "t")
    landing = tmp_path / "landing"
    days = [date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3)]
    generate_logs(truth, landing, days, seed=9, listeners_per_tenant=30)
    # One listener who comes back within a day for three days: first-touch windows chain across
    # the days (opened day 1 20:00, reaching into day 2; opened day 2 23:00, reaching into day 3),
    # so a day's partition must start from the windows the day before left open.
    sample = next(f for f in discover(landing, settle_seconds=0)
                  if f.path.suffix == ".log" and f.path.read_text()[:1] not in ("{", "["))
    line = max((li for li in sample.path.read_text().splitlines() if '" 200 ' in li and '"GET' in li),
               key=lambda li: int(li.split('" 200 ')[1].split()[0]))
    times = [datetime(2026, 11, 1, 20, tzinfo=timezone.utc), datetime(2026, 11, 2, 10, tzinfo=timezone.utc),
             datetime(2026, 11, 2, 23, tzinfo=timezone.utc), datetime(2026, 11, 3, 12, tzinfo=timezone.utc)]
    agent = "Overcast/3.0 (+http://overcast.fm/; iOS podcast app; one listener)"
    for day in days:
        (sample.path.parent / f"island-{day}.log").write_text(
            island_lines(line, "198.51.100.77", agent, [t for t in times if t.date() == day]))
    target = str(tmp_path / "target")

    load_days(fresh_db, landing, {days[0]})
    dbt_build(fresh_db, target, *DOWNLOADS)                          # the first build: every day
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        cursor = out_of_date(conn, {}, window_reach_days())[2]    # the sensor's first tick

    # The next days arrive one by one. Each run covers the new day and the day before (windows
    # opened then), not the day after (no request of it is stored yet: no window opens on it);
    # it starts from the windows left open two days before.
    for day in days[1:]:
        load_days(fresh_db, landing, {day})
        cursor, ranges = run_changed_days(fresh_db, target, cursor)
        assert ranges == [(day - timedelta(days=1), day)]
    partitioned = snapshot(fresh_db)
    # Nothing new: nothing runs, nothing changes.
    assert run_changed_days(fresh_db, target, cursor)[1] == [] and snapshot(fresh_db) == partitioned

    # The chained listener: two downloads (day 1 20:00 and day 2 23:00), as over all days at once.
    chained = query(fresh_db, "select download_date, downloaded_at from marts.fct_downloads "
                              "where user_agent = %s order by 2", (agent,))
    assert [d for d, _ in chained] == [days[0], days[1]], chained

    dbt_build(fresh_db, target, *DOWNLOADS, "--full-refresh")
    assert snapshot(fresh_db) == partitioned
    assert len(partitioned["downloads"]) > 100
    # A rebuilt table gets its indexes again (the old table, renamed aside until the end of the
    # rebuild, must not keep their names and leave the new one without them).
    indexes = dict(query(fresh_db, "select tablename, count(*) from pg_indexes where schemaname in "
                                   "('intermediate', 'marts') group by tablename"))
    assert indexes["fct_downloads"] == 3 and indexes["int_listener_requests_screened"] == 5
    assert indexes["int_downloads_iab_filtered"] == 3 and indexes["int_episode_media"] == 1

    # The request-level data tests read the run's partition window: a duplicate on day 2 fails
    # them in a run over day 2, not in a run over day 1.
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("insert into intermediate.int_listener_requests_screened "
                     "select * from intermediate.int_listener_requests_screened where event_date = %s limit 1",
                     (days[1],))
    for day, failed in ((days[0], False), (days[1], True)):
        window = json.dumps({"min_date": day.isoformat(), "max_date": (day + timedelta(days=1)).isoformat()})
        tested = dbt_build(fresh_db, target, "-s", "int_listener_requests_screened", "--vars", window,
                           command="test", check=False)
        assert (tested.returncode == 1 and "unique_int_listener_requests_screened_request_id" in tested.stdout) == failed


def test_files_loaded_again_emptied_deleted_or_committed_late_reach_the_marts(fresh_db, simulator, truth, tmp_path):
    """The days a file's change touched come from the loader's ledger, whatever the file's name or
    load time: a file loaded again with fewer lines, a file emptied, a file deleted, and a file
    whose load committed after the sensor's tick that started later all end up exactly as a full
    rebuild has them, with only their days run again."""
    ingest_rss(warehouse_at(fresh_db), sources_for(truth), batch_id="rss")
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        store_patterns(conn, read_patterns(UA_PATTERNS), "t")
    landing = tmp_path / "landing"
    days = [date(2026, 11, 1) + timedelta(days=n) for n in range(6)]
    generate_logs(truth, landing, days, seed=11, listeners_per_tenant=20)
    files = discover(landing, settle_seconds=0)
    last_day = [f for f in files if f.log_date == days[5]]  # two plain files and a gzip one
    shrunk = next(f for f in last_day if f.path.suffix == ".log")
    emptied = next(f for f in last_day if f != shrunk and not f.path.name.endswith(".gz"))
    late = next(f for f in last_day if f not in (shrunk, emptied))
    gone = next(f for f in files if f.log_date == days[0])
    target = str(tmp_path / "target")

    with psycopg.connect(fresh_db, autocommit=True) as conn:
        for log in files:
            if log != late:
                load_file(conn, log, IpHasher.for_tenant(b"k", log.tenant_id), "t")
    dbt_build(fresh_db, target, *DOWNLOADS)
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        cursor = out_of_date(conn, {}, window_reach_days())[2]
    before = dict(query(fresh_db, "select file_key, count(*) from intermediate.int_downloads_iab_filtered "
                                  "join intermediate.int_listener_requests_screened using (request_id) group by 1"))
    assert before[shrunk.file_key] > 10 and before[emptied.file_key] > 0 and late.file_key not in before
    assert before[gone.file_key] > 0
    untouched_day = query(fresh_db, "select xmin::text from marts.fct_downloads where download_date = %s "
                                    "order by download_id", (days[2],))

    lines = shrunk.path.read_text().splitlines(keepends=True)
    shrunk.path.write_text("".join(lines[: len(lines) // 3]))
    emptied.path.write_text("this is not a log line\n")
    gone.path.unlink()  # deleted from the landing folder: its rows go, and so do its downloads
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        assert forget_missing(conn, landing, gone.log_date, "t") == [gone.file_key]
        for log in discover(landing, settle_seconds=0):
            if log.file_key in (shrunk.file_key, emptied.file_key, late.file_key):
                assert load_file(conn, log, IpHasher.for_tenant(b"k", log.tenant_id), "t").status == "loaded"
        # As if its transaction had started before the sensor's last tick and committed after it.
        conn.execute("update ops.listener_log_files set loaded_at = %s::timestamptz - interval '2 minutes' "
                     "where file_key = %s", (cursor["ledger_through"], late.file_key))
    cursor, ranges = run_changed_days(fresh_db, target, cursor)
    # The deleted file's day with the days beside it, and the same around day 6's files (their
    # last requests run past midnight into day 7). Day 3's downloads were not rewritten.
    assert ranges == [(days[0] - timedelta(days=1), days[1]), (days[4], days[5] + timedelta(days=1))], ranges
    assert untouched_day and query(fresh_db, "select xmin::text from marts.fct_downloads where download_date = %s "
                                             "order by download_id", (days[2],)) == untouched_day
    partitioned = snapshot(fresh_db)
    after = dict(query(fresh_db, "select file_key, count(*) from intermediate.int_downloads_iab_filtered "
                                 "join intermediate.int_listener_requests_screened using (request_id) group by 1"))
    shrunk_rows = query(fresh_db, "select count(*) from raw.listener_events where file_key = %s", (shrunk.file_key,))
    assert after[shrunk.file_key] == shrunk_rows[0][0] < before[shrunk.file_key] and shrunk_rows[0][0] > 100
    assert emptied.file_key not in after and gone.file_key not in after and after[late.file_key] > 10
    raw_total = query(fresh_db, "select count(*) from raw.listener_events")[0][0]
    assert query(fresh_db, "select count(*) from intermediate.int_downloads_iab_filtered")[0][0] == raw_total

    dbt_build(fresh_db, target, *DOWNLOADS, "--full-refresh")
    assert snapshot(fresh_db) == partitioned

"""Retention of the request-level dbt tables (resources/request_retention.py): the daily job deletes
their days older than `request_retention_days`, the facts keep every day, a partitioned run that
would read a deleted day is refused with one clear error, a run after the deleted days equals the
full build, and a full refresh brings every day back from the raw events."""

from datetime import UTC, date, datetime

import dagster as dg
import psycopg
import pytest

from assets.dbt import build_partitioned_dbt_assets, dbt_manifest, dbt_resource, request_tables, request_tables_read
from assets.ingestion.rss_ingest import ingest_rss
from assets.ingestion.user_agents import read_patterns, store_patterns
from pipelines.retention import request_table_retention_job
from pipelines.rules import RANGE_END, RANGE_START
from resources.settings import get_settings
from resources.warehouse import WarehouseResource, warehouse_at
from simulator.logs import generate_logs
from tests.conftest import UA_PATTERNS, query
from tests.test_downloads_incremental import dbt_build, load_days
from tests.test_partition_sensor import ledger_row, tick
from tests.test_rss_ingest import sources_for

DAYS = [date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3), date(2026, 11, 4)]
TODAY = date(2026, 11, 5)  # with a retention of 2 days: 3 and 4 November are kept
KEPT_FROM = date(2026, 11, 3)
SCREENED, WINDOWS, FILTERED, AGENTS = (f"intermediate.{name}" for name in (
    "int_listener_requests_screened", "int_download_windows", "int_downloads_iab_filtered", "int_user_agents_daily"))
DAY_COLUMNS = {SCREENED: "event_date", WINDOWS: "event_date", FILTERED: "window_date", AGENTS: "event_date"}
CHAIN = [dg.AssetKey(["intermediate", name]) for name in (
    "int_user_agents_daily", "int_listener_requests_screened", "int_download_windows", "int_downloads_iab_filtered")] + [
    dg.AssetKey(["marts", "fct_downloads"]), dg.AssetKey(["marts", "fct_downloads_daily_by_tenant"])]


def _facts(url: str) -> dict[str, list[tuple]]:
    return {
        "downloads": sorted(query(url, "select download_id, episode_id, download_date, bytes_covered, listener_id "
                                       "from marts.fct_downloads")),
        "by_tenant": sorted(query(url, "select download_date, tenant_id, downloads, unique_listeners "
                                       "from marts.fct_downloads_daily_by_tenant")),
    }


def _request_rows(url: str) -> dict[str, list[tuple]]:
    """Each request-level table's rows (their identity and what was decided), by day."""
    return {
        SCREENED: sorted(query(url, f"select event_date, request_id, coalesce(screen_reason, '') from {SCREENED}")),
        WINDOWS: sorted(query(url, f"select event_date, request_id, coalesce(window_id, '') from {WINDOWS}")),
        FILTERED: sorted(query(url, f"select window_date, request_id, coalesce(exclusion_reason, '') from {FILTERED}")),
        AGENTS: sorted(query(url, f"select event_date, user_agent from {AGENTS}")),
    }


def _materialize(url: str, day: date | None) -> dg.ExecuteInProcessResult:
    """The request-level chain and the facts built from it, through Dagster: one partition, or
    (None) every day with requests as one range run, as a rule change's backfill runs them."""
    days = {"partition_key": day.isoformat()} if day else {
        "tags": {RANGE_START: DAYS[0].isoformat(), RANGE_END: DAYS[-1].isoformat()}}
    return dg.materialize(
        [build_partitioned_dbt_assets()], selection=CHAIN, raise_on_error=False, **days,
        resources={"warehouse": WarehouseResource(database_url=url), "dbt": dbt_resource()},
    )


def _failure(result: dg.ExecuteInProcessResult) -> str:
    return next(event.step_failure_data.user_failure_data.description for event in result.all_events
                if event.is_step_failure)


@pytest.fixture(scope="module")
def built(new_warehouse, simulator, truth, tmp_path_factory):
    """A warehouse with four days of logs built whole; its facts and request-level rows."""
    url = new_warehouse("t_retention")
    ingest_rss(warehouse_at(url), sources_for(truth), batch_id="rss")
    with psycopg.connect(url, autocommit=True) as conn:
        store_patterns(conn, read_patterns(UA_PATTERNS), "t")
    landing = tmp_path_factory.mktemp("landing")
    generate_logs(truth, landing, DAYS, seed=18, listeners_per_tenant=25)
    load_days(url, landing, set(DAYS))
    dbt_build(url, str(tmp_path_factory.mktemp("target")), "--select", "+fct_downloads_daily_by_tenant",
              "--indirect-selection", "cautious")
    return url, _facts(url), _request_rows(url)


@pytest.fixture(scope="module")
def pruned(built):
    """The retention job run with a retention of 2 days on 5 November (PODCAST_DBT_VARS)."""
    url, facts, rows = built
    return url, facts, rows, [_prune(url) for _ in range(2)]


def _prune(url: str) -> dg.ExecuteInProcessResult:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PODCAST_DBT_VARS", '{"request_retention_days": 2}')
        get_settings.cache_clear()
        try:
            return request_table_retention_job.execute_in_process(
                run_config={"ops": {"prune_request_days": {"config": {"today": TODAY.isoformat()}}}},
                resources={"warehouse": WarehouseResource(database_url=url)})
        finally:
            get_settings.cache_clear()


def test_the_request_level_tables_are_the_ones_declared_and_their_readers():
    manifest = dbt_manifest()
    assert request_tables(manifest) == DAY_COLUMNS
    read = request_tables_read(manifest)
    assert read["int_download_windows"] == {SCREENED, WINDOWS}
    assert read["int_downloads_iab_filtered"] == {SCREENED, WINDOWS, FILTERED}
    assert read["fct_downloads"] == {FILTERED} and read["int_media_size_evidence_daily"] == {SCREENED}
    assert read["int_user_agents_classified"] == {AGENTS}
    # the evidence of file sizes is kept (sizes are learned from every day), and what the facts feed
    assert "int_media_sizes" not in read and "fct_downloads_daily_by_tenant" not in read


def test_old_days_go_and_the_facts_keep_their_history(pruned):
    url, facts, rows, runs = pruned
    before = {table: [row for row in table_rows if row[0] < KEPT_FROM] for table, table_rows in rows.items()}
    assert all(before.values())  # each table had rows of 1 and 2 November
    first, again = (run.output_for_node("prune_request_days") for run in runs)
    assert first == sum(map(len, before.values())) and again == 0  # a second run deletes nothing
    after = _request_rows(url)
    for table, table_rows in rows.items():
        assert after[table] == [row for row in table_rows if row[0] >= KEPT_FROM], table
    assert dict(query(url, "select table_name, kept_from from ops.request_table_horizons")) == {
        table: KEPT_FROM for table in DAY_COLUMNS}
    assert _facts(url) == facts and {row[2] for row in facts["downloads"]} == set(DAYS)


def test_a_run_over_deleted_days_is_refused_and_one_after_them_equals_the_full_build(pruned):
    """2 November is deleted, and 3 November's windows start from it: both refused, nothing
    written; 4 November's run reads 3 and 4 November only and gives the full build's rows; a run
    from the first stored request on (a rule change's backfill) reads the raw events again and
    brings every day back. (Why refuse: a day's windows
    built without the day before's count a listener's chained visits again,
    tests/test_downloads_incremental.py.)"""
    url, facts, rows, _ = pruned
    for day in (date(2026, 11, 2), KEPT_FROM):
        result = _materialize(url, day)
        assert not result.success
        assert _failure(result) == (
            f"a run of fct_downloads, int_download_windows, int_downloads_iab_filtered, int_listener_requests_screened, "
            f"int_user_agents_daily from {day:%Y-%m-%d} on reads the request-level rows of {day.replace(day=day.day - 1):%Y-%m-%d} on (a day's "
            f"IAB windows start from the day before's), but {WINDOWS} keeps days from 2026-11-03 on (its retention, "
            "the dbt var request_retention_days): run the days from 2026-11-04 on only, or rebuild the partitioned "
            "models in full (a full refresh, which reads the raw events again)")
    assert _facts(url) == facts
    assert _materialize(url, DAYS[-1]).success
    assert _facts(url) == facts
    assert _request_rows(url) == {table: [row for row in table_rows if row[0] >= KEPT_FROM]
                                  for table, table_rows in rows.items()}

    # A run from the first stored request on needs no day before it: it reads every day of its
    # range from the raw events (as a full refresh does) and brings the deleted days back.
    assert _materialize(url, None).success
    assert _facts(url) == facts and _request_rows(url) == rows
    assert query(url, "select count(*) from ops.request_table_horizons") == [(0,)]  # no day missing now


def test_a_late_file_of_a_kept_day_after_deleted_ones_runs_from_the_first_request(pruned):
    """The partition sensor, for a log file of 3 November loaded after the retention deleted 1 and
    2 November: its days (2 to 4 November, with the day on each side) would run from 2 November,
    whose windows need 1 November's, and be refused; so the sensor asks for the days from the
    first stored request on. That run succeeds, and every day is back."""
    url, facts, rows, _ = pruned
    _prune(url)  # the test before brought the deleted days back
    assert query(url, "select count(*) from ops.request_table_horizons")[0][0] == 4
    _, cursor = tick(url, None)  # the first tick sets the watermarks
    with psycopg.connect(url, autocommit=True) as conn:
        now = conn.execute("select now()").fetchone()[0]
        ledger_row(conn, "t/late-2026-11-03.log", now, datetime(2026, 11, 3, 10, tzinfo=UTC),
                   datetime(2026, 11, 3, 11, tzinfo=UTC))
    ranges, _ = tick(url, cursor)
    assert [r for r in ranges if "credits" not in r] == [(DAYS[0].isoformat(), DAYS[-1].isoformat())]
    result = dg.materialize(
        [build_partitioned_dbt_assets()], selection=CHAIN, raise_on_error=False,
        tags={RANGE_START: DAYS[0].isoformat(), RANGE_END: DAYS[-1].isoformat()},
        resources={"warehouse": WarehouseResource(database_url=url), "dbt": dbt_resource()})
    assert result.success
    assert _facts(url) == facts and _request_rows(url) == rows
    assert query(url, "select count(*) from ops.request_table_horizons") == [(0,)]

"""The partition sensor (pipelines/partition_sensor.py) through Dagster: the days of changed log
files become runs over ranges of days, a row committed late is still seen, nothing is asked
twice, and the cursor stays small however many files go by."""

import json
from datetime import datetime, timedelta, timezone

import dagster as dg
import psycopg

from pipelines.partition_sensor import dbt_partitions_sensor
from pipelines.rules import RANGE_END, RANGE_START
from resources.warehouse import WarehouseResource

NOW = datetime(2026, 11, 20, 12, tzinfo=timezone.utc)


def ledger_row(conn, file_key: str, loaded_at: datetime, first: datetime | None, last: datetime | None):
    conn.execute(
        "insert into ops.listener_log_files (file_key, tenant_id, log_date, format, size_bytes, sha256, rows_loaded, "
        "rows_quarantined, loaded_at, status, changed_from, changed_to, first_event_at, last_event_at) "
        "values (%s, 't', %s, 'vhost_combined', 1, %s, 1, 0, %s, 'loaded', %s, %s, %s, %s)",
        (file_key, (first or loaded_at).date(), file_key, loaded_at, first, last, first, last))


def tick(url: str, cursor: str | None):
    context = dg.build_sensor_context(cursor=cursor, resources={"warehouse": WarehouseResource(database_url=url)})
    result = dbt_partitions_sensor(context)
    requests = result if isinstance(result, list) else []
    return [(r.tags[RANGE_START], r.tags[RANGE_END]) + (("credits",) if r.asset_selection else ())
            for r in requests], context.cursor


def test_changed_days_become_ranges_once_and_the_cursor_stays_small(fresh_db):
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        ledger_row(conn, "t/a-2026-11-03.log", NOW, datetime(2026, 11, 3, 0, 5, tzinfo=timezone.utc),
                   datetime(2026, 11, 3, 23, 50, tzinfo=timezone.utc))
        ledger_row(conn, "t/b-2026-11-10.log", NOW + timedelta(seconds=1), datetime(2026, 11, 10, tzinfo=timezone.utc),
                   datetime(2026, 11, 11, 0, 2, tzinfo=timezone.utc))   # a few events past midnight
        conn.execute("insert into raw.attribution_events (tenant_id, source, event_id, occurred_at, sponsor_id, "
                     "event_type, _ingested_at, _batch_id) values ('t', 'shop', 'o-1', '2026-11-30 15:00+00', 's', "
                     "'order', %s, 'b')", (NOW,))
    # The first tick sets the watermarks only: what was loaded before it is built.
    ranges, cursor = tick(fresh_db, None)
    assert ranges == []
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("update ops.listener_log_files set loaded_at = loaded_at + interval '1 hour'")
    ranges, cursor = tick(fresh_db, cursor)
    # Each file's days, with the day before and the day after (24-hour windows), but not past the
    # last day with a request (no request is stored here: the last day a file touched, November
    # 11); then the credits of the conversions those days' exposures reach: 60 days on, up to the
    # newest conversion (November 30).
    assert ranges[:2] == [("2026-11-02", "2026-11-04"), ("2026-11-09", "2026-11-11")]
    assert ranges[2:] == [("2026-11-05", "2026-11-08", "credits"), ("2026-11-12", "2026-11-30", "credits")]
    assert tick(fresh_db, cursor)[0] == []

    with psycopg.connect(fresh_db, autocommit=True) as conn:
        # Committed after the last tick although it started before it: an older loaded_at.
        ledger_row(conn, "t/late-2026-11-05.log", NOW + timedelta(minutes=57), datetime(2026, 11, 5, 8, tzinfo=timezone.utc),
                   datetime(2026, 11, 5, 9, tzinfo=timezone.utc))
        # A file removed: its old span is what changed.
        conn.execute("update ops.listener_log_files set changed_from = first_event_at, changed_to = last_event_at, "
                     "first_event_at = null, last_event_at = null, status = 'deleted', loaded_at = %s "
                     "where file_key = 't/a-2026-11-03.log'", (NOW + timedelta(minutes=61),))
    ranges, cursor = tick(fresh_db, cursor)
    assert ranges[0] == ("2026-11-02", "2026-11-05") and all(r[-1] == "credits" for r in ranges[1:])
    assert tick(fresh_db, cursor)[0] == []

    # Five hundred files an hour apart: each tick's cursor keeps the last minutes only. A request
    # of November 16 is stored (by an earlier load): its windows may start from November 15's, so
    # the day after the files' runs too, and no later day.
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("insert into raw.listener_events (tenant_id, event_time, log_date, file_key, line_no, path, "
                     "method, status, bytes_sent, ip_hash, ip_prefix_hash, ip_version, _source) values ('t', "
                     "'2026-11-16 12:00+00', '2026-11-16', 't/c-2026-11-16.log', 1, '/e.mp3', 'GET', 200, 1, 'h', "
                     "'p', 4, 'test')")
        for n in range(500):
            at = NOW + timedelta(hours=2 + n)
            ledger_row(conn, f"t/bulk-{n}.log", at, datetime(2026, 11, 15, tzinfo=timezone.utc),
                       datetime(2026, 11, 15, 1, tzinfo=timezone.utc))
    ranges, cursor = tick(fresh_db, cursor)
    assert ranges[0] == ("2026-11-14", "2026-11-16")
    state = json.loads(cursor)
    assert len(state["ledger_recent"]) == 1 and len(cursor) < 300
    assert state["ledger_through"] == (NOW + timedelta(hours=501)).isoformat()


def test_conversions_stored_late_request_their_credit_days_once(fresh_db):
    def store(batch: str, day: int, at: datetime):
        with psycopg.connect(fresh_db, autocommit=True) as conn:
            conn.execute("insert into raw.attribution_events (tenant_id, source, event_id, occurred_at, sponsor_id, "
                         "event_type, _ingested_at, _batch_id) values ('t', 'shop', %s, %s, 's', 'order', %s, %s)",
                         (f"{batch}-{day}", datetime(2026, 11, day, 15, tzinfo=timezone.utc), at, batch))

    store("first", 1, NOW)
    ranges, cursor = tick(fresh_db, None)
    assert ranges == []  # the first tick starts the watermark
    # An order of November 20 stored now, and one of November 10 whose load committed late.
    store("second", 20, NOW + timedelta(minutes=30))
    store("late", 10, NOW + timedelta(minutes=25))
    ranges, cursor = tick(fresh_db, cursor)
    # The credits of each conversion's day and of the 60 days after it (a conversion can be a
    # household's first, excluding it from campaigns that exclude prior customers), up to the
    # newest conversion, attribution models only.
    assert ranges == [("2026-11-10", "2026-11-20", "credits")]
    assert tick(fresh_db, cursor)[0] == []
    assert len(json.loads(tick(fresh_db, cursor)[1])["events_recent"]) <= 3


def test_ads_placed_and_codes_detected_after_the_build_request_their_days(fresh_db):
    """A read detected after its days were built places an ad sold without an offset (the
    placement's `loaded_at` moves): the days its episode has windows on are built again. Codes
    detected for a campaign naming none: its conversions from the flight's start are matched again,
    up to the newest conversion."""
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("create schema if not exists intermediate")
        conn.execute("create table intermediate.int_placement_episodes (tenant_id text, placement_id text, "
                     "campaign_id text, episode_id text, loaded_at timestamptz)")
        conn.execute("create table intermediate.int_downloads_iab_filtered (episode_id text, window_date date)")
        conn.execute("create table intermediate.int_campaign_match_keys (tenant_id text, campaign_id text, "
                     "key_type text, key_value text, key_source text, detected_at timestamptz)")
        conn.execute("insert into intermediate.int_placement_episodes values ('t', 'p1', 'c1', 'e1', %s), "
                     "('t', 'p1', 'c1', 'e2', %s), ('t', 'p0', 'c0', 'e0', %s)", (NOW, NOW, NOW))
        conn.execute("insert into intermediate.int_downloads_iab_filtered values ('e1', '2026-11-03'), "
                     "('e1', '2026-11-04'), ('e2', '2026-11-12')")
        conn.execute("insert into intermediate.int_campaign_match_keys values ('t', 'c1', 'promo_code', 'maps', "
                     "'campaign', null)")
        conn.execute("insert into raw.campaigns (tenant_id, campaign_id, sponsor_id, name, budget, flight_start, "
                     "flight_end, pricing_model, attribution_window_days, _source) values "
                     "('t', 'c1', 's', 'C', 100, '2026-11-06', '2026-11-08', 'flat', 2, 't'), "
                     "('t', 'c0', 's', 'C0', 100, '2026-10-20', '2026-10-25', 'flat', 2, 't')")
        conn.execute("insert into raw.attribution_events (tenant_id, source, event_id, occurred_at, sponsor_id, "
                     "event_type, _ingested_at, _batch_id) values ('t', 'shop', 'o-1', '2026-11-09 15:00+00', 's', "
                     "'order', %s, 'b')", (NOW - timedelta(days=5),))
    ranges, cursor = tick(fresh_db, None)
    assert ranges == []  # the first tick starts the watermarks
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("update intermediate.int_placement_episodes set loaded_at = %s where episode_id = 'e1'",
                     (NOW + timedelta(hours=1),))
    ranges, cursor = tick(fresh_db, cursor)
    # e1's window days, then the credits of the conversions after them (up to the newest, November 9)
    assert ranges == [("2026-11-03", "2026-11-04"), ("2026-11-05", "2026-11-09", "credits")]
    assert tick(fresh_db, cursor)[0] == []
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("insert into intermediate.int_campaign_match_keys values ('t', 'c1', 'vanity_url', 'maps.com/x', "
                     "'detected', %s)", (NOW + timedelta(hours=2),))
    ranges, cursor = tick(fresh_db, cursor)
    # the flight (November 6-8) and its 2-day window, cut at the newest conversion (November 9)
    assert ranges == [("2026-11-06", "2026-11-09", "credits")]
    assert tick(fresh_db, cursor)[0] == []
    # e0 detected again (its `loaded_at` moves; it has no downloads): the conversions of the flight of
    # c0, placed in it, are matched again (a code read there may be gone), and the days after them
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("update intermediate.int_placement_episodes set loaded_at = %s where episode_id = 'e0'",
                     (NOW + timedelta(hours=3),))
    ranges, cursor = tick(fresh_db, cursor)
    assert ranges == [("2026-10-20", "2026-11-09", "credits")]
    assert tick(fresh_db, cursor)[0] == []

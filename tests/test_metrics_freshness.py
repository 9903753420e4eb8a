"""Freshness in the data's own time (assets/freshness.py): the newest accepted event per source
and tenant, with failed polls, quarantined rows and future-dated rows not counting."""

from datetime import datetime, timedelta, timezone

import psycopg

from assets.freshness import FUTURE_TOLERANCE, freshness_seconds, newest_event_times, source_of

NOW = datetime(2026, 11, 5, 12, 0, tzinfo=timezone.utc)


def _listener(conn, tenant, line, when):
    conn.execute(
        "insert into raw.listener_events (tenant_id, event_time, log_date, file_key, line_no, path, method, status, "
        "bytes_sent, ip_hash, ip_prefix_hash, ip_version, _source) "
        "values (%s, %s, %s, %s, %s, '/e.mp3', 'GET', 200, 1000, 'h', 'h', 4, 'test')",
        (tenant, when, when.date(), f"{tenant}/f.log", line))


def test_newest_accepted_event_per_source_and_tenant(fresh_db):
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute(
            "insert into raw.rss_feed_fetches (tenant_id, feed_url, fetched_at, outcome) values "
            "('north', 'https://a/feed', %s, 'fetched'), ('north', 'https://a/feed', %s, 'not_modified'), "
            "('north', 'https://a/feed', %s, 'error'), ('south', 'https://b/feed', %s, 'error')",
            (NOW - timedelta(hours=3), NOW - timedelta(hours=2), NOW - timedelta(minutes=10), NOW))
        # an item published "tomorrow" is ignored; the feed's own poll decides
        conn.execute("insert into raw.rss_episodes (tenant_id, feed_url, guid, guid_source, published_at, content_hash) "
                     "values ('north', 'https://a/feed', 'g1', 'guid', %s, 'x')", (NOW + timedelta(days=1),))
        conn.execute("insert into ops.listener_log_files (file_key, tenant_id, log_date, format, size_bytes, sha256, "
                     "rows_loaded, rows_quarantined) values ('north/f.log', 'north', '2026-11-05', 'clf', 1, 'x', 3, 0),"
                     " ('south/f.log', 'south', '2026-11-05', 'clf', 1, 'y', 1, 0)")
        _listener(conn, "north", 1, NOW - timedelta(minutes=45))
        _listener(conn, "north", 2, NOW - timedelta(minutes=20))
        _listener(conn, "north", 3, NOW + timedelta(days=2))             # future-dated: ignored
        _listener(conn, "south", 1, NOW + FUTURE_TOLERANCE / 2)         # within the tolerance: counts
        conn.execute("insert into quarantine.listener_events (tenant_id, file_key, line_no, reason_code) "
                     "values ('north', 'north/f.log', 9, 'unparseable')")
        conn.execute(
            "insert into raw.attribution_events (tenant_id, source, event_id, occurred_at, sponsor_id, event_type) "
            "values ('north', 'pixel', 'e1', %s, 'sp', 'purchase'), ('north', 'pixel', 'e2', %s, 'sp', 'purchase'), "
            "('south', 'shop_orders', 'o1', %s, 'sp', 'order')",
            (NOW - timedelta(hours=5), NOW + timedelta(hours=1), NOW - timedelta(days=1)))
        conn.execute("insert into raw.sponsors (tenant_id, sponsor_id, name, updated_at, _source) "
                     "values ('north', 'sp', 'Acme', %s, 'api')", (NOW - timedelta(days=4),))
        conn.execute(
            "insert into raw.spotify_show_metrics_daily (tenant_id, show_id, metric_date, starts, streams, listeners, "
            "followers) values ('north', 's1', '2026-11-03', 1, 1, 1, 1), ('north', 's1', '2026-11-05', 1, 1, 1, 1), "
            "('north', 's1', '2026-11-09', 1, 1, 1, 1)")
        newest = newest_event_times(conn, now=NOW)

    assert newest == {
        ("rss", "north"): NOW - timedelta(hours=2),                    # the last poll the host answered
        ("listener_logs", "north"): NOW - timedelta(minutes=20),
        ("listener_logs", "south"): NOW + FUTURE_TOLERANCE / 2,
        ("conversions", "north"): NOW - timedelta(hours=5),
        ("conversions", "south"): NOW - timedelta(days=1),
        ("sponsorships", "north"): NOW - timedelta(days=4),
        ("spotify", "north"): NOW,                                     # today's partial day counts up to now
    }
    assert ("rss", "south") not in newest                              # its only poll failed
    lags = freshness_seconds(newest, now=NOW)
    assert lags[("rss", "north")] == 7200 and lags[("listener_logs", "south")] == 0


def test_metric_day_counts_to_its_end(fresh_db):
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("insert into raw.buzzsprout_episode_downloads_daily (tenant_id, podcast_id, episode_id, "
                     "download_date, downloads) values ('north', 'p1', 'e1', '2026-11-03', 5)")
        newest = newest_event_times(conn, now=NOW)
    assert newest == {("buzzsprout", "north"): datetime(2026, 11, 4, tzinfo=timezone.utc)}


def test_empty_warehouse_and_table_sources():
    assert source_of("rss_feed_fetches") == "rss" and source_of("listener_events") == "listener_logs"
    assert source_of("megaphone_episode_metrics_daily") == "megaphone" and source_of("placements") == "sponsorships"
    assert source_of("user_agent_patterns") is None


def test_nothing_stored_means_no_entry(fresh_db):
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        assert newest_event_times(conn, now=NOW) == {}

"""Freshness of each source in the data's own time: the newest ACCEPTED event per (source, tenant).

"Accepted" means stored in a raw table (quarantined records never count), and "event time" is
the time the data itself carries, not when it was loaded:

| source | event time | table(s) |
|---|---|---|
| `rss` | the newest poll the host answered (200 or 304: the feed's content is known as of then), or a newer item publication time | `raw.rss_feed_fetches`, `raw.rss_episodes.published_at` |
| `listener_logs` | the newest request in the access logs | `raw.listener_events.event_time` |
| `conversions` | the newest order, pixel hit or vanity visit | `raw.attribution_events.occurred_at` |
| `sponsorships` | the newest change the sponsorship API reports (`updated_at`; insertion-order rows, which carry none, count from their load) | `raw.sponsors`, `raw.campaigns`, `raw.placements` |
| `<platform>` | the end of the newest metric day (today's partial day counts up to now), or a newer episode publication | each platform's daily tables and episode catalog |

Times beyond now + `PODCAST_FUTURE_TOLERANCE` (default `FUTURE_TOLERANCE`, the loaders'
quarantine bound too) are ignored (a clock-skewed or planted future row must not
make a source look fresh). Freshness is then `now - newest`. `user_agent_patterns` is reference
data without an event time and has no entry.
"""

from datetime import date, datetime, time, timedelta, timezone

from psycopg import sql

from resources.settings import get_settings

FUTURE_TOLERANCE = timedelta(minutes=5)  # the default of PODCAST_FUTURE_TOLERANCE

# source -> [(table, event-time column, kind)]; kind "time" is a timestamptz, "day" a metric date
# whose data is complete at the end of that day, "date" a publication date (its start counts).
PLATFORM_TABLES: dict[str, list[tuple[str, str, str]]] = {
    "buzzsprout": [("buzzsprout_episode_downloads_daily", "download_date", "day"),
                   ("buzzsprout_episodes", "published_at", "time")],
    "transistor": [("transistor_episode_downloads_daily", "download_date", "day"),
                   ("transistor_episodes", "published_at", "time")],
    "podbean": [("podbean_episode_downloads_daily", "download_date", "day"),
                ("podbean_episodes", "published_at", "time")],
    "simplecast": [("simplecast_episode_downloads_daily", "download_date", "day"),
                   ("simplecast_episodes", "published_at", "time")],
    "spotify": [("spotify_episode_metrics_daily", "metric_date", "day"),
                ("spotify_show_metrics_daily", "metric_date", "day"),
                ("spotify_episodes", "release_date", "date")],
    "apple": [("apple_episode_metrics_daily", "metric_date", "day"),
              ("apple_show_followers_daily", "metric_date", "day"),
              ("apple_episodes", "released_at", "time")],
    "megaphone": [("megaphone_episode_metrics_daily", "metric_date", "day"),
                  ("megaphone_episodes", "published_at", "time")],
}
SPONSORSHIP_TABLES = ("sponsors", "campaigns", "placements")

# raw table -> source, for callers that report per raw asset.
TABLE_SOURCES: dict[str, str] = {
    "rss_feed_fetches": "rss", "rss_podcasts": "rss", "rss_episodes": "rss",
    "listener_events": "listener_logs", "attribution_events": "conversions",
    **{t: "sponsorships" for t in SPONSORSHIP_TABLES},
}


def source_of(table: str) -> str | None:
    """The source a raw table's freshness is measured on (`buzzsprout_episodes` -> buzzsprout), or
    None for a table without event time (user-agent patterns)."""
    if table in TABLE_SOURCES:
        return TABLE_SOURCES[table]
    platform = table.split("_", 1)[0]
    return platform if platform in PLATFORM_TABLES else None


def _present(conn) -> set[str]:
    return {r[0] for r in conn.execute("select table_name from information_schema.tables where table_schema = 'raw'")}


def _keep(out: dict, source: str, tenant: str, when: datetime | None) -> None:
    if when is None:
        return
    when = when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)
    key = (source, tenant)
    if key not in out or when > out[key]:
        out[key] = when


def _day_end(day: date, now: datetime) -> datetime:
    """A metric day's data is complete at the end of that day; today's counts up to now."""
    return min(datetime.combine(day + timedelta(days=1), time.min, tzinfo=timezone.utc), now)


def _tenants(conn, table: str) -> list[str]:
    """The tenants of a table whose primary key leads with tenant_id, by a skip scan of that index
    (a handful of index probes instead of reading the table)."""
    query = sql.SQL(
        "with recursive t(tenant_id) as ("
        " (select tenant_id from {table} order by tenant_id limit 1)"
        " union all"
        " select (select tenant_id from {table} where tenant_id > t.tenant_id order by tenant_id limit 1)"
        " from t where t.tenant_id is not null)"
        " select tenant_id from t where tenant_id is not null").format(table=sql.Identifier("raw", table))
    return [r[0] for r in conn.execute(query)]


def _newest_per_tenant(conn, table: str, column: str, tenants: list[str], limit) -> dict[str, object]:
    """Newest value of an indexed time column per tenant, not beyond `limit`: one backward index
    scan per tenant."""
    query = sql.SQL("select {col} from {table} where tenant_id = %s and {col} <= %s "
                    "order by {col} desc limit 1").format(col=sql.Identifier(column),
                                                          table=sql.Identifier("raw", table))
    out = {}
    for tenant in tenants:
        row = conn.execute(query, (tenant, limit)).fetchone()
        if row is not None:
            out[tenant] = row[0]
    return out


def newest_event_times(conn, now: datetime | None = None) -> dict[tuple[str, str], datetime]:
    """(source, tenant) -> the newest accepted event time of that source for that tenant (UTC).

    `conn` is a psycopg 3 connection to the warehouse; tables that do not exist yet are skipped.
    Sources without any accepted event for a tenant have no entry."""
    now = datetime.now(timezone.utc) if now is None else now
    limit = now + get_settings().future_tolerance_delta()
    present = _present(conn)
    out: dict[tuple[str, str], datetime] = {}

    if "rss_feed_fetches" in present:
        for tenant, when in conn.execute(
                "select tenant_id, max(fetched_at) from raw.rss_feed_fetches "
                "where outcome in ('fetched', 'not_modified') and fetched_at <= %s group by 1", (limit,)):
            _keep(out, "rss", tenant, when)
    if "rss_episodes" in present:
        for tenant, when in conn.execute(
                "select tenant_id, max(published_at) from raw.rss_episodes where published_at <= %s group by 1",
                (limit,)):
            _keep(out, "rss", tenant, when)

    if "listener_events" in present:
        # The load ledger names the tenants; the event_time index finds each one's newest request.
        tenants = [r[0] for r in conn.execute("select distinct tenant_id from ops.listener_log_files")] \
            if _ops_present(conn, "listener_log_files") else []
        for tenant, when in _newest_per_tenant(conn, "listener_events", "event_time", tenants, limit).items():
            _keep(out, "listener_logs", tenant, when)

    if "attribution_events" in present:
        tenants = _tenants(conn, "attribution_events")
        for tenant, when in _newest_per_tenant(conn, "attribution_events", "occurred_at", tenants, limit).items():
            _keep(out, "conversions", tenant, when)

    for table in SPONSORSHIP_TABLES:
        if table in present:
            query = sql.SQL("select tenant_id, max(coalesce(updated_at, _ingested_at)) from {} "
                            "where coalesce(updated_at, _ingested_at) <= %s group by 1").format(
                sql.Identifier("raw", table))
            for tenant, when in conn.execute(query, (limit,)):
                _keep(out, "sponsorships", tenant, when)

    today = now.astimezone(timezone.utc).date()
    for platform, tables in PLATFORM_TABLES.items():
        for table, column, kind in tables:
            if table not in present:
                continue
            query = sql.SQL("select tenant_id, max({col}) from {table} where {col} <= %s group by 1").format(
                col=sql.Identifier(column), table=sql.Identifier("raw", table))
            for tenant, value in conn.execute(query, (limit if kind == "time" else today,)):
                if value is None:
                    continue
                if kind == "day":
                    value = _day_end(value, now)
                elif kind == "date":
                    value = datetime.combine(value, time.min, tzinfo=timezone.utc)
                _keep(out, platform, tenant, value)
    return out


def _ops_present(conn, table: str) -> bool:
    return conn.execute("select to_regclass(%s) is not null", (f"ops.{table}",)).fetchone()[0]


def freshness_seconds(newest: dict[tuple[str, str], datetime], now: datetime | None = None
                      ) -> dict[tuple[str, str], float]:
    """(source, tenant) -> seconds since the newest accepted event (never negative)."""
    now = datetime.now(timezone.utc) if now is None else now
    return {key: max(0.0, (now - when).total_seconds()) for key, when in newest.items()}

"""Which days of the daily-partitioned dbt models a change of their inputs left out of date, and
the sensor that requests them (docs/PARTITIONED_DBT.md).

- **Log files.** The loader's ledger (`ops.listener_log_files`) records, with each change of a
  file (a load, a load of other content, an emptying, a removal), the span of the events it
  added or removed (`changed_from`/`changed_to`). Those days are out of date, and the days a
  download window reaches across: the day before each (a window opened then has requests on
  it) and the day after (its windows start from this day's, int_download_windows), or
  `iab_max_window_days` for last-touch windows. A file committed late, a day reloaded weeks
  later: the days requested are the days its events are on, whatever its name or load day.
- **Episode sizes.** An episode whose size changed (`int_media_sizes.sized_at`) was measured
  against the old one on every day it has windows on (int_downloads_iab_filtered's episode
  index tells which).
- **Placements and detected ads.** A placement entered or edited, or a read detected in an episode
  placing an ad sold without an offset (`int_placement_episodes.loaded_at`), changes the exposures
  of every day that episode has windows on; promo codes or vanity URLs detected for a campaign
  naming none (`int_campaign_match_keys.detected_at`) change the matches of its conversions from
  the flight's start to the end of its window (up to the newest conversion).
- **Conversions.** Conversion events stored or changed (`raw.attribution_events._ingested_at`)
  change their day's credits, and a changed download day changes the exposures credited on the
  `attribution_max_window_days` after it, up to the newest conversion (a day after it has no
  conversion to credit; one stored later requests its own day): those days run the attribution
  models alone.
- **Days the request retention deleted.** A changed day whose day before the retention deleted
  from the request-level tables runs from the first stored request to the first kept day: its
  windows start from that day's, which only the raw events still hold.
- **Days after the data.** A window opens on a day with a request, so the days a change reaches
  stop at the newest request or the last day the change touched, whichever is later: a log
  file of today does not run the empty partitions up to `iab_max_window_days` ahead.

Contiguous days become one run of the `dbt_partitioned` job over that range (the models'
backfill policy is a single run). The sensor's first tick only sets its watermarks: what was
loaded before it (a first load, the demo) was built by the run that loaded it; an existing
warehouse moving to partitions is rebuilt once by `podcast-analytics backfill --full-refresh`. The cursor holds two watermarks and the ledger rows seen in
the last minutes (a row committed late, with an older `loaded_at`, is still picked up): its size
does not grow with the files.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime, timedelta

import dagster as dg

from assets.dbt import DBT_PARTITIONS, attribution_lookback_days, build_partitioned_dbt_assets, window_reach_days
from pipelines.jobs import dbt_partitioned_job
from pipelines.rules import RANGE_END, RANGE_START
from resources.request_retention import first_request_day, request_horizons
from resources.warehouse import WarehouseResource

# How far back a tick looks again for ledger rows committed after a later one was seen.
COMMIT_SLACK = timedelta(minutes=10)


def day_ranges(days: set[date]) -> list[tuple[date, date]]:
    """Contiguous runs of days, first and last of each."""
    ranges: list[tuple[date, date]] = []
    for day in sorted(days):
        if ranges and day == ranges[-1][1] + timedelta(days=1):
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return ranges


def affected_days(first: datetime, last: datetime, reach: int) -> set[date]:
    """The days whose partitions read events of [first, last]."""
    low = first.date() - timedelta(days=max(reach, 0))
    high = last.date() + timedelta(days=max(reach, 0))
    return {low + timedelta(days=n) for n in range((high - low).days + 1)}


def out_of_date(conn, cursor: dict, reach: int) -> tuple[set[date], set[date], dict]:
    """The days whose downloads changed since the cursor, the days whose conversions changed,
    and the cursor after them."""
    through = datetime.fromisoformat(cursor["ledger_through"]) if cursor.get("ledger_through") else None
    if through is None:  # a first tick reads the last minutes of the ledger only (its index on loaded_at)
        through = conn.execute("select max(loaded_at) from ops.listener_log_files").fetchone()[0]
    seen = {tuple(item) for item in cursor.get("ledger_recent", [])}
    rows = conn.execute(
        "select file_key, loaded_at, changed_from, changed_to from ops.listener_log_files "
        "where %s::timestamptz is null or loaded_at > %s::timestamptz - %s::interval order by loaded_at",
        (through, through, COMMIT_SLACK),
    ).fetchall()
    days: set[date] = set()
    newest = through
    recent = []
    changed_through = None
    for file_key, loaded_at, changed_from, changed_to in rows:
        key = (file_key, loaded_at.isoformat())
        newest = loaded_at if newest is None or loaded_at > newest else newest
        recent.append(key)
        if key in seen or changed_from is None or not cursor:  # a first tick only starts the watermarks
            continue
        days |= affected_days(changed_from, changed_to, reach)
        changed_through = max(changed_through or changed_to, changed_to)
    if days:
        # A window opens on a day with a request: a day after the newest request and after every
        # day the changes touched had no download before them and has none after them.
        last_request = conn.execute("select max(event_time) from raw.listener_events").fetchone()[0]
        bound = max(moment for moment in (last_request, changed_through) if moment is not None)
        days = {day for day in days if day <= _day(bound)}
    # Episodes measured anew (int_media_sizes.sized_at): measured against the old size on every day
    # they have windows on. Ads placed anew: a placement entered or edited, or a detected read
    # placing one sold without an offset (int_placement_episodes.loaded_at, the newest of the
    # placement, its campaign and the slot): the exposures of every day the episode has windows on.
    sized_through, placed_through = cursor.get("sized_through"), cursor.get("placed_through")
    newest_size, sized_days = _episodes_changed(conn, "intermediate.int_media_sizes", "sized_at", sized_through)
    newest_placed, placed_days = _episodes_changed(conn, "intermediate.int_placement_episodes", "loaded_at",
                                                   placed_through)
    days |= sized_days | placed_days
    # Promo codes and vanity URLs detected anew for a campaign naming none
    # (int_campaign_match_keys.detected_at): its conversions from the flight's start to the end of
    # its window are matched again. So are those of a campaign whose placed episode was detected
    # again (its `loaded_at` holds the episode's last detection): a key read there may be gone.
    keys_through = cursor.get("keys_through")
    newest_keys = None
    keyed_days: set[date] = set()
    if placed_through is not None and newest_placed is not None:
        keyed_days = _flight_days(conn, "intermediate.int_placement_episodes", "loaded_at", placed_through)
    if _exists(conn, "intermediate.int_campaign_match_keys"):
        # (none detected yet: every key detected from now on is new)
        newest_keys = conn.execute("select coalesce(max(detected_at), '1970-01-01 00:00+00') "
                                   "from intermediate.int_campaign_match_keys").fetchone()[0]
        if keys_through is not None:
            keyed_days |= _flight_days(conn, "intermediate.int_campaign_match_keys", "detected_at", keys_through)
    # Conversion events stored or changed since the last tick (an order edited, refunded): their
    # days, by load batch; a batch committed late (an older `_ingested_at`) is seen within the
    # slack, and the batches of the last minutes are kept so that none is taken twice.
    events_through = cursor.get("events_through")
    events_seen = set(cursor.get("events_recent", []))
    conversion_days: set[date] = set()
    # A first tick reads the last minutes only (the index on _ingested_at), not every event.
    since = events_through or conn.execute("select max(_ingested_at) from raw.attribution_events").fetchone()[0]
    batches = conn.execute(
        "select coalesce(_batch_id, ''), max(_ingested_at), array_agg(distinct (occurred_at at time zone 'UTC')::date) "
        "from raw.attribution_events where %s::timestamptz is null or _ingested_at > %s::timestamptz - %s::interval "
        "group by 1", (since, since, COMMIT_SLACK)).fetchall()
    newest_event = max((at for _, at, _ in batches), default=None)
    if events_through is not None:
        newest_event = max(newest_event, datetime.fromisoformat(events_through)) if newest_event else \
            datetime.fromisoformat(events_through)
    for batch, _, batch_days in batches:
        if events_through is not None and batch not in events_seen:  # a first tick only starts the watermark
            conversion_days |= set(batch_days)
    if keyed_days:  # up to the newest conversion: a later day has none to match
        newest_conversion = conn.execute("select max(occurred_at) from raw.attribution_events").fetchone()[0]
        conversion_days |= {day for day in keyed_days if newest_conversion and day <= _day(newest_conversion)}
    event_cutoff = newest_event - COMMIT_SLACK if newest_event is not None else None
    cutoff = newest - COMMIT_SLACK if newest is not None else None
    return days, conversion_days, {
        "ledger_through": newest.isoformat() if newest is not None else None,
        "ledger_recent": [list(key) for key in recent if cutoff is None or datetime.fromisoformat(key[1]) > cutoff],
        "sized_through": newest_size.isoformat() if newest_size is not None else sized_through,
        "placed_through": newest_placed.isoformat() if newest_placed is not None else placed_through,
        "keys_through": newest_keys.isoformat() if newest_keys is not None else keys_through,
        "events_through": newest_event.isoformat() if newest_event is not None else None,
        "events_recent": sorted(batch for batch, at, _ in batches if event_cutoff is None or at > event_cutoff),
    }


def _episodes_changed(conn, table: str, stamp: str, through: str | None) -> tuple[datetime | None, set[date]]:
    """The newest `stamp` of `table` (episode rows), and the days the episodes stamped after
    `through` have download windows on (none on a first tick, which only starts the watermark)."""
    if not (_exists(conn, table) and _exists(conn, "intermediate.int_downloads_iab_filtered")):
        return None, set()
    newest = conn.execute(f"select max({stamp}) from {table}").fetchone()[0]  # noqa: S608 (fixed names)
    if through is None:
        return newest, set()
    return newest, {day for day, in conn.execute(
        "select distinct window_date from intermediate.int_downloads_iab_filtered where episode_id in ("  # noqa: S608
        f"  select episode_id from {table} where {stamp} > %s::timestamptz)", (through,)).fetchall()}


def _flight_days(conn, table: str, stamp: str, through: str) -> set[date]:
    """The conversion days (flight start to the end of its attribution window) of the campaigns
    with a row of `table` stamped after `through`."""
    return {day for day, in conn.execute(
        "select distinct generate_series(c.flight_start, c.flight_end + c.attribution_window_days, "  # noqa: S608
        f"interval '1 day')::date from raw.campaigns as c join {table} as k "
        f"using (tenant_id, campaign_id) where k.{stamp} > %s::timestamptz", (through,)).fetchall()}


def _day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def last_conversion_day(conn) -> date | None:
    """The day of the newest stored conversion event (its index on occurred_at)."""
    newest = conn.execute("select max(occurred_at) from raw.attribution_events").fetchone()[0]
    return _day(newest) if newest is not None else None


def retention_bounds(conn) -> tuple[date, date] | None:
    """When the request retention deleted days: the day of the first stored request and the first
    day every request-level table keeps (partition_requests)."""
    horizons = request_horizons(conn)
    if not horizons:
        return None
    kept_from = max(horizons.values())
    return first_request_day(conn) or kept_from, kept_from


def _exists(conn, relation: str) -> bool:
    return conn.execute("select to_regclass(%s) is not null", (relation,)).fetchone()[0]


def partition_requests(days: set[date], conversion_days: set[date] = frozenset(), lookback: int = 0,
                       credit_keys: list[dg.AssetKey] | None = None, run_key_salt: str = "",
                       last_conversion_day: date | None = None,
                       retention: tuple[date, date] | None = None) -> list[dg.RunRequest]:
    """One run of the partitioned dbt models per contiguous range of existing partitions whose
    downloads changed; then, for the days only credits reach (a conversion's day and the
    `lookback` days of conversions its changed exposures or visits are credited to, up to the
    newest conversion: a day after it has no conversion to credit, and a conversion stored later
    requests its own day), runs of the attribution models alone.

    `retention` (the day of the first stored request, the first day every request-level table
    keeps) is given when the request retention deleted days: a changed day whose day before is
    deleted cannot be rebuilt from the request-level rows (the run would be refused,
    resources/request_retention.py), so its run starts at the first stored request and reaches
    the first kept day, reading every deleted day from the raw events again."""
    first = date.fromisoformat(DBT_PARTITIONS.get_first_partition_key())
    last = date.fromisoformat(DBT_PARTITIONS.get_last_partition_key())

    def existing(candidates: set[date]) -> set[date]:
        return {day for day in candidates if first <= day <= last}

    days = existing(days)
    if retention is not None:
        first_request, kept_from = retention
        before = [day for day in days if day - timedelta(days=1) < kept_from]
        if before:
            start, end = min(first_request, *before), max(kept_from, *before)
            days |= existing({start + timedelta(days=n) for n in range((end - start).days + 1)})
    credit_days = existing({day + timedelta(days=n) for day in days | set(conversion_days)
                            for n in range(lookback + 1)}) - days
    if last_conversion_day is not None:
        credit_days = {day for day in credit_days if day <= last_conversion_day}
    requests = []
    for selection, chosen in ((None, days), (credit_keys, credit_days)):
        if selection is not None and not selection:
            continue
        for low, high in day_ranges(chosen):
            key = hashlib.sha256(json.dumps([sorted(map(str, chosen)), run_key_salt]).encode()).hexdigest()[:16]
            requests.append(dg.RunRequest(
                run_key=f"days:{key}:{low}:{high}", asset_selection=selection,
                tags={RANGE_START: low.isoformat(), RANGE_END: high.isoformat(),
                      "requested_by": "changed days" if selection is None else "changed credits"},
            ))
    return requests


# The attribution models a day's changed conversions (or the exposures before them) reach.
CREDIT_MODELS = ("int_conversions", "int_household_exclusions", "fct_attributed_conversions",
                 "fct_campaign_credits_daily")


@dg.sensor(job=dbt_partitioned_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Requests the daily-partitioned dbt models for the days a log file's change (load, "
                       "reload, emptying, removal), an episode's new size, a placement placed anew (entered, "
                       "edited, or located by a detected read) or a campaign's detected codes left out of date.")
def dbt_partitions_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
    cursor = json.loads(context.cursor) if context.cursor else {}
    with warehouse.connect(autocommit=True) as conn:
        days, conversion_days, after = out_of_date(conn, cursor, window_reach_days())
        last_conversion = (last_conversion_day(conn) or date.min) if days or conversion_days else None
        retention = retention_bounds(conn) if days else None
    context.update_cursor(json.dumps(after))
    first = date.fromisoformat(DBT_PARTITIONS.get_first_partition_key())
    early = sorted(day for day in days if day < first)
    if early:
        context.log.warning(
            f"changed events on {len(early)} day(s) before the first partition {first} ({early[0]}..{early[-1]}) "
            f"have no partition to rebuild: set PODCAST_HISTORY_START on or before {early[0]}, or rebuild the "
            "partitioned models in full (`podcast-analytics backfill --full-refresh`)")
    credit_keys = [key for key in build_partitioned_dbt_assets().keys if key.path[-1] in CREDIT_MODELS]
    requests = partition_requests(days, conversion_days, attribution_lookback_days(), credit_keys,
                                  run_key_salt=after.get("events_through") or "", last_conversion_day=last_conversion,
                                  retention=retention)
    return requests or dg.SkipReason("no day of the partitioned dbt models changed")

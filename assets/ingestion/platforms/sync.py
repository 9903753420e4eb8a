"""Sync hosting-platform APIs into `raw.<platform>_*`: pages fetched, validated, upserted.

Every unit of work (a page of episodes, a day of Buzzsprout downloads, a page of a Transistor
analytics window) is written in one transaction together with the stream's cursor in
`ops.platform_sync_cursors`. An interrupted sync therefore resumes after the last unit it
stored, and a repeated unit changes nothing (upserts only touch rows whose values differ).

Credentials are read from the environment variables that `sources.yaml` names; they travel
only in request headers.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from importlib import resources as importlib_resources
from pathlib import Path
from typing import Any

import psycopg
import yaml
from psycopg import sql
from pydantic import BaseModel, Field

from assets.ingestion.platforms.buzzsprout import BuzzsproutClient, buzzsprout_api
from assets.ingestion.platforms.transistor import TransistorClient, parse_date, transistor_api
from resources.platform_http import ApiClient, ApiPolicy, credential_from_env

# -- configuration (the `platforms:` section of sources.yaml) -------------------------------


class BuzzsproutShow(BaseModel):
    tenant_id: str
    podcast_id: str
    token_env: str


class TransistorShow(BaseModel):
    tenant_id: str
    show_id: str
    api_key_env: str


class PlatformConfig(BaseModel):
    base_url: str
    lookback_days: int = 3
    timeout_seconds: float | None = None
    max_attempts: int | None = None
    wait_initial_seconds: float | None = None
    max_bytes: int | None = None
    concurrency: int | None = None
    rate_limit_requests: int | None = None
    rate_limit_seconds: float | None = None


class BuzzsproutConfig(PlatformConfig):
    base_url: str = "https://www.buzzsprout.com/api"
    shows: list[BuzzsproutShow] = Field(default_factory=list)


class TransistorConfig(PlatformConfig):
    base_url: str = "https://api.transistor.fm/v1"
    rate_limit_requests: int | None = 10
    rate_limit_seconds: float | None = 10.0
    chunk_days: int = 14
    per_page: int = 100
    shows: list[TransistorShow] = Field(default_factory=list)


class PlatformSources(BaseModel):
    allow_private_hosts: bool = False
    buzzsprout: BuzzsproutConfig | None = None
    transistor: TransistorConfig | None = None


def load_platform_sources(path: Path) -> PlatformSources:
    document = yaml.safe_load(path.read_text()) if path.exists() else None
    return PlatformSources.model_validate((document or {}).get("platforms") or {})


def policy_for(config: PlatformConfig, sources: PlatformSources) -> ApiPolicy:
    overrides = {
        k: getattr(config, k)
        for k in ("timeout_seconds", "max_attempts", "wait_initial_seconds", "max_bytes", "concurrency",
                  "rate_limit_requests", "rate_limit_seconds")
        if getattr(config, k) is not None
    }
    return ApiPolicy(allow_private_hosts=sources.allow_private_hosts, **overrides)


# -- results --------------------------------------------------------------------------------


@dataclass
class SyncStats:
    units: int = 0
    resumed: int = 0
    not_modified: int = 0
    rows_written: Counter = field(default_factory=Counter)
    rows_seen: Counter = field(default_factory=Counter)
    quarantined: Counter = field(default_factory=Counter)
    failed_sources: dict[str, str] = field(default_factory=dict)
    requests: int = 0
    retries: Counter = field(default_factory=Counter)

    def merge(self, other: SyncStats) -> None:
        self.units += other.units
        self.resumed += other.resumed
        self.not_modified += other.not_modified
        self.rows_written.update(other.rows_written)
        self.rows_seen.update(other.rows_seen)
        self.quarantined.update(other.quarantined)
        self.failed_sources.update(other.failed_sources)

    def as_metadata(self) -> dict[str, Any]:
        return {
            "units_synced": self.units, "units_resumed_from_cursor": self.resumed,
            "not_modified": self.not_modified, "rows_seen": dict(self.rows_seen),
            "rows_inserted_or_changed": dict(self.rows_written), "quarantined_by_reason": dict(self.quarantined),
            "failed_sources": dict(self.failed_sources), "requests": self.requests, "retries_by_reason": dict(self.retries),
        }


# A hook called after each stored unit (tests use it to interrupt a sync half-way).
Checkpoint = Callable[[str, dict[str, Any]], None]


def _noop(stream: str, cursor: dict[str, Any]) -> None:
    return None


# -- validation (pure) ----------------------------------------------------------------------


@dataclass
class Rejected:
    record_key: str
    reason_code: str
    detail: str
    payload: Any
    record_date: date | None = None


def _int_or_none(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _count(value: Any) -> int | None:
    """A download count: a non-negative integer (JSON numbers only)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def buzzsprout_episode_rows(items: list[Any]) -> tuple[list[dict[str, Any]], list[Rejected]]:
    rows, rejected = [], []
    for position, item in enumerate(items):
        episode_id = _int_or_none(item.get("id")) if isinstance(item, dict) else None
        if episode_id is None:
            rejected.append(Rejected(f"#{position}", "missing_episode_id", "episode without an id", item))
            continue
        rows.append({
            "episode_id": str(episode_id), "guid": item.get("guid"), "title": item.get("title"),
            "audio_url": item.get("audio_url"), "published_at": _timestamp(item.get("published_at")),
            "duration_seconds": _int_or_none(item.get("duration")), "episode_number": _int_or_none(item.get("episode_number")),
            "season_number": _int_or_none(item.get("season_number")), "payload": item,
        })
    return rows, rejected


def buzzsprout_download_rows(day: date, items: list[Any]) -> tuple[list[dict[str, Any]], list[Rejected]]:
    rows, rejected = [], []
    for position, item in enumerate(items):
        if not isinstance(item, dict):
            rejected.append(Rejected(f"{day}#{position}", "not_an_object", "download entry is not an object", item, day))
            continue
        episode_id = _int_or_none(item.get("episode_id"))
        total = _count(item.get("total"))
        if episode_id is None:
            rejected.append(Rejected(f"{day}#{position}", "missing_episode_id", "download total without an episode id", item, day))
        elif total is None:
            rejected.append(Rejected(f"{day}#{episode_id}", "invalid_download_count", f"total {item.get('total')!r}", item, day))
        else:
            rows.append({"episode_id": str(episode_id), "download_date": day, "downloads": total})
    return rows, rejected


def transistor_episode_rows(resources: list[Any]) -> tuple[list[dict[str, Any]], list[Rejected]]:
    rows, rejected = [], []
    for position, item in enumerate(resources):
        if not isinstance(item, dict) or not item.get("id") or item.get("type") != "episode":
            rejected.append(Rejected(f"#{position}:{(item or {}).get('id') if isinstance(item, dict) else ''}",
                                     "not_an_episode", "resource without id or of another type", item))
            continue
        a = item.get("attributes") or {}
        rows.append({
            "episode_id": str(item["id"]), "guid": a.get("guid"), "title": a.get("title"), "media_url": a.get("media_url"),
            "status": a.get("status"), "published_at": _timestamp(a.get("published_at")),
            "duration_seconds": _int_or_none(a.get("duration")), "episode_number": _int_or_none(a.get("number")),
            "season_number": _int_or_none(a.get("season")), "payload": item,
        })
    return rows, rejected


def transistor_download_rows(
    episodes: list[Any], start: date, end: date
) -> tuple[list[dict[str, Any]], list[Rejected]]:
    rows, rejected = [], []
    for item in episodes:
        episode_id = str(item.get("id") or "") if isinstance(item, dict) else ""
        if not episode_id:
            rejected.append(Rejected(f"{start}..{end}", "missing_episode_id", "analytics without an episode id", item))
            continue
        for point in item.get("downloads") or []:
            raw_date = point.get("date") if isinstance(point, dict) else None
            try:
                day = parse_date(raw_date)
            except (TypeError, ValueError):
                rejected.append(Rejected(f"{episode_id}@{raw_date}", "invalid_date", "date is not dd-mm-yyyy", point))
                continue
            if not start <= day <= end:
                rejected.append(Rejected(f"{episode_id}@{day}", "date_outside_window", f"{day} not in {start}..{end}", point, day))
                continue
            count = _count(point.get("downloads"))
            if count is None:
                rejected.append(Rejected(f"{episode_id}@{day}", "invalid_download_count",
                                         f"downloads {point.get('downloads')!r}", point, day))
                continue
            rows.append({"episode_id": episode_id, "download_date": day, "downloads": count})
    return rows, rejected


# -- storage --------------------------------------------------------------------------------

TABLES: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    # stream -> (table, key columns after tenant/source, value columns)
    "buzzsprout_episodes": ("raw.buzzsprout_episodes", ("episode_id",), (
        "guid", "title", "audio_url", "published_at", "duration_seconds", "episode_number", "season_number", "payload")),
    "buzzsprout_downloads": ("raw.buzzsprout_episode_downloads_daily", ("episode_id", "download_date"), ("downloads",)),
    "transistor_episodes": ("raw.transistor_episodes", ("episode_id",), (
        "guid", "title", "media_url", "status", "published_at", "duration_seconds", "episode_number", "season_number",
        "payload")),
    "transistor_downloads": ("raw.transistor_episode_downloads_daily", ("episode_id", "download_date"), ("downloads",)),
}
SOURCE_COLUMN = {"buzzsprout": "podcast_id", "transistor": "show_id"}


def _upsert_sql(stream: str) -> tuple[sql.Composed, tuple[str, ...]]:
    """Insert, or update a row whose values differ (an unchanged row keeps its version)."""
    table, keys, values = TABLES[stream]
    source_column = SOURCE_COLUMN[stream.split("_", 1)[0]]
    columns = ("tenant_id", source_column, *keys, *values, "_batch_id")

    def names(cols) -> sql.Composed:
        return sql.SQL(", ").join(map(sql.Identifier, cols))

    statement = sql.SQL(
        "insert into {table} as t ({columns}) values ({placeholders}) on conflict ({keys}) "
        "do update set {assignments}, _ingested_at = now() where {changed}"
    ).format(
        table=sql.Identifier(*table.split(".")),
        columns=names(columns),
        placeholders=sql.SQL(", ").join([sql.Placeholder()] * len(columns)),
        keys=names(("tenant_id", source_column, *keys)),
        assignments=sql.SQL(", ").join(
            sql.SQL("{c} = excluded.{c}").format(c=sql.Identifier(c)) for c in (*values, "_batch_id")),
        changed=sql.SQL(" or ").join(
            sql.SQL("t.{c} is distinct from excluded.{c}").format(c=sql.Identifier(c)) for c in values),
    )
    return statement, columns


def ensure_platform_tables(url: str) -> None:
    """Create the platform tables (resources/sql/platforms.sql) if they are missing."""
    ddl = importlib_resources.files("resources").joinpath("sql/platforms.sql").read_text()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("select pg_advisory_lock(hashtext('podcast_analytics.bootstrap'))")
        try:
            conn.execute(ddl)
        finally:
            conn.execute("select pg_advisory_unlock(hashtext('podcast_analytics.bootstrap'))")


def read_cursor(conn: psycopg.Connection, platform: str, tenant_id: str, source_id: str, stream: str) -> dict[str, Any] | None:
    row = conn.execute(
        "select cursor from ops.platform_sync_cursors where platform = %s and tenant_id = %s and source_id = %s "
        "and stream = %s", (platform, tenant_id, source_id, stream),
    ).fetchone()
    return row[0] if row else None


@dataclass
class Unit:
    """What one page/day of a stream stores, with the cursor that marks it done."""

    platform: str
    stream: str
    tenant_id: str
    source_id: str
    rows: list[dict[str, Any]]
    rejected: list[Rejected]
    cursor: dict[str, Any]


def store_unit(url: str, unit: Unit, batch_id: str, stats: SyncStats) -> None:
    """Upsert a unit's rows, quarantine its rejects and move the cursor, in one transaction."""
    statement, columns = _upsert_sql(unit.stream)
    cursor_stream = unit.stream.split("_", 1)[1]
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        written = 0
        for row in unit.rows:
            record = {**row, "tenant_id": unit.tenant_id, SOURCE_COLUMN[unit.platform]: unit.source_id, "_batch_id": batch_id}
            cur.execute(statement, tuple(
                json.dumps(record[c]) if c == "payload" else record[c] for c in columns))
            written += cur.rowcount
        cur.executemany(
            "insert into quarantine.platform_records (platform, tenant_id, source_id, stream, record_key, "
            "reason_code, record_date, detail, payload, _batch_id) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "on conflict (platform, tenant_id, source_id, stream, record_key, reason_code) do update set "
            "detail = excluded.detail, payload = excluded.payload "
            "where quarantine.platform_records.payload is distinct from excluded.payload",
            [(unit.platform, unit.tenant_id, unit.source_id, cursor_stream, r.record_key, r.reason_code, r.record_date,
              r.detail, json.dumps(r.payload, default=str), batch_id) for r in unit.rejected],
        )
        cur.execute(
            "insert into ops.platform_sync_cursors (platform, tenant_id, source_id, stream, cursor, _batch_id) "
            "values (%s, %s, %s, %s, %s, %s) on conflict (platform, tenant_id, source_id, stream) do update set "
            "cursor = excluded.cursor, updated_at = now(), _batch_id = excluded._batch_id",
            (unit.platform, unit.tenant_id, unit.source_id, cursor_stream, json.dumps(unit.cursor), batch_id),
        )
        conn.commit()
    stats.units += 1
    stats.rows_seen[unit.stream] += len(unit.rows)
    stats.rows_written[unit.stream] += written
    for r in unit.rejected:
        stats.quarantined[f"{unit.stream}:{r.reason_code}"] += 1


# -- the streams ----------------------------------------------------------------------------


def _days(start: date, end: date) -> Iterator[date]:
    day = start
    while day <= end:
        yield day
        day += timedelta(days=1)


def _resume_point(previous: dict[str, Any] | None, sync_id: str, window: list[str] | None = None) -> str | dict[str, Any] | None:
    """Where a stream starts: "done" when this very sync already finished it (a retried run),
    the previous cursor when a sync of the same window stopped part-way (resume there), else
    None (start at the beginning: a new sync re-reads the whole window, restatements included)."""
    if not previous or previous.get("window") != window:
        return None
    if previous.get("complete"):
        return "done" if previous.get("sync_id") == sync_id else None
    return previous


def sync_buzzsprout_show(
    url: str, show: BuzzsproutShow, client: BuzzsproutClient, start: date | None, end: date | None,
    batch_id: str, stats: SyncStats, checkpoint: Checkpoint, episodes: bool = True, sync_id: str | None = None,
) -> None:
    sync_id = sync_id or batch_id
    with psycopg.connect(url) as conn:
        episodes_cursor = read_cursor(conn, "buzzsprout", show.tenant_id, show.podcast_id, "episodes")
        downloads_cursor = read_cursor(conn, "buzzsprout", show.tenant_id, show.podcast_id, "downloads")
    etag = (episodes_cursor or {}).get("etag")
    response = client.episodes(etag) if episodes else None
    if response is None:
        pass
    elif response.not_modified:
        stats.not_modified += 1
    else:
        rows, rejected = buzzsprout_episode_rows(response.data)
        unit = Unit("buzzsprout", "buzzsprout_episodes", show.tenant_id, show.podcast_id, rows, rejected,
                    {"etag": response.etag, "sync_id": sync_id, "complete": True})
        store_unit(url, unit, batch_id, stats)
        checkpoint("buzzsprout_episodes", unit.cursor)
    if start is None or end is None:
        return
    window = [start.isoformat(), end.isoformat()]
    resume = _resume_point(downloads_cursor, sync_id, window)
    if resume == "done":
        return
    first = date.fromisoformat(resume["next_date"]) if resume else start
    stats.resumed += bool(resume)
    for day in _days(first, end):
        rows, rejected = buzzsprout_download_rows(day, client.daily_downloads(day))
        next_day = day + timedelta(days=1)
        cursor = {"window": window, "sync_id": sync_id, "next_date": next_day.isoformat(), "complete": next_day > end}
        store_unit(url, Unit("buzzsprout", "buzzsprout_downloads", show.tenant_id, show.podcast_id, rows, rejected, cursor),
                   batch_id, stats)
        checkpoint("buzzsprout_downloads", cursor)


def sync_transistor_show(
    url: str, show: TransistorShow, client: TransistorClient, start: date | None, end: date | None,
    chunk_days: int, batch_id: str, stats: SyncStats, checkpoint: Checkpoint, episodes: bool = True,
    sync_id: str | None = None,
) -> None:
    sync_id = sync_id or batch_id
    with psycopg.connect(url) as conn:
        episodes_cursor = read_cursor(conn, "transistor", show.tenant_id, show.show_id, "episodes")
        downloads_cursor = read_cursor(conn, "transistor", show.tenant_id, show.show_id, "downloads")
    resume_episodes = _resume_point(episodes_cursor, sync_id)
    if resume_episodes == "done":
        episodes = False
    stats.resumed += bool(resume_episodes and episodes)
    first_page = resume_episodes["next_page"] if isinstance(resume_episodes, dict) else 1
    for page, resources, next_page in client.episodes(first_page) if episodes else ():
        rows, rejected = transistor_episode_rows(resources)
        cursor = {"window": None, "sync_id": sync_id, "next_page": next_page, "complete": next_page is None}
        store_unit(url, Unit("transistor", "transistor_episodes", show.tenant_id, show.show_id, rows, rejected, cursor),
                   batch_id, stats)
        checkpoint("transistor_episodes", cursor)
    if start is None or end is None:
        return
    window = [start.isoformat(), end.isoformat()]
    resume = _resume_point(downloads_cursor, sync_id, window)
    if resume == "done":
        return
    stats.resumed += bool(resume)
    chunk_start = date.fromisoformat(resume["chunk_start"]) if resume else start
    page = resume["next_page"] if resume else 1
    while chunk_start <= end:
        chunk_end = min(end, chunk_start + timedelta(days=chunk_days - 1))
        for _, episodes, next_page in client.episode_downloads(chunk_start, chunk_end, page):
            rows, rejected = transistor_download_rows(episodes, chunk_start, chunk_end)
            next_chunk = chunk_end + timedelta(days=1)
            cursor = {"window": window, "sync_id": sync_id,
                      "chunk_start": (chunk_start if next_page else next_chunk).isoformat(),
                      "next_page": next_page or 1, "complete": next_page is None and next_chunk > end}
            store_unit(url, Unit("transistor", "transistor_downloads", show.tenant_id, show.show_id, rows, rejected,
                                 cursor), batch_id, stats)
            checkpoint("transistor_downloads", cursor)
        chunk_start, page = chunk_end + timedelta(days=1), 1


def sync_platform(
    url: str, sources: PlatformSources, platform: str, batch_id: str, start: date | None = None,
    end: date | None = None, checkpoint: Checkpoint = _noop, environ: dict[str, str] | None = None,
    raise_errors: bool = False, episodes: bool = True, sync_id: str | None = None,
) -> SyncStats:
    """Sync one platform's configured shows: episodes (unless `episodes` is false), and daily
    downloads of [start, end] when a window is given.

    `sync_id` names the logical sync (a Dagster run and its re-executions share one): a stream
    this sync already finished is skipped, one that stopped part-way resumes at its cursor.

    Shows run concurrently (bounded by the policy's concurrency); shows sharing a credential
    share one client, so its rate limit covers the whole account."""
    config = getattr(sources, platform)
    stats = SyncStats()
    ensure_platform_tables(url)
    if config is None or not config.shows:
        return stats
    policy = policy_for(config, sources)
    clients: dict[str, ApiClient] = {}
    jobs: list[Callable[[SyncStats], None]] = []
    for show in config.shows:
        if platform == "buzzsprout":
            env = show.token_env
            if env not in clients:
                clients[env] = buzzsprout_api(config.base_url, credential_from_env(env, environ), policy)
            bz = BuzzsproutClient(clients[env], show.podcast_id)
            jobs.append(lambda s, show=show, bz=bz: sync_buzzsprout_show(
                url, show, bz, start, end, batch_id, s, checkpoint, episodes, sync_id))
        else:
            env = show.api_key_env
            if env not in clients:
                clients[env] = transistor_api(config.base_url, credential_from_env(env, environ), policy)
            tr = TransistorClient(clients[env], show.show_id, config.per_page)
            jobs.append(lambda s, show=show, tr=tr: sync_transistor_show(
                url, show, tr, start, end, config.chunk_days, batch_id, s, checkpoint, episodes, sync_id))

    def run(job: Callable[[SyncStats], None]) -> tuple[SyncStats, Exception | None]:
        local = SyncStats()
        try:
            job(local)
        except Exception as exc:  # noqa: BLE001 (one show's failure must not lose the others' work)
            return local, exc
        return local, None

    try:
        with ThreadPoolExecutor(policy.concurrency, f"{platform}-sync") as pool:
            outcomes = list(pool.map(run, jobs))
        errors = []
        for show, (local, exc) in zip(config.shows, outcomes):
            stats.merge(local)  # what a failed show stored before it failed is stored for good
            if exc is not None:
                source_id = getattr(show, "podcast_id", None) or getattr(show, "show_id")
                stats.failed_sources[f"{show.tenant_id}/{source_id}"] = f"{type(exc).__name__}: {exc}"
                errors.append(exc)
        if errors and raise_errors:
            raise errors[0]
    finally:
        for client in clients.values():
            stats.requests += client.stats.requests
            stats.retries.update(client.stats.retry_reasons)
            client.close()
    return stats

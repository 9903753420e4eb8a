"""What every platform sync shares: configuration, validation helpers, units of work stored
with their cursor, and the `Platform` base class a platform module implements.

Every unit of work (a page of episodes, a day of downloads, a page of an analytics window) is
written in one transaction together with its stream's cursor in `ops.platform_sync_cursors`.
An interrupted sync therefore resumes after the last unit it stored, and a repeated unit
changes nothing: a unit's rows are COPied into a temporary table and merged with one statement
that inserts new keys and updates only rows whose values differ (an unchanged row keeps its
version).

Units other than a stream's last commit asynchronously (`synchronous_commit = off`): should the
database server crash, it may lose the latest units, but always with their cursor, so the sync
reads them again; the unit that completes a stream commits durably, and with it all before it.
"""

from __future__ import annotations

import functools
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, ClassVar

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb
from pydantic import BaseModel

from resources.identifiers import TenantId
from resources.settings import get_settings
from resources.platform_http import ApiClient, ApiPolicy
from resources.warehouse import WarehouseResource

# -- configuration --------------------------------------------------------------------------


class ShowConfig(BaseModel):
    """One show (podcast) of one tenant on a platform; `source_id` is the platform's id. A
    tenant id that is not a plain identifier (`resources.identifiers`) is a config error."""

    tenant_id: TenantId

    @property
    def source_id(self) -> str:
        raise NotImplementedError

    @property
    def credential_envs(self) -> tuple[str, ...]:
        """Environment variables holding this show's account credentials (clients are shared
        per account, so one account's rate limit covers all its shows)."""
        raise NotImplementedError


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


def policy_for(config: PlatformConfig, allow_private_hosts: bool) -> ApiPolicy:
    overrides = {
        k: getattr(config, k)
        for k in ("timeout_seconds", "max_attempts", "wait_initial_seconds", "max_bytes", "concurrency",
                  "rate_limit_requests", "rate_limit_seconds")
        if getattr(config, k) is not None
    }
    return ApiPolicy(allow_private_hosts=allow_private_hosts, **overrides)


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
    show_seconds: float = 0.0      # the shows' syncs, summed over shows (run side by side)
    store_seconds: float = 0.0     # inside `ShowSync.store` (COPY, merge, quarantine, cursor, commit)
    network_seconds: float = 0.0   # inside HTTP exchanges (`ApiStats.network_seconds` of the clients)
    wait_seconds: float = 0.0      # pacing and retry back-off (`ApiStats`)

    def merge(self, other: SyncStats) -> None:
        self.units += other.units
        self.show_seconds += other.show_seconds
        self.store_seconds += other.store_seconds
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
            "network_seconds": round(self.network_seconds, 2), "store_seconds": round(self.store_seconds, 2),
            "wait_seconds": round(self.wait_seconds, 2),
        }


# A hook called after each stored unit (tests use it to interrupt a sync half-way).
Checkpoint = Callable[[str, dict[str, Any]], None]


def no_checkpoint(stream: str, cursor: dict[str, Any]) -> None:
    return None


# -- validation (pure) ----------------------------------------------------------------------


@dataclass
class Rejected:
    record_key: str
    reason_code: str
    detail: str
    payload: Any
    record_date: date | None = None


def int_or_none(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def count(value: Any) -> int | None:
    """A count: a non-negative integer (JSON numbers only)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def days(start: date, end: date) -> Iterator[date]:
    day = start
    while day <= end:
        yield day
        day += timedelta(days=1)


# -- storage --------------------------------------------------------------------------------


# Columns every platform table has besides the stream's own; the warehouse fills in the first
# two (`_ingested_at` by its default and the merge, `_source` by its default: the platform).
META_COLUMNS = ("_ingested_at", "_source", "_batch_id")
FILLED_BY_WAREHOUSE = frozenset({"_ingested_at", "_source"})


@dataclass(frozen=True)
class Stream:
    """One entity of a platform, stored in `raw.<table>` and upserted on its natural key
    (tenant, the platform's show id column, `keys`). `daily` streams hold metrics per day: their
    asset is daily-partitioned and a run re-reads the platform's look-back window.

    Its `keys` and `values` declare the table's columns once (`raw_columns`): the merge, the
    quality suite (pipelines/checks/quality.py) and the dbt source read them from here."""

    name: str
    table: str
    keys: tuple[str, ...]
    values: tuple[str, ...]
    daily: bool = False
    description: str = ""

    @property
    def qualified_table(self) -> sql.Identifier:
        return sql.Identifier("raw", self.table)

    def raw_columns(self, source_column: str) -> tuple[str, ...]:
        """Every column of `raw.<table>`: tenant, the platform's show id, keys, values, then the
        load's own."""
        return ("tenant_id", source_column, *self.keys, *self.values, *META_COLUMNS)


def _names(cols) -> sql.Composed:
    return sql.SQL(", ").join(map(sql.Identifier, cols))


STAGE_TRUNCATE_ROWS = 5000  # dead rows a stage table may hold before it is truncated


@dataclass(frozen=True)
class MergeSql:
    """The statements that store a unit of a stream: a session-long temporary table, emptied
    before each unit (by `delete`, the cheapest, and by `truncate` now and then, since nothing
    vacuums a temporary table), the COPY into it, and the merge from it into the raw table."""

    columns: tuple[str, ...]
    keys: tuple[str, ...]
    create_stage: sql.Composed
    delete_stage: sql.Composed
    truncate_stage: sql.Composed
    copy: sql.Composed
    merge: sql.Composed


@functools.cache
def merge_sql(stream: Stream, source_column: str) -> MergeSql:
    """Insert new keys, update a row only where its values differ (an unchanged row keeps its
    version, and the merge's row count is the rows inserted or changed)."""
    columns = tuple(c for c in stream.raw_columns(source_column) if c not in FILLED_BY_WAREHOUSE)
    keys = ("tenant_id", source_column, *stream.keys)
    stage = sql.Identifier(f"stage_{stream.table}")
    return MergeSql(
        columns=columns,
        keys=keys,
        create_stage=sql.SQL(
            "create temporary table if not exists {stage} as select {columns} from {table} with no data"
        ).format(stage=stage, columns=_names(columns), table=stream.qualified_table),
        delete_stage=sql.SQL("delete from pg_temp.{stage}").format(stage=stage),
        truncate_stage=sql.SQL("truncate pg_temp.{stage}").format(stage=stage),
        copy=sql.SQL("copy pg_temp.{stage} ({columns}) from stdin").format(stage=stage, columns=_names(columns)),
        merge=sql.SQL(
            "insert into {table} as t ({columns}) select {columns} from pg_temp.{stage} on conflict ({keys}) "
            "do update set {assignments}, _ingested_at = now() where {changed}"
        ).format(
            table=stream.qualified_table,
            columns=_names(columns),
            stage=stage,
            keys=_names(keys),
            assignments=sql.SQL(", ").join(
                sql.SQL("{c} = excluded.{c}").format(c=sql.Identifier(c)) for c in (*stream.values, "_batch_id")),
            changed=sql.SQL(" or ").join(
                sql.SQL("t.{c} is distinct from excluded.{c}").format(c=sql.Identifier(c)) for c in stream.values),
        ),
    )


def read_cursor(conn: psycopg.Connection, platform: str, tenant_id: str, source_id: str, stream: str) -> dict[str, Any] | None:
    row = conn.execute(
        "select cursor from ops.platform_sync_cursors where platform = %s and tenant_id = %s and source_id = %s "
        "and stream = %s", (platform, tenant_id, source_id, stream),
    ).fetchone()
    return row[0] if row else None


def resume_point(previous: dict[str, Any] | None, sync_id: str, window: list[str] | None = None) -> str | dict[str, Any] | None:
    """Where a stream starts: "done" when this very sync already finished it (a retried run),
    the previous cursor when a sync of the same window stopped part-way (resume there), else
    None (start at the beginning: a new sync re-reads the whole window, restatements included)."""
    if not previous or previous.get("window") != window:
        return None
    if previous.get("complete"):
        return "done" if previous.get("sync_id") == sync_id else None
    return previous


# -- one show's sync ------------------------------------------------------------------------


@dataclass
class ShowSync:
    """Everything a platform needs to sync one show: where to store, what to fetch, and the
    window of daily metrics (None: the catalog streams only)."""

    platform: Platform
    warehouse: WarehouseResource
    config: PlatformConfig
    show: ShowConfig
    client: Any
    streams: frozenset[str]
    start: date | None
    end: date | None
    batch_id: str
    sync_id: str
    stats: SyncStats
    checkpoint: Checkpoint
    # The show's own connection (opened on first use, autocommit; stores run in explicit
    # transactions) and, per stream whose stage table it holds, the rows deleted from that
    # table since it was last truncated.
    _conn: psycopg.Connection | None = field(default=None, repr=False)
    _staged: dict[str, int] = field(default_factory=dict, repr=False)
    # The load's time (default: the clock when the first unit is stored): a metric day after the
    # day of this plus `PODCAST_FUTURE_TOLERANCE` is quarantined as `future_timestamp`.
    now: datetime | None = None

    def connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = self.warehouse.open(autocommit=True)
            self._staged = {}
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def wants(self, stream: str) -> bool:
        return stream in self.streams and (not self.platform.stream(stream).daily or self.window is not None)

    @property
    def window(self) -> list[str] | None:
        return None if self.start is None or self.end is None else [self.start.isoformat(), self.end.isoformat()]

    def cursor(self, stream: str) -> dict[str, Any] | None:
        return read_cursor(self.connection(), self.platform.name, self.show.tenant_id, self.show.source_id, stream)

    def resume(self, stream: str) -> str | dict[str, Any] | None:
        """`resume_point` of a stream for this sync (daily streams are keyed by their window)."""
        window = self.window if self.platform.stream(stream).daily else None
        return resume_point(self.cursor(stream), self.sync_id, window)

    def store(self, stream: str, rows: list[dict[str, Any]], rejected: list[Rejected], cursor: dict[str, Any]) -> None:
        """Merge a unit's rows (COPY into a temporary table, one insert ... on conflict from it),
        quarantine its rejects and move the cursor, in one transaction; then call the checkpoint
        hook. A key repeated within the unit is stored once, with its last values.

        A row holding a NUL character (PostgreSQL text and jsonb refuse it) would fail the whole
        unit: when the database refuses a unit's characters, its rows with a NUL are quarantined
        (`invalid_text`) and the unit is stored again without them. A metric day later than the
        load's day (`now` plus the tolerance, UTC) is quarantined as `future_timestamp`."""
        rows, rejected = self._without_future_days(stream, rows, rejected)
        try:
            self._store(stream, rows, rejected, cursor)
        except psycopg.DataError:
            spec = self.platform.stream(stream)
            clean = [row for row in rows if not _holds_nul(row)]
            if len(clean) == len(rows):
                raise
            refused = [Rejected("/".join(str(row.get(k)) for k in spec.keys), "invalid_text",
                                "a value holds a NUL character", row,
                                next((v for v in row.values() if type(v) is date), None))
                       for row in rows if _holds_nul(row)]
            self._store(stream, clean, [*rejected, *refused], cursor)

    def _without_future_days(self, stream: str, rows: list[dict[str, Any]], rejected: list[Rejected]
                             ) -> tuple[list[dict[str, Any]], list[Rejected]]:
        spec = self.platform.stream(stream)
        if not spec.daily or not rows:
            return rows, rejected
        if self.now is None:
            self.now = datetime.now(timezone.utc)
        last_day = get_settings().latest_event_time(self.now).astimezone(timezone.utc).date()
        day_of = lambda row: next((row[k] for k in spec.keys if type(row.get(k)) is date), None)  # noqa: E731
        future = [row for row in rows if (day_of(row) or last_day) > last_day]
        if not future:
            return rows, rejected
        refused = [Rejected("/".join(str(row.get(k)) for k in spec.keys), "future_timestamp",
                            f"metrics of {day_of(row).isoformat()}, after the load's day ({last_day.isoformat()})",
                            row, day_of(row)) for row in future]
        return [row for row in rows if (day_of(row) or last_day) <= last_day], [*rejected, *refused]

    def _store(self, stream: str, rows: list[dict[str, Any]], rejected: list[Rejected], cursor: dict[str, Any]) -> None:
        started = time.perf_counter()
        spec = self.platform.stream(stream)
        statements = merge_sql(spec, self.platform.source_column)
        tenant_id, source_id = self.show.tenant_id, self.show.source_id
        fixed = {"tenant_id": tenant_id, self.platform.source_column: source_id, "_batch_id": self.batch_id}
        unique: dict[tuple, tuple] = {}
        for row in rows:
            record = {**row, **fixed}
            unique[tuple(record[c] for c in statements.keys)] = tuple(
                Jsonb(record[c]) if c == "payload" else record[c] for c in statements.columns)
        conn = self.connection()
        if unique and stream not in self._staged:
            conn.execute(statements.create_stage)
            self._staged[stream] = 0
        truncate = self._staged.get(stream, 0) >= STAGE_TRUNCATE_ROWS
        with conn.transaction(), conn.cursor() as cur:
            durability = sql.SQL("set local synchronous_commit = {}").format(
                sql.SQL("on" if cursor.get("complete") else "off"))
            written = 0
            if unique:
                clear = statements.truncate_stage if truncate else statements.delete_stage
                cur.execute(sql.SQL("; ").join([durability, clear]))
                with cur.copy(statements.copy) as copy:
                    for values in unique.values():
                        copy.write_row(values)
                cur.execute(statements.merge)
                written = cur.rowcount
            else:
                cur.execute(durability)
            if rejected:
                cur.executemany(
                    "insert into quarantine.platform_records (platform, tenant_id, source_id, stream, record_key, "
                    "reason_code, record_date, detail, payload, _batch_id) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, "
                    "%s) on conflict (platform, tenant_id, source_id, stream, record_key, reason_code) do update set "
                    "detail = excluded.detail, payload = excluded.payload "
                    "where quarantine.platform_records.payload is distinct from excluded.payload",
                    [(self.platform.name, tenant_id, source_id, stream, r.record_key, r.reason_code, r.record_date,
                      r.detail, _evidence(r.payload), self.batch_id) for r in rejected],
                )
            cur.execute(
                "insert into ops.platform_sync_cursors (platform, tenant_id, source_id, stream, cursor, _batch_id) "
                "values (%s, %s, %s, %s, %s, %s) on conflict (platform, tenant_id, source_id, stream) do update set "
                "cursor = excluded.cursor, updated_at = now(), _batch_id = excluded._batch_id",
                (self.platform.name, tenant_id, source_id, stream, json.dumps(cursor), self.batch_id),
            )
        if unique:
            self._staged[stream] = len(unique) if truncate else self._staged[stream] + len(unique)
        key = f"{self.platform.name}_{stream}"
        self.stats.store_seconds += time.perf_counter() - started
        self.stats.units += 1
        self.stats.rows_seen[key] += len(rows)
        self.stats.rows_written[key] += written
        for r in rejected:
            self.stats.quarantined[f"{key}:{r.reason_code}"] += 1
        self.checkpoint(key, cursor)


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(_holds_nul(v) for v in value)
    return False


def _evidence(payload: Any) -> str:
    """A quarantined record as JSON that jsonb accepts: NUL characters shown as U+FFFD."""
    return json.dumps(payload, default=str).replace("\\u0000", "\\ufffd")


class Platform:
    """A platform module's description of itself: its configuration, streams and sync."""

    name: ClassVar[str]
    source_column: ClassVar[str]          # the column holding the platform's show id
    config_model: ClassVar[type[PlatformConfig]]
    streams: ClassVar[tuple[Stream, ...]]

    def stream(self, name: str) -> Stream:
        return next(s for s in self.streams if s.name == name)

    def raw_columns(self) -> dict[str, tuple[str, ...]]:
        """Each stream's raw table and its columns (`Stream.raw_columns`)."""
        return {s.table: s.raw_columns(self.source_column) for s in self.streams}

    def open_api(self, config: PlatformConfig, show: ShowConfig, policy: ApiPolicy,
                 environ: dict[str, str] | None) -> ApiClient:
        """An API client authenticated as the show's account."""
        raise NotImplementedError

    def client(self, api: ApiClient, show: ShowConfig, config: PlatformConfig) -> Any:
        """The platform client of one show over the account's shared API client."""
        raise NotImplementedError

    def sync_show(self, job: ShowSync) -> None:
        raise NotImplementedError

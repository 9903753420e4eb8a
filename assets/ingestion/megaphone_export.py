"""Megaphone-style daily delivery exports into `raw.megaphone_episode_metrics_daily`.

Megaphone has no metrics API: it drops one gzipped JSON-lines file per network and UTC day into
object storage (any fsspec URL; a local folder by default), one record per request, and writes
`_finalized_delivery-v2_<YYYY-MM-DD>_<timestamp>` once the day's files are complete. Layout:
`<root>/<tenant>/<network id>/delivery-v2-day-<YYYY-MM-DD>[-<part>].json[l].gz`.

A day is read only once its marker exists, streamed line by line (memory follows the day's
episodes and distinct listeners, never the file size; a line over `MAX_LINE_BYTES` is
quarantined as `record_too_large` without being held), validated, and aggregated per episode:
downloads (requests Megaphone did not blacklist), unique listeners (distinct IP + user agent,
kept only as keyed digests), blacklisted requests, bytes and seconds downloaded. Bad lines go to
`quarantine.platform_records` with their reason (the client IP blanked out). A day is written
in one transaction: upserts that leave unchanged rows alone, rows of episodes gone from the
files deleted, the day's quarantine replaced, and the files' checksums in
`ops.megaphone_export_files`. A day whose files have the checksums of the ledger is not loaded
again; a day whose files changed is loaded again in full. A (tenant, network, day) is the unit
that fails: one whose folder names are not identifiers (`resources.identifiers`), whose files
cannot be read or that the database refuses fails the run with its key, after the others are
loaded.
"""

import gzip
import hashlib
import json
import re
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import dagster as dg
import fsspec
import psycopg
from psycopg import sql

from assets.ingestion.conversions import bounded_lines
from assets.ingestion.identity import checked_hash_secret
from resources.identifiers import InvalidIdentifier, validate_identifier
from assets.run_tags import source_job
from resources.settings import get_settings
from resources.warehouse import WarehouseResource

METRIC_TYPE = "delivery-v2"
EXPORT_FILE = re.compile(rf"^{METRIC_TYPE}-day-(\d{{4}}-\d{{2}}-\d{{2}})(?:-[\w.-]+)?\.jsonl?\.gz$")
MARKER_FILE = re.compile(rf"^_finalized_{METRIC_TYPE}_(\d{{4}}-\d{{2}}-\d{{2}})_\w+$")
IP_FIELD = re.compile(r'("ip"\s*:\s*")[^"]*')
QUARANTINE_BATCH = 1000
MAX_LINE_BYTES = 1 << 20
STREAM = "episode_metrics"
MEGAPHONE_KEY = dg.AssetKey(["raw", "megaphone_episode_metrics_daily"])
MEGAPHONE_PARTITIONS = dg.DailyPartitionsDefinition(start_date="2026-09-01", end_offset=1)


# -- discovery ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportFile:
    path: str       # in the filesystem's own terms
    relative: str   # under the export root: the ledger's key
    size: int
    version: str    # what the store says identifies this version (ETag, md5, or size + mtime)
    modified: float | None = None  # when the store last wrote it (epoch seconds), where it says


@dataclass
class ExportDay:
    tenant_id: str
    network_id: str
    day: date
    files: list[ExportFile] = field(default_factory=list)
    finalized: bool = False

    @property
    def key(self) -> str:
        return f"{self.tenant_id}/{self.network_id}/{self.day.isoformat()}"

    @property
    def fingerprint(self) -> str:
        listing = sorted((f.relative, f.size, f.version) for f in self.files)
        return hashlib.sha256(json.dumps(listing).encode()).hexdigest()[:24]


def export_filesystem(url: str, storage_options: dict[str, Any] | None = None) -> tuple[fsspec.AbstractFileSystem, str]:
    fs, root = fsspec.core.url_to_fs(url, **(storage_options or {}))
    return fs, root.rstrip("/")


def _version(info: dict[str, Any]) -> str:
    for key in ("ETag", "etag", "md5", "md5Hash", "content_md5"):
        if info.get(key):
            return str(info[key])
    stamp = info.get("mtime") or info.get("LastModified") or info.get("last_modified") or info.get("created")
    return f"{info.get('size')}:{stamp}"


def _modified(info: dict[str, Any]) -> float | None:
    """The store's modification time as epoch seconds (local `mtime`, S3 `LastModified`, GCS `updated`)."""
    stamp = info.get("mtime") or info.get("LastModified") or info.get("last_modified") or info.get("updated")
    if isinstance(stamp, (int, float)):
        return float(stamp)
    if isinstance(stamp, datetime):
        return stamp.timestamp()
    if isinstance(stamp, str):
        try:
            return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


def scan_exports(fs: fsspec.AbstractFileSystem, root: str) -> list[ExportDay]:
    """Every (tenant, network, day) with export files under `root`, finalized or not."""
    if not fs.exists(root):
        return []
    days: dict[tuple[str, str, date], ExportDay] = {}
    for path, info in sorted(fs.find(root, detail=True).items()):
        relative = path[len(root):].lstrip("/")
        parts = relative.split("/")
        if len(parts) != 3 or parts[0].startswith(".") or parts[1].startswith("."):
            continue
        tenant_id, network_id, name = parts
        data, marker = EXPORT_FILE.match(name), MARKER_FILE.match(name)
        match = data or marker
        if match is None:
            continue
        try:
            day = date.fromisoformat(match.group(1))
        except ValueError:
            continue
        entry = days.setdefault((tenant_id, network_id, day), ExportDay(tenant_id, network_id, day))
        if marker:
            entry.finalized = True
        else:
            entry.files.append(ExportFile(path, relative, int(info.get("size") or 0), _version(info), _modified(info)))
    return [d for _, d in sorted(days.items()) if d.files]


# -- parsing and validation (pure) ----------------------------------------------------------


class UnreadableFile(Exception):
    """A finalized export file that cannot be read to its end (not gzip, or cut short)."""


def iter_lines(fs: fsspec.AbstractFileSystem, path: str) -> Iterator[tuple[int, str | None]]:
    """(line number, text) of each non-blank line; text None: the line is over `MAX_LINE_BYTES`."""
    try:
        with fs.open(path, "rb") as raw, gzip.open(raw, "rb") as stream:
            for line_no, line, _ in bounded_lines(stream, MAX_LINE_BYTES):
                if line is None:
                    yield line_no, None
                elif line.strip():
                    yield line_no, line.decode("utf-8", errors="replace").rstrip("\r\n")
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise UnreadableFile(f"{path}: {exc}") from exc


def file_sha256(fs: fsspec.AbstractFileSystem, path: str) -> str:
    digest = hashlib.sha256()
    with fs.open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class Delivery:
    podcast_id: str
    episode_id: str
    counted: bool
    listener: bytes
    bytes_sent: int
    seconds_downloaded: int


def _amount(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        return None
    return int(value)


def parse_delivery(line: str | None, day: date, listener_key: bytes,
                   latest: datetime | None = None) -> Delivery | tuple[str, str]:
    """A valid delivery record of `day`, or (reason code, detail). `line` None: a line too long.
    A record created after `latest` (the load's time plus `PODCAST_FUTURE_TOLERANCE`) is
    `future_timestamp`: a clock that ran ahead, not a delivery that happened."""
    if line is None:
        return "record_too_large", f"line over {MAX_LINE_BYTES} bytes"
    try:
        record = json.loads(line)
    except ValueError as exc:
        return "not_json", f"line is not JSON ({exc.msg})"
    except RecursionError:
        return "not_json", "line is nested deeper than the parser goes"
    if not isinstance(record, dict):
        return "not_json", "line is not a JSON object"
    podcast_id, episode_id = record.get("podcast_id"), record.get("episode_id")
    if not (isinstance(episode_id, str) and episode_id and isinstance(podcast_id, str) and podcast_id):
        return "missing_episode_id", "record without podcast_id or episode_id"
    if "\x00" in podcast_id or "\x00" in episode_id:
        return "invalid_text", "podcast_id or episode_id contains a NUL byte"
    created = record.get("created_at")
    try:
        moment = datetime.fromisoformat(created.replace("Z", "+00:00")) if isinstance(created, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        return "invalid_timestamp", f"created_at {created!r}"
    if moment.date() != day:
        return "date_outside_day", f"created_at {created} is not on {day}"
    if latest is not None and moment > latest:
        return "future_timestamp", f"created_at {created} is after the load's time plus tolerance ({latest.isoformat()})"
    amounts = {k: _amount(record.get(k, 0)) for k in ("bytes_sent", "seconds_downloaded")}
    bad = [k for k, v in amounts.items() if v is None]
    if bad:
        return "invalid_number", ", ".join(f"{k} {record.get(k)!r}" for k in bad)
    flags = [record.get("blacklisted_ip", False), record.get("blacklisted_ua", False)]
    if not all(isinstance(f, bool) for f in flags):
        return "invalid_flag", f"blacklisted_ip {flags[0]!r}, blacklisted_ua {flags[1]!r}"
    who = f"{record.get('ip') or ''}\x00{record.get('user_agent') or ''}".encode()
    return Delivery(podcast_id, episode_id, not any(flags), hashlib.blake2b(who, digest_size=8, key=listener_key).digest(),
                    amounts["bytes_sent"], amounts["seconds_downloaded"])


@dataclass
class EpisodeDay:
    podcast_id: str
    downloads: int = 0
    blacklisted_requests: int = 0
    bytes_sent: int = 0
    seconds_downloaded: int = 0
    listeners: set[bytes] = field(default_factory=set)

    def add(self, d: Delivery) -> None:
        if not d.counted:
            self.blacklisted_requests += 1
            return
        self.downloads += 1
        self.bytes_sent += d.bytes_sent
        self.seconds_downloaded += d.seconds_downloaded
        self.listeners.add(d.listener)


def redact(line: str, limit: int = 2000) -> str:
    """A quarantined line without its client address (cut to `limit` characters, NUL characters
    shown as U+FFFD: PostgreSQL text refuses them)."""
    return IP_FIELD.sub(r"\1", (line or "")[:limit]).replace("\x00", "\ufffd")


# -- loading --------------------------------------------------------------------------------


@dataclass
class DayLoad:
    key: str
    status: str  # loaded | unchanged
    records: int = 0
    rows_written: int = 0
    rows_deleted: int = 0
    quarantined: Counter = field(default_factory=Counter)


# The columns of the raw table this asset writes, declared here once: the upsert below, the
# quality suite (pipelines/checks/quality.py) and the dbt source read them, and
# tests/test_raw_columns.py holds the warehouse's table and dbt's source to them.
RAW_COLUMNS = {
    "megaphone_episode_metrics_daily": (
        "tenant_id", "network_id", "podcast_id", "episode_id", "metric_date", "downloads", "unique_listeners",
        "blacklisted_requests", "bytes_sent", "seconds_downloaded", "_ingested_at", "_source", "_batch_id",
    ),
}
METRICS_KEY = ("tenant_id", "network_id", "episode_id", "metric_date")
# Filled in the warehouse: the load time (its default, and the upsert on a change) and `_source`.
NOT_STAGED = frozenset({"_ingested_at", "_source"})
METRICS_COLUMNS = tuple(c for c in RAW_COLUMNS["megaphone_episode_metrics_daily"] if c not in NOT_STAGED)
_METRICS_VALUES = tuple(c for c in METRICS_COLUMNS if c not in METRICS_KEY and c != "_batch_id")


def _names(columns: tuple[str, ...], prefix: str | None = None) -> sql.Composed:
    return sql.SQL(", ").join(sql.Identifier(*filter(None, (prefix, c))) for c in columns)


# A day's row per episode, rewritten only when its numbers changed.
UPSERT = sql.SQL(
    "insert into raw.megaphone_episode_metrics_daily as t ({columns}) values ({values}) "
    "on conflict ({key}) do update set {assignments}, _ingested_at = now() "
    "where ({old}) is distinct from ({new})"
).format(
    columns=_names(METRICS_COLUMNS), values=sql.SQL(", ").join(map(sql.Placeholder, METRICS_COLUMNS)),
    key=_names(METRICS_KEY),
    assignments=sql.SQL(", ").join(sql.SQL("{c} = excluded.{c}").format(c=sql.Identifier(c))
                                   for c in (*_METRICS_VALUES, "_batch_id")),
    old=_names(_METRICS_VALUES, "t"), new=_names(_METRICS_VALUES, "excluded"),
)
QUARANTINE = """
insert into quarantine.platform_records (platform, tenant_id, source_id, stream, record_key, reason_code, record_date,
    detail, payload, _batch_id)
values ('megaphone', %s, %s, %s, %s, %s, %s, %s, %s, %s)
on conflict (platform, tenant_id, source_id, stream, record_key, reason_code) do nothing
"""


def load_export_day(conn: psycopg.Connection, fs: fsspec.AbstractFileSystem, export: ExportDay, batch_id: str,
                    listener_key: bytes = b"megaphone", latest: datetime | None = None) -> DayLoad:
    """Load one finalized (tenant, network, day) unless the ledger holds its files' checksums."""
    checksums = {f.relative: file_sha256(fs, f.path) for f in export.files}
    ledger = dict(conn.execute(
        "select file_path, sha256 from ops.megaphone_export_files where tenant_id = %s and network_id = %s "
        "and export_date = %s", (export.tenant_id, export.network_id, export.day)).fetchall())
    if ledger == checksums:
        return DayLoad(export.key, "unchanged")
    result = DayLoad(export.key, "loaded")
    episodes: dict[str, EpisodeDay] = {}
    tenant, network, day = export.tenant_id, export.network_id, export.day
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("delete from quarantine.platform_records where platform = 'megaphone' and tenant_id = %s "
                    "and source_id = %s and stream = %s and record_date = %s", (tenant, network, STREAM, day))
        for export_file in export.files:
            name = export_file.relative.rsplit("/", 1)[-1]
            pending: list[tuple] = []
            records = bad = 0
            for line_no, line in iter_lines(fs, export_file.path):
                records += 1
                parsed = parse_delivery(line, day, listener_key, latest)
                if isinstance(parsed, Delivery):
                    episodes.setdefault(parsed.episode_id, EpisodeDay(parsed.podcast_id)).add(parsed)
                    continue
                reason, detail = parsed
                bad += 1
                result.quarantined[reason] += 1
                pending.append((tenant, network, STREAM, f"{name}:{line_no}", reason, day, detail,
                                json.dumps({"line": redact(line)}), batch_id))
                if len(pending) >= QUARANTINE_BATCH:
                    cur.executemany(QUARANTINE, pending)
                    pending.clear()
            cur.executemany(QUARANTINE, pending)
            result.records += records
            cur.execute(
                "insert into ops.megaphone_export_files (file_path, tenant_id, network_id, export_date, sha256, size_bytes, "
                "records, records_quarantined, _batch_id) values (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
                "on conflict (file_path) do update set sha256 = excluded.sha256, size_bytes = excluded.size_bytes, "
                "records = excluded.records, records_quarantined = excluded.records_quarantined, loaded_at = now(), "
                "_batch_id = excluded._batch_id",
                (export_file.relative, tenant, network, day, checksums[export_file.relative], export_file.size, records,
                 bad, batch_id))
        for episode_id, agg in sorted(episodes.items()):
            cur.execute(UPSERT, {
                "tenant_id": tenant, "network_id": network, "podcast_id": agg.podcast_id, "episode_id": episode_id,
                "metric_date": day, "downloads": agg.downloads, "unique_listeners": len(agg.listeners),
                "blacklisted_requests": agg.blacklisted_requests, "bytes_sent": agg.bytes_sent,
                "seconds_downloaded": agg.seconds_downloaded, "_batch_id": batch_id})
            result.rows_written += cur.rowcount
        cur.execute("delete from raw.megaphone_episode_metrics_daily where tenant_id = %s and network_id = %s "
                    "and metric_date = %s and not (episode_id = any(%s))", (tenant, network, day, list(episodes)))
        result.rows_deleted = cur.rowcount
        cur.execute("delete from ops.megaphone_export_files where tenant_id = %s and network_id = %s and export_date = %s "
                    "and not (file_path = any(%s))", (tenant, network, day, list(checksums)))
    return result


# -- the asset ------------------------------------------------------------------------------


class MegaphoneExportConfig(dg.Config):
    export_url: str | None = None  # default: PODCAST_MEGAPHONE_EXPORT_URL, else .data/landing/megaphone


@dg.asset(
    key=MEGAPHONE_KEY, partitions_def=MEGAPHONE_PARTITIONS, group_name="raw", kinds={"python", "postgres"},
    description="Downloads, unique listeners, blacklisted requests, bytes and seconds per Megaphone episode and UTC "
                "day, aggregated from the finalized daily delivery exports in object storage; upserted on "
                "(tenant, network, episode, day). Started by megaphone_export_sensor.",
)
def megaphone_episode_metrics_daily(context: dg.AssetExecutionContext, config: MegaphoneExportConfig,
                                    warehouse: WarehouseResource) -> dg.MaterializeResult:
    settings = get_settings()
    fs, root = export_filesystem(config.export_url or settings.resolved_megaphone_export_url())
    day = date.fromisoformat(context.partition_key)
    exports = [e for e in scan_exports(fs, root) if e.day == day]
    warehouse.require_schema()
    loads: list[DayLoad] = []
    waiting = [e.key for e in exports if not e.finalized]
    failed: dict[str, str] = {}
    listener_key = checked_hash_secret(warehouse, settings)
    with warehouse.connect(autocommit=True) as conn:  # one transaction per (tenant, network, day)
        for export in (e for e in exports if e.finalized):
            try:
                validate_identifier("tenant id", export.tenant_id)
                validate_identifier("Megaphone network id", export.network_id)
                loads.append(load_export_day(conn, fs, export, context.run.run_id, listener_key,
                                             settings.latest_event_time()))
            except (UnreadableFile, InvalidIdentifier, psycopg.errors.DataError) as exc:
                failed[export.key] = f"{type(exc).__name__}: {str(exc)[:300]}"
                continue
            load = loads[-1]
            context.log.info(f"{export.key}: {load.status}, {load.records} records, {load.rows_written} rows written, "
                             f"{sum(load.quarantined.values())} quarantined")
        rows = conn.execute("select count(*) from raw.megaphone_episode_metrics_daily where metric_date = %s",
                            (day,)).fetchone()[0]
    if waiting:
        context.log.info(f"not finalized yet (left for a later run): {', '.join(waiting)}")
    if failed:
        raise dg.Failure(description=f"{len(failed)} Megaphone export(s) of {day} could not be read or stored: "
                                     + "; ".join(f"{k}: {v}" for k, v in sorted(failed.items())),
                         metadata={"unreadable": failed})
    quarantined: Counter = Counter()
    for load in loads:
        quarantined.update(load.quarantined)
    return dg.MaterializeResult(metadata={
        "dagster/row_count": rows, "exports_loaded": sum(load.status == "loaded" for load in loads),
        "exports_unchanged": sum(load.status == "unchanged" for load in loads), "exports_not_finalized": len(waiting),
        "records_read": sum(load.records for load in loads),
        "rows_inserted_or_changed": sum(load.rows_written for load in loads),
        "rows_deleted": sum(load.rows_deleted for load in loads), "quarantined_by_reason": dict(quarantined),
    })


megaphone_export_job = source_job(
    "load_megaphone_exports", "megaphone",
    selection=dg.AssetSelection.assets(MEGAPHONE_KEY), partitions_def=MEGAPHONE_PARTITIONS,
    description="Load one day's finalized Megaphone delivery exports into raw.megaphone_episode_metrics_daily.",
)

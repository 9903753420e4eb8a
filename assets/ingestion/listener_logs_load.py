"""Load access-log files into `raw.listener_events`: discovery, the per-file ledger keyed by
content, and a streamed COPY inside one transaction per file (memory stays bounded whatever the
input: file size, line length, distinct addresses; a load killed half-way leaves nothing behind).

The ledger (`ops.listener_log_files`) holds one row per file name, with the checksum of the
content actually loaded (decompressed: `x.log` and its rotation `x.log.gz` have one checksum)
and a status: `loaded`; `duplicate` (the content of another file of the tenant that is loaded:
its rows are not loaded again); `refused` (a gzip that cannot be read, with a quarantined line
saying why; the checksum is then of the file's bytes, so that version is not tried again);
`deleted` (the file left the landing folder: its rows were removed)."""

from __future__ import annotations

import gzip
import hashlib
import pickle
import re
import tempfile
import time
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import NamedTuple

import polars as pl
import psycopg
from psycopg.copy import QueuedLibpqWriter

from assets.ingestion.listener_logs_parse import BadLine, IpAddress, IpHasher, parse_address
from assets.ingestion.log_formats import JsonMapping, LogFormat, LogSource, detect_format
from resources.identifiers import is_valid_identifier
from resources.settings import get_settings

DATE_IN_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})")
# Names without dashes: logrotate's `dateext` (`access.log-20261106`), and stamps with the hour
# and minute after the day (`...esw3c_S.202611061500-1600-0.gz`): a run of exactly 8 or 12 digits.
COMPACT_DATE_IN_NAME = re.compile(r"(?<!\d)(\d{4})(\d{2})(\d{2})(?:\d{4})?(?!\d)")
PARTIAL_SUFFIXES = (".part", ".tmp", ".partial", ".inprogress", ".crdownload")
# The columns of the raw tables this loader writes, declared here once: the COPY of events, the
# media hosts' insert, the quality suite (pipelines/checks/quality.py) and the dbt sources read
# them, and tests/test_raw_columns.py holds the warehouse's tables and dbt's sources to them.
RAW_COLUMNS = {
    "listener_events": (
        "tenant_id", "event_time", "log_date", "file_key", "line_no", "host", "path", "query", "method",
        "status", "bytes_sent", "range_start", "range_end", "ip_hash", "ip_prefix_hash", "ip_version",
        "ip_datacenter", "user_agent", "referer", "country", "object_size", "_ingested_at", "_source", "_batch_id",
    ),
    "listener_log_sources": ("tenant_id", "media_host", "_ingested_at", "_batch_id"),
}
# Filled in the warehouse by its default: the load time.
NOT_STAGED = frozenset({"_ingested_at"})
EVENT_COLUMNS = tuple(c for c in RAW_COLUMNS["listener_events"] if c not in NOT_STAGED)
LOG_SOURCE_COLUMNS = tuple(c for c in RAW_COLUMNS["listener_log_sources"] if c not in NOT_STAGED)
INSERT_LOG_SOURCE = (f"insert into raw.listener_log_sources ({', '.join(LOG_SOURCE_COLUMNS)}) "
                     f"values ({', '.join(['%s'] * len(LOG_SOURCE_COLUMNS))})")
COPY_EVENTS = f"copy raw.listener_events ({', '.join(EVENT_COLUMNS)}) from stdin (format csv)"
BLOCK_BYTES = 2 << 20  # some 8k lines: PostgreSQL ingests one batch while the next is parsed


def parse_lines(fmt: LogFormat, lines: list[str]):
    """Events and refused lines of one batch of a file, in the file's format."""
    return fmt.parse_batch(lines)


@dataclass(frozen=True)
class LogFile:
    path: Path
    file_key: str
    tenant_id: str
    log_date: date
    size: int
    mtime: float

    @property
    def landing(self) -> Path:
        """The landing folder the file was found in."""
        return self.path.parents[len(Path(self.file_key).parts) - 1]


@dataclass
class FileLoad:
    file_key: str
    status: str  # loaded | unchanged | duplicate | refused | changing
    format: str | None = None
    rows: int = 0
    quarantined: Counter = field(default_factory=Counter)
    address_cache_peak: int = 0  # the most client addresses the load held at once


def name_date(name: str) -> date | None:
    """The day a log file's name gives: the first `YYYY-MM-DD` (S3, CloudFront, Fastly), else a
    run of 8 or 12 digits that is a day of this century (`YYYYMMDD`, `YYYYMMDDhhmm`). None for a
    name without one, such as the file a server still writes (`access.log`)."""
    match = DATE_IN_NAME.search(name)
    candidates = [match.group(1)] if match else [
        "-".join(found.groups()) for found in COMPACT_DATE_IN_NAME.finditer(name) if found.group(1).startswith("20")]
    for text in candidates:
        try:
            return date.fromisoformat(text)
        except ValueError:
            continue
    return None


def discover(landing: Path, settle_seconds: float, now: float | None = None) -> list[LogFile]:
    """Log files ready to load: `<landing>/<tenant>/...`, named for a day (name_date), not hidden, not named as
    partial downloads, and untouched for `settle_seconds` (a writer may still be appending)."""
    now = time.time() if now is None else now
    found: list[LogFile] = []
    if not landing.exists():
        return found
    for tenant_dir in sorted(p for p in landing.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for path in sorted(tenant_dir.rglob("*")):
            name = path.name
            if not path.is_file() or name.startswith(".") or name.endswith(PARTIAL_SUFFIXES):
                continue
            log_date = name_date(name)
            if log_date is None:
                continue
            stat = path.stat()
            if now - stat.st_mtime < settle_seconds:
                continue
            found.append(LogFile(path, path.relative_to(landing).as_posix(), tenant_dir.name, log_date,
                                 stat.st_size, stat.st_mtime))
    return found


GZIP_MAGIC = b"\x1f\x8b"
EVIDENCE_BYTES = 1024  # what a line over the length limit keeps in quarantine


class UnreadableFile(Exception):
    """The file's bytes are not what they claim to be: a gzip stream cut short or corrupt."""

    def __init__(self, reason_code: str, detail: str, line_no: int):
        super().__init__(f"{reason_code}: {detail}")
        self.reason_code = reason_code
        self.detail = detail
        self.line_no = line_no


class FileChanged(Exception):
    """The file was written to while it was read: what was read is no version of it."""


@dataclass(frozen=True)
class LoadLimits:
    """What bounds the loader's memory whatever the input: the longest line read (a longer one is
    quarantined as `line_too_long`) and the client addresses cached per file."""

    max_line_bytes: int = 64 << 10
    address_cache: int = 500_000

    @classmethod
    def from_settings(cls) -> LoadLimits:
        settings = get_settings()
        return cls(settings.log_max_line_bytes, settings.log_address_cache_size)


class _HashedReader:
    """A binary file whose bytes, as they are read, also go into `digest`."""

    def __init__(self, raw, digest):
        self._raw, self._digest = raw, digest

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self._digest.update(data)
        return data

    def read1(self, size: int = -1) -> bytes:
        data = self._raw.read1(size)
        self._digest.update(data)
        return data

    def drain(self) -> None:
        while self.read(1 << 20):
            pass


def content_chunks(path: Path, size: int | None = None, raw_digest=None) -> Iterator[bytes]:
    """The content of a file in chunks: decompressed when it starts with gzip's magic bytes,
    whatever its name (a `.gz` of plain text is read as text, a gzip named `.log` decompressed).
    A gzip stream cut short or corrupt raises `UnreadableFile` (with the line it broke in).
    `raw_digest` (a hashlib object), when given, receives the file's bytes as they are read
    (all of them, trailing bytes after the gzip stream included), in the same single pass."""
    with open(path, "rb") as handle:
        compressed = handle.read(2) == GZIP_MAGIC
        handle.seek(0)
        raw = _HashedReader(handle, raw_digest) if raw_digest is not None else handle
        stream = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw
        size = size or BLOCK_BYTES
        read, lines, pending, held = 0, 0, [], 0
        try:  # read1: what a damaged stream gives before it breaks is counted
            while piece := stream.read1(size):
                read += len(piece)
                lines += piece.count(b"\n")
                pending.append(piece)
                held += len(piece)
                if held >= size:
                    yield b"".join(pending)
                    pending, held = [], 0
            if pending:
                yield b"".join(pending)
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise UnreadableFile("unreadable_gzip", f"the gzip stream breaks after {read} bytes of content "
                                 f"({lines} lines): {exc}; the whole file is refused", lines + 1) from exc
        if raw_digest is not None:
            raw.drain()


@dataclass(frozen=True)
class Fingerprint:
    """One version of a file on disk: the checksum of its bytes as stored (compressed or not;
    cheap to take), its size, time and inode."""

    raw_sha256: str
    size: int
    mtime_ns: int
    inode: int

    def same_file(self, path: Path) -> bool:
        stat = path.stat()
        return (stat.st_size, stat.st_mtime_ns, stat.st_ino) == (self.size, self.mtime_ns, self.inode)


def fingerprint(path: Path) -> Fingerprint:
    """The version of a file before it is read (`_load_version` compares it with what the read saw)."""
    stat = path.stat()
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return Fingerprint(digest.hexdigest(), stat.st_size, stat.st_mtime_ns, stat.st_ino)


def file_sha256(path: Path) -> str:
    """The checksum the ledger keeps for a loaded file: of its content, decompressed (of its
    bytes when they cannot be read, as for a refused file)."""
    digest = hashlib.sha256()
    try:
        for chunk in content_chunks(path, 1 << 20):
            digest.update(chunk)
    except UnreadableFile:
        return fingerprint(path).raw_sha256
    return digest.hexdigest()


@dataclass(frozen=True)
class LongLine:
    """A line longer than the limit: its first bytes (the evidence kept) and its length."""

    prefix: bytes
    length: int


def read_blocks(chunks: Iterable[bytes], max_line_bytes: int) -> Iterator[bytes | LongLine]:
    """The content in blocks of whole lines (a chunk's worth each, without the last newline),
    and, between them, each line that outgrows `max_line_bytes` before its newline comes, as a
    `LongLine`: such a line is never held whole, whatever its length."""
    rest, long_line = b"", None
    for chunk in chunks:
        if long_line is not None:
            end = chunk.find(b"\n")
            if end < 0:
                long_line = LongLine(long_line.prefix, long_line.length + len(chunk))
                continue
            yield LongLine(long_line.prefix, long_line.length + end)
            long_line, chunk = None, chunk[end + 1:]
        block = rest + chunk
        end = block.rfind(b"\n")
        if end >= 0:
            yield block[:end]
        rest = block[end + 1:]
        if len(rest) > max_line_bytes:
            long_line, rest = LongLine(rest[:EVIDENCE_BYTES], len(rest)), b""
    if long_line is not None:
        yield long_line
    elif rest:
        yield rest


class Batch(NamedTuple):
    numbers: Sequence[int]            # the line number of each line
    lines: list[str]                  # the lines that are not blank, without their line ending
    too_long: list[tuple[int, bytes, int]]  # (line number, first bytes, length) of lines over the limit


def read_batches(source: Path | Iterable[bytes], max_line_bytes: int | None = None) -> Iterator[Batch]:
    """The lines of a file (or of its content's chunks) in batches. A line longer than
    `max_line_bytes` is not among the lines but in `too_long`. Bytes that are not UTF-8 are
    replaced (the line then usually fails to parse and is quarantined); a newline is never part
    of a multi-byte character, so decoding a block decodes each of its lines alike."""
    limit = LoadLimits.from_settings().max_line_bytes if max_line_bytes is None else max_line_bytes
    chunks = content_chunks(source) if isinstance(source, Path) else source
    first = 1
    for block in read_blocks(chunks, limit):
        if isinstance(block, LongLine):
            yield Batch([], [], [(first, block.prefix, block.length)])
            first += 1
            continue
        text = block.decode("utf-8", errors="replace")
        lines = text.split("\n")
        too_long: list[tuple[int, bytes, int]] = []
        if len(block) > limit and (not text.isascii() or max(map(len, lines)) > limit):
            too_long = [(first + i, line[:EVIDENCE_BYTES], len(line))  # bytes, as the limit counts them
                        for i, line in enumerate(block.split(b"\n")) if len(line) > limit]
        if "\r" in text:
            lines = [line.rstrip("\r") for line in lines]
        if too_long:
            dropped = {number - first for number, _, _ in too_long}
            kept = [i for i, line in enumerate(lines) if i not in dropped and line.strip()]
            yield Batch([first + i for i in kept], [lines[i] for i in kept], too_long)
        elif all(map(str.strip, lines)):
            yield Batch(range(first, first + len(lines)), lines, [])
        else:
            kept = [i for i, line in enumerate(lines) if line.strip()]
            yield Batch([first + i for i in kept], [lines[i] for i in kept], [])
        first += len(lines)


def in_networks(address: IpAddress, networks: list) -> bool:
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in networks if network.version == address.version)


class ClientAddresses:
    """Hash, prefix hash, IP version and data-centre membership of the client addresses of one
    file, each worked out once (listeners repeat). At most `limit` addresses are kept: when a
    batch would go past it, the cache starts again from that batch's addresses, so a file of
    millions of distinct addresses takes no more memory than one of a few."""

    SCHEMA = {"ip": pl.String, "ip_hash": pl.String, "ip_prefix_hash": pl.String, "ip_version": pl.Int16,
              "ip_datacenter": pl.Boolean}

    def __init__(self, hasher: IpHasher, datacenters: list, limit: int = LoadLimits.address_cache):
        self.hasher = hasher
        self.datacenters = datacenters
        self.limit = limit
        self.known = pl.DataFrame(schema=self.SCHEMA)
        self.largest = 0  # the most addresses held at once

    def including(self, ips: pl.Series) -> pl.DataFrame:
        """The addresses kept, `ips` among them."""
        distinct = ips.unique()
        new = distinct.filter(~distinct.is_in(self.known["ip"].implode()))
        if self.known.height + new.len() > self.limit:
            self.known, new = pl.DataFrame(schema=self.SCHEMA), distinct
        if new.len():
            described = zip(*(self._describe(ip) for ip in new.to_list()))
            self.known = pl.concat([self.known, pl.DataFrame([new.to_list(), *described], schema=self.SCHEMA)])
        self.largest = max(self.largest, self.known.height)
        return self.known

    def _describe(self, ip: str) -> tuple[str, str, int, bool]:
        in_datacenter = bool(self.datacenters) and in_networks(parse_address(ip), self.datacenters)
        return *self.hasher.hash_ip(ip), in_datacenter


def copy_payload(events: pl.DataFrame, line_numbers: Sequence[int], addresses: ClientAddresses, log: LogFile,
                 source: str, batch_id: str) -> bytes:
    """The rows of `raw.listener_events` for a batch of parsed events, as COPY csv."""
    rows = events.join(addresses.including(events["ip"]), on="ip", how="left").with_columns(
        tenant_id=pl.lit(log.tenant_id), log_date=pl.lit(log.log_date), file_key=pl.lit(log.file_key),
        line_no=pl.lit(pl.Series(line_numbers, dtype=pl.Int64)).gather("index"),
        _source=pl.lit(source), _batch_id=pl.lit(batch_id),
    )
    return rows.select(EVENT_COLUMNS).write_csv(include_header=False).encode()


class QuarantineSpool:
    """A file's quarantined lines, kept on disk past a few MiB (a file of nothing but damaged
    lines must not fill memory) and copied into `quarantine.listener_events` once the events'
    COPY is done (one COPY at a time per connection)."""

    COLUMNS = "tenant_id, file_key, line_no, reason_code, detail, line, _batch_id"

    def __init__(self) -> None:
        self.count = 0
        self._spool = tempfile.SpooledTemporaryFile(max_size=8 << 20)

    def __enter__(self) -> QuarantineSpool:
        return self

    def __exit__(self, *exc) -> None:
        self._spool.close()

    def append(self, row: tuple) -> None:
        pickle.dump(row, self._spool)
        self.count += 1

    def copy_into(self, cur: psycopg.Cursor) -> None:
        if not self.count:
            return
        self._spool.seek(0)
        with cur.copy(f"copy quarantine.listener_events ({self.COLUMNS}) from stdin") as copy:
            for _ in range(self.count):
                copy.write_row(pickle.load(self._spool))


LEDGER_UPSERT = """
    insert into ops.listener_log_files as f (file_key, tenant_id, log_date, format, size_bytes, sha256, rows_loaded,
        rows_quarantined, status, reason, duplicate_of, _batch_id, raw_sha256)
    values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
    on conflict (file_key) do update set tenant_id = excluded.tenant_id, log_date = excluded.log_date,
        format = excluded.format, size_bytes = excluded.size_bytes, sha256 = excluded.sha256,
        raw_sha256 = excluded.raw_sha256,
        rows_loaded = excluded.rows_loaded, rows_quarantined = excluded.rows_quarantined, status = excluded.status,
        reason = excluded.reason, duplicate_of = excluded.duplicate_of, loaded_at = now(), _batch_id = excluded._batch_id
"""


def lock_tenant(cur: psycopg.Cursor, tenant_id: str) -> None:
    """Serialize the ledger decisions of one tenant's files (which content is loaded where) for
    the rest of the transaction: two runs never both load one content."""
    cur.execute("select pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"listener_logs:{tenant_id}",))


def forget(cur: psycopg.Cursor, file_key: str, reason: str, batch_id: str) -> None:
    """Remove what a file stored (its events and quarantined lines); its ledger row says why, and
    that the days of its events changed."""
    cur.execute("delete from raw.listener_events where file_key = %s", (file_key,))
    cur.execute("delete from quarantine.listener_events where file_key = %s", (file_key,))
    cur.execute(
        "update ops.listener_log_files set status = 'deleted', reason = %s, duplicate_of = null, rows_loaded = 0, "
        "rows_quarantined = 0, loaded_at = now(), _batch_id = %s, changed_from = first_event_at, "
        "changed_to = last_event_at, first_event_at = null, last_event_at = null where file_key = %s",
        (reason, batch_id, file_key),
    )


def record_event_span(cur: psycopg.Cursor, file_key: str) -> None:
    """After a file's events were replaced: the span of its events now, and the span of what
    changed (its old events and its new ones), which the partition sensor reads."""
    cur.execute(
        "update ops.listener_log_files as f set first_event_at = spans.low, last_event_at = spans.high, "
        "changed_from = least(f.first_event_at, spans.low), changed_to = greatest(f.last_event_at, spans.high) "
        "from (select min(event_time) as low, max(event_time) as high from raw.listener_events "
        "      where file_key = %s) as spans "
        "where f.file_key = %s",
        (file_key, file_key),
    )


def present(landing: Path, file_key: str) -> bool | None:
    """Whether the file is in the landing folder; None when its tenant's folder is not there at
    all (a share not mounted is no deletion)."""
    if not (landing / file_key.split("/", 1)[0]).is_dir():
        return None
    return (landing / file_key).is_file()


def forget_missing(conn: psycopg.Connection, landing: Path, log_date: date, batch_id: str) -> list[str]:
    """Remove the rows of the day's files that left the landing folder (deleted, renamed, rotated
    to another name), and record each as `deleted` in the ledger."""
    rows = conn.execute("select file_key, tenant_id from ops.listener_log_files "
                        "where log_date = %s and status <> 'deleted' order by 1", (log_date,)).fetchall()
    gone = []
    for file_key, tenant_id in rows:
        if present(landing, file_key) is False:
            with conn.transaction(), conn.cursor() as cur:
                lock_tenant(cur, tenant_id)
                forget(cur, file_key, "the file left the landing folder", batch_id)
            gone.append(file_key)
    return gone


def load_file(
    conn: psycopg.Connection, log: LogFile, hasher: IpHasher, batch_id: str, datacenters: list | None = None,
    mappings: dict[str, JsonMapping] | None = None, limits: LoadLimits | None = None, now: datetime | None = None,
) -> FileLoad:
    """Load one file unless its content is already loaded, under this name or (for the same
    tenant) under another one; replace an older version. A file written to while it was read is
    read again, once; if it changes again it is left for a later run (`changing`), nothing of the
    read stored. A gzip that cannot be read is refused whole, with a quarantined line saying why.

    The format is detected from the file's first lines (`mappings`: the JSON field mappings of
    sources.yaml, besides the built-in ones) and recorded in the ledger; a file in no known
    format has every line refused as `unknown_format`. Data-centre membership is decided here,
    while the clear address is still in hand. A request stamped after the load's time (`now`,
    default the clock) plus `PODCAST_FUTURE_TOLERANCE` is quarantined as `future_timestamp`."""
    limits = limits or LoadLimits.from_settings()
    latest = get_settings().latest_event_time(now)
    for _ in range(2):
        try:
            return _load_version(conn, log, hasher, batch_id, datacenters or [], mappings, limits, latest)
        except FileChanged:
            continue
    return FileLoad(log.file_key, "changing")


def _load_version(conn: psycopg.Connection, log: LogFile, hasher: IpHasher, batch_id: str, datacenters: list,
                  mappings: dict[str, JsonMapping] | None, limits: LoadLimits, latest: datetime) -> FileLoad:
    """One attempt: unchanged when the ledger holds these bytes; otherwise the content is read
    once, hashing and loading it together, inside a savepoint that is rolled back when the
    content turns out to be another file's (a duplicate) or unreadable, or the file changed."""
    version = fingerprint(log.path)
    with conn.transaction(), conn.cursor() as cur:
        lock_tenant(cur, log.tenant_id)
        if _is_current(cur, log, version):
            return FileLoad(log.file_key, "unchanged")
        if not is_valid_identifier(log.tenant_id):  # the folder names the tenant: refused, never guessed
            return _refuse(cur, log, version, batch_id, UnreadableFile(
                "invalid_identifier", f"the tenant folder {log.tenant_id!r} is not an identifier (letters, "
                "digits, '.', '_', '-', starting with a letter or digit); the whole file is refused", 1))
        try:
            with conn.transaction():
                result, content_sha256 = _copy_rows(cur, log, version, hasher, batch_id, datacenters, mappings,
                                                    limits, latest)
                original = _loaded_elsewhere(cur, log, content_sha256, result.rows + sum(result.quarantined.values()))
                if original and present(log.landing, original[0]):
                    raise _Duplicate(original)
        except UnreadableFile as problem:
            if not version.same_file(log.path):
                raise FileChanged(log.file_key) from problem
            return _refuse(cur, log, version, batch_id, problem)
        except _Duplicate as duplicate:
            file_key, fmt = duplicate.original
            forget(cur, log.file_key, "", batch_id)
            cur.execute(LEDGER_UPSERT, (log.file_key, log.tenant_id, log.log_date, fmt, version.size, content_sha256,
                                        0, 0, "duplicate", f"the content of {file_key}", file_key, batch_id,
                                        version.raw_sha256))
            return FileLoad(log.file_key, "duplicate", fmt)
        if original:  # loaded under a name that is gone: this file takes its place
            forget(cur, original[0], f"the file left the landing folder; its content is {log.file_key} now", batch_id)
        cur.execute(LEDGER_UPSERT, (log.file_key, log.tenant_id, log.log_date, result.format, version.size,
                                    content_sha256, result.rows, sum(result.quarantined.values()), "loaded", None,
                                    None, batch_id, version.raw_sha256))
        record_event_span(cur, log.file_key)
        return result


class _Duplicate(Exception):
    """The content read is that of another file of the tenant, still present: undo the load."""

    def __init__(self, original: tuple[str, str]):
        super().__init__(original[0])
        self.original = original


def _loaded_elsewhere(cur: psycopg.Cursor, log: LogFile, content_sha256: str, lines: int) -> tuple[str, str] | None:
    """(file key, format) of the tenant's first file loaded with this content under another name;
    an empty file is nobody's duplicate."""
    if not lines:
        return None
    return cur.execute(
        "select file_key, format from ops.listener_log_files where tenant_id = %s and sha256 = %s "
        "and status = 'loaded' and file_key <> %s order by loaded_at limit 1",
        (log.tenant_id, content_sha256, log.file_key),
    ).fetchone()


def _is_current(cur: psycopg.Cursor, log: LogFile, version: Fingerprint) -> bool:
    """Whether the ledger holds this file in this version (its bytes as stored): loaded or
    refused as it is, or a duplicate of a file that is still loaded with this content and still
    there. Rows written before the ledger kept `raw_sha256` compare their `sha256` (then of the
    file's bytes)."""
    row = cur.execute("select coalesce(raw_sha256, sha256), status, duplicate_of, sha256 "
                      "from ops.listener_log_files where file_key = %s", (log.file_key,)).fetchone()
    if row is None or row[0] != version.raw_sha256 or row[1] == "deleted":
        return False
    if row[1] != "duplicate":
        return True
    original = cur.execute("select 1 from ops.listener_log_files where file_key = %s and status = 'loaded' "
                           "and sha256 = %s", (row[2], row[3])).fetchone()
    return original is not None and bool(present(log.landing, row[2]))


def _refuse(cur: psycopg.Cursor, log: LogFile, version: Fingerprint, batch_id: str,
            problem: UnreadableFile) -> FileLoad:
    """Replace whatever the file stored by one quarantined line saying why it is refused; the
    ledger keeps the checksum of its bytes, so this version is not tried again."""
    forget(cur, log.file_key, "", batch_id)
    cur.execute(f"insert into quarantine.listener_events ({QuarantineSpool.COLUMNS}) values (%s, %s, %s, %s, %s, %s, %s)",
                (log.tenant_id, log.file_key, problem.line_no, problem.reason_code, problem.detail, None, batch_id))
    cur.execute(LEDGER_UPSERT, (log.file_key, log.tenant_id, log.log_date, "unreadable", version.size,
                                version.raw_sha256, 0, 1, "refused", problem.detail, None, batch_id,
                                version.raw_sha256))
    return FileLoad(log.file_key, "refused", "unreadable", quarantined=Counter({problem.reason_code: 1}))


def _copy_rows(cur: psycopg.Cursor, log: LogFile, version: Fingerprint, hasher: IpHasher, batch_id: str,
               datacenters: list, mappings: dict[str, JsonMapping] | None, limits: LoadLimits, latest: datetime
               ) -> tuple[FileLoad, str]:
    """Replace the file's rows by those of its content, read in one pass that also hashes the
    content and the bytes; `FileChanged` (which rolls the attempt back) unless the bytes read are
    the version fingerprinted. Returns the load and the content's checksum."""
    result = FileLoad(log.file_key, "loaded")
    fmt: LogFormat | None = None
    content, raw = hashlib.sha256(), hashlib.sha256()

    def hashed(chunks: Iterator[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            content.update(chunk)
            yield chunk

    cur.execute("delete from raw.listener_events where file_key = %s", (log.file_key,))
    cur.execute("delete from quarantine.listener_events where file_key = %s", (log.file_key,))
    addresses = ClientAddresses(hasher, datacenters, limits.address_cache)
    with QuarantineSpool() as quarantine:
        with cur.copy(COPY_EVENTS, writer=QueuedLibpqWriter(cur)) as copy:
            for numbers, lines, too_long in read_batches(hashed(content_chunks(log.path, raw_digest=raw)),
                                                         limits.max_line_bytes):
                for line_no, prefix, length in too_long:
                    result.quarantined["line_too_long"] += 1
                    evidence = hasher.redact(prefix.decode("utf-8", errors="replace")).replace("\x00", "\\0")
                    quarantine.append((log.tenant_id, log.file_key, line_no, "line_too_long",
                                       f"a line of {length} bytes, over the limit of {limits.max_line_bytes}; "
                                       f"its first {len(prefix)} bytes are kept", evidence, batch_id))
                if not lines:
                    continue
                fmt = fmt or detect_format(lines, mappings)
                events, bad_lines = parse_lines(fmt, lines)
                events, future = future_events(events, latest)
                bad_lines = bad_lines + future
                for index, bad in bad_lines:
                    result.quarantined[bad.reason_code] += 1
                    quarantine.append((log.tenant_id, log.file_key, numbers[index], bad.reason_code, bad.detail,
                                       hasher.redact(lines[index]).replace("\x00", "\\0")[:4000], batch_id))
                copy.write(copy_payload(events, numbers, addresses, log, fmt.name, batch_id))
                result.rows += events.height
        if raw.hexdigest() != version.raw_sha256 or not version.same_file(log.path):
            raise FileChanged(log.file_key)
        quarantine.copy_into(cur)
    result.format = fmt.name if fmt else "empty"
    result.address_cache_peak = addresses.largest
    return result, content.hexdigest()


def future_events(events: pl.DataFrame, latest: datetime) -> tuple[pl.DataFrame, list[tuple[int, BadLine]]]:
    """The events of a batch not later than `latest`, and the later ones as `future_timestamp`
    lines (by position): a clock running ahead must not put requests into days yet to come."""
    late = events["event_time"] > latest
    if not late.any():
        return events, []
    bad = [(index, BadLine("future_timestamp", f"request at {when.isoformat()}, after the load's time plus "
                                               f"tolerance ({latest.isoformat(timespec='seconds')})"))
           for index, when in events.filter(late).select("index", "event_time").iter_rows()]
    return events.filter(~late), bad


def store_log_sources(conn: psycopg.Connection, sources: list[LogSource], batch_id: str) -> int:
    """Write each configured tenant's media hosts to `raw.listener_log_sources`, replacing that
    tenant's rows (a host dropped from the config goes). Hosts are stored lower-case, as the
    loader stores request hosts. Tenants the config does not name are left as they are."""
    rows = 0
    with conn.transaction(), conn.cursor() as cur:
        for source in sources:
            hosts = sorted({h.strip().lower() for h in source.media_hosts if h.strip()})
            cur.execute("delete from raw.listener_log_sources where tenant_id = %s", (source.tenant_id,))
            cur.executemany(INSERT_LOG_SOURCE, [(source.tenant_id, host, batch_id) for host in hosts])
            rows += len(hosts)
    return rows

"""Load access-log files into `raw.listener_events`: discovery, the per-file ledger, and a
streamed COPY inside one transaction per file (memory stays bounded whatever the file size,
and a load killed half-way leaves nothing behind)."""

from __future__ import annotations

import gzip
import hashlib
import pickle
import re
import tempfile
import time
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import polars as pl
import psycopg
from psycopg.copy import QueuedLibpqWriter

from assets.ingestion.listener_logs_parse import IpAddress, IpHasher, parse_address
from assets.ingestion.log_formats import JsonMapping, LogFormat, LogSource, detect_format

DATE_IN_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})")
PARTIAL_SUFFIXES = (".part", ".tmp", ".partial", ".inprogress", ".crdownload")
EVENT_COLUMNS = (
    "tenant_id", "event_time", "log_date", "file_key", "line_no", "host", "path", "query", "method",
    "status", "bytes_sent", "range_start", "range_end", "ip_hash", "ip_prefix_hash", "ip_version",
    "ip_datacenter", "user_agent", "referer", "country", "object_size", "_source", "_batch_id",
)
COPY_EVENTS = f"copy raw.listener_events ({', '.join(EVENT_COLUMNS)}) from stdin (format csv)"
BLOCK_BYTES = 2 << 20  # some 8k lines: PostgreSQL ingests one batch while the next is parsed


def parse_lines(fmt: LogFormat, lines: list[str]):
    """Events and refused lines of one batch of a file, in the file's format."""
    return fmt.parse_batch(lines)


class IncompleteFile(Exception):
    """The file ends mid-stream (a gzip member cut short): not ready, try again later."""


@dataclass(frozen=True)
class LogFile:
    path: Path
    file_key: str
    tenant_id: str
    log_date: date
    size: int
    mtime: float


@dataclass
class FileLoad:
    file_key: str
    status: str  # loaded | unchanged | incomplete
    format: str | None = None
    rows: int = 0
    quarantined: Counter = field(default_factory=Counter)


def discover(landing: Path, settle_seconds: float, now: float | None = None) -> list[LogFile]:
    """Log files ready to load: `<landing>/<tenant>/...<YYYY-MM-DD>...`, not hidden, not named as
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
            match = DATE_IN_NAME.search(name)
            if not match:
                continue
            stat = path.stat()
            if now - stat.st_mtime < settle_seconds:
                continue
            try:
                log_date = date.fromisoformat(match.group(1))
            except ValueError:
                continue
            found.append(LogFile(path, path.relative_to(landing).as_posix(), tenant_dir.name, log_date,
                                 stat.st_size, stat.st_mtime))
    return found


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_blocks(path: Path) -> Iterator[str]:
    """The text of a plain or gzip file, streamed in blocks of whole lines (about BLOCK_BYTES
    each, without the last newline). Bytes that are not UTF-8 are replaced (the line then
    usually fails to parse and is quarantined); a newline is never part of a multi-byte
    character, so decoding a block decodes each of its lines alike."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            rest = b""
            while chunk := handle.read(BLOCK_BYTES):
                block = rest + chunk
                end = block.rfind(b"\n")
                if end >= 0:
                    yield block[:end].decode("utf-8", errors="replace")
                rest = block[end + 1:]
            if rest:
                yield rest.decode("utf-8", errors="replace")
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise IncompleteFile(f"{path.name}: {exc}") from exc


def read_batches(path: Path) -> Iterator[tuple[Sequence[int], list[str]]]:
    """(line numbers, lines) of the lines that are not blank, without their line ending."""
    first = 1
    for text in read_blocks(path):
        lines = text.split("\n")
        if "\r" in text:
            lines = [line.rstrip("\r") for line in lines]
        if all(map(str.strip, lines)):
            yield range(first, first + len(lines)), lines
        else:
            kept = [i for i, line in enumerate(lines) if line.strip()]
            yield [first + i for i in kept], [lines[i] for i in kept]
        first += len(lines)


def in_networks(address: IpAddress, networks: list) -> bool:
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in networks if network.version == address.version)


class ClientAddresses:
    """Hash, prefix hash, IP version and data-centre membership of the client addresses of one
    file, each worked out once (listeners repeat)."""

    SCHEMA = {"ip": pl.String, "ip_hash": pl.String, "ip_prefix_hash": pl.String, "ip_version": pl.Int16,
              "ip_datacenter": pl.Boolean}

    def __init__(self, hasher: IpHasher, datacenters: list):
        self.hasher = hasher
        self.datacenters = datacenters
        self.known = pl.DataFrame(schema=self.SCHEMA)

    def including(self, ips: pl.Series) -> pl.DataFrame:
        """The addresses seen so far, `ips` among them."""
        distinct = ips.unique()
        new = distinct.filter(~distinct.is_in(self.known["ip"].implode())).to_list()
        if new:
            described = zip(*(self._describe(ip) for ip in new))
            self.known = pl.concat([self.known, pl.DataFrame([new, *described], schema=self.SCHEMA)])
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


def load_file(
    conn: psycopg.Connection, log: LogFile, hasher: IpHasher, batch_id: str, datacenters: list | None = None,
    mappings: dict[str, JsonMapping] | None = None,
) -> FileLoad:
    """Load one file unless this very content is already loaded; replace an older version.

    The format is detected from the file's first lines (`mappings`: the JSON field mappings of
    sources.yaml, besides the built-in ones) and recorded in the ledger; a file in no known
    format has every line refused as `unknown_format`. Data-centre membership is decided here,
    while the clear address is still in hand."""
    sha = file_sha256(log.path)
    previous = conn.execute(
        "select sha256 from ops.listener_log_files where file_key = %s", (log.file_key,)
    ).fetchone()
    if previous and previous[0] == sha:
        return FileLoad(log.file_key, "unchanged")
    result = FileLoad(log.file_key, "loaded")
    quarantine = QuarantineSpool()
    fmt: LogFormat | None = None
    try:
        with conn.transaction(), conn.cursor() as cur, quarantine:
            cur.execute("delete from raw.listener_events where file_key = %s", (log.file_key,))
            cur.execute("delete from quarantine.listener_events where file_key = %s", (log.file_key,))
            addresses = ClientAddresses(hasher, datacenters or [])
            with cur.copy(COPY_EVENTS, writer=QueuedLibpqWriter(cur)) as copy:
                for numbers, lines in read_batches(log.path):
                    if not lines:
                        continue
                    fmt = fmt or detect_format(lines, mappings)
                    events, bad_lines = parse_lines(fmt, lines)
                    for index, bad in bad_lines:
                        result.quarantined[bad.reason_code] += 1
                        quarantine.append((log.tenant_id, log.file_key, numbers[index], bad.reason_code, bad.detail,
                                           hasher.redact(lines[index]).replace("\x00", "\\0")[:4000], batch_id))
                    copy.write(copy_payload(events, numbers, addresses, log, fmt.name, batch_id))
                    result.rows += events.height
            quarantine.copy_into(cur)
            cur.execute(
                """
                insert into ops.listener_log_files as f (file_key, tenant_id, log_date, format, size_bytes, sha256,
                    rows_loaded, rows_quarantined, _batch_id)
                values (%s, %s, %s, %s, %s, %s, %s, %s, %s)
                on conflict (file_key) do update set sha256 = excluded.sha256, size_bytes = excluded.size_bytes,
                    format = excluded.format, rows_loaded = excluded.rows_loaded,
                    rows_quarantined = excluded.rows_quarantined, loaded_at = now(), _batch_id = excluded._batch_id
                """,
                (log.file_key, log.tenant_id, log.log_date, fmt.name if fmt else "empty", log.size, sha, result.rows,
                 quarantine.count, batch_id),
            )
    except IncompleteFile:
        return FileLoad(log.file_key, "incomplete")
    result.format = fmt.name if fmt else "empty"
    return result


def store_log_sources(conn: psycopg.Connection, sources: list[LogSource], batch_id: str) -> int:
    """Write each configured tenant's media hosts to `raw.listener_log_sources`, replacing that
    tenant's rows (a host dropped from the config goes). Hosts are stored lower-case, as the
    loader stores request hosts. Tenants the config does not name are left as they are."""
    rows = 0
    with conn.transaction(), conn.cursor() as cur:
        for source in sources:
            hosts = sorted({h.strip().lower() for h in source.media_hosts if h.strip()})
            cur.execute("delete from raw.listener_log_sources where tenant_id = %s", (source.tenant_id,))
            cur.executemany("insert into raw.listener_log_sources (tenant_id, media_host, _batch_id) values (%s, %s, %s)",
                            [(source.tenant_id, host, batch_id) for host in hosts])
            rows += len(hosts)
    return rows

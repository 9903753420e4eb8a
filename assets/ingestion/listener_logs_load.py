"""Load access-log files into `raw.listener_events`: discovery, the per-file ledger, and a
streamed COPY inside one transaction per file (memory stays bounded whatever the file size,
and a load killed half-way leaves nothing behind)."""

from __future__ import annotations

import gzip
import hashlib
import ipaddress
import re
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import psycopg

from assets.ingestion.listener_logs_parse import PARSERS, BadLine, IpHasher, detect_format

DATE_IN_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})")
PARTIAL_SUFFIXES = (".part", ".tmp", ".partial", ".inprogress", ".crdownload")
EVENT_COLUMNS = (
    "tenant_id", "event_time", "log_date", "file_key", "line_no", "host", "path", "query", "method",
    "status", "bytes_sent", "range_start", "range_end", "ip_hash", "ip_prefix_hash", "ip_version",
    "ip_datacenter", "user_agent", "referer", "country", "_source", "_batch_id",
)


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


def read_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of a plain or gzip file, streamed. Bytes that are not UTF-8 are
    replaced (the line then usually fails to parse and is quarantined)."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            for number, raw in enumerate(handle, start=1):
                yield number, raw.decode("utf-8", errors="replace").rstrip("\r\n")
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise IncompleteFile(f"{path.name}: {exc}") from exc


def in_networks(ip: str, networks: list) -> bool:
    address = ipaddress.ip_address(ip)
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in networks if network.version == address.version)


def load_file(
    conn: psycopg.Connection, log: LogFile, hasher: IpHasher, batch_id: str, datacenters: list | None = None,
) -> FileLoad:
    """Load one file unless this very content is already loaded; replace an older version.

    Data-centre membership is decided here, while the clear address is still in hand."""
    sha = file_sha256(log.path)
    previous = conn.execute(
        "select sha256 from ops.listener_log_files where file_key = %s", (log.file_key,)
    ).fetchone()
    if previous and previous[0] == sha:
        return FileLoad(log.file_key, "unchanged")
    result = FileLoad(log.file_key, "loaded")
    quarantine: list[tuple] = []
    fmt: str | None = None
    try:
        with conn.transaction(), conn.cursor() as cur:
            cur.execute("delete from raw.listener_events where file_key = %s", (log.file_key,))
            cur.execute("delete from quarantine.listener_events where file_key = %s", (log.file_key,))
            hashes: dict[str, tuple[str, str, int]] = {}
            with cur.copy(f"copy raw.listener_events ({', '.join(EVENT_COLUMNS)}) from stdin") as copy:
                for line_no, line in read_lines(log.path):
                    if not line.strip():
                        continue
                    if fmt is None:
                        fmt = detect_format(line)
                    try:
                        if "\x00" in line:  # PostgreSQL text cannot hold NUL; a log line never should
                            raise BadLine("nul_bytes", "line contains NUL bytes")
                        event = PARSERS[fmt](line)
                    except BadLine as bad:
                        result.quarantined[bad.reason_code] += 1
                        quarantine.append((log.tenant_id, log.file_key, line_no, bad.reason_code, bad.detail,
                                           hasher.redact(line).replace("\x00", "\\0")[:4000], batch_id))
                        continue
                    ip = event["ip"]
                    hashed = hashes.get(ip)
                    if hashed is None:
                        hashed = hashes[ip] = (*hasher.hash_ip(ip), in_networks(ip, datacenters or []))
                    copy.write_row((
                        log.tenant_id, event["event_time"], log.log_date, log.file_key, line_no,
                        event["host"], event["path"], event["query"], event["method"], event["status"],
                        event["bytes_sent"], event["range_start"], event["range_end"], hashed[0], hashed[1],
                        hashed[2], hashed[3], event["user_agent"], event["referer"], event["country"], fmt, batch_id,
                    ))
                    result.rows += 1
            cur.executemany(
                "insert into quarantine.listener_events (tenant_id, file_key, line_no, reason_code, detail, line, _batch_id) "
                "values (%s, %s, %s, %s, %s, %s, %s)",
                quarantine,
            )
            cur.execute(
                """
                insert into ops.listener_log_files as f (file_key, tenant_id, log_date, format, size_bytes, sha256,
                    rows_loaded, rows_quarantined, _batch_id)
                values (%s, %s, %s, %s, %s, %s, %s, %s, %s)
                on conflict (file_key) do update set sha256 = excluded.sha256, size_bytes = excluded.size_bytes,
                    format = excluded.format, rows_loaded = excluded.rows_loaded,
                    rows_quarantined = excluded.rows_quarantined, loaded_at = now(), _batch_id = excluded._batch_id
                """,
                (log.file_key, log.tenant_id, log.log_date, fmt or "empty", log.size, sha, result.rows,
                 len(quarantine), batch_id),
            )
    except IncompleteFile:
        return FileLoad(log.file_key, "incomplete")
    return result

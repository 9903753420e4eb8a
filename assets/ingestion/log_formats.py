"""The access-log formats real hosts and CDNs write, detected per file (no I/O).

A file's format is decided from its first lines (`detect_format`) and recorded in the loader's
ledger. Each format has a per-line parser, which defines what a line means (its event, or the
reason it is refused), and may have a polars reader for whole batches that takes only the lines
it reads exactly as the per-line parser would (`read_batch`).

Formats (field lists: `../shared/realdata/logs/FORMATS.md`, from the vendors' documentation):

- `vhost_combined`, `combined`, `cdn_json`: `listener_logs_parse.py`.
- `s3`: AWS S3 server access log, the 18-field layout and the current 26/27-field one (unknown
  trailing fields are ignored). Only `REST`/`WEBSITE` `GET.OBJECT` and `HEAD.OBJECT` are
  requests for a file; every other operation (`REST.GET.ACL`, `REST.PUT.PART`,
  `REST.COPY.OBJECT_GET`, console calls...) is refused as `not_a_download`. Host = the Host Header
  field where the layout has one, else null (the bucket is not a host name); path = the path of
  the Request-URI as the client sent it (a path-style request `/bucket/key` keeps its bucket: it
  is the path of the URL the client asked for). `object_size` = Object Size.
- `cloudfront`: CloudFront standard log (W3C `#Version`/`#Fields` header, tab-separated values,
  columns mapped by name from `#Fields`, so the 24-, the 33-field and any other layout read
  alike). Host = `x-host-header` (the viewer's Host) else `cs(Host)`; the user agent and referer
  are URL-decoded (twice where the log double-encoded them: `%2520`). Bytes: the body bytes,
  `min(sc-bytes, sc-content-len)` where the layout has `sc-content-len` (`sc-bytes` counts the
  headers; a transfer cut short sent less than its Content-Length), else `sc-bytes`. Range:
  `sc-range-start`/`sc-range-end`.
- `cloudfront_realtime`: a CloudFront real-time record set with a `#Fields` line (Kinesis
  records carry none; without it the file is not recognised). Host = `cs-host`.
- `triton`: Triton Digital on-demand log (NCSA-like + object size, byte range, last-byte flag).
- `akamai_lds`: Akamai Log Delivery Service TSV (date, time, ip, method, uri, status, bytes,
  time taken, quoted referer, URL-encoded agent, cookie).
- `gcs`: Google Cloud Storage usage log (CSV with a header row). Operations other than
  `GET_Object`/`HEAD_Object` are `not_a_download`.
- `fastly_syslog_csv`: Fastly lines behind a syslog prefix with a CSV record (ip, [time], path,
  bytes, status, agent, geo...), as Changelog logs its episodes; it logs no method (GET).
- `bunny`: Bunny CDN raw log (pipe-separated, epoch ms, full URL).
- `json:<mapping>`: JSON lines read through a named field mapping (`JsonMapping`): the built-in
  `cloudflare_http_requests`, `fastly_json`, `akamai_ds2_json`, or one named under
  `listener_logs: json_mappings:` in sources.yaml.

A file in no known format is refused whole (`unknown_format`), each line with a reason that says
which config adds a mapping.
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import polars as pl
import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from assets.ingestion.listener_logs_parse import (
    COMBINED,
    EVENT_SCHEMA,
    STRICT_CLF_TIME,
    BadLine,
    _event,
    _none_if,
    json_object,
    parse_clf_time,
    parse_line,
    parse_lines,
    read_batch,
)
from resources.identifiers import TenantId

MAPPING_HINT = ("for JSON lines, name the log's fields under `listener_logs: json_mappings: <name>:` in "
                "sources.yaml (time, ip, method, host, uri or path, status, bytes, user_agent...)")


class LogFormat:
    """One file's format: its name (as the ledger records it), a per-line parser and a batch
    reader. A format may keep state across a file's lines (a W3C `#Fields` header)."""

    name = "unknown"

    def parse_line(self, line: str) -> dict | None:
        raise NotImplementedError

    def _line(self, line: str) -> dict | None:
        if "\x00" in line:  # PostgreSQL text cannot hold NUL; a log line never should
            raise BadLine("nul_bytes", "line contains NUL bytes")
        return self.parse_line(line)

    def parse_batch(self, lines: list[str]) -> tuple[pl.DataFrame, list[tuple[int, BadLine]]]:
        parsed, bad_lines = [], []
        for index, line in enumerate(lines):
            try:
                event = self._line(line)
            except BadLine as bad:
                bad_lines.append((index, bad))
                continue
            if event is not None:
                parsed.append({"index": index, **event})
        return pl.DataFrame(parsed, schema=EVENT_SCHEMA), bad_lines


class CoreFormat(LogFormat):
    """`combined`/`vhost_combined` and `cdn_json`, read by `listener_logs_parse`."""

    def __init__(self, name: str, parser: str):
        self.name = name
        self.parser = parser

    def parse_line(self, line: str) -> dict:
        return parse_line(self.parser, line)

    def parse_batch(self, lines):
        return parse_lines(self.parser, lines)


class UnknownFormat(LogFormat):
    """A file no parser recognises: every line refused, saying what was seen and what to do."""

    def __init__(self, seen: str):
        self.detail = (f"log format not recognised ({seen}); accepted: {', '.join(accepted_formats())}; "
                       + MAPPING_HINT)

    def parse_line(self, line: str) -> dict:
        raise BadLine("unknown_format", self.detail)


def _dash(value: str | None) -> str | None:
    return None if value in (None, "", "-") else value


def _unquoted(token: str) -> str:
    return token[1:-1] if len(token) >= 2 and token[0] == token[-1] == '"' else token


def url_decoded(value: str | None) -> str | None:
    """A W3C log value as it was sent: CloudFront URL-encodes agents and referers, some files
    twice (`%2520` for a space); a value holding `%25` is decoded a second time."""
    if value is None:
        return None
    once = unquote(value)
    return unquote(once) if "%25" in value else once


def _int(value: str, what: str) -> int:
    if not value.isascii() or not value.isdigit():
        raise BadLine("bad_value", f"{what} {value[:30]!r} is not a number")
    return int(value)


def _status(value: str, what: str = "HTTP status") -> int:
    """A logged HTTP status: three digits (`000` included)."""
    if len(value) != 3:
        raise BadLine("bad_value", f"HTTP status {value[:20]!r}")
    return _int(value, what)


# --- AWS S3 server access log ---------------------------------------------------------------------

S3_TOKEN = re.compile(r'\[[^\]]*\]|"(?:[^"\\]|\\.)*"|\S+')
S3_DOWNLOAD = re.compile(r"^(?:REST|WEBSITE)\.(GET|HEAD)\.OBJECT$")
S3_SHAPE = re.compile(r"^\S+ \S+ \[[^\]]+\] \S+ \S+ \S+ (?:REST|SOAP|WEBSITE|BATCH|S3)\.[A-Z_]+\S* ")
# A token as both readers see it: printable ASCII, no blank, not opening a quoted or bracketed one.
_T = r'[!#-Z\\\]-~]+'
_Q = r'[ !#-\[\]-~]*'  # inside quotes: no quote, no backslash
S3_BATCH = (
    rf'^{_T} {_T} \[(?P<time>[ -\\^-~]*)\] (?P<ip>{_T}) {_T} {_T} (?P<op>{_T}) {_T} '
    rf'"[A-Z]+ (?P<target>[!#-\[\]-~]+) [!#-\[\]-~]+" (?P<status>[0-9]{{3}}) {_T} (?P<bytes>[0-9]{{1,18}}|-) '
    rf'(?P<object_size>[0-9]{{1,18}}|-) {_T} {_T} "(?P<referer>{_Q})" "(?P<agent>{_Q})" {_T}'
    rf'(?: {_T} {_T} {_T} {_T} (?P<host>{_T})(?: [^\x00]*)?)?$'
)  # printable ASCII up to the Host Header (fields after it are ignored, but a NUL is not)


class S3Format(LogFormat):
    name = "s3"

    def parse_line(self, line: str) -> dict:
        tokens = S3_TOKEN.findall(line)
        if len(tokens) < 18 or not (tokens[2].startswith("[") and tokens[2].endswith("]")):
            raise BadLine("unparseable_line", f"{len(tokens)} fields where an S3 access log line has 18 or more")
        operation = tokens[6]
        download = S3_DOWNLOAD.match(operation)
        if not download:
            raise BadLine("not_a_download", f"S3 operation {operation[:60]}")
        request = _unquoted(tokens[8]).split(" ")
        if len(request) != 3 or not tokens[8].startswith('"'):
            raise BadLine("unparseable_line", f"unreadable Request-URI {tokens[8][:80]!r}")
        status = _status(tokens[9])
        sent = 0 if tokens[11] == "-" else _int(tokens[11], "Bytes Sent")
        size = None if tokens[12] == "-" else _int(tokens[12], "Object Size")
        host = _dash(tokens[22]) if len(tokens) > 22 else None
        return _event(
            parse_clf_time(tokens[2][1:-1]), tokens[3], download.group(1), host, request[1],
            status, sent, None, _dash(_unquoted(tokens[16])), _unquoted(tokens[15]), None, size,
        )

    def parse_batch(self, lines):
        return read_batch(lines, _s3_fields, self._line)


def _s3_fields(lines: pl.DataFrame) -> pl.DataFrame:
    fields = lines.select("index", pl.col("line").str.extract_groups(S3_BATCH).alias("f")).unnest("f")
    fields = fields.filter(pl.col("ip").is_not_null())
    # A line of this shape has 18 tokens or more and a bracketed time: the per-line parser refuses
    # any operation but a GET/HEAD of an object, and with this detail.
    other = ~pl.col("op").str.contains(S3_DOWNLOAD.pattern)
    return fields.select(
        "index", "ip", "target", "status", "referer",
        refusal_code=pl.when(other).then(pl.lit("not_a_download")),
        refusal_detail=pl.when(other).then(pl.lit("S3 operation ") + pl.col("op").str.slice(0, 60)),
        event_time=pl.when(pl.col("time").str.contains(STRICT_CLF_TIME))
        .then(pl.col("time").str.strptime(pl.Datetime("us", "UTC"), "%d/%b/%Y:%H:%M:%S %z", strict=False)),
        method=pl.col("op").str.split(".").list.get(1, null_on_oob=True),
        host=_none_if(pl.col("host"), "-"),
        bytes_sent=pl.when(pl.col("bytes") == "-").then(0).otherwise(pl.col("bytes").cast(pl.Int64, strict=False)),
        object_size=pl.when(pl.col("object_size") == "-").then(None).otherwise(pl.col("object_size")).cast(pl.Int64),
        range=pl.lit(None, dtype=pl.String), agent=_none_if(pl.col("agent"), "-"), country=pl.lit(None, dtype=pl.String),
    )


# --- W3C: CloudFront standard and real-time ---------------------------------------------------------

W3C_FIELDS = re.compile(r"^#Fields:[ \t]*(.*)$")


class W3CFormat(LogFormat):
    """CloudFront standard logs (`cloudfront`) and real-time records with a `#Fields` line
    (`cloudfront_realtime`): columns by name, header lines skipped, a later `#Fields` line (files
    joined together) taking over from the line after it."""

    def __init__(self, name: str, fields: list[str] | None = None):
        self.name = name
        self.realtime = name == "cloudfront_realtime"
        self.fields: list[str] = fields or []

    def _header(self, line: str) -> None:
        m = W3C_FIELDS.match(line.rstrip())
        if m:
            self.fields = m.group(1).split()

    def parse_line(self, line: str) -> dict | None:
        if line.startswith("#"):
            self._header(line)
            return None
        if not self.fields:
            raise BadLine("missing_field", "a data line before any #Fields header")
        values = line.split("\t")
        extra = values[len(self.fields):]
        if len(values) < len(self.fields) or any(v.strip() for v in extra):
            raise BadLine("unparseable_line", f"{len(values)} columns where #Fields names {len(self.fields)}")
        row = dict(zip(self.fields, values))
        need = ("timestamp",) if self.realtime else ("date", "time")
        missing = [k for k in (*need, "c-ip", "cs-method", "cs-uri-stem", "sc-status") if _dash(row.get(k)) is None]
        if missing:
            raise BadLine("missing_field", f"missing {', '.join(missing)}")
        try:
            if self.realtime:
                stamp = datetime.fromtimestamp(float(row["timestamp"]), tz=timezone.utc)
            else:
                stamp = datetime.strptime(f"{row['date']} {row['time']}", "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
        except (ValueError, OverflowError, OSError) as exc:
            raise BadLine("bad_timestamp", f"unreadable time {row.get('date', '')} {row.get('time', row.get('timestamp'))}"[:120]) from exc
        status = _status(row["sc-status"])
        sent = _int(row.get("sc-bytes") or "0", "sc-bytes") if _dash(row.get("sc-bytes")) else 0
        content = _dash(row.get("sc-content-len"))
        if content is not None:
            sent = min(sent, _int(content, "sc-content-len"))
        start, end = _dash(row.get("sc-range-start")), _dash(row.get("sc-range-end"))
        range_value = f"bytes={start}-{end or ''}" if start is not None else None
        if self.realtime:
            host, target = _dash(row.get("cs-host")) or _dash(row.get("x-host-header")), row["cs-uri-stem"]
        else:
            host = _dash(row.get("x-host-header")) or _dash(row.get("cs(Host)"))
            query = _dash(row.get("cs-uri-query"))
            if "?" in row["cs-uri-stem"]:
                raise BadLine("unparseable_line", "cs-uri-stem holds a query string")
            target = row["cs-uri-stem"] + (f"?{query}" if query else "")
        agent = _dash(row.get("cs(User-Agent)", row.get("cs-user-agent")))
        referer = _dash(row.get("cs(Referer)", row.get("cs-referer")))
        return _event(stamp, row["c-ip"], row["cs-method"], host, target, status, sent,
                      range_value, url_decoded(agent), url_decoded(referer), _dash(row.get("c-country")))

    def parse_batch(self, lines):
        """Runs of data lines through the batch reader, header lines read in between (a `#Fields`
        line changes the columns of the lines after it)."""
        if self.realtime:
            return super().parse_batch(lines)
        frames, bad_lines, start = [], [], 0
        for end in [*(i for i, line in enumerate(lines) if line.startswith("#")), len(lines)]:
            if end > start:
                run = lines[start:end]
                events, bad = read_batch(run, self._fields, self._line) if self.fields else super().parse_batch(run)
                frames.append(events.with_columns(pl.col("index") + start))
                bad_lines += [(i + start, b) for i, b in bad]
            if end < len(lines):
                self._header(lines[end])
            start = end + 1
        return (pl.concat(frames) if frames else pl.DataFrame(schema=EVENT_SCHEMA)), bad_lines

    def _fields(self, lines: pl.DataFrame) -> pl.DataFrame:
        n = len(self.fields)
        at = {name: i for i, name in enumerate(self.fields)}
        if not {"date", "time", "c-ip", "cs-method", "cs-uri-stem", "sc-status", "sc-bytes"} <= at.keys():
            return _no_events()
        cols = pl.col("line").str.split("\t")
        rows = lines.filter(pl.col("line").str.contains(r"^[\t -~]*$")).with_columns(cols=cols).filter(
            (pl.col("cols").list.len() == n) | ((pl.col("cols").list.len() == n + 1) & (pl.col("cols").list.last() == "")))

        def col(name: str) -> pl.Expr:
            return pl.col("cols").list.get(at[name]) if name in at else pl.lit(None, dtype=pl.String)

        number = r"^[0-9]{1,18}$"
        host = pl.when(col("x-host-header").is_in(["", "-"]) | col("x-host-header").is_null()).then(
            _none_if(col("cs(Host)"), "-")).otherwise(col("x-host-header"))
        content = col("sc-content-len")
        sent = col("sc-bytes").cast(pl.Int64, strict=False)
        start, end = col("sc-range-start"), col("sc-range-end")
        fields = rows.select(
            "index",
            time_ok=(col("date").str.contains(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$") & col("time").str.contains(r"^[0-9]{2}:[0-9]{2}:[0-9]{2}$")
                     & col("sc-status").str.contains(r"^[0-9]{3}$") & col("sc-bytes").str.contains(number)
                     & (content.is_null() | content.str.contains(number) | (content == "-"))
                     & (start.is_null() | start.str.contains(number) | (start == "-"))
                     & (end.is_null() | end.str.contains(number) | (end == "-"))
                     & ~col("cs-uri-stem").str.contains("?", literal=True) & (col("cs-uri-stem") != "-")),
            event_time=(col("date") + " " + col("time")).str.strptime(pl.Datetime("us", "UTC"), "%Y-%m-%d %H:%M:%S", strict=False),
            ip=col("c-ip"), method=col("cs-method"), host=host,
            target=col("cs-uri-stem") + pl.when(col("cs-uri-query").is_in(["", "-"]) | col("cs-uri-query").is_null())
            .then(pl.lit("")).otherwise("?" + col("cs-uri-query")),
            status=col("sc-status"),
            bytes_sent=pl.when(content.str.contains(number)).then(pl.min_horizontal(sent, content.cast(pl.Int64, strict=False)))
            .otherwise(sent),
            range=pl.when(start.str.contains(number)).then("bytes=" + start + "-" + pl.when(end.str.contains(number)).then(end).otherwise(pl.lit(""))),
            agent=_none_if(col("cs(User-Agent)"), "-"), referer=_none_if(col("cs(Referer)"), "-"),
            country=pl.lit(None, dtype=pl.String), object_size=pl.lit(None, dtype=pl.Int64),
        ).filter(pl.col("time_ok")).drop("time_ok")
        return fields.with_columns(agent=_decoded(pl.col("agent")), referer=_decoded(pl.col("referer")))


def _decoded(values: pl.Expr) -> pl.Expr:
    """`url_decoded` of each value, worked out once per distinct value (agents repeat)."""
    return values.map_batches(lambda s: s.replace_strict(
        {v: url_decoded(v) for v in s.unique().drop_nulls().to_list()}, default=None, return_dtype=pl.String))


def _no_events() -> pl.DataFrame:
    return pl.DataFrame(schema={"index": pl.Int64, "event_time": pl.Datetime("us", "UTC"), "ip": pl.String,
                                "method": pl.String, "host": pl.String, "target": pl.String, "status": pl.String,
                                "bytes_sent": pl.Int64, "range": pl.String, "agent": pl.String, "referer": pl.String,
                                "country": pl.String, "object_size": pl.Int64})


# --- Triton, Akamai LDS, GCS, Fastly syslog CSV, Bunny ---------------------------------------------

TRITON = re.compile(
    r'^(?P<ip>\S+) \S+ (?:"[^"]*"|\S+) \[(?P<time>[^\]]+)\] "(?P<method>[A-Z]{3,10}) (?P<target>\S+) HTTP/[0-9.]+" '
    r'(?P<status>\d{3}) (?P<bytes>\d+|-) (?P<referer>"[^"]*"|\S+) "(?P<agent>[^"]*)" (?P<object_size>\d+|-) '
    r'(?P<range>\d+-\d*|-) (?P<last>[01-])\s*$'
)
TRITON_SHAPE = re.compile(r'^\S+ \S+ "cookie:[^"]*" \[')


class TritonFormat(LogFormat):
    name = "triton"

    def parse_line(self, line: str) -> dict:
        m = TRITON.match(line)
        if not m:
            raise BadLine("unparseable_line", "does not match the Triton on-demand log format")
        g = m.groupdict()
        size = None if g["object_size"] == "-" else int(g["object_size"])
        return _event(parse_clf_time(g["time"]), g["ip"], g["method"], None, g["target"], int(g["status"]),
                      0 if g["bytes"] == "-" else int(g["bytes"]),
                      None if g["range"] == "-" else f"bytes={g['range']}", _dash(g["agent"]),
                      _unquoted(g["referer"]), None, size)


AKAMAI_LDS_SHAPE = re.compile(r"^\d{4}-\d{2}-\d{2}\t\d{2}:\d{2}:\d{2}\t\S+\t[A-Z]+\t/")


class AkamaiLdsFormat(LogFormat):
    """date, time, cs-ip, cs-method, cs-uri, sc-status, sc-bytes, time-taken, "referer",
    "agent" (URL-encoded), "cookie". The uri keeps the NetStorage host as its first segment."""

    name = "akamai_lds"

    def parse_line(self, line: str) -> dict:
        values = line.split("\t")
        if len(values) < 10:
            raise BadLine("unparseable_line", f"{len(values)} columns where an Akamai LDS line has 11")
        day, clock, ip, method, uri, status, sent = values[:7]
        try:
            stamp = datetime.strptime(f"{day} {clock}", "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
        except ValueError as exc:
            raise BadLine("bad_timestamp", f"unreadable time {day[:12]} {clock[:10]}") from exc
        return _event(stamp, ip, method, None, uri, _status(status), _int(sent, "sc-bytes"), None,
                      url_decoded(_dash(_unquoted(values[9]))), url_decoded(_dash(_unquoted(values[8]))), None)


GCS_HEADER = '"time_micros","c_ip"'


class GcsFormat(LogFormat):
    """Google Cloud Storage usage logs: a CSV header row (repeated per object) names the columns."""

    name = "gcs"

    def __init__(self):
        self.columns: list[str] = []

    def parse_line(self, line: str) -> dict | None:
        values = next(csv.reader([line]))
        if line.startswith(GCS_HEADER):
            self.columns = values
            return None
        if not self.columns:
            raise BadLine("missing_field", "a data line before the header row")
        if len(values) != len(self.columns):
            raise BadLine("unparseable_line", f"{len(values)} columns where the header names {len(self.columns)}")
        row = dict(zip(self.columns, values))
        operation = row.get("cs_operation") or ""
        if operation and operation not in ("GET_Object", "HEAD_Object"):
            raise BadLine("not_a_download", f"GCS operation {operation[:60]}")
        micros = _int(row.get("time_micros", ""), "time_micros")
        stamp = datetime.fromtimestamp(micros / 1_000_000, tz=timezone.utc)
        status = row.get("sc_status", "")
        return _event(stamp, row.get("c_ip", ""), row.get("cs_method", ""), _dash(row.get("cs_host")),
                      row.get("cs_uri") or "", _int(status, "sc_status"), _int(row.get("sc_bytes") or "0", "sc_bytes"),
                      None, _dash(row.get("cs_user_agent")), row.get("cs_referer"), None)


FASTLY_SYSLOG = re.compile(r"^<\d+>\S+ \S+ [^\s\[]+\[\d+\]: (?P<record>.*)$")


class FastlySyslogCsvFormat(LogFormat):
    """Fastly → syslog/S3 lines with a CSV record: ip, [CLF time], path, body bytes, status,
    agent, latitude, longitude, city, continent, country code, country name. No method is
    logged: a line is a GET."""

    name = "fastly_syslog_csv"

    def parse_line(self, line: str) -> dict:
        m = FASTLY_SYSLOG.match(line)
        if not m:
            raise BadLine("unparseable_line", "no syslog prefix")
        values = next(csv.reader([m.group("record")]))
        if len(values) != 12:
            raise BadLine("unparseable_line", f"{len(values)} CSV columns where the record has 12")
        ip, stamp, path, sent, status, agent = values[:6]
        if not (stamp.startswith("[") and stamp.endswith("]")):
            raise BadLine("bad_timestamp", f"unreadable time {stamp[:40]!r}")
        status_code = _status(status, "status")
        return _event(parse_clf_time(stamp[1:-1]), ip, "GET", None, path, status_code, _int(sent, "bytes"),
                      None, _dash(agent), None, _dash(values[10]))


BUNNY_SHAPE = re.compile(r"^[A-Z]+\|\d{3}\|\d{13}\|\d+\|\d+\|[^|]*\|[^|]*\|https?://")


class BunnyFormat(LogFormat):
    """Bunny CDN raw log: cache|status|epoch ms|bytes|zone|ip|referer|url|edge|agent|request id|country
    (the agent may hold `|`: the first nine and last two fields are split off)."""

    name = "bunny"

    def parse_line(self, line: str) -> dict:
        values = line.split("|")
        if len(values) < 12:
            raise BadLine("unparseable_line", f"{len(values)} fields where a Bunny line has 12")
        status, millis, sent, ip, referer, url = values[1], values[2], values[3], values[5], values[6], values[7]
        agent = "|".join(values[9:-2])
        parts = urlsplit(url)
        status_code = _status(status, "status")
        stamp = datetime.fromtimestamp(_int(millis, "timestamp") / 1000, tz=timezone.utc)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        return _event(stamp, ip, "GET", parts.hostname, target or "/", status_code, _int(sent, "bytes"),
                      None, _dash(agent), referer, _dash(values[-1]))


# --- JSON lines through a named field mapping ------------------------------------------------------

class JsonMappingConfig(BaseModel):
    """Which JSON key holds each of the loader's fields, as sources.yaml names a mapping. Dotted
    keys reach into objects (`RequestHeaders.range`). `uri` is the path with its query; `path` +
    `query` where the log splits them. `only`: a line whose key holds another value is
    `not_a_download` (Cloudflare's `ClientRequestSource` other than `eyeball`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    time: str
    ip: str
    status: str
    uri: str | None = None
    path: str | None = None
    query: str | None = None
    method: str | None = None
    host: str | None = None
    bytes: str | None = None
    range: str | None = None
    object_size: str | None = None
    user_agent: str | None = None
    referer: str | None = None
    country: str | None = None
    only: dict[str, list[Any]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _has_a_path(self) -> JsonMappingConfig:
        if not (self.uri or self.path):
            raise ValueError("a mapping names `uri` (path with query) or `path`")
        return self


class JsonMapping(JsonMappingConfig):
    """A mapping with its name (`json:<name>` in the ledger)."""

    name: str

    def required(self) -> list[str]:
        return [k.split(".")[0] for k in (self.time, self.ip, self.status, self.uri or self.path) if k]


BUILTIN_MAPPINGS = {m.name: m for m in [
    JsonMapping(name="cloudflare_http_requests", time="EdgeStartTimestamp", ip="ClientIP", status="EdgeResponseStatus",
                uri="ClientRequestURI", method="ClientRequestMethod", host="ClientRequestHost",
                bytes="EdgeResponseBodyBytes", range="RequestHeaders.range", user_agent="ClientRequestUserAgent",
                referer="ClientRequestReferer", country="ClientCountry",
                only={"ClientRequestSource": ["eyeball"], "WorkerSubrequest": [False]}),
    JsonMapping(name="fastly_json", time="timestamp", ip="client_ip", status="response_status", uri="url",
                method="request_method", host="host", bytes="response_body_size", user_agent="request_user_agent",
                referer="request_referer", country="geo_country"),
    JsonMapping(name="akamai_ds2_json", time="reqTimeSec", ip="cliIP", status="statusCode", path="reqPath",
                query="queryStr", method="reqMethod", host="reqHost", bytes="bytes", range="range",
                object_size="objSize", user_agent="UA", referer="referer", country="country"),
]}


def _lookup(row: dict, key: str | None) -> Any:
    if not key:
        return None
    value: Any = row
    for part in key.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def json_time(value: Any) -> datetime:
    """Epoch numbers (seconds, ms, µs or ns, told apart by size) or ISO 8601 text (no offset = UTC)."""
    if isinstance(value, str) and re.fullmatch(r"\d+(\.\d+)?", value):
        value = float(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        scale = next(s for limit, s in ((1e17, 1e9), (1e14, 1e6), (1e11, 1e3), (0, 1)) if abs(value) >= limit or s == 1)
        return datetime.fromtimestamp(value / scale, tz=timezone.utc)
    stamp = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return (stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


class JsonMappedFormat(LogFormat):
    def __init__(self, mapping: JsonMapping):
        self.mapping = mapping
        self.name = f"json:{mapping.name}"

    def parse_line(self, line: str) -> dict:
        m = self.mapping
        row = json_object(line)
        for key, allowed in m.only.items():
            value = _lookup(row, key)
            if value is not None and value not in allowed:
                raise BadLine("not_a_download", f"{key} is {str(value)[:40]}")
        missing = [k for k in (m.time, m.ip, m.status, m.uri or m.path) if _lookup(row, k) in (None, "")]
        if missing:
            raise BadLine("missing_field", f"missing {', '.join(missing)}")
        try:
            stamp = json_time(_lookup(row, m.time))
            status = int(_lookup(row, m.status))
            sent = int(_lookup(row, m.bytes) or 0)
            size = _lookup(row, m.object_size)
            size = int(size) if size not in (None, "", "-") else None
        except (TypeError, ValueError, OverflowError, OSError) as exc:
            raise BadLine("bad_value", str(exc)[:200]) from exc
        if m.uri:
            target = str(_lookup(row, m.uri))
            if "://" in target:  # a full URL: its host is the request's
                parts = urlsplit(target)
                target = parts.path + (f"?{parts.query}" if parts.query else "")
        else:
            query = _lookup(row, m.query)
            target = str(_lookup(row, m.path)) + (f"?{query}" if query not in (None, "", "-") else "")
        if any(isinstance(v, str) and "\x00" in v for v in (target, _lookup(row, m.user_agent))):
            raise BadLine("nul_bytes", "a JSON string holds an escaped NUL")
        byte_range = _lookup(row, m.range)
        if isinstance(byte_range, str) and re.fullmatch(r"\d+-\d*", byte_range):
            byte_range = f"bytes={byte_range}"  # Akamai writes `start-end`
        method = str(_lookup(row, m.method) or "GET").upper()
        host = _lookup(row, m.host)
        return _event(stamp, str(_lookup(row, m.ip)), method, str(host) if host else None, target, status, sent,
                      byte_range if isinstance(byte_range, str) else None, _text(_lookup(row, m.user_agent)),
                      _text(_lookup(row, m.referer)), _text(_lookup(row, m.country)), size)


def _text(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


# --- detection -------------------------------------------------------------------------------------

CORE_JSON_KEYS = {"ts", "c_ip", "cs_method", "cs_uri", "sc_status"}


def accepted_formats(mappings: dict[str, JsonMapping] | None = None) -> list[str]:
    names = {**BUILTIN_MAPPINGS, **(mappings or {})}
    return ["vhost_combined", "combined", "cdn_json", "s3", "cloudfront", "cloudfront_realtime", "triton",
            "akamai_lds", "gcs", "fastly_syslog_csv", "bunny", *(f"json:{n}" for n in sorted(names))]


def _shape(line: str, mappings: dict[str, JsonMapping]) -> LogFormat | str:
    """The format one data line looks like, or a description of what it is."""
    text = line.lstrip()
    if text.startswith("{"):
        try:
            row = json.loads(text)
        except json.JSONDecodeError:
            return "a JSON document that is not one object per line"
        if not isinstance(row, dict):
            return "JSON that is not an object"
        if CORE_JSON_KEYS <= row.keys():
            return CoreFormat("cdn_json", "cdn_json")
        for mapping in mappings.values():  # the operator's mappings first, then the built-in ones
            if set(mapping.required()) <= row.keys():
                return JsonMappedFormat(mapping)
        return f"JSON lines with keys {', '.join(sorted(row)[:12])} and no mapping that names them"
    if S3_SHAPE.match(line):
        return S3Format()
    if TRITON_SHAPE.match(line):
        return TritonFormat()
    m = COMBINED.match(line)
    if m:
        return CoreFormat("vhost_combined" if m.group("host") else "combined", "combined")
    if re.match(r'^(?:\S+ )?\S+ \S+ \S+ \[[^\]]+\] "', line):  # combined, damaged
        return CoreFormat("vhost_combined" if re.match(r"^\S+:\d+ ", line) else "combined", "combined")
    if AKAMAI_LDS_SHAPE.match(line):
        return AkamaiLdsFormat()
    if line.startswith(GCS_HEADER):
        return GcsFormat()
    if FASTLY_SYSLOG.match(line):
        return FastlySyslogCsvFormat()
    if BUNNY_SHAPE.match(line):
        return BunnyFormat()
    return f"first line starts {line[:40]!r}"


def detect_format(lines: list[str], mappings: dict[str, JsonMapping] | None = None) -> LogFormat:
    """The format of a file from its first lines: a W3C `#Fields` header decides at once;
    otherwise the shape most of the first 50 data lines have (a damaged first line does not
    decide a file). A file in no known shape gets `UnknownFormat`."""
    known = {**(mappings or {}), **{k: v for k, v in BUILTIN_MAPPINGS.items() if k not in (mappings or {})}}
    for line in lines[:10]:
        m = W3C_FIELDS.match(line.rstrip())
        if m:
            names = m.group(1).split()
            if {"date", "time", "cs-uri-stem"} <= set(names):
                return W3CFormat("cloudfront", names)
            if {"timestamp", "cs-uri-stem"} <= set(names):
                return W3CFormat("cloudfront_realtime", names)
            return UnknownFormat(f"W3C #Fields {' '.join(names[:12])}")
    data = [line for line in lines if not line.startswith("#")][:50]
    votes: Counter = Counter()
    seen: dict[str, LogFormat] = {}
    first_description = None
    for line in data:
        shape = _shape(line, known)
        if isinstance(shape, str):
            first_description = first_description or shape
            continue
        votes[shape.name] += 1
        seen.setdefault(shape.name, shape)
    if not votes:
        return UnknownFormat(first_description or "no data line")
    return seen[votes.most_common(1)[0][0]]



# --- the `listener_logs:` section of sources.yaml ---------------------------------------------------

class LogSource(BaseModel):
    """A tenant's log source: the host(s) its media is served from. A request logged without a
    host (S3, plain `combined`) is matched to an episode by its path among these hosts."""

    model_config = ConfigDict(extra="forbid")

    tenant_id: TenantId
    media_hosts: list[str] = Field(default_factory=list)


class ListenerLogSources(BaseModel):
    """The `listener_logs:` section of sources.yaml:

        listener_logs:
          sources:
            - {tenant_id: acme, media_hosts: [media.acme.example]}
          json_mappings:
            my_cdn: {time: ts, ip: client, status: code, uri: url, method: verb, host: host,
                     bytes: body_bytes, user_agent: ua}
    """

    model_config = ConfigDict(extra="forbid")

    sources: list[LogSource] = Field(default_factory=list)
    json_mappings: dict[str, JsonMappingConfig] = Field(default_factory=dict)

    def mappings(self) -> dict[str, JsonMapping]:
        return {name: JsonMapping(name=name, **config.model_dump()) for name, config in self.json_mappings.items()}


def load_log_sources(path: Path) -> ListenerLogSources:
    document = yaml.safe_load(path.read_text()) if path.exists() else None
    return ListenerLogSources.model_validate((document or {}).get("listener_logs") or {})

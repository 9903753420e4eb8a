"""Pure parsing of hosting/CDN access logs into listener events (no I/O).

Two shapes are read here: nginx/Apache `vhost_combined` (`host:port ip - - [time] "GET /path
HTTP/1.1" status bytes "referer" "agent"`) and plain `combined` (the same without the host),
optionally followed by the Range header in quotes, and a JSON-lines CDN export (`ts`, `c_ip`, `cs_method`, `cs_host`, `cs_uri`, `sc_status`,
`sc_bytes`, `cs_range`, `cs_user_agent`, `cs_referer`, `geo_country`). Client addresses are
replaced by keyed hashes before anything leaves this module: the full address, and the prefix
that identifies a listener under IAB v2.3 (the IPv4 address, or the IPv6 /64).

The per-line parsers define what a line means. `parse_lines` reads a whole batch at once with
polars, but only the lines whose every value it reads exactly as they would; it hands any other
line to the per-line parser, which decides its values or its quarantine reason. The other
formats real hosts write (S3, CloudFront, JSON-lines through a field mapping...) live in
`log_formats.py` and are built from the same `_event` and `read_batch`.

Status `000` is stored as status 0, with the bytes the line states, by every parser (the per-line
one and the batch reader alike): it is a logged request, and whether it counts is the screening's
call. CloudFront writes it when the viewer left before any response (nothing sent); for Akamai,
IAB v2.3 §5.5.2 step 1.3 reads it as a 206 that ended prematurely, counted only if it passes every
other filter. Today's dbt screening excludes status 0 as `bad_status` (it counts 200 and 206
only). Only GET and HEAD are requests for a file: any
other method is refused as `not_a_download` (not as a malformed line).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import json
import re
import socket
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TypeAlias

import polars as pl

MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}

COMBINED = re.compile(
    r'^(?:(?P<host>[A-Za-z0-9.\-]+)(?::\d+)?\s+)?(?P<ip>[0-9A-Fa-f:.]+)\s+\S+\s+\S+\s+'
    r'\[(?P<time>[^\]]+)\]\s+"(?P<method>[A-Z]{3,10})\s+(?P<target>\S+)\s+HTTP/[0-9.]+"\s+'
    r'(?P<status>\d{3})\s+(?P<bytes>\d+|-)\s+"(?P<referer>[^"]*)"\s+"(?P<agent>[^"]*)"'
    r'(?:\s+"(?P<range>[^"]*)")?\s*$'
)
# COMBINED with any token in the address slot: a line of the right shape whose address is not one
# (masked `X.X.X.X`, a host name) is refused as `bad_ip`, not as an unreadable line.
COMBINED_ANY_ADDRESS = re.compile(
    r'^(?P<ip>[^\s\["]+)\s+\S+\s+\S+\s+\[(?P<time>[^\]]+)\]\s+"(?P<method>[A-Z]{3,10})\s+\S+\s+HTTP/[0-9.]+"\s+'
    r'\d{3}\s+(?:\d+|-)\s+"[^"]*"\s+"[^"]*"(?:\s+"[^"]*")?\s*$'
)
DOWNLOAD_METHODS = ("GET", "HEAD")
CLF_TIME = re.compile(r"^(\d{2})/([A-Z][a-z]{2})/(\d{4}):(\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})$")
RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")
# An IPv6 address as `ipaddress` writes it, when that is all eight groups: lowercase, no leading
# zeros, and no two zero groups in a row (those it would shorten to "::").
CANONICAL_IPV6 = re.compile(r"^(?!(?:.*:)?0:0(?::|\Z))(?:(?:0|[1-9a-f][0-9a-f]{0,3}):){7}(?:0|[1-9a-f][0-9a-f]{0,3})\Z")
# An address-like token where a damaged line may hold one: IPv4, IPv6, IPv6 ending in an IPv4
# (`::ffff:203.0.113.7`), each maybe followed by a port (`203.0.113.7:5678` as load balancers
# write the client, `http://127.0.0.1:8080/`); `[2001:db8::1]:443` holds a plain IPv6 token.
IP_TOKEN = re.compile(
    r"(?<![\w.:])"
    r"((?:[0-9A-Fa-f]{0,4}:){2,6}\d{1,3}(?:\.\d{1,3}){3}|\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7})"
    r"(:\d{1,5})?(?![\w.:])"
)


IpAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address


class BadLine(ValueError):
    def __init__(self, reason_code: str, detail: str):
        super().__init__(f"{reason_code}: {detail}")
        self.reason_code = reason_code
        self.detail = detail


@dataclass(frozen=True)
class IpHasher:
    """Keyed hashes of client addresses, with one salt per tenant."""

    salt: bytes

    @classmethod
    def for_tenant(cls, secret: bytes, tenant_id: str) -> IpHasher:
        return cls(hmac.new(secret, tenant_id.encode(), hashlib.sha256).digest())

    def digest(self, value: str) -> str:
        return hashlib.blake2b(value.encode(), key=self.salt, digest_size=16).hexdigest()

    def hash_ip(self, ip: str) -> tuple[str, str, int]:
        """(hash of the address, hash of the listener prefix, IP version)."""
        if CANONICAL_IPV6.match(ip):  # the text is already the one ipaddress would write
            return self.digest(ip), self.digest(_ipv6_prefix(_ipv6_int(ip) >> 64)), 6
        address = ipaddress.ip_address(ip)
        if address.version == 6:
            if address.ipv4_mapped is not None:
                address = address.ipv4_mapped
            else:
                return self.digest(str(address)), self.digest(_ipv6_prefix(int(address) >> 64)), 6
        text = str(address)
        digest = self.digest(text)
        return digest, digest, 4

    def token(self, written: str) -> str:
        """What stands for an address, as it was written, in a redacted line (`redact`)."""
        return "ip:" + self.digest(written)[:16]

    def redact(self, line: str) -> str:
        """A damaged line as it may be kept in quarantine: every address-like token hashed."""
        def replace(match: re.Match) -> str:
            address, port = match.group(1), match.group(2) or ""
            if parse_address(address) is None:  # cached: the same addresses recur
                if port and parse_address(address + port) is not None:  # an IPv6 whose last group looked like a port
                    return self.token(address + port)
                return match.group(0)
            return self.token(address) + port

        return IP_TOKEN.sub(replace, line)


def parse_clf_time(text: str) -> datetime:
    m = CLF_TIME.match(text)
    if not m:
        raise BadLine("bad_timestamp", f"unreadable time {text[:40]!r}")
    day, mon, year, hh, mm, ss, sign, oh, om = m.groups()
    if mon not in MONTHS:
        raise BadLine("bad_timestamp", f"unknown month {mon!r}")
    offset = (int(oh) * 60 + int(om)) * (-1 if sign == "-" else 1)
    try:
        stamp = datetime(int(year), MONTHS[mon], int(day), int(hh), int(mm), int(ss), tzinfo=timezone.utc)
    except ValueError as exc:  # 31/Feb, hour 24, second 60...
        raise BadLine("bad_timestamp", f"impossible time {text[:40]!r}: {exc}") from exc
    return stamp.fromtimestamp(stamp.timestamp() - offset * 60, tz=timezone.utc)


def parse_range(value: str | None) -> tuple[int | None, int | None]:
    if not value or value == "-":
        return None, None
    m = RANGE.match(value.strip())
    if not m:
        return None, None  # multi-range and suffix ranges: bytes served still count
    return int(m.group(1)), (int(m.group(2)) if m.group(2) else None)


def _ipv6_int(text: str) -> int:
    return int.from_bytes(socket.inet_pton(socket.AF_INET6, text))


@functools.lru_cache(maxsize=1 << 16)
def parse_address(value: str) -> IpAddress | None:
    """The address `value` spells, or None. Listeners repeat: reading each distinct address once
    saves a third of the parse time."""
    if CANONICAL_IPV6.match(value):  # the common IPv6 spelling, read without ipaddress's slow parser
        return ipaddress.IPv6Address(_ipv6_int(value))
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


@functools.lru_cache(maxsize=1 << 12)
def _ipv6_prefix(network: int) -> str:
    """The /64 of a household, written as `ipaddress` writes networks (its interface ids rotate)."""
    return str(ipaddress.IPv6Network((network << 64, 64)))


def _is_ip(value: str) -> bool:
    return parse_address(value) is not None


BIGINT_MAX = (1 << 63) - 1


def _event(time, ip, method, host, target, status, bytes_sent, range_value, agent, referer, country,
           object_size=None) -> dict:
    """The event of one logged request, in the loader's columns; `BadLine` when it is not one.

    Status 0 is a logged `000` (stored with its bytes; the dbt screening decides)."""
    if method not in DOWNLOAD_METHODS:
        raise BadLine("not_a_download", f"method {str(method)[:20]} is not a GET or HEAD of a file")
    if not _is_ip(ip):
        raise BadLine("bad_ip", f"not an IP address: {str(ip)[:60]!r}")
    path, _, query = target.partition("?")
    start, end = parse_range(range_value)
    if not (status == 0 or 100 <= status <= 999):
        raise BadLine("bad_value", f"HTTP status {status} out of range")
    if (not 0 <= bytes_sent <= BIGINT_MAX or max(start or 0, end or 0) > BIGINT_MAX
            or not 0 <= (object_size or 0) <= BIGINT_MAX):
        raise BadLine("bad_value", "byte count, range or object size out of range")
    return {
        "event_time": time, "ip": ip, "method": method, "host": (host or "").lower() or None,
        "path": path, "query": query or None, "status": status, "bytes_sent": bytes_sent,
        "range_start": start, "range_end": end, "user_agent": agent or None,
        "referer": None if referer in (None, "", "-") else referer, "country": country,
        "object_size": object_size,
    }


def parse_combined_line(line: str) -> dict:
    m = COMBINED.match(line)
    if not m:
        shaped = COMBINED_ANY_ADDRESS.match(line)
        if shaped and not _is_ip(shaped.group("ip")):
            raise BadLine("bad_ip", f"not an IP address: {shaped.group('ip')[:60]!r}")
        raise BadLine("unparseable_line", "does not match the combined log format")
    g = m.groupdict()
    return _event(
        parse_clf_time(g["time"]), g["ip"], g["method"], g["host"], g["target"], int(g["status"]),
        0 if g["bytes"] == "-" else int(g["bytes"]), g["range"], g["agent"], g["referer"], None,
    )


def json_object(line: str) -> dict:
    """The JSON object a JSON-lines log line holds, or why it holds none."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise BadLine("unparseable_line", f"invalid JSON: {exc.msg}") from exc
    if not isinstance(row, dict):
        raise BadLine("unparseable_line", "JSON value is not an object")
    return row


def parse_cdn_json_line(line: str) -> dict:
    row = json_object(line)
    if any(isinstance(value, str) and "\x00" in value for value in row.values()):
        raise BadLine("nul_bytes", "a JSON string holds an escaped NUL")
    missing = [k for k in ("ts", "c_ip", "cs_method", "cs_uri", "sc_status") if row.get(k) in (None, "")]
    if missing:
        raise BadLine("missing_field", f"missing {', '.join(missing)}")
    try:
        stamp = datetime.fromisoformat(str(row["ts"]).replace("Z", "+00:00"))
        status, sent = int(row["sc_status"]), int(row.get("sc_bytes") or 0)
    except (TypeError, ValueError) as exc:
        raise BadLine("bad_value", str(exc)[:200]) from exc
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=timezone.utc)
    return _event(
        stamp.astimezone(timezone.utc), str(row["c_ip"]), str(row["cs_method"]).upper(), row.get("cs_host"),
        str(row["cs_uri"]), status, sent, row.get("cs_range"), row.get("cs_user_agent"),
        row.get("cs_referer"), row.get("geo_country"),
    )


PARSERS = {"combined": parse_combined_line, "cdn_json": parse_cdn_json_line}


def detect_format(first_line: str) -> str:
    return "cdn_json" if first_line.lstrip().startswith("{") else "combined"


def parse_line(fmt: str, line: str) -> dict:
    if "\x00" in line:  # PostgreSQL text cannot hold NUL; a log line never should
        raise BadLine("nul_bytes", "line contains NUL bytes")
    return PARSERS[fmt](line)


EVENT_SCHEMA = {
    "index": pl.Int64, "event_time": pl.Datetime("us", "UTC"), "ip": pl.String, "method": pl.String,
    "host": pl.String, "path": pl.String, "query": pl.String, "status": pl.Int64, "bytes_sent": pl.Int64,
    "range_start": pl.Int64, "range_end": pl.Int64, "user_agent": pl.String, "referer": pl.String,
    "country": pl.String, "object_size": pl.Int64,
}

# On printable ASCII, polars' regex engine reads \s, \S and \d, and so the whole COMBINED
# pattern, exactly as Python's does; beyond ASCII their Unicode tables differ slightly.
PRINTABLE_ASCII = r"^[ -~]*$"
# COMBINED for the lines a vhost_combined server writes with the Range header: the host and the
# range present, no trailing blanks, printable ASCII only. Its captures on such a line are
# COMBINED's (each field is a run between blanks or between quotes, read alike by both), and
# it reads each byte once, where COMBINED must look ahead for the optional host and range.
VHOST_COMBINED_WITH_RANGE = (
    r'^(?P<host>[A-Za-z0-9.\-]+)(?::[0-9]+)? +(?P<ip>[0-9A-Fa-f:.]+) +[!-~]+ +[!-~]+ +\[(?P<time>[ -\\^-~]+)\] +'
    r'"(?P<method>[A-Z]{3,10}) +(?P<target>[!-~]+) +HTTP/[0-9.]+" +(?P<status>[0-9]{3}) +(?P<bytes>[0-9]+|-) +'
    r'"(?P<referer>[ !#-~]*)" +"(?P<agent>[ !#-~]*)" +"(?P<range>[ !#-~]*)"$'
)
STRICT_CLF_TIME = (
    r"^[0-9]{2}/(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)/[12][0-9]{3}:[0-9]{2}:[0-9]{2}:[0-5][0-9] [+-][0-9]{4}$"
)
STRICT_ISO_TIME = (
    r"^(?P<local>[12][0-9]{3}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-5][0-9])(?:\.(?P<fraction>[0-9]{3}|[0-9]{6}))?"
    r"(?:Z|(?P<sign>[+-])(?P<hours>[01][0-9]|2[0-3]):(?P<minutes>[0-5][0-9]))?$"
)
SIMPLE_RANGE = r"^bytes=(?P<start>[0-9]{1,18})-(?P<end>[0-9]{0,18})$"
# Addresses that are valid without asking `ipaddress`: dotted quads without leading zeros, and
# IPv6 written out in all eight groups.
PLAIN_IP = (
    r"^(?:(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
    r"|(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4})$"
)


def _json_member(key: str, value: str, nullable: bool = True) -> str:
    return f'"{key}":' + (f"(?:{value}|null)" if nullable else value)


def _json_text(name: str, chars: str = r'[^"\\\x00-\x1f]*') -> str:
    return f'"(?P<{name}>{chars})"'


# A CDN export line as the exporter writes it: these keys in this order, strings without escapes
# and integers as plain JSON integers. With no backslash, every quote delimits a string, so the
# captures are exactly the values json.loads returns; any other line goes to the per-line parser.
CDN_JSON_EXPORT = r"^\{[ \t]*" + r"[ \t]*,[ \t]*".join((
    _json_member("ts", _json_text("time", r'[^"\\\x00-\x1f]+'), nullable=False),
    _json_member("c_ip", _json_text("ip", r'[^"\\\x00-\x1f]+'), nullable=False),
    _json_member("cs_method", _json_text("method", "[A-Za-z]+"), nullable=False),
    _json_member("cs_host", _json_text("host", r"[ !#-\[\]-~]*")),
    _json_member("cs_uri", _json_text("target", r'[^"\\\x00-\x1f]+'), nullable=False),
    _json_member("sc_status", "(?P<status>0|[1-9][0-9]{0,8})", nullable=False),
    _json_member("sc_bytes", "(?P<bytes>0|[1-9][0-9]{0,17})"),
    _json_member("cs_range", _json_text("range")),
    _json_member("cs_user_agent", _json_text("agent")),
    _json_member("cs_referer", _json_text("referer")),
    _json_member("geo_country", _json_text("country")),
)) + r"[ \t]*\}$"


def _none_if(value: pl.Expr, *empty: str) -> pl.Expr:
    return pl.when(value.is_in(empty)).then(None).otherwise(value)


def _offset_minutes(parts: pl.Expr) -> pl.Expr:
    minutes = parts.struct.field("hours").cast(pl.Int64) * 60 + parts.struct.field("minutes").cast(pl.Int64)
    return pl.when(parts.struct.field("sign") == "-").then(-minutes).otherwise(minutes).fill_null(0)


def _clf_time(text: pl.Expr) -> pl.Expr:
    """`parse_clf_time` for the strict shape; null for any other, and for impossible dates."""
    utc = text.str.strptime(pl.Datetime("us", "UTC"), "%d/%b/%Y:%H:%M:%S %z", strict=False)
    return pl.when(text.str.contains(STRICT_CLF_TIME)).then(utc)


def _iso_time(text: pl.Expr) -> pl.Expr:
    """The CDN timestamp of the strict shape in UTC (no offset means UTC); null otherwise."""
    parts = text.str.extract_groups(STRICT_ISO_TIME)
    local = parts.struct.field("local").str.strptime(pl.Datetime("us", "UTC"), "%Y-%m-%dT%H:%M:%S", strict=False)
    micros = parts.struct.field("fraction").str.pad_end(6, "0").cast(pl.Int64).fill_null(0)
    return (local.dt.epoch("us") + micros - _offset_minutes(parts) * 60_000_000).cast(pl.Datetime("us", "UTC"))


def _captures(lines: pl.DataFrame, pattern: str) -> pl.DataFrame:
    """The named groups of `pattern` in each line it matches, with the line's `index`."""
    captured = lines.select("index", pl.col("line").str.extract_groups(pattern).alias("fields")).unnest("fields")
    return captured.filter(pl.col("ip").is_not_null())


def _combined_fields(lines: pl.DataFrame) -> pl.DataFrame:
    fields = _captures(lines, VHOST_COMBINED_WITH_RANGE)
    if fields.height < lines.height:
        others = lines.filter(~pl.col("index").is_in(fields["index"].implode()) & pl.col("line").str.contains(PRINTABLE_ASCII))
        fields = pl.concat([fields, _captures(others, COMBINED.pattern)])
    return fields.with_columns(
        event_time=_clf_time(pl.col("time")),
        bytes_sent=pl.when(pl.col("bytes") == "-").then(0).otherwise(pl.col("bytes").cast(pl.Int64, strict=False)),
        country=pl.lit(None, dtype=pl.String),
    )


def _cdn_json_fields(lines: pl.DataFrame) -> pl.DataFrame:
    return _captures(lines, CDN_JSON_EXPORT).with_columns(
        event_time=_iso_time(pl.col("time")),
        method=pl.col("method").str.to_uppercase(),
        bytes_sent=pl.col("bytes").cast(pl.Int64).fill_null(0),
    )


def _events(fields: pl.DataFrame) -> pl.DataFrame:
    """What `_event` makes of the captured fields, and whether it is certain: `readable` is false
    where a value needs the per-line parser to be read the same way."""
    target = pl.col("target").str.splitn("?", 2)
    byte_range = pl.col("range").str.extract_groups(SIMPLE_RANGE)
    simple_range = pl.col("range").is_null() | pl.col("range").is_in(["", "-"]) | byte_range.struct.field("start").is_not_null()
    return fields.select(
        "index", "event_time", "ip", "method",
        host=_none_if(pl.col("host"), "").str.to_lowercase(),
        path=target.struct.field("field_0"), query=_none_if(target.struct.field("field_1"), ""),
        status=pl.col("status").cast(pl.Int64), bytes_sent="bytes_sent",
        range_start=byte_range.struct.field("start").cast(pl.Int64),
        range_end=_none_if(byte_range.struct.field("end"), "").cast(pl.Int64),
        user_agent=_none_if(pl.col("agent"), ""), referer=_none_if(pl.col("referer"), "", "-"), country="country",
        object_size=pl.col("object_size") if "object_size" in fields.columns else pl.lit(None, dtype=pl.Int64),
        # status 1-99 and other methods are the per-line parser's to refuse
        readable=pl.col("event_time").is_not_null() & pl.col("bytes_sent").is_not_null() & simple_range
        & ((pl.col("status").cast(pl.Int64) == 0) | (pl.col("status").cast(pl.Int64) >= 100))
        & pl.col("method").is_in(DOWNLOAD_METHODS),
    )


BATCH_FIELDS = {"combined": _combined_fields, "cdn_json": _cdn_json_fields}


def numbered_lines(lines: list[str]) -> pl.DataFrame:
    return pl.DataFrame({"line": lines}, schema={"line": pl.String}).with_row_index("index").cast({"index": pl.Int64})


def read_batch(lines: list[str], batch_fields, parse_one) -> tuple[pl.DataFrame, list[tuple[int, BadLine]]]:
    """Events of a batch: the lines `batch_fields` captures whose every value `_events` reads as
    `parse_one` would, read by polars; every other line by `parse_one` (value or quarantine
    reason). `parse_one` returning None skips a line (a W3C header). `batch_fields` may also
    refuse lines itself (`refusal_code`, `refusal_detail`), where `parse_one` would refuse them
    with that very reason and detail (an S3 operation that is no download)."""
    numbered = numbered_lines(lines)
    fields = batch_fields(numbered)
    refused: list[tuple[int, BadLine]] = []
    if "refusal_code" in fields.columns:
        refusals = fields.filter(pl.col("refusal_code").is_not_null())
        refused = [(i, BadLine(code, detail)) for i, code, detail
                   in refusals.select("index", "refusal_code", "refusal_detail").iter_rows()]
        fields = fields.filter(pl.col("refusal_code").is_null()).drop("refusal_code", "refusal_detail")
    events = _events(fields).with_columns(plain_ip=pl.col("ip").str.contains(PLAIN_IP))
    other_addresses = [ip for ip in events.filter(~pl.col("plain_ip"))["ip"].unique() if _is_ip(ip)]
    valid_ip = pl.col("plain_ip") | pl.col("ip").is_in(other_addresses)
    events = events.filter(pl.col("readable") & valid_ip).drop("readable", "plain_ip")
    done = pl.concat([events["index"], pl.Series([i for i, _ in refused], dtype=pl.Int64)])
    unread = numbered.filter(~pl.col("index").is_in(done.implode()))["index"]
    parsed, bad_lines = [], refused
    for index in unread:
        try:
            event = parse_one(lines[index])
        except BadLine as bad:
            bad_lines.append((index, bad))
            continue
        if event is not None:
            parsed.append({"index": index, **event})
    bad_lines.sort(key=lambda item: item[0])
    return pl.concat([events, pl.DataFrame(parsed, schema=EVENT_SCHEMA)]), bad_lines


def parse_lines(fmt: str, lines: list[str]) -> tuple[pl.DataFrame, list[tuple[int, BadLine]]]:
    """Events of a batch of lines, each with the position of its line as `index`, and the lines
    that cannot be read, by position. The same as `parse_line` on each line, only faster."""
    return read_batch(lines, BATCH_FIELDS[fmt], functools.partial(parse_line, fmt))

"""Pure parsing of hosting/CDN access logs into listener events (no I/O).

Two shapes are read: nginx/Apache `vhost_combined` (`host:port ip - - [time] "GET /path
HTTP/1.1" status bytes "referer" "agent"`), optionally followed by the Range header in quotes,
and a JSON-lines CDN export (`ts`, `c_ip`, `cs_method`, `cs_host`, `cs_uri`, `sc_status`,
`sc_bytes`, `cs_range`, `cs_user_agent`, `cs_referer`, `geo_country`). Client addresses are
replaced by keyed hashes before anything leaves this module: the full address, and the prefix
that identifies a listener under IAB v2.3 (the IPv4 address, or the IPv6 /64).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone

MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}

COMBINED = re.compile(
    r'^(?:(?P<host>[A-Za-z0-9.\-]+)(?::\d+)?\s+)?(?P<ip>[0-9A-Fa-f:.]+)\s+\S+\s+\S+\s+'
    r'\[(?P<time>[^\]]+)\]\s+"(?P<method>[A-Z]{3,10})\s+(?P<target>\S+)\s+HTTP/[0-9.]+"\s+'
    r'(?P<status>\d{3})\s+(?P<bytes>\d+|-)\s+"(?P<referer>[^"]*)"\s+"(?P<agent>[^"]*)"'
    r'(?:\s+"(?P<range>[^"]*)")?\s*$'
)
CLF_TIME = re.compile(r"^(\d{2})/([A-Z][a-z]{2})/(\d{4}):(\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})$")
RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")
IP_TOKEN = re.compile(r"(?<![\w.:])(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7})(?![\w.:])")


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
        address = ipaddress.ip_address(ip)
        if address.version == 6:
            if address.ipv4_mapped is not None:
                address = address.ipv4_mapped
            else:
                prefix = str(ipaddress.IPv6Network((int(address) >> 64 << 64, 64)))
                return self.digest(str(address)), self.digest(prefix), 6
        text = str(address)
        digest = self.digest(text)
        return digest, digest, 4

    def redact(self, line: str) -> str:
        """A damaged line as it may be kept in quarantine: every address-like token hashed."""
        def replace(match: re.Match) -> str:
            try:
                ipaddress.ip_address(match.group(0))
            except ValueError:
                return match.group(0)
            return "ip:" + self.digest(match.group(0))[:16]

        return IP_TOKEN.sub(replace, line)


def parse_clf_time(text: str) -> datetime:
    m = CLF_TIME.match(text)
    if not m:
        raise BadLine("bad_timestamp", f"unreadable time {text[:40]!r}")
    day, mon, year, hh, mm, ss, sign, oh, om = m.groups()
    if mon not in MONTHS:
        raise BadLine("bad_timestamp", f"unknown month {mon!r}")
    offset = (int(oh) * 60 + int(om)) * (-1 if sign == "-" else 1)
    stamp = datetime(int(year), MONTHS[mon], int(day), int(hh), int(mm), int(ss), tzinfo=timezone.utc)
    return stamp.fromtimestamp(stamp.timestamp() - offset * 60, tz=timezone.utc)


def parse_range(value: str | None) -> tuple[int | None, int | None]:
    if not value or value == "-":
        return None, None
    m = RANGE.match(value.strip())
    if not m:
        return None, None  # multi-range and suffix ranges: bytes served still count
    return int(m.group(1)), (int(m.group(2)) if m.group(2) else None)


@functools.lru_cache(maxsize=1 << 16)
def _is_ip(value: str) -> bool:
    """Listeners repeat: validating each distinct address once saves a third of the parse time."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _event(time, ip, method, host, target, status, bytes_sent, range_value, agent, referer, country) -> dict:
    if not _is_ip(ip):
        raise BadLine("bad_ip", f"not an IP address: {str(ip)[:60]!r}")
    path, _, query = target.partition("?")
    start, end = parse_range(range_value)
    return {
        "event_time": time, "ip": ip, "method": method, "host": (host or "").lower() or None,
        "path": path, "query": query or None, "status": status, "bytes_sent": bytes_sent,
        "range_start": start, "range_end": end, "user_agent": agent or None,
        "referer": None if referer in (None, "", "-") else referer, "country": country,
    }


def parse_combined_line(line: str) -> dict:
    m = COMBINED.match(line)
    if not m:
        raise BadLine("unparseable_line", "does not match the combined log format")
    g = m.groupdict()
    return _event(
        parse_clf_time(g["time"]), g["ip"], g["method"], g["host"], g["target"], int(g["status"]),
        0 if g["bytes"] == "-" else int(g["bytes"]), g["range"], g["agent"], g["referer"], None,
    )


def parse_cdn_json_line(line: str) -> dict:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise BadLine("unparseable_line", f"invalid JSON: {exc.msg}") from exc
    if not isinstance(row, dict):
        raise BadLine("unparseable_line", "JSON value is not an object")
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

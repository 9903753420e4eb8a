"""Hosting/CDN access logs for the simulated network, with the IAB download count they imply.

Listening is generated as sessions whose outcome is known by construction (a full download, a
range-request listen, a partial play under the one-minute threshold, a repeat inside or outside
24 hours, a bot, an Apple Watch duplicate, a data-centre or implausibly busy IP...). Each session
becomes the requests a CDN would log, written by default in two real shapes: nginx/Apache
`vhost_combined` with the Range header appended, and a JSON-lines CDN export with its own column
names. A tenant can be switched (`formats=`) to the shapes real hosts write, modelled on the lines
in `../shared/realdata/logs/`: AWS S3 server access logs (current layout with the Host Header;
no Range field; Object Size; non-download operations such as `REST.GET.ACL`, `REST.PUT.PART`,
`REST.COPY.OBJECT_GET` mixed in), CloudFront standard logs (33 fields with `sc-content-len` and
the range fields, URL-encoded agents, a few `000` lines of clients that left before any
response) and plain `combined` (no host, no Range). Lines that are not requests (other
operations, `000`) are drawn from a generator of their own and are no requests of the truth;
the requests, and so the truth, are the same in every format. The ground truth counts the sessions meant to count, per episode and UTC day, with the rolling
24-hour first-touch window of IAB v2.3.
"""

from __future__ import annotations

import gzip
import hashlib
import ipaddress
import json
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

MINUTE_AUDIO_BYTES = 16_000 * 60  # the simulator encodes at 128 kb/s
HEADER_ALLOWANCE = 64 * 1024      # ID3 header room used by the pipeline's default threshold
DATACENTER_CIDRS = ("203.0.113.0/24", "198.18.0.0/15")
BUSY_IP_DOWNLOADS = 150           # per day, above the pipeline's default threshold of 100

APPS = (
    "AppleCoreMedia/1.0.0.21G93 (iPhone; U; CPU OS 17_6_1 like Mac OS X; en_us)",
    "Podcasts/1680.5 CFNetwork/1496.0.7 Darwin/23.5.0",
    "Spotify/8.9.58 iOS/17.6.1 (iPhone15,2)",
    "Spotify/8.9.60.462 Android/34 (SM-S918B)",
    "Overcast/3.0 (+http://overcast.fm/; iOS podcast app)",
    "AntennaPod/3.4.0",
    "PodcastAddict/v5 - Dalvik/2.1.0 (Linux; U; Android 14; Pixel 8 Build/AP2A.240805.005)",
    "CastBox/9.3.2-240708161 (Linux;Android 13) ExoPlayerLib/2.10.4",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
)
BOTS = (
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "python-requests/2.32.3 crawler",
)
WATCH = "atc/1.0 watchOS/10.5 model/Watch6,2 hwp/t8301 build/21T576 (6; dt:279)"


@dataclass
class Request:
    time: datetime
    ip: str
    user_agent: str
    host: str
    path: str
    method: str = "GET"
    status: int = 200
    range_start: int | None = None
    range_end: int | None = None
    bytes_sent: int = 0
    object_size: int | None = None  # the file's size (S3 `Object Size`)
    referer: str = "-"
    country: str | None = None
    # Added after the main generation (a shared household): draws no damage from the main
    # generator, so every other request and the truth about it stay the same.
    extra: bool = False


@dataclass
class LogTruth:
    downloads: Counter = field(default_factory=Counter)  # (tenant, enclosure, day) -> count
    unmatched_downloads: Counter = field(default_factory=Counter)  # (tenant, host+path, day)
    sessions: Counter = field(default_factory=Counter)  # kind -> sessions
    damaged_lines: int = 0
    lines: int = 0  # every line written but W3C header lines
    non_download_lines: int = 0  # S3 operations that are not a GET/HEAD of an object
    closed_lines: int = 0  # CloudFront `000`: the client left before any response (stored, never counted)
    # Every counted download window (IAB unit: listener prefix + user agent + episode, rolling
    # 24 h from the first request that is not a 0-1 probe), in generation order.
    windows: list[DownloadWindow] = field(default_factory=list)
    # Distinct user agents per (tenant, household prefix) over every request the logs hold.
    household_agents: dict[tuple[str, str], set[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class DownloadWindow:
    tenant_id: str
    enclosure_url_normalized: str
    ip: str            # the household's address as the logs show it first
    ip_prefix: str     # the household key: the IPv4 address, or the IPv6 /64 network
    user_agent: str
    window_start: datetime
    bytes_covered: int  # union of the window's byte ranges (probes excluded, overlaps once)


def household_prefix(ip: str) -> str:
    address = ipaddress.ip_address(ip)
    if address.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return ip


def _covered(requests: list[Request]) -> tuple[datetime, int]:
    """(first counted request time, bytes covered) of one window's requests, reassembled the way
    the IAB models do: 0-1 probes dropped, ranges merged, overlaps counted once."""
    spans = []
    first = None
    for r in requests:
        if r.range_start == 0 and r.range_end == 1:
            continue
        lo = r.range_start or 0
        spans.append((lo, lo + r.bytes_sent - 1))
        first = r.time if first is None else min(first, r.time)
    spans.sort()
    total, reach = 0, -1
    for lo, hi in spans:
        if hi <= reach:
            continue
        total += hi - max(lo, reach + 1) + 1
        reach = hi
    return first, total


def _record_window(truth: LogTruth, tenant: str, ep: dict[str, Any], ip: str, ua: str,
                   requests: list[Request]) -> None:
    start, covered = _covered(requests)
    truth.windows.append(DownloadWindow(tenant, ep["enclosure_url_normalized"], ip, household_prefix(ip), ua,
                                        start, covered))


def _household_ip(rng: random.Random, v6: bool) -> str:
    if v6:
        prefix = rng.getrandbits(32)
        return str(ipaddress.IPv6Address((0x2A02 << 112) | (prefix << 64) | rng.getrandbits(64)))
    while True:
        ip = ipaddress.IPv4Address(rng.randint(0x18000000, 0xDF000000))
        if ip.is_global and not any(ip in ipaddress.ip_network(c) for c in DATACENTER_CIDRS):
            return str(ip)


def _same_prefix_v6(rng: random.Random, ip: str) -> str:
    """Another address in the same /64 (privacy extensions rotate the interface id)."""
    value = int(ipaddress.IPv6Address(ip))
    return str(ipaddress.IPv6Address((value >> 64 << 64) | rng.getrandbits(64)))


def _ranges(total: int, upto: int, rng: random.Random) -> list[tuple[int, int]]:
    """Byte ranges a player requests to fetch [0, upto) of a file: a 0-1 probe, then chunks
    (some overlapping, as players re-request)."""
    spans = [(0, 1)]
    start = 0
    while start < upto:
        size = rng.choice((262_144, 524_288, 1_048_576, 2_097_152))
        end = min(upto, start + size) - 1
        spans.append((max(0, start - (rng.random() < 0.2) * 4096), end))
        start = end + 1
    return spans


def generate_logs(truth_doc: dict[str, Any], out_dir: Path, days: list[date], seed: int = 1,
                  listeners_per_tenant: int = 120, damaged_rate: float = 0.004,
                  shared_ip_user_agents: int = 0, formats: dict[str, str] | None = None) -> LogTruth:
    """Write access logs for `days` under out_dir/<tenant>/ and return the ground truth.

    `formats` switches tenants to another log format (`LOG_FORMATS`); the others keep the
    default: `vhost_combined` and `cdn_json` for every other tenant.

    `shared_ip_user_agents` > 0 adds, per tenant, one shared address (an office or campus NAT)
    behind which that many distinct apps each download whole episodes every day: downloads that
    count, from a household no attribution should trust. It draws from its own generator."""
    rng = random.Random(seed)
    truth = LogTruth()
    episodes_by_tenant: dict[str, list[dict[str, Any]]] = {}
    for ep in truth_doc["episodes"]:
        if ep["valid"] and ep.get("enclosure_url_normalized"):
            episodes_by_tenant.setdefault(ep["tenant_id"], []).append(ep)
    for t_index, tenant in enumerate(sorted(episodes_by_tenant)):
        episodes = episodes_by_tenant[tenant]
        requests: list[Request] = []
        households = []
        for _ in range(listeners_per_tenant):
            v6 = rng.random() < 0.3
            ip = _household_ip(rng, v6)
            devices = rng.sample(APPS, rng.randint(1, 3))
            households.append((ip, v6, devices))
        used: set[tuple[str, str]] = set()  # (ip, episode): one session story per household and episode
        for day in days:
            midnight = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
            for ip, v6, devices in households:
                for ua in devices:
                    for _ in range(rng.randint(0, 3)):
                        ep = rng.choice(episodes)
                        if (ip, ep["enclosure_url_normalized"]) in used:
                            continue
                        used.add((ip, ep["enclosure_url_normalized"]))
                        # Keep sessions away from midnight so 24 h windows never straddle the truth.
                        start = midnight + timedelta(minutes=rng.randint(30, 20 * 60))
                        _session(rng, truth, requests, tenant, ep, ip, v6, ua, start)
            _noise(rng, truth, requests, tenant, episodes, midnight, t_index)
        if shared_ip_user_agents:
            _shared_household(random.Random(f"{seed}:shared:{tenant}"), truth, requests, tenant, episodes,
                              days, shared_ip_user_agents)
        for r in requests:
            truth.household_agents.setdefault((tenant, household_prefix(r.ip)), set()).add(r.user_agent)
        fmt = (formats or {}).get(tenant) or ("cdn_json" if t_index % 2 == 1 else "vhost_combined")
        _write(rng, truth, out_dir / tenant, tenant, requests, days, damaged_rate, fmt, seed)
    return truth


def _enclosure_parts(ep: dict[str, Any]) -> tuple[str, str]:
    rest = ep["enclosure_url_normalized"].split("://", 1)[1]
    host, path = rest.split("/", 1)
    return host, "/" + path


def _threshold(ep: dict[str, Any]) -> int:
    length = ep["enclosure_length"]
    if not ep.get("duration_seconds") or ep["duration_seconds"] < 60:
        return length
    return min(length, HEADER_ALLOWANCE + MINUTE_AUDIO_BYTES)


def _count(truth: LogTruth, tenant: str, ep: dict[str, Any], when: datetime, kind: str) -> None:
    truth.sessions[kind] += 1
    truth.downloads[(tenant, ep["enclosure_url_normalized"], when.date().isoformat())] += 1


def _emit_listen(rng, requests, ep, ip, ua, start, upto, use_ranges, v6) -> None:
    host, path = _enclosure_parts(ep)
    total = ep["enclosure_length"]
    query = rng.choice(("", "", "?aid=rss_feed", "?source=feed&v=2"))
    if not use_ranges:
        requests.append(Request(start, ip, ua, host, path + query, status=200, bytes_sent=upto, object_size=total))
        return
    t = start
    for lo, hi in _ranges(total, upto, rng):
        hi = min(hi, total - 1)
        client_ip = _same_prefix_v6(rng, ip) if v6 and rng.random() < 0.3 else ip
        requests.append(Request(t, client_ip, ua, host, path + query, status=206,
                                range_start=lo, range_end=hi, bytes_sent=hi - lo + 1, object_size=total))
        t += timedelta(seconds=rng.randint(1, 20))


def _session(rng, truth, requests, tenant, ep, ip, v6, ua, start) -> None:
    total, threshold = ep["enclosure_length"], _threshold(ep)
    roll = rng.random()
    first = len(requests)
    if roll < 0.55:  # a listen that qualifies: whole file or enough ranges
        upto = total if rng.random() < 0.4 or threshold >= total else rng.randint(threshold + 200_000, total) if threshold + 200_000 < total else total
        _emit_listen(rng, requests, ep, ip, ua, start, upto, use_ranges=rng.random() < 0.7, v6=v6)
        _count(truth, tenant, ep, start, "listen")
        if rng.random() < 0.25:  # the same listener again within 24 h: one download
            again = start + timedelta(hours=rng.randint(1, 12))
            _emit_listen(rng, requests, ep, ip, ua, again, total, use_ranges=True, v6=v6)
            truth.sessions["repeat_within_24h"] += 1
            _record_window(truth, tenant, ep, ip, ua, requests[first:])
        elif rng.random() < 0.15:  # and again after 24 h: a second download
            again_at = len(requests)
            _record_window(truth, tenant, ep, ip, ua, requests[first:again_at])
            again = start + timedelta(hours=rng.randint(25, 30))
            _emit_listen(rng, requests, ep, ip, ua, again, total, use_ranges=False, v6=v6)
            _count(truth, tenant, ep, again, "repeat_after_24h")
            _record_window(truth, tenant, ep, ip, ua, requests[again_at:])
        else:
            _record_window(truth, tenant, ep, ip, ua, requests[first:])
    elif roll < 0.70:  # a partial play under the one-minute threshold
        upto = max(2, min(threshold // 3, total // 3))
        _emit_listen(rng, requests, ep, ip, ua, start, upto, use_ranges=True, v6=v6)
        truth.sessions["below_threshold"] += 1
    elif roll < 0.78:  # an Apple Watch fetching alongside the phone: dropped
        _emit_listen(rng, requests, ep, ip, WATCH, start, total, use_ranges=False, v6=v6)
        truth.sessions["watchos"] += 1
    elif roll < 0.86:  # HEAD / 304 / 404 / 416 and 0-1 probes that never continue
        host, path = _enclosure_parts(ep)
        kind = rng.choice(("head", "304", "404", "probe"))
        req = Request(start, ip, ua, host, path, object_size=ep["enclosure_length"])
        if kind == "head":
            req.method, req.status = "HEAD", 200
        elif kind == "304":
            req.status = 304
        elif kind == "404":
            req.status, req.bytes_sent = 404, 153
        else:
            req.status, req.range_start, req.range_end, req.bytes_sent = 206, 0, 1, 2
        requests.append(req)
        truth.sessions[f"not_counted_{kind}"] += 1
    else:  # several apps in one household on the same episode: each counts (IAB: 6 UAs -> 6)
        for other in rng.sample(APPS, 2):
            at = len(requests)
            _emit_listen(rng, requests, ep, ip, other, start + timedelta(minutes=rng.randint(0, 30)),
                         total, use_ranges=False, v6=v6)
            _count(truth, tenant, ep, start, "household_multi_ua")
            _record_window(truth, tenant, ep, ip, other, requests[at:])


SHARED_AGENTS = (
    "Spotify/8.9.{n} iOS/17.6.1 (iPhone15,2)",
    "Podcasts/16{n}.5 CFNetwork/1496.0.7 Darwin/23.5.0",
    "Overcast/3.{n} (+http://overcast.fm/; iOS podcast app)",
    "AntennaPod/3.{n}.0",
)


def _shared_household(side, truth, requests, tenant, episodes, days, agents) -> None:
    ip = _household_ip(side, False)
    uas = [SHARED_AGENTS[i % len(SHARED_AGENTS)].format(n=10 + i) for i in range(agents)]
    used: set[tuple[str, str]] = set()
    for day in days:
        midnight = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
        for ua in uas:
            ep = side.choice(episodes)
            while (ua, ep["enclosure_url_normalized"]) in used:  # one window per app and episode
                ep = side.choice(episodes)
            used.add((ua, ep["enclosure_url_normalized"]))
            start = midnight + timedelta(minutes=side.randint(30, 20 * 60))
            host, path = _enclosure_parts(ep)
            request = Request(start, ip, ua, host, path, status=200, bytes_sent=ep["enclosure_length"], extra=True,
                              object_size=ep["enclosure_length"])
            requests.append(request)
            _count(truth, tenant, ep, start, "shared_ip")
            _record_window(truth, tenant, ep, ip, ua, [request])


def _noise(rng, truth, requests, tenant, episodes, midnight, t_index) -> None:
    """Bots, data-centre and busy IPs, and requests for files that are in no feed."""
    for _ in range(40):
        ep = rng.choice(episodes)
        host, path = _enclosure_parts(ep)
        when = midnight + timedelta(minutes=rng.randint(30, 1380))
        requests.append(Request(when, _household_ip(rng, False), rng.choice(BOTS), host, path,
                                bytes_sent=ep["enclosure_length"], object_size=ep["enclosure_length"]))
        truth.sessions["bot"] += 1
    for _ in range(20):
        ep = rng.choice(episodes)
        host, path = _enclosure_parts(ep)
        network = ipaddress.ip_network(rng.choice(DATACENTER_CIDRS))
        ip = str(network[rng.randint(1, network.num_addresses - 2)])
        when = midnight + timedelta(minutes=rng.randint(30, 1380))
        requests.append(Request(when, ip, rng.choice(APPS), host, path, bytes_sent=ep["enclosure_length"],
                                object_size=ep["enclosure_length"]))
        truth.sessions["datacenter"] += 1
    busy = _household_ip(rng, False)
    for i in range(BUSY_IP_DOWNLOADS):
        ep = episodes[i % len(episodes)]
        host, path = _enclosure_parts(ep)
        when = midnight + timedelta(minutes=30 + i * 5)
        requests.append(Request(when, busy, APPS[i % 3], host, path, bytes_sent=ep["enclosure_length"],
                                object_size=ep["enclosure_length"]))
    truth.sessions["busy_ip"] += BUSY_IP_DOWNLOADS
    for i in range(5):  # media that no feed lists: counted as unmatched downloads
        host = f"cdn.{tenant}.example.com"
        path = f"/retired/old-episode-{t_index}-{i}.mp3"
        when = midnight + timedelta(hours=2 + i)
        requests.append(Request(when, _household_ip(rng, False), APPS[0], host, path, bytes_sent=9_000_000,
                                object_size=9_000_000))
        truth.unmatched_downloads[(tenant, host + path, when.date().isoformat())] += 1


def _combined_line(r: Request) -> str:
    stamp = r.time.strftime("%d/%b/%Y:%H:%M:%S +0000")
    rng_header = f"bytes={r.range_start}-{r.range_end}" if r.range_start is not None else "-"
    return (f'{r.host}:443 {r.ip} - - [{stamp}] "{r.method} {r.path} HTTP/1.1" {r.status} {r.bytes_sent} '
            f'"{r.referer}" "{r.user_agent}" "{rng_header}"')


def _json_line(r: Request) -> str:
    return json.dumps({
        "ts": r.time.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "c_ip": r.ip, "cs_method": r.method, "cs_host": r.host, "cs_uri": r.path,
        "sc_status": r.status, "sc_bytes": r.bytes_sent,
        "cs_range": f"bytes={r.range_start}-{r.range_end}" if r.range_start is not None else None,
        "cs_user_agent": r.user_agent, "cs_referer": None if r.referer == "-" else r.referer,
        "geo_country": r.country or "US",
    }, separators=(",", ":"))


DAMAGE = (
    lambda line: line[: len(line) // 2],                     # truncated write
    lambda line: "\x00\x00\x00" + line[5:],                   # garbage bytes
    lambda line: line.replace('"', "", 2),                    # broken quoting
    lambda line: "-",                                          # placeholder line
)


def _plain_combined_line(r: Request) -> str:
    stamp = r.time.strftime("%d/%b/%Y:%H:%M:%S +0000")
    return (f'{r.ip} - - [{stamp}] "{r.method} {r.path} HTTP/1.1" {r.status} {r.bytes_sent} '
            f'"{r.referer}" "{r.user_agent}"')


S3_OWNER = "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"
S3_ERRORS = {403: "AccessDenied", 404: "NoSuchKey", 416: "InvalidRange"}
# Lines of a bucket's log that are no download (console, uploads, copies), as in the JSPirates log.
S3_OTHER_OPERATIONS = (
    ("REST.GET.ACL", "GET", "?acl", "S3Console/0.4"),
    ("REST.PUT.PART", "PUT", "?partNumber=2&uploadId=x", "aws-sdk-java/1.4.5"),
    ("REST.COPY.OBJECT_GET", "PUT", "", "aws-cli/2.15.0"),
    ("REST.GET.BUCKET", "GET", "?prefix=", "S3Console/0.4"),
)


def _stable_id(*parts: Any) -> str:
    return hashlib.blake2b(repr(parts).encode(), digest_size=8).hexdigest().upper()


def _s3_request_id(r: Request) -> str:
    return _stable_id(r.time, r.ip, r.path, r.range_start, r.user_agent)


def _s3_line(r: Request, bucket: str) -> str:
    """The current 27-field layout (Host Header = the media host the client asked, virtual-hosted
    style: the Request-URI is the enclosure's path)."""
    stamp = r.time.strftime("%d/%b/%Y:%H:%M:%S +0000")
    key = r.path.split("?", 1)[0].lstrip("/")
    sent = str(r.bytes_sent) if r.bytes_sent else "-"
    size = str(r.object_size) if r.object_size is not None and r.status < 400 else "-"
    return (f'{S3_OWNER} {bucket} [{stamp}] {r.ip} - {_s3_request_id(r)} REST.{r.method}.OBJECT {key} '
            f'"{r.method} {r.path} HTTP/1.1" {r.status} {S3_ERRORS.get(r.status, "-")} {sent} {size} 41 12 '
            f'"{r.referer}" "{r.user_agent}" - aGVsbG8= - TLS_AES_128_GCM_SHA256 - {r.host} TLSv1.3 - - us-east-1')


def _s3_other_line(rng: random.Random, when: datetime, bucket: str, host: str, key: str) -> str:
    operation, method, query, agent = rng.choice(S3_OTHER_OPERATIONS)
    stamp = when.strftime("%d/%b/%Y:%H:%M:%S +0000")
    return (f'{S3_OWNER} {bucket} [{stamp}] 10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)} '
            f'arn:aws:iam::123456789012:user/publisher {rng.getrandbits(64):016X} {operation} {key} '
            f'"{method} /{key}{query} HTTP/1.1" 200 - 1024 - 30 10 "-" "{agent}" - aGVsbG8= SigV4 '
            f'TLS_AES_128_GCM_SHA256 AuthHeader {host} TLSv1.3 - - us-east-1')


CLOUDFRONT_FIELDS = ("date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) "
                     "cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id x-host-header "
                     "cs-protocol cs-bytes time-taken x-forwarded-for ssl-protocol ssl-cipher "
                     "x-edge-response-result-type cs-protocol-version fle-status fle-encrypted-fields c-port "
                     "time-to-first-byte x-edge-detailed-result-type sc-content-type sc-content-len sc-range-start "
                     "sc-range-end").split()
CLOUDFRONT_HEADER_BYTES = 412  # response headers, which sc-bytes includes


def _cf_encode(value: str) -> str:
    return value.replace("%", "%25").replace(" ", "%20").replace("\t", "%09").replace('"', "%22")


def _cloudfront_line(r: Request, distribution: str, closed: bool = False) -> str:
    """A 33-field standard log line; `closed`: the client left before any response (`000`)."""
    path, _, query = r.path.partition("?")
    body = 0 if closed else r.bytes_sent
    values = [
        r.time.strftime("%Y-%m-%d"), r.time.strftime("%H:%M:%S"), "FRA56-P1",
        str(body + (0 if closed else CLOUDFRONT_HEADER_BYTES)), r.ip, r.method, distribution, path,
        "000" if closed else str(r.status), _cf_encode(r.referer), _cf_encode(r.user_agent), query or "-", "-",
        "Error" if closed else "Hit", f"{_s3_request_id(r)}==", r.host, "https", "180", "0.120", "-", "TLSv1.3",
        "TLS_AES_128_GCM_SHA256", "Error" if closed else "Hit", "HTTP/2.0", "-", "-", "443", "0.010",
        "ClientHungUpRequest" if closed else "Hit", "audio/mpeg", "-" if closed else str(body),
        "-" if closed or r.range_start is None else str(r.range_start),
        "-" if closed or r.range_end is None else str(r.range_end),
    ]
    return "\t".join(values)


DAMAGE = (
    lambda line: line[: len(line) // 2],                     # truncated write
    lambda line: "\x00\x00\x00" + line[5:],                   # garbage bytes
    lambda line: line.replace('"', "", 2),                    # broken quoting
    lambda line: "-",                                          # placeholder line
)
LOG_FORMATS = ("vhost_combined", "cdn_json", "combined", "s3", "cloudfront")


def _write(rng, truth, folder: Path, tenant: str, requests: list[Request], days, damaged_rate, fmt: str,
           seed: int = 1) -> None:
    if fmt not in LOG_FORMATS:
        raise ValueError(f"unknown log format {fmt!r}; one of {', '.join(LOG_FORMATS)}")
    folder.mkdir(parents=True, exist_ok=True)
    # Lines that are no request (other S3 operations, CloudFront 000s) come from a generator of
    # their own: the main one, and so every other tenant's traffic, stays as in the default formats.
    extras = random.Random(f"{seed}:{tenant}:{fmt}")
    bucket, distribution = f"{tenant}-media", f"d{_stable_id(tenant).lower()[:13]}.cloudfront.net"
    by_day: dict[date, list[Request]] = {}
    for r in requests:
        by_day.setdefault(r.time.date(), []).append(r)
    for day, rows in sorted(by_day.items()):
        rows.sort(key=lambda r: r.time)
        lines = []
        for r in rows:
            if fmt == "s3" and extras.random() < 0.03:
                key = r.path.split("?", 1)[0].lstrip("/")
                lines.append(_s3_other_line(extras, r.time, bucket, r.host, key))
                truth.non_download_lines += 1
            if fmt == "cloudfront" and extras.random() < 0.01:
                lines.append(_cloudfront_line(r, distribution, closed=True))
                truth.closed_lines += 1
            line = {"cdn_json": _json_line, "vhost_combined": _combined_line, "combined": _plain_combined_line,
                    "s3": lambda r: _s3_line(r, bucket),
                    "cloudfront": lambda r: _cloudfront_line(r, distribution)}[fmt](r)
            lines.append(line)
            if not r.extra and rng.random() < damaged_rate:
                # A damaged extra line (a torn write, bytes from another stream): the requests
                # themselves all stay readable, so the download truth is exact.
                damage = rng.choice(DAMAGE)
                if fmt == "cloudfront" and damage is DAMAGE[2]:  # no quotes to break in a TSV line
                    damage = DAMAGE[0]
                lines.append(damage(line))
                truth.damaged_lines += 1
        truth.lines += len(lines)
        if fmt == "cloudfront":
            lines = ["#Version: 1.0", "#Fields: " + " ".join(CLOUDFRONT_FIELDS), *lines]
        text = "\n".join(lines) + "\n"
        if fmt == "cdn_json":
            name = f"cdn-export-{tenant}-{day.isoformat()}.jsonl.gz"
            (folder / name).write_bytes(gzip.compress(text.encode(), mtime=0))
        elif fmt == "cloudfront":
            (folder / f"{distribution.split('.')[0].upper()}.{day.isoformat()}-00.{tenant}.gz").write_bytes(
                gzip.compress(text.encode(), mtime=0))
        elif fmt == "s3":
            (folder / f"{day.isoformat()}-00-00-00-{tenant.upper()}").write_text(text)
        elif day.day % 2:
            (folder / f"access-{tenant}-{day.isoformat()}.log.gz").write_bytes(gzip.compress(text.encode(), mtime=0))
        else:
            (folder / f"access-{tenant}-{day.isoformat()}.log").write_text(text)


def truth_document(truth: LogTruth) -> dict[str, Any]:
    return {
        "downloads": [
            {"tenant_id": t, "enclosure_url_normalized": e, "day": d, "downloads": n}
            for (t, e, d), n in sorted(truth.downloads.items())
        ],
        "unmatched_downloads": [
            {"tenant_id": t, "url": u, "day": d, "downloads": n}
            for (t, u, d), n in sorted(truth.unmatched_downloads.items())
        ],
        "sessions": dict(truth.sessions),
        "damaged_lines": truth.damaged_lines,
        "lines": truth.lines,
        "non_download_lines": truth.non_download_lines,
        "closed_lines": truth.closed_lines,
    }

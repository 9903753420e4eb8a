"""Podbean- and Simplecast-shaped APIs of the simulated network.

Shows with index % 9 == 2 are hosted on Podbean, index % 9 == 5 on Simplecast. Their episodes
are the feed's items (same enclosure URLs; Simplecast also shows the guids), and daily
downloads come from `daily_downloads`, like the other hosts.

Podbean (`/podbean/v1/`): OAuth client credentials (`POST oauth/token`, HTTP Basic or form
fields) give bearer tokens that expire after `token_seconds`; every account has a leaky bucket
(capacity, leak per second) and a full bucket answers 429 with Retry-After; `episodes` pages
with offset/limit and `has_more`; `podcastStats/stats` answers `{"YYYY-MM-DD": n}` for an
episode and a date range whose end is clamped to the last day with data.

Simplecast (`/simplecast/`): a bearer token per account (a rotated one answers "expired");
documents are `{collection, pages: {next: {href}}}`; `analytics?podcast=` links to downloads
(per day with `interval=day`), location and technology breakdowns; episodes carry their ad
markers.

Planted bad records: a Podbean count that is not a number, a Simplecast day without a count,
and the odd ad marker at a negative offset. Faults: the shared kinds plus `expired_token`, a
401 saying a valid token expired (Podbean then really drops the token).
"""

from __future__ import annotations

import base64
import hashlib
import math
import random
import secrets
import threading
import time
import uuid
from collections import Counter
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from simulator.network import Show
from simulator.platforms import (
    API_LAST_DAY, FAULT_KINDS, ApiEpisode, HostedShow, Reply, _api_episode, _digest, _json, api_token,
    daily_downloads, is_bad_record,
)

HOST_APIS = ("podbean", "simplecast")
HOST_FAULT_KINDS = (*FAULT_KINDS, "expired_token")
# Podbean's bucket holds 60 beans and leaks 2 per second; the simulator's leaks 100 times faster
# by default so the demo is not paced by it (tests choose their own).
PODBEAN_BUCKET = (60, 200.0)
PODBEAN_TOKEN_SECONDS = 3600.0
PODBEAN_PER_PAGE_MAX = 100
SIMPLECAST_PER_PAGE_MAX = 1000
BAD_MARKER_MODULUS = 61
ID_NAMESPACE = uuid.UUID("3c1f4f4e-6a57-4d3e-9d0c-1e0cbd5a2f10")

COUNTRIES = (("US", "United States"), ("GB", "United Kingdom"), ("DE", "Germany"), ("CA", "Canada"),
             ("AU", "Australia"), ("BR", "Brazil"))
APPLICATIONS = ("Apple Podcasts", "Spotify", "Overcast", "Pocket Casts", "Castro", "Web Browser")
DEVICE_CLASSES = ("mobile", "desktop", "smart_speaker", "tablet", "other")


# -- identities and credentials ----------------------------------------------------------------


def _b36(number: int, width: int) -> str:
    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    out = ""
    for _ in range(width):
        number, rest = divmod(number, 36)
        out += digits[rest]
    return out


def source_id(platform: str, show_index: int) -> str:
    if platform == "podbean":
        return "pb" + _b36(_digest("podbean-podcast", show_index), 8).lower()
    return str(uuid.uuid5(ID_NAMESPACE, f"simplecast-podcast:{show_index}"))


def _episode_id(platform: str, show_index: int, number: int) -> str:
    if platform == "podbean":
        return _b36(_digest("podbean-episode", show_index, number), 10)
    return str(uuid.uuid5(ID_NAMESPACE, f"simplecast-episode:{show_index}:{number}"))


def hosted_show(platform: str, show_index: int, show: Show) -> HostedShow:
    episodes = []
    for ep in show.episodes:
        if ep.defect == "duplicate_guid":  # a feed mistake: the host has each episode once
            continue
        base = _api_episode(platform, show_index, show, ep)
        episode_id = _episode_id(platform, show_index, len(show.episodes) - ep.index)
        guid = ep.guid if ep.guid is not None else f"{platform.title()}-{episode_id}"
        episodes.append(replace(base, episode_id=episode_id, guid=guid))
    return HostedShow(platform, show_index, show, source_id(platform, show_index), tuple(episodes))


def podbean_client_id(seed: int, tenant_id: str) -> str:
    return "pbc_" + hashlib.sha256(f"{seed}:podbean:{tenant_id}:client".encode()).hexdigest()[:24]


def simplecast_token(seed: int, tenant_id: str, generation: int = 0) -> str:
    """The account's bearer token; each rotation makes a new one (generation 0 is the first)."""
    if generation == 0:
        return api_token(seed, "simplecast", tenant_id)
    return hashlib.sha256(f"{seed}:simplecast:{tenant_id}:{generation}".encode()).hexdigest()[:40]


def credential_envs(platform: str, tenant_id: str) -> dict[str, str]:
    suffix = tenant_id.upper()
    if platform == "podbean":
        return {"client_id_env": f"PODBEAN_CLIENT_ID_{suffix}", "client_secret_env": f"PODBEAN_CLIENT_SECRET_{suffix}"}
    return {"token_env": f"SIMPLECAST_TOKEN_{suffix}"}


# -- numbers (pure) -----------------------------------------------------------------------------


def _split(n: int, names: tuple, rng: random.Random, weights: tuple[float, ...]) -> Counter:
    return Counter(rng.choices(names, weights, k=n))


def locations(seed: int, episode: ApiEpisode, day: date, revision: int = 0) -> Counter:
    """Downloads of an episode on a day by country code."""
    n = daily_downloads(seed, "simplecast", episode, day, revision) or 0
    rng = random.Random(_digest(seed, "simplecast-location", episode.episode_id, day.isoformat(), revision))
    return _split(n, tuple(c for c, _ in COUNTRIES), rng, (50, 12, 9, 8, 6, 4))


def technology(seed: int, episode: ApiEpisode, day: date, revision: int = 0) -> Counter:
    """Downloads of an episode on a day by (dimension, name): applications and device classes."""
    n = daily_downloads(seed, "simplecast", episode, day, revision) or 0
    rng = random.Random(_digest(seed, "simplecast-technology", episode.episode_id, day.isoformat(), revision))
    apps = _split(n, APPLICATIONS, rng, (40, 30, 8, 8, 4, 10))
    devices = _split(n, DEVICE_CLASSES, rng, (70, 12, 8, 6, 4))
    return Counter({**{("application", k): v for k, v in apps.items()},
                    **{("device_class", k): v for k, v in devices.items()}})


def ad_markers(seed: int, episode: ApiEpisode) -> list[dict[str, Any]]:
    """The episode's ad breaks: a pre-roll, one or two mid-rolls and a post-roll when the
    duration is known. About one marker in BAD_MARKER_MODULUS sits at a negative offset."""
    duration_ms = (episode.duration or 0) * 1000
    spots = [("preroll", 0)]
    if duration_ms:
        mids = 1 + _digest(seed, "simplecast-mids", episode.episode_id) % 2
        spots += [("midroll", duration_ms * k // (mids + 1)) for k in range(1, mids + 1)]
        spots.append(("postroll", duration_ms))
    markers = []
    for position, (kind, offset) in enumerate(spots):
        if _digest(seed, "simplecast-bad-marker", episode.episode_id, position) % BAD_MARKER_MODULUS == 0:
            offset = -1000 - offset
        markers.append({
            "id": str(uuid.uuid5(ID_NAMESPACE, f"marker:{episode.episode_id}:{position}")),
            "ad_type": kind, "ad_limit": 2 if kind == "midroll" else 1, "offset_milliseconds": offset,
            "name": f"{kind.title()} {position}",
        })
    return markers


def add_truth(out: dict[str, Any], hosted: list[HostedShow], seed: int, first_day: date, last_day: date,
              revision: int) -> None:
    """Add what a clean sync of Simplecast's breakdowns and ad markers must store to `out`
    (`platform_truth`'s dictionary, whose episodes and downloads already cover both hosts)."""
    out["locations"] = {"simplecast": {}}
    out["technology"] = {"simplecast": {}}
    out["ad_markers"] = {"simplecast": {}}
    for show in hosted:
        if show.platform != "simplecast":
            continue
        key = (show.tenant_id, show.source_id)
        for ep in show.episodes:
            for marker in ad_markers(seed, ep):
                if marker["offset_milliseconds"] < 0:
                    out["quarantined"]["simplecast"][(*key, None)] += 1
                else:
                    out["ad_markers"]["simplecast"][(*key, ep.episode_id, marker["id"])] = (
                        marker["ad_type"], Decimal(marker["offset_milliseconds"]) / 1000)
            day = first_day
            while day <= min(last_day, API_LAST_DAY):
                for code, n in locations(seed, ep, day, revision).items():
                    out["locations"]["simplecast"][(*key, ep.episode_id, day, code)] = n
                for (dimension, name), n in technology(seed, ep, day, revision).items():
                    out["technology"]["simplecast"][(*key, ep.episode_id, day, dimension, name)] = n
                day += timedelta(days=1)


def add_sources(section: dict[str, Any], environ: dict[str, str], hosted: list[HostedShow], seed: int,
                base_url: str, options: dict[str, Any]) -> None:
    """Add the `podbean:` and `simplecast:` sections of sources.yaml and their credentials."""
    # 40 requests per 0.2 s stays within the simulator's default bucket (60 beans, 200 per second),
    # also when a caller shortens `rate_limit_seconds` to 0.2.
    section["podbean"] = {"base_url": f"{base_url}/podbean/v1", "rate_limit_requests": 40,
                          "rate_limit_seconds": 0.2, "shows": [], **options}
    section["simplecast"] = {"base_url": f"{base_url}/simplecast", "shows": [], **options}
    for show in hosted:
        if show.platform not in HOST_APIS:
            continue
        envs = credential_envs(show.platform, show.tenant_id)
        if show.platform == "podbean":
            environ[envs["client_id_env"]] = podbean_client_id(seed, show.tenant_id)
            environ[envs["client_secret_env"]] = api_token(seed, "podbean", show.tenant_id)
        else:
            environ[envs["token_env"]] = simplecast_token(seed, show.tenant_id)
        section[show.platform]["shows"].append({"tenant_id": show.tenant_id, "podcast_id": show.source_id, **envs})


# -- the servers --------------------------------------------------------------------------------


def _day(raw: str | None) -> date | None:
    try:
        return date.fromisoformat(raw or "")
    except ValueError:
        return None


def _bearer(headers: Any) -> str:
    auth = headers.get("Authorization") or ""
    return auth[7:].strip() if auth[:7].lower() == "bearer " else ""


def _token_error(description: str) -> Reply:
    return _json(401, {"error": "invalid_token", "error_description": description},
                 {"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{description}"'})


EXPIRED = "The access token provided has expired"
INVALID = "The access token provided is invalid"


class HostApis:
    """Request handling behind `/podbean/v1/...` and `/simplecast/...`; `apis` is the
    `PlatformApis` whose network, fault mode and restatements they share."""

    def __init__(self, apis: Any, podbean_bucket: tuple[int, float] | None = None,
                 podbean_token_seconds: float | None = None):
        self.apis = apis
        self.seed = apis.network.seed
        self.podbean_bucket = podbean_bucket or PODBEAN_BUCKET
        self.podbean_token_seconds = PODBEAN_TOKEN_SECONDS if podbean_token_seconds is None else podbean_token_seconds
        self.tokens_issued: Counter[str] = Counter()     # tenant -> Podbean tokens granted
        self.expired_refusals: Counter[str] = Counter()  # platform -> 401s for tokens past their time
        self.bucket_refusals: Counter[str] = Counter()   # tenant -> Podbean 429s from a full bucket
        self._lock = threading.Lock()
        self._podbean_tokens: dict[str, tuple[str, float]] = {}  # token -> (tenant, expires at)
        self._buckets: dict[str, tuple[float, float]] = {}        # tenant -> (level, at)
        self._simplecast_generation: dict[str, int] = {t: 0 for t in apis.network.tenants}

    @property
    def routes(self) -> dict[str, Any]:
        return {"/podbean/v1/": self._podbean_request, "/simplecast/": self._simplecast_request}

    post_routes = ("/podbean/v1/",)

    def _hosted(self, platform: str, podcast_id: str | None, tenant: str) -> HostedShow | None:
        show = self.apis._hosted.get((platform, podcast_id or ""))
        return show if show is not None and show.tenant_id == tenant else None

    # -- Podbean ----------------------------------------------------------------------------
    def expire_podbean_tokens(self) -> int:
        """Make every Podbean token issued so far expire now (as if its lifetime ran out)."""
        now = time.monotonic()
        with self._lock:
            for token, (tenant, until) in self._podbean_tokens.items():
                self._podbean_tokens[token] = (tenant, min(until, now))
            return len(self._podbean_tokens)

    def _podbean_request(self, rest: str, params: dict[str, str], headers: Any, method: str) -> Reply:
        if rest == "oauth/token":
            return self._podbean_token(params, headers, method)
        if method != "GET":
            return _json(405, {"error": "method_not_allowed"})
        token = _bearer(headers) or params.get("access_token", "")
        now = time.monotonic()
        with self._lock:
            tenant, until = self._podbean_tokens.get(token, (None, 0.0))
            if tenant is not None and now >= until:
                self.expired_refusals["podbean"] += 1
                return _token_error(EXPIRED)
        if tenant is None:
            return _token_error(INVALID)

        def expire() -> Reply:
            with self._lock:
                self._podbean_tokens[token] = (tenant, time.monotonic())
            return _token_error(EXPIRED)

        return (self._leak(tenant) or self.apis._fault(HOST_FAULT_KINDS, {"expired_token": expire})
                or self._podbean(rest, params, tenant))

    def _podbean_token(self, params: dict[str, str], headers: Any, method: str) -> Reply:
        if method != "POST":
            return _json(405, {"error": "invalid_request", "error_description": "use POST"})
        fault = self.apis._fault()
        if fault is not None:
            return fault
        client_id, secret = params.get("client_id", ""), params.get("client_secret", "")
        auth = headers.get("Authorization") or ""
        if auth[:6].lower() == "basic ":
            try:
                client_id, _, secret = base64.b64decode(auth[6:].strip()).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return _json(401, {"error": "invalid_client", "error_description": "malformed Basic credentials"})
        if params.get("grant_type") != "client_credentials":
            return _json(400, {"error": "unsupported_grant_type", "error_description": "use client_credentials"})
        tenant = next((t for t in self.apis.network.tenants if client_id == podbean_client_id(self.seed, t)
                       and secrets.compare_digest(secret, api_token(self.seed, "podbean", t))), None)
        if tenant is None:
            return _json(401, {"error": "invalid_client", "error_description": "Client authentication failed"})
        token = secrets.token_hex(20)
        with self._lock:
            self._podbean_tokens[token] = (tenant, time.monotonic() + self.podbean_token_seconds)
            self.tokens_issued[tenant] += 1
        return _json(200, {"access_token": token, "token_type": "Bearer", "scope": "podcast_read",
                           "expires_in": self.podbean_token_seconds})

    def _leak(self, tenant: str) -> Reply | None:
        """One bean per request into the account's bucket; a full bucket answers 429."""
        capacity, rate = self.podbean_bucket
        now = time.monotonic()
        with self._lock:
            level, at = self._buckets.get(tenant, (0.0, now))
            level = max(0.0, level - (now - at) * rate)
            if level + 1 > capacity:
                self._buckets[tenant] = (level, now)
                self.bucket_refusals[tenant] += 1
                wait = max(1, math.ceil((level + 1 - capacity) / rate))
                return _json(429, {"error": "rate_limit_exceeded", "error_description": "Too many requests"},
                             {"Retry-After": str(wait)})
            self._buckets[tenant] = (level + 1, now)
        return None

    def _podbean(self, rest: str, params: dict[str, str], tenant: str) -> Reply:
        show = self._hosted("podbean", params.get("podcast_id"), tenant)
        if show is None:
            return _json(404, {"error": "not_found", "error_description": "podcast not found"})
        if rest == "episodes":
            try:
                offset = max(0, int(params.get("offset", "0")))
                limit = min(PODBEAN_PER_PAGE_MAX, max(1, int(params.get("limit", "20"))))
            except ValueError:
                return _json(400, {"error": "invalid_request", "error_description": "offset and limit are numbers"})
            episodes = sorted(show.episodes, key=lambda e: (e.published_at, e.episode_id), reverse=True)
            chunk = episodes[offset: offset + limit]
            return _json(200, {"episodes": [self._podbean_episode(show, e) for e in chunk], "offset": offset,
                               "limit": limit, "has_more": offset + limit < len(episodes), "count": len(episodes)})
        if rest == "podcastStats/stats":
            episode = next((e for e in show.episodes if e.episode_id == params.get("episode_id")), None)
            start, end = _day(params.get("start")), _day(params.get("end")) if params.get("end") else API_LAST_DAY
            if episode is None:
                return _json(404, {"error": "not_found", "error_description": "episode not found"})
            if start is None or end is None or params.get("period", "d") != "d":
                return _json(400, {"error": "invalid_request", "error_description": "start/end are YYYY-MM-DD, period d"})
            stats: dict[str, Any] = {}
            day = start
            while day <= min(end, API_LAST_DAY):  # an end from today on means yesterday
                n = daily_downloads(self.seed, "podbean", episode, day, self.apis.revision)
                if n is not None:
                    stats[day.isoformat()] = "N/A" if is_bad_record(self.seed, "podbean", episode.episode_id, day) else n
                day += timedelta(days=1)
            return _json(200, stats)
        return _json(404, {"error": "not_found", "error_description": "no such endpoint"})

    @staticmethod
    def _podbean_episode(show: HostedShow, ep: ApiEpisode) -> dict[str, Any]:
        return {
            "id": ep.episode_id, "podcast_id": show.source_id, "title": ep.title, "content": "", "logo": None,
            "media_url": ep.audio_url, "player_url": f"https://www.podbean.com/player/{ep.episode_id}",
            "permalink_url": f"https://{show.source_id}.podbean.com/e/{ep.episode_id.lower()}/",
            "publish_time": int(ep.published_at.timestamp()), "duration": ep.duration, "status": "publish",
            "type": "public", "season_number": ep.season, "episode_number": ep.number,
            "apple_episode_type": "full", "transcripts_url": None, "content_explicit": "clean",
        }

    # -- Simplecast -------------------------------------------------------------------------
    def rotate_simplecast_token(self, tenant_id: str) -> str:
        """Issue a new token for the account; the old one now answers "expired"."""
        with self._lock:
            self._simplecast_generation[tenant_id] += 1
            return simplecast_token(self.seed, tenant_id, self._simplecast_generation[tenant_id])

    def _simplecast_request(self, rest: str, params: dict[str, str], headers: Any, method: str) -> Reply:
        token = _bearer(headers)
        tenant, stale = None, False
        with self._lock:
            for t, generation in self._simplecast_generation.items():
                if token == simplecast_token(self.seed, t, generation):
                    tenant = t
                elif any(token == simplecast_token(self.seed, t, g) for g in range(generation)):
                    stale = True
            if stale:
                self.expired_refusals["simplecast"] += 1
        if stale:
            return _token_error(EXPIRED)
        if tenant is None:
            return _token_error(INVALID)
        return (self.apis._fault(HOST_FAULT_KINDS, {"expired_token": lambda: _token_error(EXPIRED)})
                or self._simplecast(rest, params, tenant))

    def _link(self, path: str, **params: Any) -> dict[str, str]:
        return {"href": f"{self.apis.base_url}/simplecast/{path}" + ("?" + urlencode(params) if params else "")}

    def _simplecast(self, rest: str, params: dict[str, str], tenant: str) -> Reply:
        parts = rest.split("/")
        if len(parts) == 3 and parts[0] == "podcasts" and parts[2] == "episodes":
            show = self._hosted("simplecast", parts[1], tenant)
            if show is None:
                return _json(404, {"error": "not_found"})
            try:
                offset = max(0, int(params.get("offset", "0")))
                limit = min(SIMPLECAST_PER_PAGE_MAX, max(1, int(params.get("limit", "10"))))
            except ValueError:
                return _json(400, {"error": "limit and offset are numbers"})
            episodes = sorted(show.episodes, key=lambda e: (e.published_at, e.episode_id), reverse=True)
            total_pages = max(1, math.ceil(len(episodes) / limit))
            path = f"podcasts/{show.source_id}/episodes"
            more = offset + limit < len(episodes)
            return _json(200, {
                "href": self._link(path, limit=limit, offset=offset)["href"], "count": len(episodes),
                "pages": {"total": total_pages, "current": offset // limit + 1, "limit": limit,
                          "next": self._link(path, limit=limit, offset=offset + limit) if more else None,
                          "previous": self._link(path, limit=limit, offset=max(0, offset - limit)) if offset else None},
                "collection": [self._simplecast_episode(e) for e in episodes[offset: offset + limit]],
            })
        show = self._hosted("simplecast", params.get("podcast"), tenant)
        if show is None:
            return _json(404, {"error": "not_found"})
        if parts == ["analytics"]:
            return _json(200, {"href": self._link("analytics", podcast=show.source_id)["href"], **{
                name: self._link(f"analytics/{name}", podcast=show.source_id)
                for name in ("downloads", "episodes", "location", "technology", "time_of_week", "embed")}})
        if len(parts) != 2 or parts[0] != "analytics":
            return _json(404, {"error": "not_found"})
        episode = next((e for e in show.episodes if e.episode_id == params.get("episode")), None)
        start, end = _day(params.get("start_date")), _day(params.get("end_date"))
        if episode is None:
            return _json(404, {"error": "episode not found"})
        if start is None or end is None or start > end:
            return _json(400, {"error": "start_date and end_date are YYYY-MM-DD"})
        window = []
        day = start
        while day <= min(end, API_LAST_DAY):
            window.append(day)
            day += timedelta(days=1)
        seed, revision = self.seed, self.apis.revision
        if parts[1] == "downloads":
            if params.get("interval", "day") != "day":
                return _json(400, {"error": "interval must be day"})
            points = []
            for day in window:
                n = daily_downloads(seed, "simplecast", episode, day, revision)
                if n is not None:
                    bad = is_bad_record(seed, "simplecast", episode.episode_id, day)
                    points.append({"interval": day.isoformat(), "downloads_total": None if bad else n})
            return _json(200, {"id": episode.episode_id, "href": self._link("analytics/downloads", episode=episode.episode_id)["href"],
                               "total": sum(p["downloads_total"] or 0 for p in points), "by_interval": points})
        if parts[1] == "location":
            totals = sum((locations(seed, episode, d, revision) for d in window), Counter())
            names = dict(COUNTRIES)
            ranked = sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))
            return _json(200, {"id": episode.episode_id, "countries": [
                {"id": code, "name": names[code], "downloads_total": n, "rank": rank + 1}
                for rank, (code, n) in enumerate(ranked)]})
        if parts[1] == "technology":
            totals = sum((technology(seed, episode, d, revision) for d in window), Counter())

            def ranked(dimension: str) -> list[dict[str, Any]]:
                rows = sorted(((k[1], n) for k, n in totals.items() if k[0] == dimension), key=lambda kv: (-kv[1], kv[0]))
                return [{"name": name, "downloads_total": n, "rank": rank + 1} for rank, (name, n) in enumerate(rows)]

            return _json(200, {"id": episode.episode_id, "applications": ranked("application"),
                               "device_class": ranked("device_class")})
        return _json(404, {"error": "not_found"})

    def _simplecast_episode(self, ep: ApiEpisode) -> dict[str, Any]:
        return {
            "id": ep.episode_id, "href": self._link(f"episodes/{ep.episode_id}")["href"], "guid": ep.guid,
            "title": ep.title, "number": ep.number, "season": {"number": ep.season}, "type": "full",
            "status": "published", "published_at": ep.published_at.isoformat().replace("+00:00", "Z"),
            "enclosure_url": ep.audio_url, "duration": ep.duration,
            "markers": {"collection": ad_markers(self.seed, ep)},
        }

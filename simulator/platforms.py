"""Hosting-platform APIs of the simulated network: Buzzsprout- and Transistor-shaped endpoints
(Podbean- and Simplecast-shaped ones are in `simulator.platform_hosts`).

Every third show is hosted on Buzzsprout (show index % 3 == 0), the next on Transistor
(% 3 == 1); the rest are hosted elsewhere. Their API episodes are the feed's items, but as hosts
really show them: a deterministic share has the host's own guid (some shows were migrated and
all their guids differ), the media URL without the feed's tracking prefix, behind another prefix,
with a query string or re-hosted, a cosmetically different title, or a publication time a few
hours off. A few of these shows also have API-only episodes (private bonus episodes, unpublished
trailers) that no feed lists. `episode_identity_truth` says which feed item each API episode is.
Daily downloads are a deterministic function of the seed, the episode and the day, so
`platform_truth` can say exactly what a clean sync must store.

A small share of download records is planted bad (no episode id on Buzzsprout, a negative
count on Transistor, a media type that is neither audio nor video in Buzzsprout's per-download
records): a correct sync quarantines them with a reason.

Fault mode: `faults` is the share of API requests that fail (429 with Retry-After, 5xx, a
response that comes too late, or JSON cut short), drawn from a seeded generator among
`fault_kinds`. The kind "shift" (opt-in: `ALL_FAULT_KINDS`) fails nothing: it publishes while
a client pages through a list, as a host does during a sync. A new episode goes to the head of
the Transistor lists (newest first), a late download to the head of a Buzzsprout per-download
list, so offset paging repeats a record and misses the new one. `platform_truth` and
`download_details_truth` take the `PlatformApis` to include what was published that way.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, urlencode

from simulator.network import Episode, Network, Show

API_FIRST_DAY = date(2026, 9, 1)   # first day with download data
API_LAST_DAY = date(2026, 11, 5)   # the platforms' "today": the last day with data
RESTATED_DAYS = 2                  # a restatement changes the numbers of the last two days
BAD_RECORD_MODULUS = 173           # about one record in 173 is planted bad
TRANSISTOR_PER_PAGE_MAX = 100
BUZZSPROUT_PER_PAGE_MAX = 1000
FAULT_KINDS = ("429", "500", "502", "503", "timeout", "truncated")  # the default kinds: transport faults
SHIFT = "shift"                                # a list grows at its head between page requests
ALL_FAULT_KINDS = (*FAULT_KINDS, SHIFT)
BAD_DETAIL_MODULUS = 401           # about one per-download record in 401 has an invalid media type
API_PLATFORMS = ("buzzsprout", "transistor", "podbean", "simplecast")  # hosts whose API the simulator serves


def _digest(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256(":".join(map(str, parts)).encode()).digest()[:8], "big")


def api_token(seed: int, platform: str, tenant_id: str) -> str:
    """The account credential of a tenant on a platform (what the operator puts in the env)."""
    return hashlib.sha256(f"{seed}:{platform}:{tenant_id}:credential".encode()).hexdigest()[:40]


def credential_env_var(platform: str, tenant_id: str) -> str:
    kind = "TOKEN" if platform == "buzzsprout" else "API_KEY"
    return f"{platform.upper()}_{kind}_{tenant_id.upper()}"


@dataclass(frozen=True)
class ApiEpisode:
    episode_id: str
    guid: str
    title: str
    published_at: datetime
    duration: int | None
    audio_url: str | None
    number: int | None
    season: int | None


@dataclass(frozen=True)
class HostedShow:
    platform: str   # buzzsprout | transistor
    show_index: int
    show: Show
    source_id: str  # Buzzsprout podcast id / Transistor show id
    episodes: tuple[ApiEpisode, ...]

    @property
    def tenant_id(self) -> str:
        return self.show.tenant_id


def _api_episode(platform: str, show_index: int, show: Show, ep: Episode) -> ApiEpisode:
    number = len(show.episodes) - ep.index
    episode_id = str((1 if platform == "buzzsprout" else 2) * 10_000_000 + show_index * 1000 + number)
    published = ep.published or datetime(2026, 11, 1, 12, tzinfo=timezone.utc) - timedelta(days=7 * ep.index)
    published = published.astimezone(timezone.utc).replace(microsecond=0)
    # Feeds without a guid element: the host's own guid is what the API shows.
    guid = ep.guid if ep.guid is not None else _host_guid(platform, episode_id)
    title = ep.title or f"Episode {number}"
    audio_url = ep.enclosure_url

    # How the host's copy differs from the feed item: one draw per aspect, in per mille.
    def draw(aspect: str) -> int:
        if platform not in DRIFTING_PLATFORMS:
            return 1000  # no drift
        return _digest("drift", aspect, platform, show.tenant_id, show.slug, ep.index) % 1000

    migrated = platform in DRIFTING_PLATFORMS and show_index % 18 in (4, 9)  # moved shows: every guid differs
    if migrated or draw("guid") < 80:
        guid = _host_guid(platform, episode_id)
    url_draw = draw("url")
    if migrated and url_draw >= 600:  # much of a migrated back catalogue was re-uploaded
        url_draw = 260
    if audio_url and ep.enclosure_normalized and ep.defect is None:
        media = ep.enclosure_normalized
        if url_draw < 100:    # the bare media URL, without the feed's tracking prefix
            audio_url = media
        elif url_draw < 180:  # behind another measurement prefix, sometimes with a query string
            prefix = ("https://chrt.fm/track/A1B2C/", "https://www.podtrac.com/pts/redirect.mp3/",
                      "https://pfx.vpixl.com/6qj4J/", "https://op3.dev/e,pg=2b0e/")[url_draw % 4]
            audio_url = prefix + media.split("://", 1)[1] + ("?source=api" if url_draw % 2 else "")
        elif url_draw < 260:  # a query string the host adds
            audio_url = media + f"?aid={platform}&updated={_digest('u', episode_id) % 10**9}"
        elif url_draw < 290:  # re-hosted: a different file on the host's own storage
            audio_url = f"https://media.{platform}.example.net/{show.slug}/{episode_id}.mp3"
    title_draw = draw("title")
    if title_draw < 50:
        title = title.upper()
    elif title_draw < 100:
        title = title.lower()
    elif title_draw < 150:
        title = "  " + title.replace(" — ", " -  ") + " "
    elif title_draw < 190:
        title = title.replace(" — ", ": ") + "!"
    time_draw = draw("time")
    if time_draw < 150:   # a time zone slip of a few hours
        published += timedelta(hours=(1 + time_draw % 9) * (1 if time_draw % 2 else -1))
    elif time_draw < 200:  # scheduled vs. actually published: most of a day apart
        published += timedelta(hours=10 + time_draw % 11)
    elif time_draw < 230:  # only the date is kept
        published = published.replace(hour=0, minute=0, second=0)
    return ApiEpisode(
        episode_id=episode_id,
        guid=guid,
        title=title,
        published_at=published,
        duration=ep.duration_seconds if ep.duration_seconds and ep.duration_seconds > 0 else None,
        audio_url=audio_url,
        number=ep.number,
        season=ep.season,
    )


def host_of(show_index: int) -> str:
    """The host of a show: a third on Buzzsprout, a third on Transistor, and the last third
    split between Podbean, Simplecast and Megaphone."""
    if show_index % 3 == 0:
        return "buzzsprout"
    if show_index % 3 == 1:
        return "transistor"
    return {2: "podbean", 5: "simplecast", 8: "megaphone"}[show_index % 9]


def hosted_shows(network: Network) -> list[HostedShow]:
    from simulator import platform_hosts  # it builds on this module

    hosted = []
    for index, show in enumerate(network.shows):
        platform = host_of(index)
        if platform not in API_PLATFORMS:
            continue
        if platform in platform_hosts.HOST_APIS:
            hosted.append(platform_hosts.hosted_show(platform, index, show))
            continue
        source_id = str(800_000 + index) if platform == "buzzsprout" else str(40_000 + index)
        # Items repeating another item's guid are feed mistakes; the host has each episode once.
        episodes = tuple(_api_episode(platform, index, show, ep) for ep in show.episodes if ep.defect != "duplicate_guid")
        episodes += api_only_episodes(platform, index, show)
        hosted.append(HostedShow(platform, index, show, source_id, episodes))
    return hosted


def daily_downloads(seed: int, platform: str, episode: ApiEpisode, day: date, revision: int = 0) -> int | None:
    """Downloads of an episode on a day (None before it was published). Each `revision` restates
    the last RESTATED_DAYS days upwards (late-arriving downloads), never earlier ones."""
    age = (day - episode.published_at.date()).days
    if age < 0:
        return None
    peak = 20 + _digest(seed, platform, episode.episode_id) % 400
    noise = _digest(seed, platform, episode.episode_id, day.isoformat()) % 1000 / 1000
    n = int(peak * (0.6 + 0.8 * noise) / (1 + age / 3) ** 1.2)
    if revision and (API_LAST_DAY - day).days < RESTATED_DAYS:
        n += sum(_digest(seed, platform, "late", r, episode.episode_id, day.isoformat()) % 4 for r in range(1, revision + 1))
    return n


def is_bad_record(seed: int, platform: str, episode_id: str, day: date) -> bool:
    return _digest(seed, platform, "bad", episode_id, day.isoformat()) % BAD_RECORD_MODULUS == 0


def platform_truth(network: Network, first_day: date, last_day: date, revision: int = 0,
                   apis: PlatformApis | None = None) -> dict[str, Any]:
    """What a clean sync of [first_day, last_day] must store, and what it must quarantine, once
    the APIs have published `revision` restatements (and, given `apis`, what its "shift"
    faults published: new episodes, late downloads)."""
    from simulator import platform_hosts  # it builds on this module

    out: dict[str, Any] = {
        "episodes": {p: set() for p in API_PLATFORMS},
        "downloads": {p: {} for p in API_PLATFORMS},
        # (tenant, source, day) -> how many of that day's records must be quarantined (day None:
        # records without a day, such as ad markers)
        "quarantined": {p: Counter() for p in API_PLATFORMS},
    }
    hosted_all = hosted_shows(network)
    for hosted in hosted_all:
        p = hosted.platform
        for ep in apis.episodes_of(hosted) if apis else hosted.episodes:
            out["episodes"][p].add((hosted.tenant_id, hosted.source_id, ep.episode_id, ep.guid))
            day = first_day
            while day <= min(last_day, API_LAST_DAY):
                n = daily_downloads(network.seed, p, ep, day, revision)
                if n is not None and apis is not None:
                    n += len(apis.late_downloads.get((ep.episode_id, day), ()))
                keep = n is not None and (n > 0 or p != "buzzsprout")  # Buzzsprout lists no zero days
                if keep and is_bad_record(network.seed, p, ep.episode_id, day):
                    out["quarantined"][p][(hosted.tenant_id, hosted.source_id, day)] += 1
                elif keep:
                    out["downloads"][p][(hosted.tenant_id, hosted.source_id, ep.episode_id, day)] = n
                day += timedelta(days=1)
    platform_hosts.add_truth(out, hosted_all, network.seed, first_day, last_day, revision)
    return out


def _dmy(day: date) -> str:
    return day.strftime("%d-%m-%Y")


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@dataclass
class Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] | None = None
    delay: float = 0.0


def _json(status: int, document: Any, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, json.dumps(document, separators=(",", ":")).encode(),
                 {"Content-Type": "application/json; charset=utf-8", **(headers or {})})


class PlatformApis:
    """The request handling behind `/buzzsprout/api/...` and `/transistor/v1/...`."""

    def __init__(
        self, network: Network, base_url: str, faults: float = 0.0, fault_seed: int = 0,
        retry_after: int = 1, hang_seconds: float = 6.0,
        transistor_limit: tuple[int, float] = (10, 10.0), transistor_links: bool = True,
        podbean_bucket: tuple[int, float] | None = None, podbean_token_seconds: float | None = None,
        fault_kinds: tuple[str, ...] = FAULT_KINDS,
    ):
        from simulator.platform_hosts import HostApis  # it builds on this module

        self.network = network
        self.fault_kinds = tuple(fault_kinds)
        # What "shift" faults published: new episodes per (platform, show), newest first, and
        # late per-download records per (episode id, day), newest first.
        self.published: dict[tuple[str, str], list[ApiEpisode]] = {}
        self.late_downloads: dict[tuple[str, date], list[dict[str, Any]]] = {}
        self.transistor_links = transistor_links  # False: documents page by `meta` alone
        self.revision = 0  # restatements published so far (`restate`)
        self.base_url = base_url
        self.faults = faults
        self.retry_after = retry_after
        self.hang_seconds = hang_seconds
        self.transistor_limit = transistor_limit
        self.faults_served: dict[str, int] = {}
        self._rng = random.Random(fault_seed)
        self._lock = threading.Lock()
        self._hosted = {(h.platform, h.source_id): h for h in hosted_shows(network)}
        self._tokens = {
            (p, api_token(network.seed, p, t)): t for p in API_PLATFORMS for t in network.tenants
        }
        self._key_requests: dict[str, list[float]] = {}
        self._key_blocked_until: dict[str, float] = {}
        # Podbean and Simplecast (simulator.platform_hosts)
        self.hosts = HostApis(self, podbean_bucket, podbean_token_seconds)

    def restate(self) -> int:
        """Publish late downloads for the last RESTATED_DAYS days (numbers only go up)."""
        with self._lock:
            self.revision += 1
            return self.revision

    # -- entry point ----------------------------------------------------------------------
    def handle(self, path: str, query: str, headers: Any, method: str = "GET") -> Reply:
        params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
        for prefix, route in self.routes.items():
            if path.startswith(prefix):
                if method != "GET" and prefix not in self.post_routes:
                    return _json(405, {"error": "Method Not Allowed"})
                return route(path.removeprefix(prefix), params, headers, method)
        return Reply(404, b"not found", {"Content-Type": "text/plain"})

    @property
    def post_routes(self) -> tuple[str, ...]:
        """Prefixes whose handlers also take POST (e.g. OAuth tokens)."""
        return (*self.hosts.post_routes,)

    @property
    def routes(self) -> dict[str, Any]:
        """Path prefix -> handler(rest of the path, query and form parameters, headers, method)."""
        from simulator.listening import listening_routes  # noqa: PLC0415 (it imports this module)
        from simulator.megaphone_api import megaphone_routes  # noqa: PLC0415 (it imports this module)

        return {"/buzzsprout/api/": self._buzzsprout_request, "/transistor/v1/": self._transistor_request,
                **self.hosts.routes, **listening_routes(self), **megaphone_routes(self)}

    def _buzzsprout_request(self, rest: str, params: dict[str, str], headers: Any, method: str) -> Reply:
        auth = headers.get("Authorization") or ""
        token = auth.removeprefix("Token token=").strip('"') if auth.startswith("Token token=") else params.get("api_token")
        tenant = self._tokens.get(("buzzsprout", token or ""))
        if tenant is None:
            return _json(401, {"error": "Access denied"})
        return (self._fault(shift=lambda: self._shift_buzzsprout(rest, params, tenant))
                or self._buzzsprout(rest, params, headers, tenant))

    def _transistor_request(self, rest: str, params: dict[str, str], headers: Any, method: str) -> Reply:
        key = headers.get("x-api-key") or ""
        tenant = self._tokens.get(("transistor", key))
        if tenant is None:
            return _json(401, {"errors": [{"title": "Unauthorized"}]})
        return (self._rate_limit(key) or self._fault(shift=lambda: self._shift_transistor(rest, params, tenant))
                or self._transistor(rest, params, tenant))

    def _fault(self, kinds: tuple[str, ...] | None = None, replies: dict[str, Any] | None = None,
               shift: Callable[[], bool] | None = None) -> Reply | None:
        """A fault for a `faults` share of requests, of one of `kinds` (default: the simulator's
        `fault_kinds`); `replies` answers the kinds a platform adds (kind -> function returning
        the reply). A drawn "shift" calls `shift` (which publishes at the head of the list this
        request pages through, if it pages one) and fails nothing."""
        if not self.faults:
            return None
        with self._lock:
            if self._rng.random() >= self.faults:
                return None
            kind = self._rng.choice(kinds or self.fault_kinds)
            if kind == SHIFT and not (shift is not None and shift()):
                return None
            self.faults_served[kind] = self.faults_served.get(kind, 0) + 1
        if kind == SHIFT:
            return None
        if replies and kind in replies:
            return replies[kind]()
        if kind == "429":
            return _json(429, {"error": "Too Many Requests"}, {"Retry-After": str(self.retry_after)})
        if kind == "timeout":
            return Reply(504, b"late", {"Content-Type": "text/plain"}, delay=self.hang_seconds)
        if kind == "truncated":
            return Reply(200, b'{"data":[{"id":"1","type":"epis', {"Content-Type": "application/json"})
        return Reply(int(kind), b"<html>upstream error</html>", {"Content-Type": "text/html"})

    def _rate_limit(self, key: str) -> Reply | None:
        limit, window = self.transistor_limit
        now = time.monotonic()
        with self._lock:
            until = self._key_blocked_until.get(key, 0.0)
            if now < until:
                return _json(429, {"errors": [{"title": "Rate limit exceeded"}]}, {"Retry-After": str(math.ceil(until - now))})
            starts = [t for t in self._key_requests.get(key, []) if now - t < window]
            starts.append(now)
            self._key_requests[key] = starts
            if len(starts) > limit:
                self._key_blocked_until[key] = now + window
                return _json(429, {"errors": [{"title": "Rate limit exceeded"}]}, {"Retry-After": str(math.ceil(window))})
        return None

    # -- "shift": publishing while a client pages (called under the lock) ----------------------
    def episodes_of(self, hosted: HostedShow) -> tuple[ApiEpisode, ...]:
        """A show's episodes as its API lists them now: those published during the run first."""
        return (*self.published.get((hosted.platform, hosted.source_id), ()), *hosted.episodes)

    def _publish_episode(self, hosted: HostedShow) -> None:
        extra = self.published.setdefault((hosted.platform, hosted.source_id), [])
        newest = max(e.published_at for e in self.episodes_of(hosted))
        number = len(hosted.show.episodes) + len(extra) + 1
        episode_id = str((1 if hosted.platform == "buzzsprout" else 2) * 10_000_000 + hosted.show_index * 1000 + number)
        extra.insert(0, ApiEpisode(episode_id=episode_id, guid=f"{hosted.platform.title()}-{episode_id}",
                                   title=f"Episode {number} (published during the sync)",
                                   published_at=newest + timedelta(hours=1), duration=1800, audio_url=None,
                                   number=number, season=None))

    def _shift_transistor(self, rest: str, params: dict[str, str], tenant: str) -> bool:
        parts = rest.split("/")
        source_id = params.get("show_id", "") if parts == ["episodes"] else (
            parts[1] if len(parts) == 3 and parts[0] == "analytics" and parts[2] == "episodes" else None)
        hosted = self._hosted.get(("transistor", source_id or ""))
        if hosted is None or hosted.tenant_id != tenant:
            return False
        self._publish_episode(hosted)
        return True

    def _shift_buzzsprout(self, rest: str, params: dict[str, str], tenant: str) -> bool:
        parts = rest.removesuffix(".json").split("/")
        hosted = self._hosted.get(("buzzsprout", parts[0]))
        if len(parts) != 3 or parts[2] != "downloads" or hosted is None or hosted.tenant_id != tenant:
            return False
        episode = next((e for e in hosted.episodes if e.episode_id == parts[1]), None)
        try:
            day = date.fromisoformat(params.get("date") or "")
        except ValueError:
            return False
        if episode is None or day > API_LAST_DAY or episode.published_at.date() > day:
            return False
        late = self.late_downloads.setdefault((episode.episode_id, day), [])
        seed = self.network.seed
        rng = random.Random(_digest(seed, "late-download", episode.episode_id, day.isoformat(), len(late)))
        record = _download_record(rng)
        record["id"] = f"{_digest(seed, 'late-download-id', episode.episode_id, day.isoformat(), len(late)):016x}"
        late.insert(0, record)
        return True

    # -- Buzzsprout -------------------------------------------------------------------------
    def _buzzsprout(self, rest: str, params: dict[str, str], headers: Any, tenant: str) -> Reply:
        parts = rest.split("/")
        if not parts[-1].endswith(".json"):
            return _json(415, {"error": "Unsupported Media Type"})
        parts[-1] = parts[-1].removesuffix(".json")
        hosted = self._hosted.get(("buzzsprout", parts[0]))
        if hosted is None or hosted.tenant_id != tenant:
            return _json(404, {"error": "Not Found"})
        if parts[1:] == ["episodes"]:
            body = json.dumps([self._buzzsprout_episode(e) for e in self.episodes_of(hosted)], separators=(",", ":")).encode()
            etag = 'W/"' + hashlib.sha256(body).hexdigest()[:32] + '"'
            if headers.get("If-None-Match") == etag:
                return Reply(304, b"", {"ETag": etag})
            return Reply(200, body, {"Content-Type": "application/json; charset=utf-8", "ETag": etag})
        day = self._buzzsprout_date(params.get("date"))
        if isinstance(day, Reply):
            return day
        seed = self.network.seed
        if parts[1:] == ["downloads"]:
            rows = []
            for ep in self.episodes_of(hosted):
                n = daily_downloads(seed, "buzzsprout", ep, day, self.revision)
                if n is not None:
                    n += len(self.late_downloads.get((ep.episode_id, day), ()))
                if n:
                    bad = is_bad_record(seed, "buzzsprout", ep.episode_id, day)
                    rows.append({"episode_id": None if bad else int(ep.episode_id), "total": n})
            return _json(200, rows)
        if len(parts) == 3 and parts[2] == "downloads":
            episode = next((e for e in self.episodes_of(hosted) if e.episode_id == parts[1]), None)
            if episode is None:
                return _json(404, {"error": "Not Found"})
            try:
                page = max(1, int(params.get("page", "1")))
                per_page = min(BUZZSPROUT_PER_PAGE_MAX, max(1, int(params.get("per_page", "100"))))
            except ValueError:
                return _json(422, {"error": {"code": "invalid", "message": "page must be a number", "param": "page"}})
            with self._lock:
                late = list(self.late_downloads.get((episode.episode_id, day), ()))
            downloads = late + download_details(seed, episode, day, self.revision)
            chunk = downloads[(page - 1) * per_page: page * per_page]
            has_more = page * per_page < len(downloads)
            return _json(200, {
                "episodes": [{"id": int(episode.episode_id), "downloads": chunk}],
                "pagination": {"page": page, "per_page": per_page, "has_more": has_more,
                               "next_page": page + 1 if has_more else None},
            })
        return _json(404, {"error": "Not Found"})

    @staticmethod
    def _buzzsprout_date(raw: str | None) -> date | Reply:
        try:
            day = date.fromisoformat(raw or "")
        except ValueError:
            return _json(422, {"error": {"code": "invalid", "message": "date must be YYYY-MM-DD", "param": "date"}})
        if day > API_LAST_DAY:
            return _json(422, {"error": {"code": "invalid", "message": "date is in the future", "param": "date"}})
        return day

    @staticmethod
    def _buzzsprout_episode(ep: ApiEpisode) -> dict[str, Any]:
        return {
            "id": int(ep.episode_id), "title": ep.title, "audio_url": ep.audio_url, "artwork_url": None,
            "description": "", "summary": "", "artist": None, "tags": "", "published_at": ep.published_at.isoformat(),
            "duration": ep.duration, "hq": True, "guid": ep.guid, "inactive_at": None,
            "episode_number": ep.number, "season_number": ep.season, "explicit": False, "private": False,
            "total_plays": 0,
        }

    # -- Transistor -------------------------------------------------------------------------
    def _transistor(self, rest: str, params: dict[str, str], tenant: str) -> Reply:
        try:
            page = max(1, int(params.get("pagination[page]", "1")))
            per = min(TRANSISTOR_PER_PAGE_MAX, max(1, int(params.get("pagination[per]", "10"))))
        except ValueError:
            return _json(400, {"errors": [{"title": "invalid pagination"}]})
        parts = rest.split("/")
        if parts == ["episodes"]:
            hosted = self._hosted.get(("transistor", params.get("show_id", "")))
            if hosted is None or hosted.tenant_id != tenant:
                return _json(404, {"errors": [{"title": "Not found"}]})
            episodes = sorted(self.episodes_of(hosted), key=lambda e: e.published_at, reverse=True)
            chunk, meta, links = self._page(episodes, page, per, "/transistor/v1/episodes", params)
            data = [{
                "id": e.episode_id, "type": "episode",
                "attributes": {"title": e.title, "number": e.number, "season": e.season, "status": "published",
                               "published_at": e.published_at.isoformat(), "duration": e.duration,
                               "media_url": e.audio_url, "guid": e.guid},
                "relationships": {"show": {"data": {"id": hosted.source_id, "type": "show"}}},
            } for e in chunk]
            return _json(200, {"data": data, "meta": meta, "links": links})
        if len(parts) == 3 and parts[0] == "analytics" and parts[2] == "episodes":
            hosted = self._hosted.get(("transistor", parts[1]))
            if hosted is None or hosted.tenant_id != tenant:
                return _json(404, {"errors": [{"title": "Not found"}]})
            try:
                end = datetime.strptime(params["end_date"], "%d-%m-%Y").date() if "end_date" in params else API_LAST_DAY
                start = datetime.strptime(params["start_date"], "%d-%m-%Y").date() if "start_date" in params else end - timedelta(days=13)
            except ValueError:
                return _json(400, {"errors": [{"title": "dates must be dd-mm-yyyy"}]})
            end = min(end, API_LAST_DAY)
            episodes = sorted(self.episodes_of(hosted), key=lambda e: e.published_at, reverse=True)
            chunk, meta, links = self._page(episodes, page, per, f"/transistor/v1/{rest}", params)
            seed = self.network.seed
            rows = []
            for e in chunk:
                series = []
                day = start
                while day <= end:
                    n = daily_downloads(seed, "transistor", e, day, self.revision)
                    if n is not None:
                        series.append({"date": _dmy(day), "downloads": -n - 1 if is_bad_record(seed, "transistor", e.episode_id, day) else n})
                    day += timedelta(days=1)
                rows.append({"id": e.episode_id, "type": "episode", "title": e.title,
                             "published_at": e.published_at.isoformat(), "downloads": series})
            return _json(200, {
                "data": {"id": hosted.source_id, "type": "show_episodes_analytics",
                         "attributes": {"start_date": _dmy(start), "end_date": _dmy(end), "episodes": rows}},
                "meta": meta, "links": links,
            })
        return _json(404, {"errors": [{"title": "Not found"}]})

    def _page(self, items: list, page: int, per: int, path: str, params: dict[str, str]):
        total_pages = max(1, math.ceil(len(items) / per))
        chunk = items[(page - 1) * per: page * per]
        meta = {"currentPage": page, "totalPages": total_pages, "totalCount": len(items)}

        def link(p: int) -> str:
            return f"{self.base_url}{path}?" + urlencode({**params, "pagination[page]": p, "pagination[per]": per})

        links = {"self": link(page), "next": link(page + 1) if page < total_pages else None}
        if not self.transistor_links:
            links = {"self": link(page)}
        return chunk, meta, links


APPS = ("Apple Podcasts", "Spotify", "Overcast", "Pocket Casts", "Castro", "Unknown")
DEVICES = (("iPhone", "mobile"), ("Android Phone", "mobile"), ("Mac", "computer"), ("Sonos", "smart_speaker"),
           ("Unknown Device", "unknown"))
PLACES = (("US", "California", "San Francisco", "North America"), ("GB", "England", "London", "Europe"),
          ("DE", "Berlin", "Berlin", "Europe"), ("FR", None, None, "Europe"), ("BR", "São Paulo", "São Paulo", "South America"))


def _download_record(rng: random.Random) -> dict[str, Any]:
    device, device_type = rng.choice(DEVICES)
    country, region, city, continent = rng.choice(PLACES)
    return {"app": rng.choice(APPS), "device": device, "device_type": device_type, "country_code": country,
            "region": region, "city": city, "continent": continent,
            "media_type": "video" if rng.random() < 0.03 else "audio"}


def is_bad_detail(seed: int, download_id: str) -> bool:
    return _digest(seed, "bad-detail", download_id) % BAD_DETAIL_MODULUS == 0


def download_details(seed: int, episode: ApiEpisode, day: date, revision: int = 0) -> list[dict[str, Any]]:
    """One record per download of the day, newest first (restated downloads come first): what
    the per-download endpoint pages through. Each has a stable `id`; a planted few carry a
    media type that is neither audio nor video."""
    n = daily_downloads(seed, "buzzsprout", episode, day, revision) or 0
    rng = random.Random(_digest(seed, "details", episode.episode_id, day.isoformat()))
    rows = []
    for ordinal in range(n):
        record = _download_record(rng)
        record["id"] = f"{_digest(seed, 'download-id', episode.episode_id, day.isoformat(), ordinal):016x}"
        if is_bad_detail(seed, record["id"]):
            record["media_type"] = "hologram"
        rows.append(record)
    rows.reverse()
    return rows


DETAIL_FIELDS = ("app", "device", "device_type", "country_code", "region", "city", "continent", "media_type")


def download_details_truth(network: Network, first_day: date, last_day: date, revision: int = 0,
                           apis: PlatformApis | None = None) -> dict[str, Any]:
    """What a sync of Buzzsprout's per-download records over [first_day, last_day] must store:
    {(tenant, podcast id, episode id, day, download id): record fields}, and how many records
    per (tenant, podcast id, day) it must quarantine. Records are read for the episodes a day's
    totals name, so a day whose total is planted bad (no episode id) has none."""
    stored: dict[tuple, dict[str, Any]] = {}
    quarantined: Counter = Counter()
    seed = network.seed
    for hosted in hosted_shows(network):
        if hosted.platform != "buzzsprout":
            continue
        for ep in apis.episodes_of(hosted) if apis else hosted.episodes:
            day = first_day
            while day <= min(last_day, API_LAST_DAY):
                late = list(apis.late_downloads.get((ep.episode_id, day), ())) if apis else []
                records = late + download_details(seed, ep, day, revision)
                if records and not is_bad_record(seed, "buzzsprout", ep.episode_id, day):
                    for record in records:
                        if record["media_type"] not in ("audio", "video"):
                            quarantined[(hosted.tenant_id, hosted.source_id, day)] += 1
                        else:
                            key = (hosted.tenant_id, hosted.source_id, ep.episode_id, day, record["id"])
                            stored[key] = {f: record[f] for f in DETAIL_FIELDS}
                day += timedelta(days=1)
    return {"stored": stored, "quarantined": quarantined}


def platform_sources(network: Network, base_url: str, **options: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """The `platforms:` section of sources.yaml for this network, and the environment variables
    holding its credentials. `options` are merged into every platform's settings."""
    from simulator import platform_hosts  # it builds on this module

    section: dict[str, Any] = {
        "allow_private_hosts": True,  # the simulator lives on loopback
        "buzzsprout": {"base_url": f"{base_url}/buzzsprout/api", "shows": [], **options},
        "transistor": {"base_url": f"{base_url}/transistor/v1", "shows": [], **options},
    }
    environ: dict[str, str] = {}
    hosted_all = hosted_shows(network)
    for hosted in hosted_all:
        if hosted.platform not in ("buzzsprout", "transistor"):
            continue
        env = credential_env_var(hosted.platform, hosted.tenant_id)
        environ[env] = api_token(network.seed, hosted.platform, hosted.tenant_id)
        if hosted.platform == "buzzsprout":
            section["buzzsprout"]["shows"].append({"tenant_id": hosted.tenant_id, "podcast_id": hosted.source_id, "token_env": env})
        else:
            section["transistor"]["shows"].append({"tenant_id": hosted.tenant_id, "show_id": hosted.source_id, "api_key_env": env})
    platform_hosts.add_sources(section, environ, hosted_all, network.seed, base_url, options)
    from simulator.listening import listening_sources  # noqa: PLC0415 (it imports this module)

    listening, listening_environ = listening_sources(network, base_url, **options)
    section.update(listening)
    environ.update(listening_environ)
    from simulator.megaphone_api import megaphone_sources  # noqa: PLC0415 (it imports this module)

    megaphone, megaphone_environ = megaphone_sources(network, base_url, **options)
    section.update(megaphone)
    environ.update(megaphone_environ)
    return section, environ


# -- Episode identity: API-only episodes and which feed item each API episode is ----------------

# Hosts whose episodes drift from the feed items (guid, URL, title, time) in `_api_episode`.
DRIFTING_PLATFORMS = ("buzzsprout", "transistor")

def _host_guid(platform: str, episode_id: str) -> str:
    """The guid a host assigns by itself (Buzzsprout-style `Buzzsprout-<id>`, otherwise a UUID)."""
    if platform == "buzzsprout":
        return f"Buzzsprout-{episode_id}"
    h = hashlib.sha256(f"{platform}:{episode_id}:guid".encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def api_only_episodes(platform: str, show_index: int, show: Show) -> tuple[ApiEpisode, ...]:
    """Episodes a host lists that no feed carries: a private bonus episode on some shows, and an
    unpublished trailer on fewer. Their ids (number 901, 902) never collide with feed items."""
    planted = []
    if show_index % 5 == 2:
        planted.append(("Bonus: behind the scenes with the team (subscribers only)", 901, datetime(2026, 10, 21, 15, tzinfo=timezone.utc)))
    if show_index % 10 == 7:
        planted.append(("Trailer (draft, do not publish)", 902, datetime(2026, 11, 3, 9, tzinfo=timezone.utc)))
    out = []
    for title, number, published in planted:
        episode_id = str((1 if platform == "buzzsprout" else 2) * 10_000_000 + show_index * 1000 + number)
        out.append(ApiEpisode(
            episode_id=episode_id, guid=_host_guid(platform, episode_id), title=title, published_at=published,
            duration=1200 + number, audio_url=f"https://media.{platform}.example.net/{show.slug}/{episode_id}.mp3",
            number=None, season=None,
        ))
    return tuple(out)


@dataclass(frozen=True)
class EpisodeIdentity:
    """Which feed item an API episode is. `feed_episode` is (tenant id, feed URL, guid as the
    warehouse keys it) when that item reaches the warehouse, else None; `kind` says why:
    feed_item | api_only | feed_quarantined | item_quarantined."""

    kind: str
    feed_episode: tuple[str, str, str] | None


def episode_identity_truth(network: Network, base_url: str) -> dict[tuple[str, str, str], EpisodeIdentity]:
    """(platform, source show id, platform episode id) -> the episode it really is."""
    from simulator.network import FEED_DEFECTS, ITEM_DEFECTS

    out: dict[tuple[str, str, str], EpisodeIdentity] = {}
    for hosted in hosted_shows(network):
        show = hosted.show
        feed_url = base_url + show.path
        feed_ok = not (show.feed_defect and FEED_DEFECTS.get(show.feed_defect))
        # Every host lists the feed's items in feed order (each once), then its API-only episodes.
        items = [ep for ep in show.episodes if ep.defect != "duplicate_guid"]
        for position, api in enumerate(hosted.episodes):
            key = (hosted.platform, hosted.source_id, api.episode_id)
            ep = items[position] if position < len(items) else None
            if ep is None:
                out[key] = EpisodeIdentity("api_only", None)
            elif not feed_ok:
                out[key] = EpisodeIdentity("feed_quarantined", None)
            elif ep.defect and ITEM_DEFECTS.get(ep.defect):
                out[key] = EpisodeIdentity("item_quarantined", None)
            else:
                # An item without a guid is keyed by its enclosure URL (Apple's rule).
                guid = ep.guid if ep.guid is not None else ep.enclosure_url
                out[key] = EpisodeIdentity("feed_item", (show.tenant_id, feed_url, guid))
    return out

"""Listening-platform APIs of the simulated network: Spotify for Creators- and Apple Podcasts
Connect-shaped analytics, served under `/spotify/podcasters/v0/` and `/apple/pcc/v1/analytics/`.

Every show of the network is on both platforms (whoever hosts it), under ids of the platforms'
own: Spotify ids are 22-character base62 strings, Apple ids are numbers. The platforms list the
show's episodes that have a usable enclosure and a title (what their feed crawlers accept);
Spotify shows an episode's name and release date but no guid, Apple shows the guid (the
enclosure URL when the item has none, Apple's rule). `listening_shows` keeps the mapping back
to the feed (feed path, title; each episode's feed item) for the ground truth.

An episode is listened to on the platforms for `ACTIVE_DAYS` days after its release; its daily
numbers are a deterministic function of the seed, the platform, the episode and the day.

Late data: both platforms publish a day's numbers late. Seen from the platforms' "today"
(`API_LAST_DAY`), a day's maturity is its age in days plus the revisions published so far
(`PlatformApis.restate`): maturity 0 is not reported at all, maturity 1 is partial (counts about
half their final value, still growing), 2 and more is final. So at revision 0 the last day is
missing and the day before is partial; after one restatement the last day is partial and every
earlier day final. A sync's look-back window must re-read those days.

A small share of (episode, day) records is planted bad (a negative Spotify stream count, an
Apple play count that is not a number): a correct sync quarantines them with a reason.
"""

from __future__ import annotations

import functools
import hashlib
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from simulator.network import Network, Show

FOLLOWERS_SINCE = date(2026, 8, 1)  # follower totals are counted from this day on
ACTIVE_DAYS = 28            # an episode is streamed for four weeks after its release
LISTENING_BAD_MODULUS = 61  # about one (episode, day) record in 61 is planted bad
SPOTIFY_PAGE_SIZE_MAX = 50
AGE_BUCKETS = ("0-17", "18-22", "23-27", "28-34", "35-44", "45-59", "60-150", "unknown")
GENDERS = ("FEMALE", "MALE", "NON_BINARY", "NOT_SPECIFIED")
LISTENING_PLATFORMS = ("spotify", "apple")
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
UNUSABLE_ITEMS = ("missing_enclosure", "invalid_enclosure_url", "missing_title", "duplicate_guid")


def _digest(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256(":".join(map(str, parts)).encode()).digest()[:8], "big")


def base62_id(*parts: object, length: int = 22) -> str:
    value = int.from_bytes(hashlib.sha256(":".join(map(str, parts)).encode()).digest(), "big")
    chars = []
    for _ in range(length):
        value, rest = divmod(value, 62)
        chars.append(BASE62[rest])
    return "".join(chars)


def listening_token(seed: int, platform: str, tenant_id: str) -> str:
    return hashlib.sha256(f"{seed}:{platform}:{tenant_id}:bearer".encode()).hexdigest()[:48]


def listening_env_var(platform: str, tenant_id: str) -> str:
    return f"{platform.upper()}_TOKEN_{tenant_id.upper()}"


@dataclass(frozen=True)
class ListeningEpisode:
    episode_id: str
    feed_guid: str | None      # the feed item's guid (None: the item has none)
    guid: str                  # what Apple shows: the guid, else the enclosure URL
    title: str
    published_at: datetime
    duration: int              # seconds (the platforms measure the audio; 30 min when the feed says nothing)
    enclosure_url: str
    number: int | None
    episode_type: str

    @property
    def release_date(self) -> date:
        return self.published_at.date()


@dataclass(frozen=True)
class ListeningShow:
    platform: str
    show_index: int
    show: Show
    show_id: str
    episodes: tuple[ListeningEpisode, ...]

    @property
    def tenant_id(self) -> str:
        return self.show.tenant_id


def listening_shows(network: Network, platform: str) -> list[ListeningShow]:
    out = []
    for index, show in enumerate(network.shows):
        if platform == "spotify":
            show_id = base62_id(network.seed, "spotify-show", show.tenant_id, show.slug)
        else:
            show_id = str(1_000_000_000 + _digest(network.seed, "apple-show", show.tenant_id, show.slug) % 900_000_000)
        episodes = []
        for ep in show.episodes:
            if ep.defect in UNUSABLE_ITEMS:
                continue
            number = len(show.episodes) - ep.index
            if platform == "spotify":
                episode_id = base62_id(network.seed, "spotify-episode", show.tenant_id, show.slug, number)
            else:
                episode_id = str(1_000_000_000_000 + _digest(network.seed, "apple-episode", show.tenant_id, show.slug,
                                                             number) % 9_000_000_000_000)
            published = ep.published or datetime(2026, 11, 1, 12, tzinfo=timezone.utc) - timedelta(days=7 * ep.index)
            episodes.append(ListeningEpisode(
                episode_id=episode_id, feed_guid=ep.guid, guid=ep.guid if ep.guid is not None else ep.enclosure_url,
                title=ep.title, published_at=published.astimezone(timezone.utc).replace(microsecond=0),
                duration=ep.duration_seconds if ep.duration_seconds and ep.duration_seconds > 0 else 1800,
                enclosure_url=ep.enclosure_url, number=ep.number, episode_type=ep.episode_type,
            ))
        out.append(ListeningShow(platform, index, show, show_id, tuple(episodes)))
    return out


# -- the numbers (pure) ---------------------------------------------------------------------


def maturity(day: date, last_day: date, revision: int) -> int:
    return (last_day - day).days + revision


def _grown(value: int, level: int) -> int:
    """A count as reported at maturity `level` (1: partial, still growing; 2+: final)."""
    return value if level >= 2 else (value + 1) // 2


def _is_active(ep: ListeningEpisode, day: date) -> bool:
    return 0 <= (day - ep.release_date).days < ACTIVE_DAYS


def is_bad_listening_record(seed: int, platform: str, episode_id: str, day: date) -> bool:
    return _digest(seed, platform, "bad", episode_id, day.isoformat()) % LISTENING_BAD_MODULUS == 0


def _base_count(seed: int, platform: str, ep: ListeningEpisode, day: date) -> int:
    age = (day - ep.release_date).days
    peak = 5 + _digest(seed, platform, ep.episode_id) % 300
    noise = _digest(seed, platform, ep.episode_id, day.isoformat()) % 1000 / 1000
    return max(1, int(peak * (0.6 + 0.8 * noise) / (1 + age / 2) ** 1.3))


def _fraction(seed: int, *parts: object) -> float:
    return _digest(seed, *parts) % 1000 / 1000


def spotify_episode_day(seed: int, ep: ListeningEpisode, day: date, level: int) -> dict[str, Any]:
    """Starts, streams (listened 60 s or more), listeners and consumption of an episode on a day."""
    starts = _base_count(seed, "spotify", ep, day)
    streams = int(starts * (0.5 + 0.45 * _fraction(seed, "streams", ep.episode_id, day)))
    listeners = max(1, int(starts * (0.7 + 0.3 * _fraction(seed, "listeners", ep.episode_id, day))))
    percentage = 25 + _digest(seed, "completion", ep.episode_id, day.isoformat()) % 71
    return {
        "starts": _grown(starts, level), "streams": _grown(streams, level), "listeners": _grown(listeners, level),
        "median_completion_percentage": percentage, "median_completion_seconds": ep.duration * percentage // 100,
    }


def spotify_followers(seed: int, show_id: str, day: date, level: int) -> int:
    base = 200 + _digest(seed, "followers", show_id) % 20_000
    gain = 1 + _digest(seed, "follower-gain", show_id) % 40
    total = base + gain * (day - date(2026, 1, 1)).days
    return total if level >= 2 else total - gain // 2


def spotify_show_day(seed: int, show: ListeningShow, day: date, level: int) -> dict[str, int]:
    """Show totals: the show's active episodes plus the long tail of its older ones."""
    tail = 3 + _digest(seed, "tail", show.show_id, day.isoformat()) % 40
    starts = streams = listeners = tail
    for ep in show.episodes:
        if _is_active(ep, day):
            m = spotify_episode_day(seed, ep, day, 2)
            starts, streams, listeners = starts + m["starts"], streams + m["streams"], listeners + m["listeners"]
    listeners = int(listeners * 0.9)
    return {"starts": _grown(starts, level), "streams": _grown(streams, level), "listeners": _grown(listeners, level),
            "followers": spotify_followers(seed, show.show_id, day, level)}


def spotify_demographics(seed: int, show: ListeningShow, day: date, level: int) -> dict[tuple[str, str], int]:
    """Listeners of the show on the day by (age bucket, gender)."""
    total = spotify_show_day(seed, show, day, level)["listeners"]
    weights = {(a, g): 1 + _digest(seed, "demo", show.show_id, a, g) % 20 for a in AGE_BUCKETS for g in GENDERS}
    scale = sum(weights.values())
    cells = {cell: total * w // scale for cell, w in weights.items()}
    # Largest remainders take the listeners the rounding left over: the cells add up to the total.
    by_remainder = sorted(weights, key=lambda cell: (-(total * weights[cell] % scale), cell))
    for cell in by_remainder[: total - sum(cells.values())]:
        cells[cell] += 1
    return cells


def apple_episode_day(seed: int, ep: ListeningEpisode, day: date, level: int) -> dict[str, int]:
    plays = _base_count(seed, "apple", ep, day)
    listeners = max(1, int(plays * (0.75 + 0.25 * _fraction(seed, "a-listeners", ep.episode_id, day))))
    engaged = int(listeners * (0.3 + 0.5 * _fraction(seed, "a-engaged", ep.episode_id, day)))
    per_play = int(ep.duration * (0.25 + 0.7 * _fraction(seed, "a-time", ep.episode_id, day)))
    return {"plays": _grown(plays, level), "listeners": _grown(listeners, level),
            "engaged_listeners": _grown(engaged, level), "time_listened_seconds": _grown(plays, level) * per_play}


def _apple_follow_day(seed: int, show_id: str, day: date) -> tuple[int, int]:
    lost = _digest(seed, "a-lost", show_id, day.isoformat()) % 5
    return 8 + _digest(seed, "a-net", show_id, day.isoformat()) % 12 + lost, lost


@functools.lru_cache(maxsize=4096)
def _apple_follow_total(seed: int, show_id: str, day: date) -> int:
    base = 100 + _digest(seed, "a-followers", show_id) % 10_000
    if day <= FOLLOWERS_SINCE:
        return base
    gained, lost = _apple_follow_day(seed, show_id, day)
    return _apple_follow_total(seed, show_id, day - timedelta(days=1)) + gained - lost


def apple_followers(seed: int, show_id: str, day: date, level: int) -> tuple[int, int, int]:
    """(followers at the end of the day, gained, lost): each day's total is the previous day's
    plus the day's gains minus its losses; a partial day has counted only part of them."""
    gained, lost = _apple_follow_day(seed, show_id, day)
    total = _apple_follow_total(seed, show_id, day)
    if level >= 2:
        return total, gained, lost
    partial_gained, partial_lost = (gained + 1) // 2, lost // 2
    return total - (gained - lost) + (partial_gained - partial_lost), partial_gained, partial_lost


def epoch_millis(day: date) -> int:
    return int(datetime.combine(day, time(), tzinfo=timezone.utc).timestamp() * 1000)


# -- ground truth ---------------------------------------------------------------------------


def listening_truth(network: Network, first_day: date, last_day: date, revision: int = 0,
                    api_last_day: date | None = None) -> dict[str, Any]:
    """What a clean sync of [first_day, last_day] must store (and quarantine) once the platforms
    have published `revision` restatements: rows keyed like the raw tables' primary keys."""
    from simulator.platforms import API_LAST_DAY

    today = api_last_day or API_LAST_DAY
    seed = network.seed
    out: dict[str, Any] = {
        "spotify_episodes": {}, "apple_episodes": {},
        "spotify_episode_metrics": {}, "spotify_show_metrics": {}, "spotify_demographics": {},
        "apple_episode_metrics": {}, "apple_show_followers": {},
        "quarantined": Counter(),  # (platform, stream, day) -> records
        "feeds": {},               # (platform, tenant, show id) -> feed path
    }
    days = [first_day + timedelta(days=i) for i in range((min(last_day, today) - first_day).days + 1)]
    for platform in LISTENING_PLATFORMS:
        for s in listening_shows(network, platform):
            key = (s.tenant_id, s.show_id)
            out["feeds"][(platform, *key)] = s.show.path
            for ep in s.episodes:
                if platform == "spotify":
                    out["spotify_episodes"][(*key, ep.episode_id)] = (ep.title, ep.release_date)
                else:
                    out["apple_episodes"][(*key, ep.episode_id)] = ep.guid
            for day in days:
                level = maturity(day, today, revision)
                if level < 1:
                    continue
                if platform == "spotify":
                    out["spotify_show_metrics"][(*key, day)] = spotify_show_day(seed, s, day, level)
                    for (age, gender), n in spotify_demographics(seed, s, day, level).items():
                        out["spotify_demographics"][(*key, day, age, gender)] = n
                else:
                    out["apple_show_followers"][(*key, day)] = apple_followers(seed, s.show_id, day, level)
                for ep in s.episodes:
                    if not _is_active(ep, day):
                        continue
                    if is_bad_listening_record(seed, platform, ep.episode_id, day):
                        out["quarantined"][(platform, "episode_metrics", day)] += 1
                    elif platform == "spotify":
                        out["spotify_episode_metrics"][(*key, ep.episode_id, day)] = spotify_episode_day(seed, ep, day, level)
                    else:
                        out["apple_episode_metrics"][(*key, ep.episode_id, day)] = apple_episode_day(seed, ep, day, level)
    return out


def listening_identity_truth(network: Network, base_url: str) -> dict[tuple[str, str, str], Any]:
    """(platform, show id, episode id) -> which feed item a Spotify or Apple episode is
    (`simulator.platforms.EpisodeIdentity`): the item as the warehouse keys it (tenant, feed URL,
    guid or else enclosure URL), or None with the reason it never reached the warehouse."""
    from simulator.network import FEED_DEFECTS, ITEM_DEFECTS
    from simulator.platforms import EpisodeIdentity

    out: dict[tuple[str, str, str], Any] = {}
    for platform in LISTENING_PLATFORMS:
        for s in listening_shows(network, platform):
            feed_url = base_url + s.show.path
            feed_ok = not (s.show.feed_defect and FEED_DEFECTS.get(s.show.feed_defect))
            # `listening_shows` lists the usable items in feed order, one episode each.
            items = [ep for ep in s.show.episodes if ep.defect not in UNUSABLE_ITEMS]
            for api, item in zip(s.episodes, items, strict=True):
                key = (platform, s.show_id, api.episode_id)
                if not feed_ok:
                    out[key] = EpisodeIdentity("feed_quarantined", None)
                elif item.defect and ITEM_DEFECTS.get(item.defect):
                    out[key] = EpisodeIdentity("item_quarantined", None)
                else:
                    out[key] = EpisodeIdentity("feed_item", (s.tenant_id, feed_url, api.guid))
    return out


# -- HTTP -----------------------------------------------------------------------------------


def _date(raw: str | None) -> date | None:
    try:
        return date.fromisoformat(raw or "")
    except ValueError:
        return None


class ListeningApis:
    """The request handling behind `/spotify/podcasters/v0/` and `/apple/pcc/v1/analytics/`; it
    shares the fault mode and the restatement revision of the `PlatformApis` it serves with."""

    def __init__(self, apis: Any):
        from simulator.platforms import API_LAST_DAY

        self.apis = apis
        self.seed = apis.network.seed
        self.today = API_LAST_DAY
        self.shows = {(p, s.show_id): s for p in LISTENING_PLATFORMS for s in listening_shows(apis.network, p)}
        self.episodes = {(p, e.episode_id): (s, e) for (p, _), s in self.shows.items() for e in s.episodes}
        self.tokens = {(p, listening_token(self.seed, p, t)): t for p in LISTENING_PLATFORMS for t in apis.network.tenants}

    @property
    def routes(self) -> dict[str, Any]:
        return {"/spotify/podcasters/v0/": self._spotify_request, "/apple/pcc/v1/analytics/": self._apple_request}

    def _tenant(self, platform: str, headers: Any) -> str | None:
        auth = headers.get("Authorization") or ""
        return self.tokens.get((platform, auth.removeprefix("Bearer ").strip())) if auth.startswith("Bearer ") else None

    def _days(self, start: date, end: date) -> list[tuple[date, int]]:
        """The reported days of [start, end] with their maturity (unreported days left out)."""
        out = []
        day = start
        while day <= min(end, self.today):
            level = maturity(day, self.today, self.apis.revision)
            if level >= 1:
                out.append((day, level))
            day += timedelta(days=1)
        return out

    # -- Spotify ----------------------------------------------------------------------------
    def _spotify_request(self, rest: str, params: dict[str, str], headers: Any, method: str):
        from simulator.platforms import _json

        tenant = self._tenant("spotify", headers)
        if tenant is None:
            return _json(401, {"error": {"status": 401, "message": "The access token expired"}})
        return self.apis._fault() or self._spotify(rest.split("/"), params, tenant)

    def _spotify(self, parts: list[str], params: dict[str, str], tenant: str):
        from simulator.platforms import _json

        not_found = _json(404, {"error": {"status": 404, "message": "Not found"}})
        if len(parts) != 3 or parts[0] not in ("shows", "episodes"):
            return not_found
        start, end = _date(params.get("start")), _date(params.get("end"))
        if (params.get("start") and start is None) or (params.get("end") and end is None):
            return _json(400, {"error": {"status": 400, "message": "start and end must be YYYY-MM-DD"}})
        end = end or self.today
        start = start or end - timedelta(days=29)
        seed = self.seed
        if parts[0] == "episodes":
            found = self.episodes.get(("spotify", parts[1]))
            if found is None or found[0].tenant_id != tenant:
                return not_found
            show, ep = found
            days = [(d, lv) for d, lv in self._days(start, end) if _is_active(ep, d)]
            metrics = {d: spotify_episode_day(seed, ep, d, lv) for d, lv in days}
            bad = {d for d, _ in days if is_bad_listening_record(seed, "spotify", ep.episode_id, d)}
            if parts[2] == "detailedStreams":
                return _json(200, {"detailedStreams": [
                    {"date": d.isoformat(), "starts": m["starts"], "streams": -1 if d in bad else m["streams"]}
                    for d, m in metrics.items()]})
            if parts[2] == "listeners":
                return _json(200, {"counts": [{"date": d.isoformat(), "count": m["listeners"]} for d, m in metrics.items()]})
            if parts[2] == "performance":
                if not metrics:
                    return _json(200, {"samples": [], "sampleRate": 0, "max": 0, "seconds": ep.duration,
                                       "percentiles": {"25": 0, "50": 0, "75": 0, "100": 0},
                                       "medianCompletion": {"percentage": 0, "seconds": 0}})
                # One day asked (start == end), as the sync does: that day's consumption.
                m = metrics[max(metrics)]
                pct = m["median_completion_percentage"]
                return _json(200, {
                    "samples": [100, 100 - pct // 3, 100 - pct // 2, max(0, 100 - pct)], "sampleRate": ep.duration // 4,
                    "max": 100, "seconds": ep.duration,
                    "percentiles": {"25": min(100, pct + 30), "50": pct, "75": max(0, pct - 20), "100": max(0, pct - 40)},
                    "medianCompletion": {"percentage": pct, "seconds": m["median_completion_seconds"]},
                })
            if parts[2] == "metadata":
                return _json(200, self._spotify_episode(show, ep, {}))
            return not_found
        show = self.shows.get(("spotify", parts[1]))
        if show is None or show.tenant_id != tenant:
            return not_found
        days = self._days(start, end)
        if parts[2] == "episodes":
            return self._spotify_episodes(show, params, start, end, days)
        if parts[2] == "metadata":
            return _json(200, {"name": show.show.title, "id": show.show_id, "totalEpisodes": len(show.episodes),
                               "publisher": show.show.author, "language": show.show.language})
        totals = {d: spotify_show_day(seed, show, d, lv) for d, lv in days}
        if parts[2] == "detailedStreams":
            return _json(200, {"detailedStreams": [
                {"date": d.isoformat(), "starts": m["starts"], "streams": m["streams"]} for d, m in totals.items()]})
        if parts[2] == "listeners":
            return _json(200, {"counts": [{"date": d.isoformat(), "count": m["listeners"]} for d, m in totals.items()]})
        if parts[2] == "followers":
            return _json(200, {"counts": [{"date": d.isoformat(), "count": m["followers"]} for d, m in totals.items()]})
        if parts[2] == "aggregate":
            cells: Counter = Counter()
            for d, lv in days:
                cells.update(spotify_demographics(seed, show, d, lv))
            genders = Counter()
            for (_, g), n in cells.items():
                genders[g] += n
            return _json(200, {
                "start": start.isoformat(), "end": end.isoformat(), "count": sum(cells.values()),
                "ageFacetedCounts": {a: {"counts": {g: cells[(a, g)] for g in GENDERS}} for a in AGE_BUCKETS},
                "genderedCounts": {"counts": {g: genders[g] for g in GENDERS}},
            })
        return not_found

    def _spotify_episode(self, show: ListeningShow, ep: ListeningEpisode, metrics: dict[str, int]) -> dict[str, Any]:
        return {
            "name": ep.title, "id": ep.episode_id, "url": f"https://open.spotify.com/episode/{ep.episode_id}",
            "releaseDate": ep.release_date.isoformat(), "artworkUrl": f"https://i.scdn.co/image/{show.show_id}",
            "description": "", "explict": show.show.explicit, "language": show.show.language, "duration": ep.duration,
            "starts": metrics.get("starts", 0), "streams": metrics.get("streams", 0),
            "listeners": metrics.get("listeners", 0), "sparkLine": [], "hasVideo": False,
        }

    def _spotify_episodes(self, show: ListeningShow, params: dict[str, str], start: date, end: date, days):
        from simulator.platforms import _json

        try:
            page = max(1, int(params.get("page", "1")))
            size = min(SPOTIFY_PAGE_SIZE_MAX, max(1, int(params.get("size", "50"))))
        except ValueError:
            return _json(400, {"error": {"status": 400, "message": "page and size must be numbers"}})
        descending = params.get("sortOrder", "descending") != "ascending"
        episodes = sorted(show.episodes, key=lambda e: (e.published_at, e.episode_id), reverse=descending)
        chunk = episodes[(page - 1) * size: page * size]
        rows = []
        for ep in chunk:
            totals: Counter = Counter()
            for d, lv in days:
                if _is_active(ep, d):
                    m = spotify_episode_day(self.seed, ep, d, lv)
                    totals.update({k: m[k] for k in ("starts", "streams", "listeners")})
            rows.append(self._spotify_episode(show, ep, totals))
        return _json(200, {
            "episodes": rows, "totalPages": max(1, -(-len(episodes) // size)), "currentPage": page,
            "totalEpisodes": len(episodes),
            "metadata": {"network": {"id": show.tenant_id, "name": show.tenant_id.title(), "doingBusinessAs": ""},
                         "show": {"id": show.show_id, "name": show.show.title},
                         "startDate": start.isoformat(), "endDate": end.isoformat()},
        })

    # -- Apple ------------------------------------------------------------------------------
    def _apple_request(self, rest: str, params: dict[str, str], headers: Any, method: str):
        from simulator.platforms import Reply

        tenant = self._tenant("apple", headers)
        if tenant is None:
            # An expired session is sent to the sign-in page, as Podcasts Connect does.
            return Reply(302, b"", {"Location": "https://idmsa.apple.com/signin", "Content-Type": "text/html"})
        return self.apis._fault() or self._apple(rest, params, tenant)

    def _apple(self, endpoint: str, params: dict[str, str], tenant: str):
        from simulator.platforms import _json

        not_found = _json(404, {"errors": [{"code": "NOT_FOUND", "title": "Not found"}]})
        show = self.shows.get(("apple", params.get("showId", "")))
        if show is None or show.tenant_id != tenant:
            return not_found
        keys = ("startDate", "endDate") if endpoint == "episodeDetails" else ("start", "end")
        start, end = _date(params.get(keys[0])), _date(params.get(keys[1]))
        if (params.get(keys[0]) and start is None) or (params.get(keys[1]) and end is None):
            return _json(400, {"errors": [{"code": "PARAMETER_ERROR.INVALID", "title": "dates must be YYYY-MM-DD"}]})
        end = end or self.today
        start = start or end - timedelta(days=59)
        days = self._days(start, end)
        seed = self.seed
        if endpoint == "episodes":
            results = {ep.episode_id: {
                "id": ep.episode_id, "name": ep.title, "collectionName": show.show.title,
                "podcastEpisodeGuid": ep.guid, "podcastEpisodeITunesTitle": ep.title,
                "podcastEpisodeNumber": ep.number, "podcastEpisodeType": ep.episode_type,
                "releaseDateTime": ep.published_at.isoformat().replace("+00:00", "Z"),
                "releaseDate": ep.release_date.isoformat(), "kind": "podcast-episode",
                "offers": [{"assets": [{"duration": ep.duration}], "download": {"url": ep.enclosure_url}}],
            } for ep in show.episodes}
            counts = {}
            for ep in show.episodes:
                totals: Counter = Counter()
                for d, lv in days:
                    if _is_active(ep, d):
                        totals.update(apple_episode_day(seed, ep, d, lv))
                if totals:
                    counts[ep.episode_id] = [{
                        "episodeid": ep.episode_id, "followstate": "ALL", "playscount": totals["plays"],
                        "podcastid": show.show_id, "totaltimelistened": totals["time_listened_seconds"],
                        "uniqueengagedlistenerscount": totals["engaged_listeners"],
                        "uniquelistenerscount": totals["listeners"]}]
            return _json(200, {"content": {"results": results}, "episodesPlayCount": counts})
        if endpoint == "episodeDetails":
            found = self.episodes.get(("apple", params.get("episodeId", "")))
            if found is None or found[0] is not show:
                return not_found
            ep = found[1]
            trends = []
            for d, lv in days:
                if not _is_active(ep, d):
                    continue
                m = apple_episode_day(seed, ep, d, lv)
                bad = is_bad_listening_record(seed, "apple", ep.episode_id, d)
                trends.append({"timebucket": epoch_millis(d), "episodeid": ep.episode_id,
                               "playscount": "n/a" if bad else m["plays"], "totaltimelistened": m["time_listened_seconds"],
                               "uniquelistenerscount": m["listeners"], "uniqueengagedlistenerscount": m["engaged_listeners"]})
            return _json(200, {
                "episodePlayCountAllTime": {"episodeid": ep.episode_id, "podcastid": show.show_id, "followstate": "ALL",
                                            "playscount": sum(t["playscount"] for t in trends if isinstance(t["playscount"], int)),
                                            "totaltimelistened": sum(t["totaltimelistened"] for t in trends),
                                            "uniqueengagedlistenerscount": 0, "uniquelistenerscount": 0, "engagedplayscount": 0},
                "episodePlayCountTrends": trends, "episodePlayHistogram": [], "showTopCities": {}, "showTopCountries": {},
            })
        if endpoint == "showTrendsV2":
            if params.get("metric", "FOLLOWERS") != "FOLLOWERS":
                return _json(400, {"errors": [{"code": "PARAMETER_ERROR.INVALID", "title": "unsupported metric"}]})
            follow = [(d, apple_followers(seed, show.show_id, d, lv)) for d, lv in days]
            return _json(200, {
                "measure": "FOLLOWERS",
                "followerAllTimeTrends": [[epoch_millis(d), total, 0] for d, (total, _, _) in follow],
                "followerGrowthTrends": [[epoch_millis(d), gained, lost] for d, (_, gained, lost) in follow],
            })
        return not_found


def listening_routes(apis: Any) -> dict[str, Any]:
    """The listening platforms' route entries for a `PlatformApis` (built once per instance)."""
    with apis._lock:
        handler = apis.__dict__.get("_listening")
        if handler is None:
            handler = apis._listening = ListeningApis(apis)
    return handler.routes


def listening_sources(network: Network, base_url: str, **options: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """The `spotify:` and `apple:` sections of sources.yaml for the network, and their credentials."""
    section: dict[str, Any] = {
        "spotify": {"base_url": f"{base_url}/spotify/podcasters/v0", "shows": [], **options},
        "apple": {"base_url": f"{base_url}/apple/pcc/v1/analytics", "shows": [], **options},
    }
    environ: dict[str, str] = {}
    for platform in LISTENING_PLATFORMS:
        for s in listening_shows(network, platform):
            env = listening_env_var(platform, s.tenant_id)
            environ[env] = listening_token(network.seed, platform, s.tenant_id)
            section[platform]["shows"].append({"tenant_id": s.tenant_id, "show_id": s.show_id, "token_env": env,
                                               "feed_url": base_url + s.show.path})
    return section, environ

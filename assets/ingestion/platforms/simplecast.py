"""A Simplecast-shaped API client: a bearer token, hypermedia documents
`{collection, pages: {next: {href} | null}}`, and analytics reached through links.

- `podcasts/<id>/episodes?limit=&offset=`: the episodes, each with its ad markers
  (`markers.collection[{id, ad_type, ad_limit, offset_milliseconds, name}]`: the dynamic
  insertion points, stored in seconds);
- `analytics?podcast=<id>` links to `downloads` (`episode=`, `start_date=`, `end_date=`,
  `interval=day` answer `by_interval[{interval, downloads_total}]`), `location`
  (`countries[{id, name, downloads_total}]`) and `technology` (`applications[…]`,
  `device_class[…]`), both totals over the dates asked, so the client asks one day at a time,
  and only for the days the downloads series has downloads on.

The token is read from the environment variable sources.yaml names, and read again when the
API says it expired (a rotated token is picked up mid-sync). Links are followed only to the
API's own host: the token goes with every request.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit, urlunsplit

from assets.ingestion.platforms.base import (
    Platform, PlatformConfig, Rejected, ShowConfig, ShowSync, Stream, count, int_or_none, timestamp,
)
from resources.platform_http import ApiClient, ApiError, ApiPolicy
from resources.platform_oauth import EnvironmentToken

MAX_PER_PAGE = 1000
ANALYTICS_LINKS = ("downloads", "location", "technology")
TECHNOLOGY_DIMENSIONS = (("application", "applications"), ("device_class", "device_class"))


def simplecast_api(base_url: str, token_env: str, environ: dict[str, str] | None, policy: ApiPolicy) -> ApiClient:
    return ApiClient(base_url, policy, auth=EnvironmentToken(token_env, environ))


class SimplecastClient:
    def __init__(self, api: ApiClient, podcast_id: str, per_page: int = 100):
        self.api = api
        self.podcast_id = podcast_id
        self.per_page = max(1, min(per_page, MAX_PER_PAGE))
        self._links: dict[str, str] | None = None

    def _same_host(self, href: Any, what: str) -> str:
        """`href` when it points at the API's own host (the token goes with every request)."""
        if not isinstance(href, str) or not href:
            raise ApiError("unexpected_shape", f"{what} has no href")
        base, target = urlsplit(self.api.base_url), urlsplit(href)
        if (target.scheme, target.netloc) != (base.scheme, base.netloc):
            raise ApiError("foreign_link", f"{what} points to {target.netloc or 'a relative address'}")
        return href

    def episodes(self, offset: int = 0) -> Iterator[tuple[int, list[Any], int | None]]:
        """(offset, episodes, next offset or None) for every page from `offset`, following
        `pages.next.href`."""
        url: str | None = f"/podcasts/{self.podcast_id}/episodes"
        params: dict[str, Any] | None = {"limit": self.per_page, "offset": offset}
        while url is not None:
            response = self.api.get(url, params)
            document = response.data
            if not isinstance(document, dict) or not isinstance(document.get("collection"), list):
                raise ApiError("unexpected_shape", f"no collection at offset {offset}", response.status_code)
            following = (document.get("pages") or {}).get("next")
            url, params, next_offset = None, None, None
            if following:
                url = self._same_host(following.get("href") if isinstance(following, dict) else None, "pages.next")
                raw = parse_qs(urlsplit(url).query).get("offset", [""])[-1]
                next_offset = int(raw) if raw.isdigit() else offset + len(document["collection"])
            yield offset, document["collection"], next_offset
            offset = next_offset or 0

    def analytics_link(self, name: str) -> str:
        """The href of one of the podcast's analytics (`downloads`, `location`, `technology`)."""
        if self._links is None:
            document = self.api.get("/analytics", {"podcast": self.podcast_id}).data
            if not isinstance(document, dict):
                raise ApiError("unexpected_shape", "analytics is not a document of links")
            self._links = {n: self._same_host((document.get(n) or {}).get("href") if isinstance(document.get(n), dict)
                                              else None, f"analytics link {n}") for n in ANALYTICS_LINKS}
        return self._links[name]

    def _follow(self, name: str, params: dict[str, Any]) -> Any:
        """GET an analytics link with more parameters (the link's own, such as `podcast`, stay)."""
        parts = urlsplit(self.analytics_link(name))
        merged = {**dict(parse_qsl(parts.query)), **params}
        return self.api.get(urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")), merged).data

    def downloads(self, episode_id: str, start: date, end: date) -> Any:
        return self._follow("downloads", {"episode": episode_id, "start_date": start.isoformat(),
                                          "end_date": end.isoformat(), "interval": "day"})

    def breakdown(self, name: str, episode_id: str, day: date) -> Any:
        """The `location` or `technology` breakdown of one episode on one day."""
        return self._follow(name, {"episode": episode_id, "start_date": day.isoformat(), "end_date": day.isoformat()})


# -- configuration, validation and sync -----------------------------------------------------


class SimplecastShow(ShowConfig):
    podcast_id: str
    token_env: str

    @property
    def source_id(self) -> str:
        return self.podcast_id

    @property
    def credential_envs(self) -> tuple[str, ...]:
        return (self.token_env,)


class SimplecastConfig(PlatformConfig):
    base_url: str = "https://api.simplecast.com"
    per_page: int = 100
    episodes_per_unit: int = 10  # episodes whose analytics are stored in one transaction
    shows: list[SimplecastShow] = []


def episode_rows(items: list[Any]) -> tuple[list[dict[str, Any]], list[Rejected]]:
    rows, rejected = [], []
    for position, item in enumerate(items):
        episode_id = item.get("id") if isinstance(item, dict) else None
        if not isinstance(episode_id, str) or not episode_id:
            rejected.append(Rejected(f"#{position}", "missing_episode_id", "episode without an id", item))
            continue
        season = item.get("season")
        rows.append({
            "episode_id": episode_id, "guid": item.get("guid"), "title": item.get("title"),
            "enclosure_url": item.get("enclosure_url"), "status": item.get("status"),
            "published_at": timestamp(item.get("published_at")), "duration_seconds": int_or_none(item.get("duration")),
            "episode_number": int_or_none(item.get("number")),
            "season_number": int_or_none(season.get("number") if isinstance(season, dict) else season),
            "payload": item,
        })
    return rows, rejected


def marker_rows(items: list[Any]) -> tuple[list[dict[str, Any]], list[Rejected]]:
    """The ad markers of a page of episodes; a marker must sit within the episode."""
    rows, rejected = [], []
    for item in items:
        episode_id = item.get("id") if isinstance(item, dict) else None
        if not isinstance(episode_id, str) or not episode_id:
            continue  # the episodes stream quarantines it
        duration = int_or_none(item.get("duration"))
        markers = item.get("markers")
        for position, marker in enumerate(markers.get("collection") or [] if isinstance(markers, dict) else []):
            marker_id = marker.get("id") if isinstance(marker, dict) else None
            if not isinstance(marker_id, str) or not marker_id:
                rejected.append(Rejected(f"{episode_id}#{position}", "missing_marker_id", "ad marker without an id", marker))
                continue
            key = f"{episode_id}/{marker_id}"
            offset = count(marker.get("offset_milliseconds"))
            if offset is None:
                rejected.append(Rejected(key, "invalid_offset", f"offset_milliseconds {marker.get('offset_milliseconds')!r}",
                                         marker))
            elif duration is not None and offset > duration * 1000:
                rejected.append(Rejected(key, "offset_after_end", f"{offset} ms in a {duration} s episode", marker))
            else:
                rows.append({"episode_id": episode_id, "marker_id": marker_id, "ad_type": marker.get("ad_type"),
                             "offset_seconds": Decimal(offset) / 1000, "ad_limit": int_or_none(marker.get("ad_limit")),
                             "name": marker.get("name")})
    return rows, rejected


def download_rows(episode_id: str, document: Any, start: date, end: date) -> tuple[list[dict[str, Any]], list[Rejected]]:
    points = document.get("by_interval") if isinstance(document, dict) else None
    if not isinstance(points, list):
        return [], [Rejected(f"{episode_id}@{start}..{end}", "unexpected_shape", "no by_interval series", document)]
    rows, rejected = [], []
    for point in points:
        raw_day = point.get("interval") if isinstance(point, dict) else None
        try:
            day = date.fromisoformat(raw_day)
        except (TypeError, ValueError):
            rejected.append(Rejected(f"{episode_id}@{raw_day}", "invalid_date", "interval is not YYYY-MM-DD", point))
            continue
        key = f"{episode_id}@{day}"
        if not start <= day <= end:
            rejected.append(Rejected(key, "date_outside_window", f"{day} not in {start}..{end}", point, day))
        elif (n := count(point.get("downloads_total"))) is None:
            rejected.append(Rejected(key, "invalid_download_count", f"downloads_total {point.get('downloads_total')!r}",
                                     point, day))
        else:
            rows.append({"episode_id": episode_id, "download_date": day, "downloads": n})
    return rows, rejected


def location_rows(episode_id: str, day: date, document: Any) -> tuple[list[dict[str, Any]], list[Rejected]]:
    countries = document.get("countries") if isinstance(document, dict) else None
    if not isinstance(countries, list):
        return [], [Rejected(f"{episode_id}@{day}", "unexpected_shape", "no countries", document, day)]
    rows, rejected = [], []
    for position, entry in enumerate(countries):
        code = entry.get("id") if isinstance(entry, dict) else None
        if not isinstance(code, str) or len(code) != 2:
            rejected.append(Rejected(f"{episode_id}@{day}#{position}", "missing_country", "no country code", entry, day))
        elif (n := count(entry.get("downloads_total"))) is None:
            rejected.append(Rejected(f"{episode_id}@{day}/{code}", "invalid_download_count",
                                     f"downloads_total {entry.get('downloads_total')!r}", entry, day))
        else:
            rows.append({"episode_id": episode_id, "download_date": day, "country_code": code.upper(),
                         "country_name": entry.get("name"), "downloads": n})
    return rows, rejected


def technology_rows(episode_id: str, day: date, document: Any) -> tuple[list[dict[str, Any]], list[Rejected]]:
    if not isinstance(document, dict):
        return [], [Rejected(f"{episode_id}@{day}", "unexpected_shape", "technology is not an object", document, day)]
    rows, rejected = [], []
    for dimension, field in TECHNOLOGY_DIMENSIONS:
        for position, entry in enumerate(document.get(field) or []):
            name = entry.get("name") if isinstance(entry, dict) else None
            if not isinstance(name, str) or not name:
                rejected.append(Rejected(f"{episode_id}@{day}/{dimension}#{position}", "missing_name",
                                         f"{dimension} without a name", entry, day))
            elif (n := count(entry.get("downloads_total"))) is None:
                rejected.append(Rejected(f"{episode_id}@{day}/{dimension}/{name}", "invalid_download_count",
                                         f"downloads_total {entry.get('downloads_total')!r}", entry, day))
            else:
                rows.append({"episode_id": episode_id, "download_date": day, "dimension": dimension, "name": name,
                             "downloads": n})
    return rows, rejected


class _EpisodeAnalytics:
    """One show's per-episode analytics for a sync window. The daily download series is asked
    once per episode and shared: the breakdowns are asked only for the days it has downloads
    on (or an unreadable count), since a day without downloads has no breakdown."""

    def __init__(self, client: SimplecastClient, job: ShowSync):
        self.client, self.job = client, job
        self._series: dict[str, tuple[list[dict[str, Any]], list[Rejected]]] = {}

    def downloads(self, episode_id: str) -> tuple[list[dict[str, Any]], list[Rejected]]:
        if episode_id not in self._series:
            job = self.job
            self._series[episode_id] = download_rows(
                episode_id, self.client.downloads(episode_id, job.start, job.end), job.start, job.end)
        return self._series[episode_id]

    def breakdown(self, name: str, to_rows, episode_id: str) -> tuple[list[dict[str, Any]], list[Rejected]]:
        counted, unreadable = self.downloads(episode_id)
        active = {r["download_date"] for r in counted if r["downloads"]} | {r.record_date for r in unreadable if r.record_date}
        rows, rejected = [], []
        for day in sorted(active):
            got, refused = to_rows(episode_id, day, self.client.breakdown(name, episode_id, day))
            rows += got
            rejected += refused
        return rows, rejected

    def fetch(self, stream: str, episode_id: str) -> tuple[list[dict[str, Any]], list[Rejected]]:
        if stream == "downloads":
            return self.downloads(episode_id)
        if stream == "locations":
            return self.breakdown("location", location_rows, episode_id)
        return self.breakdown("technology", technology_rows, episode_id)


class Simplecast(Platform):
    name = "simplecast"
    source_column = "podcast_id"
    config_model = SimplecastConfig
    streams = (
        Stream("episodes", "simplecast_episodes", ("episode_id",), (
            "guid", "title", "enclosure_url", "status", "published_at", "duration_seconds", "episode_number",
            "season_number", "payload"), description="Episodes listed by the Simplecast API, upserted on "
                                                     "(tenant, podcast, episode id)."),
        Stream("ad_markers", "simplecast_episode_ad_markers", ("episode_id", "marker_id"), (
            "ad_type", "offset_seconds", "ad_limit", "name"),
            description="Ad breaks (dynamic insertion points) of Simplecast episodes, in seconds from the start, "
                        "upserted on (tenant, podcast, episode id, marker id)."),
        Stream("downloads", "simplecast_episode_downloads_daily", ("episode_id", "download_date"), ("downloads",),
               daily=True, description="Daily downloads per episode from Simplecast's analytics, upserted on "
                                       "(tenant, podcast, episode id, date)."),
        Stream("locations", "simplecast_episode_locations", ("episode_id", "download_date", "country_code"),
               ("country_name", "downloads"), daily=True,
               description="Daily downloads per episode and listener country from Simplecast's location "
                           "analytics, upserted on (tenant, podcast, episode id, date, country)."),
        Stream("technology", "simplecast_episode_technology", ("episode_id", "download_date", "dimension", "name"),
               ("downloads",), daily=True,
               description="Daily downloads per episode by application and device class from Simplecast's "
                           "technology analytics, upserted on (tenant, podcast, episode id, date, dimension, name)."),
    )

    def open_api(self, config, show, policy, environ):
        return simplecast_api(config.base_url, show.token_env, environ, policy)

    def client(self, api, show, config):
        return SimplecastClient(api, show.podcast_id, config.per_page)

    def sync_show(self, job: ShowSync) -> None:
        client: SimplecastClient = job.client
        for stream, to_rows in (("episodes", episode_rows), ("ad_markers", marker_rows)):
            if not job.wants(stream):
                continue
            resume = job.resume(stream)
            if resume == "done":
                continue
            job.stats.resumed += bool(resume)
            for _, items, next_offset in client.episodes(resume["next_offset"] if resume else 0):
                rows, rejected = to_rows(items)
                job.store(stream, rows, rejected, {"window": None, "sync_id": job.sync_id,
                                                   "next_offset": next_offset, "complete": next_offset is None})
        analytics = _EpisodeAnalytics(client, job)
        episode_ids: list[str] | None = None
        for stream in ("downloads", "locations", "technology"):
            if not job.wants(stream):
                continue
            resume = job.resume(stream)
            if resume == "done":
                continue
            job.stats.resumed += bool(resume)
            if episode_ids is None:  # the episodes, in id order; a cursor names the next one
                episode_ids = sorted({item["id"] for _, items, _ in client.episodes() for item in items
                                      if isinstance(item, dict) and isinstance(item.get("id"), str) and item["id"]})
            todo = [i for i in episode_ids if not resume or i >= resume["next_episode"]]
            per_unit = max(1, job.config.episodes_per_unit)
            for at in range(0, max(len(todo), 1), per_unit):
                rows, rejected = [], []
                for episode_id in todo[at: at + per_unit]:
                    got, refused = analytics.fetch(stream, episode_id)
                    rows += got
                    rejected += refused
                following = todo[at + per_unit] if at + per_unit < len(todo) else None
                job.store(stream, rows, rejected, {"window": job.window, "sync_id": job.sync_id,
                                                   "next_episode": following, "complete": following is None})

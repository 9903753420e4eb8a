"""A Podbean-shaped API client: OAuth client credentials, a leaky-bucket rate limit,
offset/limit paging and `{"YYYY-MM-DD": n}` statistics.

- `POST oauth/token` (client id and secret with HTTP Basic, or as form fields) gives a bearer
  token with an `expires_in`; `resources.platform_oauth.OAuthClientCredentials` renews it
  before it runs out, and again when the server says it expired.
- Every account has a bucket of 60 "beans" that leaks 2 per second, one bean per request; a full
  bucket answers 429. The client paces itself to 60 requests per 30 seconds, which never fills
  it, and honours Retry-After when refused anyway.
- `episodes?podcast_id=&offset=&limit=` (limit up to 100) answers `{episodes, has_more}`.
- `podcastStats/stats?podcast_id=&episode_id=&start=&end=&period=d` answers one count per
  day; an `end` from today on is clamped to yesterday.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timezone
from typing import Any, Literal

from assets.ingestion.platforms.base import (
    Platform, PlatformConfig, Rejected, ShowConfig, ShowSync, Stream, count, int_or_none,
)
from resources.platform_http import ApiClient, ApiError, ApiPolicy, Secret, credential_from_env
from resources.platform_oauth import OAuthClientCredentials

MAX_PER_PAGE = 100


def podbean_api(base_url: str, client_id: Secret, client_secret: Secret, policy: ApiPolicy,
                client_auth: Literal["basic", "form"] = "basic",
                expiry_margin_seconds: float = 60.0) -> ApiClient:
    auth = OAuthClientCredentials(f"{base_url.rstrip('/')}/oauth/token", client_id, client_secret, policy,
                                  client_auth=client_auth, expiry_margin_seconds=expiry_margin_seconds)
    return ApiClient(base_url, policy, auth=auth)


class PodbeanClient:
    def __init__(self, api: ApiClient, podcast_id: str, per_page: int = MAX_PER_PAGE):
        self.api = api
        self.podcast_id = podcast_id
        self.per_page = max(1, min(per_page, MAX_PER_PAGE))

    def episodes(self, offset: int = 0) -> Iterator[tuple[int, list[Any], int | None]]:
        """(offset, episode objects, next offset or None) for every page from `offset`."""
        next_offset: int | None = offset
        while next_offset is not None:
            offset = next_offset
            response = self.api.get("/episodes", {"podcast_id": self.podcast_id, "offset": offset, "limit": self.per_page})
            data = response.data
            if not isinstance(data, dict) or not isinstance(data.get("episodes"), list):
                raise ApiError("unexpected_shape", f"no episode list at offset {offset}", response.status_code)
            items = data["episodes"]
            next_offset = offset + len(items) if data.get("has_more") and items else None
            yield offset, items, next_offset

    def episode_stats(self, episode_id: str, start: date, end: date) -> Any:
        """Daily downloads of an episode as Podbean answers them: `{"YYYY-MM-DD": n}`."""
        return self.api.get("/podcastStats/stats", {
            "podcast_id": self.podcast_id, "episode_id": episode_id, "start": start.isoformat(),
            "end": end.isoformat(), "period": "d"}).data


# -- configuration, validation and sync -----------------------------------------------------


class PodbeanShow(ShowConfig):
    podcast_id: str
    client_id_env: str
    client_secret_env: str

    @property
    def source_id(self) -> str:
        return self.podcast_id

    @property
    def credential_envs(self) -> tuple[str, ...]:
        return (self.client_id_env, self.client_secret_env)


class PodbeanConfig(PlatformConfig):
    base_url: str = "https://api.podbean.com/v1"
    rate_limit_requests: int | None = 60   # the bucket holds 60 beans ...
    rate_limit_seconds: float | None = 30.0  # ... and leaks 2 per second
    client_auth: Literal["basic", "form"] = "basic"
    token_expiry_margin_seconds: float = 60.0
    per_page: int = MAX_PER_PAGE
    episodes_per_unit: int = 10  # episodes whose statistics are stored in one transaction
    shows: list[PodbeanShow] = []


def _published(value: Any) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return datetime.fromtimestamp(value, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


def episode_rows(items: list[Any]) -> tuple[list[dict[str, Any]], list[Rejected]]:
    rows, rejected = [], []
    for position, item in enumerate(items):
        episode_id = item.get("id") if isinstance(item, dict) else None
        if not isinstance(episode_id, str) or not episode_id:
            rejected.append(Rejected(f"#{position}", "missing_episode_id", "episode without an id", item))
            continue
        rows.append({
            "episode_id": episode_id, "title": item.get("title"), "media_url": item.get("media_url"),
            "permalink_url": item.get("permalink_url"), "status": item.get("status"),
            "published_at": _published(item.get("publish_time")), "duration_seconds": int_or_none(item.get("duration")),
            "episode_number": int_or_none(item.get("episode_number")),
            "season_number": int_or_none(item.get("season_number")), "payload": item,
        })
    return rows, rejected


def download_rows(episode_id: str, stats: Any, start: date, end: date) -> tuple[list[dict[str, Any]], list[Rejected]]:
    if not isinstance(stats, dict):
        return [], [Rejected(f"{episode_id}@{start}..{end}", "not_an_object", "statistics are not an object", stats)]
    rows, rejected = [], []
    for raw_day, value in stats.items():
        try:
            day = date.fromisoformat(raw_day)
        except ValueError:
            rejected.append(Rejected(f"{episode_id}@{raw_day}", "invalid_date", "day is not YYYY-MM-DD", {raw_day: value}))
            continue
        key = f"{episode_id}@{day}"
        if not start <= day <= end:
            rejected.append(Rejected(key, "date_outside_window", f"{day} not in {start}..{end}", {raw_day: value}, day))
        elif (n := count(value)) is None:
            rejected.append(Rejected(key, "invalid_download_count", f"downloads {value!r}", {raw_day: value}, day))
        else:
            rows.append({"episode_id": episode_id, "download_date": day, "downloads": n})
    return rows, rejected


class Podbean(Platform):
    name = "podbean"
    source_column = "podcast_id"
    config_model = PodbeanConfig
    streams = (
        Stream("episodes", "podbean_episodes", ("episode_id",), (
            "title", "media_url", "permalink_url", "status", "published_at", "duration_seconds", "episode_number",
            "season_number", "payload"), description="Episodes listed by the Podbean API, upserted on "
                                                     "(tenant, podcast, episode id)."),
        Stream("downloads", "podbean_episode_downloads_daily", ("episode_id", "download_date"), ("downloads",),
               daily=True, description="Daily downloads per episode from Podbean's statistics API, upserted on "
                                       "(tenant, podcast, episode id, date)."),
    )

    def open_api(self, config, show, policy, environ):
        return podbean_api(config.base_url, credential_from_env(show.client_id_env, environ),
                           credential_from_env(show.client_secret_env, environ), policy, config.client_auth,
                           config.token_expiry_margin_seconds)

    def client(self, api, show, config):
        return PodbeanClient(api, show.podcast_id, config.per_page)

    def sync_show(self, job: ShowSync) -> None:
        client: PodbeanClient = job.client
        if job.wants("episodes"):
            resume = job.resume("episodes")
            if resume != "done":
                job.stats.resumed += bool(resume)
                for _, items, next_offset in client.episodes(resume["next_offset"] if resume else 0):
                    rows, rejected = episode_rows(items)
                    job.store("episodes", rows, rejected, {"window": None, "sync_id": job.sync_id,
                                                           "next_offset": next_offset, "complete": next_offset is None})
        if not job.wants("downloads"):
            return
        resume = job.resume("downloads")
        if resume == "done":
            return
        job.stats.resumed += bool(resume)
        # The statistics are asked episode by episode, in id order; the cursor names the next one.
        ids = sorted({e["id"] for _, items, _ in client.episodes() for e in items
                      if isinstance(e, dict) and isinstance(e.get("id"), str) and e["id"]})
        todo = [i for i in ids if not resume or i >= resume["next_episode"]]
        per_unit = max(1, job.config.episodes_per_unit)
        for at in range(0, max(len(todo), 1), per_unit):
            rows, rejected = [], []
            for episode_id in todo[at: at + per_unit]:
                got, refused = download_rows(episode_id, client.episode_stats(episode_id, job.start, job.end),
                                             job.start, job.end)
                rows += got
                rejected += refused
            following = todo[at + per_unit] if at + per_unit < len(todo) else None
            job.store("downloads", rows, rejected, {"window": job.window, "sync_id": job.sync_id,
                                                    "next_episode": following, "complete": following is None})

"""A Buzzsprout-shaped API client: `Authorization: Token token=…`, `.json` URLs, ETags.

Endpoints (relative to `<base_url>/<podcast_id>`):
- `episodes.json`: the whole episode list in one array (conditional GET with If-None-Match);
- `downloads.json?date=YYYY-MM-DD`: `[{episode_id, total}]` for one podcast-local day;
- `<episode_id>/downloads.json?date=…&page=&per_page=`: one record per download (app, device,
  country, region, city), paged with `pagination{page, per_page, has_more, next_page}`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

from assets.ingestion.platforms.base import (
    Platform, PlatformConfig, Rejected, ShowConfig, ShowSync, Stream, count, days, int_or_none, timestamp,
)
from resources.platform_http import ApiClient, ApiError, ApiPolicy, ApiResponse, Secret, credential_from_env

MAX_PER_PAGE = 1000


def buzzsprout_api(base_url: str, token: Secret, policy: ApiPolicy) -> ApiClient:
    return ApiClient(base_url, policy, {"Authorization": Secret(f"Token token={token.reveal()}")})


class BuzzsproutClient:
    def __init__(self, api: ApiClient, podcast_id: str):
        self.api = api
        self.podcast_id = podcast_id

    def episodes(self, etag: str | None = None) -> ApiResponse:
        """The episode list, or a 304 response (`not_modified`) when `etag` still matches."""
        response = self.api.get(f"/{self.podcast_id}/episodes.json", headers={"If-None-Match": etag} if etag else None)
        if not response.not_modified and not isinstance(response.data, list):
            raise ApiError("unexpected_shape", "episodes.json did not return an array", response.status_code)
        return response

    def daily_downloads(self, day: date) -> list[dict[str, Any]]:
        response = self.api.get(f"/{self.podcast_id}/downloads.json", {"date": day.isoformat()})
        if not isinstance(response.data, list):
            raise ApiError("unexpected_shape", "downloads.json did not return an array", response.status_code)
        return response.data

    def download_details(
        self, episode_id: str, day: date, per_page: int = MAX_PER_PAGE, start_page: int = 1
    ) -> Iterator[tuple[int, list[dict[str, Any]], int | None]]:
        """(page, download records, next page or None) for every page from `start_page`."""
        page: int | None = start_page
        while page is not None:
            response = self.api.get(
                f"/{self.podcast_id}/{episode_id}/downloads.json",
                {"date": day.isoformat(), "page": page, "per_page": min(per_page, MAX_PER_PAGE)},
            )
            data = response.data if isinstance(response.data, dict) else {}
            pagination = data.get("pagination") or {}
            records = [d for e in data.get("episodes") or [] for d in e.get("downloads") or []]
            next_page = pagination.get("next_page") if pagination.get("has_more") else None
            yield page, records, next_page
            page = next_page


# -- configuration, validation and sync -----------------------------------------------------


class BuzzsproutShow(ShowConfig):
    podcast_id: str
    token_env: str

    @property
    def source_id(self) -> str:
        return self.podcast_id

    @property
    def credential_envs(self) -> tuple[str, ...]:
        return (self.token_env,)


class BuzzsproutConfig(PlatformConfig):
    base_url: str = "https://www.buzzsprout.com/api"
    shows: list[BuzzsproutShow] = []


def episode_rows(items: list[Any]) -> tuple[list[dict[str, Any]], list[Rejected]]:
    rows, rejected = [], []
    for position, item in enumerate(items):
        episode_id = int_or_none(item.get("id")) if isinstance(item, dict) else None
        if episode_id is None:
            rejected.append(Rejected(f"#{position}", "missing_episode_id", "episode without an id", item))
            continue
        rows.append({
            "episode_id": str(episode_id), "guid": item.get("guid"), "title": item.get("title"),
            "audio_url": item.get("audio_url"), "published_at": timestamp(item.get("published_at")),
            "duration_seconds": int_or_none(item.get("duration")), "episode_number": int_or_none(item.get("episode_number")),
            "season_number": int_or_none(item.get("season_number")), "payload": item,
        })
    return rows, rejected


def download_rows(day: date, items: list[Any]) -> tuple[list[dict[str, Any]], list[Rejected]]:
    rows, rejected = [], []
    for position, item in enumerate(items):
        if not isinstance(item, dict):
            rejected.append(Rejected(f"{day}#{position}", "not_an_object", "download entry is not an object", item, day))
            continue
        episode_id = int_or_none(item.get("episode_id"))
        total = count(item.get("total"))
        if episode_id is None:
            rejected.append(Rejected(f"{day}#{position}", "missing_episode_id", "download total without an episode id", item, day))
        elif total is None:
            rejected.append(Rejected(f"{day}#{episode_id}", "invalid_download_count", f"total {item.get('total')!r}", item, day))
        else:
            rows.append({"episode_id": str(episode_id), "download_date": day, "downloads": total})
    return rows, rejected


class Buzzsprout(Platform):
    name = "buzzsprout"
    source_column = "podcast_id"
    config_model = BuzzsproutConfig
    streams = (
        Stream("episodes", "buzzsprout_episodes", ("episode_id",), (
            "guid", "title", "audio_url", "published_at", "duration_seconds", "episode_number", "season_number",
            "payload"), description="Episodes listed by the Buzzsprout API, upserted on (tenant, podcast, episode id)."),
        Stream("downloads", "buzzsprout_episode_downloads_daily", ("episode_id", "download_date"), ("downloads",),
               daily=True, description="Daily downloads per episode from the Buzzsprout API, upserted on "
                                       "(tenant, podcast, episode id, date)."),
    )

    def open_api(self, config, show, policy, environ):
        return buzzsprout_api(config.base_url, credential_from_env(show.token_env, environ), policy)

    def client(self, api, show, config):
        return BuzzsproutClient(api, show.podcast_id)

    def sync_show(self, job: ShowSync) -> None:
        client: BuzzsproutClient = job.client
        if job.wants("episodes"):
            etag = (job.cursor("episodes") or {}).get("etag")
            response = client.episodes(etag)
            if response.not_modified:
                job.stats.not_modified += 1
            else:
                rows, rejected = episode_rows(response.data)
                job.store("episodes", rows, rejected, {"etag": response.etag, "sync_id": job.sync_id, "complete": True})
        if not job.wants("downloads"):
            return
        resume = job.resume("downloads")
        if resume == "done":
            return
        job.stats.resumed += bool(resume)
        first = date.fromisoformat(resume["next_date"]) if resume else job.start
        for day in days(first, job.end):
            rows, rejected = download_rows(day, client.daily_downloads(day))
            next_day = day + timedelta(days=1)
            job.store("downloads", rows, rejected, {"window": job.window, "sync_id": job.sync_id,
                                                    "next_date": next_day.isoformat(), "complete": next_day > job.end})

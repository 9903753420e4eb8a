"""A Buzzsprout-shaped API client: `Authorization: Token token=…`, `.json` URLs, ETags.

Endpoints (relative to `<base_url>/<podcast_id>`):
- `episodes.json`: the whole episode list in one array (conditional GET with If-None-Match);
- `downloads.json?date=YYYY-MM-DD`: `[{episode_id, total}]` for one podcast-local day;
- `<episode_id>/downloads.json?date=…&page=&per_page=`: one record per download (id, app,
  device, country, region, city), newest first, paged with
  `pagination{page, per_page, has_more, next_page}`.

The per-download lists are read per episode named by the day's totals: a page of a longer list
is a stored unit of its own, short lists are gathered into units of about `details_unit_rows`
rows. Late downloads arrive at their head while they are paged (no total is reported), so a
list of more than one page is checked again from its head (`paging.read_pages`).
"""

from __future__ import annotations

import hashlib
import json

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

from assets.ingestion.platforms.base import (
    Platform, PlatformConfig, Rejected, ShowConfig, ShowSync, Stream, count, days, int_or_none, timestamp,
)
from assets.ingestion.platforms.paging import ListCursor, Page, read_pages
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

    def download_details_page(self, episode_id: str, day: date, page: int, per_page: int = MAX_PER_PAGE) -> Page:
        """One page of an episode's per-download records of a day."""
        response = self.api.get(
            f"/{self.podcast_id}/{episode_id}/downloads.json",
            {"date": day.isoformat(), "page": page, "per_page": min(per_page, MAX_PER_PAGE)},
        )
        data = response.data
        if not isinstance(data, dict) or not isinstance(data.get("episodes"), list):
            raise ApiError("unexpected_shape", "per-download records without an episodes array", response.status_code)
        pagination = data.get("pagination") or {}
        records = [d for e in data["episodes"] if isinstance(e, dict) for d in e.get("downloads") or []]
        next_page = int_or_none(pagination.get("next_page")) if pagination.get("has_more") else None
        return Page(records, next_page or (page + 1 if pagination.get("has_more") else None))

    def download_details(
        self, episode_id: str, day: date, per_page: int = MAX_PER_PAGE, start_page: int = 1
    ) -> Iterator[tuple[int, list[dict[str, Any]], int | None]]:
        """(page, download records, next page or None) for every page from `start_page`."""
        page: int | None = start_page
        while page is not None:
            result = self.download_details_page(episode_id, day, page, per_page)
            yield page, result.records, result.next_page
            page = result.next_page


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
    # Per-download records are one row and, mostly, one request per episode and day: opt in.
    download_details: bool = False
    details_per_page: int = MAX_PER_PAGE
    details_unit_rows: int = 1000
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


DETAIL_TEXT_FIELDS = ("app", "device", "device_type", "country_code", "region", "city", "continent")
MEDIA_TYPES = ("audio", "video")


def _detail_key(episode_id: str, day: date, item: Any) -> str:
    download_id = item.get("id") if isinstance(item, dict) else None
    if isinstance(download_id, (str, int)) and not isinstance(download_id, bool) and str(download_id):
        return f"{episode_id}@{day}:{download_id}"
    # No id: the record's content is the only stable name it has.
    digest = hashlib.sha256(json.dumps(item, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return f"{episode_id}@{day}:#{digest}"


def detail_rows(episode_id: str, day: date, items: list[Any]) -> tuple[list[dict[str, Any]], list[Rejected]]:
    """Per-download records of one episode and day: a row per valid record, keyed by its id."""
    rows, rejected = [], []
    for item in items:
        key = _detail_key(episode_id, day, item)
        if not isinstance(item, dict):
            rejected.append(Rejected(key, "not_an_object", "download record is not an object", item, day))
            continue
        download_id = item.get("id")
        if isinstance(download_id, bool) or not isinstance(download_id, (str, int)) or not str(download_id):
            rejected.append(Rejected(key, "missing_download_id", "download record without an id", item, day))
            continue
        if item.get("media_type") not in MEDIA_TYPES:
            rejected.append(Rejected(key, "invalid_media_type", f"media_type {item.get('media_type')!r}", item, day))
            continue
        wrong = [f for f in DETAIL_TEXT_FIELDS if item.get(f) is not None and not isinstance(item.get(f), str)]
        if wrong:
            rejected.append(Rejected(key, "invalid_field", f"not text: {', '.join(wrong)}", item, day))
            continue
        rows.append({"episode_id": episode_id, "download_date": day, "download_id": str(download_id),
                     **{f: item.get(f) for f in DETAIL_TEXT_FIELDS}, "media_type": item["media_type"]})
    return rows, rejected


def _detail_id(item: Any) -> str | None:
    download_id = item.get("id") if isinstance(item, dict) else None
    return str(download_id) if isinstance(download_id, (str, int)) and not isinstance(download_id, bool) else None


def episodes_with_downloads(items: list[Any]) -> list[str]:
    """The episode ids a day's totals name with at least one download, in id order."""
    ids = {int_or_none(i.get("episode_id")) for i in items if isinstance(i, dict) and (count(i.get("total")) or 0) > 0}
    return [str(i) for i in sorted(i for i in ids if i is not None)]


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
        Stream("download_details", "buzzsprout_episode_download_details", ("episode_id", "download_date", "download_id"),
               (*DETAIL_TEXT_FIELDS, "media_type"), daily=True,
               description="One row per download (app, device, country, region, city, media type) from the "
                           "Buzzsprout per-download endpoint, for the episodes a day's totals name; upserted on "
                           "(tenant, podcast, episode id, date, download id). Synced when the source sets "
                           "`download_details: true`."),
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
        if job.wants("downloads"):
            self._sync_downloads(job, client)
        if job.wants("download_details") and job.config.download_details:
            self._sync_download_details(job, client)

    @staticmethod
    def _sync_downloads(job: ShowSync, client: BuzzsproutClient) -> None:
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

    @staticmethod
    def _sync_download_details(job: ShowSync, client: BuzzsproutClient) -> None:
        """Day by day, the per-download records of each episode the day's totals name. The
        cursor says which day, which episode (`list` None: that episode is done) and where in
        its list; the day's totals are read again on resume, the episodes before it skipped."""
        resume = job.resume("download_details")
        if resume == "done":
            return
        job.stats.resumed += bool(resume)
        day = date.fromisoformat(resume["date"]) if resume else job.start
        per_page = job.config.details_per_page
        while day <= job.end:
            next_day = day + timedelta(days=1)
            episodes = episodes_with_downloads(client.daily_downloads(day))
            position = None
            if resume and resume.get("episode_id") is not None:
                current = int(resume["episode_id"])
                position = ListCursor.from_json(resume["list"]) if resume.get("list") else None
                episodes = [e for e in episodes if int(e) > current or (int(e) == current and position is not None)]
            resume = None
            if not episodes:
                job.store("download_details", [], [], {
                    "window": job.window, "sync_id": job.sync_id, "date": next_day.isoformat(), "episode_id": None,
                    "list": None, "complete": next_day > job.end})
            # Whole lists are gathered into one unit up to `details_unit_rows` rows (most lists are
            # one short page); a page inside a longer list is always a unit of its own, with its position.
            rows: list[dict[str, Any]] = []
            rejected: list[Rejected] = []
            for n, episode_id in enumerate(episodes):
                last_of_day = n == len(episodes) - 1
                pages = read_pages(lambda page: client.download_details_page(episode_id, day, page, per_page),
                                   _detail_id, position)
                for records, after in pages:
                    page_rows, page_rejected = detail_rows(episode_id, day, records)
                    rows += page_rows
                    rejected += page_rejected
                    if after is None and last_of_day:
                        cursor = {"date": next_day.isoformat(), "episode_id": None, "list": None,
                                  "complete": next_day > job.end}
                    elif after is None and len(rows) + len(rejected) < job.config.details_unit_rows:
                        continue
                    else:
                        cursor = {"date": day.isoformat(), "episode_id": episode_id, "list": after and after.as_json(),
                                  "complete": False}
                    job.store("download_details", rows, rejected, {"window": job.window, "sync_id": job.sync_id, **cursor})
                    rows, rejected = [], []
                position = None
            day = next_day

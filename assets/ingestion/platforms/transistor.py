"""A Transistor-shaped API client: `x-api-key`, JSON:API documents paged with
`pagination[page]`/`pagination[per]`, `meta.currentPage/totalPages` and `links.next`; dates as
dd-mm-yyyy. The account limit is 10 requests per 10 seconds (then 429 and a 10 s block): the
client paces itself to it, and honours Retry-After when it is blocked anyway.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from assets.ingestion.platforms.base import (
    Platform, PlatformConfig, Rejected, ShowConfig, ShowSync, Stream, count, int_or_none, timestamp,
)
from resources.platform_http import ApiClient, ApiError, ApiPolicy, Secret, credential_from_env

MAX_PER_PAGE = 100
DATE_FORMAT = "%d-%m-%Y"


def transistor_api(base_url: str, api_key: Secret, policy: ApiPolicy) -> ApiClient:
    return ApiClient(base_url, policy, {"x-api-key": api_key})


def format_date(day: date) -> str:
    return day.strftime(DATE_FORMAT)


def parse_date(raw: str) -> date:
    return datetime.strptime(raw, DATE_FORMAT).date()


class TransistorClient:
    def __init__(self, api: ApiClient, show_id: str, per_page: int = MAX_PER_PAGE):
        self.api = api
        self.show_id = show_id
        self.per_page = min(per_page, MAX_PER_PAGE)

    def _pages(self, path: str, params: dict[str, Any], start_page: int) -> Iterator[tuple[int, dict[str, Any], int | None]]:
        url: str | None = path
        query: dict[str, Any] | None = {**params, "pagination[page]": start_page, "pagination[per]": self.per_page}
        page = start_page
        base = urlsplit(self.api.base_url)
        while url is not None:
            response = self.api.get(url, query)
            document = response.data if isinstance(response.data, dict) else None
            if document is None or "data" not in document:
                raise ApiError("unexpected_shape", f"no JSON:API document at page {page}", response.status_code)
            meta = document.get("meta") or {}
            page = int(meta.get("currentPage") or page)
            next_url = (document.get("links") or {}).get("next")
            next_query = None
            if not next_url and page < int(meta.get("totalPages") or 0):
                # No `links.next`, but the meta pages say there is more: ask for the next page.
                next_url, next_query = path, {**params, "pagination[page]": page + 1, "pagination[per]": self.per_page}
            elif next_url:
                target = urlsplit(next_url)
                # The key goes with every request: never follow a link to another host.
                if (target.scheme, target.netloc) != (base.scheme, base.netloc):
                    raise ApiError("foreign_next_link", f"links.next points to {target.netloc}")
            yield page, document, page + 1 if next_url else None
            url, query = next_url, next_query
            page += 1

    def episodes(self, start_page: int = 1) -> Iterator[tuple[int, list[dict[str, Any]], int | None]]:
        """(page, JSON:API episode resources, next page or None) from `start_page` on."""
        for page, document, next_page in self._pages("/episodes", {"show_id": self.show_id}, start_page):
            yield page, list(document.get("data") or []), next_page

    def episode_downloads(
        self, start: date, end: date, start_page: int = 1
    ) -> Iterator[tuple[int, list[dict[str, Any]], int | None]]:
        """(page, episodes with their `downloads[{date, downloads}]`, next page or None)."""
        params = {"start_date": format_date(start), "end_date": format_date(end)}
        for page, document, next_page in self._pages(f"/analytics/{self.show_id}/episodes", params, start_page):
            attributes = (document.get("data") or {}).get("attributes") or {}
            yield page, list(attributes.get("episodes") or []), next_page


# -- configuration, validation and sync -----------------------------------------------------


class TransistorShow(ShowConfig):
    show_id: str
    api_key_env: str

    @property
    def source_id(self) -> str:
        return self.show_id

    @property
    def credential_envs(self) -> tuple[str, ...]:
        return (self.api_key_env,)


class TransistorConfig(PlatformConfig):
    base_url: str = "https://api.transistor.fm/v1"
    rate_limit_requests: int | None = 10
    rate_limit_seconds: float | None = 10.0
    chunk_days: int = 14
    per_page: int = MAX_PER_PAGE
    shows: list[TransistorShow] = []


def episode_rows(resources: list[Any]) -> tuple[list[dict[str, Any]], list[Rejected]]:
    rows, rejected = [], []
    for position, item in enumerate(resources):
        if not isinstance(item, dict) or not item.get("id") or item.get("type") != "episode":
            rejected.append(Rejected(f"#{position}:{(item or {}).get('id') if isinstance(item, dict) else ''}",
                                     "not_an_episode", "resource without id or of another type", item))
            continue
        a = item.get("attributes") or {}
        rows.append({
            "episode_id": str(item["id"]), "guid": a.get("guid"), "title": a.get("title"), "media_url": a.get("media_url"),
            "status": a.get("status"), "published_at": timestamp(a.get("published_at")),
            "duration_seconds": int_or_none(a.get("duration")), "episode_number": int_or_none(a.get("number")),
            "season_number": int_or_none(a.get("season")), "payload": item,
        })
    return rows, rejected


def download_rows(episodes: list[Any], start: date, end: date) -> tuple[list[dict[str, Any]], list[Rejected]]:
    rows, rejected = [], []
    for item in episodes:
        episode_id = str(item.get("id") or "") if isinstance(item, dict) else ""
        if not episode_id:
            rejected.append(Rejected(f"{start}..{end}", "missing_episode_id", "analytics without an episode id", item))
            continue
        for point in item.get("downloads") or []:
            raw_date = point.get("date") if isinstance(point, dict) else None
            try:
                day = parse_date(raw_date)
            except (TypeError, ValueError):
                rejected.append(Rejected(f"{episode_id}@{raw_date}", "invalid_date", "date is not dd-mm-yyyy", point))
                continue
            if not start <= day <= end:
                rejected.append(Rejected(f"{episode_id}@{day}", "date_outside_window", f"{day} not in {start}..{end}", point, day))
                continue
            n = count(point.get("downloads"))
            if n is None:
                rejected.append(Rejected(f"{episode_id}@{day}", "invalid_download_count",
                                         f"downloads {point.get('downloads')!r}", point, day))
                continue
            rows.append({"episode_id": episode_id, "download_date": day, "downloads": n})
    return rows, rejected


class Transistor(Platform):
    name = "transistor"
    source_column = "show_id"
    config_model = TransistorConfig
    streams = (
        Stream("episodes", "transistor_episodes", ("episode_id",), (
            "guid", "title", "media_url", "status", "published_at", "duration_seconds", "episode_number",
            "season_number", "payload"), description="Episodes listed by the Transistor API, upserted on "
                                                     "(tenant, show, episode id)."),
        Stream("downloads", "transistor_episode_downloads_daily", ("episode_id", "download_date"), ("downloads",),
               daily=True, description="Daily downloads per episode from the Transistor analytics API, upserted on "
                                       "(tenant, show, episode id, date)."),
    )

    def open_api(self, config, show, policy, environ):
        return transistor_api(config.base_url, credential_from_env(show.api_key_env, environ), policy)

    def client(self, api, show, config):
        return TransistorClient(api, show.show_id, config.per_page)

    def sync_show(self, job: ShowSync) -> None:
        client: TransistorClient = job.client
        if job.wants("episodes"):
            resume = job.resume("episodes")
            if resume != "done":
                job.stats.resumed += bool(resume)
                first_page = resume["next_page"] if resume else 1
                for _, resources, next_page in client.episodes(first_page):
                    rows, rejected = episode_rows(resources)
                    job.store("episodes", rows, rejected, {"window": None, "sync_id": job.sync_id,
                                                           "next_page": next_page, "complete": next_page is None})
        if not job.wants("downloads"):
            return
        resume = job.resume("downloads")
        if resume == "done":
            return
        job.stats.resumed += bool(resume)
        chunk_start = date.fromisoformat(resume["chunk_start"]) if resume else job.start
        page = resume["next_page"] if resume else 1
        while chunk_start <= job.end:
            chunk_end = min(job.end, chunk_start + timedelta(days=job.config.chunk_days - 1))
            for _, episodes, next_page in client.episode_downloads(chunk_start, chunk_end, page):
                rows, rejected = download_rows(episodes, chunk_start, chunk_end)
                next_chunk = chunk_end + timedelta(days=1)
                job.store("downloads", rows, rejected, {
                    "window": job.window, "sync_id": job.sync_id,
                    "chunk_start": (chunk_start if next_page else next_chunk).isoformat(),
                    "next_page": next_page or 1, "complete": next_page is None and next_chunk > job.end})
            chunk_start, page = chunk_end + timedelta(days=1), 1

"""A Transistor-shaped API client: `x-api-key`, JSON:API documents paged with
`pagination[page]`/`pagination[per]`, `meta.currentPage/totalPages` and `links.next`; dates as
dd-mm-yyyy. The account limit is 10 requests per 10 seconds (then 429 and a 10 s block): the
client paces itself to it, and honours Retry-After when it is blocked anyway.

Both lists (episodes, and the analytics of a show's episodes) are newest first, so an episode
published during a sync shifts them: the sync reads them with `paging.read_pages`, which uses
`meta.totalCount` to notice and re-reads the head.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from assets.ingestion.platforms.base import (
    Platform, PlatformConfig, Rejected, ShowConfig, ShowSync, Stream, count, int_or_none, timestamp,
)
from assets.ingestion.platforms.paging import ListCursor, Page, id_key, read_pages
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

    def _document(self, path: str, params: dict[str, Any], page: int) -> tuple[dict[str, Any], int | None, int | None]:
        """(JSON:API document of page `page`, the next page or None, meta.totalCount or None)."""
        response = self.api.get(path, {**params, "pagination[page]": page, "pagination[per]": self.per_page})
        document = response.data if isinstance(response.data, dict) else None
        if document is None or "data" not in document:
            raise ApiError("unexpected_shape", f"no JSON:API document at page {page}", response.status_code)
        meta = document.get("meta") or {}
        current = int_or_none(meta.get("currentPage")) or page
        next_url = (document.get("links") or {}).get("next")
        if next_url:
            target, base = urlsplit(next_url), urlsplit(self.api.base_url)
            # The key goes with every request: never follow a link to another host.
            if (target.scheme, target.netloc) != (base.scheme, base.netloc):
                raise ApiError("foreign_next_link", f"links.next points to {target.netloc}")
        # `links.next`, or without it the meta pages, say whether there is more.
        more = bool(next_url) or current < (int_or_none(meta.get("totalPages")) or 0)
        return document, current + 1 if more else None, int_or_none(meta.get("totalCount"))

    def episodes_page(self, page: int) -> Page:
        """One page of the show's JSON:API episode resources."""
        document, next_page, total = self._document("/episodes", {"show_id": self.show_id}, page)
        return Page(list(document.get("data") or []), next_page, total)

    def episode_downloads_page(self, start: date, end: date, page: int) -> Page:
        """One page of the show's episodes with their `downloads[{date, downloads}]`."""
        params = {"start_date": format_date(start), "end_date": format_date(end)}
        document, next_page, total = self._document(f"/analytics/{self.show_id}/episodes", params, page)
        attributes = (document.get("data") or {}).get("attributes") or {}
        return Page(list(attributes.get("episodes") or []), next_page, total)

    @staticmethod
    def _walk(fetch, start_page: int) -> Iterator[tuple[int, list[dict[str, Any]], int | None]]:
        page: int | None = start_page
        while page is not None:
            result = fetch(page)
            yield page, result.records, result.next_page
            page = result.next_page

    def episodes(self, start_page: int = 1) -> Iterator[tuple[int, list[dict[str, Any]], int | None]]:
        """(page, JSON:API episode resources, next page or None) from `start_page` on."""
        return self._walk(self.episodes_page, start_page)

    def episode_downloads(
        self, start: date, end: date, start_page: int = 1
    ) -> Iterator[tuple[int, list[dict[str, Any]], int | None]]:
        """(page, episodes with their `downloads[{date, downloads}]`, next page or None)."""
        return self._walk(lambda page: self.episode_downloads_page(start, end, page), start_page)


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
                position = ListCursor.from_json(resume.get("list")) if resume else None
                for resources, after in read_pages(client.episodes_page, id_key, position):
                    rows, rejected = episode_rows(resources)
                    job.store("episodes", rows, rejected, {"window": None, "sync_id": job.sync_id,
                                                           "list": after and after.as_json(), "complete": after is None})
        if not job.wants("downloads"):
            return
        resume = job.resume("downloads")
        if resume == "done":
            return
        job.stats.resumed += bool(resume)
        chunk_start = date.fromisoformat(resume["chunk_start"]) if resume else job.start
        position = ListCursor.from_json(resume.get("list")) if resume else None
        while chunk_start <= job.end:
            chunk_end = min(job.end, chunk_start + timedelta(days=job.config.chunk_days - 1))
            next_chunk = chunk_end + timedelta(days=1)
            for episodes, after in read_pages(
                lambda page: client.episode_downloads_page(chunk_start, chunk_end, page), id_key, position,
            ):
                rows, rejected = download_rows(episodes, chunk_start, chunk_end)
                job.store("downloads", rows, rejected, {
                    "window": job.window, "sync_id": job.sync_id,
                    "chunk_start": (chunk_start if after else next_chunk).isoformat(),
                    "list": after and after.as_json(), "complete": after is None and next_chunk > job.end})
            chunk_start, position = next_chunk, None

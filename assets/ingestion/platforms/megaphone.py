"""A Megaphone-shaped catalog client: `Authorization: Token token=…`, JSON arrays paged with
`page` and `per_page` and an RFC 5988 `Link: <…>; rel="next"` header.

Endpoint (relative to the base URL): `networks/<network_id>/podcasts/<podcast_id>/episodes`,
the podcast's episodes with Megaphone's fields (`id`, `uid`, `guid`, `title`, `pubdate`,
`duration` in seconds, `audioFileUrl`/`downloadUrl`, `podcastId`).

Megaphone has no metrics API: downloads come from the delivery exports
(`assets/ingestion/megaphone_export.py`), keyed by the same podcast and episode ids, and the
catalog gives those episodes the guid, title, date and media URL they are matched to feed items
by. The `Link` header is followed only to the API's own host (the token goes with every
request). Episodes published during a sync shift the newest-first pages; the list is read with
`paging.read_pages`, which finds what the shift hid, and its position goes into the cursor, so
an interrupted sync resumes there.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

from assets.ingestion.platforms.base import Platform, PlatformConfig, Rejected, ShowConfig, ShowSync, Stream, timestamp
from assets.ingestion.platforms.paging import ListCursor, Page, id_key, read_pages
from resources.platform_http import ApiClient, ApiError, ApiPolicy, Secret, credential_from_env

MAX_PER_PAGE = 500
_LINK = re.compile(r'<([^>]*)>\s*((?:;\s*[^;,]+)*)')


def megaphone_api(base_url: str, token: Secret, policy: ApiPolicy) -> ApiClient:
    return ApiClient(base_url, policy, {"Authorization": Secret(f"Token token={token.reveal()}")})


def next_link(header: str | None) -> str | None:
    """The target of the `rel="next"` link of an RFC 5988 `Link` header, if any."""
    for target, attributes in _LINK.findall(header or ""):
        for attribute in attributes.split(";"):
            name, _, value = attribute.partition("=")
            if name.strip().lower() == "rel" and "next" in value.strip().strip('"').lower().split():
                return target.strip()
    return None


class MegaphoneClient:
    def __init__(self, api: ApiClient, network_id: str, podcast_id: str, per_page: int = MAX_PER_PAGE):
        self.api = api
        self.path = f"/networks/{network_id}/podcasts/{podcast_id}/episodes"
        self.per_page = max(1, min(per_page, MAX_PER_PAGE))

    def same_host(self, href: str) -> str:
        """`href` when it points at the API's own host (the token goes with every request)."""
        base, target = urlsplit(self.api.base_url), urlsplit(href)
        if (target.scheme, target.netloc) != (base.scheme, base.netloc):
            raise ApiError("foreign_link", f"next page link points to {target.netloc or 'a relative address'}")
        return href

    def page_after(self, link_header: str | None) -> int | None:
        """The number of the page the `Link` header's `rel="next"` points to (None: the last page),
        followed only on the API's own host."""
        following = next_link(link_header)
        if following is None:
            return None
        page = parse_qs(urlsplit(self.same_host(following)).query).get("page", [""])[0]
        if not page.isdigit():
            raise ApiError("unexpected_shape", f"next page link has no page number: {following}")
        return int(page)

    def episodes_page(self, page: int) -> Page:
        """One page of the podcast's episodes, newest first, with the list's total (`X-Total`)."""
        response = self.api.get(self.path, {"page": page, "per_page": self.per_page})
        if not isinstance(response.data, list):
            raise ApiError("unexpected_shape", "episodes did not return an array", response.status_code)
        total = response.headers.get("x-total")
        return Page(response.data, self.page_after(response.headers.get("link")),
                    int(total) if total and total.isdigit() else None)


# -- configuration, validation and sync -----------------------------------------------------


class MegaphoneShow(ShowConfig):
    network_id: str
    podcast_id: str
    token_env: str

    @property
    def source_id(self) -> str:
        return self.podcast_id

    @property
    def credential_envs(self) -> tuple[str, ...]:
        return (self.token_env,)


class MegaphoneConfig(PlatformConfig):
    base_url: str = "https://cms.megaphone.fm/api"
    per_page: int = MAX_PER_PAGE
    # Megaphone allows 60 requests a minute per token.
    rate_limit_requests: int | None = 60
    rate_limit_seconds: float | None = 60.0
    shows: list[MegaphoneShow] = []


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def episode_rows(network_id: str, podcast_id: str, items: list[Any]) -> tuple[list[dict[str, Any]], list[Rejected]]:
    rows, rejected = [], []
    for position, item in enumerate(items):
        episode_id = _text(item.get("id")) if isinstance(item, dict) else None
        if episode_id is None:
            rejected.append(Rejected(f"#{position}", "missing_episode_id", "episode without an id", item))
            continue
        if item.get("podcastId") not in (None, podcast_id):
            rejected.append(Rejected(episode_id, "foreign_podcast", f"podcastId {item.get('podcastId')!r}", item))
            continue
        duration = item.get("duration")
        seconds = round(duration) if isinstance(duration, (int, float)) and not isinstance(duration, bool) else None
        rows.append({
            "episode_id": episode_id, "network_id": network_id, "guid": _text(item.get("guid")),
            "uid": _text(item.get("uid")), "title": _text(item.get("title")),
            "published_at": timestamp(item.get("pubdate")),
            "duration_seconds": seconds if seconds is not None and seconds >= 0 else None,
            "audio_url": _text(item.get("audioFileUrl")) or _text(item.get("downloadUrl")),
            "status": _text(item.get("status")), "payload": item,
        })
    return rows, rejected


class Megaphone(Platform):
    name = "megaphone"
    source_column = "podcast_id"
    config_model = MegaphoneConfig
    streams = (
        Stream("episodes", "megaphone_episodes", ("episode_id",), (
            "network_id", "guid", "uid", "title", "published_at", "duration_seconds", "audio_url", "status", "payload"),
            description="Episodes listed by the Megaphone API (the ids the delivery exports name), upserted on "
                        "(tenant, podcast, episode id)."),
    )

    def open_api(self, config, show, policy, environ):
        return megaphone_api(config.base_url, credential_from_env(show.token_env, environ), policy)

    def client(self, api, show, config):
        return MegaphoneClient(api, show.network_id, show.podcast_id, config.per_page)

    def sync_show(self, job: ShowSync) -> None:
        if not job.wants("episodes"):
            return
        resume = job.resume("episodes")
        if resume == "done":
            return
        job.stats.resumed += bool(resume)
        client: MegaphoneClient = job.client
        show: MegaphoneShow = job.show
        # (a cursor saved by an earlier version holds a page address instead: read the list again)
        position = ListCursor.from_json(resume.get("list")) if resume else None
        for items, after in read_pages(client.episodes_page, id_key, position):
            rows, rejected = episode_rows(show.network_id, show.podcast_id, items)
            job.store("episodes", rows, rejected, {"window": None, "sync_id": job.sync_id,
                                                   "list": after and after.as_json(), "complete": after is None})

"""A Transistor-shaped API client: `x-api-key`, JSON:API documents paged with
`pagination[page]`/`pagination[per]`, `meta.currentPage/totalPages` and `links.next`; dates as
dd-mm-yyyy. The account limit is 10 requests per 10 seconds (then 429 and a 10 s block): the
client paces itself to it, and honours Retry-After when it is blocked anyway.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from typing import Any
from urllib.parse import urlsplit

from resources.platform_http import ApiClient, ApiError, ApiPolicy, Secret

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

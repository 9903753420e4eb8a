"""A Buzzsprout-shaped API client: `Authorization: Token token=…`, `.json` URLs, ETags.

Endpoints (relative to `<base_url>/<podcast_id>`):
- `episodes.json`: the whole episode list in one array (conditional GET with If-None-Match);
- `downloads.json?date=YYYY-MM-DD`: `[{episode_id, total}]` for one podcast-local day;
- `<episode_id>/downloads.json?date=…&page=&per_page=`: one record per download (app, device,
  country, region, city), paged with `pagination{page, per_page, has_more, next_page}`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

from resources.platform_http import ApiClient, ApiError, ApiPolicy, ApiResponse, Secret

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

"""A Spotify for Creators-shaped analytics client (`Authorization: Bearer …`, dates as
YYYY-MM-DD in `start`/`end`), relative to `<base_url>` (`…/podcasters/v0`):

- `shows/{id}/episodes?page=&size=&sortBy=releaseDate&sortOrder=descending&start=&end=` →
  `{episodes: [{id, name, url, releaseDate, duration, explict, language, starts, streams,
  listeners, …}], totalPages, currentPage, totalEpisodes, metadata: {show: {id, name}, …}}`;
  the counts are totals over [start, end]. Episodes carry no RSS guid: name + release date.
- `shows/{id}/detailedStreams?start&end` → `{detailedStreams: [{date, starts, streams}]}`;
  `shows/{id}/listeners` and `shows/{id}/followers` → `{counts: [{date, count}]}`;
- `shows/{id}/aggregate?start&end` → `{count, ageFacetedCounts: {"18-22": {counts: {FEMALE,
  MALE, NON_BINARY, NOT_SPECIFIED}}, …}, genderedCounts: {counts: {…}}}` (asked one day at a
  time: the demographics of that day);
- `episodes/{id}/detailedStreams`, `episodes/{id}/listeners` (as for shows), and
  `episodes/{id}/performance?start&end` → `{samples, sampleRate, max, seconds, percentiles,
  medianCompletion: {percentage, seconds}}` (asked per day: that day's consumption).

Days without numbers yet are left out of the series; the last two days are partial and grow.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

from assets.ingestion.platforms.base import (
    Platform, PlatformConfig, Rejected, ShowSync, Stream, count, days, int_or_none,
)
from assets.ingestion.platforms.listening import (
    ListeningShow, bearer_api, in_window, iso_date, sync_episodes_one_by_one,
)
from resources.platform_http import ApiClient, ApiError, credential_from_env

MAX_PAGE_SIZE = 50
WINDOW_COUNTS = ("starts", "streams", "listeners", "sparkLine")


class SpotifyClient:
    def __init__(self, api: ApiClient, show_id: str, page_size: int = MAX_PAGE_SIZE):
        self.api = api
        self.show_id = show_id
        self.page_size = min(page_size, MAX_PAGE_SIZE)

    def _object(self, path: str, params: dict[str, Any] | None = None, key: str | None = None) -> dict[str, Any]:
        response = self.api.get(path, params)
        if not isinstance(response.data, dict) or (key is not None and not isinstance(response.data.get(key), list)):
            raise ApiError("unexpected_shape", f"{path} did not return the expected object", response.status_code)
        return response.data

    @staticmethod
    def _range(start: date | None, end: date | None) -> dict[str, str]:
        return {k: v.isoformat() for k, v in (("start", start), ("end", end)) if v is not None}

    def episodes(self, start_page: int = 1, start: date | None = None,
                 end: date | None = None) -> Iterator[tuple[int, dict[str, Any], int | None]]:
        """(page, listing document, next page or None) from `start_page`, newest first."""
        page = start_page
        while True:
            document = self._object(f"/shows/{self.show_id}/episodes", {
                "page": page, "size": self.page_size, "sortBy": "releaseDate", "sortOrder": "descending",
                **self._range(start, end)}, key="episodes")
            total_pages = int_or_none(document.get("totalPages")) or 0
            next_page = page + 1 if page < total_pages else None
            yield page, document, next_page
            if next_page is None:
                return
            page = next_page

    def series(self, entity: str, entity_id: str, metric: str, start: date, end: date) -> list[Any]:
        """`detailedStreams` entries, or the `counts` of `listeners` / `followers`."""
        key = "detailedStreams" if metric == "detailedStreams" else "counts"
        return self._object(f"/{entity}/{entity_id}/{metric}", self._range(start, end), key=key)[key]

    def aggregate(self, day: date) -> dict[str, Any]:
        return self._object(f"/shows/{self.show_id}/aggregate", self._range(day, day))

    def performance(self, episode_id: str, day: date) -> dict[str, Any]:
        return self._object(f"/episodes/{episode_id}/performance", self._range(day, day))


# -- configuration, validation and sync -----------------------------------------------------


class SpotifyConfig(PlatformConfig):
    base_url: str = "https://generic.wg.spotify.com/podcasters/v0"
    page_size: int = MAX_PAGE_SIZE
    shows: list[ListeningShow] = []


def episode_rows(document: dict[str, Any], feed_url: str | None) -> tuple[list[dict[str, Any]], list[Rejected]]:
    rows, rejected = [], []
    show_name = ((document.get("metadata") or {}).get("show") or {}).get("name")
    for position, item in enumerate(document.get("episodes") or []):
        if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"]:
            rejected.append(Rejected(f"#{position}", "missing_episode_id", "episode without an id", item))
            continue
        release = iso_date(item.get("releaseDate"))
        if release is None:
            rejected.append(Rejected(item["id"], "invalid_date", f"releaseDate {item.get('releaseDate')!r}", item))
            continue
        explicit = item.get("explict", item.get("explicit"))
        rows.append({
            "episode_id": item["id"], "name": item.get("name"), "release_date": release,
            "duration_seconds": int_or_none(item.get("duration")), "explicit": explicit if isinstance(explicit, bool) else None,
            "language": item.get("language"), "url": item.get("url"), "show_name": show_name, "feed_url": feed_url,
            # The listing's counts are window totals: kept out, so an unchanged episode stays unchanged.
            "payload": {k: v for k, v in item.items() if k not in WINDOW_COUNTS},
        })
    return rows, rejected


def _by_date(job: ShowSync, key: str, entries: list[Any], fields: tuple[str, ...],
             rejected: list[Rejected]) -> dict[date, dict[str, int]]:
    """Series entries by day, with their counts validated (bad entries rejected)."""
    out: dict[date, dict[str, int]] = {}
    for entry in entries:
        raw = entry.get("date") if isinstance(entry, dict) else None
        day = iso_date(raw)
        if not in_window(job, f"{key}@{raw}", day, raw, entry, rejected):
            continue
        values = {f: count(entry.get(f)) for f in fields}
        bad = [f for f, v in values.items() if v is None]
        if bad:
            rejected.append(Rejected(f"{key}@{day}", "invalid_count", ", ".join(f"{f} {entry.get(f)!r}" for f in bad),
                                     entry, day))
            continue
        out[day] = values
    return out


def episode_metric_rows(job: ShowSync, client: SpotifyClient, episode_id: str) -> tuple[list[dict[str, Any]], list[Rejected]]:
    rejected: list[Rejected] = []
    streams = _by_date(job, episode_id, client.series("episodes", episode_id, "detailedStreams", job.start, job.end),
                       ("starts", "streams"), rejected)
    listeners = _by_date(job, episode_id, client.series("episodes", episode_id, "listeners", job.start, job.end),
                         ("count",), rejected)
    rows = []
    for day in sorted(streams.keys() | listeners.keys()):
        key = f"{episode_id}@{day}"
        if day not in streams or day not in listeners:
            if not any(r.record_key == key for r in rejected):  # a bad entry is quarantined once
                missing = "detailedStreams" if day not in streams else "listeners"
                rejected.append(Rejected(key, "incomplete_day", f"no {missing} entry for the day",
                                         {"streams": streams.get(day), "listeners": listeners.get(day)}, day))
            continue
        performance = client.performance(episode_id, day)
        median = performance.get("medianCompletion") if isinstance(performance.get("medianCompletion"), dict) else {}
        rows.append({
            "episode_id": episode_id, "metric_date": day, **streams[day], "listeners": listeners[day]["count"],
            "median_completion_percentage": _number(median.get("percentage")),
            "median_completion_seconds": _number(median.get("seconds")),
        })
    return rows, rejected


def _number(value: Any) -> float | int | None:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0 else None


def show_metric_rows(job: ShowSync, client: SpotifyClient) -> tuple[list[dict[str, Any]], list[Rejected]]:
    rejected: list[Rejected] = []
    show = client.show_id
    streams = _by_date(job, show, client.series("shows", show, "detailedStreams", job.start, job.end),
                       ("starts", "streams"), rejected)
    listeners = _by_date(job, show, client.series("shows", show, "listeners", job.start, job.end), ("count",), rejected)
    followers = _by_date(job, show, client.series("shows", show, "followers", job.start, job.end), ("count",), rejected)
    rows = []
    for day in sorted(streams.keys() | listeners.keys() | followers.keys()):
        if day in streams and day in listeners and day in followers:
            rows.append({"metric_date": day, **streams[day], "listeners": listeners[day]["count"],
                         "followers": followers[day]["count"]})
        else:
            rejected.append(Rejected(f"{show}@{day}", "incomplete_day", "the day is missing from one of the series",
                                     {"streams": streams.get(day), "listeners": listeners.get(day),
                                      "followers": followers.get(day)}, day))
    return rows, rejected


def demographic_rows(day: date, document: dict[str, Any]) -> tuple[list[dict[str, Any]], list[Rejected]]:
    """One row per (age bucket, gender) cell of a day's aggregate, with its share of the day."""
    faceted = document.get("ageFacetedCounts")
    if not isinstance(faceted, dict):
        return [], [Rejected(f"{day}", "unexpected_shape", "no ageFacetedCounts object", document, day)]
    cells, rejected = [], []
    for age, facet in faceted.items():
        counts = facet.get("counts") if isinstance(facet, dict) else None
        if not isinstance(counts, dict):
            rejected.append(Rejected(f"{day}:{age}", "unexpected_shape", "age bucket without counts", facet, day))
            continue
        for gender, raw in counts.items():
            n = count(raw)
            if n is None:
                rejected.append(Rejected(f"{day}:{age}:{gender}", "invalid_count", f"count {raw!r}", facet, day))
            else:
                cells.append((str(age), str(gender), n))
    total = sum(n for _, _, n in cells)
    rows = [{"metric_date": day, "age_bucket": age, "gender": gender, "listeners": n,
             "share": round(n / total, 6) if total else 0.0} for age, gender, n in cells]
    return rows, rejected


class Spotify(Platform):
    name = "spotify"
    source_column = "show_id"
    config_model = SpotifyConfig
    streams = (
        Stream("episodes", "spotify_episodes", ("episode_id",), (
            "name", "release_date", "duration_seconds", "explicit", "language", "url", "show_name", "feed_url",
            "payload"), description="Episodes of each show on Spotify (no RSS guid: name and release date), "
                                    "upserted on (tenant, show, episode id)."),
        Stream("episode_metrics", "spotify_episode_metrics_daily", ("episode_id", "metric_date"), (
            "starts", "streams", "listeners", "median_completion_percentage", "median_completion_seconds"),
            daily=True, description="Daily starts, streams, listeners and median completion per Spotify episode "
                                    "(episodes with numbers in the window), upserted on (tenant, show, episode, date)."),
        Stream("show_metrics", "spotify_show_metrics_daily", ("metric_date",), ("starts", "streams", "listeners", "followers"),
               daily=True, description="Daily starts, streams, listeners and followers per Spotify show, upserted on "
                                       "(tenant, show, date)."),
        Stream("demographics", "spotify_show_demographics_daily", ("metric_date", "age_bucket", "gender"),
               ("listeners", "share"), daily=True,
               description="Daily listeners per Spotify show by age bucket and gender, with each cell's share of the "
                           "day, upserted on (tenant, show, date, age bucket, gender)."),
    )

    def open_api(self, config, show, policy, environ):
        return bearer_api(config.base_url, credential_from_env(show.token_env, environ), policy)

    def client(self, api, show, config):
        return SpotifyClient(api, show.show_id, config.page_size)

    def sync_show(self, job: ShowSync) -> None:
        client: SpotifyClient = job.client
        if job.wants("episodes"):
            resume = job.resume("episodes")
            if resume != "done":
                job.stats.resumed += bool(resume)
                for _, document, next_page in client.episodes(resume["next_page"] if resume else 1):
                    rows, rejected = episode_rows(document, job.show.feed_url)
                    job.store("episodes", rows, rejected, {"window": None, "sync_id": job.sync_id,
                                                           "next_page": next_page, "complete": next_page is None})
        if job.wants("episode_metrics"):
            def active() -> list[str]:
                # The listing's window totals say which episodes have numbers in the window.
                return [e["id"] for _, document, _ in client.episodes(1, job.start, job.end)
                        for e in document["episodes"] if isinstance(e, dict) and isinstance(e.get("id"), str)
                        and any(count(e.get(k)) for k in ("starts", "streams", "listeners"))]

            sync_episodes_one_by_one(job, "episode_metrics", active, lambda e: episode_metric_rows(job, client, e))
        if job.wants("show_metrics") and job.resume("show_metrics") != "done":
            rows, rejected = show_metric_rows(job, client)
            job.store("show_metrics", rows, rejected, {"window": job.window, "sync_id": job.sync_id, "complete": True})
        if job.wants("demographics"):
            resume = job.resume("demographics")
            if resume == "done":
                return
            job.stats.resumed += bool(resume)
            for day in days(date.fromisoformat(resume["next_date"]) if resume else job.start, job.end):
                rows, rejected = demographic_rows(day, client.aggregate(day))
                # A day not reported yet has no listeners: nothing to store for it.
                rows = rows if any(r["listeners"] for r in rows) else []
                next_day = day + timedelta(days=1)
                job.store("demographics", rows, rejected, {"window": job.window, "sync_id": job.sync_id,
                                                           "next_date": next_day.isoformat(), "complete": next_day > job.end})

"""An Apple Podcasts Connect-shaped analytics client (`Authorization: Bearer …`; an expired
session is redirected to the sign-in page, which the client reports as `http_302`), relative to
`<base_url>` (`…/pcc/v1/analytics`):

- `episodes?showId=&start=&end=` → `{content: {results: {<episode id>: {id, name,
  collectionName, podcastEpisodeGuid, podcastEpisodeNumber, podcastEpisodeType,
  releaseDateTime, releaseDate, offers: [{assets: [{duration}], download: {url}}]}}},
  episodesPlayCount: {<episode id>: [{playscount, totaltimelistened, uniquelistenerscount,
  uniqueengagedlistenerscount, …}]}}`: every episode, and the totals of those played in
  [start, end]. Episodes carry the RSS item guid.
- `episodeDetails?showId=&episodeId=&startDate=&endDate=` → `{episodePlayCountAllTime,
  episodePlayCountTrends: [{timebucket (epoch milliseconds, UTC day), playscount,
  totaltimelistened (seconds), uniquelistenerscount, uniqueengagedlistenerscount}], …}`.
- `showTrendsV2?showId=&start=&end=&seriesMode=DAILY&metric=FOLLOWERS` → `{measure,
  followerAllTimeTrends: [[timebucket, followers, 0]], followerGrowthTrends: [[timebucket,
  gained, lost]]}`.

Numbers lag about two days: the last day is missing and the one before partial; the
look-back window re-reads them.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any

from assets.ingestion.platforms.base import (
    Platform, PlatformConfig, Rejected, ShowSync, Stream, count, int_or_none, timestamp,
)
from assets.ingestion.platforms.listening import ListeningShow, bearer_api, in_window, sync_episodes_one_by_one
from resources.platform_http import ApiClient, ApiError, credential_from_env


class AppleClient:
    def __init__(self, api: ApiClient, show_id: str):
        self.api = api
        self.show_id = show_id

    def _object(self, endpoint: str, params: dict[str, Any]) -> dict[str, Any]:
        response = self.api.get(f"/{endpoint}", {"showId": self.show_id, **params})
        if not isinstance(response.data, dict):
            raise ApiError("unexpected_shape", f"{endpoint} did not return an object", response.status_code)
        return response.data

    def episodes(self, start: date | None = None, end: date | None = None) -> dict[str, Any]:
        params = {k: v.isoformat() for k, v in (("start", start), ("end", end)) if v is not None}
        document = self._object("episodes", params)
        if not isinstance((document.get("content") or {}).get("results"), dict):
            raise ApiError("unexpected_shape", "episodes without content.results")
        return document

    def episode_trends(self, episode_id: str, start: date, end: date) -> list[Any]:
        document = self._object("episodeDetails", {"episodeId": episode_id, "startDate": start.isoformat(),
                                                   "endDate": end.isoformat()})
        trends = document.get("episodePlayCountTrends")
        if not isinstance(trends, list):
            raise ApiError("unexpected_shape", "episodeDetails without episodePlayCountTrends")
        return trends

    def follower_trends(self, start: date, end: date) -> dict[str, Any]:
        return self._object("showTrendsV2", {"start": start.isoformat(), "end": end.isoformat(), "mode": "DAILY",
                                             "seriesMode": "DAILY", "metric": "FOLLOWERS"})


# -- configuration, validation and sync -----------------------------------------------------


class AppleConfig(PlatformConfig):
    base_url: str = "https://podcastsconnect.apple.com/podcasts/pcc/v1/analytics"
    shows: list[ListeningShow] = []


def bucket_day(raw: Any) -> date | None:
    """The UTC day of a time bucket in epoch milliseconds."""
    if isinstance(raw, bool) or not isinstance(raw, int):
        return None
    try:
        return datetime.fromtimestamp(raw / 1000, tz=timezone.utc).date()
    except (OverflowError, OSError, ValueError):
        return None


def episode_rows(document: dict[str, Any], feed_url: str | None) -> tuple[list[dict[str, Any]], list[Rejected]]:
    rows, rejected = [], []
    for key, item in sorted(document["content"]["results"].items()):
        episode_id = str(item.get("id") or "") if isinstance(item, dict) else ""
        if not episode_id.isdigit():
            rejected.append(Rejected(str(key), "missing_episode_id", "episode without a numeric id", item))
            continue
        offers = item.get("offers") if isinstance(item.get("offers"), list) else []
        offer = offers[0] if offers and isinstance(offers[0], dict) else {}
        assets = offer.get("assets") if isinstance(offer.get("assets"), list) else []
        duration = assets[0].get("duration") if assets and isinstance(assets[0], dict) else None
        rows.append({
            "episode_id": episode_id, "guid": item.get("podcastEpisodeGuid"), "title": item.get("name"),
            "episode_number": int_or_none(item.get("podcastEpisodeNumber")), "episode_type": item.get("podcastEpisodeType"),
            "released_at": timestamp(item.get("releaseDateTime")), "duration_seconds": int_or_none(duration),
            "enclosure_url": (offer.get("download") or {}).get("url") if isinstance(offer.get("download"), dict) else None,
            "show_name": item.get("collectionName"), "feed_url": feed_url, "payload": item,
        })
    return rows, rejected


TREND_FIELDS = {"playscount": "plays", "uniquelistenerscount": "listeners",
                "uniqueengagedlistenerscount": "engaged_listeners", "totaltimelistened": "time_listened_seconds"}


def episode_metric_rows(job: ShowSync, episode_id: str, trends: list[Any]) -> tuple[list[dict[str, Any]], list[Rejected]]:
    rows, rejected = [], []
    for entry in trends:
        raw = entry.get("timebucket") if isinstance(entry, dict) else None
        day = bucket_day(raw)
        if not in_window(job, f"{episode_id}@{raw}", day, raw, entry, rejected):
            continue
        values = {column: count(entry.get(field)) for field, column in TREND_FIELDS.items()}
        bad = [field for field, column in TREND_FIELDS.items() if values[column] is None]
        if bad:
            rejected.append(Rejected(f"{episode_id}@{day}", "invalid_count",
                                     ", ".join(f"{f} {entry.get(f)!r}" for f in bad), entry, day))
            continue
        rows.append({"episode_id": episode_id, "metric_date": day, **values})
    return rows, rejected


def follower_rows(job: ShowSync, document: dict[str, Any]) -> tuple[list[dict[str, Any]], list[Rejected]]:
    rows, rejected = [], []
    totals, growth = {}, {}
    for name, target in (("followerAllTimeTrends", totals), ("followerGrowthTrends", growth)):
        for point in document.get(name) or []:
            if not (isinstance(point, list) and len(point) == 3 and all(count(v) is not None for v in point)):
                rejected.append(Rejected(f"{name}:{point!r}"[:200], "invalid_point", "not [timebucket, n, n]", point))
                continue
            day = bucket_day(point[0])
            if in_window(job, f"{name}@{point[0]}", day, point[0], point, rejected):
                target[day] = point
    for day in sorted(totals.keys() | growth.keys()):
        if day in totals and day in growth:
            rows.append({"metric_date": day, "followers": totals[day][1], "followers_gained": growth[day][1],
                         "followers_lost": growth[day][2]})
        else:
            rejected.append(Rejected(f"followers@{day}", "incomplete_day", "the day is missing from one of the trends",
                                     {"total": totals.get(day), "growth": growth.get(day)}, day))
    return rows, rejected


class Apple(Platform):
    name = "apple"
    source_column = "show_id"
    config_model = AppleConfig
    streams = (
        Stream("episodes", "apple_episodes", ("episode_id",), (
            "guid", "title", "episode_number", "episode_type", "released_at", "duration_seconds", "enclosure_url",
            "show_name", "feed_url", "payload"),
            description="Episodes of each show on Apple Podcasts (with the RSS guid), upserted on "
                        "(tenant, show, episode id)."),
        Stream("episode_metrics", "apple_episode_metrics_daily", ("episode_id", "metric_date"), (
            "plays", "listeners", "engaged_listeners", "time_listened_seconds"), daily=True,
            description="Daily plays, listeners, engaged listeners and time listened per Apple Podcasts episode "
                        "(episodes played in the window), upserted on (tenant, show, episode, date)."),
        Stream("show_followers", "apple_show_followers_daily", ("metric_date",),
               ("followers", "followers_gained", "followers_lost"), daily=True,
               description="Followers of each Apple Podcasts show at the end of each day, with the day's gains and "
                           "losses, upserted on (tenant, show, date)."),
    )

    def open_api(self, config, show, policy, environ):
        return bearer_api(config.base_url, credential_from_env(show.token_env, environ), policy)

    def client(self, api, show, config):
        return AppleClient(api, show.show_id)

    def sync_show(self, job: ShowSync) -> None:
        client: AppleClient = job.client
        if job.wants("episodes") and job.resume("episodes") != "done":
            rows, rejected = episode_rows(client.episodes(), job.show.feed_url)
            job.store("episodes", rows, rejected, {"window": None, "sync_id": job.sync_id, "complete": True})
        if job.wants("episode_metrics"):
            def active() -> list[str]:
                played = client.episodes(job.start, job.end).get("episodesPlayCount")
                return [str(k) for k in played] if isinstance(played, dict) else []

            sync_episodes_one_by_one(
                job, "episode_metrics", active,
                lambda e: episode_metric_rows(job, e, client.episode_trends(e, job.start, job.end)))
        if job.wants("show_followers") and job.resume("show_followers") != "done":
            rows, rejected = follower_rows(job, client.follower_trends(job.start, job.end))
            job.store("show_followers", rows, rejected, {"window": job.window, "sync_id": job.sync_id, "complete": True})

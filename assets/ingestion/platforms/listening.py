"""What the two listening platforms (Spotify for Creators, Apple Podcasts Connect) share: bearer
authentication, the show configuration, and syncing a window's metrics one episode at a time.

Their numbers arrive late (a day is missing or partial for up to two days), so their metric
streams rely on the look-back window (`lookback_days`, 3 by default): every partition run
re-reads the days before it and the upserts replace what was partial.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date
from typing import Any

from assets.ingestion.platforms.base import Rejected, ShowConfig, ShowSync
from resources.platform_http import ApiClient, ApiPolicy, Secret


def bearer_api(base_url: str, token: Secret, policy: ApiPolicy) -> ApiClient:
    return ApiClient(base_url, policy, {"Authorization": Secret(f"Bearer {token.reveal()}")})


class ListeningShow(ShowConfig):
    """A show on a listening platform: the platform's show id, the account's bearer token (an
    environment variable), and the show's RSS feed, which the platforms do not expose in their
    analytics and the operator knows (stored with the episodes for matching)."""

    show_id: str
    token_env: str
    feed_url: str | None = None

    @property
    def source_id(self) -> str:
        return self.show_id

    @property
    def credential_envs(self) -> tuple[str, ...]:
        return (self.token_env,)


def iso_date(raw: Any) -> date | None:
    if not isinstance(raw, str):
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        return None


def in_window(job: ShowSync, key: str, day: date | None, raw: Any, payload: Any,
              rejected: list[Rejected]) -> bool:
    """Whether a record's day is a real day inside the sync's window (else it is rejected)."""
    if day is None:
        rejected.append(Rejected(key, "invalid_date", f"date {raw!r}", payload))
        return False
    if not job.start <= day <= job.end:
        rejected.append(Rejected(key, "date_outside_window", f"{day} not in {job.start}..{job.end}", payload, day))
        return False
    return True


def sync_episodes_one_by_one(
    job: ShowSync, stream: str, active: Callable[[], Iterable[str]],
    fetch: Callable[[str], tuple[list[dict[str, Any]], list[Rejected]]],
) -> None:
    """Sync a window's per-episode metrics: `active()` lists the episodes with numbers in the
    window (the platform says which), `fetch(episode_id)` returns one episode's rows. Each
    episode is one unit, in id order; the cursor names the last episode stored, so a retried
    sync resumes after it."""
    resume = job.resume(stream)
    if resume == "done":
        return
    job.stats.resumed += bool(resume)
    after = resume["after"] if resume else None
    pending = sorted(e for e in set(active()) if after is None or e > after)
    if not pending:
        job.store(stream, [], [], {"window": job.window, "sync_id": job.sync_id, "after": after, "complete": True})
        return
    for position, episode_id in enumerate(pending):
        rows, rejected = fetch(episode_id)
        job.store(stream, rows, rejected, {"window": job.window, "sync_id": job.sync_id, "after": episode_id,
                                           "complete": position == len(pending) - 1})

"""Poll feeds and store what they say: the I/O around the pure parser.

`ingest_rss` is what the Dagster asset, the benchmark and the tests call: it reads the
conditional-GET validators of the previous polls, fetches every feed concurrently, parses the
bytes off the event loop, and writes fetch log, podcasts, episodes and quarantine rows in one
transaction (a crash leaves no half-written poll behind, so a 304 never hides unloaded data).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from importlib import resources as importlib_resources
from pathlib import Path
from typing import Any

import psycopg
import yaml
from pydantic import BaseModel, Field

from assets.ingestion.rss_parse import ParsedFeed, content_hash, parse_feed
from resources.adaptive_pool import map_adaptive
from resources.http import Fetcher, FetchPolicy, FetchResult


class FeedSource(BaseModel):
    tenant_id: str
    url: str


class RssSources(BaseModel):
    """The `rss:` section of sources.yaml."""

    feeds: list[FeedSource] = Field(default_factory=list)
    allow_private_hosts: bool | None = None
    timeout_seconds: float | None = None
    max_attempts: int | None = None
    max_bytes: int | None = None
    max_redirects: int | None = None
    concurrency: int | None = None
    strict_xml: bool = True


def load_sources(path: Path) -> RssSources:
    if not path.exists():
        raise FileNotFoundError(
            f"feed list {path} does not exist: run `podcast-analytics demo` or set PODCAST_SOURCES_FILE"
        )
    document = yaml.safe_load(path.read_text()) or {}
    return RssSources.model_validate(document.get("rss") or {})


@dataclass
class FeedOutcome:
    source: FeedSource
    fetch: FetchResult
    parsed: ParsedFeed | None = None
    content_sha256: str | None = None

    @property
    def outcome(self) -> str:
        if self.fetch.error_code:
            return "error"
        return "not_modified" if self.fetch.not_modified else "fetched"


@dataclass
class IngestStats:
    feeds: int = 0
    outcomes: Counter = field(default_factory=Counter)
    feed_errors: Counter = field(default_factory=Counter)
    item_rejections: Counter = field(default_factory=Counter)
    episodes_seen: int = 0
    podcasts_written: int = 0
    episodes_written: int = 0
    bytes_downloaded: int = 0

    def as_metadata(self) -> dict[str, Any]:
        return {
            "feeds_polled": self.feeds,
            "fetched": self.outcomes["fetched"],
            "not_modified": self.outcomes["not_modified"],
            "errors": self.outcomes["error"],
            "bytes_downloaded": self.bytes_downloaded,
            "episodes_in_fetched_feeds": self.episodes_seen,
            "podcasts_inserted_or_changed": self.podcasts_written,
            "episodes_inserted_or_changed": self.episodes_written,
            "feeds_quarantined_by_reason": dict(self.feed_errors),
            "items_quarantined_by_reason": dict(self.item_rejections),
        }


def previous_validators(conn: psycopg.Connection, feeds: list[FeedSource]
                        ) -> dict[tuple[str, str], tuple[str | None, str | None]]:
    """(tenant, feed URL) -> the ETag / Last-Modified to send on its next poll.

    Per tenant: a tenant that adds a feed another tenant already polls has stored nothing of it
    yet, so it must not send the other tenant's validators (a 304 would leave it with nothing).
    The validators are those of the tenant's last 200 for the feed, or of a later 304 that carried
    new ones; a 304 without validators (RFC 9110 allows it) keeps the earlier ones, so a server
    that omits them on 304 still gets a conditional request every poll."""
    rows = conn.execute(
        """
        select distinct on (tenant_id, feed_url) tenant_id, feed_url, etag, last_modified
        from raw.rss_feed_fetches
        where feed_url = any(%s)
          and (outcome = 'fetched' or (outcome = 'not_modified' and (etag is not null or last_modified is not null)))
        order by tenant_id, feed_url, fetched_at desc
        """,
        ([f.url for f in feeds],),
    ).fetchall()
    return {(tenant, url): (etag, last_modified) for tenant, url, etag, last_modified in rows}


def poll_feeds(
    sources: RssSources, policy: FetchPolicy, validators: dict[tuple[str, str], tuple[str | None, str | None]],
    concurrency: int,
) -> list[FeedOutcome]:
    """Fetch and parse every feed, up to `concurrency` at a time (fewer while more threads would
    only contend for the CPU: see map_adaptive), in feed-list order."""

    def one(fetcher: Fetcher, source: FeedSource) -> FeedOutcome:
        etag, last_modified = validators.get((source.tenant_id, source.url), (None, None))
        result = fetcher.fetch(source.url, etag, last_modified)
        outcome = FeedOutcome(source, result)
        if result.ok:
            outcome.content_sha256 = hashlib.sha256(result.body).hexdigest()
            outcome.parsed = parse_feed(result.body, source.url, result.headers.get("content-type"), sources.strict_xml)
        return outcome

    with Fetcher(policy, pool_size=concurrency) as fetcher:
        return map_adaptive(lambda source: one(fetcher, source), sources.feeds, concurrency, "feed-poll")


def _sql(name: str) -> str:
    return importlib_resources.files("assets.ingestion").joinpath(f"sql/{name}").read_text()


PODCAST_COLUMNS = (
    "tenant_id", "feed_url", "final_url", "title", "link", "description_html", "language", "author",
    "owner_name", "owner_email", "image_url", "itunes_type", "explicit_raw", "categories",
    "podcast_guid", "medium", "new_feed_url", "itunes_complete", "itunes_block", "generator",
    "updated_raw", "episode_count", "content_hash", "payload", "_batch_id",
)
EPISODE_COLUMNS = (
    "tenant_id", "feed_url", "guid", "guid_source", "feed_position", "title", "itunes_title", "link",
    "description_html", "description_text", "published_raw", "published_at", "duration_raw",
    "duration_seconds", "explicit_raw", "itunes_episode_type", "season_raw", "season_number",
    "episode_raw", "episode_number", "enclosure_url", "enclosure_length", "enclosure_type",
    "image_url", "transcripts", "chapters_url", "chapters_type", "content_hash", "payload", "_batch_id",
)
JSON_COLUMNS = {"payload", "transcripts"}


def _row(record: dict[str, Any], columns: tuple[str, ...]) -> tuple:
    return tuple(json.dumps(record.get(c), default=str) if c in JSON_COLUMNS else record.get(c) for c in columns)


def store_outcomes(conn: psycopg.Connection, outcomes: list[FeedOutcome], batch_id: str) -> IngestStats:
    """Write one poll in the current transaction (the caller commits)."""
    stats = IngestStats(feeds=len(outcomes))
    fetch_rows, podcast_rows, episode_rows, feed_q, item_q = [], [], [], [], []
    for o in outcomes:
        f = o.fetch
        stats.outcomes[o.outcome] += 1
        stats.bytes_downloaded += len(f.body or b"")
        fetch_rows.append((
            o.source.tenant_id, o.source.url, f.final_url, f.fetched_at, o.outcome, f.status_code,
            f.etag, f.last_modified, len(f.body) if f.body is not None else None, f.duration_ms,
            f.attempts, f.error_code, f.error, o.content_sha256, batch_id,
        ))
        if f.error_code:
            stats.feed_errors[f.error_code] += 1
            feed_q.append((o.source.tenant_id, o.source.url, f.error_code, f.error, None, batch_id))
            continue
        parsed = o.parsed
        if parsed is None:
            continue
        if parsed.feed_error is not None:
            err = parsed.feed_error
            stats.feed_errors[err.reason_code] += 1
            evidence = (f.body or b"")[:2048].decode("utf-8", errors="replace")
            feed_q.append((o.source.tenant_id, o.source.url, err.reason_code, err.detail, evidence, batch_id))
            continue
        podcast = dict(parsed.podcast, tenant_id=o.source.tenant_id, feed_url=o.source.url,
                       final_url=f.final_url, _batch_id=batch_id)
        podcast["content_hash"] = content_hash({k: v for k, v in podcast.items() if k != "_batch_id"})
        podcast_rows.append(_row(podcast, PODCAST_COLUMNS))
        stats.episodes_seen += len(parsed.episodes)
        for episode in parsed.episodes:
            record = dict(episode, tenant_id=o.source.tenant_id, feed_url=o.source.url, _batch_id=batch_id)
            episode_rows.append(_row(record, EPISODE_COLUMNS))
        for rej in parsed.rejected:
            stats.item_rejections[rej.reason_code] += 1
            item_q.append((
                o.source.tenant_id, o.source.url, rej.item_key, rej.reason_code, rej.guid, rej.title,
                rej.detail, json.dumps(rej.payload, default=str), batch_id,
            ))

    with conn.cursor() as cur:
        with cur.copy(
            "copy raw.rss_feed_fetches (tenant_id, feed_url, final_url, fetched_at, outcome, status_code, "
            "etag, last_modified, bytes, duration_ms, attempts, error_code, error, content_sha256, _batch_id) "
            "from stdin"
        ) as copy:
            for row in fetch_rows:
                copy.write_row(row)
        cur.execute("create temp table tmp_rss_podcasts (like raw.rss_podcasts including defaults) on commit drop")
        cur.execute("create temp table tmp_rss_episodes (like raw.rss_episodes including defaults) on commit drop")
        for table, columns, rows in (
            ("tmp_rss_podcasts", PODCAST_COLUMNS, podcast_rows),
            ("tmp_rss_episodes", EPISODE_COLUMNS, episode_rows),
        ):
            with cur.copy(f"copy {table} ({', '.join(columns)}) from stdin") as copy:
                for row in rows:
                    copy.write_row(row)
        upsert_podcasts, upsert_episodes = [s for s in _sql("rss_upsert.sql").split(";") if s.strip()]
        cur.execute(upsert_podcasts)
        stats.podcasts_written = cur.rowcount
        cur.execute(upsert_episodes)
        stats.episodes_written = cur.rowcount
        cur.executemany(
            "insert into quarantine.rss_feeds (tenant_id, feed_url, reason_code, detail, evidence, _batch_id) "
            "values (%s, %s, %s, %s, %s, %s) on conflict do nothing",
            feed_q,
        )
        cur.executemany(
            "insert into quarantine.rss_episodes (tenant_id, feed_url, item_key, reason_code, guid, title, "
            "detail, payload, _batch_id) values (%s, %s, %s, %s, %s, %s, %s, %s, %s) on conflict do nothing",
            item_q,
        )
    return stats


def ingest_rss(
    warehouse_url: str, sources: RssSources, batch_id: str, default_policy: FetchPolicy | None = None,
    default_concurrency: int = 32, force_refetch: bool = False,
) -> IngestStats:
    """Poll every configured feed once and store the result. Safe to run again at any time."""
    base = default_policy or FetchPolicy()
    overrides = {
        k: getattr(sources, k)
        for k in ("allow_private_hosts", "timeout_seconds", "max_attempts", "max_bytes", "max_redirects")
        if getattr(sources, k) is not None
    }
    policy = FetchPolicy(**{**base.__dict__, **overrides})
    concurrency = sources.concurrency or default_concurrency
    with psycopg.connect(warehouse_url) as conn:
        validators = {} if force_refetch else previous_validators(conn, sources.feeds)
        outcomes = poll_feeds(sources, policy, validators, concurrency)
        stats = store_outcomes(conn, outcomes, batch_id)
        conn.commit()
    return stats

"""Poll feeds and store what they say: the I/O around the pure parser.

`ingest_rss` is what the Dagster asset, the benchmark and the tests call: it decides per URL
whether a conditional GET is safe, fetches every distinct URL once (however many tenants list
it), parses it once, fans the result out to every tenant that lists it, and writes fetch log,
podcasts, episodes and quarantine rows in one transaction (a crash leaves no half-written poll
behind, so a 304 never hides unloaded data).

A feed is the unit that fails, never the poll: an error fetching or parsing one URL becomes its
quarantine reason (`fetch_failed`, `parse_failed`), and rows the database refuses only cost
their own feed. The poll is written in one go inside a savepoint; should that fail, each
(tenant, feed) is written in a savepoint of its own, and one that fails again is quarantined as
`store_failed` with the database's message while the others are stored.

A conditional GET is sent for a URL only when a 304 is as good as a download for every tenant
that lists it: each has stored the feed (its last 200, or a later 304 that carried validators),
all hold the same validators, parsed with today's parse options, and none has the feed in
quarantine. Otherwise the request is unconditional: a tenant that just added a feed another
tenant polls gets the body (not a 304 that would leave it empty), a change of parse options
re-parses the feed, and a quarantined feed is judged again on its current content. Refetching
costs one download in those cases; keeping bodies to serve them from storage would cost a copy
of every feed in the warehouse for a saving that only occurs when the configuration changes.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from importlib import resources as importlib_resources
from pathlib import Path
from typing import Any

import psycopg
import yaml
from pydantic import BaseModel, Field

from assets.ingestion.rss_parse import UNSTORABLE, ParsedFeed, Rejection, content_hash, parse_feed
from resources.identifiers import TenantId
from resources.adaptive_pool import map_adaptive
from resources.http import Fetcher, FetchPolicy, FetchResult
from resources.warehouse import WarehouseResource


log = logging.getLogger(__name__)

# Raised when the parser's rules change what a body gives: stored bodies are then parsed again.
PARSER_REVISION = 3


class FeedSource(BaseModel):
    tenant_id: TenantId
    url: str


class RssSources(BaseModel):
    """The `rss:` section of sources.yaml."""

    feeds: list[FeedSource] = Field(default_factory=list)
    allow_private_hosts: bool | None = None
    timeout_seconds: float | None = None
    max_attempts: int | None = None
    max_bytes: int | None = None
    max_redirects: int | None = None
    deadline_seconds: float | None = None
    concurrency: int | None = None
    # False (the default): XML that is not well-formed is recovered, as feedparser and podcast
    # apps do, and its feed and episodes are marked `parse_degraded`; true quarantines it as
    # `malformed_xml`. Entity declarations and truncated documents are refused either way.
    strict_xml: bool = False

    def parse_options(self) -> str:
        """A fingerprint of everything that changes how a body is parsed: stored with every fetch,
        a different one forces an unconditional request (a 304 would keep the old parse)."""
        options = {"strict_xml": self.strict_xml, "parser_revision": PARSER_REVISION}
        return hashlib.sha256(json.dumps(options, sort_keys=True).encode()).hexdigest()[:16]


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
    requests: int = 0  # distinct URLs fetched: one per URL however many tenants list it
    degraded_feeds: int = 0
    quarantine_changes: Counter = field(default_factory=Counter)  # history events of this poll

    def as_metadata(self) -> dict[str, Any]:
        return {
            "feeds_polled": self.feeds,
            "requests": self.requests,
            "feeds_parsed_degraded": self.degraded_feeds,
            "quarantine_changes": dict(self.quarantine_changes),
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


def distinct_sources(feeds: list[FeedSource]) -> list[FeedSource]:
    """The feed list without repeated (tenant, URL) pairs, in list order."""
    seen: set[tuple[str, str]] = set()
    unique = []
    for feed in feeds:
        if (feed.tenant_id, feed.url) not in seen:
            seen.add((feed.tenant_id, feed.url))
            unique.append(feed)
    return unique


def conditional_validators(conn: psycopg.Connection, feeds: list[FeedSource], parse_options: str
                           ) -> dict[str, tuple[str | None, str | None]]:
    """Feed URL -> the ETag / Last-Modified to send on its next poll; a URL that is absent is
    fetched unconditionally (see the module docstring for when).

    A tenant's validators are those of its last 200 for the feed, or of a later 304 that carried
    new ones: a 304 without validators (RFC 9110 allows it) keeps the earlier ones, so a server
    that omits them on 304 still gets a conditional request every poll."""
    urls = sorted({f.url for f in feeds})
    state = {
        (tenant, url): (etag, last_modified, options)
        for tenant, url, etag, last_modified, options in conn.execute(
            """
            select distinct on (tenant_id, feed_url) tenant_id, feed_url, etag, last_modified, parse_options
            from raw.rss_feed_fetches
            where feed_url = any(%s)
              and (outcome = 'fetched' or (outcome = 'not_modified' and (etag is not null or last_modified is not null)))
            order by tenant_id, feed_url, fetched_at desc, fetch_id desc
            """,
            (urls,),
        ).fetchall()
    }
    quarantined = set(conn.execute(
        "select distinct tenant_id, feed_url from quarantine.rss_feeds where feed_url = any(%s)", (urls,)).fetchall())
    tenants: dict[str, list[str]] = {}
    for feed in feeds:
        tenants.setdefault(feed.url, []).append(feed.tenant_id)
    validators = {}
    for url, listed_by in tenants.items():
        held = {state.get((tenant, url)) for tenant in listed_by}
        if len(held) != 1 or any((tenant, url) in quarantined for tenant in listed_by):
            continue
        (current,) = held
        if current is None or current[2] != parse_options or (current[0] is None and current[1] is None):
            continue
        validators[url] = (current[0], current[1])
    return validators


def poll_feeds(
    sources: RssSources, policy: FetchPolicy, validators: dict[str, tuple[str | None, str | None]],
    concurrency: int,
) -> list[FeedOutcome]:
    """Fetch and parse every distinct URL once, up to `concurrency` at a time (fewer while more
    threads would only contend for the CPU: see map_adaptive), and give each (tenant, URL) of the
    feed list its outcome, in feed-list order. Tenants listing one URL share its fetch and parse."""
    feeds = distinct_sources(sources.feeds)
    urls = list(dict.fromkeys(f.url for f in feeds))

    def one(fetcher: Fetcher, url: str) -> tuple[FetchResult, ParsedFeed | None, str | None]:
        etag, last_modified = validators.get(url, (None, None))
        try:
            result = fetcher.fetch(url, etag, last_modified)
        except Exception as exc:  # one URL's surprise is its own failure, not the poll's
            log.exception("fetching %s failed", url)
            return FetchResult(url=url, final_url=url, status_code=None, error_code="fetch_failed",
                               error=f"{type(exc).__name__}: {exc}"), None, None
        if not result.ok:
            return result, None, None
        try:
            parsed = parse_feed(result.body, url, result.headers.get("content-type"), sources.strict_xml)
        except Exception as exc:
            log.exception("parsing %s failed", url)
            parsed = ParsedFeed(feed_error=Rejection("parse_failed", f"{type(exc).__name__}: {exc}"))
        return result, parsed, hashlib.sha256(result.body).hexdigest()

    with Fetcher(policy, pool_size=concurrency) as fetcher:
        done = dict(zip(urls, map_adaptive(lambda url: one(fetcher, url), urls, concurrency, "feed-poll")))
    return [FeedOutcome(feed, *done[feed.url]) for feed in feeds]


def _sql(name: str) -> str:
    return importlib_resources.files("assets.ingestion").joinpath(f"sql/{name}").read_text()


# The columns of the raw tables this asset writes, declared here once: the batch staged for the
# upsert, the quality suite (pipelines/checks/quality.py) and the dbt source read them, and
# tests/test_raw_columns.py holds the upsert SQL, the warehouse's tables and dbt's sources to them.
RAW_COLUMNS = {
    "rss_feed_fetches": (
        "fetch_id", "tenant_id", "feed_url", "final_url", "fetched_at", "outcome", "status_code", "etag",
        "last_modified", "bytes", "duration_ms", "attempts", "error_code", "error", "content_sha256", "parse_options",
        "_ingested_at", "_source", "_batch_id",
    ),
    "rss_podcasts": (
        "tenant_id", "feed_url", "final_url", "title", "link", "description_html", "language", "author",
        "owner_name", "owner_email", "image_url", "itunes_type", "explicit_raw", "categories",
        "podcast_guid", "medium", "new_feed_url", "itunes_complete", "itunes_block", "generator",
        "updated_raw", "episode_count", "parse_degraded", "parse_warnings", "content_hash", "payload",
        "_ingested_at", "_source", "_batch_id",
    ),
    "rss_episodes": (
        "tenant_id", "feed_url", "guid", "guid_source", "feed_position", "title", "itunes_title", "link",
        "description_html", "description_text", "published_raw", "published_at", "duration_raw",
        "duration_seconds", "explicit_raw", "itunes_episode_type", "season_raw", "season_number",
        "episode_raw", "episode_number", "enclosure_url", "enclosure_length", "enclosure_type",
        "image_url", "transcripts", "chapters_url", "chapters_type", "parse_degraded", "content_hash", "payload",
        "_first_seen_at", "_ingested_at", "_source", "_batch_id",
    ),
}
# Filled in the warehouse, not staged: load times by defaults, `_source` by the upsert (a
# fetch's by its default), a fetch's id by its identity.
NOT_STAGED = frozenset({"_ingested_at", "_first_seen_at", "_source", "fetch_id"})
FETCH_COLUMNS = tuple(c for c in RAW_COLUMNS["rss_feed_fetches"] if c not in NOT_STAGED)
PODCAST_COLUMNS = tuple(c for c in RAW_COLUMNS["rss_podcasts"] if c not in NOT_STAGED)
EPISODE_COLUMNS = tuple(c for c in RAW_COLUMNS["rss_episodes"] if c not in NOT_STAGED)
JSON_COLUMNS = {"payload", "transcripts"}


def _row(record: dict[str, Any], columns: tuple[str, ...]) -> tuple:
    return tuple(json.dumps(record.get(c), default=str) if c in JSON_COLUMNS else record.get(c) for c in columns)


def pg_text(value: str | None, limit: int | None = None) -> str | None:
    """Text PostgreSQL accepts: no NUL, no lone surrogate (error messages and evidence quote
    whatever the server sent)."""
    if value is None:
        return None
    value = value[:limit] if limit else value
    return UNSTORABLE.sub("\ufffd", value) if UNSTORABLE.search(value) else value


_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF16_LE, "utf-16"),
         (codecs.BOM_UTF16_BE, "utf-16"))


def evidence(body: bytes, limit: int = 2048) -> str:
    """The start of a refused body as storable text: in the UTF-16/32 its byte-order mark names,
    else UTF-8 (what is not UTF-8, binary included, shows as U+FFFD)."""
    codec = next((name for bom, name in _BOMS if body.startswith(bom)), "utf-8")
    return pg_text(body[:limit].decode(codec, errors="replace"))


@dataclass
class _FeedWrite:
    """What one (tenant, feed) of a poll writes: its fetch-log row, podcast and episode rows, and
    its quarantine state (None where the poll learnt nothing: a 304 leaves it as it was)."""

    outcome: str
    fetch_row: tuple
    podcast_rows: list[tuple] = field(default_factory=list)
    episode_rows: list[tuple] = field(default_factory=list)
    feed_state: dict[str, tuple[str | None, str | None]] | None = None
    item_state: dict[tuple[str, str], Rejection] | None = None
    episodes_seen: int = 0
    item_rejections: Counter = field(default_factory=Counter)
    degraded: bool = False


def _feed_write(o: FeedOutcome, batch_id: str, parse_options: str | None) -> _FeedWrite:
    f = o.fetch
    fetch_row = (  # in FETCH_COLUMNS' order
        o.source.tenant_id, o.source.url, pg_text(f.final_url), f.fetched_at, o.outcome, f.status_code,
        pg_text(f.etag), pg_text(f.last_modified), len(f.body) if f.body is not None else None, f.duration_ms,
        f.attempts, f.error_code, pg_text(f.error), o.content_sha256, parse_options, batch_id,
    )
    unit = _FeedWrite(o.outcome, fetch_row)
    if f.error_code:
        unit.feed_state = {f.error_code: (pg_text(f.error), None)}
        return unit
    parsed = o.parsed
    if parsed is None:
        return unit
    if parsed.feed_error is not None:
        err = parsed.feed_error
        unit.feed_state = {err.reason_code: (pg_text(err.detail), evidence(f.body or b""))}
        return unit
    unit.feed_state, unit.item_state = {}, {}
    unit.degraded = parsed.degraded
    podcast = dict(parsed.podcast, tenant_id=o.source.tenant_id, feed_url=o.source.url,
                   final_url=f.final_url, _batch_id=batch_id)
    podcast["content_hash"] = content_hash({k: v for k, v in podcast.items() if k != "_batch_id"})
    unit.podcast_rows.append(_row(podcast, PODCAST_COLUMNS))
    unit.episodes_seen = len(parsed.episodes)
    for episode in parsed.episodes:
        record = dict(episode, tenant_id=o.source.tenant_id, feed_url=o.source.url, _batch_id=batch_id)
        unit.episode_rows.append(_row(record, EPISODE_COLUMNS))
    for rej in parsed.rejected:
        unit.item_rejections[rej.reason_code] += 1
        unit.item_state[(rej.item_key, rej.reason_code)] = rej
    return unit


def _failed_write(unit: _FeedWrite, exc: Exception) -> _FeedWrite:
    """`unit` as a failure to store: logged, quarantined as `store_failed`, nothing else kept."""
    row = unit.fetch_row
    detail = pg_text(f"{type(exc).__name__}: {exc}", 2000)
    fetch_row = (*row[:4], "error", row[5], None, None, *row[8:11], "store_failed", detail, *row[13:])
    return _FeedWrite("error", fetch_row, feed_state={"store_failed": (detail, None)})


def store_outcomes(conn: psycopg.Connection, outcomes: list[FeedOutcome], batch_id: str,
                   parse_options: str | None = None) -> IngestStats:
    """Write one poll in the current transaction (the caller commits): all feeds at once, or,
    should that fail, feed by feed (see the module docstring)."""
    stats = IngestStats(feeds=len(outcomes))
    units = [_feed_write(o, batch_id, parse_options) for o in outcomes]
    with conn.cursor() as cur:
        cur.execute("create temp table if not exists tmp_rss_podcasts (like raw.rss_podcasts including defaults) "
                    "on commit drop")
        cur.execute("create temp table if not exists tmp_rss_episodes (like raw.rss_episodes including defaults) "
                    "on commit drop")
        try:
            with conn.transaction():
                written = _write(cur, units, batch_id)
        except Exception as exc:
            log.warning("storing the poll in one go failed (%s): storing feed by feed", exc)
            written = []
            for i, unit in enumerate(units):
                try:
                    with conn.transaction():
                        written.append(_write(cur, [unit], batch_id))
                except Exception as unit_exc:
                    log.exception("storing %s for %s failed", unit.fetch_row[1], unit.fetch_row[0])
                    units[i] = _failed_write(unit, unit_exc)
                    try:
                        with conn.transaction():
                            written.append(_write(cur, [units[i]], batch_id))
                    except Exception:  # not even its failure can be stored (its tenant id or URL)
                        log.exception("recording the failure of %s failed", unit.fetch_row[1])
        else:
            written = [written]
    for podcasts, episodes, changes in written:
        stats.podcasts_written += podcasts
        stats.episodes_written += episodes
        stats.quarantine_changes.update(changes)
    counted: set[int] = set()
    for o, unit in zip(outcomes, units):
        stats.outcomes[unit.outcome] += 1
        if id(o.fetch) not in counted:  # tenants sharing a URL share its one request
            counted.add(id(o.fetch))
            stats.requests += 1
            stats.bytes_downloaded += len(o.fetch.body or b"")
        for reason in unit.feed_state or {}:
            stats.feed_errors[reason] += 1
        stats.degraded_feeds += unit.degraded
        stats.episodes_seen += unit.episodes_seen
        stats.item_rejections.update(unit.item_rejections)
    return stats


def _write(cur: psycopg.Cursor, units: list[_FeedWrite], batch_id: str) -> tuple[int, int, Counter]:
    """Write `units`; (podcasts written, episodes written, quarantine changes)."""
    with cur.copy(f"copy raw.rss_feed_fetches ({', '.join(FETCH_COLUMNS)}) from stdin") as copy:
        for unit in units:
            copy.write_row(unit.fetch_row)
    cur.execute("truncate tmp_rss_podcasts, tmp_rss_episodes")
    for table, columns, rows in (
        ("tmp_rss_podcasts", PODCAST_COLUMNS, [r for u in units for r in u.podcast_rows]),
        ("tmp_rss_episodes", EPISODE_COLUMNS, [r for u in units for r in u.episode_rows]),
    ):
        with cur.copy(f"copy {table} ({', '.join(columns)}) from stdin") as copy:
            for row in rows:
                copy.write_row(row)
    upsert_podcasts, upsert_episodes = [s for s in _sql("rss_upsert.sql").split(";") if s.strip()]
    cur.execute(upsert_podcasts)
    podcasts = cur.rowcount
    cur.execute(upsert_episodes)
    episodes = cur.rowcount
    feed_state = {(u.fetch_row[0], u.fetch_row[1]): u.feed_state for u in units if u.feed_state is not None}
    item_state = {(u.fetch_row[0], u.fetch_row[1]): u.item_state for u in units if u.item_state is not None}
    changes: Counter = Counter()
    _store_quarantine(cur, feed_state, item_state, batch_id, changes)
    return podcasts, episodes, changes


def _store_quarantine(cur: psycopg.Cursor, feed_state: dict, item_state: dict, batch_id: str,
                      changes: Counter) -> None:
    """Make quarantine.rss_feeds / rss_episodes say what this poll found for the feeds it knows
    the state of, and append every change to quarantine.rss_history.

    A feed that parses leaves feed quarantine, and its items' quarantine becomes exactly the items
    it rejected this time (a fixed item leaves it). Rows that stay are left untouched, so polling
    the same content again changes nothing."""
    urls = sorted({url for _, url in feed_state})
    current_feeds = {
        (tenant, url, reason) for tenant, url, reason in cur.execute(
            "select tenant_id, feed_url, reason_code from quarantine.rss_feeds where feed_url = any(%s)",
            (urls,)).fetchall()
        if (tenant, url) in feed_state
    }
    current_items = {
        (tenant, url, item_key, reason): detail for tenant, url, item_key, reason, detail in cur.execute(
            "select tenant_id, feed_url, item_key, reason_code, detail from quarantine.rss_episodes "
            "where feed_url = any(%s)", (sorted({url for _, url in item_state}),)).fetchall()
        if (tenant, url) in item_state
    }
    wanted_feeds = {(t, u, reason): value for (t, u), reasons in feed_state.items() for reason, value in reasons.items()}
    wanted_items = {(t, u, key, reason): rej for (t, u), items in item_state.items() for (key, reason), rej in items.items()}
    history = []
    gone_feeds = sorted(current_feeds - wanted_feeds.keys())
    new_feeds = sorted(wanted_feeds.keys() - current_feeds)
    gone_items = sorted(current_items.keys() - wanted_items.keys())
    new_items = sorted(wanted_items.keys() - current_items.keys())
    cur.executemany(
        "delete from quarantine.rss_feeds where tenant_id = %s and feed_url = %s and reason_code = %s", gone_feeds)
    history += [(t, u, None, "cleared", reason, None, batch_id) for t, u, reason in gone_feeds]
    cur.executemany(
        "insert into quarantine.rss_feeds (tenant_id, feed_url, reason_code, detail, evidence, _batch_id) "
        "values (%s, %s, %s, %s, %s, %s)",
        [(t, u, reason, *wanted_feeds[(t, u, reason)], batch_id) for t, u, reason in new_feeds],
    )
    history += [(t, u, None, "quarantined", reason, wanted_feeds[(t, u, reason)][0], batch_id) for t, u, reason in new_feeds]
    cur.executemany(
        "delete from quarantine.rss_episodes where tenant_id = %s and feed_url = %s and item_key = %s "
        "and reason_code = %s", gone_items)
    history += [(t, u, key, "cleared", reason, current_items[(t, u, key, reason)], batch_id)
                for t, u, key, reason in gone_items]
    item_rows = []
    for t, u, key, reason in new_items:
        rej = wanted_items[(t, u, key, reason)]
        item_rows.append((t, u, key, reason, rej.guid, rej.title, rej.detail, json.dumps(rej.payload, default=str), batch_id))
        history.append((t, u, key, "quarantined", reason, rej.detail, batch_id))
    cur.executemany(
        "insert into quarantine.rss_episodes (tenant_id, feed_url, item_key, reason_code, guid, title, "
        "detail, payload, _batch_id) values (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        item_rows,
    )
    cur.executemany(
        "insert into quarantine.rss_history (tenant_id, feed_url, item_key, event, reason_code, detail, _batch_id) "
        "values (%s, %s, %s, %s, %s, %s, %s)", history)
    changes.update(f"{'item' if key else 'feed'}_{event}" for _, _, key, event, _, _, _ in history)


def ingest_rss(
    warehouse: WarehouseResource, sources: RssSources, batch_id: str, default_policy: FetchPolicy | None = None,
    default_concurrency: int = 32, force_refetch: bool = False,
) -> IngestStats:
    """Poll every configured feed once and store the result. Safe to run again at any time."""
    base = default_policy or FetchPolicy()
    overrides = {
        k: getattr(sources, k)
        for k in ("allow_private_hosts", "timeout_seconds", "max_attempts", "max_bytes", "max_redirects",
                  "deadline_seconds")
        if getattr(sources, k) is not None
    }
    policy = FetchPolicy(**{**base.__dict__, **overrides})
    concurrency = sources.concurrency or default_concurrency
    parse_options = sources.parse_options()
    with warehouse.connect() as conn:
        validators = {} if force_refetch else conditional_validators(conn, sources.feeds, parse_options)
        conn.commit()  # no transaction is held open while the feeds are fetched
        outcomes = poll_feeds(sources, policy, validators, concurrency)
        stats = store_outcomes(conn, outcomes, batch_id, parse_options)
        conn.commit()
    return stats

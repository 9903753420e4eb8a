"""Episode transcripts and chapters: fetched from the URLs the feeds list, parsed, stored.

`ingest_documents` is what the Dagster asset and the tests call. It reads from `raw.rss_episodes`
which documents the episodes list (each `transcripts` entry, and `chapters_url`) and which of
them are due:

- a document never fetched (a new episode, or an episode whose URL changed), or one whose
  declared type or language the feed changed;
- a quarantined one whose reason may pass by itself (`timeout`, `connection_error`,
  `deadline_exceeded`, `dns_error`, `fetch_failed`, `http_408` / `425` / `429` / `5xx`): every run
  for `retry_passing_hours` (24) after it was first met with that reason, then only on a refresh;
- with `refresh`, every stored and quarantined one: stored ones with a conditional GET when every
  row listing the URL holds the same validators, so an unchanged document costs a 304;
- with `force_refetch`, everything, unconditionally, re-parsed and rewritten (after a parser
  change).

Every distinct URL is fetched once per run, however many tenants' feeds list it, with the safe
client (resources/http.py: size cap, timeouts, deadline, no private address unless allowed),
up to `concurrency` at a time, hosts in turn, and its result goes to every (tenant, feed,
episode) row listing it. A host that cannot be reached is given up for the run after three
failures (`HostBreaker`): its other documents get the same reason without a request. A body whose SHA-256 equals the stored one (same declared type and language) rewrites
nothing, so running again on the same input changes no row; new validators alone are updated in
place. A changed document is replaced whole: its row and all its cues (or chapters) in the run's
transaction. A document that cannot be used goes to `quarantine.episode_documents` with the
reason (`http_404`, the client's codes such as `response_too_large` or `private_address`, or the
parser's: `unsupported_type`, `invalid_vtt`, `bad_timings`...) and its stored copy is removed,
except after a passing failure (above), which keeps the stored copy and writes nothing. A
document that parses again leaves quarantine. Documents an episode no longer lists are removed.

The policy: the HTTP resource's, then the `rss:` section of sources.yaml (its
`allow_private_hosts`, timeouts, attempts, redirects and deadline: the documents come from the
same feeds, so the simulator on loopback is allowed exactly as its feeds are), then the optional
`transcripts:` section, whose `max_bytes` caps a document (default 5 MiB) and `concurrency`
bounds the fetches.

The run is written in one transaction, in one go; should that fail, document by document, and a
document the database refuses is quarantined as `store_failed` with its message.
"""

import hashlib
import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import dagster as dg
import psycopg
import yaml
from pydantic import BaseModel

from assets.automation import ON_NEW_DATA
from assets.ingestion.rss_ingest import RssSources, evidence, pg_text
from assets.ingestion.transcript_parse import Chapters, ParseError, Transcript, parse_chapters, parse_transcript
from resources.adaptive_pool import map_adaptive
from resources.http import RETRYABLE_STATUS, Fetcher, FetchPolicy, FetchResult, HttpResource
from resources.settings import get_settings
from resources.warehouse import WarehouseResource

log = logging.getLogger(__name__)

DOCUMENT_MAX_BYTES = 5 * 1024 * 1024
RETRY_PASSING_HOURS = 24
PASSING_REASONS = frozenset({"timeout", "connection_error", "deadline_exceeded", "dns_error", "fetch_failed",
                             *(f"http_{status}" for status in RETRYABLE_STATUS)})

# The columns of the raw tables this module writes (tests/test_raw_columns.py holds the warehouse
# and dbt's sources to them, as for the other raw tables).
RAW_COLUMNS = {
    "transcripts": (
        "tenant_id", "feed_url", "guid", "url", "declared_type", "language", "format", "content_type", "bytes",
        "content_sha256", "etag", "last_modified", "cue_count", "has_timings", "fetched_at", "_source",
        "_ingested_at", "_batch_id",
    ),
    "transcript_cues": (
        "tenant_id", "feed_url", "guid", "url", "cue_index", "start_seconds", "end_seconds", "speaker", "body",
    ),
    "chapters_documents": (
        "tenant_id", "feed_url", "guid", "url", "declared_type", "version", "content_type", "bytes",
        "content_sha256", "etag", "last_modified", "chapter_count", "fetched_at", "_source", "_ingested_at",
        "_batch_id",
    ),
    "chapters": (
        "tenant_id", "feed_url", "guid", "url", "chapter_index", "start_seconds", "end_seconds", "title",
        "link_url", "image_url", "toc",
    ),
}
NOT_STAGED = frozenset({"_source", "_ingested_at"})  # filled in by the warehouse
TRANSCRIPT_COLUMNS = tuple(c for c in RAW_COLUMNS["transcripts"] if c not in NOT_STAGED)
CUE_COLUMNS = RAW_COLUMNS["transcript_cues"]
CHAPTERS_DOC_COLUMNS = tuple(c for c in RAW_COLUMNS["chapters_documents"] if c not in NOT_STAGED)
CHAPTER_COLUMNS = RAW_COLUMNS["chapters"]
KEY = ("tenant_id", "feed_url", "guid", "url")


class DocumentSources(BaseModel):
    """The optional `transcripts:` section of sources.yaml (transcripts and chapters files)."""

    max_bytes: int = DOCUMENT_MAX_BYTES
    allow_private_hosts: bool | None = None
    timeout_seconds: float | None = None
    max_attempts: int | None = None
    max_redirects: int | None = None
    deadline_seconds: float | None = None
    concurrency: int | None = None
    # A failure that may pass is tried again on every run for this long after it was first met,
    # then only on a refresh (a host that is gone is not asked every 15 minutes for ever).
    retry_passing_hours: int = RETRY_PASSING_HOURS


TRANSPORT = ("allow_private_hosts", "timeout_seconds", "max_attempts", "max_redirects", "deadline_seconds")


def load_document_sources(path: Path | None) -> tuple[RssSources, DocumentSources]:
    """The `rss:` and `transcripts:` sections of a sources file (defaults when there is none)."""
    document = (yaml.safe_load(path.read_text()) or {}) if path is not None and path.exists() else {}
    return (RssSources.model_validate(document.get("rss") or {}),
            DocumentSources.model_validate(document.get("transcripts") or {}))


def document_policy(base: FetchPolicy, rss: RssSources, documents: DocumentSources) -> FetchPolicy:
    """The HTTP resource's policy, with the feeds' transport settings, then the documents' own."""
    values = dict(base.__dict__)
    for section in (rss, documents):
        values.update({k: getattr(section, k) for k in TRANSPORT if getattr(section, k) is not None})
    values["max_bytes"] = documents.max_bytes
    return FetchPolicy(**values)


def passing(reason: str | None) -> bool:
    """A failure that may pass by itself: the document is tried again on the next run."""
    return reason in PASSING_REASONS or (reason or "").startswith("http_5")


# --- what is listed, and what is due -----------------------------------------------------------

# Every document an episode lists, one row per (tenant, feed, episode, URL) (a URL listed both as
# a transcript and as chapters is read as the transcript), with what is stored or quarantined.
LISTED_SELECT = """
    select distinct on (tenant_id, feed_url, guid, url) *
    from (
        select e.tenant_id, e.feed_url, e.guid, t->>'url' as url, 'transcript' as kind,
               t->>'type' as declared_type, t->>'language' as language
        from raw.rss_episodes as e
        cross join lateral jsonb_array_elements(
            case when jsonb_typeof(e.transcripts) = 'array' then e.transcripts else '[]'::jsonb end) as t
        where jsonb_typeof(t) = 'object' and coalesce(t->>'url', '') <> ''
        union all
        select tenant_id, feed_url, guid, chapters_url, 'chapters', chapters_type, null
        from raw.rss_episodes
        where coalesce(chapters_url, '') <> ''
    ) as l
    order by tenant_id, feed_url, guid, url, kind desc
"""
LISTED_SQL = f"with listed as ({LISTED_SELECT})"

STATE_SQL = LISTED_SQL + """
, state as (
    select l.*, d.content_sha256 as stored_sha, d.etag, d.last_modified,
           d.declared_type as stored_type, d.language as stored_language, q.reason_code as quarantined,
           q._ingested_at as quarantined_at
    from listed as l
    left join (
        select tenant_id, feed_url, guid, url, 'transcript' as kind, content_sha256, etag, last_modified,
               declared_type, language
        from raw.transcripts
        union all
        select tenant_id, feed_url, guid, url, 'chapters', content_sha256, etag, last_modified, declared_type, null
        from raw.chapters_documents
    ) as d using (tenant_id, feed_url, guid, url, kind)
    left join quarantine.episode_documents as q using (tenant_id, feed_url, guid, url)
)
select tenant_id, feed_url, guid, url, kind, declared_type, language, stored_sha, etag, last_modified,
       stored_type, stored_language, quarantined, quarantined_at
from state
where url in (
    select url from state
    where %(force)s or %(refresh)s
       or (stored_sha is null and quarantined is null)
       or (stored_sha is not null and (stored_type is distinct from declared_type
                                       or stored_language is distinct from language))
       or ((quarantined = any(%(passing)s) or quarantined like 'http\\_5%%')
           and quarantined_at > now() - make_interval(hours => %(retry_hours)s))
)
order by url, tenant_id, feed_url, guid
"""


@dataclass(frozen=True)
class Listed:
    """One document of one episode of one tenant's feed, with what the warehouse holds of it."""

    tenant_id: str
    feed_url: str
    guid: str
    url: str
    kind: str  # transcript | chapters
    declared_type: str | None
    language: str | None
    stored_sha: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    stored_type: str | None = None
    stored_language: str | None = None
    quarantined: str | None = None
    quarantined_at: Any = None

    @property
    def key(self) -> tuple[str, str, str, str]:
        return self.tenant_id, self.feed_url, self.guid, self.url

    @property
    def fetch_url(self) -> str:
        """The URL to fetch: a relative one (the RSS parser keeps them as written) against its feed."""
        try:
            return urljoin(self.feed_url, self.url) if not urlsplit(self.url).scheme else self.url
        except ValueError:
            return self.url  # the fetcher refuses it with its reason

    @property
    def listing_changed(self) -> bool:
        return self.stored_sha is not None and (self.stored_type != self.declared_type
                                                or self.stored_language != self.language)


def due_documents(conn: psycopg.Connection, refresh: bool = False, force: bool = False,
                  retry_hours: int = RETRY_PASSING_HOURS) -> list[Listed]:
    """Every row listing a URL that is due (see the module docstring), grouped by URL."""
    rows = conn.execute(STATE_SQL, {"force": force, "refresh": refresh, "passing": sorted(PASSING_REASONS),
                                    "retry_hours": retry_hours})
    return [Listed(*row) for row in rows.fetchall()]


def conditional(rows: list[Listed], refresh: bool, force: bool) -> tuple[str | None, str | None]:
    """The validators to send for a URL: only on a refresh, and only when every row listing it
    holds the document with the same validators (a new or quarantined row needs the body)."""
    if not refresh or force:
        return None, None
    held = {(r.stored_sha, r.etag, r.last_modified) for r in rows}
    if len(held) != 1 or any(r.stored_sha is None or r.quarantined or r.listing_changed for r in rows):
        return None, None
    _, etag, last_modified = held.pop()
    return etag, last_modified


# --- fetching ---------------------------------------------------------------------------------


@dataclass
class UrlOutcome:
    """One URL's fetch, and its body parsed as each (kind, declared type) that lists it (a
    Transcript / Chapters, or the ParseError; absent when nothing needed parsing)."""

    fetch: FetchResult
    sha: str | None = None
    parsed: dict[tuple[str, str | None], Transcript | Chapters | ParseError] = field(default_factory=dict)
    parse_seconds: float = 0.0
    size: int = 0
    evidence: str | None = None  # the start of the body, kept when some parse failed
    skipped: bool = False  # not requested: its host could not be reached in this run (HostBreaker)


def _parse(kind: str, body: bytes, declared_type: str | None, content_type: str | None
           ) -> Transcript | Chapters | ParseError:
    try:
        if kind == "chapters":
            return parse_chapters(body, declared_type, content_type)
        return parse_transcript(body, declared_type, content_type)
    except ParseError as exc:
        return exc
    except Exception as exc:  # a parser bug is this document's failure, not the run's
        log.exception("parsing a %s failed", kind)
        return ParseError("parse_failed", f"{type(exc).__name__}: {exc}"[:500])


class HostBreaker:
    """Stops asking a host that cannot be reached: after `limit` documents on one host failed
    with a host-level reason (no name, no connection, timeouts) and none succeeded, the run's
    other documents on that host are not requested; they get the same reason (so they are tried
    again like it) and a detail saying they were not fetched. A feed listing thousands of
    documents on a dead CDN costs a few requests, not thousands of timeouts."""

    REASONS = frozenset({"dns_error", "connection_error", "timeout", "deadline_exceeded"})

    def __init__(self, limit: int = 3):
        self.limit = limit
        self.failures: Counter = Counter()
        self.reasons: dict[str, str] = {}
        self.reached: set[str] = set()
        self.lock = threading.Lock()

    def refuse(self, url: str) -> FetchResult | None:
        host = _host(url)
        with self.lock:
            if host in self.reached or self.failures[host] < self.limit:
                return None
            reason, count = self.reasons[host], self.failures[host]
        return FetchResult(url=url, final_url=url, status_code=None, error_code=reason,
                           error=f"not fetched: {count} documents on {host.rstrip(':')} failed in this run ({reason})")

    def record(self, url: str, result: FetchResult) -> None:
        host = _host(url)
        with self.lock:
            if result.error_code in self.REASONS:
                self.failures[host] += 1
                self.reasons[host] = result.error_code
            elif result.status_code is not None:
                self.reached.add(host)


def _host(url: str) -> str:
    """The server a URL names: host and port."""
    try:
        parts = urlsplit(url)
        return f"{(parts.hostname or '').lower()}:{parts.port or ''}"
    except ValueError:
        return ""


def interleaved(urls: list[str]) -> list[str]:
    """`urls` taken host by host in turn: no host gets every connection at once, and a failing
    host is found out after its first few documents."""
    by_host: dict[str, list[str]] = {}
    for url in urls:
        by_host.setdefault(_host(url), []).append(url)
    queues = list(by_host.values())
    return [q[i] for i in range(max(map(len, queues), default=0)) for q in queues if i < len(q)]


def fetch_documents(by_url: dict[str, list[Listed]], policy: FetchPolicy, concurrency: int, refresh: bool,
                    force: bool) -> dict[str, UrlOutcome]:
    """Fetch every URL once (up to `concurrency` at a time, hosts in turn, unreachable hosts
    given up for the run: `HostBreaker`) and parse what needs parsing."""
    breaker = HostBreaker()

    def one(fetcher: Fetcher, url: str) -> UrlOutcome:
        rows = by_url[url]
        refused = breaker.refuse(url)
        if refused is not None:
            return UrlOutcome(refused, skipped=True)
        etag, last_modified = conditional(rows, refresh, force)
        try:
            result = fetcher.fetch(url, etag, last_modified)
        except Exception as exc:  # one URL's surprise is its own failure, not the run's
            log.exception("fetching %s failed", url)
            result = FetchResult(url=url, final_url=url, status_code=None, error_code="fetch_failed",
                                 error=f"{type(exc).__name__}: {exc}")
        breaker.record(url, result)
        outcome = UrlOutcome(result)
        if not result.ok:
            return outcome
        outcome.sha = hashlib.sha256(result.body).hexdigest()
        needed = {(r.kind, r.declared_type) for r in rows
                  if force or r.stored_sha != outcome.sha or r.listing_changed}
        started = time.perf_counter()
        for kind, declared_type in sorted(needed, key=lambda k: (k[0], k[1] or "")):
            outcome.parsed[(kind, declared_type)] = _parse(kind, result.body, declared_type,
                                                          result.headers.get("content-type"))
        outcome.parse_seconds = time.perf_counter() - started
        outcome.size = len(result.body)
        if any(isinstance(p, ParseError) for p in outcome.parsed.values()):
            outcome.evidence = evidence(result.body)
        result.body = b""  # what is kept until the run is stored: its parse, not its bytes
        return outcome

    urls = interleaved(list(by_url))
    with Fetcher(policy, pool_size=max(1, concurrency)) as fetcher:
        return dict(zip(urls, map_adaptive(lambda url: one(fetcher, url), urls, max(1, concurrency),
                                           "episode-documents")))


# --- what each row becomes --------------------------------------------------------------------


@dataclass
class DocumentStats:
    documents: int = 0  # rows (tenant, episode, document) considered
    requests: int = 0  # distinct URLs fetched
    skipped_unreachable: int = 0  # distinct URLs not requested: their host could not be reached
    bytes_downloaded: int = 0
    outcomes: Counter = field(default_factory=Counter)  # "<kind>_<stored|unchanged|not_modified|...>"
    quarantined_by_reason: Counter = field(default_factory=Counter)
    formats: Counter = field(default_factory=Counter)  # formats of the transcripts stored this run
    parse_notes: Counter = field(default_factory=Counter)
    cues_written: int = 0
    chapters_written: int = 0
    cues_parsed: int = 0
    parse_seconds: float = 0.0
    quarantine_cleared: int = 0
    removed: Counter = field(default_factory=Counter)  # documents no longer listed, by table

    def as_metadata(self) -> dict[str, Any]:
        rate = self.cues_parsed / self.parse_seconds if self.parse_seconds else None
        return {
            "documents_due": self.documents,
            "requests": self.requests,
            "not_requested_host_unreachable": self.skipped_unreachable,
            "bytes_downloaded": self.bytes_downloaded,
            "outcomes": dict(sorted(self.outcomes.items())),
            "quarantined_by_reason": dict(sorted(self.quarantined_by_reason.items())),
            "transcript_formats_stored": dict(sorted(self.formats.items())),
            "parse_notes": dict(sorted(self.parse_notes.items())),
            "cues_written": self.cues_written,
            "chapters_written": self.chapters_written,
            "cues_parsed": self.cues_parsed,
            "parse_cues_per_second": round(rate) if rate else None,
            "quarantine_cleared": self.quarantine_cleared,
            "removed_no_longer_listed": dict(sorted(self.removed.items())),
        }


@dataclass
class _Write:
    """What one row of the run writes: a stored document (row and cues / chapters), a quarantine
    row, new validators only, or nothing."""

    row: Listed
    outcome: str
    document: tuple | None = None
    children: list[tuple] = field(default_factory=list)
    quarantine: tuple[str, str | None, str | None] | None = None  # reason, detail, evidence
    validators: tuple[str | None, str | None] | None = None


def _ms(value: int | None) -> Decimal | None:
    return None if value is None else Decimal(value).scaleb(-3)


def _stored(row: Listed, fetch: FetchResult, sha: str, size: int, parsed: Transcript | Chapters,
            batch_id: str) -> _Write:
    content_type = pg_text(fetch.headers.get("content-type"), 200)
    common = (row.tenant_id, row.feed_url, row.guid, row.url)
    if isinstance(parsed, Transcript):
        document = (*common, pg_text(row.declared_type, 200), pg_text(row.language, 35), parsed.format, content_type,
                    size, sha, pg_text(fetch.etag, 500), pg_text(fetch.last_modified, 200), len(parsed.cues),
                    parsed.has_timings, fetch.fetched_at, batch_id)
        children = [(*common, i, _ms(c.start_ms), _ms(c.end_ms), pg_text(c.speaker), pg_text(c.body))
                    for i, c in enumerate(parsed.cues)]
    else:
        document = (*common, pg_text(row.declared_type, 200), pg_text(parsed.version), content_type, size, sha,
                    pg_text(fetch.etag, 500), pg_text(fetch.last_modified, 200), len(parsed.chapters),
                    fetch.fetched_at, batch_id)
        children = [(*common, i, _ms(c.start_ms), _ms(c.end_ms), pg_text(c.title), pg_text(c.link_url),
                     pg_text(c.image_url), c.toc) for i, c in enumerate(parsed.chapters)]
    return _Write(row, "stored", document, children)


def plan(rows: list[Listed], outcome: UrlOutcome, batch_id: str, force: bool) -> list[_Write]:
    """What each row listing one URL becomes after its fetch."""
    fetch = outcome.fetch
    writes = []
    for row in rows:
        if fetch.error_code:
            if row.stored_sha is not None and passing(fetch.error_code):
                writes.append(_Write(row, "kept_after_error"))
            else:
                writes.append(_Write(row, "quarantined", quarantine=(fetch.error_code, pg_text(fetch.error, 2000), None)))
        elif fetch.not_modified:
            writes.append(_Write(row, "not_modified"))
        elif not force and row.stored_sha == outcome.sha and not row.listing_changed:
            same = (row.etag, row.last_modified) == (fetch.etag, fetch.last_modified)
            writes.append(_Write(row, "unchanged", validators=None if same else (fetch.etag, fetch.last_modified)))
        else:
            parsed = outcome.parsed[(row.kind, row.declared_type)]
            if isinstance(parsed, ParseError):
                writes.append(_Write(row, "quarantined", quarantine=(parsed.reason_code, pg_text(parsed.detail, 2000),
                                                                     outcome.evidence)))
            else:
                writes.append(_stored(row, fetch, outcome.sha, outcome.size, parsed, batch_id))
    return writes


# --- writing ----------------------------------------------------------------------------------

_TABLES = {"transcript": ("raw.transcripts", "raw.transcript_cues", TRANSCRIPT_COLUMNS, CUE_COLUMNS),
           "chapters": ("raw.chapters_documents", "raw.chapters", CHAPTERS_DOC_COLUMNS, CHAPTER_COLUMNS)}
_BY_KEYS = ("(tenant_id, feed_url, guid, url) in "
            "(select * from unnest(%s::text[], %s::text[], %s::text[], %s::text[]))")


def _keys(keys: list[tuple]) -> list[list[str]]:
    return [[k[i] for k in keys] for i in range(4)]


def _upsert(table: str, columns: tuple[str, ...]) -> str:
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in KEY)
    return (f"insert into {table} ({', '.join(columns)}) values ({', '.join(['%s'] * len(columns))}) "
            f"on conflict ({', '.join(KEY)}) do update set {updates}, _ingested_at = now()")


def _write(cur: psycopg.Cursor, writes: list[_Write], batch_id: str) -> Counter:
    """Write `writes` (in the caller's transaction); the number of quarantine rows cleared."""
    changes: Counter = Counter()
    for kind, (doc_table, child_table, doc_columns, child_columns) in _TABLES.items():
        stored = [w for w in writes if w.row.kind == kind and w.outcome == "stored"]
        dropped = [w.row.key for w in writes if w.row.kind == kind and w.outcome == "quarantined"
                   and w.row.stored_sha is not None]
        replaced = [w.row.key for w in stored] + dropped
        if replaced:
            cur.execute(f"delete from {child_table} where {_BY_KEYS}", _keys(replaced))  # noqa: S608 (fixed names)
        if dropped:
            cur.execute(f"delete from {doc_table} where {_BY_KEYS}", _keys(dropped))  # noqa: S608
        if stored:
            cur.executemany(_upsert(doc_table, doc_columns), [w.document for w in stored])
            with cur.copy(f"copy {child_table} ({', '.join(child_columns)}) from stdin") as copy:
                for w in stored:
                    for child in w.children:
                        copy.write_row(child)
        renewed = [(*w.validators, *w.row.key) for w in writes if w.row.kind == kind and w.validators is not None]
        cur.executemany(f"update {doc_table} set etag = %s, last_modified = %s "  # noqa: S608
                        "where tenant_id = %s and feed_url = %s and guid = %s and url = %s", renewed)
    cleared = [w.row.key for w in writes if w.outcome == "stored" and w.row.quarantined]
    if cleared:
        cur.execute(f"delete from quarantine.episode_documents where {_BY_KEYS}", _keys(cleared))
        changes["cleared"] += len(cleared)
    quarantined = [w for w in writes if w.outcome == "quarantined" and w.row.quarantined != w.quarantine[0]]
    cur.executemany(
        "insert into quarantine.episode_documents (tenant_id, feed_url, guid, url, kind, reason_code, detail, "
        "evidence, _batch_id) values (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
        "on conflict (tenant_id, feed_url, guid, url) do update set kind = excluded.kind, "
        "reason_code = excluded.reason_code, detail = excluded.detail, evidence = excluded.evidence, "
        "_ingested_at = now(), _batch_id = excluded._batch_id",
        [(*w.row.key, w.row.kind, *w.quarantine, batch_id) for w in quarantined])
    return changes


def _failed(write: _Write, exc: Exception) -> _Write:
    detail = pg_text(f"{type(exc).__name__}: {exc}", 2000)
    return _Write(write.row, "quarantined", quarantine=("store_failed", detail, None))


def store(conn: psycopg.Connection, writes: list[_Write], batch_id: str) -> Counter:
    """Write the run in the current transaction (the caller commits): in one go, or, should that
    fail, document by document, a refused one quarantined as `store_failed`."""
    with conn.cursor() as cur:
        try:
            with conn.transaction():
                return _write(cur, writes, batch_id)
        except Exception as exc:
            log.warning("storing the documents in one go failed (%s): storing them one by one", exc)
        changes: Counter = Counter()
        for i, write in enumerate(writes):
            try:
                with conn.transaction():
                    changes.update(_write(cur, [write], batch_id))
            except Exception as exc:
                log.exception("storing %s for %s failed", write.row.url, write.row.tenant_id)
                writes[i] = _failed(write, exc)
                try:
                    with conn.transaction():
                        changes.update(_write(cur, [writes[i]], batch_id))
                except Exception:
                    log.exception("recording the failure of %s failed", write.row.url)
        return changes


# The documents (stored or quarantined) of episodes that no longer list them: found among the
# document rows (one per document), then their cues and chapters deleted by key.
STALE_SQL = f"""
create temp table tmp_stale on commit drop as
with listed as ({LISTED_SELECT}),
held as (
    select tenant_id, feed_url, guid, url, 'transcript' as kind from raw.transcripts
    union all
    select tenant_id, feed_url, guid, url, 'chapters' from raw.chapters_documents
    union all
    select tenant_id, feed_url, guid, url, kind from quarantine.episode_documents
)
select h.* from held as h
join raw.rss_episodes as e using (tenant_id, feed_url, guid)
left join listed as l using (tenant_id, feed_url, guid, url, kind)
where l.url is null
"""

PRUNE_SQL = """
delete from {table} as d
using tmp_stale as s
where (s.tenant_id, s.feed_url, s.guid, s.url) = (d.tenant_id, d.feed_url, d.guid, d.url) and s.kind = {kind}
"""


def prune(cur: psycopg.Cursor) -> Counter:
    """Remove documents (rows, cues, chapters, quarantine) that their episode no longer lists."""
    cur.execute("drop table if exists tmp_stale")
    cur.execute(STALE_SQL)
    removed: Counter = Counter()
    if not cur.execute("select exists (select 1 from tmp_stale)").fetchone()[0]:
        return removed
    for table, kind in (("raw.transcript_cues", "'transcript'"), ("raw.transcripts", "'transcript'"),
                        ("raw.chapters", "'chapters'"), ("raw.chapters_documents", "'chapters'"),
                        ("quarantine.episode_documents", "d.kind")):
        cur.execute(PRUNE_SQL.format(table=table, kind=kind))
        if cur.rowcount:
            removed[table] = cur.rowcount
    return removed


def ingest_documents(warehouse: WarehouseResource, batch_id: str, policy: FetchPolicy, concurrency: int = 16,
                     refresh: bool = False, force_refetch: bool = False,
                     retry_hours: int = RETRY_PASSING_HOURS) -> DocumentStats:
    """Fetch, parse and store every due transcript and chapters file. Safe to run again at any time."""
    stats = DocumentStats()
    with warehouse.connect() as conn:
        rows = due_documents(conn, refresh, force_refetch, retry_hours)
        conn.commit()  # no transaction is held open while documents are fetched
        by_url: dict[str, list[Listed]] = {}
        for row in rows:
            by_url.setdefault(row.fetch_url, []).append(row)
        outcomes = fetch_documents(by_url, policy, concurrency, refresh, force_refetch)
        writes = [w for url, outcome in outcomes.items() for w in plan(by_url[url], outcome, batch_id, force_refetch)]
        changes = store(conn, writes, batch_id)
        with conn.cursor() as cur:
            stats.removed = prune(cur)
        conn.commit()
    stats.documents = len(rows)
    stats.quarantine_cleared = changes["cleared"]
    for outcome in outcomes.values():
        if outcome.skipped:
            stats.skipped_unreachable += 1
            continue
        stats.requests += 1
        stats.bytes_downloaded += outcome.size
        stats.parse_seconds += outcome.parse_seconds
        for parsed in outcome.parsed.values():
            if isinstance(parsed, Transcript):
                stats.cues_parsed += len(parsed.cues)
    for w in writes:
        stats.outcomes[f"{w.row.kind}_{w.outcome}"] += 1
        if w.outcome == "quarantined":
            stats.quarantined_by_reason[w.quarantine[0]] += 1
        elif w.outcome == "stored":
            parsed = outcomes[w.row.fetch_url].parsed[(w.row.kind, w.row.declared_type)]
            stats.parse_notes.update(parsed.notes)
            if isinstance(parsed, Transcript):
                stats.formats[parsed.format] += 1
                stats.cues_written += len(w.children)
            else:
                stats.chapters_written += len(w.children)
    return stats


# --- the asset --------------------------------------------------------------------------------

DOCUMENT_TABLES = {
    ("raw", "transcripts"): "One row per (tenant, episode, transcript URL) as last fetched: format, size, content "
                            "hash, validators, cue count, whether every cue has timings.",
    ("raw", "transcript_cues"): "The cues of every stored transcript: start/end seconds (null without timings), "
                                "speaker where given, text.",
    ("raw", "chapters_documents"): "One row per (tenant, episode, chapters URL) as last fetched.",
    ("raw", "chapters"): "The chapters of every stored chapters file: start/end seconds, title, link, image, toc.",
    ("quarantine", "episode_documents"): "Transcripts and chapters files that cannot be used now, with the reason "
                                         "(a document that parses again leaves it).",
}
DOCUMENT_KEYS = [dg.AssetKey(list(key)) for key in DOCUMENT_TABLES]
# Fresh within 26 hours: what they hold changes when episodes are new (every feed poll fetches
# those, and only those) and when a publisher corrects a document (stored documents are fetched
# again once a day, `episode_documents_daily`).
DOCUMENT_FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=26), warn_window=timedelta(hours=25))
RSS_EPISODES = dg.AssetKey(["raw", "rss_episodes"])

# (row count, the stamp every write of the table's documents sets): the same rows give the same
# data version, so what is built from them is not rebuilt after a run that changed nothing.
# The cue and chapter tables are counted from their documents (no scan of every cue).
VERSION_SQL = {
    ("raw", "transcripts"): "select count(*), max(_ingested_at) from raw.transcripts",
    ("raw", "transcript_cues"): "select coalesce(sum(cue_count), 0), max(_ingested_at) from raw.transcripts",
    ("raw", "chapters_documents"): "select count(*), max(_ingested_at) from raw.chapters_documents",
    ("raw", "chapters"): "select coalesce(sum(chapter_count), 0), max(_ingested_at) from raw.chapters_documents",
    ("quarantine", "episode_documents"): "select count(*), max(_ingested_at) from quarantine.episode_documents",
}


class DocumentFetchConfig(dg.Config):
    sources_file: str | None = None
    # Fetch stored documents again (a conditional GET where the validators allow): publishers
    # correct transcripts after release. Off by default: documents are fetched once per episode.
    refresh: bool = False
    # Unconditional GETs, every document parsed and rewritten (after a change of the parsers).
    force_refetch: bool = False


@dg.multi_asset(
    name="episode_documents",
    specs=[
        dg.AssetSpec(
            list(key), description=desc, group_name=key[0], kinds={"python", "postgres"}, deps=[RSS_EPISODES],
            freshness_policy=DOCUMENT_FRESHNESS if key[0] == "raw" else None,
            # In the feed poll's job and the daily refresh's; on new data, after any other run that
            # stores episodes.
            automation_condition=ON_NEW_DATA,
        )
        for key, desc in DOCUMENT_TABLES.items()
    ],
)
def episode_documents(
    context: dg.AssetExecutionContext, config: DocumentFetchConfig, warehouse: WarehouseResource, http: HttpResource
):
    """Fetch the transcripts and chapters files the episodes list (new ones; stored ones again
    with `refresh`), parse them and store cues and chapters, or quarantine them with the reason."""
    path = Path(config.sources_file) if config.sources_file else get_settings().resolved_sources_file()
    rss, documents = load_document_sources(path)
    warehouse.require_schema()
    stats = ingest_documents(
        warehouse, batch_id=context.run.run_id, policy=document_policy(http.policy(), rss, documents),
        concurrency=documents.concurrency or rss.concurrency or http.concurrency,
        refresh=config.refresh, force_refetch=config.force_refetch, retry_hours=documents.retry_passing_hours,
    )
    context.log.info(f"{stats.requests} documents fetched: {dict(stats.outcomes)}; "
                     f"quarantined {dict(stats.quarantined_by_reason)}")
    summary = stats.as_metadata()
    with warehouse.connect() as conn:
        for key in DOCUMENT_TABLES:
            count, stamp = conn.execute(VERSION_SQL[key]).fetchone()
            metadata: dict = {"dagster/row_count": int(count)}
            if key == ("raw", "transcripts"):
                metadata.update(summary)
            elif key == ("raw", "transcript_cues"):
                metadata.update(cues_written=stats.cues_written, cues_parsed=stats.cues_parsed,
                                parse_cues_per_second=summary["parse_cues_per_second"])
            elif key == ("raw", "chapters"):
                metadata["chapters_written"] = stats.chapters_written
            elif key == ("quarantine", "episode_documents"):
                metadata.update(quarantined_this_run=dict(stats.quarantined_by_reason),
                                cleared_this_run=stats.quarantine_cleared)
            yield dg.MaterializeResult(asset_key=dg.AssetKey(list(key)), metadata=metadata,
                                       data_version=dg.DataVersion(f"{count}:{stamp.isoformat() if stamp else '-'}"))

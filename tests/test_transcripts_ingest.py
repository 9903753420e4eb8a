"""Transcripts and chapters fetched over real HTTP on loopback into real PostgreSQL
(assets/ingestion/transcripts.py): a server of the test's own serves the real files of
`../shared/realdata/transcripts_chapters/` (read in place) and broken documents, and
`raw.rss_episodes` rows list them as the feeds would."""

import hashlib
import json
import threading
from collections import Counter
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import psycopg
import pytest
import yaml

from assets.ingestion.rss_ingest import RssSources
from assets.ingestion.transcript_parse import parse_chapters, parse_transcript
from assets.ingestion.transcripts import (
    DOCUMENT_MAX_BYTES, DocumentSources, document_policy, episode_documents, ingest_documents, load_document_sources,
)
from resources.http import FetchPolicy, HttpResource
from resources.warehouse import warehouse_at
from tests.conftest import SHARED, query

REAL = SHARED / "realdata" / "transcripts_chapters"
PREFIX = "Podcastindex-org__podcast-namespace__"
CAP = 64 * 1024  # the documents' size cap in these tests

# path -> (file of REAL, content type)
REAL_DOCS = {
    "/real/example.vtt": ("example.vtt", "text/vtt"),
    "/real/example.srt": ("example.srt", "application/x-subrip"),
    "/real/example.html": ("example.html", "text/html; charset=utf-8"),
    "/real/example.json": ("transcripts-example.json", "application/json"),
    "/real/chapters.json": ("chapters-example.json", "application/json+chapters"),
    "/real/complex.json": ("exampleComplex.json", "application/json+chapters"),
}
BAD_DOCS = {  # path -> (status, body, content type, the reason expected)
    "/bad/missing.vtt": (404, b"not here", "text/plain", "http_404"),
    "/bad/no-header.vtt": (200, b"00:01.000 --> 00:02.000\nhello\n", "text/vtt", "invalid_vtt"),
    "/bad/backwards.srt": (200, b"1\n00:00:05,000 --> 00:00:01,000\nback\n", "application/x-subrip", "bad_timings"),
    "/bad/empty.vtt": (200, b"WEBVTT\n\n", "text/vtt", "empty_document"),
    "/bad/huge.vtt": (200, b"WEBVTT\n\n" + b"00:00:01.000 --> 00:00:02.000\nx\n\n" * 3000, "text/vtt",
                      "response_too_large"),
    "/bad/file.pdf": (200, b"%PDF-1.7 not a transcript", "application/pdf", "unsupported_type"),
    "/bad/segments.json": (200, b'{"segments": {"not": "a list"}}', "application/json", "invalid_transcript_json"),
    "/bad/chapters.html": (200, b"<html><body>Sorry, not found</body></html>", "text/html", "unsupported_type"),
    "/bad/chapters-backwards.json": (200, b'{"chapters": [{"startTime": 9, "endTime": 3}]}', "application/json",
                                     "bad_timings"),
}


class DocumentServer:
    """Serves documents on 127.0.0.1 with ETags (a 304 for a matching If-None-Match), counting
    requests per path; `docs` may be changed while it runs."""

    def __init__(self):
        self.docs: dict[str, dict] = {}
        self.requests: Counter = Counter()
        self.conditional: Counter = Counter()
        self.lock = threading.Lock()
        for path, (name, content_type) in REAL_DOCS.items():
            self.put(path, (REAL / f"{PREFIX}{name}").read_bytes(), content_type)
        for path, (status, body, content_type, _) in BAD_DOCS.items():
            self.put(path, body, content_type, status)
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802 (http.server's name)
                with server.lock:
                    server.requests[self.path] += 1
                    if self.headers.get("If-None-Match"):
                        server.conditional[self.path] += 1
                    doc = server.docs.get(self.path)
                if doc is None:
                    doc = {"status": 404, "body": b"no such document", "type": "text/plain", "etag": None,
                           "length": True}
                if doc["etag"] and self.headers.get("If-None-Match") == doc["etag"] and doc["status"] == 200:
                    self.send_response(304)
                    self.send_header("ETag", doc["etag"])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(doc["status"])
                self.send_header("Content-Type", doc["type"])
                if doc["etag"]:
                    self.send_header("ETag", doc["etag"])
                if doc["length"]:
                    self.send_header("Content-Length", str(len(doc["body"])))
                else:  # the body ends when the connection closes: no size known in advance
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                try:
                    self.wfile.write(doc["body"])
                except (BrokenPipeError, ConnectionResetError):  # the client stopped reading at its cap
                    pass

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def put(self, path, body, content_type, status=200, etag=True, length=True):
        with self.lock:
            self.docs[path] = {"status": status, "body": body, "type": content_type, "length": length,
                               "etag": f'"{hashlib.sha256(body).hexdigest()[:16]}"' if etag else None}

    def url(self, path):
        return self.base_url + path

    def take_requests(self) -> Counter:
        with self.lock:
            taken, self.requests = self.requests, Counter()
            self.conditional = Counter()
        return taken

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = DocumentServer()
    yield s
    s.close()


@pytest.fixture
def db(new_warehouse):
    return new_warehouse("t_docs")


POLICY = FetchPolicy(allow_private_hosts=True, timeout_seconds=3, max_attempts=1, max_bytes=CAP, deadline_seconds=15)


def ingest(url, policy=POLICY, **kwargs):
    return ingest_documents(warehouse_at(url), batch_id=kwargs.pop("batch_id", "test"), policy=policy,
                            concurrency=4, **kwargs)


def add_episode(url, tenant, feed, guid, transcripts=(), chapters=None, chapters_type="application/json+chapters"):
    """An episode as the RSS asset stores it: `transcripts` a list of (URL, type) or dicts."""
    listed = [t if isinstance(t, dict) else {"url": t[0], "type": t[1]} for t in transcripts]
    with psycopg.connect(url) as conn:
        conn.execute(
            "insert into raw.rss_episodes (tenant_id, feed_url, guid, guid_source, content_hash, transcripts, "
            "chapters_url, chapters_type) values (%s, %s, %s, 'guid', 'h', %s, %s, %s) "
            "on conflict (tenant_id, feed_url, guid) do update set transcripts = excluded.transcripts, "
            "chapters_url = excluded.chapters_url, chapters_type = excluded.chapters_type",
            (tenant, feed, guid, json.dumps(listed), chapters, chapters_type if chapters else None))


TABLES = ("raw.transcripts", "raw.transcript_cues", "raw.chapters_documents", "raw.chapters",
          "quarantine.episode_documents")


def snapshot(url) -> dict[str, list[tuple]]:
    """Every row of every table the asset writes, load stamps included."""
    return {t: query(url, f"select * from {t} order by 1, 2, 3, 4, 5") for t in TABLES}


def listing(server):
    """Two tenants list the same feed (two episodes with the real files), and tenant a also lists
    a feed whose one episode lists every broken document."""
    tx = [(server.url("/real/example.vtt"), "text/vtt"), (server.url("/real/example.srt"), "application/x-subrip")]
    ty = [(server.url("/real/example.json"), "application/json"), (server.url("/real/example.html"), "text/html")]
    broken = [(server.url(p), "text/vtt" if p.endswith(".vtt") else None) for p in BAD_DOCS if "chapters" not in p]
    return [
        *[(tenant, "https://feeds.example/shared.xml", "ep-1", tx, server.url("/real/chapters.json")) for tenant in "ab"],
        *[(tenant, "https://feeds.example/shared.xml", "ep-2", ty, server.url("/real/complex.json")) for tenant in "ab"],
        ("a", "https://feeds.example/broken.xml", "ep-x", broken, server.url("/bad/chapters.html")),
        ("a", "https://feeds.example/broken.xml", "ep-y", [], server.url("/bad/chapters-backwards.json")),
    ]


def load_listing(db, server):
    for tenant, feed, guid, transcripts, chapters in listing(server):
        add_episode(db, tenant, feed, guid, transcripts, chapters)


def test_documents_are_stored_or_quarantined_once_per_url(db, server):
    load_listing(db, server)
    stats = ingest(db)
    requests = server.take_requests()
    listed_urls = {u for *_, tr, ch in listing(server) for u in [t[0] for t in tr] + [ch]}
    # each URL once, though tenants a and b both list the shared feed's documents
    assert {server.base_url + p for p in requests} == listed_urls and set(requests.values()) == {1}
    assert stats.requests == len(listed_urls) == 6 + len(BAD_DOCS)

    docs = query(db, "select tenant_id, guid, url, declared_type, format, content_type, bytes, content_sha256, "
                     "etag, cue_count, has_timings from raw.transcripts order by 1, 2, 3")
    assert [(t, g, u.removeprefix(server.base_url), f, n) for t, g, u, _, f, _, _, _, _, n, _ in docs] == [
        (tenant, guid, path, fmt, count) for tenant in "ab" for guid, path, fmt, count in (
            ("ep-1", "/real/example.srt", "srt", 222), ("ep-1", "/real/example.vtt", "vtt", 7),
            ("ep-2", "/real/example.html", "html", 10), ("ep-2", "/real/example.json", "json", 5))]
    for _, _, doc_url, declared, fmt, content_type, size, sha, etag, count, timed in docs:
        name, served_type = REAL_DOCS[doc_url.removeprefix(server.base_url)]
        body = (REAL / f"{PREFIX}{name}").read_bytes()
        assert (size, sha, content_type) == (len(body), hashlib.sha256(body).hexdigest(), served_type)
        assert etag == server.docs[doc_url.removeprefix(server.base_url)]["etag"]
        assert timed  # every cue of the four real transcripts has a start (HTML: its <time>s)
        parsed = parse_transcript(body, declared, served_type)
        stored = query(db, "select cue_index, start_seconds, end_seconds, speaker, body from raw.transcript_cues "
                           "where tenant_id = 'a' and url = %s order by cue_index", (doc_url,))
        assert stored == [(i, None if c.start_ms is None else Decimal(c.start_ms) / 1000,
                           None if c.end_ms is None else Decimal(c.end_ms) / 1000, c.speaker, c.body)
                          for i, c in enumerate(parsed.cues)]
        assert len(stored) == count
    first_vtt = query(db, "select start_seconds, end_seconds, speaker, body from raw.transcript_cues "
                          "where tenant_id = 'b' and url like '%%.vtt' and cue_index = 0")
    assert first_vtt == [(Decimal("0.000"), Decimal("2.760"), "Sarah",
                          "In today's episode, you'll learn whether or not you")]
    assert query(db, "select tenant_id, count(*), count(distinct speaker) from raw.transcript_cues "
                     "where url like '%%.srt' group by 1 order by 1") == [("a", 222, 3), ("b", 222, 3)]

    chapters = query(db, "select tenant_id, guid, version, chapter_count, content_type from raw.chapters_documents "
                         "order by 1, 2")
    assert chapters == [(t, g, "1.2.0", n, "application/json+chapters") for t in "ab"
                        for g, n in (("ep-1", 9), ("ep-2", 11))]
    silent = query(db, "select start_seconds, title, toc, image_url from raw.chapters "
                       "where tenant_id = 'a' and guid = 'ep-2' and chapter_index = 7")
    assert silent == [(Decimal("4826.000"), None, False, "https://example.com/images/parisfrance.jpg")]
    complex_ = parse_chapters((REAL / f"{PREFIX}exampleComplex.json").read_bytes())
    assert query(db, "select start_seconds from raw.chapters where tenant_id = 'b' and guid = 'ep-2' "
                     "order by chapter_index") == [(Decimal(c.start_ms) / 1000,) for c in complex_.chapters]

    quarantined = query(db, "select url, kind, reason_code, detail, evidence from quarantine.episode_documents")
    assert {(u.removeprefix(server.base_url), r) for u, _, r, _, _ in quarantined} == {
        (p, reason) for p, (_, _, _, reason) in BAD_DOCS.items()}
    assert {u.removeprefix(server.base_url): k for u, k, *_ in quarantined}["/bad/chapters.html"] == "chapters"
    by_path = {u.removeprefix(server.base_url): (d, e) for u, _, _, d, e in quarantined}
    assert by_path["/bad/no-header.vtt"] == ("line 1: no WEBVTT header", "00:01.000 --> 00:02.000\nhello\n")
    assert by_path["/bad/missing.vtt"][1] is None and "404" in by_path["/bad/missing.vtt"][0]
    assert stats.quarantined_by_reason == Counter(reason for *_, reason in BAD_DOCS.values())
    assert stats.outcomes == {"transcript_stored": 8, "chapters_stored": 4, "transcript_quarantined": 7,
                              "chapters_quarantined": 2}
    assert stats.cues_written == 2 * (7 + 222 + 5 + 10) and stats.chapters_written == 2 * (9 + 11)
    assert stats.formats == {"vtt": 2, "srt": 2, "json": 2, "html": 2}


def test_a_second_run_fetches_and_rewrites_nothing(db, server):
    load_listing(db, server)
    ingest(db, batch_id="one")
    before = snapshot(db)
    server.take_requests()

    again = ingest(db, batch_id="two")
    assert server.take_requests() == Counter()  # nothing is due: no request at all
    assert again.requests == 0 and again.documents == 0
    assert snapshot(db) == before

    # a refresh asks again: conditional GETs for what is stored (304s), the quarantined documents
    # unconditionally; the same answers leave every row as it was, load stamps included
    refreshed = ingest(db, batch_id="three", refresh=True)
    conditional = server.conditional.copy()
    requests = server.take_requests()
    assert set(requests) == {p for p in REAL_DOCS} | set(BAD_DOCS) and set(requests.values()) == {1}
    assert set(conditional) == set(REAL_DOCS)
    assert refreshed.outcomes == {"transcript_not_modified": 8, "chapters_not_modified": 4,
                                  "transcript_quarantined": 7, "chapters_quarantined": 2}
    assert snapshot(db) == before


def test_only_new_episodes_and_changed_urls_are_fetched(db, server):
    load_listing(db, server)
    ingest(db)
    server.take_requests()

    # a new episode of the shared feed, for both tenants; and tenant b's ep-1 now lists its
    # chapters at another URL, and no longer its SRT
    server.put("/new/ep-3.vtt", b"WEBVTT\n\n00:00:00.000 --> 00:00:04.000\n<v Ann>Welcome back.\n", "text/vtt")
    server.put("/new/ep-1-chapters.json", b'{"version": "1.2.0", "chapters": [{"startTime": 0, "title": "All"}]}',
               "application/json")
    for tenant in "ab":
        add_episode(db, tenant, "https://feeds.example/shared.xml", "ep-3", [(server.url("/new/ep-3.vtt"), "text/vtt")])
    add_episode(db, "b", "https://feeds.example/shared.xml", "ep-1", [(server.url("/real/example.vtt"), "text/vtt")],
                server.url("/new/ep-1-chapters.json"))
    stats = ingest(db)
    assert server.take_requests() == {"/new/ep-3.vtt": 1, "/new/ep-1-chapters.json": 1}
    assert stats.outcomes == {"transcript_stored": 2, "chapters_stored": 1}
    assert stats.removed == {"raw.transcripts": 1, "raw.transcript_cues": 222, "raw.chapters_documents": 1,
                             "raw.chapters": 9}
    assert query(db, "select tenant_id, cue_count from raw.transcripts where url like '%%ep-3.vtt' order by 1") == [
        ("a", 1), ("b", 1)]
    assert query(db, "select url, chapter_count from raw.chapters_documents where tenant_id = 'b' and guid = 'ep-1'") == [
        (server.url("/new/ep-1-chapters.json"), 1)]
    # tenant a still lists the old documents: they stay
    assert query(db, "select count(*) from raw.transcript_cues where tenant_id = 'a' and url like '%%.srt'") == [(222,)]
    assert query(db, "select count(*) from raw.chapters where tenant_id = 'a' and guid = 'ep-1'") == [(9,)]
    # an episode whose broken document is no longer listed leaves quarantine
    add_episode(db, "a", "https://feeds.example/broken.xml", "ep-y", [])
    assert ingest(db).removed == {"quarantine.episode_documents": 1}
    assert server.take_requests() == Counter()


def test_a_changed_document_replaces_its_cues_and_a_fixed_one_leaves_quarantine(db, server):
    three = b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\none\n\n00:00:02.000 --> 00:00:03.000\ntwo\n\n" \
            b"00:00:03.000 --> 00:00:04.000\nthree\n"
    server.put("/doc.vtt", three, "text/vtt")
    server.put("/fixme.srt", b"1\n00:00:09,000 --> 00:00:01,000\nbackwards\n", "application/x-subrip")
    add_episode(db, "a", "https://feeds.example/f.xml", "e", [(server.url("/doc.vtt"), "text/vtt"),
                                                             (server.url("/fixme.srt"), "application/srt")])
    ingest(db)
    assert query(db, "select reason_code from quarantine.episode_documents") == [("bad_timings",)]
    stamp = query(db, "select _ingested_at from raw.transcripts")[0][0]

    # the same body under a new ETag: only the validators change (no rewrite, the stamp stays)
    server.docs["/doc.vtt"]["etag"] = '"v2"'
    stats = ingest(db, refresh=True)
    assert stats.outcomes["transcript_unchanged"] == 1
    assert query(db, "select etag, _ingested_at from raw.transcripts") == [('"v2"', stamp)]

    # corrected: two cues instead of three, and the SRT now parses
    server.put("/doc.vtt", b"WEBVTT\n\n00:00:01.000 --> 00:00:02.500\n<v Ann>one and a half\n\n"
                           b"00:00:02.500 --> 00:00:04.000\n<v Bob>the rest\n", "text/vtt")
    server.put("/fixme.srt", b"1\n00:00:01,000 --> 00:00:09,000\nforwards\n", "application/x-subrip")
    stats = ingest(db, refresh=True)
    assert stats.outcomes == {"transcript_stored": 2} and stats.quarantine_cleared == 1
    assert query(db, "select url, cue_index, start_seconds, end_seconds, speaker, body from raw.transcript_cues "
                     "order by 1, 2") == [
        (server.url("/doc.vtt"), 0, Decimal("1.000"), Decimal("2.500"), "Ann", "one and a half"),
        (server.url("/doc.vtt"), 1, Decimal("2.500"), Decimal("4.000"), "Bob", "the rest"),
        (server.url("/fixme.srt"), 0, Decimal("1.000"), Decimal("9.000"), None, "forwards"),
    ]
    assert query(db, "select count(*) from quarantine.episode_documents") == [(0,)]
    assert query(db, "select cue_count, _ingested_at > %s from raw.transcripts where url like '%%doc.vtt'",
                 (stamp,)) == [(2, True)]

    # broken again: the stored copy goes, the quarantine row comes back
    server.put("/doc.vtt", b"WEBVTT\n\n00:00:05.000 --> 00:00:01.000\nback\n", "text/vtt")
    ingest(db, refresh=True)
    assert query(db, "select count(*) from raw.transcripts where url like '%%doc.vtt'") == [(0,)]
    assert query(db, "select count(*) from raw.transcript_cues where url like '%%doc.vtt'") == [(0,)]
    assert query(db, "select reason_code from quarantine.episode_documents") == [("bad_timings",)]


def test_passing_failures_are_tried_again_and_keep_a_stored_copy(db, server):
    server.put("/later.vtt", b"busy", "text/plain", status=503)
    server.put("/kept.vtt", b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nkept\n", "text/vtt")
    add_episode(db, "a", "https://feeds.example/f.xml", "e", [(server.url("/later.vtt"), "text/vtt"),
                                                             (server.url("/kept.vtt"), "text/vtt")])
    ingest(db)
    assert query(db, "select reason_code from quarantine.episode_documents") == [("http_503",)]
    server.take_requests()

    # ... for a day after it was met; then only a refresh asks again
    with psycopg.connect(db) as conn:
        conn.execute("update quarantine.episode_documents set _ingested_at = now() - interval '25 hours'")
    assert ingest(db).requests == 0 and server.take_requests() == Counter()
    with psycopg.connect(db) as conn:
        conn.execute("update quarantine.episode_documents set _ingested_at = now() - interval '23 hours'")

    # a 503 may pass: tried on the next run without a refresh, and the document is stored
    server.put("/later.vtt", b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nnow\n", "text/vtt")
    stats = ingest(db)
    assert server.take_requests() == {"/later.vtt": 1}
    assert stats.quarantine_cleared == 1 and query(db, "select count(*) from quarantine.episode_documents") == [(0,)]

    # a stored document whose refresh meets a 503 keeps its stored copy; nothing is written
    before = snapshot(db)
    server.put("/kept.vtt", b"busy", "text/plain", status=503)
    stats = ingest(db, refresh=True)
    assert stats.outcomes == {"transcript_kept_after_error": 1, "transcript_not_modified": 1}
    assert snapshot(db) == before


def test_a_host_that_cannot_be_reached_is_given_up_for_the_run(db, server):
    import socket

    with socket.socket() as s:  # a port nothing listens on: every connection is refused
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    add_episode(db, "a", "https://feeds.example/f.xml", "e", [(f"{dead}/ep-{i}.vtt", "text/vtt") for i in range(10)]
                + [(server.url("/real/example.vtt"), "text/vtt")])
    stats = ingest_documents(warehouse_at(db), "b", POLICY, concurrency=1)
    assert (stats.requests, stats.skipped_unreachable) == (3 + 1, 7)  # the live server on the same host is asked
    assert stats.outcomes == {"transcript_quarantined": 10, "transcript_stored": 1}
    details = Counter(d.split(":")[0] for (d,) in query(db, "select detail from quarantine.episode_documents"))
    assert query(db, "select distinct reason_code from quarantine.episode_documents") == [("connection_error",)]
    assert details["not fetched"] == 7
    assert query(db, "select detail from quarantine.episode_documents where detail like 'not fetched%%' limit 1") == [
        (f"not fetched: 3 documents on {dead.removeprefix('http://')} failed in this run (connection_error)",)]


def test_relative_urls_are_read_against_their_feed(db, server):
    feed = server.url("/feeds/show.xml")
    add_episode(db, "a", feed, "e", [("../real/example.vtt", "text/vtt")], "/real/chapters.json")
    stats = ingest(db)
    assert server.take_requests() == {"/real/example.vtt": 1, "/real/chapters.json": 1}
    assert stats.outcomes == {"transcript_stored": 1, "chapters_stored": 1}
    # stored under the URL the feed lists, so the next run finds them
    assert query(db, "select url, cue_count from raw.transcripts") == [("../real/example.vtt", 7)]
    assert query(db, "select url, chapter_count from raw.chapters_documents") == [("/real/chapters.json", 9)]
    assert ingest(db).requests == 0


def test_the_size_cap_and_private_addresses(db, server):
    big = b"WEBVTT\n\n" + b"00:00:01.000 --> 00:00:02.000\nwords words words\n\n" * 2000  # 90 KB
    server.put("/big-declared.vtt", big, "text/vtt")
    server.put("/big-unsized.vtt", big, "text/vtt", length=False)
    small = big[:2000].rsplit(b"\n\n", 1)[0]
    server.put("/small.vtt", small, "text/vtt")
    add_episode(db, "a", "https://feeds.example/f.xml", "e", [
        (server.url(p), "text/vtt") for p in ("/big-declared.vtt", "/big-unsized.vtt", "/small.vtt")])

    # private addresses refused: the server on loopback is never asked
    refused = ingest(db, policy=FetchPolicy(**{**POLICY.__dict__, "allow_private_hosts": False}))
    assert server.take_requests() == Counter()
    assert refused.quarantined_by_reason == {"private_address": 3}
    assert query(db, "select reason_code, detail from quarantine.episode_documents order by url") == [
        ("private_address", "127.0.0.1 resolves to non-public address 127.0.0.1")] * 3

    # once allowed (a refresh: a refusal does not pass by itself), the cap applies, with or without a length
    stats = ingest(db, refresh=True)
    assert server.take_requests() == {"/big-declared.vtt": 1, "/big-unsized.vtt": 1, "/small.vtt": 1}
    assert stats.quarantined_by_reason == {"response_too_large": 2} and stats.quarantine_cleared == 1
    assert {r for (r,) in query(db, "select reason_code from quarantine.episode_documents")} == {"response_too_large"}
    assert query(db, "select url, cue_count from raw.transcripts") == [(server.url("/small.vtt"), small.count(b"-->"))]

    # a larger cap reads them
    roomy = FetchPolicy(**{**POLICY.__dict__, "max_bytes": 1024 * 1024})
    assert ingest(db, policy=roomy, refresh=True).outcomes == {"transcript_stored": 2, "transcript_not_modified": 1}
    assert query(db, "select count(*), sum(cue_count) from raw.transcripts") == [(3, 2 * 2000 + small.count(b"-->"))]


def test_the_policy_follows_the_feeds_then_the_documents_section(tmp_path):
    base = HttpResource().policy()
    assert not base.allow_private_hosts
    rss, documents = load_document_sources(tmp_path / "absent.yaml")
    assert document_policy(base, rss, documents) == FetchPolicy(**{**base.__dict__, "max_bytes": DOCUMENT_MAX_BYTES})
    # the simulator's sources.yaml allows loopback for its feeds: its documents come from the same place
    path = tmp_path / "sources.yaml"
    path.write_text(yaml.safe_dump({"rss": {"allow_private_hosts": True, "timeout_seconds": 2.0, "max_bytes": 4_000_000,
                                            "feeds": []}}))
    policy = document_policy(base, *load_document_sources(path))
    assert (policy.allow_private_hosts, policy.timeout_seconds, policy.max_bytes) == (True, 2.0, 5 * 1024 * 1024)
    path.write_text(yaml.safe_dump({"rss": {"allow_private_hosts": True, "feeds": []},
                                    "transcripts": {"allow_private_hosts": False, "max_bytes": 1000, "concurrency": 2}}))
    rss, documents = load_document_sources(path)
    policy = document_policy(base, rss, documents)
    assert (policy.allow_private_hosts, policy.max_bytes, documents.concurrency) == (False, 1000, 2)
    assert isinstance(rss, RssSources) and isinstance(documents, DocumentSources)


def test_the_asset_reports_counts_and_keeps_its_data_version(db, server, tmp_path):
    load_listing(db, server)
    sources = tmp_path / "sources.yaml"
    sources.write_text(yaml.safe_dump({"rss": {"allow_private_hosts": True, "feeds": []},
                                       "transcripts": {"max_bytes": CAP}}))
    resources = {"warehouse": warehouse_at(db), "http": HttpResource(max_attempts=1, timeout_seconds=3)}
    config = {"ops": {"episode_documents": {"config": {"sources_file": str(sources)}}}}
    with dg.instance_for_test() as instance:
        versions = []
        for _ in range(2):
            result = dg.materialize([episode_documents], resources=resources, run_config=config, instance=instance)
            assert result.success
            events = {m.asset_key.to_user_string(): m for m in result.asset_materializations_for_node("episode_documents")}
            versions.append({k: m.tags["dagster/data_version"] for k, m in events.items()})
            if len(versions) == 1:
                meta = {k: {name: v.value for name, v in m.metadata.items()} for k, m in events.items()}
    assert set(versions[0]) == {"raw/transcripts", "raw/transcript_cues", "raw/chapters_documents", "raw/chapters",
                                "quarantine/episode_documents"}
    assert versions[0] == versions[1]  # the second run changed nothing
    assert meta["raw/transcripts"]["dagster/row_count"] == 8
    assert meta["raw/transcripts"]["quarantined_by_reason"] == dict(sorted(Counter(
        r for *_, r in BAD_DOCS.values()).items()))
    assert meta["raw/transcripts"]["outcomes"] == {"chapters_quarantined": 2, "chapters_stored": 4,
                                                   "transcript_quarantined": 7, "transcript_stored": 8}
    assert meta["raw/transcript_cues"]["dagster/row_count"] == meta["raw/transcript_cues"]["cues_written"] == 488
    assert meta["raw/chapters"]["dagster/row_count"] == 40
    assert meta["quarantine/episode_documents"]["dagster/row_count"] == len(BAD_DOCS)

"""Hostile and faulty feeds, generated here and served over loopback, polled by the real asset:
each gets its expected outcome (stored as it should read, or quarantined with its reason) and
never costs the other feeds of the same poll anything. A second poll changes nothing."""

from __future__ import annotations

import gzip
from collections import Counter
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import psycopg
import pytest
import yaml

from assets.ingestion.rss import rss_feeds
from assets.ingestion.rss_ingest import (
    FeedSource, RssSources, ingest_rss, poll_feeds, store_outcomes,
)
from assets.ingestion.rss_parse import parse_feed
from resources.http import FetchPolicy, HttpResource
from resources.warehouse import WarehouseResource, warehouse_at
from tests.conftest import SHARED, query

REAL = SHARED / "realdata" / "feeds"
NARRO = (REAL / "rbren__rss-parser__narro.rss").read_bytes()
EXAMPLE = (REAL / "Podcastindex-org__podcast-namespace__example.xml").read_bytes()
ENCLOSURE = '<enclosure url="https://cdn.example.com/{0}.mp3" length="1000" type="audio/mpeg"/>'


def rss(items: str, channel: str = "", encoding: str = "utf-8") -> str:
    return (f'<?xml version="1.0" encoding="{encoding}"?>'
            '<rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd" '
            'xmlns:podcast="https://podcastindex.org/namespace/1.0"><channel><title>Caf\u00e9 Hour</title>'
            f"{channel}{items}</channel></rss>")


def item(guid: str, title: str, extra: str = "", enclosure: str | None = None) -> str:
    return f"<item><guid>{guid}</guid><title>{title}</title>{enclosure or ENCLOSURE.format(guid)}{extra}</item>"


TWO_ITEMS = item("a", "Caf\u00e9 \u2013 one") + item("b", "Na\u00efve two")
ENTITY_BOMB = '<!DOCTYPE rss [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
UNSAFE_URLS = (
    item("js", "Scripted", '<link>javascript:alert(document.cookie)</link>'
         '<itunes:image href="data:image/svg+xml,&lt;svg onload=alert(1)&gt;"/>'
         '<podcast:transcript url="vbscript:msgbox(1)" type="text/html"/>'
         '<podcast:transcript url="https://example.com/t.vtt" type="text/vtt"/>'
         '<podcast:chapters url="file:///etc/passwd" type="application/json+chapters"/>')
    + item("jsenc", "Scripted enclosure", enclosure='<enclosure url="javascript:alert(1)" length="1" type="audio/mpeg"/>')
)
random.seed(15)
GARBAGE = bytes(random.getrandbits(8) for _ in range(3000))

# path -> (status, headers, body); the trickling answers are written by the handler itself.
ROUTES: dict[str, tuple[int, dict[str, str], bytes]] = {
    # Feeds that must be stored.
    "/ok/narro.rss": (200, {"Content-Type": "application/rss+xml"}, NARRO),
    "/ok/example.xml": (200, {"Content-Type": "application/rss+xml"}, EXAMPLE),
    "/ok/utf16.xml": (200, {"Content-Type": "application/rss+xml"},
                      EXAMPLE.decode().replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")),
    "/ok/nul-title.xml": (200, {"Content-Type": "application/rss+xml"},
                          rss(item("a", "Caf\u00e9 \x00one") + item("b", "Na\u00efve two")).encode()),
    "/ok/declared-latin1.xml": (200, {"Content-Type": "application/rss+xml; charset=iso-8859-1"},
                                rss(TWO_ITEMS, encoding="iso-8859-1").encode()),
    "/ok/stray-bytes.xml": (200, {"Content-Type": "application/rss+xml"},
                            rss(TWO_ITEMS).encode().replace(b"one", b"o\xffne")),
    "/ok/char-refs.xml": (200, {"Content-Type": "application/rss+xml"},
                          rss(item("a", "nul &#0; surrogate &#xD800; &#55296; beyond &#x110000; fine &#233;")
                              + item("b", "b & c")).encode()),
    "/ok/unsafe-urls.xml": (200, {"Content-Type": "application/rss+xml"},
                            rss(UNSAFE_URLS, "<link>javascript:alert(1)</link>").encode()),
    # Bodies that are refused.
    "/bad/utf16-error-page.html": (200, {"Content-Type": "text/html"},
                                   "<html><body><h1>Maintenance</h1></body></html>".encode("utf-16")),
    "/bad/image.png": (200, {"Content-Type": "image/png"}, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + GARBAGE),
    "/bad/garbage.gz": (200, {"Content-Type": "application/gzip"}, gzip.compress(GARBAGE)),
    "/bad/garbage-gzip-encoded.xml": (200, {"Content-Encoding": "gzip"}, GARBAGE),
    "/bad/utf32-entities.xml": (200, {"Content-Type": "application/rss+xml"},
                                (rss(item("a", "&b;")).replace("?>", "?>" + ENTITY_BOMB, 1)
                                 .replace('encoding="utf-8"', 'encoding="utf-32"')).encode("utf-32")),
    "/bad/utf16be-entities.xml": (200, {"Content-Type": "application/rss+xml"},
                                  (rss(item("a", "&b;")).replace("?>", "?>" + ENTITY_BOMB, 1)
                                   .replace('encoding="utf-8"', 'encoding="utf-16"')).encode("utf-16-be")),
    # Redirects nowhere a feed can be.
    "/bad/to-javascript": (302, {"Location": "javascript:alert(document.domain)"}, b""),
    "/bad/to-data": (302, {"Location": "data:application/rss+xml;base64,PHJzcy8+"}, b""),
    "/bad/to-file": (302, {"Location": "file:///etc/passwd"}, b""),
    "/bad/to-unprintable": (302, {"Location": "http://example.com/\x7ffeed"}, b""),
    "/bad/to-broken-ipv6": (302, {"Location": "http://[::1/feed"}, b""),
}
TRICKLING = {"/bad/trickle-body", "/bad/trickle-headers"}

STORED = {  # path -> (episodes stored, item rejections, warning expected in parse_warnings)
    "/ok/narro.rss": (len(parse_feed(NARRO, "x").episodes), 0, None),
    "/ok/example.xml": (3, 0, None),
    "/ok/utf16.xml": (3, 0, None),
    "/ok/nul-title.xml": (2, 0, "NUL or surrogate characters removed"),
    "/ok/declared-latin1.xml": (2, 0, "declared iso-8859-1 but the bytes are UTF-8: read as UTF-8"),
    "/ok/stray-bytes.xml": (2, 0, "declared UTF-8 but 1 byte sequence(s) are not UTF-8: replaced with U+FFFD"),
    "/ok/char-refs.xml": (2, 0, "recovered from SAXParseException"),
    "/ok/unsafe-urls.xml": (1, 1, "item link: URL with scheme 'javascript' dropped"),
}
REFUSED = {
    "/bad/utf16-error-page.html": "not_a_feed",
    "/bad/image.png": "not_a_feed",
    "/bad/garbage.gz": "not_a_feed",
    "/bad/garbage-gzip-encoded.xml": "bad_content_encoding",
    "/bad/utf32-entities.xml": "xml_entities_forbidden",
    "/bad/utf16be-entities.xml": "xml_entities_forbidden",
    "/bad/to-javascript": "scheme_not_allowed",
    "/bad/to-data": "scheme_not_allowed",
    "/bad/to-file": "scheme_not_allowed",
    "/bad/to-unprintable": "invalid_url",
    "/bad/to-broken-ipv6": "invalid_url",
    "/bad/trickle-body": "deadline_exceeded",
    "/bad/trickle-headers": "deadline_exceeded",
}
# A second tenant lists one good and one trickling feed of the first.
SECOND_TENANT = ("/ok/example.xml", "/bad/trickle-body")


class Hostile(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        try:
            if self.path == "/bad/trickle-body":  # headers at once, then a byte now and then
                self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n<rss>")
                for _ in range(200):
                    self.wfile.flush()
                    time.sleep(0.05)
                    self.wfile.write(b" ")
                return
            if self.path == "/bad/trickle-headers":  # the header block never ends
                self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                for n in range(200):
                    self.wfile.flush()
                    time.sleep(0.05)
                    self.wfile.write(f"X-{n}: 1\r\n".encode())
                return
            status, headers, body = ROUTES[self.path]
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the poller hung up: that is the point


@pytest.fixture(scope="module")
def hostile_server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Hostile)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _feeds(base: str) -> list[dict]:
    return ([{"tenant_id": "t1", "url": base + path} for path in [*STORED, *REFUSED]]
            + [{"tenant_id": "t2", "url": base + path} for path in SECOND_TENANT])


def _poll(url: str, sources_file: str) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [rss_feeds],
        resources={"warehouse": WarehouseResource(database_url=url),
                   "http": HttpResource(allow_private_hosts=True, deadline_seconds=1.0, timeout_seconds=0.5,
                                        max_attempts=2)},
        run_config={"ops": {"rss_feeds": {"config": {"sources_file": sources_file}}}},
    )


def _metadata(result: dg.ExecuteInProcessResult, key: str) -> dict:
    event = next(e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == key)
    return {k: v.value for k, v in event.materialization.metadata.items()}


def _state(url: str) -> dict[str, list]:
    return {t: query(url, f"select * from {t} order by 1, 2, 3") for t in  # noqa: S608 (fixed names)
            ("raw.rss_podcasts", "raw.rss_episodes", "quarantine.rss_feeds", "quarantine.rss_episodes")}


@pytest.fixture(scope="module")
def polled(hostile_server, new_warehouse, tmp_path_factory):
    """One warehouse polled twice through the asset, from the same hostile server."""
    url = new_warehouse("t_hostile")
    sources_file = tmp_path_factory.mktemp("hostile") / "sources.yaml"
    sources_file.write_text(yaml.safe_dump({"rss": {"feeds": _feeds(hostile_server)}}))
    first = _poll(url, str(sources_file))
    after_first = _state(url)
    second = _poll(url, str(sources_file))
    return url, hostile_server, first, second, after_first


def test_every_hostile_feed_gets_its_outcome_and_the_others_are_stored(polled):
    url, base, first, _, _ = polled
    assert first.success
    quarantined = dict(query(url, "select feed_url, reason_code from quarantine.rss_feeds where tenant_id = 't1'"))
    assert {u.removeprefix(base): r for u, r in quarantined.items()} == REFUSED
    stored = {u.removeprefix(base): (n, w) for u, n, w in query(
        url, "select feed_url, episode_count, parse_warnings from raw.rss_podcasts where tenant_id = 't1'")}
    episodes = dict(query(url, "select feed_url, count(*) from raw.rss_episodes where tenant_id = 't1' group by 1"))
    rejected = dict(query(url, "select feed_url, count(*) from quarantine.rss_episodes group by 1"))
    assert stored.keys() == STORED.keys()
    for path, (count, rejections, warning) in STORED.items():
        assert (stored[path][0], episodes[base + path], rejected.get(base + path, 0)) == (count, count, rejections), path
        if warning:
            assert any(w.startswith(warning) for w in stored[path][1]), (path, stored[path][1])
    # The second tenant: its good feed stored, its trickling one quarantined, in the same poll.
    assert query(url, "select feed_url, reason_code from quarantine.rss_feeds where tenant_id = 't2'") == [
        (base + "/bad/trickle-body", "deadline_exceeded")]
    assert query(url, "select count(*) from raw.rss_episodes where tenant_id = 't2'") == [(3,)]
    fetches = _metadata(first, "raw/rss_feed_fetches")
    assert fetches["feeds_polled"] == len(STORED) + len(REFUSED) + 2
    by_reason = Counter(REFUSED.values()) + Counter(["deadline_exceeded"])
    assert fetches["feeds_quarantined_by_reason"] == dict(by_reason)
    # Failed requests (refused bodies were fetched, then refused by the parser).
    assert fetches["errors"] == sum(n for r, n in by_reason.items()
                                    if r not in ("not_a_feed", "xml_entities_forbidden"))


def test_text_is_stored_as_written_whatever_the_encoding_said(polled):
    url, base, _, _, _ = polled
    titles = dict(query(url, "select feed_url || '#' || guid, title from raw.rss_episodes where tenant_id = 't1'"))
    assert titles[base + "/ok/nul-title.xml#a"] == "Caf\u00e9 one"  # the NUL removed, nothing else
    assert titles[base + "/ok/declared-latin1.xml#a"] == "Caf\u00e9 \u2013 one"
    assert titles[base + "/ok/declared-latin1.xml#b"] == "Na\u00efve two"
    assert titles[base + "/ok/stray-bytes.xml#a"] == "Caf\u00e9 \u2013 o\ufffdne"  # the rest still UTF-8
    # References to characters no text may hold (which crashed feedparser's recovery) read as U+FFFD.
    assert titles[base + "/ok/char-refs.xml#a"] == "nul \ufffd surrogate \ufffd \ufffd beyond \ufffd fine \u00e9"
    utf16 = query(url, "select guid, title from raw.rss_episodes where feed_url = %s order by guid", (base + "/ok/utf16.xml",))
    utf8 = query(url, "select guid, title from raw.rss_episodes where feed_url = %s and tenant_id = 't1' order by guid",
                 (base + "/ok/example.xml",))
    assert utf16 == utf8 and len(utf16) == 3
    assert query(url, "select title from raw.rss_podcasts where feed_url = %s", (base + "/ok/declared-latin1.xml",)) == [
        ("Caf\u00e9 Hour",)]


def test_urls_with_other_schemes_are_stored_as_null(polled):
    url, base, _, _, _ = polled
    feed = base + "/ok/unsafe-urls.xml"
    row = query(url, "select link, image_url, transcripts, chapters_url, enclosure_url from raw.rss_episodes "
                     "where feed_url = %s", (feed,))
    assert row == [(None, None, [{"url": "https://example.com/t.vtt", "type": "text/vtt"}], None,
                    "https://cdn.example.com/js.mp3")]
    assert query(url, "select link from raw.rss_podcasts where feed_url = %s", (feed,)) == [(None,)]
    assert query(url, "select guid, reason_code from quarantine.rss_episodes where feed_url = %s", (feed,)) == [
        ("jsenc", "invalid_enclosure_url")]
    warnings = query(url, "select parse_warnings from raw.rss_podcasts where feed_url = %s", (feed,))[0][0]
    assert {w.split(" (", 1)[0] for w in warnings} == {
        "item link: URL with scheme 'javascript' dropped", "item image_url: URL with scheme 'data' dropped",
        "item transcript url: URL with scheme 'vbscript' dropped", "item chapters_url: URL with scheme 'file' dropped",
        "channel link: URL with scheme 'javascript' dropped"}


def test_refused_bodies_keep_readable_evidence(polled):
    url, base, _, _, _ = polled
    evidence = dict(query(url, "select feed_url, evidence from quarantine.rss_feeds where tenant_id = 't1'"))
    assert "<h1>Maintenance</h1>" in evidence[base + "/bad/utf16-error-page.html"]  # read by its BOM
    assert evidence[base + "/bad/image.png"].startswith("\ufffdPNG")
    details = dict(query(url, "select feed_url, detail from quarantine.rss_feeds where tenant_id = 't1'"))
    assert details[base + "/bad/trickle-body"] == details[base + "/bad/trickle-headers"] == "no complete answer within 1s"
    assert "'javascript' is not allowed" in details[base + "/bad/to-javascript"]


def test_a_second_poll_of_the_same_feeds_changes_nothing(polled):
    url, _, first, second, after_first = polled
    assert second.success
    assert _state(url) == after_first
    assert _metadata(second, "raw/rss_episodes")["inserted_or_changed"] == 0
    assert _metadata(second, "quarantine/rss_feeds")["quarantine_changes"] == {}
    assert query(url, "select _batch_id = %s, count(*) from quarantine.rss_history group by 1",
                 (first.run_id,)) == [(True, len(REFUSED) + 1 + 1)]  # feeds, t2's trickle, the enclosure item


def test_rows_the_database_refuses_cost_only_their_own_feed(fresh_db, hostile_server):
    """Records no parser would give (a NUL in a title, a lone surrogate in the payload) written
    by the storage step itself: the poll is stored feed by feed, those two are quarantined as
    `store_failed` with the database's message, the others are stored, and a re-run is the same."""
    sources = RssSources(feeds=[FeedSource(tenant_id="t1", url=hostile_server + p) for p in
                                ("/ok/example.xml", "/ok/narro.rss", "/ok/nul-title.xml", "/ok/declared-latin1.xml")],
                         allow_private_hosts=True)
    outcomes = poll_feeds(sources, FetchPolicy(allow_private_hosts=True), {}, 4)
    nul, surrogate = outcomes[2].parsed, outcomes[3].parsed
    nul.episodes[0]["title"] = "smuggled \x00 NUL"
    surrogate.episodes[0]["payload"] = {"text": "lone \udc80 surrogate"}
    runs = []
    for batch in ("a", "b"):
        with psycopg.connect(fresh_db) as conn:
            runs.append(store_outcomes(conn, outcomes, batch))
            conn.commit()
    first, second = runs
    assert dict(first.feed_errors) == {"store_failed": 2} and first.outcomes == {"fetched": 2, "error": 2}
    quarantined = query(fresh_db, "select feed_url, reason_code, detail from quarantine.rss_feeds order by 1")
    assert [(u.rsplit("/", 1)[1], r) for u, r, _ in quarantined] == [("declared-latin1.xml", "store_failed"),
                                                                      ("nul-title.xml", "store_failed")]
    assert [d.split("\n")[0] for _, _, d in quarantined] == [
        "InvalidTextRepresentation: invalid input syntax for type json",
        "DataError: PostgreSQL text fields cannot contain NUL (0x00) bytes"]
    assert query(fresh_db, "select feed_url, count(*) from raw.rss_episodes group by 1 order by 1") == [
        (hostile_server + "/ok/example.xml", 3), (hostile_server + "/ok/narro.rss", STORED["/ok/narro.rss"][0])]
    assert query(fresh_db, "select _batch_id, outcome, error_code, count(*) from raw.rss_feed_fetches "
                           "group by 1, 2, 3 order by 1, 2") == [
        ("a", "error", "store_failed", 2), ("a", "fetched", None, 2),
        ("b", "error", "store_failed", 2), ("b", "fetched", None, 2)]
    assert second.quarantine_changes == {} and second.episodes_written == 0


def test_an_unexpected_parser_error_is_its_feeds_quarantine_reason(fresh_db, hostile_server, monkeypatch):
    """A parser bug met by one body (simulated by a parser that raises for that URL) quarantines
    that feed as `parse_failed` with the error; the poll goes on."""
    import assets.ingestion.rss_ingest as rss_ingest

    def parse(body, url, *args, **kwargs):
        if url.endswith("/ok/narro.rss"):
            raise RecursionError("maximum recursion depth exceeded")
        return parse_feed(body, url, *args, **kwargs)

    monkeypatch.setattr(rss_ingest, "parse_feed", parse)
    sources = RssSources(feeds=[FeedSource(tenant_id="t1", url=hostile_server + p) for p in ("/ok/example.xml", "/ok/narro.rss")],
                         allow_private_hosts=True)
    stats = ingest_rss(warehouse_at(fresh_db), sources, batch_id="a")
    assert dict(stats.feed_errors) == {"parse_failed": 1} and stats.episodes_written == 3
    assert query(fresh_db, "select reason_code, detail from quarantine.rss_feeds") == [
        ("parse_failed", "RecursionError: maximum recursion depth exceeded")]



def test_tenant_ids_in_the_feed_and_log_sections_must_be_identifiers():
    """A tenant id names folders and partition keys downstream: sources.yaml refuses one that is
    not a plain identifier, in the `rss:` and `listener_logs:` sections alike."""
    from pydantic import ValidationError

    from assets.ingestion.log_formats import ListenerLogSources
    from assets.ingestion.rss_ingest import RssSources

    for bad in ("../../x", "north wind", "", "a:b"):
        with pytest.raises(ValidationError, match="invalid tenant id"):
            RssSources.model_validate({"feeds": [{"tenant_id": bad, "url": "http://example.com/feed"}]})
        with pytest.raises(ValidationError, match="invalid tenant id"):
            ListenerLogSources.model_validate({"sources": [{"tenant_id": bad, "media_hosts": []}]})
    assert RssSources.model_validate({"feeds": [{"tenant_id": "north-wind.2", "url": "http://x.example/f"}]}).feeds

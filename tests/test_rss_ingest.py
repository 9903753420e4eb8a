"""Feeds from the simulator into real PostgreSQL, compared with the ground truth."""

import os
import re
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest

from assets.ingestion.rss_ingest import FeedSource, RssSources, ingest_rss
from simulator.network import build_network
from simulator.server import SimulatorServer
from simulator.truth import ground_truth
from tests.conftest import SHARED, query
from resources.warehouse import warehouse_at


def sources_for(truth) -> RssSources:
    return RssSources(
        feeds=[FeedSource(tenant_id=f["tenant_id"], url=f["feed_url"]) for f in truth["feeds"]],
        allow_private_hosts=True, timeout_seconds=1.5, max_attempts=2, max_bytes=4_000_000,
    )


@pytest.fixture(scope="module")
def loaded(admin_url, simulator, truth, tmp_path_factory):
    """One database loaded twice from the same feeds (module-scoped: the poll takes seconds)."""
    import uuid

    import psycopg
    from psycopg import sql

    from resources.warehouse import bootstrap, with_database

    name = f"t_ingest_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    url = with_database(admin_url, name)
    bootstrap(url)
    first = ingest_rss(warehouse_at(url), sources_for(truth), batch_id="run-1")
    counts_after_first = {t: query(url, f"select count(*) from {t}")[0][0] for t in
                          ("raw.rss_episodes", "raw.rss_podcasts", "quarantine.rss_feeds", "quarantine.rss_episodes")}
    second = ingest_rss(warehouse_at(url), sources_for(truth), batch_id="run-2")
    yield url, first, second, counts_after_first
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database {} with (force)").format(sql.Identifier(name)))


def test_valid_episodes_match_ground_truth_exactly(loaded, truth):
    url = loaded[0]
    expected = {(e["tenant_id"], e["feed_url"], e["guid"]) for e in truth["episodes"] if e["valid"]}
    stored = set(query(url, "select tenant_id, feed_url, guid from raw.rss_episodes"))
    assert len(expected) > 1000
    assert stored == expected


def test_every_invalid_item_is_quarantined_with_its_reason(loaded, truth):
    url = loaded[0]
    expected = sorted((e["feed_url"], e["guid"], e["reason_code"]) for e in truth["episodes"] if not e["valid"])
    stored = sorted(query(url, "select feed_url, guid, reason_code from quarantine.rss_episodes"))
    assert expected and stored == expected


def test_every_unusable_feed_is_quarantined_with_its_reason(loaded, truth):
    url = loaded[0]
    expected = {(f["feed_url"], f["reason_code"]) for f in truth["feeds"] if f["expected"] == "quarantined"}
    stored = set(query(url, "select feed_url, reason_code from quarantine.rss_feeds"))
    assert stored == expected
    assert {r for _, r in expected} >= {"malformed_xml", "http_404", "http_500", "too_many_redirects",
                                        "response_too_large", "xml_entities_forbidden", "not_a_feed", "timeout"}


def test_parsed_values_match_ground_truth(loaded, truth):
    url = loaded[0]
    rows = query(url, """select feed_url, guid, title, published_at, duration_seconds, season_number,
                                episode_number, enclosure_url, enclosure_length, chapters_url, description_text,
                                coalesce(jsonb_path_query_array(transcripts, '$[*].url'), '[]')
                         from raw.rss_episodes""")
    by_key = {(r[0], r[1]): r for r in rows}
    mismatches = []
    for e in (e for e in truth["episodes"] if e["valid"]):
        r = by_key[(e["feed_url"], e["guid"])]
        got = (r[2], r[3].isoformat() if r[3] else None, r[4], r[5], r[6], r[7], r[8], r[9], r[10], list(r[11]))
        want = (e["title"], e["published_at"], e["duration_seconds"], e["season_number"], e["episode_number"],
                e["enclosure_url"], e["enclosure_length"], e["chapters_url"], e["description_text"], e["transcript_urls"])
        if got != want:
            mismatches.append((e["guid"], got, want))
    assert mismatches == []


def test_second_poll_is_conditional_and_changes_nothing(loaded, truth):
    url, first, second, counts_after_first = loaded
    ok_feeds = sum(1 for f in truth["feeds"] if f["expected"] == "ok")
    # A feed quarantined for what its body said is judged again on a full fetch every poll (it
    # leaves quarantine once it parses); every other feed that answered 200 answers 304 now.
    rejected_bodies = sum(1 for f in truth["feeds"]
                          if f["reason_code"] in ("malformed_xml", "xml_entities_forbidden", "not_a_feed"))
    assert rejected_bodies == 3
    assert second.outcomes["fetched"] == rejected_bodies
    assert second.outcomes["not_modified"] == first.outcomes["fetched"] - rejected_bodies >= ok_feeds
    assert second.episodes_written == 0 and second.podcasts_written == 0
    assert second.quarantine_changes == {}
    assert {t: query(url, f"select count(*) from {t}")[0][0] for t in counts_after_first} == counts_after_first
    log = query(url, "select _batch_id, outcome, count(*) from raw.rss_feed_fetches group by 1, 2 order by 1, 2")
    assert ("run-2", "not_modified", first.outcomes["fetched"] - rejected_bodies) in log
    assert query(url, "select count(*) from quarantine.rss_history where _batch_id = 'run-2'") == [(0,)]


def test_changed_feed_is_refetched_and_upserted(fresh_db):
    network = build_network(seed=11, tenants=1, shows_per_tenant=3, feed_defects=False)
    with SimulatorServer(network) as sim:
        truth = ground_truth(network, sim.base_url)
        sources = sources_for(truth)
        ingest_rss(warehouse_at(fresh_db), sources, batch_id="a")
        show = network.shows[0]
        show.episodes[0].title = "A corrected title"
        sim.change([show])
        stats = ingest_rss(warehouse_at(fresh_db), sources, batch_id="b")
    assert (stats.outcomes["fetched"], stats.outcomes["not_modified"]) == (1, 2)
    assert stats.episodes_written == 1  # only the edited item is rewritten
    title = query(fresh_db, "select title from raw.rss_episodes where guid = %s", (show.episodes[0].guid,))
    assert title == [("A corrected title",)]


def test_a_304_without_validators_keeps_the_next_poll_conditional(fresh_db):
    """RFC 9110 lets a 304 carry no ETag or Last-Modified: the validators of the last 200 stay in
    use, so every poll after the first is conditional, not every other one."""
    network = build_network(seed=12, tenants=1, shows_per_tenant=3, feed_defects=False)
    with SimulatorServer(network) as sim:
        sim.validators_on_304 = False
        sources = sources_for(ground_truth(network, sim.base_url))
        first = ingest_rss(warehouse_at(fresh_db), sources, batch_id="a")
        polls = [ingest_rss(warehouse_at(fresh_db), sources, batch_id=b) for b in ("b", "c", "d")]
    assert first.outcomes["fetched"] == 3
    assert [(p.outcomes["fetched"], p.outcomes["not_modified"], p.bytes_downloaded) for p in polls] == [(0, 3, 0)] * 3


def test_a_tenant_adding_a_feed_another_tenant_polls_gets_its_rows(fresh_db):
    """A tenant that has stored nothing of a URL makes its next request unconditional (a 304
    would leave it empty): both tenants get the one 200, and the new one stores its own rows."""
    network = build_network(seed=13, tenants=1, shows_per_tenant=2, feed_defects=False, item_defect_rate=0.0)
    with SimulatorServer(network) as sim:
        truth = ground_truth(network, sim.base_url)
        sources = sources_for(truth)
        ingest_rss(warehouse_at(fresh_db), sources, batch_id="a")
        shared = sources.feeds[0].url
        both = sources.model_copy(update={"feeds": [*sources.feeds, FeedSource(tenant_id="second", url=shared)]})
        stats = ingest_rss(warehouse_at(fresh_db), both, batch_id="b")
        again = ingest_rss(warehouse_at(fresh_db), both, batch_id="c")
    assert (stats.requests, stats.outcomes["fetched"], stats.outcomes["not_modified"]) == (2, 2, 1)
    assert (again.requests, again.outcomes["fetched"], again.outcomes["not_modified"]) == (2, 0, 3)
    owner = sources.feeds[0].tenant_id
    rows = dict(query(fresh_db, "select tenant_id, count(*) from raw.rss_episodes where feed_url = %s group by 1",
                      (shared,)))
    assert rows["second"] == rows[owner] == sum(1 for e in truth["episodes"] if e["feed_url"] == shared and e["valid"]) > 0


def test_two_tenants_listing_one_url_cause_one_request_per_poll(fresh_db):
    """The URL is fetched once per poll and its rows fanned out to every tenant that lists it;
    the request count is taken at the server."""
    network = build_network(seed=14, tenants=1, shows_per_tenant=2, feed_defects=False, item_defect_rate=0.0)
    with SimulatorServer(network) as sim:
        truth = ground_truth(network, sim.base_url)
        sources = sources_for(truth)
        shared = sources.feeds[0].url
        path = shared.removeprefix(sim.base_url)
        both = sources.model_copy(update={"feeds": [
            *sources.feeds, FeedSource(tenant_id="second", url=shared), FeedSource(tenant_id="third", url=shared)]})
        requests = []
        for batch in ("a", "b", "c"):
            before = sim.requests[path]
            stats = ingest_rss(warehouse_at(fresh_db), both, batch_id=batch)
            requests.append((sim.requests[path] - before, stats.requests, stats.outcomes["fetched"]))
        show = next(s for s in network.shows if shared.endswith(s.path))
        show.episodes[0].title = "Retitled for everyone"
        sim.change([show])
        before = sim.requests[path]
        ingest_rss(warehouse_at(fresh_db), both, batch_id="d")
        requests.append((sim.requests[path] - before,))
    # Poll a: 200 for 4 (tenant, URL) pairs from 2 requests; b and c: 304s, 2 requests each.
    assert requests == [(1, 2, 4), (1, 2, 0), (1, 2, 0), (1,)]
    per_tenant = query(fresh_db, "select tenant_id, count(*), count(*) filter (where title = 'Retitled for everyone') "
                                 "from raw.rss_episodes where feed_url = %s group by 1 order by 1", (shared,))
    valid = sum(1 for e in truth["episodes"] if e["feed_url"] == shared and e["valid"])
    assert [(t, n, r) for t, n, r in per_tenant] == [
        (network.shows[0].tenant_id, valid, 1), ("second", valid, 1), ("third", valid, 1)]
    log = query(fresh_db, "select _batch_id, count(*) from raw.rss_feed_fetches where feed_url = %s group by 1 order by 1",
                (shared,))
    assert log == [("a", 3), ("b", 3), ("c", 3), ("d", 3)]  # each tenant keeps its own fetch history


# --- a real HTTP server: python -m http.server over loopback -------------------------------------

REALDATA = SHARED / "realdata"


@contextmanager
def http_server(directory: Path):
    """`python -m http.server` on a free loopback port, serving `directory`; yields (base URL,
    a function returning the status of every request logged so far)."""
    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory", str(directory)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    log: list[str] = []
    try:
        banner = proc.stdout.readline()  # "Serving HTTP on 127.0.0.1 port 43117 (http://127.0.0.1:43117/) ..."
        port = int(re.search(r"port (\d+)", banner).group(1))
        reader = threading.Thread(target=lambda: log.extend(iter(proc.stderr.readline, "")), daemon=True)
        reader.start()

        def statuses() -> list[int]:
            # Each request is logged once, after it is answered; wait for the count to settle.
            for _ in range(50):
                seen = len(log)
                reader.join(0.05)
                if len(log) == seen:
                    break
            return [int(m.group(1)) for line in log if (m := re.search(r'"GET [^"]*" (\d{3})', line))]

        yield f"http://127.0.0.1:{port}", statuses
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def loopback_sources(*feeds: FeedSource, strict_xml: bool = False) -> RssSources:
    # The client refuses private and loopback addresses unless the feed list allows them.
    return RssSources(feeds=list(feeds), allow_private_hosts=True, timeout_seconds=5, max_attempts=1,
                      strict_xml=strict_xml)


def publish(path: Path, body: bytes, mtime: int) -> None:
    """Write a feed file with an explicit modification time: http.server's Last-Modified has
    one-second resolution, so each version gets its own second."""
    path.write_bytes(body)
    os.utime(path, (mtime, mtime))


def test_three_polls_of_an_unchanged_feed_on_http_server_give_200_304_304(fresh_db, tmp_path):
    """http.server sends Last-Modified on 200 and nothing on 304: the poller keeps using the
    200's Last-Modified. Switching a parse option forces a full fetch of the unchanged file."""
    publish(tmp_path / "feed.xml", (REALDATA / "feeds" / "rbren__rss-parser__narro.rss").read_bytes(), 1_700_000_000)
    with http_server(tmp_path) as (base, statuses):
        feed = FeedSource(tenant_id="t1", url=f"{base}/feed.xml")
        polls = [ingest_rss(warehouse_at(fresh_db), loopback_sources(feed), batch_id=b) for b in ("a", "b", "c")]
        switched = ingest_rss(warehouse_at(fresh_db), loopback_sources(feed, strict_xml=True), batch_id="d")
        after = ingest_rss(warehouse_at(fresh_db), loopback_sources(feed, strict_xml=True), batch_id="e")
        served = statuses()
    assert served == [200, 304, 304, 200, 304]
    assert [(p.outcomes["fetched"], p.outcomes["not_modified"]) for p in polls] == [(1, 0), (0, 1), (0, 1)]
    assert (switched.outcomes["fetched"], after.outcomes["not_modified"]) == (1, 1)
    assert query(fresh_db, "select _batch_id, status_code from raw.rss_feed_fetches order by fetched_at") == [
        ("a", 200), ("b", 304), ("c", 304), ("d", 200), ("e", 304)]
    assert query(fresh_db, "select count(*) > 0 from raw.rss_episodes") == [(True,)]


def _with_undefined_entity(body: bytes) -> bytes:
    """The Podcasting 2.0 example feed with an HTML entity XML does not define in its first item's
    title, and that item's explicit flag written `Yes`, as real feed generators do."""
    text = body.decode()
    first_item = text.index("<item>")
    head, tail = text[:first_item], text[first_item:]
    tail = re.sub(r"<title>([^<]*)</title>", r"<title>\1&nbsp;(live)</title>", tail, count=1)
    tail = tail.replace("<itunes:explicit>false</itunes:explicit>", "<itunes:explicit>Yes</itunes:explicit>", 1)
    return (head + tail).encode()


def test_undefined_entity_feed_recovers_degraded_and_quarantine_keeps_history(fresh_db, tmp_path):
    real = (REALDATA / "feeds" / "Podcastindex-org__podcast-namespace__example.xml").read_bytes()
    broken = _with_undefined_entity(real)
    feed_file = tmp_path / "example.xml"
    publish(feed_file, broken[: len(broken) * 2 // 3], 1_700_000_000)  # a cut-off transfer
    episodes_sql = ("select guid, title, explicit_raw, image_url, season_number, episode_number, "
                    "jsonb_array_length(transcripts), chapters_url, parse_degraded from raw.rss_episodes order by guid")
    with http_server(tmp_path) as (base, statuses):
        feed = FeedSource(tenant_id="t1", url=f"{base}/example.xml")
        truncated = ingest_rss(warehouse_at(fresh_db), loopback_sources(feed), batch_id="a")
        quarantined = query(fresh_db, "select reason_code from quarantine.rss_feeds")
        publish(feed_file, broken, 1_700_000_100)
        recovered = ingest_rss(warehouse_at(fresh_db), loopback_sources(feed), batch_id="b")
        degraded_rows = query(fresh_db, episodes_sql)
        warnings = query(fresh_db, "select parse_degraded, parse_warnings from raw.rss_podcasts")
        unchanged = ingest_rss(warehouse_at(fresh_db), loopback_sources(feed), batch_id="c")
        strict = ingest_rss(warehouse_at(fresh_db), loopback_sources(feed, strict_xml=True), batch_id="d")
        strict_quarantine = query(fresh_db, "select reason_code from quarantine.rss_feeds")
        publish(feed_file, broken.replace(b"&nbsp;", b"&#160;"), 1_700_000_200)
        fixed = ingest_rss(warehouse_at(fresh_db), loopback_sources(feed, strict_xml=True), batch_id="e")
        fixed_rows = query(fresh_db, episodes_sql)
        served = statuses()
    assert truncated.feed_errors == {"malformed_xml": 1} and quarantined == [("malformed_xml",)]
    # Recovery keeps every item with its iTunes and Podcasting 2.0 fields, marked degraded.
    assert recovered.outcomes["fetched"] == 1 and recovered.degraded_feeds == 1
    assert [r[1:] for r in degraded_rows] == [
        ("Episode 1 - The Past", "false", "https://example.com/ep0001/artMd.jpg", 1, 1, 1,
         "https://example.com/ep1_chapters.json", True),
        ("Episode 2 - The Present", "false", "https://example.com/ep0002/artMd.jpg", 1, 2, 1,
         "https://example.com/ep2_chapters.json", True),
        ("Episode 3 - The Future (live)", "Yes", "https://example.com/ep0003/artMd.jpg", 1, 3, 2,
         "https://example.com/ep3_chapters.json", True),
    ]
    assert warnings[0][0] is True and "undefined entity" in warnings[0][1][0]
    # Unchanged and recovered: a 304 and nothing rewritten.
    assert (unchanged.outcomes["not_modified"], unchanged.episodes_written, unchanged.quarantine_changes) == (1, 0, {})
    # Switching strict_xml on forces a full fetch (a 304 would keep the recovered parse).
    assert strict.outcomes["fetched"] == 1 and strict_quarantine == [("malformed_xml",)]
    # The publisher fixes the entity: the feed leaves quarantine, its episodes lose the flag.
    assert fixed.outcomes["fetched"] == 1 and query(fresh_db, "select count(*) from quarantine.rss_feeds") == [(0,)]
    assert [r[8] for r in fixed_rows] == [False, False, False] and fixed_rows[2][1] == "Episode 3 - The Future (live)"
    assert served == [200, 200, 304, 200, 200]
    history = query(fresh_db, "select _batch_id, event, reason_code from quarantine.rss_history order by history_id")
    assert history == [("a", "quarantined", "malformed_xml"), ("b", "cleared", "malformed_xml"),
                       ("d", "quarantined", "malformed_xml"), ("e", "cleared", "malformed_xml")]


def test_degraded_flag_and_bigint_lengths_reach_staging_and_dim_episodes(fresh_db, tmp_path):
    """Through dbt: a recovered feed's episodes are `parse_degraded` in stg_rss__episodes and
    dim_episodes, and an enclosure length of 3 GB (≥ 2³¹) is kept whole, not failed or wrapped."""
    from tests.test_downloads_incremental import dbt_build

    real = (REALDATA / "feeds" / "Podcastindex-org__podcast-namespace__example.xml").read_bytes()
    body = _with_undefined_entity(real).replace(b'length="43200000"', b'length="3000000000"')
    publish(tmp_path / "example.xml", body, 1_700_000_000)
    publish(tmp_path / "clean.xml", (REALDATA / "feeds" / "rbren__rss-parser__narro.rss").read_bytes(), 1_700_000_000)
    with http_server(tmp_path) as (base, _):
        ingest_rss(warehouse_at(fresh_db), loopback_sources(FeedSource(tenant_id="t1", url=f"{base}/example.xml"),
                                              FeedSource(tenant_id="t1", url=f"{base}/clean.xml")), batch_id="a")
    dbt_build(fresh_db, str(tmp_path / "target"), "--select", "+dim_episodes", "--indirect-selection", "cautious")
    stg = query(fresh_db, "select feed_url like '%%example.xml', parse_degraded, count(*), max(enclosure_length_bytes) "
                          "from staging.stg_rss__episodes group by 1, 2 order by 1")
    assert [(r[0], r[1]) for r in stg] == [(False, False), (True, True)]
    assert stg[1][2] == 3 and stg[1][3] == 3_000_000_000
    dim = query(fresh_db, "select parse_degraded, enclosure_length_bytes, is_explicit, explicit_source "
                          "from marts.dim_episodes where enclosure_url = 'https://example.com/file-03.mp3'")
    assert dim == [(True, 3_000_000_000, True, "episode")]  # explicit `Yes` read in any case
    podcasts = query(fresh_db, "select parse_degraded, jsonb_array_length(parse_warnings) > 0 from staging.stg_rss__podcasts "
                               "order by feed_url")
    assert podcasts == [(False, False), (True, True)]


def test_simulated_real_shapes_are_stored_as_their_truth_says(fresh_db):
    """The simulator's real-world shapes all on, 304s without validators too: zero and bogus
    lengths, `Yes`/`No` explicit, an undefined entity in two feeds, two feeds shared by a second
    tenant. Every stored value is what `shapes_truth` says, for every tenant; the second poll is
    one bare 304 per URL and changes nothing."""
    from simulator.feeds import FeedShapes, shapes_truth

    shapes = FeedShapes(zero_length_rate=0.3, bogus_length_rate=0.05, uppercase_explicit=True,
                        undefined_entity_feeds=2, shared_feeds=2)
    network = build_network(seed=15, tenants=2, shows_per_tenant=3, feed_defects=False)
    with SimulatorServer(network) as sim:
        sim.shapes = shapes
        sim.validators_on_304 = False
        truth = ground_truth(network, sim.base_url)
        shaped = shapes_truth(network, sim.base_url, shapes)
        sources = sources_for(truth)
        sources = sources.model_copy(update={"feeds": [
            *sources.feeds, *(FeedSource(tenant_id=t, url=u) for t, u in shaped["shared_sources"])]})
        first = ingest_rss(warehouse_at(fresh_db), sources, batch_id="a")
        second = ingest_rss(warehouse_at(fresh_db), sources, batch_id="b")
        served = sum(sim.requests.values())
    assert first.requests == second.requests == len(network.shows) == 6 and served == 12
    assert first.degraded_feeds == 2 + sum(1 for t, u in shaped["shared_sources"] if u in shaped["degraded_feeds"])
    assert (second.outcomes["not_modified"], second.episodes_written, second.bytes_downloaded) == (8, 0, 0)
    owners = {f["feed_url"]: f["tenant_id"] for f in truth["feeds"]}
    expected = {}
    for e in (e for e in truth["episodes"] if e["valid"]):
        want = shaped["episodes"][(e["feed_url"], e["guid"])]
        row = (want["title"], want["enclosure_length"], want["explicit_raw"], want["parse_degraded"])
        expected[(e["tenant_id"], e["feed_url"], e["guid"])] = row
        for tenant, url in shaped["shared_sources"]:
            if url == e["feed_url"]:
                expected[(tenant, url, e["guid"])] = row
    stored = {(t, u, g): tuple(rest) for t, u, g, *rest in query(
        fresh_db, "select tenant_id, feed_url, guid, title, enclosure_length, explicit_raw, parse_degraded "
                  "from raw.rss_episodes")}
    assert stored == expected
    lengths = [row[1] for row in expected.values()]
    assert lengths.count(None) > 10 and lengths.count(1) > 0
    assert {row[2] for row in expected.values()} >= {"Yes", "No"}
    assert {url for (_, url, _), row in expected.items() if row[3]} == set(shaped["degraded_feeds"])
    shared_url = shaped["shared_sources"][0][1]
    assert {tenant for tenant, url, _ in expected if url == shared_url} == {owners[shared_url], shaped["shared_sources"][0][0]}

"""Feeds from the simulator into real PostgreSQL, compared with the ground truth."""

import pytest

from assets.ingestion.rss_ingest import FeedSource, RssSources, ingest_rss
from simulator.network import build_network
from simulator.server import SimulatorServer
from simulator.truth import ground_truth
from tests.conftest import query


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
    first = ingest_rss(url, sources_for(truth), batch_id="run-1")
    counts_after_first = {t: query(url, f"select count(*) from {t}")[0][0] for t in
                          ("raw.rss_episodes", "raw.rss_podcasts", "quarantine.rss_feeds", "quarantine.rss_episodes")}
    second = ingest_rss(url, sources_for(truth), batch_id="run-2")
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
    # Feeds that answered 200 the first time answer 304 now; nothing is re-downloaded or rewritten.
    assert second.outcomes["fetched"] == 0
    assert second.outcomes["not_modified"] == first.outcomes["fetched"] >= ok_feeds
    assert second.bytes_downloaded == 0 and second.episodes_written == 0
    assert {t: query(url, f"select count(*) from {t}")[0][0] for t in counts_after_first} == counts_after_first
    log = query(url, "select _batch_id, outcome, count(*) from raw.rss_feed_fetches group by 1, 2 order by 1, 2")
    assert ("run-2", "not_modified", first.outcomes["fetched"]) in log


def test_changed_feed_is_refetched_and_upserted(fresh_db):
    network = build_network(seed=11, tenants=1, shows_per_tenant=3, feed_defects=False)
    with SimulatorServer(network) as sim:
        truth = ground_truth(network, sim.base_url)
        sources = sources_for(truth)
        ingest_rss(fresh_db, sources, batch_id="a")
        show = network.shows[0]
        show.episodes[0].title = "A corrected title"
        sim.change([show])
        stats = ingest_rss(fresh_db, sources, batch_id="b")
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
        first = ingest_rss(fresh_db, sources, batch_id="a")
        polls = [ingest_rss(fresh_db, sources, batch_id=b) for b in ("b", "c", "d")]
    assert first.outcomes["fetched"] == 3
    assert [(p.outcomes["fetched"], p.outcomes["not_modified"], p.bytes_downloaded) for p in polls] == [(0, 3, 0)] * 3


def test_a_tenant_adding_a_feed_another_tenant_polls_gets_its_rows(fresh_db):
    """Validators belong to the tenant that stored the feed: a second tenant's first poll of the
    same URL is unconditional and stores the feed under that tenant."""
    network = build_network(seed=13, tenants=1, shows_per_tenant=2, feed_defects=False, item_defect_rate=0.0)
    with SimulatorServer(network) as sim:
        truth = ground_truth(network, sim.base_url)
        sources = sources_for(truth)
        ingest_rss(fresh_db, sources, batch_id="a")
        shared = sources.feeds[0].url
        both = sources.model_copy(update={"feeds": [*sources.feeds, FeedSource(tenant_id="second", url=shared)]})
        stats = ingest_rss(fresh_db, both, batch_id="b")
    assert (stats.outcomes["fetched"], stats.outcomes["not_modified"]) == (1, 2)
    owner = sources.feeds[0].tenant_id
    rows = dict(query(fresh_db, "select tenant_id, count(*) from raw.rss_episodes where feed_url = %s group by 1",
                      (shared,)))
    assert rows["second"] == rows[owner] == sum(1 for e in truth["episodes"] if e["feed_url"] == shared and e["valid"]) > 0

"""Ad-slot detection end to end on the simulated network: the transcripts, chapters and show notes
the simulator serves over HTTP (with the campaigns' reads planted in them), fetched and parsed by
the pipeline, detected, and compared with the planted reads. Shares the attribution warehouse
(tests/conftest.py), whose build fetched the documents and detected the slots."""

import psycopg
import pytest

from assets.processing.ad_detection import DETECTOR_VERSION
from assets.processing.ad_slots import detect_ad_slots
from pipelines.checks.ad_detection import MIN_BOUNDARIES, MIN_PRECISION, MIN_RECALL, evaluate_against_truth
from simulator.transcripts import ad_slot_truth


@pytest.fixture(scope="module")
def planted(network, simulator, attribution_warehouse):
    """The reads planted in the documents the warehouse holds, and those episodes."""
    url = attribution_warehouse["url"]
    with psycopg.connect(url) as conn:
        episodes = [list(r) for r in conn.execute("select distinct tenant_id, feed_url, guid from raw.transcripts")]
    slots = ad_slot_truth(network, simulator.base_url, attribution_warehouse["world"])
    stored = {tuple(e) for e in episodes}
    return {"episodes": episodes, "slots": [s for s in slots if (s["tenant_id"], s["feed_url"], s["guid"]) in stored]}


def snapshot(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute("select tenant_id, feed_url, guid, slot_index, start_seconds, end_seconds, kind, position, "
                            "sponsor_brand, sponsor_domain, vanity_url, promo_code, confidence, evidence "
                            "from raw.ad_slots order by 1, 2, 3, 4").fetchall()


def test_detected_slots_meet_the_goals_against_the_planted_reads(attribution_warehouse, planted):
    assert attribution_warehouse["detection"].episodes > 0
    with psycopg.connect(attribution_warehouse["url"], autocommit=True) as conn:
        results = evaluate_against_truth(conn, planted, "test")
        stored = conn.execute("select tenant_id, truth_slots, matched_slots, precision, recall, detector_version "
                              "from ops.ad_detection_evaluations where run_id = 'test' order by 1").fetchall()
    assert sum(r.truth_slots for r in results.values()) >= 100  # every tenant has reads to find
    for tenant, r in results.items():
        assert r.truth_slots > 0, tenant
        assert r.precision >= MIN_PRECISION and r.recall >= MIN_RECALL and r.boundary_share >= MIN_BOUNDARIES, (tenant, r)
    assert [(t, n, m, p, r, v) for t, n, m, p, r, v in stored] == [
        (t, r.truth_slots, r.matched_slots, r.precision, r.recall, DETECTOR_VERSION) for t, r in sorted(results.items())]


def test_campaign_reads_are_found_where_they_were_planted(attribution_warehouse, planted):
    """The reads of the campaigns' placements start exactly where the placement put them (their
    position places the ads of placements sold without an offset) and name the sponsor's code."""
    reads = [s for s in planted["slots"] if s["placement_id"] and s["timed"]]
    assert reads
    with psycopg.connect(attribution_warehouse["url"]) as conn:
        found = {(t, f, g, float(start), domain): code for t, f, g, start, domain, code in conn.execute(
            "select tenant_id, feed_url, guid, start_seconds, sponsor_domain, promo_code from raw.ad_slots "
            "where kind in ('host_read', 'produced')")}
    for read in reads:
        key = (read["tenant_id"], read["feed_url"], read["guid"], float(read["start_seconds"]), read["domain"])
        assert key in found, read
        assert found[key] == read["promo_code"], read


def test_detection_is_idempotent_and_incremental(attribution_warehouse):
    url = attribution_warehouse["url"]
    before = snapshot(url)
    with psycopg.connect(url, autocommit=True) as conn:
        again = detect_ad_slots(conn, "again")
        assert (again.episodes, again.unchanged) == (0, conn.execute("select count(*) from raw.rss_episodes").fetchone()[0])
        assert snapshot(url) == before

        # New show notes naming a sponsor: that episode alone is detected again, and gets the mention.
        tenant, feed, guid, notes = conn.execute(
            "select tenant_id, feed_url, guid, description_text from raw.rss_episodes order by 1, 2, 3 limit 1").fetchone()
        conn.execute("update raw.rss_episodes set description_text = %s where tenant_id = %s and feed_url = %s and guid = %s",
                     ((notes or "") + " This episode is sponsored by Fernhill Tea: fernhilltea.com/maps, code MAPS5.",
                      tenant, feed, guid))
        changed = detect_ad_slots(conn, "changed")
        assert changed.episodes == 1
        mention = conn.execute("select kind, sponsor_domain, vanity_url, promo_code from raw.ad_slots where tenant_id = %s "
                               "and feed_url = %s and guid = %s and sponsor_domain = 'fernhilltea.com'",
                               (tenant, feed, guid)).fetchall()
        assert mention == [("show_notes", "fernhilltea.com", "fernhilltea.com/maps", "MAPS5")]

        conn.execute("update raw.rss_episodes set description_text = %s where tenant_id = %s and feed_url = %s and guid = %s",
                     (notes, tenant, feed, guid))
        restored = detect_ad_slots(conn, "restored")
        assert restored.episodes == 1
    assert snapshot(url) == before

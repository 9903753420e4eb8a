"""Detected ad slots in the warehouse: placements that leave the ad offset out (sponsorship API
and insertion orders, CSV and XLSX), and the dbt models built on raw.ad_slots - fct_ad_slots, ad
load per episode and per show and month, sponsor mentions by show and month (new and churned),
the detected offset of a placement without one (int_placement_episodes) and the promo codes and
vanity URLs detected for a campaign that names none (int_campaign_match_keys).

A small world is built here, row by row: two tenants, three shows, a handful of episodes with
transcripts, the slots a detector would have written, and two insertion orders loaded by the real
loader. Every expected figure is computed in the test from those rows."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import date, datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from math import ceil
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from assets.ingestion.campaign_store import Invalid
from assets.ingestion.campaigns import LoadStats, load_insertion_orders, parse_api_placement
from resources.warehouse import warehouse_at
from tests.conftest import query
from tests.dbt_cli import run_dbt

ID3 = 65536  # dbt var iab_id3_allowance_bytes
BYTES_PER_SECOND = 1000  # every episode's file here: 1000 bytes per second of audio

NORTH, SOUTH = "north", "south"
FEED_A, FEED_B, FEED_C = "https://a.example/feed.xml", "https://b.example/feed.xml", "https://c.example/feed.xml"
CATEGORY = {FEED_A: "Comedy", FEED_B: "Business", FEED_C: "News"}

# (tenant, feed, guid, published, duration seconds, transcript: 'vtt' timed, 'html' untimed, None)
EPISODES = [
    (NORTH, FEED_A, "a1", datetime(2026, 8, 5, 9, tzinfo=timezone.utc), 3600, "vtt"),
    (NORTH, FEED_A, "a2", datetime(2026, 8, 20, 9, tzinfo=timezone.utc), 1800, "vtt"),
    (NORTH, FEED_A, "a3", datetime(2026, 9, 10, 9, tzinfo=timezone.utc), 2400, "html"),
    (NORTH, FEED_A, "a4", datetime(2026, 10, 2, 9, tzinfo=timezone.utc), 3000, "vtt"),
    (NORTH, FEED_A, "a5", datetime(2026, 7, 15, 9, tzinfo=timezone.utc), 3600, None),
    (NORTH, FEED_B, "b1", datetime(2026, 8, 10, 9, tzinfo=timezone.utc), 2700, "vtt"),
    (NORTH, FEED_B, "b2", datetime(2026, 10, 15, 9, tzinfo=timezone.utc), 1200, "vtt"),
    (SOUTH, FEED_C, "c1", datetime(2026, 8, 3, 9, tzinfo=timezone.utc), 3600, "vtt"),
]


def slot(tenant, feed, guid, index, kind, position=None, start=None, end=None, brand=None, domain=None,
         vanity=None, code=None):
    return {"tenant_id": tenant, "feed_url": feed, "guid": guid, "slot_index": index, "kind": kind,
            "position": position, "start_seconds": None if start is None else Decimal(str(start)),
            "end_seconds": None if end is None else Decimal(str(end)), "sponsor_brand": brand,
            "sponsor_domain": domain, "vanity_url": vanity, "promo_code": code}


NW, ACME, GLOBEX = "northwindmattress.com", "acme.fm", "globex.com"
SLOTS = [
    slot(NORTH, FEED_A, "a1", 0, "host_read", "pre", 10, 40, "Northwind Mattress", NW),
    slot(NORTH, FEED_A, "a1", 1, "host_read", "mid", 1500.4, 1562.6, "Northwind Mattress", NW,
         "northwindmattress.com/pod", "NORTH15"),
    slot(NORTH, FEED_A, "a1", 2, "produced", "mid", 2000, 2030, "Acme", ACME),
    # the host reads another campaign's code: Northwind's by its domain, but ACME10 stays Acme's
    slot(NORTH, FEED_A, "a1", 3, "show_notes", brand="Northwind Mattress", domain=NW, code="ACME10"),
    slot(NORTH, FEED_A, "a2", 0, "host_read", "pre", 5, 35, "Northwind Mattress", NW),
    slot(NORTH, FEED_A, "a2", 1, "host_read", "mid", 900, 930, "Northwind Mattress", NW),
    slot(NORTH, FEED_A, "a2", 2, "break", "post", 1790),  # a break marked by its start only, no sponsor
    slot(NORTH, FEED_A, "a3", 0, "show_notes", brand="Acme", domain=ACME),
    slot(NORTH, FEED_A, "a4", 0, "produced", "pre", 0, 45, "Acme", ACME),
    slot(NORTH, FEED_A, "a4", 1, "host_read", "mid", 1200, 1260, "Globex", GLOBEX),
    slot(NORTH, FEED_A, "a5", 0, "show_notes", brand="Northwind Mattress", domain=NW,
         vanity="northwindmattress.com/sleep"),
    # no domain: tied to Acme by the promo code its campaign names, then by its vanity URL
    slot(NORTH, FEED_B, "b1", 0, "host_read", "pre", 0, 30, "Acme", code="acme10"),
    slot(NORTH, FEED_B, "b1", 1, "host_read", "mid", 1300, 1360, "Acme", vanity="acmepod.com/deal"),
    slot(NORTH, FEED_B, "b1", 2, "host_read", "post", 2650, 2690, "Acme", ACME, "acme.fm/show", "ACMEVIP"),
    # another tenant reads Northwind too, but has no such sponsor in its list
    slot(SOUTH, FEED_C, "c1", 0, "host_read", "mid", 600, 660, "Northwind Mattress", NW),
]

# Simplecast's ad markers of a4 (its Simplecast episode has a4's guid): a marker within 15 s of a
# detected slot is that slot; the others become breaks. A marker of an episode in no feed has no
# episode to go to.
MARKERS = [  # (simplecast episode, marker id, ad_type, offset seconds, kept)
    ("sc-a4", "m0", "preroll", 0, False),      # Acme's produced pre-roll, 0-45 s
    ("sc-a4", "m1", "midroll", 1500, True),
    ("sc-a4", "m2", "postroll", 3000, True),
    ("sc-zz", "m4", "midroll", 600, False),
]
SIMPLECAST_EPISODES = {"sc-a4": "a4", "sc-zz": "zz"}
KEPT = [slot(NORTH, FEED_A, SIMPLECAST_EPISODES[e], None, "break",
             {"preroll": "pre", "midroll": "mid", "postroll": "post"}[t], o)
        for e, _, t, o, kept in MARKERS if kept]


def audio_slots(tenant: str, guid: str) -> list[dict]:
    """The slots of the episode's audio: the detector's but show-notes mentions, and the markers kept."""
    return [s for s in SLOTS + KEPT if (s["tenant_id"], s["guid"]) == (tenant, guid) and s["kind"] != "show_notes"]


# The sponsors, campaigns and placements of tenant north, as two insertion orders: Northwind's
# campaign names no promo code and no vanity URL (CSV), Acme's names both (XLSX).
FLIGHT = ("2026-08-01", "2026-12-31")
PLACEMENT_HEADER = ["Placement ID", "Feed URL", "Episode GUID", "Position", "Insertion", "Start", "End",
                    "Ad Offset s", "Ad Length s"]
NW_PLACEMENTS = [
    ["pl-1", FEED_A, "a1", "Mid-roll", "Host read", *FLIGHT, "", "60"],   # offset left out
    ["pl-2", FEED_A, "a2", "Post-roll", "Host read", *FLIGHT, "", "60"],
    ["pl-3", FEED_A, "a4", "Mid-roll", "Host read", *FLIGHT, "", "60"],
    ["pl-6", FEED_A, "a5", "Pre-roll", "Host read", *FLIGHT, "", "60"],
    ["pl-bad", FEED_A, "a1", "Mid-roll", "Host read", *FLIGHT, "abc", "60"],  # given, but not a number
    ["pl-neg", FEED_A, "a1", "Mid-roll", "Host read", *FLIGHT, "-5", "60"],
]
AC_PLACEMENTS = [
    ["pl-4", FEED_B, None, "Pre-roll", "Baked", *FLIGHT, 0, 30],         # every episode of show B, offset 0
    ["pl-5", FEED_A, "a1", "Mid-roll", "Dynamic", *FLIGHT, None, 30],     # an empty cell
]


def io_rows(fields: dict[str, str], placements: list[list]) -> list[list]:
    return [[k, v] for k, v in fields.items()] + [PLACEMENT_HEADER] + placements


NW_IO = {"Advertiser": "Northwind Mattress", "Advertiser ID": "sp-nw", "Website": "https://www.NorthwindMattress.com/shop",
         "Campaign ID": "cmp-nw", "Campaign": "Sleep better", "Flight Start": FLIGHT[0], "Flight End": FLIGHT[1],
         "Budget": "$10,000", "Pricing": "Flat", "Flat Fee": "10000"}
AC_IO = {"Advertiser": "Acme", "Advertiser ID": "sp-ac", "Website": "acme.fm", "Campaign ID": "cmp-ac",
         "Campaign": "Acme fall", "Flight Start": FLIGHT[0], "Flight End": FLIGHT[1], "Budget": "$5,000",
         "Pricing": "Flat", "Flat Fee": "5000", "Promo Codes": "ACME10", "Vanity URL": "https://www.AcmePod.com/Deal/"}


def write_insertion_orders(folder: Path) -> None:
    from openpyxl import Workbook

    (folder / NORTH).mkdir(parents=True)
    lines = io_rows(NW_IO, NW_PLACEMENTS)
    (folder / NORTH / "IO_northwind.csv").write_text(
        "\n".join(",".join(f'"{cell}"' for cell in row) for row in lines) + "\n")
    book = Workbook()
    for row in io_rows(AC_IO, AC_PLACEMENTS):
        book.active.append(row)
    book.save(folder / NORTH / "IO_acme.xlsx")


def load_world(url: str, root: Path) -> LoadStats:
    with psycopg.connect(url, autocommit=True) as conn:
        for feed, category in CATEGORY.items():
            tenant = SOUTH if feed == FEED_C else NORTH
            conn.execute("insert into raw.rss_podcasts (tenant_id, feed_url, title, categories, content_hash) "
                         "values (%s, %s, %s, %s, 'h')", (tenant, feed, f"Show {feed[8]}", [category]))
        for tenant, feed, guid, published, duration, transcript in EPISODES:
            conn.execute("""
                insert into raw.rss_episodes (tenant_id, feed_url, guid, guid_source, title, published_at,
                                              duration_seconds, enclosure_url, enclosure_length, content_hash)
                values (%s, %s, %s, 'guid', %s, %s, %s, %s, %s, 'h')""",
                         (tenant, feed, guid, f"Episode {guid}", published, duration,
                          f"https://cdn.example/{guid}.mp3", duration * BYTES_PER_SECOND))
            if transcript:
                conn.execute("""
                    insert into raw.transcripts (tenant_id, feed_url, guid, url, format, bytes, content_sha256,
                                                 cue_count, has_timings, fetched_at)
                    values (%s, %s, %s, %s, %s, 1000, 'x', 40, %s, now())""",
                             (tenant, feed, guid, f"https://cdn.example/{guid}.{transcript}", transcript,
                              transcript == "vtt"))
        for s in SLOTS:
            conn.execute(sql.SQL("insert into raw.ad_slots ({}, confidence, evidence, evidence_sources, detector_version) "
                                 "values ({}, 0.9, 'brought to you by', %(evidence_sources)s, 'rules-1')").format(
                sql.SQL(", ").join(map(sql.Identifier, s)), sql.SQL(", ").join(sql.Placeholder(k) for k in s)),
                {**s, "evidence_sources": ["show_notes" if s["kind"] == "show_notes" else "transcript"]})
        for platform_episode, guid in SIMPLECAST_EPISODES.items():
            conn.execute("insert into raw.simplecast_episodes (tenant_id, podcast_id, episode_id, guid, title) "
                         "values (%s, 'sc-show-a', %s, %s, %s)", (NORTH, platform_episode, guid, f"Episode {guid}"))
        for platform_episode, marker, ad_type, offset, _ in MARKERS:
            conn.execute("insert into raw.simplecast_episode_ad_markers (tenant_id, podcast_id, episode_id, marker_id, "
                         "ad_type, offset_seconds, ad_limit, name) values (%s, 'sc-show-a', %s, %s, %s, %s, 1, %s)",
                         (NORTH, platform_episode, marker, ad_type, offset, f"{ad_type} {marker}"))
        # Orders: one with the code detected in Northwind's read, one with a code only read (Acme's
        # campaign names its own codes, so a read code does not become one of its keys).
        for event_id, sponsor, code in (("o-north15", "sp-nw", "north15"), ("o-acmevip", "sp-ac", "AcmeVip"),
                                        ("o-acme10", "sp-ac", "ACME10")):
            conn.execute("""
                insert into raw.attribution_events (tenant_id, source, event_id, occurred_at, sponsor_id, event_type,
                                                    ip_prefix_hash, gross_revenue, currency, discount_codes)
                values (%s, 'shop_orders', %s, '2026-09-01 12:00+00', %s, 'order', %s, 50, 'USD', %s)""",
                         (NORTH, event_id, sponsor, f"household-{event_id}", [code]))
    stats = LoadStats()
    write_insertion_orders(root / "io")
    load_insertion_orders(warehouse_at(url), root / "io", "io", stats)
    return stats


MODELS = ("+fct_ad_slots", "+fct_ad_load_monthly_by_show", "+mart_sponsor_mentions_monthly", "+int_placement_episodes",
          "+int_conversions")


@pytest.fixture(scope="module")
def world(new_warehouse, tmp_path_factory):
    url = new_warehouse("t_adslots")
    root = tmp_path_factory.mktemp("adslots")
    stats = load_world(url, root)
    built = run_dbt(url, str(root / "target"), "build", "--select", *MODELS, "--indirect-selection", "cautious")
    return {"url": url, "stats": stats, "dbt": built, "target": root / "target"}


def episode_id(tenant: str, feed: str, guid: str) -> str:
    return hashlib.md5(f"{tenant}|{feed}|{guid}".encode()).hexdigest()


def seconds(s: dict) -> Decimal | None:
    return None if s["end_seconds"] is None else s["end_seconds"] - s["start_seconds"]


def per_hour(ad_seconds: Decimal, audio_seconds: int) -> Decimal:
    return (Decimal(ad_seconds) / 60 / (Decimal(audio_seconds) / 3600)).quantize(Decimal("0.001"), ROUND_HALF_UP)


# -- ingestion: the offset may be left out -------------------------------------------------------

API_PLACEMENT = {"id": "pl-api", "campaign_id": "cmp-api", "show": {"feed_url": FEED_A}, "position": "mid",
                 "insertion": "baked_in", "start_date": "2026-08-01", "end_date": "2026-08-31"}


@pytest.mark.parametrize("ad", [{"offset_seconds": None, "duration_seconds": 60}, {"duration_seconds": 60}])
def test_an_api_placement_without_an_offset_is_a_row_with_a_null_offset(ad):
    row = parse_api_placement(NORTH, {**API_PLACEMENT, "ad": ad}, "b")
    assert (row["ad_offset_seconds"], row["ad_duration_seconds"], row["position"]) == (None, 60, "mid")
    assert parse_api_placement(NORTH, {**API_PLACEMENT, "ad": {"offset_seconds": 90, "duration_seconds": 60}},
                               "b")["ad_offset_seconds"] == 90


@pytest.mark.parametrize("offset", ["abc", -5, "12.5", [30]])
def test_an_api_placement_with_an_offset_that_is_not_a_whole_number_of_seconds_is_refused(offset):
    with pytest.raises(Invalid) as refused:
        parse_api_placement(NORTH, {**API_PLACEMENT, "ad": {"offset_seconds": offset, "duration_seconds": 60}}, "b")
    assert refused.value.code == "invalid_number"
    with pytest.raises(Invalid, match="invalid_number"):  # the duration is still required
        parse_api_placement(NORTH, {**API_PLACEMENT, "ad": {"offset_seconds": 10}}, "b")


def test_insertion_order_placements_without_an_offset_are_stored_null_and_bad_ones_quarantined(world):
    from pipelines.checks.quality import SUITES, _tenant_measures

    url = world["url"]
    stored = dict(query(url, "select placement_id, ad_offset_seconds from raw.placements"))
    assert stored == {"pl-1": None, "pl-2": None, "pl-3": None, "pl-6": None, "pl-4": 0, "pl-5": None}
    assert query(url, "select record_key, reason_code from quarantine.campaign_records order by 1") == [
        ("IO_northwind.csv:row16", "invalid_number"), ("IO_northwind.csv:row17", "invalid_number")]
    assert dict(world["stats"].quarantined) == {"invalid_number": 2}
    # The placements' quality suite takes a missing offset for a missing value, not one out of range.
    with psycopg.connect(url) as conn:
        measures = _tenant_measures(conn, SUITES["placements"])
    assert measures["between(ad_offset_seconds)"][NORTH] == (0, 6)


# -- the marts -------------------------------------------------------------------------------------

def test_the_models_and_their_tests_build(world):
    assert world["dbt"].returncode == 0, world["dbt"].stdout[-4000:]
    results = json.loads((world["target"] / "run_results.json").read_text())["results"]
    status = {r["unique_id"]: r["status"] for r in results}
    built = {uid.split(".")[-1] for uid, s in status.items() if uid.startswith("model.") and s == "success"}
    assert {"fct_ad_slots", "fct_ad_load_by_episode", "fct_ad_load_monthly_by_show", "mart_sponsor_mentions_monthly",
            "int_placement_episodes", "int_campaign_match_keys", "int_ad_slot_sponsors", "int_ad_slots", "int_conversions"} <= built
    failed = {uid: s for uid, s in status.items() if s not in ("success", "pass")}
    assert failed == {}
    assert any(uid.startswith("unit_test.") and "int_conversions_deterministic_matches" in uid for uid in status)


def test_fct_ad_slots_has_each_slot_in_the_audio_with_its_episode_and_sponsor(world):
    url = world["url"]
    rows = {(r[0], r[1], r[2]): r[3:] for r in query(url, """
        select tenant_id, guid, slot_index, episode_id, podcast_id, podcast_title, published_date, kind, position,
               start_seconds, end_seconds, duration_seconds, sponsor_id, sponsor_name, sponsor_match, sponsor_key
        from marts.fct_ad_slots where slot_source = 'detector'""")}
    audio = [s for s in SLOTS if s["kind"] != "show_notes"]
    assert set(rows) == {(s["tenant_id"], s["guid"], s["slot_index"]) for s in audio}
    published = {(t, g): p.date() for t, _, g, p, _, _ in EPISODES}
    for s in audio:
        (ep, podcast, title, day, kind, position, start, end, length, sponsor, name, match, key) = rows[
            (s["tenant_id"], s["guid"], s["slot_index"])]
        assert ep == episode_id(s["tenant_id"], s["feed_url"], s["guid"])
        assert title == f"Show {s['feed_url'][8]}" and day == published[(s["tenant_id"], s["guid"])]
        assert (kind, position, start, end, length) == (s["kind"], s["position"], s["start_seconds"],
                                                        s["end_seconds"], seconds(s))
    sponsors = {(t, g, i): (r[9], r[10], r[11], r[12]) for (t, g, i), r in rows.items()}
    assert sponsors[(NORTH, "a1", 1)] == ("sp-nw", "Northwind Mattress", "domain", NW)  # https://www.…/shop
    assert sponsors[(NORTH, "b1", 0)] == ("sp-ac", "Acme", "promo_code", "acme")        # ACME10, any case
    assert sponsors[(NORTH, "b1", 1)] == ("sp-ac", "Acme", "vanity_url", "acmepod.com")  # the campaign's URL
    assert sponsors[(NORTH, "b1", 2)] == ("sp-ac", "Acme", "domain", ACME)
    assert sponsors[(NORTH, "a4", 1)] == (None, None, None, GLOBEX)     # in no sponsor list
    assert sponsors[(NORTH, "a2", 2)] == (None, None, None, None)       # a break names no sponsor
    assert sponsors[(SOUTH, "c1", 0)] == (None, None, None, NW)         # north's sponsor is not south's
    # Simplecast's markers: breaks at their offsets, in the episode their guid names
    markers = query(url, """
        select episode_id, kind, position, start_seconds, end_seconds, slot_index, sponsor_key, published_date
        from marts.fct_ad_slots where slot_source = 'simplecast_marker' order by start_seconds""")
    assert markers == [(episode_id(NORTH, FEED_A, "a4"), "break", s["position"], s["start_seconds"], None, None, None,
                        published[(NORTH, "a4")]) for s in KEPT]


def test_ad_load_per_episode_counts_only_timed_transcripts_in_minutes_per_hour(world):
    url = world["url"]
    rows = {r[0]: r[1:] for r in query(url, """
        select episode_id, is_measured, ad_slots, ad_seconds, ad_minutes_per_hour, pre_roll_slots, mid_roll_slots,
               post_roll_slots, host_read_slots, produced_slots, break_slots, show_notes_mentions, sponsors
        from marts.fct_ad_load_by_episode""")}
    assert set(rows) == {episode_id(t, f, g) for t, f, g, *_ in EPISODES}  # each has a transcript or a slot
    for tenant, feed, guid, _, duration, transcript in EPISODES:
        mine = [s for s in SLOTS + KEPT if (s["tenant_id"], s["guid"]) == (tenant, guid)]
        audio = audio_slots(tenant, guid)
        ad_seconds = sum((seconds(s) or 0 for s in audio), Decimal(0))
        measured = transcript == "vtt"
        assert rows[episode_id(tenant, feed, guid)] == (
            measured, len(audio), ad_seconds, per_hour(ad_seconds, duration) if measured else None,
            *(sum(1 for s in audio if s["position"] == p) for p in ("pre", "mid", "post")),
            *(sum(1 for s in audio if s["kind"] == k) for k in ("host_read", "produced", "break")),
            len(mine) - len(audio),
            len({s["sponsor_domain"] or (s["vanity_url"] or "").split("/")[0] or (s["sponsor_brand"] or "").lower()
                 for s in mine} - {""}),
        ), guid
    # a1 by hand: 30 + 62.2 + 30 s of ads in an hour
    assert rows[episode_id(NORTH, FEED_A, "a1")][3] == Decimal("2.037")


def test_ad_load_per_show_and_month_is_over_the_measured_episodes(world):
    url = world["url"]
    rows = {(r[0], r[1]): r[2:] for r in query(url, """
        select p.feed_url, l.published_month, l.episodes_published, l.measured_episodes, l.measured_audio_seconds,
               l.ad_seconds, l.ad_minutes_per_hour, l.ad_slots, l.pre_roll_slots, l.mid_roll_slots, l.post_roll_slots,
               l.break_slots
        from marts.fct_ad_load_monthly_by_show as l join marts.dim_podcasts as p using (podcast_id)""")}
    expected = {}
    for tenant, feed, guid, published, duration, transcript in EPISODES:
        month = published.date().replace(day=1)
        entry = expected.setdefault((feed, month), {"published": 0, "measured": 0, "audio": 0, "ads": Decimal(0),
                                                    "slots": [], "any": False})
        entry["published"] += 1
        if transcript == "vtt":
            entry["any"] = True
            entry["measured"] += 1
            entry["audio"] += duration
            audio = audio_slots(tenant, guid)
            entry["ads"] += sum((seconds(s) or 0 for s in audio), Decimal(0))
            entry["slots"] += audio
    want = {key: (e["published"], e["measured"], e["audio"], e["ads"], per_hour(e["ads"], e["audio"]), len(e["slots"]),
                  *(sum(1 for s in e["slots"] if s["position"] == p) for p in ("pre", "mid", "post")),
                  sum(1 for s in e["slots"] if s["kind"] == "break"))
            for key, e in expected.items() if e["any"]}
    assert rows == want
    # July (no transcript) and September (an HTML transcript only) of show A are not measured.
    assert {m for f, m in rows if f == FEED_A} == {date(2026, 8, 1), date(2026, 10, 1)}
    # August of show A by hand: (122.2 + 60) s of ads over 1.5 h
    assert rows[(FEED_A, date(2026, 8, 1))][4] == Decimal("2.024")


def test_sponsor_mentions_are_new_in_their_first_month_and_churn_the_month_they_are_gone(world):
    url = world["url"]
    rows = {(r[0], r[1], r[2]): r[3:] for r in query(url, """
        select p.feed_url, m.sponsor_key, m.published_month, m.podcast_category, m.is_present, m.episodes, m.ad_slots,
               m.show_notes_mentions, m.first_month_seen, m.last_month_seen, m.is_new, m.is_churned, m.sponsor_id
        from marts.mart_sponsor_mentions_monthly as m join marts.dim_podcasts as p using (podcast_id)""")}
    jul, aug, sep, oct = (date(2026, m, 1) for m in (7, 8, 9, 10))
    a, b = CATEGORY[FEED_A], CATEGORY[FEED_B]
    assert rows == {
        # Northwind in show A: show notes in July (new), reads in August, gone in September (churned)
        (FEED_A, NW, jul): (a, True, 1, 0, 1, jul, aug, True, False, "sp-nw"),
        (FEED_A, NW, aug): (a, True, 2, 4, 1, jul, aug, False, False, "sp-nw"),
        (FEED_A, NW, sep): (a, False, 0, 0, 0, jul, aug, False, True, "sp-nw"),
        # Acme in show A: every month from August (a read, show notes, a read)
        (FEED_A, ACME, aug): (a, True, 1, 1, 0, aug, oct, True, False, "sp-ac"),
        (FEED_A, ACME, sep): (a, True, 1, 0, 1, aug, oct, False, False, "sp-ac"),
        (FEED_A, ACME, oct): (a, True, 1, 1, 0, aug, oct, False, False, "sp-ac"),
        (FEED_A, GLOBEX, oct): (a, True, 1, 1, 0, oct, oct, True, False, None),
        # Show B publishes nothing in September: Acme churns in October, its next month with episodes
        (FEED_B, ACME, aug): (b, True, 1, 1, 0, aug, aug, True, False, "sp-ac"),
        (FEED_B, "acmepod.com", aug): (b, True, 1, 1, 0, aug, aug, True, False, "sp-ac"),
        (FEED_B, "acme", aug): (b, True, 1, 1, 0, aug, aug, True, False, "sp-ac"),
        (FEED_B, ACME, oct): (b, False, 0, 0, 0, aug, aug, False, True, "sp-ac"),
        (FEED_B, "acmepod.com", oct): (b, False, 0, 0, 0, aug, aug, False, True, "sp-ac"),
        (FEED_B, "acme", oct): (b, False, 0, 0, 0, aug, aug, False, True, "sp-ac"),
        (FEED_C, NW, aug): (CATEGORY[FEED_C], True, 1, 1, 0, aug, aug, True, False, None),
    }


def test_a_placement_without_an_offset_takes_the_sponsors_slot_at_its_position(world):
    url = world["url"]
    rows = {(r[0], r[1]): r[2:] for r in query(url, """
        select placement_id, episode_guid_of, offset_source, ad_offset_seconds, ad_duration_seconds, ad_start_byte,
               delivery_threshold_bytes, enclosure_length_bytes, detected_ad_slot_id
        from (select p.*, e.guid as episode_guid_of from intermediate.int_placement_episodes as p
              join staging.stg_rss__episodes as e using (episode_id)) as placed""")}
    slot_id = {(s["guid"], s["slot_index"]): hashlib.md5(
        f"{s['tenant_id']}|{s['feed_url']}|{s['guid']}|{s['slot_index']}".encode()).hexdigest() for s in SLOTS}

    def at(offset, duration_seconds):  # the ad's first byte: ID3 allowance + offset at the file's bytes per second
        return ID3 + ceil(duration_seconds * BYTES_PER_SECOND * offset / duration_seconds)

    duration = {g: d for _, _, g, _, d, _ in EPISODES}
    # pl-1 (mid): Northwind's mid-roll read of a1, 1500.4 s to 1562.6 s, to the second
    start = at(1500, duration["a1"])
    assert rows[("pl-1", "a1")] == ("detected", 1500, 1563 - 1500, start, start, duration["a1"] * BYTES_PER_SECOND,
                                    slot_id[("a1", 1)])
    # pl-2 (post): a2 has no Northwind post-roll: its earliest Northwind read, in the first 25 % of the file
    size = duration["a2"] * BYTES_PER_SECOND
    assert rows[("pl-2", "a2")] == ("detected", 5, 30, at(5, duration["a2"]), ceil(size * 0.25), size, slot_id[("a2", 0)])
    # pl-3: no Northwind slot in a4 (Acme's and Globex's only); pl-6: a5's Northwind mention is in the
    # show notes, not the audio; pl-5: a dynamic ad is not in the transcript. Whole file.
    for placement, guid, length in (("pl-3", "a4", 60), ("pl-6", "a5", 60), ("pl-5", "a1", 30)):
        size = duration[guid] * BYTES_PER_SECOND
        assert rows[(placement, guid)] == ("unknown", None, length, None, size, size, None), placement
    # pl-4: typed in (offset 0), on every episode of show B
    for guid in ("b1", "b2"):
        size = duration[guid] * BYTES_PER_SECOND
        assert rows[("pl-4", guid)] == ("entered", 0, 30, ID3, ceil(size * 0.25), size, None)
    assert len(rows) == 7


def test_detected_keys_match_conversions_only_for_campaigns_naming_none(world):
    url = world["url"]
    keys = set(query(url, "select campaign_id, key_type, key_value, key_source from intermediate.int_campaign_match_keys"))
    assert keys == {
        ("cmp-ac", "promo_code", "acme10", "campaign"), ("cmp-ac", "vanity_url", "acmepod.com/deal", "campaign"),
        # Northwind's campaign names none: the code and URLs of its reads and show notes (not ACME10,
        # which Acme's campaign names); Acme's read code and URL stay out (it names its own)
        ("cmp-nw", "promo_code", "north15", "detected"),
        ("cmp-nw", "vanity_url", "northwindmattress.com/pod", "detected"),
        ("cmp-nw", "vanity_url", "northwindmattress.com/sleep", "detected"),
    }
    matched = dict((e, (c, m)) for e, c, m in query(
        url, "select event_id, deterministic_campaign_id, deterministic_match from intermediate.int_conversions"))
    assert matched == {"o-north15": ("cmp-nw", "promo_code"), "o-acme10": ("cmp-ac", "promo_code"),
                       "o-acmevip": (None, None)}


def test_a_tenant_reader_sees_only_its_rows_of_the_new_marts(world):
    url = world["url"]
    login = f"reader_{uuid.uuid4().hex[:8]}"
    marts = ("fct_ad_slots", "fct_ad_load_by_episode", "fct_ad_load_monthly_by_show", "mart_sponsor_mentions_monthly")
    with psycopg.connect(url, autocommit=True) as owner:
        owner.execute(sql.SQL("create role {} login in role podcast_tenant_reader").format(sql.Identifier(login)))
        owner.execute("insert into ops.tenant_readers (role_name, tenant_id) values (%s, %s)", (login, SOUTH))
        totals = {m: dict(owner.execute(sql.SQL("select tenant_id, count(*) from marts.{} group by 1").format(
            sql.Identifier(m))).fetchall()) for m in marts}
    try:
        with psycopg.connect(url, user=login) as reader:
            for mart in marts:
                seen = reader.execute(sql.SQL("select tenant_id, count(*) from marts.{} group by 1").format(
                    sql.Identifier(mart))).fetchall()
                assert totals[mart][NORTH] > 0 and totals[mart][SOUTH] > 0, mart
                assert seen == [(SOUTH, totals[mart][SOUTH])], mart
    finally:
        with psycopg.connect(url, autocommit=True) as owner:
            owner.execute("delete from ops.tenant_readers where role_name = %s", (login,))
            owner.execute(sql.SQL("drop role {}").format(sql.Identifier(login)))


def test_an_episode_detected_again_without_its_read_moves_the_placements_loaded_at(world):
    """The transcript of a1 is replaced and detected again: Northwind's reads are gone. Its slots
    go, the detector's record of a1 gets a new `detected_at`, and the placements on a1 lose their
    detected offset with a `loaded_at` at that moment, which the partition sensor reads to build
    the episode's days and the campaign's conversion days again. (Runs last: it changes the world.)"""
    url = world["url"]
    placed = "select placement_id, offset_source, loaded_at from intermediate.int_placement_episodes as p " \
             "join staging.stg_rss__episodes as e using (episode_id) where e.guid = 'a1' order by 1"
    before = {p: (source, at) for p, source, at in query(url, placed)}
    assert before["pl-1"][0] == "detected"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("delete from raw.ad_slots where guid = 'a1'")
        [(detected_at,)] = conn.execute(
            "insert into ops.ad_detection_inputs (tenant_id, feed_url, guid, input_hash, detector_version, slot_count) "
            "values (%s, %s, 'a1', 'replaced', 'rules-1', 0) returning detected_at", (NORTH, FEED_A)).fetchall()
    rebuilt = run_dbt(url, str(world["target"]), "run", "--select", "+int_placement_episodes")
    assert rebuilt.returncode == 0, rebuilt.stdout[-4000:]
    after = {p: (source, at) for p, source, at in query(url, placed)}
    assert set(after) == set(before) == {"pl-1", "pl-5"}
    assert after["pl-1"][0] == "unknown" and after["pl-5"][0] == before["pl-5"][0] == "unknown"
    for placement in after:  # every placement on the episode, with an offset detected before or not
        assert before[placement][1] < detected_at == after[placement][1], placement

"""The ad-slot detector on transcripts written here, one behaviour each, and the evaluation."""

from __future__ import annotations

from assets.processing.ad_detection import (
    DETECTOR_VERSION, Chapter, Cue, EpisodeDocuments, RuleDetector, normalise, notes_mentions, registrable,
)
from assets.processing.ad_evaluation import evaluate


class Script:
    """Cues back to back, 5 s each unless told."""

    def __init__(self) -> None:
        self.cues: list[Cue] = []
        self.at = 0.0

    def say(self, text: str, speaker: str | None = "Ada", seconds: float = 5.0) -> float:
        start = self.at
        self.cues.append(Cue(start, start + seconds, speaker, text))
        self.at += seconds
        return start

    def talk(self, n: int) -> None:
        for i in range(n):
            self.say(f"So the river story continues, part {i}, and the maps were wrong.", ("Bo", "Ada")[i % 2])


def sponsor_slots(episode: EpisodeDocuments):
    return [s for s in RuleDetector().detect(episode) if s.kind in ("host_read", "produced")]


def test_spoken_urls_and_domains_are_normalised():
    assert normalise("Go to Northwind Mattress dot com slash hour now") == "go to northwind mattress.com/hour now"
    assert normalise("visit acme dot co dot uk") == "visit acme.co.uk"
    assert registrable("www.shop.acme.co.uk") == "acme.co.uk"
    assert registrable("WWW.Ledgerly.com") == "ledgerly.com"


def test_a_host_read_with_url_and_code_is_one_slot_with_its_sponsor_and_bounds():
    s = Script()
    s.talk(30)
    start = s.say("This episode is brought to you by Northwind Mattress.")
    s.say("I've slept on my Northwind for a year and honestly my back has never been better.")
    s.say("Go to northwindmattress dot com slash hour and use code HOUR20 for twenty percent off.")
    end = s.say("That's northwindmattress.com/hour, code HOUR20.") + 5
    s.say("Anyway, back to the show. Where were we with the maps?")
    s.talk(30)
    [slot] = sponsor_slots(EpisodeDocuments(cues=s.cues, duration=s.at))
    assert (slot.start, slot.end) == (start, end)
    assert (slot.brand, slot.domain, slot.vanity_url, slot.promo_code) == (
        "Northwind Mattress", "northwindmattress.com", "northwindmattress.com/hour", "HOUR20")
    assert (slot.kind, slot.position) == ("host_read", "mid")
    assert "brought to you by" in slot.evidence and slot.sources == ["transcript"]


def test_a_produced_spot_by_another_voice_stops_where_the_voice_changes():
    s = Script()
    s.say("We'll be right back after this.")
    start = s.say("Introducing Copperline VPN: private browsing on every device you own.", "Announcer", 8)
    s.say("Visit copperlinevpn.com today. Terms apply.", "Announcer", 8)
    s.say("And we're back with more on the maps.", "Ada")
    s.talk(40)
    [slot] = sponsor_slots(EpisodeDocuments(cues=s.cues, duration=s.at))
    assert (slot.start, slot.end, slot.kind, slot.position) == (start, start + 16, "produced", "pre")
    assert (slot.brand, slot.domain, slot.vanity_url) == ("Copperline VPN", "copperlinevpn.com", None)


def test_two_spots_back_to_back_are_two_slots():
    s = Script()
    s.talk(20)
    first = s.say("Thanks to our sponsor Brightleaf Coffee, roasted the day it ships.")
    s.say("Go to brightleafcoffee.com/hour for your first bag free.")
    second = s.say("This episode is also supported by Ledgerly, bookkeeping for people who hate bookkeeping.")
    s.say("Head to ledgerly.com and use promo code MAPS10.")
    s.say("Alright, back to the show.")
    s.talk(20)
    slots = sponsor_slots(EpisodeDocuments(cues=s.cues, duration=s.at))
    assert [(x.domain, x.start, x.end) for x in slots] == [
        ("brightleafcoffee.com", first, first + 10), ("ledgerly.com", second, second + 10)]
    assert slots[1].promo_code == "MAPS10"


def test_hard_negatives_make_no_slot():
    s = Script()
    s.talk(10)
    s.say("This is not a sponsor, but I love my Tandem bike, go to tandembikes.com and look at them.", "Bo")
    s.say("Nobody pays us for this, by the way.", "Bo")
    s.talk(5)
    s.say("Orbit Banking reported earnings this week and orbitbanking.com crashed for an hour.", "Ada")
    s.talk(5)
    s.say("Support the show at patreon.com/mapshour and grab our merch at mapshour.shop.", "Ada")
    s.say("Our newsletter is at mapshour.com, use code FRIENDS for nothing at all.", "Ada")
    s.talk(10)
    own = frozenset({"mapshour.com", "mapshour.shop"})
    assert sponsor_slots(EpisodeDocuments(cues=s.cues, duration=s.at, own_domains=own)) == []


def test_post_roll_position_uses_the_duration():
    s = Script()
    s.talk(40)
    start = s.say("Today's sponsor is Parcel Meals: dinner in a box, twelve minutes to the table.")
    s.say("Get sixty percent off your first box at parcelmeals.com/hour with code HOUR60.")
    [slot] = sponsor_slots(EpisodeDocuments(cues=s.cues, duration=s.at + 20))
    assert (slot.start, slot.position, slot.promo_code) == (start, "post", "HOUR60")


def test_chapters_confirm_a_read_and_an_unnamed_ad_chapter_is_a_break():
    s = Script()
    s.talk(20)
    start = s.say("This episode is brought to you by Vitalis Labs.")
    s.say("Go to vitalislabs.com/hour for fifteen percent off.")
    s.say("Now, back to the show.")
    s.talk(20)
    chapters = [Chapter(0, None, "Intro"), Chapter(start, None, "Sponsor: Vitalis Labs"),
                Chapter(start + 10, None, "The maps"), Chapter(150, None, "Ad break"), Chapter(180, None, "Outro")]
    slots = RuleDetector().detect(EpisodeDocuments(cues=s.cues, chapters=chapters, duration=s.at))
    read = next(x for x in slots if x.kind == "host_read")
    assert read.sources == ["transcript", "chapters"] and read.confidence > 0.9
    brk = next(x for x in slots if x.kind == "break")
    assert (brk.start, brk.end, brk.brand, brk.domain) == (150, 180, None, None)


def test_a_transcript_without_timings_gets_estimated_times_and_chapters_correct_them():
    words = "so the maps were wrong again " * 20
    cues = [Cue(None, None, "Ada", words), Cue(None, None, "Ada", "This episode is brought to you by Huckle Razors."),
            Cue(None, None, "Ada", "Go to huckle dot com slash hour for a free starter kit."),
            Cue(None, None, "Ada", "Anyway, back to the show. " + words)]
    [estimated] = sponsor_slots(EpisodeDocuments(cues=cues, duration=600))
    assert "estimated_timing" in estimated.sources and 0 < estimated.start < estimated.end < 600
    assert (estimated.domain, estimated.vanity_url) == ("huckle.com", "huckle.com/hour")
    chapters = [Chapter(0, None, "Talk"), Chapter(250, 300, "Ad: Huckle Razors"), Chapter(300, None, "More talk")]
    [placed] = sponsor_slots(EpisodeDocuments(cues=cues, chapters=chapters, duration=600))
    assert (placed.start, placed.end, placed.position) == (250, 300, "mid")


def test_show_notes_name_sponsors_fill_codes_and_ignore_images_and_own_links():
    notes = ("We talk maps. Thanks to our sponsors: Lumen Glasses — lumenglasses.com/hour, code HOUR15; "
             "Kettle & Co — kettleandco.com. Support us on patreon.com/mapshour. "
             "Image: cdn.mapshour.com/sponsored-banner.png")
    mentions = notes_mentions(notes, frozenset({"mapshour.com"}))
    assert [(m.domain, m.vanity_url, m.promo_code, m.kind) for m in mentions] == [
        ("lumenglasses.com", "lumenglasses.com/hour", "HOUR15", "show_notes"),
        ("kettleandco.com", None, None, "show_notes")]
    s = Script()
    s.talk(20)
    s.say("Thanks to our sponsor Lumen Glasses, blue light done right.")
    s.say("Go to lumenglasses.com/hour and see the frames.")
    s.say("Anyway, back to it.")
    slots = RuleDetector().detect(EpisodeDocuments(cues=s.cues, show_notes=notes, duration=s.at,
                                                   own_domains=frozenset({"mapshour.com"})))
    read = next(x for x in slots if x.kind == "host_read")
    assert read.promo_code == "HOUR15" and "show_notes" in read.sources  # the code only the notes give
    assert [x.domain for x in slots if x.kind == "show_notes"] == ["kettleandco.com"]  # not read on air


def test_evaluation_counts_overlap_with_the_right_sponsor_once():
    truth = [{"episode": 1, "start": 100, "end": 160, "domain": "a.com", "brand": "A"},
             {"episode": 1, "start": 600, "end": 630, "domain": "b.com", "brand": "B"},
             {"episode": 2, "start": 0, "end": 30, "domain": "c.com", "brand": "C"}]
    detected = [{"episode": 1, "start": 110, "end": 170, "domain": "a.com", "kind": "host_read"},   # match, within 15 s
                {"episode": 1, "start": 120, "end": 150, "domain": "a.com", "kind": "host_read"},   # duplicate: unmatched
                {"episode": 1, "start": 600, "end": 660, "domain": "x.com", "kind": "host_read"},   # wrong sponsor
                {"episode": 2, "start": 20, "end": 60, "domain": "c.com", "kind": "produced"},      # match, end 30 s off
                {"episode": 2, "start": 100, "end": 160, "domain": None, "kind": "break"},           # not a sponsor slot
                {"episode": 2, "start": None, "end": None, "domain": "c.com", "kind": "show_notes"}]
    result = evaluate(truth, detected)
    assert (result.truth_slots, result.detected_slots, result.matched_slots, result.boundaries_within) == (3, 4, 2, 1)
    assert (result.precision, result.recall, result.boundary_share) == (0.5, 2 / 3, 0.5)
    assert not result.passes(0.95, 0.85, 0.9) and result.passes(0.5, 0.6, 0.5)


def test_the_real_podcasting_examples_hold_no_sponsor_read():
    """The Podcasting 2.0 example transcripts and chapters (read in place under ../shared) talk about
    podcasting and name topics, donations and songs: none is an ad, and the detector finds none."""
    from assets.ingestion.transcript_parse import parse_chapters, parse_transcript
    from tests.conftest import SHARED

    real = SHARED / "realdata" / "transcripts_chapters"
    types = {".vtt": "text/vtt", ".srt": "application/x-subrip", ".html": "text/html"}
    seen = {"transcripts": 0, "chapters": 0, "cues": 0}
    for path in sorted(real.iterdir()):
        if path.suffix == ".md":
            continue
        body = path.read_bytes()
        if b'"chapters"' in body:
            chapters = [Chapter(c.start_ms / 1000, None, c.title, c.link_url, c.toc)
                        for c in parse_chapters(body, "application/json+chapters").chapters]
            episode = EpisodeDocuments(chapters=chapters, duration=7200)
            seen["chapters"] += 1
        else:
            parsed = parse_transcript(body, None, types.get(path.suffix, "application/json"))
            cues = [Cue(c.start_ms / 1000 if c.start_ms is not None else None,
                        c.end_ms / 1000 if c.end_ms is not None else None, c.speaker, c.body) for c in parsed.cues]
            episode = EpisodeDocuments(cues=cues)
            seen["transcripts"] += 1
            seen["cues"] += len(cues)
        assert RuleDetector().detect(episode) == [], path.name
    assert seen["transcripts"] == 4 and seen["chapters"] == 2 and seen["cues"] > 200


def test_a_read_going_on_with_so_stays_one_slot_and_a_transition_ends_it():
    s = Script()
    s.talk(20)
    start = s.say("This episode is brought to you by Tandem Bikes.")
    s.say("So head over to tandembikes.com/maps and use code MAPS15.")
    end = s.say("Okay, that's tandembikes.com/maps, code MAPS15.") + 5
    s.say("So, picking up where we left off with the maps.")
    s.say("Anyway, tandembikes.com has nothing to do with maps.")
    s.talk(20)
    [slot] = sponsor_slots(EpisodeDocuments(cues=s.cues, duration=s.at))
    assert (slot.start, slot.end, slot.promo_code) == (start, end, "MAPS15")


def test_detection_reads_the_stored_documents_and_prefers_a_timed_transcript(fresh_db):
    """From the raw tables: an episode's timed transcript (not its untimed HTML), its chapters and
    show notes; one slot per read, replaced as a whole when the episode is detected again."""
    import psycopg

    from assets.processing.ad_slots import detect_ad_slots

    feed, guid = "https://maps.example.com/feed.xml", "ep-1"
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("insert into raw.rss_podcasts (tenant_id, feed_url, title, link, content_hash) values "
                     "('t', %s, 'The Maps Hour', 'https://mapshour.com', 'h')", (feed,))
        conn.execute("insert into raw.rss_episodes (tenant_id, feed_url, guid, guid_source, duration_seconds, "
                     "description_text, content_hash) values ('t', %s, %s, 'guid', 300, "
                     "'Thanks to our sponsors: Lumen Glasses, lumenglasses.com/hour, code HOUR15.', 'h')", (feed, guid))
        for url, fmt, timed in (("https://maps.example.com/1.html", "html", False),
                                ("https://maps.example.com/1.vtt", "vtt", True)):
            conn.execute("insert into raw.transcripts (tenant_id, feed_url, guid, url, format, bytes, content_sha256, "
                         "cue_count, has_timings, fetched_at) values ('t', %s, %s, %s, %s, 1, %s, 4, %s, now())",
                         (feed, guid, url, fmt, fmt, timed))
            lines = ["Welcome back to the maps.", "This episode is brought to you by Lumen Glasses.",
                     "Go to lumenglasses.com/hour for your frames.", "Anyway, back to the show."]
            for n, text in enumerate(lines):
                conn.execute("insert into raw.transcript_cues values ('t', %s, %s, %s, %s, %s, %s, 'Ada', %s)",
                             (feed, guid, url, n, n * 10 + 100 if timed else None, n * 10 + 110 if timed else None, text))
        conn.execute("insert into raw.chapters_documents (tenant_id, feed_url, guid, url, bytes, content_sha256, "
                     "chapter_count, fetched_at) values ('t', %s, %s, 'https://maps.example.com/1.json', 1, 'c', 2, now())",
                     (feed, guid))
        conn.execute("insert into raw.chapters values ('t', %s, %s, 'https://maps.example.com/1.json', 0, 110, 130, "
                     "'Sponsor: Lumen Glasses', null, null, null), ('t', %s, %s, 'https://maps.example.com/1.json', 1, "
                     "130, null, 'Maps', null, null, null)", (feed, guid, feed, guid))
        first = detect_ad_slots(conn, "run-1")
        rows = conn.execute("select slot_index, start_seconds, end_seconds, kind, position, sponsor_domain, vanity_url, "
                            "promo_code, evidence_sources, detector_version, _batch_id from raw.ad_slots").fetchall()
        again = detect_ad_slots(conn, "run-2")
        redone = detect_ad_slots(conn, "run-3", redetect=True)
        batches = conn.execute("select distinct _batch_id from raw.ad_slots").fetchall()
    assert (first.episodes, again.episodes, redone.episodes) == (1, 0, 1)
    assert rows == [(0, 110, 130, "host_read", "mid", "lumenglasses.com", "lumenglasses.com/hour", "HOUR15",
                     ["transcript", "chapters", "show_notes"], DETECTOR_VERSION, "run-1")]
    assert batches == [("run-3",)]


def test_evaluations_are_kept_for_the_ops_history_and_the_latest_always(fresh_db):
    import psycopg

    from pipelines.checks.ad_detection import evaluate_against_truth

    truth = {"episodes": [["t", "f", "g"]],
             "slots": [{"tenant_id": "t", "feed_url": "f", "guid": "g", "start_seconds": 0, "end_seconds": 30,
                        "domain": "a.com", "brand": "A"}]}
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("insert into ops.ad_detection_evaluations (evaluated_at, tenant_id, detector_version, truth_slots, "
                     "detected_slots, matched_slots) values (now() - interval '400 days', 't', 'old', 1, 0, 0), "
                     "(now() - interval '400 days', 'gone', 'old', 1, 0, 0), (now() - interval '2 days', 't', 'x', 1, 0, 0)")
        [result] = evaluate_against_truth(conn, truth, "run").values()
        kept = conn.execute("select tenant_id, detector_version from ops.ad_detection_evaluations "
                            "order by evaluated_at").fetchall()
    assert (result.truth_slots, result.detected_slots, result.recall) == (1, 0, 0.0)
    # the tenant's evaluation of 400 days ago goes; another tenant's latest stays, however old
    assert kept == [("gone", "old"), ("t", "x"), ("t", DETECTOR_VERSION)]

"""The pure feed parser: scalar parsers, hostile documents, and every real feed we have."""

from pathlib import Path

import pytest

from assets.ingestion.rss_parse import (
    InvalidDuration,
    html_to_text,
    parse_duration,
    parse_explicit,
    parse_feed,
    parse_positive_int,
)
from tests.conftest import SHARED


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        ("3600", 3600), ("3600.4", 3600), ("3600.5", 3601), ("1:00:00", 3600), ("01:02:03", 3723),
        ("60:00", 3600), ("90:05", 5405), ("5:07", 307), ("0:00:59", 59), ("1h 2m 3s", 3723),
        ("45 min", 2700), (" 12 ", 12), ("", None), (None, None), ("about an hour", None),
        ("1:75:00", None), ("10:99", None),
    ],
)
def test_parse_duration(raw, seconds):
    assert parse_duration(raw) == seconds


def test_negative_duration_is_an_error():
    with pytest.raises(InvalidDuration):
        parse_duration("-120")


@pytest.mark.parametrize(
    ("raw", "flag"),
    [("yes", True), ("Explicit", True), ("true", True), ("no", False), ("clean", False),
     ("FALSE", False), ("maybe", None), (None, None)],
)
def test_parse_explicit(raw, flag):
    assert parse_explicit(raw) == flag


def test_positive_int_rejects_garbage():
    assert [parse_positive_int(v) for v in ("3", " 12 ", "0", "-1", "1.5", "n/a", None)] == [3, 12, None, None, None, None, None]


def test_html_to_text_drops_scripts_and_styles():
    assert html_to_text("<p>Hi</p><script>alert('x')</script><style>p{}</style><p>there</p>") == "Hi there"


def test_html_to_text_keeps_words_apart_and_decodes_entities():
    html = '<p>First line.</p><p>Second &amp; <a href="x">link</a>.<br/>Caf&eacute; &#8217;s</p>'
    assert html_to_text(html) == "First line. Second & link. Café ’s"


def _rss(items: str, head: str = "") -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>' + head +
        '<rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd" '
        'xmlns:podcast="https://podcastindex.org/namespace/1.0"><channel><title>T</title>'
        f"{items}</channel></rss>"
    ).encode()


ENCLOSURE = '<enclosure url="https://cdn.example.com/a.mp3" length="1000" type="audio/mpeg"/>'


def test_entity_declarations_are_refused_before_parsing():
    bomb = _rss("<item><title>&c;</title></item>", '<!DOCTYPE rss [<!ENTITY a "aaaa"><!ENTITY c "&a;&a;">]>')
    result = parse_feed(bomb, "https://example.com/f")
    assert result.feed_error is not None and result.feed_error.reason_code == "xml_entities_forbidden"
    assert result.episodes == []


def test_html_error_page_is_not_a_feed():
    result = parse_feed(b"<html><body><h1>502 Bad Gateway</h1></body></html>", "https://e/f", "text/html")
    assert result.feed_error.reason_code == "not_a_feed"


def test_truncated_document_is_malformed():
    body = _rss(f"<item><title>A</title><guid>a</guid>{ENCLOSURE}</item>" * 3)[:-40]
    assert parse_feed(body, "https://e/f").feed_error.reason_code == "malformed_xml"


def test_item_rules_and_duplicate_guids():
    items = (
        f"<item><title>ok</title><guid>g1</guid>{ENCLOSURE}<itunes:duration>1:00</itunes:duration></item>"
        f"<item><title>dup</title><guid>g1</guid>{ENCLOSURE}</item>"
        "<item><title>no enclosure</title><guid>g2</guid></item>"
        '<item><title>ftp</title><guid>g3</guid><enclosure url="ftp://x/a.mp3" type="audio/mpeg"/></item>'
        f"<item><guid>g4</guid>{ENCLOSURE}</item>"
        f"<item><title>neg</title><guid>g5</guid>{ENCLOSURE}<itunes:duration>-5</itunes:duration></item>"
        f"<item><title>no guid</title>{ENCLOSURE.replace('a.mp3', 'b.mp3')}</item>"
    )
    result = parse_feed(_rss(items), "https://e/f")
    assert result.feed_error is None
    assert [(e["guid"], e["guid_source"], e["duration_seconds"]) for e in result.episodes] == [
        ("g1", "guid", 60), ("https://cdn.example.com/b.mp3", "enclosure_url", None),
    ]
    assert [(r.guid, r.reason_code) for r in result.rejected] == [
        ("g1", "duplicate_guid"), ("g2", "missing_enclosure"), ("g3", "invalid_enclosure_url"),
        ("g4", "missing_title"), ("g5", "invalid_duration"),
    ]
    assert all(r.payload for r in result.rejected)


def test_podcasting20_tags_are_kept_whole():
    items = (
        f"<item><title>A</title><guid>a</guid>{ENCLOSURE}"
        '<podcast:season name="Year one">2</podcast:season><podcast:episode>7</podcast:episode>'
        '<podcast:transcript url="https://x/a.vtt" type="text/vtt" language="en"/>'
        '<podcast:transcript url="https://x/a.json" type="application/json"/>'
        '<podcast:chapters url="https://x/c.json" type="application/json+chapters"/>'
        "<itunes:explicit>true</itunes:explicit></item>"
    )
    episode = parse_feed(_rss(items), "https://e/f").episodes[0]
    assert (episode["season_number"], episode["episode_number"]) == (2, 7)
    assert [t["url"] for t in episode["transcripts"]] == ["https://x/a.vtt", "https://x/a.json"]
    assert episode["chapters_url"] == "https://x/c.json"
    assert episode["explicit_raw"] == "true"


def test_wrong_declared_encoding_is_recovered():
    body = _rss(f"<item><title>Café über</title><guid>a</guid>{ENCLOSURE}</item>").decode().encode("windows-1252")
    result = parse_feed(body, "https://e/f")
    assert result.feed_error is None
    assert result.episodes[0]["title"] == "Café über"


FEED_DIRS = ("feeds", "feeds_edgecases", "feeds_malformed")


def _real_feeds() -> list[Path]:
    files = []
    for folder in FEED_DIRS:
        files += sorted(p for p in (SHARED / "realdata" / folder).glob("*") if p.suffix in (".xml", ".rss"))
    return files


def test_real_feed_corpus_is_present():
    assert len(_real_feeds()) >= 40, "../shared/realdata feeds are expected beside the repository"


@pytest.mark.parametrize("path", _real_feeds(), ids=lambda p: p.name)
def test_every_real_feed_parses_without_crashing(path, record_property):
    result = parse_feed(path.read_bytes(), "https://feeds.example.com/" + path.name)
    accepted = len(result.episodes)
    quarantined = [r.reason_code for r in result.rejected]
    record_property("accepted", accepted)
    record_property("quarantined", quarantined)
    print(f"{path.name}: accepted={accepted} quarantined={quarantined} feed_error={result.feed_error and result.feed_error.reason_code}")
    if result.feed_error is not None:
        assert result.feed_error.reason_code in {"malformed_xml", "not_a_feed"}
        assert result.episodes == [] and result.feed_error.detail
    else:
        assert result.podcast is not None and result.podcast["episode_count"] == accepted
        for episode in result.episodes:
            assert episode["guid"] and episode["enclosure_url"].startswith(("http://", "https://"))
            assert episode["duration_seconds"] is None or episode["duration_seconds"] >= 0
        for rejection in result.rejected:
            assert rejection.reason_code and rejection.detail and rejection.item_key


def test_known_real_feeds_give_known_results():
    feeds = SHARED / "realdata" / "feeds"
    planet = parse_feed((feeds / "Tombarr__podcast-feed-parser__planet-money.xml").read_bytes(), "https://e/pm")
    assert len(planet.episodes) == 355 and not planet.rejected
    example = parse_feed((feeds / "Podcastindex-org__podcast-namespace__example.xml").read_bytes(), "https://e/x")
    assert example.podcast["podcast_guid"] == "y0ur-gu1d-g035-h3r3"
    assert len(example.episodes[0]["transcripts"]) == 2
    edge = SHARED / "realdata" / "feeds_edgecases"
    spaced = parse_feed((edge / "gpodder__podcastparser__leading_space_url.rss").read_bytes(), "https://e/s")
    assert spaced.episodes and not spaced.episodes[0]["enclosure_url"].startswith(" ")


IDENTITY_FIELDS = (
    "guid", "guid_source", "title", "itunes_title", "published_at", "duration_seconds", "explicit_raw",
    "itunes_episode_type", "season_number", "episode_number", "enclosure_url", "enclosure_length",
    "enclosure_type", "image_url", "transcripts", "chapters_url",
)


def test_fast_path_agrees_with_feedparser_on_real_feeds():
    """Well-formed RSS takes the expat-only path; on every real feed where it applies, the
    records (and rejections) agree with the feedparser path on every identity field. The
    description may differ by design (the fast path prefers <description> to itunes:summary)."""
    from assets.ingestion.rss_parse import capture_bytes

    compared = 0
    for path in _real_feeds():
        body = path.read_bytes()
        capture = capture_bytes(body.lstrip())
        if capture is None or capture.root != "rss":
            continue
        fast = parse_feed(body, "https://e/" + path.name)
        slow = parse_feed(body, "https://e/" + path.name, fast_path=False)
        assert (fast.feed_error is None) == (slow.feed_error is None), path.name
        assert [(r.guid, r.reason_code) for r in fast.rejected] == [(r.guid, r.reason_code) for r in slow.rejected], path.name
        assert len(fast.episodes) == len(slow.episodes), path.name
        for a, b in zip(fast.episodes, slow.episodes):
            assert {k: a[k] for k in IDENTITY_FIELDS} == {k: b[k] for k in IDENTITY_FIELDS}, path.name
            compared += 1
    assert compared > 900


# --- recovery of XML that is not well-formed (the default) -------------------------------------

BROKEN_ITEM = (
    "<item><title>Caf&eacute; &amp; R&D&nbsp;live</title><guid>b1</guid>"
    '<enclosure url="https://cdn.example.com/b.mp3?a=1&b=2" length="3000000000" type="audio/mpeg"/>'
    "<itunes:explicit>Yes</itunes:explicit><itunes:image href=\"https://img.example.com/b.jpg\"/>"
    "<itunes:season>2</itunes:season><itunes:episode>14</itunes:episode>"
    '<podcast:transcript url="https://x/b.vtt" type="text/vtt"/><podcast:transcript url="https://x/b.srt" type="application/srt"/>'
    '<podcast:chapters url="https://x/b.json" type="application/json+chapters"/></item>'
)


def test_undefined_entities_are_recovered_with_itunes_and_podcasting20_fields():
    """feedparser alone drops `Yes` (it only knows lowercase `yes`), the item image, season and
    episode of a broken feed; the tolerant capture keeps them and marks the records degraded."""
    result = parse_feed(_rss(BROKEN_ITEM + f"<item><title>ok</title><guid>b2</guid>{ENCLOSURE}</item>"), "https://e/f")
    assert result.feed_error is None and result.degraded
    assert any("undefined entity" in w for w in result.warnings)
    first = result.episodes[0]
    assert {k: first[k] for k in ("title", "explicit_raw", "image_url", "season_number", "episode_number",
                                  "chapters_url", "enclosure_url", "enclosure_length", "parse_degraded")} == {
        "title": "Café & R&D live", "explicit_raw": "Yes", "image_url": "https://img.example.com/b.jpg",
        "season_number": 2, "episode_number": 14, "chapters_url": "https://x/b.json",
        "enclosure_url": "https://cdn.example.com/b.mp3?a=1&b=2", "enclosure_length": 3_000_000_000,
        "parse_degraded": True,
    }
    assert [t["url"] for t in first["transcripts"]] == ["https://x/b.vtt", "https://x/b.srt"]
    assert parse_explicit(first["explicit_raw"]) is True
    assert [e["guid"] for e in result.episodes] == ["b1", "b2"]
    assert result.podcast["parse_degraded"] is True and result.podcast["parse_warnings"] == result.warnings


def test_strict_xml_quarantines_what_recovery_keeps():
    result = parse_feed(_rss(BROKEN_ITEM), "https://e/f", strict_xml=True)
    assert result.feed_error.reason_code == "malformed_xml" and result.episodes == []


def test_well_formed_feeds_are_not_degraded():
    result = parse_feed(_rss(f"<item><title>A</title><guid>a</guid>{ENCLOSURE}</item>"), "https://e/f")
    assert not result.degraded and result.episodes[0]["parse_degraded"] is False


@pytest.mark.parametrize("strict_xml", [False, True])
def test_entity_declarations_are_refused_in_recovery_too(strict_xml):
    external = _rss("<item><title>&x;</title><guid>a</guid></item>",
                    '<!DOCTYPE rss [<!ENTITY x SYSTEM "file:///etc/passwd">]>')
    result = parse_feed(external, "https://e/f", strict_xml=strict_xml)
    assert result.feed_error.reason_code == "xml_entities_forbidden" and result.episodes == []


def test_an_external_dtd_is_never_read():
    """A reference to an entity of an external DTD is skipped: expat has no handler to read the
    DTD, so nothing is fetched."""
    item = f"<item><title>A &ext; B</title><guid>a</guid>{ENCLOSURE}</item>"
    body = _rss(item, '<!DOCTYPE rss SYSTEM "http://127.0.0.1:9/evil.dtd">')
    result = parse_feed(body, "https://e/f")
    assert result.feed_error is None and result.episodes[0]["title"] == "A B"


def test_real_malformed_feeds_are_recovered():
    """PHP warnings printed before the feed (canal: a UTF-8 WordPress feed) and a feed missing its
    <channel> element (bc-sample-bad) give their items, decoded as declared, marked degraded."""
    folder = SHARED / "realdata" / "feeds_malformed"
    canal = parse_feed((folder / "Tombarr__podcast-feed-parser__canal.xml").read_bytes(), "https://e/canal")
    assert canal.feed_error is None and canal.degraded and len(canal.episodes) == 8 and not canal.rejected
    assert canal.episodes[0]["title"] == "#7 – Gerenciamento de Projetos – Muito mais que uma certificação"
    assert {e["explicit_raw"] for e in canal.episodes} == {"clean"}
    assert all(e["parse_degraded"] and e["enclosure_length"] > 0 for e in canal.episodes)
    bad = parse_feed((folder / "Tombarr__podcast-feed-parser__bc-sample-bad.xml").read_bytes(), "https://e/bc")
    assert bad.feed_error is None and bad.degraded and len(bad.episodes) == 4
    assert bad.episodes[0]["explicit_raw"] == "no" and bad.episodes[0]["image_url"].endswith(".png")
    assert [parse_feed(p.read_bytes(), "https://e/x", strict_xml=True).feed_error.reason_code
            for p in sorted(folder.glob("*.xml"))] == ["malformed_xml", "malformed_xml"]


@pytest.mark.parametrize(("raw", "length"), [
    ("3000000000", 3_000_000_000), (str(2**31), 2**31), ("28882931", 28_882_931), ("0", None), ("", None),
    ("-5", None), ("12.5", None), (str(2**63), None),
])
def test_enclosure_length_is_bigint(raw, length):
    item = f'<item><title>A</title><guid>a</guid><enclosure url="https://c/a.mp3" length="{raw}" type="audio/mpeg"/></item>'
    assert parse_feed(_rss(item), "https://e/f").episodes[0]["enclosure_length"] == length


# --- hostile encodings and values (issue 15) ---------------------------------------------------

BOMB = '<!DOCTYPE rss [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'


@pytest.mark.parametrize(("codec", "declared"), [
    ("utf-32", "utf-32"), ("utf-32-le", "utf-32"), ("utf-32-be", "utf-32"), ("utf-16", "utf-16"),
    ("utf-16-le", "utf-16"), ("utf-16-be", "utf-16"), ("utf-7", "utf-7"), ("cp037", "cp037"),
])
def test_entity_declarations_are_refused_in_every_encoding(codec, declared):
    text = _rss(f"<item><title>&b;</title>{ENCLOSURE}</item>", BOMB).decode().replace('encoding="utf-8"', f'encoding="{declared}"')
    result = parse_feed(text.encode(codec), "https://example.com/f", "application/rss+xml")
    assert result.feed_error is not None and result.feed_error.reason_code == "xml_entities_forbidden"


def test_a_utf8_feed_declared_latin1_is_read_as_utf8_with_a_warning():
    body = _rss(f"<item><guid>g</guid><title>Caf\u00e9 \u2013 \u00fcber</title>{ENCLOSURE}</item>").replace(b"utf-8", b"ISO-8859-1")
    for content_type in (None, "application/rss+xml; charset=iso-8859-1"):
        result = parse_feed(body, "https://example.com/f", content_type)
        assert result.episodes[0]["title"] == "Caf\u00e9 \u2013 \u00fcber"
        assert result.warnings == ["declared iso-8859-1 but the bytes are UTF-8: read as UTF-8"]


def test_real_latin1_is_left_to_its_declaration():
    body = _rss(f"<item><guid>g</guid><title>Caf\u00e9</title>{ENCLOSURE}</item>").decode()
    result = parse_feed(body.replace("utf-8", "iso-8859-1").encode("latin-1"), "https://example.com/f")
    assert result.episodes[0]["title"] == "Caf\u00e9" and result.warnings == []


def test_stray_bytes_in_utf8_become_replacement_characters_with_a_warning():
    body = _rss(f"<item><guid>g</guid><title>Caf\u00e9 \x01X</title>{ENCLOSURE}</item>").replace(b"\x01X", b"\xc3\x28")
    result = parse_feed(body, "https://example.com/f")
    assert result.episodes[0]["title"] == "Caf\u00e9 \ufffd("
    assert result.warnings == ["declared UTF-8 but 1 byte sequence(s) are not UTF-8: replaced with U+FFFD"]


def test_windows_1252_declared_utf8_is_read_as_windows_1252():
    body = _rss(f"<item><guid>g</guid><title>\u201cCaf\u00e9\u201d</title>{ENCLOSURE}</item>").decode().encode("cp1252")
    result = parse_feed(body, "https://example.com/f")
    assert result.episodes[0]["title"] == "\u201cCaf\u00e9\u201d"
    assert result.warnings == ["declared UTF-8 but the bytes are not UTF-8: read as windows-1252"]


@pytest.mark.parametrize("url", ["javascript:alert(1)", " JavaScript:alert(1)", "\tjavascript:alert(1)",
                                 "data:text/html,x", "vbscript:msgbox", "file:///etc/passwd", "http://[::1"])
def test_non_http_urls_are_dropped_on_both_paths(url):
    escaped = url.replace("&", "&amp;").replace("<", "&lt;")
    items = (f'<item><guid>g</guid><title>T</title><link>{escaped}</link><itunes:image href="{escaped}"/>'
             f'<podcast:chapters url="{escaped}" type="application/json"/>{ENCLOSURE}</item>')
    for fast_path in (True, False):
        result = parse_feed(_rss(items), "https://example.com/f", fast_path=fast_path)
        episode = result.episodes[0]
        assert not episode["link"] and (episode["image_url"], episode["chapters_url"]) == (None, None)
        assert len([w for w in result.warnings if "dropped" in w]) >= 2  # feedparser empties a link it cannot resolve


def test_relative_and_http_urls_are_kept():
    items = f'<item><guid>g</guid><title>T</title><link>/ep/1</link><itunes:image href="https://e.com/i.jpg"/>{ENCLOSURE}</item>'
    episode = parse_feed(_rss(items), "https://example.com/f").episodes[0]
    assert (episode["link"], episode["image_url"]) == ("https://example.com/ep/1", "https://e.com/i.jpg")


def test_nul_characters_never_reach_a_record():
    import json

    body = _rss(f"<item><guid>g\x00</guid><title>A\x00B</title>{ENCLOSURE}</item>", "").replace(b"<title>T", b"<title>T\x00")
    result = parse_feed(body, "https://example.com/f")
    assert "\x00" not in json.dumps([result.podcast, result.episodes], default=str).replace("\\u0000", "\x00")
    assert (result.episodes[0]["guid"], result.episodes[0]["title"], result.podcast["title"]) == ("g", "AB", "T")
    assert any(w.startswith("NUL or surrogate characters removed") for w in result.warnings)

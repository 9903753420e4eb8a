"""The transcript and chapters parsers (assets/ingestion/transcript_parse.py): every real file of
`../shared/realdata/transcripts_chapters/` (the Podcasting 2.0 examples, read in place), the code
snippets of its spec pages, and hostile documents, one per reason code."""

import json
import re

import pytest

from assets.ingestion.transcript_parse import (
    MAX_SECONDS, Chapters, ParseError, Transcript, choose_format, decode, parse_chapters, parse_transcript, sniff,
)
from tests.conftest import SHARED

REAL = SHARED / "realdata" / "transcripts_chapters"
PREFIX = "Podcastindex-org__podcast-namespace__"
# The type a feed would declare for each file (the Podcasting 2.0 spec's types).
DECLARED = {".vtt": "text/vtt", ".srt": "application/x-subrip", ".html": "text/html", ".json": "application/json",
            ".md": "text/plain"}


def real(name: str) -> bytes:
    return (REAL / f"{PREFIX}{name}").read_bytes()


def is_chapters(data: bytes) -> bool:
    return b'"chapters"' in data


def cue_tuples(result: Transcript) -> list[tuple]:
    return [(c.start_ms, c.end_ms, c.speaker, c.body) for c in result.cues]


# --- every real file ------------------------------------------------------------------------


def test_every_real_file_parses_without_a_crash():
    files = sorted(REAL.iterdir())
    assert {f.suffix for f in files} == {".vtt", ".srt", ".html", ".json", ".md"} and len(files) == 8
    outcomes = {}
    for path in files:
        data = path.read_bytes()
        for declared in (DECLARED[path.suffix], None):
            parse = parse_chapters if is_chapters(data) and path.suffix == ".json" else parse_transcript
            try:
                result = parse(data, declared)
            except ParseError as exc:  # a reason is an answer; any other exception fails the test
                outcomes[(path.name, declared)] = exc.reason_code
                continue
            outcomes[(path.name, declared)] = getattr(result, "format", "chapters")
            if isinstance(result, Transcript):
                assert result.cues and all(c.body for c in result.cues)
            else:
                assert result.chapters
    # every data file parses as what it is, declared or sniffed; the spec pages read as text
    assert {name.removeprefix(PREFIX): fmt for (name, _), fmt in outcomes.items()} == {
        "example.vtt": "vtt", "example.srt": "srt", "example.html": "html", "transcripts-example.json": "json",
        "chapters-example.json": "chapters", "exampleComplex.json": "chapters",
        "transcripts.md": "text", "jsonChapters.md": "text",
    }


def test_the_real_webvtt_file():
    data = real("example.vtt")
    assert b"\r\n" in data  # the file has CRLF line ends
    result = parse_transcript(data, "text/vtt")
    timings = re.findall(rb"(\d\d):(\d\d):(\d\d)\.(\d{3}) --> (\d\d):(\d\d):(\d\d)\.(\d{3})", data)
    voices = re.findall(rb"<v ([^>]+)>", data)
    assert len(result.cues) == len(timings) == 7
    assert [c.speaker for c in result.cues] == [v.decode() for v in voices] == ["Sarah"] * 5 + ["Gillian"] * 2
    first, last = result.cues[0], result.cues[-1]
    assert (first.start_ms, first.end_ms) == (0, 2760)
    assert (last.start_ms, last.end_ms) == (21450, 25350)
    assert first.body == "In today's episode, you'll learn whether or not you"
    assert result.cues[2].body == "include in one? Welcome to Podcasting Q&A, where you learn"  # &amp; decoded
    assert last.body == "careers podcast. My question is, do we need a podcast trailer?"
    assert result.has_timings and result.format == "vtt"


def test_the_real_srt_file():
    data = real("example.srt")
    text = data.decode()
    result = parse_transcript(data, "application/x-subrip")
    assert len(result.cues) == text.count("-->") == int(text.split("\n\n")[-1].split("\n")[0]) == 222
    first, last = result.cues[0], result.cues[-1]
    assert (first.start_ms, first.end_ms, first.speaker) == (179, 2399, "Travis")
    assert first.body == "When you first get started in podcasting, it's"  # the two lines joined, `Travis:` out
    assert (last.start_ms, last.end_ms, last.speaker) == (752671, 754769, "Travis")
    assert last.body == "best thing to do is to batch your episodes."
    # the speaker of a cue is the last `Name:` before it (the file names one when it changes)
    expected, speaker = [], None
    for block in text.strip().split("\n\n"):
        found = re.match(r"([A-Z]\w+): ", block.split("\n")[2])
        speaker = found.group(1) if found else speaker
        expected.append(speaker)
    assert [c.speaker for c in result.cues] == expected
    assert {s: expected.count(s) for s in set(expected)} == {"Travis": 141, "Gilon": 55, "Sarah": 26}
    assert not any(re.match(r"(Travis|Sarah|Gilon):", c.body) for c in result.cues)
    assert all(c.start_ms <= c.end_ms for c in result.cues)


def test_the_real_html_file():
    data = real("example.html")
    result = parse_transcript(data, "text/html")
    cites = re.findall(rb"<cite>(\w+):</cite>", data)
    times = re.findall(rb"<time>(\d+):(\d\d)</time>", data)
    assert len(result.cues) == len(cites) == len(times) == data.count(b"<p>") == 10
    assert [c.speaker for c in result.cues] == [c.decode() for c in cites]
    assert [c.start_ms for c in result.cues] == [(int(m) * 60 + int(s)) * 1000 for m, s in times]
    assert [c.start_ms // 1000 for c in result.cues] == [0, 53, 102, 219, 263, 322, 376, 562, 617, 691]
    assert all(c.end_ms is None for c in result.cues) and result.has_timings
    assert result.cues[0].body.startswith("When you first get started in podcasting, it's almost")  # &#39;
    assert result.cues[-1].body.endswith("the next best thing to do is to batch your episodes.")


def test_the_real_json_transcript():
    data = real("transcripts-example.json")
    result = parse_transcript(data, "application/json")
    segments = json.loads(data)["segments"]
    assert cue_tuples(result) == [(round(s["startTime"] * 1000), round(s["endTime"] * 1000), s["speaker"], s["body"])
                                  for s in segments]
    assert cue_tuples(result)[0] == (500, 750, "Darth Vader", "I")
    assert cue_tuples(result)[-1] == (2750, 3000, "Luke", "Nooooo")


def test_the_real_chapters_files():
    simple = parse_chapters(real("chapters-example.json"), "application/json+chapters")
    assert simple.version == "1.2.0"
    assert [c.start_ms // 1000 for c in simple.chapters] == [0, 168, 260, 410, 3990, 4600, 5510, 5854, 6089]
    assert [c.title for c in simple.chapters][:2] == ["Intro", "Hearing Aids"]
    assert sum(c.image_url is not None for c in simple.chapters) == 3
    assert [c.link_url for c in simple.chapters if c.link_url] == [
        "https://github.com/Podcastindex-org/podcast-namespace", "https://example.com/paypal_link"]
    assert all(c.end_ms is None and c.toc is None for c in simple.chapters)

    complex_ = parse_chapters(real("exampleComplex.json"), None)  # sniffed
    source = json.loads(real("exampleComplex.json"))["chapters"]
    assert len(complex_.chapters) == len(source) == 11
    silent = complex_.chapters[7]
    assert (silent.start_ms, silent.title, silent.toc, silent.image_url) == (
        4826000, None, False, "https://example.com/images/parisfrance.jpg")
    song = complex_.chapters[5]
    assert song.title == "Played song by artist" and song.link_url.startswith("https://www.discogs.com/master/")
    assert not complex_.notes


def _snippets(name: str) -> list[tuple[str, str]]:
    return re.findall(r"```(\w+)\n(.*?)```", real(name).decode(), re.S)


def test_the_spec_pages_snippets():
    """The code blocks of the spec pages beside the files: what the spec says each format means."""
    blocks = _snippets("transcripts.md")
    by_lang = {}
    for lang, body in blocks:
        by_lang.setdefault(lang, []).append(body)
    vtt = parse_transcript(by_lang["vtt"][0].encode(), None)
    # `<v>` names the speaker "when they change": the cues without one are Tom's
    assert [c.speaker for c in vtt.cues] == ["John", "Tom", "Tom", "Tom", "John", "Tom", "John"]
    assert [c.start_ms for c in vtt.cues] == list(range(0, 35000, 5000))
    srt = parse_transcript(by_lang["srt"][0].encode(), None)
    assert [c.speaker for c in srt.cues] == ["Sarah"] * 3 + ["Gillian"] * 2
    assert srt.cues[2].body == "include in one? Welcome to Podcasting Q&A."
    with pytest.raises(ParseError, match="empty_document"):  # the web player example: no text outside its script
        parse_transcript(by_lang["html"][0].encode(), "text/html")
    html_ = parse_transcript(by_lang["html"][1].encode(), None)  # the `<cite>Alban :</cite>` snippet
    assert [(c.speaker, c.start_ms) for c in html_.cues if c.speaker in ("Kevin", "Alban")] == [
        ("Kevin", 0), ("Alban", 9000)]
    segments = parse_transcript(by_lang["json"][0].encode(), "application/json")
    assert [c.body for c in segments.cues] == ["I", "am", "your", "father.", "Nooooo"]  # "father.\n" trimmed

    chapter_blocks = [parse_or_reason(body) for lang, body in _snippets("jsonChapters.md") if lang == "json"]
    assert [len(c.chapters) if isinstance(c, Chapters) else c for c in chapter_blocks] == [
        "invalid_chapters", "invalid_chapters", 8, 9]  # a chapter object, a location object, two files


def parse_or_reason(body: str):
    try:
        return parse_chapters(body.encode(), "application/json+chapters")
    except ParseError as exc:
        return exc.reason_code


# --- formats and their detection --------------------------------------------------------------

VTT = b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n<v Ann>Hello\n"
SRT = b"1\n00:00:01,000 --> 00:00:02,000\nAnn: Hello\n\n2\n00:00:02,000 --> 00:00:03,000\nAnn: again\n"


@pytest.mark.parametrize("body, declared, content_type, expected", [
    (VTT, None, None, "vtt"),
    (VTT, "application/x-subrip", "text/plain", "vtt"),  # a WEBVTT header is unmistakable
    (SRT, "text/vtt", None, "srt"),  # SRT served as WebVTT (common)
    (SRT, None, "application/octet-stream", "srt"),
    (b'{"segments": []}', "text/html", None, "json"),
    (b"<p>Hello</p>", None, "text/html; charset=utf-8", "html"),
    (b"<p>Hello</p>", "text/plain", None, "html"),  # text/plain decides nothing
    (b"Hello there", "text/html", None, "text"),  # "HTML" without a tag
    (b"Hello there", None, None, "text"),
    (b"[00:00:01] Hello", None, None, "text"),  # a bracketed time is not JSON
    (b"Hello", "application/x-custom+json", None, "json"),
])
def test_the_format_is_chosen_from_the_body_then_the_types(body, declared, content_type, expected):
    assert choose_format(decode(body), declared, content_type) == expected


def test_a_declared_type_the_body_contradicts_is_counted():
    result = parse_transcript(SRT, "text/vtt")
    assert result.format == "srt" and result.notes["declared_type_mismatch"] == 1
    assert not parse_transcript(SRT, "application/srt").notes


def test_webvtt_blocks_settings_tags_and_header():
    body = (
        "\ufeffWEBVTT - a title\nKind: captions\nLanguage: en-US\n\n"
        "NOTE a comment\nthat runs over two lines\n\n"
        "STYLE\n::cue { color: red }\n\n"
        "REGION\nid:fred width:40%\n\n"
        "intro-1\n"
        "01:02.500 --> 01:04.000 align:start position:10% region:fred\n"
        "<v.loud Sarah Jones>Q&amp;A <i>with</i> <c.yellow>colour</c> &lt;3&nbsp;and\n"
        "<b>a</b> <u>second</u> <ruby>line<rt>ln</rt></ruby> <lang fr>oui</lang>\n\n"
        "NOTE between cues\n\n"
        "00:01:05.000 --> 00:01:06.250\n"
        "carried <00:01:05.500>karaoke\n\n"
        "00:01:07.000 --> 00:01:07.000\n"
        "<v Tom>zero length</v>\n"
    ).encode()
    result = parse_transcript(body, "text/vtt")
    assert result.language == "en-US"
    assert cue_tuples(result) == [
        (62500, 64000, "Sarah Jones", "Q&A with colour <3 and a second lineln oui"),
        (65000, 66250, "Sarah Jones", "carried karaoke"),
        (67000, 67000, "Tom", "zero length"),
    ]


def test_srt_without_indexes_with_bom_crlf_and_tags():
    body = ("\ufeff00:00:01,000 --> 00:00:02,500\r\n<i>Ann:</i> {\\an8}Hello &amp; <font color=\"red\">welcome</font>"
            "\r\n\r\n00:00:03.5 --> 00:00:04,000 X1:10 X2:20\r\nAnn: again\r\n\r\n\r\n"
            "7\r\n00:00:05,000 --> 00:00:06,000\r\nBob: hi\r\n\r\nsecond paragraph of the same cue\r\n").encode()
    result = parse_transcript(body, None)
    assert result.format == "srt"
    assert cue_tuples(result) == [
        (1000, 2500, "Ann", "Hello & welcome"),
        (3500, 4000, "Ann", "again"),
        (5000, 6000, "Bob", "hi second paragraph of the same cue"),  # the file opens with a name: Bob is one
    ]
    assert parse_transcript(body.replace(b"\r\n", b"\r"), None).cues == result.cues  # old Mac line ends


def test_an_arrow_in_a_cues_text_is_text():
    body = b"1\n00:00:01,000 --> 00:00:02,000\nfrom A --> B\n--> and on\n\n2\n00:00:02,000 --> 00:00:03,000\nend\n"
    assert [c.body for c in parse_transcript(body, None).cues] == ["from A --> B --> and on", "end"]


def test_json_times_as_strings_and_clock_values():
    body = json.dumps({"version": "1.0.0", "segments": [
        {"startTime": "1.5", "endTime": "2", "body": "first", "speaker": "Ann"},
        {"startTime": "00:00:03,250", "endTime": 4, "body": " <b>second</b> &amp; "},
        {"startTime": 5, "body": "no end, no speaker"},
        {"startTime": 6, "endTime": 7, "body": "   "},  # empty: left out, counted
        {"body": "no times at all", "speaker": 12},
    ]}).encode()
    result = parse_transcript(body, "application/json")
    assert cue_tuples(result) == [(1500, 2000, "Ann", "first"), (3250, 4000, None, "second &"),
                                  (5000, None, None, "no end, no speaker"), (None, None, "12", "no times at all")]
    assert result.notes["empty_cues_skipped"] == 1 and not result.has_timings


def test_html_speakers_times_and_skipped_parts():
    body = b"""<!doctype html><html><head><title>Episode 4</title><style>p{}</style></head><body>
      <script>document.write('<p>not text</p>')</script>
      <p><strong>Ann:</strong> Hello &amp; welcome to the show.</p>
      <p><b>Bob:</b> Thanks.<br>Glad to be here.</p>
      <p>[00:12:30] Ann: this episode is brought to you by Acme.</p>
      <div>Remember: use code SHOW.</div>
    </body></html>"""
    result = parse_transcript(body, "text/html")
    assert cue_tuples(result) == [  # the title, style and script are no text
        (None, None, "Ann", "Hello & welcome to the show."),
        (None, None, "Bob", "Thanks."),
        (None, None, "Bob", "Glad to be here."),
        (750000, None, "Ann", "this episode is brought to you by Acme."),  # a name the markup gives
        (None, None, "Ann", "Remember: use code SHOW."),
    ]


def test_an_unclosed_cite_ends_with_its_block():
    body = b"<cite>Ann:<p>Hello there.</p><cite>Bob:</cite><time>0:05<p>Hi.</p>"
    assert cue_tuples(parse_transcript(body, "text/html")) == [(None, None, "Ann", "Hello there."),
                                                             (5000, None, "Bob", "Hi.")]


def test_plain_text_paragraphs_labels_and_times():
    body = b"Ann:\n0:05\nWelcome to the show,\nit is great to be here.\n\nBob:\n(0:20)\nThanks for having me.\n\n" \
           b"[00:01:00] Ann: Remember: use code SHOW.\n\n10:30 is when we met.\n"
    result = parse_transcript(body, "text/plain")
    assert cue_tuples(result) == [
        (5000, None, "Ann", "Welcome to the show, it is great to be here."),
        (20000, None, "Bob", "Thanks for having me."),
        (60000, None, "Ann", "Remember: use code SHOW."),
        (None, None, "Ann", "10:30 is when we met."),  # a bare time inside a sentence is text
    ]
    lines = parse_transcript(b"Host: one\nGuest: two\nHost: three\n", None)  # no blank line: a cue per line
    assert [(c.speaker, c.body) for c in lines.cues] == [("Host", "one"), ("Guest", "two"), ("Host", "three")]


def test_name_prefixes_that_are_not_speakers():
    def speakers(*texts):
        body = "".join(f"{i + 1}\n00:00:{i:02d},000 --> 00:00:{i:02d},500\n{t}\n\n" for i, t in enumerate(texts))
        return [(c.speaker, c.body) for c in parse_transcript(body.encode(), None).cues]

    # a label that recurs in ad copy is never a speaker, however often it appears
    assert speakers("Remember: use code X", "Promo code: SAVE", "Remember: again", "Promo Code: SAVE") == [
        (None, "Remember: use code X"), (None, "Promo code: SAVE"), (None, "Remember: again"),
        (None, "Promo Code: SAVE")]
    # in a file that does not open with a name: a name once is text, twice a speaker; lower-case
    # words are no name
    assert speakers("so here: we go", "Visiting Paris: lovely", "Dr. Jane Smith: hi", "Dr. Jane Smith: bye") == [
        (None, "so here: we go"), (None, "Visiting Paris: lovely"), ("Dr. Jane Smith", "hi"),
        ("Dr. Jane Smith", "bye")]
    assert speakers("see https://example.com/x", "Ann: hi") == [(None, "see https://example.com/x"), (None, "Ann: hi")]
    # a file that opens with a name names its speakers so (the SRT convention): each name counts
    assert speakers("Speaker 1: a", "Speaker 2: b", "Speaker 1: c", "Guest: d") == [
        ("Speaker 1", "a"), ("Speaker 2", "b"), ("Speaker 1", "c"), ("Guest", "d")]


def test_chapters_fields():
    body = json.dumps({"version": 1.2, "chapters": [
        {"startTime": "10", "endTime": 20.5, "title": "Sponsor: Acme", "url": "javascript:alert(1)",
         "img": "https://cdn.example/ad.png", "toc": "false"},
        {"startTime": "00:01:00", "title": 7, "url": "https://acme.example/show", "img": "data:image/png;base64,xx",
         "toc": True},
        {"startTime": 3600, "toc": "maybe", "location": {"name": "Paris", "geo": "geo:1,2"}},
    ]}).encode()
    result = parse_chapters(body, "application/json+chapters")
    assert result.version == "1.2"
    assert [tuple(c) for c in result.chapters] == [
        (10000, 20500, "Sponsor: Acme", None, "https://cdn.example/ad.png", False),
        (60000, None, "7", "https://acme.example/show", None, True),
        (3600000, None, None, None, None, None),
    ]
    assert result.notes == {"url_not_http": 1, "img_not_http": 1, "toc_not_boolean": 1}


def test_encodings():
    cp1252 = b"1\n00:00:01,000 --> 00:00:02,000\ncaf\xe9 \x93quoted\x94\n"
    assert parse_transcript(cp1252, None).cues[0].body == "caf\xe9 \u201cquoted\u201d"
    latin1_declared = "1\n00:00:01,000 --> 00:00:02,000\ncafé\n".encode()  # UTF-8 said to be ISO-8859-1
    assert parse_transcript(latin1_declared, None, "text/plain; charset=ISO-8859-1").cues[0].body == "café"
    koi8 = "1\n00:00:01,000 --> 00:00:02,000\nпривет\n".encode("koi8-r")
    assert parse_transcript(koi8, None, "application/x-subrip; charset=koi8-r").cues[0].body == "привет"
    for codec in ("utf-16", "utf-32", "utf-8-sig"):
        body = "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n<v Zoë>héllo\n".encode(codec)
        assert cue_tuples(parse_transcript(body, None)) == [(1000, 2000, "Zoë", "héllo")], codec


# --- every reason code ------------------------------------------------------------------------

CUE = "00:00:01.000 --> 00:00:02.000\nhello\n"


@pytest.mark.parametrize("body, declared, content_type, reason", [
    (b"", "text/vtt", None, "empty_document"),
    (b" \r\n\t", None, None, "empty_document"),
    (b"\xef\xbb\xbf\r\n", "text/vtt", None, "empty_document"),  # a byte-order mark and nothing else
    (b"WEBVTT\n\nNOTE only a note\n", "text/vtt", None, "empty_document"),
    (b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n<i></i>\n", "text/vtt", None, "empty_document"),
    (b'{"segments": []}', "application/json", None, "empty_document"),
    (b'{"segments": [{"startTime": 1, "body": ""}]}', None, None, "empty_document"),
    (b"<html><body><script>x</script></body></html>", "text/html", None, "empty_document"),
    (b"%PDF-1.7 a document", "application/pdf", None, "unsupported_type"),
    (b"just text", None, "audio/mpeg", "unsupported_type"),
    (b"ID3\x04\x00\x00\x00\x00\x00", "text/vtt", None, "unsupported_type"),  # binary whatever it says
    (b"00:01.000 --> 00:02.000\nhello\n", "text/vtt", None, "invalid_vtt"),  # no header (hh:mm:ss would be SRT)
    (f"WEBVTT\n\n{CUE}\n00:00:0x.000 --> 00:00:03.000\nbad\n".encode(), "text/vtt", None, "invalid_vtt"),
    (b"WEBVTT\n\nstray text block\n\n" + CUE.encode(), None, None, "invalid_vtt"),
    (b"WEBVTT\n\n00:61.000 --> 00:62.000\nminutes\n", None, None, "invalid_vtt"),
    (b"1\n00:00:01,000 --> 00:00:02,000\nok\n\n2\n00:00:0x,000 --> 00:00:03,000\nbad\n", None, None, "invalid_srt"),
    (b"1\nno timing at all\n", "application/x-subrip", None, "invalid_srt"),
    (b"{not json", "application/json", None, "invalid_json"),
    (b"[" * 100_000, None, None, "invalid_json"),  # nested past the recursion limit
    (b"[1, 2]", "application/json", None, "invalid_transcript_json"),
    (b'{"chapters": []}', "application/json", None, "invalid_transcript_json"),  # chapters at a transcript URL
    (b'{"segments": {"a": 1}}', None, None, "invalid_transcript_json"),
    (b'{"segments": [{"startTime": "soon", "body": "x"}]}', None, None, "invalid_transcript_json"),
    (b'{"segments": [{"startTime": true, "body": "x"}]}', None, None, "invalid_transcript_json"),
    (b'{"segments": [{"startTime": 1, "body": ["x"]}]}', None, None, "invalid_transcript_json"),
    (b'{"segments": [{"startTime": 1, "body": "x", "speaker": {"n": 1}}]}', None, None, "invalid_transcript_json"),
    (b"WEBVTT\n\n00:00:05.000 --> 00:00:01.000\nbackwards\n", None, None, "bad_timings"),
    (b"1\n00:00:05,000 --> 00:00:04,999\nbackwards\n", None, None, "bad_timings"),
    (b"1\n-00:00:01,000 --> 00:00:02,000\nnegative\n", None, None, "bad_timings"),
    (b"WEBVTT\n\n99999999999:00:00.000 --> 99999999999:00:01.000\nhuge\n", None, None, "bad_timings"),
    (b"1\n48:00:00,001 --> 48:00:01,000\npast 48 hours\n", None, None, "bad_timings"),
    (b'{"segments": [{"startTime": 3, "endTime": 2, "body": "x"}]}', None, None, "bad_timings"),
    (b'{"segments": [{"startTime": -1, "body": "x"}]}', None, None, "bad_timings"),
    (b'{"segments": [{"startTime": NaN, "body": "x"}]}', None, None, "bad_timings"),
    (b'{"segments": [{"startTime": 1e400, "body": "x"}]}', None, None, "bad_timings"),
    (b'{"segments": [{"endTime": 2, "body": "x"}]}', None, None, "bad_timings"),
])
def test_every_transcript_reason(body, declared, content_type, reason):
    with pytest.raises(ParseError) as caught:
        parse_transcript(body, declared, content_type)
    assert caught.value.reason_code == reason
    assert caught.value.detail


def test_the_latest_time_an_episode_can_have_is_read():
    body = b"1\n47:59:59,000 --> 48:00:00,000\nthe last second\n"
    assert cue_tuples(parse_transcript(body, None)) == [(MAX_SECONDS * 1000 - 1000, MAX_SECONDS * 1000, None,
                                                         "the last second")]


@pytest.mark.parametrize("body, declared, reason", [
    (b"", "application/json+chapters", "empty_document"),
    (b'{"version": "1.2.0", "chapters": []}', None, "empty_document"),
    (b"<html><body>Not found</body></html>", None, "unsupported_type"),
    (b"<chapters><chapter/></chapters>", "application/xml", "unsupported_type"),
    (b"{oops", "application/json+chapters", "invalid_json"),
    (b"chapter 1 at 0:00", None, "invalid_json"),
    (b'[{"startTime": 0}]', None, "invalid_chapters"),
    (b'{"segments": []}', None, "invalid_chapters"),
    (b'{"chapters": "none"}', None, "invalid_chapters"),
    (b'{"chapters": [1]}', None, "invalid_chapters"),
    (b'{"chapters": [{"title": "no start"}]}', None, "invalid_chapters"),
    (b'{"chapters": [{"startTime": "later"}]}', None, "invalid_chapters"),
    (b'{"chapters": [{"startTime": 0, "title": ["x"]}]}', None, "invalid_chapters"),
    (b'{"chapters": [{"startTime": 10, "endTime": 5}]}', None, "bad_timings"),
    (b'{"chapters": [{"startTime": -5}]}', None, "bad_timings"),
    (b'{"chapters": [{"startTime": 1e12}]}', None, "bad_timings"),
])
def test_every_chapters_reason(body, declared, reason):
    with pytest.raises(ParseError) as caught:
        parse_chapters(body, declared)
    assert caught.value.reason_code == reason


def test_a_long_transcript_parses_whole():
    """A 90-minute episode: 1,000 cues in each timed format, the same cues out of each (the speed
    is measured in the module docstring, not asserted here)."""
    cues = [(i * 5400, i * 5400 + 5000, "Ann" if i % 3 else "Bob", f"sentence number {i} &amp; more") for i in range(1000)]

    def clock(ms, sep):
        return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d}{sep}{ms % 1000:03d}"

    vtt = "WEBVTT\n\n" + "".join(f"{clock(a, '.')} --> {clock(b, '.')}\n<v {s}>{t}\n\n" for a, b, s, t in cues)
    srt = "".join(f"{i + 1}\n{clock(a, ',')} --> {clock(b, ',')}\n{s}: {t}\n\n" for i, (a, b, s, t) in enumerate(cues))
    segments = json.dumps({"segments": [{"startTime": a / 1000, "endTime": b / 1000, "speaker": s, "body": t}
                                        for a, b, s, t in cues]})
    expected = [(a, b, s, t.replace("&amp;", "&")) for a, b, s, t in cues]
    for body in (vtt, srt, segments):
        result = parse_transcript(body.encode(), None)
        assert cue_tuples(result) == expected
    assert sniff(vtt) == "vtt" and sniff(srt) == "srt" and sniff(segments) == "json"

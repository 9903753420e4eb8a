"""Pure parsing of episode transcripts and chapters: bytes in, cues or chapters (or a reason) out.

Formats (Podcasting 2.0 `podcast:transcript` / `podcast:chapters`):

- WebVTT: the `WEBVTT` header and its header lines (a legacy `Language:` line is read), cue
  timings `hh:mm:ss.ttt` or `mm:ss.ttt` (a `,` before the milliseconds is tolerated), cue
  settings, NOTE / STYLE / REGION blocks (skipped), cue identifiers, multi-line cues (lines
  joined by a space). `<v Speaker>` names the speaker; every other tag (`<c.x>`, `<i>`, `<b>`,
  `<ruby>`, karaoke timestamps `<00:00:01.000>`) is dropped and entities are decoded.
- SRT: index lines (optional), `hh:mm:ss,ttt --> hh:mm:ss,ttt` (a `.` tolerated), text up to the
  next timing line (blank lines inside a cue's text tolerated), formatting tags and `{\\an8}`
  overrides dropped, byte-order marks and CRLF / CR line ends.
- Podcasting 2.0 JSON transcripts: `segments` with `startTime`, `endTime` (optional), `body`,
  `speaker`; times may be numbers, numeric strings or `hh:mm:ss.ttt` strings.
- HTML (no timings but what `<time>` says): one cue per paragraph (`<p>`, `<div>`, `<li>`, a
  `<br>` line...), the speaker from a preceding `<cite>Name:</cite>` (the spec's pattern) or a
  leading `<strong>Name:</strong>` / `<b>Name:</b>`, the start from a preceding `<time>0:53</time>`;
  scripts and styles are dropped.
- Plain text: one cue per paragraph when the text has blank lines, else one per line; a line
  that starts with a time (`00:01:02`, `[1:02]`) or is a time alone gives the next cue's start,
  a line that is `Name:` alone gives the next cue's speaker.
- Podcasting 2.0 chapters JSON: `chapters` with `startTime`, and optional `endTime`, `title`,
  `img`, `url`, `toc` (image and link only when http(s)).

Speakers. Explicit markup always names a speaker (`<v>`, `<cite>`, `<strong>Name:</strong>`, JSON
`speaker`), and so does a line that is only `Name:`. A plain `Name: text` prefix (the SRT
convention of the Podcasting 2.0 spec; HTML and text too) names one when it looks like a name
(one to four words, each capitalised or a number: `Travis`, `Dr. Jane Smith`, `Speaker 1`), is
not one of the labels of `NOT_NAMES` (`Remember:`, `Promo code:`, `Note:`...), and either the
file opens with such a name (it follows the convention: "start a new card when the speaker
changes") or the same name starts at least two cues: `Visiting Paris: ...` once in the middle of
a file is text, not a speaker. In a file with speaker markup, a prefix names a speaker only when
the markup names the same one. A speaker stays on the following cues until another one is named
(the formats name the speaker "when it changes"); JSON names one per segment.

Format. A body that is unmistakably one format is read as that format whatever its types say:
a `WEBVTT` header, an SRT timing line (`00:00:01,000 -->`, under an index line or not) as its
first line, a JSON document (SRT served as `text/vtt` is common). Otherwise the declared type (the feed's `type`
attribute) decides, then the response's Content-Type, then the body (WebVTT cue timings without
the header, which is then `invalid_vtt`; HTML tags; else plain text).
`text/plain` and `application/octet-stream` decide nothing (servers send them for any file);
`text/html` for a body without a single tag is read as text; a type naming something else
(`application/pdf`, `audio/mpeg`) is `unsupported_type`, and so is a binary body. The format
stored is the one read (a declared type it contradicts counts in `notes["declared_type_mismatch"]`),
the declared type is stored beside it. Text is decoded by its byte-order mark, else as UTF-8 when
it is valid UTF-8, else by the Content-Type's charset, else as Windows-1252.

Limits, all explicit (`ParseError.reason_code`, the document is quarantined, nothing is dropped
in silence): a cue that ends before it starts, a negative time, a time past `MAX_SECONDS` (48 h)
or one that is not finite makes the whole document `bad_timings` (one broken cue says the
timings of the file cannot be trusted); a timing line that cannot be read makes it
`invalid_vtt` / `invalid_srt` (with its line number); a body with no cue that has text is
`empty_document` (but a chapters file whose list is empty is valid: the episode has no
chapters). Cues whose text is empty once tags are stripped are left out and counted in
`notes["empty_cues_skipped"]`; text before an SRT file's first cue in
`notes["preamble_lines_skipped"]`.

Why no library. `webvtt-py` 0.6.0 (maintained), `srt` 3.5.3 and `pysrt` 1.1.2 (unreleased since
2020) all install from the package index. Measured on this machine (2 cores), best of 75 runs, on
a 90-minute transcript of 1,000 cues with a speaker per cue: this parser 7.1 ms for WebVTT and
7.4 ms for SRT (about 140,000 cues/s, under 5 ms per hour of transcript, speakers, tags and
entities done; JSON 4.7 ms, HTML 29 ms, html.parser being the slow part); webvtt-py 25.7 ms
(WebVTT) and 30.6 ms (its SRT reader); srt 10.8 ms; pysrt 9.6 ms (both SRT only, timings and raw
text only). The libraries would also keep problems silent that must be reasons here: webvtt-py
drops a cue whose timing line it cannot read and keeps a cue that ends before it starts, and its
SRT reader returns no cue at all for `mm:ss,ttt` timings; pysrt reads `00:00:0x,000` as zero.
None of them decodes entities (webvtt-py leaves `Q&amp;A`), the SRT libraries keep tags, and none
knows `Name:` speakers or carries a speaker forward: the cue-text work is the same for every
format and would remain ours. So one small parser (a fast regular expression for the usual
`hh:mm:ss.ttt` timing line, a general one for the rest of the grammar) serves every format with
the same reasons and no dependency. Nothing here does I/O.
"""

from __future__ import annotations

import codecs
import html
import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any, NamedTuple
from urllib.parse import urlsplit

MAX_SECONDS = 48 * 3600  # no episode is longer: a later time is a broken file, not a long show
MAX_MS = MAX_SECONDS * 1000

TRANSCRIPT_FORMATS = ("vtt", "srt", "json", "html", "text")

# media type (lower case, no parameters) -> format
_TYPE_FORMATS = {
    "text/vtt": "vtt", "text/webvtt": "vtt", "application/vtt": "vtt", "text/x-vtt": "vtt",
    "application/x-subrip": "srt", "application/srt": "srt", "application/x-srt": "srt", "text/srt": "srt",
    "text/x-srt": "srt", "text/x-subrip": "srt",
    "application/json": "json", "text/json": "json", "application/x-json": "json",
    "text/html": "html", "application/xhtml+xml": "html",
}
# Types that say nothing about the format: servers send them for any file.
_WEAK_TYPES = frozenset({"", "text/plain", "application/octet-stream", "binary/octet-stream",
                         "application/binary", "application/unknown", "application/x-unknown-content-type",
                         "application/download", "application/force-download"})


class ParseError(Exception):
    """A document that cannot be used: `reason_code` is stored with its quarantine row."""

    def __init__(self, reason_code: str, detail: str):
        super().__init__(f"{reason_code}: {detail}")
        self.reason_code = reason_code
        self.detail = detail


class Cue(NamedTuple):
    start_ms: int | None
    end_ms: int | None
    speaker: str | None
    body: str


class Chapter(NamedTuple):
    start_ms: int
    end_ms: int | None
    title: str | None
    link_url: str | None
    image_url: str | None
    toc: bool | None


@dataclass
class Transcript:
    format: str
    cues: list[Cue]
    language: str | None = None  # what the file itself says (a WebVTT `Language:` header line)
    notes: Counter = field(default_factory=Counter)

    @property
    def has_timings(self) -> bool:
        """Every cue has a start time (HTML with a `<time>` before each paragraph has)."""
        return bool(self.cues) and all(c.start_ms is not None for c in self.cues)


@dataclass
class Chapters:
    version: str | None
    chapters: list[Chapter]
    notes: Counter = field(default_factory=Counter)


def seconds(ms: int | None) -> float | None:
    return None if ms is None else ms / 1000


# --- bytes to text ----------------------------------------------------------------------------

_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([\w.:-]+)", re.I)


def media_type(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


def decode(body: bytes, content_type: str | None = None) -> str:
    """The body as text: the encoding its byte-order mark names; else UTF-8 when it is valid UTF-8
    (servers often declare ISO-8859-1 for any text); else the Content-Type's charset; else
    Windows-1252 (what SRT files from desktop tools are written in). Never raises."""
    for bom, codec in _BOMS:
        if body.startswith(bom):
            return body.decode(codec, errors="replace")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    match = _CHARSET.search(content_type or "")
    if match:
        try:
            return body.decode(match.group(1), errors="replace")
        except LookupError:
            pass
    return body.decode("cp1252", errors="replace")


def _text_of(body: bytes, content_type: str | None) -> str:
    if not body.strip():
        raise ParseError("empty_document", "the document is empty")
    text = decode(body, content_type)
    if not text.lstrip("\ufeff").strip():
        raise ParseError("empty_document", "the document is empty")
    if "\x00" in text[:4096]:
        raise ParseError("unsupported_type", "binary content (NUL bytes), not a text document")
    return text.replace("\x00", "")


# --- format detection -------------------------------------------------------------------------

# SRT: the first line is a timing line (a comma before the milliseconds: with a dot it is WebVTT's
# timing, and a WebVTT file without its header is invalid), or an index line right above one
_VTT_CUE_SNIFF = re.compile(r"(?:[^\r\n]*\r?\n)?[ \t]*(?:\d+:)?\d{2}:\d{2}\.\d{3}[ \t]+-->")
_SRT_SNIFF = re.compile(r"(?:\d+[ \t]*\r?\n)?[ \t]*-?\d+:\d{1,2}:\d{1,2},\d{1,3}[ \t]*-->")
_JSON_SNIFF = re.compile(r"\{|\[\s*[{\[\]\"]")  # an object, or a list of objects (`[00:01]` is text)
_ANY_TAG = re.compile(r"</?[A-Za-z][\w-]*(?:\s[^>]*)?/?>")
_HTML_SNIFF = re.compile(r"<(?:!doctype|html|head|body|p|div|cite|time|br|span|h[1-6]|section|article)\b", re.I)


def sniff(text: str) -> str:
    """The format the body itself shows: vtt, srt, json, html, or text when it shows none."""
    head = text[:4096].lstrip("\ufeff \t\r\n")
    if head.startswith("WEBVTT") and (len(head) == 6 or head[6] in " \t\r\n"):
        return "vtt"
    if _JSON_SNIFF.match(head):
        return "json"
    if _SRT_SNIFF.match(head):
        return "srt"
    if _VTT_CUE_SNIFF.match(head):
        return "vtt"  # WebVTT cues without the header (read as WebVTT unless a type says otherwise)
    if head[:1] == "<" and _HTML_SNIFF.search(head):
        return "html"
    return "text"


def _strong(text: str, found: str) -> bool:
    """Whether the body is unmistakably `found` (a header, a JSON document, an SRT timing line)."""
    return found in ("json", "srt") or (found == "vtt" and text.lstrip("\ufeff \t\r\n").startswith("WEBVTT"))


def choose_format(text: str, declared_type: str | None, content_type: str | None) -> str:
    """The format to read the body as (see the module docstring): a body that is unmistakably
    WebVTT, JSON or SRT is read as such; otherwise the declared type, then the Content-Type, then
    whether the body has HTML tags."""
    found = sniff(text)
    if _strong(text, found):
        return found
    specific = []
    for value in (declared_type, content_type):
        kind = media_type(value)
        fmt = _TYPE_FORMATS.get(kind) or ("json" if kind.endswith("+json") or kind.startswith("application/json")
                                          else None)
        if fmt == "html" and not _ANY_TAG.search(text[:65536]):
            return "text"  # "HTML" without a single tag: its lines are the cues
        if fmt is not None:
            return fmt
        if kind not in _WEAK_TYPES:
            specific.append(kind)
    if found == "text" and specific:
        raise ParseError("unsupported_type", f"type {specific[0][:80]!r} is not a transcript format")
    return found


def declared_format(declared_type: str | None) -> str | None:
    kind = media_type(declared_type)
    return _TYPE_FORMATS.get(kind) or ("json" if kind.endswith("+json") or kind.startswith("application/json")
                                       else None)


# --- times ------------------------------------------------------------------------------------

# hh:mm:ss.ttt or mm:ss.ttt (or with a comma), an optional sign to report negative times
_TS = r"(-)?(?:(\d+):)?(\d{1,2}):(\d{1,2})(?:[.,](\d{1,3})\d*)?"
_TIMING = re.compile(rf"^[ \t]*{_TS}[ \t]*-->[ \t]*{_TS}(?:[ \t]+(.*))?$")
_CLOCK = re.compile(rf"^\s*{_TS}\s*$")
_FAST_TIMING = re.compile(r"(\d\d):(\d\d):(\d\d)[.,](\d{3})[ \t]+-->[ \t]+(\d\d):(\d\d):(\d\d)[.,](\d{3})(?:[ \t]|$)")
_DIGITS_CLOCK = re.compile(r"\d:\d")  # a line with `-->` but no time in a cue's text is text (`A --> B`)


def _where(where: int | str) -> str:
    return f"line {where}" if isinstance(where, int) else where


def _ms(sign, hours, minutes, secs, frac, where: int | str, reason: str) -> int:
    """Milliseconds of a matched time; `where` (a line number or a description) for the error."""
    minutes, secs = int(minutes), int(secs)
    if minutes >= 60 or secs >= 60:
        raise ParseError(reason, f"{_where(where)}: minutes or seconds out of range")
    value = (((int(hours) * 60 if hours else 0) + minutes) * 60 + secs) * 1000
    if frac:
        value += int(frac) * (100, 10, 1)[len(frac) - 1]
    if sign:
        raise ParseError("bad_timings", f"{_where(where)}: negative time")
    if value > MAX_MS:
        raise ParseError("bad_timings", f"{_where(where)}: time past {MAX_SECONDS // 3600} hours")
    return value


def _timing(line: str, lineno: int, reason: str) -> tuple[int, int] | None:
    fast = _FAST_TIMING.match(line)
    if fast is not None:  # hh:mm:ss.ttt --> hh:mm:ss.ttt, as nearly every file writes it
        h, m, s, f, h2, m2, s2, f2 = map(int, fast.groups())
        if m < 60 and s < 60 and m2 < 60 and s2 < 60:
            start = ((h * 60 + m) * 60 + s) * 1000 + f
            end = ((h2 * 60 + m2) * 60 + s2) * 1000 + f2
            if start <= end <= MAX_MS:
                return start, end
    m = _TIMING.match(line)
    if m is None:
        return None
    g = m.groups()
    start = _ms(g[0], g[1], g[2], g[3], g[4], lineno, reason)
    end = _ms(g[5], g[6], g[7], g[8], g[9], lineno, reason)
    if end < start:
        raise ParseError("bad_timings", f"line {lineno}: cue ends before it starts")
    return start, end


def parse_clock(value: str) -> int | None:
    """`1:02:03.5`, `02:03`, `0:53` as milliseconds; None when it is not such a time."""
    m = _CLOCK.match(value)
    if m is None:
        return None
    return _ms(*m.groups(), f"time {value.strip()[:40]!r}", "bad_timings")


def _json_time(value: Any, where: str, reason: str) -> int | None:
    """A JSON time in seconds (number, numeric string or clock string) as milliseconds."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ParseError(reason, f"{where}: time {str(value)[:40]!r} is not a number")
    if isinstance(value, str):
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            clock = parse_clock(text) if ":" in text else None
            if clock is None:
                raise ParseError(reason, f"{where}: time {text[:40]!r} is not a number") from None
            return clock
    else:
        number = float(value)
    if not math.isfinite(number):
        raise ParseError("bad_timings", f"{where}: time is not finite")
    if number < 0:
        raise ParseError("bad_timings", f"{where}: negative time")
    if number > MAX_SECONDS:
        raise ParseError("bad_timings", f"{where}: time past {MAX_SECONDS // 3600} hours")
    return round(number * 1000)


# --- cue text ---------------------------------------------------------------------------------

_VOICE = re.compile(r"<v(?:\.[^\s>]*)?[ \t]+([^>]*)>")
_TAG = re.compile(r"</?[A-Za-z][^>]*>|<\d[\d:.]*>|\{\\[^}]*\}")
_SPACE = re.compile(r"\s+")
_NAME_PREFIX = re.compile(r"^([^\W\d_][\w'’.\-]*(?:[ \t][\w'’.\-]+){0,3})[ \t]?:(?:[ \t]+|$)")
# Labels that end with a colon in what people say or write around ads, never a speaker's name.
NOT_NAMES = frozenset({"note", "remember", "warning", "update", "ps", "p.s", "disclaimer", "sponsor", "sponsors",
                       "sponsored by", "promo code", "code", "coupon", "coupon code", "discount code", "offer",
                       "link", "links", "website", "url", "email", "visit", "tip", "example", "source"})
_PARTICLES = frozenset({"de", "van", "von", "da", "del", "der", "la", "le", "bin", "al", "y"})


def clean(text: str) -> str:
    """Cue text without tags, with entities decoded and whitespace collapsed."""
    if "<" in text or "{" in text:
        text = _TAG.sub("", text)
    if "&" in text:
        text = html.unescape(text)
    return " ".join(text.split())


def _voice(match: re.Match) -> str:
    name = match.group(1)
    return (html.unescape(name) if "&" in name else name).strip()[:200]


def name_prefix(text: str) -> tuple[str, str] | None:
    """(name, rest) when `text` starts with something that looks like `Name:`."""
    if ":" not in text[:120]:
        return None
    m = _NAME_PREFIX.match(text)
    if m is None:
        return None
    words = m.group(1).split()
    if not words[0][0].isupper() or m.group(1).lower().rstrip(".") in NOT_NAMES:
        return None
    for word in words[1:]:
        if not (word[0].isupper() or word.isdigit() or word in _PARTICLES):
            return None
    return " ".join(words), text[m.end():].strip()


class _Pending(NamedTuple):
    """A cue before speakers are settled: `marked` is a speaker given by markup (or None), and a
    cue whose text is only `Name:` names the speaker of the cues after it."""

    start_ms: int | None
    end_ms: int | None
    marked: str | None
    text: str


def _settle(pending: list[_Pending], notes: Counter, speakers_marked: bool) -> list[Cue]:
    """Cues with speakers: markup first; then `Name:` prefixes, in a document with speaker markup
    only for names the markup gives, in one without when they pass the rule of the module
    docstring; carried forward. A cue that is only a speaker's name (`Name:` on its own line)
    names the speaker of the next cue and hands it its start time."""
    prefixes = [name_prefix(p.text) if p.text and p.marked is None else None for p in pending]
    if speakers_marked:
        accepted = {p.marked for p in pending if p.marked}
    else:
        counts = Counter(found[0] for found in prefixes if found)
        first = next((found for p, found in zip(pending, prefixes) if p.text), None)
        if first is not None:  # the document opens with a speaker's name: it follows the convention
            accepted = set(counts)
        else:
            labels = {found[0] for found in prefixes if found and not found[1]}
            accepted = {name for name, n in counts.items() if n >= 2} | labels
    cues: list[Cue] = []
    speaker = None
    carried: int | None = None
    for index, p in enumerate(pending):
        text = p.text
        start = p.start_ms
        if p.marked is not None:
            speaker = p.marked or None
        elif accepted:
            found = prefixes[index]
            if found and found[0] in accepted:
                speaker, text = found
                if not text:
                    carried = start if carried is None else carried
                    continue
        if not text:
            notes["empty_cues_skipped"] += 1
            continue
        if start is None and carried is not None:
            start = carried
        carried = None
        cues.append(Cue(start, p.end_ms, speaker, text))
    return cues


# --- WebVTT -----------------------------------------------------------------------------------


def parse_vtt(text: str) -> Transcript:
    lines = text.lstrip("\ufeff").splitlines()
    if not lines or not (lines[0].startswith("WEBVTT") and (len(lines[0]) == 6 or lines[0][6] in " \t")):
        raise ParseError("invalid_vtt", "line 1: no WEBVTT header")
    language = None
    i, n = 1, len(lines)
    while i < n and lines[i].strip():  # header lines (legacy metadata such as `Language: en`)
        if "-->" in lines[i]:  # a cue right under the header (no blank line): read it as a cue
            break
        key, _, value = lines[i].partition(":")
        if key.strip().lower() == "language" and value.strip():
            language = value.strip()[:35]
        i += 1
    pending: list[_Pending] = []
    marked = False
    notes: Counter = Counter()
    while i < n:
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        block_start = i
        # a block: NOTE / STYLE / REGION, or a cue with an optional identifier line
        head = line.split(None, 1)[0] if line.strip() else ""
        if head in ("NOTE", "STYLE", "REGION") and "-->" not in line:
            while i < n and lines[i].strip():
                i += 1
            continue
        if "-->" not in line:
            i += 1  # the cue identifier
            if i >= n or not lines[i].strip():
                raise ParseError("invalid_vtt", f"line {block_start + 1}: a block that is neither a cue nor a note")
            line = lines[i]
        where = f"line {i + 1}"
        timing = _timing(line, i + 1, "invalid_vtt") if "-->" in line else None
        if timing is None:
            raise ParseError("invalid_vtt", f"{where}: unreadable cue timing {line.strip()[:80]!r}")
        i += 1
        payload = []
        while i < n and lines[i].strip():
            payload.append(lines[i])
            i += 1
        raw = " ".join(payload)
        voice = _VOICE.search(raw) if "<v" in raw else None
        if voice is not None:
            marked = True
        speaker = _voice(voice) if voice is not None else None
        pending.append(_Pending(timing[0], timing[1], speaker, clean(raw)))
    cues = _settle(pending, notes, marked)
    if not cues:
        raise ParseError("empty_document", "no cue with text")
    return Transcript("vtt", cues, language, notes)


# --- SRT --------------------------------------------------------------------------------------


def parse_srt(text: str) -> Transcript:
    lines = text.lstrip("\ufeff").splitlines()
    n = len(lines)
    pending: list[_Pending] = []
    notes: Counter = Counter()
    current: tuple[int, int] | None = None
    payload: list[str] = []

    marked = False

    def close() -> None:
        nonlocal marked
        if current is not None:
            raw = " ".join(payload)
            voice = _VOICE.search(raw) if "<v" in raw else None  # a WebVTT without its header
            if voice is not None:
                marked = True
            pending.append(_Pending(current[0], current[1], _voice(voice) if voice else None, clean(raw)))

    i = 0
    while i < n:
        line = lines[i]
        if "-->" in line and (current is None or _DIGITS_CLOCK.search(line)):
            timing = _timing(line, i + 1, "invalid_srt")
            if timing is None:
                raise ParseError("invalid_srt", f"line {i + 1}: unreadable cue timing {line.strip()[:80]!r}")
            close()
            current, payload = timing, []
        elif line.strip():
            stripped = line.strip()
            if stripped.isdigit() and i + 1 < n and "-->" in lines[i + 1]:
                pass  # the next cue's index
            elif current is None:
                notes["preamble_lines_skipped"] += 1
            else:
                payload.append(stripped)
        i += 1
    close()
    if not pending:
        if any(line.strip() for line in lines):
            raise ParseError("invalid_srt", "no cue timing line (`00:00:01,000 --> 00:00:02,000`)")
        raise ParseError("empty_document", "no cue")
    cues = _settle(pending, notes, marked)
    if not cues:
        raise ParseError("empty_document", "no cue with text")
    return Transcript("srt", cues, None, notes)


# --- JSON -------------------------------------------------------------------------------------


def _load_json(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ParseError("invalid_json", f"{type(exc).__name__}: {str(exc)[:200]}") from None


def _json_list(text: str, key: str, reason: str, other_key: str, other: str) -> tuple[dict, list]:
    """A JSON object and its list under `key` (`segments`, `chapters`), or `reason` saying what is
    wrong (the hint names the other Podcasting 2.0 document when that is what came)."""
    document = _load_json(text)
    if not isinstance(document, dict):
        raise ParseError(reason, f"the document is a JSON {type(document).__name__}, not an object")
    items = document.get(key)
    if items is None:
        hint = f" ({other})" if other_key in document else ""
        raise ParseError(reason, f"no `{key}`{hint}")
    if not isinstance(items, list):
        raise ParseError(reason, f"`{key}` is not a list")
    return document, items


def parse_json_transcript(text: str) -> Transcript:
    document, segments = _json_list(text, "segments", "invalid_transcript_json", "chapters", "a chapters file")
    pending: list[_Pending] = []
    for index, segment in enumerate(segments):
        where = f"segment {index}"
        if not isinstance(segment, dict):
            raise ParseError("invalid_transcript_json", f"{where} is not an object")
        start = _json_time(segment.get("startTime"), where, "invalid_transcript_json")
        end = _json_time(segment.get("endTime"), where, "invalid_transcript_json")
        if start is not None and end is not None and end < start:
            raise ParseError("bad_timings", f"{where}: ends before it starts")
        if start is None and end is not None:
            raise ParseError("bad_timings", f"{where}: an end time without a start time")
        body = segment.get("body")
        if body is not None and not isinstance(body, str):
            if isinstance(body, (int, float)) and not isinstance(body, bool):
                body = str(body)
            else:
                raise ParseError("invalid_transcript_json", f"{where}: `body` is not text")
        speaker = segment.get("speaker")
        if speaker is not None:
            if not isinstance(speaker, (str, int, float)) or isinstance(speaker, bool):
                raise ParseError("invalid_transcript_json", f"{where}: `speaker` is not text")
            speaker = clean(str(speaker))[:200]
        # a segment without a speaker has none (JSON names one per segment: nothing carries on)
        pending.append(_Pending(start, end, speaker or "", clean(body or "")))
    notes: Counter = Counter()
    cues = _settle(pending, notes, True)
    if not cues:
        raise ParseError("empty_document", "no segment with text")
    return Transcript("json", cues, None, notes)


# --- HTML and text ----------------------------------------------------------------------------

_BLOCKS = frozenset({"p", "div", "li", "br", "tr", "td", "dt", "dd", "h1", "h2", "h3", "h4", "h5", "h6",
                     "section", "article", "blockquote", "header", "footer", "table", "ul", "ol", "hr",
                     "main", "body", "pre"})
_SKIP = frozenset({"script", "style", "head", "title", "template", "noscript"})


class _HtmlTokens(HTMLParser):
    """Speaker, time and text tokens of an HTML transcript, in document order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tokens: list[tuple[str, str]] = []
        self.buffer: list[str] = []
        self.capture: str | None = None  # "cite" / "time" while inside one
        self.label_at: int | None = None  # where a leading <strong>/<b> started in the buffer
        self.skipping = 0

    def flush(self, kind: str = "text") -> None:
        value = _SPACE.sub(" ", "".join(self.buffer)).strip()
        self.buffer = []
        self.label_at = None
        if value:
            self.tokens.append((kind, value))

    def handle_starttag(self, tag, attrs):
        if tag in _SKIP:
            self.skipping += 1
        elif tag in ("cite", "time"):
            self.flush()
            self.capture = tag
        elif tag in _BLOCKS:
            self.flush(self.capture or "text")
            self.capture = None  # a block ends an unclosed <cite> or <time>
        elif tag in ("strong", "b") and not "".join(self.buffer).strip() and self.capture is None:
            self.label_at = len(self.buffer)

    def handle_startendtag(self, tag, attrs):
        if tag in _BLOCKS:
            self.flush(self.capture or "text")

    def handle_endtag(self, tag):
        if tag in _SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in ("cite", "time") and self.capture == tag:
            self.flush(tag)
            self.capture = None
        elif tag in _BLOCKS:
            self.flush(self.capture or "text")
        elif tag in ("strong", "b") and self.label_at is not None:
            label = "".join(self.buffer[self.label_at:]).strip()
            found = name_prefix(label) if label.endswith(":") else None
            if found and not found[1]:
                self.buffer = self.buffer[:self.label_at]
                self.flush()
                self.tokens.append(("cite", found[0]))
            self.label_at = None

    def handle_data(self, data):
        if not self.skipping:
            self.buffer.append(data)

    def close(self):
        super().close()
        self.flush(self.capture or "text")


# A time opening a line of text: in brackets or parentheses (`[01:02]`, `(1:02:03)`), or h:mm:ss
# (`00:01:02 text`); a bare `10:30` is not taken (`10:30 is when we met`) unless alone on its line.
_LEADING_CLOCK = re.compile(r"^(?:[\[(]((?:\d+:)?\d{1,2}:\d{2}(?:[.,]\d{1,3})?)[\])]|(\d+:\d{2}:\d{2}(?:[.,]\d{1,3})?))"
                            r"(?:[ \t]+|$)")


def _clock_or_note(value: str, notes: Counter) -> int | None:
    """A time written in HTML or text; one that cannot be a time in an episode (past 48 h,
    negative) is counted in `notes["unreadable_times_skipped"]` and left out."""
    try:
        clock = parse_clock(value)
    except ParseError:
        clock = None
    if clock is None:
        notes["unreadable_times_skipped"] += 1
    return clock


def _build(tokens: list[tuple[str, str]], fmt: str, paragraphs: bool) -> Transcript:
    """Cues from speaker ("cite"), time and text tokens (and "break" for a blank line of text). In
    paragraph mode a text token continues the cue before it unless a blank line, a time or a
    speaker came between, or the line starts with a time or a `Name:`."""
    pending: list[_Pending] = []
    notes: Counter = Counter()
    marked = any(kind == "cite" for kind, _ in tokens)
    named: str | None = None  # the speaker markup just named, for the next cue
    start: int | None = None
    joinable = False
    for kind, value in tokens:
        if kind == "break":
            joinable = False
        elif kind == "cite":
            named = (value[:-1].strip() if value.endswith(":") else value)[:200]
            joinable = False
        elif kind == "time":
            start = _clock_or_note(value, notes)
            joinable = False
        else:
            if fmt == "text":
                value = clean(value)
            m = _LEADING_CLOCK.match(value)
            if m is not None:
                start = _clock_or_note(m.group(1) or m.group(2), notes)
                value = value[m.end():].strip()
                joinable = False
            elif _CLOCK.match(value):
                start = _clock_or_note(value, notes)
                joinable = False
                continue
            if not value:
                continue
            prefix = name_prefix(value)
            if joinable and paragraphs and pending and prefix is None and named is None:
                last = pending[-1]
                pending[-1] = last._replace(text=f"{last.text} {value}")
            else:
                pending.append(_Pending(start, None, named, value))
                start, named = None, None
            joinable = prefix is None or bool(prefix[1])  # not after a `Name:` alone on its line
    cues = _settle(pending, notes, marked)
    if not cues:
        raise ParseError("empty_document", "no text")
    return Transcript(fmt, cues, None, notes)


def parse_html(text: str) -> Transcript:
    parser = _HtmlTokens()
    try:
        parser.feed(text)
        parser.close()
    except (AssertionError, ValueError) as exc:  # html.parser is forgiving; these are its last resort
        raise ParseError("unsupported_type", f"unreadable HTML: {exc}") from None
    return _build(parser.tokens, "html", paragraphs=False)


def parse_text(text: str) -> Transcript:
    lines = text.lstrip("\ufeff").splitlines()
    paragraphs = any(not line.strip() for line in lines[1:-1])
    tokens: list[tuple[str, str]] = []
    for line in lines:
        stripped = line.strip()
        tokens.append(("text", stripped) if stripped else ("break", ""))
    return _build(tokens, "text", paragraphs)


# --- entry points -----------------------------------------------------------------------------

_PARSERS = {"vtt": parse_vtt, "srt": parse_srt, "json": parse_json_transcript, "html": parse_html,
            "text": parse_text}


def parse_transcript(body: bytes, declared_type: str | None = None, content_type: str | None = None) -> Transcript:
    """A transcript's cues, or ParseError with the reason (see the module docstring)."""
    text = _text_of(body, content_type)
    fmt = choose_format(text, declared_type, content_type)
    result = _PARSERS[fmt](text)
    expected = declared_format(declared_type)
    if expected is not None and expected != fmt:
        result.notes["declared_type_mismatch"] += 1
    return result


def _link(value: Any, notes: Counter, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        notes[f"{what}_not_text"] += 1
        return None
    value = value.strip()
    try:
        parts = urlsplit(value)
    except ValueError:
        parts = None
    if parts is None or parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        notes[f"{what}_not_http"] += 1
        return None
    return value


def parse_chapters(body: bytes, declared_type: str | None = None, content_type: str | None = None) -> Chapters:
    """A Podcasting 2.0 chapters file, or ParseError with the reason."""
    text = _text_of(body, content_type)
    head = text.lstrip("\ufeff \t\r\n")[:1]
    if head not in ("{", "["):
        kinds = [media_type(t) for t in (declared_type, content_type)]
        if not any("json" in k for k in kinds) and any(k not in _WEAK_TYPES for k in kinds):
            raise ParseError("unsupported_type", f"type {next(k for k in kinds if k not in _WEAK_TYPES)[:80]!r} "
                                                 "is not a JSON chapters file")
        found = sniff(text)
        if found != "text":  # a web page (an error page served as 200) or a transcript
            raise ParseError("unsupported_type", f"the body is {found}, not a JSON chapters file")
    document, items = _json_list(text, "chapters", "invalid_chapters", "segments", "a transcript")
    version = document.get("version")
    version = None if version is None else str(version)[:40]
    notes: Counter = Counter()
    chapters: list[Chapter] = []
    for index, item in enumerate(items):
        where = f"chapter {index}"
        if not isinstance(item, dict):
            raise ParseError("invalid_chapters", f"{where} is not an object")
        if item.get("startTime") is None:
            raise ParseError("invalid_chapters", f"{where} has no startTime")
        start = _json_time(item.get("startTime"), where, "invalid_chapters")
        end = _json_time(item.get("endTime"), where, "invalid_chapters")
        if end is not None and end < start:
            raise ParseError("bad_timings", f"{where}: ends before it starts")
        title = item.get("title")
        if title is not None and not isinstance(title, str):
            if isinstance(title, (int, float)) and not isinstance(title, bool):
                title = str(title)
            else:
                raise ParseError("invalid_chapters", f"{where}: `title` is not text")
        title = clean(title) if title is not None else None
        toc = item.get("toc")
        if isinstance(toc, str) and toc.strip().lower() in ("true", "false"):
            toc = toc.strip().lower() == "true"
        elif toc is not None and not isinstance(toc, bool):
            notes["toc_not_boolean"] += 1
            toc = None
        chapters.append(Chapter(start, end, title or None, _link(item.get("url"), notes, "url"),
                                _link(item.get("img"), notes, "img"), toc))
    # `"chapters": []` is a valid file that says the episode has none: stored with no chapter
    return Chapters(version, chapters, notes)

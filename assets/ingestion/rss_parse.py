"""Pure parsing of podcast feeds: bytes in, typed records and quarantine reasons out.

feedparser does the forgiving work (encoding detection, dates, HTML sanitizing). It flattens
what podcast analytics needs (several `podcast:transcript` tags, the text of
`podcast:season name=...`, the literal `itunes:explicit`), so a second expat pass over the
decoded document keeps every child element of the channel and of each item as it came.
XML that is not well-formed is recovered by default, as feedparser and podcast apps do: a
tolerant tokenizer (`capture_tolerant`) rebuilds the same element capture, so a feed with one
undefined entity keeps its iTunes and Podcasting 2.0 tags, and its records are marked
`parse_degraded` with the parser's warnings. Entity declarations are refused before any
parsing, in every mode (XXE / entity expansion), in whatever encoding the document is written,
and a truncated document is never recovered.

Hostile or careless values never reach storage as they came: a declared encoding the bytes
contradict is corrected (UTF-8 declared as ISO-8859-1, stray bytes in declared UTF-8) with a
warning instead of garbling every accented letter; characters PostgreSQL cannot store (NUL,
lone surrogates) are removed; a link, image, transcript or chapters URL with a scheme other
than http(s) (`javascript:`, `data:`, `vbscript:`, `file:`...) is stored as null. Each of these
adds a line to the feed's `parse_warnings`. Nothing here does I/O.
"""

from __future__ import annotations

import calendar
import hashlib
import html
import json
import re
import xml.parsers.expat
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser
from feedparser.datetimes import _parse_date as parse_date_struct  # the same date rules on both paths

ITUNES_NS = "itunes.com/dtds/podcast-1.0.dtd"
PODCAST_NS = "podcastindex.org/namespace/1.0"
BENIGN_BOZO = (
    feedparser.CharacterEncodingOverride,
    feedparser.CharacterEncodingUnknown,
    feedparser.NonXMLContentType,
)
ENTITY_MARKERS = tuple("<!ENTITY".encode(codec) for codec in ("utf-8", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"))
MAX_TEXT = 20_000


@dataclass
class Rejection:
    reason_code: str
    detail: str
    item_key: str | None = None
    guid: str | None = None
    title: str | None = None
    payload: dict[str, Any] | None = None


@dataclass
class ParsedFeed:
    podcast: dict[str, Any] | None = None
    episodes: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    feed_error: Rejection | None = None
    warnings: list[str] = field(default_factory=list)
    # True when the document was not well-formed and was recovered: its records may miss what
    # the broken part held (stored as `parse_degraded` on the feed and on each of its episodes).
    degraded: bool = False


# --- scalar parsers -------------------------------------------------------------------------

_CLOCK = re.compile(r"^(\d+):(\d{1,2})(?::(\d{1,2}))?(?:[.,](\d+))?$")
_SECONDS = re.compile(r"^\d+(?:[.,]\d+)?$")
_UNITS = re.compile(
    r"^(?:(\d+)\s*h(?:ours?|rs?)?)?\s*(?:(\d+)\s*m(?:in(?:utes?)?)?)?\s*(?:(\d+)\s*s(?:ec(?:onds?)?)?)?$",
    re.IGNORECASE,
)


class InvalidDuration(ValueError):
    pass


def parse_duration(value: str | None) -> int | None:
    """Seconds from `itunes:duration`: `3600`, `3600.4`, `1:00:00`, `60:00`, `5:07`, `1h 2m 3s`.

    Returns None for absent or unreadable values; raises InvalidDuration for negative ones.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.startswith("-"):
        raise InvalidDuration(f"negative duration {value!r}")
    if _SECONDS.match(text):
        return int(float(text.replace(",", ".")) + 0.5)
    clock = _CLOCK.match(text)
    if clock:
        a, b, c, frac = clock.groups()
        if c is None:  # MM:SS (minutes may exceed 59: "90:00")
            hours, minutes, seconds = 0, int(a), int(b)
        else:
            hours, minutes, seconds = int(a), int(b), int(c)
        if seconds > 59 or (c is not None and minutes > 59):
            return None
        total = hours * 3600 + minutes * 60 + seconds
        if frac and int(frac[0]) >= 5:
            total += 1
        return total
    units = _UNITS.match(text)
    if units and any(units.groups()):
        h, m, s = (int(g) if g else 0 for g in units.groups())
        return h * 3600 + m * 60 + s
    return None


def parse_explicit(value: str | None) -> bool | None:
    if value is None:
        return None
    text = value.strip().lower()
    if text in ("yes", "true", "explicit", "1"):
        return True
    if text in ("no", "false", "clean", "0"):
        return False
    return None


def parse_positive_int(value: str | None) -> int | None:
    if value is None:
        return None
    text = value.strip()
    if text.isdigit() and 0 < int(text) < 2**31:
        return int(text)
    return None


MAX_LENGTH = 2**63 - 1  # bigint: enclosures of 2 GiB and more are real (video, long shows)


def parse_length(value: str | None) -> int | None:
    """Bytes from an enclosure `length`: a positive integer up to bigint. `0`, empty, negative
    and non-numeric values are unknown (None); which positive values are plausible for the
    media is decided downstream (`int_episode_media`), not here."""
    if value is None:
        return None
    text = str(value).strip()
    if text.isdigit() and 0 < int(text) <= MAX_LENGTH:
        return int(text)
    return None


_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")
_SCRIPT = re.compile(r"(?is)<\s*(script|style)\b.*?<\s*/\s*\1\s*>")
_BLOCK = re.compile(r"(?i)<\s*/?\s*(br|p|div|li|ul|ol|h\d|tr|td|blockquote)\b[^>]*>")


def html_to_text(value: str | None) -> str | None:
    """Plain text from an HTML fragment: scripts and styles go with their content, block tags
    become spaces, inline tags vanish, entities are decoded and whitespace collapsed."""
    if value is None:
        return None
    text = _TAG.sub("", _BLOCK.sub(" ", _SCRIPT.sub(" ", value)))
    text = _SPACE.sub(" ", html.unescape(text)).strip()
    return text or None


def clean_text(value: str | None) -> str | None:
    if value is None:
        return None
    text = _SPACE.sub(" ", html.unescape(value)).strip()
    return text or None


def valid_http_url(value: str | None) -> bool:
    if not value:
        return False
    parts = urlsplit(value)
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc) and " " not in value


def _join(base: str, link: str | None) -> str | None:
    """`link` resolved against the feed's URL; as written when it cannot be (`safe_url` judges it)."""
    if not link:
        return None
    try:
        return urljoin(base, link)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return link


def safe_url(value: str | None, where: str, warnings: Warnings) -> str | None:
    """`value` unless it names a scheme other than http(s): `javascript:`, `data:`, `file:`...
    would run or read something where the link is shown or followed (null, with a warning).
    Relative references are kept as they are."""
    if value is None:
        return None
    try:
        scheme = urlsplit(value).scheme  # browsers' rules: leading blanks, tabs and newlines ignored
    except ValueError:
        scheme = "(unreadable)"
    if scheme and scheme.lower() not in ("http", "https"):
        warnings.add(f"{where}: URL with scheme {scheme[:20]!r} dropped", value)
        return None
    return value


UNSTORABLE = re.compile("[\x00\ud800-\udfff]")  # what PostgreSQL text and jsonb refuse


def scrub(value: Any, warnings: Warnings) -> Any:
    """`value` (text, or dicts and lists of it) without the characters PostgreSQL text and
    jsonb refuse: NUL and lone surrogates."""
    if isinstance(value, str):
        if UNSTORABLE.search(value):
            warnings.add("NUL or surrogate characters removed", value)
            return UNSTORABLE.sub("", value)
        return value
    if isinstance(value, dict):
        return {scrub(k, warnings): scrub(v, warnings) for k, v in value.items()}
    if isinstance(value, list) or type(value) is tuple:
        return type(value)(scrub(v, warnings) for v in value)
    return value


class Warnings:
    """Parse warnings counted by kind, one line each in `parse_warnings` (with the first value)."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.examples: dict[str, str] = {}

    def add(self, kind: str, example: str) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        self.examples.setdefault(kind, UNSTORABLE.sub("", example)[:80])

    def lines(self) -> list[str]:
        return [f"{kind} ({n}x, first {self.examples[kind]!r})" for kind, n in self.counts.items()]


def struct_to_utc(value) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(value), tz=timezone.utc)
    except (OverflowError, ValueError, TypeError):
        return None


def content_hash(record: dict[str, Any]) -> str:
    blob = json.dumps(record, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


# --- raw element capture --------------------------------------------------------------------


def _ns_kind(uri: str | None) -> str | None:
    if not uri:
        return None
    bare = uri.lower().split("://", 1)[-1].rstrip("/")
    if bare.endswith(ITUNES_NS):
        return "itunes"
    if bare.startswith(PODCAST_NS):
        return "podcast"
    return KNOWN_NAMESPACES.get(bare)


KNOWN_NAMESPACES = {
    "purl.org/rss/1.0/modules/content": "content",
    "search.yahoo.com/mrss": "media",
    "purl.org/dc/elements/1.1": "dc",
    "www.w3.org/2005/atom": "atom",
}


class _Capture:
    """Collects the direct children of <channel> and of every <item>/<entry> as dicts
    (`tag`, `attrs`, own `text`), with their own children one level down (`children`).

    Tags keep a conventional prefix (`itunes:`, `podcast:`, `content:`, `media:`...) whatever
    prefix the document bound to the namespace, and undeclared `itunes:`/`podcast:` prefixes
    are taken at their word.
    """

    def __init__(self) -> None:
        self.root: str | None = None
        self.channel: list[dict[str, Any]] = []
        self.items: list[list[dict[str, Any]]] = []
        self.prefixes: dict[str, str] = {"itunes": "itunes", "podcast": "podcast"}
        self._depth = 0
        self._container_depth: int | None = None
        self._item_depth: int | None = None
        self._el: dict[str, Any] | None = None
        self._el_depth = -1
        self._child: dict[str, Any] | None = None
        self._text: list[str] = []
        self._child_text: list[str] = []

    def _name(self, tag: str) -> str:
        if ":" in tag:
            prefix, local = tag.split(":", 1)
            kind = self.prefixes.get(prefix.lower())
            return f"{kind}:{local}" if kind else tag
        return tag

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        for key, uri in attrs.items():
            if key.startswith("xmlns:"):
                kind = _ns_kind(uri)
                if kind:
                    self.prefixes[key[6:].lower()] = kind
        depth = self._depth
        self._depth += 1
        local = tag.rsplit(":", 1)[-1].lower()
        if depth == 0:
            self.root = local
        if self._item_depth is None and self._el is None and local in ("item", "entry") and depth >= 1:
            self._item_depth = depth
            self.items.append([])
            return
        if self._container_depth is None and local in ("channel", "feed"):
            self._container_depth = depth
            return
        parent = self._item_depth if self._item_depth is not None else self._container_depth
        if parent is None:
            return
        if self._el is None and depth == parent + 1:
            self._el = {"tag": self._name(tag), "attrs": dict(attrs)}
            self._el_depth = depth
            self._text = []
        elif self._el is not None and self._child is None and depth == self._el_depth + 1:
            self._child = {"tag": self._name(tag), "attrs": dict(attrs)}
            self._child_text = []

    def end(self, tag: str) -> None:
        self._depth -= 1
        depth = self._depth
        if self._child is not None and depth == self._el_depth + 1:
            text = "".join(self._child_text).strip()
            if text:
                self._child["text"] = text[:MAX_TEXT]
            self._el.setdefault("children", []).append(self._child)
            self._child = None
        elif self._el is not None and depth == self._el_depth:
            text = "".join(self._text).strip()
            if text:
                self._el["text"] = text[:MAX_TEXT]
            (self.items[-1] if self._item_depth is not None else self.channel).append(self._el)
            self._el = None
        elif self._item_depth is not None and depth == self._item_depth:
            self._item_depth = None

    def data(self, text: str) -> None:
        if self._child is not None:
            if self._depth == self._el_depth + 2:
                self._child_text.append(text)
        elif self._el is not None and self._depth == self._el_depth + 1:
            self._text.append(text)


_XML_DECL = re.compile(r"^\s*<\?xml[^>]*\?>")
# The encoding an XML declaration names, wherever it is (PHP warnings may precede it): without a
# Content-Type charset feedparser assumes ISO-8859-1 for a broken document, which garbles UTF-8.
_DECLARED_ENCODING = re.compile(rb"<\?xml[^>]*encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")


def _run_expat(data: bytes, encoding: str | None) -> _Capture | None:
    capture = _Capture()
    parser = xml.parsers.expat.ParserCreate(encoding)
    parser.SetParamEntityParsing(xml.parsers.expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartElementHandler = capture.start
    parser.EndElementHandler = capture.end
    parser.CharacterDataHandler = capture.data
    parser.buffer_text = True
    try:
        parser.Parse(data, True)
    except (xml.parsers.expat.ExpatError, LookupError, ValueError):
        return None
    return capture


def capture_elements(text: str) -> _Capture | None:
    """Run expat over an already decoded document; None when it is not well-formed."""
    return _run_expat(_XML_DECL.sub("", text, count=1).encode("utf-8"), "utf-8")


def capture_bytes(body: bytes) -> _Capture | None:
    """Run expat on the bytes as they came (declared encoding); None unless well-formed and
    in an encoding expat knows natively (UTF-8/16, ISO-8859-1, ASCII)."""
    return _run_expat(body, None)


_TOKEN = re.compile(
    r"<!\[CDATA\[(?P<cdata>.*?)(?:\]\]>|\Z)"
    r"|<!--.*?(?:-->|\Z)"
    r"|<\?.*?(?:\?>|\Z)"
    r"|<!(?:[^>\[]|\[[^\]]*\])*>"
    r"|</\s*(?P<end>[^\s>]+)\s*>"
    r"|<(?P<start>[A-Za-z_][\w:.\-]*)(?P<attrs>(?:\s+[^\s=/>]+(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s\"'>]+))?)*)\s*(?P<empty>/?)>"
    r"|(?P<text>[^<]+|<)",
    re.S,
)
_ATTR = re.compile(r"""([^\s=/>]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?""")
_ROOTS = ("rss", "feed", "rdf")


def capture_tolerant(text: str) -> tuple[_Capture, bool]:
    """The element capture of a document that is not well-formed, and whether its root element
    was closed (False: the document is truncated).

    A forgiving tokenizer drives the same `_Capture` as expat: anything before the root element
    is skipped (PHP warnings printed ahead of the feed), entity references are decoded as HTML
    does (an undefined `&nbsp;` or a bare `&` keeps its text, an unknown name stays as written),
    an end tag closes the elements left open inside it and a stray end tag is ignored. It never
    resolves a declared entity or fetches anything: documents declaring entities are refused
    before parsing (`has_entity_declarations`)."""
    capture = _Capture()
    stack: list[str] = []
    started = closed = False
    for match in _TOKEN.finditer(text):
        start, end = match.group("start"), match.group("end")
        if start:
            if not started:
                if start.rsplit(":", 1)[-1].lower() not in _ROOTS:
                    continue
                started = True
            elif not stack:
                continue  # content after the root element
            attrs = {}
            for name, dq, sq, bare in _ATTR.findall(match.group("attrs") or ""):
                attrs[name] = html.unescape(dq or sq or bare)
            capture.start(start, attrs)
            if match.group("empty"):
                capture.end(start)
            else:
                stack.append(start)
        elif end:
            if end in stack:
                while stack:
                    tag = stack.pop()
                    capture.end(tag)
                    if tag == end:
                        break
                closed = closed or not stack
        elif stack:
            cdata = match.group("cdata")
            if cdata is not None:
                capture.data(cdata)
            elif match.group("text"):
                capture.data(html.unescape(match.group("text")))
    while stack:
        capture.end(stack.pop())
    return capture, closed


def _first(elements: list[dict[str, Any]], tag: str) -> dict[str, Any] | None:
    for element in elements:
        if element["tag"] == tag:
            return element
    return None


def _text(elements: list[dict[str, Any]], tag: str) -> str | None:
    element = _first(elements, tag)
    return element.get("text") if element else None


def _all(elements: list[dict[str, Any]], tag: str) -> list[dict[str, Any]]:
    return [e for e in elements if e["tag"] == tag]


def _attr(elements: list[dict[str, Any]], tag: str, name: str) -> str | None:
    element = _first(elements, tag)
    return element["attrs"].get(name) if element else None


# --- feed parsing ---------------------------------------------------------------------------


_EBCDIC_XML = b"\x4c\x6f\xa7\x94"  # "<?xm" in EBCDIC, which feedparser detects and decodes
_CHARSET = re.compile(r"""charset\s*=\s*["']?([\w.:-]+)""", re.IGNORECASE)


def _charset(content_type: str | None) -> str | None:
    match = _CHARSET.search(content_type or "")
    return match.group(1) if match else None


def has_entity_declarations(body: bytes, content_type: str | None = None) -> bool:
    """Whether the document declares entities, in any encoding a parser here would read it in:
    UTF-8, UTF-16 and UTF-32 (either byte order; every ASCII-compatible encoding spells the
    markup as UTF-8 does) by its bytes; any other encoding its XML declaration or Content-Type
    names (UTF-7, EBCDIC...) by the decoded text."""
    if any(marker in body for marker in ENTITY_MARKERS):
        return True
    declared = _DECLARED_ENCODING.search(body[:4096])
    candidates = [declared.group(1).decode("ascii") if declared else None, _charset(content_type),
                  "cp037" if body.startswith(_EBCDIC_XML) else None]
    for encoding in filter(None, candidates):
        try:
            if "<!ENTITY".encode(encoding) != b"<!ENTITY" and "<!ENTITY" in body.decode(encoding, errors="ignore"):
                return True
        except LookupError:
            continue
    return False


_CHAR_REF = re.compile(rb"&#(?:[xX]([0-9a-fA-F]{1,16})|([0-9]{1,20}));")


def _storable_char_refs(body: bytes) -> bytes:
    """Character references to what no text may hold (NUL, surrogates, beyond U+10FFFF) as U+FFFD:
    expat refuses them, feedparser's recovery crashes on them (a surrogate cannot be encoded)."""
    def replace(match: re.Match) -> bytes:
        hexa, decimal = match.groups()
        code = int(hexa, 16) if hexa else int(decimal)
        return b"&#xFFFD;" if code == 0 or 0xD800 <= code <= 0xDFFF or code > 0x10FFFF else match.group(0)

    return _CHAR_REF.sub(replace, body) if b"&#" in body else body


_SINGLE_BYTE = {"iso-8859-1", "iso8859-1", "iso_8859-1", "latin-1", "latin1", "l1", "windows-1252", "cp1252",
                "us-ascii", "ascii", "iso-8859-15", "latin-9"}
_UTF8 = {"utf-8", "utf8"}
_UNICODE_PREFIXES = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff", b"\x00<", b"<\x00", _EBCDIC_XML)
_DECLARATION_ENCODING = re.compile(r"""(<\?xml[^>]*encoding\s*=\s*["'])[A-Za-z0-9._-]+""")


def repair_encoding(body: bytes, content_type: str | None) -> tuple[bytes, str | None, str | None]:
    """The document as UTF-8 when its declared encoding contradicts its bytes, the Content-Type
    to read it with, and a warning saying what was corrected (None: left as it came).

    - Declared ISO-8859-1/windows-1252/ASCII, but the bytes are valid UTF-8 with multi-byte
      characters: UTF-8 (read as declared, every accented letter would become two).
    - Declared UTF-8 (or nothing: XML's default) with bytes that are not UTF-8: where the rest is
      UTF-8, the stray sequences become U+FFFD; where no character is UTF-8, the document is
      windows-1252, as most such feeds are.
    Other declared encodings, and UTF-16/32 or EBCDIC documents, are read by their decoders."""
    if body.isascii() or body.startswith(_UNICODE_PREFIXES):
        return body, content_type, None
    declared = _DECLARED_ENCODING.search(body[:4096])
    names = {n.lower() for n in (declared.group(1).decode("ascii") if declared else None, _charset(content_type)) if n}
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None:
        if not names & _SINGLE_BYTE:
            return body, content_type, None
        warning = f"declared {sorted(names & _SINGLE_BYTE)[0]} but the bytes are UTF-8: read as UTF-8"
    elif names <= _UTF8:
        text = body.decode("utf-8", errors="replace")
        invalid = text.count("\ufffd") - body.count("\ufffd".encode())
        if any(ord(ch) > 127 and ch != "\ufffd" for ch in text):
            warning = f"declared UTF-8 but {invalid} byte sequence(s) are not UTF-8: replaced with U+FFFD"
        else:
            text = body.decode("windows-1252", errors="replace")
            warning = "declared UTF-8 but the bytes are not UTF-8: read as windows-1252"
    else:
        return body, content_type, None
    repaired = _DECLARATION_ENCODING.sub(r"\1utf-8", text, count=1).encode("utf-8")
    if content_type and _charset(content_type):
        content_type = _CHARSET.sub("charset=utf-8", content_type)
    return repaired, content_type, warning


def decode_document(body: bytes, encoding: str | None) -> str:
    for candidate in (encoding, "utf-8", "windows-1252"):
        if not candidate:
            continue
        try:
            return body.decode(candidate)
        except (LookupError, UnicodeDecodeError):
            continue
    return body.decode("utf-8", errors="replace")


def parse_feed(
    body: bytes, feed_url: str, content_type: str | None = None, strict_xml: bool = False,
    fast_path: bool = True,
) -> ParsedFeed:
    """Parse a fetched feed. A feed-level problem sets `feed_error`; item problems go to `rejected`.

    Well-formed RSS 2.0 in an encoding expat reads natively takes the fast path: one expat pass
    builds every record. Anything else (Atom, RSS 1.0, wrong or exotic encodings, broken XML)
    goes through feedparser, with the expat pass over the decoded text for the tags feedparser
    flattens. Both paths build records with the same code.
    """
    result = ParsedFeed()
    if has_entity_declarations(body, content_type):
        result.feed_error = Rejection("xml_entities_forbidden", "document declares XML entities (possible entity expansion attack)")
        return result
    if body[:1].isspace() and body.lstrip()[:5] == b"<?xml":
        # Whitespace before the XML declaration: common, harmless, but not well-formed.
        result.warnings.append("leading whitespace before the XML declaration removed")
        body = body.lstrip()
    body, content_type, repaired = repair_encoding(body, content_type)
    if repaired:
        result.warnings.append(repaired)
    capture = capture_bytes(body) if fast_path else None
    if capture is not None and capture.root == "rss" and capture._container_depth is not None:
        result.podcast = _podcast_record(_channel_basics(capture.channel, feed_url), capture.channel, "rss20", "utf-8")
        entries = [(_item_basics(raw, feed_url), raw) for raw in capture.items]
        return _collect(result, entries, from_expat=True)

    body = _storable_char_refs(body)
    headers = {"content-location": feed_url}
    if content_type:
        headers["content-type"] = content_type
    parsed = feedparser.parse(body, response_headers=headers, sanitize_html=True, resolve_relative_uris=True)
    bozo = parsed.get("bozo_exception") if parsed.get("bozo") else None
    if bozo is not None and (isinstance(bozo, BENIGN_BOZO) or "unbound prefix" in str(bozo)):
        # Undeclared namespace prefixes (a bare `itunes:` in many real feeds) have one obvious
        # meaning; the raw element capture resolves them by their conventional prefix.
        result.warnings.append(f"{type(bozo).__name__}: {bozo}")
        bozo = None
    if not parsed.get("version") and not parsed.entries:
        detail = f"{type(bozo).__name__}: {bozo}" if bozo else "no RSS/Atom document found"
        result.feed_error = Rejection("not_a_feed", detail)
        return result
    if bozo is not None:
        if strict_xml:
            result.feed_error = Rejection("malformed_xml", f"{type(bozo).__name__}: {bozo}")
            return result
        declared = _DECLARED_ENCODING.search(body[:4096])
        encoding = declared.group(1).decode("ascii") if declared else parsed.get("encoding")
        capture, closed = capture_tolerant(decode_document(body, encoding))
        if not closed:
            # A cut-off transfer, not an authoring slip: recovering it would store a partial
            # feed and a half-written last item as if they were the publisher's.
            result.feed_error = Rejection(
                "malformed_xml", f"document ends before its root element closes (truncated): {type(bozo).__name__}: {bozo}")
            return result
        result.degraded = True
        result.warnings.append(f"recovered from {type(bozo).__name__}: {bozo}")
        if capture.root == "rss" and capture._container_depth is not None:
            result.podcast = _podcast_record(_channel_basics(capture.channel, feed_url), capture.channel,
                                             parsed.get("version") or "rss20", parsed.get("encoding"))
            entries = [(_item_basics(raw, feed_url), raw) for raw in capture.items]
            return _collect(result, entries)
    else:
        text = decode_document(body, parsed.get("encoding"))
        capture = capture_elements(text) or capture_tolerant(text)[0]
    if len(capture.items) != len(parsed.entries):
        result.warnings.append("raw element capture unavailable; using feedparser values only")
        capture = None
    channel_raw = capture.channel if capture else []
    result.podcast = _podcast_record(_feedparser_channel_basics(parsed.feed), channel_raw,
                                     parsed.get("version"), parsed.get("encoding"))
    entries = [
        (_feedparser_item_basics(entry), capture.items[i] if capture else [])
        for i, entry in enumerate(parsed.entries)
    ]
    return _collect(result, entries)


def _collect(result: ParsedFeed, entries: list[tuple[dict[str, Any], list[dict[str, Any]]]],
             from_expat: bool = False) -> ParsedFeed:
    """Records and rejections from the entries. Values expat read from the bytes need no scrubbing:
    it refuses NUL and surrogates, even as character references."""
    notes = Warnings()
    seen_guids: set[str] = set()
    for position, (basics, raw) in enumerate(entries):
        if not from_expat:
            basics, raw = scrub(basics, notes), scrub(raw, notes)
        record, rejection = _episode_record(basics, raw, position, result.degraded, notes)
        if rejection is None and record["guid"] in seen_guids:
            rejection = Rejection("duplicate_guid", f"guid {record['guid']!r} already used by an earlier item")
        if rejection is not None:
            rejection.guid = rejection.guid or record.get("guid")
            rejection.title = rejection.title or record.get("title")
            rejection.payload = {"elements": raw} if raw else basics.get("_payload")
            rejection.item_key = rejection.guid or content_hash(rejection.payload)[:32]
            result.rejected.append(rejection)
            continue
        seen_guids.add(record["guid"])
        result.episodes.append(record)
    podcast = scrub(result.podcast, notes)
    for name in ("link", "image_url", "new_feed_url"):
        podcast[name] = safe_url(podcast[name], f"channel {name}", notes)
    result.warnings = scrub([*result.warnings, *notes.lines()], Warnings())
    podcast["episode_count"] = len(result.episodes)
    podcast["parse_degraded"] = result.degraded
    podcast["parse_warnings"] = list(result.warnings)
    result.podcast = podcast
    return result


def _entry_payload(entry) -> dict[str, Any]:
    return json.loads(json.dumps({k: v for k, v in entry.items() if not k.endswith("_parsed")}, default=str))


# Basics: the fields read differently by the two paths. Everything else comes from the raw
# elements in `_podcast_record` / `_episode_record`, the same for both.


def _feedparser_channel_basics(feed) -> dict[str, Any]:
    publisher = feed.get("publisher_detail") or {}
    return {
        "title": feed.get("title"),
        "link": feed.get("link"),
        "description_html": feed.get("subtitle") or feed.get("summary"),
        "language": feed.get("language"),
        "author": feed.get("author"),
        "owner_name": publisher.get("name"),  # feedparser maps itunes:owner here
        "owner_email": publisher.get("email"),
        "image_url": (feed.get("image") or {}).get("href"),
        "itunes_type": feed.get("itunes_type"),
        "explicit_raw": None if feed.get("itunes_explicit") is None else ("yes" if feed.get("itunes_explicit") else "clean"),
        "categories": [t.get("term") for t in feed.get("tags", []) if t.get("term")],
        "podcast_guid": feed.get("podcast_guid"),
        "generator": feed.get("generator"),
        "updated_raw": feed.get("updated") or feed.get("published"),
    }


def _channel_basics(raw: list[dict[str, Any]], feed_url: str) -> dict[str, Any]:
    owner = (_first(raw, "itunes:owner") or {}).get("children", [])
    image = _first(raw, "image")
    link = _text(raw, "link")
    return {
        "title": _text(raw, "title"),
        "link": _join(feed_url, link),
        "description_html": _text(raw, "description") or _text(raw, "itunes:summary") or _text(raw, "itunes:subtitle"),
        "language": _text(raw, "language"),
        "author": _text(raw, "managingEditor") or _text(raw, "dc:creator"),
        "owner_name": _text(owner, "itunes:name"),
        "owner_email": _text(owner, "itunes:email"),
        "image_url": _text((image or {}).get("children", []), "url"),
        "itunes_type": None,
        "explicit_raw": None,
        "categories": [c["text"] for c in _all(raw, "category") if c.get("text")],
        "podcast_guid": None,
        "generator": _text(raw, "generator"),
        "updated_raw": _text(raw, "lastBuildDate") or _text(raw, "pubDate") or _text(raw, "dc:date"),
    }


def _podcast_record(basics: dict[str, Any], raw: list[dict[str, Any]], version: str | None, encoding: str | None) -> dict[str, Any]:
    categories = [c["attrs"].get("text") for c in _all(raw, "itunes:category") if c["attrs"].get("text")]
    return {
        "title": clean_text(basics["title"]),
        "link": basics["link"],
        "description_html": basics["description_html"],
        "language": basics["language"],
        "author": clean_text(_text(raw, "itunes:author") or basics["author"]),
        "owner_name": clean_text(basics["owner_name"]),
        "owner_email": basics["owner_email"],
        "image_url": _attr(raw, "itunes:image", "href") or basics["image_url"],
        "itunes_type": _text(raw, "itunes:type") or basics["itunes_type"],
        "explicit_raw": _text(raw, "itunes:explicit") or basics["explicit_raw"],
        "categories": categories or basics["categories"],
        "podcast_guid": _text(raw, "podcast:guid") or basics["podcast_guid"],
        "medium": _text(raw, "podcast:medium"),
        "new_feed_url": _text(raw, "itunes:new-feed-url"),
        "itunes_complete": _text(raw, "itunes:complete"),
        "itunes_block": _text(raw, "itunes:block"),
        "generator": basics["generator"],
        "updated_raw": basics["updated_raw"],
        "payload": {"version": version, "encoding": encoding, "elements": raw},
    }


def _feedparser_item_basics(entry) -> dict[str, Any]:
    enclosures = entry.get("enclosures") or []
    first = enclosures[0] if enclosures else {}
    summary = entry.get("summary")
    content = entry.get("content") or []
    return {
        "title": entry.get("title"),
        "link": entry.get("link"),
        "description_html": content[0].get("value") if content and not summary else summary,
        "published_raw": entry.get("published") or entry.get("updated"),
        "published": entry.get("published_parsed") or entry.get("updated_parsed"),
        "guid": entry.get("id"),
        "enclosure": (first.get("href"), first.get("length"), first.get("type")),
        "duration_raw": entry.get("itunes_duration"),
        "episode_type": entry.get("itunes_episodetype"),
        "transcripts": [dict(entry["podcast_transcript"])] if entry.get("podcast_transcript") else [],
        "chapters": entry.get("podcast_chapters") or {},
        "_payload": _entry_payload(entry),
    }


def _item_basics(raw: list[dict[str, Any]], feed_url: str) -> dict[str, Any]:
    link = _text(raw, "link")
    published_raw = _text(raw, "pubDate") or _text(raw, "dc:date")
    return {
        "title": _text(raw, "title"),
        "link": _join(feed_url, link),
        "description_html": _text(raw, "description") or _text(raw, "content:encoded") or _text(raw, "itunes:summary"),
        "published_raw": published_raw,
        "published": parse_date_struct(published_raw) if published_raw else None,
        "guid": _text(raw, "guid"),
        "enclosure": (None, None, None),  # read from the raw elements, as on both paths
        "duration_raw": None,
        "episode_type": None,
        "transcripts": [],
        "chapters": {},
        "_payload": None,
    }


def _episode_record(basics: dict[str, Any], raw: list[dict[str, Any]], position: int, degraded: bool = False,
                    notes: Warnings | None = None) -> tuple[dict[str, Any], Rejection | None]:
    notes = notes if notes is not None else Warnings()
    enclosure_el = _first(raw, "enclosure") or _first(raw, "media:content")
    if enclosure_el is not None:
        enc = enclosure_el["attrs"]
        enclosure_url = (enc.get("url") or "").strip() or None
        enclosure_length, enclosure_type = enc.get("length"), enc.get("type")
    else:
        url, enclosure_length, enclosure_type = basics["enclosure"]
        enclosure_url = (url or "").strip() or None
    guid = (_text(raw, "guid") if raw else None) or basics["guid"]
    guid = guid.strip() if guid else None
    guid_source = "guid"
    if not guid:
        guid, guid_source = enclosure_url, "enclosure_url"
    title = clean_text(basics["title"])
    itunes_title = clean_text(_text(raw, "itunes:title"))
    duration_raw = _text(raw, "itunes:duration") or basics["duration_raw"]
    season_raw = _text(raw, "itunes:season") or _text(raw, "podcast:season")
    episode_raw = _text(raw, "itunes:episode") or _text(raw, "podcast:episode")
    transcripts = [
        {k: e["attrs"].get(k) for k in ("url", "type", "language", "rel") if e["attrs"].get(k)}
        for e in _all(raw, "podcast:transcript")
    ] or basics["transcripts"]
    transcripts = [t for t in transcripts if safe_url(t.get("url"), "item transcript url", notes) is not None]
    chapters = (_first(raw, "podcast:chapters") or {}).get("attrs") or basics["chapters"]
    description_html = basics["description_html"]
    record: dict[str, Any] = {
        "guid": guid,
        "guid_source": guid_source,
        "feed_position": position,
        "title": title,
        "itunes_title": itunes_title,
        "link": safe_url(basics["link"], "item link", notes),
        "description_html": description_html,
        "description_text": html_to_text(description_html),
        "published_raw": basics["published_raw"],
        "published_at": struct_to_utc(basics["published"]),
        "duration_raw": duration_raw,
        "duration_seconds": None,
        "explicit_raw": _text(raw, "itunes:explicit"),
        "itunes_episode_type": _text(raw, "itunes:episodeType") or basics["episode_type"],
        "season_raw": season_raw,
        "season_number": parse_positive_int(season_raw),
        "episode_raw": episode_raw,
        "episode_number": parse_positive_int(episode_raw),
        "enclosure_url": enclosure_url,
        "enclosure_length": parse_length(enclosure_length),
        "enclosure_type": enclosure_type,
        "image_url": safe_url(_attr(raw, "itunes:image", "href"), "item image_url", notes),
        "transcripts": transcripts,
        "chapters_url": safe_url(chapters.get("url"), "item chapters_url", notes),
        "chapters_type": chapters.get("type"),
        "parse_degraded": degraded,
    }
    if enclosure_url is None:
        return record, Rejection("missing_enclosure", "item has no enclosure URL")
    if not valid_http_url(enclosure_url):
        return record, Rejection("invalid_enclosure_url", f"enclosure URL {enclosure_url[:200]!r} is not http(s)")
    if not title and not itunes_title:
        return record, Rejection("missing_title", "item has neither title nor itunes:title")
    try:
        record["duration_seconds"] = parse_duration(duration_raw)
    except InvalidDuration as exc:
        return record, Rejection("invalid_duration", str(exc))
    record["payload"] = {"elements": raw} if raw else basics["_payload"]
    record["content_hash"] = content_hash(record)
    return record, None

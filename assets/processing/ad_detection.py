"""Ad-slot detection from an episode's transcript, chapters and show notes.

A rule-based detector (`RuleDetector`), chosen over a trained model because every decision it
makes can be read back as evidence, it needs no weights, and it meets the accuracy goals on the
simulator's planted reads (docs/AD_DETECTION.md gives the figures and how they are measured).
It works in four steps:

1. **Cue features.** Each cue's text is normalised (spoken URLs such as "acme dot com slash show"
   become `acme.com/show`) and searched for: sponsor openings ("brought to you by", "thanks to
   our sponsor", "support for this show comes from" ...), calls to action ("go to", "use code",
   "20% off", "terms apply" ...), URLs and promo codes, negations ("not a sponsor", "nobody pays
   us"), the show's own offers (Patreon, merch, newsletter), lead-ins ("we'll be right back")
   and transitions back to the show ("anyway, back to ...").
2. **Anchors and segments.** A cue with an opening, a promo code, or a sponsor URL with a call to
   action anchors a read; anchors close together (no transition back between them) form one
   segment. A segment grows backwards over cues that name its brand and forwards over cues that
   still carry its brand, URL, code or a call to action, and stops at a transition back to the
   show, a lead-in or a change of speaker out of a produced spot.
3. **Sponsor.** The segment's most named sponsor URL gives the domain (registrable host, no
   `www.`), the vanity URL (host + path) and the brand; the promo code is the code said in it.
   A segment that names no sponsor, or whose only URLs are the show's own or platforms', is
   dropped; so is one whose anchor sits in a negation.
4. **Chapters and show notes.** Chapters titled as ads ("Sponsor: X", "Ad break", "A word from
   our sponsors") confirm an overlapping segment, or become a slot of their own (kind `break`
   when they name no sponsor); show-note sponsor lines fill a slot's missing domain or code and
   are kept as timing-less `show_notes` mentions.

A transcript without timings (HTML, plain text) gets times estimated from the words before each
cue and the episode's duration (the evidence says so). Position: `pre` when a slot starts within
the first 60 s, `post` when it ends within the last 60 s of the episode, `mid` otherwise.

`Detector` is the seam for another detector (an audio fingerprint or ASR model later): anything
with a `version` and `detect(EpisodeDocuments) -> list[Slot]` can replace the rules.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol, Sequence

DETECTOR_VERSION = "rules-1.0"
EDGE_SECONDS = 60.0          # pre-roll starts within it, post-roll ends within it of the end
MERGE_GAP_SECONDS = 100.0    # anchors closer than this (and no transition between) are one read
MAX_READ_SECONDS = 120.0     # a read runs no longer than this
SECONDS_PER_WORD = 0.4       # speech rate used to estimate times in a transcript without timings


@dataclass(frozen=True)
class Cue:
    start: float | None
    end: float | None
    speaker: str | None
    text: str


@dataclass(frozen=True)
class Chapter:
    start: float
    end: float | None
    title: str | None
    url: str | None = None
    toc: bool | None = None


@dataclass(frozen=True)
class EpisodeDocuments:
    """What an episode publishes: a transcript's cues, its chapters and its show notes (text),
    with its duration (None when unknown) and the show's own domains (its site, shop, Patreon
    page), which never make a sponsor."""

    cues: Sequence[Cue] = ()
    chapters: Sequence[Chapter] = ()
    show_notes: str | None = None
    duration: float | None = None
    own_domains: frozenset[str] = frozenset()
    show_title: str | None = None

    def own_names(self) -> frozenset[str]:
        """Names a domain of the show's own has: its sites' names, and its title squashed ("The
        Chess Hour 12" -> `chesshour`: a shop at chesshour.shop, a page at patreon.com/chesshour)."""
        names = {d.split(".")[0] for d in self.own_domains}
        if self.show_title:
            ascii_title = unicodedata.normalize("NFKD", self.show_title).encode("ascii", "ignore").decode()
            words = [w for w in WORD.findall(ascii_title.lower()) if not w.isdigit()]
            words = words[1:] if words[:1] == ["the"] else words
            if words:
                names.add("".join(words))
        return frozenset(n for n in names if len(n) >= 4)


@dataclass
class Slot:
    start: float | None
    end: float | None
    kind: str                     # host_read | produced | break | show_notes
    position: str | None          # pre | mid | post (None without timings)
    brand: str | None
    domain: str | None
    vanity_url: str | None
    promo_code: str | None
    confidence: float
    evidence: str
    sources: list[str] = field(default_factory=list)


class Detector(Protocol):
    version: str

    def detect(self, episode: EpisodeDocuments) -> list[Slot]: ...


# --- text features ---------------------------------------------------------------------------------

TLDS = r"co\.uk|com|net|org|io|co|shop|store|app|fm|tv|ai|ly|us|me|health|uk"
SPOKEN_URL = re.compile(
    rf"\b([a-z0-9][a-z0-9-]*)\s+dot\s+({TLDS.replace(chr(92) + '.', ' dot ')})\b((?:\s+slash\s+[a-z0-9][a-z0-9-]*)*)")
URL = re.compile(rf"(?<![@\w.-])(?:https?://)?(?:www\.)?((?:[a-z0-9][a-z0-9-]*\.)+(?:{TLDS}))\b(/[a-z0-9_\-]+)?")
CODE = re.compile(r"\b(?:promo|offer|discount|coupon|checkout)?\s*code\s*[,:\-]?\s*[\"“']?([A-Za-z]*[0-9A-Z][A-Za-z0-9]{2,19})\b")
OPENING = re.compile(
    r"brought to you by|sponsored by|(?:thanks|thank you) to (?:our|today's|this week's|this episode's) sponsor"
    r"|(?:today's|this week's|this episode's|our) sponsor|word from (?:our|today's) sponsor"
    r"|support for (?:this|the) (?:show|episode|podcast) comes from"
    r"|(?:this|the) (?:episode|show|podcast) is (?:also )?(?:supported|presented|powered|made possible) by"
    r"|a message from|introducing\b|(?:i|we) want to thank|big thanks to|thanks? (?:you )?to\b.{0,40}\bfor (?:sponsoring|supporting)"
    r"|tell you (?:all )?about|(?:is|are) (?:also )?(?:supported|sponsored|presented) by|partnering with"
    r"|make[s]? this (?:show|episode|podcast) possible|support for .{0,60} comes from|today's sponsor")
CTA = re.compile(
    r"\bgo to\b|\bhead (?:over )?to\b|\bvisit\b|\bcheck (?:\w+ )?out\b|\bsign up\b|learn more|find out more"
    r"|available (?:now )?(?:at|from)|get started|order (?:now|today)|shop now|start (?:your|a) free|\buse (?:promo |offer )?code\b"
    r"|(?:promo|offer|discount) code|\d+ ?(?:%|percent) off|free trial|first (?:order|month|box|year)"
    r"|terms (?:and conditions )?apply|at checkout|\bsave \d+|\bget \d+|link in (?:the )?(?:show ?notes|description)"
    r"|\btry it\b|\bdownload\b|\bfree shipping\b|\bexclusive (?:offer|deal)")
NEGATION = re.compile(
    r"not (?:a|an|our) (?:sponsor|ad)|not sponsored|isn't (?:a |an |our )?(?:sponsor|ad)\b|is not (?:a |an )?(?:sponsor|ad)\b"
    r"|aren't (?:a |our )?sponsors?|no(?:body| one) (?:is )?pa(?:ys|id|ying) (?:us|me)|unsponsored|not paid to")
OWN_OFFER = re.compile(r"patreon|\bmerch\b|newsletter|our (?:own )?(?:store|shop)|support (?:the|this) show|support us"
                       r"|leave (?:us )?a review|rate and review|subscribe\b")
LEAD_IN = re.compile(r"(?:we'll|we will|i'll) be right back|after (?:this|the break|these messages|a (?:short|quick) break)"
                     r"|(?:a |one )?quick break|take a (?:short |quick )?break|stick around")
BACK = re.compile(r"back to (?:the |our )?(?:show|episode|conversation|interview|story|topic)|where were we"
                  r"|^\s*(?:anyway|alright|all right)\b[, ]|and we're back|let's get back|let's dive back"
                  r"|^\s*now,? back|where we left off|as i was saying")
PLATFORM_DOMAINS = frozenset({
    "apple.com", "spotify.com", "youtube.com", "patreon.com", "substack.com", "twitter.com", "x.com",
    "instagram.com", "facebook.com", "tiktok.com", "discord.gg", "linktr.ee", "google.com", "amazon.com",
    "podcastindex.org", "example.com", "wikipedia.org",
})
AD_CHAPTER = re.compile(r"sponsor|\bad(?:s|vert(?:isement)?)?\b|ad break|commercial|word from|promo(?:tion)?\b|paid")
CHAPTER_BRAND = re.compile(r"^\s*(?:sponsor(?:ed by)?|ad|advert(?:isement)?|promo(?:tion)?|thanks to|brought to you by)\s*[:\-–—]\s*(.+)$",
                           re.IGNORECASE)
PRODUCED_SPEAKERS = re.compile(r"announcer|narrator|advert|\bads?\b|spot|voice ?over|vo\b", re.IGNORECASE)
PRODUCED_STYLE = re.compile(r"terms (?:and conditions )?apply|restrictions apply|visit .{0,40} today|introducing\b|available (?:now|at)")
NOTES_SPONSOR = re.compile(r"sponsor|brought to you by|thanks to|supported by|promo code|use code", re.IGNORECASE)
WORD = re.compile(r"[a-z0-9']+")


def registrable(host: str) -> str:
    """The host without `www.` and sub-domains beyond the registrable name (two labels, three for
    a two-part suffix such as co.uk)."""
    parts = host.lower().removeprefix("www.").split(".")
    keep = 3 if len(parts) >= 3 and ".".join(parts[-2:]) in {"co.uk", "com.au", "co.nz"} else 2
    return ".".join(parts[-keep:])


def normalise(text: str) -> str:
    """Lower case, spoken URLs written out."""
    lowered = text.lower().replace("’", "'")
    if " dot " not in lowered:
        return lowered

    def written(match: re.Match) -> str:
        path = "/".join(re.findall(r"slash\s+([a-z0-9][a-z0-9-]*)", match.group(3) or ""))
        tld = match.group(2).replace(" dot ", ".")
        return f"{match.group(1)}.{tld}" + (f"/{path}" if path else "")

    return SPOKEN_URL.sub(written, lowered)


@dataclass
class _Features:
    text: str
    opening: bool
    cta: bool
    negation: bool
    own_offer: bool
    lead_in: bool
    back: bool
    urls: list[tuple[str, str]]       # (registrable domain, vanity url)
    codes: list[str]

    @property
    def anchor(self) -> bool:
        return (self.opening or bool(self.codes) or (bool(self.urls) and self.cta)) and not self.negation


def _features(cue: Cue, own: frozenset[str], own_names: frozenset[str] = frozenset()) -> _Features:
    text = normalise(cue.text)
    urls = []
    for host, path in URL.findall(text):
        domain = registrable(host)
        if domain in own or domain in PLATFORM_DOMAINS or domain.split(".")[0] in own_names:
            continue
        urls.append((domain, f"{host.removeprefix('www.')}{path}".rstrip("/")))
    codes = [c.upper() for c in CODE.findall(cue.text) if any(ch.isdigit() for ch in c) or c.isupper()]
    return _Features(
        text=text, opening=bool(OPENING.search(text)), cta=bool(CTA.search(text)),
        negation=bool(NEGATION.search(text)), own_offer=bool(OWN_OFFER.search(text)),
        lead_in=bool(LEAD_IN.search(text)), back=bool(BACK.search(text)), urls=urls, codes=codes,
    )


def _brand_tokens(domain: str) -> set[str]:
    """What a read calls its brand by, from its domain: the domain's name (`northwindmattress`);
    the brand's own words are added once the read's text names it (`_brand_name`)."""
    return {domain.split(".")[0]}


def _names_brand(feat: _Features, tokens: set[str], brand_words: set[str]) -> bool:
    compact = feat.text.replace(" ", "").replace("&", "and")
    return any(t in compact for t in tokens) or bool(brand_words and brand_words <= set(WORD.findall(feat.text)))


BRAND_AFTER = re.compile(
    r"(?i:brought to you by|sponsored by|supported by|presented by|powered by|made possible by|comes from|introducing"
    r"|say hello to|meet|presenting|about"
    r"|thanks to|thank you to|a message from|i've been using|we've been using|i love|try)\s+"
    r"((?:[A-Z][\w'&-]*|&)(?:\s+(?:[A-Z][\w'&-]*|&))*)")


def _brand_name(texts: list[str], domain: str | None) -> str | None:
    """The brand as the read names it: capitalised words after an opening that match the domain,
    else the domain's name."""
    name = domain.split(".")[0] if domain else None
    for text in texts:
        for candidate in BRAND_AFTER.findall(text):
            words = [w for w in candidate.split() if w.lower() not in {"our", "the", "today's", "this"}]
            squashed = "".join(w.lower() for w in words).replace("&", "and").replace("'", "")
            if name is None or (squashed and (squashed in name or name in squashed)):
                return " ".join(words)
    return name.title() if name else None


def _position(start: float | None, end: float | None, duration: float | None) -> str | None:
    if start is None or end is None:
        return None
    if start < EDGE_SECONDS:
        return "pre"
    if duration is not None and end > duration - EDGE_SECONDS:
        return "post"
    return "mid"


SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"“])")


def _timed(cues: Sequence[Cue], duration: float | None) -> tuple[list[Cue], bool]:
    """The cues with times, one sentence each. A transcript without timings gets times from the
    words before each cue (scaled to the duration when known); a cue without an end ends where the
    next begins; a cue of several sentences (an HTML turn) is split with its time shared by words."""
    estimated = not all(c.start is not None for c in cues)
    if estimated:
        words = [len(WORD.findall(c.text.lower())) for c in cues]
        scale = (duration / (sum(words) or 1)) if duration else SECONDS_PER_WORD
        placed, at = [], 0.0
        for c, n in zip(cues, words):
            placed.append(Cue(at, at + n * scale, c.speaker, c.text))
            at += n * scale
        cues = placed
    out: list[Cue] = []
    for n, c in enumerate(cues):
        start = float(c.start)
        end = c.end if c.end is not None else (
            cues[n + 1].start if n + 1 < len(cues) and cues[n + 1].start is not None
            else start + len(WORD.findall(c.text)) * SECONDS_PER_WORD)
        end = max(float(end), start)
        parts = SENTENCE.split(c.text.strip()) if len(c.text) > 80 else [c.text]
        if len(parts) == 1:
            out.append(Cue(start, end, c.speaker, c.text))
            continue
        counts = [max(1, len(WORD.findall(p))) for p in parts]
        total, at = sum(counts), start
        for part, k in zip(parts, counts):
            step = (end - start) * k / total
            out.append(Cue(round(at, 3), round(at + step, 3), c.speaker, part))
            at += step
    return out, estimated


@dataclass
class _Segment:
    first: int
    last: int
    anchors: list[int]


class RuleDetector:
    version = DETECTOR_VERSION

    def detect(self, episode: EpisodeDocuments) -> list[Slot]:
        notes = notes_mentions(episode.show_notes or "", episode.own_domains, episode.own_names())
        slots: list[Slot] = []
        if episode.cues:
            cues, estimated = _timed(episode.cues, episode.duration)
            duration = episode.duration or (max((c.end or 0) for c in cues) if cues else None)
            slots = self._transcript_slots(cues, episode.own_domains, episode.own_names(), duration, estimated)
        else:
            duration = episode.duration
        slots = _with_chapters(slots, episode.chapters, duration, notes)
        for slot in slots:
            _fill_from_notes(slot, notes)
        slots.sort(key=lambda s: (s.start if s.start is not None else float("inf")))
        return slots + [m for m in notes if not any(_same_sponsor(m, s) for s in slots)]

    def _transcript_slots(self, cues: list[Cue], own: frozenset[str], own_names: frozenset[str],
                          duration: float | None, estimated: bool) -> list[Slot]:
        feats = [_features(c, own, own_names) for c in cues]
        voiced = any(c.speaker for c in cues)
        segments: list[_Segment] = []
        current: _Segment | None = None
        for i, f in enumerate(feats):
            if f.back or f.lead_in:
                current = None  # a read never runs over a transition back to the show or a lead-in
                if not f.anchor:
                    continue
            strong = f.anchor and not (i and feats[i - 1].negation and not f.opening)
            weak = bool(f.urls) and not f.negation  # a sponsor URL carries a read on, never starts one
            if not (strong or weak):
                continue
            if current and (cues[i].start or 0) - (cues[current.last].end or 0) <= MERGE_GAP_SECONDS \
                    and (cues[i].end or 0) - (cues[current.first].start or 0) <= MAX_READ_SECONDS \
                    and _compatible(feats, current, i):
                current.last = i
                current.anchors.append(i)
            elif strong:
                current = _Segment(i, i, [i])
                segments.append(current)
        slots = []
        for seg in segments:
            slot = self._slot(seg, cues, feats, duration, estimated, voiced)
            if slot is not None:
                slots.append(slot)
        return slots

    def _slot(self, seg: _Segment, cues: list[Cue], feats: list[_Features], duration: float | None,
              estimated: bool, voiced: bool) -> Slot | None:
        urls = Counter(u for k in range(seg.first, seg.last + 1) for u in feats[k].urls)
        if not urls:
            return None
        (domain, _), _ = urls.most_common(1)[0]
        vanity = next((v for (d, v), _ in urls.most_common() if d == domain and "/" in v), None)
        tokens = _brand_tokens(domain)
        texts = [cues[k].text for k in range(seg.first, seg.last + 1)]
        brand = _brand_name(texts, domain)
        brand_words = set(WORD.findall(brand.lower())) if brand else set()
        tokens = {t for t in tokens | {"".join(WORD.findall((brand or "").lower()))} if len(t) >= 3}
        # A spot in a voice of its own (an announcer, or unlabelled in a transcript that labels
        # its speakers) runs exactly as long as that voice does.
        anchor_voice = cues[seg.anchors[0]].speaker
        spot_voice = voiced and (not anchor_voice or bool(PRODUCED_SPEAKERS.search(anchor_voice))
                                 or _only_here(cues, anchor_voice, cues[seg.anchors[0]].start or 0))
        start_limit = (cues[seg.last].end or 0) - MAX_READ_SECONDS
        k = seg.first
        while k > 0:
            k -= 1
            f = feats[k]
            if f.back or f.lead_in or f.negation or (cues[k].start or 0) < start_limit:
                break
            if spot_voice:
                if cues[k].speaker != anchor_voice:
                    break
                seg.first = k
            elif voiced and cues[k].speaker != cues[seg.first].speaker:
                break
            elif _names_brand(f, tokens, brand_words):
                seg.first = k  # a read opens by naming its brand; the cues between sell it too
        end_limit = (cues[seg.first].start or 0) + MAX_READ_SECONDS
        while seg.last + 1 < len(cues):
            k = seg.last + 1
            f = feats[k]
            if f.back or f.lead_in or f.negation or (cues[k].end or 0) > end_limit:
                break
            if spot_voice:
                if cues[k].speaker != anchor_voice:
                    break
            elif (f.urls and not any(d == domain for d, _ in f.urls)) or f.opening or not (
                    _names_brand(f, tokens, brand_words) or f.cta or f.codes or f.urls):
                break  # another sponsor's URL or opening is the next read
            seg.last = k
        texts = [cues[k].text for k in range(seg.first, seg.last + 1)]
        if any(feats[k].negation for k in range(seg.first, seg.last + 1)) and not any(
                feats[k].opening for k in seg.anchors):
            return None
        codes = [c for k in range(seg.first, seg.last + 1) for c in feats[k].codes]
        opening = any(feats[k].opening for k in range(seg.first, seg.last + 1))
        cta = any(feats[k].cta for k in range(seg.first, seg.last + 1))
        own_only = all(feats[k].own_offer for k in seg.anchors)
        if own_only and not opening:
            return None
        produced = spot_voice or _produced(cues, feats, seg)
        styled = any(PRODUCED_STYLE.search(feats[k].text) for k in range(seg.first, seg.last + 1))
        score = (0.45 + 0.2 * opening + 0.1 * cta + 0.1 * bool(vanity) + 0.1 * bool(codes) + 0.15 * spot_voice
                 + 0.1 * styled)
        if score < 0.65:
            return None
        start, end = cues[seg.first].start, cues[seg.last].end
        evidence = " … ".join(t.strip() for t in texts)[:500]
        sources = ["transcript"] + (["estimated_timing"] if estimated else [])
        return Slot(start, end, "produced" if produced else "host_read", _position(start, end, duration),
                    brand, domain, vanity, codes[0] if codes else None, round(min(score, 0.99), 3), evidence, sources)


def _compatible(feats: list[_Features], seg: _Segment, i: int) -> bool:
    """Two anchors belong to one read unless both name sponsor URLs and they differ (two spots back
    to back)."""
    before = {d for k in range(seg.first, seg.last + 1) for d, _ in feats[k].urls}
    now = {d for d, _ in feats[i].urls}
    return not (before and now and not before & now) and not (feats[i].opening and before and not now and
                                                              any(feats[k].codes or feats[k].urls for k in seg.anchors))


def _only_here(cues: list[Cue], voice: str, at: float) -> bool:
    """Whether a voice speaks in one run of cues, no longer than a read, around `at` (a diarised
    transcript's "Speaker 3" that is an inserted spot)."""
    turns = [i for i, c in enumerate(cues) if c.speaker == voice]
    times = [cues[i].start or 0 for i in turns]
    others = any(c.speaker and c.speaker != voice for c in cues)  # a voice of its own among the show's
    return (others and turns[-1] - turns[0] + 1 == len(turns) and max(times) - min(times) <= MAX_READ_SECONDS
            and min(times) <= at <= max(times))


def _same_voice(a: Cue, b: Cue) -> bool:
    return bool(a.speaker) and a.speaker == b.speaker


def _produced(cues: list[Cue], feats: list[_Features], seg: _Segment) -> bool:
    speakers = {cues[k].speaker for k in range(seg.first, seg.last + 1)}
    if any(s and PRODUCED_SPEAKERS.search(s) for s in speakers):
        return True
    styled = sum(bool(PRODUCED_STYLE.search(feats[k].text)) for k in range(seg.first, seg.last + 1))
    first_person = sum(bool(re.search(r"\b(?:i|i've|i'm|my|we|we've|our)\b", feats[k].text))
                       for k in range(seg.first, seg.last + 1))
    return styled >= 1 and first_person == 0


def notes_mentions(text: str, own: frozenset[str] = frozenset(), own_names: frozenset[str] = frozenset()) -> list[Slot]:
    """Sponsor mentions in show notes: each sentence or line that reads as a sponsor credit, with
    the sponsor URLs and codes in it (one mention per sponsor domain)."""
    out: list[Slot] = []
    seen: set[str] = set()
    for piece in re.split(r"(?<=[.!?])\s+|\n|\s[•|·]\s", text):
        if not NOTES_SPONSOR.search(piece) or NEGATION.search(piece.lower()):
            continue
        lowered = normalise(piece)
        # A credit line may name several sponsors: split at each URL.
        matches = list(URL.finditer(lowered))
        for n, m in enumerate(matches):
            domain = registrable(m.group(1))
            if domain in own or domain in PLATFORM_DOMAINS or domain in seen or domain.split(".")[0] in own_names:
                continue
            seen.add(domain)
            stop = matches[n + 1].start() if n + 1 < len(matches) else len(piece)
            begin = matches[n - 1].end() if n else 0
            span = piece[begin:stop]
            codes = [c.upper() for c in CODE.findall(piece[m.end():stop])
                     if any(ch.isdigit() for ch in c) or c.isupper()]
            vanity = f"{m.group(1).removeprefix('www.')}{m.group(2) or ''}".rstrip("/")
            out.append(Slot(None, None, "show_notes", None, _brand_name([span], domain), domain,
                            vanity if "/" in vanity else None, codes[0] if codes else None, 0.8,
                            piece.strip()[:500], ["show_notes"]))
    return out


def _same_sponsor(a: Slot, b: Slot) -> bool:
    if a.domain and b.domain:
        return a.domain == b.domain
    return bool(a.brand and b.brand and a.brand.lower() == b.brand.lower())


def _fill_from_notes(slot: Slot, notes: list[Slot]) -> None:
    for m in notes:
        if _same_sponsor(m, slot) or (slot.domain is None and m.brand and slot.brand
                                      and m.brand.lower() in slot.brand.lower()):
            slot.domain = slot.domain or m.domain
            slot.vanity_url = slot.vanity_url or m.vanity_url
            slot.promo_code = slot.promo_code or m.promo_code
            slot.brand = slot.brand or m.brand
            if "show_notes" not in slot.sources:
                slot.sources.append("show_notes")
                slot.confidence = round(min(0.99, slot.confidence + 0.05), 3)


def _ad_chapters(chapters: Sequence[Chapter], duration: float | None) -> list[tuple[float, float | None, str | None]]:
    ordered = sorted(chapters, key=lambda c: c.start)
    out = []
    for n, ch in enumerate(ordered):
        title = (ch.title or "").strip()
        if not title or not AD_CHAPTER.search(title.lower()):
            continue
        end = ch.end if ch.end is not None else (ordered[n + 1].start if n + 1 < len(ordered) else duration)
        named = CHAPTER_BRAND.match(title)
        brand = named.group(1).strip() if named else None
        if brand and AD_CHAPTER.fullmatch(brand.lower()):
            brand = None
        out.append((ch.start, end, brand))
    return out


def _with_chapters(slots: list[Slot], chapters: Sequence[Chapter], duration: float | None,
                   notes: list[Slot]) -> list[Slot]:
    for start, end, brand in _ad_chapters(chapters, duration):
        stop = end if end is not None else start
        overlapping = [s for s in slots if s.start is not None and s.start < stop and (s.end or s.start) > start]
        if overlapping:
            for s in overlapping:
                s.sources.append("chapters")
                s.confidence = round(min(0.99, s.confidence + 0.1), 3)
                if "estimated_timing" in s.sources:  # the chapter's times are the better ones
                    s.start, s.end = start, end
                    s.position = _position(start, end, duration)
            continue
        note = next((m for m in notes if brand and m.brand and m.brand.lower() == brand.lower()), None)
        slots.append(Slot(start, end, "host_read" if brand else "break", _position(start, end, duration),
                          brand, note.domain if note else None, note.vanity_url if note else None,
                          note.promo_code if note else None, 0.7 if brand else 0.6,
                          f"chapter: {brand or 'ad break'}", ["chapters"]))
    return slots

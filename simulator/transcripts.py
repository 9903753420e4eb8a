"""Transcripts and chapters of the simulated network's episodes, with planted sponsor reads, hard
negatives and the ground truth an ad-slot detector is measured against.

Podcasting 2.0 shows publish `podcast:transcript` and `podcast:chapters` tags for the episodes
published on or after TRANSCRIPTS_SINCE that have a valid item and a duration. The documents are
served by `SimulatorServer` on loopback:

    {base_url}/transcripts/{tenant}/{slug}/ep-NNNN.{vtt,srt,json,html}
    {base_url}/chapters/{tenant}/{slug}/ep-NNNN.json

in the shapes of the Podcasting 2.0 examples: WebVTT with `<v Speaker>` voice tags, SRT with a
`Speaker:` prefix when the speaker changes, JSON transcripts (`{"version": "1.0.0", "segments":
[...]}`), HTML with `<cite>` speakers and no timings, and JSON chapters (`version` 1.2.0). Each show
publishes one format (`show_format`): most WebVTT (half of their items with a JSON transcript
too), some SRT, one or two HTML only. NNNN is the episode's number in its feed (oldest = 1).

Everything follows from (the network's seed, the show's path, the episode's index) through
string-seeded generators of their own: the network's draws are untouched.

An episode's script (`episode_script`) is cues of 4-9 s spoken by the show's hosts and a guest,
with sponsor reads planted on cue boundaries:

- external sponsors (BRANDS, fictional): 0-3 reads per episode, pre-roll (starting at 0 or within
  the first 45 s), mid-roll, post-roll (ending at the episode's end), 15-90 s, read by a host
  (conversational) or produced (an announcer, scripted);
- campaign placements, once a `CampaignWorld` is attached: every baked-in placement covering an
  episode with a timed transcript gets a host read starting exactly at its `ad_offset_seconds` and
  ending at offset + `ad_duration_seconds`, unless it would not fit in the episode or would
  overlap the read of a placement listed before it (`campaign_placements_read`). External reads
  that would overlap a campaign read move next to it (an ad pod).

Around the reads: a lead-in cue before some ("We'll be right back after this"), a transition back
to the show after most; in about 30 % of episodes hard negatives (`Negative`) away from any read:
a brand praised without being a sponsor, a company discussed as news with its domain, the show's
own Patreon / merch / newsletter, a brand in casual talk.

Chapters: content chapters, and for about half the shows the reads marked (a `Sponsor: <Brand>`,
`Ad break` or `A word from our sponsors` chapter, or a silent `toc: false` marker) starting
exactly at the read's start with the next chapter at its end. Show notes (`show_notes_html`):
about half the episodes with external reads name their sponsors with URL and code.

A few extra documents are bad (`BAD_DOCUMENTS`), each beside a good one, for quarantine; one
show's chapters file is bad instead of its good one.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import unicodedata
from dataclasses import dataclass, field
from datetime import date, timezone
from email.utils import format_datetime
from html import escape as html_escape
from typing import Any, Iterable

from simulator.network import FEED_DEFECTS, HOSTS, ITEM_DEFECTS, WORDS, Episode, Network, Show

TRANSCRIPTS_SINCE = date(2026, 8, 1)
CONTENT_TYPES = {
    "vtt": "text/vtt; charset=utf-8",
    "srt": "application/x-subrip; charset=utf-8",
    "json": "application/json; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "chapters": "application/json+chapters; charset=utf-8",
}
DECLARED_TYPES = {"vtt": "text/vtt", "srt": "application/x-subrip", "json": "application/json",
                  "html": "text/html", "chapters": "application/json+chapters"}
TIMED_FORMATS = ("vtt", "srt", "json")
POSITION_EDGE_SECONDS = 60  # pre: starts within the first 60 s; post: ends within the last 60 s
OVERSIZED_DOCUMENT_BYTES = 12 * 1024 * 1024
# Bad documents (simulator name -> the quarantine reason a correct loader gives).
BAD_DOCUMENTS = {
    "missing_header": "invalid_vtt",          # an extra VTT without its WEBVTT line
    "truncated_json": "invalid_json",         # an extra JSON transcript cut short
    "chapters_not_list": "invalid_chapters",  # the item's chapters: `chapters` is an object
    "end_before_start": "bad_timings",        # an extra SRT whose every cue ends before it starts
    "not_found": "http_404",                  # an extra transcript URL nobody serves
    "oversized": "response_too_large",        # an extra VTT of 12 MiB (one in the network)
}
_BAD_CYCLE = ("missing_header", "truncated_json", "chapters_not_list", "end_before_start", "not_found")
OVERSIZED_ORDINAL = 7


@dataclass(frozen=True)
class Brand:
    name: str
    domain: str
    category: str
    code_style: str   # show: the show's word + percent (JAZZ20); brand: the brand's word; none: a URL only
    percent: int
    product: str
    tagline: str

    @property
    def word(self) -> str:
        return _ascii(self.name.split()[0]).upper()


BRANDS = (
    Brand("Quillbright", "quillbright.com", "software", "show", 20, "note-taking app", "Every idea, in one place."),
    Brand("Harborline Shoes", "harborlineshoes.com", "dtc_retail", "brand", 15, "walking shoes", "Built for the long way home."),
    Brand("Mossgrove Candles", "mossgrove.co", "dtc_retail", "show", 25, "soy candles", "Light something good."),
    Brand("Tidewell Insurance", "tidewell.com", "finance", "none", 0, "renters insurance", "Coverage in minutes."),
    Brand("Pinecrest Kitchen", "pinecrestkitchen.com", "food_delivery", "show", 30, "meal kits", "Dinner, sorted."),
    Brand("Zephyr Mobile", "zephyrmobile.com", "telecom", "brand", 10, "phone plan", "Unlimited, without the catch."),
    Brand("Cobalt Sleep", "cobaltsleep.com", "health", "show", 20, "sleep tracker", "Wake up rested."),
    Brand("Ridgeway Socks", "ridgewaysocks.com", "dtc_retail", "brand", 20, "merino socks", "Warm feet, every trail."),
    Brand("Fablehouse", "fablehouse.com", "media", "none", 0, "audiobook membership", "Stories that stay with you."),
    Brand("Nimbuspass", "nimbuspass.com", "software", "show", 10, "password manager", "One password. Zero worries."),
    Brand("Saltmarsh Skincare", "saltmarsh.co", "health", "brand", 15, "skincare set", "Simple skin care that works."),
    Brand("Greenvale", "trygreenvale.com", "health", "show", 20, "daily greens powder", "Your greens, in one scoop."),
    Brand("Lanternfish", "lanternfish.app", "software", "none", 0, "language app", "Speak it in ten minutes a day."),
    Brand("Oakbarrel Wine Club", "oakbarrelwine.com", "food_delivery", "brand", 25, "wine subscription", "Better bottles, at your door."),
    Brand("Pebblepay", "pebblepay.com", "finance", "none", 0, "budgeting app", "Know where your money goes."),
    Brand("Driftwood Hosting", "driftwoodhosting.com", "software", "show", 15, "web hosting", "Your site, live today."),
    Brand("Marlow Linen", "marlowlinen.com", "dtc_retail", "show", 20, "linen sheets", "Sleep like you're on holiday."),
    Brand("Juniper Jobs", "juniperjobs.com", "software", "none", 0, "hiring platform", "Hire the right people, faster."),
    Brand("Wavelet Audio", "waveletaudio.com", "dtc_retail", "brand", 10, "headphones", "Hear everything."),
    Brand("Sunday Stride", "sundaystride.com", "health", "show", 20, "running coach app", "Run further, feel better."),
    Brand("Bramble & Bee", "brambleandbee.com", "food_delivery", "brand", 15, "honey subscription", "Raw honey from small farms."),
)
# Companies in the news of the simulated world (some advertise in its campaigns): topics, not ads.
NEWS_COMPANIES = (("Ledgerly", "ledgerly.com"), ("Orbit Banking", "orbitbanking.com"),
                  ("Copperline VPN", "copperlinevpn.com"), ("Vantablue Motors", "vantablue.com"),
                  ("Halcyon Air", "halcyonair.com"), ("Mercato", "mercato.com"))
CATEGORY_PRODUCTS = {"dtc_retail": "products", "software": "app", "finance": "account",
                     "food_delivery": "meals", "health": "supplements"}
GUESTS = ("Priya Natarajan", "Tom Becker", "Lena Vogel", "Marcus Hale", "Yuki Tanaka", "Sofia Marin",
          "Kwame Mensah", "Ines Duarte", "Oliver Grant", "Hana Kovac")

# -- what reads and talk sound like ---------------------------------------------------------------

HOST_OPENINGS = (
    "This episode is brought to you by {brand}.",
    "Today's episode is sponsored by {brand}.",
    "Thanks to our sponsor, {brand}, for supporting the show.",
    "Support for {show} comes from {brand}.",
    "I want to take a minute to tell you about {brand}.",
    "This part of the show is brought to you by our friends at {brand}.",
    "{show} is supported by {brand}.",
    "I've been using {brand} for {months} months now, and I have to tell you about it.",
    "Okay, today's sponsor is {brand}, and I'm genuinely excited about this one.",
    "This week we're partnering with {brand}.",
    "A big thank you to {brand} for sponsoring this episode.",
    "Let's talk about {brand} for a second, they make this show possible.",
)
PRODUCED_OPENINGS = (
    "Introducing {brand}.",
    "{brand}. {tagline}",
    "Meet {brand}, the {product} made for people who don't have time to waste.",
    "This is {brand}.",
    "Ever wish your {product} just worked? Say hello to {brand}.",
    "Presenting {brand}. {tagline}",
)
HOST_BODY = (
    "I've been using {brand} for a while now, and honestly it's become part of my routine.",
    "Their {product} is the real deal, and it's the first one I've actually stuck with.",
    "What I love is how simple it is, you sign up and it just works.",
    "{cohost} got me onto it, and now I'm the one telling everyone about it.",
    "It's not just me either, a lot of you have written in to say you tried it.",
    "They ship fast, the support people are great, and there's no fine print.",
    "If you've been putting off sorting out your {product}, this is your sign.",
    "I was skeptical at first, but after a couple of weeks I was hooked.",
    "And if it's not for you, they have a thirty day money back guarantee.",
    "I use it every morning before we record, no exaggeration.",
    "Seriously, go look at {url} and tell me that's not a good deal.",
    "The setup took me about five minutes, start to finish.",
    "And they keep making it better, there's something new every few weeks.",
    "I recommended it to my parents, and they love it too.",
)
PRODUCED_BODY = (
    "{brand} {product}, designed by experts and loved by customers.",
    "Thousands of people trust {brand} every single day.",
    "Get started in minutes, with plans for every budget.",
    "Rated five stars by customers across the country.",
    "No contracts. Cancel anytime.",
    "{tagline}",
    "Join the people who already made the switch.",
    "Whether you're just starting out or you've tried everything, {brand} has a plan for you.",
    "Fast, simple, and built around you.",
)
# Calls to action: {url} as written, {spoken} spelled out ("x dot com slash show").
HOST_CTAS_CODE = (
    "Go to {url} and use code {code} for {pct}% off.",
    "Head to {spoken} and use promo code {code} to get {pct} percent off your first order.",
    "Visit {url} today and enter offer code {code} at checkout.",
    "Just go to {url}, use code {code}, and save {pct}%.",
    "That's {spoken}, promo code {code}.",
    "Use code {code} at {url} for {pct}% off your order.",
    "Go to {url} right now, and don't forget offer code {code}.",
    "Check them out at {url} and use my code, {code}.",
)
HOST_CTAS_URL = (
    "Go to {url} to get started today.",
    "Check them out at {url}.",
    "That's {spoken}.",
    "Sign up for a free trial at {url}.",
    "Visit {url} and see for yourself.",
    "Head over to {spoken} and get started.",
)
PRODUCED_CTAS = (
    "Visit {url} today.",
    "Learn more at {spoken}.",
    "Go to {url} and use offer code {code}.",
    "Use promo code {code} at {url}.",
    "Available now at {url}.",
)
PRODUCED_CLOSINGS = ("Terms apply.", "Restrictions apply. See site for details.", "Terms and conditions apply.")
TRANSITIONS = (
    "Anyway, back to {topic}.",
    "Now, where were we?",
    "Okay, back to the show.",
    "Alright, so, back to {topic}.",
    "And we're back.",
    "So, picking up where we left off with {topic}.",
    "Anyway, as I was saying about {topic}.",
    "Right, let's get back into it.",
)
LEAD_INS = (
    "We'll be right back after this.",
    "Let's take a quick break.",
    "Stick around, we'll be right back.",
    "More on that after a short break.",
    "Before we get into it, a quick break.",
)
FILLER = (
    "So when we talk about {a}, the {b} part is what most people miss.",
    "I think {a} is going to look really different in five years.",
    "Right, and that's exactly the {a} problem we had last season.",
    "Can I push back on that a little? Because {a} and {b} aren't the same thing.",
    "Yeah, I read something about {a} this week that changed my mind.",
    "The history of {a} is honestly wilder than people think.",
    "My take is that {a} matters more than {b}, at least for now.",
    "Okay, so walk me through how {a} actually works.",
    "There's a great story about {a} and {b} from the nineties.",
    "We got a listener question about {a}, which I love.",
    "Honestly, I changed my mind about {a} after talking to {guest}.",
    "That's a good point, and it connects to {b} in a weird way.",
    "It's funny, everyone says {a}, but nobody means the same thing.",
    "Let's not go down the {a} rabbit hole again.",
    "The data on {a} is pretty clear, even if the {b} side is messy.",
    "I tried the {a} thing we talked about and it did not go well.",
    "What would you tell someone who is just getting into {a}?",
    "So the short version is {a}, and the long version involves {b}.",
    "Exactly, and {c} is part of that too.",
    "Mm-hmm. Yeah. That makes sense.",
    "I remember when {a} was a niche topic, and now it's everywhere.",
    "The thing with {a} is you have to be patient.",
    "We should do a whole episode on {b} at some point.",
    "Okay, but what about {c}? Because that's where it gets interesting.",
)
WELCOMES = (
    "Welcome to {show}, I'm {host}.",
    "Hey everyone, welcome back to {show}.",
    "Hello and welcome to {show}, I'm {host}, and today we're talking about {topic}.",
)
GUEST_INTROS = ("My guest today is {guest}, welcome to the show.", "Joining me today is {guest}.")
OUTROS = ("That's it for this week, thanks for listening.", "Thanks for listening, see you next week.",
          "That's our show, take care of yourselves.")
NEGATIVES = {
    "not_a_sponsor": (
        "This is not a sponsor, but I love {brand}, I use it every single day.",
        "Nobody is paying us to say this, but {brand} has been great for me.",
        "Not an ad, by the way, I just genuinely like my {product} from {brand}.",
        "I bought my {product} from {brand} with my own money, and it's been great, {domain} if you're curious.",
    ),
    "news_topic": (
        "{company}'s earnings call last week was rough, the stock dropped eleven percent.",
        "Did you see that {company} is raising prices? It's all over {cdomain} right now.",
        "There was a big outage at {company} this week, {cdomain} was down for hours.",
        "The {company} layoffs story is really about {a} more than anything.",
    ),
    "own_promo": (
        "If you want to support the show, go to patreon.com/{slug}.",
        "Our merch is at {slug}.shop, and the new mugs are finally back.",
        "Sign up for our newsletter at {slug}.substack.com, it comes out every Friday.",
        "Use code LISTENER10 at {slug}.shop for ten percent off our hoodies.",
    ),
    "casual_mention": (
        "My sister works at {brand}, and she says the office is all about {a} these days.",
        "I was on a call with someone from {brand} about {a}, totally unrelated story.",
        "We recorded this at a café next to the {brand} store, so sorry about the noise.",
    ),
}
AD_CHAPTER_STYLES = ("sponsor_title", "ad_break", "word_from", "silent")
SHOW_NOTES_LEADS = ("Thanks to our sponsors:", "This episode is sponsored by", "Sponsors:",
                    "Support the show by checking out our sponsors:")


# -- small helpers ------------------------------------------------------------------------------

def _ascii(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKD", text) if ch.isascii() and ch.isalnum())


def _rng(*parts: object) -> random.Random:
    return random.Random("|".join(map(str, parts)))


def _share(*parts: object) -> float:
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:6], "big") / 2**48


def position_of(start: float, end: float, duration: float) -> str:
    """pre when the slot starts within the first 60 s, post when it ends within the last 60 s of
    the episode, mid otherwise (pre wins when both hold)."""
    if start < POSITION_EDGE_SECONDS:
        return "pre"
    if end > duration - POSITION_EDGE_SECONDS:
        return "post"
    return "mid"


def episode_number(show: Show, ep: Episode) -> int:
    return len(show.episodes) - ep.index


def episode_guid(ep: Episode) -> str | None:
    return ep.guid if ep.guid is not None else ep.enclosure_url


def show_format(show: Show) -> str | None:
    """The transcript format a Podcasting 2.0 show publishes (None: no transcripts)."""
    o = show.transcript_ordinal
    if o is None:
        return None
    if o % 11 == 4:
        return "html"
    if o % 4 == 1:
        return "srt"
    return "vtt"


def ad_chapter_style(show: Show) -> str | None:
    """How a show's chapters mark its reads (None: content chapters only)."""
    o = show.transcript_ordinal
    if o is None or o % 2:
        return None
    return AD_CHAPTER_STYLES[(o // 2) % len(AD_CHAPTER_STYLES)]


def has_transcript(show: Show, ep: Episode) -> bool:
    """Whether the item carries transcript and chapters tags."""
    return (show.transcript_ordinal is not None and not (ep.defect and ITEM_DEFECTS.get(ep.defect))
            and ep.published is not None and ep.published.astimezone(timezone.utc).date() >= TRANSCRIPTS_SINCE
            and bool(ep.duration_seconds) and ep.duration_seconds > 0 and ep.enclosure_url is not None)


def has_timed_transcript(show: Show, ep: Episode) -> bool:
    return has_transcript(show, ep) and show_format(show) in TIMED_FORMATS


def _has_json_companion(show: Show, ep: Episode) -> bool:
    return show_format(show) == "vtt" and _share(show.seed, show.path, ep.index, "json") < 0.5


def _bad_episode(show: Show) -> Episode | None:
    """The episode whose item carries the show's bad extra document: its newest with transcripts."""
    return next((ep for ep in show.episodes if has_transcript(show, ep)), None)


def bad_documents_of(show: Show, ep: Episode) -> list[str]:
    if show.transcript_ordinal is None or _bad_episode(show) is not ep:
        return []
    kinds = [_BAD_CYCLE[show.transcript_ordinal % len(_BAD_CYCLE)]]
    if show.transcript_ordinal == OVERSIZED_ORDINAL:
        kinds.append("oversized")
    return kinds


@dataclass(frozen=True)
class Document:
    url: str
    path: str            # the URL's path on the simulator
    kind: str            # transcript | chapters
    format: str          # vtt | srt | json | html | chapters
    declared_type: str   # the tag's `type`
    defect: str | None = None

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES["chapters" if self.kind == "chapters" else self.format]


def episode_documents(show: Show, ep: Episode, base_url: str) -> list[Document]:
    """The transcript and chapters documents an item names, good transcripts first."""
    if not has_transcript(show, ep):
        return []
    fmt = show_format(show)
    stem = f"{show.tenant_id}/{show.slug}/ep-{episode_number(show, ep):04d}"

    def doc(kind: str, name: str, fmt: str, defect: str | None = None) -> Document:
        path = f"/{'chapters' if kind == 'chapters' else 'transcripts'}/{stem}{name}"
        return Document(base_url + path, path, kind, fmt, DECLARED_TYPES["chapters" if kind == "chapters" else fmt], defect)

    docs = [doc("transcript", f".{fmt}", fmt)]
    if _has_json_companion(show, ep):
        docs.append(doc("transcript", ".json", "json"))
    bad = bad_documents_of(show, ep)
    extra = {"missing_header": ("-draft.vtt", "vtt"), "truncated_json": ("-words.json", "json"),
             "end_before_start": ("-captions.srt", "srt"), "not_found": ("-en.vtt", "vtt"),
             "oversized": ("-full.vtt", "vtt")}
    for kind in bad:
        if kind in extra:
            name, f = extra[kind]
            docs.append(doc("transcript", name, f, kind))
    docs.append(doc("chapters", ".json", "chapters", "chapters_not_list" if "chapters_not_list" in bad else None))
    return docs


# -- the show's voice ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Profile:
    host: str
    cohost: str | None
    topic: str
    slug: str
    brands: tuple[Brand, ...]


def profile(show: Show) -> Profile:
    rng = _rng(show.seed, show.path, "profile")
    others = [h for h in HOSTS if h != show.author]
    cohost = rng.choice(others) if rng.random() < 0.6 else None
    topic_word = show.title.split()[1] if len(show.title.split()) > 1 else "show"
    topic = _ascii(topic_word).lower() or "show"
    return Profile(show.author, cohost, topic_word.lower(), f"{topic}hour",
                   tuple(rng.sample(BRANDS, 6)))


# -- reads ----------------------------------------------------------------------------------------

@dataclass
class Read:
    start: int            # seconds, on a cue boundary
    end: int
    brand: str
    domain: str
    vanity_url: str | None
    promo_code: str | None
    kind: str             # host_read | produced
    speaker: str | None
    product: str = "products"
    tagline: str = ""
    percent: int = 0
    placement_id: str | None = None
    campaign_id: str | None = None
    sponsor_id: str | None = None


@dataclass
class Negative:
    kind: str
    start: float
    end: float
    text: str
    brand: str | None


@dataclass
class Cue:
    start_ms: int
    end_ms: int
    speaker: str | None
    text: str


@dataclass
class Script:
    show: Show
    episode: Episode
    duration: int
    reads: list[Read]
    cues: list[Cue] = field(default_factory=list)
    negatives: list[Negative] = field(default_factory=list)
    chapters: list[dict[str, Any]] = field(default_factory=list)


def _external_read(show: Show, prof: Profile, brand: Brand, kind: str, start: int, end: int) -> Read:
    code = None
    if brand.code_style == "show":
        code = f"{prof.slug.removesuffix('hour').upper()}{brand.percent}"
    elif brand.code_style == "brand":
        code = f"{brand.word}{brand.percent}"
    vanity = f"{brand.domain}/{prof.slug}"
    if kind == "produced" and _share(show.seed, show.path, brand.name, "produced-url") < 0.5:
        vanity = None  # the produced spot names only the brand's site
    speaker = prof.host if kind == "host_read" else ("Announcer" if _share(show.seed, show.path, brand.name) < 0.6 else None)
    return Read(start, end, brand.name, brand.domain, vanity, code, kind, speaker, brand.product, brand.tagline,
                brand.percent)


def _overlaps(a: tuple[float, float], b: tuple[float, float], margin: float = 0) -> bool:
    return a[0] < b[1] + margin and b[0] < a[1] + margin


# Where campaign placements may put a read in any show (pre at 0, mid at these offsets, 60 s at
# most): external mid-rolls stay clear of them.
_CAMPAIGN_WINDOWS = ((0, 60), (90, 150), (240, 300), (600, 660), (1200, 1260))


def external_reads(show: Show, ep: Episode) -> list[Read]:
    """The episode's reads of external sponsors, before any campaign read is planted (what its
    show notes name)."""
    if not has_transcript(show, ep):
        return []
    duration = ep.duration_seconds
    if duration < 240:
        return []
    prof = profile(show)
    rng = _rng(show.seed, show.path, ep.index, "plan")
    n = rng.choices((0, 1, 2, 3), (20, 35, 30, 15))[0]
    if duration < 900:
        n = min(n, 2)
    positions = rng.sample(("pre", "mid", "post", "mid"), n)
    brands = rng.sample(prof.brands, n)
    taken: list[tuple[int, int]] = []
    reads = []
    for position, brand in zip(positions, brands):
        length = min(rng.randint(15, 90), duration // 6)
        kind = "host_read" if rng.random() < 0.75 else "produced"
        if position == "pre":
            start = 0 if rng.random() < 0.5 else rng.randint(8, 45)
            spots = [start]
        elif position == "post":
            spots = [duration - length]
        else:
            spots = [rng.randint(120, max(120, duration - 120 - length)) for _ in range(20)]
            spots = [s for s in spots if s + length <= duration - 120
                     and not any(_overlaps((s, s + length), w, 20) for w in _CAMPAIGN_WINDOWS)]
        spot = next((s for s in spots if not any(_overlaps((s, s + length), t, 20) for t in taken)), None)
        if spot is None:
            continue
        taken.append((spot, spot + length))
        reads.append(_external_read(show, prof, brand, kind, spot, spot + length))
    return sorted(reads, key=lambda r: r.start)


def campaign_placements_read(placements: Iterable[Any], feed_url: str, guid: str | None,
                             duration: int | None, timed: bool) -> list[Any]:
    """The baked-in placements whose read is planted in an episode (feed URL, guid, duration in
    seconds, whether it has a timed transcript): each placement covering it, in placement-id
    order, whose read fits in the duration and does not overlap a read planted before it."""
    if not timed or not duration or duration <= 0:
        return []
    planted, taken = [], []
    for p in sorted(placements, key=lambda p: p.placement_id):
        if p.insertion != "baked_in" or p.feed_url != feed_url or p.episode_guid not in (None, guid):
            continue
        span = (p.ad_offset_seconds, p.ad_offset_seconds + p.ad_duration_seconds)
        if span[1] > duration or any(_overlaps(span, t) for t in taken):
            continue
        taken.append(span)
        planted.append(p)
    return planted


class CampaignIndex:
    """A `CampaignWorld`'s baked-in placements by show, with their campaigns and sponsors."""

    def __init__(self, world: Any):
        self.world = world
        self.by_feed: dict[str, list[Any]] = {}
        for p in world.placements:
            if p.insertion == "baked_in":
                self.by_feed.setdefault(p.feed_url, []).append(p)
        self.campaigns = {c.campaign_id: c for c in world.campaigns}
        self.sponsors = {(s.tenant_id, s.sponsor_id): s for s in world.sponsors}

    def reads(self, show: Show, ep: Episode, feed_url: str) -> list[Read]:
        placements = campaign_placements_read(self.by_feed.get(feed_url, ()), feed_url, episode_guid(ep),
                                              ep.duration_seconds, has_timed_transcript(show, ep))
        prof = profile(show)
        out = []
        for p in placements:
            c = self.campaigns[p.campaign_id]
            s = self.sponsors[(c.tenant_id, c.sponsor_id)]
            out.append(Read(
                p.ad_offset_seconds, p.ad_offset_seconds + p.ad_duration_seconds, s.name,
                s.website.removeprefix("www."), c.vanity_urls[0] if c.vanity_urls else None,
                c.promo_codes[0] if c.promo_codes else None, "host_read", prof.host,
                CATEGORY_PRODUCTS.get(s.category, "products"), "", 15, p.placement_id, c.campaign_id, s.sponsor_id))
        return out


def _resolve(external: list[Read], fixed: list[Read], duration: int) -> list[Read]:
    """Campaign reads stay where their placements put them; an external read overlapping one
    moves right after it (or right before it), and is dropped when neither fits."""
    placed = list(fixed)
    for read in external:
        span = (read.start, read.end)
        length = read.end - read.start
        for _ in range(6):
            blocking = next((p for p in placed if _overlaps(span, (p.start, p.end))), None)
            if blocking is None:
                break
            after = (blocking.end, blocking.end + length)
            before = (blocking.start - length, blocking.start)
            if after[1] <= duration and not any(_overlaps(after, (p.start, p.end)) for p in placed):
                span = after
            elif before[0] >= 0 and not any(_overlaps(before, (p.start, p.end)) for p in placed):
                span = before
            else:
                span = after if after[1] <= duration else before
        if span[0] < 0 or span[1] > duration or any(_overlaps(span, (p.start, p.end)) for p in placed):
            continue
        if span != (read.start, read.end) and (span[0] == POSITION_EDGE_SECONDS
                                               or span[1] == duration - POSITION_EDGE_SECONDS):
            # Not on the edge of the pre/post rule: a second of silence after the read before it.
            nudged = (span[0] + 1, span[1] + 1)
            if nudged[1] <= duration and not any(_overlaps(nudged, (p.start, p.end)) for p in placed):
                span = nudged
        read.start, read.end = span
        placed.append(read)
    return sorted(placed, key=lambda r: r.start)


def episode_reads(show: Show, ep: Episode, feed_url: str, campaigns: CampaignIndex | None = None) -> list[Read]:
    external = external_reads(show, ep)
    fixed = campaigns.reads(show, ep, feed_url) if campaigns is not None else []
    if not fixed:
        return external
    return _resolve(external, fixed, ep.duration_seconds)


# -- the script -----------------------------------------------------------------------------------

def _split(rng: random.Random, start_ms: int, end_ms: int, count: int | None = None) -> list[tuple[int, int]]:
    """[start, end) cut into cues of 4-9 s (`count` of them when that fits); nothing under 4 s."""
    length = end_ms - start_ms
    most = length // 4000
    if most < 1:
        return []
    least = max(1, -(-length // 9000))
    k = round(length / 6500) if count is None else count
    k = min(max(k, least), most)
    avg = length / k
    amp = max(0.0, min(900.0, (avg - 4000) / 2 - 1, (9000 - avg) / 2 - 1))
    cuts = [start_ms] + [round(start_ms + i * avg + rng.uniform(-amp, amp)) for i in range(1, k)] + [end_ms]
    return list(zip(cuts, cuts[1:]))


def _fill(template: str, rng: random.Random, **values: Any) -> str:
    a, b, c = rng.choices(WORDS, k=3)
    return template.format(a=a, b=b, c=c, **values)


def _spoken(url: str) -> str:
    host, _, path = url.partition("/")
    text = host.replace(".", " dot ")
    return f"{text} slash {path}" if path else text


def _read_lines(read: Read, show: Show, prof: Profile, rng: random.Random, count: int) -> list[str]:
    url = read.vanity_url or read.domain
    values = dict(brand=read.brand, show=show.title, months=rng.choice(("three", "six", "eight")),
                  product=read.product, tagline=read.tagline or f"{read.brand}, made simple.",
                  cohost=prof.cohost or "My partner", url=url, spoken=_spoken(url), code=read.promo_code or "",
                  pct=read.percent or 15, domain=read.domain)
    if read.kind == "host_read":
        opening = rng.choice(HOST_OPENINGS)
        body = rng.sample(HOST_BODY, len(HOST_BODY))
        ctas = [rng.choice(HOST_CTAS_CODE if read.promo_code else HOST_CTAS_URL)]
        if read.vanity_url and "{spoken}" not in ctas[0] and rng.random() < 0.5:
            ctas.append("That's {spoken}.")
        closing: list[str] = []
    else:
        opening = rng.choice(PRODUCED_OPENINGS)
        body = rng.sample(PRODUCED_BODY, len(PRODUCED_BODY))
        ctas = [rng.choice([c for c in PRODUCED_CTAS if ("{code}" in c) == bool(read.promo_code)])]
        closing = [rng.choice(PRODUCED_CLOSINGS)] if rng.random() < 0.7 else []
    fixed = 1 + len(ctas) + len(closing)
    lines = [opening] + [body[i % len(body)] for i in range(max(0, count - fixed))] + ctas + closing
    lines = [line.format(**values) for line in lines]
    while len(lines) > count:  # fewer cues than lines: join the last two
        lines[-2:] = [lines[-2] + " " + lines[-1]]
    return lines


def _negative_line(kind: str, rng: random.Random, prof: Profile) -> tuple[str, str | None]:
    template = rng.choice(NEGATIVES[kind])
    brand = rng.choice(BRANDS)
    company, cdomain = rng.choice(NEWS_COMPANIES)
    name = company if kind == "news_topic" else None if kind == "own_promo" else brand.name
    return _fill(template, rng, brand=brand.name, product=brand.product, domain=brand.domain, company=company,
                 cdomain=cdomain, slug=prof.slug), name


def episode_script(show: Show, ep: Episode, feed_url: str, campaigns: CampaignIndex | None = None) -> Script:
    """The episode's transcript (cues), reads, hard negatives and chapters."""
    duration = ep.duration_seconds
    prof = profile(show)
    reads = episode_reads(show, ep, feed_url, campaigns)
    script = Script(show, ep, duration, reads)
    rng = _rng(show.seed, show.path, ep.index, "text", len(reads), *(f"{r.start}:{r.brand}" for r in reads))
    guest = rng.choice(GUESTS) if rng.random() < 0.5 else None
    voices = [prof.host] + [v for v in (prof.cohost, guest) if v]
    plan = _rng(show.seed, show.path, ep.index, "negatives")
    want_negatives = plan.random() < 0.3
    cues = script.cues
    bounds = [0] + [x for r in reads for x in (r.start, r.end)] + [duration]
    gaps = list(zip(bounds[0::2], bounds[1::2]))
    speaker = prof.host
    topic = rng.choice(WORDS)
    filler_spans: list[int] = []  # indexes of plain filler cues, where negatives may go
    for g, (g_start, g_end) in enumerate(gaps):
        pieces = _split(rng, g_start * 1000, g_end * 1000)
        opens_show = g_start == 0 or (g == 1 and reads[0].start == 0)
        last_gap = g == len(reads)
        for i, (s, e) in enumerate(pieces):
            final = last_gap and i == len(pieces) - 1
            if i == 0 and opens_show:
                speaker, text = prof.host, _fill(rng.choice(WELCOMES), rng, show=show.title, host=prof.host, topic=topic)
            elif final:
                speaker, text = prof.host, rng.choice(OUTROS)
            elif i == 0 and g > 0 and rng.random() < 0.85:
                speaker, text = prof.host, rng.choice(TRANSITIONS).format(topic=topic)
            elif i == 1 and opens_show and guest:
                speaker, text = prof.host, rng.choice(GUEST_INTROS).format(guest=guest)
            elif not last_gap and i == len(pieces) - 1 and i > 0 and rng.random() < 0.45:
                speaker, text = prof.host, rng.choice(LEAD_INS)
            else:
                if rng.random() < 0.35 or speaker not in voices:
                    speaker = rng.choice(voices)
                text = _fill(rng.choice(FILLER), rng, guest=guest if guest and speaker != guest else "a friend")
                if rng.random() < 0.1:
                    topic = rng.choice(WORDS)
                filler_spans.append(len(cues))
            cues.append(Cue(s, e, speaker, text))
        if g < len(reads):
            read = reads[g]
            length = read.end - read.start
            pieces = _split(rng, read.start * 1000, read.end * 1000, count=-(-length // 8) + (length > 40))
            read_rng = _rng(show.seed, show.path, ep.index, "read", read.brand, read.start)
            lines = _read_lines(read, show, prof, read_rng, len(pieces))
            for (s, e), text in zip(pieces, lines):
                cues.append(Cue(s, e, read.speaker, text))
    if want_negatives and filler_spans:
        edges = [x * 1000 for r in reads for x in (r.start, r.end)]
        room = [i for i in filler_spans if all(abs(cues[i].start_ms - x) > 20_000 and abs(cues[i].end_ms - x) > 20_000
                                                for x in edges)]
        kinds = list(NEGATIVES)
        for _ in range(plan.choice((1, 1, 2))):
            if not room:
                break
            i = plan.choice(room)
            room = [j for j in room if abs(j - i) > 5]
            kind = plan.choice(kinds)
            text, brand = _negative_line(kind, plan, prof)
            cues[i].text = text
            script.negatives.append(Negative(kind, cues[i].start_ms / 1000, cues[i].end_ms / 1000, text, brand))
    script.chapters = _chapters(show, ep, script, prof, _rng(show.seed, show.path, ep.index, "chapters"))
    return script


def _chapters(show: Show, ep: Episode, script: Script, prof: Profile, rng: random.Random) -> list[dict[str, Any]]:
    duration = script.duration
    reads = script.reads
    style = ad_chapter_style(show)
    inside = lambda t: any(r.start <= t < r.end for r in reads)  # noqa: E731
    starts: list[tuple[float, str, dict[str, Any]]] = [(0.0, rng.choice(("Intro", "Cold open", "Welcome")), {})]
    if reads and reads[0].start == 0:
        starts = []
    next_at = rng.randint(180, 600)
    for cue in script.cues:
        t = cue.start_ms / 1000
        clear = all(not (r.start - 60 <= t < r.end + 30) for r in reads)
        if t >= next_at and clear and t < duration - 60:
            a, b = rng.sample(WORDS, 2)
            title = rng.choice((f"{a.title()} and {b}", f"On {a}", f"Why {a} matters", "Listener questions",
                                f"The {a} debate", f"{a.title()}, revisited"))
            extra: dict[str, Any] = {}
            if rng.random() < 0.2:
                extra["img"] = f"https://cdn.{show.tenant_id}.example.com/{show.slug}/chapters/{_ascii(a).lower()}.jpg"
            starts.append((t, title, extra))
            next_at = t + rng.randint(240, 900)
    for neg in script.negatives:  # a brand as a topic: a content chapter
        if neg.kind == "news_topic" and neg.brand and not inside(neg.start):
            starts = [s for s in starts if abs(s[0] - neg.start) > 20]
            starts.append((neg.start, f"{neg.brand} in the news", {}))
    if style is not None:
        for n, r in enumerate(reads):
            starts = [s for s in starts if not (r.start <= s[0] < r.end)]
            if style == "sponsor_title":
                title = f"Sponsor: {r.brand}"
                extra = {"url": f"https://{r.vanity_url or r.domain}"}
            elif style == "ad_break":
                title, extra = "Ad break", {"endTime": r.end}
            elif style == "word_from":
                title, extra = "A word from our sponsors", {}
            else:
                title = {"pre": "Preroll", "mid": "Midroll", "post": "Postroll"}[position_of(r.start, r.end, duration)]
                extra = {"toc": False}
            starts.append((float(r.start), title, extra))
            if r.end < duration and not any(abs(s[0] - r.end) < 1e-9 for s in starts) and \
                    not any(o.start == r.end for o in reads):
                starts.append((float(r.end), rng.choice(("Back to the show", f"More on {rng.choice(WORDS)}", "Part two")), {}))
    else:
        for r in reads:
            starts = [s for s in starts if not (r.start <= s[0] < r.end)]
    chapters = []
    for t, title, extra in sorted(starts, key=lambda s: s[0]):
        chapter: dict[str, Any] = {"startTime": int(t) if float(t).is_integer() else round(t, 3), "title": title}
        chapter.update(extra)
        chapters.append(chapter)
    return chapters


# -- rendering ------------------------------------------------------------------------------------

def _clock(ms: int, sep: str) -> str:
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def _vtt_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render_vtt(script: Script, header: bool = True) -> str:
    o = script.show.transcript_ordinal or 0
    lines = []
    if header:
        lines.append("WEBVTT" if o % 3 else f"WEBVTT - {script.show.title}")
        if o % 5 == 3:
            lines.append("Kind: captions\nLanguage: en")
        lines.append("")
        if o % 3 == 2:
            lines += ["NOTE", f"Transcript of {script.episode.title or 'an episode'}.", ""]
    for n, cue in enumerate(script.cues, 1):
        if o % 4 == 2:
            lines.append(str(n))
        lines.append(f"{_clock(cue.start_ms, '.')} --> {_clock(cue.end_ms, '.')}")
        voice = f"<v {cue.speaker}>" if cue.speaker else ""
        lines.append(voice + _vtt_text(cue.text))
        lines.append("")
    return "\n".join(lines) + "\n"


def _wrap(text: str, width: int = 42) -> list[str]:
    out, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            out.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return out + [line] if line else out


def render_srt(script: Script, broken: bool = False) -> str:
    blocks, last = [], object()
    for n, cue in enumerate(script.cues, 1):
        text = cue.text if cue.speaker == last or not cue.speaker else f"{cue.speaker}: {cue.text}"
        last = cue.speaker
        start, end = (cue.end_ms, cue.start_ms) if broken else (cue.start_ms, cue.end_ms)
        blocks.append(f"{n}\n{_clock(start, ',')} --> {_clock(end, ',')}\n" + "\n".join(_wrap(text)) + "\n")
    return "\n".join(blocks)


def render_json(script: Script) -> str:
    segments: list[str] = []
    for cue in script.cues:
        segment: dict[str, Any] = {}
        if cue.speaker:
            segment["speaker"] = cue.speaker
        segment.update(startTime=cue.start_ms / 1000, endTime=cue.end_ms / 1000, body=cue.text)
        segments.append(json.dumps(segment, ensure_ascii=False))
    return '{\n "version": "1.0.0",\n "segments": [\n  ' + ",\n  ".join(segments) + "\n ]\n}\n"


def html_turns(script: Script) -> list[tuple[str | None, str]]:
    turns: list[tuple[str | None, list[str]]] = []
    for cue in script.cues:
        if turns and turns[-1][0] == cue.speaker:
            turns[-1][1].append(cue.text)
        else:
            turns.append((cue.speaker, [cue.text]))
    return [(speaker, " ".join(texts)) for speaker, texts in turns]


def render_html(script: Script) -> str:
    parts = []
    for speaker, text in html_turns(script):
        if speaker:
            parts.append(f"<cite>{html_escape(speaker, quote=False)}:</cite>")
        parts.append(f"<p>{html_escape(text, quote=False)}</p>")
    return "\n".join(parts) + "\n"


def render_chapters(script: Script) -> str:
    doc: dict[str, Any] = {"version": "1.2.0"}
    if (script.show.transcript_ordinal or 0) % 3 == 1:
        doc.update(author=script.show.author, title=script.episode.title, podcastName=script.show.title)
    doc["chapters"] = script.chapters
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


def render_document(script: Script, doc: Document) -> bytes | None:
    """The bytes served for a document; None for one nobody serves (a 404)."""
    if doc.defect == "not_found":
        return None
    if doc.defect == "oversized":
        block = render_vtt(script, header=False).encode()
        copies = OVERSIZED_DOCUMENT_BYTES // max(1, len(block)) + 1
        return b"WEBVTT\n\n" + block * copies
    if doc.kind == "chapters":
        if doc.defect == "chapters_not_list":
            return json.dumps({"version": "1.2.0", "chapters": {str(i): c for i, c in enumerate(script.chapters)}},
                              ensure_ascii=False).encode()
        return render_chapters(script).encode()
    if doc.format == "vtt":
        return render_vtt(script, header=doc.defect != "missing_header").encode()
    if doc.format == "srt":
        return render_srt(script, broken=doc.defect == "end_before_start").encode()
    if doc.format == "json":
        text = render_json(script)
        return (text[: len(text) * 3 // 5] if doc.defect == "truncated_json" else text).encode()
    return render_html(script).encode()


# -- show notes -----------------------------------------------------------------------------------

def _notes_lines(show: Show, ep: Episode) -> list[tuple[str, str]]:
    """(html, text) of the lines the item's description gets beyond its usual parts."""
    if not has_transcript(show, ep):
        return []
    prof = profile(show)
    out = []
    reads = external_reads(show, ep)
    if reads and _share(show.seed, show.path, ep.index, "notes") < 0.5:
        lead = SHOW_NOTES_LEADS[int(_share(show.seed, show.path, ep.index, "lead") * len(SHOW_NOTES_LEADS))]
        items = []
        for r in reads:
            where = r.vanity_url or r.domain
            code = f", code {r.promo_code}" if r.promo_code else ""
            items.append((f'{html_escape(r.brand)} — <a href="https://{where}">{where}</a>{code}', f"{r.brand} — {where}{code}"))
        out.append((f"<p>{lead} " + "; ".join(h for h, _ in items) + "</p>", f"{lead} " + "; ".join(t for _, t in items)))
    if _share(show.seed, show.path, ep.index, "patreon") < 0.25:
        out.append((f'<p>Support the show at <a href="https://patreon.com/{prof.slug}">patreon.com/{prof.slug}</a></p>',
                    f"Support the show at patreon.com/{prof.slug}"))
    if _share(show.seed, show.path, ep.index, "img") < 0.2:
        out.append((f'<p><img src="https://cdn.{show.tenant_id}.example.com/{show.slug}/sponsored/banner-{ep.index}.jpg" '
                    f'alt=""/></p>', ""))
    return out


def show_notes_html(show: Show, ep: Episode) -> str:
    return "".join(h for h, _ in _notes_lines(show, ep))


def show_notes_text(show: Show, ep: Episode) -> str:
    """What the pipeline's HTML-to-text makes of `show_notes_html` (blocks become spaces)."""
    return "".join(f" {t}" for _, t in _notes_lines(show, ep) if t)


# -- ground truth ---------------------------------------------------------------------------------

def _usable_shows(network: Network) -> list[Show]:
    return [s for s in network.shows if not (s.feed_defect and FEED_DEFECTS.get(s.feed_defect))
            and s.transcript_ordinal is not None]


def ad_slot_truth(network: Network, base_url: str, world: Any = None) -> list[dict[str, Any]]:
    """One row per planted read in the episodes of the network's usable feeds. `timed` is False
    for reads in HTML-only transcripts (no timings to place them by)."""
    index = CampaignIndex(world) if world is not None else None
    rows = []
    for show in _usable_shows(network):
        feed_url = base_url + show.path
        for ep in show.episodes:
            if not has_transcript(show, ep):
                continue
            timed = has_timed_transcript(show, ep)
            for r in episode_reads(show, ep, feed_url, index):
                rows.append({
                    "tenant_id": show.tenant_id, "feed_url": feed_url, "guid": episode_guid(ep),
                    "start_seconds": r.start, "end_seconds": r.end, "brand": r.brand, "domain": r.domain,
                    "vanity_url": r.vanity_url, "promo_code": r.promo_code, "kind": r.kind,
                    "position": position_of(r.start, r.end, ep.duration_seconds),
                    "placement_id": r.placement_id, "campaign_id": r.campaign_id, "sponsor_id": r.sponsor_id,
                    "timed": timed, "duration_seconds": ep.duration_seconds,
                })
    return rows


def document_truth(network: Network, base_url: str, world: Any = None) -> list[dict[str, Any]]:
    """Every transcript and chapters URL of the usable feeds, with what a correct loader
    concludes: `expected` ok | quarantined, `reason_code`, and for good documents their cue or
    chapter count."""
    index = CampaignIndex(world) if world is not None else None
    rows = []
    for show in _usable_shows(network):
        feed_url = base_url + show.path
        for ep in show.episodes:
            docs = episode_documents(show, ep, base_url)
            if not docs:
                continue
            script = episode_script(show, ep, feed_url, index)
            for doc in docs:
                reason = BAD_DOCUMENTS[doc.defect] if doc.defect else None
                row = {
                    "tenant_id": show.tenant_id, "feed_url": feed_url, "guid": episode_guid(ep), "url": doc.url,
                    "kind": doc.kind, "format": doc.format, "declared_type": doc.declared_type,
                    "content_type": doc.content_type, "expected": "quarantined" if reason else "ok",
                    "defect": doc.defect, "reason_code": reason,
                    "has_timings": doc.format in TIMED_FORMATS if doc.kind == "transcript" else None,
                    "cue_count": None, "chapter_count": None,
                }
                if reason is None and doc.kind == "transcript":
                    row["cue_count"] = len(html_turns(script)) if doc.format == "html" else len(script.cues)
                elif reason is None:
                    row["chapter_count"] = len(script.chapters)
                rows.append(row)
    return rows


def negative_truth(network: Network, base_url: str, world: Any = None) -> list[dict[str, Any]]:
    """The hard negatives planted in transcripts: talk that names a brand, a site or a code and
    is no ad."""
    index = CampaignIndex(world) if world is not None else None
    rows = []
    for show in _usable_shows(network):
        feed_url = base_url + show.path
        for ep in show.episodes:
            if has_transcript(show, ep):
                for n in episode_script(show, ep, feed_url, index).negatives:
                    rows.append({"tenant_id": show.tenant_id, "feed_url": feed_url, "guid": episode_guid(ep),
                                 "kind": n.kind, "start_seconds": n.start, "end_seconds": n.end, "text": n.text,
                                 "brand": n.brand})
    return rows


# -- serving --------------------------------------------------------------------------------------

class DocumentStore:
    """The documents `SimulatorServer` serves, rendered on first request and kept."""

    def __init__(self, network: Network, base_url: str):
        self.network = network
        self.base_url = base_url
        self.campaigns: CampaignIndex | None = None
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[int, bytes, dict[str, str]]] = {}
        self._scripts: dict[tuple[str, int], Script] = {}  # an episode's documents share its script
        self._shows = {(s.tenant_id, s.slug): s for s in network.shows if s.transcript_ordinal is not None}

    def attach(self, world: Any) -> None:
        with self._lock:
            self.campaigns = CampaignIndex(world) if world is not None else None
            self._cache.clear()
            self._scripts.clear()

    def _find(self, path: str) -> tuple[Show, Episode, Document] | None:
        parts = path.split("/")
        if len(parts) != 5 or parts[1] not in ("transcripts", "chapters"):
            return None
        show = self._shows.get((parts[2], parts[3]))
        name = parts[4]
        if show is None or not name.startswith("ep-") or len(name) < 8 or not name[3:7].isdigit():
            return None
        index = len(show.episodes) - int(name[3:7])
        if not 0 <= index < len(show.episodes):
            return None
        ep = show.episodes[index]
        doc = next((d for d in episode_documents(show, ep, self.base_url) if d.path == path), None)
        return (show, ep, doc) if doc else None

    def get(self, path: str) -> tuple[int, bytes, dict[str, str]]:
        """(status, body, headers) of a GET."""
        cached = self._cache.get(path)
        if cached is not None:
            return cached
        found = self._find(path)
        if found is None:
            return 404, b"not found", {"Content-Type": "text/plain"}
        show, ep, doc = found
        script = self._scripts.get((show.path, ep.index))
        if script is None:
            script = episode_script(show, ep, self.base_url + show.path, self.campaigns)
            self._scripts[(show.path, ep.index)] = script
        body = render_document(script, doc)
        if body is None:
            reply = (404, b"<html><body>Not Found</body></html>", {"Content-Type": "text/html"})
        else:
            reply = (200, body, {
                "Content-Type": doc.content_type, "ETag": '"' + hashlib.sha256(body).hexdigest()[:24] + '"',
                "Last-Modified": format_datetime(ep.published.astimezone(timezone.utc), usegmt=True),
                "Access-Control-Allow-Origin": "*",
            })
        if doc.defect != "oversized":  # 12 MiB: rendered again when asked again
            with self._lock:
                self._cache[path] = reply
        return reply

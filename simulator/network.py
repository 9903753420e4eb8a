"""The synthetic network: tenants, shows, episodes and the defects planted in them."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

PODCAST_GUID_NAMESPACE = uuid.UUID("ead4c236-bf58-58c6-a2c6-a6b28d128cb6")

# Feed-level behaviours, with what a correct poller must conclude: None = usable feed.
FEED_DEFECTS: dict[str, str | None] = {
    "redirect": None,            # 301 to the feed's new address
    "wrong_encoding": None,      # declared UTF-8, written in windows-1252
    "flaky": None,               # first request 503 + Retry-After, then fine
    "slow": None,                # answers after a second
    "latin1": None,              # correctly declared ISO-8859-1
    "gzip": None,                # Content-Encoding: gzip
    "malformed_xml": "malformed_xml",
    "not_found": "http_404",
    "server_error": "http_500",
    "redirect_loop": "too_many_redirects",
    "oversized": "response_too_large",
    "entity_bomb": "xml_entities_forbidden",
    "html_page": "not_a_feed",
    "timeout": "timeout",
}

# Item-level defects and the quarantine reason a correct parser gives them.
ITEM_DEFECTS: dict[str, str | None] = {
    "missing_enclosure": "missing_enclosure",
    "invalid_enclosure_url": "invalid_enclosure_url",
    "missing_title": "missing_title",
    "negative_duration": "invalid_duration",
    "duplicate_guid": "duplicate_guid",
    "missing_guid": None,        # valid: the enclosure URL becomes the guid
    "bad_date": None,            # valid: publication time unknown
}

TRACKING_PREFIXES = (
    "https://dts.podtrac.com/redirect.mp3/",
    "https://op3.dev/e/",
    "https://pdst.fm/e/",
    "https://chtbl.com/track/7G2F1/",
)
WORDS = (
    "growth marketing sleep science coffee startup budget garden history jazz climate chess "
    "football design privacy cities rivers soup café über naïve résumé pivot launch audio"
).split()
HOSTS = ("Ada Quinn", "Bo Marsh", "Chidi Okafor", "Dana Ruiz", "Émile Durand", "Farah Haddad")


@dataclass
class Episode:
    index: int
    guid: str | None
    title: str | None
    published: datetime | None
    date_format: str
    duration_seconds: int | None
    duration_format: str
    explicit_raw: str | None
    season: int | None
    number: int | None
    episode_raw: str | None
    episode_type: str
    enclosure_url: str | None
    enclosure_normalized: str | None
    enclosure_length: int
    enclosure_type: str
    transcripts: list[dict[str, str]]
    chapters_url: str | None
    description_parts: tuple[str, str, str]
    defect: str | None = None


@dataclass
class Show:
    tenant_id: str
    slug: str
    title: str
    author: str
    language: str
    category: str
    explicit: bool
    itunes_type: str
    podcast20: bool
    feed_defect: str | None
    episodes: list[Episode] = field(default_factory=list)
    version: int = 0
    # A data-quality defect switched on at run time (`QUALITY_DEFECTS`): the feed stays valid XML,
    # its content goes wrong.
    quality_defect: str | None = None
    # What `simulator.transcripts` derives a show's transcripts from: the network's seed and the
    # show's rank among the network's Podcasting 2.0 shows (None: it publishes no transcripts).
    seed: int = 0
    transcript_ordinal: int | None = None

    @property
    def path(self) -> str:
        return f"/feeds/{self.tenant_id}/{self.slug}.xml"

    def podcast_guid(self, base_url: str) -> str:
        bare = (base_url + self.path).split("://", 1)[1].rstrip("/")
        return str(uuid.uuid5(PODCAST_GUID_NAMESPACE, bare))


@dataclass
class Network:
    seed: int
    tenants: list[str]
    shows: list[Show]

    def show(self, tenant_id: str, slug: str) -> Show | None:
        for show in self.shows:
            if show.tenant_id == tenant_id and show.slug == slug:
                return show
        return None


TENANTS = ("northwind", "riverbend", "summit", "lakeside", "harbor", "meadow", "canyon", "prairie")


def build_network(
    seed: int = 42,
    tenants: int = 3,
    shows_per_tenant: int = 12,
    episodes_per_show: tuple[int, int] = (40, 120),
    feed_defects: bool = True,
    item_defect_rate: float = 0.012,
) -> Network:
    """A deterministic network: the same arguments give byte-identical feeds."""
    rng = random.Random(seed)
    tenant_ids = [TENANTS[i % len(TENANTS)] + ("" if i < len(TENANTS) else str(i)) for i in range(tenants)]
    defect_names = list(FEED_DEFECTS) if feed_defects else []
    shows: list[Show] = []
    anchor = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)
    for t_index, tenant_id in enumerate(tenant_ids):
        for s_index in range(shows_per_tenant):
            global_index = t_index * shows_per_tenant + s_index
            # Spread feed defects across tenants: show k of the network gets defect k.
            order = s_index * tenants + t_index
            defect = defect_names[order] if order < len(defect_names) else None
            topic = rng.choice(WORDS)
            show = Show(
                tenant_id=tenant_id,
                slug=f"show-{global_index:04d}",
                title=f"The {topic.title()} Hour {global_index}",
                author=rng.choice(HOSTS),
                language=rng.choice(["en-us", "en-gb", "fr", "de"]),
                category=rng.choice(["Business", "Technology", "Comedy", "News", "Health & Fitness"]),
                explicit=rng.random() < 0.3,
                itunes_type=rng.choice(["episodic", "episodic", "serial"]),
                podcast20=rng.random() < 0.6,
                feed_defect=defect,
            )
            count = rng.randint(*episodes_per_show)
            show.episodes = [_episode(rng, show, i, count, anchor, item_defect_rate) for i in range(count)]
            _plant_duplicates(show)
            shows.append(show)
    ordinal = 0
    for show in shows:  # no draws: the feeds stay as they were
        show.seed = seed
        if show.podcast20:
            show.transcript_ordinal, ordinal = ordinal, ordinal + 1
    return Network(seed=seed, tenants=tenant_ids, shows=shows)


def _episode(rng: random.Random, show: Show, i: int, count: int, anchor: datetime, rate: float) -> Episode:
    number = count - i  # feeds list newest first
    published = anchor - timedelta(days=7 * i + rng.randint(0, 3), minutes=rng.randint(0, 1439))
    duration = rng.randint(45, 5400) if rng.random() > 0.05 else rng.randint(20, 59)
    tenant_cdn = f"https://cdn.{show.tenant_id}.example.com/{show.slug}/ep-{number:04d}.mp3"
    prefix = rng.choice(TRACKING_PREFIXES) if rng.random() < 0.35 else ""
    enclosure = prefix + (tenant_cdn.split("://", 1)[1] if prefix else tenant_cdn)
    w = lambda n: " ".join(rng.choice(WORDS) for _ in range(n))  # noqa: E731
    defect = None
    if rng.random() < rate * len(ITEM_DEFECTS):
        defect = rng.choice([d for d in ITEM_DEFECTS if d != "duplicate_guid"])
    transcripts = []
    chapters = None
    if show.podcast20:
        transcripts = [{"url": f"https://cdn.{show.tenant_id}.example.com/{show.slug}/ep-{number:04d}.vtt",
                        "type": "text/vtt", "language": "en"}]
        if rng.random() < 0.5:
            transcripts.append({"url": f"https://cdn.{show.tenant_id}.example.com/{show.slug}/ep-{number:04d}.json",
                                "type": "application/json"})
        chapters = f"https://cdn.{show.tenant_id}.example.com/{show.slug}/ep-{number:04d}.chapters.json"
    season = (number - 1) // 20 + 1 if show.itunes_type == "serial" or rng.random() < 0.3 else None
    episode_raw = str(number) if rng.random() > 0.03 else "n/a"
    episode = Episode(
        index=i,
        guid=f"{show.tenant_id}-{show.slug}-{number:04d}-{rng.getrandbits(32):08x}",
        title=f"{w(3).title()} — part {number}",
        published=published,
        date_format=rng.choice(["rfc_utc", "rfc_gmt", "rfc_offset", "rfc_named", "iso"]),
        duration_seconds=duration if rng.random() > 0.04 else None,
        duration_format=rng.choice(["seconds", "hms", "mmss", "hms_padded"]),
        explicit_raw=rng.choice(["yes", "no", "true", "false", "clean", "explicit", None, None]),
        season=season,
        number=number if episode_raw != "n/a" else None,
        episode_raw=episode_raw,
        episode_type=rng.choice(["full"] * 8 + ["trailer", "bonus"]),
        enclosure_url=enclosure,
        enclosure_normalized=tenant_cdn,
        enclosure_length=duration * 16_000 + rng.randint(2_000, 60_000),
        enclosure_type="audio/mpeg",
        transcripts=transcripts,
        chapters_url=chapters,
        description_parts=(f"{w(8).capitalize()}.", f"We talk {w(4)}", w(2)),
        defect=defect,
    )
    if defect == "missing_enclosure":
        episode.enclosure_url = episode.enclosure_normalized = None
    elif defect == "invalid_enclosure_url":
        episode.enclosure_url = "ftp://files.example.com/" + tenant_cdn.rsplit("/", 1)[1]
        episode.enclosure_normalized = None
    elif defect == "missing_title":
        episode.title = None
    elif defect == "negative_duration":
        episode.duration_seconds = -episode.enclosure_length // 16_000
        episode.duration_format = "seconds"
    elif defect == "missing_guid":
        episode.guid = None
    elif defect == "bad_date":
        episode.published = None
    return episode


def _plant_duplicates(show: Show) -> None:
    """Some items reuse the guid of a valid item that comes earlier in the feed."""
    for i, episode in enumerate(show.episodes):
        if i >= 3 and episode.defect is None and i % 29 == 7:
            source = show.episodes[i - 3]
            if source.defect is None:
                episode.guid = source.guid
                episode.defect = "duplicate_guid"

"""Sponsorship side of the simulated network: sponsors, campaigns, placements and the conversions
they cause, with the ground truth an attribution engine must reproduce.

Everything follows from the seed and from the access logs `simulator.logs.generate_logs` wrote:
an exposure is a counted download window (`LogTruth.windows`) of an episode that carries a
placement, whose bytes reach the ad under the IAB delivery rule. Conversions are planted on top:
households that heard an ad buy with the campaign's promo code, through its vanity URL or UTM
link, or just from the same address (household match); organic buyers (listeners who heard
nothing, people who never listen), promo codes that leak, prior customers, data-centre and
shared addresses, order edits and refunds, and a few broken records. How many households buy
is the `response` setting (RESPONSES): realistic returns on ad spend by default, dense for tests
of the attribution rules.

`campaign_truth` applies the measurement rules to the planted events in plain Python: the
exposures, the deterministic and household matches, every multi-touch model, cost, ROI and
ROAS (Decimal, to the cent). It is the reference the attribution marts are tested against.
"""

from __future__ import annotations

import hashlib
import ipaddress
import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

from simulator.logs import DATACENTER_CIDRS, HEADER_ALLOWANCE, DownloadWindow, LogTruth

MODELS = ("first_touch", "last_touch", "linear", "time_decay", "position_based")
MAX_HOUSEHOLD_AGENTS = 10        # a household with more distinct user agents is a shared address
CATEGORIES = ("dtc_retail", "software", "finance", "food_delivery", "health")
SPONSOR_NAMES = ("Northwind Mattress", "Brightleaf Coffee", "Ledgerly", "Parcel Meals", "Vitalis Labs",
                 "Copperline VPN", "Huckle Razors", "Orbit Banking", "Tandem Bikes", "Sprout Tutoring",
                 "Kettle & Co", "Lumen Glasses")
BROWSERS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.122 Mobile Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
)
CENT = Decimal("0.01")
EPOCH = datetime(2026, 9, 1, tzinfo=timezone.utc)  # records are created from here on
# The simulated network's present: events, edits and refunds planted after it have not happened
# yet and are not written (a loader would quarantine them as `future_timestamp`, and the truth
# cannot count what has not happened). The only later events are the planted hostile ones
# (`FUTURE_EVENT_AT`), which the truth excludes as bad records.
SIMULATED_NOW = datetime(2026, 11, 30, tzinfo=timezone.utc)
FUTURE_EVENT_AT = datetime(2036, 1, 1, 12, tzinfo=timezone.utc)  # a device clock years ahead
# Prices as podcast ads are sold: CPMs of $18-$50 (the range the IAB / Advertiser Perceptions podcast
# ad revenue studies report; agencies quote about $25 for a 60-second mid-roll).
# A CPM campaign is a dynamically inserted run-of-show buy: its ad goes into every ad break
# (`CPM_BREAKS`) of every episode of its shows, back catalogue included, during the flight. Its
# budget is the delivery the simulator expects (the ads its logs deliver) times the rate, times a
# cover factor: below 1 the budget caps the cost.
CPM_RATES = ("18.00", "25.00", "32.00", "45.00")
CPM_BREAKS = (("pre", 0), ("mid", 600), ("mid", 1500))
CPM_BUDGET_COVER = ("0.80", "1.00", "1.25", "1.50")
# A flat fee (host-read, baked in) is priced as its placements' expected downloads during the flight
# (the counted downloads of the placed episodes in the simulator's logs) times a CPM, in whole dollars.
FLAT_FEE_CPMS = ("18.00", "25.00", "32.00", "50.00")
FLAT_FEE_MIN = Decimal(10)  # a show's smallest sponsorship
# Response: in the realistic world (the demo's) each campaign draws a return on ad spend in
# ROAS_DRAW and the households it reached buy, through a traceable channel, until their orders
# add up to that return on the cost it is expected to accrue; unexposed listeners buy from the
# sponsor at ORGANIC_RATE. The dense world (`response="dense"`, the test fixtures') plants a
# conversion for DENSE_RESPONSE of the reached households and organic purchases at
# DENSE_ORGANIC_RATE, so every attribution rule is exercised many times; its ROIs are far above
# what real campaigns see.
RESPONSES = ("realistic", "dense")
ROAS_DRAW = (Decimal("0.60"), Decimal("2.40"))
ORGANIC_RATE = 0.01
DENSE_RESPONSE = 0.45
DENSE_ORGANIC_RATE = 0.06
# What the realistic world's campaigns must show (README, "Costs, ROI and the range the demo
# targets"): ROI between -80 % and +300 % (ROAS 0.2x-4x) and an effective CPM (cost to date per
# thousand delivered ads) in EFFECTIVE_CPM_BAND.
ROI_TARGET = (Decimal("-0.80"), Decimal("3.00"))
EFFECTIVE_CPM_BAND = (Decimal("10.00"), Decimal("75.00"))


def _money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _stable(*parts: object) -> str:
    return hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()


@dataclass
class Sponsor:
    tenant_id: str
    sponsor_id: str
    name: str
    category: str
    website: str
    tracking: str            # shop | pixel: how the sponsor reports conversions
    store: str | None        # the shop's handle (tracking = shop)
    updated_at: datetime
    channel: str             # sponsorship_api | insertion_order: where the record is published


@dataclass
class Campaign:
    tenant_id: str
    campaign_id: str
    sponsor_id: str
    name: str
    budget: Decimal
    currency: str
    flight_start: date
    flight_end: date
    pricing_model: str
    flat_fee: Decimal | None
    cpm_rate: Decimal | None
    goal_type: str
    goal_value: Decimal
    promo_codes: list[str]
    vanity_urls: list[str]
    utm_campaign: str
    attribution_window_days: int
    attribution_model: str
    decay_half_life_days: Decimal
    exclude_prior_customers: bool
    status: str
    updated_at: datetime
    channel: str             # sponsorship_api | insertion_order
    io_format: str | None = None  # csv | xlsx for insertion orders
    # False: the API and insertion order name no promo code and no vanity URL; the campaign's reads
    # say its one code and URL (`promo_codes`, `vanity_urls` hold them), which matching must learn.
    codes_published: bool = True


@dataclass
class Placement:
    tenant_id: str
    placement_id: str
    campaign_id: str
    feed_url: str
    episode_guid: str | None
    position: str
    insertion: str
    start_date: date
    end_date: date
    ad_offset_seconds: int   # where the ad is (for a baked-in read: where it was planted)
    ad_duration_seconds: int
    updated_at: datetime
    # False: the API and insertion order leave the offset out (`mark_unpublished_offsets`).
    offset_published: bool = True

    def ad_bytes(self, enclosure_length: int, duration_seconds: int | None) -> tuple[int, int] | None:
        """[start, end) of the ad in the file, as measurement estimates it: the ID3 allowance plus
        the offset at the file's average bytes per second (size / duration). None when the
        duration is unknown."""
        if not duration_seconds or duration_seconds <= 0 or enclosure_length <= 0:
            return None

        def at(seconds: int) -> int:
            return HEADER_ALLOWANCE + -(-enclosure_length * seconds // duration_seconds)  # ceil

        return at(self.ad_offset_seconds), at(self.ad_offset_seconds + self.ad_duration_seconds)


@dataclass
class Event:
    """One conversion or signal as its source reports it (orders: the latest state; `history`
    holds the states a shop showed earlier)."""

    tenant_id: str
    source: str              # shop_orders | pixel | vanity
    event_id: str
    sponsor_id: str
    event_type: str          # order | purchase | lead | page_view | vanity_visit
    occurred_at: datetime
    ip: str
    user_agent: str
    channel: str             # promo_code | vanity_url | utm | household | organic | signal
    intended_campaign: str | None = None
    gross: Decimal | None = None
    discount_codes: list[str] = field(default_factory=list)
    landing_url: str | None = None
    referrer: str | None = None
    vanity_url: str | None = None
    customer_id: str | None = None
    edits: list[tuple[datetime, Decimal]] = field(default_factory=list)  # (when, new total)
    refunds: list[tuple[datetime, Decimal]] = field(default_factory=list)  # (when, amount)
    note: str | None = None  # why it exists: prior_customer, leaked_code, datacenter, shared_ip...

    @property
    def is_conversion(self) -> bool:
        return self.event_type in ("order", "purchase", "lead")

    @property
    def updated_at(self) -> datetime:
        return max([self.occurred_at, *(t for t, _ in self.edits), *(t for t, _ in self.refunds)])

    def total_at(self, moment: datetime | None = None) -> Decimal | None:
        total = self.gross
        for when, value in self.edits:
            if moment is None or when <= moment:
                total = value
        return total

    def refunded_at(self, moment: datetime | None = None) -> Decimal:
        return sum((a for when, a in self.refunds if moment is None or when <= moment), Decimal("0.00"))

    @property
    def net_revenue(self) -> Decimal:
        if self.gross is None:
            return Decimal("0.00")
        return self.total_at() - self.refunded_at()


@dataclass
class Exposure:
    tenant_id: str
    campaign_id: str
    placement_id: str
    household: str           # the IP prefix (IPv4 address or IPv6 /64)
    ip: str
    user_agent: str
    enclosure_url_normalized: str
    exposed_at: datetime


@dataclass
class CampaignWorld:
    seed: int
    sponsors: list[Sponsor]
    campaigns: list[Campaign]
    placements: list[Placement]
    events: list[Event]
    exposures: list[Exposure]
    bad_records: list[dict[str, Any]]      # planted broken records: source, record key, reason
    household_agents: dict[tuple[str, str], int]  # (tenant, household) -> distinct agents in the logs
    listener_households: dict[str, set[str]]      # tenant -> households with a counted download
    shared_households: dict[str, str]             # tenant -> the shared household's prefix
    as_of: datetime | None = None                 # the shop's clock (None: everything is visible)
    listener_days: dict[tuple[str, str], set[date]] = field(default_factory=dict)  # (tenant, household) -> days

    def sponsor(self, tenant_id: str, sponsor_id: str) -> Sponsor:
        return next(s for s in self.sponsors if s.tenant_id == tenant_id and s.sponsor_id == sponsor_id)


# -- generation -------------------------------------------------------------------------------

def _episodes(truth_doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for ep in truth_doc["episodes"]:
        if ep["valid"] and ep.get("enclosure_url_normalized"):
            out.setdefault(ep["enclosure_url_normalized"], ep)
    return out


def delivered(placement: Placement, enclosure_length: int, duration_seconds: int | None, bytes_covered: int,
              position_known: bool = True) -> bool:
    """IAB ad delivery: a baked-in ad starting in the first quarter of the file counts when a
    quarter of the file was covered, a later baked-in ad when the bytes reach its start; a
    dynamically inserted ad only when all of its bytes were delivered. An ad past the end of
    the file is never delivered; with the duration unknown, or the ad's position unknown
    (`position_known` False), only a whole-file download counts."""
    ad = placement.ad_bytes(enclosure_length, duration_seconds) if position_known else None
    if ad is None:
        return bytes_covered >= enclosure_length
    start, end = ad
    if placement.insertion == "dynamic":
        return bytes_covered >= end
    if 4 * start < enclosure_length:
        return 4 * bytes_covered >= enclosure_length
    return bytes_covered >= start


def _placed_downloads(windows: list[DownloadWindow], episodes: dict[str, dict[str, Any]],
                      campaigns: list[Campaign], placements: list[Placement]):
    """(download window, its episode, placement) for every download of a placed episode during the
    placement's dates and its campaign's flight."""
    by_campaign = {(c.tenant_id, c.campaign_id): c for c in campaigns}
    by_show: dict[tuple[str, str], list[Placement]] = defaultdict(list)
    for p in placements:
        by_show[(p.tenant_id, p.feed_url)].append(p)
    for w in windows:
        ep = episodes.get(w.enclosure_url_normalized)
        if ep is None:
            continue
        day = w.window_start.date()
        for p in by_show.get((w.tenant_id, ep["feed_url"]), ()):
            c = by_campaign[(p.tenant_id, p.campaign_id)]
            if (p.episode_guid in (None, ep["guid"]) and p.start_date <= day <= p.end_date
                    and c.flight_start <= day <= c.flight_end):
                yield w, ep, p


def planted_reads(episodes: dict[str, dict[str, Any]], placements: list[Placement]) -> set[tuple[str, str]]:
    """(placement id, episode guid) of every baked-in read planted in an episode's timed
    transcript (`simulator.transcripts.campaign_placements_read`)."""
    from simulator.transcripts import campaign_placements_read

    by_feed: dict[str, list[Placement]] = defaultdict(list)
    for p in placements:
        if p.insertion == "baked_in":
            by_feed[p.feed_url].append(p)
    out = set()
    for ep in episodes.values():
        if ep.get("timed_transcript") and ep["feed_url"] in by_feed:
            for p in campaign_placements_read(by_feed[ep["feed_url"]], ep["feed_url"], ep["guid"],
                                              ep.get("duration_seconds"), True):
                out.add((p.placement_id, ep["guid"]))
    return out


def position_known(placement: Placement, guid: str, planted: set[tuple[str, str]]) -> bool:
    """Whether measurement can know where the placement's ad is in an episode: from the published
    offset, or, when the offset is not published, from the read in the episode's timed transcript."""
    return placement.offset_published or (placement.placement_id, guid) in planted


def compute_exposures(windows: list[DownloadWindow], episodes: dict[str, dict[str, Any]],
                      campaigns: list[Campaign], placements: list[Placement]) -> list[Exposure]:
    """A placement without a published offset is where its read was planted when the episode's
    timed transcript has it; elsewhere its position is unknown: only whole-file downloads count."""
    planted = planted_reads(episodes, placements) if any(not p.offset_published for p in placements) else set()
    return [Exposure(w.tenant_id, p.campaign_id, p.placement_id, w.ip_prefix, w.ip, w.user_agent,
                     w.enclosure_url_normalized, w.window_start)
            for w, ep, p in _placed_downloads(windows, episodes, campaigns, placements)
            if delivered(p, ep["enclosure_length"], ep.get("duration_seconds"), w.bytes_covered,
                         position_known(p, ep["guid"], planted))]


def _expected_downloads(windows: list[DownloadWindow], episodes: dict[str, dict[str, Any]],
                        campaigns: list[Campaign], placements: list[Placement]) -> dict[str, int]:
    """Campaign id -> counted downloads of its placed episodes during the placements' dates and the
    flight (each placement's downloads counted once per placement): what a show sells a flat fee on."""
    out: dict[str, int] = defaultdict(int)
    for _, _, p in _placed_downloads(windows, episodes, campaigns, placements):
        out[p.campaign_id] += 1
    return out


def _other_address(rng: random.Random, ip: str) -> str:
    """An address of the same household: IPv6 privacy extensions rotate the interface id."""
    address = ipaddress.ip_address(ip)
    if address.version == 6:
        return str(ipaddress.IPv6Address((int(address) >> 64 << 64) | rng.getrandbits(64)))
    return ip


def _stranger_ip(rng: random.Random) -> str:
    """Somebody who never appears in the access logs (the 100.x/10 block is never generated there)."""
    return f"100.{rng.randint(64, 127)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def generate_campaigns(truth_doc: dict[str, Any], logs: LogTruth, seed: int, response: str = "realistic") -> CampaignWorld:
    """The sponsorship side of the network whose feeds `truth_doc` describes and whose access
    logs `logs` records (generated with a shared household: `shared_ip_user_agents`).
    `response` is `realistic` (campaign returns real campaigns see) or `dense` (many conversions
    per campaign, for tests of the attribution rules; see RESPONSES)."""
    if response not in RESPONSES:
        raise ValueError(f"response must be one of {', '.join(RESPONSES)}, not {response!r}")
    rng = random.Random(f"{seed}:campaigns")
    episodes = _episodes(truth_doc)
    sponsors: list[Sponsor] = []
    campaigns: list[Campaign] = []
    placements: list[Placement] = []
    windows_by_tenant: dict[str, list[DownloadWindow]] = defaultdict(list)
    for w in logs.windows:
        windows_by_tenant[w.tenant_id].append(w)
    listener_households = {t: {w.ip_prefix for w in ws} for t, ws in windows_by_tenant.items()}
    agents = {key: len(v) for key, v in logs.household_agents.items()}
    shared = {t: h for (t, h), n in agents.items() if n > MAX_HOUSEHOLD_AGENTS and h in listener_households.get(t, ())}
    updated_base = datetime(2026, 10, 1, 9, tzinfo=timezone.utc)
    name_index = 0
    cover: dict[int, Decimal] = {}  # campaign index -> CPM budget cover, or the flat fee's CPM
    for t_index, tenant in enumerate(sorted(windows_by_tenant)):
        windows = windows_by_tenant[tenant]
        show_downloads: dict[str, int] = defaultdict(int)
        episode_downloads: dict[str, int] = defaultdict(int)
        for w in windows:
            ep = episodes.get(w.enclosure_url_normalized)
            if ep:
                show_downloads[ep["feed_url"]] += 1
                episode_downloads[w.enclosure_url_normalized] += 1
        shows = sorted(show_downloads, key=lambda f: (-show_downloads[f], f))
        for k in range(4):
            name = SPONSOR_NAMES[name_index % len(SPONSOR_NAMES)]
            name_index += 1
            slug = name.lower().replace(" & ", "-").replace(" ", "-")
            sponsor = Sponsor(
                tenant, f"sp-{tenant}-{k + 1:02d}", name, CATEGORIES[(t_index + k) % len(CATEGORIES)],
                f"www.{slug.replace('-', '')}.com", "shop" if k % 2 == 0 else "pixel",
                f"{slug}-{tenant}" if k % 2 == 0 else None, updated_base + timedelta(hours=k),
                "insertion_order" if k == 3 else "sponsorship_api",
            )
            sponsors.append(sponsor)
            # The sponsor's campaigns run on distinct shows, so one download carries at most
            # one of its ads.
            sponsor_shows = [shows[(k * 3 + i) % len(shows)] for i in range(6)] if len(shows) >= 12 else \
                [shows[(k + i * 4) % len(shows)] for i in range(6)]
            sponsor_shows = list(dict.fromkeys(sponsor_shows))
            half_life = Decimal((7, 3, 10, 5)[k])
            for j in range(2):
                c_index = len(campaigns)
                pricing = "flat" if (c_index + t_index) % 2 == 0 else "cpm"
                code = f"{slug.split('-')[0].upper()}{10 + c_index}"
                window = (30, 7, 14, 45, 60, 1, 21, 30)[(k * 2 + j + t_index) % 8]
                model = MODELS[(c_index + j) % len(MODELS)]
                start = date(2026, 10, 28) + timedelta(days=rng.randint(0, 4))
                end = date(2026, 11, 20) + timedelta(days=rng.randint(0, 25))
                size = rng.randrange(4)
                # A flat fee and a CPM budget are set below, once the audience the placements reach is known.
                budget = Decimal(0)
                flat_fee = Decimal(0) if pricing == "flat" else None
                cpm_rate = Decimal(rng.choice(CPM_RATES)) if pricing == "cpm" else None
                cover[c_index] = Decimal(CPM_BUDGET_COVER[size]) if pricing == "cpm" else Decimal(FLAT_FEE_CPMS[size])
                via_io = k == 3 or (k == 0 and j == 1)
                campaign = Campaign(
                    tenant, f"cmp-{tenant}-{c_index + 1:03d}", sponsor.sponsor_id,
                    f"{name} Q4 {('launch', 'always-on')[j]}", budget, "USD", start, end, pricing,
                    flat_fee, cpm_rate, ("conversions", "revenue", "impressions")[c_index % 3],
                    Decimal(rng.choice((50, 100, 5000))),
                    [code, code + "X"] if sponsor.tracking == "shop" else [],
                    [f"{sponsor.website.removeprefix('www.')}/{slug.split('-')[0]}{j + 1}"],
                    f"{tenant}_{slug.split('-')[0]}_{j + 1}", window, model, half_life,
                    exclude_prior_customers=(c_index % 3 == 1), status="active",
                    updated_at=updated_base + timedelta(days=1, hours=c_index),
                    channel="insertion_order" if via_io else "sponsorship_api",
                    io_format=("csv" if c_index % 2 == 0 else "xlsx") if via_io else None,
                )
                campaigns.append(campaign)
                my_shows = sponsor_shows[j * 3:(j + 1) * 3] or sponsor_shows[:1]
                if pricing == "cpm":  # run of show: every break of every episode, inserted dynamically
                    ad_duration = rng.choice((30, 60))
                    for feed in my_shows:
                        for position, offset in CPM_BREAKS:
                            p_number = len(placements) + 1
                            p_start = start if p_number % 5 else date(2026, 11, 2)  # one in five starts late
                            placements.append(Placement(
                                tenant, f"pl-{tenant}-{p_number:04d}", campaign.campaign_id, feed, None, position,
                                "dynamic", p_start, end, offset, ad_duration, campaign.updated_at + timedelta(minutes=p_number),
                            ))
                    continue
                # Flat fee: a host-read ad baked into every episode of its shows (back catalogue
                # included); one show's most downloaded episode also carries a read at its end.
                for p_index, feed in enumerate(my_shows):
                    ad_duration = rng.choice((30, 60))
                    show_eps = sorted((e for e in episodes.values() if e["feed_url"] == feed and e["duration_seconds"]),
                                      key=lambda e: (-episode_downloads[e["enclosure_url_normalized"]], e["guid"]))
                    spots = [(None, rng.choice(("pre", "mid")), 0)]
                    if p_index == 1 and show_eps:
                        ep = show_eps[0]
                        spots.append((ep["guid"], "post", max(0, ep["duration_seconds"] - ad_duration)))
                    for guid, position, offset in spots:
                        p_number = len(placements) + 1
                        if position == "mid":
                            offset = rng.choice((90, 240, 600, 1200))
                        p_start = start if p_number % 5 else date(2026, 11, 2)  # one in five starts late
                        placements.append(Placement(
                            tenant, f"pl-{tenant}-{p_number:04d}", campaign.campaign_id, feed, guid, position,
                            "baked_in", p_start, end, offset, ad_duration, campaign.updated_at + timedelta(minutes=p_number),
                        ))
    mark_unpublished_offsets(truth_doc, placements)
    mark_unpublished_codes(truth_doc, sponsors, campaigns, placements)
    exposures = compute_exposures(logs.windows, episodes, campaigns, placements)
    delivered_ads: dict[str, int] = defaultdict(int)
    for e in exposures:
        delivered_ads[e.campaign_id] += 1
    downloads = _expected_downloads(logs.windows, episodes, campaigns, placements)
    for c_index, c in enumerate(campaigns):  # whole dollars, rounded up
        if c.pricing_model == "flat":
            fee = (downloads[c.campaign_id] * cover[c_index] / 1000).quantize(Decimal(1), ROUND_CEILING)
            c.budget = c.flat_fee = max(FLAT_FEE_MIN, fee)
        else:
            c.budget = (delivered_ads[c.campaign_id] * c.cpm_rate * cover[c_index] / 1000).quantize(Decimal(1), ROUND_CEILING)
    world = CampaignWorld(seed, sponsors, campaigns, placements, [], exposures, [], agents,
                          listener_households, shared)
    for w in logs.windows:
        world.listener_days.setdefault((w.tenant_id, w.ip_prefix), set()).add(w.window_start.date())
    _plant_conversions(world, rng, response)
    return world


def _transcript_shows(truth_doc: dict[str, Any]) -> set[str]:
    """Feed URLs of the shows whose items name transcripts (Podcasting 2.0 shows)."""
    return {ep["feed_url"] for ep in truth_doc["episodes"] if ep.get("transcript_urls")}


def mark_unpublished_offsets(truth_doc: dict[str, Any], placements: list[Placement]) -> None:
    """Every second all-episode baked-in placement on a show with transcripts (per tenant, in
    placement order) is published without its offset: where the read is must be detected."""
    shows = _transcript_shows(truth_doc)
    seen: dict[str, int] = defaultdict(int)
    for p in placements:
        if p.insertion == "baked_in" and p.episode_guid is None and p.feed_url in shows:
            seen[p.tenant_id] += 1
            p.offset_published = seen[p.tenant_id] % 2 == 1


def mark_unpublished_codes(truth_doc: dict[str, Any], sponsors: list[Sponsor], campaigns: list[Campaign],
                           placements: list[Placement]) -> None:
    """Per tenant, one or two shop-tracked flat campaigns name no promo code and no vanity URL:
    those whose placements are all on shows with transcripts (at most two), or else the one with
    the most placements read in timed transcripts; always campaigns with a read planted somewhere.
    Each keeps one code (the one its reads say) and its one vanity URL."""
    shows = _transcript_shows(truth_doc)
    tracking = {(s.tenant_id, s.sponsor_id): s.tracking for s in sponsors}
    read = {pid for pid, _ in planted_reads(_episodes(truth_doc), placements)}
    candidates: dict[str, list[tuple[bool, int, Campaign]]] = defaultdict(list)
    for c in campaigns:
        mine = [p for p in placements if p.campaign_id == c.campaign_id]
        heard = sum(1 for p in mine if p.placement_id in read)
        if c.pricing_model == "flat" and tracking[(c.tenant_id, c.sponsor_id)] == "shop" and c.promo_codes and heard:
            candidates[c.tenant_id].append((all(p.feed_url in shows for p in mine), heard, c))
    for tenant, options in candidates.items():
        everywhere = [c for every, _, c in options if every]
        chosen = everywhere[:2] or [max(options, key=lambda o: (o[1], o[2].campaign_id))[2]]
        for c in chosen:
            c.codes_published = False
            c.promo_codes = c.promo_codes[:1]
            c.vanity_urls = c.vanity_urls[:1]


def _plant_conversions(world: CampaignWorld, rng: random.Random, response: str) -> None:
    campaigns = {c.campaign_id: c for c in world.campaigns}
    events = world.events
    counter = defaultdict(int)

    def new_event(sponsor: Sponsor, event_type: str, when: datetime, ip: str, channel: str, **kw) -> Event:
        counter[sponsor.sponsor_id] += 1
        n = counter[sponsor.sponsor_id]
        source = "shop_orders" if sponsor.tracking == "shop" and event_type == "order" else \
            "vanity" if event_type == "vanity_visit" else "pixel"
        event_id = (str(5_000_000_000 + int(_stable(sponsor.sponsor_id, n)[:8], 16) % 1_000_000_000)
                    if source == "shop_orders" else _stable(world.seed, sponsor.sponsor_id, n)[:24])
        ev = Event(sponsor.tenant_id, source, event_id, sponsor.sponsor_id, event_type,
                   when.replace(microsecond=0), ip, kw.pop("user_agent", rng.choice(BROWSERS)), channel, **kw)
        events.append(ev)
        return ev

    def conversion(sponsor: Sponsor, when: datetime, ip: str, channel: str, campaign: Campaign | None = None,
                   code: str | None = None, landing: str | None = None, note: str | None = None,
                   customer: str | None = None, at_most: Decimal | None = None) -> Event:
        # at_most: the largest order the buyer places (never below the smallest order)
        def order_value(low: int, high: int) -> Decimal:
            if at_most is not None:
                high = max(low, min(high, int(at_most * 100)))
            return Decimal(rng.randint(low, high)) / 100

        if sponsor.tracking == "shop":
            event_type = "order"
            gross = order_value(2000, 25000)
        else:
            event_type = "purchase" if rng.random() < 0.75 else "lead"
            gross = order_value(1500, 18000) if event_type == "purchase" else None
        ev = new_event(sponsor, event_type, when, ip, channel, intended_campaign=campaign.campaign_id if campaign else None,
                       gross=gross, discount_codes=[code] if code else [],
                       landing_url=landing or f"https://{sponsor.website}/", note=note,
                       referrer=rng.choice((None, "https://www.google.com/", "https://duckduckgo.com/")),
                       customer_id=customer)
        if event_type == "order":
            roll = rng.random()
            if roll < 0.15:  # edited later: new total
                ev.edits.append((ev.occurred_at + timedelta(hours=rng.randint(2, 72)),
                                 _money(gross * Decimal(rng.choice(("0.8", "1.1", "1.25"))))))
            elif roll < 0.27:  # refunded: partly or whole
                full = rng.random() < 0.4
                amount = gross if full else _money(gross / 2)
                ev.refunds.append((ev.occurred_at + timedelta(days=rng.randint(1, 10)), amount))
            if roll < 0.05:  # edited, then partly refunded
                ev.refunds.append((ev.updated_at + timedelta(days=1), _money(ev.total_at() / 4)))
        elif sponsor.tracking == "pixel" and rng.random() < 0.5:  # the page view before it
            new_event(sponsor, "page_view", ev.occurred_at - timedelta(minutes=rng.randint(1, 20)), ip, "signal",
                      user_agent=ev.user_agent, landing_url=ev.landing_url, referrer=ev.referrer)
        return ev

    def vanity_visit(sponsor: Sponsor, campaign: Campaign, when: datetime, ip: str, user_agent: str) -> Event:
        url = campaign.vanity_urls[0]
        return new_event(sponsor, "vanity_visit", when, ip, "signal", user_agent=user_agent,
                         vanity_url=url, landing_url=f"https://{url}", intended_campaign=campaign.campaign_id,
                         referrer=None)

    exposures_by: dict[tuple[str, str, str], list[Exposure]] = defaultdict(list)  # tenant, sponsor, household
    for e in world.exposures:
        exposures_by[(e.tenant_id, campaigns[e.campaign_id].sponsor_id, e.household)].append(e)
    customer_ids: dict[tuple[str, str], str] = {}

    def customer(tenant: str, household: str) -> str:
        return customer_ids.setdefault((tenant, household), str(7_000_000 + len(customer_ids)))

    def caused(sponsor: Sponsor, household: str, e: Exposure, at_most: Decimal | None = None,
               matched: bool = True) -> Event:
        """A purchase the ad caused: after exposure `e`, within its campaign's window, through one
        of the channels attribution traces (matched=False: a promo code, UTM link or vanity URL
        only, not the household match that multi-touch models share between campaigns)."""
        c = campaigns[e.campaign_id]
        tenant = sponsor.tenant_id
        longest = int(c.attribution_window_days * 86400 * 0.9)
        if response == "realistic":  # a caused purchase has happened (dense: some lie ahead)
            longest = max(3600, min(longest, int((SIMULATED_NOW - e.exposed_at).total_seconds()) - 3600))
        when = e.exposed_at + timedelta(seconds=rng.randint(3600, longest))
        channels = ["household", "household", "utm", "vanity_url"] + (["promo_code"] * 2 if c.promo_codes else [])
        channel = rng.choice(channels if matched else channels[2:])
        addr = _other_address(rng, e.ip)
        if channel == "promo_code":
            # (a campaign that names no codes keeps one of its two: drawn as from two)
            code = rng.choice(c.promo_codes if c.codes_published else c.promo_codes * 2)
            return conversion(sponsor, when, addr, channel, c, code=rng.choice((code, code.lower())),
                              customer=customer(tenant, household), at_most=at_most)
        if channel == "utm":
            return conversion(sponsor, when, addr, channel, c, customer=customer(tenant, household), at_most=at_most,
                              landing=f"https://{sponsor.website}/?utm_source=podcast&utm_medium=audio&utm_campaign={c.utm_campaign}")
        if channel == "vanity_url":
            ua = rng.choice(BROWSERS)
            visit = when - timedelta(minutes=rng.randint(5, 600))
            vanity_visit(sponsor, c, max(visit, e.exposed_at + timedelta(minutes=1)), addr, ua)
            return conversion(sponsor, when, addr, channel, c, customer=customer(tenant, household), at_most=at_most)
        return conversion(sponsor, when, addr, channel, c, customer=customer(tenant, household), at_most=at_most,
                          landing=f"https://{sponsor.website}/?utm_source=newsletter&utm_medium=email&utm_campaign=fall_sale")

    for sponsor in world.sponsors:
        tenant = sponsor.tenant_id
        shared = world.shared_households.get(tenant)
        mine = [c for c in world.campaigns if c.sponsor_id == sponsor.sponsor_id and c.tenant_id == tenant]
        flight_start = min(c.flight_start for c in mine)
        exposed = sorted(h for (t, s, h) in exposures_by if t == tenant and s == sponsor.sponsor_id and h != shared)
        prior: set[str] = set()
        for household in exposed:
            seen = sorted(exposures_by[(tenant, sponsor.sponsor_id, household)], key=lambda e: e.exposed_at)
            ip = seen[0].ip
            if rng.random() < 0.1:  # a customer from before the flight
                when = datetime.combine(flight_start, time(12), timezone.utc) - timedelta(days=rng.randint(3, 25),
                                                                                        minutes=rng.randint(0, 600))
                conversion(sponsor, when, _other_address(rng, ip), "organic", note="prior_customer",
                           customer=customer(tenant, household))
                prior.add(household)
            roll = rng.random()
            if response == "dense" and roll < DENSE_RESPONSE:
                caused(sponsor, household, rng.choice(seen))
            elif DENSE_RESPONSE <= roll < DENSE_RESPONSE + 0.1:  # visits the vanity URL, buys nothing
                e = rng.choice(seen)
                vanity_visit(sponsor, campaigns[e.campaign_id], e.exposed_at + timedelta(hours=rng.randint(1, 48)),
                             ip, rng.choice(BROWSERS))
        if response == "realistic":
            # Each campaign returns what it returns: a ROAS drawn in ROAS_DRAW on the cost it will
            # have accrued by the network's present. Its reached households buy (a leaked promo
            # code counts too) until their orders make that revenue.
            smallest = 20.0 if sponsor.tracking == "shop" else 15.0  # the smallest order (see `conversion`)
            for c in mine:
                roas = rng.uniform(float(ROAS_DRAW[0]), float(ROAS_DRAW[1]))
                remaining = roas * float(_expected_cost(c, world.exposures))  # revenue still to come
                if c.promo_codes and remaining >= 2 * smallest:  # room for a leaked code and a real buyer
                    when = datetime.combine(c.flight_start, time(), timezone.utc) + timedelta(
                        days=rng.randint(2, 15), seconds=rng.randint(0, 86399))
                    leaked = conversion(sponsor, when, _stranger_ip(rng), "promo_code", c, code=c.promo_codes[-1],
                                        note="leaked_code", at_most=Decimal(remaining / 2).quantize(CENT))
                    remaining -= float(leaked.net_revenue)
                reached = sorted({e.household for e in world.exposures if e.campaign_id == c.campaign_id} - {shared})
                rng.shuffle(reached)
                bought = 0
                for household in reached:
                    if bought and remaining < smallest / 2:  # the next order would overshoot more than fall short
                        break
                    heard = exposures_by[(tenant, sponsor.sponsor_id, household)]
                    seen = [e for e in heard if e.campaign_id == c.campaign_id]
                    # A household that heard another of the sponsor's campaigns buys through a
                    # campaign's own code or link, so the return stays with the campaign that made it.
                    ev = caused(sponsor, household, rng.choice(seen), at_most=Decimal(max(remaining, 0)).quantize(CENT),
                                matched=len(seen) == len(heard))
                    if not (ev.channel == "household" and household in prior and c.exclude_prior_customers):
                        remaining -= float(ev.net_revenue)
                        bought += ev.net_revenue > 0
        # Listeners who heard none of the sponsor's ads: the baseline.
        unexposed = sorted(world.listener_households[tenant] - set(exposed) - {shared})
        window_end = max(c.flight_end for c in mine)
        span = int((datetime.combine(window_end, time(), timezone.utc) - datetime.combine(flight_start, time(), timezone.utc)).total_seconds())
        for household in unexposed:
            if rng.random() < (DENSE_ORGANIC_RATE if response == "dense" else ORGANIC_RATE):
                ip = str(ipaddress.ip_network(household)[1]) if "/" in household else household
                when = datetime.combine(flight_start, time(), timezone.utc) + timedelta(seconds=rng.randint(0, span))
                conversion(sponsor, when, _other_address(rng, ip), "organic", customer=customer(tenant, household))
        # People who never listen: organic noise, and promo codes passed around.
        for _ in range(6):
            when = datetime.combine(flight_start, time(), timezone.utc) + timedelta(seconds=rng.randint(0, span))
            conversion(sponsor, when, _stranger_ip(rng), "organic")
        for c in mine:
            if c.promo_codes and response == "dense":  # (realistic: planted with the campaign's response)
                when = datetime.combine(c.flight_start, time(), timezone.utc) + timedelta(days=rng.randint(2, 15), seconds=rng.randint(0, 86399))
                conversion(sponsor, when, _stranger_ip(rng), "promo_code", c, code=c.promo_codes[-1],
                           note="leaked_code")
        # Data-centre traffic (a VPN exit, a crawler filling carts).
        net = ipaddress.ip_network(DATACENTER_CIDRS[0])
        for _ in range(2):
            when = datetime.combine(flight_start, time(), timezone.utc) + timedelta(days=rng.randint(3, 12), seconds=rng.randint(0, 86399))
            conversion(sponsor, when, str(net[rng.randint(2, 250)]), "organic", note="datacenter")
        # The shared address heard ads of the sponsor: its conversions must get no household credit.
        if shared and (tenant, sponsor.sponsor_id, shared) in exposures_by:
            e = sorted(exposures_by[(tenant, sponsor.sponsor_id, shared)], key=lambda x: x.exposed_at)[0]
            conversion(sponsor, e.exposed_at + timedelta(hours=5), e.ip, "organic", note="shared_ip")
    if response == "dense":
        # Per tenant, a household the newest ad reached buys two hours after it, and the ad before
        # it was another of the sponsor's campaigns: the tenant's newest log lines move its credit
        # (an incremental attribution run must rewrite it).
        converted = {(ev.tenant_id, ev.sponsor_id, _prefix(ev.ip)) for ev in events if ev.is_conversion}
        for tenant in sorted(world.listener_households):
            latest = sorted((e for e in world.exposures if e.tenant_id == tenant
                             and e.household != world.shared_households.get(tenant)),
                            key=lambda e: (e.exposed_at, e.campaign_id, e.placement_id), reverse=True)
            for e in latest:
                sponsor_id = campaigns[e.campaign_id].sponsor_id
                earlier = [x for x in exposures_by[(tenant, sponsor_id, e.household)] if x.exposed_at < e.exposed_at]
                if (tenant, sponsor_id, e.household) not in converted and earlier and \
                        max(earlier, key=lambda x: x.exposed_at).campaign_id != e.campaign_id:
                    conversion(world.sponsor(tenant, sponsor_id), e.exposed_at + timedelta(hours=2),
                               _other_address(rng, e.ip), "household", campaigns[e.campaign_id],
                               customer=customer(tenant, e.household))
                    break
    # An organic purchase that happens to fall inside a window of an exposed household: the one
    # kind of mistake household matching cannot avoid. One per tenant.
    converted = {(ev.tenant_id, ev.sponsor_id, _prefix(ev.ip)) for ev in events if ev.is_conversion}
    for tenant in sorted(world.listener_households):
        candidates = sorted(
            (t, s, h) for (t, s, h) in exposures_by
            if t == tenant and h != world.shared_households.get(t) and (t, s, h) not in converted
        )
        if response == "realistic":  # the smallest order, credited to the campaign that costs most
            costs = {c.campaign_id: _expected_cost(c, world.exposures) for c in world.campaigns if c.tenant_id == tenant}
            top = max(sorted(costs), key=lambda cid: costs[cid])
            candidates = [k for k in candidates if {e.campaign_id for e in exposures_by[k]} == {top}]
        if candidates:
            t, s, h = candidates[0]
            e = sorted(exposures_by[(t, s, h)], key=lambda x: x.exposed_at)[-1]
            conversion(world.sponsor(t, s), e.exposed_at + timedelta(hours=3), e.ip, "organic", note="organic_in_window",
                       at_most=Decimal(0) if response == "realistic" else None)  # realistic: the smallest order
    # What has not happened by the network's present is not written.
    events[:] = [ev for ev in events if ev.occurred_at <= SIMULATED_NOW]
    for ev in events:
        ev.edits = [(t, v) for t, v in ev.edits if t <= SIMULATED_NOW]
        ev.refunds = [(t, a) for t, a in ev.refunds if t <= SIMULATED_NOW]
    events.sort(key=lambda ev: (ev.tenant_id, ev.occurred_at, ev.event_id))
    _plant_bad_records(world, rng)


def _expected_cost(c: Campaign, exposures: list[Exposure]) -> Decimal:
    """The cost the campaign will have accrued by the network's present (as `campaign_truth`
    computes it, with the day before the present as the as-of day)."""
    if c.pricing_model == "cpm":
        delivered_ads = sum(1 for e in exposures if e.campaign_id == c.campaign_id)
        return min(c.budget, _money(Decimal(delivered_ads) / 1000 * c.cpm_rate))
    flight = (c.flight_end - c.flight_start).days + 1
    elapsed = max(0, min(flight, ((SIMULATED_NOW - timedelta(days=1)).date() - c.flight_start).days + 1))
    return _money(c.flat_fee * elapsed / flight)


def _prefix(ip: str) -> str:
    address = ipaddress.ip_address(ip)
    if address.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return ip


def _plant_bad_records(world: CampaignWorld, rng: random.Random) -> None:
    """Broken records each source carries; ingestion must quarantine them with these reasons."""
    bad = world.bad_records
    for sponsor in world.sponsors:
        if sponsor.tracking == "shop":
            for kind in ("missing_id", "negative_total", "invalid_timestamp", "future_timestamp"):
                bad.append({"tenant_id": sponsor.tenant_id, "source": "shop_orders", "sponsor_id": sponsor.sponsor_id,
                            "kind": kind, "key": f"{sponsor.store}:{kind}"})
        else:
            for kind in ("invalid_json", "invalid_timestamp", "negative_value", "future_timestamp"):
                bad.append({"tenant_id": sponsor.tenant_id, "source": "pixel", "sponsor_id": sponsor.sponsor_id,
                            "kind": kind, "key": f"{sponsor.sponsor_id}:{kind}"})
    for tenant in sorted(world.listener_households):
        bad.append({"tenant_id": tenant, "source": "vanity", "kind": "missing_timestamp", "key": f"{tenant}:vanity"})
        bad.append({"tenant_id": tenant, "source": "sponsorship_api", "kind": "invalid_attribution_window",
                    "key": f"cmp-{tenant}-bad"})
        bad.append({"tenant_id": tenant, "source": "sponsorship_api", "kind": "invalid_position",
                    "key": f"pl-{tenant}-bad"})
        bad.append({"tenant_id": tenant, "source": "insertion_order", "kind": "invalid_date",
                    "key": f"{tenant}:io-placement"})


# -- the measurement rules, in plain Python ---------------------------------------------------

def model_shares(model: str, touchpoints: list[tuple[datetime, str, Decimal]], converted_at: datetime) -> list[Decimal]:
    """Credit of each touchpoint (time, campaign, half-life in days), ordered by time, under a
    multi-touch model. Shares sum to 1."""
    n = len(touchpoints)
    if n == 0:
        return []
    if model == "first_touch":
        return [Decimal(1) if i == 0 else Decimal(0) for i in range(n)]
    if model == "last_touch":
        return [Decimal(1) if i == n - 1 else Decimal(0) for i in range(n)]
    if model == "linear":
        return [Decimal(1) / n] * n
    if model == "time_decay":
        weights = [Decimal(2 ** (-((converted_at - t).total_seconds() / 86400) / float(hl))) for t, _, hl in touchpoints]
        total = sum(weights)
        return [w / total for w in weights]
    if model == "position_based":
        if n == 1:
            return [Decimal(1)]
        if n == 2:
            return [Decimal("0.5"), Decimal("0.5")]
        middle = Decimal("0.2") / (n - 2)
        return [Decimal("0.4")] + [middle] * (n - 2) + [Decimal("0.4")]
    raise ValueError(model)


def _utm_campaign(url: str | None) -> str | None:
    if not url:
        return None
    values = parse_qs(urlsplit(url).query).get("utm_campaign")
    return values[0] if values else None


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time(), timezone.utc)


def campaign_truth(world: CampaignWorld) -> dict[str, Any]:
    """What a correct attribution engine concludes, per conversion and per campaign."""
    campaigns = {c.campaign_id: c for c in world.campaigns}
    datacenters = [ipaddress.ip_network(c) for c in DATACENTER_CIDRS]
    conversions = [ev for ev in world.events if ev.is_conversion]
    vanity_visits = [ev for ev in world.events if ev.event_type == "vanity_visit"]
    exposures_by: dict[tuple[str, str, str], list[Exposure]] = defaultdict(list)
    for e in world.exposures:
        exposures_by[(e.tenant_id, campaigns[e.campaign_id].sponsor_id, e.household)].append(e)
    for v in exposures_by.values():
        v.sort(key=lambda e: (e.exposed_at, e.campaign_id, e.placement_id))

    first_conversion: dict[tuple[str, str, str], datetime] = {}
    for o in conversions:
        key = (o.tenant_id, o.sponsor_id, _prefix(o.ip))
        first_conversion[key] = min(o.occurred_at, first_conversion.get(key, o.occurred_at))
    visits_by: dict[tuple[str, str], list[Event]] = defaultdict(list)
    for v in vanity_visits:
        visits_by[(v.tenant_id, _prefix(v.ip))].append(v)

    def credit_end(c: Campaign) -> datetime:
        return _start_of(c.flight_end) + timedelta(days=c.attribution_window_days + 1)

    def prior_customer(ev: Event, c: Campaign) -> bool:
        first = first_conversion.get((ev.tenant_id, ev.sponsor_id, _prefix(ev.ip)))
        return first is not None and first < _start_of(c.flight_start)

    datacenter_event = lambda ev: any(ipaddress.ip_address(ev.ip) in net for net in datacenters)  # noqa: E731
    conversions_by: dict[tuple[str, str, str], list[Event]] = defaultdict(list)
    for ev in conversions:
        if not datacenter_event(ev):
            conversions_by[(ev.tenant_id, ev.sponsor_id, _prefix(ev.ip))].append(ev)
    rows = []
    per_campaign: dict[str, dict[str, Any]] = {
        c.campaign_id: {m: {"conversions": Decimal(0), "revenue": Decimal(0)} for m in MODELS} for c in world.campaigns
    }
    for ev in conversions:
        household = _prefix(ev.ip)
        # Deterministic signals of the sponsor's own campaigns, each only from the flight start to
        # the flight end + window; precedence promo code, UTM, vanity visit (the latest visit
        # within the window before the conversion); ties to the lowest campaign id.
        mine = sorted((c for c in world.campaigns if c.tenant_id == ev.tenant_id and c.sponsor_id == ev.sponsor_id
                       and _start_of(c.flight_start) <= ev.occurred_at < credit_end(c)), key=lambda c: c.campaign_id)
        match, channel = None, None
        codes = {code.lower() for code in ev.discount_codes}
        match = next((c for c in mine if codes & {code.lower() for code in c.promo_codes}), None)
        channel = "promo_code" if match else None
        if match is None:
            utm = _utm_campaign(ev.landing_url)
            match = next((c for c in mine if utm and utm == c.utm_campaign), None)
            channel = "utm" if match else None
        if match is None:
            visits = sorted(
                ((v.occurred_at, c.campaign_id, c) for c in mine for v in visits_by[(ev.tenant_id, household)]
                 if v.vanity_url in c.vanity_urls and _start_of(c.flight_start) <= v.occurred_at <= ev.occurred_at
                 and ev.occurred_at < v.occurred_at + timedelta(days=c.attribution_window_days)),
                key=lambda item: (-item[0].timestamp(), item[1]))
            if visits:
                match, channel = visits[0][2], "vanity_url"
        credits: dict[str, dict[str, Decimal]] = {}
        touchpoints: list[dict[str, Any]] = []
        excluded = None
        if match is not None:
            credits = {m: {match.campaign_id: Decimal(1)} for m in MODELS}
        else:
            address = ipaddress.ip_address(ev.ip)
            if any(address in net for net in datacenters):
                excluded = "datacenter_ip"
            elif world.household_agents.get((ev.tenant_id, household), 0) > MAX_HOUSEHOLD_AGENTS:
                excluded = "shared_ip"
            else:
                eligible = [
                    e for e in exposures_by.get((ev.tenant_id, ev.sponsor_id, household), ())
                    if e.exposed_at <= ev.occurred_at
                    and ev.occurred_at - e.exposed_at < timedelta(days=campaigns[e.campaign_id].attribution_window_days)
                    and not (campaigns[e.campaign_id].exclude_prior_customers and prior_customer(ev, campaigns[e.campaign_id]))
                ]
                if eligible:
                    channel = "household"
                    points = [(e.exposed_at, e.campaign_id, campaigns[e.campaign_id].decay_half_life_days) for e in eligible]
                    for m in MODELS:
                        shares = model_shares(m, points, ev.occurred_at)
                        per: dict[str, Decimal] = defaultdict(Decimal)
                        for e, share in zip(eligible, shares):
                            per[e.campaign_id] += share
                        credits[m] = dict(per)
                    touchpoints = [{"campaign_id": e.campaign_id, "placement_id": e.placement_id,
                                    "exposed_at": e.exposed_at.isoformat()} for e in eligible]
        revenue = ev.net_revenue
        for m, per in credits.items():
            for cid, share in per.items():
                per_campaign[cid][m]["conversions"] += share
                per_campaign[cid][m]["revenue"] += share * revenue
        caused = ev.channel != "organic"
        note = ev.note
        if ev.channel == "household" and not credits:
            note = "prior_customer_excluded"  # the campaign's rule, not a miss
        rows.append({
            "tenant_id": ev.tenant_id, "source": ev.source, "event_id": ev.event_id,
            "occurred_at": ev.occurred_at.isoformat(), "sponsor_id": ev.sponsor_id, "event_type": ev.event_type,
            "true_channel": ev.channel, "note": note,
            "true_campaigns": sorted(credits.get("linear", {})) if caused else [],
            "matched_channel": channel, "excluded_reason": excluded,
            "credits": {m: {cid: str(s) for cid, s in sorted(per.items())} for m, per in credits.items()},
            "touchpoints": touchpoints,
            "gross_revenue": None if ev.gross is None else str(ev.total_at()),
            "refunded_amount": str(ev.refunded_at()), "net_revenue": str(revenue),
        })
    out_campaigns = []
    exposures_of: dict[str, list[Exposure]] = defaultdict(list)
    for e in world.exposures:
        exposures_of[e.campaign_id].append(e)
    # The data's as-of day per tenant: the newest day with an accepted event or a delivered ad.
    as_of: dict[str, date] = {}
    for tenant, day in [(ev.tenant_id, ev.occurred_at.date()) for ev in world.events] + \
            [(e.tenant_id, e.exposed_at.date()) for e in world.exposures]:
        as_of[tenant] = max(day, as_of.get(tenant, day))
    for c in world.campaigns:
        mine = exposures_of[c.campaign_id]
        impressions = len(mine)
        households = {e.household for e in mine}
        flight_length = (c.flight_end - c.flight_start).days + 1
        elapsed = max(0, min(flight_length, (as_of[c.tenant_id] - c.flight_start).days + 1)) if c.tenant_id in as_of else 0
        if c.pricing_model == "flat":  # accrues evenly over the flight's days
            contracted = _money(c.flat_fee)
            cost = _money(c.flat_fee * elapsed / flight_length)
        else:  # accrues on delivered ads, capped at the budget
            contracted = _money(c.budget)
            cost = min(c.budget, _money(Decimal(impressions) / 1000 * c.cpm_rate))
        models = {}
        for m in MODELS:
            revenue = _money(per_campaign[c.campaign_id][m]["revenue"])
            models[m] = {
                "conversions": str(per_campaign[c.campaign_id][m]["conversions"].quantize(Decimal("0.000001"))),
                "revenue": str(revenue),
                "roi": str(((revenue - cost) / cost).quantize(Decimal("0.000001"))) if cost else None,
                "roas": str((revenue / cost).quantize(Decimal("0.000001"))) if cost else None,
                "net_profit": str(revenue - cost),
            }
        # Lift: exposed households (shared addresses aside) converting for the sponsor within
        # the window after their first exposure to this campaign, against the tenant's other
        # households that downloaded during the flight and never got any of the sponsor's ads,
        # converting from the flight start to the flight end + window.
        def shared(h: str) -> bool:
            return world.household_agents.get((c.tenant_id, h), 0) > MAX_HOUSEHOLD_AGENTS

        def sponsor_conversions(h: str) -> list[datetime]:
            return [ev.occurred_at for ev in conversions_by.get((c.tenant_id, c.sponsor_id, h), ())]

        first_exposure: dict[str, datetime] = {}
        for e in mine:
            first_exposure[e.household] = min(e.exposed_at, first_exposure.get(e.household, e.exposed_at))
        window = timedelta(days=c.attribution_window_days)
        exposed_eligible = {h for h in households if not shared(h)}
        exposed_converted = {h for h in exposed_eligible
                             if any(first_exposure[h] <= t < first_exposure[h] + window for t in sponsor_conversions(h))}
        sponsor_exposed = {h for (t, sp, h) in exposures_by if t == c.tenant_id and sp == c.sponsor_id}
        flight_days = {c.flight_start + timedelta(days=i) for i in range((c.flight_end - c.flight_start).days + 1)}
        baseline = {h for h in world.listener_households.get(c.tenant_id, ())
                    if h not in sponsor_exposed and not shared(h)
                    and world.listener_days.get((c.tenant_id, h), set()) & flight_days}
        period_end = credit_end(c)
        baseline_converted = {h for h in baseline
                              if any(_start_of(c.flight_start) <= t < period_end for t in sponsor_conversions(h))}
        out_campaigns.append({
            "tenant_id": c.tenant_id, "campaign_id": c.campaign_id, "sponsor_id": c.sponsor_id,
            "attribution_model": c.attribution_model, "pricing_model": c.pricing_model,
            # The matching keys (lower-cased codes, normalised vanity URLs); `codes_published`
            # False: the sources name none, the campaign's reads say them.
            "promo_codes": sorted(code.lower() for code in c.promo_codes), "vanity_urls": sorted(c.vanity_urls),
            "codes_published": c.codes_published,
            "impressions": impressions, "reach": len(households),
            "frequency": str((Decimal(impressions) / len(households)).quantize(Decimal("0.0001"))) if households else None,
            "cost": str(cost), "contracted_cost": str(contracted),
            "as_of_date": as_of[c.tenant_id].isoformat() if c.tenant_id in as_of else None,
            "flight_days": flight_length, "flight_days_elapsed": elapsed, "is_flight_complete": elapsed == flight_length,
            "models": models, "selected": models[c.attribution_model],
            "lift": {
                "exposed_households": len(exposed_eligible), "exposed_converted": len(exposed_converted),
                "baseline_households": len(baseline), "baseline_converted": len(baseline_converted),
            },
        })
    return {
        "definitions": {
            "household": "IPv4 address or IPv6 /64 of the client (ip_prefix_hash after hashing)",
            "shared_household_min_agents": MAX_HOUSEHOLD_AGENTS + 1,
            "exposure": "counted IAB download window (rolling 24 h) of a placed episode, ad delivered",
            "touchpoints": "exposures of the household to the sponsor's campaigns at or before the conversion and "
                           "within the exposure's campaign window; campaigns with exclude_prior_customers drop out "
                           "for households with a conversion of the sponsor before their flight start",
            "time_decay": "weight 2^(-age_days / half_life of the touchpoint's campaign), normalized",
            "lift": "exposed: households reached (shared addresses excluded), converted = a conversion of the "
                    "sponsor within the window after the first exposure; baseline: households with a counted "
                    "download during the flight, no exposure to any of the sponsor's campaigns, not shared; "
                    "converted = a conversion of the sponsor from flight start to flight end + window",
            "revenue": "net: current order total minus refunds; leads count as conversions with 0 revenue",
            "cost": "cost to date: a flat fee accrues evenly over the flight's days up to the tenant's as-of day (the "
                    "newest day with an accepted event or delivered ad, counted whole); CPM accrues on delivered "
                    "ads (impressions x rate / 1000), capped at the budget",
        },
        "campaigns": out_campaigns,
        "conversions": rows,
        "exposures": [
            {"tenant_id": e.tenant_id, "campaign_id": e.campaign_id, "placement_id": e.placement_id,
             "household": e.household, "user_agent": e.user_agent, "enclosure_url_normalized": e.enclosure_url_normalized,
             "exposed_at": e.exposed_at.isoformat()} for e in world.exposures
        ],
        "bad_records": world.bad_records,
        "shared_households": world.shared_households,
        # Where each placement's ad is; `offset_published` False: the sources leave the offset out
        # and it is known only where the episode's timed transcript has the read.
        "placements": [
            {"tenant_id": p.tenant_id, "placement_id": p.placement_id, "campaign_id": p.campaign_id,
             "feed_url": p.feed_url, "episode_guid": p.episode_guid, "insertion": p.insertion,
             "ad_offset_seconds": p.ad_offset_seconds, "ad_duration_seconds": p.ad_duration_seconds,
             "offset_published": p.offset_published} for p in world.placements
        ],
    }

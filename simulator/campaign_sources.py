"""Where the sponsorship side of the simulated network shows up: a sponsorship API and one shop
API per sponsor that sells online (served by `SimulatorServer`), agencies' insertion orders as
CSV/XLSX files, and pixel events and vanity-URL visits as JSON-lines files in a landing folder.

Sponsorship API (`/sponsorships/v1/{sponsors,campaigns,placements}`): `Authorization: Bearer`,
`limit` + `cursor` pagination (`next_cursor`), `updated_since` filter.
Shop API (`/shop/<store>/admin/api/2024-10/orders.json`), shaped like Shopify's REST Admin API:
`X-Shopify-Access-Token`, `updated_at_min`, `limit`, cursor pagination through the `Link`
header's `page_info`. `CampaignApis.as_of` is the shop's clock: orders created later are not
there yet, and edits and refunds appear when their time has come.
"""

from __future__ import annotations

import base64
import csv
import gzip
import hashlib
import io
import json
import threading
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from simulator.buyers import Buyer, buyer, order_contact, pixel_contact
from simulator.campaigns import FUTURE_EVENT_AT, Campaign, CampaignWorld, Event, Placement, Sponsor
from simulator.platforms import Reply

SHOP_API_VERSION = "2024-10"
SPONSORSHIP_PAGE_MAX = 100
SHOP_PAGE_MAX = 250


def sponsorship_token(seed: int, tenant_id: str) -> str:
    return hashlib.sha256(f"{seed}:sponsorships:{tenant_id}".encode()).hexdigest()[:40]


def shop_token(seed: int, store: str) -> str:
    return "shpat_" + hashlib.sha256(f"{seed}:shop:{store}".encode()).hexdigest()[:32]


def sponsorship_env_var(tenant_id: str) -> str:
    return f"SPONSORSHIP_API_TOKEN_{tenant_id.upper()}"


def shop_env_var(store: str) -> str:
    return "SHOP_TOKEN_" + store.upper().replace("-", "_")


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _shop_time(moment: datetime) -> str:
    """Shopify writes times in the shop's zone with an offset: this shop is in New York."""
    return moment.astimezone(timezone(timedelta(hours=-5))).isoformat()


# -- records as the sponsorship API shows them -------------------------------------------------

def sponsor_record(s: Sponsor) -> dict[str, Any]:
    return {"id": s.sponsor_id, "name": s.name, "category": s.category, "website": f"https://{s.website}",
            "updated_at": _iso(s.updated_at)}


def campaign_record(c: Campaign) -> dict[str, Any]:
    return {
        "id": c.campaign_id, "sponsor_id": c.sponsor_id, "name": c.name,
        "budget": {"amount": f"{c.budget:.2f}", "currency": c.currency},
        "flight": {"start": c.flight_start.isoformat(), "end": c.flight_end.isoformat()},
        "pricing": {"model": c.pricing_model,
                    "flat_fee": None if c.flat_fee is None else f"{c.flat_fee:.2f}",
                    "cpm_rate": None if c.cpm_rate is None else f"{c.cpm_rate:.2f}"},
        "goal": {"type": c.goal_type, "value": f"{c.goal_value:.2f}"},
        # A campaign that names no codes (`codes_published` False): its reads say them.
        "promo_codes": c.promo_codes if c.codes_published else [],
        # Vanity URLs as account teams type them: scheme, capitals, trailing slash.
        "vanity_urls": [f"https://{u.split('/')[0]}/{u.split('/', 1)[1].title()}/" for u in c.vanity_urls]
        if c.codes_published else [],
        "utm_campaign": c.utm_campaign,
        "attribution": {"window_days": c.attribution_window_days, "model": c.attribution_model,
                        "half_life_days": float(c.decay_half_life_days),
                        "exclude_prior_customers": c.exclude_prior_customers},
        "status": c.status, "updated_at": _iso(c.updated_at),
    }


def placement_record(p: Placement) -> dict[str, Any]:
    return {
        "id": p.placement_id, "campaign_id": p.campaign_id, "show": {"feed_url": p.feed_url},
        "episode_guid": p.episode_guid, "position": p.position, "insertion": p.insertion,
        "start_date": p.start_date.isoformat(), "end_date": p.end_date.isoformat(),
        # A placement sold without its offset (`offset_published` False): null.
        "ad": {"offset_seconds": p.ad_offset_seconds if p.offset_published else None,
               "duration_seconds": p.ad_duration_seconds},
        "updated_at": _iso(p.updated_at),
    }


def api_records(world: CampaignWorld, tenant: str) -> dict[str, list[dict[str, Any]]]:
    """What the sponsorship API holds for a tenant: the records published through it, plus one
    broken campaign and one broken placement."""
    api_sponsors = [s for s in world.sponsors if s.tenant_id == tenant and s.channel == "sponsorship_api"]
    api_campaigns = [c for c in world.campaigns if c.tenant_id == tenant and c.channel == "sponsorship_api"]
    ids = {c.campaign_id for c in api_campaigns}
    records = {
        "sponsors": [sponsor_record(s) for s in api_sponsors],
        "campaigns": [campaign_record(c) for c in api_campaigns],
        "placements": [placement_record(p) for p in world.placements if p.campaign_id in ids],
    }
    if api_campaigns:
        broken = campaign_record(api_campaigns[0])
        broken.update(id=f"cmp-{tenant}-bad", name="Window typo")
        broken["attribution"] = {**broken["attribution"], "window_days": 90}
        records["campaigns"].append(broken)
        # (a copy of a placement with its offset: the position is its one fault)
        bad_placement = placement_record(next(p for p in world.placements if p.campaign_id in ids and p.offset_published))
        bad_placement.update(id=f"pl-{tenant}-bad", position="sidebar")
        records["placements"].append(bad_placement)
    for rows in records.values():
        rows.sort(key=lambda r: (r["updated_at"], r["id"]))
    return records


# -- shop orders -------------------------------------------------------------------------------

def order_record(ev: Event, sponsor: Sponsor, as_of: datetime | None, seed: int = 0) -> dict[str, Any]:
    """The order as the shop's API shows it at `as_of`, with its buyer's contact details and
    addresses (`simulator.buyers`)."""
    total = ev.total_at(as_of)
    refunds = [(t, a) for t, a in ev.refunds if as_of is None or t <= as_of]
    moments = [ev.occurred_at, *(t for t, _ in ev.edits if as_of is None or t <= as_of), *(t for t, _ in refunds)]
    landing = ev.landing_url.split(sponsor.website, 1)[-1] if ev.landing_url else None
    return {
        "id": int(ev.event_id), "name": f"#{int(ev.event_id) % 100000}", "created_at": _shop_time(ev.occurred_at),
        "updated_at": _shop_time(max(moments)), "total_price": f"{total:.2f}", "currency": "USD",
        "financial_status": "refunded" if refunds and sum(a for _, a in refunds) >= total else
                            "partially_refunded" if refunds else "paid",
        "discount_codes": [{"code": code, "amount": "10.00", "type": "percentage"} for code in ev.discount_codes],
        "browser_ip": ev.ip,
        "client_details": {"browser_ip": ev.ip, "user_agent": ev.user_agent},
        "landing_site": landing or "/", "referring_site": ev.referrer or "",
        **order_contact(buyer(seed, ev.tenant_id, ev.customer_id, ev.event_id), ev.customer_id),
        "refunds": [{"id": int(ev.event_id) * 10 + i, "created_at": _shop_time(t),
                     "transactions": [{"kind": "refund", "amount": f"{a:.2f}", "status": "success"}]}
                    for i, (t, a) in enumerate(refunds)],
    }


def bad_orders(world: CampaignWorld, sponsor: Sponsor) -> list[dict[str, Any]]:
    base = datetime(2026, 11, 4, 15, tzinfo=timezone.utc)
    out = []
    for n, record in enumerate(world.bad_records):
        if record["source"] != "shop_orders" or record["sponsor_id"] != sponsor.sponsor_id:
            continue
        order = {"id": 9_000_000_000 + n, "name": f"#bad{n}", "created_at": _shop_time(base), "updated_at": _shop_time(base),
                 "total_price": "19.99", "currency": "USD", "discount_codes": [], "browser_ip": "100.64.0.9",
                 "client_details": {"user_agent": "Mozilla/5.0"}, "landing_site": "/", "refunds": [],
                 **order_contact(buyer(world.seed, sponsor.tenant_id, None, f"bad{n}"), None)}
        if record["kind"] == "missing_id":
            order["id"] = None
        elif record["kind"] == "negative_total":
            order["total_price"] = "-19.99"
        elif record["kind"] == "future_timestamp":  # a clock years ahead: quarantined, not counted
            order["created_at"] = order["updated_at"] = _shop_time(FUTURE_EVENT_AT)
        else:
            order["created_at"] = "31/11/2026 25:61"
        out.append(order)
    return out


def _decode(token: str) -> dict[str, Any] | None:
    try:
        return json.loads(base64.urlsafe_b64decode(token.encode()))
    except ValueError:
        return None


def _encode(document: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(document, separators=(",", ":")).encode()).decode()


def _json(status: int, document: Any, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, json.dumps(document, separators=(",", ":")).encode(),
                 {"Content-Type": "application/json; charset=utf-8", **(headers or {})})


def _parse_time(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


class CampaignApis:
    """Request handling behind `/sponsorships/v1/...` and `/shop/<store>/admin/api/...`."""

    def __init__(self, world: CampaignWorld, base_url: str):
        self.world = world
        self.base_url = base_url
        self.as_of: datetime | None = world.as_of
        self.requests = 0
        self._lock = threading.Lock()
        self._tenants = {sponsorship_token(world.seed, t): t for t in sorted(world.listener_households)}
        self._stores = {s.store: s for s in world.sponsors if s.store}
        self._records = {t: api_records(world, t) for t in self._tenants.values()}

    @property
    def routes(self) -> dict[str, Any]:
        return {"/sponsorships/v1/": self._sponsorships, "/shop/": self._shop}

    def handle(self, path: str, query: str, headers: Any, method: str = "GET") -> Reply:
        with self._lock:
            self.requests += 1
        if method != "GET":
            return _json(405, {"error": "Method Not Allowed"})
        params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
        for prefix, route in self.routes.items():
            if path.startswith(prefix):
                return route(path.removeprefix(prefix), params, headers)
        return Reply(404, b"not found", {"Content-Type": "text/plain"})

    def _sponsorships(self, rest: str, params: dict[str, str], headers: Any) -> Reply:
        auth = headers.get("Authorization") or ""
        tenant = self._tenants.get(auth.removeprefix("Bearer ").strip()) if auth.startswith("Bearer ") else None
        if tenant is None:
            return _json(401, {"error": {"code": "unauthorized", "message": "missing or invalid bearer token"}})
        entity = rest.strip("/")
        if entity not in ("sponsors", "campaigns", "placements"):
            return _json(404, {"error": {"code": "not_found", "message": f"unknown resource {entity!r}"}})
        try:
            limit = min(int(params.get("limit") or 50), SPONSORSHIP_PAGE_MAX)
        except ValueError:
            return _json(400, {"error": {"code": "invalid_parameter", "message": "limit", "param": "limit"}})
        rows = self._records[tenant][entity]
        since = params.get("updated_since")
        if since:
            moment = _parse_time(since)
            if moment is None:
                return _json(400, {"error": {"code": "invalid_parameter", "message": "updated_since", "param": "updated_since"}})
            rows = [r for r in rows if _parse_time(r["updated_at"]) >= moment]
        start = 0
        if params.get("cursor"):
            cursor = _decode(params["cursor"])
            if cursor is None:
                return _json(400, {"error": {"code": "invalid_cursor", "message": "cursor"}})
            after = (cursor["updated_at"], cursor["id"])
            start = next((i for i, r in enumerate(rows) if (r["updated_at"], r["id"]) > after), len(rows))
        page = rows[start:start + limit]
        more = start + limit < len(rows)
        next_cursor = _encode({"updated_at": page[-1]["updated_at"], "id": page[-1]["id"]}) if more and page else None
        return _json(200, {"data": page, "next_cursor": next_cursor})

    def _shop(self, rest: str, params: dict[str, str], headers: Any) -> Reply:
        store, _, tail = rest.partition("/")
        sponsor = self._stores.get(store)
        if sponsor is None or tail != f"admin/api/{SHOP_API_VERSION}/orders.json":
            return _json(404, {"errors": "Not Found"})
        if headers.get("X-Shopify-Access-Token") != shop_token(self.world.seed, store):
            return _json(401, {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"})
        try:
            limit = min(int(params.get("limit") or 50), SHOP_PAGE_MAX)
        except ValueError:
            return _json(400, {"errors": {"limit": "invalid"}})
        if params.get("page_info"):
            extra = set(params) - {"page_info", "limit", "fields"}
            if extra:  # Shopify: a page_info request takes no other filter
                return _json(400, {"errors": {"page_info": f"cannot be combined with {sorted(extra)}"}})
            state = _decode(params["page_info"])
            if state is None:
                return _json(400, {"errors": {"page_info": "Invalid value."}})
        else:
            state = {"updated_at_min": params.get("updated_at_min"), "after": None}
        since = _parse_time(state["updated_at_min"]) if state.get("updated_at_min") else None
        if state.get("updated_at_min") and since is None:
            return _json(400, {"errors": {"updated_at_min": "Invalid value."}})
        orders = self._orders(sponsor)
        rows = [(u, o) for u, o in orders if since is None or u >= since]
        if state.get("after"):
            after = (_parse_time(state["after"][0]), state["after"][1])
            rows = [(u, o) for u, o in rows if (u, o["id"] or 0) > after]
        page = rows[:limit]
        headers_out = {}
        if len(rows) > limit:
            last_u, last_o = page[-1]
            token = _encode({"updated_at_min": state.get("updated_at_min"), "after": [_iso(last_u), last_o["id"] or 0]})
            url = f"{self.base_url}/shop/{store}/admin/api/{SHOP_API_VERSION}/orders.json?" + urlencode(
                {"limit": limit, "page_info": token})
            headers_out["Link"] = f'<{url}>; rel="next"'
        return _json(200, {"orders": [o for _, o in page]}, headers_out)

    def _orders(self, sponsor: Sponsor) -> list[tuple[datetime, dict[str, Any]]]:
        as_of = self.as_of
        out = []
        for ev in self.world.events:
            if ev.source != "shop_orders" or ev.sponsor_id != sponsor.sponsor_id:
                continue
            if as_of is not None and ev.occurred_at > as_of:
                continue
            record = order_record(ev, sponsor, as_of, self.world.seed)
            out.append((_parse_time(record["updated_at"]), record))
        for record in bad_orders(self.world, sponsor):
            out.append((_parse_time(record["updated_at"]), record))
        out.sort(key=lambda item: (item[0], item[1]["id"] or 0))
        return out


# -- files: insertion orders, pixel events, vanity visits --------------------------------------

def _money_text(value: Decimal | None, style: int) -> str:
    if value is None:
        return ""
    return f"${value:,.2f}" if style % 2 == 0 else f"{value:.2f}"


def _date_text(day: date, style: int) -> str:
    return day.strftime("%m/%d/%Y") if style % 2 == 0 else day.isoformat()


def insertion_order_rows(world: CampaignWorld, c: Campaign, style: int) -> list[list[Any]]:
    """One insertion order as an agency lays it out: a block of fields, a blank row, the
    placements table. Header names, money and date formats vary with `style`."""
    s = world.sponsor(c.tenant_id, c.sponsor_id)
    labels = [("Advertiser", "Sponsor"), ("Advertiser ID", "Sponsor ID"), ("Campaign ID", "IO Number"),
              ("Campaign", "Campaign Name"), ("Flight Start", "Start Date"), ("Flight End", "End Date"),
              ("Budget", "Total Budget"), ("Pricing", "Rate Type")]
    pick = [pair[style % 2] for pair in labels]
    rows: list[list[Any]] = [
        ["INSERTION ORDER", "", "", ""],
        [pick[0], s.name], [pick[1], s.sponsor_id], ["Category", s.category], ["Website", s.website],
        [pick[2], c.campaign_id], [pick[3], c.name],
        [pick[4], _date_text(c.flight_start, style)], [pick[5], _date_text(c.flight_end, style + 1)],
        [pick[6], _money_text(c.budget, style)],
        [pick[7], "Flat Fee" if c.pricing_model == "flat" else "CPM"],
        ["Flat Fee", _money_text(c.flat_fee, style)], ["CPM Rate", _money_text(c.cpm_rate, style)],
        ["Goal", f"{c.goal_type}: {c.goal_value:.0f}"],
        ["Promo Codes", "; ".join(c.promo_codes) if c.codes_published else ""],
        ["Vanity URL", ", ".join(c.vanity_urls) if c.codes_published else ""],
        ["UTM Campaign", c.utm_campaign], ["Attribution Window (days)", str(c.attribution_window_days)],
        ["Attribution Model", c.attribution_model.replace("_", " ").title()],
        ["Half-life (days)", f"{c.decay_half_life_days:g}"],
        ["Exclude Prior Customers", "Yes" if c.exclude_prior_customers else "No"],
        ["", ""], ["", ""],
        ["Placement ID", "Show Feed URL" if style % 2 == 0 else "Feed", "Episode GUID", "Position", "Insertion",
         "Start", "End", "Ad Offset (s)", "Ad Length (s)"],
    ]
    for p in (p for p in world.placements if p.campaign_id == c.campaign_id):
        rows.append([p.placement_id, p.feed_url, p.episode_guid or "", p.position.title() + "-roll",
                     "Dynamic" if p.insertion == "dynamic" else "Baked-in", _date_text(p.start_date, style),
                     _date_text(p.end_date, style + 1), str(p.ad_offset_seconds) if p.offset_published else "",
                     str(p.ad_duration_seconds)])
        if style == 1 and p is world.placements[0]:
            rows.append(["", "", "", "", "", "", "", "", ""])  # a blank row inside the table
    return rows


def write_insertion_orders(world: CampaignWorld, folder: Path) -> list[Path]:
    """`<folder>/<tenant>/IO_<campaign>.csv|xlsx` for every campaign sold by insertion order,
    plus one file per tenant with a placement whose date nobody can read."""
    from openpyxl import Workbook

    written = []
    for n, c in enumerate(c for c in world.campaigns if c.channel == "insertion_order"):
        rows = insertion_order_rows(world, c, n)
        out = folder / c.tenant_id / f"IO_{c.campaign_id}.{c.io_format}"
        out.parent.mkdir(parents=True, exist_ok=True)
        if c.io_format == "csv":
            buffer = io.StringIO()
            csv.writer(buffer).writerows(rows)
            out.write_text(buffer.getvalue())
        else:
            book = Workbook()
            sheet = book.active
            sheet.title = "Insertion Order"
            for row in rows:
                sheet.append(row)
            book.save(out)
        written.append(out)
    for tenant in sorted(world.listener_households):
        c = next(c for c in world.campaigns if c.tenant_id == tenant and c.channel == "insertion_order")
        rows = insertion_order_rows(world, c, 0)
        rows = rows[: rows.index(next(r for r in rows if r and r[0] == "Placement ID")) + 2]
        rows[-1] = [f"pl-{tenant}-io-bad", rows[-1][1], "", "Mid-roll", "Dynamic", "13/45/2026", "2026-12-01", "60", "30"]
        out = folder / tenant / f"IO_{c.campaign_id}_rev2.csv"
        buffer = io.StringIO()
        csv.writer(buffer).writerows(rows)
        out.write_text(buffer.getvalue())
        written.append(out)
    return written


def _pixel_line(ev: Event, seed: int) -> dict[str, Any]:
    contact = pixel_contact(buyer(seed, ev.tenant_id, ev.customer_id, ev.event_id)) if ev.is_conversion else {}
    return {**contact,
        "event_id": ev.event_id, "advertiser_id": ev.sponsor_id, "event": ev.event_type,
        "ts": _iso(ev.occurred_at), "ip": ev.ip, "ua": ev.user_agent, "page_url": ev.landing_url,
        "referrer": ev.referrer, "value": None if ev.gross is None else float(ev.gross),
        "currency": "USD" if ev.gross is not None else None,
    }


def _vanity_line(ev: Event) -> dict[str, Any]:
    host, _, path = (ev.vanity_url or "").partition("/")
    return {"visit_id": ev.event_id, "sponsor_id": ev.sponsor_id, "ts": _iso(ev.occurred_at),
            "client_ip": ev.ip, "user_agent": ev.user_agent, "host": host.title(), "path": f"/{path}/",
            "referer": ev.referrer}


def write_event_files(world: CampaignWorld, landing: Path) -> list[Path]:
    """Pixel events and vanity visits, one JSON-lines file per tenant, kind and week
    (`<landing>/<tenant>/pixel-<monday>.jsonl[.gz]`), odd weeks gzipped; the planted broken
    lines go into the first file of each kind."""
    groups: dict[tuple[str, str, date], list[str]] = {}
    for ev in world.events:
        if ev.source == "shop_orders":
            continue
        monday = ev.occurred_at.date() - timedelta(days=ev.occurred_at.weekday())
        kind = "vanity" if ev.source == "vanity" else "pixel"
        line = _vanity_line(ev) if kind == "vanity" else _pixel_line(ev, world.seed)
        groups.setdefault((ev.tenant_id, kind, monday), []).append(json.dumps(line, separators=(",", ":")))
    firsts: dict[tuple[str, str], tuple[str, str, date]] = {}
    for key in sorted(groups):
        firsts.setdefault(key[:2], key)
    for record in world.bad_records:
        kind = {"pixel": "pixel", "vanity": "vanity"}.get(record["source"])
        if kind is None:
            continue
        target = firsts.get((record["tenant_id"], kind))
        if target is None:
            continue
        person = buyer(world.seed, record["tenant_id"], None, f"bad-{record.get('sponsor_id')}-{record['kind']}")
        if record["kind"] == "invalid_json":
            line = ('{"event_id": "torn", "email": "' + person.email + '", "phone": "' + person.phone
                    + '", "advertiser_id": "' + record["sponsor_id"])
        elif record["kind"] == "invalid_timestamp":
            line = json.dumps({"event_id": f"bad-ts-{record['sponsor_id']}", "advertiser_id": record["sponsor_id"],
                               "event": "purchase", "ts": "yesterday 25:00", "ip": "100.64.1.1", "value": 10.0,
                               **pixel_contact(person)})
        elif record["kind"] == "future_timestamp":
            line = json.dumps({"event_id": f"bad-future-{record['sponsor_id']}", "advertiser_id": record["sponsor_id"],
                               "event": "purchase", "ts": FUTURE_EVENT_AT.isoformat().replace("+00:00", "Z"),
                               "ip": "100.64.1.4", "value": 25.0, **pixel_contact(person)})
        elif record["kind"] == "negative_value":
            line = json.dumps({"event_id": f"bad-value-{record['sponsor_id']}", "advertiser_id": record["sponsor_id"],
                               "event": "purchase", "ts": "2026-11-05T10:00:00Z", "ip": "100.64.1.2", "value": -40.0,
                               **pixel_contact(person)})
        else:  # a vanity visit without a time
            line = json.dumps({"visit_id": f"bad-{record['tenant_id']}", "sponsor_id": "?", "client_ip": "100.64.1.3",
                               "host": "example.com", "path": "/x"})
        groups[target].append(line)
    written = []
    for (tenant, kind, monday), lines in sorted(groups.items()):
        folder = landing / tenant
        folder.mkdir(parents=True, exist_ok=True)
        text = ("\n".join(lines) + "\n").encode()
        if monday.isocalendar().week % 2:
            out = folder / f"{kind}-{monday.isoformat()}.jsonl.gz"
            out.write_bytes(gzip.compress(text, mtime=0))
        else:
            out = folder / f"{kind}-{monday.isoformat()}.jsonl"
            out.write_bytes(text)
        written.append(out)
    return written


def campaign_sources(world: CampaignWorld, base_url: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The `sponsorships:` and `shops:` sections of sources.yaml, and the credentials they name
    (environment variable -> value)."""
    env: dict[str, str] = {}
    tenants = []
    for tenant in sorted(world.listener_households):
        env[sponsorship_env_var(tenant)] = sponsorship_token(world.seed, tenant)
        tenants.append({"tenant_id": tenant, "token_env": sponsorship_env_var(tenant)})
    shops = []
    for s in world.sponsors:
        if s.store:
            env[shop_env_var(s.store)] = shop_token(world.seed, s.store)
            shops.append({"tenant_id": s.tenant_id, "sponsor_id": s.sponsor_id, "store": s.store,
                          "base_url": f"{base_url}/shop/{s.store}", "token_env": shop_env_var(s.store)})
    section = {
        "sponsorships": {"base_url": f"{base_url}/sponsorships/v1", "allow_private_hosts": True, "tenants": tenants},
        "shops": {"allow_private_hosts": True, "stores": shops},
    }
    return section, env


def buyers_of(world: CampaignWorld) -> list[Buyer]:
    """Every person whose details the shop APIs and pixel files of `world` carry (what a scan
    for personal data looks for), planted broken records included."""
    people = [buyer(world.seed, ev.tenant_id, ev.customer_id, ev.event_id) for ev in world.events
              if ev.source == "shop_orders" or (ev.source == "pixel" and ev.is_conversion)]
    for n, record in enumerate(world.bad_records):
        if record["source"] == "shop_orders":
            people.append(buyer(world.seed, record["tenant_id"], None, f"bad{n}"))
        elif record["source"] == "pixel":
            people.append(buyer(world.seed, record["tenant_id"], None, f"bad-{record.get('sponsor_id')}-{record['kind']}"))
    return people

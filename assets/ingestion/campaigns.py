"""Sponsors, campaigns and placements into `raw.sponsors`, `raw.campaigns`, `raw.placements`:
from the sponsorship API (bearer token, cursor pages, `updated_since` from the last sync) and
from agencies' insertion orders dropped as CSV/XLSX files (`<folder>/<tenant>/*.csv|xlsx`).

Parsing is pure (`parse_*`): a record either becomes a row or raises `Invalid` with the reason
it is quarantined. Rows are upserted on their natural keys and rewritten only when they change.
The units that fail are the record (quarantined), the insertion-order file (refused in the file
ledger with the reason) and the tenant's API sync (`LoadStats.failed_sources`); the others are
stored. Tenant, sponsor, campaign and placement ids are `resources.identifiers` identifiers.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import psycopg
import yaml
from pydantic import BaseModel

from assets.ingestion.campaign_store import (
    Invalid, checked, ensure_campaign_tables, file_loaded, identifier, not_future, parse_record, payload,
    quarantine, read_cursor, record_file, store, write_cursor,
)
from resources.identifiers import SponsorId, TenantId, is_valid_identifier
from resources.platform_http import ApiClient, ApiPolicy, Secret, credential_from_env
from resources.settings import get_settings
from resources.warehouse import WarehouseResource

MODELS = ("first_touch", "last_touch", "linear", "time_decay", "position_based")


class SponsorshipTenant(BaseModel):
    tenant_id: TenantId
    token_env: str


class SponsorshipSource(BaseModel):
    base_url: str
    allow_private_hosts: bool = False
    page_size: int = 100
    tenants: list[SponsorshipTenant] = []


class ShopStore(BaseModel):
    tenant_id: TenantId
    sponsor_id: SponsorId
    store: str
    base_url: str
    token_env: str


class ShopSources(BaseModel):
    allow_private_hosts: bool = False
    page_size: int = 100
    stores: list[ShopStore] = []


class CampaignSources(BaseModel):
    sponsorships: SponsorshipSource | None = None
    shops: ShopSources | None = None


def load_campaign_sources(path: Path) -> CampaignSources:
    document = yaml.safe_load(path.read_text()) if path.exists() else None
    document = document or {}
    return CampaignSources.model_validate({k: document.get(k) for k in ("sponsorships", "shops")})


@dataclass
class LoadStats:
    fetched: int = 0
    changed: Counter = field(default_factory=Counter)      # table -> rows inserted or changed
    quarantined: Counter = field(default_factory=Counter)  # reason -> records
    files_loaded: int = 0
    files_unchanged: int = 0
    requests: int = 0
    failed_sources: dict[str, str] = field(default_factory=dict)  # tenant/source -> why its sync stopped


# -- value parsing -----------------------------------------------------------------------------

def parse_money(value: Any, field_name: str, required: bool = True) -> Decimal | None:
    """`$12,500.00`, `12500`, `12,500.5`, a number: two decimals. Blank: None (or invalid when required)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise Invalid("missing_field", f"{field_name} is empty")
        return None
    text = str(value).strip().replace("$", "").replace(",", "").replace("USD", "").strip()
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise Invalid("invalid_money", f"{field_name}: {str(value)[:40]!r}") from None
    if not amount.is_finite():
        raise Invalid("invalid_number", f"{field_name} is not a finite number: {str(value)[:40]!r}")
    if amount < 0:
        raise Invalid("invalid_money", f"{field_name} is negative: {value!r}")
    return amount.quantize(Decimal("0.01"))


def parse_day(value: Any, field_name: str) -> date:
    """`2026-11-03`, `11/03/2026` (US month first), or a spreadsheet date."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value or "").strip()
    if not text:
        raise Invalid("missing_field", f"{field_name} is empty")
    for pattern in ("%Y-%m-%d", "%m/%d/%Y", "%m/%d/%y"):
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    raise Invalid("invalid_date", f"{field_name}: {text[:40]!r}")


def parse_time(value: Any, field_name: str) -> datetime:
    text = str(value or "").strip()
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise Invalid("invalid_timestamp", f"{field_name}: {text[:40]!r}") from None
    if moment.tzinfo is None:
        raise Invalid("invalid_timestamp", f"{field_name} has no time zone: {text[:40]!r}")
    return moment


def _word(value: Any) -> str:
    return re.sub(r"[^a-z]+", "_", str(value or "").strip().lower()).strip("_")


def normalize_vanity(url: str) -> str:
    """host + path, lower case, no scheme, no `www.`-less rewriting, no trailing slash."""
    text = url.strip().lower()
    text = re.sub(r"^[a-z]+://", "", text)
    return text.rstrip("/")


def _required(record: dict[str, Any], name: str) -> Any:
    value = record.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise Invalid("missing_id" if name == "id" else "missing_field", f"{name} is missing")
    return value.strip() if isinstance(value, str) else value


def _text(value: Any, name: str) -> str | None:
    """Optional text: None, or a string (a number is read as its text)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return str(value)
    raise Invalid("invalid_type", f"{name} is a {type(value).__name__} where text is expected")


def _texts(value: Any, name: str) -> list[str]:
    """A list of text (promo codes, vanity URLs): absent is empty; anything else is refused."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) or v is None for v in value):
        raise Invalid("invalid_type", f"{name} is not a list of text")
    return [v for v in value if v and v.strip()]


# -- the sponsorship API's records -------------------------------------------------------------

def parse_sponsor(tenant: str, r: dict[str, Any], source: str, batch_id: str) -> dict[str, Any]:
    return {
        "tenant_id": tenant, "sponsor_id": identifier("sponsor id", _required(r, "id")),
        "name": _text(_required(r, "name"), "name"),
        "category": _text(r.get("category"), "category"), "website": _text(r.get("website"), "website"),
        "updated_at": parse_time(r["updated_at"], "updated_at") if r.get("updated_at") else None,
        "payload": payload(r), "_source": source, "_batch_id": batch_id,
    }


def campaign_row(tenant: str, r: dict[str, Any], source: str, batch_id: str, document: Any) -> dict[str, Any]:
    """A campaign in the flat shape both sources are brought to, validated."""
    pricing = _word(r.get("pricing_model"))
    pricing = {"flat_fee": "flat"}.get(pricing, pricing)
    if pricing not in ("flat", "cpm"):
        raise Invalid("invalid_pricing", f"pricing model {r.get('pricing_model')!r}")
    flat_fee = parse_money(r.get("flat_fee"), "flat_fee", required=pricing == "flat")
    cpm_rate = parse_money(r.get("cpm_rate"), "cpm_rate", required=pricing == "cpm")
    start, end = parse_day(r.get("flight_start"), "flight_start"), parse_day(r.get("flight_end"), "flight_end")
    if end < start:
        raise Invalid("invalid_date", f"flight ends {end} before it starts {start}")
    window = r.get("attribution_window_days")
    try:
        window = 30 if window in (None, "") else int(str(window).strip())
    except ValueError:
        raise Invalid("invalid_attribution_window", f"window {window!r}") from None
    if not 1 <= window <= 60:
        raise Invalid("invalid_attribution_window", f"window of {window} days (allowed: 1-60)")
    model = _word(r.get("attribution_model") or "last_touch")
    if model not in MODELS:
        raise Invalid("invalid_attribution_model", f"model {r.get('attribution_model')!r}")
    half_life = r.get("decay_half_life_days")
    try:
        half_life = Decimal(str(half_life)) if half_life not in (None, "") else Decimal(7)
    except InvalidOperation:
        raise Invalid("invalid_number", f"half-life {half_life!r}") from None
    if not half_life.is_finite() or not 0 < half_life <= 365:
        raise Invalid("invalid_number", f"half-life of {half_life} days (allowed: more than 0, at most 365)")
    goal_value = parse_money(r.get("goal_value"), "goal_value", required=False)
    return {
        "tenant_id": tenant, "campaign_id": identifier("campaign id", _required(r, "id")),
        "sponsor_id": identifier("sponsor id", _required(r, "sponsor_id")),
        "name": _text(_required(r, "name"), "name"), "budget": parse_money(r.get("budget"), "budget"),
        "currency": (_text(r.get("currency"), "currency") or "USD").upper(), "flight_start": start, "flight_end": end,
        "pricing_model": pricing, "flat_fee": flat_fee, "cpm_rate": cpm_rate,
        "goal_type": _word(r.get("goal_type")) or None, "goal_value": goal_value,
        "promo_codes": sorted({c.strip() for c in _texts(r.get("promo_codes"), "promo_codes")}),
        "vanity_urls": sorted({normalize_vanity(u) for u in _texts(r.get("vanity_urls"), "vanity_urls")}),
        "utm_campaign": (_text(r.get("utm_campaign"), "utm_campaign") or "").strip() or None,
        "attribution_window_days": window, "attribution_model": model, "decay_half_life_days": half_life,
        "exclude_prior_customers": bool(r.get("exclude_prior_customers")), "status": _text(r.get("status"), "status"),
        "updated_at": parse_time(r["updated_at"], "updated_at") if r.get("updated_at") else None,
        "payload": payload(document), "_source": source, "_batch_id": batch_id,
    }


def parse_api_campaign(tenant: str, r: dict[str, Any], batch_id: str) -> dict[str, Any]:
    flat = {
        "id": r.get("id"), "sponsor_id": r.get("sponsor_id"), "name": r.get("name"),
        "budget": (r.get("budget") or {}).get("amount"), "currency": (r.get("budget") or {}).get("currency"),
        "flight_start": (r.get("flight") or {}).get("start"), "flight_end": (r.get("flight") or {}).get("end"),
        "pricing_model": (r.get("pricing") or {}).get("model"), "flat_fee": (r.get("pricing") or {}).get("flat_fee"),
        "cpm_rate": (r.get("pricing") or {}).get("cpm_rate"), "goal_type": (r.get("goal") or {}).get("type"),
        "goal_value": (r.get("goal") or {}).get("value"), "promo_codes": r.get("promo_codes"),
        "vanity_urls": r.get("vanity_urls"), "utm_campaign": r.get("utm_campaign"),
        "attribution_window_days": (r.get("attribution") or {}).get("window_days"),
        "attribution_model": (r.get("attribution") or {}).get("model"),
        "decay_half_life_days": (r.get("attribution") or {}).get("half_life_days"),
        "exclude_prior_customers": (r.get("attribution") or {}).get("exclude_prior_customers"),
        "status": r.get("status"), "updated_at": r.get("updated_at"),
    }
    return campaign_row(tenant, flat, "sponsorship_api", batch_id, r)


def placement_row(tenant: str, r: dict[str, Any], source: str, batch_id: str, document: Any) -> dict[str, Any]:
    position = _word(r.get("position")).removesuffix("_roll")
    if position not in ("pre", "mid", "post"):
        raise Invalid("invalid_position", f"position {r.get('position')!r}")
    insertion = {"dynamic": "dynamic", "dai": "dynamic", "baked_in": "baked_in", "baked": "baked_in",
                 "host_read": "baked_in"}.get(_word(r.get("insertion")))
    if insertion is None:
        raise Invalid("invalid_insertion", f"insertion {r.get('insertion')!r}")
    start, end = parse_day(r.get("start_date"), "start_date"), parse_day(r.get("end_date"), "end_date")
    if end < start:
        raise Invalid("invalid_date", f"placement ends {end} before it starts {start}")
    # The offset may be left out (an insertion order that says "mid-roll, host read"): stored as
    # null, the ad's place in the audio is then the slot detected in the episode's transcript
    # (int_placement_episodes). An offset that is given must be a whole number of seconds.
    given = r.get("ad_offset_seconds")
    try:
        offset = None if given is None or (isinstance(given, str) and not given.strip()) else int(str(given).strip())
        duration = int(str(r.get("ad_duration_seconds")).strip())
    except ValueError:
        raise Invalid("invalid_number", "ad offset or duration is not a whole number of seconds") from None
    if (offset is not None and offset < 0) or duration <= 0:
        raise Invalid("invalid_number", f"ad offset {offset}, duration {duration}")
    guid = r.get("episode_guid")
    return {
        "tenant_id": tenant, "placement_id": identifier("placement id", _required(r, "id")),
        "campaign_id": identifier("campaign id", _required(r, "campaign_id")),
        "feed_url": _text(_required(r, "feed_url"), "feed_url"), "episode_guid": str(guid).strip() if guid not in (None, "") else None,
        "position": position, "insertion": insertion, "start_date": start, "end_date": end,
        "ad_offset_seconds": offset, "ad_duration_seconds": duration,
        "updated_at": parse_time(r["updated_at"], "updated_at") if r.get("updated_at") else None,
        "payload": payload(document), "_source": source, "_batch_id": batch_id,
    }


def parse_api_placement(tenant: str, r: dict[str, Any], batch_id: str) -> dict[str, Any]:
    flat = {**r, "feed_url": (r.get("show") or {}).get("feed_url"),
            "ad_offset_seconds": (r.get("ad") or {}).get("offset_seconds"),
            "ad_duration_seconds": (r.get("ad") or {}).get("duration_seconds")}
    return placement_row(tenant, flat, "sponsorship_api", batch_id, r)


# The columns of the raw tables this module writes, declared here once: the upsert
# (`campaign_store.store`), the quality suite (pipelines/checks/quality.py) and the dbt source
# read them, and tests/test_raw_columns.py holds the warehouse's tables and dbt's sources to them.
RAW_COLUMNS = {
    "sponsors": ("tenant_id", "sponsor_id", "name", "category", "website", "updated_at", "payload", "_source",
                 "_ingested_at", "_batch_id"),
    "campaigns": (
        "tenant_id", "campaign_id", "sponsor_id", "name", "budget", "currency", "flight_start", "flight_end",
        "pricing_model", "flat_fee", "cpm_rate", "goal_type", "goal_value", "promo_codes", "vanity_urls",
        "utm_campaign", "attribution_window_days", "attribution_model", "decay_half_life_days",
        "exclude_prior_customers", "status", "updated_at", "payload", "_source", "_ingested_at", "_batch_id",
    ),
    "placements": (
        "tenant_id", "placement_id", "campaign_id", "feed_url", "episode_guid", "position", "insertion", "start_date",
        "end_date", "ad_offset_seconds", "ad_duration_seconds", "updated_at", "payload", "_source", "_ingested_at",
        "_batch_id",
    ),
}

API_STREAMS = {
    "sponsors": ("raw.sponsors", ("tenant_id", "sponsor_id"), parse_sponsor),
    "campaigns": ("raw.campaigns", ("tenant_id", "campaign_id"), parse_api_campaign),
    "placements": ("raw.placements", ("tenant_id", "placement_id"), parse_api_placement),
}


def sync_sponsorship_api(warehouse: WarehouseResource, source: SponsorshipSource, batch_id: str, stats: LoadStats,
                         environ: dict[str, str] | None = None, now: datetime | None = None) -> None:
    """Each tenant's sponsors, campaigns and placements changed since the last sync. A tenant
    whose sync stops (its API fails, a response is not a page of records) is reported in
    `stats.failed_sources`; what it stored so far stays, with its cursor, and the next tenant runs.

    A record `updated_at` after the sync's time (`now`, the clock by default) plus
    `PODCAST_FUTURE_TOLERANCE` is quarantined as `future_timestamp` and never moves the cursor:
    a cursor in the future would skip every real change until then. The API sends the record
    again on each sync (it is newer than the cursor), so it is stored once its time has come."""
    latest = get_settings().latest_event_time(now)
    policy = ApiPolicy(timeout_seconds=15, max_attempts=5, allow_private_hosts=source.allow_private_hosts,
                       retry_budget_seconds=60)
    with warehouse.connect(autocommit=True) as conn:
        for tenant in source.tenants:
            try:
                _sync_tenant(conn, source, tenant, policy, batch_id, stats, environ, latest)
            except Exception as exc:  # noqa: BLE001 (one tenant's failure must not lose the other tenants' sync)
                stats.failed_sources[f"{tenant.tenant_id}/sponsorship_api"] = f"{type(exc).__name__}: {str(exc)[:300]}"


def _sync_tenant(conn: psycopg.Connection, source: SponsorshipSource, tenant: SponsorshipTenant, policy: ApiPolicy,
                 batch_id: str, stats: LoadStats, environ: dict[str, str] | None, latest: datetime) -> None:
    token = credential_from_env(tenant.token_env, environ)
    with ApiClient(source.base_url, policy, {"Authorization": Secret("Bearer " + token.reveal())}) as client:
        try:
            for stream, (table, keys, parse) in API_STREAMS.items():
                _sync_stream(conn, client, source, tenant.tenant_id, stream, table, keys, parse, batch_id, stats,
                             latest)
        finally:
            stats.requests += client.stats.requests


def _sync_stream(conn: psycopg.Connection, client: ApiClient, source: SponsorshipSource, tenant: str, stream: str,
                 table: str, keys: tuple[str, ...], parse: Callable[..., dict[str, Any]], batch_id: str,
                 stats: LoadStats, latest: datetime) -> None:
    since = read_cursor(conn, tenant, "sponsorship_api", stream)
    params: dict[str, Any] = {"limit": source.page_size}
    if since:
        params["updated_since"] = since
    newest = since
    while True:
        document = client.get(f"/{stream}", params=params).data
        records = document.get("data") if isinstance(document, dict) else None
        if not isinstance(records or [], list):
            raise ValueError(f"/{stream}: the response is not a page of records")
        rows, record_keys, bad = [], [], []
        for record in records or []:
            stats.fetched += 1
            key = f"{stream}/{record.get('id') if isinstance(record, dict) else None}"
            try:
                if not isinstance(record, dict):
                    raise Invalid("invalid_type", "a record is not an object")
                args = (tenant, record, batch_id) if stream != "sponsors" else (tenant, record, "sponsorship_api", batch_id)
                row = not_future(parse_record(parse, *args), latest, "updated_at")
            except Invalid as exc:
                bad.append((key, exc, record))
                continue
            rows.append(row)
            record_keys.append(key)
            if row["updated_at"] is not None:
                stamp = str(record["updated_at"])
                newest = max(newest or stamp, stamp)
        with conn.transaction():
            stats.changed[table] += store(conn, table, RAW_COLUMNS[table.removeprefix("raw.")], keys, rows,
                                          lambda i, exc: bad.append((record_keys[i], exc, rows[i]["payload"].obj)))
            for key, exc, record in bad:
                stats.quarantined[exc.code] += quarantine(conn, tenant, "sponsorship_api", key, exc, record, batch_id)
        if not document.get("next_cursor"):
            break
        params = {"limit": source.page_size, "cursor": document["next_cursor"],
                  **({"updated_since": since} if since else {})}
    if newest:
        write_cursor(conn, tenant, "sponsorship_api", stream, newest)


# -- insertion orders ----------------------------------------------------------------------------

IO_FIELDS = {
    "advertiser": "sponsor_name", "sponsor": "sponsor_name", "client": "sponsor_name",
    "advertiser_id": "sponsor_id", "sponsor_id": "sponsor_id", "client_id": "sponsor_id",
    "category": "category", "website": "website",
    "campaign_id": "id", "io_number": "id", "campaign": "name", "campaign_name": "name",
    "flight_start": "flight_start", "start_date": "flight_start", "flight_end": "flight_end", "end_date": "flight_end",
    "budget": "budget", "total_budget": "budget", "pricing": "pricing_model", "rate_type": "pricing_model",
    "flat_fee": "flat_fee", "cpm_rate": "cpm_rate", "cpm": "cpm_rate", "goal": "goal",
    "promo_codes": "promo_codes", "promo_code": "promo_codes", "vanity_url": "vanity_urls", "vanity_urls": "vanity_urls",
    "utm_campaign": "utm_campaign", "attribution_window_days": "attribution_window_days",
    "attribution_window": "attribution_window_days", "attribution_model": "attribution_model",
    "half_life_days": "decay_half_life_days", "half_life": "decay_half_life_days",
    "exclude_prior_customers": "exclude_prior_customers",
}
PLACEMENT_COLUMNS = {
    "placement_id": "id", "show_feed_url": "feed_url", "feed": "feed_url", "feed_url": "feed_url", "show": "feed_url",
    "episode_guid": "episode_guid", "guid": "episode_guid", "position": "position", "insertion": "insertion",
    "start": "start_date", "start_date": "start_date", "end": "end_date", "end_date": "end_date",
    "ad_offset_s": "ad_offset_seconds", "ad_offset": "ad_offset_seconds", "ad_length_s": "ad_duration_seconds",
    "ad_duration_s": "ad_duration_seconds", "ad_length": "ad_duration_seconds",
}


MAX_IO_BYTES = 16 << 20   # an insertion order is a page of fields and a placement table:
MAX_IO_ROWS = 10_000      # a file over either bound is refused (`file_too_large`) unread


def read_sheet(path: Path) -> list[list[Any]]:
    """The cells of a CSV or of an XLSX file's first sheet, row by row (at most `MAX_IO_ROWS`)."""
    if path.stat().st_size > MAX_IO_BYTES:
        raise Invalid("file_too_large", f"{path.stat().st_size} bytes (at most {MAX_IO_BYTES})")
    if path.suffix.lower() == ".xlsx":
        from openpyxl import load_workbook

        book = load_workbook(path, read_only=True, data_only=True)
        try:
            rows = (list(row) for row in book.worksheets[0].iter_rows(values_only=True))
            return _bounded(rows)
        finally:
            book.close()
    text = path.read_bytes().decode("utf-8-sig", errors="replace")
    return _bounded(csv.reader(io.StringIO(text)))


def _bounded(rows) -> list[list[Any]]:
    out = []
    for row in rows:
        if len(out) == MAX_IO_ROWS:
            raise Invalid("file_too_large", f"more than {MAX_IO_ROWS} rows")
        out.append(row)
    return out


def _blank(row: list[Any]) -> bool:
    return all(cell is None or str(cell).strip() == "" for cell in row)


def parse_insertion_order(tenant: str, name: str, rows: list[list[Any]], batch_id: str):
    """(sponsor row, campaign row, placement rows, [(record key, Invalid, document)]) of one IO.
    A campaign block that cannot be read makes the whole file one quarantined record."""
    fields: dict[str, Any] = {}
    table_at = None
    for i, row in enumerate(rows):
        if _blank(row):
            continue
        key = _word(row[0])
        if key == "placement_id":
            table_at = i
            break
        if key in IO_FIELDS and len(row) > 1:
            fields[IO_FIELDS[key]] = row[1]
    bad: list[tuple[str, Invalid, Any]] = []
    document = {k: v for k, v in fields.items()}
    if "id" not in fields:
        return None, None, [], [(f"{name}:campaign", Invalid("missing_id", "no campaign id"), document)]
    goal = str(fields.get("goal") or "")
    goal_type, _, goal_value = goal.partition(":")
    codes = re.split(r"[;,]", str(fields.get("promo_codes") or ""))
    vanity = re.split(r"[;, ]+", str(fields.get("vanity_urls") or ""))
    flat = {
        **fields, "goal_type": goal_type, "goal_value": goal_value.strip() or None,
        "promo_codes": [c for c in codes if c.strip()], "vanity_urls": [v for v in vanity if v.strip()],
        "exclude_prior_customers": _word(fields.get("exclude_prior_customers")) in ("yes", "y", "true", "x"),
        "pricing_model": fields.get("pricing_model"),
    }
    try:
        campaign = parse_record(campaign_row, tenant, flat, "insertion_order", batch_id, {"file": name, **document})
        sponsor = checked({
            "tenant_id": tenant, "sponsor_id": identifier("sponsor id", _required(fields, "sponsor_id")),
            "name": str(_required(fields, "sponsor_name")), "category": _text(fields.get("category"), "category"),
            "website": _text(fields.get("website"), "website"), "updated_at": None,
            "payload": payload({"file": name, **{k: fields.get(k) for k in ("sponsor_name", "sponsor_id", "category", "website")}}),
            "_source": "insertion_order", "_batch_id": batch_id,
        })
    except Invalid as exc:
        return None, None, [], [(f"{name}:campaign", exc, document)]
    placements = []
    if table_at is not None:
        header = [PLACEMENT_COLUMNS.get(_word(h), _word(h)) for h in rows[table_at]]
        for i, row in enumerate(rows[table_at + 1:], start=table_at + 2):
            if _blank(row):
                continue
            record = {h: (str(v).strip() if v is not None else "") for h, v in zip(header, row)}
            record["campaign_id"] = campaign["campaign_id"]
            try:
                placements.append(parse_record(placement_row, tenant, record, "insertion_order", batch_id,
                                               {"file": name, "row": i, **record}))
            except Invalid as exc:
                bad.append((f"{name}:row{i}", exc, record))
    return sponsor, campaign, placements, bad


# Called inside each insertion order's transaction once its rows are written (tests stop a load there).
OnUnit = Callable[[str], None]


def _no_hook(unit: str) -> None:
    return None


def load_insertion_orders(warehouse: WarehouseResource, folder: Path, batch_id: str, stats: LoadStats, on_unit: OnUnit = _no_hook) -> None:
    """Every CSV/XLSX under `<folder>/<tenant>/` whose bytes were not loaded before, one
    transaction per file. A file that cannot be read is refused in the ledger with the reason
    (and quarantined); a tenant folder whose name is not an identifier is quarantined, unread."""
    if not folder.exists():
        return
    with warehouse.connect(autocommit=True) as conn:
        for tenant_dir in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
            tenant = tenant_dir.name
            if not is_valid_identifier(tenant):
                stats.quarantined["invalid_identifier"] += quarantine(
                    conn, tenant, "insertion_order", tenant,
                    Invalid("invalid_identifier", f"tenant folder {tenant!r} is not a plain identifier"),
                    {"folder": tenant}, batch_id)
                continue
            for path in sorted(tenant_dir.iterdir()):
                if path.suffix.lower() not in (".csv", ".xlsx") or path.name.startswith((".", "~$")):
                    continue
                load_insertion_order(conn, tenant, path, batch_id, stats, on_unit)


def load_insertion_order(conn: psycopg.Connection, tenant: str, path: Path, batch_id: str, stats: LoadStats,
                         on_unit: OnUnit = _no_hook) -> None:
    file_key = f"insertion_order/{tenant}/{path.name}"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if file_loaded(conn, file_key, digest):
        stats.files_unchanged += 1
        return
    try:
        rows = read_sheet(path)
    except Exception as exc:  # noqa: BLE001 (a broken workbook or CSV is refused, not fatal)
        failure = exc if isinstance(exc, Invalid) else Invalid("unreadable_file", f"{type(exc).__name__}: {str(exc)[:300]}")
        with conn.transaction():
            stats.quarantined[failure.code] += quarantine(conn, tenant, "insertion_order", path.name, failure,
                                                          {"file": path.name}, batch_id)
            record_file(conn, file_key, "insertion_order", tenant, digest, 0, 1, batch_id, failure)
        return
    sponsor, campaign, placements, bad = parse_insertion_order(tenant, path.name, rows, batch_id)
    refused: list[tuple[str, Invalid, Any]] = []  # rows the database refused

    def refuse(key: str, row: dict[str, Any]) -> Callable[[int, Invalid], None]:
        return lambda i, exc: refused.append((key, exc, row["payload"].obj))

    with conn.transaction():
        if sponsor is not None:
            # The sponsorship API's record of a sponsor wins over an IO's copy of it.
            stats.changed["raw.sponsors"] += store(conn, "raw.sponsors", RAW_COLUMNS["sponsors"],
                                                   ("tenant_id", "sponsor_id"), [sponsor],
                                                   refuse(f"{path.name}:sponsor", sponsor), update=False)
            stats.changed["raw.campaigns"] += store(conn, "raw.campaigns", RAW_COLUMNS["campaigns"],
                                                    ("tenant_id", "campaign_id"), [campaign],
                                                    refuse(f"{path.name}:campaign", campaign))
            stats.changed["raw.placements"] += store(
                conn, "raw.placements", RAW_COLUMNS["placements"], ("tenant_id", "placement_id"), placements,
                lambda i, exc: refuse(f"{path.name}:placement:{placements[i]['placement_id']}", placements[i])(i, exc))
        for key, exc, document in bad + refused:
            stats.quarantined[exc.code] += quarantine(conn, tenant, "insertion_order", key, exc, document, batch_id)
        stored = len(placements) + (campaign is not None) - sum(1 for key, _, _ in refused if not key.endswith(":sponsor"))
        record_file(conn, file_key, "insertion_order", tenant, digest, stored, len(bad) + len(refused), batch_id)
        on_unit(file_key)
    stats.files_loaded += 1


def sync_campaigns(warehouse: WarehouseResource, sources: CampaignSources, io_folder: Path | None, batch_id: str,
                   environ: dict[str, str] | None = None, on_unit: OnUnit = _no_hook,
                   now: datetime | None = None) -> LoadStats:
    stats = LoadStats()
    ensure_campaign_tables(warehouse)
    if sources.sponsorships is not None:
        sync_sponsorship_api(warehouse, sources.sponsorships, batch_id, stats, environ, now)
    if io_folder is not None:
        load_insertion_orders(warehouse, io_folder, batch_id, stats, on_unit)
    return stats

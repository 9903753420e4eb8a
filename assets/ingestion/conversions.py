"""Conversion events into `raw.attribution_events`: shop orders from each sponsor's shop API
(incremental on `updated_at_min`, cursor pages through the `Link` header; edits and refunds
update the order's row), and pixel events and vanity-URL visits from JSON-lines files
(`<landing>/<tenant>/pixel-*.jsonl[.gz]`, `vanity-*.jsonl[.gz]`) recorded in a file ledger so a
file is read once per version.

Personal data is minimised before anything is stored. Client addresses, the buyer's e-mail and
phone and the shop's customer id are kept only as keyed hashes with the tenant's salt
(`IpHasher`, the same as the access logs; `ip_hash`/`ip_prefix_hash`, `email_key`, `phone_key`,
`customer_key`), so a buyer's household matches the listener's and a data-subject request finds
their rows. The `payload` keeps, by allow-list, only the fields attribution and ROI read
(`ORDER_FIELDS`, `PIXEL_FIELDS`, `VANITY_FIELDS`): names, billing and shipping addresses, notes
and line items never reach the warehouse. Records that cannot be stored go to
`quarantine.campaign_records` with the reason and the same minimised evidence plus their keys;
an event dated after the load's time plus `PODCAST_FUTURE_TOLERANCE` is one of them
(`future_timestamp`), and the rest of its page or file is stored.
"""

from __future__ import annotations

import gzip
import hashlib
import ipaddress
import json
import re
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import parse_qs, urlsplit

import psycopg

from assets.ingestion.campaign_store import (
    Invalid, ensure_campaign_tables, file_loaded, identifier, not_future, parse_record, payload, quarantine,
    read_cursor, record_file, store, write_cursor,
)
from assets.ingestion.campaigns import (
    CampaignSources, LoadStats, ShopSources, ShopStore, normalize_vanity, parse_money, parse_time,
)
from assets.ingestion.identity import identity_key, value_key
from assets.ingestion.listener_logs_parse import IpHasher
from resources.identifiers import is_valid_identifier
from resources.settings import get_settings
from resources.platform_http import ApiClient, ApiPolicy, credential_from_env
from resources.warehouse import WarehouseResource

# The columns of the raw table this module writes, declared here once: the upsert
# (`campaign_store.store`), the quality suite (pipelines/checks/quality.py) and the dbt source
# read them, and tests/test_raw_columns.py holds the warehouse's table and dbt's source to them.
RAW_COLUMNS = {
    "attribution_events": (
        "tenant_id", "source", "event_id", "occurred_at", "sponsor_id", "event_type", "updated_at", "ip_hash",
        "ip_prefix_hash", "ip_version", "ip_datacenter", "user_agent", "customer_key", "email_key", "phone_key",
        "order_id", "gross_revenue", "refunded_amount", "currency", "discount_codes", "landing_url", "referrer",
        "utm_source", "utm_medium", "utm_campaign", "vanity_url", "payload", "_ingested_at", "_batch_id",
    ),
}
EVENT_COLUMNS = RAW_COLUMNS["attribution_events"]
EVENT_KEY = ("tenant_id", "source", "event_id", "occurred_at")
FILE_NAME = re.compile(r"^(pixel|vanity)-.*\.jsonl(\.gz)?$")
PARTIAL_SUFFIXES = (".part", ".tmp", ".partial")
NEXT_LINK = re.compile(r'<([^>]+)>;\s*rel="?next"?')


@dataclass
class Addresses:
    """Hashes a client address for one tenant and says whether it is a data-centre address."""

    hasher: IpHasher
    datacenters: list

    def fields(self, ip: Any) -> dict[str, Any]:
        if not ip:
            return {"ip_hash": None, "ip_prefix_hash": None, "ip_version": None, "ip_datacenter": False}
        try:
            address = ipaddress.ip_address(str(ip).strip())
        except ValueError:
            raise Invalid("invalid_ip", "client address is not an IP address") from None
        ip_hash, prefix_hash, version = self.hasher.hash_ip(str(address))
        return {"ip_hash": ip_hash, "ip_prefix_hash": prefix_hash, "ip_version": version,
                "ip_datacenter": any(address in net for net in self.datacenters if net.version == address.version)}


def utm_fields(url: str | None) -> dict[str, str | None]:
    query = parse_qs(urlsplit(url or "").query)
    return {f"utm_{k}": (query.get(f"utm_{k}") or [None])[0] for k in ("source", "medium", "campaign")}


# What `payload` keeps of each record: the fields the columns are parsed from and a few that
# explain an order's state. A name maps to None (a plain value: text, number, true/false, null)
# or to the fields kept inside it (an object, or each object of a list). Anything not named is
# dropped; a value of the wrong shape is replaced by its type's name.
ORDER_FIELDS: dict[str, Any] = {
    **dict.fromkeys(("id", "name", "created_at", "updated_at", "processed_at", "cancelled_at", "total_price",
                     "subtotal_price", "total_discounts", "currency", "financial_status", "test", "source_name",
                     "landing_site", "referring_site")),
    "discount_codes": dict.fromkeys(("code", "amount", "type")),
    "refunds": {"id": None, "created_at": None,
                "transactions": dict.fromkeys(("kind", "amount", "status", "created_at"))},
    "client_details": {"user_agent": None},
}
PIXEL_FIELDS: dict[str, Any] = dict.fromkeys(("event_id", "advertiser_id", "event", "value", "currency", "ts",
                                              "order_id", "page_url", "referrer", "ua"))
VANITY_FIELDS: dict[str, Any] = dict.fromkeys(("visit_id", "sponsor_id", "ts", "host", "path", "referer",
                                               "user_agent"))
FIELDS = {"shop_orders": ORDER_FIELDS, "pixel": PIXEL_FIELDS, "vanity": VANITY_FIELDS}
# The columns holding a person's keys: quarantine evidence carries them too (data-subject requests).
KEY_COLUMNS = ("ip_hash", "email_key", "phone_key", "customer_key")


def minimised(value: Any, fields: dict[str, Any] | None) -> Any:
    """`value` cut to `fields` (see `ORDER_FIELDS`)."""
    if fields is None:
        return value if value is None or isinstance(value, (str, int, float, bool)) else f"<{type(value).__name__}>"
    if isinstance(value, list):
        return [minimised(v, fields) for v in value]
    if not isinstance(value, dict):
        return f"<{type(value).__name__}>"
    return {k: minimised(v, fields[k]) for k, v in value.items() if k in fields}


def _first(*values: Any) -> Any:
    return next((v for v in values if v not in (None, "")), None)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def order_identity(order: dict[str, Any]) -> dict[str, Any]:
    """The buyer's e-mail, phone, customer id and client address as an order carries them
    (Shopify: the order's `email`/`contact_email`/`phone`, its `customer`, the addresses'
    phones, `browser_ip` or `client_details.browser_ip`)."""
    customer = _dict(order.get("customer"))
    billing, shipping = _dict(order.get("billing_address")), _dict(order.get("shipping_address"))
    return {"email": _first(order.get("email"), order.get("contact_email"), customer.get("email")),
            "phone": _first(order.get("phone"), customer.get("phone"), billing.get("phone"), shipping.get("phone")),
            "customer": customer.get("id"),
            "ip": _first(order.get("browser_ip"), _dict(order.get("client_details")).get("browser_ip"))}


def line_identity(line: dict[str, Any], ip_field: str) -> dict[str, Any]:
    """A pixel or vanity line's e-mail, phone and client address (plain or in `user_data`)."""
    user = _dict(line.get("user_data"))
    return {"email": _first(line.get("email"), user.get("email")),
            "phone": _first(line.get("phone"), user.get("phone")), "customer": None, "ip": line.get(ip_field)}


def identity_keys(hasher: IpHasher, identity: dict[str, Any]) -> dict[str, str | None]:
    """The keys stored for an identity (`KEY_COLUMNS`); an address that is not one gives none."""
    try:
        ip_hash = hasher.hash_ip(str(ipaddress.ip_address(str(identity["ip"]).strip())))[0] \
            if isinstance(identity["ip"], str) else None
    except ValueError:
        ip_hash = None
    return {"ip_hash": ip_hash, "email_key": value_key(hasher, "email", identity["email"]),
            "phone_key": value_key(hasher, "phone", identity["phone"]),
            "customer_key": value_key(hasher, "customer", identity["customer"])}


def evidence(source: str, record: Any, hasher: IpHasher) -> dict[str, Any]:
    """What quarantine keeps of a record that could not be stored: the allow-listed fields and
    the keys of the person in it, never their contact details or address."""
    if not isinstance(record, dict):
        return {"record": f"<{type(record).__name__}>"}
    identity = order_identity(record) if source == "shop_orders" else \
        line_identity(record, "ip" if source == "pixel" else "client_ip")
    keys = {k: v for k, v in identity_keys(hasher, identity).items() if v is not None}
    return {**minimised(record, FIELDS[source]), **keys}


_JSON_PAIR = re.compile(r'"((?:[^"\\]|\\.){1,100})"\s*:\s*("(?:[^"\\]|\\.){0,2000}"|[-+.\w]{1,100})')


def torn_evidence(source: str, text: str, hasher: IpHasher) -> dict[str, Any]:
    """What quarantine keeps of a line that is not a JSON object: the allow-listed plain fields
    that can still be read from it (client addresses hashed), its size, and how many other
    fields were dropped; nothing else of the text."""
    kept: dict[str, str] = {}
    dropped = 0
    for match in _JSON_PAIR.finditer(text):
        key, fields = match.group(1), FIELDS[source]
        if key in fields and fields[key] is None:
            kept[key] = hasher.redact(match.group(2).strip('"'))
        else:
            dropped += 1
    return {"fields": kept, "fields_dropped": dropped, "bytes": len(text.encode())}


def _person_keys(hasher: IpHasher, identity: dict[str, Any]) -> dict[str, str | None]:
    """The e-mail, phone and customer keys of a stored row (an e-mail or phone that is neither
    text nor a number refuses the record: it would be stored without its key)."""
    keys = {}
    for kind in ("email", "phone", "customer"):
        value = identity[kind]
        if value not in (None, "") and (isinstance(value, bool) or not isinstance(value, (str, int))):
            raise Invalid("invalid_type", f"{kind} is a {type(value).__name__} where text is expected")
        keys[f"{kind}_key"] = identity_key(hasher, kind, None if value is None else str(value))
    return keys


def parse_order(tenant: str, sponsor_id: str, order: dict[str, Any], addresses: Addresses, batch_id: str) -> dict[str, Any]:
    if order.get("id") in (None, ""):
        raise Invalid("missing_id", "order without an id")
    created = parse_time(order.get("created_at"), "created_at")
    total = parse_money(order.get("total_price"), "total_price")
    refunded = Decimal("0.00")
    for refund in order.get("refunds") or []:
        for transaction in refund.get("transactions") or []:
            if transaction.get("kind", "refund") == "refund" and transaction.get("status", "success") == "success":
                refunded += parse_money(transaction.get("amount"), "refund amount")
    client = order.get("client_details") or {}
    landing = order.get("landing_site") or None
    identity = order_identity(order)
    return {
        "tenant_id": tenant, "source": "shop_orders", "event_id": str(order["id"]),
        "occurred_at": created.astimezone(timezone.utc), "sponsor_id": sponsor_id, "event_type": "order",
        "updated_at": parse_time(order["updated_at"], "updated_at") if order.get("updated_at") else created,
        **addresses.fields(identity["ip"]), "user_agent": client.get("user_agent"),
        **_person_keys(addresses.hasher, identity),
        "order_id": str(order.get("name") or order["id"]), "gross_revenue": total, "refunded_amount": refunded,
        "currency": order.get("currency"),
        "discount_codes": [d["code"].strip() for d in order.get("discount_codes") or [] if d.get("code")],
        "landing_url": landing, "referrer": order.get("referring_site") or None, **utm_fields(landing),
        "vanity_url": None, "payload": payload(minimised(order, ORDER_FIELDS)), "_batch_id": batch_id,
    }


def parse_pixel(tenant: str, line: dict[str, Any], addresses: Addresses, batch_id: str) -> dict[str, Any]:
    if not line.get("event_id"):
        raise Invalid("missing_id", "pixel event without an id")
    if not line.get("advertiser_id"):
        raise Invalid("missing_field", "pixel event without an advertiser")
    kind = str(line.get("event") or "").lower()
    if kind not in ("purchase", "lead", "page_view"):
        raise Invalid("invalid_event_type", f"event {kind[:30]!r}")
    value = parse_money(line.get("value"), "value", required=False)
    return {
        "tenant_id": tenant, "source": "pixel", "event_id": str(line["event_id"]),
        "occurred_at": parse_time(line.get("ts"), "ts").astimezone(timezone.utc),
        "sponsor_id": identifier("sponsor id", line["advertiser_id"]),
        "event_type": kind, "updated_at": None, **addresses.fields(line.get("ip")), "user_agent": line.get("ua"),
        **_person_keys(addresses.hasher, line_identity(line, "ip")), "order_id": line.get("order_id"), "gross_revenue": value,
        "refunded_amount": Decimal("0.00"), "currency": line.get("currency"), "discount_codes": [],
        "landing_url": line.get("page_url"), "referrer": line.get("referrer"), **utm_fields(line.get("page_url")),
        "vanity_url": None, "payload": payload(minimised(line, PIXEL_FIELDS)), "_batch_id": batch_id,
    }


def parse_vanity(tenant: str, line: dict[str, Any], addresses: Addresses, batch_id: str) -> dict[str, Any]:
    if not line.get("visit_id"):
        raise Invalid("missing_id", "vanity visit without an id")
    if not line.get("ts"):
        raise Invalid("invalid_timestamp", "vanity visit without a time")
    if not line.get("host"):
        raise Invalid("missing_field", "vanity visit without a host")
    url = normalize_vanity(f"{line['host']}{line.get('path') or ''}")
    return {
        "tenant_id": tenant, "source": "vanity", "event_id": str(line["visit_id"]),
        "occurred_at": parse_time(line.get("ts"), "ts").astimezone(timezone.utc),
        "sponsor_id": identifier("sponsor id", line["sponsor_id"]) if line.get("sponsor_id") else "",
        "event_type": "vanity_visit", "updated_at": None, **addresses.fields(line.get("client_ip")),
        "user_agent": line.get("user_agent"), **_person_keys(addresses.hasher, line_identity(line, "client_ip")),
        "order_id": None, "gross_revenue": None,
        "refunded_amount": Decimal("0.00"), "currency": None, "discount_codes": [], "landing_url": f"https://{url}",
        "referrer": line.get("referer"), **utm_fields(None), "vanity_url": url,
        "payload": payload(minimised(line, VANITY_FIELDS)), "_batch_id": batch_id,
    }


def stored_evidence(row: dict[str, Any]) -> dict[str, Any]:
    """Quarantine evidence of a parsed row the database refused: its payload and its keys."""
    return {**row["payload"].obj, **{k: row[k] for k in KEY_COLUMNS if row.get(k) is not None}}


def sync_orders(warehouse: WarehouseResource, shops: ShopSources, secret: bytes, datacenters: list, batch_id: str, stats: LoadStats,
                environ: dict[str, str] | None = None, latest: datetime | None = None) -> None:
    """Each store's orders created or changed since the last sync (the cursor is the newest
    `updated_at` stored; it moves after each page, so an interrupted sync resumes)."""
    policy = ApiPolicy(timeout_seconds=15, max_attempts=5, allow_private_hosts=shops.allow_private_hosts,
                       retry_budget_seconds=60)
    with warehouse.connect(autocommit=True) as conn:
        for shop in shops.stores:
            try:
                _sync_store(conn, shop, shops, policy, secret, datacenters, batch_id, stats, environ, latest)
            except Exception as exc:  # noqa: BLE001 (one store's failure must not lose the other stores' orders)
                stats.failed_sources[f"{shop.tenant_id}/{shop.store}"] = f"{type(exc).__name__}: {str(exc)[:300]}"


def _sync_store(conn: psycopg.Connection, shop: ShopStore, shops: ShopSources, policy: ApiPolicy, secret: bytes,
                datacenters: list, batch_id: str, stats: LoadStats, environ: dict[str, str] | None,
                latest: datetime | None = None) -> None:
    addresses = Addresses(IpHasher.for_tenant(secret, shop.tenant_id), datacenters)
    token = credential_from_env(shop.token_env, environ)
    with ApiClient(shop.base_url, policy, {"X-Shopify-Access-Token": token}) as client:
        try:
            since = read_cursor(conn, shop.tenant_id, "shop_orders", shop.store)
            params: dict[str, Any] | None = {"status": "any", "limit": shops.page_size}
            if since:
                params["updated_at_min"] = since
            link = "/admin/api/2024-10/orders.json"
            while link:
                response = client.get(link, params=params)
                orders = (response.data.get("orders") or []) if isinstance(response.data, dict) else None
                if not isinstance(orders, list):
                    raise ValueError(f"{link}: the response holds no list of orders")
                rows, keys, bad, newest = [], [], [], None
                for order in orders:
                    stats.fetched += 1
                    document = evidence("shop_orders", order, addresses.hasher)
                    key = f"{shop.store}/{document.get('id')}/{document.get('created_at')}"
                    try:
                        if not isinstance(order, dict):
                            raise Invalid("invalid_type", "an order is not an object")
                        row = not_future(parse_record(parse_order, shop.tenant_id, shop.sponsor_id, order, addresses,
                                                      batch_id), latest)
                    except Invalid as exc:
                        bad.append((key, exc, document))
                        continue
                    rows.append(row)
                    keys.append(key)
                    stamp = row["updated_at"].astimezone(timezone.utc).isoformat()
                    newest = max(newest or stamp, stamp)
                with conn.transaction():
                    stats.changed["raw.attribution_events"] += store(
                        conn, "raw.attribution_events", EVENT_COLUMNS, EVENT_KEY, rows,
                        lambda i, exc: bad.append((keys[i], exc, stored_evidence(rows[i]))))
                    for key, exc, document in bad:
                        stats.quarantined[exc.code] += quarantine(conn, shop.tenant_id, "shop_orders", key, exc,
                                                                  document, batch_id)
                    if newest:
                        write_cursor(conn, shop.tenant_id, "shop_orders", shop.store, newest)
                match = NEXT_LINK.search(response.headers.get("link") or "")
                link, params = (match.group(1), None) if match else (None, None)
        finally:
            stats.requests += client.stats.requests


def event_files(landing: Path, settle_seconds: float, now: float | None = None) -> list[tuple[str, str, Path]]:
    """(tenant, kind, path) of every complete pixel/vanity file under `<landing>/<tenant>/`."""
    now = time.time() if now is None else now
    found = []
    if not landing.exists():
        return found
    for tenant_dir in sorted(p for p in landing.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for path in sorted(tenant_dir.iterdir()):
            match = FILE_NAME.match(path.name)
            if not match or not path.is_file() or path.name.endswith(PARTIAL_SUFFIXES):
                continue
            if now - path.stat().st_mtime < settle_seconds:
                continue
            found.append((tenant_dir.name, match.group(1), path))
    return found


PARSERS = {"pixel": parse_pixel, "vanity": parse_vanity}


MAX_RECORD_BYTES = 1 << 20  # a pixel or vanity line longer than this is quarantined (`record_too_large`)
MAX_EVIDENCE_CHARS = 20_000  # of a line that is not JSON, the part read for evidence
BATCH_ROWS = 500             # lines parsed and stored per transaction
_CHUNK = 1 << 16


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def bounded_lines(stream: BinaryIO, limit: int) -> Iterator[tuple[int, bytes | None, int]]:
    """(line number, bytes, size) of each line of a binary stream, holding at most `limit` bytes
    of a line in memory: a longer line is skipped to its end and given as None with its size."""
    line_no = 0
    while line := stream.readline(limit + 1):
        line_no += 1
        if len(line) > limit and not line.endswith(b"\n"):
            size = len(line)
            while rest := stream.readline(_CHUNK):
                size += len(rest)
                if rest.endswith(b"\n"):
                    break
            yield line_no, None, size
            continue
        yield line_no, line, len(line)


def read_lines(path: Path, limit: int = MAX_RECORD_BYTES) -> Iterator[tuple[int, bytes | None, int]]:
    """`bounded_lines` of a JSON-lines file, gzip decompressed as it is read: memory holds one
    line of at most `limit` bytes, whatever the file expands to. Raises EOFError, OSError or
    zlib.error where a gzip stream cannot be read further."""
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as stream:
        yield from bounded_lines(stream, limit)


# Called inside each batch's transaction once its rows are written (tests stop a load there).
OnBatch = Callable[[str], None]


def _no_hook(unit: str) -> None:
    return None


def load_event_file(conn: psycopg.Connection, tenant: str, kind: str, path: Path, file_key: str, digest: str,
                    addresses: Addresses, batch_id: str, stats: LoadStats, on_batch: OnBatch = _no_hook,
                    latest: datetime | None = None) -> None:
    """One pixel/vanity file, in batches of `BATCH_ROWS` lines: a line that cannot be stored is
    quarantined with its reason, and a gzip stream that breaks off is recorded in the ledger as
    refused (`unreadable_file`) after the lines read before the break are stored. The ledger
    row is written last: a load stopped before it is read again whole, which changes nothing
    already stored (rows are upserted, quarantine rows are keyed by file and line)."""
    rows: list[tuple[str, dict[str, Any]]] = []
    bad: list[tuple[str, Invalid, Any]] = []
    totals = {"rows": 0, "bad": 0}

    def refuse(i: int, exc: Invalid) -> None:
        bad.append((rows[i][0], exc, stored_evidence(rows[i][1])))
        totals["rows"] -= 1

    def flush() -> None:
        with conn.transaction():
            totals["rows"] += len(rows)
            stats.changed["raw.attribution_events"] += store(conn, "raw.attribution_events", EVENT_COLUMNS,
                                                             EVENT_KEY, [row for _, row in rows], refuse)
            for key, exc, document in bad:
                stats.quarantined[exc.code] += quarantine(conn, tenant, kind, key, exc, document, batch_id)
            on_batch(file_key)
        totals["bad"] += len(bad)
        rows.clear()
        bad.clear()

    refused = None
    line_no = 0
    try:
        for line_no, line, size in read_lines(path):
            if line is None:
                bad.append((f"{file_key}:{line_no}", Invalid("record_too_large", f"line {line_no} holds {size} bytes "
                                                             f"(at most {MAX_RECORD_BYTES})"), {"bytes": size}))
            elif line.strip():
                text = line.decode("utf-8", errors="replace")
                record: Any = None
                try:
                    try:
                        record = json.loads(text)
                    except (ValueError, RecursionError):
                        raise Invalid("invalid_json", f"line {line_no} is not JSON") from None
                    if not isinstance(record, dict):
                        raise Invalid("invalid_json", f"line {line_no} is not an object")
                    rows.append((f"{file_key}:{line_no}", not_future(
                        parse_record(PARSERS[kind], tenant, record, addresses, batch_id), latest)))
                except Invalid as exc:
                    document = evidence(kind, record, addresses.hasher) if isinstance(record, dict) \
                        else torn_evidence(kind, text[:MAX_EVIDENCE_CHARS], addresses.hasher)
                    bad.append((f"{file_key}:{line_no}", exc, document))
            if len(rows) + len(bad) >= BATCH_ROWS:
                flush()
    except (EOFError, OSError, zlib.error) as exc:
        refused = Invalid("unreadable_file", f"{type(exc).__name__} after line {line_no}: {str(exc)[:200]}")
    flush()
    with conn.transaction():
        if refused is not None:
            stats.quarantined[refused.code] += quarantine(conn, tenant, kind, file_key, refused,
                                                          {"file": path.name, "lines_read": line_no}, batch_id)
        record_file(conn, file_key, kind, tenant, digest, totals["rows"], totals["bad"], batch_id, refused)
    stats.fetched += totals["rows"]
    stats.files_loaded += 1


def load_event_files(warehouse: WarehouseResource, landing: Path, secret: bytes, datacenters: list, batch_id: str, stats: LoadStats,
                     settle_seconds: float = 0.0, on_batch: OnBatch = _no_hook, latest: datetime | None = None) -> None:
    with warehouse.connect(autocommit=True) as conn:
        refused_tenants = set()
        for tenant, kind, path in event_files(landing, settle_seconds):
            if not is_valid_identifier(tenant):
                if tenant not in refused_tenants:
                    refused_tenants.add(tenant)
                    stats.quarantined["invalid_identifier"] += quarantine(
                        conn, tenant, kind, tenant, Invalid("invalid_identifier", f"tenant folder {tenant!r} is not "
                                                            "a plain identifier"), {"folder": tenant}, batch_id)
                continue
            digest = file_digest(path)
            file_key = f"{kind}/{tenant}/{path.name}"
            if file_loaded(conn, file_key, digest):
                stats.files_unchanged += 1
                continue
            addresses = Addresses(IpHasher.for_tenant(secret, tenant), datacenters)
            load_event_file(conn, tenant, kind, path, file_key, digest, addresses, batch_id, stats, on_batch, latest)


def sync_conversions(warehouse: WarehouseResource, sources: CampaignSources, landing: Path | None, secret: bytes, datacenters: list,
                     batch_id: str, environ: dict[str, str] | None = None, settle_seconds: float = 0.0,
                     on_batch: OnBatch = _no_hook, now: datetime | None = None) -> LoadStats:
    """Shop orders and pixel/vanity files; an event later than the load's time (`now`, default
    the clock) plus `PODCAST_FUTURE_TOLERANCE` is quarantined as `future_timestamp`."""
    stats = LoadStats()
    ensure_campaign_tables(warehouse)
    latest = get_settings().latest_event_time(now)
    if sources.shops is not None:
        sync_orders(warehouse, sources.shops, secret, datacenters, batch_id, stats, environ, latest)
    if landing is not None:
        load_event_files(warehouse, landing, secret, datacenters, batch_id, stats, settle_seconds, on_batch, latest)
    return stats

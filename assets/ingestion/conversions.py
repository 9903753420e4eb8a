"""Conversion events into `raw.attribution_events`: shop orders from each sponsor's shop API
(incremental on `updated_at_min`, cursor pages through the `Link` header; edits and refunds
update the order's row), and pixel events and vanity-URL visits from JSON-lines files
(`<landing>/<tenant>/pixel-*.jsonl[.gz]`, `vanity-*.jsonl[.gz]`) recorded in a file ledger so a
file is read once per version.

Client addresses are stored only as keyed hashes with the tenant's salt (`IpHasher`, the same
as the access logs), so a buyer's household matches the listener's. Records that cannot be
stored go to `quarantine.campaign_records` with the reason.
"""

from __future__ import annotations

import gzip
import hashlib
import ipaddress
import json
import re
import time
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg

from assets.ingestion.campaign_store import (
    Invalid, ensure_campaign_tables, file_loaded, payload, quarantine, read_cursor, record_file, upsert, write_cursor,
)
from assets.ingestion.campaigns import CampaignSources, LoadStats, ShopSources, normalize_vanity, parse_money, parse_time
from assets.ingestion.listener_logs_parse import IpHasher
from resources.platform_http import ApiClient, ApiPolicy, credential_from_env

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


def _redacted(document: dict[str, Any], *keys: str) -> dict[str, Any]:
    """The record as kept in `payload`: no clear client address, no clear customer id."""
    out = {k: v for k, v in document.items() if k not in keys}
    if isinstance(out.get("client_details"), dict):
        out["client_details"] = {k: v for k, v in out["client_details"].items() if k != "browser_ip"}
    return out


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
    customer = (order.get("customer") or {}).get("id")
    return {
        "tenant_id": tenant, "source": "shop_orders", "event_id": str(order["id"]),
        "occurred_at": created.astimezone(timezone.utc), "sponsor_id": sponsor_id, "event_type": "order",
        "updated_at": parse_time(order["updated_at"], "updated_at") if order.get("updated_at") else created,
        **addresses.fields(order.get("browser_ip") or client.get("browser_ip")),
        "user_agent": client.get("user_agent"),
        "customer_key": addresses.hasher.digest(f"customer:{customer}") if customer is not None else None,
        "order_id": str(order.get("name") or order["id"]), "gross_revenue": total, "refunded_amount": refunded,
        "currency": order.get("currency"),
        "discount_codes": [d["code"].strip() for d in order.get("discount_codes") or [] if d.get("code")],
        "landing_url": landing, "referrer": order.get("referring_site") or None, **utm_fields(landing),
        "vanity_url": None, "payload": payload(_redacted(order, "browser_ip", "customer")), "_batch_id": batch_id,
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
        "occurred_at": parse_time(line.get("ts"), "ts").astimezone(timezone.utc), "sponsor_id": str(line["advertiser_id"]),
        "event_type": kind, "updated_at": None, **addresses.fields(line.get("ip")), "user_agent": line.get("ua"),
        "customer_key": None, "order_id": line.get("order_id"), "gross_revenue": value,
        "refunded_amount": Decimal("0.00"), "currency": line.get("currency"), "discount_codes": [],
        "landing_url": line.get("page_url"), "referrer": line.get("referrer"), **utm_fields(line.get("page_url")),
        "vanity_url": None, "payload": payload(_redacted(line, "ip")), "_batch_id": batch_id,
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
        "occurred_at": parse_time(line.get("ts"), "ts").astimezone(timezone.utc), "sponsor_id": str(line.get("sponsor_id") or ""),
        "event_type": "vanity_visit", "updated_at": None, **addresses.fields(line.get("client_ip")),
        "user_agent": line.get("user_agent"), "customer_key": None, "order_id": None, "gross_revenue": None,
        "refunded_amount": Decimal("0.00"), "currency": None, "discount_codes": [], "landing_url": f"https://{url}",
        "referrer": line.get("referer"), **utm_fields(None), "vanity_url": url,
        "payload": payload(_redacted(line, "client_ip")), "_batch_id": batch_id,
    }


def sync_orders(url: str, shops: ShopSources, secret: bytes, datacenters: list, batch_id: str, stats: LoadStats,
                environ: dict[str, str] | None = None) -> None:
    """Each store's orders created or changed since the last sync (the cursor is the newest
    `updated_at` stored; it moves after each page, so an interrupted sync resumes)."""
    policy = ApiPolicy(timeout_seconds=15, max_attempts=5, allow_private_hosts=shops.allow_private_hosts,
                       retry_budget_seconds=60)
    with psycopg.connect(url, autocommit=True) as conn:
        for store in shops.stores:
            addresses = Addresses(IpHasher.for_tenant(secret, store.tenant_id), datacenters)
            token = credential_from_env(store.token_env, environ)
            with ApiClient(store.base_url, policy, {"X-Shopify-Access-Token": token}) as client:
                since = read_cursor(conn, store.tenant_id, "shop_orders", store.store)
                params: dict[str, Any] | None = {"status": "any", "limit": shops.page_size}
                if since:
                    params["updated_at_min"] = since
                link = "/admin/api/2024-10/orders.json"
                while link:
                    response = client.get(link, params=params)
                    rows, newest = [], None
                    for order in response.data.get("orders") or []:
                        stats.fetched += 1
                        try:
                            row = parse_order(store.tenant_id, store.sponsor_id, order, addresses, batch_id)
                        except Invalid as exc:
                            key = f"{store.store}/{order.get('id')}/{order.get('created_at')}"
                            stats.quarantined[exc.code] += quarantine(
                                conn, store.tenant_id, "shop_orders", key, exc,
                                _redacted(order, "browser_ip", "customer"), batch_id)
                            continue
                        rows.append(row)
                        stamp = row["updated_at"].astimezone(timezone.utc).isoformat()
                        newest = max(newest or stamp, stamp)
                    with conn.transaction():
                        stats.changed["raw.attribution_events"] += upsert(conn, "raw.attribution_events", EVENT_KEY, rows)
                        if newest:
                            write_cursor(conn, store.tenant_id, "shop_orders", store.store, newest)
                    match = NEXT_LINK.search(response.headers.get("link") or "")
                    link, params = (match.group(1), None) if match else (None, None)
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


def load_event_files(url: str, landing: Path, secret: bytes, datacenters: list, batch_id: str, stats: LoadStats,
                     settle_seconds: float = 0.0) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for tenant, kind, path in event_files(landing, settle_seconds):
            data = path.read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            file_key = f"{kind}/{tenant}/{path.name}"
            if file_loaded(conn, file_key, digest):
                stats.files_unchanged += 1
                continue
            try:
                text = (gzip.decompress(data) if path.name.endswith(".gz") else data).decode("utf-8", errors="replace")
            except (EOFError, OSError, zlib.error):
                continue  # cut short while being written: a later run takes it
            addresses = Addresses(IpHasher.for_tenant(secret, tenant), datacenters)
            rows, bad = [], 0
            with conn.transaction():
                for line_no, line in enumerate(text.splitlines(), start=1):
                    if not line.strip():
                        continue
                    record: Any = {"line": line[:2000]}
                    try:
                        try:
                            record = json.loads(line)
                        except ValueError:
                            raise Invalid("invalid_json", f"line {line_no} is not JSON") from None
                        if not isinstance(record, dict):
                            raise Invalid("invalid_json", f"line {line_no} is not an object")
                        rows.append(PARSERS[kind](tenant, record, addresses, batch_id))
                    except Invalid as exc:
                        bad += 1
                        document = _redacted(record, "ip", "client_ip") if isinstance(record, dict) and "line" not in record \
                            else {"line": addresses.hasher.redact(line[:2000])}
                        stats.quarantined[exc.code] += quarantine(conn, tenant, kind, f"{file_key}:{line_no}", exc,
                                                                  document, batch_id)
                stats.changed["raw.attribution_events"] += upsert(conn, "raw.attribution_events", EVENT_KEY, rows)
                record_file(conn, file_key, kind, tenant, digest, len(rows), bad, batch_id)
            stats.fetched += len(rows)
            stats.files_loaded += 1


def sync_conversions(url: str, sources: CampaignSources, landing: Path | None, secret: bytes, datacenters: list,
                     batch_id: str, environ: dict[str, str] | None = None, settle_seconds: float = 0.0) -> LoadStats:
    stats = LoadStats()
    ensure_campaign_tables(url)
    if sources.shops is not None:
        sync_orders(url, sources.shops, secret, datacenters, batch_id, stats, environ)
    if landing is not None:
        load_event_files(url, landing, secret, datacenters, batch_id, stats, settle_seconds)
    return stats

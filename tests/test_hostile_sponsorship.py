"""Hostile and faulty sponsorship inputs, generated here and run through the real assets: every
bad record is quarantined with its reason, every unreadable file is refused in the ledger with
its reason, and the other records, files and tenants of the same run are stored; a re-run
changes nothing. Then each loader (conversion files, insertion orders, a platform sync) is
killed with SIGKILL part-way in a subprocess and run again: rows stored plus records quarantined
equal the input, nothing twice."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import threading
from datetime import date
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import pytest
import yaml
from psycopg import sql
from pydantic import ValidationError

from assets.ingestion.campaigns import MAX_IO_ROWS, load_campaign_sources, sync_campaigns
from assets.ingestion.conversions import MAX_RECORD_BYTES, sync_conversions
from assets.ingestion.platforms.sync import PlatformSources, load_platform_sources, sync_platform
from assets.ingestion.sponsorship_assets import SPONSORSHIP_ASSETS
from resources import settings as settings_module
from resources.warehouse import WarehouseResource, warehouse_at
from simulator.platforms import platform_sources
from tests.conftest import REPO_ROOT, query

SECRET = "hostile-test-secret"
SPONSOR = "sp-acme"


def pixel(n: int, **changes) -> dict:
    line = {"event_id": f"ev-{n}", "advertiser_id": SPONSOR, "event": "purchase", "ts": "2026-11-03T10:00:00Z",
            "ip": "203.0.113.5", "ua": "Mozilla/5.0", "value": "12.50", "currency": "USD",
            "page_url": "https://shop.example/p?utm_campaign=acme"}
    line.update(changes)
    return {k: v for k, v in line.items() if v is not ...}


# Hostile pixel lines (the text of the line) and the reason each is quarantined with.
HOSTILE_PIXELS = [
    (json.dumps(pixel(900, ua="Mozi\x00lla")), "invalid_text"),
    (json.dumps(pixel(901, ua={"name": "Mozilla"})), "invalid_type"),
    (json.dumps(pixel(902, currency=["USD"])), "invalid_type"),
    (json.dumps(pixel(903, advertiser_id="../../x")), "invalid_identifier"),
    (json.dumps(pixel(904, event_id=...)), "missing_id"),
    (json.dumps(pixel(905, ts="2026-13-45T25:00:00Z")), "invalid_timestamp"),
    (json.dumps(pixel(906, value=float("nan"))), "invalid_number"),        # `NaN`, as Python writes it
    (json.dumps(pixel(907, value="Infinity")), "invalid_number"),
    (json.dumps(pixel(908, value=1e20)), "rejected_by_database"),          # over numeric(14, 2)
    (json.dumps(pixel(909, page_url=5)), "invalid_record"),
    ('{"event_id": "ev-910", "advertiser_id"', "invalid_json"),
    (json.dumps([pixel(911)]), "invalid_json"),
    ("[" * 100_000, "invalid_json"),                                       # nesting deeper than the parser goes
    (json.dumps(pixel(912, ua="x" * (MAX_RECORD_BYTES + 10))), "record_too_large"),
    (json.dumps(pixel(913, ts="2099-01-01T00:00:00Z")), "future_timestamp"),   # after load time + tolerance
]


def write_jsonl(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = ("\n".join(lines) + "\n").encode()
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)


def insertion_order(campaign_id: str, placements: list[list[str]], **fields) -> str:
    head = {"Advertiser": "Acme", "Advertiser ID": SPONSOR, "Campaign ID": campaign_id, "Campaign": "Fall push",
            "Flight Start": "2026-11-01", "Flight End": "2026-11-30", "Budget": "$10,000", "Pricing": "Flat",
            "Flat Fee": "10000", "Promo Codes": "ACME10", **fields}
    rows = [[k, v] for k, v in head.items()]
    rows.append(["Placement ID", "Feed URL", "Episode GUID", "Position", "Insertion", "Start", "End", "Ad Offset s",
                 "Ad Length s"])
    rows += placements
    return "\n".join(",".join(f'"{c}"' for c in row) for row in rows) + "\n"


def placement(pid: str, feed: str = "https://feeds.example/show.xml", offset: str = "0") -> list[str]:
    return [pid, feed, "", "Pre-roll", "Dynamic", "2026-11-01", "2026-11-30", offset, "30"]


# -- the sponsorship API: a loopback server serving hostile records ---------------------------

def api_records(tenant: str) -> dict[str, list]:
    campaign = {"id": f"cmp-{tenant}-api", "sponsor_id": f"sp-{tenant}-api", "name": "API campaign",
                "budget": {"amount": "5000.00", "currency": "USD"}, "flight": {"start": "2026-11-01", "end": "2026-11-30"},
                "pricing": {"model": "flat_fee", "flat_fee": "5000"}, "promo_codes": ["API5"],
                "updated_at": "2026-11-01T00:00:00Z"}
    return {
        "sponsors": [
            {"id": f"sp-{tenant}-api", "name": "API sponsor", "updated_at": "2026-11-01T00:00:00Z"},
            {"id": "../../etc", "name": "Traversal"},
            {"id": f"sp-{tenant}-obj", "name": {"en": "Object"}},
            "not an object",
        ],
        "campaigns": [
            campaign,
            {**campaign, "id": f"cmp-{tenant}-num", "promo_codes": [5]},
            {**campaign, "id": f"cmp-{tenant}-dict", "promo_codes": {"code": "X"}},
            {**campaign, "id": f"cmp-{tenant}-nul", "name": "Fall\x00push"},
            {**campaign, "id": f"cmp-{tenant}-noname", "name": None},
            {**campaign, "id": f"cmp-{tenant}-ts", "updated_at": "yesterday"},
            {**campaign, "id": f"cmp-{tenant}-inf", "budget": {"amount": "Infinity"}},
            {**campaign, "id": "../../x"},
        ],
        "placements": [
            {"id": f"pl-{tenant}-api", "campaign_id": f"cmp-{tenant}-api", "show": {"feed_url": "https://feeds.example/a.xml"},
             "position": "mid", "insertion": "dynamic", "start_date": "2026-11-01", "end_date": "2026-11-30",
             "ad": {"offset_seconds": 600, "duration_seconds": 60}},
            {"id": "../x", "campaign_id": f"cmp-{tenant}-api", "show": {"feed_url": "https://feeds.example/a.xml"},
             "position": "mid", "insertion": "dynamic", "start_date": "2026-11-01", "end_date": "2026-11-30",
             "ad": {"offset_seconds": 600, "duration_seconds": 60}},
        ],
    }


API_REASONS = {"sponsors": ["invalid_identifier", "invalid_type", "invalid_type"],
               "campaigns": ["invalid_type", "invalid_type", "invalid_text", "missing_field", "invalid_timestamp",
                             "invalid_number", "invalid_identifier"],
               "placements": ["invalid_identifier"]}


def shop_orders() -> list:
    order = {"id": 1001, "name": "#1001", "created_at": "2026-11-03T10:00:00-05:00", "updated_at": "2026-11-03T10:00:00-05:00",
             "total_price": "40.00", "currency": "USD", "discount_codes": [{"code": "ACME10"}],
             "client_details": {"browser_ip": "203.0.113.5", "user_agent": "Mozilla/5.0"}, "customer": {"id": 7}}
    return [order,
            {**order, "id": 1002, "discount_codes": [{"code": 10}]},        # a number where a code is text
            {**order, "id": 1003, "currency": "US\x00D"},
            {**order, "id": 1004, "total_price": "NaN"},
            {**order, "id": 1005, "created_at": "03/11/2026"},
            {**order, "id": 1006, "created_at": "2099-01-01T00:00:00Z"},   # after load time + tolerance
            ["not", "an", "order"]]


SHOP_REASONS = ["future_timestamp", "invalid_number", "invalid_record", "invalid_text", "invalid_timestamp", "invalid_type"]


class SponsorshipApi(BaseHTTPRequestHandler):
    """The sponsorship API and a shop. `good` is the token of tenant `hq` and of the second shop;
    `broken` is refused (401, an HTML page: a final error, not retried)."""

    def do_GET(self):  # noqa: N802 (the standard library's name)
        stream = self.path.split("?")[0].strip("/")
        token = self.headers.get("Authorization") or self.headers.get("X-Shopify-Access-Token", "")
        status = 200
        if token.removeprefix("Bearer ") == "broken":
            status, body = 401, b"<html>token revoked</html>"
        elif stream.endswith("orders.json"):
            body = json.dumps({"orders": shop_orders()}).encode()
        else:
            body = json.dumps({"data": api_records("hq")[stream], "next_cursor": None}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        return None


@pytest.fixture(scope="module")
def api_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), SponsorshipApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, new_warehouse, api_url):
    """One warehouse, after two runs of both sponsorship assets over the hostile inputs."""
    root = tmp_path_factory.mktemp("hostile")
    landing, io = root / "conversions", root / "io"
    good = [json.dumps(pixel(n)) for n in range(40)]
    # The hostile lines first, then valid ones: the lines after a bad one are read.
    write_jsonl(landing / "hq" / "pixel-a-hostile.jsonl", [line for line, _ in HOSTILE_PIXELS]
                + [json.dumps(pixel(n)) for n in range(40, 60)])
    write_jsonl(landing / "hq" / "pixel-b-after.jsonl", good)
    whole = gzip.compress(("\n".join(json.dumps(pixel(n)) for n in range(100, 400)) + "\n").encode())
    (landing / "hq" / "pixel-c-truncated.jsonl.gz").write_bytes(whole[: len(whole) * 2 // 3])
    (landing / "hq" / "pixel-d-not-gzip.jsonl.gz").write_bytes(b'{"event_id": "plain text under a .gz name"}\n')
    write_jsonl(landing / "other" / "vanity-a.jsonl", [json.dumps(
        {"visit_id": f"v-{n}", "sponsor_id": SPONSOR, "ts": "2026-11-03T10:00:00Z", "host": "acme.fm", "path": "/pod",
         "client_ip": "198.51.100.7"}) for n in range(10)])
    write_jsonl(landing / "bad tenant!" / "pixel-a.jsonl", good[:3])

    (io / "hq").mkdir(parents=True)
    (io / "hq" / "IO_a_good.csv").write_text(insertion_order("cmp-good", [placement("pl-g1"), placement("pl-g2")]))
    (io / "hq" / "IO_b_traversal.csv").write_text(insertion_order("../../x", [placement("pl-t1")]))
    (io / "hq" / "IO_c_nul.csv").write_text(insertion_order("cmp-nul", [placement("pl-n1")], Campaign="Fall\x00push"))
    (io / "hq" / "IO_d_nan.csv").write_text(insertion_order("cmp-nan", [], Budget="NaN"))
    (io / "hq" / "IO_e_rows.csv").write_text(insertion_order("cmp-rows", [
        placement("pl-r1"), placement(".."), placement("pl-r3", feed="https://x\x00y"), placement("pl-r4", offset="abc"),
        placement("pl-r5")]))
    (io / "hq" / "IO_f_broken.xlsx").write_bytes(b"PK\x03\x04 this is not a workbook")
    (io / "hq" / "IO_h_field.csv").write_text(insertion_order("cmp-field", [], Website="x" * 200_000))  # over csv's field limit
    (io / "hq" / "IO_g_long.csv").write_text(insertion_order("cmp-long", [placement(f"pl-l{n}") for n in range(MAX_IO_ROWS)]))
    (io / "bad tenant!").mkdir()
    (io / "bad tenant!" / "IO_x.csv").write_text(insertion_order("cmp-x", []))

    (root / "sources.yaml").write_text(yaml.safe_dump({
        "sponsorships": {"base_url": api_url, "allow_private_hosts": True,
                         "tenants": [{"tenant_id": "hq", "token_env": "HOSTILE_API_TOKEN_HQ"},
                                     {"tenant_id": "down", "token_env": "HOSTILE_API_TOKEN_DOWN"}]},
        "shops": {"allow_private_hosts": True, "stores": [
            {"tenant_id": "down", "sponsor_id": SPONSOR, "store": "broken-shop", "base_url": api_url,
             "token_env": "HOSTILE_API_TOKEN_DOWN"},
            {"tenant_id": "hq", "sponsor_id": SPONSOR, "store": "acme-shop", "base_url": api_url,
             "token_env": "HOSTILE_API_TOKEN_HQ"}]}}))
    url = new_warehouse("t_hostile")
    runs = []
    with pytest.MonkeyPatch.context() as env:
        for name, value in {"PODCAST_SOURCES_FILE": root / "sources.yaml", "PODCAST_INSERTION_ORDER_DIR": io,
                            "PODCAST_CONVERSION_LANDING_DIR": landing, "PODCAST_LOG_SETTLE_SECONDS": 0,
                            "PODCAST_IP_HASH_SECRET": SECRET, "HOSTILE_API_TOKEN_HQ": "good",
                            "HOSTILE_API_TOKEN_DOWN": "broken"}.items():
            env.setenv(name, str(value))
        settings_module.get_settings.cache_clear()
        try:
            for _ in range(2):
                result = dg.materialize(SPONSORSHIP_ASSETS, resources={"warehouse": WarehouseResource(database_url=url)},
                                        raise_on_error=False)
                runs.append({"result": result, "snapshot": snapshot(url)})
        finally:
            settings_module.get_settings.cache_clear()
    return {"url": url, "runs": runs}


def snapshot(url: str) -> dict[str, list]:
    return {
        "events": query(url, "select tenant_id, source, event_id, gross_revenue, user_agent, xmin::text "
                             "from raw.attribution_events order by 1, 2, 3"),
        "quarantine": query(url, "select tenant_id, source, record_key, reason_code from quarantine.campaign_records "
                                 "order by 1, 2, 3, 4"),
        "campaigns": query(url, "select campaign_id, xmin::text from raw.campaigns order by 1"),
        "placements": query(url, "select placement_id, campaign_id from raw.placements order by 1"),
        "sponsors": query(url, "select sponsor_id from raw.sponsors order by 1"),
        "files": query(url, "select file_key, rows, quarantined, refused_reason from ops.campaign_files order by 1"),
    }


def reasons(url: str, source: str, prefix: str) -> dict[str, str]:
    return dict(query(url, "select record_key, reason_code from quarantine.campaign_records "
                           "where source = %s and record_key like %s", (source, prefix + "%")))


def test_each_hostile_pixel_line_is_quarantined_with_its_reason_and_the_rest_is_stored(hostile):
    url = hostile["url"]
    got = reasons(url, "pixel", "pixel/hq/pixel-a-hostile.jsonl:")
    expected = {f"pixel/hq/pixel-a-hostile.jsonl:{n}": reason for n, (_, reason) in enumerate(HOSTILE_PIXELS, start=1)}
    assert got == expected
    # The valid lines after the hostile ones in the same file, and the later files, are stored.
    stored = {r[0] for r in query(url, "select event_id from raw.attribution_events where tenant_id = 'hq'")}
    assert {f"ev-{n}" for n in range(60)} <= stored
    assert not stored & {f"ev-{n}" for n in range(900, 914)}
    assert query(url, "select count(*) from raw.attribution_events where tenant_id = 'other' and source = 'vanity'") == [(10,)]
    # The quarantined NUL line is kept as evidence (the NUL shown as U+FFFD), without the address.
    evidence = query(url, "select payload from quarantine.campaign_records where record_key = %s",
                     ("pixel/hq/pixel-a-hostile.jsonl:1",))[0][0]
    assert evidence["ua"] == "Mozi\ufffdlla" and "ip" not in evidence
    files = {r[0]: r[1:] for r in hostile["runs"][0]["snapshot"]["files"]}
    assert files["pixel/hq/pixel-a-hostile.jsonl"] == (20, len(HOSTILE_PIXELS), None)
    assert files["pixel/hq/pixel-b-after.jsonl"] == (40, 0, None)


def test_unreadable_gzip_is_refused_in_the_ledger_after_the_lines_before_the_break(hostile):
    url = hostile["url"]
    files = {r[0]: r[1:] for r in hostile["runs"][0]["snapshot"]["files"]}
    rows, bad, reason = files["pixel/hq/pixel-c-truncated.jsonl.gz"]
    assert reason == "unreadable_file" and 0 < rows < 300 and bad <= 1
    stored = query(url, "select count(*) from raw.attribution_events where event_id like 'ev-1__' or event_id like 'ev-2__' "
                        "or event_id like 'ev-3__'")[0][0]
    assert stored == rows
    assert files["pixel/hq/pixel-d-not-gzip.jsonl.gz"] == (0, 0, "unreadable_file")
    assert reasons(url, "pixel", "pixel/hq/pixel-d") == {"pixel/hq/pixel-d-not-gzip.jsonl.gz": "unreadable_file"}


def test_a_tenant_folder_that_is_not_an_identifier_is_quarantined_unread(hostile):
    url = hostile["url"]
    assert query(url, "select source, reason_code from quarantine.campaign_records where tenant_id = 'bad tenant!' "
                      "order by 1") == [("insertion_order", "invalid_identifier"), ("pixel", "invalid_identifier")]
    assert query(url, "select count(*) from raw.attribution_events where tenant_id = 'bad tenant!'") == [(0,)]
    assert query(url, "select count(*) from raw.campaigns where campaign_id = 'cmp-x'") == [(0,)]


def test_hostile_insertion_orders_are_refused_per_file_and_per_row(hostile):
    url = hostile["url"]
    assert reasons(url, "insertion_order", "IO_") == {
        "IO_b_traversal.csv:campaign": "invalid_identifier",
        "IO_c_nul.csv:campaign": "invalid_text",
        "IO_d_nan.csv:campaign": "invalid_number",
        "IO_e_rows.csv:row13": "invalid_identifier",
        "IO_e_rows.csv:row14": "invalid_text",
        "IO_e_rows.csv:row15": "invalid_number",
        "IO_f_broken.xlsx": "unreadable_file",
        "IO_g_long.csv": "file_too_large",
        "IO_h_field.csv": "unreadable_file",
    }
    campaigns = {r[0] for r in query(url, "select campaign_id from raw.campaigns where _source = 'insertion_order'")}
    assert campaigns == {"cmp-good", "cmp-rows"}
    assert query(url, "select placement_id from raw.placements where _source = 'insertion_order' order by 1") == [
        ("pl-g1",), ("pl-g2",), ("pl-r1",), ("pl-r5",)]
    files = {r[0]: r[1:] for r in hostile["runs"][0]["snapshot"]["files"]}
    assert files["insertion_order/hq/IO_e_rows.csv"] == (3, 3, None)
    assert files["insertion_order/hq/IO_f_broken.xlsx"] == (0, 1, "unreadable_file")


def test_hostile_api_records_are_quarantined_and_a_broken_tenant_fails_alone(hostile):
    url = hostile["url"]
    for stream, expected in API_REASONS.items():
        got = query(url, "select reason_code from quarantine.campaign_records where source = 'sponsorship_api' "
                         "and record_key like %s order by reason_code", (stream + "/%",))
        assert [r[0] for r in got] == sorted(expected), stream
    assert query(url, "select sponsor_id from raw.sponsors where _source = 'sponsorship_api'") == [("sp-hq-api",)]
    assert query(url, "select campaign_id, promo_codes from raw.campaigns where _source = 'sponsorship_api'") == [
        ("cmp-hq-api", ["API5"])]
    assert query(url, "select placement_id from raw.placements where _source = 'sponsorship_api'") == [("pl-hq-api",)]
    # Tenant `down`'s token is refused: the campaign step fails naming it, after storing tenant hq
    # and the insertion orders.
    result = hostile["runs"][0]["result"]
    assert not result.success
    failures = {e.step_key: e.event_specific_data.error.message for e in result.all_events
                if e.event_type_value == "STEP_FAILURE"}
    assert "1 source(s) failed to sync: down/sponsorship_api: " in failures["sponsorship_campaigns"]


def test_hostile_shop_orders_are_quarantined_and_a_broken_shop_fails_alone(hostile):
    url = hostile["url"]
    got = query(url, "select reason_code from quarantine.campaign_records where source = 'shop_orders' order by 1")
    assert [r[0] for r in got] == SHOP_REASONS
    assert query(url, "select event_id, gross_revenue, discount_codes from raw.attribution_events "
                      "where source = 'shop_orders'") == [("1001", Decimal("40.00"), ["ACME10"])]
    # The shop listed first refuses its token: the conversion step fails naming it, after the other
    # shop's orders and every pixel file are stored.
    failures = {e.step_key: e.event_specific_data.error.message for e in hostile["runs"][0]["result"].all_events
                if e.event_type_value == "STEP_FAILURE"}
    assert "1 source(s) failed to sync: down/broken-shop: " in failures["conversion_events"]


def test_a_rerun_on_the_same_input_changes_nothing(hostile):
    first, second = (run["snapshot"] for run in hostile["runs"])
    assert first == second  # the same rows, untouched (xmin), the same quarantine and ledger
    materialized = [e for e in hostile["runs"][1]["result"].all_events if e.event_type_value == "ASSET_MATERIALIZATION"]
    events = next(e for e in materialized if e.asset_key == dg.AssetKey(["raw", "attribution_events"]))
    metadata = events.event_specific_data.materialization.metadata
    assert metadata["changed_this_run"].value == 0 and metadata["files_loaded"].value == 0


def test_ids_in_sources_yaml_must_be_identifiers(tmp_path):
    bad = tmp_path / "sources.yaml"
    bad.write_text(yaml.safe_dump({"sponsorships": {"base_url": "http://x", "tenants": [
        {"tenant_id": "../../etc", "token_env": "T"}]}}))
    with pytest.raises(ValidationError, match="invalid tenant id '../../etc'"):
        load_campaign_sources(bad)
    bad.write_text(yaml.safe_dump({"shops": {"stores": [
        {"tenant_id": "hq", "sponsor_id": "a/b", "store": "s", "base_url": "http://x", "token_env": "T"}]}}))
    with pytest.raises(ValidationError, match="invalid sponsor id 'a/b'"):
        load_campaign_sources(bad)
    bad.write_text(yaml.safe_dump({"platforms": {"buzzsprout": {"base_url": "http://x", "shows": [
        {"tenant_id": "t 1", "podcast_id": 1, "token_env": "T"}]}}}))
    with pytest.raises(ValidationError, match="invalid tenant id 't 1'"):
        load_platform_sources(bad)


# -- kill and re-run ----------------------------------------------------------------------------

KILLER = """
import json, os, signal, sys
args = json.loads(sys.argv[1])
calls = {"n": 0}
def stop(*_):
    calls["n"] += 1
    if calls["n"] >= args["kill_at"]:
        os.kill(os.getpid(), signal.SIGKILL)
"""


def run_killed(body: str, **args) -> subprocess.CompletedProcess:
    """Run `body` (which calls a loader with the hook `stop`) in a new Python process, which
    kills itself with SIGKILL at the `kill_at`-th call of the hook."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run([sys.executable, "-c", KILLER + body, json.dumps(args, default=str)], env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == -signal.SIGKILL, result.stderr[-2000:]
    return result


def test_a_killed_conversion_load_rerun_stores_every_line_once(new_warehouse, tmp_path):
    url = new_warehouse("t_kill")
    landing = tmp_path / "conversions"
    lines = [json.dumps(pixel(n)) for n in range(300)]
    for n in range(0, 300, 25):
        lines[n] = json.dumps(pixel(n, ts="not a time"))
    write_jsonl(landing / "hq" / "pixel-1.jsonl", lines[:150])
    write_jsonl(landing / "hq" / "pixel-2.jsonl.gz", lines[150:])
    run_killed("""
from assets.ingestion import conversions
from assets.ingestion.campaigns import CampaignSources
from resources.warehouse import warehouse_at
conversions.BATCH_ROWS = 40
conversions.sync_conversions(warehouse_at(args["url"]), CampaignSources(), __import__("pathlib").Path(args["landing"]),
                             b"k", [], "killed", on_batch=stop)
""", url=url, landing=landing, kill_at=6)
    # Killed inside the sixth batch: the first file (four batches) and one batch of the second
    # (190 lines) stored, the second file not in the ledger.
    assert query(url, "select count(*) from raw.attribution_events")[0][0] + \
        query(url, "select count(*) from quarantine.campaign_records")[0][0] == 190
    assert query(url, "select file_key from ops.campaign_files") == [("pixel/hq/pixel-1.jsonl",)]

    stats = sync_conversions(warehouse_at(url), load_campaign_sources(tmp_path / "none.yaml"), landing, b"k", [], "rerun")
    assert stats.files_loaded == 1 and stats.files_unchanged == 1
    events = query(url, "select count(*), count(distinct event_id) from raw.attribution_events")[0]
    quarantined = query(url, "select count(*), count(distinct record_key) from quarantine.campaign_records")[0]
    assert events == (288, 288) and quarantined == (12, 12)
    assert events[0] + quarantined[0] == len(lines)


def test_a_killed_insertion_order_load_rerun_stores_every_file_once(new_warehouse, tmp_path):
    url = new_warehouse("t_kill")
    io = tmp_path / "io"
    (io / "hq").mkdir(parents=True)
    for n in range(8):
        rows = [placement(f"pl-{n}-{k}") for k in range(25)] + [placement(f"pl-{n}-bad", offset="x")]
        (io / "hq" / f"IO_{n}.csv").write_text(insertion_order(f"cmp-{n}", rows))
    run_killed("""
from assets.ingestion.campaigns import CampaignSources, sync_campaigns
from resources.warehouse import warehouse_at
sync_campaigns(warehouse_at(args["url"]), CampaignSources(), __import__("pathlib").Path(args["io"]), "killed", on_unit=stop)
""", url=url, io=io, kill_at=4)
    assert query(url, "select count(*) from raw.campaigns") == [(3,)]
    assert query(url, "select count(*) from ops.campaign_files") == [(3,)]

    stats = sync_campaigns(warehouse_at(url), load_campaign_sources(tmp_path / "none.yaml"), io, "rerun")
    assert stats.files_loaded == 5 and stats.files_unchanged == 3
    assert query(url, "select count(*), count(distinct campaign_id) from raw.campaigns")[0] == (8, 8)
    placements = query(url, "select count(*) from raw.placements")[0][0]
    quarantined = query(url, "select count(*) from quarantine.campaign_records")[0][0]
    assert (placements, quarantined) == (8 * 25, 8)


WINDOW = (date(2026, 10, 30), date(2026, 11, 1))


def test_a_killed_platform_sync_rerun_matches_an_uninterrupted_one(new_warehouse, simulator):
    section, environ = platform_sources(simulator.network, simulator.base_url)
    section = {"allow_private_hosts": True, "buzzsprout": section["buzzsprout"]}
    sources = PlatformSources.model_validate(section)
    clean_url, url = new_warehouse("t_kill"), new_warehouse("t_kill")
    clean = sync_platform(warehouse_at(clean_url), sources, "buzzsprout", "clean", *WINDOW, environ=environ)
    assert clean.units > 4 and not clean.failed_sources

    run_killed("""
from datetime import date
from assets.ingestion.platforms.sync import PlatformSources, sync_platform
from resources.warehouse import warehouse_at
sources = PlatformSources.model_validate(args["section"])
sync_platform(warehouse_at(args["url"]), sources, "buzzsprout", "killed", date(2026, 10, 30), date(2026, 11, 1),
              environ=args["environ"], checkpoint=stop)
""", url=url, section=section, environ=environ, kill_at=clean.units // 2)
    tables = ("raw.buzzsprout_episodes", "raw.buzzsprout_episode_downloads_daily", "quarantine.platform_records")

    def content(database: str) -> dict[str, list]:
        """Each table's rows without the load's bookkeeping columns."""
        out = {}
        for table in tables:
            schema, name = table.split(".")
            columns = [r[0] for r in query(database, "select column_name from information_schema.columns where "
                                                     "table_schema = %s and table_name = %s and column_name not in "
                                                     "('_batch_id', '_ingested_at') order by ordinal_position",
                                           (schema, name))]
            out[table] = query(database, sql.SQL("select {} from {}").format(
                sql.SQL(", ").join(map(sql.Identifier, columns)), sql.Identifier(schema, name)))
        return out

    expected = content(clean_url)
    assert 0 < sum(map(len, content(url).values())) < sum(map(len, expected.values()))
    resumed = sync_platform(warehouse_at(url), sources, "buzzsprout", "killed", *WINDOW, environ=environ)
    assert not resumed.failed_sources and resumed.units < clean.units
    got = content(url)
    for table in tables:
        assert len(got[table]) == len(set(map(repr, got[table]))), table  # nothing twice
        assert sorted(got[table], key=repr) == sorted(expected[table], key=repr), table


# -- Megaphone exports ---------------------------------------------------------------------------

def test_hostile_megaphone_lines_are_quarantined_and_a_bad_tenant_folder_fails_alone(new_warehouse, network, tmp_path):
    from assets.ingestion.megaphone_export import MAX_LINE_BYTES, megaphone_episode_metrics_daily
    from simulator.megaphone import export_path, marker_path, megaphone_shows, write_megaphone_exports

    day = date(2026, 11, 1)
    root = str(tmp_path / "megaphone")
    truth = write_megaphone_exports(network, root, [day])
    show = megaphone_shows(network)[0]
    path = Path(export_path(root, show.tenant_id, show.network_id, day))
    lines = gzip.decompress(path.read_bytes()).splitlines()
    record = {"podcast_id": show.podcast_id, "episode_id": "e\x00x",
              "created_at": "2026-11-01T10:00:00Z", "ip": "203.0.113.9", "user_agent": "x"}
    hostile = [json.dumps(record).encode(),                                  # NUL in an id
               b'{"episode_id": "' + b"a" * (MAX_LINE_BYTES + 10) + b'"}',    # over the line limit
               b"[" * 100_000,                                               # nested deeper than the parser goes
               b'{"ip": "203.0.113.9", "episode_id": "raw\x00nul"}']          # a raw NUL: not JSON
    path.write_bytes(gzip.compress(b"\n".join(lines + hostile) + b"\n"))
    first = len(lines) + 1
    # A tenant folder whose name is not an identifier, finalized like the others.
    bad = Path(root) / "bad tenant!" / show.network_id
    bad.mkdir(parents=True)
    (bad / path.name).write_bytes(path.read_bytes())
    (bad / Path(marker_path(root, "x", "y", day)).name).write_text("")

    url = new_warehouse("t_hostile")
    result = dg.materialize([megaphone_episode_metrics_daily], partition_key=day.isoformat(),
                            resources={"warehouse": WarehouseResource(database_url=url)}, raise_on_error=False,
                            run_config={"ops": {megaphone_episode_metrics_daily.op.name: {"config": {"export_url": root}}}})
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert f"bad tenant!/{show.network_id}/{day}: InvalidIdentifier" in failure.event_specific_data.error.message
    stored = {tuple(r[:5]): r[5] for r in query(url, "select tenant_id, network_id, podcast_id, episode_id, metric_date, "
                                                     "downloads from raw.megaphone_episode_metrics_daily")}
    assert stored == {k: v["downloads"] for k, v in truth["metrics"].items()}
    got = dict(query(url, "select record_key, reason_code from quarantine.platform_records where platform = 'megaphone' "
                          "and record_key like %s", (f"{path.name}:%",)))
    name = path.name
    assert {k: got.get(k) for k in (f"{name}:{first + n}" for n in range(4))} == {
        f"{name}:{first}": "invalid_text", f"{name}:{first + 1}": "record_too_large", f"{name}:{first + 2}": "not_json",
        f"{name}:{first + 3}": "not_json"}
    evidence = query(url, "select payload from quarantine.platform_records where record_key = %s",
                     (f"{name}:{first + 3}",))[0][0]
    assert "\ufffd" in evidence["line"] and "203.0.113.9" not in evidence["line"]


def test_a_platform_record_with_a_nul_is_quarantined_and_the_rest_of_its_unit_stored(new_warehouse):
    from assets.ingestion.platforms.base import ShowSync, SyncStats, no_checkpoint
    from assets.ingestion.platforms.buzzsprout import Buzzsprout, BuzzsproutConfig, BuzzsproutShow

    url = new_warehouse("t_hostile")
    config = BuzzsproutConfig(base_url="http://127.0.0.1:9", shows=[])
    show = BuzzsproutShow(tenant_id="acme", podcast_id="p1", token_env="UNUSED")
    job = ShowSync(Buzzsprout(), warehouse_at(url), config, show, None, frozenset({"episodes"}), None, None, "batch-1", "sync-1",
                   SyncStats(), no_checkpoint)

    def episode(eid, title, payload):
        return {"episode_id": eid, "guid": f"g{eid}", "title": title, "audio_url": None, "published_at": None,
                "duration_seconds": 60, "episode_number": None, "season_number": None, "payload": payload}

    try:
        for _ in range(2):  # the same unit twice: the same rows and quarantine, nothing twice
            job.store("episodes", [episode("1", "One", {"a": 1}), episode("2", "T\x00wo", {"a": 2}),
                                   episode("3", "Three", {"note": "x\x00y"})], [], {"n": 1})
    finally:
        job.close()
    assert query(url, "select episode_id, title from raw.buzzsprout_episodes") == [("1", "One")]
    assert query(url, "select record_key, reason_code, payload->>'title', payload->'payload'->>'note' "
                      "from quarantine.platform_records order by 1") == [
        ("2", "invalid_text", "T\ufffdwo", None), ("3", "invalid_text", "Three", "x\ufffdy")]
    assert job.cursor("episodes") == {"n": 1} and job.stats.units == 2


def test_platform_metric_days_after_the_load_day_are_quarantined_and_the_rest_stored(new_warehouse):
    """Daily downloads loaded on 2026-11-05 (10:00 UTC): the rows of 11-05 (a partial day) and
    before are stored; those of 11-06 and 11-07 are quarantined as `future_timestamp`."""
    from datetime import date, datetime, timezone

    from assets.ingestion.platforms.base import ShowSync, SyncStats, no_checkpoint
    from assets.ingestion.platforms.buzzsprout import Buzzsprout, BuzzsproutConfig, BuzzsproutShow

    url = new_warehouse("t_hostile")
    config = BuzzsproutConfig(base_url="http://127.0.0.1:9", shows=[])
    show = BuzzsproutShow(tenant_id="acme", podcast_id="p1", token_env="UNUSED")
    job = ShowSync(Buzzsprout(), warehouse_at(url), config, show, None, frozenset({"downloads"}), date(2026, 11, 1),
                   date(2026, 11, 7), "batch-1", "sync-1", SyncStats(), no_checkpoint,
                   now=datetime(2026, 11, 5, 10, tzinfo=timezone.utc))
    rows = [{"episode_id": "1", "download_date": date(2026, 11, day), "downloads": day} for day in range(3, 8)]
    try:
        job.store("downloads", rows, [], {"n": 1})
    finally:
        job.close()
    assert query(url, "select download_date, downloads from raw.buzzsprout_episode_downloads_daily order by 1") == [
        (date(2026, 11, day), day) for day in (3, 4, 5)]
    assert query(url, "select record_key, reason_code, record_date from quarantine.platform_records order by 1") == [
        (f"1/2026-11-0{day}", "future_timestamp", date(2026, 11, day)) for day in (6, 7)]
    assert job.stats.quarantined == {"buzzsprout_downloads:future_timestamp": 2}

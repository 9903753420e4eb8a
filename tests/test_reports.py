"""Sponsor reports end to end on the attribution warehouse of tests/conftest.py: every
campaign's report read back equals the marts, the HTML/PDF/XLSX render what they should, the
registry and retention keep their promises, the Dagster assets refuse to run after a failed
upstream check, and deliveries go to a real SMTP server and a real HTTP server on loopback."""

from __future__ import annotations

import csv
import datetime as dt
import email
import email.policy
import hashlib
import html
import http.server
import io
import json
import re
import socket
import threading
from decimal import Decimal

import dagster as dg
import fsspec
import psycopg
import pytest

from assets.reports.assets import CAMPAIGN_PARTITIONS, SPONSOR_PARTITIONS, campaign_report, sponsor_report
from assets.reports.charts import roi_axis, series_colour
from assets.reports.content import ReportError, ReportRequest
from assets.reports.formatting import MODEL_NAMES, header, label, money, percent, ratio
from assets.reports.delivery import ReportDeliveryResource, send_email, send_webhook
from assets.reports.generate import enforce_retention, generate_report
from assets.reports.render import shown_tables
from pipelines.checks.roi import MART_CAMPAIGN_ROI
from pipelines.reports import (
    campaigns_due, daily_live_campaign_reports, report_on_demand_job, report_partitions_sensor, report_retention_job,
)
from resources.report_store import ReportStoreResource
from resources.warehouse import WarehouseResource, warehouse_at
from tests.browser import table_overflow
from tests.conftest import query

NOW = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def url(attribution_warehouse):
    return attribution_warehouse["url"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return ReportStoreResource(base_url=str(tmp_path_factory.mktemp("reports")))


@pytest.fixture(scope="module")
def campaigns(url):
    """(tenant, campaign) of every campaign, busiest first."""
    return [(t, c) for t, c in query(url, "select tenant_id, campaign_id from marts.mart_campaign_roi "
                                          "where is_selected_model order by impressions desc, tenant_id, campaign_id")]


@pytest.fixture(scope="module")
def full_report(url, store, campaigns):
    """The busiest campaign's report in every format."""
    tenant, campaign = campaigns[0]
    return generate_report(warehouse_at(url), store, ReportRequest(tenant, campaign_id=campaign),
                           ["html", "pdf", "csv", "xlsx", "json"], batch_id="test", now=NOW)


def _csv(store, report, part) -> list[dict]:
    return list(csv.DictReader(io.StringIO(store.read(report.url("csv", part)).decode())))


def _plain(value) -> str:
    return "" if value is None else value.isoformat() if isinstance(value, dt.date) else str(value)


def test_every_campaign_report_read_back_equals_the_marts(url, store, campaigns, attribution_warehouse):
    truth = {(c["tenant_id"], c["campaign_id"]): c for c in attribution_warehouse["truth"]["campaigns"]}
    assert len(campaigns) == len(truth) >= 5
    for tenant, campaign in campaigns:
        report = generate_report(warehouse_at(url), store, ReportRequest(tenant, campaign_id=campaign), ["csv", "json"], now=NOW)
        document = json.loads(store.read(report.url("json")))
        assert document["report"]["campaign_id"] == campaign

        roi = query(url, "select attribution_model, revenue, cost, roi, conversions, impressions, is_selected_model "
                         "from marts.mart_campaign_roi where tenant_id = %s and campaign_id = %s "
                         "order by attribution_model", (tenant, campaign))
        for rows in (document["tables"]["roi_by_model"]["rows"], _csv(store, report, "roi_by_model")):
            assert [(r["attribution_model"], Decimal(r["revenue"]), Decimal(r["cost"]),
                     None if r["roi"] in (None, "") else Decimal(r["roi"]), Decimal(r["conversions"]),
                     int(r["impressions"])) for r in rows] == [row[:6] for row in roi]
        selected = next(r for r in document["tables"]["roi_by_model"]["rows"] if r["is_selected_model"])
        assert abs(Decimal(selected["revenue"]) - Decimal(truth[(tenant, campaign)]["selected"]["revenue"])) <= Decimal("0.01")
        assert document["report"]["attribution_model"] == selected["attribution_model"]

        start, end = report.content.period_start, report.content.period_end
        daily = query(url, "select activity_date, impressions, conversions, revenue, cost "
                           "from marts.fct_campaign_performance_daily where tenant_id = %s and campaign_id = %s "
                           "and activity_date between %s and %s order by activity_date", (tenant, campaign, start, end))
        got = [(r["activity_date"], r["impressions"], r["conversions"], r["revenue"], r["cost"])
               for r in _csv(store, report, "performance_daily")]
        assert got == [tuple(_plain(v) for v in row) for row in daily] and daily

        placements = query(url, "select podcast_id, position, impressions, revenue from marts.mart_campaign_roi_by_placement "
                                "where tenant_id = %s and campaign_id = %s and is_selected_model", (tenant, campaign))
        assert sorted((r["podcast_id"], r["position"], Decimal(str(r["impressions"])), Decimal(r["revenue"]))
                      for r in document["tables"]["placements"]["rows"]) == sorted(
            (show, position, Decimal(impressions), revenue) for show, position, impressions, revenue in placements)

    registry = query(url, "select count(distinct report_id), count(*) filter (where format = 'json'), "
                          "count(*) filter (where format = 'csv') from reports.reports where generated_at = %s "
                          "and format in ('csv', 'json')", (NOW,))[0]
    assert registry[0] >= len(campaigns) and registry[1] >= len(campaigns) and registry[2] >= 6 * len(campaigns)


def test_unchanged_report_is_reissued_not_rendered_again(url, store, full_report):
    later = NOW + dt.timedelta(hours=1)
    again = generate_report(warehouse_at(url), store, ReportRequest(full_report.content.tenant_id,
                                                      campaign_id=full_report.content.campaign_id),
                            ["json", "pdf", "html", "xlsx", "csv"], now=later)
    assert again.reused and again.report_id == full_report.report_id
    assert sorted(again.files, key=str) == sorted(full_report.files, key=str)
    assert query(url, "select count(distinct report_id), min(expires_at), max(expires_at) from reports.reports "
                      "where report_id = %s", (full_report.report_id,)) == [(1, later + dt.timedelta(days=30),
                                                                              later + dt.timedelta(days=30))]


def test_registry_rows_describe_the_files(url, store, full_report):
    rows = query(url, "select format, part, file_url, size_bytes, checksum_sha256, generated_at, expires_at, "
                      "attribution_model, data_fresh_through, template, _batch_id "
                      "from reports.reports where report_id = %s", (full_report.report_id,))
    assert {r[0] for r in rows} == {"html", "pdf", "csv", "xlsx", "json"}
    assert len(rows) == 4 + len(full_report.content.tables)
    for fmt, part, file_url, size, checksum, generated, expires, model, fresh, template, batch in rows:
        data = store.read(file_url)
        assert size == len(data) > 0 and checksum == hashlib.sha256(data).hexdigest()
        assert generated == NOW and expires >= NOW + dt.timedelta(days=30)
        assert model == full_report.content.attribution_model and template == "standard" and batch == "test"
        assert fresh is not None and fresh.date().isoformat() == min(
            v for v in full_report.content.freshness.values() if v[:1].isdigit())


def test_html_is_self_contained_with_the_four_charts(store, full_report):
    page = store.read(full_report.url("html")).decode()
    charts = ("downloads_over_time", "conversions_by_model", "roi_versus_benchmarks", "performance_by_placement")
    for name in charts:
        assert f'id="chart-{name}"><svg ' in page, name
    assert page.count("<svg ") == 4
    assert "Performance by show and placement" in page and "ROI versus benchmarks" in page
    model = label(full_report.content.attribution_model)
    assert model in MODEL_NAMES.values()
    assert f"credited with the <strong>{model}</strong> attribution model" in page
    assert "downloads counted through" in page and "Data freshness" in page
    for external in ("<script", "<link", 'src="http', "url(http", "<img"):
        assert external not in page
    revenue = next(v for k, v in full_report.content.kpi_texts() if k == "Revenue")
    assert revenue in page


def _artefacts(text: str) -> list[str]:
    """Numbers a reader should never see: 5+ decimals (float or unrounded digits)."""
    return re.findall(r"\d\.\d{5,}", text)


def test_html_numbers_and_names_are_formatted(store, full_report):
    """HTML tables and key figures agree (ROI "3.5 %" in both), no float artefacts, names and
    labels instead of ids and codes, money with two decimals and its currency."""
    page = store.read(full_report.url("html")).decode()
    content = full_report.content
    assert not _artefacts(re.sub(r"<svg.*?</svg>", "", page, flags=re.S))
    roi = next(f for f in content.kpis if f.label == "ROI")
    assert roi.value is not None and percent(roi.value) in page
    shown = re.search(r'data-table="roi_by_model"[^>]*>(.*?)</table>', page, re.S).group(1)
    assert f'<td class="num">{percent(roi.value)}</td>' in shown and '<th class="num">ROI</th>' in shown
    assert "(this report)</td>" in shown
    assert f"<th class=\"num\">Revenue ({content.currency})</th>" in shown and "Households reached" in shown
    assert [m for m in MODEL_NAMES if f">{m}<" in page] == [] and "First touch" in shown and "Time decay" in shown
    placements = re.search(r'data-table="placements"[^>]*>(.*?)</table>', page, re.S).group(1)
    for record in content.table("placements").records():
        assert record["podcast_id"] not in placements and html.escape(record["podcast_title"]) in placements
    assert "Pre-roll" in placements or "Mid-roll" in placements
    revenue = next(f for f in content.kpis if f.label == "Revenue")
    assert re.fullmatch(rf"{content.currency} \d{{1,3}}(,\d{{3}})*\.\d\d", revenue.text(content.currency))
    assert f"{content.currency} " + f"{revenue.value:,.2f}" in page
    category = content.subtitle.rsplit(" · ", 1)[1]
    assert "_" not in category and category[0].isupper()


def test_html_tables_fit_their_container_in_chromium(url, store, full_report, tmp_path):
    """Each table of a real campaign report and of the busiest sponsor's roll-up, laid out by
    headless Chromium at an 800 px viewport, is no wider than its container (nothing clipped)."""
    tenant, sponsor = query(url, "select tenant_id, sponsor_id from marts.mart_sponsor_roi "
                                 "order by campaigns desc, revenue desc limit 1")[0]
    # the same request as test_sponsor_rollup_equals_the_sponsor_mart, which re-issues this report
    rollup = generate_report(warehouse_at(url), store, ReportRequest(tenant, sponsor_id=sponsor), ["json", "html"], now=NOW)
    for report, tables in ((full_report, 6), (rollup, 2)):
        measured = table_overflow(store.read(report.url("html")).decode(), tmp_path, width=800)
        assert len(measured) == len(shown_tables(report.content, "standard")) == tables
        assert all(m["scrollWidth"] <= m["clientWidth"] <= 800 for m in measured), measured


def test_pdf_has_the_expected_pages_and_text(store, full_report):
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(store.read(full_report.url("pdf"))))
    pages = [page.extract_text() for page in reader.pages]
    # Page 1 summary, two pages of charts (two each), then the tables.
    assert len(pages) >= 4
    assert full_report.content.title in pages[0]
    assert f"attribution model: {label(full_report.content.attribution_model)}" in pages[0]
    text = "\n".join(pages)
    assert not _artefacts(text)
    roi = next(f for f in full_report.content.kpis if f.label == "ROI")
    assert text.count(percent(roi.value)) >= 2  # key figures and the table of models
    assert "Households reached" in text and "First touch" in text and "first_touch" not in text
    for table in shown_tables(full_report.content, "standard"):  # keep with next: never a stranded heading
        on = [n for n, page in enumerate(pages) if table.title in page]
        assert on, table.title
        after = pages[on[0]].split(table.title, 1)[1].split("\n")
        assert table.headers[0].split()[0] in "\n".join(after[:4]), (table.title, after[:4])
    assert "downloads counted through" in pages[0] and "Key figures" in pages[0]
    assert "Downloads of the campaign's shows" in pages[1] and "Conversions by attribution model" in pages[1]
    assert "ROI versus benchmarks" in pages[2] and "Performance by show and placement" in pages[2]
    assert "Results under every attribution model" in pages[3]
    assert [len(page.images) for page in reader.pages[1:3]] == [2, 2]
    for number, text in enumerate(pages, start=1):
        assert f"page {number} of {len(pages)}" in text


def test_xlsx_opens_with_a_sheet_per_table_equal_to_the_marts(url, store, full_report):
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(store.read(full_report.url("xlsx"))), read_only=True)
    assert book.sheetnames == ["summary", "performance_daily", "downloads_daily", "roi_by_model", "placements",
                               "benchmarks", "lift"]
    rows = list(book["roi_by_model"].iter_rows(values_only=True))
    assert rows[0][:3] == ("attribution_model", "is_selected_model", "impressions")
    mart = query(url, "select attribution_model, impressions, revenue, cost from marts.mart_campaign_roi "
                      "where tenant_id = %s and campaign_id = %s order by attribution_model",
                 (full_report.content.tenant_id, full_report.content.campaign_id))
    index = {name: i for i, name in enumerate(rows[0])}
    assert [(r[index["attribution_model"]], r[index["impressions"]], Decimal(str(r[index["revenue"]])),
             Decimal(str(r[index["cost"]]))) for r in rows[1:]] == mart
    downloads = list(book["downloads_daily"].iter_rows(values_only=True))[1:]
    assert len(downloads) == len(full_report.content.table("downloads_daily").rows) > 0


def test_xlsx_cells_are_typed_formatted_filtered_and_sized(store, full_report):
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(store.read(full_report.url("xlsx"))))
    currency = full_report.content.currency
    figures = {row[0].value: row[1] for row in book["summary"].iter_rows(min_row=4) if row[0].value}
    for figure in full_report.content.kpis:
        cell = figures[figure.label]
        if figure.value is not None:
            assert cell.data_type == "n" and Decimal(str(cell.value)) == Decimal(str(figure.value)), figure
    assert figures["ROI"].number_format == "0.0%" and figures["Revenue"].number_format == f'"{currency}" #,##0.00'
    assert figures["Impressions"].number_format == "#,##0"
    for name in ("roi_by_model", "placements", "performance_daily", "downloads_daily"):
        sheet = book[name]
        header = [c.value for c in sheet[1]]
        last = sheet.cell(1, len(header)).column_letter
        assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref == f"A1:{last}{sheet.max_row}"
        first = {h: c for h, c in zip(header, sheet[2])}
        formats = {"revenue": f'"{currency}" #,##0.00', "cost": f'"{currency}" #,##0.00', "impressions": "#,##0",
                   "roi": "0.0%", "conversion_rate": "0.0%", "activity_date": "yyyy-mm-dd",
                   "download_date": "yyyy-mm-dd", "downloads": "#,##0"}
        for column, number_format in formats.items():
            if column in first and first[column].value is not None:
                assert first[column].number_format == number_format, (name, column)
                assert first[column].data_type in ("n", "d"), (name, column)
        widths = [sheet.column_dimensions[c.column_letter].width for c in sheet[1]]
        assert all(10 <= w <= 48 for w in widths) and len(set(widths)) > 1, (name, widths)
    assert book["downloads_daily"]["A2"].is_date


def test_json_numbers_are_decimal_strings_with_units(url, store, full_report, campaigns):
    document = json.loads(store.read(full_report.url("json")))
    currency = full_report.content.currency
    kpis = document["kpis"]
    assert kpis["ROI"]["unit"] == "fraction" and Decimal(kpis["ROI"]["value"]) == next(
        f.value for f in full_report.content.kpis if f.label == "ROI")
    assert kpis["Revenue"]["unit"] == currency and re.fullmatch(r"-?\d+\.\d{2}", kpis["Revenue"]["value"])
    assert kpis["Impressions"] == {"value": str(next(f.value for f in full_report.content.kpis
                                                     if f.label == "Impressions")), "unit": "count"}
    roi = document["tables"]["roi_by_model"]
    assert roi["units"]["revenue"] == currency and roi["units"]["roi"] == "fraction"
    assert roi["units"]["impressions"] == "count" and "attribution_model" not in roi["units"]
    for row in roi["rows"]:
        assert isinstance(row["impressions"], str) and isinstance(row["revenue"], str)
        assert isinstance(row["is_selected_model"], bool) and row["attribution_model"] in MODEL_NAMES
    assert document["report"]["period_end_partial_day"] is (full_report.content.period_end >= NOW.date())

    tenant, campaign = campaigns[0]
    today = generate_report(warehouse_at(url), store, ReportRequest(tenant, campaign_id=campaign, period_end=NOW.date()),
                            ["json"], now=NOW)
    stated = json.loads(store.read(today.url("json")))
    assert stated["report"]["period_end_partial_day"] is True
    assert stated["facts"]["Reporting period"].endswith(f"to {NOW.date()}, partial day")
    earlier = NOW.date() - dt.timedelta(days=1)
    past = generate_report(warehouse_at(url), store, ReportRequest(tenant, campaign_id=campaign, period_end=earlier),
                           ["json"], now=NOW)
    assert json.loads(store.read(past.url("json")))["facts"]["Reporting period"].endswith(f"to {earlier}")


def test_charts_band_benchmarks_and_keep_series_colours(store, full_report):
    page = store.read(full_report.url("html")).decode()
    downloads = re.search(r'data-chart="downloads_over_time".*?</svg>', page, re.S).group(0)
    ads = re.search(r'<g id="series-ads-delivered">.*?</g>', downloads, re.S).group(0)
    assert f"stroke: {series_colour('ads delivered')}" in ads
    shows = re.findall(r'<g id="series-show-\d+">.*?stroke: (#[0-9a-f]{6})', downloads, re.S)
    assert shows and series_colour("ads delivered") not in shows
    benchmarks = re.search(r'data-chart="roi_versus_benchmarks".*?</svg>', page, re.S).group(0)
    roi = next(f for f in full_report.content.kpis if f.label == "ROI").value
    assert 'id="campaign-roi"' in benchmarks and f"this campaign: {percent(roi)}" in benchmarks
    assert ('id="benchmark-band-' in benchmarks) == any(
        r["roi_median"] is not None for r in full_report.content.table("benchmarks").records())


def test_number_formats_and_benchmark_axis():
    assert [percent(Decimal("0.034704")), money(Decimal("869.7441914999999"), "USD"),
            ratio(Decimal("80.6451612903225806")), money(Decimal("1234.5"), "USD"), percent(Decimal("-0.5"))] == [
        "3.5 %", "USD 869.74", "80.65", "USD 1,234.50", "-50.0 %"]
    assert [label("first_touch"), label("dtc_retail"), label("position_based"),
            header("households_reached"), header("revenue", "EUR")] == [
        "First touch", "DTC retail", "Position based", "Households reached", "Revenue (EUR)"]
    # A pool with ROIs of 1,000 % to 100,000 % does not flatten a 3.5 % campaign: the axis stays
    # within 100 points of it and the band is drawn clipped.
    low, high = roi_axis(0.035, [(10.0, 500.0, 1000.0), (0.01, 0.04, 0.2)])
    assert low < 0 < 0.035 < 0.2 < high <= 0.035 + 1.2
    assert roi_axis(2.0, [(0.1, 0.3, 0.5)]) == pytest.approx((-0.16, 2.16))
    assert {series_colour(s) for s in ("ads delivered", "revenue", "cost", "this campaign")}.isdisjoint(
        series_colour(f"show {n}") for n in range(50))
    assert series_colour("Daily Brief") == series_colour("Daily Brief")


def test_summary_template_and_date_range(url, store, campaigns):
    tenant, campaign = campaigns[0]
    start, end = query(url, "select min(activity_date), min(activity_date) + 1 from marts.fct_campaign_performance_daily "
                            "where tenant_id = %s and campaign_id = %s and impressions > 0", (tenant, campaign))[0]
    report = generate_report(warehouse_at(url), store, ReportRequest(tenant, campaign_id=campaign, period_start=start, period_end=end,
                                                       template="summary"), ["html", "json"], now=NOW)
    page = store.read(report.url("html")).decode()
    assert page.count("<svg ") == 2 and 'data-table="performance_daily"' not in page
    days = json.loads(store.read(report.url("json")))["tables"]["performance_daily"]["rows"]
    assert [r["activity_date"] for r in days] == [start.isoformat(), end.isoformat()]
    assert query(url, "select template, period_start, period_end from reports.reports where report_id = %s",
                 (report.report_id,)) == [("summary", start, end)] * 2


def test_sponsor_rollup_equals_the_sponsor_mart(url, store):
    tenant, sponsor = query(url, "select tenant_id, sponsor_id from marts.mart_sponsor_roi "
                                 "order by campaigns desc, revenue desc limit 1")[0]
    report = generate_report(warehouse_at(url), store, ReportRequest(tenant, sponsor_id=sponsor), ["json", "html"], now=NOW)
    rows = json.loads(store.read(report.url("json")))["tables"]["roi_by_model"]["rows"]
    mart = query(url, "select attribution_model, campaigns, revenue, cost, roi from marts.mart_sponsor_roi "
                      "where tenant_id = %s and sponsor_id = %s order by attribution_model", (tenant, sponsor))
    assert [(r["attribution_model"], int(r["campaigns"]), Decimal(r["revenue"]), Decimal(r["cost"]),
             None if r["roi"] is None else Decimal(r["roi"])) for r in rows] == mart
    assert store.read(report.url("html")).decode().count("<svg ") == 2


def test_bad_requests_get_clear_errors(url, store, campaigns):
    tenant, campaign = campaigns[0]
    with pytest.raises(ReportError, match="not in marts.mart_campaign_roi"):
        generate_report(warehouse_at(url), store, ReportRequest(tenant, campaign_id="no-such-campaign"), ["json"])
    with pytest.raises(ReportError, match="unknown or no report formats"):
        generate_report(warehouse_at(url), store, ReportRequest(tenant, campaign_id=campaign), ["docx"])
    with pytest.raises(ReportError, match="unknown template"):
        ReportRequest(tenant, campaign_id=campaign, template="glossy")
    with pytest.raises(ReportError, match="after it ends"):
        ReportRequest(tenant, campaign_id=campaign, period_start=dt.date(2026, 11, 5), period_end=dt.date(2026, 11, 1))
    with pytest.raises(ReportError, match="exactly one campaign or one sponsor"):
        ReportRequest(tenant)


def test_fsspec_store_and_retention(url, campaigns):
    memory = ReportStoreResource(base_url="memory://retention-test", retention_days=30)
    tenant, campaign = campaigns[-1]
    old = generate_report(warehouse_at(url), memory, ReportRequest(tenant, campaign_id=campaign), ["json", "csv"],
                          now=NOW - dt.timedelta(days=31))
    fresh = generate_report(warehouse_at(url), memory, ReportRequest(tenant, campaign_id=campaign), ["json"], now=NOW)
    fs = fsspec.filesystem("memory")
    assert old.url("json").startswith("memory://retention-test/") and fs.exists(old.url("json"))

    gone_before = old.url("csv", "lift")
    fs.rm(gone_before)  # a file someone removed by hand: still marked deleted, no error
    result = enforce_retention(warehouse_at(url), memory, now=NOW)
    assert result.expired_files == len(old.files) and result.removed_files == len(old.files) - 1
    assert not any(fs.exists(f.url) for f in old.files) and fs.exists(fresh.url("json"))
    assert query(url, "select count(*) from reports.reports where report_id = %s and deleted_at = %s",
                 (old.report_id, NOW))[0][0] == len(old.files)
    again = enforce_retention(warehouse_at(url), memory, now=NOW)
    assert again.expired_files == 0 and again.removed_files == 0
    assert query(url, "select deleted_at from reports.reports where report_id = %s", (fresh.report_id,)) == [(None,)]


def test_schedule_cadences():
    rows = [("t", "live", dt.date(2026, 11, 1), dt.date(2026, 11, 30), 14),
            ("t", "ended", dt.date(2026, 10, 1), dt.date(2026, 11, 19), 14),
            ("t", "window_over", dt.date(2026, 9, 1), dt.date(2026, 10, 1), 14),
            ("t", "future", dt.date(2026, 12, 1), dt.date(2026, 12, 31), 14)]
    today = dt.date(2026, 11, 20)
    assert campaigns_due(rows, today, "daily_live") == ["t:live"]
    assert campaigns_due(rows, today, "end_of_flight") == ["t:ended"]
    assert campaigns_due(rows, today, "weekly") == ["t:live", "t:ended"]
    with pytest.raises(ValueError):
        campaigns_due(rows, today, "hourly")


class _Webhook(http.server.BaseHTTPRequestHandler):
    statuses: list[int] = []
    received: list[tuple[dict, dict]] = []

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        status = self.statuses.pop(0) if self.statuses else 200
        if status == 200:
            self.received.append((dict(self.headers), json.loads(body)))
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def webhook():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Webhook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", _Webhook
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def smtp():
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    class Inbox(Message):
        def __init__(self):
            super().__init__()
            self.messages = []

        def handle_message(self, message):
            self.messages.append(message)

    inbox = Inbox()
    with socket.socket() as probe:  # aiosmtpd needs a port number up front: take a free one
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield controller.port, inbox
    controller.stop()


def test_email_and_webhook_delivery_with_retries(url, store, full_report, smtp, webhook):
    port, inbox = smtp
    hook_url, hook = webhook
    delivery = ReportDeliveryResource(smtp_host="127.0.0.1", smtp_port=port, webhook_secret="s3cret",
                                      wait_initial_seconds=0.01, wait_max_seconds=0.02, max_attempts=3)
    sent = send_email(delivery, store, warehouse_at(url), full_report, ["sponsor@example.com", "am@example.com"], "run-1")
    assert sent.succeeded and sent.attempts == 1
    message = email.message_from_bytes(inbox.messages[-1].as_bytes(), policy=email.policy.default)
    assert message["To"] == "sponsor@example.com, am@example.com" and full_report.content.title in message["Subject"]
    parts = {part.get_content_type(): part for part in message.walk()}
    assert {"text/plain", "text/html", "application/pdf",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"} <= parts.keys()
    assert parts["application/pdf"].get_payload(decode=True) == store.read(full_report.url("pdf"))

    hook.statuses[:] = [503]  # one failure, then success
    posted = send_webhook(delivery, warehouse_at(url), full_report, hook_url, "run-1")
    assert posted.succeeded and posted.attempts == 2
    headers, payload = hook.received[-1]
    import hmac

    body = json.dumps(payload, sort_keys=True).encode()
    assert headers["X-Report-Signature"] == "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert payload["report_id"] == full_report.report_id and len(payload["files"]) == len(full_report.files)

    hook.statuses[:] = [500, 500, 500]
    failed = send_webhook(delivery, warehouse_at(url), full_report, hook_url, "run-2")
    assert not failed.succeeded and failed.attempts == 3 and "500" in failed.error
    hook.statuses[:] = [404]
    refused = send_webhook(delivery, warehouse_at(url), full_report, hook_url, "run-3")
    assert not refused.succeeded and refused.attempts == 1
    attempts = query(url, "select _batch_id, channel, attempt, succeeded from reports.deliveries "
                          "where report_id = %s order by delivery_id", (full_report.report_id,))
    assert attempts == [("run-1", "email", 1, True), ("run-1", "webhook", 1, False), ("run-1", "webhook", 2, True),
                        ("run-2", "webhook", 1, False), ("run-2", "webhook", 2, False), ("run-2", "webhook", 3, False),
                        ("run-3", "webhook", 1, False)]


def report_partitions(instance: dg.DagsterInstance, asset_key: dg.AssetKey, run_ids: set[str]) -> tuple[dict, dict]:
    """({partition: metadata of its newest materialization}, {partition: metadata of its newest
    observation}) that the runs `run_ids` recorded for `asset_key`, read from the instance."""
    made, observed = {}, {}
    for fetch, into in ((instance.fetch_materializations, made), (instance.fetch_observations, observed)):
        for record in fetch(asset_key, limit=10_000).records:   # newest first
            event = record.asset_materialization or record.asset_observation
            if record.run_id in run_ids and event.partition not in into:
                into[event.partition] = event.metadata
    return made, observed


def _iso_day(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def assert_each_partition_has_its_own_report(url: str, made: dict) -> None:
    """Every made partition's metadata names its own report: status, period and freshness equal
    to that report's registry rows, and a link, size and sha256 per file equal to the stored
    file's bytes; no two partitions share a report, a file or (for their JSON) a checksum."""
    assert len(made) >= 2
    reports, urls, json_sums = set(), set(), set()
    for partition, meta in made.items():
        report_id = meta["report_id"].value
        assert meta["status"].value == "made" and report_id not in reports, partition
        reports.add(report_id)
        rows = query(url, "select format, part, file_url, size_bytes, checksum_sha256, period_start, period_end, "
                          "data_fresh_through from reports.reports where report_id = %s", (report_id,))
        files = {r.data["file"]: (r.data["url"], r.data["size_bytes"], r.data["sha256"]) for r in meta["files"].value.records}
        assert files == {f"{f}{'/' + p if p else ''}": (u, n, c) for f, p, u, n, c, *_ in rows}, partition
        for name, (file_url, size, checksum) in files.items():
            with fsspec.open(file_url, "rb") as handle:
                data = handle.read()
            assert (len(data), hashlib.sha256(data).hexdigest()) == (size, checksum), (partition, name)
            assert meta[f"file/{name}"].value == file_url
        assert meta["bytes"].value == sum(n for _, n, _ in files.values())
        assert urls.isdisjoint(u for u, _, _ in files.values())
        urls |= {u for u, _, _ in files.values()}
        json_sums |= {c for name, (_, _, c) in files.items() if name == "json"}
        period_start, period_end, fresh_through = rows[0][5:]
        assert meta["period"].value == f"{period_start} to {period_end}"
        freshness = meta["data_freshness"].value
        assert freshness and all(isinstance(line, str) for line in freshness.values()), partition
        days = [d for d in map(_iso_day, freshness.values()) if d]
        assert (fresh_through.astimezone(dt.UTC).date() if fresh_through else None) == (min(days) if days else None)
    assert len(json_sums) in (0, len(made))


def _resources(url, store, **delivery):
    return {"warehouse": WarehouseResource(database_url=url), "report_store": store,
            "report_delivery": ReportDeliveryResource(wait_initial_seconds=0.01, wait_max_seconds=0.02, **delivery)}


@pytest.fixture
def instance():
    """A Dagster instance in a temporary folder (schedule contexts need one they can reference)."""
    with dg.instance_for_test() as instance:
        yield instance


def test_report_assets_gate_on_upstream_checks_and_show_deliveries(url, store, campaigns, webhook, instance):
    hook_url, hook = webhook
    tenant, campaign = campaigns[0]
    key = f"{tenant}:{campaign}"

    sensor = report_partitions_sensor(dg.build_sensor_context(instance=instance, resources={
        "warehouse": WarehouseResource(database_url=url)}))
    added = {r.partitions_def_name: set(r.partition_keys) for r in sensor.dynamic_partitions_requests}
    assert key in added[CAMPAIGN_PARTITIONS.name] and len(added[CAMPAIGN_PARTITIONS.name]) == len(campaigns)
    for request in sensor.dynamic_partitions_requests:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    assert isinstance(report_partitions_sensor(dg.build_sensor_context(instance=instance, resources={
        "warehouse": WarehouseResource(database_url=url)})), dg.SkipReason)

    # The daily schedule asks for the campaigns whose flight runs that day, one run each.
    day = dt.datetime(2026, 11, 10, 7, 0, tzinfo=dt.UTC)
    requests = daily_live_campaign_reports(dg.build_schedule_context(
        instance=instance, scheduled_execution_time=day, resources={"warehouse": WarehouseResource(database_url=url)}))
    live = {f"{t}:{c}" for t, c in query(url, "select tenant_id, campaign_id from marts.mart_campaign_roi "
                                              "where is_selected_model and %s between flight_start and flight_end",
                                         (day.date(),))}
    assert live and {r.partition_key for r in requests} == live
    assert all(r.run_key == f"daily_live:{r.partition_key}:2026-11-10" for r in requests)

    def run(**config):
        return dg.materialize([campaign_report], partition_key=key, instance=instance, resources=_resources(url, store),
                              run_config={"ops": {"reports__campaign_report": {"config": config}}},
                              raise_on_error=False)

    first = run(formats=["json"])
    assert first.success
    meta = first.get_asset_materialization_events()[0].materialization.metadata
    assert meta["attribution_model"].value and "downloads counted through" in meta["data_freshness"].value
    assert query(url, "select count(*) from reports.reports where _batch_id = %s", (first.run_id,)) == [(1,)]

    check = dg.AssetCheckKey(MART_CAMPAIGN_ROI, "roi_recomputed_in_python")
    instance.report_runless_asset_event(dg.AssetCheckEvaluation(
        asset_key=MART_CAMPAIGN_ROI, check_name=check.name, passed=False,
        description="acme/cmp-1/linear: revenue 10.01 vs 10.00"))
    refused = run(formats=["json"])
    assert not refused.success
    failure = next(e for e in refused.all_events if e.event_type_value == "STEP_FAILURE")
    assert "is blocked by" in failure.step_failure_data.error.message and "failed upstream check(s)" in failure.step_failure_data.error.message
    assert "marts/mart_campaign_roi: roi_recomputed_in_python failed" in failure.step_failure_data.user_failure_data.description
    assert query(url, "select count(*) from reports.reports where _batch_id = %s", (refused.run_id,)) == [(0,)]

    instance.report_runless_asset_event(dg.AssetCheckEvaluation(
        asset_key=MART_CAMPAIGN_ROI, check_name=check.name, passed=True))
    hook.statuses[:] = [500, 500, 500]
    delivered = run(formats=["json"], webhook_url=hook_url)
    assert delivered.success  # the report exists; its failed delivery is a failed check in the UI
    evaluation = delivered.get_asset_check_evaluations()[0]
    assert not evaluation.passed and "webhook" in evaluation.description and "3 attempt" in evaluation.description
    # Same data, same options: the first run's report is re-issued, nothing new is written.
    reissued = delivered.get_asset_materialization_events()[0].materialization.metadata
    assert reissued["reused_unchanged_report"].value and reissued["report_id"].value == meta["report_id"].value
    assert query(url, "select count(*) from reports.reports where _batch_id = %s", (delivered.run_id,)) == [(0,)]

    # A backfill runs every selected partition in one run (single-run backfill policy).
    keys = instance.get_dynamic_partitions(CAMPAIGN_PARTITIONS.name)[:3]
    backfill = dg.materialize([campaign_report], instance=instance, resources=_resources(url, store),
                              tags={"dagster/asset_partition_range_start": keys[0],
                                    "dagster/asset_partition_range_end": keys[-1]},
                              run_config={"ops": {"reports__campaign_report": {"config": {"formats": ["csv"]}}}})
    assert backfill.success  # one materialization per partition, each with its own report's metadata
    events = backfill.get_asset_materialization_events()
    assert sorted(e.materialization.partition for e in events) == sorted(keys)
    assert len({e.materialization.metadata["report_id"].value for e in events}) == 3
    made, observed = report_partitions(instance, campaign_report.key, {backfill.run_id})
    assert set(made) == set(keys) and not observed
    assert_each_partition_has_its_own_report(url, made)
    assert query(url, "select count(distinct campaign_id), count(*) from reports.reports where _batch_id = %s",
                 (backfill.run_id,)) == [(3, 18)]

    sponsor_key = next(iter(added[SPONSOR_PARTITIONS.name]))
    rollup = dg.materialize([sponsor_report], partition_key=sponsor_key, instance=instance,
                            resources=_resources(url, store), run_config={"ops": {"reports__sponsor_report": {
                                "config": {"formats": ["json"]}}}})
    assert rollup.success and rollup.get_asset_check_evaluations()[0].passed


def test_on_demand_and_retention_jobs(url, store, campaigns):
    tenant, campaign = campaigns[1]
    result = report_on_demand_job.execute_in_process(
        resources=_resources(url, store),
        run_config={"ops": {"generate_report_on_demand": {"config": {
            "tenant_id": tenant, "campaign_id": campaign, "period_start": "2026-11-01", "period_end": "2026-11-30",
            "template": "summary", "formats": ["pdf", "json"]}}}})
    report_id = result.output_for_node("generate_report_on_demand")
    assert query(url, "select format, template, period_start, period_end from reports.reports "
                      "where report_id = %s order by format", (report_id,)) == [
        ("json", "summary", dt.date(2026, 11, 1), dt.date(2026, 11, 30)),
        ("pdf", "summary", dt.date(2026, 11, 1), dt.date(2026, 11, 30))]

    with psycopg.connect(url) as conn:
        conn.execute("update reports.reports set expires_at = now() - interval '1 minute' where report_id = %s",
                     (report_id,))
    retention = report_retention_job.execute_in_process(resources=_resources(url, store))
    assert retention.output_for_node("expire_reports") >= 2
    assert query(url, "select count(*) from reports.reports where report_id = %s and deleted_at is not null",
                 (report_id,)) == [(2,)]


def test_scheduled_reports_go_to_the_recipients_file(url, store, smtp, webhook, instance, tmp_path):
    """A sponsor's rule reaches its roll-up and every campaign of it; a campaign's rule reaches
    that campaign only; another tenant's rule nobody here; a bad file stops the run up front."""
    import yaml

    port, inbox = smtp
    hook_url, hook = webhook
    hook.statuses[:] = []
    tenant, sponsor, first, second = query(url, """
        select tenant_id, sponsor_id, min(campaign_id), max(campaign_id) from marts.mart_campaign_roi
        where is_selected_model group by 1, 2 having count(*) > 1 order by 1, 2 limit 1""")[0]
    recipients = tmp_path / "recipients.yaml"
    recipients.write_text(yaml.safe_dump({"recipients": [
        {"tenant": tenant, "sponsor": sponsor, "email": ["cmo@sponsor.example"]},
        {"tenant": tenant, "campaign": first, "email": ["cmo@sponsor.example", "buyer@agency.example"],
         "webhook_url": hook_url},
        {"tenant": "another-tenant", "sponsor": sponsor, "email": ["nobody@elsewhere.example"]},
    ]}))
    resources = _resources(url, store, smtp_host="127.0.0.1", smtp_port=port, recipients_file=str(recipients))
    instance.add_dynamic_partitions(CAMPAIGN_PARTITIONS.name, [f"{tenant}:{first}", f"{tenant}:{second}"])
    instance.add_dynamic_partitions(SPONSOR_PARTITIONS.name, [f"{tenant}:{sponsor}"])

    def run(asset, subject):
        return dg.materialize([asset], partition_key=f"{tenant}:{subject}", instance=instance, resources=resources,
                              run_config={"ops": {asset.op.name: {"config": {"formats": ["html", "json"]}}}},
                              raise_on_error=False)

    sent_to = {}
    for asset, subject in ((campaign_report, first), (campaign_report, second), (sponsor_report, sponsor)):
        before, hooks_before = len(inbox.messages), len(hook.received)
        result = run(asset, subject)
        assert result.success and result.get_asset_check_evaluations()[0].passed
        mails = [email.message_from_bytes(m.as_bytes(), policy=email.policy.default) for m in inbox.messages[before:]]
        sent_to[subject] = ([m["To"] for m in mails], len(hook.received) - hooks_before)
    assert sent_to == {first: (["cmo@sponsor.example, buyer@agency.example"], 1),
                       second: (["cmo@sponsor.example"], 0),
                       sponsor: (["cmo@sponsor.example"], 0)}

    # A refresh started by automation (the marts changed) registers the report and sends nothing.
    before, hooks_before = len(inbox.messages), len(hook.received)
    refresh = dg.materialize([campaign_report], partition_key=f"{tenant}:{first}", instance=instance,
                             resources=resources, tags={"dagster/from_automation_condition": "true"},
                             run_config={"ops": {campaign_report.op.name: {"config": {"formats": ["html"]}}}})
    assert refresh.success and (len(inbox.messages), len(hook.received)) == (before, hooks_before)
    assert query(url, "select count(*) from reports.reports where _batch_id = %s", (refresh.run_id,)) == [(1,)]

    recipients.write_text(yaml.safe_dump({"recipients": [{"tenant": tenant, "sponsor": sponsor, "email": ["not-an-address"]}]}))
    refused = run(campaign_report, first)
    assert not refused.success
    failure = next(e for e in refused.all_events if e.event_type_value == "STEP_FAILURE")
    message = failure.step_failure_data.user_failure_data.description
    assert str(recipients) in message and "recipients.0" in message and "not-an-address" in message
    assert query(url, "select count(*) from reports.reports where _batch_id = %s", (refused.run_id,)) == [(0,)]


def test_a_missing_chromium_fails_the_layout_test_with_how_to_install_it(monkeypatch):
    import tests.browser

    monkeypatch.setattr(tests.browser, "CANDIDATES", ("/nonexistent/chromium-headless-shell",))
    with pytest.raises(pytest.fail.Exception, match="apt-get install chromium-headless-shell"):
        tests.browser.chromium()

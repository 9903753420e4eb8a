"""Report generation time per campaign.

Builds the attribution warehouse of bench/attribution.py (the simulator's catalog ingested for
real, synthetic downloads, campaigns and conversions written with set-based SQL, the attribution
marts and the daily download rollups built through Dagster), then generates every campaign's report in
every format (HTML with its four charts, PDF, CSV, XLSX, JSON), written to a local folder and
registered in reports.reports, exactly as the report asset does. Prints p50 / p95 / max of the
time per campaign (targets: p50 < 5 s, p95 < 30 s) and, as a ratio, against a baseline measured
in the same run on the same campaigns: the same mart rows read and written as plain CSV.

    python bench/reports.py [--downloads 300000] [--conversions 30000] [--campaigns 10] [--database-url URL]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import psycopg
from attribution import LAST_DAY, attribution_keys, attribution_warehouse
from scratch import scratch_warehouse

from assets.reports.content import ReportRequest, report_content
from assets.reports.generate import generate_report
from assets.reports.render import render_csv
from resources.report_store import ReportStoreResource
from resources.warehouse import warehouse_at

ROLLUPS = ["dim_podcasts", "fct_downloads_daily_by_show", "fct_downloads_daily_by_tenant"]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--downloads", type=int, default=300_000)
    parser.add_argument("--conversions", type=int, default=30_000)
    parser.add_argument("--campaigns", type=int, default=10, help="per tenant")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-reports-") as tmp, \
            scratch_warehouse(args.database_url, Path(tmp)) as url:
        work = Path(tmp)
        runs, _, _ = attribution_warehouse(url, 30, args.downloads, args.conversions, args.campaigns, also=ROLLUPS)
        started = time.perf_counter()
        rollups = {key for key in runs.dbt_keys if key.path[-1] in ROLLUPS}
        runs.materialize(set().union(*attribution_keys(runs), rollups), LAST_DAY - timedelta(days=29), LAST_DAY)
        with psycopg.connect(url) as conn:
            campaigns = conn.execute("select tenant_id, campaign_id from marts.mart_campaign_roi "
                                     "where is_selected_model order by tenant_id, campaign_id").fetchall()
            exposures = conn.execute("select count(*) from intermediate.int_exposures").fetchone()[0]
        print(f"warehouse: {args.downloads:,} downloads, {args.conversions:,} conversion events, {len(campaigns)} "
              f"campaigns, {exposures:,} ads delivered (marts built in {time.perf_counter() - started:.0f} s)")

        store = ReportStoreResource(base_url=str(work / "reports"))
        # Warm-up (imports of matplotlib, fpdf2, openpyxl; font loading), not counted.
        generate_report(warehouse_at(url), store, ReportRequest(*campaigns[0][:1], campaign_id=campaigns[0][1]),
                        ["html", "pdf", "csv", "xlsx", "json"])
        reports, baselines, sizes = [], [], []
        for tenant, campaign in campaigns:
            request = ReportRequest(tenant, campaign_id=campaign)
            started = time.perf_counter()
            with psycopg.connect(url) as conn:
                content = report_content(conn, request)
            plain = render_csv(content)
            for file in plain:
                (work / f"baseline{file.suffix}").write_bytes(file.data)
            baselines.append(time.perf_counter() - started)

            started = time.perf_counter()
            report = generate_report(warehouse_at(url), store, request, ["html", "pdf", "csv", "xlsx", "json"])
            reports.append(time.perf_counter() - started)
            sizes.append(sum(f.size_bytes for f in report.files))

        p50, p95 = statistics.median(reports), percentile(reports, 0.95)
        base50, base95 = statistics.median(baselines), percentile(baselines, 0.95)
        print(f"report per campaign (HTML + 4 charts, PDF, CSV, XLSX, JSON; stored and registered): "
              f"p50 {p50:.2f} s (target < 5 s), p95 {p95:.2f} s (target < 30 s), max {max(reports):.2f} s; "
              f"{statistics.median(sizes) / 1024:.0f} KiB per report")
        print(f"baseline (the same mart rows read and written as CSV): p50 {base50 * 1000:.0f} ms, "
              f"p95 {base95 * 1000:.0f} ms")
        print(f"ratio report / baseline: p50 {p50 / base50:.1f}x, p95 {p95 / base95:.1f}x")


if __name__ == "__main__":
    main()

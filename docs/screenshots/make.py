"""The README's screenshots: a campaign report as a browser shows it, and the Dagster asset
lineage. Run it after a demo, from the repository root:

    .venv/bin/podcast-analytics demo            # once: a warehouse whose marts have campaigns
    .venv/bin/python docs/screenshots/make.py   # writes docs/screenshots/report.png and lineage.png

It uses the demo's data directory (`PODCAST_DATA_DIR`, default `.data`; its embedded PostgreSQL is
started when it is not running) and Debian's headless Chromium (`chromium-headless-shell`, or
`--chromium PATH`).

- report.png: the HTML report of one campaign (`--campaign tenant:campaign`; default the
  campaign with the most impressions), rendered now from the marts with the current templates,
  not read from the report store: the store re-issues a report whose numbers did not change, so
  it may hold an older rendering. Nothing is written to the store or the registry.
- lineage.png: `dagster-webserver` started on workspace.yaml with the demo's Dagster instance
  (on a free port, stopped afterwards), a lineage page (`--lineage-path`; default the campaign
  report and the marts it reads) captured once the code location has loaded. The UI's
  first-visit dialog is dismissed first, as its "Skip" button does (`setNuxSeen`).

Both are scaled down (report 900 px wide, lineage 1200 px) and stored with a 256-colour palette,
well under 400 KB each."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent
LINEAGE = "/assets/reports/campaign_report?view=lineage&lineageScope=upstream&lineageDepth=1"
LOCATION_LOADED = '{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }'


def chromium_binary(given: str | None) -> str:
    for candidate in (given, shutil.which("chromium-headless-shell"), "/usr/lib/chromium/headless_shell",
                      shutil.which("chromium")):
        if candidate and Path(candidate).exists():
            return candidate
    sys.exit("no headless Chromium: install Debian's chromium-headless-shell or pass --chromium PATH")


def screenshot(chromium: str, url: str, out: Path, width: int, height: int, budget_ms: int) -> None:
    """Chromium's own `--screenshot` of the page at `url` in a `width` x `height` window, after
    `budget_ms` of virtual time (scripts, fonts and fetches done)."""
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--user-data-dir={profile}", f"--window-size={width},{height}",
                        f"--virtual-time-budget={budget_ms}", f"--screenshot={out}", url],
                       check=True, capture_output=True, timeout=180)


def shrink(path: Path, width: int | None = None) -> None:
    """Scale to `width` (when narrower than the shot) and store with a 256-colour palette."""
    from PIL import Image

    image = Image.open(path).convert("RGB")
    if width and image.width > width:
        image = image.resize((width, round(image.height * width / image.width)), Image.LANCZOS)
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


def busiest_campaign(warehouse_url: str) -> str:
    import psycopg

    with psycopg.connect(warehouse_url) as conn:
        row = conn.execute("select tenant_id, campaign_id from marts.mart_campaign_roi where is_selected_model "
                           "order by impressions desc, tenant_id, campaign_id limit 1").fetchone()
    if row is None:
        sys.exit("marts.mart_campaign_roi has no campaign: run `podcast-analytics demo` first")
    return f"{row[0]}:{row[1]}"


def report_html(warehouse_url: str, partition: str, template: str) -> bytes:
    """The campaign's HTML report as the report asset renders it, from the marts as they are."""
    import psycopg

    from assets.reports.charts import draw_charts
    from assets.reports.content import ReportRequest, report_content
    from assets.reports.render import render

    tenant, _, campaign = partition.partition(":")
    now = dt.datetime.now(dt.UTC)
    with psycopg.connect(warehouse_url) as conn:
        content = report_content(conn, ReportRequest(tenant, campaign_id=campaign, template=template), today=now.date())
    (page,) = render(content, draw_charts(content, template), template, ["html"], now)
    return page.data


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=json.dumps({"query": query}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)["data"]


def wait_for_location(port: int, timeout: float = 240) -> None:
    """Until the webserver answers and its code location has loaded (the UI draws nothing before)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            entries = graphql(port, LOCATION_LOADED)["workspaceOrError"]["locationEntries"]
            if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                return
        except (OSError, KeyError, TypeError, ValueError):
            pass
        time.sleep(1)
    sys.exit(f"dagster-webserver on port {port} did not load the code location within {timeout:.0f} s")


def lineage_png(chromium: str, out: Path, path: str, width: int, height: int) -> None:
    port = free_port()
    webserver = Path(sys.executable).with_name("dagster-webserver")
    server = subprocess.Popen([str(webserver), "-w", str(REPO_ROOT / "workspace.yaml"), "-h", "127.0.0.1",
                               "-p", str(port)], cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_location(port)
        graphql(port, "mutation { setNuxSeen }")  # what "Skip" on the UI's first-visit dialog does
        screenshot(chromium, f"http://127.0.0.1:{port}{path}", out, width, height, 20_000)
    finally:
        server.terminate()
        server.wait(timeout=30)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--campaign", help="tenant:campaign (default: the campaign with the most impressions)")
    parser.add_argument("--template", default="standard")
    parser.add_argument("--lineage-path", default=LINEAGE,
                        help="the UI page to capture (default: the campaign report's lineage, one level up; "
                             "`/asset-groups` is the global lineage, every group collapsed)")
    parser.add_argument("--chromium", help="headless Chromium binary")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--only", choices=("report", "lineage"))
    args = parser.parse_args(argv)

    sys.path.insert(0, str(REPO_ROOT))
    from pipelines.cli import _prepare_environment, _settings

    chromium = chromium_binary(args.chromium)
    warehouse_url, _, _ = _prepare_environment(_settings())   # sets DAGSTER_HOME and DAGSTER_PG_URL too
    os.environ.setdefault("PODCAST_DATA_DIR", str(_settings().data_dir))
    args.out.mkdir(parents=True, exist_ok=True)
    if args.only in (None, "report"):
        partition = args.campaign or busiest_campaign(warehouse_url)
        with tempfile.TemporaryDirectory() as folder:
            page = Path(folder) / "report.html"
            page.write_bytes(report_html(warehouse_url, partition, args.template))
            screenshot(chromium, page.as_uri(), args.out / "report.png", 1100, 1500, 5_000)
        shrink(args.out / "report.png", 900)
        print(f"{args.out / 'report.png'}: the report of {partition}")
    if args.only in (None, "lineage"):
        lineage_png(chromium, args.out / "lineage.png", args.lineage_path, 1500, 1150)
        shrink(args.out / "lineage.png", 1200)
        print(f"{args.out / 'lineage.png'}: {args.lineage_path} of dagster-webserver")


if __name__ == "__main__":
    main()

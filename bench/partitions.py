"""The daily-partitioned dbt models through Dagster: a full build against the hourly increment.

For each history length (`--days 30,90`): generates that many days of simulated access logs (the
demo network, `--listeners` per tenant and day), loads them, and materializes the download
models through Dagster as a first load does (pipelines/phases.py: the unpartitioned models,
then the partitioned ones over every day as one run, then what is built from them), timed as
the baseline. Then one hour's worth of new events arrives on the last day; the partition sensor
decides which days changed (the loader's ledger), and those days' partitions and the tables built
from them are materialized through Dagster, timed. Prints the increment as a share of the full
build (targets: <= 5 % at 30 days, <= 2 % at 90 days).

    python bench/partitions.py [--days 30,90] [--listeners 150] [--database-url URL]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import psycopg
from dagster_runs import DagsterRuns, combined, slowest
from ingest import LOADER, network_for_bench
from scratch import scratch_warehouse

from assets.dbt import window_reach_days
from assets.ingestion.rss_ingest import FeedSource, RssSources, ingest_rss
from assets.ingestion.user_agents import read_patterns, store_patterns
from pipelines.partition_sensor import day_ranges, out_of_date
from pipelines.phases import phases
from resources.settings import REPO_ROOT
from resources.warehouse import warehouse_at
from simulator.logs import generate_logs
from simulator.server import SimulatorServer
from simulator.truth import ground_truth

LAST_DAY = date(2026, 11, 30)


def download_targets(runs: DagsterRuns) -> set[dg.AssetKey]:
    """The download models and every dbt model they are built from."""
    targets = {key for key in runs.partitioned if key.path[0] == "marts"} | {dg.AssetKey(["marts", "fct_listener_engagement"])}
    return dg.AssetSelection.assets(*targets).upstream().resolve(runs.graph) & runs.dbt_keys


def load(url: str, landing: Path) -> int:
    out = subprocess.run([sys.executable, "-c", LOADER, url, str(landing)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["rows"]


def measure(url: str, work: Path, days: int, listeners: int) -> None:
    network = network_for_bench()
    with SimulatorServer(network) as server:
        truth = ground_truth(server.network, server.base_url)
        feeds = RssSources(feeds=[FeedSource(tenant_id=f["tenant_id"], url=f["feed_url"]) for f in truth["feeds"]],
                           allow_private_hosts=True, timeout_seconds=1.0, max_attempts=1, max_bytes=4_000_000)
        ingest_rss(warehouse_at(url), feeds, batch_id="bench")
    with psycopg.connect(url, autocommit=True) as conn:
        store_patterns(conn, read_patterns(REPO_ROOT / "resources" / "user_agents"), "bench")
    first = LAST_DAY - timedelta(days=days - 1)
    landing = work / "landing"
    lines = 0
    for week in range(0, days, 7):  # a week of days per call: listeners come back within a week
        span = [first + timedelta(days=week + n) for n in range(min(7, days - week))]
        lines += generate_logs(truth, landing, span, seed=42 + week, listeners_per_tenant=listeners).lines
    events = load(url, landing)

    runs = DagsterRuns(url)
    keys = download_targets(runs)
    full_seconds, full_per_model = runs.materialize(keys, first, LAST_DAY)
    with psycopg.connect(url, autocommit=True) as conn:
        downloads = conn.execute("select count(*) from marts.fct_downloads").fetchone()[0]
        cursor = out_of_date(conn, {}, window_reach_days())[2]

    # One hour's worth of new events on the last day: the day's traffic from 1/24 of the listeners.
    hour = work / "landing-hour"
    extra = generate_logs(truth, hour, [LAST_DAY], seed=7, listeners_per_tenant=max(1, listeners // 24))
    for path in hour.rglob("*"):
        if path.is_file():
            path.rename(path.with_name("hour-" + path.name))
    load(url, hour)
    with psycopg.connect(url, autocommit=True) as conn:
        changed, _, _ = out_of_date(conn, cursor, window_reach_days())
    # The hourly run: the partitioned models of those days and what is built from them (the
    # unpartitioned models upstream of them did not change).
    increment_keys = keys - phases(runs.graph, keys)[0][1]
    increment_seconds, per_model = combined([runs.materialize(increment_keys, low, min(high, LAST_DAY))
                                             for low, high in day_ranges(changed)])
    increment_models, full_models = sum(per_model.values()), sum(full_per_model.values())
    print(f"[{days} days] {lines:,} log lines, {events:,} events, {downloads:,} downloads; full build through "
          f"Dagster {full_seconds:.0f} s; after {extra.lines:,} new events on the last day, the sensor's days "
          f"{[f'{low}..{high}' for low, high in day_ranges(changed)]} and the tables built from them "
          f"{increment_seconds:.1f} s = {100 * increment_seconds / full_seconds:.1f} % of the full build "
          f"(target <= {5 if days <= 30 else 2} %); time in the models themselves: full {full_models:.1f} s, "
          f"increment {increment_models:.1f} s = {100 * increment_models / full_models:.1f} %; the increment's "
          f"slowest models: {slowest(per_model, full_per_model)}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", default="30,90")
    parser.add_argument("--listeners", type=int, default=150)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    for days in (int(d) for d in args.days.split(",")):
        work = Path(tempfile.mkdtemp(prefix="bench-partitions-"))
        try:
            with scratch_warehouse(args.database_url, work) as url:
                measure(url, work, days, args.listeners)
        finally:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

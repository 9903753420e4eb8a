"""Access-log ingestion and IAB counting at scale.

Generates about `--lines` log lines (the simulator's sessions for the demo network, the day
files repeated under further dates until the count is reached), then prints:

  (a) load rate of our loader (parse, hash, COPY, per-file ledger) in rows/s against a plain
      COPY of the very same rows into an identical table, measured in the same run;
  (b) peak RSS of the loader process;
  (c) the full dbt build (models, then data tests) over the loaded events, and the incremental
      build after one more hour of events, as a share of the full one;
  (d) p95 latency of five typical BI queries on the daily rollups.

`--parts memory` measures the loader's peak RSS on hostile inputs instead: one file of 5 M
distinct IPv6 client addresses and one file holding a 256 MB line, each against the loader on a
small file in the same run (the baseline), as a ratio and in MiB (target: under 1 GiB).

`--formats default,s3,cloudfront` repeats (a) and (b) with every tenant's logs written as S3
access logs, then as CloudFront standard logs (the same requests; each run has its own
warehouse and its own plain-COPY baseline of the rows it loaded). (c) and (d) run for the
default formats only.

    python bench/ingest.py [--lines 10000000] [--database-url URL] [--parts all|load]
                           [--formats default,s3,cloudfront] [--parts memory [--addresses 5000000]]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import psycopg
from scratch import scratch_warehouse

from assets.ingestion.rss_ingest import FeedSource, RssSources, ingest_rss
from assets.ingestion.user_agents import read_patterns, store_patterns
from resources.settings import REPO_ROOT
from resources.warehouse import dbt_env, warehouse_at
from simulator.logs import generate_logs
from simulator.server import SimulatorServer
from simulator.network import build_network
from simulator.truth import ground_truth

LOADER = """
import json, resource, sys, time
from pathlib import Path
import psycopg
from assets.ingestion.listener_logs_load import discover, load_file
from assets.ingestion.listener_logs_parse import IpHasher
url, landing = sys.argv[1], Path(sys.argv[2])
rows = 0
started = time.perf_counter()
with psycopg.connect(url, autocommit=True) as conn:
    for log in discover(landing, settle_seconds=0):
        rows += load_file(conn, log, IpHasher.for_tenant(b"bench", log.tenant_id), "bench").rows
seconds = time.perf_counter() - started
# VmHWM is this process's own peak: ru_maxrss survives execve, so it would report the bench's
# (the parent that generated the logs) when that was larger.
status = Path("/proc/self/status")
hwm = [int(line.split()[1]) for line in status.read_text().splitlines() if line.startswith("VmHWM:")] if status.exists() else []
print(json.dumps({"rows": rows, "seconds": seconds,
                  "max_rss_kib": hwm[0] if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""

BI_QUERIES = {
    "tenant daily trend, 30 days": "select download_date, downloads, unique_listeners from marts.fct_downloads_daily_by_tenant where tenant_id = %(tenant)s and download_date >= %(since)s order by 1",
    "top 10 episodes of a tenant": "select episode_id, sum(downloads) d from marts.fct_downloads_daily_by_episode where tenant_id = %(tenant)s and download_date >= %(since)s group by 1 order by 2 desc limit 10",
    "app share of a tenant": "select app_name, sum(downloads) d from marts.fct_downloads_daily_by_app where tenant_id = %(tenant)s group by 1 order by 2 desc",
    "country breakdown of a tenant": "select country_code, sum(downloads) from marts.fct_downloads_daily_by_country where tenant_id = %(tenant)s group by 1 order by 2 desc",
    "show trend per week": "select date_trunc('week', download_date) w, podcast_id, sum(downloads) from marts.fct_downloads_daily_by_show where tenant_id = %(tenant)s group by 1, 2 order by 1, 2",
}


def network_for_bench():
    return build_network(seed=42)


def make_logs(landing: Path, lines_wanted: int, log_format: str = "default") -> int:
    """Simulated traffic, three days at a time (a week apart, new listeners each time) until
    `lines_wanted` lines are written; every tenant's in `log_format` unless it is `default`."""
    network = network_for_bench()
    truth = ground_truth(network, "http://127.0.0.1:8765")
    formats = None
    if log_format != "default":
        formats = {ep["tenant_id"]: log_format for ep in truth["episodes"]}
    lines, week = 0, 0
    while lines < lines_wanted:
        first = date(2026, 9, 1) + timedelta(days=7 * week)
        days = [first, first + timedelta(days=1), first + timedelta(days=2)]
        lines += generate_logs(truth, landing, days, seed=42 + week, listeners_per_tenant=1200, formats=formats).lines
        week += 1
    return lines


def measure(url: str, work: Path, landing: Path, parts: str, label: str = "default") -> None:
    """Load the logs, COPY them again as the baseline, build dbt, time the BI queries."""
    with SimulatorServer(network_for_bench()) as server:  # the episodes the logs refer to
        truth = ground_truth(server.network, server.base_url)
        feeds = RssSources(feeds=[FeedSource(tenant_id=f["tenant_id"], url=f["feed_url"]) for f in truth["feeds"]],
                           allow_private_hosts=True, timeout_seconds=1.0, max_attempts=1, max_bytes=4_000_000)
        ingest_rss(warehouse_at(url), feeds, batch_id="bench")

    out = subprocess.run([sys.executable, "-c", LOADER, url, str(landing)], capture_output=True, text=True, check=True)
    loader = json.loads(out.stdout.strip().splitlines()[-1])
    ours_rate = loader["rows"] / loader["seconds"]

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("create table raw.listener_events_copy (like raw.listener_events including all)")
        buffer = io.BytesIO()
        with conn.cursor().copy("copy raw.listener_events to stdout") as copy:
            for chunk in copy:
                buffer.write(chunk)
        payload = buffer.getvalue()
        started = time.perf_counter()
        with conn.cursor().copy("copy raw.listener_events_copy from stdin") as copy:
            for start in range(0, len(payload), 1 << 20):
                copy.write(payload[start:start + (1 << 20)])
        copy_seconds = time.perf_counter() - started
        copied = conn.execute("select count(*) from raw.listener_events_copy").fetchone()[0]
        conn.execute("drop table raw.listener_events_copy")
    copy_rate = copied / copy_seconds
    print(f"(a) [{label}] our loader: {loader['rows']:,} rows in {loader['seconds']:.1f} s = {ours_rate:,.0f} rows/s; "
          f"plain COPY of the same rows: {copy_seconds:.1f} s = {copy_rate:,.0f} rows/s; "
          f"ratio {ours_rate / copy_rate:.2f}x (target >= 0.7x)")
    print(f"(b) [{label}] loader peak RSS: {loader['max_rss_kib'] / 1024:,.0f} MiB (target < 1024 MiB)")
    if parts == "load":
        return

    with psycopg.connect(url, autocommit=True) as conn:
        store_patterns(conn, read_patterns(REPO_ROOT / "resources" / "user_agents"), "bench")
    dbt_bin = Path(sys.executable).with_name("dbt")
    project = REPO_ROOT / "dbt_project"
    env = {**os.environ, **dbt_env(url)}

    def dbt(command: str, *extra: str) -> float:
        started = time.perf_counter()
        done = subprocess.run([str(dbt_bin), command, "--project-dir", str(project), "--profiles-dir", str(project),
                               "--target-path", str(work / "target"), "--log-path", str(work / "logs"),
                               "--exclude", "test_type:unit", *extra],
                              capture_output=True, text=True, env=env)
        if done.returncode != 0:
            print(done.stdout[-3000:])
            raise SystemExit(f"dbt {command} failed")
        return time.perf_counter() - started

    full_run = dbt("run", "--full-refresh")
    full_test = dbt("test")
    with psycopg.connect(url) as conn:
        downloads = conn.execute("select count(*) from marts.fct_downloads").fetchone()[0]
    # One hour's worth of new events: a further day of traffic from 1/24 of the listeners.
    hour = work / "landing-hour"
    network = network_for_bench()
    extra = generate_logs(ground_truth(network, "http://127.0.0.1:8765"), hour, [date(2027, 6, 1)], seed=7,
                          listeners_per_tenant=50)
    subprocess.run([sys.executable, "-c", LOADER, url, str(hour)], capture_output=True, text=True, check=True)
    incremental_run = dbt("run")
    incremental_test = dbt("test")
    print(f"(c) full dbt build over {loader['rows']:,} events ({downloads:,} downloads): models {full_run:.0f} s "
          f"+ data tests {full_test:.0f} s; after {extra.lines:,} new events (one hour's worth), incremental "
          f"models {incremental_run:.1f} s = {100 * incremental_run / full_run:.1f} % of full (target <= 5 %), "
          f"with the data tests {incremental_run + incremental_test:.1f} s = "
          f"{100 * (incremental_run + incremental_test) / (full_run + full_test):.1f} % of full")

    with psycopg.connect(url) as conn:
        tenant = conn.execute("select tenant_id from marts.fct_downloads_daily_by_tenant limit 1").fetchone()[0]
        params = {"tenant": tenant, "since": date(2026, 11, 1)}
        for name, statement in BI_QUERIES.items():
            timings = []
            for _ in range(30):
                started = time.perf_counter()
                conn.execute(statement, params).fetchall()
                timings.append((time.perf_counter() - started) * 1000)
            timings.sort()
            print(f"(d) {name}: p95 {timings[int(len(timings) * 0.95) - 1]:.1f} ms (target < 200 ms)")


def hostile_line(n: int) -> bytes:
    """A good combined line from the n-th distinct IPv6 address (the /64 changes too)."""
    return (f'cdn.x:443 2001:db8:{n >> 16:x}:{n & 0xffff:x}::{n % 251 + 1:x} - - [01/Nov/2026:'
            f'{n // 3600 % 24:02}:{n // 60 % 60:02}:{n % 60:02} +0000] "GET /show/ep-{n % 97}.mp3 HTTP/1.1" '
            f'206 {n % 9000 + 2} "-" "AppleCoreMedia/1.0" "bytes=0-"\n').encode()


def peak_rss(url: str, landing: Path) -> tuple[dict, float]:
    """Load every file under `landing` in a fresh process: its output and peak RSS in MiB."""
    out = subprocess.run([sys.executable, "-c", LOADER, url, str(landing)], capture_output=True, text=True, check=True)
    loader = json.loads(out.stdout.strip().splitlines()[-1])
    return loader, loader["max_rss_kib"] / 1024


def measure_memory(database_url: str | None, addresses: int) -> None:
    """Peak RSS of the loader on hostile inputs against the loader on a small file."""
    work = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    try:
        write_lines(work / "small" / "northwind" / "small-2026-11-01.log", (hostile_line(n) for n in range(10_000)))
        many = work / "many" / "northwind" / "many-2026-11-01.log"
        write_lines(many, (hostile_line(n) for n in range(addresses)))
        long = work / "long" / "northwind" / "long-2026-11-01.log"
        long.parent.mkdir(parents=True)
        with open(long, "wb") as handle:
            handle.writelines(hostile_line(n) for n in range(1000))
            for _ in range(256):
                handle.write(b"x" * (1 << 20))
            handle.write(b"\n")
            handle.writelines(hostile_line(n) for n in range(1000, 2000))
        with scratch_warehouse(database_url, work) as url:
            small, baseline = peak_rss(url, work / "small")
            print(f"(m) loader peak RSS, {small['rows']:,} rows of a small file (baseline): {baseline:,.0f} MiB")
            loaded, mib = peak_rss(url, work / "many")
            print(f"(m) {addresses:,} distinct IPv6 addresses in one file ({many.stat().st_size / 1e6:,.0f} MB, "
                  f"{loaded['rows']:,} rows in {loaded['seconds']:.0f} s): peak RSS {mib:,.0f} MiB = "
                  f"{mib / baseline:.2f}x the baseline (target < 1024 MiB)")
            loaded, mib = peak_rss(url, work / "long")
            with psycopg.connect(url) as conn:
                refused = conn.execute("select reason_code, count(*) from quarantine.listener_events "
                                       "where file_key like 'northwind/long-%' group by 1").fetchall()
            print(f"(m) one line of 256 MiB between 2,000 good lines ({loaded['rows']:,} rows loaded, quarantined "
                  f"{dict(refused)}): peak RSS {mib:,.0f} MiB = {mib / baseline:.2f}x the baseline (target < 1024 MiB)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def write_lines(path: Path, lines) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        handle.writelines(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=10_000_000)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--parts", choices=("all", "load", "memory"), default="all",
                        help="load: only (a) and (b), the loader against plain COPY; memory: peak RSS on hostile inputs")
    parser.add_argument("--addresses", type=int, default=5_000_000,
                        help="--parts memory: distinct client addresses in the many-addresses file")
    parser.add_argument("--formats", default="default",
                        help="comma-separated: default (vhost_combined + cdn_json), s3, cloudfront, combined")
    args = parser.parse_args()
    if args.parts == "memory":
        measure_memory(args.database_url, args.addresses)
        return

    for log_format in args.formats.split(","):
        work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
        landing = work / "landing"
        started = time.perf_counter()
        lines = make_logs(landing, args.lines, log_format)
        size = sum(p.stat().st_size for p in landing.rglob("*") if p.is_file())
        print(f"[{log_format}] generated {lines:,} lines ({size / 1e6:,.0f} MB on disk, some gzip) "
              f"in {time.perf_counter() - started:.0f} s")
        try:
            with scratch_warehouse(args.database_url, work) as url:
                measure(url, work, landing, args.parts if log_format == "default" else "load", log_format)
        finally:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Feed polling throughput: our poller vs a sequential `feedparser.parse(url)` loop.

1,000 simulated feeds are served by the simulator in its own process. Our poller polls them
once (warm-up: stores every feed and its validators), 10 % of the feeds then change, and the
timed poll fetches, parses and stores what changed while the rest answer 304. The baseline,
in the same run, is the naive loop: `feedparser.parse(url)` for each feed, one after another
(it fetches with urllib and parses everything every time; it stores nothing).

    python bench/feeds.py [--feeds 1000] [--changed-every 10] [--latency-ms 0]

With `--latency-ms 50` every response is delayed as a feed host across the internet would be;
the default is bare loopback, where only CPU counts.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import feedparser
import httpx
from scratch import scratch_warehouse

from assets.ingestion.rss_ingest import RssSources, ingest_rss, load_sources
from simulator.__main__ import write_network_files
from resources.warehouse import warehouse_at


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(base_url: str) -> None:
    for _ in range(100):
        try:
            httpx.get(base_url + "/", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError("simulator did not start")


def poll_twice(url: str, sources: RssSources, port: int, changed_every: int):
    """The warm-up poll (stores every feed), a change to every n-th feed, the timed poll."""
    started = time.perf_counter()
    warm = ingest_rss(warehouse_at(url), sources, batch_id="warm-up")
    warm_seconds = time.perf_counter() - started
    changed = int(httpx.post(f"http://127.0.0.1:{port}/admin/change?every={changed_every}").text)
    started = time.perf_counter()
    timed = ingest_rss(warehouse_at(url), sources, batch_id="timed")
    return warm, warm_seconds, changed, timed, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--changed-every", type=int, default=10)
    parser.add_argument("--database-url", default=None, help="default: a throwaway embedded PostgreSQL")
    parser.add_argument("--latency-ms", type=float, default=0.0,
                        help="delay the simulator adds to every response (0: bare loopback)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-feeds-"))
    port = free_port()
    tenants = 5
    write_network_files(work, seed=3, port=port, tenants=tenants, shows_per_tenant=args.feeds // tenants,
                        episodes_per_show=[10, 40], feed_defects=False)
    sources: RssSources = load_sources(work / "sources.yaml")
    urls = [f.url for f in sources.feeds]
    server = subprocess.Popen(
        [sys.executable, "-m", "simulator", "serve", "--sources", str(work / "sources.yaml"),
         "--latency-ms", str(args.latency_ms)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_up(f"http://127.0.0.1:{port}")
        with scratch_warehouse(args.database_url, work) as url:
            warm, warm_seconds, changed, timed, ours = poll_twice(url, sources, port, args.changed_every)

        started = time.perf_counter()
        entries = 0
        for feed_url in urls:
            entries += len(feedparser.parse(feed_url).entries)
        baseline = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait()

    n = len(urls)
    print(f"feeds: {n}, changed before the timed poll: {changed}, added latency per response: {args.latency_ms} ms")
    print(f"first poll (all {warm.outcomes['fetched']} fetched, parsed, stored): {warm_seconds:.2f} s = {n / warm_seconds:.0f} polls/s")
    print(f"timed poll: {timed.outcomes['fetched']} fetched + {timed.outcomes['not_modified']} not modified "
          f"in {ours:.2f} s = {n / ours:.0f} polls/s")
    print(f"baseline sequential feedparser.parse(url): {n} feeds ({entries} entries) in {baseline:.2f} s = {n / baseline:.0f} polls/s")
    print(f"speed-up (timed poll vs baseline): {baseline / ours:.1f}x (target >= 20x)")


if __name__ == "__main__":
    main()

"""Platform API sync throughput against the simulator, clean and under faults.

The simulator serves the demo network's platform APIs from its own process on loopback; the
warehouse is a throwaway embedded PostgreSQL (or DATABASE_URL's server). Three runs over the
same window, all platforms the registry knows and sources configure (Buzzsprout with its
per-download records), each platform after the other, shows side by side as in production:

  clean     a full sync (catalog and daily streams) into empty tables;
  baseline  the very pages the clean sync received (logged by the simulator), fetched again
            with plain httpx at the same concurrency: bodies read, nothing parsed or stored;
  faulty    a full sync into emptied tables against a simulator failing `--faults` of the
            requests (429 with Retry-After, 5xx, timeouts, truncated JSON, lists that shift).

It prints records per second (rows stored + records quarantined, per second of wall time),
the ratios clean/baseline (what parsing, validating and storing cost on top of fetching) and
faulty/clean (what the faults cost), and where the shows' time went: inside HTTP exchanges
(`ApiStats.network_seconds`: sending, the simulator's work, receiving the body), pacing and
back-off waits, storing (COPY + merge + commit) and the rest of our code.

Time-outs and limits are scaled down so the run measures code rather than waiting: the client
times out after `--timeout` s against a simulator that hangs for twice that, Retry-After is 0,
and the Transistor and Podbean limits are raised to 1,000 requests/s so pacing bounds neither run.

    python bench/apis.py [--days 4] [--faults 0.2] [--database-url URL]
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path

import httpx
import psycopg
import stamina
from psycopg import sql
from scratch import scratch_warehouse

from assets.ingestion.platforms.base import SyncStats
from assets.ingestion.platforms.sync import PLATFORMS, PlatformSources, ensure_platform_tables, sync_platform
from simulator.network import build_network
from simulator.platforms import ALL_FAULT_KINDS, API_LAST_DAY, platform_sources
from resources.warehouse import warehouse_at

SEED = 42
TRANSISTOR_LIMIT = (1000, 1.0)

# The simulator in its own process; it logs the API GETs it answered 200 (for the baseline) and
# writes the log on SIGUSR1, and again when terminated.
SERVER = """
import json, signal, sys
from simulator.network import build_network
from simulator.server import SimulatorServer
args = json.loads(sys.argv[1])
server = SimulatorServer(build_network(seed=args["seed"]), port=args["port"], api_faults=args["faults"],
                         api_fault_seed=3, api_fault_kinds=tuple(args["kinds"]), api_retry_after=0,
                         api_hang_seconds=args["hang"], transistor_limit=tuple(args["limit"]),
                         podbean_bucket=tuple(args["limit"]))
log, handle = [], server.apis.handle
def logged(path, query, headers, method="GET"):
    reply = handle(path, query, headers, method)
    if reply.status == 200 and method == "GET":
        log.append([path, query, {k: headers[k] for k in ("Authorization", "x-api-key") if headers.get(k)}])
    return reply
server.apis.handle = logged
def dump(*_):
    with open(args["log"], "w") as out:
        json.dump({"requests": log, "faults": server.apis.faults_served}, out)
def stop(*_):
    dump()
    sys.exit(0)
signal.signal(signal.SIGUSR1, dump)
signal.signal(signal.SIGTERM, stop)
server.serve_forever()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Simulator:
    def __init__(self, work: Path, name: str, faults: float, hang: float):
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_file = work / f"{name}-requests.json"
        spec = {"seed": SEED, "port": self.port, "faults": faults, "kinds": list(ALL_FAULT_KINDS), "hang": hang,
                "limit": list(TRANSISTOR_LIMIT), "log": str(self.log_file)}
        self.process = subprocess.Popen([sys.executable, "-c", SERVER, json.dumps(spec)])
        for _ in range(200):
            try:
                httpx.get(self.base_url + "/", timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("simulator did not start")

    def log(self) -> dict:
        """The requests answered so far."""
        self.log_file.unlink(missing_ok=True)
        self.process.send_signal(signal.SIGUSR1)
        for _ in range(300):
            try:
                return json.loads(self.log_file.read_text())
            except (FileNotFoundError, ValueError):  # not written yet, or not completely
                time.sleep(0.1)
        raise RuntimeError("the simulator did not write its request log")

    def stop(self) -> dict:
        self.process.terminate()
        self.process.wait(timeout=30)
        return json.loads(self.log_file.read_text())


def sources_for(network, base_url: str, timeout: float):
    section, environ = platform_sources(network, base_url, timeout_seconds=timeout, wait_initial_seconds=0.05,
                                        max_attempts=12, rate_limit_requests=TRANSISTOR_LIMIT[0],
                                        rate_limit_seconds=TRANSISTOR_LIMIT[1])
    if "buzzsprout" in section:
        section["buzzsprout"]["download_details"] = True
    return PlatformSources.model_validate(section), environ


def empty_tables(url: str) -> None:
    tables = [s.qualified_table for p in PLATFORMS.values() for s in p.streams]
    tables += [sql.Identifier("quarantine", "platform_records"), sql.Identifier("ops", "platform_sync_cursors")]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("truncate {}").format(sql.SQL(", ").join(tables)))


def full_sync(url: str, sources, environ, start: date, end: date, batch_id: str) -> tuple[SyncStats, float, list[str]]:
    total, synced = SyncStats(), []
    started = time.perf_counter()
    for name in PLATFORMS:
        config = getattr(sources, name, None)
        if config is None or not config.shows:
            continue
        stats = sync_platform(warehouse_at(url), sources, name, batch_id, start, end, environ=environ)
        if stats.failed_sources:
            raise SystemExit(f"{name}: {stats.failed_sources}")
        total.merge(stats)
        total.requests += stats.requests
        total.retries.update(stats.retries)
        total.network_seconds += stats.network_seconds
        total.wait_seconds += stats.wait_seconds
        synced.append(name)
    return total, time.perf_counter() - started, synced


def records(stats: SyncStats) -> int:
    return sum(stats.rows_seen.values()) + sum(stats.quarantined.values())


def replay(base_url: str, requests: list, concurrency: int) -> tuple[float, int, int]:
    """Fetch the logged requests again with plain httpx: (seconds, bytes, responses not 200)."""
    local = threading.local()
    clients: list[httpx.Client] = []
    lock = threading.Lock()

    def fetch(request) -> tuple[int, int]:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(timeout=30)
            with lock:
                clients.append(client)
        path, query, headers = request
        response = client.get(f"{base_url}{path}?{query}" if query else f"{base_url}{path}", headers=headers)
        return len(response.content), response.status_code

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(fetch, requests))
    seconds = time.perf_counter() - started
    for client in clients:
        client.close()
    return seconds, sum(n for n, _ in results), sum(status != 200 for _, status in results)


def shares(stats: SyncStats) -> str:
    busy = stats.show_seconds
    network, wait, store = stats.network_seconds, stats.wait_seconds, stats.store_seconds
    rest = busy - network - wait - store
    return (f"of the shows' time ({busy:.1f} s summed over shows run side by side): network {100 * network / busy:.0f} %, "
            f"pacing/back-off {100 * wait / busy:.0f} %, storing {100 * store / busy:.0f} %, "
            f"other own code {100 * rest / busy:.0f} %")


def measure(args, work: Path, network, start: date, end: date) -> None:
    with scratch_warehouse(args.database_url, work) as url:
        ensure_platform_tables(warehouse_at(url))
        clean_sim = Simulator(work, "clean", 0.0, 2 * args.timeout)
        try:
            sources, environ = sources_for(network, clean_sim.base_url, args.timeout)
            clean, clean_seconds, synced = full_sync(url, sources, environ, start, end, "bench-clean")
            clean_log = clean_sim.log()
            concurrency = max(getattr(sources, name).concurrency or 4 for name in synced)
            # The same simulator answers the baseline: the OAuth tokens the sync obtained stay valid.
            base_seconds, base_bytes, base_errors = replay(clean_sim.base_url, clean_log["requests"], concurrency)
        finally:
            clean_sim.stop()

        empty_tables(url)
        faulty_sim = Simulator(work, "faulty", args.faults, 2 * args.timeout)
        try:
            sources, environ = sources_for(network, faulty_sim.base_url, args.timeout)
            faulty, faulty_seconds, _ = full_sync(url, sources, environ, start, end, "bench-faulty")
        finally:
            faulty_log = faulty_sim.stop()

    n_clean, n_faulty = records(clean), records(faulty)
    clean_rate, faulty_rate = n_clean / clean_seconds, n_faulty / faulty_seconds
    base_rate = n_clean / base_seconds
    print(f"window {start}..{end} ({args.days} days); platforms {', '.join(synced)} "
          f"(Buzzsprout with per-download records); {concurrency} shows at a time per platform")
    print(f"clean sync: {n_clean:,} records ({sum(clean.rows_written.values()):,} rows written, "
          f"{sum(clean.quarantined.values()):,} quarantined) from {clean.requests:,} requests in {clean_seconds:.1f} s "
          f"= {clean_rate:,.0f} records/s")
    print(f"  {shares(clean)}")
    print(f"baseline: the same {len(clean_log['requests']):,} pages ({base_bytes / 1e6:.1f} MB) fetched with plain httpx, "
          f"{concurrency} threads, nothing parsed or stored: {base_seconds:.1f} s = {base_rate:,.0f} records/s"
          f"{f' ({base_errors} not 200)' if base_errors else ''}")
    print(f"ratio clean sync / baseline: {clean_rate / base_rate:.2f}x "
          f"(1.0 would mean parsing, validating and storing cost nothing on top of fetching)")
    print(f"faulty sync ({100 * args.faults:.0f} % of requests: {json.dumps(faulty_log['faults'], sort_keys=True)}): "
          f"{n_faulty:,} records from {faulty.requests:,} requests ({sum(faulty.retries.values()):,} retried: "
          f"{dict(sorted(faulty.retries.items()))}) in {faulty_seconds:.1f} s = {faulty_rate:,.0f} records/s")
    print(f"  {shares(faulty)}")
    print(f"ratio faulty / clean: {faulty_rate / clean_rate:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=4, help="the daily window, ending on the simulator's last day")
    parser.add_argument("--faults", type=float, default=0.2)
    parser.add_argument("--timeout", type=float, default=0.5, help="client timeout; the simulator hangs for twice it")
    parser.add_argument("--database-url", default=None, help="default: a throwaway embedded PostgreSQL")
    args = parser.parse_args()
    stamina.instrumentation.set_on_retry_hooks([])  # one log line per retry would drown the figures

    end = API_LAST_DAY
    start = end - timedelta(days=args.days - 1)
    network = build_network(seed=SEED)
    work = Path(tempfile.mkdtemp(prefix="bench-apis-"))
    try:
        measure(args, work, network, start, end)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

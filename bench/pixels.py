"""Peak memory of the conversion loader on a gzip bomb-like pixel file.

Writes two landing folders and loads each with `sync_conversions` in its own process (a new
database each), printing the process's peak RSS:

  baseline  one gzipped pixel file of `--records` valid events;
  bomb      the same events plus one line of `--bomb-mb` MB (a JSON string of one repeated
            character, so the gzipped file stays around half a megabyte: the issue's 510 KB file).

The figure is the bomb's peak RSS against the baseline's (a flat loader: about 1×). The bomb's
long line is quarantined (`record_too_large`); the events are stored in both runs.
`--code DIR` loads with the loader of another checkout (e.g. the one before streaming).

    python bench/pixels.py [--records 2000] [--bomb-mb 512] [--database-url URL] [--code DIR]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from scratch import scratch_warehouse

from resources.settings import REPO_ROOT

LOADER = """
import json, sys
from pathlib import Path
from assets.ingestion.campaigns import CampaignSources
from assets.ingestion.conversions import sync_conversions
from resources.warehouse import warehouse_at
stats = sync_conversions(warehouse_at(sys.argv[1]), CampaignSources(), Path(sys.argv[2]), b"bench", [], "bench")
print(json.dumps({"rows": stats.fetched, "quarantined": dict(stats.quarantined)}))
"""


def pixel(n: int) -> str:
    return json.dumps({"event_id": f"ev-{n}", "advertiser_id": "sp-bench", "event": "purchase",
                       "ts": "2026-11-03T10:00:00Z", "ip": f"203.0.113.{n % 250}", "ua": "Mozilla/5.0",
                       "value": "12.50", "currency": "USD", "page_url": "https://shop.example/p?utm_campaign=x"})


def write_landing(folder: Path, records: int, bomb_bytes: int) -> Path:
    path = folder / "bench" / "pixel-week.jsonl.gz"
    path.parent.mkdir(parents=True)
    with gzip.open(path, "wb", compresslevel=9) as out:
        for n in range(records // 2):
            out.write(pixel(n).encode() + b"\n")
        if bomb_bytes:
            out.write(b'{"event_id": "bomb", "ua": "')
            block = b"A" * (1 << 20)
            for _ in range(bomb_bytes // len(block)):
                out.write(block)
            out.write(b'"}\n')
        for n in range(records // 2, records):
            out.write(pixel(n).encode() + b"\n")
    return path


def load(url: str, landing: Path, code: Path) -> dict:
    """The load's outcome and its process's peak RSS (also when the load fails: then `error`)."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen([sys.executable, "-c", LOADER, url, str(landing)], env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        result = {"peak_rss_kib": usage.ru_maxrss}
        if process.returncode != 0:
            return {**result, "rows": 0, "quarantined": {}, "error": err.read().strip().splitlines()[-1][:200]}
        return {**result, **json.loads(out.read().strip().splitlines()[-1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--bomb-mb", type=int, default=512)
    parser.add_argument("--database-url")
    parser.add_argument("--code", type=Path, default=REPO_ROOT, help="the checkout whose loader runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-pixels-") as tmp:
        work = Path(tmp)
        results = {}
        for name, bomb in (("baseline", 0), ("bomb", args.bomb_mb << 20)):
            path = write_landing(work / name, args.records, bomb)
            with scratch_warehouse(args.database_url, work / f"{name}-db") as url:
                results[name] = {**load(url, work / name, args.code), "gzip_bytes": path.stat().st_size}
        for name, r in results.items():
            print(f"{name:8}  file {r['gzip_bytes'] / 1024:,.0f} KiB gzipped  rows {r['rows']:,}  "
                  f"quarantined {r['quarantined']}  peak RSS {r['peak_rss_kib'] / 1024:,.0f} MiB"
                  + (f"  FAILED: {r['error']}" if "error" in r else ""))
        print(f"bomb / baseline peak RSS: {results['bomb']['peak_rss_kib'] / results['baseline']['peak_rss_kib']:.2f}x")


if __name__ == "__main__":
    main()

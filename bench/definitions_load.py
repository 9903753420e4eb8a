"""Code-location load time: `from pipelines.definitions import defs` in a fresh interpreter,
against `import dagster` measured the same way in the same run.

Every process that serves the code location (webserver, daemon, each run worker) loads the
definitions, so their cost beyond importing Dagster itself is what this measures. The first load
in a fresh checkout also runs `dbt parse` (no manifest yet): one untimed load comes first.
Each figure is the median of `--repeat` loads; the ratio is definitions / dagster.

    python bench/definitions_load.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
TIMED = ("import time, sys; t = time.perf_counter(); {statement}; "
         "print(time.perf_counter() - t); print('great_expectations' in sys.modules)")


def load_seconds(statement: str) -> tuple[float, bool]:
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", TIMED.format(statement=statement)],
                         capture_output=True, text=True, check=True, cwd=REPO_ROOT)
    seconds, gx_loaded = out.stdout.split()[-2:]
    return float(seconds), gx_loaded == "True"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    load_seconds("from pipelines.definitions import defs")  # warm-up: manifest, bytecode caches
    baseline, definitions, gx = [], [], False
    for _ in range(args.repeat):
        baseline.append(load_seconds("import dagster")[0])
        seconds, gx_loaded = load_seconds("from pipelines.definitions import defs")
        definitions.append(seconds)
        gx = gx or gx_loaded
    base, defs = statistics.median(baseline), statistics.median(definitions)
    print(f"import dagster:                         {base:6.2f} s (median of {args.repeat})")
    print(f"from pipelines.definitions import defs: {defs:6.2f} s (median of {args.repeat})")
    print(f"ratio definitions / dagster:            {defs / base:6.2f}")
    print(f"Great Expectations imported at load:    {'yes' if gx else 'no (lazy, inside the checks)'}")


if __name__ == "__main__":
    main()

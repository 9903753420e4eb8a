"""What a deployed run pays to start its steps: the feed poll's selection (`rss_ingest`, eight
steps: the feeds, their three quality suites, the documents, the ad slots, their suite and their
truth check) run by `dagster job execute`, as a run worker runs it, with each way Dagster can
start a step:

- `spawn`: the multiprocess executor's default, a fresh interpreter per step that imports the
  code location again;
- `forkserver`: the same executor, each step forked from a server that imported the code
  location once per run (the code location's executor, `pipelines/definitions.py`);
- `in_process`: every step in the run worker itself, one after the other (the source loads'
  executor, `assets.run_tags.source_job`).

One untimed poll loads the simulated network first; the timed polls find nothing new (the
daemon's usual poll). The variants alternate, `--repeat` times each; the figure is each one's
median against `spawn`'s, measured in the same run.

    python bench/step_processes.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.scratch import scratch_warehouse  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
SEED = 42
FORKSERVER = {"start_method": {"forkserver": {"preload_modules": ["pipelines.definitions"]}}}


def _variants() -> dict[str, dg.ExecutorDefinition]:
    return {"spawn": dg.multiprocess_executor.configured({"start_method": {"spawn": {}}}, name="spawn"),
            "forkserver": dg.multiprocess_executor.configured(FORKSERVER, name="forkserver"),
            "in_process": dg.in_process_executor}


VARIANTS = list(_variants())


def _defs() -> dg.Definitions:
    """The code location with the feed poll's selection once per executor (`poll_<variant>`)."""
    from pipelines.definitions import defs as code_location
    from pipelines.jobs import rss_ingest_job

    jobs = [dg.define_asset_job(f"poll_{name}", selection=rss_ingest_job.selection, executor_def=executor)
            for name, executor in _variants().items()]
    return dg.Definitions.merge(code_location, dg.Definitions(jobs=jobs))


def __getattr__(name: str):  # `dagster job execute -m bench.step_processes` loads `defs`
    if name == "defs":
        return _defs()
    raise AttributeError(name)


def poll(env: dict, variant: str) -> float:
    """Seconds for one run of the feed poll with the variant's executor."""
    started = time.perf_counter()
    done = subprocess.run([str(Path(sys.executable).with_name("dagster")), "job", "execute", "-m",
                           "bench.step_processes", "-a", "defs", "-j", f"poll_{variant}"],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0 or "RUN_SUCCESS" not in done.stdout + done.stderr:
        raise SystemExit(f"{variant}: the poll failed\n{(done.stdout + done.stderr)[-4000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from simulator.__main__ import write_ad_slot_truth, write_network_files
    from simulator.network import build_network
    from simulator.server import SimulatorServer

    with tempfile.TemporaryDirectory(prefix="bench-steps-") as tmp:
        work = Path(tmp)
        with scratch_warehouse(os.environ.get("DATABASE_URL"), work) as url:
            network = build_network(seed=SEED)
            with SimulatorServer(network) as server:
                port = int(server.base_url.rsplit(":", 1)[1])
                data_dir = work / "data"
                write_network_files(data_dir / "simulator", SEED, port)
                write_ad_slot_truth(data_dir / "simulator", network, server.base_url)
                (work / "dagster_home").mkdir()
                env = {**os.environ, "DATABASE_URL": url, "PODCAST_DATA_DIR": str(data_dir),
                       "DAGSTER_HOME": str(work / "dagster_home"), "PODCAST_IP_HASH_SECRET": "bench-steps",
                       "PYTHONPATH": str(REPO_ROOT), "PYTHONWARNINGS": "ignore"}
                env.pop("DAGSTER_PG_URL", None)
                first = poll(env, "in_process")
                print(f"first poll (loads {len(network.shows)} feeds and their documents): {first:.1f} s")
                seconds: dict[str, list[float]] = {v: [] for v in VARIANTS}
                for _ in range(args.repeat):
                    for variant in VARIANTS:
                        seconds[variant].append(poll(env, variant))
    base = statistics.median(seconds["spawn"])
    for variant, values in seconds.items():
        median = statistics.median(values)
        print(f"{variant:11s} median {median:6.1f} s of {args.repeat} ({', '.join(f'{v:.1f}' for v in values)}): "
              f"{median / base:5.2f}x spawn")


if __name__ == "__main__":
    main()

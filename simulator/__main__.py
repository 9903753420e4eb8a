"""`python -m simulator generate|serve`: write the demo network's files, or serve its feeds."""

from __future__ import annotations

import json
import shutil
import signal
import sys
from datetime import date
from pathlib import Path

import click
import yaml

from assets.ingestion.listener_logs_load import file_sha256
from simulator.logs import DATACENTER_CIDRS, generate_logs, truth_document
from simulator.network import build_network
from simulator.platforms import platform_sources
from simulator.server import SimulatorServer
from simulator.truth import ground_truth


def write_network_files(out_dir: Path, seed: int, port: int, **network_args) -> dict:
    """Write ground_truth.json and sources.yaml for the network served on 127.0.0.1:port."""
    network = build_network(seed=seed, **network_args)
    base_url = f"http://127.0.0.1:{port}"
    truth = ground_truth(network, base_url)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "ground_truth.json").write_text(json.dumps(truth, indent=1, sort_keys=True))
    sources = {
        "rss": {
            "allow_private_hosts": True,  # the simulator lives on loopback
            "timeout_seconds": 2.0,
            "max_attempts": 2,
            "max_bytes": 4_000_000,
            "concurrency": 32,
            "feeds": [{"tenant_id": f["tenant_id"], "url": f["feed_url"]} for f in truth["feeds"]],
        },
        # Hosting-platform APIs; their credentials are in the environment (`simulator_credentials`).
        "platforms": platform_sources(network, base_url)[0],
        "simulator": {"seed": seed, "port": port, "network": network_args},
    }
    (out_dir / "sources.yaml").write_text(yaml.safe_dump(sources, sort_keys=False))
    return truth


def simulator_credentials(sources_file: Path) -> dict[str, str]:
    """The platform API credentials of the network a sources.yaml written here describes
    (environment variable -> value): the simulator derives them from its seed."""
    spec = (yaml.safe_load(sources_file.read_text()) or {}).get("simulator")
    if not spec:
        return {}
    network = build_network(seed=spec["seed"], **spec.get("network", {}))
    return platform_sources(network, "")[1]


DEMO_LOG_DAYS = [date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3)]


def write_log_files(truth: dict, landing: Path, out_dir: Path, seed: int, days: list[date] = DEMO_LOG_DAYS) -> dict:
    """Write the network's access logs into the landing folder (replacing earlier demo logs)
    and their ground truth (IAB downloads per episode and day) to out_dir/logs_truth.json."""
    if landing.exists():
        shutil.rmtree(landing)
    generated = truth_document(generate_logs(truth, landing, days, seed=seed))
    # The files the truth describes: a check applies it only to a warehouse holding exactly these.
    generated["file_sha256"] = sorted(file_sha256(p) for p in landing.rglob("*") if p.is_file())
    (out_dir / "datacenters.txt").write_text("# data-centre ranges of the simulated network\n" + "\n".join(DATACENTER_CIDRS) + "\n")
    (out_dir / "logs_truth.json").write_text(json.dumps(generated, indent=1, sort_keys=True))
    return generated


@click.group()
def cli() -> None:
    """The synthetic podcast network."""


@cli.command()
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True)
@click.option("--seed", default=42, show_default=True)
@click.option("--port", default=8765, show_default=True)
def generate(out_dir: Path, seed: int, port: int) -> None:
    truth = write_network_files(out_dir, seed, port)
    click.echo(f"{len(truth['feeds'])} feeds, {len(truth['episodes'])} episodes -> {out_dir}")


@cli.command()
@click.option("--sources", "sources_file", type=click.Path(path_type=Path, exists=True), required=True)
@click.option("--latency-ms", default=0.0, show_default=True, help="Delay added to every response.")
def serve(sources_file: Path, latency_ms: float) -> None:
    """Serve the network described in a sources.yaml written by `generate`."""
    spec = yaml.safe_load(sources_file.read_text())["simulator"]
    network = build_network(seed=spec["seed"], **spec.get("network", {}))
    server = SimulatorServer(network, port=spec["port"], latency_seconds=latency_ms / 1000)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    click.echo(f"serving {len(network.shows)} feeds on {server.base_url}", err=True)
    try:
        server.serve_forever()
    finally:
        server.stop()


if __name__ == "__main__":
    cli()

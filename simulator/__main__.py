"""`python -m simulator generate|serve`: write the demo network's files, or serve its feeds."""

from __future__ import annotations

import json
import shutil
import signal
import sys
import tempfile
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
    credentials = platform_sources(network, "")[1]
    credentials.update(campaign_credentials(sources_file))
    return credentials


def campaign_credentials(sources_file: Path) -> dict[str, str]:
    """The sponsorship-API and shop tokens a sources.yaml written here names (derived from the seed)."""
    from simulator.campaign_sources import shop_token, sponsorship_token

    document = yaml.safe_load(sources_file.read_text()) or {}
    seed = (document.get("simulator") or {}).get("seed")
    if seed is None:
        return {}
    out = {t["token_env"]: sponsorship_token(seed, t["tenant_id"])
           for t in (document.get("sponsorships") or {}).get("tenants", [])}
    out.update({s["token_env"]: shop_token(seed, s["store"]) for s in (document.get("shops") or {}).get("stores", [])})
    return out


DEMO_LOG_DAYS = [date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3)]
SHARED_IP_USER_AGENTS = 12  # the demo logs hold one shared address (an office NAT) per tenant
# The demo's tenants log as real hosts do: northwind's S3 bucket (server access logs: no range,
# the object's size), riverbend's CloudFront distribution (standard logs with ranges), summit's
# nginx in its default `combined` format (no host, no range). The tests' own warehouses keep the
# formats the loader read first (vhost_combined with the Range header, a JSON CDN export).
DEMO_LOG_FORMATS = {"northwind": "s3", "riverbend": "cloudfront", "summit": "combined"}


def write_log_files(truth: dict, landing: Path, out_dir: Path, seed: int, days: list[date] = DEMO_LOG_DAYS,
                    log_formats: dict[str, str] | None = DEMO_LOG_FORMATS) -> dict:
    """Write the network's access logs into the landing folder (replacing earlier demo logs;
    a file whose bytes are already there is left untouched, so a second demo re-delivers nothing)
    and their ground truth (IAB downloads per episode and day) to out_dir/logs_truth.json.

    `log_formats` (tenant -> `s3`, `cloudfront`, `combined`...) switches tenants to the shapes
    real hosts write (the requests and the truth stay the same); each switched tenant's media
    hosts go to the `listener_logs:` section of out_dir/sources.yaml, for logs without a host."""
    landing.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".demo-logs-", dir=landing.parent) as scratch:
        generated = truth_document(generate_logs(truth, Path(scratch), days, seed=seed,
                                                 shared_ip_user_agents=SHARED_IP_USER_AGENTS, formats=log_formats))
        _replace_changed(Path(scratch), landing)
    if log_formats:
        sources_file = out_dir / "sources.yaml"
        document = (yaml.safe_load(sources_file.read_text()) if sources_file.exists() else None) or {}
        hosts: dict[str, set[str]] = {}
        for ep in truth["episodes"]:
            if ep["tenant_id"] in log_formats and ep.get("enclosure_url_normalized"):
                hosts.setdefault(ep["tenant_id"], set()).add(ep["enclosure_url_normalized"].split("://", 1)[1].split("/", 1)[0])
        document["listener_logs"] = {"sources": [{"tenant_id": t, "media_hosts": sorted(h)} for t, h in sorted(hosts.items())]}
        sources_file.write_text(yaml.safe_dump(document, sort_keys=False))
    # The files the truth describes: a check applies it only to a warehouse holding exactly these.
    generated["file_sha256"] = sorted(file_sha256(p) for p in landing.rglob("*") if p.is_file())
    (out_dir / "datacenters.txt").write_text("# data-centre ranges of the simulated network\n" + "\n".join(DATACENTER_CIDRS) + "\n")
    (out_dir / "logs_truth.json").write_text(json.dumps(generated, indent=1, sort_keys=True))
    return generated


def _replace_changed(source: Path, target: Path) -> None:
    """Make `target` hold exactly the files of `source`: files with other bytes (or new) are moved
    in, files with the same bytes keep their time (nothing was delivered again), the rest go."""
    wanted = {p.relative_to(source) for p in source.rglob("*") if p.is_file()}
    for path in sorted(p for p in target.rglob("*") if p.is_file()):
        if path.relative_to(target) not in wanted:
            path.unlink()
    for relative in sorted(wanted):
        new, old = source / relative, target / relative
        if old.is_file() and old.stat().st_size == new.stat().st_size and old.read_bytes() == new.read_bytes():
            continue
        old.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(new, old)
    for folder in sorted((p for p in target.rglob("*") if p.is_dir()), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()


def campaign_world(truth: dict, seed: int, days: list[date] = DEMO_LOG_DAYS):
    """The sponsorship side of the network whose access logs `write_log_files` writes (the logs
    are generated again, into a scratch folder, for their download windows)."""
    from simulator.campaigns import generate_campaigns

    with tempfile.TemporaryDirectory(prefix="sim-logs-") as scratch:
        logs = generate_logs(truth, Path(scratch), days, seed=seed, shared_ip_user_agents=SHARED_IP_USER_AGENTS)
    return generate_campaigns(truth, logs, seed)


def write_ad_slot_truth(out_dir: Path, network, base_url: str, world=None) -> dict:
    """Write ad_slots_truth.json: the episodes whose transcripts the simulator serves and the reads
    planted in them (with the campaigns' reads of `world`, as the server serves them once it is
    attached). The pipeline's check `ad_slots_match_simulator_truth` reads it."""
    from simulator.transcripts import _usable_shows, ad_slot_truth, episode_documents, episode_guid

    episodes = [[show.tenant_id, base_url + show.path, episode_guid(ep)]
                for show in _usable_shows(network) for ep in show.episodes
                if any(d.kind == "transcript" and d.defect is None for d in episode_documents(show, ep, base_url))]
    truth = {"base_url": base_url, "episodes": episodes, "slots": ad_slot_truth(network, base_url, world)}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "ad_slots_truth.json").write_text(json.dumps(truth, indent=1, sort_keys=True))
    return truth


def write_campaign_files(truth: dict, out_dir: Path, conversions_landing: Path, insertion_orders: Path,
                         seed: int, days: list[date] = DEMO_LOG_DAYS):
    """Write the sponsorship side: insertion-order files, pixel and vanity-visit files (replacing
    earlier ones; files with the same bytes are left untouched), campaign_truth.json, and the
    `sponsorships:`/`shops:` sections of out_dir/sources.yaml. Returns the world, for the server to attach."""
    from simulator.campaign_sources import campaign_sources, write_event_files, write_insertion_orders
    from simulator.campaigns import campaign_truth

    world = campaign_world(truth, seed, days)
    for folder, write in ((insertion_orders, write_insertion_orders), (conversions_landing, write_event_files)):
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".demo-files-", dir=folder.parent) as scratch:
            write(world, Path(scratch))
            _replace_changed(Path(scratch), folder)
    (out_dir / "campaign_truth.json").write_text(json.dumps(campaign_truth(world), indent=1, sort_keys=True))
    sources_file = out_dir / "sources.yaml"
    document = yaml.safe_load(sources_file.read_text()) if sources_file.exists() else {}
    document.update(campaign_sources(world, truth["base_url"])[0])
    sources_file.write_text(yaml.safe_dump(document, sort_keys=False))
    return world


def write_megaphone_files(network, root: str, out_dir: Path, days: list[date] = DEMO_LOG_DAYS) -> dict:
    """Write the Megaphone-hosted shows' daily delivery exports (and their finalized markers)
    under the fsspec URL `root`, and their ground truth to out_dir/megaphone_truth.json."""
    from simulator.megaphone import write_megaphone_exports

    truth = write_megaphone_exports(network, root, days)
    rows = [{"tenant_id": t, "network_id": n, "podcast_id": p, "episode_id": e, "metric_date": d.isoformat(), **m}
            for (t, n, p, e, d), m in sorted(truth["metrics"].items())]
    quarantined = [{"tenant_id": t, "network_id": n, "metric_date": d.isoformat(), "reason_code": r, "records": c}
                   for (t, n, d, r), c in sorted(truth["quarantined"].items())]
    episodes = [{"tenant_id": t, "network_id": n, "podcast_id": p, "episode_id": e, **m}
                for (t, n, p, e), m in sorted(truth["episodes"].items())]
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "megaphone_truth.json").write_text(json.dumps(
        {"files": truth["files"], "episode_metrics_daily": rows, "quarantined": quarantined, "episodes": episodes},
        indent=1))
    return truth


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
    if yaml.safe_load(sources_file.read_text()).get("sponsorships"):
        server.attach_campaigns(campaign_world(ground_truth(network, server.base_url), spec["seed"]))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    click.echo(f"serving {len(network.shows)} feeds on {server.base_url}", err=True)
    try:
        server.serve_forever()
    finally:
        server.stop()


@cli.command()
@click.option("--sources", "sources_file", type=click.Path(path_type=Path, exists=True), required=True)
@click.option("--out", "root", required=True, help="Export root: a folder or any fsspec URL.")
@click.option("--day", "days", multiple=True, type=click.DateTime(["%Y-%m-%d"]), help="UTC day (repeatable).")
def megaphone(sources_file: Path, root: str, days: tuple) -> None:
    """Write the Megaphone-style daily exports of the network a sources.yaml describes."""
    spec = yaml.safe_load(sources_file.read_text())["simulator"]
    network = build_network(seed=spec["seed"], **spec.get("network", {}))
    chosen = [d.date() for d in days] or DEMO_LOG_DAYS
    truth = write_megaphone_files(network, root, sources_file.parent, chosen)
    click.echo(f"{truth['files']} export files for {len(chosen)} day(s) -> {root}")


if __name__ == "__main__":
    cli()

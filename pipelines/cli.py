"""`podcast-analytics`: run the demo, the Dagster UI, and look after the embedded services."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from pipelines.settings import REPO_ROOT, Settings, get_settings

console = Console()
MART_SCHEMAS = ("raw", "quarantine", "staging", "marts")


def psycopg2_url(url: str) -> str:
    scheme, rest = url.split("://", 1)
    return ("postgresql+psycopg2" if scheme in ("postgres", "postgresql") else scheme) + "://" + rest


def _prepare_environment(settings: Settings) -> tuple[str, str]:
    """Start/attach the warehouse, bootstrap it and point Dagster at it. Returns both URLs."""
    from resources.warehouse import bootstrap, resolve_urls

    warehouse_url, dagster_url = resolve_urls(
        settings.database_url, settings.data_dir, settings.warehouse_db, settings.dagster_db
    )
    bootstrap(warehouse_url)
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    # dagster-postgres needs the psycopg2 driver (SQLAlchemy 2.1 defaults to psycopg 3).
    os.environ.setdefault("DAGSTER_PG_URL", psycopg2_url(settings.dagster_pg_url or dagster_url))
    os.environ.setdefault("PODCAST_DATA_DIR", str(settings.data_dir))
    return warehouse_url, dagster_url


def _table_counts(warehouse_url: str) -> list[tuple[str, int]]:
    import psycopg
    from psycopg import sql

    with psycopg.connect(warehouse_url) as conn:
        tables = conn.execute(
            # not the side tables where incremental models log the rows they removed, their runs
            # and the exclusions they applied
            "select table_schema, table_name from information_schema.tables "
            "where table_schema = any(%s) and table_name !~ '__(removed|runs|exclusions)$' order by 1, 2",
            (list(MART_SCHEMAS),),
        ).fetchall()
        return [
            (f"{schema}.{name}", conn.execute(sql.SQL("select count(*) from {}.{}").format(
                sql.Identifier(schema), sql.Identifier(name))).fetchone()[0])
            for schema, name in tables
        ]


def run_demo(settings: Settings, seed: int = 42) -> dict:
    """Generate the sample network, serve it, materialize every asset once. Returns a summary."""
    import dagster as dg

    from assets.ingestion.listener_logs_load import discover
    from simulator.__main__ import (
        DEMO_LOG_DAYS, simulator_credentials, write_campaign_files, write_log_files, write_network_files,
    )
    from simulator.network import build_network
    from simulator.server import SimulatorServer

    with console.status("Starting the warehouse (embedded PostgreSQL unless DATABASE_URL is set)..."):
        warehouse_url, _ = _prepare_environment(settings)
    console.print("[green]✓[/] warehouse ready")

    sources = settings.simulator_dir / "sources.yaml"
    truth = write_network_files(settings.simulator_dir, seed=seed, port=settings.simulator_port)
    os.environ.setdefault("PODCAST_SOURCES_FILE", str(sources))
    for name, value in simulator_credentials(sources).items():
        os.environ.setdefault(name, value)
    console.print(f"[green]✓[/] simulated network: {len(truth['feeds'])} feeds, {len(truth['episodes'])} episodes")

    landing = settings.resolved_log_landing_dir()
    log_truth = write_log_files(truth, landing, settings.simulator_dir, seed=seed)
    console.print(f"[green]✓[/] access logs: {log_truth['lines']:,} lines over {len(DEMO_LOG_DAYS)} days in {landing}")

    world = write_campaign_files(truth, settings.simulator_dir, settings.resolved_conversion_landing_dir(),
                                 settings.resolved_insertion_order_dir(), seed=seed)
    for name, value in simulator_credentials(sources).items():
        os.environ.setdefault(name, value)
    console.print(f"[green]✓[/] sponsorships: {len(world.campaigns)} campaigns, "
                  f"{sum(1 for e in world.events if e.is_conversion)} conversions (truth in campaign_truth.json)")

    from simulator.__main__ import write_megaphone_files

    megaphone_root = settings.resolved_megaphone_export_url()
    megaphone = write_megaphone_files(build_network(seed=seed), megaphone_root, settings.simulator_dir)
    console.print(f"[green]✓[/] Megaphone exports: {megaphone['files']} finalized daily files in {megaphone_root}")

    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    server = SimulatorServer(build_network(seed=seed), port=settings.simulator_port).start()
    server.attach_campaigns(world)
    try:
        from pipelines.definitions import defs

        instance = dg.DagsterInstance.get()
        started = time.perf_counter()
        results = []
        log_job = defs.resolve_job_def("load_listener_logs")
        days = sorted({f.log_date.isoformat() for f in discover(landing, settle_seconds=0)})
        for day in days:
            with console.status(f"Loading access logs of {day}..."):
                config = {**quiet, "ops": {"listener_logs": {"config": {"settle_seconds": 0}}}}
                results.append(log_job.execute_in_process(
                    instance=instance, partition_key=day, raise_on_error=False, run_config=config))
        for day in DEMO_LOG_DAYS:
            with console.status(f"Loading the Megaphone exports of {day}..."):
                results.append(defs.resolve_job_def("load_megaphone_exports").execute_in_process(
                    instance=instance, partition_key=day.isoformat(), raise_on_error=False, run_config=quiet))
        with console.status("Syncing platform API metrics (Buzzsprout, Transistor, Podbean, Simplecast, Spotify, Apple)..."):
            results.append(defs.resolve_job_def("platform_metrics").execute_in_process(
                instance=instance, partition_key=DEMO_LOG_DAYS[-1].isoformat(), raise_on_error=False,
                run_config=quiet))
        with console.status("Materializing every asset (feeds → raw → checks → dbt staging → marts)..."):
            results.append(defs.resolve_job_def("materialize_all").execute_in_process(
                instance=instance, raise_on_error=False,
                run_config={**quiet, "ops": {"conversion_events": {"config": {"settle_seconds": 0}}}}))
        with console.status("Generating the sponsor reports (every campaign and sponsor)..."):
            report_results, reports = _generate_reports(defs, instance, warehouse_url, quiet)
        with console.status("Measuring the SLAs (freshness, completeness, checks)..."):
            results.append(defs.resolve_job_def("sla_snapshot").execute_in_process(
                instance=instance, raise_on_error=False, run_config=quiet))
        elapsed = time.perf_counter() - started
    finally:
        server.stop()

    checks = [
        e.event_specific_data
        for result in results
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    ]
    summary = {
        "success": all(r.success for r in [*results, *report_results]),
        "run_id": ", ".join(r.run_id[:8] for r in results),
        "seconds": round(elapsed, 1),
        "checks_passed": sum(1 for c in checks if c.passed),
        "checks_failed": [c.asset_check_key.to_user_string() for c in checks if not c.passed],
        "tables": _table_counts(warehouse_url),
        "warehouse_url": warehouse_url,
        "reports": reports,
    }
    return summary


def _generate_reports(defs, instance, warehouse_url: str, run_config: dict) -> tuple[list, dict]:
    """Register a report partition for every campaign and sponsor in the marts and materialize
    in one run per job (every format), as a backfill of every partition does. Returns the runs
    and what was written."""
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

    from assets.reports.assets import CAMPAIGN_PARTITIONS, SPONSOR_PARTITIONS
    from pipelines.reports import report_subjects
    from pipelines.settings import get_settings

    campaigns, sponsors = report_subjects(warehouse_url)
    campaign_keys = [f"{tenant}:{campaign}" for tenant, campaign, *_ in campaigns]
    for partitions, keys in ((CAMPAIGN_PARTITIONS, campaign_keys), (SPONSOR_PARTITIONS, sponsors)):
        known = set(instance.get_dynamic_partitions(partitions.name))
        instance.add_dynamic_partitions(partitions.name, [k for k in keys if k not in known])
    results, generated = [], {}
    for job, partitions in (("campaign_reports", CAMPAIGN_PARTITIONS), ("sponsor_reports", SPONSOR_PARTITIONS)):
        keys = instance.get_dynamic_partitions(partitions.name)
        if not keys:
            generated[job] = 0
            continue
        # One run over every partition, as a backfill runs it (single-run backfill policy).
        run = defs.resolve_job_def(job).execute_in_process(
            instance=instance, raise_on_error=False, run_config=run_config,
            tags={ASSET_PARTITION_RANGE_START_TAG: keys[0], ASSET_PARTITION_RANGE_END_TAG: keys[-1]})
        results.append(run)
        generated[job] = len(keys) if run.success else 0
    return results, {"campaigns": len(campaign_keys), "sponsors": len(sponsors),
                     "campaign_reports": generated["campaign_reports"], "sponsor_reports": generated["sponsor_reports"],
                     "where": get_settings().resolved_reports_url()}


def _print_summary(summary: dict, settings: Settings) -> None:
    table = Table(title="Rows per table")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, count in summary["tables"]:
        table.add_row(name, f"{count:,}")
    console.print(table)
    status = "[green]succeeded[/]" if summary["success"] else "[red]failed[/]"
    console.print(f"Runs {summary['run_id']} {status} in {summary['seconds']} s")
    console.print(f"Checks passed: {summary['checks_passed']}, failed: {len(summary['checks_failed'])}")
    for key in summary["checks_failed"]:
        console.print(f"  [red]✗[/] {key}")
    reports = summary["reports"]
    console.print(f"Reports: {reports['campaign_reports']} of {reports['campaigns']} campaigns and "
                  f"{reports['sponsor_reports']} of {reports['sponsors']} sponsors (HTML, PDF, CSV, XLSX, JSON) "
                  f"in {reports['where']}, registered in reports.reports")
    console.print(f"Database: {summary['warehouse_url']}")
    console.print(f"Dagster UI: run `podcast-analytics dev`, then open http://127.0.0.1:{settings.ui_port}")


@click.group()
def main() -> None:
    """Podcast analytics and sponsorship attribution platform."""


@main.command()
@click.option("--seed", default=42, show_default=True, help="Seed of the simulated network.")
def demo(seed: int) -> None:
    """Run everything on the embedded defaults and print a summary."""
    settings = get_settings()
    summary = run_demo(settings, seed=seed)
    _print_summary(summary, settings)
    sys.exit(0 if summary["success"] else 1)


@main.command()
def dev() -> None:
    """The Dagster UI (`dagster dev -w workspace.yaml`) with the simulator serving the feeds."""
    settings = get_settings()
    _prepare_environment(settings)
    sources = settings.resolved_sources_file()
    simulator = None
    if sources == settings.simulator_dir / "sources.yaml":
        if not sources.exists():
            from simulator.__main__ import write_network_files

            write_network_files(settings.simulator_dir, seed=42, port=settings.simulator_port)
        simulator = subprocess.Popen([sys.executable, "-m", "simulator", "serve", "--sources", str(sources)])
        os.environ.setdefault("PODCAST_SOURCES_FILE", str(sources))
        from simulator.__main__ import simulator_credentials

        for name, value in simulator_credentials(sources).items():
            os.environ.setdefault(name, value)
    dagster = Path(sys.executable).with_name("dagster")
    try:
        subprocess.run(
            [str(dagster), "dev", "-w", str(REPO_ROOT / "workspace.yaml"), "-p", str(settings.ui_port)],
            cwd=REPO_ROOT, check=False,
        )
    finally:
        if simulator is not None:
            simulator.send_signal(signal.SIGTERM)
            simulator.wait(timeout=10)


@main.command()
def status() -> None:
    """Where things are and what the warehouse holds."""
    from resources.warehouse import embedded_server_url, with_database

    settings = get_settings()
    if settings.database_url:
        url = settings.database_url
        console.print(f"Warehouse: DATABASE_URL ({url.split('@')[-1]})")
    else:
        admin = embedded_server_url(settings.pg_data_dir)
        console.print(f"Embedded PostgreSQL in {settings.pg_data_dir}: {'running' if admin else 'stopped'}")
        url = with_database(admin, settings.warehouse_db) if admin else None
    console.print(f"Feed list: {settings.resolved_sources_file()}")
    if url:
        try:
            for name, count in _table_counts(url):
                console.print(f"  {name:45s} {count:>10,}")
        except Exception as exc:  # noqa: BLE001 - status must report, not crash
            console.print(f"[red]cannot query the warehouse:[/] {exc}")


@main.command()
@click.option("--port", type=int, default=None, help="Port of the /metrics endpoint (PODCAST_METRICS_PORT, 9108).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0 in a container).")
def metrics(port: int | None, host: str) -> None:
    """Serve the platform's Prometheus metrics, read from the warehouse and the Dagster instance."""
    import dagster as dg

    from pipelines.definitions import defs
    from pipelines.metrics import build_registry, serve

    settings = get_settings()
    port = port or settings.metrics_port
    if os.environ.get("DAGSTER_HOME") and settings.database_url:
        # A deployment (docker-compose): the instance and the warehouse are configured already.
        warehouse_url = settings.database_url
    else:
        warehouse_url, _ = _prepare_environment(settings)
    instance = dg.DagsterInstance.get()
    graph = defs.resolve_asset_graph()
    server, thread = serve(build_registry(warehouse_url, lambda: instance, lambda: graph), port, host)
    console.print(f"[green]✓[/] metrics on http://{host}:{port}/metrics")

    def stop_serving(*_) -> None:
        raise KeyboardInterrupt

    # Stop on SIGTERM (docker stop, a supervisor) even when started by a process that ignores it:
    # an ignored signal is inherited across exec.
    signal.signal(signal.SIGTERM, stop_serving)
    try:
        thread.join()
    except KeyboardInterrupt:
        server.shutdown()


@main.command()
def stop() -> None:
    """Stop the embedded PostgreSQL server."""
    from resources.warehouse import stop_embedded_server

    settings = get_settings()
    stopped = stop_embedded_server(settings.pg_data_dir)
    console.print("embedded PostgreSQL stopped" if stopped else "embedded PostgreSQL was not running")


if __name__ == "__main__":
    main()

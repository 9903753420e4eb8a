"""`podcast-analytics`: run the demo, the Dagster UI, dbt, and look after the embedded services.

Expected failures (a bad `DATABASE_URL`, a server that does not answer, a malformed or missing
YAML file, a busy port, a second demo on the same data directory) end with one line on stderr
and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from resources.settings import REPO_ROOT, HashSecretError, Settings, get_settings
from resources.warehouse import WarehouseError, psycopg2_url  # noqa: F401 - psycopg2_url is part of this module's API

console = Console(highlight=False, soft_wrap=True)
MART_SCHEMAS = ("raw", "quarantine", "staging", "marts")
DEMO_TAG = "podcast-analytics/demo"


class CliError(click.ClickException):
    """An expected failure: one line on stderr, exit status 1."""

    def show(self, file=None) -> None:  # noqa: ANN001 - click's signature
        click.echo(f"error: {self.message}", err=True)


class _Main(click.Group):
    """Turns the expected failures of every command into one line (`CliError`)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (WarehouseError, HashSecretError) as exc:
            raise CliError(str(exc)) from None


# --- settings and configuration files -------------------------------------------------------------

def _settings() -> Settings:
    from pydantic import ValidationError

    try:
        return get_settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]).upper() if first["loc"] else "setting"
        name = name if name in ("DATABASE_URL", "DAGSTER_PG_URL") else f"PODCAST_{name}"
        raise CliError(f"{name}={first.get('input')!r}: {first['msg']}") from None


def _yaml_document(path: Path, variable: str):
    """The YAML file named by `variable`, parsed, and its node tree (for line numbers)."""
    import yaml

    if not path.exists():
        raise CliError(f"{variable}: {path} does not exist")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"{variable}: cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        return yaml.safe_load(text), yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}, line {mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise CliError(f"{variable}: {where}: malformed YAML ({problem})") from None


def _line_of(node, loc: tuple) -> int:
    """The line (1-based) of the YAML node at a validation error's location, or of its nearest parent."""
    import yaml

    line = node.start_mark.line + 1 if node is not None else 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            node = next((value for key, value in node.value if key.value == str(part)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            node = None
        if node is None:
            break
        line = node.start_mark.line + 1
    return line


def _validation_error(variable: str, path: Path, root, errors: list[dict], prefix: tuple = ()) -> CliError:
    first = errors[0]
    loc = (*prefix, *first["loc"])
    field = ".".join(map(str, loc)) or "document"
    return CliError(f"{variable}: {path}, line {_line_of(root, loc)}: {field}: {first['msg']}")


def _check_config_files(settings: Settings) -> None:
    """Read the feed list and the recipients file when they are set: one line naming the file
    and the line of the first problem."""
    from pydantic import ValidationError

    if settings.sources_file is not None:
        from assets.ingestion.rss_ingest import RssSources

        data, root = _yaml_document(settings.sources_file, "PODCAST_SOURCES_FILE")
        if not isinstance(data, dict):
            raise CliError(f"PODCAST_SOURCES_FILE: {settings.sources_file}, line 1: expected a mapping with `rss:`")
        try:
            RssSources.model_validate(data.get("rss") or {})
        except ValidationError as exc:
            raise _validation_error("PODCAST_SOURCES_FILE", settings.sources_file, root, exc.errors(), ("rss",)) from None
    if settings.report_recipients_file is not None:
        from assets.reports.delivery import DeliveryConfigError, load_recipients

        path = settings.report_recipients_file
        _, root = _yaml_document(path, "PODCAST_REPORT_RECIPIENTS_FILE")
        try:
            load_recipients(path)
        except DeliveryConfigError as exc:
            if exc.problems:
                raise _validation_error("PODCAST_REPORT_RECIPIENTS_FILE", path, root, exc.problems) from None
            raise CliError(f"PODCAST_REPORT_RECIPIENTS_FILE: {exc}") from None


# --- the warehouse and the Dagster instance -------------------------------------------------------

def _prepare_environment(settings: Settings) -> tuple[str, str, object]:
    """Start/attach the warehouse, apply its schema migrations and point Dagster at it. Returns
    both URLs (the Dagster one in the psycopg2 form dagster-postgres needs) and the migration."""
    from resources.warehouse import prepare_storage

    try:
        warehouse_url, dagster_url, migration = prepare_storage(
            settings.database_url, settings.dagster_pg_url, settings.data_dir, settings.warehouse_db,
            settings.dagster_db, lock_timeout=settings.pg_lock_timeout)
    except WarehouseError:
        raise
    except Exception as exc:  # noqa: BLE001 - the embedded server's start fails in many ways
        where = "DATABASE_URL" if settings.database_url else f"the embedded PostgreSQL in {settings.pg_data_dir}"
        raise WarehouseError(f"cannot start {where}: {' '.join(str(exc).split())[:300]}") from None
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    # dagster-postgres needs the psycopg2 driver (SQLAlchemy 2.1 defaults to psycopg 3), also when
    # DAGSTER_PG_URL is given in the ordinary postgresql:// form; child processes inherit this.
    os.environ["DAGSTER_PG_URL"] = dagster_url
    os.environ.setdefault("PODCAST_DATA_DIR", str(settings.data_dir))
    return warehouse_url, dagster_url, migration


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


def _logs_dir(settings: Settings) -> Path:
    path = settings.data_dir / "logs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _quiet_libraries(settings: Settings) -> Path:
    """Library warnings (Dagster's beta and preview notes, GX's, platformdirs') and library log
    records go to `<data dir>/logs/cli.log`, not the console; child processes (dbt) ignore
    Python warnings. Returns the file."""
    target = _logs_dir(settings) / "cli.log"
    handler = logging.FileHandler(target, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.captureWarnings(True)
    warnings.simplefilter("default")
    # A record the file cannot take (a warning raised by the garbage collector while the handler
    # writes) is dropped, not printed to the console with a traceback.
    logging.raiseExceptions = False
    for name in ("py.warnings", "stamina", ""):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        if name:
            logger.propagate = False
    logging.getLogger().setLevel(logging.WARNING)
    os.environ["PYTHONWARNINGS"] = "ignore"
    with contextlib.suppress(ImportError):  # retries are counted in the fetch log; their notes go to the file
        import stamina.instrumentation

        stamina.instrumentation.set_on_retry_hooks([stamina.instrumentation.LoggingOnRetryHook])
    return target


# --- the demo -------------------------------------------------------------------------------------

class _DemoLock:
    """One demo per data directory: an exclusive lock on `<data dir>/demo.lock` holding the pid."""

    def __init__(self, data_dir: Path):
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / "demo.lock"
        self.handle = open(self.path, "a+")  # noqa: SIM115 - held for the life of the demo
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.handle.seek(0)
            pid = self.handle.read().strip() or "unknown"
            self.handle.close()
            raise CliError(f"another demo (pid {pid}) is running on {data_dir}: wait for it, stop it "
                           f"(kill {pid}) or give this one its own PODCAST_DATA_DIR") from None
        self.handle.seek(0)
        self.handle.truncate()
        self.handle.write(str(os.getpid()))
        self.handle.flush()

    def release(self) -> None:
        with contextlib.suppress(OSError):
            self.handle.truncate(0)
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()


def _port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the simulator's server binds
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def choose_port(port: int, explicit: bool, variable: str, serves: str) -> int:
    """`port` when it is free on 127.0.0.1. When it is taken (a second demo on this machine, with its
    own data directory): a free port the system picks, unless `variable` set this one, which
    ends in one line naming the conflict."""
    if not _port_in_use(port):
        return port
    if explicit:
        raise CliError(f"port {port} on 127.0.0.1 is in use: {serves}; set {variable} to a free port")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


PORTS = {"simulator_port": ("PODCAST_SIMULATOR_PORT", "the simulator serves the feeds there"),
         "ui_port": ("PODCAST_UI_PORT", "the Dagster UI serves there")}


def _with_free_ports(settings: Settings, *names: str) -> Settings:
    """The settings with these ports (`PORTS`) free (`choose_port`), saying which moved."""
    ports = {}
    for name in names:
        variable, serves = PORTS[name]
        wanted = getattr(settings, name)
        chosen = choose_port(wanted, name in settings.model_fields_set, variable, serves)
        if chosen != wanted:
            console.print(f"port {wanted} is in use (another demo?): {serves.split(' serves')[0]} uses {chosen} "
                          f"({variable} chooses)")
            ports[name] = chosen
    return settings.model_copy(update=ports) if ports else settings


def _resignal_if_interrupted(result) -> None:
    """Dagster maps SIGTERM/SIGINT to its own handler while a run executes in process: the run
    fails as interrupted and the demo's handler never sees the signal. Deliver it again, now
    that the demo's handler is back, so a signal during a run stops the demo as at any other
    time."""
    def interrupted(error) -> bool:
        while error is not None:
            if error.cls_name in ("DagsterExecutionInterruptedError", "KeyboardInterrupt"):
                return True
            error = error.cause
        return False

    if result.success:
        return
    for event in result.all_events:
        if (event.is_step_failure or event.is_run_failure) and interrupted(
                getattr(event.event_specific_data, "error", None)):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(60)  # the handler exits the process
            return


class _Cleanup:
    """What the demo started, stopped on SIGTERM/SIGINT: the simulator, dbt and other child
    processes, and the embedded PostgreSQL when this demo started it."""

    def __init__(self, settings: Settings, lock: _DemoLock):
        self.settings = settings
        self.lock = lock
        self.server = None
        self.started_postgres = False
        self.out = sys.stdout

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, signum: int, _frame) -> None:  # noqa: ANN001 - signal handler
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        name = signal.Signals(signum).name
        with contextlib.suppress(Exception):
            self.out.write(f"{name}: stopping the demo\n")
            self.out.flush()
        self.stop_everything()
        os._exit(128 + signum)

    def stop_everything(self) -> None:
        import psutil

        if self.server is not None:
            stopper = threading.Thread(target=self.server.stop, daemon=True)
            stopper.start()
            stopper.join(timeout=5)
            with contextlib.suppress(Exception):
                self.server._httpd.server_close()  # noqa: SLF001 - free the port even mid-request
        # dbt and any other child; not a PostgreSQL server (stopped below, the fast way)
        children = [child for child in psutil.Process().children(recursive=True)
                    if _process_name(child) not in ("postgres", "postmaster", "pg_ctl")]
        for child in children:
            with contextlib.suppress(psutil.Error):
                child.terminate()
        _, alive = psutil.wait_procs(children, timeout=5)
        for child in alive:
            with contextlib.suppress(psutil.Error):
                child.kill()
        if self.started_postgres:
            from resources.warehouse import stop_embedded_server

            with contextlib.suppress(Exception):
                stop_embedded_server(self.settings.pg_data_dir)
        self.lock.release()


def _process_name(process) -> str:
    try:
        return process.name()
    except Exception:  # noqa: BLE001 - gone or not ours to read
        return ""


class _Phases:
    """One line per phase on the console (a spinner meanwhile on a terminal); what the libraries
    print while it runs (dbt's log lines) goes to the dbt log file."""

    def __init__(self, dbt_log: Path):
        self.dbt_log = dbt_log
        console.file = sys.stdout  # the console, not the log file stdout is redirected to meanwhile

    @contextlib.contextmanager
    def run(self, doing: str) -> Iterator[dict]:
        outcome: dict = {}
        started = time.perf_counter()
        with console.status(doing), open(self.dbt_log, "a", encoding="utf-8") as log, \
                contextlib.redirect_stdout(log):
            yield outcome
        seconds = time.perf_counter() - started
        failed = outcome.get("failed") or []
        mark = "[red]✗[/]" if failed else "[green]✓[/]"
        console.print(f"{mark} {outcome.get('line', doing)} ({seconds:.0f} s)")
        for line in failed:
            console.print(f"    [red]{line}[/]")


def _data_days(warehouse_url: str) -> tuple[str, str] | None:
    """The first and last UTC day with requests or conversion events in the warehouse, within the
    partitions that exist."""
    import psycopg

    with psycopg.connect(warehouse_url) as conn:
        low, high = conn.execute("""
            select min(day)::text, max(day)::text from (
                select (min(event_time) at time zone 'UTC')::date as day from raw.listener_events
                union all select (max(event_time) at time zone 'UTC')::date from raw.listener_events
                union all select (min(occurred_at) at time zone 'UTC')::date from raw.attribution_events
                union all select (max(occurred_at) at time zone 'UTC')::date from raw.attribution_events
            ) as days""").fetchone()
    if low is None:
        return None
    from assets.dbt import DBT_PARTITIONS

    first, last = DBT_PARTITIONS.get_first_partition_key(), DBT_PARTITIONS.get_last_partition_key()
    return max(low, first), min(high, last)


def _materialize_in_phases(defs, execute, warehouse_url: str, run_config: dict) -> list:
    """Every asset of a first load, in the phases pipelines/phases.py orders: the unpartitioned
    ones by `materialize_all` / `materialize_marts`, the daily-partitioned dbt models by
    `dbt_partitioned` in one run over every day with data (requests or conversion events, as
    the warehouse holds them when that phase starts)."""
    from pipelines.jobs import EVERYTHING, UNPARTITIONED, FROM_PARTITIONED
    from pipelines.phases import phases as ordered_phases

    graph = defs.resolve_asset_graph()
    keys = {key for key in EVERYTHING.resolve(graph) if graph.get(key).is_materializable}
    upstream_only = (UNPARTITIONED - FROM_PARTITIONED).resolve(graph)
    runs = []
    for partitioned, phase_keys in ordered_phases(graph, keys):
        if partitioned:
            days = _data_days(warehouse_url)
            if days is None:
                continue
            runs.append(execute("dbt_partitioned", asset_selection=sorted(phase_keys, key=str), run_tags={
                "dagster/asset_partition_range_start": days[0], "dagster/asset_partition_range_end": days[1]}))
        else:
            job = "materialize_all" if phase_keys <= upstream_only else "materialize_marts"
            ops = {op: config for op, config in run_config.get("ops", {}).items()
                   if any(graph.get(key).assets_def.node_def.name == op for key in phase_keys)}
            runs.append(execute(job, asset_selection=sorted(phase_keys, key=str),
                                run_config={**run_config, "ops": ops}))
    return runs


def _failure_lines(results) -> list[str]:
    """One line per failed run: its job, id and first error."""
    lines = []
    for result in results:
        if result.success:
            continue
        errors = [e for e in result.all_events if e.event_type_value in ("STEP_FAILURE", "RUN_FAILURE")]
        first = next((e for e in errors if e.event_type_value == "STEP_FAILURE"), errors[0] if errors else None)
        message = ""
        if first is not None:
            data = first.event_specific_data
            error = getattr(data, "error", None)
            message = (getattr(error, "message", None) or first.message or "").strip().splitlines()[0][:200]
            if first.step_key:
                message = f"{first.step_key}: {message}"
        lines.append(f"run {result.run_id[:8]} ({result.job_def.name}) failed: {message or 'see the JSON log'}")
    return lines


def run_demo(settings: Settings, seed: int = 42, cleanup: _Cleanup | None = None) -> dict:
    """Generate the sample network, serve it, materialize every asset once. Returns a summary."""
    from resources.warehouse import embedded_server_url

    dbt_log = _logs_dir(settings) / "dbt.log"
    phases = _Phases(dbt_log)
    settings.create_demo_ip_hash_secret()  # the demo's own key, kept under the data dir

    embedded = not settings.database_url
    with phases.run("Starting the warehouse (embedded PostgreSQL unless DATABASE_URL is set)...") as phase:
        was_running = embedded and embedded_server_url(settings.pg_data_dir) is not None
        if cleanup is not None:
            cleanup.started_postgres = embedded and not was_running
        warehouse_url, dagster_url, migration = _prepare_environment(settings)
        from resources.warehouse import describe_url

        where = (f"embedded PostgreSQL in {settings.pg_data_dir} ({'running' if was_running else 'started'})"
                 if embedded else describe_url(warehouse_url))
        phase["line"] = (f"warehouse ready: {where}, {migration.describe()}; "
                         f"Dagster storage {describe_url(dagster_url)}")

    import dagster as dg

    from assets.ingestion.listener_logs_load import discover
    from simulator.__main__ import (
        DEMO_LOG_DAYS, simulator_credentials, write_ad_slot_truth, write_campaign_files, write_log_files,
        write_megaphone_files, write_network_files,
    )
    from simulator.feeds import FeedShapes
    from simulator.network import build_network
    from simulator.server import SimulatorServer

    with phases.run("Choosing the user-agent patterns...") as phase:
        phase["line"] = _demo_user_agents(settings)

    sources = settings.simulator_dir / "sources.yaml"
    with phases.run("Generating the simulated network...") as phase:
        truth = write_network_files(settings.simulator_dir, seed=seed, port=settings.simulator_port)
        os.environ.setdefault("PODCAST_SOURCES_FILE", str(sources))
        phase["line"] = f"simulated network: {len(truth['feeds'])} feeds, {len(truth['episodes'])} episodes"

    landing = settings.resolved_log_landing_dir()
    with phases.run("Writing the access logs...") as phase:
        log_truth = write_log_files(truth, landing, settings.simulator_dir, seed=seed)
        phase["line"] = f"access logs: {log_truth['lines']:,} lines over {len(DEMO_LOG_DAYS)} days in {landing}"

    with phases.run("Writing the sponsorships and conversions...") as phase:
        world = write_campaign_files(truth, settings.simulator_dir, settings.resolved_conversion_landing_dir(),
                                     settings.resolved_insertion_order_dir(), seed=seed)
        for name, value in simulator_credentials(sources).items():
            os.environ.setdefault(name, value)
        phase["line"] = (f"sponsorships: {len(world.campaigns)} campaigns, "
                         f"{sum(1 for e in world.events if e.is_conversion)} conversions "
                         f"(truth in campaign_truth.json)")
        reads = write_ad_slot_truth(settings.simulator_dir, build_network(seed=seed), truth["base_url"], world)
        phase["line"] += f"; {len(reads['slots'])} ad reads planted in {len(reads['episodes'])} transcripts"

    megaphone_root = settings.resolved_megaphone_export_url()
    with phases.run("Writing the Megaphone exports...") as phase:
        megaphone = write_megaphone_files(build_network(seed=seed), megaphone_root, settings.simulator_dir)
        phase["line"] = f"Megaphone exports: {megaphone['files']} finalized daily files in {megaphone_root}"

    # Step logs go to the JSON log (dagster.yaml's handler); the console shows the phases only.
    quiet = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
    tags = {DEMO_TAG: str(os.getpid())}
    with phases.run("Starting the simulator...") as phase:
        try:
            server = SimulatorServer(build_network(seed=seed), port=settings.simulator_port)
        except OSError as exc:
            raise CliError(f"cannot serve the simulator on 127.0.0.1:{settings.simulator_port} ({exc.strerror}): "
                           f"set PODCAST_SIMULATOR_PORT to a free port") from None
        if cleanup is not None:
            cleanup.server = server
        # Two shapes of real feed hosts that leave every count as it is: `itunes:explicit` written
        # `Yes`/`Clean`, and 304 answers without ETag/Last-Modified (as python's http.server sends).
        server.shapes = FeedShapes(uppercase_explicit=True)
        server.validators_on_304 = False
        server.start()
        server.attach_campaigns(world)
        phase["line"] = f"simulator serving the feeds and platform APIs on {server.base_url}"
    try:
        with phases.run("Loading the code location...") as phase:
            from pipelines.definitions import defs

            instance = dg.DagsterInstance.get()
            phase["line"] = "code location loaded"
        started = time.perf_counter()
        results = []

        def execute(job: str, run_tags: dict | None = None, **kwargs):
            result = defs.resolve_job_def(job).execute_in_process(
                instance=instance, raise_on_error=False, tags={**tags, **(run_tags or {})}, **{"run_config": quiet, **kwargs})
            _resignal_if_interrupted(result)
            results.append(result)
            return result

        days = sorted({f.log_date.isoformat() for f in discover(landing, settle_seconds=0)})
        with phases.run("Loading the access logs...") as phase:
            config = {**quiet, "ops": {"listener_logs": {"config": {"settle_seconds": 0}}}}
            runs = [execute("load_listener_logs", partition_key=day, run_config=config) for day in days]
            phase.update(line=f"access logs loaded: {len(days)} days", failed=_failure_lines(runs))
        with phases.run("Loading the Megaphone exports...") as phase:
            runs = [execute("load_megaphone_exports", partition_key=day.isoformat()) for day in DEMO_LOG_DAYS]
            phase.update(line=f"Megaphone exports loaded: {len(DEMO_LOG_DAYS)} days", failed=_failure_lines(runs))
        with phases.run("Syncing platform API metrics (Buzzsprout, Transistor, Podbean, Simplecast, Spotify, "
                        "Apple)...") as phase:
            runs = [execute("platform_metrics", partition_key=DEMO_LOG_DAYS[-1].isoformat())]
            phase.update(line="platform API metrics synced", failed=_failure_lines(runs))
        with phases.run("Materializing every asset (feeds → raw → checks → dbt staging → marts)...") as phase:
            runs = _materialize_in_phases(defs, execute, warehouse_url, {
                **quiet, "ops": {"conversion_events": {"config": {"settle_seconds": 0}}}})
            phase.update(line=f"every asset materialized in {len(runs)} runs (dbt's log: {dbt_log})",
                         failed=_failure_lines(runs))
        with phases.run("Generating the sponsor reports (every campaign and sponsor)...") as phase:
            report_results, reports = _generate_reports(defs, instance, warehouse_url, quiet, tags)
            phase.update(line=f"reports: {reports['campaign_reports']} campaigns, {reports['sponsor_reports']} "
                              f"sponsors", failed=_failure_lines(report_results))
        with phases.run("Measuring the SLAs (freshness, completeness, checks)...") as phase:
            runs = [execute("sla_snapshot")]
            phase.update(line="SLA snapshot in marts.sla_status", failed=_failure_lines(runs))
        elapsed = time.perf_counter() - started
    finally:
        server.stop()
        if cleanup is not None:
            cleanup.server = None

    checks = [
        e.event_specific_data
        for result in results
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    ]
    summary = {
        "success": all(r.success for r in [*results, *report_results]),
        "run_id": ", ".join(r.run_id[:8] for r in results),
        "runs": len(results) + len(report_results),
        "seconds": round(elapsed, 1),
        "checks_passed": sum(1 for c in checks if c.passed),
        "checks_failed": [c.asset_check_key.to_user_string() for c in checks if not c.passed],
        "tables": _table_counts(warehouse_url),
        "warehouse_url": warehouse_url,
        "reports": reports,
        "report_to_open": _report_to_open(warehouse_url),
        "dbt_log": str(dbt_log),
        "json_log": _json_log_target(),
    }
    return summary


# OPAWG's files beside the repository (a development checkout and the CI keep `../shared` there).
DEMO_OPAWG_DIR = REPO_ROOT.parent / "shared" / "realdata" / "user_agents"


def _demo_user_agents(settings: Settings) -> str:
    """The demo counts with OPAWG's patterns when it can without the network: when nothing is
    configured or stored and `../shared/realdata/user_agents` is beside the repository, it is
    stored as `user-agents update --from` that directory would. Returns the phase's line."""
    from assets.ingestion.user_agents import pattern_source

    source = pattern_source(settings)
    if source.built_in and settings.user_agent_patterns_dir is None and DEMO_OPAWG_DIR.is_dir():
        try:
            update_user_agents(settings, str(DEMO_OPAWG_DIR))
        except CliError as exc:
            return f"user-agent patterns: WARNING: {exc.message}; the built-in list is used"
        source = pattern_source(settings)
    return f"user-agent patterns: {'WARNING: ' if source.built_in else ''}{source.describe()}"


def _json_log_target() -> str:
    from pipelines.json_logs import default_target

    return default_target()


def _report_to_open(warehouse_url: str) -> str | None:
    """The HTML file of the newest sponsor report (else campaign report) in the registry."""
    import psycopg

    with psycopg.connect(warehouse_url) as conn:
        row = conn.execute(
            "select file_url from reports.reports where format = 'html' and deleted_at is null "
            "order by (scope = 'sponsor') desc, generated_at desc, report_id limit 1").fetchone()
    return row[0] if row else None


def _generate_reports(defs, instance, warehouse_url: str, run_config: dict, tags: dict) -> tuple[list, dict]:
    """Register a report partition for every campaign and sponsor in the marts and materialize
    in one run per job (every format), as a backfill of every partition does. Returns the runs
    and what was written."""
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

    from assets.reports.assets import CAMPAIGN_PARTITIONS, SPONSOR_PARTITIONS, valid_partition_key
    from pipelines.reports import report_subjects
    from resources.warehouse import warehouse_at

    campaigns, sponsors = report_subjects(warehouse_at(warehouse_url))
    campaign_keys = [f"{tenant}:{campaign}" for tenant, campaign, *_ in campaigns]
    for partitions, keys in ((CAMPAIGN_PARTITIONS, campaign_keys), (SPONSOR_PARTITIONS, sponsors)):
        known = set(instance.get_dynamic_partitions(partitions.name))  # ids that would be paths: never partitions
        instance.add_dynamic_partitions(partitions.name, [k for k in keys if k not in known and valid_partition_key(k)])
    results, generated = [], {}
    for job, partitions in (("campaign_reports", CAMPAIGN_PARTITIONS), ("sponsor_reports", SPONSOR_PARTITIONS)):
        keys = instance.get_dynamic_partitions(partitions.name)
        if not keys:
            generated[job] = 0
            continue
        # One run over every partition, as a backfill runs it (single-run backfill policy).
        run = defs.resolve_job_def(job).execute_in_process(
            instance=instance, raise_on_error=False, run_config=run_config,
            tags={**tags, ASSET_PARTITION_RANGE_START_TAG: keys[0], ASSET_PARTITION_RANGE_END_TAG: keys[-1]})
        _resignal_if_interrupted(run)
        results.append(run)
        generated[job] = len(run.get_asset_materialization_events())  # a partition that failed fails alone
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
    if summary.get("report_to_open"):
        console.print(f"Open a report: {summary['report_to_open']}")
    console.print(f"Database: {summary['warehouse_url']}")
    console.print(f"Logs: runs as JSON lines in {summary['json_log']}, dbt in {summary['dbt_log']}")
    console.print(f"Dagster UI: run `podcast-analytics dev`, then open http://127.0.0.1:{settings.ui_port}")


@click.group(cls=_Main)
def main() -> None:
    """Podcast analytics and sponsorship attribution platform."""


@main.command()
@click.option("--seed", default=42, show_default=True, help="Seed of the simulated network.")
def demo(seed: int) -> None:
    """Run everything on the embedded defaults and print a summary."""
    settings = _settings()
    lock = _DemoLock(settings.data_dir)
    cleanup = _Cleanup(settings, lock)
    cleanup.install()
    try:
        _quiet_libraries(settings)
        _check_config_files(settings)
        settings = _with_free_ports(settings, "simulator_port")
        summary = run_demo(settings, seed=seed, cleanup=cleanup)
        _print_summary(summary, settings)
    finally:
        lock.release()
    sys.exit(0 if summary["success"] else 1)


@main.command()
def dev() -> None:
    """The Dagster UI (`dagster dev -w workspace.yaml`) with the simulator serving the feeds."""
    settings = _settings()
    _quiet_libraries(settings)
    _check_config_files(settings)
    settings = _with_free_ports(settings, "ui_port")
    settings.resolved_ip_hash_secret()  # outside the demo there is no new key: one line and stop
    warehouse_url, _, _ = _prepare_environment(settings)
    from assets.ingestion.identity import checked_hash_secret
    from resources.warehouse import warehouse_at

    checked_hash_secret(warehouse_at(warehouse_url), settings)  # the key the warehouse's hashes were made with
    sources = settings.resolved_sources_file()
    simulator = None
    if sources == settings.simulator_dir / "sources.yaml":
        import yaml

        if not sources.exists():
            from simulator.__main__ import write_network_files

            write_network_files(settings.simulator_dir, seed=42, port=settings.simulator_port)
        port = yaml.safe_load(sources.read_text())["simulator"]["port"]
        if _port_in_use(port):
            raise CliError(f"port {port} on 127.0.0.1 is in use: the simulator serves the feeds of {sources} there; "
                           f"stop what uses it or run `podcast-analytics demo` again to write them for a free port")
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


# --- status -----------------------------------------------------------------------------------------

def _dagster_instance(settings: Settings, warehouse_url: str):
    """The Dagster instance the demo and `dev` use, without starting anything."""
    import dagster as dg

    from resources.warehouse import ensure_dagster_database, with_database

    dagster_url = settings.dagster_pg_url or with_database(warehouse_url, settings.dagster_db)
    ensure_dagster_database(warehouse_url, dagster_url, explicit=bool(settings.dagster_pg_url))
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    os.environ["DAGSTER_PG_URL"] = psycopg2_url(dagster_url)
    return dg.DagsterInstance.get()


def _ago(timestamp: float | None) -> str:
    if not timestamp:
        return "-"
    seconds = max(0, time.time() - timestamp)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit} ago"
    return f"{seconds:.0f} s ago"


def _status_of_runs(instance) -> None:
    records = instance.get_run_records(limit=8)
    console.print(f"Last runs ({len(records)}):" if records else "Last runs: none yet")
    for record in records:
        run = record.dagster_run
        started = record.start_time or (record.create_timestamp.timestamp() if record.create_timestamp else None)
        colour = {"SUCCESS": "green", "FAILURE": "red", "CANCELED": "red"}.get(run.status.value, "yellow")
        console.print(f"  {run.run_id[:8]}  {run.job_name:32s} [{colour}]{run.status.value:9s}[/] {_ago(started)}")


def _status_of_checks(instance, graph) -> None:
    from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

    keys = list(graph.asset_check_keys)
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(keys) if keys else {}
    failed = sorted((key.to_user_string(), record) for key, record in latest.items()
                    if record.status == AssetCheckExecutionRecordStatus.FAILED)
    console.print(f"Checks: {len(latest)} of {len(keys)} evaluated, {len(failed)} failing")
    for name, record in failed:
        evaluation = record.event.dagster_event.event_specific_data if record.event and record.event.dagster_event else None
        reason = " ".join((getattr(evaluation, "description", None) or "failed").split())[:160]
        console.print(f"  [red]✗[/] {name}: {reason} (run {record.run_id[:8]})")


def _status_of_slas(warehouse_url: str) -> None:
    import psycopg

    try:
        with psycopg.connect(warehouse_url) as conn:
            rows = conn.execute(
                "select asset, tenant_id, status, freshness_lag_seconds, freshness_limit_seconds, blocked_by, "
                "snapshot_at from marts.sla_status order by status = 'ok', asset, tenant_id").fetchall()
    except psycopg.Error:
        rows = []
    if not rows:
        console.print("SLAs: no snapshot yet (job sla_snapshot)")
        return
    bad = [r for r in rows if r[2] != "ok"]
    snapshot = max(r[6] for r in rows)
    console.print(f"SLAs (snapshot {_ago(snapshot.timestamp())}): {len(rows) - len(bad)} of {len(rows)} ok, "
                  f"{len(bad)} stale, failing or blocked")
    for asset, tenant, state, lag, limit, blocked_by, _ in bad[:20]:
        lag_text = f"{lag / 60:.0f} min behind, limit {limit / 60:.0f} min" if lag is not None and limit else "no data"
        suffix = f"; blocked by {blocked_by}" if blocked_by else ""
        console.print(f"  [yellow]{state}[/] {asset} ({tenant}): {lag_text}{suffix}")
    if len(bad) > 20:
        console.print(f"  … and {len(bad) - 20} more (marts.sla_status)")


def _status_of_automation(instance, defs) -> None:
    from dagster._core.scheduler.instigation import InstigatorStatus
    from dagster._daemon.controller import get_daemon_statuses

    statuses = get_daemon_statuses(instance, instance.get_required_daemon_types(), heartbeat_tolerance_seconds=60)
    live = [t for t, s in statuses.items() if s.healthy]
    if len(live) == len(statuses) and statuses:
        console.print(f"Daemon: running ({len(live)} daemons with a heartbeat in the last minute)")
    elif live:
        console.print(f"Daemon: partly running ({', '.join(sorted(set(statuses) - set(live)))} without a heartbeat)")
    else:
        console.print("Daemon: not running (schedules and sensors do not tick; `podcast-analytics dev` starts it)")
    stored = {state.name: state.status for state in instance.all_instigator_state()}

    def effective(name: str, default) -> str:
        status = stored.get(name)
        if status in (InstigatorStatus.RUNNING, InstigatorStatus.STOPPED):
            return status.value.lower()
        return "running" if default is not None and default.value == "RUNNING" else "stopped"

    for kind, items in (("Schedules", defs.schedules or []), ("Sensors", defs.sensors or [])):
        states = {item.name: effective(item.name, getattr(item, "default_status", None)) for item in items}
        on = sorted(n for n, s in states.items() if s == "running")
        console.print(f"{kind}: {len(on)} of {len(states)} on" + (f" ({', '.join(on)})" if on else ""))


def _status_of_user_agents(settings: Settings) -> None:
    from assets.ingestion.user_agents import pattern_source

    source = pattern_source(settings)
    if source.built_in:
        console.print(f"[yellow]User agents: WARNING: {source.describe()}[/]")
    else:
        console.print(f"User agents: {source.describe()}")


@main.command()
def status() -> None:
    """Where things are, what the warehouse holds, the last runs, failing checks, stale assets,
    and whether the daemon, schedules and sensors are on."""
    from resources.warehouse import connect_checked, embedded_server_url, with_database

    settings = _settings()
    _quiet_libraries(settings)
    if settings.database_url:
        connect_checked(settings.database_url, "DATABASE_URL").close()
        url = settings.database_url
        from resources.warehouse import describe_url

        console.print(f"Warehouse: DATABASE_URL ({describe_url(url)})")
    else:
        admin = embedded_server_url(settings.pg_data_dir)
        console.print(f"Embedded PostgreSQL in {settings.pg_data_dir}: {'running' if admin else 'stopped'}")
        url = with_database(admin, settings.warehouse_db) if admin else None
    console.print(f"Feed list: {settings.resolved_sources_file()}")
    _status_of_user_agents(settings)
    if not url:
        return
    try:
        for name, count in _table_counts(url):
            console.print(f"  {name:45s} {count:>10,}")
    except Exception as exc:  # noqa: BLE001 - status must report, not crash
        console.print(f"[red]cannot query the warehouse:[/] {' '.join(str(exc).split())}")
        return
    _status_of_slas(url)
    instance = _dagster_instance(settings, url)
    from pipelines.definitions import defs

    _status_of_runs(instance)
    _status_of_checks(instance, defs.resolve_asset_graph())
    _status_of_automation(instance, defs)


# --- schema migrations --------------------------------------------------------------------------------

@main.command()
@click.option("--new", "new_message", metavar="MESSAGE", default=None,
              help="Write the next revision file (resources/migrations/versions/NNNN_<message>.py) instead.")
def migrate(new_message: str | None) -> None:
    """Apply the warehouse's schema migrations (resources/migrations/versions/, Alembic) and print
    the revision it is at and the revisions applied. Asset runs never change the schema: they stop
    with one line until this has run."""
    from resources.schema import migrate as apply_migrations
    from resources.schema import new_revision
    from resources.warehouse import connect_checked, describe_url, resolve_urls

    settings = _settings()
    _quiet_libraries(settings)
    if new_message is not None:
        path = new_revision(new_message)
        console.print(f"new revision {path}: add its idempotent statements, then run `podcast-analytics migrate`")
        return
    if settings.database_url:
        connect_checked(settings.database_url, "DATABASE_URL").close()
    try:
        warehouse_url, _ = resolve_urls(settings.database_url, settings.data_dir, settings.warehouse_db,
                                        settings.dagster_db)
    except Exception as exc:  # noqa: BLE001 - the embedded server's start fails in many ways
        raise WarehouseError(f"cannot start the embedded PostgreSQL in {settings.pg_data_dir}: "
                             f"{' '.join(str(exc).split())[:300]}") from None
    migration = apply_migrations(warehouse_url, lock_timeout=settings.pg_lock_timeout)
    console.print(f"warehouse {describe_url(warehouse_url)}: {migration.describe()}")


# --- dbt ----------------------------------------------------------------------------------------------

def _dbt_environment(settings: Settings, warehouse_url: str | None = None) -> tuple[dict[str, str], Path]:
    """The environment dbt runs in against the platform's warehouse (the embedded server's socket
    included), with its logs and artifacts under the data directory."""
    from assets.dbt import dbt_executable
    from resources.warehouse import dbt_env

    if warehouse_url is None:
        warehouse_url, _, _ = _prepare_environment(settings)
    target = settings.data_dir / "dbt" / "target"
    target.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **dbt_env(warehouse_url),
           "DBT_PROFILES_DIR": str(settings.dbt_project_dir), "DBT_PROJECT_DIR": str(settings.dbt_project_dir),
           "DBT_LOG_PATH": str(_logs_dir(settings)), "DBT_TARGET_PATH": str(target),
           "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    return env, dbt_executable()


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def dbt(args: tuple[str, ...]) -> None:
    """Run dbt against the platform's warehouse: `podcast-analytics dbt -- build --full-refresh`.

    Artifacts go to `<data dir>/dbt/target`, dbt's log to `<data dir>/logs/dbt.log`. A full
    refresh is refused while a fact holds days a raw table's retention no longer keeps (it would
    rebuild them from nothing; `resources.warehouse.check_rebuild`)."""
    settings = _settings()
    _quiet_libraries(settings)
    if not args:
        raise CliError("give dbt's arguments after --, e.g. `podcast-analytics dbt -- build --full-refresh`")
    warehouse_url, _, _ = _prepare_environment(settings)
    env, executable = _dbt_environment(settings, warehouse_url)
    if "--full-refresh" in args:  # rebuilt from raw: not past what the raw tables' retention keeps
        _check_full_refresh(settings, warehouse_url, args, env, executable)
    if args[0] in ("build", "run", "test", "compile", "show") and "--vars" not in args:  # the settings' vars
        args = (*args, "--vars", json.dumps(settings.dbt_vars()))
    result = subprocess.run([str(executable), *args], env=env, cwd=settings.dbt_project_dir, check=False)
    sys.exit(result.returncode)


_SELECTION_OPTIONS = ("-s", "--select", "-m", "--models", "--exclude", "--selector")


def _check_full_refresh(settings: Settings, warehouse_url: str, args: tuple[str, ...], env: dict[str, str],
                        executable: Path) -> None:
    """Refuse a full refresh of a fact whose older days a raw table's retention no longer keeps
    (`resources.warehouse.check_rebuild`); the models it would rebuild are dbt's own reading of the
    selection (`dbt ls`), asked only when a retention could refuse it."""
    import psycopg

    from resources.warehouse import HISTORY_FACTS, check_rebuild, retention_horizons

    with psycopg.connect(warehouse_url) as conn:
        horizons = retention_horizons(conn)
        if not any(table in HISTORY_FACTS for table in horizons):
            return
        selection, option = [], None
        for arg in args[1:]:
            if arg.startswith("-"):
                option = arg if arg in _SELECTION_OPTIONS else None
                if option:
                    selection.append(arg)
            elif option:
                selection.append(arg)
        listed = subprocess.run([str(executable), "ls", "--resource-type", "model", "--output", "name", "--quiet",
                                 *selection], env=env, cwd=settings.dbt_project_dir, capture_output=True, text=True,
                                check=False)
        if listed.returncode != 0:
            raise CliError(f"cannot read the selection of this full refresh (dbt ls): {listed.stdout[-300:].strip()}")
        check_rebuild(conn, models=set(listed.stdout.split()))


# --- data-subject requests and tenant deletion ---------------------------------------------------------

def _dbt_runner(settings: Settings, warehouse_url: str):
    """Runs dbt as `podcast-analytics dbt` does; its output goes to the returned process."""
    env, executable = _dbt_environment(settings, warehouse_url)

    def run(args: list[str]) -> subprocess.CompletedProcess:
        return subprocess.run([str(executable), *args], env=env, cwd=settings.dbt_project_dir, check=False,
                              capture_output=True, text=True)

    return run


def _subject_options(command):
    for option in reversed((
            click.option("--tenant", "tenant_id", required=True, help="The tenant the subject is a listener or shopper of."),
            click.option("--email", default=None, help="The subject's e-mail address."),
            click.option("--phone", default=None, help="The subject's phone number."),
            click.option("--ip", default=None, help="A client address of the subject (a listener or shopper)."),
            click.option("--customer-id", default=None, help="The subject's customer id in the shop."),
            click.option("--by", default=None, help="Who asked (recorded in the audit; default: the OS user)."))):
        command = option(command)
    return command


def _subject(settings: Settings, tenant_id: str, email, phone, ip, customer_id):
    from resources.identifiers import InvalidIdentifier
    from pipelines.privacy import PrivacyRequestError, subject_for

    given = [(kind, value) for kind, value in (("email", email), ("phone", phone), ("ip", ip),
                                                ("customer", customer_id)) if value is not None]
    if len(given) != 1:
        raise CliError("give exactly one of --email, --phone, --ip, --customer-id")
    try:
        return subject_for(settings.resolved_ip_hash_secret(), tenant_id, *given[0])
    except (PrivacyRequestError, InvalidIdentifier) as exc:
        raise CliError(str(exc)) from None


def _rows_line(counts: dict[str, int]) -> str:
    if not counts:
        return "0 rows found: nothing stored is linked to this subject"
    return f"{sum(counts.values())} rows in {len(counts)} tables: " + ", ".join(
        f"{name} {count}" for name, count in sorted(counts.items()))


@main.group("privacy")
def privacy_group() -> None:
    """Data-subject requests: export or erase everything stored about one person (audited in
    ops.privacy_requests)."""


@privacy_group.command("export")
@_subject_options
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write the JSON (default: <data dir>/privacy/export-<request>.json).")
def privacy_export(tenant_id, email, phone, ip, customer_id, by, out: Path | None) -> None:
    """Write every stored row linked to the subject (found by its keyed hashes) as JSON."""
    from pipelines.privacy import export_subject, requested_by

    settings = _settings()
    _quiet_libraries(settings)
    subject = _subject(settings, tenant_id, email, phone, ip, customer_id)
    warehouse_url, _, _ = _prepare_environment(settings)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    target = out or settings.data_dir / "privacy" / f"export-{tenant_id}-{subject.kind}-{stamp}.json"
    outcome, _ = export_subject(warehouse_url, subject, target, requested_by(by))
    console.print(f"export {outcome.request_id} ({subject.kind} key {subject.key[:12]}…): {_rows_line(outcome.counts)}")
    console.print(f"written to {target}")


@privacy_group.command("erase")
@_subject_options
@click.option("--rebuild/--no-rebuild", default=True, show_default=True,
              help="Rebuild the models built from the erased rows now (with every rebuild still pending), or "
                   "leave it to the next erase that does.")
def privacy_erase(tenant_id, email, phone, ip, customer_id, by, rebuild: bool) -> None:
    """Delete every stored row linked to the subject, then rebuild (dbt, tests included) what was
    built from them."""
    from pipelines.privacy import erase_subject, requested_by

    settings = _settings()
    _quiet_libraries(settings)
    subject = _subject(settings, tenant_id, email, phone, ip, customer_id)
    warehouse_url, _, _ = _prepare_environment(settings)
    dbt_runner = _dbt_runner(settings, warehouse_url) if rebuild else None
    outcome = erase_subject(warehouse_url, subject, requested_by(by), dbt_runner, settings.dbt_project_dir)
    console.print(f"erase {outcome.request_id} ({subject.kind} key {subject.key[:12]}…): "
                  f"{_rows_line(outcome.counts).replace('found', 'erased', 1)}")
    _print_rebuild(outcome)


def _print_rebuild(outcome) -> None:
    if outcome.detail.get("rebuild"):
        console.print(f"rebuild ({' '.join(outcome.detail['rebuild'])}): {outcome.status}")
    if outcome.detail.get("reports_to_render"):
        console.print(f"reports to render again: {', '.join(outcome.detail['reports_to_render'])}")
    if outcome.status == "rebuild_failed":
        raise CliError(f"the rebuild failed: see ops.privacy_requests (request {outcome.request_id}) and "
                       f"`podcast-analytics dbt -- build`")


@main.group()
def tenants() -> None:
    """Tenants of the platform: their readers (`add-reader`) and their removal (`delete`)."""


@tenants.command("delete")
@click.argument("tenant_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--by", default=None, help="Who asked (recorded in the audit; default: the OS user).")
def tenants_delete(tenant_id: str, yes: bool, by: str | None) -> None:
    """Remove a tenant entirely: its rows in every schema, report files, exports, landing folders
    and report partitions; the models pooling tenants are rebuilt. Audited."""
    from resources.identifiers import InvalidIdentifier, validate_identifier
    from pipelines.privacy import TenantPlaces, delete_tenant, requested_by
    from resources.report_store import ReportStoreResource

    settings = _settings()
    _quiet_libraries(settings)
    try:
        validate_identifier("tenant id", tenant_id)
    except InvalidIdentifier as exc:
        raise CliError(str(exc)) from None
    if not yes:
        click.confirm(f"Delete every row, report and file of tenant {tenant_id}?", abort=True)
    warehouse_url, _, _ = _prepare_environment(settings)
    exports = settings.data_dir / "exports"
    places = TenantPlaces(
        report_store=ReportStoreResource(base_url=settings.resolved_reports_url()),
        folders=[settings.resolved_log_landing_dir() / tenant_id, settings.resolved_conversion_landing_dir() / tenant_id,
                 settings.resolved_insertion_order_dir() / tenant_id],
        files=sorted(exports.glob(f"*/{tenant_id}.csv")) if exports.is_dir() else [])
    with contextlib.suppress(Exception):  # no Dagster storage reachable: no partitions to remove
        import dagster as dg

        places.instance = dg.DagsterInstance.get()
    outcome = delete_tenant(warehouse_url, tenant_id, requested_by(by), places, _dbt_runner(settings, warehouse_url),
                            settings.dbt_project_dir)
    console.print(f"tenant {tenant_id} deleted (request {outcome.request_id}): "
                  f"{_rows_line(outcome.counts).replace('found', 'deleted', 1)}")
    if outcome.detail["removed"] or outcome.detail["partitions"]:
        console.print(f"removed: {len(outcome.detail['removed'])} files and folders, "
                      f"{len(outcome.detail['partitions'])} report partitions")
    console.print("remove its entries from sources.yaml too, or the next sync fetches its data again")
    _print_rebuild(outcome)


@main.command()
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="First day of the partitioned models to rebuild (default: the first day a rule change left "
                   "out of date).")
@click.option("--until", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="Last day (default: the newest partition, today).")
@click.option("--full-refresh", is_flag=True,
              help="Rebuild every dbt model whole and every partitioned day from --since, whatever the rules say.")
@click.option("--plan", "plan_only", is_flag=True, help="Print what would be rebuilt, and stop.")
@click.option("--per-tenant", is_flag=True,
              help="Submit one run of the partitioned models over --since..--until per tenant to the instance's run "
                   "queue (the daemon runs different tenants' runs in parallel), print their run ids and return.")
@click.option("--tenant", "tenant_ids", multiple=True, metavar="TENANT",
              help="With --per-tenant: a tenant to submit a run for (repeatable; default: every tenant with podcasts).")
@click.option("--workspace", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="With --per-tenant: the Dagster workspace the runs are submitted through, as the daemon loads "
                   "the code location (default: the repository's workspace.yaml).")
def backfill(since, until, full_refresh: bool, plan_only: bool, per_tenant: bool, tenant_ids: tuple[str, ...],
             workspace: Path | None) -> None:
    """Rebuild what a rule change (IAB or attribution vars, user-agent patterns, model SQL) left
    out of date, as rules_changed_sensor does under the daemon, in the order of the graph: the
    unpartitioned dbt models whole, the partitioned ones over their days as one run.
    With --since, those days of every partitioned model are rebuilt in any case.
    With --per-tenant, the partitioned models over --since..--until as one queued run per tenant."""
    if per_tenant:
        _backfill_per_tenant(since, until, full_refresh, plan_only, tenant_ids, workspace)
        return
    if tenant_ids or workspace:
        raise CliError("--tenant and --workspace go with --per-tenant")
    import dagster as dg

    from assets.dbt import DBT_PARTITIONS, build_dbt_assets, build_partitioned_dbt_assets
    from pipelines.phases import phases
    from pipelines.rules import RANGE_END, RANGE_START, RULE_TAG, rebuild_plan
    from resources.warehouse import WarehouseResource

    settings = _settings()
    _quiet_libraries(settings)
    warehouse_url, _, _ = _prepare_environment(settings)
    from pipelines.definitions import defs

    instance = dg.DagsterInstance.get()
    plan = rebuild_plan(instance, WarehouseResource(database_url=warehouse_url))
    unpartitioned = sorted(build_dbt_assets().keys, key=str) if full_refresh else plan.unpartitioned
    partitioned = plan.partitioned
    first_day = plan.first_day
    if full_refresh or since is not None:
        partitioned = sorted(build_partitioned_dbt_assets().keys, key=str)
        built = set().union(*(instance.get_materialized_partitions(key) for key in partitioned))
        first_day = since.date().isoformat() if since else min(built, default=None)
    last_day = until.date().isoformat() if until else DBT_PARTITIONS.get_last_partition_key()
    console.print(f"unpartitioned models to rebuild{' (whole)' if full_refresh else ''}: "
                  f"{', '.join(k.path[-1] for k in unpartitioned) or 'none'}")
    if partitioned and first_day is not None:
        console.print(f"partitioned models over {first_day}..{last_day}: {', '.join(k.path[-1] for k in partitioned)}")
    else:
        console.print("partitioned models: none to rebuild")
    if plan_only:
        return
    results = []
    graph = defs.resolve_asset_graph()
    keys = set(unpartitioned) | (set(partitioned) if first_day is not None else set())
    for is_partitioned, phase_keys in phases(graph, keys):
        if results and not results[-1].success:
            break
        if is_partitioned:
            results.append(defs.resolve_job_def("dbt_partitioned").execute_in_process(
                instance=instance, raise_on_error=False, asset_selection=sorted(phase_keys, key=str),
                tags={RANGE_START: first_day, RANGE_END: last_day, RULE_TAG: "backfill"}))
        else:
            results.append(defs.resolve_job_def("dbt_unpartitioned").execute_in_process(
                instance=instance, raise_on_error=False, asset_selection=sorted(phase_keys, key=str),
                tags={RULE_TAG: "rebuild"},
                run_config={"ops": {"dbt_models": {"config": {"full_refresh": full_refresh}}}}))
    for result in results:
        console.print(f"run {result.run_id[:8]} ({result.job_def.name}): {'success' if result.success else 'FAILED'}")
    failed = _failure_lines(results)
    for line in failed:
        console.print(line)
    sys.exit(0 if all(r.success for r in results) else 1)


def _backfill_per_tenant(since, until, full_refresh: bool, plan_only: bool, tenant_ids: tuple[str, ...],
                         workspace: Path | None) -> None:
    """One `dbt_partitioned` run per tenant over the days asked for, submitted to the instance's
    run queue through Dagster's own `dagster job launch` (as the UI or a sensor submits runs):
    each carries its tenant's tags (assets/run_tags.py), so its dbt build rewrites that tenant's
    rows only, runs of different tenants build in parallel and two of one tenant take turns."""
    import uuid

    import psycopg

    from assets.dbt import DBT_PARTITIONS
    from assets.run_tags import dbt_tenant_tags
    from pipelines.rules import RANGE_END, RANGE_START
    from resources.identifiers import InvalidIdentifier, validate_identifier

    if since is None:
        raise CliError("--per-tenant needs --since (the first day to rebuild)")
    if full_refresh:
        raise CliError("--per-tenant rebuilds days, --full-refresh whole tables of every tenant: choose one")
    try:
        for tenant_id in tenant_ids:
            validate_identifier("tenant id", tenant_id)
    except InvalidIdentifier as exc:
        raise CliError(str(exc)) from None
    settings = _settings()
    _quiet_libraries(settings)
    warehouse_url, _, _ = _prepare_environment(settings)
    first_day = since.date().isoformat()
    last_day = until.date().isoformat() if until else DBT_PARTITIONS.get_last_partition_key()
    if first_day > last_day:
        raise CliError(f"--since {first_day} is after --until {last_day}")
    if not tenant_ids:
        with psycopg.connect(warehouse_url) as conn:
            tenant_ids = tuple(r[0] for r in conn.execute("select distinct tenant_id from marts.dim_podcasts order by 1"))
    if not tenant_ids:
        raise CliError("no tenant has podcasts in the warehouse: nothing to backfill")
    console.print(f"partitioned models over {first_day}..{last_day}, one run per tenant: {', '.join(tenant_ids)}")
    if plan_only:
        return
    workspace = workspace or REPO_ROOT / "workspace.yaml"
    dagster = Path(sys.executable).with_name("dagster")
    # The tenants' submissions at once (each starts Dagster's CLI and reads the workspace).
    launches = {}
    for tenant_id in tenant_ids:
        run_id = str(uuid.uuid4())
        tags = {**dbt_tenant_tags(tenant_id), RANGE_START: first_day, RANGE_END: last_day}
        launches[tenant_id] = run_id, subprocess.Popen(
            [str(dagster), "job", "launch", "-w", str(workspace), "-j", "dbt_partitioned", "--run-id", run_id,
             "--tags", json.dumps(tags)], cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    refused = []
    for tenant_id, (run_id, launch) in launches.items():
        _, stderr = launch.communicate()
        if launch.returncode != 0:
            refused.append(f"tenant {tenant_id}: the run was not submitted "
                           f"({(stderr.strip().splitlines() or ['no output'])[-1]})")
        else:
            console.print(f"run {run_id} (dbt_partitioned, tenant {tenant_id}): queued")
    if refused:
        raise CliError("; ".join(refused))


@main.command()
@click.option("--port", type=int, default=8080, show_default=True, help="Port of the documentation site.")
@click.option("--serve/--no-serve", default=True, show_default=True, help="Serve the site after generating it.")
def docs(port: int, serve: bool) -> None:
    """Generate dbt's documentation (lineage, columns, tests) from the warehouse and serve it."""
    settings = _settings()
    _quiet_libraries(settings)
    env, executable = _dbt_environment(settings)
    target = Path(env["DBT_TARGET_PATH"])
    generate = [str(executable), "docs", "generate", "--quiet"]
    generated = subprocess.run(generate, env=env, cwd=settings.dbt_project_dir, check=False, capture_output=True)
    if generated.returncode != 0:
        # Some tests read the warehouse while they compile: before the first build, the site is
        # made without compiled SQL (lineage, columns, descriptions and the catalog are complete).
        console.print("models not built yet: generating the docs without compiled SQL")
        generated = subprocess.run([*generate, "--no-compile"], env=env, cwd=settings.dbt_project_dir,
                                   check=False, capture_output=True)
    if generated.returncode != 0 or not (target / "index.html").exists():
        raise CliError(f"dbt docs generate failed (exit {generated.returncode}); dbt's log: "
                       f"{_logs_dir(settings) / 'dbt.log'}")
    console.print(f"[green]✓[/] dbt docs in {target / 'index.html'}")
    if not serve:
        return
    import functools
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(target))
    try:
        server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError as exc:
        raise CliError(f"cannot serve the docs on 127.0.0.1:{port} ({exc.strerror}): choose another --port") from None

    def stop_serving(*_) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop_serving)
    console.print(f"serving on http://127.0.0.1:{port} (Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        server.server_close()


@main.command()
@click.option("--port", type=int, default=None, help="Port of the /metrics endpoint (PODCAST_METRICS_PORT, 9108).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0 in a container).")
def metrics(port: int | None, host: str) -> None:
    """Serve the platform's Prometheus metrics, read from the warehouse and the Dagster instance."""
    import dagster as dg

    from pipelines.definitions import defs
    from pipelines.metrics import build_registry, serve

    settings = _settings()
    _quiet_libraries(settings)
    port = port or settings.metrics_port
    if os.environ.get("DAGSTER_HOME") and settings.database_url:
        # A deployment (docker-compose): the instance and the warehouse are configured already.
        warehouse_url = settings.database_url
        if os.environ.get("DAGSTER_PG_URL"):
            os.environ["DAGSTER_PG_URL"] = psycopg2_url(os.environ["DAGSTER_PG_URL"])
    else:
        warehouse_url, _, _ = _prepare_environment(settings)
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


@main.group("user-agents")
def user_agents() -> None:
    """The user-agent patterns (OPAWG user-agents-v2) that tell listeners from bots."""


@user_agents.command("update")
@click.option("--from", "source", default=None, metavar="URL-OR-DIRECTORY",
              help="Base URL laid out as the upstream repository (src/*.json, schemas/patterns.schema.json), or a "
                   "directory of the files (default: github.com/opawg/user-agents-v2).")
def user_agents_update(source: str | None) -> None:
    """Download OPAWG's pattern files, validate them against the schema and store them with their
    version under the data dir; the next materialization of raw/user_agent_patterns loads them.
    An invalid file is refused (one line) and the stored copy is kept."""
    settings = _settings()
    console.print(update_user_agents(settings, source))


def update_user_agents(settings: Settings, source: str | None) -> str:
    """`user-agents update`: the line it prints, or `CliError` naming what was refused."""
    from assets.ingestion.user_agents import OPAWG_URL, PatternUpdateError, stored_version, update_patterns

    store = settings.resolved_user_agent_store_dir()
    try:
        manifest, changed = update_patterns(source, store)
    except (PatternUpdateError, OSError) as exc:
        kept = stored_version(store)
        keeping = f"the stored copy (version {kept['id']}) is kept" if kept else "nothing is stored"
        message = str(exc) if isinstance(exc, PatternUpdateError) else f"{exc.strerror or exc}: {exc.filename or ''}"
        raise CliError(f"user-agents update from {source or OPAWG_URL}: {message}; {keeping}") from None
    entries = sum(v["entries"] or 0 for v in manifest["files"].values())
    label = f"commit {manifest['commit'][:12]}" if manifest.get("commit") else f"version {manifest['id']}"
    verb = "stored" if changed else "unchanged, already stored"
    note = ("" if settings.user_agent_patterns_dir is None else
            f" (PODCAST_USER_AGENT_PATTERNS_DIR={settings.user_agent_patterns_dir} still takes precedence)")
    return f"OPAWG user agents {label}: {entries} entries {verb} in {store / 'current'}{note}"


@tenants.command("add-reader")
@click.argument("tenant")
@click.option("--login", required=True, metavar="NAME", help="The log-in role to create (or to give the tenant).")
@click.option("--password-env", metavar="VAR", default=None,
              help="Environment variable holding the login's password (none: the server authenticates it otherwise).")
def tenants_add_reader(tenant: str, login: str, password_env: str | None) -> None:
    """Create a log-in role that reads TENANT's rows only: a member of podcast_tenant_reader,
    filtered by row-level security in every mart, the report registry and the SLA table; with
    the readers' timeouts. Run again with another tenant to let the login read that one too."""
    from resources.identifiers import InvalidIdentifier, validate_identifier
    from resources.schema import migrate as apply_migrations
    from resources.warehouse import connect_checked, resolve_urls

    try:
        validate_identifier("tenant id", tenant)
        validate_identifier("login", login)
    except InvalidIdentifier as exc:
        raise CliError(str(exc)) from None
    password = None
    if password_env is not None:
        password = os.environ.get(password_env)
        if not password:
            raise CliError(f"--password-env {password_env}: the variable is not set or empty")
    settings = _settings()
    _quiet_libraries(settings)
    if settings.database_url:
        connect_checked(settings.database_url, "DATABASE_URL").close()
    warehouse_url, _ = resolve_urls(settings.database_url, settings.data_dir, settings.warehouse_db,
                                    settings.dagster_db)
    apply_migrations(warehouse_url, lock_timeout=settings.pg_lock_timeout)
    with connect_checked(warehouse_url, "DATABASE_URL", autocommit=False) as conn:
        console.print(add_tenant_reader(conn, tenant, login, password))


def add_tenant_reader(conn, tenant: str, login: str, password: str | None) -> str:
    """`tenants add-reader` on an open connection (committed here): the line it prints, or
    `CliError` when the login may not become a tenant reader."""
    from psycopg import sql

    if conn.execute("select not exists (select from pg_roles where rolname = 'podcast_tenant_reader')").fetchone()[0]:
        raise CliError("the role podcast_tenant_reader does not exist: run `podcast-analytics migrate` as a role that "
                       "may create roles, or create it as an administrator")
    existing = conn.execute("""
        select role.rolsuper or role.rolbypassrls,
               exists (select from pg_roles as network where network.rolname = 'podcast_reader')
                   and pg_has_role(role.oid, 'podcast_reader', 'member'),
               role.rolname = current_user or exists (
                   select from pg_class where relowner = role.oid
                       and relnamespace in ('marts'::regnamespace, 'reports'::regnamespace))
        from pg_roles as role where role.rolname = %s""", (login,)).fetchone()
    if existing and existing[0]:
        raise CliError(f"role {login} is a superuser or bypasses row-level security: it cannot be a tenant reader")
    if existing and existing[1]:
        raise CliError(f"role {login} is a member of podcast_reader (every tenant): it cannot be a tenant reader")
    if existing and existing[2]:
        raise CliError(f"role {login} owns the marts or the report registry: it cannot be a tenant reader")
    role = sql.Identifier(login)
    if existing:
        conn.execute(sql.SQL("grant podcast_tenant_reader to {}").format(role))
    else:
        conn.execute(sql.SQL("create role {} login in role podcast_tenant_reader").format(role))
    if password is not None:
        # Sent as a SCRAM verifier computed here: the password itself never reaches the server (or its log).
        verifier = conn.pgconn.encrypt_password(password.encode(), login.encode()).decode()
        conn.execute(sql.SQL("alter role {} password {}").format(role, sql.Literal(verifier)))
    for setting in ("statement_timeout", "idle_in_transaction_session_timeout"):
        conn.execute(sql.SQL("alter role {} set {} = '60s'").format(role, sql.Identifier(setting)))
    added = conn.execute("insert into ops.tenant_readers (role_name, tenant_id) values (%s, %s) "
                         "on conflict do nothing", (login, tenant)).rowcount
    readable = [row[0] for row in conn.execute(
        "select tenant_id from ops.tenant_readers where role_name = %s order by 1", (login,))]
    conn.commit()
    state = "created" if not existing else "updated" if added or password is not None else "unchanged"
    return (f"tenant reader {login} {state}: reads the rows of {', '.join(readable)} in the marts, the report "
            "registry and the SLA table")


@main.command()
def stop() -> None:
    """Stop the embedded PostgreSQL server."""
    from resources.warehouse import stop_embedded_server

    settings = _settings()
    _quiet_libraries(settings)
    stopped = stop_embedded_server(settings.pg_data_dir)
    console.print("embedded PostgreSQL stopped" if stopped else "embedded PostgreSQL was not running")


if __name__ == "__main__":
    main()

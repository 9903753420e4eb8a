"""The dbt project as Dagster assets: one translator, one cached project, one `dbt build`."""

import contextlib
import fcntl
import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    DbtProject,
    dbt_assets,
)

from assets.automation import DAILY, DAILY_TAG, ON_NEW_DATA
from assets.partitions import DAILY_PARTITIONS
from assets.dbt_rules import RuleFingerprints, pattern_set_version, project_vars
from assets.quality_gate import asset_graph_of, blocker_metadata, gated_keys
from assets.run_tags import DBT_TENANT_TAG
from resources.request_retention import (check_request_window, clear_request_horizons, reads_from_the_first_request,
                                         request_horizons)
from resources.settings import get_settings
from resources.warehouse import WarehouseError, WarehouseResource, check_rebuild

LAYERS = ("staging", "intermediate", "marts")
DBT_POOL = "dbt"


def dbt_executable() -> Path:
    """dbt from this interpreter's environment (the virtualenv need not be on PATH)."""
    return Path(sys.executable).with_name("dbt")


def _newest_source_mtime(project_dir: Path) -> float:
    newest = (project_dir / "dbt_project.yml").stat().st_mtime
    for folder in ("models", "macros", "tests", "seeds", "snapshots"):
        for path in (project_dir / folder).rglob("*"):
            if path.is_file():
                newest = max(newest, path.stat().st_mtime)
    return newest


def ensure_manifest(project: DbtProject) -> Path:
    """Run `dbt parse` when the manifest is missing or older than the project files.

    Several processes (webserver, daemon, run workers) load the code location at once, so the
    parse runs under a file lock.
    """
    manifest = project.manifest_path
    manifest.parent.mkdir(parents=True, exist_ok=True)
    with open(manifest.parent / ".parse.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if manifest.exists() and manifest.stat().st_mtime >= _newest_source_mtime(project.project_dir):
            return manifest
        subprocess.run(
            [str(dbt_executable()), "parse", "--quiet", "--project-dir", str(project.project_dir),
             "--profiles-dir", str(project.profiles_dir), "--target-path", str(manifest.parent)],
            check=True, capture_output=True, text=True,
        )
    return manifest


@functools.cache
def dbt_manifest() -> dict[str, Any]:
    return json.loads(dbt_project().manifest_path.read_text())


@functools.cache
def dbt_project() -> DbtProject:
    settings = get_settings()
    project = DbtProject(project_dir=settings.dbt_project_dir, profiles_dir=settings.dbt_project_dir)
    ensure_manifest(project)
    return project




class LayeredTranslator(DagsterDbtTranslator):
    """Models are keyed `[layer, model]` and grouped by their layer folder. They follow their
    upstream when its data changes (assets/automation.py), except models tagged `daily`
    (whole-period statistics such as campaign lift), rebuilt once a day after their upstream.

    Each spec keeps the metadata dagster-dbt derives from the manifest, among it
    `dagster/column_schema`: the column names, types and descriptions of the model's yml (every
    mart declares all of them; tests/test_mart_docs.py). Column lineage
    (`fetch_column_metadata` on the invocation) is not fetched: it reads every built model's and
    its parents' columns from the database and traces the compiled SQL, which made a full-graph
    run about 10 s slower (tests/test_pipeline.py, 35 s to 47 s for its two runs)."""

    def get_partition_mapping(self, dbt_resource_props: Mapping[str, Any],
                              dbt_parent_resource_props: Mapping[str, Any]) -> dg.PartitionMapping | None:
        """Which days of a parent a day of a partitioned model reads (docs/PARTITIONED_DBT.md):
        the requests of a day come from the log files of that day and the days beside it; a
        day's downloads read the requests and windows of the days their windows reach into; a
        table rebuilt whole by each partitioned run reads every day of its partitioned parents."""
        if PARTITIONED_TAG not in dbt_resource_props.get("tags", []):
            return None
        parent = dbt_parent_resource_props
        if parent.get("resource_type") == "source" and (parent.get("schema"), parent.get("name")) == ("raw", "listener_events"):
            return dg.TimeWindowPartitionMapping(start_offset=-1, end_offset=1)
        if dbt_resource_props.get("config", {}).get("materialized") == "table" and PARTITIONED_TAG in parent.get("tags", []):
            return dg.AllPartitionMapping()
        if dbt_resource_props["name"] == "int_downloads_iab_filtered" and parent.get("name") in (
                "int_listener_requests_screened", "int_download_windows"):
            return dg.TimeWindowPartitionMapping(start_offset=0, end_offset=window_reach_days())
        if dbt_resource_props["name"] == "fct_attributed_conversions" and parent.get("name") == "int_exposures":
            # A day's conversions are credited from the exposures of the attribution window before it.
            return dg.TimeWindowPartitionMapping(start_offset=-attribution_lookback_days(), end_offset=0)
        return None

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = self.get_resource_props(manifest, unique_id)
        if props.get("resource_type") != "model":
            return spec
        fqn = props.get("fqn", [])
        layer = next((part for part in fqn if part in LAYERS), "marts")
        return spec.replace_attributes(
            key=dg.AssetKey([layer, props["name"]]),
            group_name=layer,
            # The daily-partitioned models run for the days their inputs changed, all of them in
            # one run per range of days (pipelines/partition_sensor.py): automation would request
            # them asset by asset and partition by partition, and the tables rebuilt in every
            # partitioned run would set them off again.
            automation_condition=None if PARTITIONED_TAG in props.get("tags", [])
            else DAILY if DAILY_TAG in props.get("tags", []) else ON_NEW_DATA,
            # The model's SQL and the rule vars it and its parents read (assets/dbt_rules.py).
            code_version=rule_fingerprints(manifest).code_version(unique_id),
        ).merge_attributes(kinds={"postgres"})


def effective_vars(dbt_vars: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The values dbt sees for its vars: dbt_project.yml's, replaced by the settings' (every build
    passes those), replaced by `dbt_vars` (a run's own)."""
    return {**project_vars(Path(get_settings().dbt_project_dir)), **get_settings().dbt_vars(), **(dbt_vars or {})}


def rule_fingerprints(manifest: Mapping[str, Any], pattern_set: str | None = None) -> RuleFingerprints:
    """The rules fingerprints of the manifest's models under the vars every build passes."""
    key = (id(manifest), pattern_set)
    if key not in _FINGERPRINTS:
        _FINGERPRINTS[key] = RuleFingerprints(manifest, effective_vars(), pattern_set)
    return _FINGERPRINTS[key]


_FINGERPRINTS: dict[tuple[int, str | None], RuleFingerprints] = {}


def window_reach_days(dbt_vars: Mapping[str, Any] | None = None) -> int:
    """How many days after the day it opened an IAB window's requests can fall on: none for
    calendar-day windows, one for 24-hour ones, `iab_max_window_days` for last-touch ones."""
    values = effective_vars(dbt_vars)
    window = values.get("iab_window", "rolling_24h")
    return 0 if window == "calendar_day" else 1 if window == "rolling_24h" else int(values.get("iab_max_window_days", 7))


def attribution_lookback_days(dbt_vars: Mapping[str, Any] | None = None) -> int:
    """How many days before a conversion its exposures can be: `attribution_max_window_days`."""
    return int(effective_vars(dbt_vars).get("attribution_max_window_days", 60))


class DbtConfig(dg.Config):
    """Run config of both dbt asset sets. `full_refresh` rebuilds the selected models from
    scratch (`dbt build --full-refresh`), a partitioned one over every day whatever the run's
    partitions; `vars` replace the project's and the settings' dbt vars for this run only."""

    full_refresh: bool = False
    vars: dict[str, Any] = {}


TRANSLATOR = LayeredTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))


PARTITIONED_TAG = "partitioned"
ROWS_MESSAGE = re.compile(r"(?:INSERT [0-9]+|SELECT|UPDATE|DELETE|MERGE|COPY) ([0-9]+)")
# UTC days, as the access-log partitions (LOG_PARTITIONS): today is a partition while it fills.
DBT_PARTITIONS = DAILY_PARTITIONS


@functools.cache
def build_dbt_assets() -> dg.AssetsDefinition:
    """Every model but the partitioned ones (dbt tag `partitioned`): one `dbt build` of the
    selected models, as before partitions."""
    project = dbt_project()

    @dbt_assets(
        manifest=project.manifest_path,
        project=project,
        dagster_dbt_translator=TRANSLATOR,
        name="dbt_models",
        exclude=f"tag:{PARTITIONED_TAG}",
        # One build at a time per instance (dagster.yaml: concurrency.pools.default_limit): two
        # builds of the same models deadlocked in their table swaps; the second now waits. (It
        # also takes turns with the partitioned builds: WarehouseResource.dbt_lock in _build.)
        pool=DBT_POOL,
    )
    def dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource,
                   config: DbtConfig):
        """`dbt build` of the selected models: runs them, their unit tests and data tests."""
        yield from _build(context, dbt, warehouse, config, {}, tenant=None)

    return dbt_models


@functools.cache
def build_partitioned_dbt_assets() -> dg.AssetsDefinition:
    """The models tagged `partitioned`, one daily partition per UTC day (docs/PARTITIONED_DBT.md):
    a run passes its partition window to dbt as the vars `min_date`/`max_date`, and each model
    replaces the rows of those days. A backfill of many days is one run over the range.

    A run tagged `podcast/dbt_tenant` builds that tenant's rows only (var `tenants`), in parallel
    with other tenants' runs (docs/PARTITIONED_DBT.md, section 15). So this op takes no pool (a
    pool is fixed on the op, and pool `dbt` would make the tenants' runs wait for each other):
    its builds take turns through the warehouse's dbt lock instead, shared by tenant runs and
    exclusive for a build of every tenant, and two runs of one tenant through the run queue
    (dagster.yaml: a limit of 1 per value of `podcast/dbt_tenant`)."""
    project = dbt_project()

    @dbt_assets(
        manifest=project.manifest_path,
        project=project,
        dagster_dbt_translator=TRANSLATOR,
        name="dbt_partitioned_models",
        select=f"tag:{PARTITIONED_TAG}",
        partitions_def=DBT_PARTITIONS,
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def dbt_partitioned_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource,
                               config: DbtConfig):
        """`dbt build` of the selected models over the run's days (and tenant, if it names one)."""
        yield from _build(context, dbt, warehouse, config, partition_vars(context.partition_time_window),
                          tenant=context.run.tags.get(DBT_TENANT_TAG))

    return dbt_partitioned_models


def dbt_asset_definitions() -> list[dg.AssetsDefinition]:
    """Both dbt asset sets: what the code location and whole-graph tests load."""
    return [build_dbt_assets(), build_partitioned_dbt_assets()]


def partition_vars(window: dg.TimeWindow) -> dict[str, str]:
    """The dbt vars of a partition window: its first day and the day after its last."""
    return {"min_date": window.start.date().isoformat(), "max_date": window.end.date().isoformat()}


def _build(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource,
           config: DbtConfig, window_vars: dict[str, str], tenant: str | None):
    # A full refresh rebuilds every day of a partitioned model, whatever the run's partitions: a
    # table recreated from one window would hold that window only.
    dbt_vars = {**get_settings().dbt_vars(), **config.vars, **({} if config.full_refresh else window_vars)}
    # A run for one tenant (its tag, which the run queue limits by) builds that tenant's rows only;
    # a full refresh recreates the tables of every tenant.
    if "tenants" in dbt_vars:
        raise dg.Failure(f"the dbt var `tenants` comes from the run tag {DBT_TENANT_TAG} (one tenant per run)")
    if tenant is not None:
        if config.full_refresh:
            raise dg.Failure(f"a full refresh rebuilds every tenant: start it without the run tag {DBT_TENANT_TAG}")
        dbt_vars["tenants"] = [tenant]
    # dbt's sessions: named podcast-analytics/dbt, with their lock and statement timeouts
    # (PGOPTIONS, read by libpq in dbt's process only: set around its start, not for this process).
    session = warehouse.dbt_env()
    session_options = session.pop("PGOPTIONS")
    os.environ.update(session)
    # A run of some models tests those models, not every test that reads one of them: a
    # relationship from an unselected model may point at a table not built yet (dbt's eager
    # default ran it and failed the run). The whole graph still runs every test.
    os.environ.setdefault("DBT_INDIRECT_SELECTION", "cautious")
    # The quality gate: models with a failed blocking check upstream (from an earlier run too)
    # are left out of the build and say why; the others go on.
    gated = gated_keys(context.instance, asset_graph_of(context), context.selected_asset_keys)
    for key, blockers in sorted(gated.items(), key=lambda item: item[0].to_user_string()):
        context.log.warning(f"{key.to_user_string()} not built: " + "; ".join(map(str, blockers)))
        yield dg.AssetObservation(asset_key=key, metadata=blocker_metadata(blockers))
    if gated and not set(context.selected_asset_keys) - set(gated):
        return
    # Each gated model with everything built from it (its descendants are gated as well) and
    # every test that reads it, a relationship from a model that is built included.
    excluded = sorted(f"{_model_name(context, key)}+" for key in gated)
    # Unit tests check the SQL on fixed rows, not the data: a run over some days leaves them to
    # the builds without a window (they would see their rows through the window's filter).
    if "min_date" in dbt_vars:
        excluded.append("test_type:unit")
    partitioned = context.has_partition_key or context.has_partition_key_range
    one_partition = partitioned and len(context.partition_keys) == 1
    manifest = dbt_manifest()
    with warehouse.connect(autocommit=True) as conn:
        # Days rebuilt from raw rows a TimescaleDB retention has dropped would shrink the facts:
        # refused, naming the fact, the rows and the first day the raw table keeps.
        if partitioned or config.full_refresh:
            try:
                check_rebuild(conn, since=None if "min_date" not in dbt_vars else date.fromisoformat(dbt_vars["min_date"]),
                              models={_model_name(context, key) for key in context.selected_asset_keys})
            except WarehouseError as refused:
                raise dg.Failure(str(refused)) from None
        # Days whose request-level rows the retention deleted cannot be rebuilt from them.
        read = request_tables_read(manifest)
        reading = {name: read[name] for name in {_model_name(context, key) for key in context.selected_asset_keys}
                   if name in read}
        since = date.fromisoformat(dbt_vars["min_date"]) if partitioned and "min_date" in dbt_vars else None
        horizons = request_horizons(conn) if since is not None else {}
        # A run from the first stored request on needs no earlier day, and past the last pruned day
        # it reads every pruned day from the raw events again.
        from_first = since is not None and reads_from_the_first_request(conn, since)
        restores = from_first and ("max_date" not in dbt_vars or date.fromisoformat(dbt_vars["max_date"])
                                   >= max(horizons.values(), default=date.min))
        if since is not None and reading and not from_first:
            try:
                check_request_window(horizons, since, set().union(*reading.values()), reading)
            except WarehouseError as refused:
                raise dg.Failure(str(refused)) from None
        fingerprints = RuleFingerprints(manifest, effective_vars(dbt_vars),
                                        pattern_set_version(conn))
    models = {node["name"]: unique_id for unique_id, node in manifest["nodes"].items() if unique_id.startswith("model.")}
    current = {key: fingerprints.fingerprint(models[_model_name(context, key)])
               for key in context.selected_asset_keys if _model_name(context, key) in models}
    # An unpartitioned incremental model built under other rules (or at the run's request) is
    # rebuilt whole: adding what is new would keep its old rows as they were. A partitioned
    # model rebuilds its window anyway; its other partitions are a backfill's (rules_changed_sensor).
    if config.full_refresh:
        refresh = sorted(_model_name(context, key) for key in current if key not in gated)
    elif partitioned:
        refresh = []
    else:
        refresh = sorted(
            _model_name(context, key) for key, fingerprint in current.items()
            if key not in gated and manifest["nodes"][models[_model_name(context, key)]]["config"].get("materialized") == "incremental"
            and (recorded := recorded_fingerprint(context.instance, key)) is not None and recorded != fingerprint
        )
        if refresh:
            context.log.info("rebuilt whole, their rules changed since their last build: " + ", ".join(refresh))
    invocations = []
    if refresh:
        invocations.append(["build", "--full-refresh", "--vars", json.dumps(dbt_vars), "--select", " ".join(refresh),
                            *(["--exclude", " ".join(excluded)] if excluded else [])])
    if not config.full_refresh:
        rest = excluded + refresh
        invocations.append(["build", "--vars", json.dumps(dbt_vars), *(["--exclude", " ".join(rest)] if rest else [])])
    state = _parse_state(Path(dbt.project_dir), session, dbt_vars)
    # Builds take turns: one for a tenant shares the lock with other tenants' builds, any other
    # waits for every build to end (and they for it).
    with warehouse.dbt_lock(shared=tenant is not None, waiting=lambda: context.log.info(
            "waiting for the dbt builds in progress to end" if tenant is None
            else "waiting for the dbt build of every tenant in progress to end")):
        for args in invocations:
            # A target folder of the run's own, as dagster-dbt names one, started from the last parse.
            target = Path(dbt.project_dir, "target",
                          f"{context.op_def.name}-{context.run.run_id[:7]}-{uuid.uuid4().hex[:7]}")
            if state.exists():
                target.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(state, target / PARTIAL_PARSE)
            with _environ(PGOPTIONS=session_options):
                invocation = dbt.cli(args, context=context, target_path=target)
            yield from _asset_events(context, invocation, warehouse, current, partitioned, one_partition,
                                     rebuilt_whole="min_date" not in dbt_vars or restores)
            _keep_parse_state(target / PARTIAL_PARSE, state)


PARTIAL_PARSE = "partial_parse.msgpack"


def _parse_state(project_dir: Path, session: Mapping[str, str], dbt_vars: Mapping[str, Any]) -> Path:
    """Where the runs keep dbt's parse of the project for a warehouse and the vars of their kind
    (the partition window aside). dbt parses the whole project again, seconds of every run, when
    the connection or the vars differ from the parse in its target folder, and each run gets a
    new target folder: the next run with the same connection and vars starts from this one's
    parse. dbt itself checks the connection, the vars and every file before it reuses a parse."""
    kind = {name: value for name, value in dbt_vars.items() if name not in ("min_date", "max_date")}
    connection = {name: value for name, value in session.items() if name != "PODCAST_PG_PASSWORD"}
    key = hashlib.sha256(json.dumps([connection, kind, "min_date" in dbt_vars], sort_keys=True).encode()).hexdigest()
    return project_dir / "target" / "parse_state" / f"{key[:16]}.msgpack"


def _keep_parse_state(parsed: Path, state: Path) -> None:
    """The invocation's parse, kept for the next run (replaced whole: runs may end at once)."""
    if not parsed.exists():
        return
    state.parent.mkdir(parents=True, exist_ok=True)
    partial = state.with_suffix(f".{uuid.uuid4().hex[:8]}.tmp")
    shutil.copyfile(parsed, partial)
    os.replace(partial, state)


def _asset_events(context, invocation, warehouse: WarehouseResource, fingerprints: dict, partitioned: bool,
                  one_partition: bool, rebuilt_whole: bool = False):
    """The invocation's Dagster events, each output with its row counts and rules fingerprint. A
    request-level table built without a window holds every day the raw events do again: the days
    its retention deleted are no longer missing."""
    retained = request_tables(dbt_manifest())
    with warehouse.connect(autocommit=True) as conn:
        for raw in invocation.stream_raw_events():
            written = rows_written(raw.raw_event)
            for event in raw.to_default_asset_events(
                manifest=invocation.manifest, dagster_dbt_translator=invocation.dagster_dbt_translator,
                context=context, target_path=invocation.target_path, project=invocation.project,
            ):
                if isinstance(event, dg.Output):
                    key = context.asset_key_for_output(event.output_name)
                    extra = {"rules_fingerprint": fingerprints[key]} if key in fingerprints else {}
                    event = event.with_metadata({**event.metadata, **_row_metadata(
                        conn, key, raw.raw_event, written, partitioned, one_partition), **extra})
                    if rebuilt_whole and _relation(key) in retained:
                        clear_request_horizons(conn, [_relation(key)])
                yield event


def request_tables(manifest: Mapping[str, Any]) -> dict[str, str]:
    """The request-level tables, whose days older than `request_retention_days` are deleted
    (resources/request_retention.py): `schema.table` -> the day column its model's config `meta`
    names as `retention_day_column`."""
    return {relation: column for relation, column in _request_nodes(manifest).values()}


def request_tables_read(manifest: Mapping[str, Any]) -> dict[str, set[str]]:
    """Each model that is a request-level table or reads one (by name), and those tables."""
    nodes = _request_nodes(manifest)
    found = {}
    for unique_id, node in manifest["nodes"].items():
        if unique_id.startswith("model."):
            read = {nodes[parent][0] for parent in [unique_id, *node.get("depends_on", {}).get("nodes", [])]
                    if parent in nodes}
            if read:
                found[node["name"]] = read
    return found


def _request_nodes(manifest: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    return {unique_id: (f"{node['schema']}.{node.get('alias') or node['name']}",
                        node["config"]["meta"]["retention_day_column"])
            for unique_id, node in manifest["nodes"].items()
            if unique_id.startswith("model.") and "retention_day_column" in node["config"].get("meta", {})}


def recorded_fingerprint(instance: dg.DagsterInstance, key: dg.AssetKey) -> str | None:
    """The rules fingerprint of the asset's latest materialization (any partition), if recorded."""
    event = instance.get_latest_materialization_event(key)
    value = event.asset_materialization.metadata.get("rules_fingerprint") if event and event.asset_materialization else None
    return value.value if value is not None else None


def rows_written(raw_event: Mapping[str, Any]) -> int | None:
    """The rows a model's main statement wrote, from dbt's adapter response: an incremental
    model's insert, a table's `create table as`. dbt's result event of a model (`LogModelResult`,
    the one dagster-dbt turns into the asset's output) carries the response's message as its
    `status` (`INSERT 0 250`, `SELECT 3`); `NodeFinished` carries the whole response
    (`run_result.adapter_response.rows_affected`, a float: protobuf Struct numbers are). None for
    any other event and for a statement that reports no rows (a view: `CREATE VIEW`)."""
    data = raw_event.get("data", {})
    rows = ((data.get("run_result") or {}).get("adapter_response") or {}).get("rows_affected")
    if isinstance(rows, int | float) and rows >= 0:
        return int(rows)
    status = data.get("status")
    match = ROWS_MESSAGE.fullmatch(status) if isinstance(status, str) else None
    return int(match.group(1)) if match else None


def _row_metadata(conn, key: dg.AssetKey, raw_event: Mapping[str, Any], written: int | None,
                  partitioned: bool, one_partition: bool) -> dict[str, Any]:
    """Row counts without counting: a table's rows and a partition's rows are what the build
    wrote; an unpartitioned incremental table, which a run only adds to, gets the planner's
    estimate; a run over several partitions reports what it wrote over all of them."""
    materialized = raw_event.get("data", {}).get("node_info", {}).get("materialized")
    if written is None or materialized not in ("table", "incremental"):
        return {}
    if materialized == "table" or (partitioned and one_partition):
        return {"dagster/row_count": written}
    if partitioned:
        return {"rows_written": written}
    return {"rows_written": written, "dagster/row_count": _estimated_rows(conn, key), "row_count_source": "planner estimate"}


@contextlib.contextmanager
def _environ(**values: str):
    """Variables set for what starts inside the block (a child process), restored after it."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _model_name(context: dg.AssetExecutionContext, key: dg.AssetKey) -> str:
    """The dbt node name of a model's asset key (`[layer, model]`)."""
    return key.path[-1]


def _relation(key: dg.AssetKey) -> str:
    """A model's table (schema = layer, table = model name)."""
    return f"{key.path[0]}.{key.path[-1]}"


def _estimated_rows(conn, key: dg.AssetKey) -> int:
    """The planner's row estimate of a model's table (schema = layer, table = model name)."""
    row = conn.execute("select greatest(reltuples, 0)::bigint from pg_class where oid = to_regclass(%s)",
                       (_relation(key),)).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def dbt_resource() -> DbtCliResource:
    project = dbt_project()
    return DbtCliResource(
        project_dir=project, profiles_dir=str(project.profiles_dir), dbt_executable=str(dbt_executable())
    )

"""Access logs into `raw.listener_events`: a daily-partitioned asset fed by a sensor; and the
tenants' media hosts into `raw.listener_log_sources`."""

import hashlib
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import dagster as dg

from assets.ingestion.listener_logs_load import LoadLimits, discover, forget_missing, load_file, store_log_sources
from assets.ingestion.identity import checked_hash_secret
from assets.ingestion.listener_logs_parse import IpHasher
from assets.ingestion.log_formats import load_log_sources
from assets.partitions import DAILY_PARTITIONS
from resources.settings import get_settings
from resources.warehouse import WarehouseResource

LOG_PARTITIONS = DAILY_PARTITIONS
LOG_KEYS = [dg.AssetKey(["raw", "listener_events"]), dg.AssetKey(["quarantine", "listener_events"]),
            dg.AssetKey(["ops", "listener_log_files"])]


class LogLoadConfig(dg.Config):
    landing_dir: str | None = None
    settle_seconds: float | None = None
    sources_file: str | None = None  # the `listener_logs:` section: media hosts, JSON field mappings


@dg.multi_asset(
    name="listener_logs",
    partitions_def=LOG_PARTITIONS,
    specs=[
        dg.AssetSpec(
            LOG_KEYS[0], group_name="raw", kinds={"python", "postgres"},
            description="One row per logged request (hashed client address), loaded per log file with COPY.",
            freshness_policy=dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=2), warn_window=timedelta(hours=1)),
        ),
        dg.AssetSpec(LOG_KEYS[1], group_name="quarantine", kinds={"python", "postgres"},
                     description="Log lines that could not be read, with the reason (addresses hashed)."),
        dg.AssetSpec(LOG_KEYS[2], group_name="raw", kinds={"python", "postgres"},
                     description="The loader's ledger: one row per log file (checksum of the content loaded, "
                                 "status: loaded, duplicate, refused or deleted; rows, load time); the "
                                 "incremental dbt models find the files to screen in it."),
    ],
)
def listener_logs(context: dg.AssetExecutionContext, config: LogLoadConfig, warehouse: WarehouseResource):
    """Load the day's log files that are complete and whose content is not loaded yet, each in the
    format detected from its first lines; remove the rows of the day's files that left the landing
    folder; and store each tenant's media hosts from the `listener_logs:` section of sources.yaml.
    Each file is its own transaction: a file refused, or changing while read, leaves the others
    stored."""
    settings = get_settings()
    landing = Path(config.landing_dir) if config.landing_dir else settings.resolved_log_landing_dir()
    settle = settings.log_settle_seconds if config.settle_seconds is None else config.settle_seconds
    day = date.fromisoformat(context.partition_key)
    files = [f for f in discover(landing, settle) if f.log_date == day]
    datacenters = settings.datacenter_networks()
    limits = LoadLimits.from_settings()
    log_sources = load_log_sources(Path(config.sources_file) if config.sources_file else settings.resolved_sources_file())
    mappings = log_sources.mappings()
    warehouse.require_schema()
    secret = checked_hash_secret(warehouse, settings)
    outcomes: Counter = Counter()
    quarantined: Counter = Counter()
    rows = 0
    formats: Counter = Counter()
    with warehouse.connect(autocommit=True) as conn:
        store_log_sources(conn, log_sources.sources, context.run.run_id)
        gone = forget_missing(conn, landing, day, context.run.run_id)
        for file_key in gone:
            context.log.info(f"{file_key}: left the landing folder, its rows removed")
        for log in files:
            result = load_file(conn, log, IpHasher.for_tenant(secret, log.tenant_id), context.run.run_id, datacenters,
                               mappings, limits)
            outcomes[result.status] += 1
            rows += result.rows
            quarantined.update(result.quarantined)
            if result.format and result.status == "loaded":
                formats[result.format] += 1
            context.log.info(f"{log.file_key}: {result.status} as {result.format or '-'}, {result.rows} rows, "
                             f"{sum(result.quarantined.values())} quarantined")
        total = conn.execute("select count(*) from raw.listener_events where log_date = %s", (day,)).fetchone()[0]
        ledger = conn.execute("select count(*) from ops.listener_log_files where log_date = %s", (day,)).fetchone()[0]
        bad = conn.execute(
            "select count(*) from quarantine.listener_events q join ops.listener_log_files f using (file_key) "
            "where f.log_date = %s", (day,)
        ).fetchone()[0]
    if outcomes["changing"]:
        context.log.warning(f"{outcomes['changing']} file(s) changed while read, twice: left for a later run")
    if outcomes["refused"]:
        context.log.warning(f"{outcomes['refused']} file(s) refused as unreadable (see quarantine.listener_events)")
    yield dg.MaterializeResult(asset_key=LOG_KEYS[0], metadata={
        "dagster/row_count": total, "files_loaded": outcomes["loaded"], "files_unchanged": outcomes["unchanged"],
        "files_duplicate": outcomes["duplicate"], "files_refused": outcomes["refused"],
        "files_changing": outcomes["changing"], "files_deleted": len(gone), "rows_loaded_this_run": rows,
        "formats_this_run": dict(formats),
    })
    yield dg.MaterializeResult(asset_key=LOG_KEYS[1], metadata={
        "dagster/row_count": bad, "quarantined_this_run": dict(quarantined),
    })
    yield dg.MaterializeResult(asset_key=LOG_KEYS[2], metadata={"dagster/row_count": ledger})


LOG_SOURCES_KEY = dg.AssetKey(["raw", "listener_log_sources"])


@dg.asset(
    key=LOG_SOURCES_KEY, group_name="raw", kinds={"python", "postgres"},
    automation_condition=dg.AutomationCondition.on_cron("0 * * * *"),
    description="The media host(s) each tenant's log source serves (the `listener_logs:` section of "
                "sources.yaml): requests logged without a host match episodes by path among them.",
)
def listener_log_sources(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Store the configured media hosts (each log load stores them too). Its data version is the
    hosts themselves, so the models that match by path rebuild only when the hosts change."""
    log_sources = load_log_sources(get_settings().resolved_sources_file())
    warehouse.require_schema()
    with warehouse.connect(autocommit=True) as conn:
        store_log_sources(conn, log_sources.sources, context.run.run_id)
        rows = conn.execute("select tenant_id, media_host from raw.listener_log_sources order by 1, 2").fetchall()
    version = hashlib.sha256(repr(rows).encode()).hexdigest()[:16]
    return dg.MaterializeResult(data_version=dg.DataVersion(version), metadata={
        "dagster/row_count": len(rows), "tenants": len({tenant for tenant, _ in rows}),
    })

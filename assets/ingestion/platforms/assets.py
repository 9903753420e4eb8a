"""Dagster assets of the hosting-platform APIs: one per platform and entity.

Episodes are unpartitioned (the whole list, hourly). Daily downloads are daily-partitioned:
a run for a partition (or a range of them) re-reads the platform's look-back window before it,
so late and restated numbers replace what was stored. Platforms without configured shows in
sources.yaml materialize as empty.
"""

from datetime import date, timedelta
from pathlib import Path

import dagster as dg
from psycopg import sql

from assets.ingestion.platforms.sync import SyncStats, load_platform_sources, sync_platform
from pipelines.settings import get_settings
from resources.warehouse import WarehouseResource

PLATFORMS = ("buzzsprout", "transistor")
PLATFORM_PARTITIONS = dg.DailyPartitionsDefinition(start_date="2026-09-01", end_offset=1)

EPISODE_TABLES = {p: f"{p}_episodes" for p in PLATFORMS}
DOWNLOAD_TABLES = {p: f"{p}_episode_downloads_daily" for p in PLATFORMS}
EPISODE_KEYS = [dg.AssetKey(["raw", t]) for t in EPISODE_TABLES.values()]
DOWNLOAD_KEYS = [dg.AssetKey(["raw", t]) for t in DOWNLOAD_TABLES.values()]


class PlatformSyncConfig(dg.Config):
    sources_file: str | None = None


def _sources(config: PlatformSyncConfig):
    path = Path(config.sources_file) if config.sources_file else get_settings().resolved_sources_file()
    return load_platform_sources(path)


def _sync_id(context: dg.AssetExecutionContext) -> str:
    """A run and its re-executions share the root run id: a retry resumes, a new run re-reads."""
    return context.run.root_run_id or context.run_id


def _table_rows(warehouse: WarehouseResource, table: str) -> int:
    with warehouse.connect() as conn:
        return conn.execute(sql.SQL("select count(*) from {}").format(sql.Identifier("raw", table))).fetchone()[0]


def _finish(context: dg.AssetExecutionContext, platform: str, table: str, stats: SyncStats,
            warehouse: WarehouseResource, **extra) -> dg.MaterializeResult:
    metadata = {"dagster/row_count": _table_rows(warehouse, table), **stats.as_metadata(), **extra}
    if stats.failed_sources:
        # The other shows' work is stored and every cursor kept: the next run resumes.
        raise dg.Failure(
            description=f"{len(stats.failed_sources)} {platform} show(s) failed to sync",
            metadata={"failed_sources": stats.failed_sources},
        )
    context.log.info(f"{platform}: {stats.units} units, {stats.requests} requests, {dict(stats.retries)} retries")
    return dg.MaterializeResult(metadata=metadata)


def _episodes_asset(platform: str) -> dg.AssetsDefinition:
    table = EPISODE_TABLES[platform]

    @dg.asset(
        key=["raw", table], group_name="raw", kinds={"python", "postgres"},
        description=f"Episodes listed by the {platform.title()} API, upserted on (tenant, show, episode id).",
    )
    def _asset(context: dg.AssetExecutionContext, config: PlatformSyncConfig, warehouse: WarehouseResource):
        sources = _sources(config)
        warehouse.bootstrap()
        stats = sync_platform(warehouse.url(), sources, platform, batch_id=context.run_id, sync_id=_sync_id(context))
        return _finish(context, platform, table, stats, warehouse)

    return _asset


def _downloads_asset(platform: str) -> dg.AssetsDefinition:
    table = DOWNLOAD_TABLES[platform]

    @dg.asset(
        key=["raw", table], group_name="raw", kinds={"python", "postgres"},
        partitions_def=PLATFORM_PARTITIONS, deps=[dg.AssetKey(["raw", EPISODE_TABLES[platform]])],
        description=(f"Daily downloads per episode from the {platform.title()} API, upserted on "
                     "(tenant, show, episode id, date); each run re-reads the platform's look-back window."),
    )
    def _asset(context: dg.AssetExecutionContext, config: PlatformSyncConfig, warehouse: WarehouseResource):
        sources = _sources(config)
        platform_config = getattr(sources, platform)
        window = context.partition_time_window
        end = window.end.date() - timedelta(days=1)
        lookback = platform_config.lookback_days if platform_config else 0
        start: date = window.start.date() - timedelta(days=lookback)
        warehouse.bootstrap()
        stats = sync_platform(warehouse.url(), sources, platform, batch_id=context.run_id, start=start, end=end,
                              episodes=False, sync_id=_sync_id(context))
        return _finish(context, platform, table, stats, warehouse, window=f"{start}..{end}")

    return _asset


PLATFORM_ASSETS = [factory(p) for p in PLATFORMS for factory in (_episodes_asset, _downloads_asset)]

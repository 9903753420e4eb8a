"""Dagster assets of the platform APIs: one per platform and stream (`raw.<platform>_<entity>`).

Catalog streams (episodes) are unpartitioned: the whole list, hourly. Daily metric streams are
daily-partitioned: a run for a partition (or a range of them) re-reads the platform's look-back
window before it, so late and restated numbers replace what was stored. Platforms without
configured shows in sources.yaml materialize as empty.
"""

from datetime import date, timedelta
from pathlib import Path

import dagster as dg
from psycopg import sql

from assets.ingestion.platforms.base import Platform, Stream, SyncStats
from assets.ingestion.platforms.sync import PLATFORMS, load_platform_sources, sync_platform
from resources.settings import get_settings
from resources.warehouse import WarehouseResource

PLATFORM_PARTITIONS = dg.DailyPartitionsDefinition(start_date="2026-09-01", end_offset=1)


def stream_key(stream: Stream) -> dg.AssetKey:
    return dg.AssetKey(["raw", stream.table])


CATALOG_KEYS = [stream_key(s) for p in PLATFORMS.values() for s in p.streams if not s.daily]
METRIC_KEYS = [stream_key(s) for p in PLATFORMS.values() for s in p.streams if s.daily]


class PlatformSyncConfig(dg.Config):
    sources_file: str | None = None


def _sources(config: PlatformSyncConfig):
    path = Path(config.sources_file) if config.sources_file else get_settings().resolved_sources_file()
    return load_platform_sources(path)


def _sync_id(context: dg.AssetExecutionContext) -> str:
    """A run and its re-executions share the root run id: a retry resumes, a new run re-reads."""
    return context.run.root_run_id or context.run.run_id


def _table_rows(warehouse: WarehouseResource, stream: Stream) -> int:
    with warehouse.connect() as conn:
        return conn.execute(sql.SQL("select count(*) from {}").format(stream.qualified_table)).fetchone()[0]


def _finish(context: dg.AssetExecutionContext, platform: Platform, stream: Stream, stats: SyncStats,
            warehouse: WarehouseResource, **extra) -> dg.MaterializeResult:
    metadata = {"dagster/row_count": _table_rows(warehouse, stream), **stats.as_metadata(), **extra}
    if stats.failed_sources:
        # The other shows' work is stored and every cursor kept: the next run resumes.
        raise dg.Failure(
            description=f"{len(stats.failed_sources)} {platform.name} show(s) failed to sync",
            metadata={"failed_sources": stats.failed_sources},
        )
    context.log.info(f"{platform.name} {stream.name}: {stats.units} units, {stats.requests} requests, "
                     f"{dict(stats.retries)} retries")
    return dg.MaterializeResult(metadata=metadata)


def _catalog_asset(platform: Platform, stream: Stream) -> dg.AssetsDefinition:
    @dg.asset(key=stream_key(stream), group_name="raw", kinds={"python", "postgres"}, description=stream.description)
    def _asset(context: dg.AssetExecutionContext, config: PlatformSyncConfig, warehouse: WarehouseResource):
        sources = _sources(config)
        warehouse.require_schema()
        stats = sync_platform(warehouse, sources, platform.name, batch_id=context.run.run_id, streams={stream.name},
                              sync_id=_sync_id(context))
        return _finish(context, platform, stream, stats, warehouse)

    return _asset


def _daily_asset(platform: Platform, stream: Stream) -> dg.AssetsDefinition:
    @dg.asset(
        key=stream_key(stream), group_name="raw", kinds={"python", "postgres"}, partitions_def=PLATFORM_PARTITIONS,
        deps=[stream_key(s) for s in platform.streams if not s.daily],
        description=f"{stream.description} Each run re-reads the platform's look-back window.",
    )
    def _asset(context: dg.AssetExecutionContext, config: PlatformSyncConfig, warehouse: WarehouseResource):
        sources = _sources(config)
        platform_config = getattr(sources, platform.name)
        window = context.partition_time_window
        end = window.end.date() - timedelta(days=1)
        lookback = platform_config.lookback_days if platform_config else 0
        start: date = window.start.date() - timedelta(days=lookback)
        warehouse.require_schema()
        stats = sync_platform(warehouse, sources, platform.name, batch_id=context.run.run_id, start=start, end=end,
                              streams={stream.name}, sync_id=_sync_id(context))
        return _finish(context, platform, stream, stats, warehouse, window=f"{start}..{end}")

    return _asset


PLATFORM_ASSETS = [
    (_daily_asset if s.daily else _catalog_asset)(p, s) for p in PLATFORMS.values() for s in p.streams
]

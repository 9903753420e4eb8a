"""Dagster assets of the sponsorship side: campaign data (sponsorship API + insertion-order
folder) and conversion events (shop orders API + pixel/vanity files)."""

from datetime import timedelta

import dagster as dg

from assets.ingestion.campaigns import load_campaign_sources, sync_campaigns
from assets.ingestion.conversions import sync_conversions
from assets.ingestion.identity import checked_hash_secret
from resources.settings import get_settings
from resources.warehouse import WarehouseResource

CAMPAIGN_KEYS = [dg.AssetKey(["raw", "sponsors"]), dg.AssetKey(["raw", "campaigns"]),
                 dg.AssetKey(["raw", "placements"]), dg.AssetKey(["quarantine", "campaign_records"])]
CONVERSION_KEYS = [dg.AssetKey(["raw", "attribution_events"])]


class ConversionLoadConfig(dg.Config):
    settle_seconds: float | None = None


def _count(warehouse: WarehouseResource, table: str) -> int:
    from psycopg import sql

    schema, name = table.split(".")
    with warehouse.connect() as conn:
        return conn.execute(sql.SQL("select count(*) from {}").format(sql.Identifier(schema, name))).fetchone()[0]


def _fail_on_failed_sources(stats) -> None:
    """Everything the other tenants and files brought is stored and reported above; a source
    whose sync stopped fails the run with its message (its cursor is kept: the next run resumes)."""
    if stats.failed_sources:
        raise dg.Failure(description=f"{len(stats.failed_sources)} source(s) failed to sync: "
                                     + "; ".join(f"{k}: {v}" for k, v in sorted(stats.failed_sources.items())),
                         metadata={"failed_sources": dict(stats.failed_sources)})


@dg.multi_asset(
    name="sponsorship_campaigns",
    specs=[
        dg.AssetSpec(CAMPAIGN_KEYS[0], group_name="raw", kinds={"python", "postgres"},
                     description="Sponsors (advertisers), upserted on (tenant, sponsor id)."),
        dg.AssetSpec(CAMPAIGN_KEYS[1], group_name="raw", kinds={"python", "postgres"},
                     description="Campaigns: budget, flight, pricing, promo codes, vanity URLs, attribution settings."),
        dg.AssetSpec(CAMPAIGN_KEYS[2], group_name="raw", kinds={"python", "postgres"},
                     description="Placements: show/episode, position, insertion, dates, ad offset and length."),
        dg.AssetSpec(CAMPAIGN_KEYS[3], group_name="quarantine", kinds={"python", "postgres"},
                     description="Campaign and conversion records that could not be stored, with the reason."),
    ],
)
def sponsorship_campaigns(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """Sync the sponsorship API (changes since the last sync) and load new insertion orders."""
    settings = get_settings()
    warehouse.require_schema()
    sources = load_campaign_sources(settings.resolved_sources_file())
    stats = sync_campaigns(warehouse, sources, settings.resolved_insertion_order_dir(), context.run.run_id)
    for key in CAMPAIGN_KEYS[:3]:
        table = ".".join(key.path)
        yield dg.MaterializeResult(asset_key=key, metadata={
            "dagster/row_count": _count(warehouse, table), "changed_this_run": stats.changed[table],
        })
    yield dg.MaterializeResult(asset_key=CAMPAIGN_KEYS[3], metadata={
        "dagster/row_count": _count(warehouse, "quarantine.campaign_records"),
        "quarantined_this_run": dict(stats.quarantined), "files_loaded": stats.files_loaded,
    })
    _fail_on_failed_sources(stats)


@dg.multi_asset(
    name="conversion_events",
    specs=[dg.AssetSpec(
        CONVERSION_KEYS[0], group_name="raw", kinds={"python", "postgres"},
        description="Conversion events and signals: shop orders (latest state after edits and refunds), "
                    "pixel events, vanity-URL visits; client addresses as keyed hashes.",
        freshness_policy=dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=3), warn_window=timedelta(hours=2)),
    )],
)
def conversion_events(context: dg.AssetExecutionContext, config: ConversionLoadConfig, warehouse: WarehouseResource):
    """Orders changed since the last sync, and pixel/vanity files not loaded in this version."""
    settings = get_settings()
    warehouse.require_schema()
    sources = load_campaign_sources(settings.resolved_sources_file())
    settle = settings.log_settle_seconds if config.settle_seconds is None else config.settle_seconds
    secret = checked_hash_secret(warehouse, settings)
    stats = sync_conversions(warehouse, sources, settings.resolved_conversion_landing_dir(), secret,
                             settings.datacenter_networks(), context.run.run_id, settle_seconds=settle)
    yield dg.MaterializeResult(asset_key=CONVERSION_KEYS[0], metadata={
        "dagster/row_count": _count(warehouse, "raw.attribution_events"),
        "changed_this_run": stats.changed["raw.attribution_events"], "files_loaded": stats.files_loaded,
        "files_unchanged": stats.files_unchanged, "quarantined_this_run": dict(stats.quarantined),
        "api_requests": stats.requests,
    })
    _fail_on_failed_sources(stats)


SPONSORSHIP_ASSETS = [sponsorship_campaigns, conversion_events]

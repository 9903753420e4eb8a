"""Jobs: the feed poll, and everything at once (the demo and first loads)."""

import dagster as dg

from assets.dbt import DBT_PARTITIONS, PARTITIONED_TAG, build_dbt_assets
from assets.ingestion.listener_logs import LOG_KEYS, LOG_PARTITIONS
from assets.ingestion.megaphone_export import MEGAPHONE_KEY
from assets.ingestion.platforms.assets import CATALOG_KEYS, METRIC_KEYS, PLATFORM_PARTITIONS
from assets.ingestion.sponsorship_assets import CAMPAIGN_KEYS, CONVERSION_KEYS
from assets.ingestion.transcripts import DOCUMENT_KEYS
from assets.processing.ad_slots import AD_SLOT_KEYS
from assets.reports.assets import REPORT_KEYS
from assets.run_tags import source_job

# A run that has not ended yet: waiting in the queue, starting, or running.
UNFINISHED = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
              dg.DagsterRunStatus.STARTED]

RSS_KEYS = [
    dg.AssetKey(["raw", "rss_feed_fetches"]),
    dg.AssetKey(["raw", "rss_podcasts"]),
    dg.AssetKey(["raw", "rss_episodes"]),
    dg.AssetKey(["quarantine", "rss_feeds"]),
    dg.AssetKey(["quarantine", "rss_episodes"]),
]

# The poll also fetches the transcripts and chapters of new episodes (assets/ingestion/transcripts.py,
# incremental: a poll with nothing new fetches nothing) and detects their ad slots
# (assets/processing/ad_slots.py, incremental by episode).
rss_ingest_job = source_job(
    "rss_ingest", "rss", selection=dg.AssetSelection.assets(*RSS_KEYS, *DOCUMENT_KEYS, *AD_SLOT_KEYS),
    description="Poll every configured RSS feed into raw.rss_*, fetch the transcripts and chapters of new episodes "
                "into raw.transcripts / raw.chapters and detect their ad slots into raw.ad_slots (checks included).",
)

SLA_KEY = dg.AssetKey(["marts", "sla_status"])

PARTITIONED_DBT = dg.AssetSelection.tag(PARTITIONED_TAG, "")

# Everything a first load builds but the sources' own partitioned loads, the SLA snapshot and the
# reports: the unpartitioned assets (in two jobs: before the daily-partitioned dbt models, and
# built from them), and the partitioned models (dbt_partitioned).
EVERYTHING = (dg.AssetSelection.all() - dg.AssetSelection.assets(*LOG_KEYS, *METRIC_KEYS, MEGAPHONE_KEY, SLA_KEY,
                                                                 *REPORT_KEYS))
UNPARTITIONED = EVERYTHING - PARTITIONED_DBT
FROM_PARTITIONED = PARTITIONED_DBT.downstream() - PARTITIONED_DBT

materialize_all_job = dg.define_asset_job(
    "materialize_all", selection=UNPARTITIONED - FROM_PARTITIONED,
    description="Every unpartitioned asset the daily-partitioned dbt models read: feeds, checks, dbt staging, "
                "dims (then dbt_partitioned over the days, then materialize_marts; pipelines/phases.py).",
)

materialize_marts_job = dg.define_asset_job(
    "materialize_marts", selection=UNPARTITIONED & FROM_PARTITIONED,
    description="Every unpartitioned asset built from the daily-partitioned dbt models (marts, attribution).",
)

DBT_UNPARTITIONED = dg.AssetSelection.assets(*build_dbt_assets().keys)

dbt_models_job = dg.define_asset_job(
    "dbt_unpartitioned", selection=DBT_UNPARTITIONED,
    description="The unpartitioned dbt models (run config `DbtConfig`: full_refresh, vars); a rule change "
                "rebuilds the ones it affects through this job (pipelines/rules.py).",
)

dbt_partitioned_job = dg.define_asset_job(
    "dbt_partitioned", selection=PARTITIONED_DBT, partitions_def=DBT_PARTITIONS,
    description="The daily-partitioned dbt models over the selected days (docs/PARTITIONED_DBT.md).",
)

listener_logs_job = source_job(
    "load_listener_logs", "listener_logs",
    selection=dg.AssetSelection.assets(*LOG_KEYS), partitions_def=LOG_PARTITIONS,
    description="Load one day's access-log files into raw.listener_events.",
)

platform_catalog_job = source_job(
    "platform_catalog", "platforms", selection=dg.AssetSelection.assets(*CATALOG_KEYS),
    description="Sync the catalogs (episode lists) of every configured platform API.",
)

platform_metrics_job = source_job(
    "platform_metrics", "platforms",
    selection=dg.AssetSelection.assets(*METRIC_KEYS), partitions_def=PLATFORM_PARTITIONS,
    description="Sync one day of every platform metric stream (plus each platform's look-back window).",
)

sponsorship_campaigns_job = source_job(
    "sync_sponsorship_campaigns", "sponsorships", selection=dg.AssetSelection.assets(*CAMPAIGN_KEYS),
    description="Sync sponsors, campaigns and placements (sponsorship API and insertion-order folder).",
)

conversion_events_job = source_job(
    "load_conversion_events", "conversions", selection=dg.AssetSelection.assets(*CONVERSION_KEYS),
    description="Sync shop orders and load new pixel/vanity-visit files into raw.attribution_events.",
)

sla_snapshot_job = dg.define_asset_job(
    "sla_snapshot", selection=dg.AssetSelection.assets(SLA_KEY),
    description="Measure every SLA (freshness, completeness, checks, blocks) into marts.sla_status and its history.",
)

# Publishers correct transcripts after release: once a day the stored documents are fetched again
# (conditional GETs; an unchanged body rewrites nothing) and the slots of changed ones detected again.
episode_documents_refresh_job = source_job(
    "refresh_episode_documents", "rss", selection=dg.AssetSelection.assets(*DOCUMENT_KEYS, *AD_SLOT_KEYS),
    config={"ops": {"episode_documents": {"config": {"refresh": True}}}},
    description="Fetch every stored transcript and chapters file again with a conditional GET, and detect the "
                "ad slots of the episodes whose documents changed.",
)

JOBS = [rss_ingest_job, episode_documents_refresh_job, materialize_all_job, materialize_marts_job, dbt_models_job, dbt_partitioned_job, sla_snapshot_job, listener_logs_job, platform_catalog_job, platform_metrics_job,
        sponsorship_campaigns_job, conversion_events_job]

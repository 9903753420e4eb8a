"""Jobs: the feed poll, and everything at once (the demo and first loads)."""

import dagster as dg

RSS_KEYS = [
    dg.AssetKey(["raw", "rss_feed_fetches"]),
    dg.AssetKey(["raw", "rss_podcasts"]),
    dg.AssetKey(["raw", "rss_episodes"]),
    dg.AssetKey(["quarantine", "rss_feeds"]),
    dg.AssetKey(["quarantine", "rss_episodes"]),
]

rss_ingest_job = dg.define_asset_job(
    "rss_ingest", selection=dg.AssetSelection.assets(*RSS_KEYS),
    description="Poll every configured RSS feed into raw.rss_* (checks included).",
)

materialize_all_job = dg.define_asset_job(
    "materialize_all", selection=dg.AssetSelection.all(),
    description="Every asset once: ingestion, checks, dbt staging and marts.",
)

JOBS = [rss_ingest_job, materialize_all_job]

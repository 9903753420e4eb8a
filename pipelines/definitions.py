"""The one Definitions object of the code location: every asset, check, job and schedule."""

import dagster as dg

from assets.dbt import build_dbt_assets, dbt_resource
from assets.ingestion.listener_logs import listener_logs
from assets.ingestion.platforms.assets import PLATFORM_ASSETS
from assets.ingestion.rss import rss_feeds
from assets.ingestion.sponsorship_assets import SPONSORSHIP_ASSETS
from assets.ingestion.user_agents import user_agent_patterns
from pipelines.checks import CHECKS
from pipelines.jobs import JOBS
from pipelines.schedules import SCHEDULES
from pipelines.sensors import SENSORS
from pipelines.settings import get_settings
from resources.http import HttpResource
from resources.warehouse import WarehouseResource


def build_resources() -> dict:
    settings = get_settings()
    return {
        "warehouse": WarehouseResource(
            database_url=settings.database_url,
            data_dir=str(settings.data_dir),
            warehouse_db=settings.warehouse_db,
            dagster_db=settings.dagster_db,
        ),
        "http": HttpResource(),
        "dbt": dbt_resource(),
    }


defs = dg.Definitions(
    assets=[rss_feeds, user_agent_patterns, listener_logs, *PLATFORM_ASSETS, *SPONSORSHIP_ASSETS, build_dbt_assets()],
    asset_checks=CHECKS,
    jobs=JOBS,
    schedules=SCHEDULES,
    sensors=SENSORS,
    resources=build_resources(),
)

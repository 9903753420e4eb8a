"""The one Definitions object of the code location: every asset, check, job and schedule."""

import dagster as dg

from assets.dbt import dbt_asset_definitions, dbt_resource
from assets.ingestion.listener_logs import listener_log_sources, listener_logs
from assets.ingestion.megaphone_export import megaphone_episode_metrics_daily, megaphone_export_job
from assets.ingestion.platforms.assets import PLATFORM_ASSETS
from assets.ingestion.rss import rss_feeds
from assets.ingestion.sponsorship_assets import SPONSORSHIP_ASSETS
from assets.ingestion.transcripts import episode_documents
from assets.processing.ad_slots import ad_slots
from assets.ingestion.user_agents import user_agent_patterns
from assets.reports.assets import REPORT_ASSETS
from assets.reports.delivery import ReportDeliveryResource
from assets.quality import QUALITY_ASSETS, with_freshness
from pipelines.alerts import ALERT_SENSORS
from pipelines.checks import CHECKS
from pipelines.checks.log_files import LOG_CHECKS
from pipelines.jobs import JOBS
from pipelines.json_logs import LOGGERS
from pipelines.megaphone_sensor import megaphone_export_sensor
from pipelines.reports import REPORT_JOBS, REPORT_SCHEDULES, REPORT_SENSORS
from pipelines.retention import RETENTION_JOBS, RETENTION_SCHEDULES
from pipelines.partition_sensor import dbt_partitions_sensor
from pipelines.rules import rules_changed_sensor
from pipelines.schedules import AUTOMATION_SENSORS, SCHEDULES
from pipelines.sensors import SENSORS
from resources.settings import Settings, get_settings
from resources.http import HttpResource
from resources.report_store import ReportStoreResource
from resources.warehouse import WarehouseResource


def build_resources() -> dict:
    settings = get_settings()
    return {
        "warehouse": WarehouseResource(
            database_url=settings.database_url,
            data_dir=str(settings.data_dir),
            warehouse_db=settings.warehouse_db,
            dagster_db=settings.dagster_db,
            lock_timeout=settings.pg_lock_timeout,
            statement_timeout=settings.pg_statement_timeout,
            dbt_lock_timeout=settings.dbt_lock_timeout,
        ),
        "http": HttpResource(deadline_seconds=settings.http_deadline_seconds),
        "dbt": dbt_resource(),
        "report_store": ReportStoreResource(base_url=settings.resolved_reports_url(),
                                            retention_days=settings.report_retention_days),
        "report_delivery": ReportDeliveryResource(
            smtp_host=settings.smtp_host, smtp_port=settings.smtp_port, smtp_username=settings.smtp_username,
            smtp_password=dg.EnvVar("PODCAST_SMTP_PASSWORD") if settings.smtp_password else None,
            smtp_security=settings.smtp_security, sender=settings.report_sender,
            webhook_secret=dg.EnvVar("PODCAST_REPORT_WEBHOOK_SECRET") if settings.report_webhook_secret else None,
            recipients_file=str(settings.report_recipients_file) if settings.report_recipients_file else None,
        ),
    }


# Each step of a multi-step run in a process forked from one that imported the code location once
# per run, not a fresh interpreter that imports it again per step (Dagster's default, `spawn`):
# half the time of an eight-step run with nothing to do (docs/BENCHMARKS.md, bench/step_processes.py).
FORKSERVER = {"start_method": {"forkserver": {"preload_modules": ["pipelines.definitions"]}}}


def build_executor(settings: Settings | None = None) -> dg.ExecutorDefinition:
    """The executor of every job that names none (the source loads run in process,
    `assets.run_tags.source_job`): Dagster's multiprocess executor starting its steps from a
    forkserver, unless `PODCAST_EXECUTOR=k8s_job`, which runs each step as a Kubernetes Job
    (step-level parallelism across nodes; dagster-k8s, installed by the image's `k8s` extra)."""
    if (settings or get_settings()).executor == "k8s_job":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor
    return dg.multiprocess_executor.configured(FORKSERVER)


defs = dg.Definitions(
    # Raw assets and marts carry the freshness SLA (assets/quality.py).
    assets=[*dg.map_asset_specs(with_freshness, [
        rss_feeds, episode_documents, ad_slots, user_agent_patterns, listener_logs, listener_log_sources, *PLATFORM_ASSETS, *SPONSORSHIP_ASSETS,
        megaphone_episode_metrics_daily, *dbt_asset_definitions(), *QUALITY_ASSETS]), *REPORT_ASSETS],
    asset_checks=[*CHECKS, *LOG_CHECKS],
    jobs=[*JOBS, megaphone_export_job, *REPORT_JOBS, *RETENTION_JOBS],
    schedules=[*SCHEDULES, *REPORT_SCHEDULES, *RETENTION_SCHEDULES],
    sensors=[*SENSORS, megaphone_export_sensor, *REPORT_SENSORS, *ALERT_SENSORS, *AUTOMATION_SENSORS,
             rules_changed_sensor, dbt_partitions_sensor],
    resources=build_resources(),
    loggers=LOGGERS,
    executor=build_executor(),
)

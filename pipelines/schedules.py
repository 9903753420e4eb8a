"""Schedules: feeds every 15 minutes, platform APIs hourly. dbt models follow their upstream
through eager automation conditions (the default automation sensor runs them)."""

import dagster as dg

from pipelines.jobs import platform_catalog_job, platform_metrics_job, rss_ingest_job, sla_snapshot_job

rss_poll_schedule = dg.ScheduleDefinition(
    name="rss_poll_every_15_minutes",
    job=rss_ingest_job,
    cron_schedule="*/15 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)

platform_catalog_schedule = dg.ScheduleDefinition(
    name="platform_catalog_hourly",
    job=platform_catalog_job,
    cron_schedule="5 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)


@dg.schedule(
    name="platform_metrics_hourly", job=platform_metrics_job, cron_schedule="20 * * * *",
    execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.RUNNING,
)
def platform_metrics_schedule(context: dg.ScheduleEvaluationContext):
    """Every hour, today's partition: its run re-reads each platform's look-back window."""
    day = context.scheduled_execution_time.date().isoformat()
    return dg.RunRequest(partition_key=day, tags={"platform_sync": "hourly"})


sla_snapshot_schedule = dg.ScheduleDefinition(
    name="sla_snapshot_every_5_minutes",
    job=sla_snapshot_job,
    cron_schedule="*/5 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)

SCHEDULES = [rss_poll_schedule, platform_catalog_schedule, platform_metrics_schedule, sla_snapshot_schedule]

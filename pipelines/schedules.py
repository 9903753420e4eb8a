"""Schedules: feeds every 15 minutes. dbt models follow their upstream through eager
automation conditions (the default automation sensor runs them)."""

import dagster as dg

from pipelines.jobs import rss_ingest_job

rss_poll_schedule = dg.ScheduleDefinition(
    name="rss_poll_every_15_minutes",
    job=rss_ingest_job,
    cron_schedule="*/15 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)

SCHEDULES = [rss_poll_schedule]

"""How the platform runs unattended: what starts each piece of work.

- Sources: feeds every 15 minutes (`PODCAST_RSS_POLL_CRON`; a tick is skipped while the last
  poll runs; the poll also fetches new episodes' transcripts and chapters and detects their ad
  slots), the stored transcripts and chapters again daily, platform catalogs and metrics hourly, sponsorships and shop orders hourly;
  access-log, conversion and Megaphone export files by sensors as they land
  (pipelines/sensors.py, pipelines/megaphone_sensor.py).
- Everything built from them (dbt staging, intermediate and marts, and the report partitions)
  follows through its automation condition, evaluated by `automation`, an automation-condition
  sensor that is on by default: a model runs when an upstream asset was updated (eager), the
  whole-period models tagged `daily` once a day, and a report partition when a mart it reads
  was rebuilt or the partition is new.
- Reports are delivered to their recipients only by the report schedules (pipelines/reports.py);
  a refresh by automation registers the files and sends nothing.
- The SLA snapshot every 5 minutes.
"""

import dagster as dg

from pipelines.jobs import (
    UNFINISHED, conversion_events_job, episode_documents_refresh_job, platform_catalog_job, platform_metrics_job,
    rss_ingest_job, sla_snapshot_job, sponsorship_campaigns_job,
)
from resources.settings import get_settings

RUNNING = dg.DefaultScheduleStatus.RUNNING


def on_cron(name: str, job, cron: str, description: str | None = None) -> dg.ScheduleDefinition:
    """A job on a UTC cron, on by default."""
    return dg.ScheduleDefinition(name=name, job=job, cron_schedule=cron, execution_timezone="UTC",
                                 default_status=RUNNING, description=description)


@dg.schedule(
    name="rss_poll_every_15_minutes", job=rss_ingest_job, cron_schedule=get_settings().rss_poll_cron,
    execution_timezone="UTC", default_status=RUNNING,
)
def rss_poll_schedule(context: dg.ScheduleEvaluationContext):
    """Every feed, unless the previous poll is still queued or running: a poll of many feeds can
    outlast a short interval, and polls that stack up fetch the same feeds twice."""
    busy = context.instance.get_run_records(
        dg.RunsFilter(job_name=rss_ingest_job.name, statuses=UNFINISHED), limit=1)
    if busy:
        return dg.SkipReason(f"the previous poll (run {busy[0].dagster_run.run_id}) has not finished")
    return dg.RunRequest()
platform_catalog_schedule = on_cron("platform_catalog_hourly", platform_catalog_job, "5 * * * *")


@dg.schedule(
    name="platform_metrics_hourly", job=platform_metrics_job, cron_schedule="20 * * * *",
    execution_timezone="UTC", default_status=RUNNING,
)
def platform_metrics_schedule(context: dg.ScheduleEvaluationContext):
    """Every hour, today's partition: its run re-reads each platform's look-back window."""
    day = context.scheduled_execution_time.date().isoformat()
    return dg.RunRequest(partition_key=day, tags={"platform_sync": "hourly"})


sponsorship_schedule = on_cron(
    "sponsorships_hourly", sponsorship_campaigns_job, "10 * * * *",
    "Sponsors, campaigns and placements from the sponsorship API and the insertion-order folder.")
conversions_schedule = on_cron(
    "conversions_hourly", conversion_events_job, "40 * * * *",
    "Shop orders changed since the last sync (files that land are loaded by their sensor at once).")
sla_snapshot_schedule = on_cron("sla_snapshot_every_5_minutes", sla_snapshot_job, "*/5 * * * *")
documents_refresh_schedule = on_cron(
    "episode_documents_daily", episode_documents_refresh_job, "50 3 * * *",
    "Stored transcripts and chapters fetched again (conditional GETs): publishers correct them after release.")

automation = dg.AutomationConditionSensorDefinition(
    "automation",
    # The daily-partitioned dbt models are requested by dbt_partitions_sensor, days at a time.
    target=dg.AssetSelection.all() - dg.AssetSelection.tag("partitioned", ""),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=get_settings().automation_interval_seconds,
    description="Builds dbt models and report partitions when what they read was updated (their "
                "automation conditions); on by default, so a deployment needs no click.",
)

SCHEDULES = [rss_poll_schedule, platform_catalog_schedule, platform_metrics_schedule, sponsorship_schedule,
             conversions_schedule, sla_snapshot_schedule, documents_refresh_schedule]
AUTOMATION_SENSORS = [automation]

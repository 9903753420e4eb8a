"""Sensors: new access-log files start a load of their day's partition."""

import hashlib
import json

import dagster as dg

from assets.ingestion.listener_logs_load import discover
from pipelines.jobs import listener_logs_job
from pipelines.settings import get_settings


@dg.sensor(job=listener_logs_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def listener_log_files_sensor(context: dg.SensorEvaluationContext):
    """Request a load for every day with a new or rewritten, complete log file.

    The cursor maps each file to the (size, mtime) last requested, so a restart neither
    reloads nor misses a file; files still being written (partial names, or modified within
    the settle time) are left for a later tick.
    """
    settings = get_settings()
    seen: dict[str, list] = json.loads(context.cursor) if context.cursor else {}
    ready = discover(settings.resolved_log_landing_dir(), settings.log_settle_seconds)
    fresh = [f for f in ready if seen.get(f.file_key) != [f.size, f.mtime]]
    if not fresh:
        return dg.SkipReason(f"no new log files ({len(ready)} known)")
    by_day: dict[str, list] = {}
    for log in fresh:
        by_day.setdefault(log.log_date.isoformat(), []).append(log)
        seen[log.file_key] = [log.size, log.mtime]
    requests = [
        dg.RunRequest(
            partition_key=day,
            run_key=f"{day}:" + hashlib.sha256(
                json.dumps(sorted((f.file_key, f.size, f.mtime) for f in logs)).encode()).hexdigest()[:16],
            tags={"log_files": str(len(logs))},
        )
        for day, logs in sorted(by_day.items())
    ]
    context.update_cursor(json.dumps(seen, sort_keys=True))
    return requests


SENSORS = [listener_log_files_sensor]

"""Sensors: new access-log files start a load of their day's partition."""

import hashlib
import json

import dagster as dg

from assets.ingestion.listener_logs_load import discover
from pipelines.jobs import conversion_events_job, listener_logs_job
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


@dg.sensor(job=conversion_events_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def conversion_files_sensor(context: dg.SensorEvaluationContext):
    """Request a conversion load when pixel or vanity-visit files arrive or change (the loader's
    ledger keeps a file from being stored twice; the cursor keeps a tick from asking twice)."""
    from assets.ingestion.conversions import event_files

    settings = get_settings()
    seen: dict[str, list] = json.loads(context.cursor) if context.cursor else {}
    ready = event_files(settings.resolved_conversion_landing_dir(), settings.log_settle_seconds)
    fresh = {}
    for tenant, kind, path in ready:
        key = f"{kind}/{tenant}/{path.name}"
        stat = path.stat()
        if seen.get(key) != [stat.st_size, stat.st_mtime]:
            fresh[key] = [stat.st_size, stat.st_mtime]
    if not fresh:
        return dg.SkipReason(f"no new conversion files ({len(ready)} known)")
    seen.update(fresh)
    context.update_cursor(json.dumps(seen, sort_keys=True))
    run_key = hashlib.sha256(json.dumps(sorted(fresh.items())).encode()).hexdigest()[:16]
    return dg.RunRequest(run_key=f"conversions:{run_key}", tags={"conversion_files": str(len(fresh))})


SENSORS = [listener_log_files_sensor, conversion_files_sensor]

"""Sensors: new access-log and conversion files start a load.

"New" is what the loader's own ledger does not hold in this version (pipelines/ledgers.py), so a
file loaded by the demo, a manual run or a backfill is never requested again, and the sensors keep
no cursor: nothing in them grows with the files seen. A run key per (files, sizes, times, and the
ledger's time of each) keeps a file that is still loading, or failed to load, from being requested
on every tick; it is asked again when it or its ledger row changes.
"""

import dagster as dg

from assets.ingestion.listener_logs import LOG_PARTITIONS
from assets.ingestion.listener_logs_load import discover, present
from pipelines.jobs import conversion_events_job, listener_logs_job
from pipelines.ledgers import needs_load, read_ledger, run_key
from resources.settings import get_settings
from resources.warehouse import WarehouseResource


@dg.sensor(job=listener_logs_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def listener_log_files_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
    """Request a load for every day with a complete log file the ledger does not hold as it is
    now (new, rewritten, grown, or a duplicate whose original went), and for every day with a
    loaded file that left the landing folder (its rows are removed); files still being written
    (partial names, or modified within the settle time) are left for a later tick."""
    settings = get_settings()
    landing = settings.resolved_log_landing_dir()
    ready = discover(landing, settings.log_settle_seconds)
    stored = read_ledger(warehouse, "listener_logs")
    by_day: dict[str, list] = {}
    for log in ready:
        row = stored.get(log.file_key)
        if needs_load(row, log.size, log.mtime):
            by_day.setdefault(log.log_date.isoformat(), []).append(
                (log.file_key, log.size, log.mtime, row.loaded_at if row else None))
    for key, row in stored.items():
        if row.state != "deleted" and row.log_date is not None and present(landing, key) is False:
            by_day.setdefault(row.log_date.isoformat(), []).append((key, "gone", row.loaded_at))
    # A file named for a day outside the partitions (before `history_start`, or after tomorrow)
    # has no run to load it: it is named, and the other days are requested.
    first, last = LOG_PARTITIONS.get_first_partition_key(), LOG_PARTITIONS.get_last_partition_key()
    outside = {day: by_day.pop(day) for day in sorted(by_day) if not first <= day <= last}
    if outside:
        names = [file[0] for files in outside.values() for file in files]
        context.log.warning(
            f"{len(names)} log file(s) of {len(outside)} day(s) outside the partitions {first}..{last} are not "
            f"loaded ({', '.join(names[:3])}{', ...' if len(names) > 3 else ''}): a day before {first} needs "
            "PODCAST_HISTORY_START on or before it")
    if not by_day:
        return dg.SkipReason(f"every log file is loaded ({len(ready)} found, {len(stored)} in the ledger)" if not outside
                             else f"nothing to load but files of {len(outside)} day(s) outside the partitions")
    return [
        dg.RunRequest(partition_key=day, run_key=run_key(day, files), tags={"log_files": str(len(files))})
        for day, files in sorted(by_day.items())
    ]


@dg.sensor(job=conversion_events_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def conversion_files_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
    """Request a conversion load when pixel or vanity-visit files arrive or change since the
    loader stored them."""
    from assets.ingestion.conversions import event_files

    settings = get_settings()
    ready = event_files(settings.resolved_conversion_landing_dir(), settings.log_settle_seconds)
    stored = read_ledger(warehouse, "conversions")
    fresh = []
    for tenant, kind, path in ready:
        key, stat = f"{kind}/{tenant}/{path.name}", path.stat()
        if needs_load(stored.get(key), stat.st_size, stat.st_mtime):
            fresh.append((key, stat.st_size, stat.st_mtime))
    if not fresh:
        return dg.SkipReason(f"every conversion file is loaded ({len(ready)} found)")
    return dg.RunRequest(run_key=run_key("conversions", fresh), tags={"conversion_files": str(len(fresh))})


SENSORS = [listener_log_files_sensor, conversion_files_sensor]

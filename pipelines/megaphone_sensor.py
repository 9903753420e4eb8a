"""Sensor: finalized Megaphone export days start a load of their day's partition."""

import dagster as dg

from assets.ingestion.megaphone_export import export_filesystem, megaphone_export_job, scan_exports
from pipelines.ledgers import needs_load, read_ledger, run_key
from resources.settings import get_settings
from resources.warehouse import WarehouseResource


@dg.sensor(job=megaphone_export_job, minimum_interval_seconds=300, default_status=dg.DefaultSensorStatus.RUNNING)
def megaphone_export_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
    """Request a load for every day with a finalized (tenant, network) export whose files the
    loader's ledger (`ops.megaphone_export_files`) does not hold in this version: a file not
    stored, stored with another size, or written after it was stored. A restart neither reloads
    nor misses a day, a day loaded by any run (the demo's included) is not requested, and a day
    whose files are replaced after the marker is requested again (the load then compares content
    checksums with its ledger). Days without their `_finalized_…` marker are not requested.
    """
    fs, root = export_filesystem(get_settings().resolved_megaphone_export_url())
    exports = scan_exports(fs, root)
    finalized = [e for e in exports if e.finalized]
    stored = read_ledger(warehouse, "megaphone")
    fresh = [e for e in finalized if any(needs_load(stored.get(f.relative), f.size, f.modified) for f in e.files)]
    if not fresh:
        return dg.SkipReason(f"no newly finalized exports ({len(finalized)} finalized and loaded, "
                             f"{len(exports) - len(finalized)} waiting for their marker)")
    by_day: dict[str, list] = {}
    for export in fresh:
        by_day.setdefault(export.day.isoformat(), []).append(export)
    return [
        dg.RunRequest(
            partition_key=day,
            run_key=run_key(f"megaphone:{day}", ((e.key, e.fingerprint) for e in days)),
            tags={"megaphone_exports": str(len(days))},
        )
        for day, days in sorted(by_day.items())
    ]

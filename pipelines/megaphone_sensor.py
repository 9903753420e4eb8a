"""Sensor: finalized Megaphone export days start a load of their day's partition."""

import hashlib
import json

import dagster as dg

from assets.ingestion.megaphone_export import export_filesystem, megaphone_export_job, scan_exports
from pipelines.settings import get_settings


@dg.sensor(job=megaphone_export_job, minimum_interval_seconds=300, default_status=dg.DefaultSensorStatus.RUNNING)
def megaphone_export_sensor(context: dg.SensorEvaluationContext):
    """Request a load for every day with a finalized (tenant, network) export not requested in
    this version yet.

    The cursor maps each (tenant, network, day) to the fingerprint of its files (name, size and
    the store's version: ETag, md5, or modification time) as last requested, so a restart
    neither reloads nor misses a day, and a day whose files are replaced after the marker is
    requested again (the load then compares content checksums with its ledger). Days without
    their `_finalized_…` marker are not requested.
    """
    fs, root = export_filesystem(get_settings().resolved_megaphone_export_url())
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    exports = scan_exports(fs, root)
    finalized = [e for e in exports if e.finalized]
    fresh = [e for e in finalized if seen.get(e.key) != e.fingerprint]
    if not fresh:
        return dg.SkipReason(f"no newly finalized exports ({len(finalized)} finalized, "
                             f"{len(exports) - len(finalized)} waiting for their marker)")
    by_day: dict[str, list] = {}
    for export in fresh:
        by_day.setdefault(export.day.isoformat(), []).append(export)
        seen[export.key] = export.fingerprint
    requests = [
        dg.RunRequest(
            partition_key=day,
            run_key=f"megaphone:{day}:" + hashlib.sha256(
                json.dumps(sorted((e.key, e.fingerprint) for e in days)).encode()).hexdigest()[:16],
            tags={"megaphone_exports": str(len(days))},
        )
        for day, days in sorted(by_day.items())
    ]
    context.update_cursor(json.dumps(seen, sort_keys=True))
    return requests

"""Run tags the run queue limits by (dagster.yaml `concurrency.runs.tag_concurrency_limits`).

A run that loads one source carries `podcast/source` (its job's tags); a run that works for one
tenant carries `podcast/tenant` (set where the run is requested). The queue then holds back a run
while its source, or its tenant, already has its share of the runs in progress.
"""

from __future__ import annotations

SOURCE_TAG = "podcast/source"
TENANT_TAG = "podcast/tenant"


def source_tags(source: str) -> dict[str, str]:
    return {SOURCE_TAG: source}


def tenant_tags(tenant_id: str) -> dict[str, str]:
    return {TENANT_TAG: tenant_id}

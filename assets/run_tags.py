"""Run tags the run queue limits by (dagster.yaml `concurrency.runs.tag_concurrency_limits`), and
the jobs that load a source.

A run that loads one source carries `podcast/source` (its job's tags); a run that works for one
tenant carries `podcast/tenant` (set where the run is requested). The queue then holds back a run
while its source, or its tenant, already has its share of the runs in progress.

A run of the partitioned dbt models for one tenant (`podcast-analytics backfill --per-tenant`)
also carries `podcast/dbt_tenant`: the dbt step builds that tenant's rows only (dbt var
`tenants`), and the queue runs one such run per tenant at a time (limit 1 per value), so two
runs of one tenant never interleave while runs of different tenants go in parallel.
"""

from __future__ import annotations

import dagster as dg

SOURCE_TAG = "podcast/source"
TENANT_TAG = "podcast/tenant"
DBT_TENANT_TAG = "podcast/dbt_tenant"


def source_tags(source: str) -> dict[str, str]:
    return {SOURCE_TAG: source}


def source_job(name: str, source: str, **kwargs) -> dg.UnresolvedAssetJobDefinition:
    """A job that loads one source: its run carries the source's tag and runs its steps one after
    the other in the run's own process. Its steps are a chain (the load, then the checks of what it
    wrote), and a step in a process of its own imports the code location again: an eight-step feed
    poll with nothing new took three to four times as long that way (docs/BENCHMARKS.md, `bench/step_processes.py`).
    This holds under `PODCAST_EXECUTOR=k8s_job` too: a load runs in its run's pod."""
    return dg.define_asset_job(name, tags=source_tags(source), executor_def=dg.in_process_executor, **kwargs)


def tenant_tags(tenant_id: str) -> dict[str, str]:
    return {TENANT_TAG: tenant_id}


def dbt_tenant_tags(tenant_id: str) -> dict[str, str]:
    """The tags of a run of the partitioned dbt models for one tenant: its share of the queue as
    the tenant's, and one such run of the tenant at a time."""
    return {**tenant_tags(tenant_id), DBT_TENANT_TAG: tenant_id}

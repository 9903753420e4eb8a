"""Run tags the run queue limits by (dagster.yaml `concurrency.runs.tag_concurrency_limits`).

A run that loads one source carries `podcast/source` (its job's tags); a run that works for one
tenant carries `podcast/tenant` (set where the run is requested). The queue then holds back a run
while its source, or its tenant, already has its share of the runs in progress.

A run of the partitioned dbt models for one tenant (`podcast-analytics backfill --per-tenant`)
also carries `podcast/dbt_tenant`: the dbt step builds that tenant's rows only (dbt var
`tenants`), and the queue runs one such run per tenant at a time (limit 1 per value), so two
runs of one tenant never interleave while runs of different tenants go in parallel.
"""

from __future__ import annotations

SOURCE_TAG = "podcast/source"
TENANT_TAG = "podcast/tenant"
DBT_TENANT_TAG = "podcast/dbt_tenant"


def source_tags(source: str) -> dict[str, str]:
    return {SOURCE_TAG: source}


def tenant_tags(tenant_id: str) -> dict[str, str]:
    return {TENANT_TAG: tenant_id}


def dbt_tenant_tags(tenant_id: str) -> dict[str, str]:
    """The tags of a run of the partitioned dbt models for one tenant: its share of the queue as
    the tenant's, and one such run of the tenant at a time."""
    return {**tenant_tags(tenant_id), DBT_TENANT_TAG: tenant_id}

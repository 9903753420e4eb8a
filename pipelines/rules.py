"""Rebuilds after a rule change (assets/dbt_rules.py): what to rebuild, the sensor that requests
it, and the same plan for `podcast-analytics backfill`.

A dbt model is out of date with its rules when the rules fingerprint recorded on its latest
materialization differs from the one its SQL, the vars and the user-agent patterns give now.
They are rebuilt in the order of the graph, one run at a time: unpartitioned models whole (an
incremental one with `--full-refresh`), partitioned ones over every day they were built for,
as one run (their backfill policy is a single run); a run never reads a table the rule change
has not reached yet.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import dagster as dg

from assets.dbt import (
    DBT_PARTITIONS,
    build_dbt_assets,
    build_partitioned_dbt_assets,
    dbt_manifest,
    effective_vars,
    recorded_fingerprint,
)
from assets.dbt_rules import RuleFingerprints, pattern_set_version
from pipelines.jobs import UNFINISHED, dbt_models_job, dbt_partitioned_job
from pipelines.phases import phases
from resources.warehouse import WarehouseResource

RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
RULE_TAG = "rule_change"


@dataclass
class RebuildPlan:
    """Models built under other rules: unpartitioned ones, and partitioned ones with the days
    they were built for."""

    unpartitioned: list[dg.AssetKey] = field(default_factory=list)
    partitioned: list[dg.AssetKey] = field(default_factory=list)
    first_day: str | None = None
    last_day: str | None = None
    fingerprints: dict[dg.AssetKey, str] = field(default_factory=dict)

    def run_key(self, keys: list[dg.AssetKey]) -> str:
        text = "|".join(f"{key.to_user_string()}={self.fingerprints[key]}" for key in sorted(keys, key=str))
        return "rules:" + hashlib.sha256(text.encode()).hexdigest()[:20]

    def describe(self) -> str:
        parts = []
        if self.unpartitioned:
            parts.append(f"{len(self.unpartitioned)} models to rebuild whole")
        if self.partitioned:
            parts.append(f"{len(self.partitioned)} partitioned models over {self.first_day}..{self.last_day}")
        return "; ".join(parts) or "every dbt model is built under the current rules"


def current_fingerprints(warehouse: WarehouseResource, dbt_vars: dict | None = None) -> dict[dg.AssetKey, str]:
    """The rules fingerprint of every dbt model asset, as a run would record it now."""
    manifest = dbt_manifest()
    with warehouse.connect(autocommit=True) as conn:
        pattern_set = pattern_set_version(conn)
    fingerprints = RuleFingerprints(manifest, effective_vars(dbt_vars), pattern_set)
    by_name = {node["name"]: unique_id for unique_id, node in manifest["nodes"].items() if unique_id.startswith("model.")}
    return {key: fingerprints.fingerprint(by_name[key.path[-1]])
            for assets_def in (build_dbt_assets(), build_partitioned_dbt_assets()) for key in assets_def.keys
            if key.path[-1] in by_name}


def rebuild_plan(instance: dg.DagsterInstance, warehouse: WarehouseResource) -> RebuildPlan:
    """What a rule change left out of date. A model never built is not in it (its first build
    uses the current rules), nor one built before fingerprints were recorded."""
    current = current_fingerprints(warehouse)
    plan = RebuildPlan(fingerprints=current)
    partitioned_keys = set(build_partitioned_dbt_assets().keys)
    days: set[str] = set()
    for key, fingerprint in sorted(current.items(), key=lambda item: str(item[0])):
        recorded = recorded_fingerprint(instance, key)
        if recorded is None or recorded == fingerprint:
            continue
        if key in partitioned_keys:
            plan.partitioned.append(key)
            days |= instance.get_materialized_partitions(key)
        else:
            plan.unpartitioned.append(key)
    if plan.partitioned:
        plan.first_day, plan.last_day = min(days), DBT_PARTITIONS.get_last_partition_key()
    return plan


def rebuild_requests(plan: RebuildPlan, graph) -> list[dg.RunRequest]:
    """The next run of a plan, in the order of the asset graph (pipelines/phases.py): the models
    out of date that nothing else out of date is upstream of, all unpartitioned (rebuilt whole)
    or all partitioned (over every day they were built for, as one run)."""
    keys = set(plan.unpartitioned) | set(plan.partitioned)
    if not keys:
        return []
    partitioned, first = phases(graph, keys)[0]
    selection = sorted(first, key=str)
    if partitioned:
        return [dg.RunRequest(job_name="dbt_partitioned", asset_selection=selection, run_key=plan.run_key(selection),
                              tags={RANGE_START: plan.first_day, RANGE_END: plan.last_day, RULE_TAG: "backfill"})]
    return [dg.RunRequest(job_name="dbt_unpartitioned", asset_selection=selection, run_key=plan.run_key(selection),
                          tags={RULE_TAG: "rebuild"})]


@dg.sensor(jobs=[dbt_models_job, dbt_partitioned_job], minimum_interval_seconds=300, default_status=dg.DefaultSensorStatus.RUNNING,
           description="A change of the rules dbt models count with (their SQL, IAB and attribution vars, "
                       "user-agent patterns) rebuilds what it affects: the unpartitioned models whole, then "
                       "the partitioned ones over every day they were built for.")
def rules_changed_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
    # One step at a time: while a rebuild runs, the models it has not reached yet still look
    # out of date, and a second run over them would race the first.
    running = context.instance.get_run_records(dg.RunsFilter(
        tags={RULE_TAG: ["rebuild", "backfill"]},
        statuses=UNFINISHED), limit=1)
    if running:
        return dg.SkipReason(f"a rule-change rebuild is running ({running[0].dagster_run.run_id[:8]})")
    plan = rebuild_plan(context.instance, warehouse)
    return rebuild_requests(plan, context.repository_def.asset_graph) or dg.SkipReason(plan.describe())

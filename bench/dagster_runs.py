"""dbt models materialized through Dagster for the benchmarks, as the platform runs them: an
ephemeral instance over a bench warehouse, the code location's asset graph, and runs in the
order of pipelines/phases.py (the unpartitioned models as one run, the daily-partitioned ones as
one run over a range of days, as the partition sensor and a first load request them)."""

from __future__ import annotations

import time
from datetime import date

import dagster as dg

from assets.dbt import build_dbt_assets, build_partitioned_dbt_assets, dbt_resource
from pipelines.phases import phases
from pipelines.rules import RANGE_END, RANGE_START
from resources.warehouse import WarehouseResource


class DagsterRuns:
    """Materializations of dbt models on one bench warehouse, timed."""

    def __init__(self, url: str) -> None:
        from pipelines.definitions import defs

        self.graph = defs.resolve_asset_graph()
        self.instance = dg.DagsterInstance.ephemeral()
        self.resources = {"warehouse": WarehouseResource(database_url=url), "dbt": dbt_resource()}
        self.partitioned = set(build_partitioned_dbt_assets().keys)
        self.dbt_keys = self.partitioned | set(build_dbt_assets().keys)
        self.count = 0  # Dagster runs so far

    def materialize(self, keys: set[dg.AssetKey], first: date, last: date) -> tuple[float, dict[dg.AssetKey, float]]:
        """Materialize `keys` phase by phase, the partitioned ones over [first, last]: the seconds
        through Dagster, and the seconds dbt spent in each model itself (its execution duration; the
        rest is starting dbt and Dagster, and the data tests)."""
        started = time.perf_counter()
        in_models: dict[dg.AssetKey, float] = {}
        for partitioned, phase_keys in phases(self.graph, keys):
            assets = build_partitioned_dbt_assets() if partitioned else build_dbt_assets()
            tags = {RANGE_START: first.isoformat(), RANGE_END: last.isoformat()} if partitioned else {}
            result = dg.materialize([assets], selection=sorted(phase_keys, key=str), instance=self.instance,
                                    resources=self.resources, tags=tags, raise_on_error=True)
            self.count += 1
            for event in result.get_asset_materialization_events():  # a range run repeats it per day
                duration = event.step_materialization_data.materialization.metadata.get("Execution Duration")
                if duration is not None:
                    in_models[event.asset_key] = duration.value
        return time.perf_counter() - started, in_models


def combined(runs: list[tuple[float, dict[dg.AssetKey, float]]]) -> tuple[float, dict[dg.AssetKey, float]]:
    """The seconds of several runs together, and each model's own seconds summed over them."""
    per_model: dict[dg.AssetKey, float] = {}
    for _, models in runs:
        for key, seconds in models.items():
            per_model[key] = per_model.get(key, 0.0) + seconds
    return sum(seconds for seconds, _ in runs), per_model


def slowest(per_model: dict[dg.AssetKey, float], baseline: dict[dg.AssetKey, float], count: int = 6) -> str:
    """The `count` models with the most seconds of their own, each beside its time in `baseline`."""
    ranked = sorted(per_model.items(), key=lambda item: -item[1])[:count]
    return ", ".join(f"{key.path[-1]} {seconds:.1f} s (full {baseline.get(key, 0):.1f} s)" for key, seconds in ranked)

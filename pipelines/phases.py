"""A first load (the demo, `materialize_all` then the rest) in the fewest runs: Dagster runs
partitioned and unpartitioned assets in separate runs, so the assets to build are split into
phases in dependency order, each all unpartitioned (one run of the job that holds them) or all
daily-partitioned dbt models (one `dbt_partitioned` run over the days)."""

from __future__ import annotations

import dagster as dg


def phases(graph, keys: set[dg.AssetKey]) -> list[tuple[bool, set[dg.AssetKey]]]:
    """(partitioned, keys) in the order they can run: each phase takes every remaining asset of
    its kind that no remaining asset of the other kind is upstream of."""
    remaining = set(keys)
    ancestors: dict[dg.AssetKey, set[dg.AssetKey]] = {}

    def upstream(key: dg.AssetKey) -> set[dg.AssetKey]:
        if key not in ancestors:
            found: set[dg.AssetKey] = set()
            for parent in graph.get(key).parent_keys:
                if graph.has(parent):
                    found |= {parent} | upstream(parent)
            ancestors[key] = found
        return ancestors[key]

    def partitioned(key: dg.AssetKey) -> bool:
        return graph.get(key).partitions_def is not None

    result = []
    kind = False
    while remaining:
        ready = {key for key in remaining if partitioned(key) == kind
                 and not any(partitioned(other) != kind for other in upstream(key) & remaining)}
        if ready:
            result.append((kind, ready))
            remaining -= ready
        kind = not kind
    return result

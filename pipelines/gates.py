"""The gate in front of anything that leaves the platform (reports): no failed blocking check on
the assets it reads or on anything upstream of them, judged by each check's latest evaluation in
the Dagster instance (see quality_gate: the same rule that keeps dbt models and Python assets
from building on data a check refused, in this run or a later one)."""

from __future__ import annotations

from collections.abc import Iterable

import dagster as dg

from pipelines.quality_gate import CheckStates, raise_if_blocked


def require_checks_passed(instance: dg.DagsterInstance, asset_graph, upstream: Iterable[dg.AssetKey],
                          what: str) -> None:
    """Raise `dg.Failure` (its description and metadata show in the UI) when a blocking check
    on `upstream` or on any of their ancestors failed."""
    keys = {key for key in upstream if asset_graph.has(key)}
    for key in list(keys):
        keys |= asset_graph.get_ancestor_asset_keys(key)
    raise_if_blocked(CheckStates(instance, asset_graph).on(keys), what)

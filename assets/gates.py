"""The gate in front of anything that leaves the platform (reports): it does not go out on data a
check refused or on marts that are not current.

Judged over the assets it reads and everything upstream of them, from the Dagster instance:
- a blocking check whose latest evaluation failed (quality_gate.CheckStates: the same rule that
  keeps dbt models and Python assets from building on refused data);
- an asset whose latest build failed or was skipped, so it still holds an earlier run's rows, or
  that is older than an asset it reads (quality_gate.BuildStates).
Each is named in the failure. While every reason is one that goes away by itself (an asset behind
its input, which automation rebuilds; a build still running is not judged failed yet), the gate
waits (up to `wait_seconds`) instead of failing a scheduled report that happens to start between
a feed poll and the model build that follows it. A failed build fails the report at once.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import dagster as dg

from assets.quality_gate import BuildStates, CheckStates, raise_if_blocked

POLL_SECONDS = 15.0


def upstream_closure(asset_graph, upstream: Iterable[dg.AssetKey]) -> set[dg.AssetKey]:
    keys = {key for key in upstream if asset_graph.has(key)}
    for key in list(keys):
        keys |= asset_graph.get_ancestor_asset_keys(key)
    return keys


def require_current_upstream(instance: dg.DagsterInstance, asset_graph, upstream: Iterable[dg.AssetKey],
                             what: str, wait_seconds: float = 0.0, log=None) -> None:
    """Raise `dg.Failure` (its description and metadata show in the UI) when a blocking check on
    `upstream` or their ancestors failed, or one of them is not current."""
    keys = upstream_closure(asset_graph, upstream)
    deadline = time.monotonic() + wait_seconds
    while True:
        builds = BuildStates(instance, asset_graph, keys)
        blockers = CheckStates(instance, asset_graph).on(keys) + builds.blockers()
        if not builds.worth_waiting(blockers) or time.monotonic() >= deadline:
            break
        if log is not None:
            log.info(f"{what} waits for its upstream to be rebuilt: " + "; ".join(map(str, blockers[:3])))
        time.sleep(POLL_SECONDS)
    raise_if_blocked(blockers, what)

"""The quality gate: an asset does not run while a blocking check upstream of it has failed.

Dagster's own blocking checks stop the assets downstream of a failed check *in the same run*
only; a later run (a schedule, automation, a report on cron) would build on the bad data. The
gate reads the latest evaluation of every blocking check on the asset's ancestors from the
Dagster instance (GX suites on raw tables, dbt tests, Python checks) and names those that failed.
The dbt op leaves the gated models out of `dbt build`; Python assets call `require_quality`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import dagster as dg
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus


@dataclass(frozen=True)
class Blocker:
    """A failed blocking check upstream: which asset, which check, why, in which run."""

    asset: str
    check: str
    reason: str
    run_id: str

    def __str__(self) -> str:
        return f"{self.asset}: {self.check} failed ({self.reason})"


class CheckStates:
    """The latest evaluation of every blocking check in the graph, read from the instance once."""

    def __init__(self, instance: dg.DagsterInstance, asset_graph):
        self.asset_graph = asset_graph
        check_keys = [k for k in asset_graph.asset_check_keys if asset_graph.get_check_spec(k).blocking]
        latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(check_keys) if check_keys else {}
        self.failed: dict[dg.AssetKey, list[Blocker]] = {}
        for check_key, record in sorted(latest.items(), key=lambda item: item[0].to_user_string()):
            if record.status != AssetCheckExecutionRecordStatus.FAILED or record.event is None:
                continue
            evaluation = record.event.dagster_event.event_specific_data if record.event.dagster_event else None
            if getattr(evaluation, "severity", dg.AssetCheckSeverity.ERROR) != dg.AssetCheckSeverity.ERROR:
                continue
            reason = getattr(evaluation, "description", None) or "failed"
            self.failed.setdefault(check_key.asset_key, []).append(
                Blocker(check_key.asset_key.to_user_string(), check_key.name, reason, record.run_id))

    def on(self, keys: Iterable[dg.AssetKey]) -> list[Blocker]:
        """Failed blocking checks on `keys` themselves."""
        return [b for key in sorted(set(keys), key=lambda k: k.to_user_string()) for b in self.failed.get(key, [])]

    def upstream(self, key: dg.AssetKey) -> list[Blocker]:
        """Failed blocking checks on any ancestor of `key` (its own checks run after it)."""
        if not self.failed or not self.asset_graph.has(key):
            return []
        return self.on(self.asset_graph.get_ancestor_asset_keys(key))


def failed_blocking_checks(instance: dg.DagsterInstance, asset_graph, keys: Iterable[dg.AssetKey]) -> list[Blocker]:
    """Blocking checks on `keys` whose latest evaluation failed with ERROR severity."""
    return CheckStates(instance, asset_graph).on(keys)


def upstream_blockers(instance: dg.DagsterInstance, asset_graph, key: dg.AssetKey) -> list[Blocker]:
    """Failed blocking checks on any ancestor of `key`."""
    return CheckStates(instance, asset_graph).upstream(key)


def gated_keys(instance: dg.DagsterInstance, asset_graph, keys: Iterable[dg.AssetKey]) -> dict[dg.AssetKey, list[Blocker]]:
    """Of `keys`, those with a failed blocking check upstream, and the checks that stop them."""
    states = CheckStates(instance, asset_graph)
    out = {}
    for key in keys:
        blockers = states.upstream(key)
        if blockers:
            out[key] = blockers
    return out


def asset_graph_of(context: dg.AssetExecutionContext):
    """The code location's whole asset graph: the run's repository, or (runs in process, e.g.
    `dg.materialize`, whose job graph holds only the selected assets) the one `Definitions`."""
    try:
        return context.repository_def.asset_graph
    except Exception:
        from pipelines.definitions import defs

        return defs.resolve_asset_graph()


def blocker_metadata(blockers: list[Blocker]) -> dict[str, dg.MetadataValue]:
    return {
        "blocked_by": dg.MetadataValue.json([{"asset": b.asset, "check": b.check, "reason": b.reason,
                                              "run_id": b.run_id} for b in blockers]),
        "blocked_reason": dg.MetadataValue.text("; ".join(str(b) for b in blockers)),
    }


def require_quality(context: dg.AssetExecutionContext, key: dg.AssetKey | None = None) -> None:
    """Call first in a Python asset downstream of marts (reports, exports): raises a `Failure`
    naming the failed upstream checks, so the asset does not materialize and the UI says why."""
    key = key or context.asset_key
    raise_if_blocked(upstream_blockers(context.instance, asset_graph_of(context), key), key.to_user_string())


def raise_if_blocked(blockers: list[Blocker], what: str) -> None:
    """A `Failure` naming the failed checks (description and metadata show in the UI), if any."""
    if blockers:
        raise dg.Failure(
            description=f"{what} is blocked by {len(blockers)} failed upstream check(s): "
                        + "; ".join(str(b) for b in blockers[:5]),
            metadata=blocker_metadata(blockers),
            allow_retries=False,
        )

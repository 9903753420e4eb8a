"""The quality gate: an asset does not run while a blocking check upstream of it has failed, and
what leaves the platform (reports) also not while an asset it reads is not current.

Dagster's own blocking checks stop the assets downstream of a failed check *in the same run*
only; a later run (a schedule, automation, a report on cron) would build on the bad data. The
gate reads the latest evaluation of every blocking check on the asset's ancestors from the
Dagster instance (GX suites on raw tables, dbt tests, Python checks) and names those that failed.
The dbt op leaves the gated models out of `dbt build`; Python assets call `require_quality`.

A mart can also be wrong without any failed check: when a model build fails, dbt skips its
descendants and every mart keeps the previous run's rows. `BuildStates` finds those from the
instance's asset records: an asset whose latest materialization attempt failed (or was skipped
after its last materialization), and an asset older than an asset it reads (data arrived that it
has not taken in yet, judged by data version: a source materialized again with the same rows
is no news). Models tagged `daily` are rebuilt once a day, so they are behind only when
their input arrived before the latest daily tick and they were not rebuilt since.
"""

from __future__ import annotations

import datetime as dt
import importlib
import time
from collections.abc import Iterable
from dataclasses import dataclass

import dagster as dg
from dagster._core.definitions.data_version import DATA_VERSION_TAG, get_input_data_version_tag
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from assets.automation import DAILY_CRON, DAILY_TAG


@dataclass(frozen=True)
class Blocker:
    """A failed blocking check upstream: which asset, which check, why, in which run."""

    asset: str
    check: str
    reason: str
    run_id: str

    def __str__(self) -> str:
        if self.check in (FAILED_BUILD, BEHIND_INPUT):
            return f"{self.asset} is not current: {self.reason}"
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


# The code location (workspace.yaml, pyproject.toml [tool.dagster]); asset_graph_of loads it by name.
CODE_LOCATION_MODULE = "pipelines.definitions"
FAILED_BUILD = "latest_build_failed"
BEHIND_INPUT = "older_than_its_input"


class BuildStates:
    """Whether the latest build of each asset is current, from the instance's asset records.

    Judged for assets built from others (not sources), unpartitioned, that Dagster has seen
    materialized: one never built by Dagster (a warehouse built by hand) is not judged.
    """

    def __init__(self, instance: dg.DagsterInstance, asset_graph, keys: Iterable[dg.AssetKey],
                 now: float | None = None):
        self.instance = instance
        self.asset_graph = asset_graph
        self.keys = sorted({k for k in keys if asset_graph.has(k)}, key=lambda k: k.to_user_string())
        wanted = {*self.keys, *(p for k in self.keys for p in asset_graph.get(k).parent_keys)}
        self.entries = {r.asset_entry.asset_key: r.asset_entry for r in instance.get_asset_records(list(wanted))}
        self.now = time.time() if now is None else now

    def _materialized(self, key: dg.AssetKey):
        entry = self.entries.get(key)
        return entry.last_materialization_record if entry else None

    def blockers(self) -> list[Blocker]:
        from dagster._utils.schedules import get_latest_completed_cron_tick

        daily_tick = get_latest_completed_cron_tick(
            DAILY_CRON, dt.datetime.fromtimestamp(self.now, tz=dt.timezone.utc), "UTC").timestamp()
        out = []
        for key in self.keys:
            node = self.asset_graph.get(key)
            last = self._materialized(key)
            if not node.parent_keys or node.is_partitioned or last is None:
                continue
            attempt = self._unfinished_attempt(key, last.storage_id)
            if attempt is not None:
                out.append(Blocker(key.to_user_string(), FAILED_BUILD,
                                   f"its latest build (run {attempt[:8]}) did not materialize it; it still "
                                   f"holds the rows of run {last.run_id[:8]}", attempt))
                continue
            newer = []
            for parent in sorted(node.parent_keys, key=lambda k: k.to_user_string()):
                record = self._materialized(parent)
                if record is None or record.storage_id <= last.storage_id or _consumed(last, parent, record):
                    continue
                if DAILY_TAG in (node.tags or {}) and not (record.timestamp < daily_tick and last.timestamp < daily_tick):
                    continue  # arrived since the daily build's tick: taken in at the next one
                newer.append((parent, record))
            if newer:
                parent, record = newer[0]
                out.append(Blocker(key.to_user_string(), BEHIND_INPUT,
                                   f"built before {parent.to_user_string()} was updated (run {record.run_id[:8]})"
                                   + (f" and {len(newer) - 1} more input(s)" if len(newer) > 1 else ""),
                                   last.run_id))
        return out

    def _unfinished_attempt(self, key: dg.AssetKey, since_storage_id: int) -> str | None:
        """The run of a build planned after the last materialization that ended without it
        (failed, skipped by dbt after an upstream error, or gated), or None. A run still queued
        or running is not judged yet."""
        planned = self.instance.get_latest_planned_materialization_info(key)
        if planned is None or planned.storage_id <= since_storage_id:
            return None
        run_id = planned.run_id
        run = self.instance.get_run_by_id(run_id)
        if run is None or not run.is_finished:
            return None
        return run_id

    def worth_waiting(self, blockers: list[Blocker]) -> bool:
        """Every blocker goes away by itself: an asset behind its input, which automation (or the
        run already rebuilding it) brings up to date. A failed build needs someone."""
        return bool(blockers) and all(b.check == BEHIND_INPUT for b in blockers)


def _consumed(child, parent: dg.AssetKey, parent_record) -> bool:
    """The child's build read the data version the parent has now (a source materialized again
    with the same rows, e.g. a feed poll that stored nothing new, keeps its version)."""
    consumed = (child.asset_materialization.tags or {}).get(get_input_data_version_tag(parent))
    current = (parent_record.asset_materialization.tags or {}).get(DATA_VERSION_TAG)
    return consumed is not None and consumed == current


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
    `dg.materialize`, which carry no repository and whose job holds only the selected assets) the
    one `Definitions`, looked up by module name as Dagster's workspace does (CODE_LOCATION_MODULE),
    so nothing below the code location imports it."""
    try:
        return context.repository_def.asset_graph
    except Exception:
        return importlib.import_module(CODE_LOCATION_MODULE).defs.resolve_asset_graph()


def blocker_metadata(blockers: list[Blocker]) -> dict[str, dg.MetadataValue]:
    return {
        "blocked_by": dg.MetadataValue.json([{"asset": b.asset, "check": b.check, "reason": b.reason,
                                              "run_id": b.run_id} for b in blockers]),
        "blocked_reason": dg.MetadataValue.text("; ".join(str(b) for b in blockers)),
    }


def require_quality(context: dg.AssetExecutionContext, key: dg.AssetKey | None = None) -> None:
    """Call first in a Python asset downstream of marts (exports): raises a `Failure` naming the
    failed upstream checks and the upstream assets that are not current (BuildStates), so the
    asset does not materialize and the UI says why."""
    key = key or context.asset_key
    graph = asset_graph_of(context)
    ancestors = graph.get_ancestor_asset_keys(key) if graph.has(key) else set()
    raise_if_blocked(CheckStates(context.instance, graph).on(ancestors)
                     + BuildStates(context.instance, graph, ancestors).blockers(), key.to_user_string())


def raise_if_blocked(blockers: list[Blocker], what: str) -> None:
    """A `Failure` naming the failed checks (description and metadata show in the UI), if any."""
    if blockers:
        raise dg.Failure(
            description=f"{what} is blocked by {len(blockers)} failed upstream check(s): "
                        + "; ".join(str(b) for b in blockers[:5]),
            metadata=blocker_metadata(blockers),
            allow_retries=False,
        )

"""The gate in front of anything that leaves the platform: the latest evaluation of every asset
check on the upstream assets, read from the Dagster instance, must not have failed.

Blocking checks already stop downstream steps of the run they fail in; this gate also covers a
report materialized in a later run (a schedule, a re-execution, an on-demand job) after an
upstream check failed and before the data was fixed."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import dagster as dg
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus


@dataclass(frozen=True)
class CheckFailure:
    check: str          # asset key / check name
    severity: str       # ERROR blocks, WARN is reported only
    description: str
    run_id: str


def latest_check_failures(instance: dg.DagsterInstance, check_keys: Iterable[dg.AssetCheckKey]) -> list[CheckFailure]:
    """Failed checks among `check_keys`, judged by each check's latest completed evaluation."""
    keys = sorted(set(check_keys), key=lambda k: k.to_user_string())
    if not keys:
        return []
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(keys)
    failures = []
    for key in keys:
        record = latest.get(key)
        if record is None or record.status != AssetCheckExecutionRecordStatus.FAILED or record.event is None:
            continue
        evaluation = record.event.dagster_event.event_specific_data
        failures.append(CheckFailure(
            check=key.to_user_string(), severity=evaluation.severity.value,
            description=evaluation.description or "", run_id=record.run_id,
        ))
    return failures


def upstream_check_keys(asset_graph, asset_keys: Iterable[dg.AssetKey]) -> set[dg.AssetCheckKey]:
    """Every check defined on the given assets in the code location's asset graph."""
    known = [key for key in asset_keys if asset_graph.has(key)]
    return set(asset_graph.get_check_keys_for_assets(set(known)))


def code_location_asset_graph(context: dg.OpExecutionContext | dg.AssetExecutionContext):
    """The asset graph of the whole code location: the run's repository when it has one (runs
    launched by the webserver or the daemon), else the project's Definitions (in-process runs
    such as the demo's and the tests')."""
    from dagster_shared.check import CheckError

    try:
        return context.repository_def.asset_graph
    except CheckError:
        from pipelines.definitions import defs

        return defs.resolve_asset_graph()


def require_checks_passed(instance: dg.DagsterInstance, check_keys: Iterable[dg.AssetCheckKey],
                          what: str) -> list[CheckFailure]:
    """Raise `dg.Failure` (its description and metadata show in the UI) when an upstream check
    of severity ERROR failed; returns the WARN failures, which do not block."""
    failures = latest_check_failures(instance, check_keys)
    blocking = [f for f in failures if f.severity == "ERROR"]
    if blocking:
        raise dg.Failure(
            description=f"{what} not generated: {len(blocking)} upstream check(s) failed: "
                        + "; ".join(f"{f.check} ({f.description[:200]})" for f in blocking),
            metadata={"failed_checks": [f.check for f in blocking],
                      "failed_in_runs": sorted({f.run_id for f in blocking})},
            allow_retries=False,
        )
    return failures

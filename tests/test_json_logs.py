"""Run logs as JSON lines carry the run id, the step, the asset and the tenant."""

import json

import dagster as dg

from pipelines.json_logs import LOGGERS


@dg.asset(key=["raw", "tenant_feed"])
def tenant_feed(context: dg.AssetExecutionContext):
    context.log.info("loaded 3 rows", extra={"tenant": "northwind"})
    context.log.warning("2 rows refused")
    return 3


def test_every_line_is_json_with_run_asset_and_tenant(tmp_path):
    target = tmp_path / "logs" / "dagster.jsonl"
    defs = dg.Definitions(assets=[tenant_feed], jobs=[dg.define_asset_job("load", selection=[tenant_feed.key])],
                          loggers=LOGGERS)
    result = defs.resolve_job_def("load").execute_in_process(
        run_config={"loggers": {"json": {"config": {"target": str(target)}}}})
    assert result.success
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert lines and all(line["run_id"] == result.run_id and line["job"] == "load" for line in lines)
    loaded = next(line for line in lines if line["message"] == "loaded 3 rows")
    assert loaded == {**loaded, "level": "info", "asset": "raw/tenant_feed", "tenant": "northwind", "step": "raw__tenant_feed"}
    refused = next(line for line in lines if line["message"] == "2 rows refused")
    assert refused["level"] == "warning" and "tenant" not in refused
    events = {line.get("event") for line in lines}
    assert {"STEP_START", "ASSET_MATERIALIZATION", "STEP_SUCCESS"} <= events, events
    materialized = next(line for line in lines if line.get("event") == "ASSET_MATERIALIZATION")
    assert materialized["asset"] == "raw/tenant_feed"

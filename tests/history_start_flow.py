"""What tests/test_log_history.py runs in a process of its own: the partitions are made when the
code location is imported, from PODCAST_HISTORY_START, so a deployment with an earlier first day
is a process started with it (as a code server is). `python -m tests.history_start_flow URL
LANDING` reads the landing folder (PODCAST_LOG_LANDING_DIR) as the sensors do and prints, as JSON:
the first partition of both partition sets, the days the log sensor asked for and the days the
partition sensor asked for, after each was run through Dagster."""

import json
import sys

import dagster as dg


# The request-level models and the download facts built from them.
DOWNLOAD_CHAIN = [dg.AssetKey(["intermediate", name]) for name in (
    "int_user_agents_daily", "int_listener_requests_screened", "int_download_windows", "int_downloads_iab_filtered")] + [
    dg.AssetKey(["marts", "fct_downloads"]), dg.AssetKey(["marts", "fct_downloads_daily_by_tenant"])]


def main(url: str, landing: str) -> dict:
    from assets.dbt import DBT_PARTITIONS, build_partitioned_dbt_assets, dbt_resource
    from assets.ingestion.listener_logs import LOG_PARTITIONS, listener_logs
    from pipelines.partition_sensor import dbt_partitions_sensor
    from pipelines.rules import RANGE_END, RANGE_START
    from pipelines.sensors import listener_log_files_sensor
    from resources.warehouse import WarehouseResource

    resources = {"warehouse": WarehouseResource(database_url=url)}
    found = {"log_partitions_from": LOG_PARTITIONS.get_first_partition_key(),
             "dbt_partitions_from": DBT_PARTITIONS.get_first_partition_key()}
    partition_tick = dg.build_sensor_context(resources=resources)
    dbt_partitions_sensor(partition_tick)  # the first tick sets the watermarks
    requests = listener_log_files_sensor(dg.build_sensor_context(resources=resources))
    found["log_days"] = [request.partition_key for request in requests]
    for request in requests:
        assert dg.materialize(
            [listener_logs], partition_key=request.partition_key, resources=resources,
            run_config={"ops": {"listener_logs": {"config": {"landing_dir": landing, "settle_seconds": 0,
                                                             "sources_file": f"{landing}/none.yaml"}}}},
        ).success
    ranges = dbt_partitions_sensor(dg.build_sensor_context(cursor=partition_tick.cursor, resources=resources))
    found["dbt_ranges"] = [[r.tags[RANGE_START], r.tags[RANGE_END]] for r in ranges if not r.asset_selection]
    for low, high in found["dbt_ranges"]:
        assert dg.materialize([build_partitioned_dbt_assets()], selection=DOWNLOAD_CHAIN,
                              tags={RANGE_START: low, RANGE_END: high},
                              resources={**resources, "dbt": dbt_resource()}).success
    return found


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:3])))

"""What runs the platform unattended, as declared: the automation sensor and its conditions, and
the schedules and sensors a deployment starts with."""

import dagster as dg
import pytest

from assets.automation import DAILY_CRON, ON_NEW_DATA

VERSION = {"value": "1"}


@dg.asset
def source():
    return dg.MaterializeResult(data_version=dg.DataVersion(VERSION["value"]))


@dg.asset(deps=[source], automation_condition=ON_NEW_DATA)
def model():
    return None


@dg.asset(deps=[source], automation_condition=dg.AutomationCondition.eager())
def eager_model():
    return None


@dg.asset(deps=[model], automation_condition=ON_NEW_DATA)
def mart():
    return None


DAYS = dg.DailyPartitionsDefinition(start_date="2026-11-01", end_offset=1)


@dg.asset(key=["raw", "daily_events"], partitions_def=DAYS)
def daily_events():
    return None


@dg.asset(deps=[daily_events], automation_condition=ON_NEW_DATA)
def daily_rollup():
    return None


@dg.asset(deps=[daily_events], automation_condition=dg.AutomationCondition.eager())
def eager_rollup():
    return None


def test_models_follow_new_data_not_every_materialization():
    """A source materialized again with the same data version (a poll that stored nothing new)
    starts nothing; a new version starts the model. Plain `eager` would rebuild on both."""
    defs = dg.Definitions(assets=[source, model, eager_model, mart])
    with dg.instance_for_test() as instance:
        VERSION["value"] = "1"
        assert dg.materialize([source, model, eager_model, mart], instance=instance).success
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance)
        assert result.total_requested == 0

        assert dg.materialize([source], instance=instance).success  # same rows, same version
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor)
        assert result.get_requested_partitions(model.key) == set()
        assert result.get_requested_partitions(eager_model.key) == {None}

        VERSION["value"] = "2"
        assert dg.materialize([source], instance=instance).success
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor)
        assert result.get_requested_partitions(model.key) == {None}
        assert result.get_requested_partitions(mart.key) == {None}  # the chain in one request

        # That run built both: the model's new version is no news to the mart on the next tick.
        assert dg.materialize([model, mart], instance=instance).success
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor)
        assert result.total_requested == 0


def test_a_late_day_of_a_partitioned_source_is_news():
    """A log day loaded weeks late (every day since is missing) starts the model built from it;
    `eager` would wait for every day to exist."""
    defs = dg.Definitions(assets=[daily_events, daily_rollup, eager_rollup])
    with dg.instance_for_test() as instance:
        assert dg.materialize([daily_events], partition_key="2026-11-03", instance=instance).success
        assert dg.materialize([daily_rollup, eager_rollup], instance=instance).success
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance)
        assert dg.materialize([daily_events], partition_key="2026-11-04", instance=instance).success
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor)
        assert result.get_requested_partitions(daily_rollup.key) == {None}
        assert result.get_requested_partitions(eager_rollup.key) == set()


@pytest.fixture(scope="module")
def defs():
    from pipelines.definitions import defs

    return defs


def test_a_deployment_starts_with_automation_schedules_and_sensors_on(defs):
    graph = defs.resolve_asset_graph()
    automation = defs.resolve_sensor_def("automation")
    assert isinstance(automation, dg.AutomationConditionSensorDefinition)
    assert automation.default_status == dg.DefaultSensorStatus.RUNNING
    targeted = automation.asset_selection.resolve(graph)
    models = {k for k in graph.get_all_asset_keys() if k.path[0] in ("staging", "intermediate", "marts")
              and k.path[-1] != "sla_status"}
    # The daily-partitioned models are requested by the partition sensor, days at a time.
    partitioned = {k for k in models if graph.get(k).partitions_def is not None}
    assert partitioned and not partitioned & targeted and "dbt_partitions_sensor" in {s.name for s in defs.sensors}
    assert all(graph.get(key).automation_condition is None for key in partitioned)
    models -= partitioned
    reports = {dg.AssetKey(["reports", "campaign_report"]), dg.AssetKey(["reports", "sponsor_report"])}
    assert models | reports <= targeted
    for key in models | reports:
        condition = str(graph.get(key).automation_condition)
        assert "eager_on_new_data" in condition or DAILY_CRON in condition, key
    # The sources are started by schedules and sensors, all on by default.
    for schedule in defs.schedules:
        assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING, schedule.name
    started = {s.job_name for s in defs.schedules} | {job.name for s in defs.sensors if s.has_jobs for job in s.jobs}
    assert {"rss_ingest", "platform_catalog", "platform_metrics", "sync_sponsorship_campaigns",
            "load_conversion_events", "load_listener_logs", "load_megaphone_exports"} <= started
    for sensor in defs.sensors:
        assert sensor.default_status == dg.DefaultSensorStatus.RUNNING, sensor.name

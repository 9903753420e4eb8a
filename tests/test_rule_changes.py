"""A change of the rules the dbt models count with (assets/dbt_rules.py, pipelines/rules.py):
each model's rules fingerprint follows exactly the vars and patterns it reads, and a change
rebuilds what it affects through Dagster: the unpartitioned incremental models whole, then the
partitioned models over every day they were built for."""

import json
from datetime import date

import dagster as dg
import psycopg
import pytest

from assets.dbt import (
    DBT_PARTITIONS,
    build_dbt_assets,
    build_partitioned_dbt_assets,
    dbt_manifest,
    dbt_resource,
    recorded_fingerprint,
)
from assets.dbt_rules import RuleFingerprints, project_vars
from assets.ingestion.rss_ingest import ingest_rss
from assets.ingestion.user_agents import read_patterns, store_patterns
from pipelines.definitions import defs
from pipelines.phases import phases
from pipelines.rules import RANGE_END, RANGE_START, rebuild_plan, rebuild_requests
from resources.settings import REPO_ROOT, Settings, get_settings
from resources.warehouse import WarehouseResource, warehouse_at
from simulator.logs import generate_logs
from tests.conftest import UA_PATTERNS, query
from tests.dbt_cli import run_dbt
from tests.test_downloads_incremental import load_days
from tests.test_rss_ingest import sources_for

DAYS = [date(2026, 11, 1), date(2026, 11, 2)]
IAB_CHAIN = {"int_download_windows", "int_downloads_iab_filtered", "fct_downloads"}


def fingerprints(values: dict, pattern_set: str = "patterns-1") -> dict[str, str]:
    manifest = dbt_manifest()
    rules = RuleFingerprints(manifest, values, pattern_set)
    return {node["name"]: rules.fingerprint(unique_id) for unique_id, node in manifest["nodes"].items()
            if unique_id.startswith("model.")}


def changed(before: dict, after: dict) -> set[str]:
    return {name for name in before if before[name] != after[name]}


def test_a_rule_var_changes_the_fingerprint_of_the_models_it_reaches_and_of_no_other():
    base = {**project_vars(REPO_ROOT / "dbt_project"), **Settings().dbt_vars()}
    before = fingerprints(base)

    window = changed(before, fingerprints({**base, "iab_window": "calendar_day"}))
    # The windows read the var; everything built from them follows; nothing upstream or beside does.
    assert IAB_CHAIN | {"fct_downloads_daily_by_show", "int_exposures", "fct_attributed_conversions",
                        "mart_campaign_roi"} <= window
    assert not window & {"int_listener_requests_screened", "int_user_agents_classified", "int_media_sizes",
                         "int_conversions", "stg_listener_logs__events", "dim_campaigns"}

    # A var read only through a macro counts (smallest_plausible_bytes reads the bitrate band).
    assert "int_downloads_iab_filtered" in changed(before, fingerprints({**base, "media_min_bitrate_bps": 9000}))
    # Settings of how a build runs change no row, and no fingerprint.
    assert fingerprints({**base, "model_work_mem": "1GB"}) == before
    # The benchmark thresholds reach the benchmark mart only.
    assert changed(before, fingerprints({**base, "benchmark_min_campaigns": 6})) == {"mart_roi_benchmarks"}

    # Another pattern set reaches the classification and every request screened with it, and is
    # data: the code versions stay.
    patterns = changed(before, fingerprints(base, "patterns-2"))
    assert {"int_user_agents_classified", "int_listener_requests_screened", "fct_downloads"} <= patterns
    assert "int_media_sizes" in patterns  # sizes are learned from the screened requests
    assert not patterns & {"int_conversions", "dim_campaigns", "stg_listener_logs__events"}
    manifest = dbt_manifest()
    assert all(RuleFingerprints(manifest, base, "patterns-1").code_version(uid)
               == RuleFingerprints(manifest, base, "patterns-2").code_version(uid)
               for uid in manifest["nodes"] if uid.startswith("model."))


def downloads(url) -> list[tuple]:
    return sorted(query(url, "select download_id, episode_id, download_date, bytes_covered from marts.fct_downloads"))


def tenant_rollup(url) -> list[tuple]:
    return sorted(query(url, "select download_date, tenant_id, downloads from marts.fct_downloads_daily_by_tenant"))


@pytest.fixture
def rules_env(monkeypatch):
    """Settings read afresh, so a test can change the dbt vars the platform passes."""
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def load_network(url: str, truth, tmp_path, listeners: int) -> None:
    """The simulated network's feeds, the test patterns and DAYS of access logs, loaded."""
    ingest_rss(warehouse_at(url), sources_for(truth), batch_id="rss")
    with psycopg.connect(url, autocommit=True) as conn:
        store_patterns(conn, read_patterns(UA_PATTERNS), "t")
    landing = tmp_path / "landing"
    generate_logs(truth, landing, DAYS, seed=9, listeners_per_tenant=listeners)
    load_days(url, landing, set(DAYS))


def materialize_phase(instance, resources, partitioned: bool, keys, tags=None) -> bool:
    assets = build_partitioned_dbt_assets() if partitioned else build_dbt_assets()
    return dg.materialize([assets], selection=sorted(keys, key=str), instance=instance, resources=resources,
                          tags=tags or {}).success


def test_a_rule_change_rebuilds_what_it_affects_in_the_order_of_the_graph(
        fresh_db, simulator, truth, tmp_path, rules_env):
    load_network(fresh_db, truth, tmp_path, listeners=30)

    instance = dg.DagsterInstance.ephemeral()
    resources = {"warehouse": WarehouseResource(database_url=fresh_db), "dbt": dbt_resource()}
    graph = defs.resolve_asset_graph()
    # The download marts and everything they are built from, in phases, as a first load runs them.
    engagement = dg.AssetKey(["marts", "fct_listener_engagement"])
    targets = set(build_partitioned_dbt_assets().keys) | {engagement}
    dbt_keys = set(build_dbt_assets().keys) | set(build_partitioned_dbt_assets().keys)
    keys = dg.AssetSelection.assets(*targets).upstream().resolve(graph) & dbt_keys
    range_tags = {RANGE_START: DAYS[0].isoformat(), RANGE_END: DAYS[-1].isoformat()}
    for partitioned, phase_keys in phases(graph, keys):
        assert materialize_phase(instance, resources, partitioned, phase_keys, range_tags if partitioned else None)
    rolling = downloads(fresh_db)
    assert rolling and rebuild_requests(rebuild_plan(instance, resources["warehouse"]), graph) == []

    # The network switches to calendar-day windows.
    rules_env.setenv("PODCAST_DBT_VARS", json.dumps({"iab_window": "calendar_day"}))
    get_settings.cache_clear()
    plan = rebuild_plan(instance, resources["warehouse"])
    assert plan.unpartitioned == [engagement]
    assert IAB_CHAIN | {"fct_downloads_daily_by_show"} <= {key.path[-1] for key in plan.partitioned}
    assert not {"int_listener_requests_screened", "int_media_sizes"} & {key.path[-1] for key in plan.partitioned}
    assert plan.first_day == DAYS[0].isoformat() and plan.last_day == DBT_PARTITIONS.get_last_partition_key()

    # First the partitioned models over every day they were built for, as one run.
    [first] = rebuild_requests(plan, graph)
    assert first.job_name == "dbt_partitioned" and sorted(first.asset_selection, key=str) == plan.partitioned
    assert (first.tags[RANGE_START], first.tags[RANGE_END]) == (plan.first_day, plan.last_day)
    assert materialize_phase(instance, resources, True, first.asset_selection, first.tags)
    rebuilt = downloads(fresh_db)
    fct_downloads = dg.AssetKey(["marts", "fct_downloads"])
    assert recorded_fingerprint(instance, fct_downloads) == plan.fingerprints[fct_downloads]
    assert tenant_rollup(fresh_db) == sorted(query(
        fresh_db, "select download_date, tenant_id, count(*) from marts.fct_downloads group by 1, 2"))

    # Then what is built from them, whole; then nothing is left.
    [second] = rebuild_requests(rebuild_plan(instance, resources["warehouse"]), graph)
    assert second.job_name == "dbt_unpartitioned" and second.asset_selection == [engagement]
    engaged = "select sum(downloads) from marts.fct_listener_engagement"
    assert query(fresh_db, engaged) == [(len(rolling),)]
    assert materialize_phase(instance, resources, False, second.asset_selection)
    assert query(fresh_db, engaged) == [(len(rebuilt),)]
    assert rebuild_requests(rebuild_plan(instance, resources["warehouse"]), graph) == []

    # What a from-scratch build under the new rule gives; and the rule made a difference.
    target = tmp_path / "target"
    run_dbt(fresh_db, target, "build", "--full-refresh", "--select", "+fct_downloads", "--exclude", "test_type:unit",
            "--vars", json.dumps({"iab_window": "calendar_day"}), check=True)
    assert downloads(fresh_db) == rebuilt != rolling
    assert len(rebuilt) > len(rolling)  # a listener across midnight is two calendar-day downloads


def test_a_full_refresh_through_run_config_rebuilds_every_day_of_a_partitioned_model(fresh_db, simulator, truth,
                                                                                    tmp_path):
    load_network(fresh_db, truth, tmp_path, listeners=10)
    run_dbt(fresh_db, tmp_path / "target", "build", "--select", "+fct_downloads_daily_by_tenant",
            "--exclude", "test_type:unit", check=True)
    instance = dg.DagsterInstance.ephemeral()
    resources = {"warehouse": WarehouseResource(database_url=fresh_db), "dbt": dbt_resource()}
    by_tenant = [dg.AssetKey(["marts", "fct_downloads_daily_by_tenant"])]
    stamps = "select download_date, tenant_id, downloads, xmin::text from marts.fct_downloads_daily_by_tenant"
    before = {row[:3]: row[3] for row in query(fresh_db, stamps)}
    assert {day for day, *_ in before} == set(DAYS)
    # A run of the first day rewrites that day only; with full_refresh, every day, whatever its partition.
    assert dg.materialize([build_partitioned_dbt_assets()], selection=by_tenant, partition_key=DAYS[0].isoformat(),
                          instance=instance, resources=resources).success
    one_day = {row[:3]: row[3] for row in query(fresh_db, stamps)}
    assert one_day.keys() == before.keys()
    assert {key[0] for key in before if one_day[key] != before[key]} == {DAYS[0]}
    assert dg.materialize([build_partitioned_dbt_assets()], selection=by_tenant, partition_key=DAYS[0].isoformat(),
                          instance=instance, resources=resources,
                          run_config={"ops": {"dbt_partitioned_models": {"config": {"full_refresh": True}}}}).success
    refreshed = {row[:3]: row[3] for row in query(fresh_db, stamps)}
    assert refreshed.keys() == before.keys() and all(refreshed[key] != one_day[key] for key in before)

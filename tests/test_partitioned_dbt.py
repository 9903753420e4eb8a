"""The daily-partitioned dbt models (tag `partitioned`, docs/PARTITIONED_DBT.md) through Dagster: a
partition reports the rows it wrote; a run for one tenant (var `tenants`) rewrites that tenant's
rows only. (Partitions run day by day equal a full rebuild: tests/test_downloads_incremental.py,
tests/test_attribution.py.)"""

import json
from datetime import date, timedelta

import dagster as dg
import psycopg

from assets.dbt import PARTITIONED_TAG, build_partitioned_dbt_assets, dbt_manifest, dbt_resource, rows_written
from assets.ingestion.rss_ingest import ingest_rss
from assets.run_tags import dbt_tenant_tags
from assets.ingestion.user_agents import read_patterns, store_patterns
from resources.warehouse import WarehouseResource, warehouse_at
from simulator.logs import generate_logs
from tests.conftest import UA_PATTERNS, query
from tests.test_downloads_incremental import dbt_build, load_days
from tests.test_rss_ingest import sources_for

DAYS = [date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3)]


def test_a_partition_through_dagster_reports_the_rows_it_wrote(fresh_db, simulator, truth, tmp_path):
    ingest_rss(warehouse_at(fresh_db), sources_for(truth), batch_id="rss")
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        store_patterns(conn, read_patterns(UA_PATTERNS), "t")
    landing = tmp_path / "landing"
    generate_logs(truth, landing, DAYS[:2], seed=9, listeners_per_tenant=30)
    load_days(fresh_db, landing, set(DAYS[:2]))
    target = str(tmp_path / "target")
    dbt_build(fresh_db, target, "--select", "+fct_downloads", "+dim_podcasts", "--indirect-selection", "cautious")

    by_tenant = dg.AssetKey(["marts", "fct_downloads_daily_by_tenant"])
    by_episode = dg.AssetKey(["marts", "fct_downloads_daily_by_episode"])
    result = dg.materialize(
        [build_partitioned_dbt_assets()], selection=[by_tenant, by_episode], partition_key=DAYS[1].isoformat(),
        resources={"warehouse": WarehouseResource(database_url=fresh_db), "dbt": dbt_resource()},
    )
    assert result.success
    counts = {event.asset_key: event.step_materialization_data.materialization.metadata["dagster/row_count"].value
              for event in result.get_asset_materialization_events()}
    stored = dict(query(fresh_db, "select 'tenant', count(*) from marts.fct_downloads_daily_by_tenant "
                                  "union all select 'episode', count(*) from marts.fct_downloads_daily_by_episode"))
    # Only that day was built, and its row counts are what dbt wrote, not counted afterwards.
    assert query(fresh_db, "select distinct download_date from marts.fct_downloads_daily_by_episode") == [(DAYS[1],)]
    assert counts == {by_tenant: stored["tenant"], by_episode: stored["episode"]} and stored["episode"] > 10

    # A range of partitions is one run (as a backfill or the demo runs it): both days are built,
    # and what it wrote over the range is reported, not as one partition's row count.
    ranged = dg.materialize(
        [build_partitioned_dbt_assets()], selection=[by_tenant],
        tags={"dagster/asset_partition_range_start": DAYS[0].isoformat(),
              "dagster/asset_partition_range_end": DAYS[1].isoformat()},
        resources={"warehouse": WarehouseResource(database_url=fresh_db), "dbt": dbt_resource()},
    )
    assert ranged.success
    written = {event.partition: dict(event.step_materialization_data.materialization.metadata)
               for event in ranged.get_asset_materialization_events()}
    tenant_days = query(fresh_db, "select download_date, count(*) from marts.fct_downloads_daily_by_tenant group by 1")
    assert set(written) == {DAYS[0].isoformat(), DAYS[1].isoformat()} and {day for day, _ in tenant_days} == set(DAYS[:2])
    assert all(metadata["rows_written"].value == sum(n for _, n in tenant_days) and "dagster/row_count" not in metadata
               for metadata in written.values())

    # A run for one tenant cannot be a full refresh (that recreates every tenant's tables), and the
    # tenant comes from the run tag only: both are refused before dbt starts, and nothing changes.
    before = query(fresh_db, "select count(*), sum(downloads), max(counted_at) from marts.fct_downloads_daily_by_tenant")
    tenant = query(fresh_db, "select min(tenant_id) from marts.fct_downloads_daily_by_tenant")[0][0]
    for tags, config, refusal in (
            (dbt_tenant_tags(tenant), {"full_refresh": True}, "a full refresh rebuilds every tenant"),
            ({}, {"vars": {"tenants": [tenant]}}, "the dbt var `tenants` comes from the run tag")):
        refused = dg.materialize(
            [build_partitioned_dbt_assets()], selection=[by_tenant], partition_key=DAYS[1].isoformat(), tags=tags,
            run_config={"ops": {"dbt_partitioned_models": {"config": config}}}, raise_on_error=False,
            resources={"warehouse": WarehouseResource(database_url=fresh_db), "dbt": dbt_resource()},
        )
        failures = [e.step_failure_data.error.message for e in refused.all_events if e.is_step_failure]
        assert not refused.success and len(failures) == 1 and refusal in failures[0], failures
    assert query(fresh_db, "select count(*), sum(downloads), max(counted_at) from marts.fct_downloads_daily_by_tenant") == before


def test_rows_written_reads_the_adapter_response():
    """As dbt-core 1.11 sends them: the model's result event with the response's message, and
    the node's finish event with the whole response (its numbers as floats)."""
    result = {"info": {"name": "LogModelResult"},
              "data": {"node_info": {"materialized": "incremental"}, "status": "INSERT 0 250"}}
    table = {"info": {"name": "LogModelResult"}, "data": {"node_info": {"materialized": "table"}, "status": "SELECT 3"}}
    finished = {"info": {"name": "NodeFinished"},
                "data": {"node_info": {"materialized": "incremental"},
                         "run_result": {"adapter_response": {"_message": "INSERT 0 42", "code": "INSERT", "rows_affected": 42.0}}}}
    view = {"info": {"name": "LogModelResult"}, "data": {"node_info": {"materialized": "view"}, "status": "CREATE VIEW"}}
    assert (rows_written(result), rows_written(table), rows_written(finished)) == (250, 3, 42)
    assert isinstance(rows_written(finished), int)
    assert rows_written(view) is None and rows_written({"data": {}}) is None


def partitioned_tables() -> list[str]:
    """Every table of a model tagged `partitioned` (day-partitioned, or rebuilt whole in each
    partitioned run), as `schema.name`."""
    return sorted(f"{node['config']['schema']}.{node['name']}" for node in dbt_manifest()["nodes"].values()
                  if node["resource_type"] == "model" and PARTITIONED_TAG in node["tags"]
                  and node["config"]["materialized"] != "view")


def tenant_rows(url: str, table: str) -> dict[str, tuple[str, frozenset]]:
    """Per tenant: a hash of the table's rows (in order; `counted_at`, the time of the build, left
    out) and the row versions (`xmin`) that hold them."""
    rows = query(url, f"""
        select tenant_id, md5(string_agg((to_jsonb(t) - 'counted_at')::text, '|' order by (to_jsonb(t) - 'counted_at')::text)),
               array_agg(distinct xmin::text)
        from {table} as t group by tenant_id""")
    return {tenant: (digest, frozenset(versions)) for tenant, digest, versions in rows}


def test_a_run_for_one_tenant_rewrites_that_tenants_rows_only(fresh_db, simulator, truth, tmp_path):
    """Three tenants' logs over three days, every model built; then one partitioned run over the
    last two days for one tenant (`tenants`, as a per-tenant backfill passes it): that tenant's rows
    of every partitioned model are written again with the same content (the seed of its windows
    read from the day before, its agents, sizes and screen rebuilt), and no row of another tenant
    is touched."""
    ingest_rss(warehouse_at(fresh_db), sources_for(truth), batch_id="rss")
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        store_patterns(conn, read_patterns(UA_PATTERNS), "t")
    landing = tmp_path / "landing"
    generate_logs(truth, landing, DAYS, seed=9, listeners_per_tenant=30)
    load_days(fresh_db, landing, set(DAYS))
    target = str(tmp_path / "target")
    dbt_build(fresh_db, target, "--select", "+tag:partitioned", "--indirect-selection", "cautious")
    tables = partitioned_tables()
    before = {table: tenant_rows(fresh_db, table) for table in tables}
    tenants = sorted(before["marts.fct_downloads"])
    assert len(tenants) >= 2, tenants
    tenant, others = tenants[0], tenants[1:]

    window = {"min_date": DAYS[1].isoformat(), "max_date": (DAYS[-1] + timedelta(days=1)).isoformat(),
              "tenants": [tenant]}
    dbt_build(fresh_db, target, "--select", "tag:partitioned", "--indirect-selection", "cautious", "--vars", json.dumps(window))
    after = {table: tenant_rows(fresh_db, table) for table in tables}

    for table in tables:
        for other in others:
            assert after[table].get(other) == before[table].get(other), (table, other)
        assert after[table].get(tenant, (None,))[0] == before[table].get(tenant, (None,))[0], table
    # The tenant's rows were rewritten (new row versions) in the request-level chain, the facts and
    # the tables rebuilt whole, and its first day, outside the window, was left as it was.
    for table in ("intermediate.int_listener_requests_screened", "intermediate.int_download_windows",
                  "marts.fct_downloads", "marts.fct_downloads_daily_by_tenant",
                  "intermediate.int_user_agents_classified", "intermediate.int_media_sizes"):
        assert after[table][tenant][1] - before[table][tenant][1], table
    first_day = query(fresh_db, "select array_agg(distinct xmin::text) from marts.fct_downloads "
                                "where tenant_id = %s and download_date = %s", (tenant, DAYS[0]))[0][0]
    assert first_day and set(first_day) <= before["marts.fct_downloads"][tenant][1]

"""Quality gates end to end: the simulator's defect modes reach raw through the real RSS poll, the
GX suites catch each one in PostgreSQL, the failed blocking check stops the assets downstream
(dbt models and Python exports, in a later run too) with its reason, and the rest goes on."""

import functools

import dagster as dg
import psycopg
import pytest
import yaml

from assets.dbt import build_dbt_assets, dbt_resource
from assets.ingestion.rss import rss_feeds
from assets.ingestion.user_agents import user_agent_patterns
from assets.quality import EXPORTS, sla_status
from pipelines.checks.quality import QUALITY_CHECKS, SUITES
from assets.quality_gate import gated_keys
from resources.http import HttpResource
from resources.warehouse import WarehouseResource
from simulator.network import build_network
from simulator.server import SimulatorServer
from tests.conftest import query

RSS_KEYS = [dg.AssetKey(["raw", t]) for t in ("rss_feed_fetches", "rss_podcasts", "rss_episodes")] + [
    dg.AssetKey(["quarantine", t]) for t in ("rss_feeds", "rss_episodes")]
UA_KEY = dg.AssetKey(["raw", "user_agent_patterns"])
DBT_KEYS = [dg.AssetKey(k) for k in (["staging", "stg_rss__episodes"], ["staging", "stg_rss__podcasts"],
                                     ["marts", "dim_podcasts"], ["staging", "stg_reference__user_agent_patterns"])]
# downstream of raw/rss_episodes; stg_rss__podcasts reads raw/rss_podcasts only and goes on
AFFECTED = {"staging/stg_rss__episodes", "marts/dim_podcasts", "exports/dim_podcasts"}
EXPORT = dg.AssetKey(["exports", "dim_podcasts"])
SLA = dg.AssetKey(["marts", "sla_status"])

# defect kind -> the rule of raw.rss_episodes' suite that must fail
DEFECTS = {
    "nulls": "not_null(enclosure_type)",
    "duplicates": "compound_columns_unique(tenant_id,feed_url,enclosure_url)",
    "out_of_range": "between(duration_seconds)",
    "late_data": "not_late(published_at)",
    "schema_drift": "quarantined_share(quarantine.rss_episodes)",
}


@pytest.fixture(scope="module")
def small_network():
    network = build_network(seed=11, tenants=2, shows_per_tenant=2, episodes_per_show=(6, 9),
                            feed_defects=False, item_defect_rate=0.0)
    with SimulatorServer(network, hang_seconds=2.0) as server:
        yield network, server


@pytest.fixture
def world(small_network, fresh_db, tmp_path):
    network, server = small_network
    sources = tmp_path / "sources.yaml"
    feeds = [{"tenant_id": s.tenant_id, "url": server.base_url + s.path} for s in network.shows]
    sources.write_text(yaml.safe_dump({"rss": {"feeds": feeds, "allow_private_hosts": True, "timeout_seconds": 2,
                                               "max_attempts": 2}}))
    url = fresh_db
    with dg.instance_for_test() as instance:
        yield {"url": url, "server": server, "show": network.shows[0], "sources": str(sources), "instance": instance}
    for show in network.shows:
        server.set_quality_defect(show, None)
        show.feed_defect = None


ASSETS = [rss_feeds, user_agent_patterns, build_dbt_assets(), *EXPORTS, sla_status, *QUALITY_CHECKS]


def resources(world) -> dict:
    return {"warehouse": WarehouseResource(database_url=world["url"]), "http": HttpResource(allow_private_hosts=True),
            "dbt": dbt_resource()}


def run(world, selection, checks=(), dbt_tests=False) -> dg.ExecuteInProcessResult:
    """Materialize `selection` with the given checks (and the dbt tests of selected models)."""
    assets = dg.AssetSelection.assets(*selection)
    return dg.materialize(
        ASSETS, selection=(assets if dbt_tests else assets.without_checks()) | dg.AssetSelection.checks(*checks),
        instance=world["instance"], resources=resources(world),
        run_config={"ops": {"rss_feeds": {"config": {"sources_file": world["sources"]}}}} if RSS_KEYS[0] in selection
        else None,
        raise_on_error=False,
    )


@functools.cache
def asset_graph():
    """The code location's asset graph, as the gate sees it in a deployed run."""
    from pipelines.definitions import defs

    return defs.resolve_asset_graph()


def ingest(world, keys, checked=()):
    """Materialize `keys`, with the GX checks of the raw tables in `checked`."""
    return run(world, keys, [dg.AssetCheckKey(k, SUITES[k.path[-1]].check_name) for k in checked])


CHECKED = [dg.AssetKey(["raw", "rss_episodes"]), dg.AssetKey(["raw", "rss_podcasts"])]


def materialized(result) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


@pytest.mark.parametrize("defect", list(DEFECTS))
def test_each_defect_stops_what_depends_on_it_and_nothing_else(world, defect):
    if defect == "late_data":  # late: items that appear after the feed was first stored
        first = ingest(world, RSS_KEYS)
        assert first.success, [e.message for e in first.all_events if e.is_failure]

    world["server"].set_quality_defect(world["show"], defect)
    second = ingest(world, RSS_KEYS, CHECKED)
    assert not second.success  # Dagster's own blocking: the failed check fails the run
    evaluations = {c.asset_check_key.name: c for c in second.get_asset_check_evaluations()}
    episodes = evaluations["rss_episodes_expectations"]
    assert not episodes.passed
    assert DEFECTS[defect] in episodes.description
    assert DEFECTS[defect] in episodes.metadata["failed_expectations"].value
    assert world["show"].tenant_id in episodes.metadata["failing_tenants"].value
    assert evaluations["rss_podcasts_expectations"].passed

    # ops.quality_results: every rule per tenant; the defective tenant fails the rule and scores lower.
    results = {(t, r): (score, passed) for t, r, score, passed in query(world["url"], """
        select tenant_id, rule, score, passed from ops.quality_results where asset = 'raw/rss_episodes'""")}
    tenants = {t for t, _ in results}
    other = next(t for t in tenants if t != world["show"].tenant_id)
    assert results[(world["show"].tenant_id, DEFECTS[defect])][1] is False
    assert results[(other, DEFECTS[defect])][1] is True
    summary = "rss_episodes_expectations"  # the check's own row: the asset's score per tenant
    assert results[(world["show"].tenant_id, summary)][0] < results[(other, summary)][0]
    assert len(results) == len(tenants) * (len(SUITES["rss_episodes"].rules()) + 1)

    # A later run, as automation or a schedule would start it: the gate decides per lineage.
    gated = gated_keys(world["instance"], asset_graph(), [*DBT_KEYS, EXPORT, SLA])
    assert {k.to_user_string() for k in gated} == AFFECTED
    assert {b.check for b in gated[EXPORT]} == {"rss_episodes_expectations"}

    later = run(world, [EXPORT, SLA])
    assert materialized(later) == {"marts/sla_status"}
    failure = next(e for e in later.all_events if e.is_step_failure)
    assert failure.step_key == "exports__dim_podcasts"
    meta = failure.step_failure_data.user_failure_data.metadata
    assert DEFECTS[defect] in meta["blocked_reason"].value
    sla = dict(query(world["url"], "select asset || '@' || tenant_id, status from marts.sla_status"))
    assert sla[f"raw/rss_episodes@{world['show'].tenant_id}"] == "failing"
    assert sla[f"raw/rss_episodes@{other}"] == "failing"  # the table's check failed for both: it gates as one
    assert {s for k, s in sla.items() if k.startswith("marts/dim_podcasts@")} == {"blocked"}


def test_dbt_leaves_gated_models_out_and_builds_the_rest(world):
    first = ingest(world, [*RSS_KEYS, UA_KEY], [*CHECKED, UA_KEY])
    assert first.success and all(c.passed for c in first.get_asset_check_evaluations())
    world["server"].set_quality_defect(world["show"], "out_of_range")
    assert not ingest(world, RSS_KEYS, CHECKED).success

    later = run(world, [*DBT_KEYS, EXPORT], dbt_tests=True)
    assert materialized(later) == {"staging/stg_reference__user_agent_patterns", "staging/stg_rss__podcasts"}
    observed = {e.asset_key.to_user_string(): e for e in later.all_events if e.event_type_value == "ASSET_OBSERVATION"}
    assert set(observed) == {"staging/stg_rss__episodes", "marts/dim_podcasts"}
    reason = observed["marts/dim_podcasts"].event_specific_data.asset_observation.metadata["blocked_reason"].value
    assert "between(duration_seconds)" in reason
    patterns = query(world["url"], "select count(*) from raw.user_agent_patterns")[0][0]
    assert query(world["url"], "select count(*) from staging.stg_reference__user_agent_patterns")[0][0] == patterns > 0
    assert query(world["url"], "select to_regclass('marts.dim_podcasts')")[0][0] is None

    # The source recovers: the check passes again and the gate opens.
    world["server"].set_quality_defect(world["show"], None)
    assert ingest(world, RSS_KEYS, CHECKED).success
    assert gated_keys(world["instance"], asset_graph(), [*DBT_KEYS, EXPORT]) == {}

    # A failing dbt test: a podcast row goes missing, so an episode points at no podcast. In the
    # same run Dagster skips the Python export; in a later run the gate stops it, naming the test.
    with psycopg.connect(world["url"]) as conn:
        conn.execute("delete from raw.rss_podcasts where feed_url = %s",
                     (world["server"].base_url + world["show"].path,))
    same_run = run(world, [*DBT_KEYS[:3], EXPORT], dbt_tests=True)
    assert not same_run.success and not materialized(same_run) & {"marts/dim_podcasts", "exports/dim_podcasts"}
    dbt_checks = {c.asset_check_key.name: c.passed for c in same_run.get_asset_check_evaluations()}
    failed_test = "relationships_stg_rss__episodes_podcast_id__podcast_id__ref_stg_rss__podcasts_"
    assert dbt_checks[failed_test] is False
    assert "exports__dim_podcasts" not in {e.step_key for e in same_run.all_events if e.event_type_value == "STEP_START"}
    later = run(world, [EXPORT])
    failure = next(e for e in later.all_events if e.is_step_failure)
    blocked_by = failure.step_failure_data.user_failure_data.metadata["blocked_by"].value
    assert {(b["asset"], b["check"]) for b in blocked_by} == {("staging/stg_rss__episodes", failed_test)}


def test_a_stalled_source_turns_its_freshness_red(world, small_network):
    network, server = small_network
    assert ingest(world, RSS_KEYS).success
    # The polls so far were three hours ago; since then one tenant's feed host answers 500.
    with psycopg.connect(world["url"]) as conn:
        conn.execute("update raw.rss_feed_fetches set fetched_at = fetched_at - interval '3 hours'")
    stalled = world["show"].tenant_id
    for show in network.shows:
        if show.tenant_id == stalled:
            show.feed_defect = "server_error"
    assert ingest(world, RSS_KEYS).success
    assert run(world, [SLA]).success

    rows = {(a, t): (lag, limit, ok, status) for a, t, lag, limit, ok, status in query(world["url"], """
        select asset, tenant_id, freshness_lag_seconds, freshness_limit_seconds, freshness_ok, status
        from marts.sla_status""")}
    other = next(t for t in network.tenants if t != stalled)
    for table in ("rss_episodes", "rss_podcasts", "rss_feed_fetches"):
        lag, limit, ok, status = rows[(f"raw/{table}", stalled)]
        assert (ok, status) == (False, "stale") and 3 * 3600 - 120 < lag < 3 * 3600 + 120 and limit < lag
        lag, _, ok, status = rows[(f"raw/{table}", other)]
        assert (ok, status) == (True, "ok") and lag < 120
    # Every mart has a row; never built here, so no lag and stale.
    marts = {a: v for (a, _), v in rows.items() if a.startswith("marts/")}
    assert "marts/dim_podcasts" in marts and all(v[0] is None and v[3] == "stale" for v in marts.values())
    assert query(world["url"], "select count(*) from ops.sla_status_history")[0][0] == len(rows)


def test_what_leaves_the_platform_waits_for_marts_that_are_current(world):
    """A model build that fails leaves its mart on the previous run's rows with no failed check:
    the report gate (and exports, and the SLA) name it; so does a model older than the raw data
    that has arrived since. Both clear once the models are built again."""
    from assets.gates import require_current_upstream

    podcasts = dg.AssetKey(["marts", "dim_podcasts"])
    models = [dg.AssetKey(["staging", "stg_rss__episodes"]), dg.AssetKey(["staging", "stg_rss__podcasts"]), podcasts]

    def gate():
        try:
            require_current_upstream(world["instance"], asset_graph(), [podcasts], "the test report")
        except dg.Failure as failure:
            return {(b["asset"], b["check"]) for b in failure.metadata["blocked_by"].value}, failure.description
        return set(), ""

    assert run(world, [*RSS_KEYS, *models]).success
    assert gate() == (set(), "")
    rows = query(world["url"], "select count(*) from marts.dim_podcasts")[0][0]

    with psycopg.connect(world["url"], autocommit=True) as conn:  # the next build of the staging view fails
        conn.execute("alter table raw.rss_podcasts rename column title to title_gone")
    try:
        failed = run(world, models)
        assert not failed.success
    finally:
        with psycopg.connect(world["url"], autocommit=True) as conn:
            conn.execute("alter table raw.rss_podcasts rename column title_gone to title")
    assert query(world["url"], "select count(*) from marts.dim_podcasts")[0][0] == rows  # stale rows, no error
    blockers, description = gate()
    assert ("staging/stg_rss__podcasts", "latest_build_failed") in blockers
    assert ("marts/dim_podcasts", "latest_build_failed") in blockers
    assert "marts/dim_podcasts is not current" in description and failed.run_id[:8] in description
    assert not [k for k, check in blockers if check != "latest_build_failed"]

    # Exports and the SLA say the same.
    export = run(world, [EXPORT])
    reason = next(e for e in export.all_events if e.is_step_failure).step_failure_data.user_failure_data
    assert "staging/stg_rss__podcasts is not current" in reason.description
    assert run(world, [SLA]).success
    sla = query(world["url"], "select status, blocked_by from marts.sla_status where asset = 'marts/dim_podcasts'")
    assert sla and all(status == "blocked" and "stg_rss__podcasts is not current" in by for status, by in sla)

    # Built again: current. A poll that stores nothing new keeps the sources' data versions, so
    # the models stay current; a poll that stores a changed item is news no model has taken in.
    assert run(world, models).success
    assert gate() == (set(), "")
    assert ingest(world, RSS_KEYS).success
    assert gate() == (set(), "")
    episode, title = world["show"].episodes[0], world["show"].episodes[0].title
    episode.title = "A title changed after the last build"
    world["server"].change([world["show"]])
    try:
        assert ingest(world, RSS_KEYS).success
    finally:
        episode.title = title
    blockers, description = gate()
    assert ("staging/stg_rss__episodes", "older_than_its_input") in blockers
    assert {check for _, check in blockers} == {"older_than_its_input"}
    assert "built before raw/rss_episodes was updated" in description
    assert run(world, models).success
    assert gate() == (set(), "")

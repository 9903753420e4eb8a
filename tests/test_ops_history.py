"""Bounded growth of the ops history tables: the writers themselves (the SLA asset, a quality
check) delete what is older than `PODCAST_OPS_HISTORY_DAYS` when they append, and keep the rest."""

import dagster as dg
import psycopg
import pytest

from assets.quality import sla_status
from pipelines.checks.quality import SUITES, evaluate
from resources import settings as settings_module
from resources.warehouse import WarehouseResource, warehouse_at
from tests.conftest import query


@pytest.fixture
def thirty_days(monkeypatch):
    monkeypatch.setenv("PODCAST_OPS_HISTORY_DAYS", "30")
    settings_module.get_settings.cache_clear()
    yield
    monkeypatch.undo()
    settings_module.get_settings.cache_clear()


def test_the_sla_snapshot_prunes_history_older_than_the_retention(fresh_db, thirty_days):
    with psycopg.connect(fresh_db) as conn:
        for asset, age in (("raw/forty_days_old", 40), ("raw/twenty_nine_days_old", 29)):
            conn.execute("insert into ops.sla_status_history (asset, tenant_id, layer, checks_failed, status, snapshot_at) "
                         "values (%s, 'acme', 'raw', 0, 'ok', now() - make_interval(days => %s))", (asset, age))

    with dg.instance_for_test() as instance:
        result = dg.materialize([sla_status], instance=instance,
                                resources={"warehouse": WarehouseResource(database_url=fresh_db)})
    assert result.success
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["history_rows_pruned"].value == 1

    history = dict(query(fresh_db, "select asset, count(*) from ops.sla_status_history group by asset"))
    assert "raw/forty_days_old" not in history
    assert history["raw/twenty_nine_days_old"] == 1
    snapshot = query(fresh_db, "select count(*) from marts.sla_status")[0][0]
    assert snapshot > 10  # every raw asset and mart of the code location
    assert sum(history.values()) == snapshot + 1


def test_a_quality_check_prunes_old_results_but_keeps_each_rules_latest(fresh_db, thirty_days):
    # (rule, days ago): x is superseded by a newer result that is itself old (the rule has not run
    # since: its latest stays); y's old result is superseded by a recent one; z is all recent.
    seeded = [("x", 40), ("x", 35), ("y", 40), ("y", 1), ("z", 10), ("z", 5)]
    with psycopg.connect(fresh_db) as conn:
        for rule, age in seeded:
            conn.execute("insert into ops.quality_results (asset, tenant_id, check_name, rule, score, passed, evaluated_at) "
                         "values ('raw/rss_podcasts', 'acme', 'rss_podcasts_expectations', %s, 1, true, "
                         "now() - make_interval(days => %s))", (rule, age))

    suite = SUITES["rss_podcasts"]
    evaluate(warehouse_at(fresh_db), suite, run_id="retention-run")

    kept = query(fresh_db, "select rule, extract(day from now() - evaluated_at)::int from ops.quality_results "
                           "where tenant_id = 'acme' order by rule, evaluated_at")
    assert kept == [("x", 35), ("y", 1), ("z", 10), ("z", 5)]
    # the run's own results were appended (the empty table: one row per rule and the summary)
    written = query(fresh_db, "select count(*) from ops.quality_results where run_id = 'retention-run'")[0][0]
    assert written == len(suite.rules()) + 1

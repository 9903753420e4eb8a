"""The metrics endpoint's numbers, computed from stored outcomes on a real warehouse: success
rates from every poll, errors by reason, freshness in the data's own time, histograms of
recorded report, delivery and chart timings, and the timing of the shipped dashboards' SQL."""

from datetime import datetime, timedelta, timezone

import dagster as dg
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.exposition import generate_latest

from pipelines.metrics import (DELIVERY_BUCKETS, GENERATION_BUCKETS, METRIC_TYPES, build_registry, dashboard_queries,
                               grafana_sql)
from resources.timings import Timing, record_timings
from resources.warehouse import warehouse_at

NOW = datetime.now(timezone.utc).replace(microsecond=0)


@dg.asset(key=["raw", "buzzsprout_episodes"])
def buzzsprout_episodes():
    return None


@dg.asset(key=["raw", "buzzsprout_episode_downloads_daily"])
def buzzsprout_downloads():
    raise ValueError("the API is down")


def scrape(url: str, instance=None, assets=()) -> dict:
    """{sample name: [(labels, value)]} of one scrape."""
    instance = instance or dg.DagsterInstance.ephemeral()
    graph = dg.Definitions(assets=list(assets)).resolve_asset_graph()
    registry = build_registry(url, lambda: instance, lambda: graph, now=lambda: NOW)
    out: dict[str, list] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def value(samples: dict, name: str, **labels) -> float:
    [v] = [v for got, v in samples.get(name, []) if all(got.get(k) == w for k, w in labels.items())]
    return v


def buckets(samples: dict, name: str, **labels) -> dict[str, float]:
    return {got["le"]: v for got, v in samples[f"{name}_bucket"] if all(got.get(k) == w for k, w in labels.items())}


@pytest.fixture
def polled(fresh_db):
    """36 polls in the last day, 5 of them failed (3 timeouts, 2 http_500), and one old failure."""
    rows = [("north", "https://a/feed", NOW - timedelta(minutes=15 * i), "fetched", None, 120.0) for i in range(31)]
    rows += [("north", "https://b/feed", NOW - timedelta(minutes=5 + i), "error", "timeout", 10_000.0) for i in range(3)]
    rows += [("south", "https://c/feed", NOW - timedelta(minutes=7 + i), "error", "http_500", 300.0) for i in range(2)]
    rows += [("south", "https://c/feed", NOW - timedelta(days=3), "error", "http_500", 300.0)]
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.cursor().executemany(
            "insert into raw.rss_feed_fetches (tenant_id, feed_url, fetched_at, outcome, error_code, duration_ms) "
            "values (%s, %s, %s, %s, %s, %s)", rows)
    return fresh_db


def test_a_failed_poll_lowers_the_rss_success_rate_and_counts_as_an_error(polled):
    with psycopg.connect(polled, autocommit=True) as conn:
        conn.execute("insert into quarantine.rss_episodes (tenant_id, feed_url, item_key, reason_code) values "
                     "('north', 'https://a/feed', 'i1', 'missing_enclosure'), "
                     "('north', 'https://a/feed', 'i2', 'missing_enclosure'), ('north', 'https://a/feed', 'i3', 'missing_title')")
        conn.execute("insert into quarantine.platform_records (platform, tenant_id, source_id, stream, record_key, "
                     "reason_code) values ('megaphone', 'north', 'n1', 'exports', 'k1', 'not_json')")
        conn.execute("insert into quarantine.campaign_records (tenant_id, source, record_key, reason_code) values "
                     "('north', 'insertion_order', 'io.csv:3', 'invalid_date'), ('north', 'pixel', 'p:1', 'invalid_ip')")
        conn.execute("insert into ops.listener_log_files (file_key, tenant_id, log_date, format, size_bytes, sha256, "
                     "rows_loaded, rows_quarantined, loaded_at) values "
                     "('north/a.log', 'north', current_date, 'clf', 1, 'x', 990, 10, now()), "
                     "('north/b.log', 'north', current_date - 9, 'clf', 1, 'y', 5, 995, now() - interval '9 days')")
    samples = scrape(polled)
    assert value(samples, "ingestion_success_rate", source="rss") == pytest.approx(31 / 36)
    assert value(samples, "ingestion_success_rate", source="listener_logs") == pytest.approx(0.99)
    errors = {(labels["source"], labels["reason"]): v for labels, v in samples["ingestion_errors_total"]}
    assert errors == {("rss", "timeout"): 3, ("rss", "http_500"): 3, ("rss", "missing_enclosure"): 2,
                      ("rss", "missing_title"): 1, ("megaphone", "not_json"): 1,
                      ("sponsorships", "invalid_date"): 1, ("conversions", "invalid_ip"): 1}
    polls = buckets(samples, "feed_poll_duration_seconds")
    assert value(samples, "feed_poll_duration_seconds_count") == 37
    assert polls["0.1"] == 0 and polls["0.25"] == 31 and polls["0.5"] == 34 and polls["10.0"] == 37
    assert value(samples, "feed_poll_duration_seconds_sum") == pytest.approx((31 * 120 + 3 * 10_000 + 3 * 300) / 1000)
    # Freshness per source and tenant: north's newest answered poll is now; south never got one.
    assert value(samples, "ingestion_latency_ms", source="rss", tenant="north") == 0
    assert not [1 for labels, _ in samples["ingestion_latency_ms"] if labels["tenant"] == "south"]


def test_sync_outcomes_rate_the_platform_sources(fresh_db):
    instance = dg.DagsterInstance.ephemeral()
    assert dg.materialize([buzzsprout_episodes], instance=instance).success
    assert dg.materialize([buzzsprout_episodes], instance=instance).success
    assert not dg.materialize([buzzsprout_downloads], instance=instance, raise_on_error=False).success
    samples = scrape(fresh_db, instance, [buzzsprout_episodes, buzzsprout_downloads])
    assert value(samples, "ingestion_success_rate", source="buzzsprout") == pytest.approx(2 / 3)
    assert value(samples, "task_success_rate", job="__ephemeral_asset_job__") == pytest.approx(2 / 3)
    assert value(samples, "task_execution_duration_seconds", job="__ephemeral_asset_job__") >= 0


def test_report_generation_and_delivery_are_histograms_of_recorded_timings(fresh_db):
    record_timings(warehouse_at(fresh_db), [
        *(Timing("report_generation", s, "success", "north", "cmp-1", "campaign") for s in (0.4, 0.8, 3.0, 45.0)),
        Timing("report_generation", 0.05, "reused", "north", "cmp-1", "campaign"),
        Timing("report_generation", 2.0, "failure", "north", "cmp-2", "campaign"),
        Timing("report_generation", 7.0, "success", "north", "sp-1", "sponsor"),
        Timing("roi_calculation", 0.20, "success", "north", "cmp-1", "campaign"),
        Timing("roi_calculation", 0.03, "success", "north", "cmp-1", "campaign"),   # the latest one is served
        Timing("report_delivery", 0.3, "success", "north", "r1", "email"),
        Timing("report_delivery", 12.0, "success", "north", "r1", "webhook"),
        Timing("report_delivery", 31.0, "failure", "north", "r2", "webhook"),
        Timing("delivery_attempt", 0.3, "success", "north", "r1", "report_email"),
        Timing("delivery_attempt", 5.0, "failure", "north", "r1", "report_webhook"),
        Timing("delivery_attempt", 7.0, "success", "north", "r1", "report_webhook"),
        *(Timing("delivery_attempt", 10.0, "failure", "north", "r2", "report_webhook") for _ in range(3)),
        Timing("chart_render", 0.02, "success", "north", "downloads_over_time", "campaign"),
        Timing("chart_render", 0.3, "success", "north", "downloads_over_time", "campaign"),
    ])
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("insert into reports.reports (report_id, format, scope, tenant_id, template, file_url, size_bytes, "
                     "checksum_sha256, content_sha256, generated_at, expires_at) values "
                     "('r1', 'pdf', 'campaign', 'north', 'standard', 'f', 250000, 'c', 'c', now(), now()), "
                     "('r1', 'html', 'campaign', 'north', 'standard', 'f', 40000, 'c', 'c', now(), now()), "
                     "('r2', 'pdf', 'campaign', 'north', 'standard', 'f', 2500000, 'c', 'c', now(), now())")
    samples = scrape(fresh_db)
    generation = buckets(samples, "report_generation_duration_seconds", scope="campaign")
    assert list(generation) == [*(str(b) for b in GENERATION_BUCKETS), "+Inf"]
    assert generation["0.1"] == 1 and generation["0.5"] == 2 and generation["1.0"] == 3 and generation["5.0"] == 4
    assert generation["30.0"] == 4 and generation["60.0"] == 5 and generation["+Inf"] == 5
    assert value(samples, "report_generation_duration_seconds_count", scope="campaign") == 5  # the failure is not one
    assert value(samples, "report_generation_duration_seconds_sum", scope="campaign") == pytest.approx(49.25)
    assert value(samples, "report_generation_duration_seconds_count", scope="sponsor") == 1
    assert value(samples, "report_generation_success_rate", scope="campaign") == pytest.approx(5 / 6)
    assert value(samples, "roi_calculation_duration_seconds", tenant="north", campaign="cmp-1") == pytest.approx(0.03)
    delivery = buckets(samples, "report_delivery_latency_seconds", channel="webhook")
    assert list(delivery)[:-1] == [str(b) for b in DELIVERY_BUCKETS]
    assert delivery["10.0"] == 0 and delivery["30.0"] == 1 and delivery["+Inf"] == 1   # failed deliveries left out
    assert value(samples, "report_delivery_latency_seconds_count", channel="email") == 1
    assert value(samples, "integration_success_rate", integration="report_webhook") == pytest.approx(1 / 2)
    assert value(samples, "integration_success_rate", integration="report_email") == 1
    assert value(samples, "integration_error_rate", integration="report_webhook") == pytest.approx(4 / 5)
    assert value(samples, "integration_api_latency_seconds_count", integration="report_webhook") == 5
    sizes = buckets(samples, "report_file_size_bytes", format="pdf")
    assert sizes["100000"] == 0 and sizes["1000000"] == 1 and sizes["10000000"] == 2
    charts = buckets(samples, "chart_render_time_seconds", chart="downloads_over_time")
    assert charts["0.025"] == 1 and charts["0.25"] == 1 and charts["0.5"] == 2


def test_every_family_is_declared_and_typed(fresh_db):
    record_timings(warehouse_at(fresh_db), [Timing("report_generation", 1.0, "success", "north", "c", "campaign")])
    families = {f.name: f.type for f in text_string_to_metric_families(generate_latest(build_registry(
        fresh_db, dg.DagsterInstance.ephemeral, lambda: dg.Definitions().resolve_asset_graph())).decode())}
    assert set(families) <= set(METRIC_TYPES)
    assert all(METRIC_TYPES[name] == kind for name, kind in families.items()), families


def test_dashboard_sql_is_timed_per_panel_with_the_grafana_macros_filled(fresh_db):
    queries = dashboard_queries()
    assert queries and all(uid in {"pipeline-health", "business-metrics"} for uid, *_ in queries)
    statement = grafana_sql("select 1 from t where $__timeFilter(d::timestamp) and tenant_id in ($tenant) "
                            "and x > $__timeFrom()", NOW - timedelta(days=1), NOW, ["a", "o'b"])
    assert "$" not in statement and "(d::timestamp between '" in statement and "in ('a', 'o''b')" in statement
    samples = scrape(fresh_db)
    timed = {(labels["dashboard"], labels["panel"]) for labels, _ in samples["analytics_query_latency_seconds"]}
    # A bootstrapped warehouse without dbt marts: the panels on marts.sla_status (bootstrap) run and
    # are timed, the ones on dbt marts fail and are left out instead of served as zero.
    on_sla = {(uid, title) for uid, title, raw, _ in queries if "marts.sla_status" in raw and "join" not in raw}
    assert on_sla and on_sla <= timed
    assert all("marts.sla_status" in raw for uid, title, raw, _ in queries if (uid, title) in timed)

"""Prometheus metrics of the platform, read at each scrape from the warehouse and the Dagster
instance (nothing is kept in the exporter's memory but the last timing of the dashboards'
queries, so values survive restarts of any process). Served by `podcast-analytics metrics`
(Dagster has no Prometheus endpoint of its own); Prometheus scrapes it every 15 s.

Every metric, what it measures and where it comes from ("24 h": outcomes of the last 24 hours;
histograms count every recorded observation, so `rate()` and `histogram_quantile()` apply):

| metric | type | labels | meaning |
|---|---|---|---|
| `ingestion_success_rate` | gauge | source | 24 h. rss: share of feed polls that got an answer (200/304; a failed poll counts as a failure, `raw.rss_feed_fetches`); listener_logs: share of the log lines of files loaded that were accepted, not quarantined (`ops.listener_log_files`); every other source (platforms, sponsorships, conversions, user_agents): share of the finished runs that planned one of its raw assets and materialized it (a sync that failed leaves it planned, not materialized) |
| `ingestion_errors_total` | counter | source, reason | refused fetches and records as stored: every failed feed poll by its error code, every quarantined item, log line, API record, campaign record or user-agent pattern by its reason code |
| `ingestion_latency_ms` | gauge | source, tenant | freshness in the data's own time: now minus the newest accepted event of the source for the tenant (`assets.freshness.newest_event_times`: listener request time, answered feed poll, conversion time, metric day, ...) |
| `feed_poll_duration_seconds` | histogram | | time of every stored feed poll, retries included |
| `api_sync_duration_seconds` | gauge | platform | duration of the step of the platform's latest sync (longest of its streams) |
| `api_request_latency_seconds` | gauge | platform | mean time of one HTTP exchange (request sent to last body byte) in the platform's latest syncs: their `network_seconds` / `requests` |
| `processing_latency_seconds` | gauge | asset | from the newest raw materialization a mart used to the mart's build (`marts.sla_status`) |
| `attribution_match_rate` | gauge | tenant | share of conversions credited to a campaign under at least one model |
| `roi_calculation_duration_seconds` | gauge | tenant, campaign | time the campaign's latest report took to read its ROI figures (ROI by model, by placement, benchmarks, lift, daily performance) from the marts |
| `analytics_query_latency_seconds` | gauge | dashboard, panel | time the SQL of each shipped Grafana panel takes on the warehouse (the dashboard's default range, every tenant), measured at most once a minute |
| `aggregation_latency_seconds` | gauge | asset | dbt execution time of the latest build of each daily rollup model |
| `data_quality_score` | gauge | asset, tenant | the asset's latest data-quality score for the tenant (0-1) |
| `average_completion_rate` | gauge | tenant | download-weighted mean share of the episode's bytes a counted IAB download covered (`marts.fct_listener_engagement`) |
| `report_generation_duration_seconds` | histogram | scope | time of each report generation that completed (read, draw, render, store, register; a re-issued unchanged report included) |
| `report_generation_success_rate` | gauge | scope | 24 h: share of report generations that completed (a generation refused by a quality gate is not one) |
| `report_delivery_latency_seconds` | histogram | channel | time from the start of each successful delivery to its last attempt's end, retries and back-off included |
| `report_file_size_bytes` | histogram | format | size of every report file written (`reports.reports`) |
| `chart_render_time_seconds` | histogram | chart | time to draw each report chart (SVG and PNG) |
| `scheduled_task_accuracy_seconds` | gauge | schedule | how late the schedule's latest run started after its scheduled time |
| `task_execution_duration_seconds` | gauge | job | duration of the job's latest finished run |
| `task_success_rate` | gauge | job | 24 h: share of the job's finished runs that succeeded (canceled runs left out) |
| `integration_success_rate` | gauge | integration | 24 h: share of outbound deliveries (report email, report webhook, alert webhook) that succeeded in the end |
| `integration_error_rate` | gauge | integration | 24 h: share of delivery attempts that failed, retried ones included |
| `integration_api_latency_seconds` | histogram | integration | time of each delivery attempt (SMTP session, webhook POST) |
| `alert_delivery_latency_seconds` | histogram | alert | from the failure (run failed, check evaluated) to the alert webhook accepting the post |
| `sla_freshness_lag_seconds`, `sla_freshness_limit_seconds`, `sla_checks_failed`, `sla_blocked` | gauge | asset (tenant, layer) | the SLA snapshot (`marts.sla_status`) |

Timings of reports, charts, deliveries and alerts are recorded by those operations in
`ops.operation_timings` (`resources.timings.record_timings`).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry
from psycopg import sql


log = logging.getLogger(__name__)

# Every metric family the endpoint serves (counters gain `_total`, histograms `_bucket/_count/_sum`).
METRIC_TYPES = {
    "ingestion_success_rate": "gauge", "ingestion_errors": "counter", "ingestion_latency_ms": "gauge",
    "feed_poll_duration_seconds": "histogram", "api_sync_duration_seconds": "gauge",
    "api_request_latency_seconds": "gauge", "processing_latency_seconds": "gauge", "attribution_match_rate": "gauge",
    "ad_detection_accuracy": "gauge",
    "roi_calculation_duration_seconds": "gauge", "analytics_query_latency_seconds": "gauge",
    "aggregation_latency_seconds": "gauge", "data_quality_score": "gauge", "average_completion_rate": "gauge",
    "report_generation_duration_seconds": "histogram", "report_generation_success_rate": "gauge",
    "report_delivery_latency_seconds": "histogram", "report_file_size_bytes": "histogram",
    "chart_render_time_seconds": "histogram", "scheduled_task_accuracy_seconds": "gauge",
    "task_execution_duration_seconds": "gauge", "task_success_rate": "gauge", "integration_success_rate": "gauge",
    "integration_error_rate": "gauge", "integration_api_latency_seconds": "histogram",
    "alert_delivery_latency_seconds": "histogram", "sla_freshness_lag_seconds": "gauge",
    "sla_freshness_limit_seconds": "gauge", "sla_checks_failed": "gauge", "sla_blocked": "gauge",
}
METRIC_NAMES = tuple(METRIC_TYPES)
WINDOW = timedelta(hours=24)            # success and error rates look at the last day
RUN_WINDOW = timedelta(days=7)          # runs read for task and schedule metrics
POLL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
GENERATION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
DELIVERY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
CHART_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
ALERT_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
SIZE_BUCKETS = (1e3, 1e4, 1e5, 1e6, 1e7, 1e8)
ANALYTICS_INTERVAL_SECONDS = 60.0
ANALYTICS_TIMEOUT_MS = 10_000
PLATFORMS = ("buzzsprout", "transistor", "podbean", "simplecast", "spotify", "apple", "megaphone")
SOURCES = {"rss": "rss", "listener": "listener_logs", "user": "user_agents", "campaigns": "sponsorships",
           "sponsors": "sponsorships", "placements": "sponsorships", "attribution": "conversions"}
WAREHOUSE_RATED = ("rss", "listener_logs")  # sources whose success rate comes from stored outcomes
CAMPAIGN_SOURCES = {"sponsorship_api": "sponsorships", "insertion_order": "sponsorships"}  # else conversions
ROLLUP = re.compile(r"^(fct_.*_daily(_by_.*)?|int_.*_daily)$")
# The shipped dashboards: beside the code in a checkout, under the working directory in the image.
DASHBOARDS = next((p for p in (Path(__file__).resolve().parents[1] / "deploy" / "grafana" / "dashboards",
                               Path.cwd() / "deploy" / "grafana" / "dashboards") if p.is_dir()),
                  Path("deploy") / "grafana" / "dashboards")


def source_of(table: str) -> str:
    """The source a raw table comes from: `buzzsprout_episodes` -> buzzsprout, `rss_podcasts` -> rss."""
    first = table.split("_", 1)[0]
    return first if first in PLATFORMS else SOURCES.get(first, first)


# -- helpers -----------------------------------------------------------------------------------
def _histogram(conn, name: str, documentation: str, labels: list[str], source: str, buckets, params=()) -> \
        HistogramMetricFamily:
    """A histogram of every value `source` (a constant query giving `labels...`, `value`) returns."""
    label_columns = sql.SQL(", ").join(sql.Identifier(label) for label in labels)
    counts = sql.SQL(", ").join(sql.SQL("count(*) filter (where value <= {})").format(sql.Literal(b)) for b in buckets)
    query = sql.SQL("select {labels}{sep}{counts}, count(*), coalesce(sum(value), 0) from ({source}) as s "
                    "{group}").format(
        labels=label_columns, sep=sql.SQL(", ") if labels else sql.SQL(""), counts=counts, source=sql.SQL(source),
        group=sql.SQL("group by {} order by {}").format(label_columns, label_columns) if labels else sql.SQL(""))
    family = HistogramMetricFamily(name, documentation, labels=labels)
    for row in conn.execute(query, params):
        values, cumulative, (total, seconds) = row[:len(labels)], row[len(labels):-2], row[-2:]
        if total == 0:
            continue
        family.add_metric([str(v) for v in values],
                          [(_le(b), n) for b, n in zip(buckets, cumulative, strict=True)] + [("+Inf", total)],
                          float(seconds))
    return family


def _le(bound: float) -> str:
    return str(int(bound)) if bound >= 1000 else str(bound)


def _rate(successes: int, total: int) -> float | None:
    return None if not total else successes / total


GRAFANA_TIME_FILTER = re.compile(r"\$__timeFilter\(")
GRAFANA_RANGE = re.compile(r"^now-(\d+)([smhdw])$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def grafana_sql(raw: str, start: datetime, end: datetime, tenants: list[str]) -> str:
    """A panel's SQL as Grafana sends it: `$__timeFilter(x)`, `$__timeFrom()`, `$__timeTo()` for
    the range, `$tenant` / `${tenant}` for every tenant and `${tenant:regex}` as `.*` (the
    variable's "All")."""
    out, rest = [], raw
    while (match := GRAFANA_TIME_FILTER.search(rest)) is not None:
        depth, i = 1, match.end()
        while depth and i < len(rest):
            depth += {"(": 1, ")": -1}.get(rest[i], 0)
            i += 1
        expr = rest[match.end():i - 1]
        out.append(rest[:match.start()] + f"({expr} between '{start.isoformat()}' and '{end.isoformat()}')")
        rest = rest[i:]
    text = "".join(out) + rest
    text = text.replace("$__timeFrom()", f"'{start.isoformat()}'::timestamptz")
    text = text.replace("$__timeTo()", f"'{end.isoformat()}'::timestamptz")
    quoted = ", ".join("'" + t.replace("'", "''") + "'" for t in tenants) or "''"
    text = text.replace("${tenant:regex}", ".*")
    return re.sub(r"\$\{tenant(:[a-z]+)?\}|\$tenant\b", quoted, text)


def dashboard_queries(folder: Path = DASHBOARDS) -> list[tuple[str, str, str, str]]:
    """(dashboard uid, panel title, SQL, default range `from`) of every warehouse panel shipped."""
    out = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        dashboard = json.loads(path.read_text())
        start = dashboard.get("time", {}).get("from", "now-24h")
        for panel in dashboard.get("panels", []):
            for target in panel.get("targets", []):
                if target.get("rawSql"):
                    out.append((dashboard["uid"], panel["title"], target["rawSql"], start))
    return out


def _range_start(spec: str, end: datetime) -> datetime:
    match = GRAFANA_RANGE.match(spec)
    return end - timedelta(seconds=int(match[1]) * UNIT_SECONDS[match[2]]) if match else end - timedelta(days=1)


class PlatformCollector(Collector):
    """Every metric of the table above, computed from stored state when Prometheus scrapes."""

    def __init__(self, warehouse_url: str, instance_factory: Callable, asset_graph_factory: Callable,
                 dashboards: Path = DASHBOARDS, now: Callable[[], datetime] | None = None):
        self.warehouse_url = warehouse_url
        self.instance_factory = instance_factory
        self.asset_graph_factory = asset_graph_factory
        self.dashboards = dashboards
        self.now = now or (lambda: datetime.now(timezone.utc))
        self._analytics: dict[tuple[str, str], float] = {}
        self._analytics_at = 0.0
        self._analytics_lock = threading.Lock()

    def describe(self):
        return []  # collected on demand; no registration-time query

    @contextmanager
    def _conn(self) -> Iterator[psycopg.Connection]:
        with psycopg.connect(self.warehouse_url, autocommit=True) as conn:
            yield conn

    def collect(self):
        instance = self.instance_factory()
        graph = self.asset_graph_factory()
        with self._conn() as conn:
            for produce in (self._ingestion_outcomes, self._errors, self._freshness, self._feed_polls, self._quality,
                            self._attribution, self._ad_detection, self._completion, self._processing, self._sla, self._reports,
                            self._integrations, self._analytics_queries):
                try:
                    yield from produce(conn=conn, instance=instance, graph=graph)
                except psycopg.Error as exc:  # a table not created yet: the other metrics still go out
                    log.warning("metric %s skipped: %s", produce.__name__, exc)
        yield from self._dagster(instance=instance, graph=graph)
        yield from self._runs(instance=instance)

    # -- warehouse ---------------------------------------------------------------------------------
    def _ingestion_outcomes(self, conn, instance, graph):
        success = GaugeMetricFamily(
            "ingestion_success_rate", "Share of the source's fetches, records or syncs that succeeded (last 24 h)",
            labels=["source"])
        since = self.now() - WINDOW
        polls = conn.execute("select count(*) filter (where outcome <> 'error'), count(*) from raw.rss_feed_fetches "
                             "where fetched_at > %s", (since,)).fetchone()
        lines = conn.execute("select coalesce(sum(rows_loaded), 0), coalesce(sum(rows_loaded + rows_quarantined), 0) "
                             "from ops.listener_log_files where loaded_at > %s", (since,)).fetchone()
        rates = {"rss": _rate(*polls), "listener_logs": _rate(*lines)}
        by_source: dict[str, list] = {}
        for key in graph.get_all_asset_keys():
            if key.path[0] == "raw" and source_of(key.path[-1]) not in WAREHOUSE_RATED:
                by_source.setdefault(source_of(key.path[-1]), []).append(key)
        for source, keys in by_source.items():
            rates[source] = self._sync_rate(instance, keys, since)
        for source, rate in sorted(rates.items()):
            if rate is not None:
                success.add_metric([source], rate)
        yield success

    @staticmethod
    def _sync_rate(instance, keys, since: datetime) -> float | None:
        """Share of the finished runs that planned one of the assets and materialized it (a run
        that planned it and ended without it failed to sync)."""
        import dagster as dg

        done = failed = 0
        for key in keys:
            records = dg.AssetRecordsFilter(asset_key=key, after_timestamp=since.timestamp())
            planned = {r.run_id for r in instance.fetch_planned_materializations(records, limit=1000).records}
            made = {r.run_id for r in instance.fetch_materializations(records, limit=1000).records}
            missing = planned - made
            if missing:
                ended = {r.dagster_run.run_id for r in instance.get_run_records(dg.RunsFilter(
                    run_ids=list(missing), statuses=[dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE,
                                                     dg.DagsterRunStatus.CANCELED]))}
                missing &= ended
            done += len(made)
            failed += len(missing)
        return _rate(done, done + failed)

    def _errors(self, conn, **_):
        errors = CounterMetricFamily("ingestion_errors", "Fetches and records refused, by source and reason",
                                     labels=["source", "reason"])
        counts: dict[tuple[str, str], int] = {}
        queries = (
            "select 'rss', coalesce(error_code, 'error'), count(*) from raw.rss_feed_fetches "
            "where outcome = 'error' group by 2",
            "select 'rss', reason_code, count(*) from quarantine.rss_episodes group by 2",
            "select 'listener_logs', reason_code, count(*) from quarantine.listener_events group by 2",
            "select platform, reason_code, count(*) from quarantine.platform_records group by 1, 2",
            "select source, reason_code, count(*) from quarantine.campaign_records group by 1, 2",
            "select 'user_agents', reason_code, count(*) from quarantine.user_agent_patterns group by 2",
        )
        for query in queries:
            try:
                rows = conn.execute(query).fetchall()
            except psycopg.errors.UndefinedTable:
                continue
            for source, reason, n in rows:
                if "campaign_records" in query:
                    source = CAMPAIGN_SOURCES.get(source, "conversions")
                counts[(source, reason)] = counts.get((source, reason), 0) + n
        for (source, reason), n in sorted(counts.items()):
            errors.add_metric([source, reason], n)
        yield errors

    def _freshness(self, conn, **_):
        from assets.freshness import newest_event_times

        now = self.now()
        latency = GaugeMetricFamily("ingestion_latency_ms",
                                    "Now minus the newest accepted event of the source for the tenant, in ms",
                                    labels=["source", "tenant"])
        for (source, tenant), when in sorted(newest_event_times(conn, now=now).items()):
            latency.add_metric([source, tenant], max(0.0, (now - when).total_seconds()) * 1000)
        yield latency

    def _feed_polls(self, conn, **_):
        yield _histogram(conn, "feed_poll_duration_seconds", "Time to fetch a feed (every poll stored)", [],
                         "select duration_ms / 1000.0 as value from raw.rss_feed_fetches where duration_ms is not null",
                         POLL_BUCKETS)

    def _quality(self, conn, **_):
        score = GaugeMetricFamily("data_quality_score", "Latest data-quality score per asset and tenant (0-1)",
                                  labels=["asset", "tenant"])
        for asset, tenant, value in conn.execute(
                "select distinct on (asset, tenant_id) asset, tenant_id, score from ops.quality_results "
                "where rule = check_name order by asset, tenant_id, evaluated_at desc"):
            score.add_metric([asset, tenant], value)
        yield score

    def _attribution(self, conn, **_):
        rate = GaugeMetricFamily("attribution_match_rate", "Share of conversions credited to a campaign",
                                 labels=["tenant"])
        for tenant, value in conn.execute(
                "select tenant_id, count(distinct (source, event_id)) filter (where campaign_id is not null)::float "
                "/ nullif(count(distinct (source, event_id)), 0) from marts.fct_attributed_conversions group by 1"):
            if value is not None:
                rate.add_metric([tenant], value)
        yield rate

    def _ad_detection(self, conn, **_):
        accuracy = GaugeMetricFamily(
            "ad_detection_accuracy", "The ad-slot detector's latest evaluation against a ground truth, per tenant: "
            "precision, recall, and the share of matched slots with both boundaries within 15 s",
            labels=["tenant", "measure", "detector_version"])
        for tenant, version, precision, recall, boundaries in conn.execute(
                "select distinct on (tenant_id) tenant_id, detector_version, precision, recall, boundaries_within_15s "
                "from ops.ad_detection_evaluations order by tenant_id, evaluated_at desc"):
            for measure, value in (("precision", precision), ("recall", recall), ("boundaries_within_15s", boundaries)):
                if value is not None:
                    accuracy.add_metric([tenant, measure, version], value)
        yield accuracy

    def _completion(self, conn, **_):
        rate = GaugeMetricFamily("average_completion_rate",
                                 "Download-weighted mean share of the episode's bytes an IAB download covered",
                                 labels=["tenant"])
        for tenant, value in conn.execute(
                "select tenant_id, sum(avg_completion * downloads) / nullif(sum(downloads) filter "
                "(where avg_completion is not null), 0) from marts.fct_listener_engagement group by 1 order by 1"):
            if value is not None:
                rate.add_metric([tenant], float(value))
        yield rate

    def _sla(self, conn, **_):
        lag = GaugeMetricFamily("sla_freshness_lag_seconds", "Since the source last delivered (raw) or the mart was built",
                                labels=["asset", "tenant", "layer"])
        limit = GaugeMetricFamily("sla_freshness_limit_seconds", "The asset's freshness policy (fail window)",
                                  labels=["asset", "layer"])
        failed = GaugeMetricFamily("sla_checks_failed", "Checks of the asset whose latest evaluation failed",
                                   labels=["asset"])
        blocked = GaugeMetricFamily("sla_blocked", "1 when a failed check upstream stops the asset", labels=["asset"])
        limits, failures, blocks = {}, {}, {}
        for asset, tenant, layer, seconds, window, checks, status in conn.execute(
                "select asset, tenant_id, layer, freshness_lag_seconds, freshness_limit_seconds, checks_failed, status "
                "from marts.sla_status order by 1, 2"):
            if seconds is not None:
                lag.add_metric([asset, tenant, layer], seconds)
            if window is not None:
                limits[(asset, layer)] = window
            failures[asset] = max(failures.get(asset, 0), checks)
            blocks[asset] = max(blocks.get(asset, 0), 1 if status == "blocked" else 0)
        for (asset, layer), window in sorted(limits.items()):
            limit.add_metric([asset, layer], window)
        for asset in sorted(failures):
            failed.add_metric([asset], failures[asset])
            blocked.add_metric([asset], blocks[asset])
        yield from (lag, limit, failed, blocked)

    def _processing(self, conn, **_):
        latency = GaugeMetricFamily("processing_latency_seconds",
                                    "From the newest raw data a mart used to the mart's build", labels=["asset"])
        for asset, value in conn.execute(
                "select asset, max(processing_latency_seconds) from marts.sla_status where layer = 'marts' "
                "and processing_latency_seconds is not null group by 1 order by 1"):
            latency.add_metric([asset], value)
        yield latency

    def _reports(self, conn, **_):
        since = self.now() - WINDOW
        yield _histogram(conn, "report_generation_duration_seconds", "Time of each completed report generation",
                         ["scope"], "select detail as scope, seconds as value from ops.operation_timings "
                                    "where operation = 'report_generation' and outcome <> 'failure'", GENERATION_BUCKETS)
        success = GaugeMetricFamily("report_generation_success_rate",
                                    "Share of report generations that completed (last 24 h)", labels=["scope"])
        for scope, done, total in conn.execute(
                "select detail, count(*) filter (where outcome <> 'failure'), count(*) from ops.operation_timings "
                "where operation = 'report_generation' and recorded_at > %s group by 1 order by 1", (since,)):
            success.add_metric([scope], done / total)
        yield success
        yield _histogram(conn, "report_delivery_latency_seconds",
                         "Time of each successful report delivery, retries and back-off included", ["channel"],
                         "select detail as channel, seconds as value from ops.operation_timings "
                         "where operation = 'report_delivery' and outcome = 'success'", DELIVERY_BUCKETS)
        yield _histogram(conn, "report_file_size_bytes", "Size of every report file written", ["format"],
                         "select format, size_bytes as value from reports.reports", SIZE_BUCKETS)
        yield _histogram(conn, "chart_render_time_seconds", "Time to draw each report chart", ["chart"],
                         "select subject as chart, seconds as value from ops.operation_timings "
                         "where operation = 'chart_render'", CHART_BUCKETS)
        roi = GaugeMetricFamily("roi_calculation_duration_seconds",
                                "Time the campaign's latest report took to read its ROI figures from the marts",
                                labels=["tenant", "campaign"])
        for tenant, campaign, seconds in conn.execute(
                "select distinct on (tenant_id, subject) tenant_id, subject, seconds from ops.operation_timings "
                "where operation = 'roi_calculation' and detail = 'campaign' and outcome = 'success' "
                "order by tenant_id, subject, recorded_at desc, timing_id desc"):
            roi.add_metric([tenant, campaign], seconds)
        yield roi

    def _integrations(self, conn, **_):
        since = self.now() - WINDOW
        success = GaugeMetricFamily("integration_success_rate",
                                    "Share of outbound deliveries that succeeded in the end (last 24 h)",
                                    labels=["integration"])
        for integration, done, total in conn.execute(
                "select case when operation = 'report_delivery' then 'report_' || detail else detail end, "
                "count(*) filter (where outcome = 'success'), count(*) from ops.operation_timings "
                "where operation in ('report_delivery', 'alert_delivery') and recorded_at > %s group by 1 order by 1",
                (since,)):
            success.add_metric([integration], done / total)
        errors = GaugeMetricFamily("integration_error_rate",
                                   "Share of delivery attempts that failed, retried ones included (last 24 h)",
                                   labels=["integration"])
        for integration, bad, total in conn.execute(
                "select detail, count(*) filter (where outcome = 'failure'), count(*) from ops.operation_timings "
                "where operation = 'delivery_attempt' and recorded_at > %s group by 1 order by 1", (since,)):
            errors.add_metric([integration], bad / total)
        yield from (success, errors)
        yield _histogram(conn, "integration_api_latency_seconds", "Time of each delivery attempt", ["integration"],
                         "select detail as integration, seconds as value from ops.operation_timings "
                         "where operation = 'delivery_attempt'", DELIVERY_BUCKETS)
        yield _histogram(conn, "alert_delivery_latency_seconds",
                         "From a failure to the alert webhook accepting its post", ["alert"],
                         "select subject as alert, seconds as value from ops.operation_timings "
                         "where operation = 'alert_delivery' and outcome = 'success'", ALERT_BUCKETS)

    def _analytics_queries(self, conn, **_):
        """Time every shipped dashboard query, at most once per ANALYTICS_INTERVAL_SECONDS (a scrape
        in between serves the last timings)."""
        family = GaugeMetricFamily("analytics_query_latency_seconds",
                                   "Time the SQL of a shipped Grafana panel takes on the warehouse",
                                   labels=["dashboard", "panel"])
        with self._analytics_lock:
            if time.monotonic() - self._analytics_at >= ANALYTICS_INTERVAL_SECONDS or not self._analytics_at:
                self._analytics = self.time_dashboard_queries(conn)
                self._analytics_at = time.monotonic()
            timings = dict(self._analytics)
        for (dashboard, panel), seconds in sorted(timings.items()):
            family.add_metric([dashboard, panel], seconds)
        yield family

    def time_dashboard_queries(self, conn) -> dict[tuple[str, str], float]:
        queries = dashboard_queries(self.dashboards)
        if not queries:
            return {}
        end = self.now()
        try:
            tenants = [r[0] for r in conn.execute("select distinct tenant_id from marts.dim_podcasts order by 1")]
        except psycopg.Error:
            tenants = []
        out = {}
        for dashboard, panel, raw, start in queries:
            statement = grafana_sql(raw, _range_start(start, end), end, tenants)
            try:
                with conn.transaction():
                    conn.execute("set transaction read only")
                    conn.execute(sql.SQL("set local statement_timeout = {}").format(sql.Literal(ANALYTICS_TIMEOUT_MS)))
                    started = time.perf_counter()
                    conn.execute(statement).fetchall()
                    out[(dashboard, panel)] = time.perf_counter() - started
            except psycopg.Error as exc:
                log.warning("dashboard %s panel %r not timed: %s", dashboard, panel, exc)
        return out

    # -- Dagster instance --------------------------------------------------------------------------
    @staticmethod
    def _step_seconds(instance, key) -> float | None:
        """Duration of the step that produced the asset's latest materialization."""
        event = instance.get_latest_materialization_event(key)
        if event is None or not event.step_key:
            return None
        stats = instance.get_run_step_stats(event.run_id, step_keys=[event.step_key])
        if not stats or stats[0].start_time is None or stats[0].end_time is None:
            return None
        return stats[0].end_time - stats[0].start_time

    def _dagster(self, instance, graph):
        sync = GaugeMetricFamily("api_sync_duration_seconds", "Duration of the platform's latest API sync step",
                                 labels=["platform"])
        request = GaugeMetricFamily("api_request_latency_seconds",
                                    "Mean time of one HTTP exchange in the platform's latest syncs",
                                    labels=["platform"])
        aggregation = GaugeMetricFamily("aggregation_latency_seconds",
                                        "dbt execution time of the latest build of the daily rollup model",
                                        labels=["asset"])
        by_platform: dict[str, list] = {}
        for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
            if key.path[0] == "raw" and source_of(key.path[-1]) in PLATFORMS:
                by_platform.setdefault(source_of(key.path[-1]), []).append(key)
            elif key.path[0] in ("intermediate", "marts") and ROLLUP.match(key.path[-1]):
                seconds = _metadata_number(instance.get_latest_materialization_event(key), "Execution Duration")
                if seconds is not None:
                    aggregation.add_metric([key.to_user_string()], seconds)
        for platform, keys in sorted(by_platform.items()):
            durations = [d for d in (self._step_seconds(instance, k) for k in keys) if d is not None]
            if durations:
                sync.add_metric([platform], max(durations))
            network = requests = 0.0
            for key in keys:
                event = instance.get_latest_materialization_event(key)
                n, seconds = _metadata_number(event, "requests"), _metadata_number(event, "network_seconds")
                if n and seconds is not None:
                    requests, network = requests + n, network + seconds
            if requests:
                request.add_metric([platform], network / requests)
        yield from (sync, request, aggregation)

    def _runs(self, instance):
        import dagster as dg

        accuracy = GaugeMetricFamily("scheduled_task_accuracy_seconds",
                                     "How late the schedule's latest run started after its scheduled time",
                                     labels=["schedule"])
        duration = GaugeMetricFamily("task_execution_duration_seconds", "Duration of the job's latest finished run",
                                     labels=["job"])
        success = GaugeMetricFamily("task_success_rate", "Share of the job's finished runs that succeeded (last 24 h)",
                                    labels=["job"])
        now = self.now()
        records = instance.get_run_records(dg.RunsFilter(created_after=now - RUN_WINDOW), limit=2000)
        late: dict[str, float] = {}
        took: dict[str, float] = {}
        outcomes: dict[str, list[int]] = {}
        finished = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE}
        for record in records:  # newest first
            run = record.dagster_run
            schedule, planned = run.tags.get("dagster/schedule_name"), run.tags.get("dagster/scheduled_execution_time")
            if schedule and planned and record.start_time is not None and schedule not in late:
                late[schedule] = max(0.0, record.start_time - datetime.fromisoformat(planned).timestamp())
            if run.status not in finished or record.start_time is None or record.end_time is None:
                continue
            took.setdefault(run.job_name, record.end_time - record.start_time)
            if record.end_time >= (now - WINDOW).timestamp():
                counts = outcomes.setdefault(run.job_name, [0, 0])
                counts[0] += run.status == dg.DagsterRunStatus.SUCCESS
                counts[1] += 1
        for schedule, seconds in sorted(late.items()):
            accuracy.add_metric([schedule], seconds)
        for job, seconds in sorted(took.items()):
            duration.add_metric([job], seconds)
        for job, (done, total) in sorted(outcomes.items()):
            success.add_metric([job], done / total)
        yield from (accuracy, duration, success)


def _metadata_number(event, name: str) -> float | None:
    if event is None or event.asset_materialization is None:
        return None
    value = event.asset_materialization.metadata.get(name)
    value = getattr(value, "value", value)
    return float(value) if isinstance(value, int | float) else None


def build_registry(warehouse_url: str, instance_factory: Callable, asset_graph_factory: Callable,
                   **options) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(PlatformCollector(warehouse_url, instance_factory, asset_graph_factory, **options))
    return registry


def serve(registry: CollectorRegistry, port: int, host: str = "127.0.0.1"):
    """Start the HTTP endpoint (`/metrics`) in a background thread. Returns (server, thread)."""
    from prometheus_client import start_http_server

    return start_http_server(port, addr=host, registry=registry)

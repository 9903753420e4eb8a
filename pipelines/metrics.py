"""Prometheus metrics of the platform, read at each scrape from the warehouse and the Dagster
instance (nothing is kept in the exporter's memory, so values survive restarts of any process).

Served by `podcast-analytics metrics` (Dagster has no Prometheus endpoint of its own).
"""

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

log = logging.getLogger(__name__)

# Every metric family the endpoint serves (counters gain `_total`, histograms `_bucket/_count/_sum`).
METRIC_NAMES = (
    "ingestion_latency_ms", "ingestion_success_rate", "ingestion_errors", "feed_poll_duration_seconds",
    "api_sync_duration_seconds", "processing_latency_seconds", "attribution_match_rate", "data_quality_score",
    "roi_calculation_duration_seconds", "report_generation_duration_seconds", "report_generation_success_rate",
    "sla_freshness_lag_seconds", "sla_freshness_limit_seconds", "sla_checks_failed", "sla_blocked",
)
WINDOW_SECONDS = 7 * 86_400  # success rates look at the last week of runs
POLL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
PLATFORMS = ("buzzsprout", "transistor", "podbean", "simplecast", "spotify", "apple", "megaphone")
SOURCES = {"rss": "rss", "listener": "listener_logs", "user": "user_agents", "campaigns": "sponsorships",
           "sponsors": "sponsorships", "placements": "sponsorships", "attribution": "conversions"}
QUARANTINES = (  # (table, source expression, reason column)
    ("quarantine.rss_feeds", "'rss'", "reason_code"),
    ("quarantine.rss_episodes", "'rss'", "reason_code"),
    ("quarantine.listener_events", "'listener_logs'", "reason_code"),
    ("quarantine.platform_records", "platform", "reason_code"),
    ("quarantine.campaign_records", "source", "reason_code"),
    ("quarantine.user_agent_patterns", "'user_agents'", "reason_code"),
)


def source_of(table: str) -> str:
    """The source a raw table comes from: `buzzsprout_episodes` -> buzzsprout, `rss_podcasts` -> rss."""
    first = table.split("_", 1)[0]
    return first if first in PLATFORMS else SOURCES.get(first, first)


class PlatformCollector(Collector):
    """Every metric of the SLA, computed from stored state when Prometheus scrapes."""

    def __init__(self, warehouse_url: str, instance_factory: Callable, asset_graph_factory: Callable):
        self.warehouse_url = warehouse_url
        self.instance_factory = instance_factory
        self.asset_graph_factory = asset_graph_factory

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
            for produce in (self._ingestion, self._errors, self._feed_polls, self._quality, self._attribution,
                            self._processing, self._sla):
                try:
                    yield from produce(conn=conn, instance=instance, graph=graph)
                except psycopg.Error as exc:  # a table not created yet: the other metrics still go out
                    log.warning("metric %s skipped: %s", produce.__name__, exc)
        yield from self._reports(instance=instance, graph=graph)

    # -- Dagster instance ------------------------------------------------------------------------
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

    @staticmethod
    def _success_rate(instance, keys) -> float | None:
        import dagster as dg

        after = time.time() - WINDOW_SECONDS
        done = failed = 0
        for key in keys:
            records_filter = dg.AssetRecordsFilter(asset_key=key, after_timestamp=after)
            done += len(instance.fetch_materializations(records_filter, limit=1000).records)
            failed += len(instance.fetch_failed_materializations(records_filter, limit=1000).records)
        return None if done + failed == 0 else done / (done + failed)

    def _ingestion(self, conn, instance, graph):
        latency = GaugeMetricFamily("ingestion_latency_ms", "Duration of the source's latest ingestion step, in ms",
                                    labels=["source"])
        success = GaugeMetricFamily("ingestion_success_rate",
                                    "Share of the source's planned raw materializations that succeeded (last 7 days)",
                                    labels=["source"])
        api = GaugeMetricFamily("api_sync_duration_seconds", "Duration of the platform's latest API sync step",
                                labels=["platform"])
        by_source: dict[str, list] = {}
        for key in graph.get_all_asset_keys():
            if key.path[0] == "raw":
                by_source.setdefault(source_of(key.path[-1]), []).append(key)
        for source, keys in sorted(by_source.items()):
            durations = [d for d in (self._step_seconds(instance, k) for k in keys) if d is not None]
            if durations:
                latency.add_metric([source], max(durations) * 1000)
                if source in PLATFORMS:
                    api.add_metric([source], max(durations))
            rate = self._success_rate(instance, keys)
            if rate is not None:
                success.add_metric([source], rate)
        yield from (latency, success, api)

    def _reports(self, instance, graph):
        duration = GaugeMetricFamily("report_generation_duration_seconds",
                                     "Duration of the report's (or export's) latest generation", labels=["report"])
        success = GaugeMetricFamily("report_generation_success_rate",
                                    "Share of report generations that succeeded (last 7 days)", labels=["report"])
        for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
            if key.path[0] not in ("reports", "exports"):
                continue
            name = key.to_user_string()
            seconds = self._step_seconds(instance, key)
            if seconds is not None:
                duration.add_metric([name], seconds)
            rate = self._success_rate(instance, [key])
            if rate is not None:
                success.add_metric([name], rate)
        roi = GaugeMetricFamily("roi_calculation_duration_seconds", "Time dbt took to build marts.mart_campaign_roi")
        import dagster as dg

        event = instance.get_latest_materialization_event(dg.AssetKey(["marts", "mart_campaign_roi"]))
        if event is not None and event.asset_materialization is not None:
            value = event.asset_materialization.metadata.get("Execution Duration")
            seconds = getattr(value, "value", value)
            if seconds is None:
                seconds = self._step_seconds(instance, dg.AssetKey(["marts", "mart_campaign_roi"]))
            if seconds is not None:
                roi.add_metric([], float(seconds))
        yield from (duration, success, roi)

    # -- warehouse ---------------------------------------------------------------------------------
    def _errors(self, conn, **_):
        errors = CounterMetricFamily("ingestion_errors", "Records or fetches refused, by source and error type",
                                     labels=["source", "error_type"])
        counts: dict[tuple[str, str], int] = {}
        present = {r[0] for r in conn.execute(
            "select table_schema || '.' || table_name from information_schema.tables where table_schema = 'quarantine'")}
        from psycopg import sql

        for table, source, reason in QUARANTINES:
            if table not in present:
                continue
            schema, name = table.split(".")
            query = sql.SQL("select {}, {}, count(*) from {} group by 1, 2").format(
                sql.SQL(source), sql.Identifier(reason), sql.Identifier(schema, name))
            for src, kind, n in conn.execute(query):
                counts[(src, kind)] = counts.get((src, kind), 0) + n
        for src, kind, n in conn.execute(
                "select 'rss', coalesce(error_code, 'error'), count(*) from raw.rss_feed_fetches "
                "where outcome = 'error' group by 2"):
            counts[(src, f"fetch_{kind}")] = counts.get((src, f"fetch_{kind}"), 0) + n
        for (src, kind), n in sorted(counts.items()):
            errors.add_metric([src, kind], n)
        yield errors

    def _feed_polls(self, conn, **_):
        buckets = ", ".join(f"count(*) filter (where duration_ms <= {b * 1000})" for b in POLL_BUCKETS)
        row = conn.execute(f"select {buckets}, count(*), coalesce(sum(duration_ms), 0) / 1000.0 "  # noqa: S608 (constants)
                           "from raw.rss_feed_fetches where duration_ms is not null").fetchone()
        *cumulative, total, seconds = row
        poll = HistogramMetricFamily("feed_poll_duration_seconds", "Time to fetch a feed (every poll stored)")
        poll.add_metric([], [(str(b), n) for b, n in zip(POLL_BUCKETS, cumulative, strict=True)] + [("+Inf", total)],
                        float(seconds))
        yield poll

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


def build_registry(warehouse_url: str, instance_factory: Callable, asset_graph_factory: Callable) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(PlatformCollector(warehouse_url, instance_factory, asset_graph_factory))
    return registry


def serve(registry: CollectorRegistry, port: int, host: str = "127.0.0.1"):
    """Start the HTTP endpoint (`/metrics`) in a background thread. Returns (server, thread)."""
    from prometheus_client import start_http_server

    return start_http_server(port, addr=host, registry=registry)

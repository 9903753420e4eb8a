"""SLA snapshot, freshness policies and gated exports.

`marts/sla_status` measures each promise per asset (and tenant where the data has tenants):
freshness lag in the data's own time (the newest accepted event of the sources it is built from,
see `sla_rows`) against its freshness policy, completeness and the data-quality score from `ops.quality_results`, the pass rate of its
checks, what blocks it, ingestion success (feed polls) and processing latency (raw → mart). The
current rows replace `marts.sla_status`; every snapshot is appended to `ops.sla_status_history`.

`exports/<mart>` writes a mart per tenant as CSV; it calls the quality gate first, so a failed
check upstream stops it with the reason. Reports use the same gate.
"""


import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
from psycopg import sql

from assets.freshness import newest_event_times, source_of
from resources.identifiers import InvalidIdentifier, safe_path, validate_identifier
from assets.quality_gate import BuildStates, CheckStates, asset_graph_of, require_quality
from resources.settings import get_settings
from resources.warehouse import WarehouseResource

# The freshness SLA: data fresher than one hour from event to mart. Raw feeds poll every 15
# minutes, platform APIs hourly (one missed poll is tolerated before the source turns red).
FRESHNESS = {
    "raw": dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=2), warn_window=timedelta(hours=1)),
    "marts": dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=1), warn_window=timedelta(minutes=45)),
}
SLA_LAYERS = ("raw", "marts")


def with_freshness(spec: dg.AssetSpec) -> dg.AssetSpec:
    """Raw assets and marts get the SLA's freshness policy (unless they declare their own)."""
    layer = spec.key.path[0]
    if layer in FRESHNESS and spec.freshness_policy is None and spec.key.path[-1] != "sla_status":
        return spec.replace_attributes(freshness_policy=FRESHNESS[layer])
    return spec


def freshness_limit(asset_graph, key: dg.AssetKey) -> float | None:
    policy = asset_graph.get(key).freshness_policy if asset_graph.has(key) else None
    window = getattr(policy, "fail_window", None)
    if window is None:
        return None
    return window.total_seconds() if isinstance(window, timedelta) else float(window.to_timedelta().total_seconds())


def _latest_materializations(instance: dg.DagsterInstance, keys) -> dict[dg.AssetKey, float]:
    events = instance.get_latest_materialization_events(list(keys))
    return {k: e.timestamp for k, e in events.items() if e is not None}


def _check_pass_rates(instance: dg.DagsterInstance, asset_graph, keys) -> dict[dg.AssetKey, tuple[float | None, int]]:
    """asset -> (share of its checks whose latest evaluation passed, how many failed)."""
    check_keys = [c for k in keys for c in asset_graph.get(k).check_keys]
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(check_keys) if check_keys else {}
    done: dict[dg.AssetKey, list[bool]] = {}
    for check_key, record in latest.items():
        if record.status.value in ("SUCCEEDED", "FAILED"):
            done.setdefault(check_key.asset_key, []).append(record.status.value == "SUCCEEDED")
    return {k: (sum(v) / len(v), v.count(False)) for k, v in done.items() if v}


def _quality_by_tenant(conn, asset: str) -> dict[str, tuple[float, float | None]]:
    """tenant -> (data-quality score, completeness) from each rule's latest result."""
    rows = conn.execute(
        "select distinct on (tenant_id, rule) tenant_id, rule, check_name, score from ops.quality_results "
        "where asset = %s order by tenant_id, rule, evaluated_at desc", (asset,)).fetchall()
    out: dict[str, tuple[float, float | None]] = {}
    by_tenant: dict[str, list[tuple[str, str, float]]] = {}
    for tenant, rule, check_name, score in rows:
        by_tenant.setdefault(tenant, []).append((rule, check_name, score))
    for tenant, items in by_tenant.items():
        summary = [s for r, c, s in items if r == c]
        rules = [s for r, c, s in items if r != c]
        nulls = [s for r, _, s in items if r.startswith("not_null(")]
        score = summary[0] if summary else (sum(rules) / len(rules) if rules else 1.0)
        out[tenant] = (score, sum(nulls) / len(nulls) if nulls else None)
    return out


def _feed_success_rate(conn) -> dict[str, float]:
    rows = conn.execute(
        "select tenant_id, avg(case when outcome in ('fetched', 'not_modified') "
        "then 1.0 else 0.0 end) from raw.rss_feed_fetches where fetched_at > now() - interval '24 hours' group by 1"
    ).fetchall()
    return {t: float(r) for t, r in rows}


def sla_rows(instance: dg.DagsterInstance, asset_graph, conn, now: float | None = None) -> list[dict]:
    """The SLA snapshot of every raw asset and mart in the graph, per tenant.

    Freshness is measured in the data's own time (assets/freshness.py): for a raw table, since the
    newest accepted event of its source for the tenant; for a mart, since the older of its last
    build and the newest accepted event of each source it is built from (a mart is no fresher
    than the stalest source it reads, nor than its last build). What blocks an asset: a failed
    blocking check on it or upstream, or an upstream asset (or itself) whose latest build failed
    or that is older than an input (quality_gate.BuildStates), each named."""
    now = time.time() if now is None else now
    snapshot_at = datetime.fromtimestamp(now, tz=timezone.utc)
    feed_success = _feed_success_rate(conn)
    newest = {key: when.timestamp() for key, when in newest_event_times(conn, snapshot_at).items()}
    rows = []
    keys = sorted((k for k in asset_graph.get_all_asset_keys() if k.path[0] in SLA_LAYERS and k.path[-1] != "sla_status"),
                  key=lambda k: k.to_user_string())
    states = CheckStates(instance, asset_graph)
    # Every asset's build state, judged once: each is judged against its own parents only.
    builds: dict[str, list] = {}
    for blocker in BuildStates(instance, asset_graph, asset_graph.get_all_asset_keys(), now).blockers():
        builds.setdefault(blocker.asset, []).append(blocker)
    materialized = _latest_materializations(instance, keys)
    pass_rates = _check_pass_rates(instance, asset_graph, keys)
    for key in keys:
        asset = key.to_user_string()
        last = materialized.get(key)
        limit = freshness_limit(asset_graph, key)
        pass_rate, failed = pass_rates.get(key, (None, 0))
        ancestors = asset_graph.get_ancestor_asset_keys(key)
        upstream = states.on(ancestors) + [b for a in sorted({*ancestors, key}, key=lambda k: k.to_user_string())
                                           for b in builds.get(a.to_user_string(), [])]
        own = states.on([key])
        blockers = own + upstream
        latency = None
        if key.path[0] == "marts" and last is not None:
            raw_times = [materialized[a] for a in ancestors
                         if a.path[0] == "raw" and a in materialized and materialized[a] <= last]
            latency = last - max(raw_times) if raw_times else None
        quality = _quality_by_tenant(conn, asset) if key.path[0] == "raw" else {}
        sources = ({source_of(key.path[-1])} if key.path[0] == "raw"
                   else {source_of(a.path[-1]) for a in ancestors if a.path[0] == "raw"}) - {None}
        data_times: dict[str, list[float]] = {}
        for (source, tenant), when in newest.items():
            if source in sources:
                data_times.setdefault(tenant, []).append(when)
        for tenant in sorted(set(quality) | set(data_times)) or ["-"]:
            score, completeness = quality.get(tenant, (None, None))
            when = min(data_times[tenant]) if tenant in data_times else None
            if key.path[0] != "raw":
                when = last if when is None else (None if last is None else min(when, last))
            lag = None if when is None else max(0.0, now - when)
            fresh = None if limit is None else (lag is not None and lag <= limit)
            success = feed_success.get(tenant) if key.path[-1].startswith("rss_") else None
            if own or failed:
                status = "failing"
            elif upstream:
                status = "blocked"
            elif fresh is False or when is None:
                status = "stale"
            else:
                status = "ok"
            rows.append({
                "asset": asset, "tenant_id": tenant, "layer": key.path[0],
                "last_updated_at": None if when is None else datetime.fromtimestamp(when, tz=timezone.utc),
                "freshness_lag_seconds": lag, "freshness_limit_seconds": limit, "freshness_ok": fresh,
                "completeness": completeness, "data_quality_score": score, "check_pass_rate": pass_rate,
                "checks_failed": failed, "blocked_by": "; ".join(str(b) for b in blockers) or None,
                "ingestion_success_rate": success, "processing_latency_seconds": latency,
                "status": status, "snapshot_at": snapshot_at,
            })
    return rows


SLA_COLUMNS = ("asset", "tenant_id", "layer", "last_updated_at", "freshness_lag_seconds",
               "freshness_limit_seconds", "freshness_ok", "completeness", "data_quality_score", "check_pass_rate",
               "checks_failed", "blocked_by", "ingestion_success_rate", "processing_latency_seconds", "status",
               "snapshot_at")


def store_sla(conn, rows: list[dict], history_days: int) -> int:
    """Replace the current snapshot, append it to the history and delete the history's snapshots
    older than `history_days`, in one transaction. Returns the history rows deleted."""
    columns = sql.SQL(", ").join(map(sql.Identifier, SLA_COLUMNS))
    values = sql.SQL(", ").join(sql.Placeholder() * len(SLA_COLUMNS))
    with conn.transaction():
        pruned = conn.execute("delete from ops.sla_status_history where snapshot_at < now() - make_interval(days => %s)",
                              (history_days,)).rowcount
        conn.execute("delete from marts.sla_status")
        with conn.cursor() as cur:
            for table in ("marts.sla_status", "ops.sla_status_history"):
                schema, name = table.split(".")
                cur.executemany(sql.SQL("insert into {} ({}) values ({})").format(sql.Identifier(schema, name), columns, values),
                                [tuple(r[c] for c in SLA_COLUMNS) for r in rows])
    return pruned


@dg.asset(
    key=["marts", "sla_status"], group_name="sla", kinds={"python", "postgres"},
    description="SLA per asset and tenant: freshness lag, completeness, quality score, check pass rate, what blocks it, "
                "ingestion success and processing latency. History in ops.sla_status_history.",
)
def sla_status(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    warehouse.require_schema()
    with warehouse.connect() as conn:
        rows = sla_rows(context.instance, asset_graph_of(context), conn)
        pruned = store_sla(conn, rows, get_settings().ops_history_days)
    stale = sorted({r["asset"] for r in rows if r["status"] == "stale"})
    blocked = sorted({r["asset"] for r in rows if r["status"] in ("blocked", "failing")})
    return dg.MaterializeResult(metadata={
        "dagster/row_count": len(rows), "assets": len({r["asset"] for r in rows}),
        "stale_assets": dg.MetadataValue.json(stale), "blocked_assets": dg.MetadataValue.json(blocked),
        "history_rows_pruned": pruned,
    })


def _export_columns(conn, mart: str) -> sql.Composable:
    """The mart's columns for a spreadsheet: a text cell starting with a formula trigger (`=`,
    `+`, `-`, `@`, tab, carriage return) gets a leading single quote (OWASP's CSV injection
    guidance); other types are written as they are."""
    columns = conn.execute("select column_name, data_type from information_schema.columns "
                           "where table_schema = 'marts' and table_name = %s order by ordinal_position",
                           (mart,)).fetchall()
    text_types = {"text", "character varying", "character"}
    return sql.SQL(", ").join(
        sql.SQL("case when {c} ~ '^[-=+@\\t\\r]' then '''' || {c} else {c} end as {c}").format(c=sql.Identifier(name))
        if kind in text_types else sql.Identifier(name) for name, kind in columns)


def mart_export(mart: str) -> dg.AssetsDefinition:
    """A CSV export per tenant of `marts.<mart>`, stopped by the quality gate. The file is
    `<exports>/<mart>/<tenant id>.csv`: a tenant id that is not a valid identifier (it would be
    a path) is refused and named, the other tenants are written."""
    mart_key = dg.AssetKey(["marts", mart])

    @dg.asset(key=["exports", mart], deps=[mart_key], group_name="exports", kinds={"python", "csv"},
              description=f"marts.{mart} as CSV, one file per tenant; stopped while a check upstream fails.")
    def _export(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        require_quality(context)
        folder = Path(get_settings().data_dir) / "exports" / mart
        folder.mkdir(parents=True, exist_ok=True)
        table = sql.Identifier("marts", mart)
        written, refused = {}, {}
        with warehouse.connect() as conn:
            columns = _export_columns(conn, mart)
            tenants = [r[0] for r in conn.execute(sql.SQL("select distinct tenant_id from {} order by 1").format(table))]
            for tenant in tenants:
                try:
                    path = safe_path(folder, f"{validate_identifier('tenant id', tenant)}.csv")
                except InvalidIdentifier as exc:
                    refused[str(tenant)] = str(exc)
                    context.log.error(f"export of marts.{mart} for tenant {tenant!r} refused: {exc}")
                    continue
                copy = sql.SQL("copy (select {} from {} where tenant_id = {} order by 1, 2) to stdout "
                               "with (format csv, header)").format(columns, table, sql.Literal(tenant))
                with path.open("wb") as out, conn.cursor().copy(copy) as stream:
                    for chunk in stream:
                        out.write(chunk)
                written[tenant] = conn.execute(sql.SQL("select count(*) from {} where tenant_id = %s").format(table),
                                               (tenant,)).fetchone()[0]
        return dg.MaterializeResult(metadata={"dagster/row_count": sum(written.values()),
                                              "rows_by_tenant": dg.MetadataValue.json(written),
                                              "refused_tenants": dg.MetadataValue.json(refused), "folder": str(folder)})

    return _export


EXPORTS = [mart_export("dim_podcasts"), mart_export("fct_platform_metrics_daily")]
QUALITY_ASSETS = [sla_status, *EXPORTS]

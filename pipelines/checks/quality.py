"""Great Expectations suites for every raw table, kept as code, run in PostgreSQL as blocking checks.

One table-driven definition per raw table (`SUITES`): its natural key (no duplicates), the fields
that must be filled (completeness), value ranges, the exact column set (schema drift), late rows
(an event that arrives well after its time) and, where the loader quarantines, the share of a
tenant's current records that was refused. GX validates the whole table through its SQL data source (no rows pulled
into Python) and decides pass or fail; a suite marked `batch_scoped` (the request log) validates only the batch
its run loaded (its `_batch_id`; the newest batch when no run is given), so one bad row fails the run that loaded
it and not every later one; the same rules, rendered as SQL predicates, give each
tenant's score. Every rule's result, per tenant, is appended to `ops.quality_results` (history).

GX is imported inside the check only: it costs seconds at import and the code location must load fast.
"""


import json
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
import psycopg
from psycopg import sql

from assets.ingestion import campaigns, conversions, listener_logs_load, megaphone_export, rss_ingest, user_agents
from assets.ingestion import transcripts
from assets.ingestion.platforms.sync import RAW_COLUMNS as PLATFORM_COLUMNS
from assets.processing import ad_slots
from pipelines.checks.rss_quality import validate_query, validate_table
from resources.settings import get_settings
from resources.warehouse import WarehouseResource

COMPLETENESS = 0.9     # the SLA: > 90 % of required fields filled
QUARANTINE_LIMIT = 0.25  # a tenant with more than 25 % of its current items refused has a broken source (sources
# refuse a few per cent in normal operation: the simulated network plants about 10 %)
QUARANTINE_MIN_ROWS = 5


@dataclass(frozen=True)
class Rule:
    """One expectation: how GX states it, and the same rule as a per-tenant SQL measure."""

    name: str
    kind: str  # not_null | between | unique | columns | late | quarantine | regex
    columns: tuple[str, ...] = ()
    min_value: float | None = None
    max_value: float | None = None
    mostly: float = 1.0
    regex: str | None = None
    expected_columns: tuple[str, ...] = ()
    event_time: str | None = None
    max_lag: str | None = None
    batch_filter: str | None = None
    quarantine_table: str | None = None


@dataclass(frozen=True)
class TableSuite:
    table: str
    key: tuple[str, ...]
    required: tuple[str, ...] = ()
    also_unique: tuple[tuple[str, ...], ...] = ()  # further column sets that identify a record
    ranges: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    regex: dict[str, str] = field(default_factory=dict)
    late: tuple[str, str] | None = None  # (event time column, allowed lag)
    late_filter: str | None = None  # further condition on a late row (SQL over the row `b`)
    quarantine: str | None = None  # quarantine table of the same source, with tenant_id and _batch_id
    tenant_column: str | None = "tenant_id"
    batch_scoped: bool = False  # judge the rows of one `_batch_id` (the run's), not the whole table

    @property
    def columns(self) -> tuple[str, ...]:
        """The table's columns as the module that writes it declares them (`RAW_COLUMNS`)."""
        return RAW_COLUMNS[self.table]

    @property
    def asset_key(self) -> dg.AssetKey:
        return dg.AssetKey(["raw", self.table])

    @property
    def check_name(self) -> str:
        return f"{self.table}_expectations"

    def rules(self) -> list[Rule]:
        rules = [Rule(f"columns_match_set({self.table})", "columns", expected_columns=self.columns),
                 *(Rule(f"compound_columns_unique({','.join(cols)})", "unique", columns=cols)
                   for cols in (self.key, *self.also_unique))]
        rules += [Rule(f"not_null({c})", "not_null", columns=(c,), mostly=COMPLETENESS) for c in self.required]
        rules += [Rule(f"between({c})", "between", columns=(c,), min_value=lo, max_value=hi)
                  for c, (lo, hi) in self.ranges.items()]
        rules += [Rule(f"match_regex({c})", "regex", columns=(c,), regex=r) for c, r in self.regex.items()]
        if self.late:
            rules.append(Rule(f"not_late({self.late[0]})", "late", event_time=self.late[0], max_lag=self.late[1],
                              batch_filter=self.late_filter))
        if self.quarantine:
            rules.append(Rule(f"quarantined_share({self.quarantine})", "quarantine", quarantine_table=self.quarantine))
        return rules


# Every raw table's columns, as the module that writes it declares them (its `RAW_COLUMNS`): the
# suites expect exactly these (schema drift), and tests/test_raw_columns.py holds the warehouse's
# tables and dbt's sources to the same declarations.
RAW_COLUMNS: dict[str, tuple[str, ...]] = {
    **rss_ingest.RAW_COLUMNS, **listener_logs_load.RAW_COLUMNS, **user_agents.RAW_COLUMNS, **campaigns.RAW_COLUMNS,
    **conversions.RAW_COLUMNS, **megaphone_export.RAW_COLUMNS, **PLATFORM_COLUMNS, **transcripts.RAW_COLUMNS,
    **ad_slots.RAW_COLUMNS,
}


N = None
DAY = 86_400
BIG = 10**12
COUNT = (0, BIG)
# Late rows: a record whose time is this far behind its ingestion, arriving in a later batch than
# the first load of its stream (a back catalogue read on the first poll is not late).
LATE_LAG = "3 days"


SUITES: dict[str, TableSuite] = {s.table: s for s in [
    TableSuite(
        "rss_episodes",
        key=("tenant_id", "feed_url", "guid"),
        required=("title", "enclosure_url", "enclosure_type", "published_at"),
        ranges={"duration_seconds": (0, 2 * DAY), "enclosure_length": (0, 10**10)},
        regex={"enclosure_url": r"^https?://[^\s/]+"},
        late=("published_at", "30 days"),
        # late: an item first stored in this batch, in a feed stored before, dated 30 days back
        late_filter="b._first_seen_at = b._ingested_at and exists (select 1 from raw.rss_episodes as older "
                    "where older.tenant_id = b.tenant_id and older.feed_url = b.feed_url "
                    "and older._first_seen_at < b._first_seen_at)",
        also_unique=(("tenant_id", "feed_url", "enclosure_url"),),
        quarantine="quarantine.rss_episodes",
    ),
    TableSuite(
        "rss_podcasts",
        key=("tenant_id", "feed_url"), required=("title",), ranges={"episode_count": COUNT},
    ),
    TableSuite(
        "rss_feed_fetches",
        key=("fetch_id",), required=("outcome",), ranges={"bytes": COUNT, "duration_ms": (0, 3_600_000)},
    ),
    TableSuite(
        "listener_events",
        key=("file_key", "line_no", "event_time"), required=("user_agent",),
        # status 0: a logged `000` (CloudFront: the viewer left before any response; Akamai: a 206
        # cut short), stored as a request; the dbt screening decides whether it counts
        ranges={"status": (0, 599), "bytes_sent": COUNT, "ip_version": (4, 6), "object_size": COUNT},
        regex={"method": "^(GET|HEAD)$"},
        late=("event_time", LATE_LAG),
        late_filter="b.event_time < b.log_date - interval '1 day'",
        batch_scoped=True,
    ),
    TableSuite("user_agent_patterns", key=("pattern_set", "ordinal"), tenant_column=None),
    TableSuite(
        "campaigns",
        key=("tenant_id", "campaign_id"),
        ranges={"budget": (0, BIG), "flat_fee": (0, BIG), "cpm_rate": (0, 10_000), "attribution_window_days": (0, 365)},
    ),
    TableSuite("sponsors", key=("tenant_id", "sponsor_id"), required=("name",)),
    TableSuite(
        "placements",
        key=("tenant_id", "placement_id"), required=("feed_url",),
        ranges={"ad_offset_seconds": (0, 2 * DAY), "ad_duration_seconds": (0, 3_600)},
    ),
    TableSuite(
        "attribution_events",
        key=("tenant_id", "source", "event_id", "occurred_at"), required=("event_type",),
        ranges={"gross_revenue": (0, BIG), "refunded_amount": (0, BIG)},
    ),
]}


def _platform_catalog(table: str, key: tuple[str, ...], required: tuple[str, ...] = ("title",)) -> TableSuite:
    return TableSuite(table, key=key, required=required, ranges={"duration_seconds": (0, 2 * DAY)})


def _platform_daily(table: str, key: tuple[str, ...], counts: tuple[str, ...]) -> TableSuite:
    return TableSuite(table, key=key, ranges={c: COUNT for c in counts})


SHOW_EP = ("tenant_id", "show_id", "episode_id")
POD_EP = ("tenant_id", "podcast_id", "episode_id")
for _suite in [
    _platform_catalog("buzzsprout_episodes", POD_EP),
    _platform_daily("buzzsprout_episode_downloads_daily", (*POD_EP, "download_date"), ("downloads",)),
    TableSuite("buzzsprout_episode_download_details", key=(*POD_EP, "download_date", "download_id"),
               required=("country_code",)),
    _platform_catalog("transistor_episodes", SHOW_EP),
    _platform_daily("transistor_episode_downloads_daily", (*SHOW_EP, "download_date"), ("downloads",)),
    _platform_catalog("podbean_episodes", POD_EP),
    _platform_daily("podbean_episode_downloads_daily", (*POD_EP, "download_date"), ("downloads",)),
    _platform_catalog("simplecast_episodes", POD_EP),
    _platform_daily("simplecast_episode_downloads_daily", (*POD_EP, "download_date"), ("downloads",)),
    _platform_daily("simplecast_episode_locations", (*POD_EP, "download_date", "country_code"), ("downloads",)),
    _platform_daily("simplecast_episode_technology", (*POD_EP, "download_date", "dimension", "name"), ("downloads",)),
    TableSuite("simplecast_episode_ad_markers", key=(*POD_EP, "marker_id"), ranges={"offset_seconds": (0, 2 * DAY)}),
    _platform_catalog("apple_episodes", SHOW_EP),
    _platform_daily("apple_episode_metrics_daily", (*SHOW_EP, "metric_date"),
                    ("plays", "listeners", "engaged_listeners", "time_listened_seconds")),
    _platform_daily("apple_show_followers_daily", ("tenant_id", "show_id", "metric_date"),
                    ("followers", "followers_gained", "followers_lost")),
    _platform_catalog("spotify_episodes", SHOW_EP, required=("name",)),
    _platform_daily("spotify_episode_metrics_daily", (*SHOW_EP, "metric_date"), ("starts", "streams", "listeners")),
    _platform_daily("spotify_show_metrics_daily", ("tenant_id", "show_id", "metric_date"),
                    ("starts", "streams", "listeners", "followers")),
    _platform_daily("spotify_show_demographics_daily", ("tenant_id", "show_id", "metric_date", "age_bucket", "gender"),
                    ("listeners",)),
    _platform_daily("megaphone_episode_metrics_daily", ("tenant_id", "network_id", "episode_id", "metric_date"),
                    ("downloads", "unique_listeners", "blacklisted_requests", "bytes_sent", "seconds_downloaded")),
    _platform_catalog("megaphone_episodes", POD_EP),
    # The ad slots detected in episodes' transcripts. (The transcripts, their cues and the chapters
    # are validated by their parser, document by document, and keyed by their tables' primary keys;
    # suites over them at every poll cost more than the fetch and the detection together.)
    TableSuite("ad_slots", key=("tenant_id", "feed_url", "guid", "slot_index"), required=("kind", "evidence"),
               ranges={"start_seconds": (0, 2 * DAY), "end_seconds": (0, 2 * DAY), "confidence": (0, 1)}),
]:
    SUITES[_suite.table] = _suite


# --- the suite in GX ------------------------------------------------------------------------------

def _late_query(suite: TableSuite, rule: Rule, grouped: bool) -> str:
    """Late rows of the table's newest batch; `grouped` gives (tenant, late, rows) per tenant."""
    tenant = suite.tenant_column or "'-'"
    extra = f" and ({rule.batch_filter})" if rule.batch_filter else ""
    late = f"b.{rule.event_time} < b._ingested_at - interval '{rule.max_lag}'{extra}"
    base = (f"with rows_ as (select * from {{batch}}), "
            f"newest as (select _batch_id from rows_ order by _ingested_at desc limit 1) "
            f"select b.{tenant} as tenant_id, count(*) filter (where {late}) as bad, count(*) as total "
            f"from rows_ as b where b._batch_id = (select _batch_id from newest) group by 1")
    return base if grouped else f"select * from ({base}) as t where bad > {round(1 - COMPLETENESS, 6)} * total"


def _quarantine_query(suite: TableSuite, rule: Rule, grouped: bool) -> str:
    """The `quarantined_share` rule: per tenant, the share of the items its feeds offer now that
    are refused (in the quarantine table and not loaded since), over every feed of the tenant.

    An item counts once (whatever its reasons): refused when the quarantine holds it and the raw
    table has no row for it, or only one older than its refusal (it was valid once and a later
    poll refused it); valid when its raw row is newer (it was fixed). Total = the tenant's loaded
    items plus those only ever refused. The rule fails for a tenant with at least
    `QUARANTINE_MIN_ROWS` refused items making up more than `QUARANTINE_LIMIT` of the total: a
    broken source, or a loader that refuses what it should take. It judges the current state,
    not the newest batch: a poll that stored only one broken feed's items would be judged on that
    feed alone, and one feed refusing most of its items is the quarantine working, not a failure.
    `grouped` gives (tenant, refused, total) per tenant; otherwise the failing tenants. GX puts the
    table in place of `{batch}` without an alias when a query joins, and PostgreSQL before 16
    refuses a subquery without one: the query names it."""
    q = rule.quarantine_table
    base = (f"with rows_ as (select * from {{batch}} as batch_), "
            f"refused_items as (select tenant_id, feed_url, item_key, max(guid) as guid, "
            f"max(_ingested_at) as refused_at from {q} group by 1, 2, 3), "
            f"refused as (select r.tenant_id, "
            f"count(*) filter (where b.guid is null or b._ingested_at < r.refused_at) as bad, "
            f"count(*) filter (where b.guid is null) as only_refused "
            f"from refused_items as r left join rows_ as b on b.tenant_id = r.tenant_id "
            f"and b.feed_url = r.feed_url and b.guid = r.guid group by 1), "
            f"loaded as (select tenant_id, count(*) as n from rows_ group by 1) "
            f"select tenant_id, coalesce(refused.bad, 0) as bad, "
            f"coalesce(loaded.n, 0) + coalesce(refused.only_refused, 0) as total "
            f"from loaded full join refused using (tenant_id)")
    return base if grouped else (f"select * from ({base}) as t where bad >= {QUARANTINE_MIN_ROWS} "
                                 f"and bad > {QUARANTINE_LIMIT} * total")


def build_suite(suite: TableSuite):
    import great_expectations as gx

    e = gx.expectations
    out = gx.ExpectationSuite(name=f"raw.{suite.table}")
    for rule in suite.rules():
        meta = {"rule": rule.name}
        if rule.kind == "columns":
            exp = e.ExpectTableColumnsToMatchSet(column_set=list(rule.expected_columns), exact_match=True)
        elif rule.kind == "unique" and len(rule.columns) == 1:
            exp = e.ExpectColumnValuesToBeUnique(column=rule.columns[0])
        elif rule.kind == "unique":
            exp = e.ExpectCompoundColumnsToBeUnique(column_list=list(rule.columns))
        elif rule.kind == "not_null":
            exp = e.ExpectColumnValuesToNotBeNull(column=rule.columns[0], mostly=rule.mostly)
        elif rule.kind == "between":
            exp = e.ExpectColumnValuesToBeBetween(column=rule.columns[0], min_value=rule.min_value,
                                                  max_value=rule.max_value)
        elif rule.kind == "regex":
            exp = e.ExpectColumnValuesToMatchRegex(column=rule.columns[0], regex=rule.regex)
        elif rule.kind == "late":
            exp = e.UnexpectedRowsExpectation(unexpected_rows_query=_late_query(suite, rule, grouped=False),
                                              description=f"late rows ({rule.event_time} over {rule.max_lag} behind)")
        else:
            exp = e.UnexpectedRowsExpectation(unexpected_rows_query=_quarantine_query(suite, rule, grouped=False),
                                              description=f"share of the tenant's current items refused into {rule.quarantine_table}")
        exp.meta = meta
        out.add_expectation(exp)
    return out


def _gx_outcomes(result) -> dict[str, dict[str, Any]]:
    """Rule name -> success and GX's own figures."""
    out = {}
    for r in result.results:
        name = (r.expectation_config.meta or {}).get("rule", r.expectation_config.type)
        figures = r.result or {}
        out[name] = {"success": bool(r.success)}
        for field_name in ("unexpected_percent", "unexpected_count", "observed_value"):
            value = figures.get(field_name)
            if value is not None and field_name != "observed_value":
                out[name][field_name] = round(float(value), 3)
        errors = [info.get("exception_message") for info in (r.exception_info or {}).values()
                  if isinstance(info, dict) and info.get("raised_exception")]
        if (r.exception_info or {}).get("raised_exception"):
            errors.append(r.exception_info.get("exception_message"))
        if errors:
            out[name]["error"] = str(errors[0])[:300]
        if name.startswith("columns_match_set") and not r.success:
            observed = figures.get("observed_value") or []
            out[name]["details"] = {"observed": list(observed)[:60]}
    return out


# --- per-tenant scores in SQL ------------------------------------------------------------------------

def _tenant_measures(conn: psycopg.Connection, suite: TableSuite,
                     batch_id: str | None = None) -> dict[str, dict[str, tuple[int, int]]]:
    """rule -> tenant -> (bad rows, rows) for the rules that have a row-level measure (over the
    rows of `batch_id` for a batch-scoped suite)."""
    table = _rows(suite, batch_id)
    tenant = sql.Identifier(suite.tenant_column) if suite.tenant_column else sql.Literal("-")
    out: dict[str, dict[str, tuple[int, int]]] = {}
    present = {r[0] for r in conn.execute(
        "select column_name from information_schema.columns where table_schema = 'raw' and table_name = %s",
        (suite.table,))}
    measures, names = [], []
    for rule in suite.rules():
        if rule.kind in ("not_null", "between", "regex") and rule.columns[0] in present:
            col = sql.Identifier(rule.columns[0])
            if rule.kind == "not_null":
                cond = sql.SQL("{} is null").format(col)
            elif rule.kind == "regex":
                cond = sql.SQL("{} !~ {}").format(col, sql.Literal(rule.regex))
            else:
                parts = []
                if rule.min_value is not None:
                    parts.append(sql.SQL("{} < {}").format(col, sql.Literal(rule.min_value)))
                if rule.max_value is not None:
                    parts.append(sql.SQL("{} > {}").format(col, sql.Literal(rule.max_value)))
                cond = sql.SQL(" or ").join(parts)
            measures.append(sql.SQL("count(*) filter (where {})").format(cond))
            names.append(rule.name)
        elif rule.kind == "unique" and set(rule.columns) <= present:
            measures.append(sql.SQL("count(*) - count(distinct ({}))").format(
                sql.SQL(", ").join(map(sql.Identifier, rule.columns)) if len(rule.columns) > 1
                else sql.SQL("{}, null").format(sql.Identifier(rule.columns[0]))))
            names.append(rule.name)
    statement = sql.SQL("select {} as tenant, count(*), {} from {} group by 1").format(
        tenant, sql.SQL(", ").join(measures) if measures else sql.SQL("0"), table)
    for row in conn.execute(statement):
        tenant_id, total, *bad = row
        for name, n in zip(names, bad, strict=False):
            out.setdefault(name, {})[tenant_id] = (int(n), int(total))
    for rule in suite.rules():
        if rule.kind in ("late", "quarantine") and (suite.tenant_column or rule.kind == "late"):
            query = (_late_query if rule.kind == "late" else _quarantine_query)(suite, rule, grouped=True)
            try:
                rows = conn.execute(query.replace("{batch}", table.as_string(conn))).fetchall()
            except psycopg.Error:
                conn.rollback()
                continue
            out[rule.name] = {t: (int(b), int(n)) for t, b, n in rows}
    return out


def quality_rows(suite: TableSuite, outcomes: dict[str, dict[str, Any]],
                 measures: dict[str, dict[str, tuple[int, int]]], tenants: list[str]) -> list[dict[str, Any]]:
    """One row per rule and tenant: score = share of good rows (1 or 0 for table-level rules)."""
    rows = []
    for rule in suite.rules():
        outcome = outcomes.get(rule.name, {"success": False, "error": "not evaluated"})
        per_tenant = measures.get(rule.name)
        for tenant in tenants:
            if per_tenant is not None:
                bad, total = per_tenant.get(tenant, (0, 0))
                score = 1.0 if total == 0 else 1 - bad / total
                details = {"bad_rows": bad, "rows": total}
            else:
                score = 1.0 if outcome["success"] else 0.0
                details = {}
            if rule.mostly < 1 and per_tenant is not None:
                passed_tenant = score >= rule.mostly
            elif rule.kind in ("late",) and per_tenant is not None:
                passed_tenant = score >= COMPLETENESS
            elif rule.kind == "quarantine" and per_tenant is not None:
                passed_tenant = not (details["bad_rows"] >= QUARANTINE_MIN_ROWS and score < 1 - QUARANTINE_LIMIT)
            elif per_tenant is not None:
                passed_tenant = details["bad_rows"] == 0
            else:
                passed_tenant = outcome["success"]
            rows.append({"tenant_id": tenant, "check_name": rule.name, "score": round(score, 6),
                         "passed": passed_tenant, "details": {**outcome, **details}})
    return rows


# Older results than the retention go, except the latest of each rule (asset, tenant, check,
# rule): the score and the SLA read the latest, however long ago the rule last ran.
PRUNE_RESULTS = """
    delete from ops.quality_results old
    where old.evaluated_at < now() - make_interval(days => %s)
      and exists (select from ops.quality_results newer
                  where newer.asset = old.asset and newer.check_name = old.check_name and newer.rule = old.rule
                    and newer.tenant_id = old.tenant_id and newer.evaluated_at > old.evaluated_at)"""


def record_results(conn: psycopg.Connection, asset: str, check_name: str, run_id: str | None,
                   rows: list[dict[str, Any]], history_days: int | None = None) -> None:
    """Append rule rows and the asset's score per tenant (`check_name` = the check itself) and
    delete the results older than `history_days` (default: the setting) that a newer result of
    the same rule replaces, in one transaction."""
    evaluated = conn.execute("select now()").fetchone()[0]
    by_tenant: dict[str, list[float]] = {}
    for r in rows:
        by_tenant.setdefault(r["tenant_id"], []).append(r["score"])
    summary = [{"tenant_id": t, "check_name": check_name, "score": round(sum(s) / len(s), 6),
                "passed": all(r["passed"] for r in rows if r["tenant_id"] == t), "details": {"rules": len(s)}}
               for t, s in by_tenant.items()]
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            "insert into ops.quality_results (asset, tenant_id, check_name, rule, score, passed, evaluated_at, "
            "run_id, details) values (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [(asset, r["tenant_id"], check_name, r["check_name"], r["score"], r["passed"], evaluated, run_id,
              json.dumps(r["details"], default=str)) for r in [*rows, *summary]],
        )
        cur.execute(PRUNE_RESULTS, (history_days or get_settings().ops_history_days,))


def _rows(suite: TableSuite, batch_id: str | None) -> sql.Composable:
    """The rows a suite judges, as a FROM item: the table, or one batch of it."""
    if not suite.batch_scoped:
        return sql.Identifier("raw", suite.table)
    return sql.SQL("(select * from {} where _batch_id = {}) as batch_rows").format(
        sql.Identifier("raw", suite.table), sql.Literal(batch_id or ""))


def judged_batch(conn: psycopg.Connection, suite: TableSuite, run_id: str | None) -> str | None:
    """The batch a batch-scoped suite judges: the run's own, else the newest one in the table."""
    if run_id is not None:
        return run_id
    row = conn.execute(sql.SQL("select _batch_id from {} order by _ingested_at desc limit 1").format(
        sql.Identifier("raw", suite.table))).fetchone()
    return row[0] if row else None


def _tenants(conn: psycopg.Connection, suite: TableSuite) -> list[str]:
    """The table's tenants (a batch-scoped suite too: a tenant with no rows in the batch judged
    scores 1, so every run records the same tenants)."""
    if not suite.tenant_column:
        return ["-"]
    query = sql.SQL("select distinct {} from {}").format(sql.Identifier(suite.tenant_column),
                                                        sql.Identifier("raw", suite.table))
    try:
        found = sorted(r[0] for r in conn.execute(query))
    except psycopg.Error:
        conn.rollback()
        found = []
    return found or ["-"]


def evaluate(warehouse: WarehouseResource, suite: TableSuite, run_id: str | None = None) -> tuple[bool, dict[str, Any], list[dict]]:
    """Validate the table (a batch-scoped suite: the run's batch) with GX in the database, score
    it per tenant, record the results."""
    batch_id = None
    if suite.batch_scoped:
        with warehouse.connect() as conn:
            batch_id = judged_batch(conn, suite, run_id)
            query = sql.SQL("select * from {} where _batch_id = {}").format(
                sql.Identifier("raw", suite.table), sql.Literal(batch_id or "")).as_string(conn)
        result = validate_query(warehouse.sqlalchemy_url(), f"raw.{suite.table}", query,
                                lambda: build_suite(suite))
    else:
        result = validate_table(warehouse.sqlalchemy_url(), "raw", suite.table,
                                lambda: build_suite(suite))
    outcomes = _gx_outcomes(result)
    with warehouse.connect() as conn:
        tenants = _tenants(conn, suite)
        measures = _tenant_measures(conn, suite, batch_id)
        rows = quality_rows(suite, outcomes, measures, tenants)
        record_results(conn, "/".join(["raw", suite.table]), suite.check_name, run_id, rows)
    return bool(result.success), outcomes, rows


def _check(suite: TableSuite) -> dg.AssetChecksDefinition:
    rules = ", ".join(r.name for r in suite.rules())

    @dg.asset_check(
        asset=suite.asset_key, name=suite.check_name, blocking=True,
        description=f"Great Expectations suite raw.{suite.table}: {rules}.",
    )
    def _run(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
        success, outcomes, rows = evaluate(warehouse, suite, run_id=context.op_execution_context.run.run_id)
        failed = sorted(name for name, o in outcomes.items() if not o["success"])
        scores = {}
        for r in rows:
            scores.setdefault(r["tenant_id"], []).append(r["score"])
        tenant_scores = {t: round(sum(s) / len(s), 4) for t, s in scores.items()}
        failing_tenants = sorted({r["tenant_id"] for r in rows if not r["passed"]})
        for tenant in failing_tenants:
            rules_failed = sorted(r["check_name"] for r in rows if r["tenant_id"] == tenant and not r["passed"])
            context.log.warning(f"raw.{suite.table}: {', '.join(rules_failed)} below the SLA",
                                extra={"tenant": tenant, "asset": f"raw/{suite.table}"})
        return dg.AssetCheckResult(
            passed=success,
            severity=dg.AssetCheckSeverity.ERROR,
            description="all expectations met" if success else f"failed: {', '.join(failed)}",
            metadata={
                "expectations": dg.MetadataValue.json(outcomes),
                "evaluated": len(outcomes),
                "failed": len(failed),
                "failed_expectations": ", ".join(failed) or "none",
                "failing_tenants": ", ".join(failing_tenants) or "none",
                "data_quality_score": dg.MetadataValue.json(tenant_scores),
            },
        )

    return _run


def raw_table_checks(asset_keys: set[dg.AssetKey] | None = None) -> list[dg.AssetChecksDefinition]:
    """A blocking GX check per raw table (limited to `asset_keys` when given)."""
    return [_check(s) for s in SUITES.values() if asset_keys is None or s.asset_key in asset_keys]


QUALITY_CHECKS = raw_table_checks()

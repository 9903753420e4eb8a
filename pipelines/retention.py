"""Bounded growth of the request-level dbt tables: a daily job deletes their days older than the
dbt var `request_retention_days` (resources/request_retention.py, docs/PARTITIONED_DBT.md)."""

from datetime import date, datetime, timezone

import dagster as dg

from assets.dbt import DBT_POOL, dbt_manifest, effective_vars, request_tables
from resources.request_retention import prune_request_tables
from resources.warehouse import WarehouseResource


class RetentionConfig(dg.Config):
    """`today`: the day the retention counts back from (ISO date; default: today, UTC)."""

    today: str | None = None


# In the dbt pool: never while a dbt build runs, whose window may be the days being deleted.
@dg.op(pool=DBT_POOL, description="Delete the request-level tables' days older than request_retention_days.")
def prune_request_days(context: dg.OpExecutionContext, config: RetentionConfig,
                       warehouse: WarehouseResource) -> dg.Output:
    retention_days = int(effective_vars().get("request_retention_days", 0))
    today = date.fromisoformat(config.today) if config.today else datetime.now(timezone.utc).date()
    with warehouse.connect() as conn:
        deleted = prune_request_tables(conn, request_tables(dbt_manifest()), retention_days, today)
    context.log.info("request-level rows deleted: " + (", ".join(f"{table} {rows:,}" for table, rows in deleted.items())
                                                       or f"none (request_retention_days={retention_days})"))
    return dg.Output(sum(deleted.values()), metadata={
        "retention_days": retention_days, "today": today.isoformat(), "rows_deleted": dg.MetadataValue.json(deleted)})


@dg.job(name="request_table_retention",
        description="Delete the request-level dbt tables' days older than the dbt var request_retention_days "
                    "(90 by default; 0 keeps every day). The facts keep their history.")
def request_table_retention_job():
    prune_request_days()


request_table_retention_schedule = dg.ScheduleDefinition(
    name="request_table_retention_daily", job=request_table_retention_job, cron_schedule="45 3 * * *",
    execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.RUNNING)

RETENTION_JOBS = [request_table_retention_job]
RETENTION_SCHEDULES = [request_table_retention_schedule]

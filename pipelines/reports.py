"""Report jobs, schedules and the sensor that keeps the report partitions in step with the marts.

- `campaign_reports` / `sponsor_reports`: materialize report partitions (schedules pick them).
- `report_on_demand`: one report with run config (campaign or sponsor, date range, template,
  formats, optional email/webhook); registered like the scheduled ones, not an asset partition.
- `report_retention`: removes report files past their expiry (30 days by default), daily.
Schedules: weekly campaign reports (Monday 06:00 UTC), daily reports while a flight is live
(07:00), an end-of-flight report the day after a flight ends (07:30), weekly sponsor roll-ups.
"""


import datetime as dt
from collections.abc import Iterable

import dagster as dg

from assets.reports.assets import (
    CAMPAIGN_PARTITIONS, CAMPAIGN_REPORT, CAMPAIGN_UPSTREAM, SPONSOR_PARTITIONS, SPONSOR_REPORT, SPONSOR_UPSTREAM,
    ReportConfig, deliver, partition_key, report_metadata, valid_partition_key,
)
from assets.reports.content import ReportRequest
from assets.reports.delivery import ReportDeliveryResource
from assets.reports.generate import enforce_retention, generate_report
from assets.gates import require_current_upstream
from assets.quality_gate import asset_graph_of
from assets.run_tags import tenant_tags
from resources.report_store import ReportStoreResource
from resources.warehouse import WarehouseResource

CADENCES = ("weekly", "daily_live", "end_of_flight")


def report_subjects(warehouse: WarehouseResource) -> tuple[list[tuple], list[str]]:
    """(campaign rows (tenant, campaign, flight start, flight end, attribution window),
    sponsor partition keys), from the ROI mart; empty before its first build."""
    with warehouse.connect() as conn:
        exists = conn.execute("select to_regclass('marts.mart_campaign_roi') is not null").fetchone()[0]
        if not exists:
            return [], []
        campaigns = conn.execute(
            "select tenant_id, campaign_id, flight_start, flight_end, attribution_window_days "
            "from marts.mart_campaign_roi where is_selected_model order by tenant_id, campaign_id").fetchall()
        sponsors = [partition_key(t, s) for t, s in conn.execute(
            "select distinct tenant_id, sponsor_id from marts.mart_campaign_roi order by 1, 2")]
    return campaigns, sponsors


def campaigns_due(campaigns: Iterable[tuple], today: dt.date, cadence: str) -> list[str]:
    """Partition keys of the campaigns a schedule reports on `today`:
    weekly         started, and not past its flight end + attribution window;
    daily_live     the flight runs today;
    end_of_flight  the flight ended yesterday."""
    if cadence not in CADENCES:
        raise ValueError(f"unknown report cadence {cadence!r}")
    due = []
    for tenant, campaign, start, end, window in campaigns:
        if cadence == "weekly":
            hit = start <= today <= end + dt.timedelta(days=window or 0)
        elif cadence == "daily_live":
            hit = start <= today <= end
        else:
            hit = end == today - dt.timedelta(days=1)
        if hit:
            due.append(partition_key(tenant, campaign))
    return due


def partition_changes(wanted: list[str], have: set[str]) -> tuple[list[str], list[str], list[str]]:
    """(keys to add, keys to remove, refused keys): a wanted key is added when both its ids are
    valid identifiers (an id that would be a path is never a partition); a key we have is
    removed when it is no longer wanted (its subject left the marts) or is not valid."""
    refused = sorted({k for k in wanted if not valid_partition_key(k)})
    valid = [k for k in wanted if k not in refused]
    return ([k for k in valid if k not in have], sorted(have - set(valid)), refused)


@dg.sensor(minimum_interval_seconds=300, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Keeps a report partition for every campaign and sponsor in marts.mart_campaign_roi: adds "
                       "new ones, removes those that left the mart, refuses ids that are not valid identifiers.")
def report_partitions_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
    campaigns, sponsors = report_subjects(warehouse)
    wanted_campaigns = [partition_key(t, c) for t, c, *_ in campaigns]
    have_campaigns = set(context.instance.get_dynamic_partitions(CAMPAIGN_PARTITIONS.name))
    have_sponsors = set(context.instance.get_dynamic_partitions(SPONSOR_PARTITIONS.name))
    if not campaigns:  # no mart yet, or an empty one: never a reason to drop every partition
        have_campaigns, have_sponsors = set(), set()
    add_campaigns, drop_campaigns, bad_campaigns = partition_changes(wanted_campaigns, have_campaigns)
    add_sponsors, drop_sponsors, bad_sponsors = partition_changes(sponsors, have_sponsors)
    refused = bad_campaigns + bad_sponsors
    if refused:
        context.log.warning(f"{len(refused)} report partition(s) refused, their ids are not valid identifiers: "
                            + ", ".join(map(repr, refused[:10])))
    if not (add_campaigns or drop_campaigns or add_sponsors or drop_sponsors):
        return dg.SkipReason(f"{len(wanted_campaigns) - len(bad_campaigns)} campaign and "
                             f"{len(sponsors) - len(bad_sponsors)} sponsor partitions up to date"
                             + (f"; {len(refused)} refused (invalid ids)" if refused else ""))
    requests = [CAMPAIGN_PARTITIONS.build_add_request(add_campaigns), SPONSOR_PARTITIONS.build_add_request(add_sponsors)]
    requests += [r for keys, r in ((drop_campaigns, CAMPAIGN_PARTITIONS.build_delete_request(drop_campaigns)),
                                   (drop_sponsors, SPONSOR_PARTITIONS.build_delete_request(drop_sponsors))) if keys]
    return dg.SensorResult(dynamic_partitions_requests=requests)


def report_tenant_tags(partition_key: str) -> dict[str, str]:
    """The run tag of the tenant a report partition (`<tenant>:<campaign or sponsor>`) belongs to."""
    return tenant_tags(partition_key.partition(":")[0])


campaign_reports_job = dg.define_asset_job(
    "campaign_reports", selection=dg.AssetSelection.assets(CAMPAIGN_REPORT), partitions_def=CAMPAIGN_PARTITIONS,
    description="Generate a campaign's report (every format) and deliver it when configured.",
)
sponsor_reports_job = dg.define_asset_job(
    "sponsor_reports", selection=dg.AssetSelection.assets(SPONSOR_REPORT), partitions_def=SPONSOR_PARTITIONS,
    description="Generate a sponsor's roll-up report.",
)


def _campaign_schedule(name: str, cron: str, cadence: str):
    @dg.schedule(name=name, job=campaign_reports_job, cron_schedule=cron, execution_timezone="UTC",
                 default_status=dg.DefaultScheduleStatus.RUNNING,
                 description=f"Campaign reports, {cadence.replace('_', ' ')}.")
    def _schedule(context: dg.ScheduleEvaluationContext, warehouse: WarehouseResource):
        today = context.scheduled_execution_time.date()
        campaigns, _ = report_subjects(warehouse)
        registered = set(context.instance.get_dynamic_partitions(CAMPAIGN_PARTITIONS.name))
        keys = [k for k in campaigns_due(campaigns, today, cadence) if k in registered]
        if not keys:
            return dg.SkipReason(f"no campaign due for a {cadence} report on {today}")
        return [dg.RunRequest(run_key=f"{cadence}:{key}:{today}", partition_key=key,
                              tags={"report_cadence": cadence, **report_tenant_tags(key)}) for key in keys]

    return _schedule


weekly_campaign_reports = _campaign_schedule("campaign_reports_weekly", "0 6 * * 1", "weekly")
daily_live_campaign_reports = _campaign_schedule("campaign_reports_daily_live_flight", "0 7 * * *", "daily_live")
end_of_flight_campaign_reports = _campaign_schedule("campaign_reports_end_of_flight", "30 7 * * *", "end_of_flight")


@dg.schedule(name="sponsor_reports_weekly", job=sponsor_reports_job, cron_schedule="0 6 * * 1",
             execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.RUNNING,
             description="Every sponsor's roll-up, weekly.")
def weekly_sponsor_reports(context: dg.ScheduleEvaluationContext):
    today = context.scheduled_execution_time.date()
    keys = context.instance.get_dynamic_partitions(SPONSOR_PARTITIONS.name)
    if not keys:
        return dg.SkipReason("no sponsor partitions yet")
    return [dg.RunRequest(run_key=f"weekly:{key}:{today}", partition_key=key,
                          tags={"report_cadence": "weekly", **report_tenant_tags(key)}) for key in keys]


class OnDemandReportConfig(ReportConfig):
    """A report for one campaign (or one sponsor's roll-up) with its own range, template and formats."""

    tenant_id: str
    campaign_id: str | None = None
    sponsor_id: str | None = None


@dg.op(description="Generate one report as configured, register it, deliver it when asked.")
def generate_report_on_demand(context: dg.OpExecutionContext, config: OnDemandReportConfig,
                              warehouse: WarehouseResource, report_store: ReportStoreResource,
                              report_delivery: ReportDeliveryResource) -> dg.Output:
    scope = "campaign" if config.campaign_id else "sponsor"
    start, end = config.period()
    request = ReportRequest(config.tenant_id, campaign_id=config.campaign_id, sponsor_id=config.sponsor_id,
                            period_start=start, period_end=end, template=config.template)
    require_current_upstream(
        context.instance, asset_graph_of(context), CAMPAIGN_UPSTREAM if scope == "campaign" else SPONSOR_UPSTREAM,
        f"on-demand {scope} report {config.tenant_id}:{config.campaign_id or config.sponsor_id}")
    report = generate_report(warehouse, report_store, request, config.formats, batch_id=context.run.run_id)
    outcomes = deliver(report, config, report_delivery, report_store, warehouse, context.run.run_id, rules=[])
    failed = [o for o in outcomes if not o.succeeded]
    if failed:
        raise dg.Failure(
            description="report generated but not delivered: "
                        + "; ".join(f"{o.channel} to {o.target}: {o.error}" for o in failed),
            metadata=report_metadata(report, outcomes))
    return dg.Output(report.report_id, metadata=report_metadata(report, outcomes))


@dg.job(name="report_on_demand", description="One report with run config: campaign_id or sponsor_id, "
        "period_start/period_end, template, formats, optional email_to and webhook_url.")
def report_on_demand_job():
    generate_report_on_demand()


@dg.op(description="Delete report files past their expiry and mark their registry rows deleted.")
def expire_reports(context: dg.OpExecutionContext, warehouse: WarehouseResource,
                   report_store: ReportStoreResource) -> dg.Output:
    result = enforce_retention(warehouse, report_store)
    context.log.info(f"{result.expired_files} report files expired ({result.removed_files} removed)")
    if result.refused_files:
        context.log.warning(f"{len(result.refused_files)} expired report file(s) registered outside the report store "
                            f"{report_store.root()} were not deleted: {', '.join(result.refused_files[:5])}")
    return dg.Output(result.expired_files, metadata={
        "expired_files": result.expired_files, "removed_files": result.removed_files,
        "kept_files": result.kept_files, "retention_days": report_store.retention_days,
        "refused_files": dg.MetadataValue.json(list(result.refused_files))})


@dg.job(name="report_retention", description="Enforce the report retention (30 days by default).")
def report_retention_job():
    expire_reports()


report_retention_schedule = dg.ScheduleDefinition(
    name="report_retention_daily", job=report_retention_job, cron_schedule="15 3 * * *",
    execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.RUNNING)

REPORT_JOBS = [campaign_reports_job, sponsor_reports_job, report_on_demand_job, report_retention_job]
REPORT_SCHEDULES = [weekly_campaign_reports, daily_live_campaign_reports, end_of_flight_campaign_reports,
                    weekly_sponsor_reports, report_retention_schedule]
REPORT_SENSORS = [report_partitions_sensor]

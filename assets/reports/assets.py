"""Report assets: one campaign report per campaign and one roll-up per sponsor, each a
dynamic partition (`<tenant>:<campaign id>`, `<tenant>:<sponsor id>`) that
`report_partitions_sensor` keeps in step with the marts. A materialization writes every format,
registers the files in reports.reports and, when configured, delivers them; it refuses to run
when an upstream check's latest evaluation failed. A backfill of many partitions runs as one
run (single-run backfill policy): one gate, one process, one report per partition.

A partition is the unit that fails: each one that is made is materialized on its own (an
`AssetMaterialization` of that partition with that report's metadata: status, period, what data
it includes, a link, size and sha256 per file) whatever happens to the others; one that cannot be
made (an invalid key, any error while reading, drawing, rendering or storing) is named with its
error and fails the run after the others are done, and one whose campaign or sponsor left the
marts is skipped with a message (the partitions sensor removes it). Both are recorded on their
partition as an `AssetObservation` with status `failed` or `skipped_subject_gone` and the reason."""


import datetime as dt

import dagster as dg
from dagster._core.storage.tags import AUTOMATION_CONDITION_TAG

from assets.automation import ON_NEW_DATA
from assets.reports.content import FORMATS, ReportError, ReportRequest, SubjectNotFound
from assets.reports.delivery import (DeliveryConfigError, DeliveryOutcome, RecipientRule, ReportDeliveryResource,
                                     recipients_for, send_email, send_webhook)
from assets.reports.generate import GeneratedReport, generate_report
from assets.gates import require_current_upstream
from resources.identifiers import is_valid_identifier
from assets.quality_gate import asset_graph_of
from resources.settings import get_settings
from resources.report_store import ReportStoreResource
from resources.warehouse import WarehouseResource

CAMPAIGN_PARTITIONS = dg.DynamicPartitionsDefinition(name="report_campaigns")
SPONSOR_PARTITIONS = dg.DynamicPartitionsDefinition(name="report_sponsors")
CAMPAIGN_REPORT = dg.AssetKey(["reports", "campaign_report"])
SPONSOR_REPORT = dg.AssetKey(["reports", "sponsor_report"])
REPORT_KEYS = [CAMPAIGN_REPORT, SPONSOR_REPORT]

CAMPAIGN_UPSTREAM = [*(dg.AssetKey(["marts", name]) for name in (
    "mart_campaign_roi", "fct_campaign_performance_daily", "mart_campaign_roi_by_placement", "mart_roi_benchmarks",
    "mart_campaign_lift", "fct_attributed_conversions", "fct_downloads_daily_by_show", "fct_downloads_daily_by_tenant",
    "dim_podcasts",
)), dg.AssetKey(["intermediate", "int_placement_episodes"])]
SPONSOR_UPSTREAM = [dg.AssetKey(["marts", name]) for name in ("mart_sponsor_roi", "mart_campaign_roi",
                                                                "fct_attributed_conversions")]
# Day-partitioned marts (docs/PARTITIONED_DBT.md) a report reads over its whole period.
DAILY_PARTITIONED_UPSTREAM = {dg.AssetKey(["marts", name]) for name in (
    "fct_downloads_daily_by_show", "fct_downloads_daily_by_tenant", "fct_attributed_conversions")}


def report_deps(keys: list[dg.AssetKey]) -> list[dg.AssetDep]:
    """A report's dependencies: every day of a day-partitioned mart, the other marts whole."""
    return [dg.AssetDep(key, partition_mapping=dg.AllPartitionMapping() if key in DAILY_PARTITIONED_UPSTREAM else None)
            for key in keys]

DELIVERY_CHECK = "deliveries_succeeded"


def partition_key(tenant_id: str, subject_id: str) -> str:
    return f"{tenant_id}:{subject_id}"


def valid_partition_key(key: str) -> bool:
    tenant, sep, subject = key.partition(":")
    return bool(sep) and is_valid_identifier(tenant) and is_valid_identifier(subject)


def split_partition_key(key: str) -> tuple[str, str]:
    if not valid_partition_key(key):
        raise ReportError(f"report partition {key!r} is not '<tenant>:<id>' with two valid identifiers "
                          "(letters, digits, '.', '_' or '-', starting with a letter or digit)")
    tenant, _, subject = key.partition(":")
    return tenant, subject


class ReportConfig(dg.Config):
    """How a report is produced. The defaults are the scheduled report's."""

    template: str = "standard"
    formats: list[str] = list(FORMATS)
    period_start: str | None = None     # YYYY-MM-DD; default: the flight's start
    period_end: str | None = None       # YYYY-MM-DD; default: flight end + attribution window, cut at today
    email_to: list[str] = []
    webhook_url: str | None = None

    def period(self) -> tuple[dt.date | None, dt.date | None]:
        try:
            return (dt.date.fromisoformat(self.period_start) if self.period_start else None,
                    dt.date.fromisoformat(self.period_end) if self.period_end else None)
        except ValueError as exc:
            raise ReportError(f"period dates must be YYYY-MM-DD: {exc}") from exc


def deliver(report: GeneratedReport, config: ReportConfig, delivery: ReportDeliveryResource,
            store: ReportStoreResource, warehouse: WarehouseResource, run_id: str,
            rules: list[RecipientRule]) -> list[DeliveryOutcome]:
    """Send the report to the run's own recipients (config) and to the ones the recipients
    file's `rules` give its campaign or sponsor (an on-demand report passes none: it goes to
    whoever asked for it): one email to every address, one notice per webhook."""
    content = report.content
    emails, hooks = recipients_for(rules, content.tenant_id, content.sponsor_id, content.campaign_id)
    emails = list(dict.fromkeys([*config.email_to, *emails]))
    hooks = list(dict.fromkeys([*([config.webhook_url] if config.webhook_url else []), *hooks]))
    outcomes = []
    if emails:
        outcomes.append(send_email(delivery, store, warehouse, report, emails, run_id))
    for url in hooks:
        outcomes.append(send_webhook(delivery, warehouse, report, url, run_id))
    return outcomes


FILES_SCHEMA = dg.TableSchema(columns=[
    dg.TableColumn("file", "string", description="format, and the table for a CSV part"),
    dg.TableColumn("url", "string", description="where the file is (a path in a local report store)"),
    dg.TableColumn("size_bytes", "int"),
    dg.TableColumn("sha256", "string", description="checksum of the file's bytes"),
])


def _link(url: str) -> dg.MetadataValue:
    return dg.MetadataValue.url(url) if "://" in url else dg.MetadataValue.path(url)


def report_metadata(report: GeneratedReport, outcomes: list[DeliveryOutcome]) -> dict:
    """What one report partition's materialization records: its own files (a link each, and a
    table with their sizes and checksums), what data it includes, its period and status."""
    content = report.content
    names = {f: f"{f.format}{'/' + f.part if f.part else ''}" for f in report.files}
    return {
        "status": "made",
        "report_id": report.report_id,
        "attribution_model": content.attribution_model,
        "period": f"{content.period_start} to {content.period_end}",
        "data_freshness": dg.MetadataValue.json(content.freshness),
        "files": dg.MetadataValue.table(
            [dg.TableRecord({"file": names[f], "url": f.url, "size_bytes": f.size_bytes, "sha256": f.checksum_sha256})
             for f in report.files], schema=FILES_SCHEMA),
        **{f"file/{names[f]}": _link(f.url) for f in report.files},
        "bytes": sum(f.size_bytes for f in report.files),
        "expires_at": report.expires_at.isoformat(),
        "generation_seconds": report.seconds,
        "reused_unchanged_report": report.reused,
        "dagster/row_count": sum(len(t.rows) for t in content.tables.values()),
        "deliveries": dg.MetadataValue.json([{"channel": o.channel, "target": o.target, "succeeded": o.succeeded,
                                              "attempts": o.attempts, "error": o.error} for o in outcomes]),
    }


def not_made(context: dg.AssetExecutionContext, key: str, status: str, reason: str) -> dg.AssetObservation:
    """A partition the run did not make, recorded on that partition (an observation: it stays
    unmaterialized): `skipped_subject_gone` or `failed`, and why."""
    return dg.AssetObservation(asset_key=context.asset_key, partition=key,
                               metadata={"status": status, "reason": reason, "run_id": context.run.run_id})


def _materialize(context: dg.AssetExecutionContext, config: ReportConfig, warehouse: WarehouseResource,
                 report_store: ReportStoreResource, report_delivery: ReportDeliveryResource, upstream, scope: str):
    """One report per partition of the run (one partition from a schedule; every selected one
    in a single run from a backfill)."""
    keys = list(context.partition_keys)
    require_current_upstream(
        context.instance, asset_graph_of(context), upstream,
        f"{scope} report{'s' if len(keys) > 1 else ''} {', '.join(keys[:5])}{' …' if len(keys) > 5 else ''}",
        wait_seconds=get_settings().report_wait_for_builds_seconds, log=context.log)
    try:
        rules = report_delivery.rules()  # read once; a bad file stops the run before any report is made
    except DeliveryConfigError as exc:
        raise dg.Failure(description=str(exc)) from exc
    if context.run.tags.get(AUTOMATION_CONDITION_TAG) == "true":
        # Automation (ON_NEW_DATA) makes a partition again when a mart it reads has new data, and
        # makes a new one: registered, not sent (the report schedules send).
        rules = []
    start, end = config.period()
    done: dict[str, tuple[GeneratedReport, list[DeliveryOutcome]]] = {}
    errors: dict[str, str] = {}
    skipped: dict[str, str] = {}
    for key in keys:
        try:
            tenant, subject = split_partition_key(key)
            request = ReportRequest(tenant, campaign_id=subject if scope == "campaign" else None,
                                    sponsor_id=subject if scope == "sponsor" else None,
                                    period_start=start, period_end=end, template=config.template)
            report = generate_report(warehouse, report_store, request, config.formats, batch_id=context.run.run_id)
            outcomes = deliver(report, config, report_delivery, report_store, warehouse, context.run.run_id, rules)
        except SubjectNotFound as exc:
            skipped[key] = str(exc)
            context.log.warning(f"{scope} report {key} skipped: {exc}")
            yield not_made(context, key, "skipped_subject_gone", skipped[key])
            continue
        except ReportError as exc:
            errors[key] = str(exc)
            context.log.error(f"{scope} report {key} not generated: {exc}")
            yield not_made(context, key, "failed", errors[key])
            continue
        except Exception as exc:  # one partition's failure (a chart, a file, the store) never stops the others
            errors[key] = f"{type(exc).__name__}: {exc}"
            context.log.exception(f"{scope} report {key} not generated")
            yield not_made(context, key, "failed", errors[key])
            continue
        done[key] = (report, outcomes)
        yield dg.AssetMaterialization(asset_key=context.asset_key, partition=key,
                                      metadata=report_metadata(report, outcomes))
    summary = {"generated": len(done), "not_generated": dg.MetadataValue.json(errors),
               "skipped_subject_gone": dg.MetadataValue.json(skipped)}
    if errors:
        raise dg.Failure(description=f"{len(errors)} of {len(keys)} report(s) not generated "
                                     f"({len(done)} generated, {len(skipped)} skipped): "
                                     + "; ".join(f"{k}: {v}" for k, v in errors.items()), metadata=summary)
    outcomes = [o for _, delivered in done.values() for o in delivered]
    failed = [o for o in outcomes if not o.succeeded]
    yield dg.AssetCheckResult(
        check_name=DELIVERY_CHECK, passed=not failed,
        severity=dg.AssetCheckSeverity.WARN,
        description=("; ".join(f"{o.channel} to {o.target}: {o.error} after {o.attempts} attempt(s)" for o in failed)
                     or (f"{len(outcomes)} delivery(ies) succeeded" if outcomes else "no delivery configured")),
        metadata={"deliveries": len(outcomes), "failed": len(failed), **summary},
    )


@dg.asset(
    key=CAMPAIGN_REPORT, partitions_def=CAMPAIGN_PARTITIONS, deps=report_deps(CAMPAIGN_UPSTREAM), group_name="reports",
    output_required=False,  # each partition made is an AssetMaterialization of its own
    backfill_policy=dg.BackfillPolicy.single_run(), automation_condition=ON_NEW_DATA,
    kinds={"python", "pdf", "html"},
    check_specs=[dg.AssetCheckSpec(DELIVERY_CHECK, asset=CAMPAIGN_REPORT,
                                   description="Every configured delivery (email, webhook) of the report succeeded.")],
    description="A sponsor-facing campaign report (HTML with charts, PDF, CSV, XLSX, JSON) from the attribution "
                "and download marts, registered in reports.reports; refused when an upstream check failed.",
)
def campaign_report(context: dg.AssetExecutionContext, config: ReportConfig, warehouse: WarehouseResource,
                    report_store: ReportStoreResource, report_delivery: ReportDeliveryResource):
    yield from _materialize(context, config, warehouse, report_store, report_delivery, CAMPAIGN_UPSTREAM, "campaign")


@dg.asset(
    key=SPONSOR_REPORT, partitions_def=SPONSOR_PARTITIONS, deps=report_deps(SPONSOR_UPSTREAM), group_name="reports",
    output_required=False,  # each partition made is an AssetMaterialization of its own
    backfill_policy=dg.BackfillPolicy.single_run(), automation_condition=ON_NEW_DATA,
    kinds={"python", "pdf", "html"},
    check_specs=[dg.AssetCheckSpec(DELIVERY_CHECK, asset=SPONSOR_REPORT,
                                   description="Every configured delivery (email, webhook) of the report succeeded.")],
    description="A sponsor's roll-up of all its campaigns, in every format, registered in reports.reports.",
)
def sponsor_report(context: dg.AssetExecutionContext, config: ReportConfig, warehouse: WarehouseResource,
                   report_store: ReportStoreResource, report_delivery: ReportDeliveryResource):
    yield from _materialize(context, config, warehouse, report_store, report_delivery, SPONSOR_UPSTREAM, "sponsor")


REPORT_ASSETS = [campaign_report, sponsor_report]

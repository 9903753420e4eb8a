"""Alerts: a failed run or a failed asset check is posted to a webhook (Slack-compatible payload:
`text` plus `blocks`), configured with `PODCAST_ALERT_WEBHOOK_URL`. Without it the sensors skip.

Each post is timed into `ops.operation_timings`: the POST itself (`delivery_attempt`, integration
`alert_webhook`) and, once accepted, how long after the failure it went out (`alert_delivery`).

The webhook URL stays in the environment: an error about a post names it redacted, and every URL
in an alert's text is redacted before it is posted (`resources.redaction`)."""

import time

import dagster as dg
import httpx
from dagster._core.events import DagsterEventType

from resources.timings import Timing, record_timings
from resources.redaction import redact_text
from resources.settings import get_settings
from resources.warehouse import WarehouseResource

MAX_CHECKS_PER_ALERT = 20
# Check evaluations read per tick of `alert_on_check_failure`: a backlog (the first start, a long
# stop) is worked off a page a tick, and the cursor stays one storage id however long it was.
CHECK_EVALUATIONS_PER_TICK = 1000


class AlertNotPosted(Exception):
    """The alert webhook could not be reached or refused the alert (its URL redacted)."""


def post_alert(url: str, payload: dict, timeout: float = 10.0) -> None:
    """POST the payload; a webhook that refuses it raises AlertNotPosted, whose message (shown
    on the sensor tick) names the URL redacted and keeps no chained error that would quote it."""
    try:
        response = httpx.post(url, json=payload, timeout=timeout)
        response.raise_for_status()
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise AlertNotPosted(redact_text(f"alert webhook: {type(exc).__name__}: {exc}", url)) from None


def post_timed(warehouse: WarehouseResource, url: str, payload: dict, alert: str, failed_at: list[float]) -> None:
    """`post_alert`, recording the attempt and, when accepted, the latency from each failure
    (`failed_at`: epoch seconds) to the webhook's answer."""
    started = time.perf_counter()
    try:
        post_alert(url, payload)
    except Exception:
        record_timings(warehouse, [Timing("delivery_attempt", time.perf_counter() - started, "failure",
                                              subject=alert, detail="alert_webhook"),
                                       Timing("alert_delivery", time.perf_counter() - started, "failure",
                                              subject=alert, detail="alert_webhook")])
        raise
    posted = time.time()
    record_timings(warehouse, [
        Timing("delivery_attempt", time.perf_counter() - started, "success", subject=alert, detail="alert_webhook"),
        *(Timing("alert_delivery", max(0.0, posted - when), "success", subject=alert, detail="alert_webhook")
          for when in failed_at),
    ])


def slack_payload(title: str, lines: list[str], fields: dict[str, str]) -> dict:
    title, lines = redact_text(title), [redact_text(line) for line in lines]
    fields = {k: redact_text(v) for k, v in fields.items()}
    text = f"{title}\n" + "\n".join(lines)
    return {
        "text": text,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)[:2900] or title}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in fields.items()][:10]},
        ],
    }


def run_failure_payload(run: dg.DagsterRun, message: str) -> dict:
    return slack_payload(
        f"Run failed: {run.job_name}",
        [message],
        {"run_id": run.run_id, "job": run.job_name,
         "assets": ", ".join(sorted(k.to_user_string() for k in (run.asset_selection or [])))[:500] or "all in job"},
    )


def check_failure_payload(evaluations: list[tuple[str, dg.AssetCheckEvaluation]]) -> dict:
    lines = [f"• {e.asset_key.to_user_string()} / {e.check_name}: {e.description or 'failed'} (run {run_id[:8]})"
             for run_id, e in evaluations[:MAX_CHECKS_PER_ALERT]]
    if len(evaluations) > MAX_CHECKS_PER_ALERT:
        lines.append(f"… and {len(evaluations) - MAX_CHECKS_PER_ALERT} more")
    blocking = sum(1 for _, e in evaluations if e.blocking)
    return slack_payload(f"{len(evaluations)} asset check(s) failed", lines,
                         {"blocking": str(blocking), "assets": str(len({e.asset_key for _, e in evaluations}))})


@dg.run_failure_sensor(
    name="alert_on_run_failure", monitor_all_code_locations=True, default_status=dg.DefaultSensorStatus.RUNNING,
    description="Posts every failed run to the alert webhook (PODCAST_ALERT_WEBHOOK_URL).",
)
def alert_on_run_failure(context: dg.RunFailureSensorContext, warehouse: WarehouseResource):
    url = get_settings().alert_webhook_url
    if not url:
        return dg.SkipReason("PODCAST_ALERT_WEBHOOK_URL is not set")
    message = context.failure_event.message or "the run failed"
    record = context.instance.get_run_record_by_id(context.dagster_run.run_id)
    failed_at = record.end_time if record is not None else None  # when the run was marked failed
    post_timed(warehouse, url, run_failure_payload(context.dagster_run, message), "run_failure",
               [failed_at] if failed_at is not None else [])
    return None


@dg.sensor(
    name="alert_on_check_failure", minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
    description="Posts asset checks that failed since the last tick to the alert webhook.",
)
def alert_on_check_failure(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
    records = context.instance.get_event_records(
        dg.EventRecordsFilter(event_type=DagsterEventType.ASSET_CHECK_EVALUATION,
                              after_cursor=int(context.cursor) if context.cursor else None),
        limit=CHECK_EVALUATIONS_PER_TICK, ascending=True,
    )
    if not records:
        return dg.SkipReason("no check evaluated since the last tick")
    cursor = str(records[-1].storage_id)
    failed_records = [r for r in records if not r.event_log_entry.dagster_event.event_specific_data.passed]
    failed = [(r.run_id, r.event_log_entry.dagster_event.event_specific_data) for r in failed_records]
    url = get_settings().alert_webhook_url
    if failed and url:
        post_timed(warehouse, url, check_failure_payload(failed), "check_failure",
                   [r.event_log_entry.timestamp for r in failed_records])
    context.update_cursor(cursor)
    return dg.SkipReason(f"{len(failed)} failed check(s) " + ("posted" if url and failed else "not posted"))


ALERT_SENSORS = [alert_on_run_failure, alert_on_check_failure]

"""Alert sensors post Slack-compatible payloads to a real webhook server on loopback."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import psycopg
import pytest

from pipelines.alerts import alert_on_check_failure, alert_on_run_failure
from resources.settings import get_settings
from resources.warehouse import WarehouseResource


@pytest.fixture
def webhook(monkeypatch):
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"content_type": self.headers["Content-Type"], "json": json.loads(body)})
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("PODCAST_ALERT_WEBHOOK_URL", f"http://127.0.0.1:{server.server_address[1]}/hooks/alerts")
    get_settings.cache_clear()
    yield received
    server.shutdown()
    get_settings.cache_clear()


@pytest.fixture
def warehouse(new_warehouse):
    return new_warehouse("t_alert_wh")


@pytest.fixture
def instance(new_warehouse):
    """A Dagster instance on PostgreSQL storage, as deployed (event log cursors are storage ids)."""
    from pipelines.cli import psycopg2_url

    url = psycopg2_url(new_warehouse("t_alerts"))
    with dg.instance_for_test(overrides={"storage": {"postgres": {"postgres_url": url}}}) as instance:
        yield instance


def timings(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute("select operation, subject, detail, outcome, seconds from ops.operation_timings "
                            "order by timing_id").fetchall()


@dg.asset
def breaks():
    raise ValueError("the feed host is down")


@dg.asset
def counted():
    return 1


@dg.asset_check(asset=counted)
def never_negative():
    return dg.AssetCheckResult(passed=False, description="3 negative counts")


def run_failure_event(instance, run_id):
    from dagster._core.events import DagsterEventType

    [record] = instance.get_records_for_run(run_id, of_type=DagsterEventType.RUN_FAILURE).records
    return record.event_log_entry.dagster_event


def test_failed_run_and_failed_check_are_posted_once(webhook, instance, warehouse):
    resources = {"warehouse": WarehouseResource(database_url=warehouse)}
    failed = dg.materialize([breaks], instance=instance, raise_on_error=False)
    assert not failed.success
    failure = run_failure_event(instance, failed.run_id)
    context = dg.build_run_status_sensor_context(
        sensor_name="alert_on_run_failure", dagster_instance=instance, resources=resources,
        dagster_run=instance.get_run_by_id(failed.run_id), dagster_event=failure).for_run_failure()
    alert_on_run_failure(context)
    assert len(webhook) == 1
    payload = webhook[0]["json"]
    assert webhook[0]["content_type"] == "application/json"
    assert payload["text"].startswith("Run failed: __ephemeral_asset_job__")
    assert payload["blocks"][0]["type"] == "header"
    assert {"type": "mrkdwn", "text": f"*run_id*\n{failed.run_id}"} in payload["blocks"][2]["fields"]

    checked = dg.materialize([counted, never_negative], instance=instance)
    assert checked.success  # a non-blocking check: the run goes on, the alert goes out
    sensor_context = dg.build_sensor_context(instance=instance, resources=resources)
    alert_on_check_failure(sensor_context)
    assert len(webhook) == 2
    assert "counted / never_negative: 3 negative counts" in webhook[1]["json"]["text"]
    # The cursor moved past it: the next tick posts nothing.
    alert_on_check_failure(dg.build_sensor_context(instance=instance, cursor=sensor_context.cursor,
                                                   resources=resources))
    assert len(webhook) == 2
    # Each post is one attempt of the alert_webhook integration, and one latency per failure alerted.
    rows = timings(warehouse)
    assert [(op, subject, detail, outcome) for op, subject, detail, outcome, _ in rows] == [
        ("delivery_attempt", "run_failure", "alert_webhook", "success"),
        ("alert_delivery", "run_failure", "alert_webhook", "success"),
        ("delivery_attempt", "check_failure", "alert_webhook", "success"),
        ("alert_delivery", "check_failure", "alert_webhook", "success"),
    ]
    assert all(seconds >= 0 for *_, seconds in rows)


def test_a_refused_alert_is_recorded_as_a_failed_attempt(monkeypatch, instance, warehouse):
    monkeypatch.setenv("PODCAST_ALERT_WEBHOOK_URL", "http://127.0.0.1:9/closed")  # nothing listens on port 9
    get_settings.cache_clear()
    try:
        result = dg.materialize([breaks], instance=instance, raise_on_error=False)
        context = dg.build_run_status_sensor_context(
            sensor_name="alert_on_run_failure", dagster_instance=instance,
            resources={"warehouse": WarehouseResource(database_url=warehouse)},
            dagster_run=instance.get_run_by_id(result.run_id),
            dagster_event=run_failure_event(instance, result.run_id)).for_run_failure()
        with pytest.raises(Exception):  # noqa: B017 (the tick shows the connection error)
            alert_on_run_failure(context)
    finally:
        get_settings.cache_clear()
    assert [(op, outcome) for op, _, _, outcome, _ in timings(warehouse)] == [
        ("delivery_attempt", "failure"), ("alert_delivery", "failure")]


def test_without_a_webhook_nothing_is_posted(monkeypatch, instance):
    monkeypatch.delenv("PODCAST_ALERT_WEBHOOK_URL", raising=False)
    get_settings.cache_clear()
    try:
        result = dg.materialize([breaks], instance=instance, raise_on_error=False)
        failure = run_failure_event(instance, result.run_id)
        context = dg.build_run_status_sensor_context(
            sensor_name="alert_on_run_failure", dagster_instance=instance,
            resources={"warehouse": WarehouseResource(database_url="postgresql://unused/unused")},
            dagster_run=instance.get_run_by_id(result.run_id), dagster_event=failure).for_run_failure()
        assert isinstance(alert_on_run_failure(context), dg.SkipReason)
    finally:
        get_settings.cache_clear()


MANY_CHECKS = 40


@dg.multi_asset_check(specs=[dg.AssetCheckSpec(f"rule_{n:02d}", asset=counted) for n in range(MANY_CHECKS)])
def many_rules():
    for n in range(MANY_CHECKS):
        yield dg.AssetCheckResult(check_name=f"rule_{n:02d}", passed=n % 3 != 0, description=f"rule {n} broken")


def test_the_check_alert_cursor_stays_one_storage_id_and_posts_every_failure_once(webhook, instance, warehouse,
                                                                                   monkeypatch):
    """A backlog of evaluations (two runs of 40 checks, 28 failed) read 7 a tick: each failure is
    posted once, none is lost, and the cursor is one storage id however many were read."""
    import re

    from pipelines import alerts

    monkeypatch.setattr(alerts, "CHECK_EVALUATIONS_PER_TICK", 7)
    runs = [dg.materialize([counted, many_rules], instance=instance).run_id for _ in range(2)]
    resources = {"warehouse": WarehouseResource(database_url=warehouse)}
    cursor, cursors, ticks = None, [], 0
    while ticks < 50:
        context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources)
        result = alert_on_check_failure(context)
        ticks += 1
        if context.cursor == cursor:
            assert result.skip_message == "no check evaluated since the last tick"
            break
        cursor = context.cursor
        cursors.append(cursor)
    assert ticks == -(-2 * MANY_CHECKS // 7) + 1  # every page, then one tick with nothing new
    assert all(re.fullmatch(r"[0-9]{1,19}", c) for c in cursors)
    assert [int(c) for c in cursors] == sorted({int(c) for c in cursors})  # it only moves forward
    posted = [re.findall(r"counted / (rule_\d+): rule \d+ broken \(run (\w+)\)", hook["json"]["text"])
              for hook in webhook]
    assert all(0 < len(lines) <= 7 for lines in posted)
    failed = [(name, run[:8]) for lines in posted for name, run in lines]
    expected = [(f"rule_{n:02d}", run[:8]) for run in runs for n in range(MANY_CHECKS) if n % 3 == 0]
    assert sorted(failed) == sorted(expected) and len(failed) == len(set(failed)) == 28

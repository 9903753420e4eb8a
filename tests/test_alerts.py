"""Alert sensors post Slack-compatible payloads to a real webhook server on loopback."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest

from pipelines.alerts import alert_on_check_failure, alert_on_run_failure
from pipelines.settings import get_settings


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
def instance(new_warehouse):
    """A Dagster instance on PostgreSQL storage, as deployed (event log cursors are storage ids)."""
    from pipelines.cli import psycopg2_url

    url = psycopg2_url(new_warehouse("t_alerts"))
    with dg.instance_for_test(overrides={"storage": {"postgres": {"postgres_url": url}}}) as instance:
        yield instance


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


def test_failed_run_and_failed_check_are_posted_once(webhook, instance):
    failed = dg.materialize([breaks], instance=instance, raise_on_error=False)
    assert not failed.success
    failure = run_failure_event(instance, failed.run_id)
    context = dg.build_run_status_sensor_context(
        sensor_name="alert_on_run_failure", dagster_instance=instance,
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
    sensor_context = dg.build_sensor_context(instance=instance)
    alert_on_check_failure(sensor_context)
    assert len(webhook) == 2
    assert "counted / never_negative: 3 negative counts" in webhook[1]["json"]["text"]
    # The cursor moved past it: the next tick posts nothing.
    alert_on_check_failure(dg.build_sensor_context(instance=instance, cursor=sensor_context.cursor))
    assert len(webhook) == 2


def test_without_a_webhook_nothing_is_posted(monkeypatch, instance):
    monkeypatch.delenv("PODCAST_ALERT_WEBHOOK_URL", raising=False)
    get_settings.cache_clear()
    try:
        result = dg.materialize([breaks], instance=instance, raise_on_error=False)
        failure = run_failure_event(instance, result.run_id)
        context = dg.build_run_status_sensor_context(
            sensor_name="alert_on_run_failure", dagster_instance=instance,
            dagster_run=instance.get_run_by_id(result.run_id), dagster_event=failure).for_run_failure()
        assert isinstance(alert_on_run_failure(context), dg.SkipReason)
    finally:
        get_settings.cache_clear()

"""End to end: `podcast-analytics demo` twice in a fresh data directory, then `status` and `stop`.

No test here asserts how long anything takes: the timeouts only catch a hang."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, query
from tests.test_privacy_minimisation import PERSONAL, personal_data_in_tables

# Two demos in the session's `demo_runs` fixture (tests/conftest.py), each a few minutes on a busy
# machine: the first test to use it pays for both.
pytestmark = pytest.mark.timeout(3600)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli(*args, env):
    exe = Path(sys.executable).with_name("podcast-analytics")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=1500)


def test_demo_runs_to_completion_with_ground_truth(demo_runs):
    data_dir, _, first, _, url = demo_runs
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "marts.dim_episodes" in first.stdout and "Checks passed" in first.stdout
    truth = json.loads((data_dir / "simulator" / "ground_truth.json").read_text())
    valid = {(e["feed_url"], e["guid"]) for e in truth["episodes"] if e["valid"]}
    invalid = {(e["feed_url"], e["guid"], e["reason_code"]) for e in truth["episodes"] if not e["valid"]}
    assert set(query(url, "select feed_url, guid from marts.dim_episodes")) == valid
    assert set(query(url, "select feed_url, guid, reason_code from quarantine.rss_episodes")) == invalid
    bad_feeds = {(f["feed_url"], f["reason_code"]) for f in truth["feeds"] if f["expected"] == "quarantined"}
    assert set(query(url, "select feed_url, reason_code from quarantine.rss_feeds")) == bad_feeds
    assert (data_dir / "dagster_home" / "dagster.yaml").exists()
    logs = json.loads((data_dir / "simulator" / "logs_truth.json").read_text())
    loaded = query(url, "select count(*) from raw.listener_events")[0][0]
    damaged, not_downloads = query(url, "select count(*) filter (where reason_code <> 'not_a_download'), "
                                        "count(*) filter (where reason_code = 'not_a_download') "
                                        "from quarantine.listener_events")[0]
    assert damaged == logs["damaged_lines"] > 0 and not_downloads == logs["non_download_lines"] > 0
    assert loaded + damaged + not_downloads == logs["lines"]
    formats = dict(query(url, "select tenant_id, string_agg(distinct format, ',') from ops.listener_log_files group by 1"))
    assert formats == {"northwind": "s3", "riverbend": "cloudfront", "summit": "combined"}


def test_demo_downloads_equal_the_iab_ground_truth(demo_runs):
    data_dir, _, first, _, url = demo_runs
    logs = json.loads((data_dir / "simulator" / "logs_truth.json").read_text())
    want = {(d["tenant_id"], d["enclosure_url_normalized"].split("://", 1)[1], d["day"]): d["downloads"]
            for d in logs["downloads"]}
    got = {(t, m, d): n for t, m, d, n in query(url, """
        select f.tenant_id, m.media_key, f.download_date::text, count(*)
        from marts.fct_downloads f join intermediate.int_episode_media m using (episode_id)
        group by 1, 2, 3""")}
    assert sum(want.values()) > 1000
    assert got == want
    # CloudFront's `000` lines (the client left before any response) pass the status rule as a 206
    # cut short and are excluded by the first other rule they fail: none counts.
    assert query(url, "select count(*), count(*) filter (where exclusion_reason is null) "
                      "from intermediate.int_downloads_iab_filtered where status = 0") == [(logs["closed_lines"], 0)]
    assert logs["closed_lines"] > 0
    reasons = dict(query(url, "select exclusion_reason, count(*) from intermediate.int_downloads_iab_filtered "
                              "where exclusion_reason is not null and status <> 0 group by 1"))
    # Every kind of request the simulator planted is excluded for its own reason.
    assert {"bot", "watchos_dup", "datacenter_ip", "two_byte_range", "high_volume_ip", "below_threshold",
            "head", "status_304", "bad_status", "unmatched_media"} <= set(reasons)
    assert reasons["bot"] == logs["sessions"]["bot"] and reasons["high_volume_ip"] == logs["sessions"]["busy_ip"]
    # Requests for files no feed lists: by host + path, or (summit logs no host) by path alone.
    unmatched = query(url, "select f.exclusion_reason, f.tenant_id, f.media_key, s.path "
                           "from intermediate.int_downloads_iab_filtered f "
                           "join intermediate.int_listener_requests_screened s using (request_id) "
                           "where f.exclusion_reason in ('unmatched_media', 'unmatched_media_path')")
    assert {(reason, tenant) for reason, tenant, _, _ in unmatched} == {
        ("unmatched_media", "northwind"), ("unmatched_media", "riverbend"), ("unmatched_media_path", "summit")}
    assert {(tenant, key or path) for _, tenant, key, path in unmatched} == {
        (d["tenant_id"], d["url"] if d["tenant_id"] != "summit" else "/" + d["url"].split("/", 1)[1])
        for d in logs["unmatched_downloads"]}
    runs = query(url.replace("/podcast?", "/dagster?"), "select status from runs")
    assert ("SUCCESS",) in runs  # the run is recorded in the Dagster instance (Postgres storage)


def test_second_demo_changes_no_row_counts_and_uses_conditional_get(demo_runs):
    _, _, first, second, url = demo_runs
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]

    def table_lines(out):
        return {line for line in out.splitlines() if "│ marts." in line or "│ staging." in line
                or "│ quarantine." in line or "│ raw.rss_episodes" in line or "│ raw.rss_podcasts" in line
                or "│ raw.listener_events" in line}

    assert table_lines(first.stdout) and table_lines(first.stdout) == table_lines(second.stdout)
    polls = query(url, "select _batch_id, outcome, count(*) from raw.rss_feed_fetches group by 1, 2")
    by_run: dict[str, dict[str, int]] = {}
    for batch, outcome, n in polls:
        by_run.setdefault(batch, {})[outcome] = n
    assert len(by_run) == 2
    fetched_first, later = sorted(by_run.values(), key=lambda d: -d.get("fetched", 0))
    # A feed quarantined for what its body says is judged again on a full fetch every poll.
    rejected = query(url, "select count(*) from quarantine.rss_feeds where reason_code in "
                          "('malformed_xml', 'xml_entities_forbidden', 'not_a_feed')")[0][0]
    assert rejected == 3
    assert later.get("fetched", 0) == rejected and later["not_modified"] == fetched_first["fetched"] - rejected


def test_status_and_stop(demo_runs):
    _, env, *_, url = demo_runs
    status = _cli("status", env=env)
    assert status.returncode == 0 and "running" in status.stdout and "marts.dim_episodes" in status.stdout
    dagster_url = url.replace("/podcast?", "/dagster?")
    newest = query(dagster_url, "select run_id, pipeline_name from runs order by create_timestamp desc limit 1")[0]
    assert f"{newest[0][:8]}  {newest[1]}" in status.stdout  # the last runs
    assert "Checks: " in status.stdout and ", 0 failing" in status.stdout
    not_ok = query(url, "select count(*) from marts.sla_status where status <> 'ok'")[0][0]
    assert f"{not_ok} stale, failing or blocked" in status.stdout
    assert "Daemon: not running" in status.stdout  # the demo runs in-process; no daemon heartbeat
    assert "Schedules: " in status.stdout and "Sensors: " in status.stdout
    assert "rss_poll_every_15_minutes" in status.stdout or "Schedules: 0 of" in status.stdout


def test_demo_console_shows_phases_and_a_summary_not_library_output(demo_runs):
    data_dir, _, first, second, url = demo_runs
    for run in (first, second):
        assert "Traceback" not in run.stdout + run.stderr, run.stderr[-6000:] or run.stdout[-6000:]
        assert run.stderr.strip() == "", run.stderr[-2000:]  # no library warnings, no dbt lines, no step logs
        phases = [line for line in run.stdout.splitlines() if line.startswith(("✓ ", "✗ "))]
        assert len(phases) >= 10 and all(line.startswith("✓ ") for line in phases), phases
        assert "START sql" not in run.stdout and "Running with dbt" not in run.stdout
    dbt_log = data_dir / "logs" / "dbt.log"
    assert "START sql" in dbt_log.read_text()  # dbt's own lines went to the file
    opened = next(line for line in first.stdout.splitlines() if line.startswith("Open a report: "))
    report = Path(opened.removeprefix("Open a report: "))
    assert report.suffix == ".html" and report.stat().st_size > 0
    assert query(url, "select count(*) from reports.reports where file_url = %s", (str(report),)) == [(1,)]
    assert "Dagster UI: run `podcast-analytics dev`, then open http://127.0.0.1:" in first.stdout


def test_demo_writes_the_json_run_log(demo_runs):
    data_dir, *_, url = demo_runs
    lines = [json.loads(line) for line in (data_dir / "logs" / "dagster.jsonl").read_text().splitlines()]
    runs = {r for (r,) in query(url.replace("/podcast?", "/dagster?"), "select run_id from runs")}
    logged = {line["run_id"] for line in lines if line.get("run_id")}
    assert runs and runs <= logged  # every run of both demos
    assert any(line.get("event") == "ASSET_MATERIALIZATION" and line.get("asset") == "marts/dim_episodes"
               for line in lines)


def _reader(process: subprocess.Popen):
    import queue
    import threading

    lines: queue.Queue = queue.Queue()

    def read() -> None:
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    return lines


def _wait_for_line(lines, text: str, seen: list, timeout: float) -> str:
    import queue
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        if line is None:
            break
        seen.append(line)
        if text in line:
            return line
    pytest.fail(f"no line with {text!r} (a hang, or the demo ended): {''.join(seen)[-3000:]}")


def test_a_second_demo_on_the_same_data_is_refused_and_sigterm_stops_everything(tmp_path):
    import time

    import psutil

    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DAGSTER_HOME", "DAGSTER_PG_URL", "PODCAST_SOURCES_FILE")}
    env.update(PODCAST_DATA_DIR=str(tmp_path), PODCAST_SIMULATOR_PORT=str(port), COLUMNS="200", PYTHONUNBUFFERED="1")
    exe = Path(sys.executable).with_name("podcast-analytics")
    demo = subprocess.Popen([str(exe), "demo"], env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        lines, seen = _reader(demo), []
        _wait_for_line(lines, "warehouse ready: embedded PostgreSQL", seen, timeout=600)
        second = _cli("demo", env={**env, "PODCAST_SIMULATOR_PORT": str(_free_port())})
        assert second.returncode != 0 and "Traceback" not in second.stdout + second.stderr
        assert second.stderr.strip() == (f"error: another demo (pid {demo.pid}) is running on {tmp_path}: wait for "
                                         f"it, stop it (kill {demo.pid}) or give this one its own PODCAST_DATA_DIR")
        _wait_for_line(lines, f"simulator serving the feeds and platform APIs on http://127.0.0.1:{port}", seen,
                       timeout=600)
        postmaster = int((tmp_path / "pg" / "postmaster.pid").read_text().split()[0])
        assert psutil.pid_exists(postmaster)
        time.sleep(2)  # into the next phase (loading the code location)
        demo.send_signal(signal.SIGTERM)
        demo.wait(timeout=60)  # a bound on waiting, generous: it stops within seconds
    finally:
        if demo.poll() is None:
            demo.kill()
    assert demo.returncode != 0
    def alive(pid: int) -> bool:
        try:
            return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    deadline = time.monotonic() + 30
    while alive(postmaster) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not alive(postmaster)  # the PostgreSQL this demo started is stopped
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))  # the simulator's port is free
    # The lock went with it: a new demo is not refused (it stops at the busy port we now hold).
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        third = _cli("demo", env={**env, "PODCAST_SIMULATOR_PORT": str(busy.getsockname()[1])})
    assert "is in use" in third.stderr and "another demo" not in third.stderr


def test_download_checks_pass_on_the_demo_and_catch_a_lost_download(demo_runs, monkeypatch, tmp_path):
    import psycopg

    from pipelines.checks.downloads import downloads_are_consistent, downloads_match_simulator_truth
    from resources.settings import get_settings
    from resources.warehouse import WarehouseResource
    from tests.dbt_cli import run_dbt

    data_dir, _, _, _, url = demo_runs
    monkeypatch.setenv("PODCAST_DATA_DIR", str(data_dir))
    get_settings.cache_clear()
    warehouse = WarehouseResource(database_url=url)
    reconcile = ("test", "--select", "downloads_rollups_reconcile")
    try:
        assert downloads_are_consistent(warehouse=warehouse).passed
        assert downloads_match_simulator_truth(warehouse=warehouse).passed
        assert run_dbt(url, tmp_path, *reconcile).returncode == 0
        with psycopg.connect(url, autocommit=True) as conn:
            deleted = conn.execute("delete from marts.fct_downloads where download_id = "
                                   "(select min(download_id) from marts.fct_downloads) returning *")
            row = deleted.fetchone()
            lost = row[[c.name for c in deleted.description].index("download_date")]
            try:
                truth_check = downloads_match_simulator_truth(warehouse=warehouse)
                whole = run_dbt(url, tmp_path, *reconcile)
                other_day = run_dbt(url, tmp_path, *reconcile, "--vars",
                                    f'{{"min_date": "{lost + timedelta(days=1)}", "max_date": "{lost + timedelta(days=2)}"}}')
            finally:
                placeholders = ", ".join(["%s"] * len(row))
                conn.execute(f"insert into marts.fct_downloads values ({placeholders})", row)
        assert not truth_check.passed and truth_check.metadata["differing_episode_days"].value == 1
        # The seven rollups of the lost download's tenant and day disagree with fct_downloads; a run
        # over another day's partition window does not read that day.
        assert whole.returncode != 0 and "Got 7 results" in whole.stdout, whole.stdout[-2000:]
        assert other_day.returncode == 0, other_day.stdout[-2000:]
    finally:
        get_settings.cache_clear()


def test_demo_reports_every_campaign_and_a_second_demo_reissues_them(demo_runs):
    _, _, first, second, url = demo_runs
    campaigns, sponsors = query(url, "select count(*), count(distinct (tenant_id, sponsor_id)) "
                                     "from marts.mart_campaign_roi where is_selected_model")[0]
    assert campaigns > 0
    assert f"Reports: {campaigns} of {campaigns} campaigns and {sponsors} of {sponsors} sponsors" in first.stdout
    # README "Costs, ROI and the range the demo targets": every demo campaign, CPM and flat fee.
    from simulator.campaigns import EFFECTIVE_CPM_BAND, ROI_TARGET

    economics = query(url, "select campaign_id, roi, effective_cpm from marts.mart_campaign_roi where is_selected_model")
    assert all(roi is not None and ROI_TARGET[0] <= roi <= ROI_TARGET[1] for _, roi, _ in economics), economics
    assert all(ecpm is not None and EFFECTIVE_CPM_BAND[0] <= ecpm <= EFFECTIVE_CPM_BAND[1] for *_, ecpm in economics), economics
    per_campaign = query(url, "select campaign_id, count(distinct report_id), count(distinct format) "
                              "from reports.reports where scope = 'campaign' group by 1")
    # One report per campaign in all five formats: the second demo found the same numbers and
    # re-issued the first demo's files instead of rendering them again.
    assert len(per_campaign) == campaigns and {(n, f) for _, n, f in per_campaign} == {(1, 5)}
    files = query(url, "select file_url, size_bytes from reports.reports where format in ('html', 'pdf')")
    assert all(Path(path).stat().st_size == size > 0 for path, size in files)


def test_demo_report_partitions_each_record_their_own_report(demo_runs, monkeypatch):
    """Both demos make every report partition in one run per scope; the instance holds each
    partition's own materialization: its report, files with sizes and checksums, period, freshness."""
    import dagster as dg

    from assets.reports.assets import CAMPAIGN_REPORT, SPONSOR_REPORT
    from resources.warehouse import psycopg2_url, with_database
    from tests.test_reports import assert_each_partition_has_its_own_report, report_partitions

    data_dir, _, _, _, url = demo_runs
    monkeypatch.setenv("DAGSTER_PG_URL", psycopg2_url(with_database(url, "dagster")))
    with dg.DagsterInstance.from_config(str(data_dir / "dagster_home")) as instance:
        for key, job, scope in ((CAMPAIGN_REPORT, "campaign_reports", "campaign"),
                                (SPONSOR_REPORT, "sponsor_reports", "sponsor")):
            runs = {r.run_id for r in instance.get_runs(dg.RunsFilter(job_name=job))}
            assert len(runs) == 2  # one run per demo over every partition
            made, observed = report_partitions(instance, key, runs)
            subjects = query(url, "select count(distinct (tenant_id, campaign_id)), count(distinct (tenant_id, sponsor_id)) "
                                  "from marts.mart_campaign_roi where is_selected_model")[0]
            assert len(made) == subjects[0 if scope == "campaign" else 1] and not observed
            assert_each_partition_has_its_own_report(url, made)
def test_no_accepted_event_is_later_than_its_load_and_freshness_lines_are_not_in_the_future(demo_runs):
    """Every accepted conversion and request is dated no later than its load plus the tolerance;
    the simulator's future-dated conversions are quarantined as `future_timestamp`; every
    report's freshness dates are on or before the day it was generated."""
    import re

    from resources.settings import Settings

    data_dir, *_, url = demo_runs
    tolerance = Settings().future_tolerance_delta()
    assert query(url, "select count(*) from raw.attribution_events where occurred_at > _ingested_at + %s",
                 (tolerance,)) == [(0,)]
    assert query(url, "select count(*) from raw.listener_events as e inner join ops.listener_log_files as f "
                      "using (file_key) where e.event_time > f.loaded_at + %s", (tolerance,)) == [(0,)]
    truth = json.loads((data_dir / "simulator" / "campaign_truth.json").read_text())
    planted = sum(1 for r in truth["bad_records"] if r["kind"] == "future_timestamp")
    assert planted > 0 and query(url, "select count(*) from quarantine.campaign_records "
                                      "where reason_code = 'future_timestamp'") == [(planted,)]
    files = query(url, "select file_url, generated_at from reports.reports where format = 'json'")
    assert files
    for path, generated in files:
        freshness = json.loads(Path(path).read_text())["data_freshness"]
        days = [d for v in freshness.values() for d in re.findall(r"\d{4}-\d{2}-\d{2}", str(v))]
        assert days and max(days) <= generated.date().isoformat(), (path, freshness)


# What the demo itself produces: delivery, alert, integration and schedule metrics stay empty
# (it sends nothing and starts no schedule), so they are served without samples.
DEMO_METRICS = ("ingestion_latency_ms", "ingestion_success_rate", "ingestion_errors", "feed_poll_duration_seconds",
                "api_sync_duration_seconds", "processing_latency_seconds", "attribution_match_rate",
                "data_quality_score", "average_completion_rate", "roi_calculation_duration_seconds",
                "report_generation_duration_seconds", "report_generation_success_rate", "report_file_size_bytes",
                "chart_render_time_seconds", "task_execution_duration_seconds", "task_success_rate",
                "sla_freshness_lag_seconds", "sla_freshness_limit_seconds", "ad_detection_accuracy")


def test_freshness_is_measured_in_the_datas_own_time(demo_runs):
    """The demo's access logs are of early November: their freshness lag is now minus the newest
    request loaded, per tenant (stale against the 2 h SLA), and a mart built from them is no
    fresher, however recently it was built. The feeds were polled minutes ago: fresh."""
    *_, url = demo_runs
    marts = {f"marts/{p.stem}" for p in (REPO_ROOT / "dbt_project" / "models" / "marts").rglob("*.sql")}
    rows = {(a, t): (lag, status, snapshot) for a, t, lag, status, snapshot in query(
        url, "select asset, tenant_id, freshness_lag_seconds, status, snapshot_at from marts.sla_status")}
    assert marts and marts <= {a for a, _ in rows}
    assert all(lag is not None for (a, _), (lag, *_) in rows.items() if a in marts)
    newest = query(url, "select tenant_id, max(event_time) from raw.listener_events group by 1")
    assert len(newest) == 3
    for tenant, when in newest:
        lag, status, snapshot = rows[("raw/listener_events", tenant)]
        assert abs(lag - (snapshot - when).total_seconds()) < 1 and lag > 7 * 86_400 and status == "stale"
        mart_lag, mart_status, _ = rows[("marts/fct_downloads", tenant)]
        assert mart_lag >= lag - 1 and mart_status == "stale"
    raw = query(url, "select count(*), count(*) filter (where freshness_ok) from marts.sla_status "
                     "where asset = 'raw/rss_episodes'")[0]
    assert raw[0] == 3 and raw[1] == 3  # one row per tenant, all fresh


def test_metrics_endpoint_serves_every_metric_from_stored_state(demo_runs):
    import time

    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    _, env, *_, url = demo_runs
    port = _free_port()
    exe = Path(sys.executable).with_name("podcast-analytics")
    # Started with SIGTERM ignored, as a parent that ignores it passes on: it must still stop on it.
    server = subprocess.Popen([str(exe), "metrics", "--port", str(port)], env=env, cwd=REPO_ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              preexec_fn=lambda: signal.signal(signal.SIGTERM, signal.SIG_IGN))
    try:
        deadline, body = time.monotonic() + 120, None
        while time.monotonic() < deadline and body is None:
            try:
                body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=60).text
            except httpx.TransportError:
                assert server.poll() is None, server.stdout.read()
                time.sleep(0.5)
    finally:
        server.terminate()
        server.wait(timeout=30)
    families, samples = set(), {}
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            families.add(family.name)
            samples.setdefault(s.name, []).append(s)
    from pipelines.metrics import METRIC_NAMES

    assert families <= set(METRIC_NAMES)
    missing = [m for m in DEMO_METRICS if m not in families]
    assert not missing, missing

    def value(name, **labels):
        return next(s.value for s in samples[name] if all(s.labels.get(k) == v for k, v in labels.items()))

    # A failed feed poll is a failure: the planted broken feeds lower the rate by their share.
    answered, polls = query(url, "select count(*) filter (where outcome <> 'error'), count(*) "
                                 "from raw.rss_feed_fetches where fetched_at > now() - interval '24 hours'")[0]
    assert answered < polls and value("ingestion_success_rate", source="rss") == pytest.approx(answered / polls)
    refused = query(url, "select error_code, count(*) from raw.rss_feed_fetches where outcome = 'error' group by 1")
    assert refused
    for reason, n in refused:
        assert value("ingestion_errors_total", source="rss", reason=reason) >= n > 0
    with_duration = query(url, "select count(*) from raw.rss_feed_fetches where duration_ms is not null")[0][0]
    assert value("feed_poll_duration_seconds_count") == with_duration > 0
    assert value("ingestion_latency_ms", source="rss") > 0 and value("api_sync_duration_seconds", platform="buzzsprout") > 0
    assert 0 < value("attribution_match_rate", tenant="northwind") <= 1
    # The demo's detection, evaluated by its blocking check against the simulator's planted reads.
    for measure, goal in (("precision", 0.95), ("recall", 0.85), ("boundaries_within_15s", 0.9)):
        assert goal <= value("ad_detection_accuracy", tenant="northwind", measure=measure) <= 1
    assert value("data_quality_score", asset="raw/rss_episodes", tenant="northwind") > 0.9
    assert value("roi_calculation_duration_seconds") > 0
    assert value("processing_latency_seconds", asset="marts/mart_campaign_roi") >= 0
    assert value("report_generation_success_rate", scope="campaign") == 1.0
    reports = query(url, "select count(distinct report_id) from reports.reports where scope = 'campaign'")[0][0]
    assert value("report_generation_duration_seconds_count", scope="campaign") >= reports > 0


def test_gated_exports_wrote_each_tenants_rows(demo_runs):
    import csv

    data_dir, *_, url = demo_runs
    counts = dict(query(url, "select tenant_id, count(*) from marts.dim_podcasts group by 1"))
    files = {p.stem: p for p in (data_dir / "exports" / "dim_podcasts").glob("*.csv")}
    assert set(files) == set(counts)
    for tenant, path in files.items():
        rows = list(csv.DictReader(path.open()))
        assert len(rows) == counts[tenant] and {r["tenant_id"] for r in rows} == {tenant}


def test_the_demo_stores_no_buyer_details(demo_runs):
    """The demo's pixel files and shop orders carry buyers' e-mail addresses, phones, names and
    street addresses; no table of the warehouse and no report or export file holds any of them."""
    data_dir, _, _, _, url = demo_runs
    landing = "".join(p.read_text() for p in (data_dir / "landing" / "conversions").rglob("*.jsonl"))
    assert len(re.findall(PERSONAL, landing)) > 10  # what the scan looks for was sent
    personal, _ = personal_data_in_tables(url)
    assert personal == []
    written = [p for folder in ("reports", "exports") for p in (data_dir / folder).rglob("*") if p.is_file()]
    assert any(p.suffix == ".pdf" for p in written) and any(p.suffix == ".csv" for p in written)
    assert [p for p in written if re.search(PERSONAL, p.read_bytes().decode("latin-1"))] == []

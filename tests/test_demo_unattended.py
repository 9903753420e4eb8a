"""Unattended operation, end to end: after `podcast-analytics demo` (the session's `demo_runs`,
which tests/test_demo.py has read first), the Dagster daemon and a code server (subprocesses, as a
deployment runs them) take new raw data to the marts and the reports with nobody launching
anything, and repeat none of the demo's loads. Then, on the same deployment, a backfill of the
last 30 days as one queued run per tenant runs the tenants in parallel and gives the marts the
one-run builds gave.

No `execute_in_process` here: every run below is started by the daemon (a sensor, a schedule or
the automation sensor) and executed by the code server's run workers.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
import yaml

from tests.conftest import REPO_ROOT, query
from tests.test_partitioned_dbt import partitioned_tables

NEW_DAY = dt.date(2026, 11, 4)
RETITLED = "Retitled while the daemon runs"
# The bound on the daemon's work: every step below needs a few ticks (log sensor every 60 s,
# automation every 10 s, a dbt build, a report backfill). A hang fails here, not a slow machine.
DEADLINE_SECONDS = 1200


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def _wait_for_port(port: int, process: subprocess.Popen, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, f"process exited with {process.returncode}"
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(1)
    raise AssertionError(f"nothing listens on {port} after {seconds} s")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="module")
def deployment(demo_runs):
    from pipelines.cli import psycopg2_url
    from resources.warehouse import resolve_urls
    from simulator.__main__ import campaign_world, simulator_credentials
    from simulator.network import build_network
    from simulator.server import SimulatorServer
    from simulator.truth import ground_truth

    data_dir, demo_env, first, _, _ = demo_runs
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    env = dict(demo_env)
    port = int(env["PODCAST_SIMULATOR_PORT"])  # the feed URLs the demo stored point there

    warehouse_url, dagster_url = resolve_urls(None, data_dir, "podcast", "dagster")
    sources = data_dir / "simulator" / "sources.yaml"
    network = build_network(seed=42)
    server = SimulatorServer(network, port=port).start()
    server.attach_campaigns(campaign_world(ground_truth(network, server.base_url), 42))

    grpc_port = _free_port()
    workspace = data_dir / "workspace.yaml"
    workspace.write_text(yaml.safe_dump({"load_from": [{"grpc_server": {
        "host": "127.0.0.1", "port": grpc_port, "location_name": "podcast_analytics"}}]}))
    env.update(simulator_credentials(sources))
    env.update(
        DAGSTER_HOME=str(data_dir / "dagster_home"), DAGSTER_PG_URL=psycopg2_url(dagster_url),
        PODCAST_SOURCES_FILE=str(sources), PODCAST_RSS_POLL_CRON="*/2 * * * *",
        PODCAST_AUTOMATION_INTERVAL_SECONDS="10", PODCAST_LOG_SETTLE_SECONDS="0",
    )
    logs = data_dir / "processes"
    logs.mkdir()
    processes = []
    try:
        code_server = subprocess.Popen(
            [_bin("dagster"), "code-server", "start", "-m", "pipelines.definitions", "-h", "127.0.0.1",
             "-p", str(grpc_port), "--location-name", "podcast_analytics"],
            cwd=REPO_ROOT, env=env, stdout=open(logs / "code_server.log", "w"), stderr=subprocess.STDOUT,
            start_new_session=True)
        processes.append(code_server)
        _wait_for_port(grpc_port, code_server, 300)
        daemon = subprocess.Popen(
            [_bin("dagster-daemon"), "run", "-w", str(workspace)], cwd=REPO_ROOT, env=env,
            stdout=open(logs / "daemon.log", "w"), stderr=subprocess.STDOUT, start_new_session=True)
        processes.append(daemon)
        os.environ["DAGSTER_PG_URL"] = env["DAGSTER_PG_URL"]
        instance = dg.DagsterInstance.from_config(env["DAGSTER_HOME"])
        yield {"data_dir": data_dir, "network": network, "server": server, "url": warehouse_url,
               "instance": instance, "daemon": daemon, "logs": logs, "env": env, "workspace": workspace}
        instance.dispose()
    finally:
        for process in reversed(processes):
            _stop(process)
        server.stop()
        os.environ.pop("DAGSTER_PG_URL", None)
        subprocess.run([_bin("podcast-analytics"), "stop"], env=env, cwd=REPO_ROOT, capture_output=True, timeout=120)


def _drop_new_day_of_logs(data_dir: Path) -> dict[str, int]:
    """Write the network's access logs of NEW_DAY beside the demo's, as a second CDN delivery
    would (the demo's own files hold the requests of its last night that ran past midnight).
    Returns how many files were dropped per day."""
    import json

    from simulator.__main__ import SHARED_IP_USER_AGENTS
    from simulator.logs import generate_logs

    truth = json.loads((data_dir / "simulator" / "ground_truth.json").read_text())
    scratch = data_dir / "scratch-logs"
    generate_logs(truth, scratch, [NEW_DAY], seed=42, shared_ip_user_agents=SHARED_IP_USER_AGENTS)
    landing = data_dir / "landing" / "logs"
    files: dict[str, int] = {}
    for path in sorted(p for p in scratch.rglob("*") if p.is_file()):
        target = landing / path.relative_to(scratch).parent / f"delivery2-{path.name}"
        assert not target.exists()
        shutil.move(path, target)
        day = re.search(r"\d{4}-\d{2}-\d{2}", path.name).group(0)
        files[day] = files.get(day, 0) + 1
    return files


def _materialized_since(instance: dg.DagsterInstance, key: dg.AssetKey, since: float):
    event = instance.get_latest_materialization_event(key)
    return event if event is not None and event.timestamp > since else None


def _launched_by_daemon(instance: dg.DagsterInstance, run_id: str) -> bool:
    tags = instance.get_run_by_id(run_id).tags
    return any(k in tags for k in ("dagster/sensor_name", "dagster/schedule_name", "dagster/from_automation_condition",
                                   "dagster/backfill"))


@pytest.mark.timeout(DEADLINE_SECONDS + 1800)  # the demo, then the daemon's work
def test_new_data_reaches_marts_and_reports_with_nobody_launching_a_run(deployment):
    url, instance, network = deployment["url"], deployment["instance"], deployment["network"]
    before_runs = {r.dagster_run.run_id for r in instance.get_run_records()}
    live = query(url, """
        select tenant_id, campaign_id from marts.mart_campaign_roi
        where is_selected_model and flight_start <= %s and flight_end >= %s order by 1, 2""", (NEW_DAY, NEW_DAY))
    assert live, "the demo has a campaign in flight on the new day"
    hashes_before = dict(query(url, """
        select distinct on (campaign_id) campaign_id, content_sha256 from reports.reports
        where scope = 'campaign' and format = 'html' order by campaign_id, generated_at desc"""))

    downloads_before = query(url, "select count(*) from marts.fct_downloads where download_date = %s", (NEW_DAY,))[0][0]

    started = time.time()
    show = network.shows[0]
    episode = next(e for e in show.episodes if e.title)
    episode.title = RETITLED
    deployment["server"].change([show])
    dropped = _drop_new_day_of_logs(deployment["data_dir"])
    assert dropped.get(NEW_DAY.isoformat())

    report_key = dg.AssetKey(["reports", "campaign_report"])
    wanted = [dg.AssetKey(["marts", "fct_downloads"]), dg.AssetKey(["marts", "dim_episodes"]),
              dg.AssetKey(["marts", "mart_campaign_roi"])]
    deadline = time.monotonic() + DEADLINE_SECONDS
    refreshed: dict[str, str] = {}
    while time.monotonic() < deadline:
        assert deployment["daemon"].poll() is None, (deployment["logs"] / "daemon.log").read_text()[-3000:]
        done = all(_materialized_since(instance, key, started) for key in wanted)
        retitled = query(url, "select count(*) from marts.dim_episodes where title = %s", (RETITLED,))[0][0]
        counted = query(url, "select count(*) from marts.fct_downloads where download_date = %s", (NEW_DAY,))[0][0]
        refreshed = dict(query(url, """
            select distinct on (campaign_id) campaign_id, content_sha256 from reports.reports
            where scope = 'campaign' and format = 'html' and generated_at > to_timestamp(%s)
            order by campaign_id, generated_at desc""", (started,)))
        live_refreshed = [c for _, c in live if c in refreshed and refreshed[c] != hashes_before.get(c)]
        if done and retitled == 1 and counted > downloads_before and live_refreshed:
            break
        time.sleep(10)
    else:
        raise AssertionError(
            f"not done within {DEADLINE_SECONDS} s: materialized "
            f"{[k.to_user_string() for k in wanted if _materialized_since(instance, k, started)]}, "
            f"retitled {retitled}, downloads on {NEW_DAY}: {counted}, refreshed reports {sorted(refreshed)}\n"
            + (deployment["logs"] / "daemon.log").read_text()[-4000:])

    # Every run since the drop was started by the daemon (a sensor, a schedule, automation or
    # the backfill it emitted), none by hand.
    new_runs = [r.dagster_run for r in instance.get_run_records() if r.dagster_run.run_id not in before_runs]
    assert new_runs and all(_launched_by_daemon(instance, run.run_id) for run in new_runs)
    for key in wanted:
        event = instance.get_latest_materialization_event(key)
        assert event.timestamp > started and _launched_by_daemon(instance, event.run_id), key

    # The report of a campaign in flight on the new day was made again with other numbers, by
    # automation (which delivers nothing), and its marts hold the new day.
    campaign = next(c for _, c in live if c in refreshed and refreshed[c] != hashes_before.get(c))
    [(run_id,)] = query(url, """
        select _batch_id from reports.reports where campaign_id = %s and content_sha256 = %s and format = 'html'
        order by generated_at desc limit 1""", (campaign, refreshed[campaign]))
    report_run = instance.get_run_by_id(run_id)
    assert report_run.tags.get("dagster/from_automation_condition") == "true"
    assert report_key in report_run.asset_selection
    assert query(url, "select count(*) from marts.fct_campaign_performance_daily where activity_date = %s",
                 (NEW_DAY,))[0][0] > 0

    # No load the demo did was done again: the sensor asked for the dropped files' days, with
    # those files only (the demo's own file of the new day is in the ledger already).
    log_loads = [r for r in new_runs if r.job_name == "load_listener_logs"]
    assert {r.tags.get("dagster/partition"): int(r.tags["log_files"]) for r in log_loads} == dropped
    assert not [r for r in new_runs if r.job_name in ("load_megaphone_exports", "load_conversion_events")
                and "dagster/sensor_name" in r.tags]
    # The sensors keep no cursor that grows with the files seen.
    for name in ("listener_log_files_sensor", "conversion_files_sensor", "megaphone_export_sensor"):
        state = next(s for s in instance.all_instigator_state() if s.name == name)
        cursor = state.instigator_data.cursor if state.instigator_data else None
        assert not cursor, (name, cursor)



BACKFILL_DAYS = 30
FINISHED = (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)
BUSY = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
        dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]


def _contents(url: str, tables) -> dict[str, tuple[int, str]]:
    """Per table: its rows and a hash of them in order (each row's JSON without `counted_at`,
    the time it was built)."""
    found = {}
    for table in tables:
        found[table] = tuple(query(url, f"""
            select count(*), md5(coalesce(string_agg(row_hash, '' order by row_hash), ''))
            from (select md5((to_jsonb(t) - 'counted_at')::text) as row_hash from {table} as t) as rows""")[0])
    return found


def _partitioned_busy(instance: dg.DagsterInstance) -> list[str]:
    """The runs queued or in progress that write the partitioned models (the partition sensor's
    reaction to the new day, the rule sensor's): only they write the tables compared below; the
    automation that follows them rebuilds unpartitioned marts."""
    from assets.dbt import build_partitioned_dbt_assets

    keys = set(build_partitioned_dbt_assets().keys)
    return [r.dagster_run.run_id for r in instance.get_run_records(dg.RunsFilter(statuses=BUSY))
            if r.dagster_run.job_name == "dbt_partitioned" or set(r.dagster_run.asset_selection or ()) & keys]


def _writing(instance: dg.DagsterInstance, run_id: str) -> tuple[float, float]:
    """When a run's dbt build wrote its first and its last model (its materializations)."""
    events = instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
    stamps = [event.timestamp for event in events]
    assert stamps, run_id
    return min(stamps), max(stamps)


@pytest.mark.timeout(2 * DEADLINE_SECONDS + 600)  # the daemon's work to settle, then the backfill
def test_a_backfill_per_tenant_runs_the_tenants_in_parallel_and_gives_the_same_marts(deployment):
    """30 days x 3 tenants as three queued runs (`podcast-analytics backfill --per-tenant`), run by
    the daemon's queue with the default run launcher: they build in parallel and leave every
    partitioned table (the download and credit facts and rollups, and what they are built from)
    as the demo's one run over every tenant, and the daemon's runs since, left it."""
    url, instance = deployment["url"], deployment["instance"]
    deadline = time.monotonic() + DEADLINE_SECONDS
    while _partitioned_busy(instance):  # the partition sensor's runs for the new day, if any are left
        assert time.monotonic() < deadline, _partitioned_busy(instance)
        assert deployment["daemon"].poll() is None, (deployment["logs"] / "daemon.log").read_text()[-3000:]
        time.sleep(5)
    tables = partitioned_tables()
    before = _contents(url, tables)
    assert before["marts.fct_downloads"][0] > 0 and before["marts.fct_attributed_conversions"][0] > 0
    # the last 30 days of downloads (and the conversions of those days)
    [(last_day,)] = query(url, "select max(download_date) from marts.fct_downloads")
    first_day = last_day - dt.timedelta(days=BACKFILL_DAYS - 1)

    submitted = subprocess.run(
        [_bin("podcast-analytics"), "backfill", "--per-tenant", "--since", first_day.isoformat(),
         "--until", last_day.isoformat(), "--workspace", str(deployment["workspace"])],
        env=deployment["env"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert submitted.returncode == 0, submitted.stdout[-3000:] + submitted.stderr[-3000:]
    runs = dict(re.findall(r"run ([0-9a-f-]{36}) \(dbt_partitioned, tenant (\S+)\): queued", submitted.stdout))
    tenants = sorted(r[0] for r in query(url, "select distinct tenant_id from marts.dim_podcasts"))
    assert sorted(runs.values()) == tenants and len(tenants) == 3, runs
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not all(instance.get_run_by_id(run_id).status in FINISHED for run_id in runs):
        assert time.monotonic() < deadline, {r: instance.get_run_by_id(r).status for r in runs}
        assert deployment["daemon"].poll() is None, (deployment["logs"] / "daemon.log").read_text()[-3000:]
        time.sleep(5)
    records = instance.get_run_records(dg.RunsFilter(run_ids=list(runs)))
    # (a) every tenant's run succeeded, over the days asked for, with its tenant's tags
    assert {r.dagster_run.run_id: r.dagster_run.status for r in records} == dict.fromkeys(runs, dg.DagsterRunStatus.SUCCESS)
    for record in records:
        tags = record.dagster_run.tags
        assert tags["podcast/dbt_tenant"] == tags["podcast/tenant"] == runs[record.dagster_run.run_id]
        assert (tags["dagster/asset_partition_range_start"], tags["dagster/asset_partition_range_end"]) == (
            first_day.isoformat(), last_day.isoformat())

    # (b) runs of different tenants were in progress at the same time, and so were their dbt builds
    # (from the first model each wrote to its last)
    def overlap(spans) -> bool:
        return any(max(a[0], b[0]) < min(a[1], b[1]) for i, a in enumerate(spans) for b in spans[i + 1:])

    assert overlap([(r.start_time, r.end_time) for r in records])
    assert overlap([_writing(instance, run_id) for run_id in runs])
    # (c) the partitioned tables are what the demo's one run over every tenant (and the daemon's
    # runs since) gave; the marts built from them are functions of them
    after = _contents(url, tables)
    assert {t: after[t] for t in tables if after[t] != before[t]} == {}, {t: before[t] for t in tables if after[t] != before[t]}

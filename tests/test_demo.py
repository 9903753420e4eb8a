"""End to end: `podcast-analytics demo` twice in a fresh data directory, then `status` and `stop`."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, query


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli(*args, env):
    exe = Path(sys.executable).with_name("podcast-analytics")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=540)


@pytest.fixture(scope="module")
def demo_runs(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("demo-data")
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DAGSTER_HOME", "DAGSTER_PG_URL", "PODCAST_SOURCES_FILE")}
    env.update(PODCAST_DATA_DIR=str(data_dir), PODCAST_SIMULATOR_PORT=str(_free_port()), COLUMNS="200")
    first = _cli("demo", env=env)
    second = _cli("demo", env=env)
    url = f"postgresql://postgres@/podcast?host={data_dir / 'pg'}"
    yield data_dir, env, first, second, url
    _cli("stop", env=env)


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
    damaged = query(url, "select count(*) from quarantine.listener_events")[0][0]
    assert damaged == logs["damaged_lines"] > 0 and loaded + damaged == logs["lines"]


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
    reasons = dict(query(url, "select exclusion_reason, count(*) from intermediate.int_downloads_iab_filtered "
                              "where exclusion_reason is not null group by 1"))
    # Every kind of request the simulator planted is excluded for its own reason.
    assert {"bot", "watchos_dup", "datacenter_ip", "two_byte_range", "high_volume_ip", "below_threshold",
            "head", "status_304", "bad_status", "unmatched_media"} <= set(reasons)
    assert reasons["bot"] == logs["sessions"]["bot"] and reasons["high_volume_ip"] == logs["sessions"]["busy_ip"]
    unmatched = {u for _, u, _ in query(url, "select tenant_id, media_key, 1 from intermediate.int_downloads_iab_filtered "
                                             "where exclusion_reason = 'unmatched_media'")}
    assert unmatched == {d["url"] for d in logs["unmatched_downloads"]}
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
    assert later.get("fetched", 0) == 0 and later["not_modified"] == fetched_first["fetched"]


def test_status_and_stop(demo_runs):
    _, env, *_ = demo_runs
    status = _cli("status", env=env)
    assert status.returncode == 0 and "running" in status.stdout and "marts.dim_episodes" in status.stdout


def test_download_checks_pass_on_the_demo_and_catch_a_lost_download(demo_runs, monkeypatch):
    import psycopg

    from pipelines.checks.downloads import downloads_are_consistent, downloads_match_simulator_truth
    from pipelines.settings import get_settings
    from resources.warehouse import WarehouseResource

    data_dir, _, _, _, url = demo_runs
    monkeypatch.setenv("PODCAST_DATA_DIR", str(data_dir))
    get_settings.cache_clear()
    warehouse = WarehouseResource(database_url=url)
    try:
        assert downloads_are_consistent(warehouse=warehouse).passed
        assert downloads_match_simulator_truth(warehouse=warehouse).passed
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute("delete from marts.fct_downloads where download_id = "
                               "(select min(download_id) from marts.fct_downloads) returning *").fetchone()
            try:
                truth_check = downloads_match_simulator_truth(warehouse=warehouse)
                consistency = downloads_are_consistent(warehouse=warehouse)
            finally:
                placeholders = ", ".join(["%s"] * len(row))
                conn.execute(f"insert into marts.fct_downloads values ({placeholders})", row)
        assert not truth_check.passed and truth_check.metadata["differing_episode_days"].value == 1
        assert not consistency.passed and "tenant rollup" in consistency.description
    finally:
        get_settings.cache_clear()


def test_demo_reports_every_campaign_and_a_second_demo_reissues_them(demo_runs):
    _, _, first, second, url = demo_runs
    campaigns, sponsors = query(url, "select count(*), count(distinct (tenant_id, sponsor_id)) "
                                     "from marts.mart_campaign_roi where is_selected_model")[0]
    assert campaigns > 0
    assert f"Reports: {campaigns} of {campaigns} campaigns and {sponsors} of {sponsors} sponsors" in first.stdout
    per_campaign = query(url, "select campaign_id, count(distinct report_id), count(distinct format) "
                              "from reports.reports where scope = 'campaign' group by 1")
    # One report per campaign in all five formats: the second demo found the same numbers and
    # re-issued the first demo's files instead of rendering them again.
    assert len(per_campaign) == campaigns and {(n, f) for _, n, f in per_campaign} == {(1, 5)}
    files = query(url, "select file_url, size_bytes from reports.reports where format in ('html', 'pdf')")
    assert all(Path(path).stat().st_size == size > 0 for path, size in files)

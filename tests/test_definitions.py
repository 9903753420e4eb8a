"""The code location loads, from the installed project, and Dagster validates the workspace."""

import subprocess
import sys
from pathlib import Path

import dagster as dg

from tests.conftest import REPO_ROOT


def test_packages_import_from_the_installed_project():
    import assets
    import pipelines
    import resources
    import simulator

    for module in (assets, pipelines, resources, simulator):
        assert Path(module.__file__).resolve().is_relative_to(REPO_ROOT), module.__file__


def test_definitions_load_without_great_expectations_and_form_one_graph():
    # How fast the definitions load is measured by bench/definitions_load.py (against `import
    # dagster` in the same run), not asserted here: a busy machine is not a slow code location.
    out = subprocess.run(
        [sys.executable, "-c", "import sys; from pipelines.definitions import defs; "
         "print('great_expectations' in sys.modules)"],
        capture_output=True, text=True, check=True, cwd=REPO_ROOT,
    )
    assert out.stdout.split()[-1] == "False"  # GX is imported lazily, inside the check

    from pipelines.definitions import defs

    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {"raw/rss_episodes", "staging/stg_rss__episodes", "marts/dim_episodes", "marts/dim_podcasts"} <= keys
    # raw -> staging -> marts is one connected chain (dbt sources map onto the raw asset keys)
    assert dg.AssetKey(["raw", "rss_episodes"]) in graph.get(dg.AssetKey(["staging", "stg_rss__episodes"])).parent_keys
    assert dg.AssetKey(["staging", "stg_rss__episodes"]) in graph.get(dg.AssetKey(["marts", "dim_episodes"])).parent_keys
    assert graph.get(dg.AssetKey(["marts", "dim_episodes"])).group_name == "marts"
    assert graph.get(dg.AssetKey(["raw", "rss_episodes"])).freshness_policy is not None
    lift = graph.get(dg.AssetKey(["marts", "mart_campaign_lift"])).automation_condition
    roi = graph.get(dg.AssetKey(["marts", "mart_campaign_roi"])).automation_condition
    assert "30 4 * * *" in str(lift) and "30 4 * * *" not in str(roi)
    # the household rollups are daily-partitioned: built for the days the partition sensor asks for
    for name in ("int_household_activity_daily", "int_shared_address_days"):
        node = graph.get(dg.AssetKey(["intermediate", name]))
        assert node.partitions_def is not None and node.automation_condition is None
    check_keys = {k.name for k in graph.asset_check_keys}
    assert {"rss_episodes_expectations", "roi_recomputed_in_python", "attribution_shares_sum_to_one"} <= check_keys
    schedule = defs.resolve_schedule_def("rss_poll_every_15_minutes")
    assert schedule.cron_schedule == "*/15 * * * *"
    # Every asset some model reads is one a run can materialize: a source no asset writes stays
    # "missing" to automation, and the models built on it are never requested again.
    unwritten = [key.to_user_string() for key in graph.get_all_asset_keys()
                 if not graph.get(key).is_materializable and graph.get(key).child_keys]
    assert unwritten == []


def test_a_feed_poll_is_skipped_while_the_previous_one_is_unfinished():
    from pipelines.jobs import rss_ingest_job
    from pipelines.schedules import rss_poll_schedule

    with dg.instance_for_test() as instance:
        def tick():
            return rss_poll_schedule.evaluate_tick(dg.build_schedule_context(instance=instance))

        assert len(tick().run_requests) == 1
        for status in (dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTED):
            run = instance.add_run(dg.DagsterRun(job_name=rss_ingest_job.name, status=status))
            result = tick()
            assert not result.run_requests and run.run_id in result.skip_message
            instance.report_run_failed(run)
            assert len(tick().run_requests) == 1
        # an unfinished run of another job does not hold the poll back
        instance.add_run(dg.DagsterRun(job_name="sla_snapshot", status=dg.DagsterRunStatus.STARTED))
        assert len(tick().run_requests) == 1


def test_dagster_definitions_validate(tmp_path):
    import os

    dagster = Path(sys.executable).with_name("dagster")
    # An empty DAGSTER_HOME: validation needs no instance storage (dagster.yaml wants Postgres).
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    result = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", "workspace.yaml"],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=300, env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_view_model_has_two_view_parents():
    """dbt rebuilds a view by renaming the old one and dropping it with `cascade`, which drops the
    views built on it. A view with two view parents is dropped by both parents' builds when they
    run on parallel threads, and the two transactions deadlock (seen in a demo run)."""
    import json

    from assets.dbt import dbt_project

    manifest = json.loads(dbt_project().manifest_path.read_text())
    nodes = manifest["nodes"]
    views = {uid for uid, node in nodes.items()
             if node["resource_type"] == "model" and node["config"]["materialized"] == "view"}
    assert len(views) >= 3
    shared = {uid: parents for uid in views
              if len(parents := [p for p in nodes[uid]["depends_on"]["nodes"] if p in views]) > 1}
    assert shared == {}


def _modules_under(*packages: str) -> list[str]:
    names = []
    for package in packages:
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:  # Alembic scripts, run by Alembic, not imported
                continue
            parts = path.relative_to(REPO_ROOT).with_suffix("").parts
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_assets_and_resources_import_without_the_code_location():
    """Shared code sits below what uses it: importing every module of `assets/` and `resources/`
    (a fresh interpreter, so nothing an earlier test imported counts) loads no module of
    `pipelines/`, so `pipelines.definitions` never sits in an import loop with the assets."""
    modules = _modules_under("assets", "resources")
    assert len(modules) > 40 and "assets.quality_gate" in modules and "resources.settings" in modules
    script = ("import importlib, json, sys\n"
              f"for name in {modules!r}:\n"
              "    importlib.import_module(name)\n"
              "print(json.dumps(sorted(m for m in sys.modules if m == 'pipelines' or m.startswith('pipelines.'))))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    import json

    assert json.loads(out.stdout.splitlines()[-1]) == []


def test_only_entry_points_import_the_definitions():
    """No module imports `pipelines.definitions` (not even inside a function) but the CLI; the
    quality gate finds the code location by the name workspace.yaml and pyproject.toml give it."""
    import ast
    import tomllib

    import yaml

    from assets.quality_gate import CODE_LOCATION_MODULE

    importers = set()
    for name in _modules_under("assets", "resources", "pipelines", "simulator"):
        path = REPO_ROOT / (name.replace(".", "/") + ("/__init__.py" if (REPO_ROOT / name.replace(".", "/")).is_dir() else ".py"))
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "pipelines.definitions" \
                    or isinstance(node, ast.Import) and any(a.name == "pipelines.definitions" for a in node.names):
                importers.add(name)
    assert importers == {"pipelines.cli"}

    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    workspace = yaml.safe_load((REPO_ROOT / "workspace.yaml").read_text())
    assert CODE_LOCATION_MODULE == pyproject["tool"]["dagster"]["module_name"] \
        == workspace["load_from"][0]["python_module"]["module_name"]


def test_stored_transcripts_are_fetched_again_daily_and_their_slots_detected():
    from pipelines.definitions import defs

    job = defs.resolve_job_def("refresh_episode_documents")
    assert {k.to_user_string() for k in job.asset_layer.executable_asset_keys} == {
        "raw/transcripts", "raw/transcript_cues", "raw/chapters_documents", "raw/chapters",
        "quarantine/episode_documents", "raw/ad_slots", "ops/ad_detection_inputs"}
    from dagster._config import process_config

    # the job's run config, as a launch without config gets it: conditional GETs of stored documents
    config = process_config(job.config_mapping.config_schema.config_type, {}).value
    assert config["ops"]["episode_documents"]["config"] == {"sources_file": None, "refresh": True, "force_refetch": False}
    schedule = defs.resolve_schedule_def("episode_documents_daily")
    assert (schedule.cron_schedule, schedule.job_name) == ("50 3 * * *", "refresh_episode_documents")


def test_source_loads_run_their_steps_in_process_and_other_jobs_fork_theirs():
    from assets.run_tags import SOURCE_TAG
    from pipelines.definitions import defs

    jobs = {job.name: job for job in defs.resolve_all_job_defs() if not job.name.startswith("__")}
    sources = {name for name, job in jobs.items() if SOURCE_TAG in job.tags}
    assert {"rss_ingest", "refresh_episode_documents", "load_listener_logs", "platform_catalog", "platform_metrics",
            "sync_sponsorship_campaigns", "load_conversion_events", "load_megaphone_exports"} == sources
    assert {name: jobs[name].executor_def.name for name in sources} == dict.fromkeys(sources, "in_process")
    others = {name: job.executor_def for name, job in jobs.items() if name not in sources}
    assert {"dbt_unpartitioned", "dbt_partitioned", "materialize_marts"} <= set(others)
    for name, executor in others.items():
        start = executor.apply_config_mapping({}).value["config"]["start_method"]
        assert start == {"forkserver": {"preload_modules": ["pipelines.definitions"]}}, name
    # the implicit job automation and backfills launch their runs in uses the same executor
    assert defs.resolve_implicit_global_asset_job_def().executor_def.name == "multiprocess"

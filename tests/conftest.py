"""Shared fixtures: a real PostgreSQL (DATABASE_URL, or an embedded server for the session),
a fresh database per test that needs one, and the simulated network served on loopback."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from resources.schema import migrate
from resources.warehouse import embedded_server, stop_embedded_server, warehouse_at, with_database
from simulator.network import build_network
from simulator.server import SimulatorServer
from simulator.truth import ground_truth

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"
# User agents are classified with OPAWG's real pattern files when `../shared` is beside the
# repository (as in the CI), in the tests' own loads and in every asset run (the setting).
OPAWG_PATTERNS = SHARED / "realdata" / "user_agents"
UA_PATTERNS = OPAWG_PATTERNS if OPAWG_PATTERNS.is_dir() else REPO_ROOT / "resources" / "user_agents"
if OPAWG_PATTERNS.is_dir():
    os.environ.setdefault("PODCAST_USER_AGENT_PATTERNS_DIR", str(OPAWG_PATTERNS))
# Outside the demo every run needs a hash secret (resources/settings.py): the suite's own, unless one is set.
os.environ.setdefault("PODCAST_IP_HASH_SECRET", "test-suite-hash-secret")


@pytest.fixture(scope="session")
def admin_url():
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    root = Path(tempfile.mkdtemp(prefix="pa-test-pg-"))
    server = embedded_server(root / "pg")
    yield server.get_uri("postgres")
    stop_embedded_server(root / "pg")
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def fresh_db(admin_url):
    """A new warehouse database at the code's schema revision (migrated); dropped afterwards.
    Every test's has the same name in a process, so dbt's parse of the project for that
    connection is reused from test to test (tests/dbt_cli.py)."""
    name = f"t_fresh_{os.getpid()}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    url = with_database(admin_url, name)
    migrate(url)
    yield url
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


@pytest.fixture(scope="module")
def new_warehouse(admin_url):
    """Migrated databases made on demand (`new_warehouse("t_prefix")`), dropped when the
    test module ends."""
    created: list[str] = []

    def make(prefix: str = "t") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
        created.append(name)
        url = with_database(admin_url, name)
        migrate(url)
        return url

    yield make
    with psycopg.connect(admin_url, autocommit=True) as conn:
        for name in created:
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


@pytest.fixture(autouse=True)
def _no_dagster_instance_left_current():
    """A Dagster instance used with `with` makes its state storage the current one for the
    context; when its exit runs in another context (seen on the suite's workers) the old one
    stays current after its folder is gone, and every later definitions load in that worker
    fails on it. Nothing outlives its test."""
    yield
    from dagster._core.storage.defs_state import base

    if base.DefsStateStorage.get() is not None:
        base._current_storage.set(None)


@pytest.fixture(scope="session")
def network():
    return build_network(seed=7)


@pytest.fixture(scope="session")
def simulator(network):
    with SimulatorServer(network, hang_seconds=4.0) as server:
        yield server


@pytest.fixture(scope="session")
def truth(network, simulator):
    return ground_truth(network, simulator.base_url)


def query(url: str, statement: str, params=None) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(statement, params).fetchall()


ATTRIBUTION_SECRET = b"attribution-test-secret"
ATTRIBUTION_SEED = 7
# The attribution marts and everything under them, plus the daily download rollups reports chart.
ATTRIBUTION_MODELS = ("+path:models/marts/attribution", "+dim_episodes", "fct_downloads_daily_by_show",
                      "fct_downloads_daily_by_tenant")
ATTRIBUTION_SELECT = ("--select", *ATTRIBUTION_MODELS, "--indirect-selection", "cautious")


def build_days(url: str, target: str, first, last, models=ATTRIBUTION_MODELS, dbt_vars=None,
               phases=("before", "partitioned", "after")) -> list:
    """A build of `models` as the platform runs one after new data for the days first..last
    (docs/PARTITIONED_DBT.md): `before`, the unpartitioned models the partitioned ones read;
    `partitioned`, the partitioned models (dbt tag `partitioned`) over that partition range (vars
    min_date and max_date); `after`, the unpartitioned models built from them. Each runs the data
    tests of its own models (`cautious`). Returns the dbt results of the phases asked for."""
    import json
    from datetime import timedelta

    from tests.test_downloads_incremental import dbt_build

    window = {"min_date": first.isoformat(), "max_date": (last + timedelta(days=1)).isoformat()}
    selections = {
        # (not what is built from a partitioned model: the tests reading one wait for it)
        "before": ("--select", *(f"{m},+tag:partitioned" for m in models), "--exclude", "tag:partitioned+"),
        "partitioned": ("--select", *(f"{m},tag:partitioned" for m in models)),
        "after": ("--select", *models, "--exclude", "+tag:partitioned"),
    }
    return [dbt_build(url, target, *selections[phase], "--indirect-selection", "cautious", "--vars",
                      json.dumps({**(dbt_vars or {}), **(window if phase == "partitioned" else {})}), check=False)
            for phase in phases]


@pytest.fixture(scope="session")
def attribution_warehouse(tmp_path_factory, admin_url, simulator, truth):
    """One warehouse with the simulated network's feeds, three days of access logs, campaigns and
    conversions loaded, and the attribution marts built by dbt (shared by the attribution and
    report tests; built once per session). Its campaigns are priced as the demo's, with dense
    conversions (`response="dense"`) so that every attribution rule is exercised many times."""
    import ipaddress
    from datetime import timedelta

    import yaml

    from assets.dbt_rules import project_vars
    from assets.ingestion.campaigns import load_campaign_sources, sync_campaigns
    from assets.ingestion.conversions import sync_conversions
    from assets.ingestion.listener_logs_load import discover, load_file
    from assets.ingestion.listener_logs_parse import IpHasher
    from assets.ingestion.rss_ingest import ingest_rss
    from assets.ingestion.transcripts import ingest_documents
    from assets.processing.ad_slots import detect_ad_slots
    from resources.http import FetchPolicy
    from assets.ingestion.user_agents import read_patterns, store_patterns
    from simulator.__main__ import DEMO_LOG_DAYS, SHARED_IP_USER_AGENTS
    from simulator.campaign_sources import campaign_sources, write_event_files, write_insertion_orders
    from simulator.campaigns import campaign_truth, generate_campaigns
    from simulator.logs import DATACENTER_CIDRS, generate_logs
    from tests.test_downloads_incremental import dbt_build
    from tests.test_rss_ingest import sources_for

    root = tmp_path_factory.mktemp("attribution")
    name = f"t_attr_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    url = with_database(admin_url, name)
    migrate(url)
    datacenters = [ipaddress.ip_network(c) for c in DATACENTER_CIDRS]

    ingest_rss(warehouse_at(url), sources_for(truth), batch_id="rss")
    logs = generate_logs(truth, root / "logs", DEMO_LOG_DAYS, seed=ATTRIBUTION_SEED,
                         shared_ip_user_agents=SHARED_IP_USER_AGENTS)
    files = discover(root / "logs", settle_seconds=0)
    last_day = max(log.log_date for log in files)

    def load_logs(days):
        with psycopg.connect(url, autocommit=True) as conn:
            for log in files:
                if log.log_date in days:
                    load_file(conn, log, IpHasher.for_tenant(ATTRIBUTION_SECRET, log.tenant_id), "logs", datacenters)

    with psycopg.connect(url, autocommit=True) as conn:
        store_patterns(conn, read_patterns(UA_PATTERNS), "t")
    load_logs({log.log_date for log in files} - {last_day})

    world = generate_campaigns(truth, logs, ATTRIBUTION_SEED, response="dense")  # every rule, many times
    simulator.attach_campaigns(world)
    write_insertion_orders(world, root / "io")
    write_event_files(world, root / "conversions")
    section, environ = campaign_sources(world, simulator.base_url)
    (root / "sources.yaml").write_text(yaml.safe_dump(section))
    sources = load_campaign_sources(root / "sources.yaml")
    sync_campaigns(warehouse_at(url), sources, root / "io", "campaigns", environ=environ)
    sync_conversions(warehouse_at(url), sources, root / "conversions", ATTRIBUTION_SECRET, datacenters, "conversions", environ=environ)
    # The transcripts and chapters the simulator now serves carry the campaigns' reads: detected, they
    # place the placements sold without an offset and give the codes of campaigns that name none.
    documents = ingest_documents(warehouse_at(url), "documents", FetchPolicy(allow_private_hosts=True, timeout_seconds=5))
    with psycopg.connect(url, autocommit=True) as conn:
        detection = detect_ad_slots(conn, "detection")

    # Built as in production: every day but the last, whole; then the last day's logs, and a
    # run of the days they change (new exposures of households that converted before and after
    # them): the downloads of the day before and that day, the credits of the conversions up to
    # the longest attribution window after it. Then every data test of the marts and what they read.
    target = str(root / "target")
    first = dbt_build(url, target, *ATTRIBUTION_SELECT, check=False)
    assert first.returncode == 0, first.stdout[-4000:]
    load_logs({last_day})
    lookback = timedelta(days=project_vars(REPO_ROOT / "dbt_project")["attribution_max_window_days"])
    for run in build_days(url, target, last_day - timedelta(days=1), last_day + lookback):
        assert run.returncode == 0, run.stdout[-4000:]
    result = dbt_build(url, target, *ATTRIBUTION_SELECT, command="test", check=False)
    yield {"url": url, "truth": campaign_truth(world), "world": world, "dbt": result, "target": target,
           "documents": documents, "detection": detection}
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


def _demo_cli(*args, env):
    import subprocess
    import sys

    exe = Path(sys.executable).with_name("podcast-analytics")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=1500)


@pytest.fixture(scope="session")
def demo_runs(tmp_path_factory):
    """`podcast-analytics demo` twice in a fresh data directory (the second finds nothing new),
    shared by tests/test_demo.py, which reads what the demos did, and then by
    tests/test_demo_unattended.py, which hands the same deployment to the daemon."""
    import socket

    data_dir = tmp_path_factory.mktemp("demo-data")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DAGSTER_HOME", "DAGSTER_PG_URL", "PODCAST_SOURCES_FILE")}
    env.update(PODCAST_DATA_DIR=str(data_dir), PODCAST_SIMULATOR_PORT=str(port), COLUMNS="200")
    first = _demo_cli("demo", env=env)
    second = _demo_cli("demo", env=env)
    url = f"postgresql://postgres@/podcast?host={data_dir / 'pg'}"
    yield data_dir, env, first, second, url
    _demo_cli("stop", env=env)


# The suite runs on two workers (pytest-xdist, see pyproject.toml). A test module is one unit of
# work, so its module fixtures are built once; the modules that share a session fixture are one
# unit too (SHARED_UNITS: the attribution warehouse, the demo's data directory), run in file
# order. The longest units go first, so the two workers finish at about the same time.
SHARED_FIXTURES = {"attribution_warehouse": "attribution_warehouse", "demo_runs": "demo"}
SHARED_UNITS = {"tests/test_attribution.py": "attribution_warehouse", "tests/test_reports.py": "attribution_warehouse",
                "tests/test_hostile_reports.py": "attribution_warehouse",
                "tests/test_benchmark_disclosure.py": "attribution_warehouse",
                "tests/test_privacy_requests.py": "attribution_warehouse",
                "tests/test_tenant_isolation.py": "attribution_warehouse",
                "tests/test_privacy_minimisation.py": "attribution_warehouse",
                "tests/test_ad_slots_flow.py": "attribution_warehouse",
                # the daemon takes the demo's deployment over after test_demo.py has read it
                "tests/test_demo.py": "demo", "tests/test_demo_unattended.py": "demo"}
LONGEST_FIRST = ("demo", "attribution_warehouse", "tests/test_cli_postgres.py",
                 "tests/test_concurrency.py",
                 "tests/test_downloads_incremental.py",
                 "tests/test_pipeline.py", "tests/test_quality_gates.py", "tests/test_platform_dbt.py")


def _work_unit(nodeid: str) -> str:
    module = nodeid.split("::", 1)[0]
    return SHARED_UNITS.get(module, module)


def pytest_collection_modifyitems(config, items):
    for item in items:
        for fixture, unit in SHARED_FIXTURES.items():
            if fixture in getattr(item, "fixturenames", ()) and _work_unit(item.nodeid) != unit:
                raise pytest.UsageError(f"{item.nodeid} uses {fixture}: add its module to SHARED_UNITS as {unit!r}")
    rank = {unit: n for n, unit in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(_work_unit(item.nodeid), len(rank)))  # stable: file order otherwise


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's hook: absent with -p no:xdist
def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class WorkUnitScheduling(LoadScopeScheduling):
        """Like `--dist loadfile`, with the shared warehouse's modules as one unit."""

        def _split_scope(self, nodeid: str) -> str:
            return _work_unit(nodeid)

    return WorkUnitScheduling(config, log)

"""The deployment files agree with each other and with the installed Dagster.

docker-compose.yml, the Dockerfile, dagster.yaml and the two workspace files are read as data:
every command a service runs must exist in this environment's Dagster CLI, every file they name
must exist in the repository, and the instance config must pass Dagster's own schema.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from functools import cache
from pathlib import Path, PurePosixPath

import yaml

ROOT = Path(__file__).resolve().parents[1]
# Not resolved: in a virtualenv, sys.executable is a link that must keep pointing into it.
BIN_DIR = Path(sys.executable).parent
DAGSTER_EXECUTABLES = {"dagster", "dagster-webserver", "dagster-daemon"}
DAGSTER_SERVICES = ("user_code", "webserver", "daemon")
# The run tags the queue limits: ours (assets/run_tags.py) and the one Dagster gives runs of a
# partition with a `tenant` dimension.
QUEUE_TAGS = ("podcast/tenant", "dagster/partition/tenant", "podcast/source", "podcast/dbt_tenant")
# one run of the partitioned dbt models per tenant at a time; of the rest, 2 per tenant and per source
QUEUE_LIMITS = {"podcast/dbt_tenant": 1}
ENVIRONMENT = (
    "DATABASE_URL",
    "DAGSTER_PG_URL",
    "DAGSTER_HOME",
    "PODCAST_DATA_DIR",
    "PODCAST_SOURCES_FILE",
)


def load_yaml(name: str) -> dict:
    return yaml.safe_load((ROOT / name).read_text())


def compose() -> dict:
    return load_yaml("docker-compose.yml")


def command_tokens(command: str | list[str]) -> list[str]:
    tokens = shlex.split(command) if isinstance(command, str) else list(command)
    return tokens[1:] if tokens[:1] in (["CMD"], ["CMD-SHELL"]) else tokens


def option_value(tokens: list[str], *names: str) -> str:
    for index, token in enumerate(tokens):
        if token in names:
            return tokens[index + 1]
    raise AssertionError(f"none of {names} in {tokens}")


@cache
def cli_help(executable: str, subcommand: tuple[str, ...]) -> str:
    path = shutil.which(executable, path=str(BIN_DIR))
    assert path, f"{executable} is not installed in {BIN_DIR}"
    result = subprocess.run(
        [path, *subcommand, "--help"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"{executable} {' '.join(subcommand)}: {result.stderr}"
    return result.stdout


def assert_runs_with_installed_cli(tokens: list[str]) -> None:
    """The executable is installed here, its subcommand exists and knows every option used."""
    executable, args = tokens[0], tokens[1:]
    assert executable in DAGSTER_EXECUTABLES, tokens
    subcommand = []
    while args and not args[0].startswith("-"):
        subcommand.append(args.pop(0))
    help_text = cli_help(executable, tuple(subcommand))
    for option in (arg for arg in args if arg.startswith("-")):
        assert re.search(rf"(?<![\w-]){re.escape(option)}\b", help_text), (
            f"{option} is not an option of {executable} {' '.join(subcommand)}"
        )


def dockerfile_instructions() -> list[tuple[str, list[str]]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.split()))
    return instructions


def dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, args in dockerfile_instructions():
        if keyword == "ENV":
            env.update(arg.split("=", 1) for arg in args if "=" in arg)
    return env


def dockerfile_copies() -> list[tuple[str, PurePosixPath]]:
    """(source, where it lands in the image) for each source of each COPY."""
    env = dockerfile_env()
    workdir = PurePosixPath("/")
    copies = []
    for keyword, args in dockerfile_instructions():
        if keyword == "WORKDIR":
            workdir = workdir / args[0]
        elif keyword == "COPY":
            *sources, destination = [arg for arg in args if not arg.startswith("--")]
            destination = re.sub(r"\$\{?(\w+)\}?", lambda m: env[m.group(1)], destination)
            target = workdir / destination
            for source in sources:
                # A file copied to a folder (several sources, or a destination ending in /)
                # keeps its name; a folder's contents land in the destination itself.
                to_folder = len(sources) > 1 or destination.endswith("/")
                if to_folder and not (ROOT / source).is_dir():
                    copies.append((source, target / PurePosixPath(source).name))
                else:
                    copies.append((source, target))
    return copies


def image_path_to_repo(path: str) -> Path:
    """The repository file that the image holds at `path` (COPY'd there by the Dockerfile)."""
    target = PurePosixPath(path)
    for source, copied_to in dockerfile_copies():
        if target == copied_to or copied_to in target.parents:
            return ROOT / source / target.relative_to(copied_to)
    raise AssertionError(f"no COPY in the Dockerfile puts anything at {path}")


def test_compose_services_run_installed_dagster_commands():
    services = compose()["services"]
    assert {"timescaledb", *DAGSTER_SERVICES} <= services.keys()
    for name in DAGSTER_SERVICES:
        tokens = command_tokens(services[name]["command"])
        assert_runs_with_installed_cli(tokens)
        if name != "user_code":
            workspace = image_path_to_repo(option_value(tokens, "-w", "--workspace"))
            assert workspace.is_file(), workspace
            assert workspace == ROOT / "deploy" / "workspace.docker.yaml"
    assert_runs_with_installed_cli(command_tokens(services["user_code"]["healthcheck"]["test"]))


def test_docker_workspace_points_at_the_code_server():
    user_code = command_tokens(compose()["services"]["user_code"]["command"])
    [entry] = load_yaml("deploy/workspace.docker.yaml")["load_from"]
    server = entry["grpc_server"]
    assert server["host"] == "user_code"
    assert str(server["port"]) == option_value(user_code, "-p", "--port")
    assert server["location_name"] == option_value(user_code, "--location-name")
    assert option_value(user_code, "-m", "--module-name") == "pipelines.definitions"


def test_local_workspace_loads_the_code_location_module():
    [entry] = load_yaml("workspace.yaml")["load_from"]
    assert entry["python_module"] == {
        "module_name": "pipelines.definitions",
        "working_directory": ".",
        "location_name": "podcast_analytics",
    }


def test_compose_wiring():
    """Always checked at the YAML level; `docker-compose config` also runs where it is installed."""
    config = compose()
    services = config["services"]
    database = services["timescaledb"]
    assert database["image"].startswith("timescale/timescaledb:")
    assert "pg_isready" in " ".join(command_tokens(database["healthcheck"]["test"]))
    assert {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"} <= database["environment"].keys()
    for volume in database["volumes"]:
        source = volume.split(":")[0]
        if source.startswith("."):
            assert (ROOT / source).exists(), volume
        else:
            assert source in config["volumes"], f"{source} is not a named volume"
    image_home = dockerfile_env()["DAGSTER_HOME"]
    for name in DAGSTER_SERVICES:
        service = services[name]
        assert service["depends_on"]["timescaledb"]["condition"] == "service_healthy"
        assert service["restart"] in {"always", "unless-stopped", "on-failure"}
        environment = service["environment"]
        for variable in ENVIRONMENT:
            assert environment.get(variable), f"{name} lacks {variable}"
        assert environment["DAGSTER_PG_URL"].endswith("@timescaledb:5432/dagster")
        assert environment["DAGSTER_HOME"] == image_home

    docker_compose = shutil.which("docker-compose")
    if docker_compose:
        result = subprocess.run(
            [docker_compose, "-f", "docker-compose.yml", "config", "-q"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr


def test_initdb_script_creates_dagster_database_and_timescaledb():
    sql = (ROOT / "deploy" / "initdb" / "10-podcast.sql").read_text().lower()
    assert "create database dagster" in sql
    assert "create extension if not exists timescaledb" in sql


def test_dagster_yaml_uses_postgres_from_env_and_passes_the_schema():
    from dagster import QueuedRunCoordinator
    from dagster._core.instance.config import dagster_instance_config
    from dagster._serdes import ConfigurableClassData

    config = load_yaml("dagster.yaml")
    assert config["storage"] == {"custom": {"module": "resources.warehouse", "class": "PostgresStorage",
                                            "config": {"postgres_url": {"env": "DAGSTER_PG_URL"}}}}
    assert config["telemetry"] == {"enabled": False}
    assert config["run_monitoring"]["enabled"] is True

    validated, _ = dagster_instance_config(str(ROOT))
    coordinator = validated["run_coordinator"]
    ConfigurableClassData(
        coordinator["module"], coordinator["class"], yaml.safe_dump(coordinator["config"])
    ).rehydrate(QueuedRunCoordinator)
    # runs queue a few at a time; the dbt build's pool (assets/dbt.py) takes one step at a time
    assert 0 < validated["concurrency"]["runs"]["max_concurrent_runs"] <= 10
    assert validated["concurrency"]["pools"]["default_limit"] == 1
    # ... and at most 2 at once per tenant and per source (one dbt run per tenant), each value of
    # the tag on its own
    limits = {limit["key"]: limit for limit in validated["concurrency"]["runs"]["tag_concurrency_limits"]}
    assert limits.keys() == set(QUEUE_TAGS)
    for key, limit in limits.items():
        assert limit["value"] == {"applyLimitPerUniqueValue": True} and limit["limit"] == QUEUE_LIMITS.get(key, 2)


def test_dockerfile_installs_the_project_from_repository_files():
    instructions = dockerfile_instructions()
    assert instructions[0] == ("FROM", ["python:3.11-slim"])
    runs = [" ".join(args) for keyword, args in instructions if keyword == "RUN"]
    # The project with the extras of the ARG, which name extras pyproject.toml defines.
    assert any(re.search(r'\bpip install (\S+ )*"?\.\[\$\{PODCAST_EXTRAS\}\]"?(\s|$)', run) for run in runs), runs
    [extras] = [arg.split("=", 1)[1] for keyword, args in instructions if keyword == "ARG"
                for arg in args if arg.startswith("PODCAST_EXTRAS=")]
    optional = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert {"docker", "k8s"} == set(extras.split(",")) and set(extras.split(",")) <= optional.keys()
    exposed = {port for keyword, args in instructions if keyword == "EXPOSE" for port in args}
    assert {"3000", "4000"} <= exposed

    ignored = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copies = dockerfile_copies()
    for source, _ in copies:
        assert (ROOT / source).exists(), f"the Dockerfile copies {source}, which is missing"
        assert not any(fnmatch.fnmatch(source.rstrip("/"), p) for p in ignored), source
    home = PurePosixPath(dockerfile_env()["DAGSTER_HOME"])
    assert ("deploy/dagster.docker.yaml", home / "dagster.yaml") in copies


def test_compose_mounts_a_feed_list_that_loads_and_documents_its_variables():
    from assets.ingestion.rss_ingest import load_sources

    services = compose()["services"]
    text = (ROOT / "docker-compose.yml").read_text()
    for name in ("user_code", "daemon", "webserver"):
        service = services[name]
        environment = service["environment"]
        mounts = {target: source for source, target, *_ in (v.rsplit(":", 2) if v.count(":") >= 2 else (*v.split(":"), "")
                                                             for v in service["volumes"])}
        sources_file = environment["PODCAST_SOURCES_FILE"]
        host = mounts[sources_file]
        default = re.fullmatch(r"\$\{PODCAST_SOURCES_HOST_FILE:-(.+)\}", host)[1]
        assert load_sources(ROOT / default).feeds == []  # the shipped example polls nothing, and polls cleanly
        recipients = re.fullmatch(r"\$\{PODCAST_RECIPIENTS_HOST_FILE:-(.+)\}", mounts[environment[
            "PODCAST_REPORT_RECIPIENTS_FILE"]])[1]
        assert yaml.safe_load((ROOT / recipients).read_text()) == {"recipients": []}
        assert "podcast_data:/opt/dagster/data" in service["volumes"]
    for variable in re.findall(r"\$\{(\w+)", text):   # every variable compose reads is documented at the top
        assert re.search(rf"^#.*\b{variable}\b", text, re.M), variable
    # The daemon and the code server load the same definitions; nothing switches sensors off.
    assert "pipelines.definitions" in services["user_code"]["command"]
    assert "workspace.docker.yaml" in services["daemon"]["command"]
    assert "sensor" not in " ".join(str(v) for v in services["daemon"].get("environment", {}).values()).lower()


def test_docker_compose_config_accepts_the_file():
    docker_compose = shutil.which("docker-compose")
    if docker_compose is None:  # Debian's docker-compose package; the checks above always run
        return
    result = subprocess.run([docker_compose, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_compose_instance_is_dagster_yaml_plus_the_docker_run_launcher(tmp_path):
    """deploy/dagster.docker.yaml differs from the embedded default only by its run launcher, which
    the installed dagster-docker accepts, and the compose file gives that launcher what it names."""
    from dagster._core.instance.config import dagster_instance_config
    from dagster._core.launcher import RunLauncher
    from dagster._serdes import ConfigurableClassData
    from dagster_docker import DockerRunLauncher

    docker = load_yaml("deploy/dagster.docker.yaml")
    launcher = docker.pop("run_launcher")
    assert docker == load_yaml("dagster.yaml")
    assert "run_launcher" not in load_yaml("dagster.yaml")  # the embedded default launches in process
    assert (launcher["module"], launcher["class"]) == ("dagster_docker", "DockerRunLauncher")

    (tmp_path / "dagster.yaml").write_text((ROOT / "deploy" / "dagster.docker.yaml").read_text())
    validated, _ = dagster_instance_config(str(tmp_path))
    assert validated["run_coordinator"]["class"] == "QueuedRunCoordinator"
    section = validated["run_launcher"]
    rehydrated = ConfigurableClassData(section["module"], section["class"],
                                       yaml.safe_dump(section["config"])).rehydrate(RunLauncher)
    assert isinstance(rehydrated, DockerRunLauncher)

    config = compose()
    services = config["services"]
    user_code = services["user_code"]
    options = launcher["config"]
    assert options["image"] == user_code["image"] == user_code["environment"]["DAGSTER_CURRENT_IMAGE"]
    assert options["networks"] == [config["networks"]["default"]["name"]]
    assert options["container_kwargs"]["volumes_from"] == [user_code["container_name"]]
    # Every variable the launcher copies is set in the daemon's environment (even if empty), and
    # the run gets everything a Dagster service of the compose file gets.
    daemon_env = services["daemon"]["environment"]
    assert set(options["env_vars"]) <= daemon_env.keys()
    assert set(ENVIRONMENT) <= set(options["env_vars"])
    assert set(options["env_vars"]) >= {k for k in user_code["environment"] if k != "DAGSTER_CURRENT_IMAGE"}


def test_only_the_daemon_and_webserver_reach_the_docker_socket():
    services = compose()["services"]
    socket = "/var/run/docker.sock:/var/run/docker.sock"
    for name, service in services.items():
        has_socket = socket in service.get("volumes", [])
        assert has_socket == (name in {"daemon", "webserver"}), name
    for name in ("daemon", "webserver"):
        service = services[name]
        assert service["group_add"] == ["${DOCKER_GID:-999}"]
        # Their own mounts are those of every Dagster service, plus the socket.
        assert set(service["volumes"]) - {socket} == set(services["user_code"]["volumes"])
        assert "./deploy/dagster.docker.yaml:/opt/dagster/home/dagster.yaml:ro" in service["volumes"]


def test_runs_carry_the_tags_the_queue_limits():
    from dagster._core.storage.tags import get_multidimensional_partition_tag

    from pipelines.jobs import JOBS
    from pipelines.reports import report_tenant_tags
    from assets.run_tags import DBT_TENANT_TAG, SOURCE_TAG, TENANT_TAG, dbt_tenant_tags
    from assets.ingestion.megaphone_export import megaphone_export_job

    assert {SOURCE_TAG, TENANT_TAG, DBT_TENANT_TAG} < set(QUEUE_TAGS)
    assert dbt_tenant_tags("acme") == {TENANT_TAG: "acme", DBT_TENANT_TAG: "acme"}
    # the tag Dagster puts on a run of a partition with a `tenant` dimension
    assert get_multidimensional_partition_tag("tenant") in QUEUE_TAGS
    sources = {job.name: job.tags.get(SOURCE_TAG) for job in [*JOBS, megaphone_export_job]}
    assert sources == {
        "rss_ingest": "rss", "refresh_episode_documents": "rss", "load_listener_logs": "listener_logs",
        "platform_catalog": "platforms",
        "platform_metrics": "platforms", "sync_sponsorship_campaigns": "sponsorships",
        "load_conversion_events": "conversions", "load_megaphone_exports": "megaphone",
        # everything at once (first loads), the dbt models (rule changes, backfills), and the SLA
        # snapshot: no one source
        "materialize_all": None, "materialize_marts": None, "dbt_unpartitioned": None, "dbt_partitioned": None,
        "sla_snapshot": None,
    }
    assert report_tenant_tags("acme:spring-launch") == {TENANT_TAG: "acme"}

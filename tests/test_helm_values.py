"""deploy/helm/values.yaml fits Dagster's official Helm chart, our image and our secrets.

No `helm` binary or copy of the chart is at hand here, so the values are checked against CHART,
our own table of the chart keys we set and what each takes, written from the chart's values
schema (helm/dagster/values.schema.json and its subschemas in dagster-io/dagster): a key outside
the table, or of another type, fails. Kubernetes objects inside (volumes, mounts, resources, secret
references) are parsed with the Kubernetes client's own models; the run launcher's and the
queue's settings go through the config schemas of the installed dagster-k8s and dagster.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.test_deployment_files import (
    ROOT, assert_runs_with_installed_cli, compose, dockerfile_env, dockerfile_instructions, load_yaml,
)

VALUES = ROOT / "deploy" / "helm" / "values.yaml"
PREREQUISITES = ROOT / "deploy" / "helm" / "prerequisites.example.yaml"


# --- the chart's keys we use, and what they take --------------------------------------------------

@dataclass(frozen=True)
class OneOf:
    choices: tuple


@dataclass(frozen=True)
class ListOf:
    item: object


@dataclass(frozen=True)
class MapOf:
    value: object


@dataclass(frozen=True)
class K8s:
    """A Kubernetes API object (the chart passes it through to the pod spec as it is); `partial`:
    a fragment merged into one (required fields may be missing)."""
    model: str
    partial: bool = False


@dataclass(frozen=True)
class Either:
    options: tuple


PULL_POLICY = OneOf(("Always", "IfNotPresent", "Never"))
TAG_LIMIT = {"key": str, "value": Either((str, {"applyLimitPerUniqueValue": bool})), "limit": int}
TICK_RETENTION = {"purgeAfterDays": Either((int, {"skipped": int, "success": int, "failure": int, "started": int}))}
IMAGE = {"repository": str, "tag": Either((str, int)), "pullPolicy": PULL_POLICY}

CHART = {
    "global": {"dagsterHome": str, "postgresqlSecretName": str, "serviceAccountName": str},
    "generatePostgresqlPasswordSecret": bool,
    "postgresql": {
        "enabled": bool, "postgresqlHost": str, "postgresqlUsername": str, "postgresqlDatabase": str,
        "postgresqlParams": MapOf(str), "postgresqlScheme": str, "service": {"port": int},
    },
    "dagster-user-deployments": {
        "enabled": bool, "enableSubchart": bool,
        "deployments": ListOf({
            "name": str, "image": IMAGE, "codeServerArgs": ListOf(str), "dagsterApiGrpcArgs": ListOf(str),
            "port": int, "includeConfigInLaunchedRuns": {"enabled": bool},
            "env": Either((MapOf(str), ListOf(K8s("V1EnvVar")))),
            "envConfigMaps": ListOf(K8s("V1ConfigMapEnvSource")), "envSecrets": ListOf(K8s("V1SecretEnvSource")),
            "volumes": ListOf(K8s("V1Volume")), "volumeMounts": ListOf(K8s("V1VolumeMount")),
            "resources": K8s("V1ResourceRequirements"), "podSecurityContext": K8s("V1PodSecurityContext"),
            "labels": MapOf(str), "annotations": MapOf(str),
        }),
    },
    "runLauncher": {
        "type": OneOf(("K8sRunLauncher", "CeleryK8sRunLauncher", "CustomRunLauncher")),
        "config": {"k8sRunLauncher": {
            "imagePullPolicy": PULL_POLICY, "jobNamespace": str, "loadInclusterConfig": bool,
            "envConfigMaps": ListOf(K8s("V1ConfigMapEnvSource")), "envSecrets": ListOf(K8s("V1SecretEnvSource")),
            "envVars": ListOf(str), "volumeMounts": ListOf(K8s("V1VolumeMount")), "volumes": ListOf(K8s("V1Volume")),
            "labels": MapOf(str), "resources": K8s("V1ResourceRequirements"), "failPodOnRunFailure": bool,
            "runK8sConfig": {"containerConfig": K8s("V1Container", partial=True),
                             "podSpecConfig": K8s("V1PodSpec", partial=True),
                             "jobSpecConfig": K8s("V1JobSpec", partial=True)},
        }},
    },
    "dagsterDaemon": {
        "enabled": bool,
        "runCoordinator": {
            "enabled": bool, "type": OneOf(("QueuedRunCoordinator", "CustomRunCoordinator")),
            "config": {"queuedRunCoordinator": {
                "maxConcurrentRuns": int, "tagConcurrencyLimits": ListOf(TAG_LIMIT), "dequeueIntervalSeconds": int,
            }},
        },
    },
    "concurrency": {
        "enabled": bool,
        "pools": {"defaultLimit": int, "granularity": OneOf(("op", "run")), "opGranularityRunBuffer": int},
        "runs": {"maxConcurrentRuns": int, "tagConcurrencyLimits": ListOf(TAG_LIMIT)},
    },
    "retention": {"enabled": bool, "schedule": TICK_RETENTION, "sensor": TICK_RETENTION,
                  "autoMaterialize": TICK_RETENTION},
    "telemetry": {"enabled": bool},
}


def k8s_object(model_name: str, data: dict, path: str, partial: bool = False):
    """`data` (as written in YAML, camelCase) as the Kubernetes client's model: unknown keys fail,
    and so do missing required fields unless `partial`."""
    import kubernetes.client as k8s

    model = getattr(k8s, model_name)
    by_json_name = {json: attr for attr, json in model.attribute_map.items()}
    assert isinstance(data, dict), f"{path}: {model_name} expected, got {data!r}"
    unknown = set(data) - set(by_json_name)
    assert not unknown, f"{path}: {sorted(unknown)} are not fields of {model_name}"
    kwargs = {}
    for json_name, value in data.items():
        attr = by_json_name[json_name]
        kwargs[attr] = k8s_value(model.openapi_types[attr], value, f"{path}.{json_name}")
    if partial:
        kwargs["local_vars_configuration"] = k8s.Configuration()
        kwargs["local_vars_configuration"].client_side_validation = False
    return model(**kwargs)


def k8s_value(type_name: str, value, path: str):
    if value is None:
        return None
    if list_of := re.fullmatch(r"list\[(.+)\]", type_name):
        assert isinstance(value, list), f"{path}: a list expected"
        return [k8s_value(list_of[1], item, f"{path}[{i}]") for i, item in enumerate(value)]
    if map_of := re.fullmatch(r"dict[(\[]str, (.+)[)\]]", type_name):
        assert isinstance(value, dict), f"{path}: a mapping expected"
        return {key: k8s_value(map_of[1], item, f"{path}.{key}") for key, item in value.items()}
    if type_name.startswith("V1"):
        return k8s_object(type_name, value, path)
    expected = {"str": str, "int": int, "bool": bool, "object": object}[type_name]
    assert isinstance(value, expected), f"{path}: {type_name} expected, got {value!r}"
    return value


def conforms(value, spec, path: str) -> None:
    """Fails with the path of the first key the chart does not define or that has the wrong type."""
    if isinstance(spec, dict):
        assert isinstance(value, dict), f"{path}: a mapping expected, got {value!r}"
        for key, item in value.items():
            assert key in spec, f"{path}.{key} is not a key of the chart (tests/test_helm_values.py CHART)"
            conforms(item, spec[key], f"{path}.{key}")
    elif isinstance(spec, ListOf):
        assert isinstance(value, list), f"{path}: a list expected, got {value!r}"
        for i, item in enumerate(value):
            conforms(item, spec.item, f"{path}[{i}]")
    elif isinstance(spec, MapOf):
        assert isinstance(value, dict), f"{path}: a mapping expected, got {value!r}"
        for key, item in value.items():
            conforms(item, spec.value, f"{path}.{key}")
    elif isinstance(spec, OneOf):
        assert value in spec.choices, f"{path}: {value!r} is not one of {spec.choices}"
    elif isinstance(spec, Either):
        errors = []
        for option in spec.options:
            try:
                conforms(value, option, path)
                return
            except AssertionError as error:
                errors.append(str(error))
        raise AssertionError(f"{path}: {value!r} fits none of its forms: {errors}")
    elif isinstance(spec, K8s):
        k8s_object(spec.model, value, path, spec.partial)
    else:
        assert isinstance(value, spec) and not (spec is int and isinstance(value, bool)), (
            f"{path}: {spec.__name__} expected, got {value!r}")


def values() -> dict:
    return yaml.safe_load(VALUES.read_text())


def deployment() -> dict:
    [code_server] = values()["dagster-user-deployments"]["deployments"]
    return code_server


def prerequisites() -> dict[tuple[str, str], dict]:
    return {(doc["kind"], doc["metadata"]["name"]): doc for doc in yaml.safe_load_all(PREREQUISITES.read_text())}


# --- the tests ---------------------------------------------------------------------------------

def test_every_key_of_the_values_is_a_chart_key_of_its_type():
    conforms(values(), CHART, "values")


@pytest.mark.parametrize("mistake", [
    {"postgresql": {"host": "db"}},                                              # postgresqlHost
    {"runLauncher": {"type": "DockerRunLauncher"}},
    {"concurrency": {"runs": {"tagConcurrencyLimits": [{"key": "podcast/tenant", "limit": "2"}]}}},
    {"dagster-user-deployments": {"deployments": [{"volumes": [{"name": "x", "persistentVolume": {}}]}]}},
    {"dagster-user-deployments": {"deployments": [{"envSecrets": ["podcast-analytics-warehouse"]}]}},
])
def test_the_key_table_refuses_what_the_chart_would_not_take(mistake):
    with pytest.raises(AssertionError):
        conforms(mistake, CHART, "values")


def test_external_postgresql_from_an_existing_secret():
    config = values()
    assert config["postgresql"]["enabled"] is False
    assert config["postgresql"]["postgresqlHost"]
    assert config["generatePostgresqlPasswordSecret"] is False
    secret = prerequisites()[("Secret", config["global"]["postgresqlSecretName"])]
    assert set(secret["stringData"]) == {"postgresql-password"}  # the key the chart reads


def test_code_server_runs_our_image_as_the_dockerfile_builds_it():
    code_server = deployment()
    env = dockerfile_env()
    cmd = next(args for keyword, args in dockerfile_instructions() if keyword == "CMD")
    cmd = yaml.safe_load(" ".join(cmd))  # the exec form is a JSON list
    workdir = next(args[0] for keyword, args in dockerfile_instructions() if keyword == "WORKDIR")
    exposed = {port for keyword, args in dockerfile_instructions() if keyword == "EXPOSE" for port in args}

    assert values()["global"]["dagsterHome"] == env["DAGSTER_HOME"]
    image = code_server["image"]
    assert image["repository"].rsplit("/", 1)[-1] == compose()["services"]["user_code"]["image"].split(":")[0]
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert image["tag"] == version and image["tag"] != "latest"
    assert str(code_server["port"]) in exposed
    args = code_server["codeServerArgs"]
    # The chart runs `dagster code-server start -h 0.0.0.0 -p <port>` and then these arguments.
    assert_runs_with_installed_cli(["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", str(code_server["port"]), *args])
    assert args[args.index("-m") + 1] == cmd[cmd.index("-m") + 1] == "pipelines.definitions"
    assert args[args.index("-d") + 1] == cmd[cmd.index("-d") + 1] == workdir
    assert code_server["includeConfigInLaunchedRuns"] == {"enabled": True}  # runs get its env, secrets, volumes
    uid = re.search(r"useradd .*--uid (\d+)", (ROOT / "Dockerfile").read_text())[1]
    assert code_server["podSecurityContext"]["fsGroup"] == int(uid)  # the image's user writes the data volume


def test_every_secret_config_map_and_volume_named_is_in_the_prerequisites(tmp_path):
    from assets.ingestion.rss_ingest import load_sources

    code_server = deployment()
    defined = prerequisites()
    for ref in code_server["envSecrets"]:
        assert ("Secret", ref["name"]) in defined, ref
    for volume in code_server["volumes"]:
        if "configMap" in volume:
            assert ("ConfigMap", volume["configMap"]["name"]) in defined, volume
        if "persistentVolumeClaim" in volume:
            claim = defined[("PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"])]
            assert "ReadWriteMany" in claim["spec"]["accessModes"]  # the code server and every run pod
    mounts = {m["name"]: m["mountPath"] for m in code_server["volumeMounts"]}
    assert set(mounts) == {v["name"] for v in code_server["volumes"]}

    # The files the settings point at are in the mounted config map, and the example polls nothing.
    env = code_server["env"]
    [config_volume] = [v for v in code_server["volumes"] if "configMap" in v]
    files = defined[("ConfigMap", config_volume["configMap"]["name"])]["data"]
    for variable in ("PODCAST_SOURCES_FILE", "PODCAST_REPORT_RECIPIENTS_FILE"):
        path = Path(env[variable])
        assert str(path.parent) == mounts[config_volume["name"]] and path.name in files, variable
    sources = tmp_path / "sources.yaml"
    sources.write_text(files["sources.yaml"])
    assert load_sources(sources).feeds == []
    assert yaml.safe_load(files["recipients.yaml"]) == {"recipients": []}
    [data_volume] = [v for v in code_server["volumes"] if "persistentVolumeClaim" in v]
    assert mounts[data_volume["name"]] == env["PODCAST_DATA_DIR"] == dockerfile_env()["PODCAST_DATA_DIR"]


def test_secrets_carry_the_variables_the_platform_reads():
    from resources.settings import Settings

    defined = prerequisites()
    keys = {key for (kind, name), doc in defined.items() if kind == "Secret" and name != values()["global"][
        "postgresqlSecretName"] for key in (doc.get("stringData") or {})}
    keys |= set(deployment()["env"])
    assert {"DATABASE_URL", "DAGSTER_PG_URL", "PODCAST_IP_HASH_SECRET"} <= keys
    fields = {name.upper() for name in Settings.model_fields}
    for key in keys - {"DATABASE_URL", "DAGSTER_PG_URL"}:
        assert key.startswith("PODCAST_") and key.removeprefix("PODCAST_") in fields, f"{key} is read by nothing"


def test_run_launcher_config_is_accepted_by_the_installed_K8sRunLauncher():
    from dagster._config import process_config
    from dagster_k8s import K8sRunLauncher

    launcher = values()["runLauncher"]
    assert launcher["type"] == "K8sRunLauncher"
    config = launcher["config"]["k8sRunLauncher"]
    snake = {re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower(): value for key, value in config.items()}
    snake["run_k8s_config"] = {re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower(): value
                               for key, value in snake["run_k8s_config"].items()}
    snake["env_secrets"] = [ref["name"] for ref in snake["env_secrets"]]  # the chart passes names
    snake["env_config_maps"] = [ref["name"] for ref in snake["env_config_maps"]]
    # What the chart adds itself: the instance config map, the storage password's secret, the home.
    snake |= {"instance_config_map": "podcast-analytics-instance",
              "postgres_password_secret": values()["global"]["postgresqlSecretName"],
              "dagster_home": values()["global"]["dagsterHome"]}
    result = process_config(K8sRunLauncher.config_type(), snake)
    assert result.success, [error.message for error in result.errors]
    assert result.value["load_incluster_config"] is True
    assert result.value["run_k8s_config"]["container_config"]["resources"]["requests"]


def test_queue_has_the_limits_of_dagster_yaml_and_renders_a_valid_instance(tmp_path):
    from dagster import QueuedRunCoordinator
    from dagster._core.instance.config import dagster_instance_config
    from dagster._serdes import ConfigurableClassData

    config = values()
    coordinator = config["dagsterDaemon"]["runCoordinator"]
    assert coordinator["enabled"] and coordinator["type"] == "QueuedRunCoordinator"
    queued = coordinator["config"]["queuedRunCoordinator"]
    # Limits live in `concurrency` only: the chart and Dagster refuse them in both places.
    assert not {"maxConcurrentRuns", "tagConcurrencyLimits"} & set(queued)
    concurrency = config["concurrency"]
    assert concurrency["enabled"] is True
    local = load_yaml("dagster.yaml")["concurrency"]
    assert concurrency["runs"]["tagConcurrencyLimits"] == local["runs"]["tag_concurrency_limits"]
    assert concurrency["pools"] == {"defaultLimit": local["pools"]["default_limit"],
                                    "granularity": local["pools"]["granularity"]}

    # The instance the chart writes from these values (its instance templates, in snake case),
    # through Dagster's own instance schema and the coordinator's.
    instance = {
        "storage": {"postgres": {"postgres_db": {
            "username": config["postgresql"]["postgresqlUsername"], "password": {"env": "DAGSTER_PG_PASSWORD"},
            "hostname": config["postgresql"]["postgresqlHost"], "db_name": config["postgresql"]["postgresqlDatabase"],
            "port": config["postgresql"]["service"]["port"], "params": config["postgresql"]["postgresqlParams"]}}},
        "run_coordinator": {"module": "dagster._core.run_coordinator", "class": "QueuedRunCoordinator",
                            "config": {"dequeue_interval_seconds": queued["dequeueIntervalSeconds"]}},
        "concurrency": {
            "pools": {"default_limit": concurrency["pools"]["defaultLimit"],
                      "granularity": concurrency["pools"]["granularity"]},
            "runs": {"max_concurrent_runs": concurrency["runs"]["maxConcurrentRuns"],
                     "tag_concurrency_limits": concurrency["runs"]["tagConcurrencyLimits"]},
        },
        "retention": {"schedule": {"purge_after_days": config["retention"]["schedule"]["purgeAfterDays"]},
                      "sensor": {"purge_after_days": config["retention"]["sensor"]["purgeAfterDays"]}},
        "telemetry": config["telemetry"],
    }
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(instance))
    validated, _ = dagster_instance_config(str(tmp_path))
    run_coordinator = validated["run_coordinator"]
    ConfigurableClassData(run_coordinator["module"], run_coordinator["class"],
                          yaml.safe_dump(run_coordinator["config"])).rehydrate(QueuedRunCoordinator)
    assert validated["concurrency"]["runs"]["max_concurrent_runs"] >= local["runs"]["max_concurrent_runs"]


def test_executor_option_is_a_setting_the_code_location_reads():
    from dagster_k8s import k8s_job_executor
    from pydantic import ValidationError

    from pipelines.definitions import build_executor
    from resources.settings import Settings

    assert deployment()["env"]["PODCAST_EXECUTOR"] == "multiprocess"  # as shipped: one pod per run
    # Dagster's multiprocess executor, each step forked from a server that imported the code once
    multiprocess = build_executor(Settings(executor="multiprocess"))
    assert multiprocess.name == "multiprocess"
    assert multiprocess.apply_config_mapping({}).value["config"]["start_method"] == {
        "forkserver": {"preload_modules": ["pipelines.definitions"]}}
    assert build_executor(Settings(executor="k8s_job")) is k8s_job_executor
    with pytest.raises(ValidationError):
        Settings(executor="celery")

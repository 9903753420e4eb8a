"""Prometheus and Grafana files agree with each other, with docker-compose.yml and with what the
metrics endpoint serves. Read as data (no Docker); `promtool` also checks them where installed."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import yaml

from pipelines.metrics import METRIC_NAMES

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset",
    "sum", "min", "max", "avg", "count", "rate", "increase", "histogram_quantile", "le",
}
DURATION = re.compile(r"^\d+[smhdw]$")


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def compose_services() -> dict:
    return load(ROOT / "docker-compose.yml")["services"]


def served(name: str) -> bool:
    """A series name the endpoint (or Prometheus itself, `up`) produces."""
    if name == "up":
        return True
    for family in METRIC_NAMES:
        if name in (family, f"{family}_total", f"{family}_bucket", f"{family}_count", f"{family}_sum"):
            return True
    return False


def metric_names(expr: str) -> set[str]:
    """Identifiers of a PromQL expression that are series names (not functions, keywords, labels)."""
    without_labels = re.sub(r"\{[^}]*\}", "", expr)
    without_groupings = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", without_labels)
    without_ranges = re.sub(r"\[[^\]]*\]", "", without_groupings)
    names = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", without_ranges))
    functions = set(re.findall(r"([a-zA-Z_]+)\s*\(", without_ranges))
    return {n for n in names - functions - PROMQL_WORDS if not n[0].isdigit()}


def balanced(expr: str) -> bool:
    pairs, stack = {")": "(", "]": "[", "}": "{"}, []
    for char in expr:
        if char in "([{":
            stack.append(char)
        elif char in pairs and (not stack or stack.pop() != pairs[char]):
            return False
    return not stack


RULE_FILES = ("sla_alerts.yml", "service_alerts.yml")


def rules() -> list[dict]:
    return [r for name in RULE_FILES for g in load(DEPLOY / "prometheus" / name)["groups"] for r in g["rules"]]


def test_prometheus_scrapes_the_compose_metrics_service_every_15s_and_loads_the_mounted_rules():
    config = load(DEPLOY / "prometheus" / "prometheus.yml")
    services = compose_services()
    metrics_command = services["metrics"]["command"].split()
    assert metrics_command[:2] == ["podcast-analytics", "metrics"]
    port = metrics_command[metrics_command.index("--port") + 1]
    [job] = config["scrape_configs"]
    assert job["static_configs"][0]["targets"] == [f"metrics:{port}"]
    assert config["global"]["scrape_interval"] == "15s"
    assert int(job["scrape_timeout"].rstrip("s")) < 15
    mounts = dict(v.split(":")[:2] for v in services["prometheus"]["volumes"] if v.startswith("./"))
    assert mounts["./deploy/prometheus/prometheus.yml"] == "/etc/prometheus/prometheus.yml"
    assert config["rule_files"] == [mounts[f"./deploy/prometheus/{name}"] for name in RULE_FILES]
    for source in mounts:
        assert (ROOT / source).is_file(), source
    [alertmanagers] = config["alerting"]["alertmanagers"]
    host, am_port = alertmanagers["static_configs"][0]["targets"][0].split(":")
    assert host in services and services[host]["ports"][0].endswith(f":{am_port}")


def test_alert_rules_cover_the_slas_and_read_served_metrics():
    all_rules = rules()
    names = [r["alert"] for r in all_rules]
    assert len(names) == len(set(names)) >= 18
    slas = {r["labels"]["sla"] for r in all_rules}
    assert {"freshness", "completeness", "attribution_accuracy", "roi_accuracy", "ingestion", "report_deadline",
            "quality", "delivery"} <= slas
    for rule in all_rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert DURATION.match(rule["for"]), rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]
        assert balanced(rule["expr"]), rule["expr"]
        used = metric_names(rule["expr"])
        assert used and all(served(n) for n in used), (rule["alert"], used)
    # Every error rate above 1 % and every p95 latency above 1 s alerts.
    exprs = [r["expr"] for r in all_rules]
    for rate in ("ingestion_success_rate", "report_generation_success_rate", "integration_error_rate",
                 "task_success_rate"):
        assert any(rate in e and e.rstrip().endswith("> 0.01") for e in exprs), rate
    for histogram in ("feed_poll_duration_seconds", "report_delivery_latency_seconds",
                      "integration_api_latency_seconds"):
        assert any("histogram_quantile(0.95" in e and f"{histogram}_bucket" in e and e.rstrip().endswith("> 1")
                   for e in exprs), histogram


def test_alertmanager_routes_every_sla_to_the_alert_webhook():
    config = load(DEPLOY / "alertmanager" / "alertmanager.yml")
    services = compose_services()
    receivers = {r["name"]: r for r in config["receivers"]}

    def routes(route):
        yield route
        for child in route.get("routes", []):
            yield from routes(child)

    for route in routes(config["route"]):
        assert route.get("receiver", config["route"]["receiver"]) in receivers
    [receiver] = receivers.values()
    url_file = receiver["slack_configs"][0]["api_url_file"]
    service = services["alertmanager"]
    assert service["environment"]["PODCAST_ALERT_WEBHOOK_URL"] == "${PODCAST_ALERT_WEBHOOK_URL:-}"
    assert f"> {url_file}" in service["command"][0] and "$$PODCAST_ALERT_WEBHOOK_URL" in service["command"][0]
    mounts = dict(v.split(":")[:2] for v in service["volumes"] if v.startswith("./"))
    assert f"--config.file={mounts['./deploy/alertmanager/alertmanager.yml']}" in service["command"][0]
    # Every SLA label a rule carries reaches the receiver through a route that matches it.
    matched = " ".join(m for r in routes(config["route"]) for m in r.get("matchers", []))
    for sla in {r["labels"]["sla"] for r in rules()}:
        assert sla in matched, sla


def test_promtool_and_amtool_accept_the_config_rules_and_routes(tmp_path):
    promtool, amtool = shutil.which("promtool"), shutil.which("amtool")
    if promtool is not None:  # Debian's `prometheus` package; the YAML-level checks above always run
        for name in RULE_FILES:
            (tmp_path / name).write_text((DEPLOY / "prometheus" / name).read_text())
        config = load(DEPLOY / "prometheus" / "prometheus.yml")
        config["rule_files"] = list(RULE_FILES)
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
        for args in (["check", "rules", *RULE_FILES], ["check", "config", "prometheus.yml"]):
            result = subprocess.run([promtool, *args], cwd=tmp_path, capture_output=True, text=True, timeout=60)
            assert result.returncode == 0, result.stdout + result.stderr
    if amtool is not None:  # Debian's `prometheus-alertmanager` package
        (tmp_path / "webhook_url").write_text("https://hooks.example.invalid/alerts")
        text = (DEPLOY / "alertmanager" / "alertmanager.yml").read_text()
        (tmp_path / "alertmanager.yml").write_text(text.replace("/etc/alertmanager/webhook_url",
                                                                str(tmp_path / "webhook_url")))
        result = subprocess.run([amtool, "check-config", "alertmanager.yml"], cwd=tmp_path, capture_output=True,
                                text=True, timeout=60)
        assert result.returncode == 0 and "SUCCESS" in result.stdout, result.stdout + result.stderr


def grafana_files() -> tuple[dict, dict, list[dict]]:
    datasources = load(DEPLOY / "grafana" / "provisioning" / "datasources" / "datasources.yml")
    providers = load(DEPLOY / "grafana" / "provisioning" / "dashboards" / "dashboards.yml")
    dashboards = [json.loads(p.read_text()) for p in sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))]
    return datasources, providers, dashboards


def test_grafana_provisions_prometheus_and_the_warehouse_from_compose():
    datasources, providers, _ = grafana_files()
    services = compose_services()
    assert datasources["apiVersion"] == 1
    by_uid = {d["uid"]: d for d in datasources["datasources"]}
    assert by_uid["prometheus"]["type"] == "prometheus"
    assert by_uid["prometheus"]["url"] == "http://prometheus:9090"
    assert "9090:9090" in services["prometheus"]["ports"][0].replace("${PROMETHEUS_PORT:-9090}", "9090")
    warehouse = by_uid["warehouse"]
    assert warehouse["type"] == "grafana-postgresql-datasource" and warehouse["url"] == "timescaledb:5432"
    assert warehouse["jsonData"]["database"] == services["timescaledb"]["environment"]["POSTGRES_DB"]
    environment = services["grafana"]["environment"]
    for placeholder in re.findall(r"\$\{(\w+)\}", json.dumps(datasources)):
        assert placeholder in environment, placeholder
    mounts = dict(v.split(":")[:2] for v in services["grafana"]["volumes"] if v.startswith("./"))
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    [provider] = providers["providers"]
    assert mounts["./deploy/grafana/dashboards"] == provider["options"]["path"]


def test_dashboards_are_well_formed_and_query_what_exists():
    datasources, _, dashboards = grafana_files()
    uids = {d["uid"]: d["type"] for d in datasources["datasources"]}
    assert {d["uid"] for d in dashboards} == {"pipeline-health", "business-metrics"}
    models = {p.stem for p in (ROOT / "dbt_project" / "models" / "marts").rglob("*.sql")} | {"sla_status"}
    for dashboard in dashboards:
        assert dashboard["title"] and dashboard["schemaVersion"] >= 36 and dashboard["panels"]
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        assert variables["tenant"]["includeAll"] and variables["tenant"]["multi"]
        ids = [p["id"] for p in dashboard["panels"]]
        assert len(ids) == len(set(ids))
        for panel in dashboard["panels"]:
            grid = panel["gridPos"]
            assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24 and grid["h"] > 0, panel["title"]
            assert uids[panel["datasource"]["uid"]] == panel["datasource"]["type"]
            assert panel["fieldConfig"]["defaults"]["unit"], panel["title"]  # every axis says what it counts
            assert panel["targets"]
            for target in panel["targets"]:
                assert target["datasource"] == panel["datasource"]
                if "expr" in target:
                    assert balanced(target["expr"]) and all(served(n) for n in metric_names(target["expr"])), \
                        target["expr"]
                    assert "[1h]" not in target["expr"] and "[5m]" not in target["expr"]  # $__rate_interval
                else:
                    sql = target["rawSql"]
                    tables = set(re.findall(r"\bmarts\.(\w+)", sql))
                    assert tables and tables <= models, (panel["title"], tables - models)
                    assert "tenant" in sql and "$tenant" in sql or "${tenant" in sql, panel["title"]
                    assert "current_date" not in sql and "interval" not in sql, panel["title"]  # the time picker rules
                    if re.search(r"_daily_by_\w+", sql):
                        assert "$__timeFilter(" in sql, panel["title"]
                    for ids_table, names in (("fct_downloads_daily_by_show", "dim_podcasts"),
                                             ("fct_downloads_daily_by_episode", "dim_episodes")):
                        if ids_table in sql and panel["type"] != "timeseries":
                            assert f"marts.{names}" in sql and "title" in sql, panel["title"]  # titles, not ids
    # Both promised views: pipeline health, and downloads with campaign ROI.
    business = next(d for d in dashboards if d["uid"] == "business-metrics")
    sql = " ".join(t.get("rawSql", "") for p in business["panels"] for t in p["targets"])
    assert "fct_downloads_daily_by_tenant" in sql and "mart_campaign_roi" in sql and "campaign_name" in sql

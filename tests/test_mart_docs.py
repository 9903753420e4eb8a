"""Marts an analyst can use unaided: every mart column is described and typed in its yml, every
mart enforces its dbt contract (so a column or type that drifts from the yml fails the build:
the suites that build marts prove the SQL agrees), one measure has one name, and Dagster shows
the columns. Read from the parsed manifest (`dbt parse`: no database, no build)."""

from __future__ import annotations

import functools
import json

import dagster as dg

from assets.dbt import dbt_asset_definitions, dbt_project

# Names a measure had before it got one name across marts: none may come back.
RETIRED_NAMES = {"reach", "cpm_p25", "cpm_median", "cpm_p75"}
# Ratios a reader could take for percentages: each says it is a fraction.
FRACTIONS = {"roi", "roi_p25", "roi_median", "roi_p75", "conversion_rate", "exposed_rate", "baseline_rate", "lift",
             "avg_completion", "impression_share"}


@functools.cache
def marts() -> dict[str, dict]:
    manifest = json.loads(dbt_project().manifest_path.read_text())
    return {node["name"]: node for node in manifest["nodes"].values()
            if node["resource_type"] == "model" and node["path"].startswith("marts/")}


def test_every_mart_enforces_its_contract_and_describes_itself():
    assert len(marts()) >= 21
    undocumented = [name for name, node in marts().items() if len(node["description"].split()) < 5]
    uncontracted = [name for name, node in marts().items() if not node["config"]["contract"]["enforced"]]
    assert undocumented == []
    assert uncontracted == []
    # Incremental marts keep what dbt requires of a contracted incremental model.
    incremental = [node for node in marts().values() if node["config"]["materialized"] == "incremental"]
    assert len(incremental) >= 9
    assert {node["config"]["on_schema_change"] for node in incremental} <= {"append_new_columns", "fail"}


def test_every_mart_column_has_a_description_and_a_type():
    columns = [(name, column) for name, node in marts().items() for column in node["columns"].values()]
    assert len(columns) >= 320
    missing = [f"{name}.{column['name']}" for name, column in columns
               if not column.get("data_type") or len(column.get("description", "").split()) < 3]
    # A description is about the column, not its name; docs blocks are resolved.
    filler = [f"{name}.{column['name']}" for name, column in columns
              if "{{" in column["description"] or column["description"].strip(" .").lower()
              in {column["name"], f"the {column['name']}", f"the {column['name']} column"}]
    assert missing == []
    assert filler == []


def test_one_name_and_one_type_per_measure():
    by_name: dict[str, set[tuple[str, str]]] = {}
    for name, node in marts().items():
        for column in node["columns"].values():
            by_name.setdefault(column["name"], set()).add((name, column["data_type"]))
    assert RETIRED_NAMES & set(by_name) == set()
    assert {model for model, _ in by_name["households_reached"]} >= {
        "fct_campaign_performance_daily", "mart_campaign_roi", "mart_campaign_roi_by_placement"}
    # Keys are text in every mart that carries them.
    for key in ("tenant_id", "podcast_id", "episode_id", "campaign_id", "sponsor_id"):
        assert {data_type for _, data_type in by_name[key]} == {"text"}, key
    for column in FRACTIONS:
        for model, _ in by_name[column]:
            assert "fraction" in marts()[model]["columns"][column]["description"], (model, column)


def test_marts_with_a_show_carry_its_title():
    """Every mart that aggregates by show (podcast_id) reads without a join: it has the title.
    fct_downloads (one row per download) and dim_episodes join dim_podcasts."""
    with_show = {name for name, node in marts().items() if "podcast_id" in node["columns"]}
    untitled = with_show - {name for name, node in marts().items() if "podcast_title" in node["columns"]}
    assert untitled == {"fct_downloads", "dim_episodes", "dim_podcasts"}
    assert {"fct_downloads_daily_by_show", "fct_downloads_daily_by_episode", "fct_listener_engagement",
            "fct_platform_metrics_daily", "fct_platform_listener_engagement",
            "mart_campaign_roi_by_placement"} <= with_show - untitled


def column_schema(spec: dg.AssetSpec) -> dg.TableSchema | None:
    value = spec.metadata.get("dagster/column_schema")
    return value.schema if isinstance(value, dg.TableSchemaMetadataValue) else value


def test_dagster_specs_carry_the_mart_column_schemas():
    specs = {spec.key: spec for assets in dbt_asset_definitions() for spec in assets.specs}
    for name, node in marts().items():
        spec = specs[dg.AssetKey(["marts", name])]
        schema = column_schema(spec)
        assert schema is not None, name
        assert [(c.name, c.type, c.description) for c in schema.columns] == [
            (c["name"], c["data_type"], c["description"]) for c in node["columns"].values()], name
    roi = {c.name: c for c in column_schema(specs[dg.AssetKey(["marts", "mart_campaign_roi"])]).columns}["roi"]
    assert roi.type == "numeric" and "0.25 means 25 %" in roi.description

"""Each raw table's columns are declared once, beside the asset that writes them (`RAW_COLUMNS`):
the upsert's SQL, the warehouse's table, the quality suite and dbt's source must list the same."""

import re

import yaml

from assets.ingestion import rss_ingest
from pipelines.checks.quality import SUITES
from tests.conftest import REPO_ROOT, query

DECLARED = rss_ingest.RAW_COLUMNS
SOURCES = {"rss": REPO_ROOT / "dbt_project" / "models" / "staging" / "rss" / "_rss__sources.yml"}


def test_dbt_sources_list_exactly_the_declared_columns():
    listed = {}
    for source, path in SOURCES.items():
        for spec in yaml.safe_load(path.read_text())["sources"]:
            for table in spec["tables"]:
                if table["name"] in DECLARED:
                    listed[table["name"]] = tuple(c["name"] for c in table.get("columns", []))
    assert listed == DECLARED


def test_the_warehouse_tables_have_the_declared_columns(fresh_db):
    for table, columns in DECLARED.items():
        found = query(fresh_db, "select column_name from information_schema.columns "
                                "where table_schema = 'raw' and table_name = %s", (table,))
        assert sorted(c for (c,) in found) == sorted(columns), table


def test_the_upsert_inserts_the_declared_columns():
    upsert = (REPO_ROOT / "assets" / "ingestion" / "sql" / "rss_upsert.sql").read_text()
    inserted = {table: tuple(c.strip() for c in columns.split(","))
                for table, columns in re.findall(r"insert into raw\.(\w+) as t \(([^)]*)\)", upsert)}
    assert inserted == {
        "rss_podcasts": (*rss_ingest.PODCAST_COLUMNS[:-1], "_source", "_batch_id"),
        "rss_episodes": (*rss_ingest.EPISODE_COLUMNS[:-1], "_source", "_batch_id"),
    }
    # what is staged is what is declared, less what the warehouse fills in
    for table, staged in (("rss_podcasts", rss_ingest.PODCAST_COLUMNS), ("rss_episodes", rss_ingest.EPISODE_COLUMNS)):
        assert set(staged) == set(DECLARED[table]) - rss_ingest.NOT_STAGED


def test_the_quality_suites_expect_the_declared_columns():
    for table, columns in DECLARED.items():
        assert sorted(SUITES[table].columns) == sorted(columns), table

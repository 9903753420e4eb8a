"""Each raw table's columns are declared once, beside the asset that writes them (a module's
`RAW_COLUMNS`, a platform stream's keys and values): the upsert, the warehouse's table, the
quality suite and dbt's source must list the same."""

import re

import pytest
import yaml

from assets.ingestion import campaign_store, listener_logs_load, megaphone_export, rss_ingest, user_agents
from assets.ingestion.platforms.base import FILLED_BY_WAREHOUSE, merge_sql
from assets.ingestion.platforms.sync import PLATFORMS
from pipelines.checks.quality import RAW_COLUMNS, SUITES
from tests.conftest import REPO_ROOT, query

DECLARED = RAW_COLUMNS
SOURCES = sorted((REPO_ROOT / "dbt_project" / "models" / "staging").glob("*/_*__sources.yml"))
# Raw tables no dbt model reads (Buzzsprout's per-download rows, Simplecast's location and
# technology breakdowns; the transcripts' cues and the chapters, which the ad-slot detector reads):
# they have no source to hold to the declaration.
NOT_DBT_SOURCES = {"buzzsprout_episode_download_details", "simplecast_episode_locations",
                   "simplecast_episode_technology", "transcript_cues", "chapters_documents", "chapters"}
# Raw tables without a quality suite: the media hosts, copied from sources.yaml; the transcripts,
# cues and chapters, validated by their parser document by document and keyed by their primary keys.
NO_SUITE = {"listener_log_sources", "transcripts", "transcript_cues", "chapters_documents", "chapters"}


def dbt_source_columns() -> dict[str, tuple[str, ...]]:
    listed = {}
    for path in SOURCES:
        for spec in yaml.safe_load(path.read_text())["sources"]:
            if spec.get("schema") == "raw":
                for table in spec["tables"]:
                    listed[table["name"]] = tuple(c["name"] for c in table.get("columns", []))
    return listed


def test_dbt_sources_list_exactly_the_declared_columns():
    assert {path.parent.name for path in SOURCES} >= {"rss", "listener_logs", "campaigns", "megaphone", "apple"}
    assert dbt_source_columns() == {t: c for t, c in DECLARED.items() if t not in NOT_DBT_SOURCES}


def test_the_warehouse_tables_have_the_declared_columns(fresh_db):
    found: dict[str, list[str]] = {}
    for table, column in query(fresh_db, "select table_name, column_name from information_schema.columns "
                                         "where table_schema = 'raw'"):
        found.setdefault(table, []).append(column)
    assert found.keys() == DECLARED.keys()  # a new raw table is declared beside its writer, too
    for table, columns in DECLARED.items():
        assert sorted(found[table]) == sorted(columns), table
        assert len(set(columns)) == len(columns), table


def test_the_rss_upsert_inserts_the_declared_columns():
    upsert = (REPO_ROOT / "assets" / "ingestion" / "sql" / "rss_upsert.sql").read_text()
    inserted = {table: tuple(c.strip() for c in columns.split(","))
                for table, columns in re.findall(r"insert into raw\.(\w+) as t \(([^)]*)\)", upsert)}
    assert inserted == {
        "rss_podcasts": (*rss_ingest.PODCAST_COLUMNS[:-1], "_source", "_batch_id"),
        "rss_episodes": (*rss_ingest.EPISODE_COLUMNS[:-1], "_source", "_batch_id"),
    }
    # what is staged is what is declared, less what the warehouse fills in
    for table, staged in (("rss_podcasts", rss_ingest.PODCAST_COLUMNS), ("rss_episodes", rss_ingest.EPISODE_COLUMNS),
                          ("rss_feed_fetches", rss_ingest.FETCH_COLUMNS)):
        assert set(staged) == set(DECLARED[table]) - rss_ingest.NOT_STAGED


def test_the_copies_and_merges_write_the_declared_columns():
    staged = {
        "listener_events": listener_logs_load.EVENT_COLUMNS,
        "listener_log_sources": listener_logs_load.LOG_SOURCE_COLUMNS,
        "user_agent_patterns": user_agents.PATTERN_COLUMNS,
        "megaphone_episode_metrics_daily": megaphone_export.METRICS_COLUMNS,
        **{s.table: merge_sql(s, p.source_column).columns for p in PLATFORMS.values() for s in p.streams},
    }
    filled = {"listener_events": {"_ingested_at"}, "listener_log_sources": {"_ingested_at"},
              "user_agent_patterns": {"_ingested_at"}, "megaphone_episode_metrics_daily": {"_ingested_at", "_source"}}
    for table, columns in staged.items():
        assert set(columns) == set(DECLARED[table]) - filled.get(table, FILLED_BY_WAREHOUSE), table
    assert len(staged) == 24
    statement = megaphone_export.UPSERT.as_string(None)
    assert re.search(r"as t \(([^)]*)\)", statement)[1].replace('"', "").split(", ") == list(
        megaphone_export.METRICS_COLUMNS)


def test_a_sponsorship_row_that_drifted_from_its_table_is_refused_before_it_is_written(fresh_db):
    import psycopg

    from assets.ingestion.campaigns import RAW_COLUMNS as CAMPAIGN_COLUMNS

    row = {c: None for c in CAMPAIGN_COLUMNS["sponsors"] if c != "_ingested_at"}
    row.update(tenant_id="acme", sponsor_id="sp-1", name="Acme", _source="sponsorship_api")
    with psycopg.connect(fresh_db) as conn:
        drifted = {k: v for k, v in row.items() if k != "website"}
        with pytest.raises(ValueError, match="raw.sponsors: a row with columns"):
            campaign_store.upsert(conn, "raw.sponsors", CAMPAIGN_COLUMNS["sponsors"], ("tenant_id", "sponsor_id"),
                                  [drifted])
        with pytest.raises(ValueError, match="raw.sponsors"):
            campaign_store.upsert(conn, "raw.sponsors", CAMPAIGN_COLUMNS["sponsors"], ("tenant_id", "sponsor_id"),
                                  [{**row, "twitter": "@acme"}])
        assert campaign_store.upsert(conn, "raw.sponsors", CAMPAIGN_COLUMNS["sponsors"], ("tenant_id", "sponsor_id"),
                                     [row]) == 1
    assert query(fresh_db, "select tenant_id, sponsor_id, name, _source from raw.sponsors") == [
        ("acme", "sp-1", "Acme", "sponsorship_api")]


def test_every_declared_raw_table_but_the_media_hosts_has_a_quality_suite():
    assert SUITES.keys() == DECLARED.keys() - NO_SUITE
    for table, suite in SUITES.items():
        assert suite.columns == DECLARED[table]
        assert set(suite.key) <= set(DECLARED[table]), table
        assert set(suite.required) | set(suite.ranges) | set(suite.regex) <= set(DECLARED[table]), table

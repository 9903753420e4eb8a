"""Data-subject requests through the CLI on a copy of the attribution warehouse: a simulator
shopper (customer id) and a listener address are exported, then erased (one rebuild for both:
the first erasure leaves its rebuild pending, the second takes it along); afterwards no stored
row carries their keys, the marts were rebuilt with dbt's tests passing, and every request is in
the audit. Someone unknown is found nowhere and said so. Last, a tenant is deleted entirely."""

from __future__ import annotations

import ipaddress
import json
import uuid

import dagster as dg
import psycopg
import pytest
from click.testing import CliRunner
from psycopg import sql

from assets.ingestion.identity import identity_key
from assets.ingestion.listener_logs_parse import IpHasher
from pipelines import privacy
from pipelines.cli import main
from resources.settings import get_settings
from simulator.buyers import buyer
from resources.schema import migrate
from resources.warehouse import with_database
from tests.conftest import ATTRIBUTION_SECRET, query

BY = "dpo@network.example"
UNKNOWN_CUSTOMER = "no-such-customer-404"


def _key_columns(url: str) -> list[tuple[str, str, str]]:
    with psycopg.connect(url) as conn:
        return [(t.schema, t.name, column) for t in privacy.stored_tables(conn) for column in t.columns
                if column in privacy.KEY_COLUMNS]


def _rows_with(url: str, keys: set[str]) -> dict[str, int]:
    found = {}
    with psycopg.connect(url) as conn:
        for schema, name, column in _key_columns(url):
            count = conn.execute(sql.SQL("select count(*) from {} where {} = any(%s)").format(
                sql.Identifier(schema, name), sql.Identifier(column)), (list(keys),)).fetchone()[0]
            if count:
                found[f"{schema}.{name}.{column}"] = count
    return found


@pytest.fixture(scope="module")
def warehouse(attribution_warehouse, admin_url, tmp_path_factory):
    """A template copy of the attribution warehouse at the code's revision, a Dagster storage of
    its own, and the settings the CLI reads pointing at both (the loaders' hash secret)."""
    source = psycopg.conninfo.conninfo_to_dict(attribution_warehouse["url"])["dbname"]
    names = [f"t_privacy_{uuid.uuid4().hex[:8]}", f"t_privacy_dagster_{uuid.uuid4().hex[:8]}"]
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {} template {}").format(sql.Identifier(names[0]), sql.Identifier(source)))
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(names[1])))
    url = with_database(admin_url, names[0])
    migrate(url)
    data_dir = tmp_path_factory.mktemp("privacy")
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {"DATABASE_URL": url, "DAGSTER_PG_URL": with_database(admin_url, names[1]),
                            "PODCAST_DATA_DIR": str(data_dir), "PODCAST_IP_HASH_SECRET": ATTRIBUTION_SECRET.decode(),
                            "DAGSTER_HOME": str(data_dir / "dagster_home"), "PYTHONWARNINGS": "ignore"}.items():
            patch.setenv(name, value)
        get_settings.cache_clear()
        yield {"url": url, "data_dir": data_dir, "world": attribution_warehouse["world"]}
        get_settings.cache_clear()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        for name in names:
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


def cli(*args: str):
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result


@pytest.fixture(scope="module")
def subjects(warehouse):
    """A shopper known by customer id, and a listener's IPv4 address that also ordered (a
    different household), with their keys and how many rows they had before."""
    url, world = warehouse["url"], warehouse["world"]
    events = sorted(world.events, key=lambda e: (e.tenant_id, e.event_id))
    def stored(e) -> str | None:
        key = identity_key(IpHasher.for_tenant(ATTRIBUTION_SECRET, e.tenant_id), "customer", e.customer_id)
        return key if query(url, "select count(*) from raw.attribution_events where customer_key = %s",
                            (key,))[0][0] else None

    shopper = next(e for e in events if e.customer_id and e.source == "shop_orders" and stored(e))
    hasher = IpHasher.for_tenant(ATTRIBUTION_SECRET, shopper.tenant_id)
    customer_key = stored(shopper)
    shopper_addresses = {e.ip for e in events if e.customer_id == shopper.customer_id}

    def listened(ip: str) -> int:
        return query(url, "select count(*) from raw.listener_events where tenant_id = %s and ip_hash = %s",
                     (shopper.tenant_id, hasher.hash_ip(ip)[0]))[0][0]

    listener = next(e for e in events if e.tenant_id == shopper.tenant_id and e.is_conversion
                    and ipaddress.ip_address(e.ip).version == 4 and e.ip not in shopper_addresses and listened(e.ip))
    email = buyer(world.seed, shopper.tenant_id, shopper.customer_id, shopper.event_id).email
    return {"tenant": shopper.tenant_id, "customer": shopper.customer_id, "customer_key": customer_key,
            "ip": listener.ip, "ip_key": hasher.hash_ip(listener.ip)[0], "shopper_event": shopper.event_id,
            "email": email, "email_key": identity_key(hasher, "email", email)}


@pytest.fixture(scope="module")
def requests(warehouse, subjects):
    """Every request of the module's story, through the CLI, with what it printed and wrote."""
    url, data_dir, tenant = warehouse["url"], warehouse["data_dir"], subjects["tenant"]
    before = {"int_conversions": query(url, "select source, event_id from intermediate.int_conversions"),
              "listener_events": query(url, "select count(*) from raw.listener_events")[0][0]}
    out = {}
    for name, flag, value in (("customer", "--customer-id", subjects["customer"]), ("ip", "--ip", subjects["ip"]),
                              ("email", "--email", subjects["email"].upper()), ("unknown", "--customer-id", UNKNOWN_CUSTOMER)):
        target = data_dir / f"{name}.json"
        result = cli("privacy", "export", "--tenant", tenant, flag, value, "--by", BY, "--out", str(target))
        assert result.exit_code == 0, result.output
        out[f"export_{name}"] = (result.output, json.loads(target.read_text()))
    for name, flag, value, rebuild in (("customer", "--customer-id", subjects["customer"], "--no-rebuild"),
                                       ("unknown", "--customer-id", UNKNOWN_CUSTOMER, "--no-rebuild"),
                                       ("ip", "--ip", subjects["ip"], "--rebuild")):
        result = cli("privacy", "erase", "--tenant", tenant, flag, value, "--by", BY, rebuild)
        assert result.exit_code == 0, result.output
        out[f"erase_{name}"] = result.output
    again = cli("privacy", "erase", "--tenant", tenant, "--ip", subjects["ip"], "--by", BY)
    out["erase_again"] = again.output
    out["before"] = before
    return out


def test_export_lists_every_table_holding_the_subjects_rows(requests, subjects):
    _, customer = requests["export_customer"]
    assert customer["subject"] == {"kind": "customer", "key": subjects["customer_key"]}
    assert customer["rows"]["raw.attribution_events"] > 0
    assert customer["rows"]["marts.fct_attributed_conversions"] > 0   # derived through the events
    assert all(r["customer_key"] == subjects["customer_key"] for r in customer["tables"]["raw.attribution_events"])
    assert {k: len(v) for k, v in customer["tables"].items()} == customer["rows"]

    output, address = requests["export_ip"]
    for table in ("raw.listener_events", "raw.attribution_events", "intermediate.int_listener_requests_screened",
                  "marts.fct_downloads", "intermediate.int_conversions"):
        assert address["rows"].get(table, 0) > 0, (table, address["rows"])
    assert all(r["ip_hash"] == subjects["ip_key"] for r in address["tables"]["raw.listener_events"])
    assert all(r["tenant_id"] == subjects["tenant"] for rows in address["tables"].values() for r in rows)
    assert f"{sum(address['rows'].values())} rows in {len(address['rows'])} tables" in output
    # the clear values are not in the file: only their keys
    text = json.dumps(address) + json.dumps(customer)
    assert subjects["ip"] not in text and f'"{subjects["customer"]}"' not in text


def test_a_shopper_is_found_by_e_mail_as_the_loaders_keyed_it(requests, subjects):
    """The e-mail is never stored; its keyed hash is, normalised (the request's upper case finds
    it), on the shopper's order among others."""
    _, found = requests["export_email"]
    assert found["subject"] == {"kind": "email", "key": subjects["email_key"]}
    rows = found["tables"]["raw.attribution_events"]
    assert rows and all(r["email_key"] == subjects["email_key"] for r in rows)
    assert subjects["shopper_event"] in {r["event_id"] for r in rows}
    assert subjects["email"] not in json.dumps(found)


def test_someone_unknown_is_found_nowhere_and_told_so(requests):
    output, document = requests["export_unknown"]
    assert document["rows"] == {} and document["tables"] == {}
    assert "0 rows found: nothing stored is linked to this subject" in output
    assert "0 rows erased" in requests["erase_unknown"]


def test_erasure_leaves_no_row_with_their_keys_and_rebuilds_the_marts(requests, subjects, warehouse):
    url = warehouse["url"]
    assert _rows_with(url, {subjects["customer_key"], subjects["ip_key"]}) == {}
    _, address = requests["export_ip"]
    _, customer = requests["export_customer"]
    # what was not the subjects' is all still there, in raw and rebuilt in the marts
    assert query(url, "select count(*) from raw.listener_events")[0][0] == \
        requests["before"]["listener_events"] - address["rows"]["raw.listener_events"]
    erased_events = {(r["source"], r["event_id"]) for doc in (address, customer)
                     for r in doc["tables"]["raw.attribution_events"]}
    expected = sorted(set(requests["before"]["int_conversions"]) - erased_events)
    assert sorted(query(url, "select source, event_id from intermediate.int_conversions")) == expected
    assert query(url, "select count(*) from marts.fct_attributed_conversions where (source, event_id) in "
                      "(select * from unnest(%s::text[], %s::text[]))",
                 ([s for s, _ in erased_events], [e for _, e in erased_events]))[0][0] == 0
    # the rebuild ran once, for both, with dbt's tests: both erasures completed
    assert "rebuild (" in requests["erase_ip"] and ": completed" in requests["erase_ip"]
    assert requests["erase_customer"].rstrip().splitlines()[-2].endswith(": rebuild_pending")  # left to the next
    assert "0 rows erased" in requests["erase_again"]   # a second erasure changes nothing


def test_every_request_is_audited_without_the_clear_values(requests, subjects, warehouse):
    rows = query(warehouse["url"], "select kind, subject_kind, subject_key, requested_by, rows, status, detail, "
                                   "completed_at is not null from ops.privacy_requests order by request_id")
    assert [(r[0], r[1]) for r in rows] == [("export", "customer"), ("export", "ip"), ("export", "email"),
                                            ("export", "customer"), ("erase", "customer"), ("erase", "customer"),
                                            ("erase", "ip"), ("erase", "ip")]
    assert [r[2] for r in rows[:3]] == [subjects["customer_key"], subjects["ip_key"], subjects["email_key"]]
    assert {r[3] for r in rows} == {BY}
    assert all(r[5] == "completed" and r[7] for r in rows)
    assert rows[1][4] == requests["export_ip"][1]["rows"] and rows[2][4] == requests["export_email"][1]["rows"]
    assert rows[3][4] == {}
    assert rows[4][4] == requests["export_customer"][1]["rows"]
    assert rows[6][4] == requests["export_ip"][1]["rows"] and rows[7][4] == {}
    assert rows[4][6]["rebuild"] and rows[6][6]["rebuild"]
    assert rows[4][6]["reports_to_render"]   # the shopper's sponsor's reports are out of date
    text = " ".join(map(str, rows))
    assert subjects["email"] not in text
    assert subjects["ip"] not in text and subjects["customer"] not in text


def test_tenant_delete_removes_every_row_file_and_partition(requests, warehouse, subjects):
    from assets.reports.assets import CAMPAIGN_PARTITIONS

    url, data_dir = warehouse["url"], warehouse["data_dir"]
    tenant = next(t for (t,) in query(url, "select distinct tenant_id from raw.attribution_events order by 1")
                  if t != subjects["tenant"])
    others = query(url, "select tenant_id, count(*) from raw.listener_events where tenant_id <> %s group by 1 "
                        "order by 1", (tenant,))
    report = data_dir / "reports" / tenant / "r1.html"
    report.parent.mkdir(parents=True)
    report.write_text("<html></html>")
    with psycopg.connect(url) as conn:
        conn.execute("""insert into reports.reports (report_id, format, scope, tenant_id, template, file_url,
                        size_bytes, checksum_sha256, content_sha256, generated_at, expires_at)
                        values ('r1', 'html', 'campaign', %s, 't', %s, 13, 'x', 'x', now(), now())""",
                     (tenant, str(report)))
    landing = data_dir / "landing" / "logs" / tenant
    landing.mkdir(parents=True)
    (landing / "x.log").write_text("")
    instance = dg.DagsterInstance.get()
    instance.add_dynamic_partitions(CAMPAIGN_PARTITIONS.name, [f"{tenant}:c1", f"{subjects['tenant']}:c1"])
    (reports,), = query(url, "select count(*) from reports.reports where tenant_id = %s", (tenant,))  # ours + any made before

    result = cli("tenants", "delete", tenant, "--yes", "--by", BY)
    assert result.exit_code == 0, result.output
    with psycopg.connect(url) as conn:
        left = {t.qualified: conn.execute(sql.SQL("select count(*) from {} where tenant_id = %s").format(
                    t.identifier), (tenant,)).fetchone()[0]
                for t in privacy.stored_tables(conn) if "tenant_id" in t.columns}
    assert left and set(left.values()) == {0}
    assert query(url, "select tenant_id, count(*) from raw.listener_events group by 1 order by 1") == others
    assert not report.exists() and not landing.exists()
    assert instance.get_dynamic_partitions(CAMPAIGN_PARTITIONS.name) == [f"{subjects['tenant']}:c1"]
    kind, counts, status, detail = query(url, "select kind, rows, status, detail from ops.privacy_requests "
                                              "order by request_id desc limit 1")[0]
    assert kind == "delete_tenant" and status == "completed"
    assert counts["raw.listener_events"] > 0 and counts["reports.reports"] == reports >= 1
    assert str(report) in detail["removed"] and detail["partitions"] == [f"report_campaigns/{tenant}:c1"]

"""Personal data minimised: the simulator's shops and pixels send buyers' e-mails, phones, names
and postal addresses; after the real sponsorship and conversion assets load them into a copy of
the attribution warehouse (marts built) and a campaign report is rendered and delivered, no
table of any schema and no file under the data dir holds any of them, nor a clear client
address; rows keep keyed hashes instead. Secrets (SMTP password, webhook secret, API tokens set
in the environment) appear in no event, instance file or data file. No hash secret outside the
demo; another secret than the warehouse's is refused. Quarantined log lines keep no address in
the `IP:port`, `[v6]:port` and `::ffff:a.b.c.d` forms."""

from __future__ import annotations

import ipaddress
import json
import re
import stat
import uuid
from pathlib import Path

import dagster as dg
import httpx
import psycopg
import pytest
import yaml
from click.testing import CliRunner
from psycopg import sql

from assets.ingestion.conversions import ORDER_FIELDS, PIXEL_FIELDS, VANITY_FIELDS
from assets.ingestion.identity import checked_hash_secret, identity_key, key_check_value
from assets.ingestion.listener_logs_parse import IpHasher
from assets.ingestion.sponsorship_assets import conversion_events, sponsorship_campaigns
from assets.reports.assets import CAMPAIGN_PARTITIONS, campaign_report
from assets.reports.delivery import ReportDeliveryResource
from resources.settings import HashSecretError, Settings, get_settings
from resources.report_store import ReportStoreResource
from resources.warehouse import WarehouseResource, warehouse_at, with_database
from simulator.buyers import FIRST_NAMES, LAST_NAMES, STREETS, personal_values
from simulator.campaign_sources import buyers_of, campaign_sources, shop_token, write_event_files
from tests.conftest import SHARED, query
from tests.test_reports import smtp  # noqa: F401 (the loopback SMTP server fixture)

HASH_SECRET = "privacy-test-hash-secret"
MARK = "Pr1vSecr3t"  # every secret set below carries it
REAL_LOGS = SHARED / "realdata" / "logs"
# What a buyer's details look like wherever they are written: names (every surname and first name
# of the simulator's buyers is uncommon), e-mail local parts, streets, 555-0xxx phones in each shape
# the simulator writes them.
PERSONAL = "|".join([*(re.escape(n) for n in (*FIRST_NAMES, *LAST_NAMES, *STREETS)),
                     *(re.escape(n.lower().replace("-", "")) for n in LAST_NAMES),
                     r"\+1 [0-9]{3}-555-0[0-9]{3}", r"\([0-9]{3}\) 555-0[0-9]{3}", r"\+1[0-9]{3}5550[0-9]{3}",
                     r"1-[0-9]{3}-555-0[0-9]{3}"])
IPV4 = r"[0-9]{1,3}(\.[0-9]{1,3}){3}"
IPV6 = r"[0-9a-fA-F]{0,4}(:[0-9a-fA-F]{0,4}){2,7}"
# An address-shaped token for PostgreSQL's regexp_matches: IPv4, IPv6 with `::`, full IPv6.
ADDRESS_TOKEN = r"([0-9]{1,3}(?:\.[0-9]{1,3}){3}|[0-9a-fA-F:]*::[0-9a-fA-F:]*|(?:[0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4})"
TEXT_TYPES = ("text", "character varying", "json", "jsonb", "ARRAY", "USER-DEFINED", "character")


def _addresses_in(text: str) -> set[str]:
    """Every address spelled as a token in `text` (a port or a bracket around it, or `::ffff:`
    before it, does not hide it; `1.0.0.13D15` in a user agent is not one), in its canonical form."""
    found = set()
    for pattern in (rf"(?<![\w.]){IPV4}(?![\w.])", rf"(?<![\w.:]){IPV6}(?![\w.:])"):
        for match in re.finditer(pattern, text):
            try:
                address = ipaddress.ip_address(match.group(0))
            except ValueError:
                continue
            found.add(str(getattr(address, "ipv4_mapped", None) or address))
    return found


@pytest.fixture(scope="module")
def privacy(attribution_warehouse, admin_url, simulator, smtp, tmp_path_factory):  # noqa: F811
    """A copy of the attribution warehouse whose conversions are loaded again by the assets
    (twice: the second run changes nothing), then one campaign report rendered and delivered by
    e-mail and webhook, with the SMTP password, webhook secret and API tokens in the environment."""
    source = psycopg.conninfo.conninfo_to_dict(attribution_warehouse["url"])["dbname"]
    name = f"t_privacy_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {} template {}").format(sql.Identifier(name), sql.Identifier(source)))
    url = with_database(admin_url, name)
    with psycopg.connect(url) as conn:  # forget the conversions the attribution tests loaded: the assets load them
        conn.execute("delete from raw.attribution_events")
        conn.execute("delete from quarantine.campaign_records where source in ('shop_orders', 'pixel', 'vanity')")
        conn.execute("delete from ops.campaign_files where kind in ('pixel', 'vanity')")
        conn.execute("delete from ops.campaign_sync_cursors where source = 'shop_orders'")

    world = attribution_warehouse["world"]
    root = tmp_path_factory.mktemp("privacy")
    data = root / "data"
    write_event_files(world, root / "conversions")
    section, tokens = campaign_sources(world, simulator.base_url)
    (root / "sources.yaml").write_text(yaml.safe_dump(section))
    tenant, campaign = query(url, "select tenant_id, campaign_id from marts.mart_campaign_roi "
                                  "order by impressions desc, campaign_id limit 1")[0]
    (root / "recipients.yaml").write_text(yaml.safe_dump({"recipients": [
        {"tenant": tenant, "campaign": campaign, "email": ["agency@example.org"],
         "webhook_url": "http://127.0.0.1:9/hooks/reports"}]}))
    secrets = {"PODCAST_SMTP_USERNAME": "reports", "PODCAST_SMTP_PASSWORD": f"smtp-{MARK}",
               "PODCAST_REPORT_WEBHOOK_SECRET": f"hook-{MARK}", "PODCAST_IP_HASH_SECRET": HASH_SECRET}
    env = {**secrets, **tokens, "PODCAST_DATA_DIR": str(data), "PODCAST_SOURCES_FILE": str(root / "sources.yaml"),
           "PODCAST_CONVERSION_LANDING_DIR": str(root / "conversions"),
           "PODCAST_INSERTION_ORDER_DIR": str(root / "io")}
    delivery = ReportDeliveryResource(
        smtp_host="127.0.0.1", smtp_port=smtp[0], smtp_username=dg.EnvVar("PODCAST_SMTP_USERNAME"),
        smtp_password=dg.EnvVar("PODCAST_SMTP_PASSWORD"), webhook_secret=dg.EnvVar("PODCAST_REPORT_WEBHOOK_SECRET"),
        recipients_file=str(root / "recipients.yaml"), wait_initial_seconds=0.01, wait_max_seconds=0.02,
        max_attempts=1)
    resources = {"warehouse": WarehouseResource(database_url=url), "report_delivery": delivery,
                 "report_store": ReportStoreResource(base_url=str(data / "reports"))}
    loads = {"ops": {"conversion_events": {"config": {"settle_seconds": 0}}}}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        get_settings.cache_clear()
        try:
            with dg.instance_for_test() as instance:
                runs = [dg.materialize([sponsorship_campaigns, conversion_events], instance=instance,
                                       resources=resources, run_config=loads, raise_on_error=False) for _ in range(2)]
                before_report = query(url, "select count(*) from raw.attribution_events")[0][0]
                instance.add_dynamic_partitions(CAMPAIGN_PARTITIONS.name, [f"{tenant}:{campaign}"])
                report = dg.materialize([campaign_report], partition_key=f"{tenant}:{campaign}", instance=instance,
                                        resources=resources, raise_on_error=False)
                events = [entry.to_json() for r in instance.get_runs() for entry in instance.all_logs(r.run_id)]
                instance_files = {p: p.read_bytes() for p in Path(instance.root_directory).rglob("*") if p.is_file()}
        finally:
            get_settings.cache_clear()
    yield {"url": url, "world": world, "root": root, "data": data, "runs": runs, "report": report, "events": events,
           "instance_files": instance_files, "secrets": [f"smtp-{MARK}", f"hook-{MARK}", HASH_SECRET, *tokens.values()],
           "tokens": tokens, "rows": before_report, "env": env}
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


def _text_columns(url: str) -> list[tuple[str, str, str]]:
    return query(url, """
        select c.table_schema, c.table_name, c.column_name from information_schema.columns c
        join information_schema.tables t using (table_schema, table_name)
        where c.table_schema not in ('pg_catalog', 'information_schema') and t.table_type = 'BASE TABLE'
          and c.data_type = any(%s) order by 1, 2, 3""", (list(TEXT_TYPES),))


def personal_data_in_tables(url: str, clear_ips=()) -> tuple[list, list]:
    """Rows of every table (its text, JSON and array columns side by side) holding a buyer's
    details (`PERSONAL`), and tables holding any of `clear_ips` as an address token."""
    columns = _text_columns(url)
    clear = set(clear_ips)
    personal, addresses = [], []
    with psycopg.connect(url) as conn:
        conn.execute("create temp table clear_ips (ip text primary key)")
        with conn.cursor().copy("copy clear_ips (ip) from stdin") as copy:
            for ip in clear:
                copy.write_row((ip,))
        tables: dict[tuple[str, str], list[str]] = {}
        for schema, table, column in columns:
            tables.setdefault((schema, table), []).append(column)
        for (schema, table), names in tables.items():  # one pass per table: its text columns side by side
            row = sql.SQL("select concat_ws(chr(31), {}) as r from {}").format(
                sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(c)) for c in names),
                sql.Identifier(schema, table))
            hits = conn.execute(sql.SQL("select left(r, 300) from ({}) x where r ~ %s limit 3").format(row),
                                (PERSONAL,)).fetchall()
            personal += [(schema, table, h[0]) for h in hits]
            # Every address-shaped token, joined with the simulator's client addresses.
            found = conn.execute(sql.SQL(
                "select count(*) from ({}) x cross join lateral regexp_matches(x.r, %s, 'g') m "
                "join clear_ips on clear_ips.ip = lower(m[1])").format(row), (ADDRESS_TOKEN,)).fetchone()[0]
            if found:
                addresses.append((schema, table, found))
    return personal, addresses


def test_simulated_orders_and_pixels_carry_personal_data(privacy, simulator):
    """The scan below can fail: what the simulator sends holds the buyers' details and addresses."""
    world = privacy["world"]
    shop = next(s for s in world.sponsors if s.store)
    answer = httpx.get(f"{simulator.base_url}/shop/{shop.store}/admin/api/2024-10/orders.json", params={"limit": 250},
                       headers={"X-Shopify-Access-Token": shop_token(world.seed, shop.store)})
    orders = answer.json()["orders"]
    customer = next(o for o in orders if o.get("customer"))
    assert {"email", "phone", "customer", "billing_address", "shipping_address"} <= set(customer)
    assert {"first_name", "last_name", "email", "phone"} <= set(customer["customer"])
    assert {"address1", "city", "zip", "phone", "name"} <= set(customer["billing_address"])
    files = "".join(p.read_text() for p in (privacy["root"] / "conversions").rglob("*.jsonl"))
    people = buyers_of(world)
    assert len(people) > 50 and any(p.email in answer.text for p in people) and any(p.email in files for p in people)
    assert all(re.search(PERSONAL, value) for p in people[:50] for value in personal_values(p) if not value.isdigit())
    assert len(re.findall(PERSONAL, answer.text)) > 100 and len(re.findall(PERSONAL, files)) > 10
    clear = {e.ip for e in world.events}
    assert _addresses_in(answer.text + files) & clear


def test_no_personal_data_or_clear_address_in_any_table_or_report_file(privacy):
    """Every text, JSON and array column of every table in every schema, and every file under the
    data dir (the report's PDF/CSV/JSON/HTML), after the assets loaded the orders and pixels and
    dbt's marts were built from them: no e-mail, phone, name or street, no clear client address."""
    url, world = privacy["url"], privacy["world"]
    assert all(r.success for r in privacy["runs"]) and privacy["report"].success
    clear = {str(ipaddress.ip_address(e.ip)) for e in world.events}
    columns = _text_columns(url)
    assert {("raw", "attribution_events", "payload"), ("quarantine", "campaign_records", "payload"),
            ("raw", "attribution_events", "email_key")} <= set(columns)
    assert {s for s, _, _ in columns} >= {"raw", "quarantine", "ops", "marts", "reports"}
    personal, addresses = personal_data_in_tables(url, clear)
    assert personal == []
    assert addresses == []
    files = [p for p in privacy["data"].rglob("*") if p.is_file()]
    assert any(p.suffix == ".pdf" for p in files) and any(p.suffix == ".csv" for p in files), files
    for path in files:
        text = path.read_bytes().decode("latin-1")
        assert not re.search(PERSONAL, text), path
        assert not _addresses_in(text) & clear, path


def test_rows_keep_keyed_hashes_and_allow_listed_fields(privacy):
    url, world = privacy["url"], privacy["world"]
    orders = [e for e in world.events if e.source == "shop_orders"]
    pixel_conversions = [e for e in world.events if e.source == "pixel" and e.is_conversion]
    from simulator.buyers import buyer

    expected = {}
    for ev in orders + pixel_conversions:
        hasher = IpHasher.for_tenant(HASH_SECRET.encode(), ev.tenant_id)
        person = buyer(world.seed, ev.tenant_id, ev.customer_id, ev.event_id)
        expected[(ev.tenant_id, ev.source, ev.event_id)] = (identity_key(hasher, "email", person.email),
                                                           identity_key(hasher, "phone", person.phone))
    stored = {(t, s, i): (e, p) for t, s, i, e, p in query(
        url, "select tenant_id, source, event_id, email_key, phone_key from raw.attribution_events "
             "where email_key is not null or phone_key is not null")}
    assert stored == expected and len(stored) == len(orders) + len(pixel_conversions) > 50
    # A returning customer has one e-mail key for all their orders: the prior-customer rule can use it.
    assert query(url, "select count(*) from (select customer_key from raw.attribution_events "
                      "where customer_key is not null group by 1 having count(distinct email_key) > 1) x")[0][0] == 0
    allowed = {"shop_orders": set(ORDER_FIELDS), "pixel": set(PIXEL_FIELDS), "vanity": set(VANITY_FIELDS)}
    for source, keys in query(url, "select source, array_agg(distinct k) from raw.attribution_events, "
                                   "jsonb_object_keys(payload) k group by 1"):
        assert set(keys) <= allowed[source], (source, set(keys) - allowed[source])
    # Quarantined records: the same allow-list, and the person's keys instead of their details.
    evidence = query(url, "select source, reason_code, payload from quarantine.campaign_records "
                          "where source in ('shop_orders', 'pixel') order by 1, 2")
    assert {(s, r) for s, r, _ in evidence} >= {("shop_orders", "missing_id"), ("pixel", "invalid_json"),
                                                ("pixel", "invalid_timestamp")}
    for source, reason, document in evidence:
        if reason == "invalid_json":  # a torn line: the plain allow-listed fields read from it, nothing else
            assert document["fields"] == {"event_id": "torn"} and document["fields_dropped"] == 2, document
            continue
        assert document["email_key"] and document["phone_key"], document
        assert set(document) - {"email_key", "phone_key", "customer_key", "ip_hash"} <= allowed[source]
    # The second run of the same input changed nothing.
    second = privacy["runs"][1].asset_materializations_for_node("conversion_events")[0].metadata
    assert second["changed_this_run"].value == 0 and sum(second["quarantined_this_run"].data.values()) == 0
    assert privacy["rows"] == query(url, "select count(*) from raw.attribution_events")[0][0]


def test_secrets_never_in_events_instance_or_data_files(privacy):
    """The SMTP password, the webhook secret, the hash secret and the sponsorship and shop API
    tokens were all in use (the loads and the delivery ran): none is in the Dagster event log
    (messages, metadata, errors), any file the instance wrote, or any file under the data dir."""
    channels = query(privacy["url"], "select distinct channel from reports.deliveries where _batch_id = %s",
                     (privacy["report"].run_id,))
    assert sorted(channels) == [("email",), ("webhook",)]  # the delivery used the SMTP login and the webhook secret
    assert len(privacy["events"]) > 20
    assert not re.search(PERSONAL, "\n".join(privacy["events"]))  # nor a buyer's details
    for secret in privacy["secrets"]:
        assert not [e for e in privacy["events"] if secret in e], secret
        assert not [p for p, content in privacy["instance_files"].items() if secret.encode() in content], secret
        assert not [p for p in privacy["data"].rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
    with psycopg.connect(privacy["url"]) as conn:
        for schema, table, column in _text_columns(privacy["url"]):
            if schema in ("ops", "reports", "quarantine"):
                found = conn.execute(sql.SQL("select count(*) from {} where {}::text like %s").format(
                    sql.Identifier(schema, table), sql.Identifier(column)), (f"%{MARK}%",)).fetchone()[0]
                assert found == 0, (schema, table, column)


def test_hash_secret_required_outside_the_demo_and_checked(privacy, tmp_path, monkeypatch):
    """No secret and no key file: one line, no key made. The demo makes one (0600, kept). The
    warehouse's check value refuses another secret, in the helper, in an asset run and in `dev`."""
    settings = Settings(data_dir=tmp_path / "data", ip_hash_secret=None)
    with pytest.raises(HashSecretError, match=r"^no hash secret: set PODCAST_IP_HASH_SECRET \(or restore "):
        settings.resolved_ip_hash_secret()
    assert not settings.ip_hash_key_file.exists()
    key = settings.create_demo_ip_hash_secret()
    assert len(key) == 64 and stat.S_IMODE(settings.ip_hash_key_file.stat().st_mode) == 0o600
    assert settings.create_demo_ip_hash_secret() == key == settings.resolved_ip_hash_secret()

    url = privacy["url"]
    assert query(url, "select check_value from ops.hash_key_check") == [(key_check_value(HASH_SECRET.encode()),)]
    assert HASH_SECRET not in query(url, "select check_value from ops.hash_key_check")[0][0]
    assert checked_hash_secret(warehouse_at(url), Settings(ip_hash_secret=HASH_SECRET)) == HASH_SECRET.encode()
    with pytest.raises(HashSecretError, match="not the one this warehouse's hashes were made with"):
        checked_hash_secret(warehouse_at(url), Settings(ip_hash_secret="another-secret"))

    before = query(url, "select count(*), max(_ingested_at) from raw.attribution_events")
    for k, v in {**privacy["env"], "PODCAST_IP_HASH_SECRET": "another-secret"}.items():
        monkeypatch.setenv(k, v)
    get_settings.cache_clear()
    try:
        result = dg.materialize([conversion_events], resources={"warehouse": WarehouseResource(database_url=url)},
                                run_config={"ops": {"conversion_events": {"config": {"settle_seconds": 0}}}},
                                raise_on_error=False)
    finally:
        get_settings.cache_clear()
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    cause = failure.step_failure_data.error.cause
    assert cause.cls_name == "HashSecretError" and "not the one this warehouse's hashes were made with" in cause.message
    assert query(url, "select count(*), max(_ingested_at) from raw.attribution_events") == before

    from pipelines.cli import main

    monkeypatch.delenv("PODCAST_IP_HASH_SECRET")
    monkeypatch.setenv("PODCAST_DATA_DIR", str(tmp_path / "empty"))
    get_settings.cache_clear()
    try:
        out = CliRunner().invoke(main, ["dev"])
    finally:
        get_settings.cache_clear()
    assert out.exit_code == 1 and out.output.count("\n") == 1, out.output
    assert out.output.startswith("error: no hash secret: set PODCAST_IP_HASH_SECRET")
    assert not (tmp_path / "empty" / "ip_hash.key").exists() and not (tmp_path / "empty" / "pg").exists()


def _real_lines() -> list[str]:
    return [line for path in sorted(REAL_LOGS.rglob("*")) if path.is_file() and path.parent.name != "licenses"
            and path.suffix in (".log", ".txt", ".csv", ".json")
            for line in path.read_text(errors="replace").splitlines() if line.strip()]


def test_quarantined_lines_keep_no_address_in_any_form():
    """Real CDN lines (read in place), as they are and rewritten as a load balancer, a dual-stack
    server and a bracketed IPv6 writer would: after redaction no address is left, a port is, and
    the same address gives the same token."""
    hasher = IpHasher.for_tenant(b"k", "t")
    lines = _real_lines()
    assert len(lines) > 100
    with_address = [line for line in lines if _addresses_in(line)]
    assert len(with_address) > 50 and any("127.0.0.1:5" in line for line in lines)  # a URL with a port
    for line in with_address:
        assert not _addresses_in(hasher.redact(line)) & _addresses_in(line), line
    clients = sorted({a for line in with_address for a in _addresses_in(line) if ipaddress.ip_address(a).version == 4})
    combined = next(line for line in lines if re.match(rf"^{IPV4} - ", line))
    client = combined.split(" ", 1)[0]
    for ip in clients[:20]:
        v6 = f"2001:db8::{ipaddress.ip_address(ip).packed[-1]:x}"
        for rewritten in (combined.replace(client, f"{ip}:5678", 1),                     # ELB: client:port
                          combined.replace(client, f"::ffff:{ip}", 1),                   # IPv4-mapped IPv6
                          combined.replace(client, f"[{v6}]:443", 1),                    # bracketed IPv6 + port
                          f"2026-11-05T10:00:00.000Z app/elb {ip}:5678 10.0.3.7:80 {combined}"):
            redacted = hasher.redact(rewritten)
            assert not (_addresses_in(redacted) & {ip, v6, "10.0.3.7"}), redacted
        assert hasher.redact(f"{ip}:5678 x") == f"ip:{hasher.digest(ip)[:16]}:5678 x"


def test_migration_minimises_what_was_stored_before(admin_url, tmp_path):
    """A warehouse that stored orders, pixel lines and quarantined records whole (before the
    minimising revision) keeps, after `migrate`, only the allow-listed fields of them."""
    import shutil

    from resources.schema import MIGRATIONS_DIR, migrate

    location = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, location, ignore=shutil.ignore_patterns("__pycache__"))
    [ours] = (location / "versions").glob("*_minimised_conversions.py")
    for path in (location / "versions").glob("[0-9]*.py"):
        if path.name >= ours.name:
            path.unlink()
    name = f"t_priv_mig_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    url = with_database(admin_url, name)
    try:
        migrate(url, script_location=location)
        person = {"email": "ada@example.org", "phone": "+1 212-555-0100",
                  "customer": {"id": 7, "first_name": "Ada", "email": "ada@example.org"},
                  "billing_address": {"address1": "1 Main St"}, "shipping_address": {"address1": "2 Side St"}}
        order = {"id": 1, "total_price": "10.00", "currency": "USD", "refunds": [], **person}
        pixel = {"event_id": "p1", "event": "purchase", "value": 5, "user_data": {"email": "ada@example.org"}}
        with psycopg.connect(url) as conn:
            for source, document in (("shop_orders", order), ("pixel", pixel)):
                conn.execute("insert into raw.attribution_events (tenant_id, source, event_id, occurred_at, sponsor_id, "
                             "event_type, payload) values ('t', %s, %s, now(), 's', 'order', %s)",
                             (source, source, json.dumps(document)))
            conn.execute("insert into quarantine.campaign_records (tenant_id, source, record_key, reason_code, payload) "
                         "values ('t', 'shop_orders', 'k', 'missing_id', %s)", (json.dumps(order),))
        assert ours.name[:4] in migrate(url).applied
        assert dict(query(url, "select source, payload from raw.attribution_events")) == {
            "shop_orders": {"id": 1, "total_price": "10.00", "currency": "USD", "refunds": []},
            "pixel": {"event_id": "p1", "event": "purchase", "value": 5}}
        assert query(url, "select payload from quarantine.campaign_records") == [
            ({"id": 1, "total_price": "10.00", "currency": "USD", "refunds": []},)]
        assert query(url, "select count(email_key), count(phone_key) from raw.attribution_events") == [(0, 0)]
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))

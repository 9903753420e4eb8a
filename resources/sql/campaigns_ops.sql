-- Bookkeeping of the campaign and conversion ingestion (idempotent).

-- Incremental API cursors: the newest `updated_at` stored per source and stream.
create table if not exists ops.campaign_sync_cursors (
    tenant_id   text not null,
    source      text not null,          -- sponsorship_api | shop_orders
    stream      text not null,          -- sponsors | campaigns | placements | <store>
    cursor      text not null,
    updated_at  timestamptz not null default now(),
    primary key (tenant_id, source, stream)
);

-- Files loaded from the insertion-order folder and the conversion landing folder, by content:
-- a file is read again only when its bytes change.
create table if not exists ops.campaign_files (
    file_key     text not null,         -- <kind>/<tenant>/<name>
    kind         text not null,         -- insertion_order | pixel | vanity
    tenant_id    text not null,
    sha256       text not null,
    rows         integer not null,
    quarantined  integer not null,
    _batch_id    text,
    loaded_at    timestamptz not null default now(),
    primary key (file_key)
);
-- A file that could not be read (whole, or past a point: a broken gzip stream, a workbook that
-- does not open) is recorded with the reason, so the same bytes are not retried on every run.
alter table ops.campaign_files add column if not exists refused_reason text;
alter table ops.campaign_files add column if not exists refused_detail text;

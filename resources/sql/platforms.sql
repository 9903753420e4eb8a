-- Tables of the hosting-platform API sync (raw, quarantine, cursors). Idempotent like
-- bootstrap.sql, and applied after it by the warehouse bootstrap and by the platform sync before
-- every run.

-- Hosting-platform APIs: episodes and daily downloads per platform, upserted on natural keys.
create table if not exists raw.buzzsprout_episodes (
    tenant_id         text not null,
    podcast_id        text not null,
    episode_id        text not null,
    guid              text,
    title             text,
    audio_url         text,
    published_at      timestamptz,
    duration_seconds  integer,
    episode_number    integer,
    season_number     integer,
    payload           jsonb,
    _ingested_at      timestamptz not null default now(),
    _source           text not null default 'buzzsprout',
    _batch_id         text,
    primary key (tenant_id, podcast_id, episode_id)
);

create table if not exists raw.buzzsprout_episode_downloads_daily (
    tenant_id      text   not null,
    podcast_id     text   not null,
    episode_id     text   not null,
    download_date  date   not null,
    downloads      bigint not null,
    _ingested_at   timestamptz not null default now(),
    _source        text not null default 'buzzsprout',
    _batch_id      text,
    primary key (tenant_id, podcast_id, episode_id, download_date)
);

-- One row per download from Buzzsprout's per-download endpoint (no payload column: the columns
-- are the whole record). Keyed by the download's id, so a page read twice stores its rows once.
create table if not exists raw.buzzsprout_episode_download_details (
    tenant_id      text not null,
    podcast_id     text not null,
    episode_id     text not null,
    download_date  date not null,
    download_id    text not null,
    app            text,
    device         text,
    device_type    text,
    country_code   text,
    region         text,
    city           text,
    continent      text,
    media_type     text not null,
    _ingested_at   timestamptz not null default now(),
    _source        text not null default 'buzzsprout',
    _batch_id      text,
    primary key (tenant_id, podcast_id, episode_id, download_date, download_id)
);

create table if not exists raw.transistor_episodes (
    tenant_id         text not null,
    show_id           text not null,
    episode_id        text not null,
    guid              text,
    title             text,
    media_url         text,
    status            text,
    published_at      timestamptz,
    duration_seconds  integer,
    episode_number    integer,
    season_number     integer,
    payload           jsonb,
    _ingested_at      timestamptz not null default now(),
    _source           text not null default 'transistor',
    _batch_id         text,
    primary key (tenant_id, show_id, episode_id)
);

create table if not exists raw.transistor_episode_downloads_daily (
    tenant_id      text   not null,
    show_id        text   not null,
    episode_id     text   not null,
    download_date  date   not null,
    downloads      bigint not null,
    _ingested_at   timestamptz not null default now(),
    _source        text not null default 'transistor',
    _batch_id      text,
    primary key (tenant_id, show_id, episode_id, download_date)
);

-- API records that failed validation, with the reason and the record as it came.
create table if not exists quarantine.platform_records (
    platform       text not null,
    tenant_id      text not null,
    source_id      text not null,
    stream         text not null,
    record_key     text not null,
    reason_code    text not null,
    record_date    date,
    detail         text,
    payload        jsonb,
    _ingested_at   timestamptz not null default now(),
    _batch_id      text,
    primary key (platform, tenant_id, source_id, stream, record_key, reason_code)
);

-- Where each platform stream's sync stands, written in the transaction of the data it covers:
-- an interrupted sync resumes from here.
create table if not exists ops.platform_sync_cursors (
    platform     text        not null,
    tenant_id    text        not null,
    source_id    text        not null,
    stream       text        not null,
    cursor       jsonb       not null,
    updated_at   timestamptz not null default now(),
    _batch_id    text,
    primary key (platform, tenant_id, source_id, stream)
);

-- Podbean API sync: episodes and daily downloads per episode, upserted on natural keys.
-- Idempotent; applied after platforms.sql by the platform sync before every run.

create table if not exists raw.podbean_episodes (
    tenant_id         text not null,
    podcast_id        text not null,
    episode_id        text not null,
    title             text,
    media_url         text,
    permalink_url     text,
    status            text,
    published_at      timestamptz,
    duration_seconds  integer,
    episode_number    integer,
    season_number     integer,
    payload           jsonb,
    _ingested_at      timestamptz not null default now(),
    _source           text not null default 'podbean',
    _batch_id         text,
    primary key (tenant_id, podcast_id, episode_id)
);

create table if not exists raw.podbean_episode_downloads_daily (
    tenant_id      text   not null,
    podcast_id     text   not null,
    episode_id     text   not null,
    download_date  date   not null,
    downloads      bigint not null,
    _ingested_at   timestamptz not null default now(),
    _source        text not null default 'podbean',
    _batch_id      text,
    primary key (tenant_id, podcast_id, episode_id, download_date)
);

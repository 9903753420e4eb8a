-- Simplecast API sync: episodes, their ad markers, daily downloads and the daily location and
-- technology breakdowns per episode, upserted on natural keys.
-- Idempotent; applied after platforms.sql by the platform sync before every run.

create table if not exists raw.simplecast_episodes (
    tenant_id         text not null,
    podcast_id        text not null,
    episode_id        text not null,
    guid              text,
    title             text,
    enclosure_url     text,
    status            text,
    published_at      timestamptz,
    duration_seconds  integer,
    episode_number    integer,
    season_number     integer,
    payload           jsonb,
    _ingested_at      timestamptz not null default now(),
    _source           text not null default 'simplecast',
    _batch_id         text,
    primary key (tenant_id, podcast_id, episode_id)
);

-- Ad breaks (dynamic insertion points) of each episode, in seconds from the start.
create table if not exists raw.simplecast_episode_ad_markers (
    tenant_id       text not null,
    podcast_id      text not null,
    episode_id      text not null,
    marker_id       text not null,
    ad_type         text,
    offset_seconds  numeric(12, 3) not null,
    ad_limit        integer,
    name            text,
    _ingested_at    timestamptz not null default now(),
    _source         text not null default 'simplecast',
    _batch_id       text,
    primary key (tenant_id, podcast_id, episode_id, marker_id)
);

create table if not exists raw.simplecast_episode_downloads_daily (
    tenant_id      text   not null,
    podcast_id     text   not null,
    episode_id     text   not null,
    download_date  date   not null,
    downloads      bigint not null,
    _ingested_at   timestamptz not null default now(),
    _source        text not null default 'simplecast',
    _batch_id      text,
    primary key (tenant_id, podcast_id, episode_id, download_date)
);

-- Downloads of an episode on a day by listener country (ISO 3166-1 alpha-2).
create table if not exists raw.simplecast_episode_locations (
    tenant_id      text   not null,
    podcast_id     text   not null,
    episode_id     text   not null,
    download_date  date   not null,
    country_code   text   not null,
    country_name   text,
    downloads      bigint not null,
    _ingested_at   timestamptz not null default now(),
    _source        text not null default 'simplecast',
    _batch_id      text,
    primary key (tenant_id, podcast_id, episode_id, download_date, country_code)
);

-- Downloads of an episode on a day by listening technology: dimension 'application' (the app)
-- or 'device_class' (mobile, desktop, smart_speaker, ...), and its value.
create table if not exists raw.simplecast_episode_technology (
    tenant_id      text   not null,
    podcast_id     text   not null,
    episode_id     text   not null,
    download_date  date   not null,
    dimension      text   not null,
    name           text   not null,
    downloads      bigint not null,
    _ingested_at   timestamptz not null default now(),
    _source        text not null default 'simplecast',
    _batch_id      text,
    primary key (tenant_id, podcast_id, episode_id, download_date, dimension, name)
);

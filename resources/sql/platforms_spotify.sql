-- Spotify for Creators-shaped analytics (raw): episodes, per-episode and per-show daily numbers,
-- and the daily listener demographics of each show. Idempotent; applied by the platform sync.

create table if not exists raw.spotify_episodes (
    tenant_id         text not null,
    show_id           text not null,      -- Spotify's show id (base62)
    episode_id        text not null,      -- Spotify's episode id (base62); Spotify shows no RSS guid
    name              text,
    release_date      date,
    duration_seconds  integer,
    explicit          boolean,
    language          text,
    url               text,
    show_name         text,
    feed_url          text,               -- the show's RSS feed, as configured in sources.yaml
    payload           jsonb,              -- the listing entry without its window counts
    _ingested_at      timestamptz not null default now(),
    _source           text not null default 'spotify',
    _batch_id         text,
    primary key (tenant_id, show_id, episode_id)
);

create table if not exists raw.spotify_episode_metrics_daily (
    tenant_id                     text    not null,
    show_id                       text    not null,
    episode_id                    text    not null,
    metric_date                   date    not null,
    starts                        bigint  not null,
    streams                       bigint  not null,  -- starts played for 60 seconds or more
    listeners                     bigint  not null,
    median_completion_percentage  numeric,
    median_completion_seconds     numeric,
    _ingested_at                  timestamptz not null default now(),
    _source                       text not null default 'spotify',
    _batch_id                     text,
    primary key (tenant_id, show_id, episode_id, metric_date)
);

create table if not exists raw.spotify_show_metrics_daily (
    tenant_id     text   not null,
    show_id       text   not null,
    metric_date   date   not null,
    starts        bigint not null,
    streams       bigint not null,
    listeners     bigint not null,
    followers     bigint not null,   -- followers at the end of the day
    _ingested_at  timestamptz not null default now(),
    _source       text not null default 'spotify',
    _batch_id     text,
    primary key (tenant_id, show_id, metric_date)
);

create table if not exists raw.spotify_show_demographics_daily (
    tenant_id        text    not null,
    show_id          text    not null,
    metric_date      date    not null,
    age_bucket       text    not null,   -- 0-17, 18-22, 23-27, 28-34, 35-44, 45-59, 60-150, unknown
    gender           text    not null,   -- FEMALE, MALE, NON_BINARY, NOT_SPECIFIED
    listeners        bigint  not null,
    share            numeric not null,   -- listeners / the day's total over all cells (0..1)
    _ingested_at     timestamptz not null default now(),
    _source          text not null default 'spotify',
    _batch_id        text,
    primary key (tenant_id, show_id, metric_date, age_bucket, gender)
);

-- Apple Podcasts Connect-shaped analytics (raw): episodes, per-episode daily numbers and show
-- followers per day. Idempotent; applied by the platform sync.

create table if not exists raw.apple_episodes (
    tenant_id         text not null,
    show_id           text not null,      -- Apple's show (podcast) id, numeric
    episode_id        text not null,      -- Apple's episode id, numeric
    guid              text,               -- the RSS item guid Apple read from the feed
    title             text,
    episode_number    integer,
    episode_type      text,
    released_at       timestamptz,
    duration_seconds  integer,
    enclosure_url     text,
    show_name         text,
    feed_url          text,               -- the show's RSS feed, as configured in sources.yaml
    payload           jsonb,
    _ingested_at      timestamptz not null default now(),
    _source           text not null default 'apple',
    _batch_id         text,
    primary key (tenant_id, show_id, episode_id)
);

create table if not exists raw.apple_episode_metrics_daily (
    tenant_id              text   not null,
    show_id                text   not null,
    episode_id             text   not null,
    metric_date            date   not null,
    plays                  bigint not null,
    listeners              bigint not null,
    engaged_listeners      bigint not null,  -- listened 20 minutes or 40 % of the episode
    time_listened_seconds  bigint not null,
    _ingested_at           timestamptz not null default now(),
    _source                text not null default 'apple',
    _batch_id              text,
    primary key (tenant_id, show_id, episode_id, metric_date)
);

create table if not exists raw.apple_show_followers_daily (
    tenant_id        text   not null,
    show_id          text   not null,
    metric_date      date   not null,
    followers        bigint not null,  -- followers at the end of the day
    followers_gained bigint not null,
    followers_lost   bigint not null,
    _ingested_at     timestamptz not null default now(),
    _source          text not null default 'apple',
    _batch_id        text,
    primary key (tenant_id, show_id, metric_date)
);

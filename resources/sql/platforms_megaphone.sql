-- Megaphone-style daily delivery exports (object storage), aggregated per episode and day, and
-- the ledger of the export files loaded. Idempotent; applied with the other platform tables.

create table if not exists raw.megaphone_episode_metrics_daily (
    tenant_id             text   not null,
    network_id            text   not null,   -- Megaphone network (uuid): the export's folder
    podcast_id            text   not null,   -- Megaphone podcast (uuid)
    episode_id            text   not null,   -- Megaphone episode (uuid)
    metric_date           date   not null,   -- the export's UTC day
    downloads             bigint not null,   -- requests Megaphone did not blacklist
    unique_listeners      bigint not null,   -- distinct IP + user agent among the downloads
    blacklisted_requests  bigint not null,   -- requests blacklisted by IP or user agent
    bytes_sent            bigint not null,   -- over the downloads
    seconds_downloaded    bigint not null,   -- over the downloads
    _ingested_at          timestamptz not null default now(),
    _source               text not null default 'megaphone_export',
    _batch_id             text,
    primary key (tenant_id, network_id, episode_id, metric_date)
);

-- One row per export file loaded: its checksum decides whether a day is loaded again.
create table if not exists ops.megaphone_export_files (
    file_path            text primary key,   -- relative to the export root
    tenant_id            text        not null,
    network_id           text        not null,
    export_date          date        not null,
    sha256               text        not null,
    size_bytes           bigint      not null,
    records              bigint      not null,
    records_quarantined  bigint      not null,
    loaded_at            timestamptz not null default now(),
    _batch_id            text
);

-- The Megaphone API's episode catalog (the ids the exports name, with what matches them to feed
-- items: guid, title, date, media URL), upserted on (tenant, podcast, episode id).
create table if not exists raw.megaphone_episodes (
    tenant_id         text not null,
    podcast_id        text not null,   -- Megaphone podcast (uuid)
    episode_id        text not null,   -- Megaphone episode (uuid)
    network_id        text not null,
    guid              text,            -- the feed item's guid, or Megaphone's uid when imported without one
    uid               text,            -- Megaphone's own short id
    title             text,
    published_at      timestamptz,
    duration_seconds  integer,
    audio_url         text,            -- audioFileUrl (else downloadUrl)
    status            text,
    payload           jsonb,
    _ingested_at      timestamptz not null default now(),
    _source           text not null default 'megaphone',
    _batch_id         text,
    primary key (tenant_id, podcast_id, episode_id)
);

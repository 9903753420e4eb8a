-- Schemas and raw/quarantine tables of the warehouse, applied by the baseline migration
-- (resources/migrations/versions/0001_baseline.py); every statement is idempotent. A change is a new revision.
create schema if not exists raw;
create schema if not exists quarantine;
create schema if not exists staging;
create schema if not exists intermediate;
create schema if not exists marts;
create schema if not exists reports;
create schema if not exists ops;

-- One row per HTTP poll of a feed (append-only log; conditional-GET state is read back from it).
create table if not exists raw.rss_feed_fetches (
    fetch_id        bigint generated always as identity,
    tenant_id       text        not null,
    feed_url        text        not null,
    final_url       text,
    fetched_at      timestamptz not null,
    outcome         text        not null check (outcome in ('fetched', 'not_modified', 'error')),
    status_code     integer,
    etag            text,
    last_modified   text,
    bytes           bigint,
    duration_ms     double precision,
    attempts        integer,
    error_code      text,
    error           text,
    content_sha256  text,
    _ingested_at    timestamptz not null default now(),
    _source         text        not null default 'rss',
    _batch_id       text,
    primary key (fetch_id, fetched_at)
);
create index if not exists rss_feed_fetches_feed_idx on raw.rss_feed_fetches (feed_url, fetched_at desc);

create table if not exists raw.rss_podcasts (
    tenant_id          text not null,
    feed_url           text not null,
    final_url          text,
    title              text,
    link               text,
    description_html   text,
    language           text,
    author             text,
    owner_name         text,
    owner_email        text,
    image_url          text,
    itunes_type        text,
    explicit_raw       text,
    categories         text[],
    podcast_guid       text,
    medium             text,
    new_feed_url       text,
    itunes_complete    text,
    itunes_block       text,
    generator          text,
    updated_raw        text,
    episode_count      integer,
    content_hash       text not null,
    payload            jsonb,
    _ingested_at       timestamptz not null default now(),
    _source            text not null default 'rss',
    _batch_id          text,
    primary key (tenant_id, feed_url)
);

create table if not exists raw.rss_episodes (
    tenant_id           text not null,
    feed_url            text not null,
    guid                text not null,
    guid_source         text not null,
    feed_position       integer,
    title               text,
    itunes_title        text,
    link                text,
    description_html    text,
    description_text    text,
    published_raw       text,
    published_at        timestamptz,
    duration_raw        text,
    duration_seconds    integer,
    explicit_raw        text,
    itunes_episode_type text,
    season_raw          text,
    season_number       integer,
    episode_raw         text,
    episode_number      integer,
    enclosure_url       text,
    enclosure_length    bigint,
    enclosure_type      text,
    image_url           text,
    transcripts         jsonb,
    chapters_url        text,
    chapters_type       text,
    content_hash        text not null,
    payload             jsonb,
    _ingested_at        timestamptz not null default now(),
    _source             text not null default 'rss',
    _batch_id           text,
    primary key (tenant_id, feed_url, guid)
);

-- Feeds that could not be used at all (HTTP errors, malformed XML, entity declarations...).
create table if not exists quarantine.rss_feeds (
    tenant_id      text not null,
    feed_url       text not null,
    reason_code    text not null,
    detail         text,
    evidence       text,
    _ingested_at   timestamptz not null default now(),
    _batch_id      text,
    primary key (tenant_id, feed_url, reason_code)
);

-- Items of a usable feed that failed validation, with the item as it came.
create table if not exists quarantine.rss_episodes (
    tenant_id      text not null,
    feed_url       text not null,
    item_key       text not null,
    reason_code    text not null,
    guid           text,
    title          text,
    detail         text,
    payload        jsonb,
    _ingested_at   timestamptz not null default now(),
    _batch_id      text,
    primary key (tenant_id, feed_url, item_key, reason_code)
);

-- Feed polling for many tenants and real servers (one request per URL, fanned out to tenants).
-- The parse options a fetch was parsed with: a conditional GET is only sent when they are unchanged.
alter table raw.rss_feed_fetches add column if not exists parse_options text;
create index if not exists rss_feed_fetches_tenant_feed_idx on raw.rss_feed_fetches (tenant_id, feed_url, fetched_at desc);
-- Feeds recovered from XML that is not well-formed: the parser's warnings, and a flag on the feed
-- and on each of its episodes (their values may miss what the broken part held).
alter table raw.rss_podcasts add column if not exists parse_degraded boolean not null default false;
alter table raw.rss_podcasts add column if not exists parse_warnings text[];
alter table raw.rss_episodes add column if not exists parse_degraded boolean not null default false;
-- quarantine.rss_feeds / rss_episodes hold the current state (a feed that recovers leaves them);
-- this append-only log keeps every change: when a feed or an item entered or left quarantine.
create table if not exists quarantine.rss_history (
    history_id     bigint generated always as identity primary key,
    tenant_id      text not null,
    feed_url       text not null,
    item_key       text,            -- null: the feed itself
    event          text not null check (event in ('quarantined', 'cleared')),
    reason_code    text not null,
    detail         text,
    recorded_at    timestamptz not null default now(),
    _batch_id      text
);
create index if not exists rss_history_feed_idx on quarantine.rss_history (tenant_id, feed_url, recorded_at);

-- One row per request in a hosting/CDN access log. Client addresses are stored only as keyed
-- hashes (per-tenant salt): the address, and the listener prefix (IPv4 address or IPv6 /64).
create table if not exists raw.listener_events (
    tenant_id       text        not null,
    event_time      timestamptz not null,
    log_date        date        not null,
    file_key        text        not null,
    line_no         integer     not null,
    host            text,
    path            text        not null,
    query           text,
    method          text        not null,
    status          integer     not null,
    bytes_sent      bigint      not null,
    range_start     bigint,
    range_end       bigint,
    ip_hash         text        not null,
    ip_prefix_hash  text        not null,
    ip_version      smallint    not null,
    ip_datacenter   boolean     not null default false,
    user_agent      text,
    referer         text,
    country         text,
    _ingested_at    timestamptz not null default now(),
    _source         text        not null,
    _batch_id       text,
    primary key (file_key, line_no, event_time)
);
alter table raw.listener_events add column if not exists ip_datacenter boolean not null default false;
-- The size of the whole object as the log states it (S3 `Object Size`, a `Content-Range` total,
-- a CDN's object-size field); null where the format does not say.
alter table raw.listener_events add column if not exists object_size bigint;
create index if not exists listener_events_date_idx on raw.listener_events (log_date, tenant_id);
create index if not exists listener_events_time_idx on raw.listener_events (event_time);

-- The media host(s) each tenant's log source serves, from the `listener_logs:` section of
-- sources.yaml: a request logged without a host (S3, plain `combined`) is matched to an episode
-- by its path among these hosts' enclosures.
create table if not exists raw.listener_log_sources (
    tenant_id    text not null,
    media_host   text not null,
    _ingested_at timestamptz not null default now(),
    _batch_id    text,
    primary key (tenant_id, media_host)
);

-- Lines that could not be read, with the reason; addresses in the line are hashed.
create table if not exists quarantine.listener_events (
    tenant_id    text    not null,
    file_key     text    not null,
    line_no      integer not null,
    reason_code  text    not null,
    detail       text,
    line         text,
    _ingested_at timestamptz not null default now(),
    _batch_id    text,
    primary key (file_key, line_no)
);

-- Which log file was loaded, in which version: a file is loaded once per content.
create table if not exists ops.listener_log_files (
    file_key          text primary key,
    tenant_id         text        not null,
    log_date          date        not null,
    format            text        not null,
    size_bytes        bigint      not null,
    sha256            text        not null,
    rows_loaded       bigint      not null,
    rows_quarantined  bigint      not null,
    loaded_at         timestamptz not null default now(),
    _batch_id         text
);

-- User-agent patterns in the OPAWG user-agents-v2 shape (bots, apps, libraries, browsers, devices).
create table if not exists raw.user_agent_patterns (
    pattern_set   text    not null,
    ordinal       integer not null,
    name          text    not null,
    pattern       text    not null,
    category      text,
    source_file   text    not null,
    _ingested_at  timestamptz not null default now(),
    _batch_id     text,
    primary key (pattern_set, ordinal)
);

create table if not exists quarantine.user_agent_patterns (
    pattern_set   text    not null,
    ordinal       integer not null,
    name          text,
    pattern       text,
    reason_code   text    not null,
    detail        text,
    _ingested_at  timestamptz not null default now(),
    primary key (pattern_set, ordinal)
);

-- Timings and outcomes the metrics endpoint reports (append-only, one row per operation):
-- report_generation, roi_calculation, chart_render, report_delivery, delivery_attempt,
-- alert_delivery. `subject`: campaign or sponsor id, chart or alert name; `detail`: scope or channel.
create table if not exists ops.operation_timings (
    timing_id    bigint generated always as identity primary key,
    operation    text             not null,
    tenant_id    text,
    subject      text,
    detail       text,
    outcome      text             not null check (outcome in ('success', 'reused', 'failure')),
    seconds      double precision not null check (seconds >= 0),
    recorded_at  timestamptz      not null default now(),
    _batch_id    text
);
create index if not exists operation_timings_idx on ops.operation_timings (operation, recorded_at);

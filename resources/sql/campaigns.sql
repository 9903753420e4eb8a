-- Sponsorship side: sponsors, campaigns and placements (from the sponsorship API and the
-- insertion-order drop folder), and conversion events (shop orders, pixel events, vanity-URL
-- visits). Idempotent like bootstrap.sql; applied by the campaign and conversion ingestion.

-- Sponsors (advertisers) a network sells to. `_source`: sponsorship_api | insertion_order.
create table if not exists raw.sponsors (
    tenant_id     text not null,
    sponsor_id    text not null,
    name          text not null,
    category      text,            -- e.g. dtc_retail, software, finance: benchmarks group by it
    website       text,
    updated_at    timestamptz,
    payload       jsonb,
    _source       text not null,
    _ingested_at  timestamptz not null default now(),
    _batch_id     text,
    primary key (tenant_id, sponsor_id)
);

-- One campaign of a sponsor on a network. Money in the campaign's currency, two decimals.
create table if not exists raw.campaigns (
    tenant_id                text    not null,
    campaign_id              text    not null,
    sponsor_id               text    not null,
    name                     text    not null,
    budget                   numeric(14, 2) not null,
    currency                 text    not null default 'USD',
    flight_start             date    not null,
    flight_end               date    not null,
    pricing_model            text    not null check (pricing_model in ('flat', 'cpm')),
    flat_fee                 numeric(14, 2),   -- pricing_model = 'flat'
    cpm_rate                 numeric(12, 4),   -- pricing_model = 'cpm': cost per 1000 impressions
    goal_type                text,             -- conversions | revenue | impressions
    goal_value               numeric(14, 2),
    promo_codes              text[]  not null default '{}',
    vanity_urls              text[]  not null default '{}',  -- host + path, lower case, no scheme
    utm_campaign             text,
    attribution_window_days  integer not null default 30 check (attribution_window_days between 1 and 60),
    attribution_model        text    not null default 'last_touch'
        check (attribution_model in ('first_touch', 'last_touch', 'linear', 'time_decay', 'position_based')),
    decay_half_life_days     numeric(6, 2) not null default 7,
    exclude_prior_customers  boolean not null default false,
    status                   text,
    updated_at               timestamptz,
    payload                  jsonb,
    _source                  text not null,
    _ingested_at             timestamptz not null default now(),
    _batch_id                text,
    primary key (tenant_id, campaign_id)
);

-- Where and when a campaign's ad runs. A placement names a show by its feed URL and, optionally,
-- one episode by its guid (no guid: every episode of the show downloaded during the dates).
-- The ad sits at [ad_offset_seconds, ad_offset_seconds + ad_duration_seconds) of the audio.
create table if not exists raw.placements (
    tenant_id            text    not null,
    placement_id         text    not null,
    campaign_id          text    not null,
    feed_url             text    not null,
    episode_guid         text,
    position             text    not null check (position in ('pre', 'mid', 'post')),
    insertion            text    not null check (insertion in ('dynamic', 'baked_in')),
    start_date           date    not null,
    end_date             date    not null,
    ad_offset_seconds    integer not null check (ad_offset_seconds >= 0),
    ad_duration_seconds  integer not null check (ad_duration_seconds > 0),
    updated_at           timestamptz,
    payload              jsonb,
    _source              text not null,
    _ingested_at         timestamptz not null default now(),
    _batch_id            text,
    primary key (tenant_id, placement_id)
);

-- Conversion events, one row per event in its latest state. `source`: shop_orders | pixel |
-- vanity. Orders are upserted by id: an edit replaces the totals, refunds accumulate in
-- refunded_amount (net revenue = gross_revenue - refunded_amount). Client addresses are keyed
-- hashes with the tenant's salt, the same as raw.listener_events, so households match.
create table if not exists raw.attribution_events (
    tenant_id        text        not null,
    source           text        not null,
    event_id         text        not null,
    occurred_at      timestamptz not null,
    sponsor_id       text        not null,
    event_type       text        not null,  -- order | purchase | lead | page_view | vanity_visit
    updated_at       timestamptz,
    ip_hash          text,
    ip_prefix_hash   text,                   -- household key: IPv4 address or IPv6 /64
    ip_version       smallint,
    ip_datacenter    boolean     not null default false,
    user_agent       text,
    customer_key     text,                   -- keyed hash of the shop's customer id
    order_id         text,
    gross_revenue    numeric(14, 2),
    refunded_amount  numeric(14, 2) not null default 0,
    currency         text,
    discount_codes   text[]      not null default '{}',
    landing_url      text,
    referrer         text,
    utm_source       text,
    utm_medium       text,
    utm_campaign     text,
    vanity_url       text,                   -- host + path of a vanity-URL visit, lower case
    payload          jsonb,
    _ingested_at     timestamptz not null default now(),
    _batch_id        text,
    primary key (tenant_id, source, event_id, occurred_at)
);
create index if not exists attribution_events_time_idx on raw.attribution_events (occurred_at);
create index if not exists attribution_events_ingested_idx on raw.attribution_events (_ingested_at);
create index if not exists attribution_events_household_idx on raw.attribution_events (tenant_id, ip_prefix_hash);

-- Campaign and conversion records that could not be stored, with the reason.
create table if not exists quarantine.campaign_records (
    tenant_id     text not null,
    source        text not null,            -- sponsorship_api | insertion_order | shop_orders | pixel | vanity
    record_key    text not null,            -- file + row, or the record's id
    reason_code   text not null,
    detail        text,
    payload       jsonb,
    _ingested_at  timestamptz not null default now(),
    _batch_id     text,
    primary key (tenant_id, source, record_key, reason_code)
);

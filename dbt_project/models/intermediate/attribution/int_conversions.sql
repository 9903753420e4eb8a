{{ config(indexes=[{'columns': ['conversion_date']}, {'columns': ['tenant_id', 'household_key']}],
          tags=['partitioned'], materialized='incremental', incremental_strategy='append',
          pre_hook=["{{ hash_joins_only() }}", "{{ delete_partition_window('conversion_date') }}"]) }}
-- One row per conversion (shop order, pixel purchase or lead) with its deterministic match, if
-- any. Deterministic signals, in order of precedence, each only from the campaign's flight
-- start to its flight end + attribution window and only for the sponsor's own campaigns (ties
-- go to the lowest campaign id):
--   promo_code  the order used one of the campaign's codes (case-insensitive, exact);
--   utm         the conversion landed with the campaign's utm_campaign;
--   vanity_url  the household visited the campaign's vanity URL during that period before
--               converting, within the window (the latest such visit wins).
-- `attribution_key` is the household, or the conversion itself when it has no address.
-- Partitioned by the conversion's UTC day (`conversion_date`): a run replaces the conversions
-- of its window, reading the events of those days and the vanity visits of up to
-- var attribution_max_window_days before them (no campaign's window is longer: test
-- attribution_windows_within_lookback), so a visit found late for day E changes the days
-- E .. E + that many days, which a run over them recomputes exactly.
{%- set max_window = var('attribution_max_window_days') %}
with conversions as (
    select * from {{ ref('stg_conversions__events') }}
    where is_conversion and {{ partition_time_window('occurred_at') }}
),

visits as (
    select tenant_id, household_key, occurred_at, vanity_url
    from {{ ref('stg_conversions__events') }}
    where event_type = 'vanity_visit' and {{ partition_time_window('occurred_at', before=max_window) }}
),

campaigns as (
    select
        *,
        flight_start::timestamp at time zone 'UTC' as flight_starts_at,
        (flight_end + 1 + attribution_window_days)::timestamp at time zone 'UTC' as credit_ends_at
    from {{ ref('stg_campaigns__campaigns') }}
),

codes as materialized (
    -- the window's orders' own codes, through the events' primary key (not every order's codes),
    -- looked up once per order before any campaign is joined
    select conversions.event_key, codes.code
    from conversions
    cross join lateral (
        select codes.code from {{ ref('stg_conversions__discount_codes') }} as codes
        where codes.tenant_id = conversions.tenant_id and codes.source = conversions.source
            and codes.event_id = conversions.event_id
        offset 0
    ) as codes
),

promo as (
    select distinct on (conversions.event_key)
        conversions.event_key, campaigns.campaign_id
    from conversions
    inner join codes on codes.event_key = conversions.event_key
    inner join {{ ref('int_campaign_match_keys') }} as keys
        on keys.tenant_id = conversions.tenant_id and keys.key_type = 'promo_code' and keys.key_value = codes.code
    inner join campaigns
        on campaigns.tenant_id = keys.tenant_id
        and campaigns.campaign_id = keys.campaign_id
        and campaigns.sponsor_id = conversions.sponsor_id
        and conversions.occurred_at >= campaigns.flight_starts_at
        and conversions.occurred_at < campaigns.credit_ends_at
    order by conversions.event_key, campaigns.campaign_id
),

vanity as (
    select distinct on (conversions.event_key)
        conversions.event_key, campaigns.campaign_id
    from conversions
    inner join visits
        on visits.tenant_id = conversions.tenant_id
        and visits.household_key = conversions.household_key
        and visits.occurred_at <= conversions.occurred_at
    inner join {{ ref('int_campaign_match_keys') }} as keys
        on keys.tenant_id = conversions.tenant_id and keys.key_type = 'vanity_url' and keys.key_value = visits.vanity_url
    inner join campaigns
        on campaigns.tenant_id = keys.tenant_id
        and campaigns.campaign_id = keys.campaign_id
        and campaigns.sponsor_id = conversions.sponsor_id
        and visits.occurred_at >= campaigns.flight_starts_at
        and conversions.occurred_at < campaigns.credit_ends_at
        and conversions.occurred_at < visits.occurred_at + make_interval(days => campaigns.attribution_window_days)
    order by conversions.event_key, visits.occurred_at desc, campaigns.campaign_id
),

utm as (
    select distinct on (conversions.event_key)
        conversions.event_key, campaigns.campaign_id
    from conversions
    inner join campaigns
        on campaigns.tenant_id = conversions.tenant_id
        and campaigns.sponsor_id = conversions.sponsor_id
        and campaigns.utm_campaign = conversions.utm_campaign
        and conversions.occurred_at >= campaigns.flight_starts_at
        and conversions.occurred_at < campaigns.credit_ends_at
    order by conversions.event_key, campaigns.campaign_id
)

select
    conversions.event_key as conversion_id,
    conversions.tenant_id,
    conversions.source,
    conversions.event_id,
    conversions.sponsor_id,
    conversions.event_type,
    conversions.occurred_at as converted_at,
    (conversions.occurred_at at time zone 'UTC')::date as conversion_date,
    conversions.household_key,
    coalesce(conversions.household_key, conversions.event_key) as attribution_key,
    conversions.ip_datacenter,
    conversions.net_revenue,
    conversions.gross_revenue,
    conversions.refunded_amount,
    conversions.currency,
    coalesce(promo.campaign_id, utm.campaign_id, vanity.campaign_id) as deterministic_campaign_id,
    case
        when promo.campaign_id is not null then 'promo_code'
        when utm.campaign_id is not null then 'utm'
        when vanity.campaign_id is not null then 'vanity_url'
    end as deterministic_match,
    conversions.ingested_at
from conversions
left join promo on promo.event_key = conversions.event_key
left join vanity on vanity.event_key = conversions.event_key
left join utm on utm.event_key = conversions.event_key

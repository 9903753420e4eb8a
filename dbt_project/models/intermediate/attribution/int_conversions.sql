{{ config(materialized='table',
          post_hook=["create index if not exists {{ this.name }}_household_idx on {{ this }} (tenant_id, household_key)",
                     "create index if not exists {{ this.name }}_key_idx on {{ this }} (attribution_key)"]) }}
-- One row per conversion (shop order, pixel purchase or lead) with its deterministic match, if
-- any. Deterministic signals, in order of precedence, each only within the campaign's flight
-- plus its attribution window and only for the sponsor's own campaigns:
--   promo_code  the order used one of the campaign's codes (case-insensitive, exact);
--   vanity_url  the household visited the campaign's vanity URL before converting, within
--               the window (the latest such visit wins);
--   utm         the conversion landed with the campaign's utm_campaign.
-- `attribution_key` groups the rows an incremental attribution run recomputes together: the
-- household, or the conversion itself when it has no address.
with events as (
    select * from {{ ref('stg_conversions__events') }}
),

conversions as (
    select * from events where is_conversion
),

campaigns as (
    select
        *,
        flight_start::timestamp at time zone 'UTC' as flight_starts_at,
        (flight_end + 1 + attribution_window_days)::timestamp at time zone 'UTC' as credit_ends_at
    from {{ ref('stg_campaigns__campaigns') }}
),

promo as (
    select distinct on (conversions.event_key)
        conversions.event_key, campaigns.campaign_id
    from conversions
    inner join {{ ref('stg_conversions__discount_codes') }} as codes on codes.event_key = conversions.event_key
    inner join {{ ref('stg_campaigns__match_keys') }} as keys
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
    inner join events as visits
        on visits.tenant_id = conversions.tenant_id
        and visits.household_key = conversions.household_key
        and visits.event_type = 'vanity_visit'
        and visits.occurred_at <= conversions.occurred_at
    inner join {{ ref('stg_campaigns__match_keys') }} as keys
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
    coalesce(promo.campaign_id, vanity.campaign_id, utm.campaign_id) as deterministic_campaign_id,
    case
        when promo.campaign_id is not null then 'promo_code'
        when vanity.campaign_id is not null then 'vanity_url'
        when utm.campaign_id is not null then 'utm'
    end as deterministic_match,
    conversions.ingested_at
from conversions
left join promo on promo.event_key = conversions.event_key
left join vanity on vanity.event_key = conversions.event_key
left join utm on utm.event_key = conversions.event_key

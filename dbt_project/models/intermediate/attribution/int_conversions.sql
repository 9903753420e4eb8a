{{ config(indexes=[{'columns': ['tenant_id', 'household_key']}, {'columns': ['attribution_key']}],
          materialized='incremental', incremental_strategy='append',
          pre_hook=["{{ hash_joins_only() }}",
                    "{% if is_incremental() %}{{ delete_batch('pg_temp.' ~ this.name ~ '__batch', 'attribution_key') }}{% endif %}"]) }}
-- One row per conversion (shop order, pixel purchase or lead) with its deterministic match, if
-- any. Deterministic signals, in order of precedence, each only from the campaign's flight
-- start to its flight end + attribution window and only for the sponsor's own campaigns (ties
-- go to the lowest campaign id):
--   promo_code  the order used one of the campaign's codes (case-insensitive, exact);
--   utm         the conversion landed with the campaign's utm_campaign;
--   vanity_url  the household visited the campaign's vanity URL during that period before
--               converting, within the window (the latest such visit wins).
-- `attribution_key` groups what is recomputed together: the household, or the conversion
-- itself when it has no address. Incremental by attribution key: a run recomputes the keys
-- with events loaded since its last run (or up to var attribution_reprocess_minutes before it,
-- for loads that committed late), and every key when campaigns changed.
{% if is_incremental() %}
{% set events_rel = source('campaigns', 'attribution_events') %}
{% set batch = create_batch_table(this.name ~ '__batch', "
    with watermark as (
        select coalesce(max(events_loaded_at), '-infinity')
                   - make_interval(mins => " ~ var('attribution_reprocess_minutes') ~ ") as events_loaded_at,
               coalesce(max(campaigns_loaded_at), '-infinity') as campaigns_loaded_at
        from " ~ this ~ "
    ),
    campaigns_changed as (
        select coalesce(max(ingested_at) > (select campaigns_loaded_at from watermark), false) as changed
        from " ~ ref('stg_campaigns__campaigns') ~ "
    )
    select distinct tenant_id, ip_prefix_hash as household_key,
           coalesce(ip_prefix_hash, md5(tenant_id || '|' || source || '|' || event_id)) as attribution_key,
           case when ip_prefix_hash is null then source end as source,
           case when ip_prefix_hash is null then event_id end as event_id
    from " ~ events_rel ~ "
    where _ingested_at > (select events_loaded_at from watermark)
        or (select changed from campaigns_changed)") %}
{% endif %}
with events as (
    {% if is_incremental() %}
    -- a household's events through the index on (tenant_id, ip_prefix_hash); an event without an
    -- address through the primary key (an `or` of the two would use neither index)
    select events.*
    from {{ batch }} as keys
    cross join lateral (
        select * from {{ ref('stg_conversions__events') }} as rows
        where rows.tenant_id = keys.tenant_id and rows.household_key = keys.household_key
        offset 0
    ) as events
    where keys.household_key is not null
    union all
    select events.*
    from {{ batch }} as keys
    cross join lateral (
        select * from {{ ref('stg_conversions__events') }} as rows
        where rows.tenant_id = keys.tenant_id and rows.source = keys.source and rows.event_id = keys.event_id
            and rows.household_key is null
        offset 0
    ) as events
    where keys.household_key is null
    {% else %}
    select * from {{ ref('stg_conversions__events') }}
    {% endif %}
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

codes as {% if is_incremental() %}materialized {% endif %}(
    select conversions.event_key, codes.code
    from conversions
    {% if is_incremental() %}
    -- the batch's orders' own codes, through the events' primary key (not every order's codes),
    -- looked up once per order before any campaign is joined
    cross join lateral (
        select codes.code from {{ ref('stg_conversions__discount_codes') }} as codes
        where codes.tenant_id = conversions.tenant_id and codes.source = conversions.source
            and codes.event_id = conversions.event_id
        offset 0
    ) as codes
    {% else %}
    inner join {{ ref('stg_conversions__discount_codes') }} as codes on codes.event_key = conversions.event_key
    {% endif %}
),

promo as (
    select distinct on (conversions.event_key)
        conversions.event_key, campaigns.campaign_id
    from conversions
    inner join codes on codes.event_key = conversions.event_key
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
    coalesce(promo.campaign_id, utm.campaign_id, vanity.campaign_id) as deterministic_campaign_id,
    case
        when promo.campaign_id is not null then 'promo_code'
        when utm.campaign_id is not null then 'utm'
        when vanity.campaign_id is not null then 'vanity_url'
    end as deterministic_match,
    conversions.ingested_at,
    (select max(ingested_at) from {{ ref('stg_conversions__events') }}) as events_loaded_at,
    (select max(ingested_at) from {{ ref('stg_campaigns__campaigns') }}) as campaigns_loaded_at
from conversions
left join promo on promo.event_key = conversions.event_key
left join vanity on vanity.event_key = conversions.event_key
left join utm on utm.event_key = conversions.event_key

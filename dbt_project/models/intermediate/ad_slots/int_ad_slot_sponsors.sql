{#- A table: it reads several staging views (a view on two views deadlocks parallel rebuilds). -#}
{{ config(materialized='table', indexes=[{'columns': ['tenant_id', 'episode_id']}]) }}
-- One row per detected ad slot or show-notes mention (stg_ad_detection__ad_slots) with the
-- sponsor of the tenant's sponsor list it names, if any (`sponsor_match`, strongest first):
--   domain      the slot's domain (or its vanity URL's host) is the sponsor website's domain
--               (lower case, without scheme, "www.", port or path: macros/sponsor_domain.sql);
--   vanity_url  the slot's vanity URL is one its campaigns name (stg_campaigns__match_keys);
--   promo_code  the slot's promo code is one its campaigns name (case-insensitive).
-- Only the keys campaigns name themselves are read here, never the keys detected from slots
-- (int_campaign_match_keys), which are built from this match. A slot naming two sponsors'
-- keys goes to the strongest match, then the lowest sponsor id.
with slots as (
    select * from {{ ref('stg_ad_detection__ad_slots') }}
),

sponsors as (
    select tenant_id, sponsor_id, sponsor_name, {{ sponsor_domain('website') }} as website_domain
    from {{ ref('stg_campaigns__sponsors') }}
),

campaign_keys as (
    select distinct keys.tenant_id, keys.key_type, keys.key_value, campaigns.sponsor_id
    from {{ ref('stg_campaigns__match_keys') }} as keys
    inner join {{ ref('stg_campaigns__campaigns') }} as campaigns
        on campaigns.tenant_id = keys.tenant_id and campaigns.campaign_id = keys.campaign_id
),

candidates as (
    select slots.ad_slot_id, sponsors.sponsor_id, 1 as strength, 'domain' as sponsor_match
    from slots
    inner join sponsors
        on sponsors.tenant_id = slots.tenant_id
        and sponsors.website_domain = coalesce(slots.sponsor_domain, {{ sponsor_domain('slots.vanity_url') }})
    union all
    select slots.ad_slot_id, campaign_keys.sponsor_id, 2, 'vanity_url'
    from slots
    inner join campaign_keys
        on campaign_keys.tenant_id = slots.tenant_id and campaign_keys.key_type = 'vanity_url'
        and campaign_keys.key_value = slots.vanity_url
    union all
    select slots.ad_slot_id, campaign_keys.sponsor_id, 3, 'promo_code'
    from slots
    inner join campaign_keys
        on campaign_keys.tenant_id = slots.tenant_id and campaign_keys.key_type = 'promo_code'
        and campaign_keys.key_value = slots.promo_code_key
),

matched as (
    select distinct on (ad_slot_id) ad_slot_id, sponsor_id, sponsor_match
    from candidates
    order by ad_slot_id, strength, sponsor_id
)

select
    slots.*,
    matched.sponsor_id,
    sponsors.sponsor_name,
    matched.sponsor_match
from slots
left join matched on matched.ad_slot_id = slots.ad_slot_id
left join sponsors on sponsors.tenant_id = slots.tenant_id and sponsors.sponsor_id = matched.sponsor_id

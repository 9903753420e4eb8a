{#- A table: read by every conversion run, built from several staging views. -#}
{{ config(materialized='table', indexes=[{'columns': ['tenant_id', 'key_type', 'key_value']}]) }}
-- The keys that tie a conversion to a campaign deterministically, one row each (`key_source`):
--   campaign  the promo codes and vanity URLs the campaign names (stg_campaigns__match_keys);
--   detected  a campaign that names no promo code (resp. no vanity URL) gets the promo codes
--             (resp. vanity URLs) the ad-slot detector read in the episodes its placements
--             cover, in reads and show notes of the campaign's own sponsor
--             (int_ad_slot_sponsors). A detected key another campaign of the tenant names
--             itself stays that campaign's.
-- Normalized as stg_campaigns__match_keys: promo codes lower case, vanity URLs as
-- normalize_vanity_url.
with named as (
    select tenant_id, campaign_id, key_type, key_value
    from {{ ref('stg_campaigns__match_keys') }}
),

placed_slots as (
    -- the episodes each campaign is placed in (a placement without a guid: every episode of its
    -- show, as int_placement_episodes covers them; read here from the placements themselves, not
    -- from that model's byte positions, which depend on rules keys do not)
    select
        placements.tenant_id,
        placements.campaign_id,
        slots.promo_code_key,
        slots.vanity_url,
        slots.ingested_at
    from {{ ref('stg_campaigns__placements') }} as placements
    inner join {{ ref('stg_campaigns__campaigns') }} as campaigns
        on campaigns.tenant_id = placements.tenant_id and campaigns.campaign_id = placements.campaign_id
    inner join {{ ref('stg_rss__episodes') }} as episodes
        on episodes.tenant_id = placements.tenant_id
        and episodes.feed_url = placements.feed_url
        and (placements.episode_guid is null or episodes.guid = placements.episode_guid)
    inner join {{ ref('int_ad_slot_sponsors') }} as slots
        on slots.tenant_id = episodes.tenant_id
        and slots.episode_id = episodes.episode_id
        and slots.sponsor_id = campaigns.sponsor_id
),

detected as (
    -- detected_at: when the newest slot saying the key was stored (the partition sensor requests
    -- the campaign's conversion days again for keys detected after they were built)
    select tenant_id, campaign_id, key_type, key_value, max(ingested_at) as detected_at
    from (
        select tenant_id, campaign_id, 'promo_code' as key_type, promo_code_key as key_value, ingested_at
        from placed_slots
        where promo_code_key is not null
        union all
        select tenant_id, campaign_id, 'vanity_url', vanity_url, ingested_at
        from placed_slots
        where vanity_url is not null
    ) as keys
    group by 1, 2, 3, 4
)

select tenant_id, campaign_id, key_type, key_value, 'campaign' as key_source, null::timestamptz as detected_at
from named
union all
select detected.tenant_id, detected.campaign_id, detected.key_type, detected.key_value, 'detected', detected.detected_at
from detected
where not exists (  -- the campaign names keys of this type: only those
        select 1 from named
        where named.tenant_id = detected.tenant_id and named.campaign_id = detected.campaign_id
            and named.key_type = detected.key_type)
    and not exists (  -- another campaign names this key
        select 1 from named
        where named.tenant_id = detected.tenant_id and named.key_type = detected.key_type
            and named.key_value = detected.key_value)

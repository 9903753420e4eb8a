-- One row per detected ad slot or show-notes sponsor mention (raw.ad_slots), keyed like the
-- episode it is in (episode_id as stg_rss__episodes makes it). Sponsor keys are normalized for
-- matching: the domain as sponsor_domain() makes it, the vanity URL as normalize_vanity_url(),
-- the promo code lower case in promo_code_key (promo_code keeps the code as read).
-- `sponsor_key` names the advertiser across slots: its domain, else its vanity URL's host, else
-- its brand in lower case (null for a break that names no sponsor).
with source as (
    select * from {{ source('ad_detection', 'ad_slots') }}
),

renamed as (
    select
        md5(tenant_id || '|' || feed_url || '|' || guid || '|' || slot_index::text) as ad_slot_id,
        {{ rss_episode_id() }} as episode_id,
        {{ rss_podcast_id() }} as podcast_id,
        tenant_id,
        feed_url,
        guid,
        slot_index,
        start_seconds,
        end_seconds,
        case when end_seconds >= start_seconds then end_seconds - start_seconds end as duration_seconds,
        kind,
        position,
        start_seconds is not null as is_timed,
        nullif(btrim(sponsor_brand), '') as sponsor_brand,
        {{ sponsor_domain('sponsor_domain') }} as sponsor_domain,
        nullif({{ normalize_vanity_url('vanity_url') }}, '') as vanity_url,
        nullif(btrim(promo_code), '') as promo_code,
        nullif(lower(btrim(promo_code)), '') as promo_code_key,
        coalesce(
            {{ sponsor_domain('sponsor_domain') }},
            {{ sponsor_domain('vanity_url') }},
            nullif(lower(btrim(sponsor_brand)), '')
        ) as sponsor_key,
        confidence,
        evidence,
        evidence_sources,
        detector_version,
        _ingested_at as ingested_at,
        _batch_id as batch_id
    from source
)

select * from renamed

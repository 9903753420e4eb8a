{{ config(indexes=[{'columns': ['tenant_id', 'episode_id']}, {'columns': ['podcast_id', 'published_date']}]) }}
-- One row per ad slot detected in an episode's audio (a host-read or produced sponsor read, an
-- ad break), with its episode and show, its timing, its sponsor as read and the sponsor of the
-- tenant's sponsor list it matches (int_ad_slot_sponsors), and how it was found: by the ad-slot
-- detector, or a Simplecast ad marker (a break at the marker's offset; int_ad_slots).
-- Show-notes mentions (kind show_notes: a sponsor named in the episode's description, no
-- timing or position) are not slots of the audio and are left out; mart_sponsor_mentions_monthly
-- counts them.
with slots as (
    select * from {{ ref('int_ad_slots') }}
    where kind <> 'show_notes'
),

episodes as (
    select episode_id, title, published_at_utc from {{ ref('dim_episodes') }}
),

podcasts as (
    select podcast_id, title from {{ ref('dim_podcasts') }}
)

select
    slots.ad_slot_id,
    slots.tenant_id,
    slots.podcast_id,
    podcasts.title as podcast_title,
    slots.episode_id,
    slots.feed_url,
    slots.guid,
    episodes.title as episode_title,
    episodes.published_at_utc::date as published_date,
    slots.slot_index,
    slots.slot_source,
    slots.kind,
    slots.position,
    slots.start_seconds::numeric as start_seconds,
    slots.end_seconds::numeric as end_seconds,
    slots.duration_seconds::numeric as duration_seconds,
    slots.sponsor_brand,
    slots.sponsor_domain,
    slots.vanity_url,
    slots.promo_code,
    slots.sponsor_key,
    slots.sponsor_id,
    slots.sponsor_name,
    slots.sponsor_match,
    slots.confidence::numeric as confidence,
    slots.evidence,
    slots.evidence_sources,
    slots.detector_version,
    slots.ingested_at
from slots
left join episodes on episodes.episode_id = slots.episode_id
left join podcasts on podcasts.podcast_id = slots.podcast_id

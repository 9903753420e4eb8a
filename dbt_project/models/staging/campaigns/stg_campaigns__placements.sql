select
    tenant_id,
    placement_id,
    campaign_id,
    btrim(feed_url) as feed_url,
    nullif(btrim(episode_guid), '') as episode_guid,
    position,
    insertion,
    start_date,
    end_date,
    ad_offset_seconds,
    ad_duration_seconds,
    _ingested_at as ingested_at
from {{ source('campaigns', 'placements') }}

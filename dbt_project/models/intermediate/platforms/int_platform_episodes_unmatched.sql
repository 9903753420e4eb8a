-- The platform episodes no feed episode was found for (API-only episodes such as private
-- bonus episodes, shows whose feed is not ingested, episodes too different to match), with the
-- reason: reported here, kept everywhere (their metrics stay in the platform facts).
select
    platform_episode_key,
    platform,
    tenant_id,
    source_show_id,
    platform_episode_id,
    unified_episode_id,
    unmatched_reason,
    show_podcast_id,
    guid,
    title,
    enclosure_url,
    published_at,
    status
from {{ ref('int_episodes_unified') }}
where match_method = 'unmatched'

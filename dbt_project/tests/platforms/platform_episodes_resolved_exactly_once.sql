{{ config(meta={"dagster": {"ref": {"name": "int_episodes_unified"}}}) }}
-- Reconciliation: every platform episode appears exactly once in int_episodes_unified, and
-- nothing else does. Returns the keys that are missing, doubled or unknown.
with platform_episodes as (
    select platform_episode_key, count(*) as listed from {{ ref('int_platform_episodes') }} group by 1
),

resolved as (
    select platform_episode_key, count(*) as resolved from {{ ref('int_episodes_unified') }} group by 1
)

select
    coalesce(platform_episodes.platform_episode_key, resolved.platform_episode_key) as platform_episode_key,
    coalesce(listed, 0) as listed,
    coalesce(resolved, 0) as resolved
from platform_episodes
full outer join resolved on resolved.platform_episode_key = platform_episodes.platform_episode_key
where coalesce(listed, 0) <> 1 or coalesce(resolved, 0) <> 1

{{ config(indexes=[{'columns': ['group_key']}, {'columns': ['download_date']}, {'columns': ['episode_id']}, {'columns': ['counted_at']}],
          materialized='incremental', incremental_strategy='append',
    pre_hook="{{ replace_batch_hook('group_key', ['download_date', 'episode_id'], 'pg_temp.downloads__groups') }}",
    post_hook=["{{ create_removed_rows_table(['download_date', 'episode_id']) }}"]
) }}
-- One row per IAB v2.3 download: a measurement window of one listener (IP prefix + user
-- agent) on one episode whose reassembled bytes cover the threshold. Counted on the UTC day
-- the window opened. Incremental: the groups whose requests were re-evaluated are replaced
-- whole (the pre-hook also removes downloads of groups that no longer count at all, and
-- records the days and episodes of the removed rows for the rollups; see removed_rows).
-- depends_on: {{ ref('int_listener_requests_screened') }}
{% if is_incremental() %}
{% set batch_groups = create_batch_table('downloads__groups', "
    with watermark as (
        select coalesce(max(refreshed_at), '-infinity') as refreshed_at from " ~ this ~ "
    )
    select group_key from " ~ ref('int_downloads_iab_filtered') ~ "
    where refreshed_at > (select refreshed_at from watermark)
    union
    select group_key from " ~ removed_rows_relation(ref('int_listener_requests_screened')) ~ "
    where removed_at > (select refreshed_at from watermark)") %}
{% endif %}
with requests as (
    select requests.*
    {% if is_incremental() %}
    from {{ join_batch(batch_groups, ref('int_downloads_iab_filtered'), ['group_key'], 'requests') }}
    {% else %}
    from {{ ref('int_downloads_iab_filtered') }} as requests
    {% endif %}
    where requests.exclusion_reason is null
),

downloads as (
    select
        window_id as download_id,
        min(group_key) as group_key,
        max(refreshed_at) as refreshed_at,
        min(tenant_id) as tenant_id,
        min(episode_id) as episode_id,
        min(podcast_id) as podcast_id,
        min(listener_ip_key) as listener_ip_key,
        min(user_agent) as user_agent,
        md5(min(listener_ip_key) || '|' || min(user_agent)) as listener_id,
        min(agent_name) as app_name,
        min(agent_type) as agent_type,
        min(device_category) as device_category,
        min(platform) as platform,
        min(country_code) as country_code,
        min(window_start) as downloaded_at,
        (min(window_start) at time zone 'UTC')::date as download_date,
        max(bytes_covered) as bytes_covered,
        max(threshold_bytes) as threshold_bytes,
        count(*) as request_count,
        now() as counted_at
    from requests
    group by window_id
)

select * from downloads

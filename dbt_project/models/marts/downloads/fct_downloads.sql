{{ config(materialized='table') }}
-- One row per IAB v2.3 download: a measurement window of one listener (IP prefix + user
-- agent) on one episode whose reassembled bytes cover the threshold. Counted on the UTC day
-- the window opened.
with requests as (
    select * from {{ ref('int_downloads_iab_filtered') }}
    where exclusion_reason is null
),

downloads as (
    select
        window_id as download_id,
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
        count(*) as request_count
    from requests
    group by window_id
)

select * from downloads

{{ config(indexes=[{'columns': ['download_date']}, {'columns': ['episode_id', 'download_date']}, {'columns': ['download_id']}],
          tags=['partitioned'], materialized='incremental', incremental_strategy='append',
          pre_hook=["{{ delete_partition_window('download_date') }}"],
          post_hook=["{{ fact_hypertable('download_date', '7 days') }}"]) }}
-- One row per IAB v2.3 download: a measurement window of one listener (IP prefix + user
-- agent) on one episode whose reassembled bytes cover the threshold. Counted on the UTC day
-- the window opened. Daily-partitioned by that day (`download_date`): a run replaces its days'
-- downloads with the counted windows int_downloads_iab_filtered holds for them.
with requests as (
    select requests.*
    from {{ ref('int_downloads_iab_filtered') }} as requests
    where requests.exclusion_reason is null and {{ partition_window('requests.window_date') }}
),

downloads as (
    select
        window_id as download_id,
        min(group_key) as group_key,
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

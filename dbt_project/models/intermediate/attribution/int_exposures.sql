{{ config(indexes=[{'columns': ['exposure_date']}, {'columns': ['tenant_id', 'household_key']},
                   {'columns': ['tenant_id', 'campaign_id']}],
          tags=['partitioned'], materialized='incremental', incremental_strategy='append',
          pre_hook=["{{ sort_memory() }}", "{{ delete_partition_window('exposure_date') }}"]) }}
-- One row per ad delivered: an IAB download (fct_downloads: never an invalid one) of an episode
-- a placement covers, on a day within the placement's dates and the campaign's flight, whose
-- bytes reach the placement's delivery threshold (int_placement_episodes). The household is the
-- listener's hashed IP prefix. Bytes covered are the reassembled bytes of the download window,
-- counted from the start of the file.
-- Partitioned by day (`exposure_date`, the download's day; docs/PARTITIONED_DBT.md): a run
-- replaces the days of its window from the downloads of those days. A changed placement or
-- campaign changes the days it covers: those partitions are run again (a backfill).
with downloads as (
    select * from {{ ref('fct_downloads') }} where {{ partition_window('download_date') }}
),

placements as (
    select * from {{ ref('int_placement_episodes') }} where episode_id is not null
),

exposures as (
    select
        md5(downloads.download_id || '|' || placements.placement_id) as exposure_id,
        downloads.download_id,
        placements.tenant_id,
        placements.sponsor_id,
        placements.campaign_id,
        placements.placement_id,
        placements.podcast_id,
        placements.episode_id,
        placements.position,
        placements.insertion,
        downloads.listener_ip_key as household_key,
        downloads.listener_id,
        downloads.user_agent,
        downloads.downloaded_at as exposed_at,
        downloads.download_date as exposure_date,
        downloads.bytes_covered,
        placements.delivery_threshold_bytes
    from downloads
    inner join placements
        on placements.tenant_id = downloads.tenant_id
        and placements.episode_id = downloads.episode_id
        and downloads.download_date between placements.active_from and placements.active_to
    where downloads.bytes_covered >= placements.delivery_threshold_bytes
)

select * from exposures

{{ config(indexes=[{'columns': ['exposure_date']}, {'columns': ['tenant_id', 'household_key']}, {'columns': ['counted_at']},
                   {'columns': ['tenant_id', 'campaign_id']}, {'columns': ['computed_at']}],
          materialized='incremental', incremental_strategy='append',
          pre_hook=["{{ sort_memory() }}", "{{ reset_run_log() }}",
                    "{{ replace_batch_hook('exposure_date', ['tenant_id', 'household_key', 'exposure_date']) }}"],
          post_hook=["{{ create_removed_rows_table(['tenant_id', 'household_key', 'exposure_date']) }}",
                     "{{ record_read(['downloads_read_up_to', 'placements_loaded_at']) }}"]) }}
-- One row per ad delivered: an IAB download (fct_downloads: never an invalid one) of an episode
-- a placement covers, on a day within the placement's dates and the campaign's flight, whose
-- bytes reach the placement's delivery threshold (int_placement_episodes). The household is the
-- listener's hashed IP prefix. Bytes covered are the reassembled bytes of the download window,
-- counted from the start of the file.
-- Incremental by day: a run replaces the days with downloads counted or removed since its last
-- run; when placements or campaigns changed, every day. What a run read up to is in its run log
-- (`__runs`): most downloads carry no ad, so the exposures' own stamps would lag behind (between
-- two campaigns, every run would read again every day since the last ad). The households and
-- days of the rows it replaces are kept in int_exposures__removed for the models downstream
-- (see removed_rows).
{% do read_watermarks({'downloads_read_up_to': last_change(ref('fct_downloads'), 'counted_at'),
                       'placements_loaded_at': '(select max(loaded_at) from ' ~ ref('int_placement_episodes') ~ ')'}) %}
{% if is_incremental() %}
{% set days = logged_rows_batch(ref('fct_downloads'), 'download_date', 'counted_at', 'downloads_read_up_to',
                                column='exposure_date', also="
    select distinct download_date from " ~ ref('fct_downloads') ~ "
    where (select placements_loaded_at from pg_temp." ~ this.name ~ "__read) > " ~ last_run('placements_loaded_at')) %}
{% endif %}
with downloads as (
    {% if is_incremental() %}
    select downloads.*
    from {{ days }} as batch
    cross join lateral (
        select * from {{ ref('fct_downloads') }} as rows where rows.download_date = batch.exposure_date offset 0
    ) as downloads
    {% else %}
    select * from {{ ref('fct_downloads') }}
    {% endif %}
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
        placements.delivery_threshold_bytes,
        downloads.counted_at,
        now() as computed_at
    from downloads
    inner join placements
        on placements.tenant_id = downloads.tenant_id
        and placements.episode_id = downloads.episode_id
        and downloads.download_date between placements.active_from and placements.active_to
    where downloads.bytes_covered >= placements.delivery_threshold_bytes
)

select * from exposures

{{ config(indexes=[{'columns': ['exposure_date']}, {'columns': ['tenant_id', 'household_key']}, {'columns': ['counted_at']},
                   {'columns': ['tenant_id', 'campaign_id']}, {'columns': ['computed_at']},
                   {'columns': ['placements_loaded_at']}],
          materialized='incremental', incremental_strategy='append',
          pre_hook=["{{ sort_memory() }}", "{{ replace_batch_hook('exposure_date', ['tenant_id', 'household_key', 'exposure_date']) }}"],
          post_hook=["{{ create_removed_rows_table(['tenant_id', 'household_key', 'exposure_date']) }}"]) }}
-- One row per ad delivered: an IAB download (fct_downloads: never an invalid one) of an episode
-- a placement covers, on a day within the placement's dates and the campaign's flight, whose
-- bytes reach the placement's delivery threshold (int_placement_episodes). The household is the
-- listener's hashed IP prefix. Bytes covered are the reassembled bytes of the download window,
-- counted from the start of the file.
-- Incremental by day: a run replaces the days with downloads counted or removed since its last
-- run; when placements or campaigns changed, every day. The households and days of the rows it
-- replaces are kept in int_exposures__removed for the models downstream (see removed_rows).
{% if is_incremental() %}
{% set downloads_rel = ref('fct_downloads') %}
{% set days = create_batch_table(this.name ~ '__batch', "
    with watermark as (
        -- both read through their indexes (a scan of every exposure took seconds at 10 M)
        select coalesce(max(counted_at), '-infinity') as counted_at,
               coalesce(max(placements_loaded_at), '-infinity') as placements_loaded_at
        from " ~ this ~ "
    ),
    placements_changed as (
        select coalesce(max(loaded_at) > (select placements_loaded_at from watermark), false) as changed
        from " ~ ref('int_placement_episodes') ~ "
    )
    select download_date as exposure_date from " ~ downloads_rel ~ "
    where counted_at > (select counted_at from watermark)
    union
    select download_date from " ~ removed_rows_relation(downloads_rel) ~ "
    where removed_at > (select counted_at from watermark)
    union
    select distinct download_date from " ~ downloads_rel ~ " where (select changed from placements_changed)") %}
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
        now() as computed_at,
        (select max(loaded_at) from {{ ref('int_placement_episodes') }}) as placements_loaded_at
    from downloads
    inner join placements
        on placements.tenant_id = downloads.tenant_id
        and placements.episode_id = downloads.episode_id
        and downloads.download_date between placements.active_from and placements.active_to
    where downloads.bytes_covered >= placements.delivery_threshold_bytes
)

select * from exposures

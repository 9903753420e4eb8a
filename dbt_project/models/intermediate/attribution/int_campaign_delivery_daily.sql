{{ config(indexes=[{'columns': ['exposure_date']}, {'columns': ['tenant_id', 'campaign_id']}],
          tags=['partitioned'], materialized='incremental', incremental_strategy='append',
          pre_hook=["{{ sort_memory() }}", "{{ delete_partition_window('exposure_date') }}"]) }}
-- Ads delivered per campaign and day, at two grains (`grain`):
--   'placement'  per show (podcast_id) and ad position: impressions, households that day;
--   'campaign'   all the campaign's shows and positions: impressions, distinct households that
--                day (a household reached by two shows counts once).
-- The ROI marts and the daily performance fact read these few rows instead of every ad.
-- Partitioned by day (`exposure_date`): a run replaces the days of its window from the
-- exposures of those days.
with exposures as (
    select * from {{ ref('int_exposures') }} where {{ partition_window('exposure_date') }}
),

rolled_up as (
    select
        tenant_id,
        sponsor_id,
        campaign_id,
        exposure_date,
        case when grouping(podcast_id, position) = 0 then 'placement' else 'campaign' end as grain,
        podcast_id,
        position,
        count(*) as impressions,
        count(distinct household_key) as households,
        min(exposed_at) as first_exposed_at,
        max(exposed_at) as last_exposed_at
    from exposures
    group by grouping sets (
        (tenant_id, sponsor_id, campaign_id, exposure_date, podcast_id, position),
        (tenant_id, sponsor_id, campaign_id, exposure_date)
    )
)

select * from rolled_up

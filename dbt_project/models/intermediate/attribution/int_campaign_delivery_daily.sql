{{ config(indexes=[{'columns': ['exposure_date']}, {'columns': ['tenant_id', 'campaign_id']}],
          materialized='incremental', incremental_strategy='append',
          pre_hook=["{{ sort_memory() }}",
                    "{% if is_incremental() %}{{ delete_batch('pg_temp.' ~ this.name ~ '__batch', 'exposure_date') }}{% endif %}"]) }}
-- Ads delivered per campaign and day, at two grains (`grain`):
--   'placement'  per show (podcast_id) and ad position: impressions, households that day;
--   'campaign'   all the campaign's shows and positions: impressions, distinct households that
--                day (a household reached by two shows counts once).
-- The ROI marts and the daily performance fact read these few rows instead of every ad.
-- Incremental by day: a run replaces the days int_exposures recomputed or removed rows of
-- since its last run (watermark: the newest int_exposures change it has taken in).
{% set exposures = ref('int_exposures') %}
{% if is_incremental() %}
{% set batch = changed_rows_batch(exposures, 'exposure_date', 'computed_at', 'exposures_changed_at') %}
{% endif %}
with exposures as (
    {% if is_incremental() %}
    select exposures.* from {{ join_batch(batch, exposures, ['exposure_date'], 'exposures') }}
    {% else %}
    select * from {{ exposures }}
    {% endif %}
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

select rolled_up.*, {{ last_change(exposures, 'computed_at') }} as exposures_changed_at
from rolled_up

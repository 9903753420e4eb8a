{{ config(indexes=[{'columns': ['first_exposure_date']}],
          materialized='incremental', incremental_strategy='append',
          pre_hook="{% if is_incremental() %}{{ delete_batch('pg_temp.' ~ this.name ~ '__batch', 'first_exposure_date') }}{% endif %}") }}
-- Households a campaign reached for the first time, per day, at the two grains of
-- int_campaign_reach ('campaign'; 'placement': per show and position). A campaign's reach is
-- the sum over its days: the ROI marts read these few rows instead of every household.
-- Incremental by first day: a run recounts the days of the reach rows written or removed since
-- its last run (usually the newest day alone).
{% set reach = ref('int_campaign_reach') %}
{% if is_incremental() %}
{% set batch = changed_rows_batch(reach, 'first_exposure_date', 'exposures_changed_at', 'reach_changed_at') %}
{% endif %}
with reach as (
    {% if is_incremental() %}
    select reach.* from {{ join_batch(batch, reach, ['first_exposure_date'], 'reach') }}
    {% else %}
    select * from {{ reach }}
    {% endif %}
)

select
    tenant_id, sponsor_id, campaign_id, grain, podcast_id, position, first_exposure_date,
    count(*) as households,
    {{ last_change(reach, 'exposures_changed_at') }} as reach_changed_at
from reach
group by tenant_id, sponsor_id, campaign_id, grain, podcast_id, position, first_exposure_date

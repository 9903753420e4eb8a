{{ config(indexes=[{'columns': ['conversion_date']}, {'columns': ['tenant_id', 'campaign_id']}],
          materialized='incremental', incremental_strategy='append',
          pre_hook="{% if is_incremental() %}{{ delete_batch('pg_temp.' ~ this.name ~ '__batch', 'conversion_date') }}{% endif %}") }}
-- Credited conversions and revenue per campaign, attribution model, day and match type (the
-- rows of fct_attributed_conversions that credit a campaign, added up): what the ROI marts and
-- the daily performance fact read instead of every credited conversion.
-- Incremental by conversion day: a run replaces the days of the conversions fct_attributed_conversions
-- attributed or removed since its last run.
{% set credits = ref('fct_attributed_conversions') %}
{% if is_incremental() %}
{% set batch = changed_rows_batch(credits, 'conversion_date', 'attributed_at', 'credits_changed_at') %}
{% endif %}
with credits as (
    {% if is_incremental() %}
    select credits.* from {{ join_batch(batch, credits, ['conversion_date'], 'credits') }}
    {% else %}
    select * from {{ credits }}
    {% endif %}
)

select
    tenant_id,
    sponsor_id,
    campaign_id,
    attribution_model,
    conversion_date,
    match_type,
    sum(credited_share) as conversions,
    sum(credited_revenue) as revenue,
    {{ last_change(credits, 'attributed_at') }} as credits_changed_at
from credits
where campaign_id is not null
group by tenant_id, sponsor_id, campaign_id, attribution_model, conversion_date, match_type

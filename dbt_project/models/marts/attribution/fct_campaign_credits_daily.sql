{{ config(indexes=[{'columns': ['conversion_date']}, {'columns': ['tenant_id', 'campaign_id']}],
          tags=['partitioned'], materialized='incremental', incremental_strategy='append',
          pre_hook=["{{ delete_partition_window('conversion_date') }}"],
          post_hook=["{{ fact_hypertable('conversion_date', '90 days') }}"]) }}
-- Credited conversions and revenue per campaign, attribution model, day and match type (the
-- rows of fct_attributed_conversions that credit a campaign, added up): what the ROI marts and
-- the daily performance fact read instead of every credited conversion.
-- Partitioned by the conversion's UTC day (`conversion_date`): a run replaces the days of its
-- window from the credits of those days.
with credits as (
    select * from {{ ref('fct_attributed_conversions') }} where {{ partition_window('conversion_date') }}
)

select
    tenant_id,
    sponsor_id,
    campaign_id,
    attribution_model,
    conversion_date,
    match_type,
    sum(credited_share) as conversions,
    sum(credited_revenue) as revenue
from credits
where campaign_id is not null
group by tenant_id, sponsor_id, campaign_id, attribution_model, conversion_date, match_type

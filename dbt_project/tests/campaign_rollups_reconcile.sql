{{ config(meta={"dagster": {"ref": {"name": "mart_campaign_roi"}}}) }}
-- The rollups the ROI marts read agree with the rows they roll up, campaign by campaign:
-- impressions with int_exposures, households reached with its distinct households, credited conversions and
-- revenue with fct_attributed_conversions (each under every model).
with exposures as (
    select tenant_id, campaign_id, count(*) as impressions, count(distinct household_key) as households_reached
    from {{ ref('int_exposures') }}
    group by tenant_id, campaign_id
),

credits as (
    select tenant_id, campaign_id, attribution_model, sum(credited_share) as conversions,
           sum(credited_revenue) as revenue
    from {{ ref('fct_attributed_conversions') }}
    where campaign_id is not null
    group by tenant_id, campaign_id, attribution_model
),

rolled_up_credits as (
    select tenant_id, campaign_id, attribution_model, sum(conversions) as conversions, sum(revenue) as revenue
    from {{ ref('fct_campaign_credits_daily') }}
    group by tenant_id, campaign_id, attribution_model
)

select roi.tenant_id, roi.campaign_id, roi.attribution_model, 'delivery' as disagreement
from {{ ref('mart_campaign_roi') }} as roi
left join exposures on exposures.tenant_id = roi.tenant_id and exposures.campaign_id = roi.campaign_id
where roi.impressions <> coalesce(exposures.impressions, 0) or roi.households_reached <> coalesce(exposures.households_reached, 0)
union all
select coalesce(credits.tenant_id, rolled.tenant_id), coalesce(credits.campaign_id, rolled.campaign_id),
       coalesce(credits.attribution_model, rolled.attribution_model), 'credits'
from credits
full join rolled_up_credits as rolled
    on rolled.tenant_id = credits.tenant_id and rolled.campaign_id = credits.campaign_id
    and rolled.attribution_model = credits.attribution_model
where credits.conversions is distinct from rolled.conversions or credits.revenue is distinct from rolled.revenue

{{ config(meta={"dagster": {"ref": {"name": "mart_campaign_roi"}}}) }}
-- Costs reconcile with the contract: a flat campaign's cost to date is its fee × elapsed flight
-- days / flight days (the whole fee once the flight is over), a CPM campaign's impressions × CPM
-- / 1000 capped at the budget; never more than the contracted cost; and the daily costs add up
-- to the campaign's cost to date (to the cent).
with daily as (
    select tenant_id, campaign_id, sum(cost) as daily_cost
    from {{ ref('fct_campaign_performance_daily') }}
    group by tenant_id, campaign_id
)

select roi.campaign_id, roi.pricing_model, roi.cost, roi.contracted_cost, daily.daily_cost
from {{ ref('mart_campaign_roi') }} as roi
inner join {{ ref('stg_campaigns__campaigns') }} as campaigns
    on campaigns.tenant_id = roi.tenant_id and campaigns.campaign_id = roi.campaign_id
left join daily on daily.tenant_id = roi.tenant_id and daily.campaign_id = roi.campaign_id
where roi.is_selected_model and (
    roi.cost > roi.contracted_cost
    or (campaigns.pricing_model = 'flat'
        and roi.cost <> round(campaigns.flat_fee * roi.flight_days_elapsed / roi.flight_days, 2))
    or (campaigns.pricing_model = 'flat' and roi.is_flight_complete and roi.cost <> round(campaigns.flat_fee, 2))
    or (campaigns.pricing_model = 'cpm' and roi.cost <> round(least(campaigns.budget, roi.impressions * campaigns.cpm_rate / 1000), 2))
    or abs(coalesce(daily.daily_cost, 0) - roi.cost) > 0.01)

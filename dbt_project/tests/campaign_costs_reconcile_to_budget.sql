{{ config(meta={"dagster": {"ref": {"name": "mart_campaign_roi"}}}) }}
-- Costs reconcile to the campaign: a flat campaign costs its fee, a CPM campaign impressions ×
-- CPM / 1000 capped at the budget, never more than the budget; and the daily costs add up to
-- the campaign's cost (to the cent).
with daily as (
    select tenant_id, campaign_id, sum(cost) as daily_cost
    from {{ ref('fct_campaign_performance_daily') }}
    group by tenant_id, campaign_id
)

select roi.campaign_id, roi.pricing_model, roi.cost, roi.budget, daily.daily_cost
from {{ ref('mart_campaign_roi') }} as roi
inner join {{ ref('stg_campaigns__campaigns') }} as campaigns
    on campaigns.tenant_id = roi.tenant_id and campaigns.campaign_id = roi.campaign_id
left join daily on daily.tenant_id = roi.tenant_id and daily.campaign_id = roi.campaign_id
where roi.is_selected_model and (
    roi.cost > campaigns.budget
    or (campaigns.pricing_model = 'flat' and roi.cost <> round(campaigns.flat_fee, 2))
    or (campaigns.pricing_model = 'cpm' and roi.cost <> round(least(campaigns.budget, roi.impressions * campaigns.cpm_rate / 1000), 2))
    or abs(coalesce(daily.daily_cost, 0) - roi.cost) > 0.01)

-- One row per campaign and attribution model (is_selected_model marks the campaign's own):
-- delivery, conversions, money and lift, as an agency puts them in front of a sponsor.
--   impressions      ads delivered (int_campaign_delivery_daily); households_reached: distinct
--                    households (int_campaign_reach_daily); frequency =
--                    impressions / households_reached
--   conversions      credited conversions (sum of the campaign's shares) and revenue (net of
--                    refunds, times the shares); conversion_rate = conversions / households_reached
--   cost             cost to date (int_campaign_costs): a flat fee accrues evenly over the
--                    flight's days up to as_of_date (the tenant's newest day with accepted data);
--                    CPM accrues on delivered impressions × rate / 1000, capped at the budget.
--                    contracted_cost is the whole fee (or the CPM budget); flight_days_elapsed
--                    and is_flight_complete say how much of the flight is measured
--   roi = (revenue − cost) / cost, roas = revenue / cost, net_profit = revenue − cost,
--   cpa = cost / conversions, effective_cpm = cost / impressions × 1000,
--   payback_days     days from the flight start until the credited revenue first covers the cost
-- Lift against unexposed households is in mart_campaign_lift (rebuilt daily).
-- Money is rounded to the cent, and ROI, ROAS, CPA and CPM are computed from the rounded
-- amounts: the figures a sponsor reads agree with each other.
{% set models = var('attribution_models') %}
with campaigns as (
    select campaigns.*, sponsors.sponsor_name, sponsors.category
    from {{ ref('stg_campaigns__campaigns') }} as campaigns
    left join {{ ref('stg_campaigns__sponsors') }} as sponsors
        on sponsors.tenant_id = campaigns.tenant_id and sponsors.sponsor_id = campaigns.sponsor_id
),

models as (
    select campaigns.tenant_id, campaigns.campaign_id, model as attribution_model
    from campaigns cross join unnest(array{{ models }}) as model
),

reach as (
    select tenant_id, campaign_id, sum(households) as reach
    from {{ ref('int_campaign_reach_daily') }}
    where grain = 'campaign'
    group by tenant_id, campaign_id
),

delivery as (
    select daily.tenant_id, daily.campaign_id, sum(daily.impressions) as impressions, min(reach.reach) as reach,
           min(daily.first_exposed_at) as first_exposed_at, max(daily.last_exposed_at) as last_exposed_at
    from {{ ref('int_campaign_delivery_daily') }} as daily
    inner join reach on reach.tenant_id = daily.tenant_id and reach.campaign_id = daily.campaign_id
    where daily.grain = 'campaign'
    group by daily.tenant_id, daily.campaign_id
),

costs as (
    select *, cost_to_date as cost from {{ ref('int_campaign_costs') }}
),

credited_daily as (
    select tenant_id, campaign_id, attribution_model, conversion_date,
           sum(conversions) as conversions, sum(revenue) as revenue,
           sum(conversions) filter (where match_type = 'household') as household_conversions,
           sum(conversions) filter (where match_type <> 'household') as deterministic_conversions
    from {{ ref('fct_campaign_credits_daily') }}
    group by tenant_id, campaign_id, attribution_model, conversion_date
),

cumulative as (
    select *,
           sum(revenue) over (partition by tenant_id, campaign_id, attribution_model order by conversion_date) as revenue_to_date
    from credited_daily
),

credited as (
    select
        cumulative.tenant_id, cumulative.campaign_id, cumulative.attribution_model,
        sum(cumulative.conversions) as conversions,
        sum(cumulative.revenue) as revenue,
        coalesce(sum(cumulative.household_conversions), 0) as household_conversions,
        coalesce(sum(cumulative.deterministic_conversions), 0) as deterministic_conversions,
        min(cumulative.conversion_date) filter (where cumulative.revenue_to_date >= costs.cost) as paid_back_on
    from cumulative
    inner join costs on costs.tenant_id = cumulative.tenant_id and costs.campaign_id = cumulative.campaign_id
    group by cumulative.tenant_id, cumulative.campaign_id, cumulative.attribution_model
),

money as (
    select
        costs.tenant_id,
        costs.campaign_id,
        models.attribution_model,
        round(coalesce(credited.revenue, 0), 2) as revenue,
        round(costs.cost, 2) as cost
    from costs
    inner join models on models.tenant_id = costs.tenant_id and models.campaign_id = costs.campaign_id
    left join credited
        on credited.tenant_id = models.tenant_id and credited.campaign_id = models.campaign_id
        and credited.attribution_model = models.attribution_model
),

final as (
    select
        models.tenant_id,
        campaigns.sponsor_id,
        campaigns.sponsor_name,
        campaigns.category,
        models.campaign_id,
        campaigns.campaign_name,
        models.attribution_model,
        models.attribution_model = campaigns.attribution_model as is_selected_model,
        campaigns.pricing_model,
        campaigns.budget,
        campaigns.currency,
        campaigns.flight_start,
        campaigns.flight_end,
        campaigns.attribution_window_days,
        costs.as_of_date,
        costs.flight_days,
        costs.flight_days_elapsed,
        costs.is_flight_complete,
        round(costs.contracted_cost, 2) as contracted_cost,
        coalesce(delivery.impressions, 0) as impressions,
        coalesce(delivery.reach, 0) as households_reached,
        round(delivery.impressions::numeric / nullif(delivery.reach, 0), 4) as frequency,
        round(coalesce(credited.conversions, 0), 6) as conversions,
        round(coalesce(credited.household_conversions, 0), 6) as household_conversions,
        round(coalesce(credited.deterministic_conversions, 0), 6) as deterministic_conversions,
        round(coalesce(credited.conversions, 0) / nullif(delivery.reach, 0), 6) as conversion_rate,
        money.revenue,
        money.cost,
        money.revenue - money.cost as net_profit,
        round((money.revenue - money.cost) / nullif(money.cost, 0), 6) as roi,
        round(money.revenue / nullif(money.cost, 0), 6) as roas,
        round(money.cost / nullif(credited.conversions, 0), 2) as cpa,
        round(money.cost / nullif(delivery.impressions, 0) * 1000, 2) as effective_cpm,
        credited.paid_back_on - campaigns.flight_start as payback_days
    from models
    inner join campaigns on campaigns.tenant_id = models.tenant_id and campaigns.campaign_id = models.campaign_id
    inner join money
        on money.tenant_id = models.tenant_id and money.campaign_id = models.campaign_id
        and money.attribution_model = models.attribution_model
    inner join costs on costs.tenant_id = models.tenant_id and costs.campaign_id = models.campaign_id
    left join delivery on delivery.tenant_id = models.tenant_id and delivery.campaign_id = models.campaign_id
    left join credited
        on credited.tenant_id = models.tenant_id and credited.campaign_id = models.campaign_id
        and credited.attribution_model = models.attribution_model
)

select * from final

-- One row per campaign and day of its flight (and later days with credited conversions):
-- impressions (ads delivered), households reached that day, conversions and revenue credited
-- under the campaign's selected attribution model, and the cost accrued that day: a flat fee
-- spread evenly over the flight days up to the data's as-of date (int_campaign_costs; later
-- flight days have not been accrued yet and cost 0), or impressions × CPM / 1000 (scaled down on
-- every day alike when the CPM cost would exceed the budget). The days add up to the
-- campaign's cost to date (mart_campaign_roi.cost).
with campaigns as (
    select * from {{ ref('stg_campaigns__campaigns') }}
),

exposures as (
    select tenant_id, campaign_id, exposure_date as activity_date, impressions,
           households as households_reached
    from {{ ref('int_campaign_delivery_daily') }}
    where grain = 'campaign'
),

credited as (
    select credits.tenant_id, credits.campaign_id, credits.conversion_date as activity_date,
           sum(credits.conversions) as conversions, sum(credits.revenue) as revenue
    from {{ ref('fct_campaign_credits_daily') }} as credits
    inner join campaigns
        on campaigns.campaign_id = credits.campaign_id and campaigns.tenant_id = credits.tenant_id
        and campaigns.attribution_model = credits.attribution_model
    group by credits.tenant_id, credits.campaign_id, credits.conversion_date
),

flight_days as (
    select campaigns.tenant_id, campaigns.campaign_id, day::date as activity_date
    from campaigns
    cross join generate_series(campaigns.flight_start, campaigns.flight_end, interval '1 day') as day
),

days as (
    select tenant_id, campaign_id, activity_date from flight_days
    union select tenant_id, campaign_id, activity_date from exposures
    union select tenant_id, campaign_id, activity_date from credited
),

costs as (
    select * from {{ ref('int_campaign_costs') }}
),

cpm_totals as (
    select campaigns.tenant_id, campaigns.campaign_id,
           coalesce(sum(exposures.impressions), 0) * campaigns.cpm_rate / 1000 as uncapped_cost,
           campaigns.budget
    from campaigns
    left join exposures on exposures.tenant_id = campaigns.tenant_id and exposures.campaign_id = campaigns.campaign_id
    where campaigns.pricing_model = 'cpm'
    group by campaigns.tenant_id, campaigns.campaign_id, campaigns.cpm_rate, campaigns.budget
)

select
    campaigns.tenant_id,
    campaigns.sponsor_id,
    days.campaign_id,
    days.activity_date,
    days.activity_date between campaigns.flight_start and campaigns.flight_end as in_flight,
    campaigns.attribution_model,
    coalesce(exposures.impressions, 0) as impressions,
    coalesce(exposures.households_reached, 0) as households_reached,
    coalesce(credited.conversions, 0) as conversions,
    coalesce(credited.revenue, 0) as revenue,
    case
        when campaigns.pricing_model = 'flat' then
            case when days.activity_date between campaigns.flight_start and campaigns.flight_end
                      and days.activity_date <= costs.as_of_date
                then campaigns.flat_fee / costs.flight_days else 0 end
        else coalesce(exposures.impressions, 0) * campaigns.cpm_rate / 1000
            * case when cpm_totals.uncapped_cost > cpm_totals.budget
                   then cpm_totals.budget / cpm_totals.uncapped_cost else 1 end
    end as cost
from days
inner join campaigns on campaigns.tenant_id = days.tenant_id and campaigns.campaign_id = days.campaign_id
left join exposures
    on exposures.tenant_id = days.tenant_id and exposures.campaign_id = days.campaign_id
    and exposures.activity_date = days.activity_date
left join credited
    on credited.tenant_id = days.tenant_id and credited.campaign_id = days.campaign_id
    and credited.activity_date = days.activity_date
inner join costs on costs.tenant_id = days.tenant_id and costs.campaign_id = days.campaign_id
left join cpm_totals on cpm_totals.tenant_id = days.tenant_id and cpm_totals.campaign_id = days.campaign_id

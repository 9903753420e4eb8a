{{ config(materialized="table") }}  -- a view here would have two view parents (see tests/test_definitions.py)

-- One row per campaign: what its contract costs and what has accrued by the data's as-of date.
--   as_of_date           the tenant's newest day with an accepted conversion event or a delivered
--                        ad (the data's own time, not the clock: a rebuild gives the same figures);
--                        that day counts whole
--   flight_days_elapsed  flight days up to and including as_of_date (0 before the flight)
--   contracted_cost      the flat fee, or the CPM budget
--   cost_to_date         flat: fee × elapsed / flight days; CPM: delivered impressions × rate / 1000,
--                        capped at the budget (unrounded; the marts round to the cent)
with campaigns as (
    select * from {{ ref('stg_campaigns__campaigns') }}
),

delivery as (
    select tenant_id, campaign_id, sum(impressions) as impressions, max(exposure_date) as last_exposure_date
    from {{ ref('int_campaign_delivery_daily') }}
    where grain = 'campaign'
    group by tenant_id, campaign_id
),

activity_days as (
    select tenant_id, max((occurred_at at time zone 'UTC')::date) as activity_date
    from {{ ref('stg_conversions__events') }}
    group by tenant_id
    union all
    select tenant_id, max(last_exposure_date) from delivery group by tenant_id
),

as_of as (
    select tenant_id, max(activity_date) as as_of_date from activity_days group by tenant_id
),

terms as (
    select
        campaigns.tenant_id,
        campaigns.campaign_id,
        campaigns.pricing_model,
        campaigns.flat_fee,
        campaigns.cpm_rate,
        campaigns.budget,
        as_of.as_of_date,
        campaigns.flight_end - campaigns.flight_start + 1 as flight_days,
        coalesce(greatest(0, least(campaigns.flight_end, as_of.as_of_date) - campaigns.flight_start + 1), 0)
            as flight_days_elapsed,
        coalesce(delivery.impressions, 0) as impressions
    from campaigns
    left join as_of on as_of.tenant_id = campaigns.tenant_id
    left join delivery on delivery.tenant_id = campaigns.tenant_id and delivery.campaign_id = campaigns.campaign_id
)

select
    tenant_id,
    campaign_id,
    pricing_model,
    as_of_date,
    flight_days,
    flight_days_elapsed,
    flight_days_elapsed = flight_days as is_flight_complete,
    impressions,
    case when pricing_model = 'flat' then flat_fee else budget end as contracted_cost,
    case
        when pricing_model = 'flat' then flat_fee * flight_days_elapsed / flight_days
        else least(budget, impressions * cpm_rate / 1000)
    end as cost_to_date
from terms

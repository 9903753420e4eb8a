{{ config(tags=['daily']) }}
-- Lift of each campaign against a baseline of unexposed households, with its sample sizes:
--   exposed     households with an ad of the campaign delivered; exposed converters: a
--               conversion of the sponsor within the campaign's window after the household's
--               first exposure;
--   baseline    the tenant's other listening households: a download during the flight, never
--               an ad of any of the sponsor's campaigns; baseline converters: a conversion of the
--               sponsor between the flight start and the flight end + window;
--   lift        (exposed rate − baseline rate) / baseline rate.
-- Data-centre and shared addresses (int_household_exclusions) are in neither group.
-- A campaign-level statistic over the whole flight: tagged `daily`, rebuilt once a day rather
-- than with every attribution run.
with campaigns as (
    select * from {{ ref('stg_campaigns__campaigns') }}
),

excluded as (
    select distinct tenant_id, household_key from {{ ref('int_household_exclusions') }}
),

exposed as (
    select exposures.tenant_id, exposures.campaign_id, exposures.household_key, min(exposures.exposed_at) as first_exposed_at
    from {{ ref('int_exposures') }} as exposures
    left join excluded
        on excluded.tenant_id = exposures.tenant_id and excluded.household_key = exposures.household_key
    where excluded.household_key is null
    group by exposures.tenant_id, exposures.campaign_id, exposures.household_key
),

exposed_outcomes as (
    select
        exposed.tenant_id,
        exposed.campaign_id,
        count(*) as exposed_households,
        count(*) filter (where exists (
            select 1 from {{ ref('int_conversions') }} as conversions
            where conversions.tenant_id = exposed.tenant_id
                and conversions.household_key = exposed.household_key
                and conversions.sponsor_id = campaigns.sponsor_id
                and not conversions.ip_datacenter
                and conversions.converted_at >= exposed.first_exposed_at
                and conversions.converted_at < exposed.first_exposed_at + make_interval(days => campaigns.attribution_window_days)
        )) as exposed_converters
    from exposed
    inner join campaigns on campaigns.tenant_id = exposed.tenant_id and campaigns.campaign_id = exposed.campaign_id
    group by exposed.tenant_id, exposed.campaign_id
),

-- Households that got an ad of any of the sponsor's campaigns: never in a baseline.
sponsor_exposed as (
    select distinct campaigns.tenant_id, campaigns.sponsor_id, exposed.household_key
    from exposed
    inner join campaigns on campaigns.tenant_id = exposed.tenant_id and campaigns.campaign_id = exposed.campaign_id
),

sponsor_exposed_listening as (
    select campaigns.tenant_id, campaigns.campaign_id, count(*) as households
    from campaigns
    inner join sponsor_exposed
        on sponsor_exposed.tenant_id = campaigns.tenant_id and sponsor_exposed.sponsor_id = campaigns.sponsor_id
    where exists (
        select 1 from {{ ref('int_household_activity_daily') }} as activity
        where activity.tenant_id = sponsor_exposed.tenant_id
            and activity.listener_ip_key = sponsor_exposed.household_key
            and activity.download_date between campaigns.flight_start and campaigns.flight_end
    )
    group by campaigns.tenant_id, campaigns.campaign_id
),

-- The listening population of each flight (computed once per tenant and flight dates).
flights as (
    select distinct tenant_id, flight_start, flight_end from campaigns
),

listening as (
    select flights.tenant_id, flights.flight_start, flights.flight_end,
           count(distinct activity.listener_ip_key) as households
    from flights
    inner join {{ ref('int_household_activity_daily') }} as activity
        on activity.tenant_id = flights.tenant_id
        and activity.download_date between flights.flight_start and flights.flight_end
    left join excluded
        on excluded.tenant_id = activity.tenant_id and excluded.household_key = activity.listener_ip_key
    where excluded.household_key is null
    group by flights.tenant_id, flights.flight_start, flights.flight_end
),

-- Listening households that converted for the sponsor during the campaign's period, and
-- whether the sponsor's ads reached them.
period_converters as (
    select
        campaigns.tenant_id,
        campaigns.campaign_id,
        count(distinct conversions.household_key) as households,
        count(distinct conversions.household_key) filter (where sponsor_exposed.household_key is not null) as exposed
    from campaigns
    inner join {{ ref('int_conversions') }} as conversions
        on conversions.tenant_id = campaigns.tenant_id
        and conversions.sponsor_id = campaigns.sponsor_id
        and conversions.household_key is not null
        and not conversions.ip_datacenter
        and conversions.converted_at >= campaigns.flight_start::timestamp at time zone 'UTC'
        and conversions.converted_at
            < (campaigns.flight_end + 1 + campaigns.attribution_window_days)::timestamp at time zone 'UTC'
    left join excluded
        on excluded.tenant_id = conversions.tenant_id and excluded.household_key = conversions.household_key
    left join sponsor_exposed
        on sponsor_exposed.tenant_id = conversions.tenant_id and sponsor_exposed.sponsor_id = conversions.sponsor_id
        and sponsor_exposed.household_key = conversions.household_key
    where excluded.household_key is null
        and exists (
            select 1 from {{ ref('int_household_activity_daily') }} as activity
            where activity.tenant_id = conversions.tenant_id
                and activity.listener_ip_key = conversions.household_key
                and activity.download_date between campaigns.flight_start and campaigns.flight_end
        )
    group by campaigns.tenant_id, campaigns.campaign_id
),

counts as (
    select
        campaigns.tenant_id,
        campaigns.campaign_id,
        coalesce(exposed_outcomes.exposed_households, 0) as exposed_households,
        coalesce(exposed_outcomes.exposed_converters, 0) as exposed_converters,
        coalesce(listening.households, 0) - coalesce(sponsor_exposed_listening.households, 0) as baseline_households,
        coalesce(period_converters.households, 0) - coalesce(period_converters.exposed, 0) as baseline_converters
    from campaigns
    left join exposed_outcomes
        on exposed_outcomes.tenant_id = campaigns.tenant_id and exposed_outcomes.campaign_id = campaigns.campaign_id
    left join listening
        on listening.tenant_id = campaigns.tenant_id and listening.flight_start = campaigns.flight_start
        and listening.flight_end = campaigns.flight_end
    left join period_converters
        on period_converters.tenant_id = campaigns.tenant_id and period_converters.campaign_id = campaigns.campaign_id
    left join sponsor_exposed_listening
        on sponsor_exposed_listening.tenant_id = campaigns.tenant_id
        and sponsor_exposed_listening.campaign_id = campaigns.campaign_id
)

select
    *,
    round(exposed_converters::numeric / nullif(exposed_households, 0), 6) as exposed_rate,
    round(baseline_converters::numeric / nullif(baseline_households, 0), 6) as baseline_rate,
    round((exposed_converters::numeric / nullif(exposed_households, 0)
           - baseline_converters::numeric / nullif(baseline_households, 0))
          / nullif(baseline_converters::numeric / nullif(baseline_households, 0), 0), 6) as lift
from counts

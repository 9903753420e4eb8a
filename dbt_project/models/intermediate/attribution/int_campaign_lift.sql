{{ config(materialized='table') }}
-- Lift of each campaign against a baseline of unexposed households (sample sizes included):
--   exposed      households with an ad of the campaign delivered; converters among them: a
--                conversion of the sponsor within the campaign's window after their first
--                exposure;
--   baseline     the tenant's other households that downloaded during the flight and never got
--                the campaign's ad; converters among them: a conversion of the sponsor between
--                the flight start and the flight end + window.
-- Data-centre and shared addresses (int_household_exclusions) are in neither group.
with campaigns as (
    select * from {{ ref('stg_campaigns__campaigns') }}
),

excluded as (
    select distinct tenant_id, household_key from {{ ref('int_household_exclusions') }}
),

conversions as (
    select tenant_id, sponsor_id, household_key, converted_at
    from {{ ref('int_conversions') }}
    where household_key is not null and not ip_datacenter
),

exposed as (
    select exposures.tenant_id, exposures.campaign_id, exposures.household_key, min(exposures.exposed_at) as first_exposed_at
    from {{ ref('int_exposures') }} as exposures
    where not exists (
        select 1 from excluded
        where excluded.tenant_id = exposures.tenant_id and excluded.household_key = exposures.household_key
    )
    group by exposures.tenant_id, exposures.campaign_id, exposures.household_key
),

exposed_outcomes as (
    select
        exposed.tenant_id,
        exposed.campaign_id,
        count(*) as exposed_households,
        count(*) filter (where exists (
            select 1 from conversions
            where conversions.tenant_id = exposed.tenant_id
                and conversions.sponsor_id = campaigns.sponsor_id
                and conversions.household_key = exposed.household_key
                and conversions.converted_at >= exposed.first_exposed_at
                and conversions.converted_at < exposed.first_exposed_at + make_interval(days => campaigns.attribution_window_days)
        )) as exposed_converters
    from exposed
    inner join campaigns on campaigns.tenant_id = exposed.tenant_id and campaigns.campaign_id = exposed.campaign_id
    group by exposed.tenant_id, exposed.campaign_id
),

listening as (
    select distinct campaigns.tenant_id, campaigns.campaign_id, downloads.listener_ip_key as household_key
    from campaigns
    inner join {{ ref('fct_downloads') }} as downloads
        on downloads.tenant_id = campaigns.tenant_id
        and downloads.download_date between campaigns.flight_start and campaigns.flight_end
),

baseline as (
    select listening.*
    from listening
    where not exists (
        select 1 from exposed
        where exposed.tenant_id = listening.tenant_id and exposed.campaign_id = listening.campaign_id
            and exposed.household_key = listening.household_key
    )
    and not exists (
        select 1 from excluded
        where excluded.tenant_id = listening.tenant_id and excluded.household_key = listening.household_key
    )
),

baseline_outcomes as (
    select
        baseline.tenant_id,
        baseline.campaign_id,
        count(*) as baseline_households,
        count(*) filter (where exists (
            select 1 from conversions
            where conversions.tenant_id = baseline.tenant_id
                and conversions.sponsor_id = campaigns.sponsor_id
                and conversions.household_key = baseline.household_key
                and conversions.converted_at >= campaigns.flight_start::timestamp at time zone 'UTC'
                and conversions.converted_at
                    < (campaigns.flight_end + 1 + campaigns.attribution_window_days)::timestamp at time zone 'UTC'
        )) as baseline_converters
    from baseline
    inner join campaigns on campaigns.tenant_id = baseline.tenant_id and campaigns.campaign_id = baseline.campaign_id
    group by baseline.tenant_id, baseline.campaign_id
)

select
    campaigns.tenant_id,
    campaigns.campaign_id,
    coalesce(exposed_outcomes.exposed_households, 0) as exposed_households,
    coalesce(exposed_outcomes.exposed_converters, 0) as exposed_converters,
    coalesce(baseline_outcomes.baseline_households, 0) as baseline_households,
    coalesce(baseline_outcomes.baseline_converters, 0) as baseline_converters,
    round(exposed_outcomes.exposed_converters::numeric / nullif(exposed_outcomes.exposed_households, 0), 6) as exposed_rate,
    round(baseline_outcomes.baseline_converters::numeric / nullif(baseline_outcomes.baseline_households, 0), 6) as baseline_rate,
    round(
        (exposed_outcomes.exposed_converters::numeric / nullif(exposed_outcomes.exposed_households, 0)
         - baseline_outcomes.baseline_converters::numeric / nullif(baseline_outcomes.baseline_households, 0))
        / nullif(baseline_outcomes.baseline_converters::numeric / nullif(baseline_outcomes.baseline_households, 0), 0),
        6) as lift
from campaigns
left join exposed_outcomes
    on exposed_outcomes.tenant_id = campaigns.tenant_id and exposed_outcomes.campaign_id = campaigns.campaign_id
left join baseline_outcomes
    on baseline_outcomes.tenant_id = campaigns.tenant_id and baseline_outcomes.campaign_id = campaigns.campaign_id

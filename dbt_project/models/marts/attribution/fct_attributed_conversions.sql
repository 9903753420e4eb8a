{{ config(indexes=[{'columns': ['conversion_date']}, {'columns': ['attribution_key']},
                   {'columns': ['campaign_id', 'attribution_model']}],
          tags=['partitioned'], materialized='incremental', incremental_strategy='append',
          pre_hook=["{{ hash_joins_only() }}", "{{ sort_memory() }}",
                    "{{ delete_partition_window('conversion_date') }}"],
          post_hook=["{{ fact_hypertable('conversion_date', '30 days') }}"]) }}
-- One row per conversion × attribution model × credited campaign, with the campaign's share of
-- the conversion (shares of a conversion sum to 1 under every model; a conversion no campaign
-- earned has one row per model with a null campaign and match_type 'unattributed').
--   deterministic (promo_code, vanity_url, utm; see int_conversions): the whole conversion to
--   that campaign under every model.
--   household: the exposures (touchpoints) of the same household to the sponsor's campaigns
--   before the conversion and within each campaign's attribution window, unless the household is
--   excluded (int_household_exclusions), the conversion came from a data-centre address, or the
--   campaign excludes prior customers and the household converted before its flight
--   (int_household_first_conversions). Models:
--     first_touch / last_touch   the earliest / latest touchpoint;
--     linear                     an equal share per touchpoint;
--     time_decay                 weight 2^(-age / half-life), the half-life of the touchpoint's
--                                campaign, age = days from exposure to conversion;
--     position_based             40 % first, 40 % last, 20 % over the ones between
--                                (two touchpoints: 50/50; one: all).
-- Partitioned by the conversion's UTC day (`conversion_date`): a run replaces the credits of the
-- conversions of its window. A conversion of day D is credited from exposures of
-- [D - window, D], so the run reads the exposures of the days from min_date minus
-- var attribution_max_window_days (no campaign's window is longer: test
-- attribution_windows_within_lookback) to its last day, and an exposure found late for day E
-- changes the credits of E .. E + that many days, which a run over them recomputes exactly.
-- What reaches further back is read from two small tables rebuilt whole: the household screen
-- (int_household_exclusions) and each household's first conversion
-- (int_household_first_conversions).
{% set models = var('attribution_models') %}
with conversions as (
    select * from {{ ref('int_conversions') }} where {{ partition_window('conversion_date') }}
),

campaigns as (
    select * from {{ ref('stg_campaigns__campaigns') }}
),

exclusions as (
    -- each excluded household once, with its first reason
    select tenant_id, household_key, min(reason_code) as reason_code
    from {{ ref('int_household_exclusions') }}
    group by tenant_id, household_key
),

screened as (
    select
        conversions.*,
        case
            when conversions.deterministic_campaign_id is not null then null
            when conversions.household_key is null then 'no_address'
            when conversions.ip_datacenter then 'datacenter_ip'
            else exclusions.reason_code
        end as exclusion_reason
    from conversions
    left join exclusions
        on exclusions.tenant_id = conversions.tenant_id and exclusions.household_key = conversions.household_key
),

-- The first conversion of each household for each sponsor, whenever it was: whether the
-- household is a prior customer of a campaign excluding them.
first_conversions as (
    select * from {{ ref('int_household_first_conversions') }}
),

touchpoints as (
    select
        screened.conversion_id,
        exposures.exposure_id,
        exposures.campaign_id,
        exposures.exposed_at,
        campaigns.decay_half_life_days,
        extract(epoch from screened.converted_at - exposures.exposed_at) / 86400.0 as age_days
    from screened
    -- the household's exposures of the days the window's conversions can be credited from,
    -- read through the index on (tenant_id, household_key)
    cross join lateral (
        select * from {{ ref('int_exposures') }} as rows
        where rows.tenant_id = screened.tenant_id
            and rows.household_key = screened.household_key
            and rows.sponsor_id = screened.sponsor_id
            and rows.exposed_at <= screened.converted_at
            and {{ partition_window('rows.exposure_date', before=var('attribution_max_window_days') | int) }}
        offset 0
    ) as exposures
    inner join campaigns
        on campaigns.tenant_id = exposures.tenant_id and campaigns.campaign_id = exposures.campaign_id
    inner join first_conversions
        on first_conversions.tenant_id = screened.tenant_id
        and first_conversions.sponsor_id = screened.sponsor_id
        and first_conversions.household_key = screened.household_key
    where screened.deterministic_campaign_id is null
        and screened.exclusion_reason is null
        and screened.converted_at < exposures.exposed_at + make_interval(days => campaigns.attribution_window_days)
        and not (campaigns.exclude_prior_customers
                 and first_conversions.first_converted_at < campaigns.flight_start::timestamp at time zone 'UTC')
),

ranked as (
    select
        *,
        row_number() over (partition by conversion_id order by exposed_at, exposure_id) as touch_rank,
        count(*) over (partition by conversion_id) as touches,
        power(2::numeric, (-age_days / decay_half_life_days)::numeric) as decay_weight
    from touchpoints
),

weighted as (
    select
        *,
        decay_weight / sum(decay_weight) over (partition by conversion_id) as decay_share
    from ranked
),

household_credit as (
    select
        conversion_id,
        campaign_id,
        count(*) as touchpoints,
        min(exposed_at) as first_exposed_at,
        max(exposed_at) as last_exposed_at,
        max(touches) as conversion_touchpoints,
        sum(case when touch_rank = 1 then 1 else 0 end)::numeric as first_touch,
        sum(case when touch_rank = touches then 1 else 0 end)::numeric as last_touch,
        sum(1::numeric / touches) as linear,
        sum(decay_share) as time_decay,
        sum(case
            when touches = 1 then 1
            when touches = 2 then 0.5
            when touch_rank = 1 or touch_rank = touches then 0.4
            else 0.2 / (touches - 2)
        end)::numeric as position_based
    from weighted
    group by conversion_id, campaign_id
),

credited as (
    {% for model in models %}
    select
        household_credit.conversion_id,
        '{{ model }}' as attribution_model,
        household_credit.campaign_id,
        'household' as match_type,
        household_credit.{{ model }} as credited_share,
        household_credit.touchpoints,
        household_credit.first_exposed_at,
        household_credit.last_exposed_at
    from household_credit
    where household_credit.{{ model }} > 0
    union all
    {% endfor %}
    select
        screened.conversion_id,
        models.attribution_model,
        screened.deterministic_campaign_id,
        screened.deterministic_match,
        1::numeric,
        0,
        null::timestamptz,
        null::timestamptz
    from screened
    cross join unnest(array{{ models }}) as models (attribution_model)
    where screened.deterministic_campaign_id is not null
),

unattributed as (
    select
        screened.conversion_id,
        models.attribution_model,
        null::text as campaign_id,
        'unattributed' as match_type,
        1::numeric as credited_share,
        0 as touchpoints,
        null::timestamptz as first_exposed_at,
        null::timestamptz as last_exposed_at
    from screened
    cross join unnest(array{{ models }}) as models (attribution_model)
    where not exists (select 1 from credited where credited.conversion_id = screened.conversion_id)
),

final as (
    select
        screened.conversion_id,
        screened.tenant_id,
        screened.sponsor_id,
        screened.source,
        screened.event_id,
        screened.event_type,
        screened.converted_at,
        screened.conversion_date,
        screened.household_key,
        screened.attribution_key,
        rows.attribution_model,
        rows.campaign_id,
        rows.match_type,
        round(rows.credited_share, 10) as credited_share,
        screened.net_revenue * round(rows.credited_share, 10) as credited_revenue,
        screened.net_revenue,
        screened.currency,
        rows.touchpoints,
        rows.first_exposed_at,
        rows.last_exposed_at,
        case when rows.match_type = 'unattributed' then screened.exclusion_reason end as exclusion_reason
    from screened
    inner join (select * from credited union all select * from unattributed) as rows
        on rows.conversion_id = screened.conversion_id
)

select * from final

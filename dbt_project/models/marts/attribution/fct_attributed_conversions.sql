{{ config(indexes=[{'columns': ['attribution_key']}, {'columns': ['campaign_id', 'attribution_model']},
                   {'columns': ['conversion_date']}, {'columns': ['attributed_at']}],
          materialized='incremental', incremental_strategy='changed_rows', unique_key='attribution_key',
          changed_rows_group='conversion_id', changed_rows_stamps=['attributed_at'],
          removed_columns=['conversion_date'],
          pre_hook=["{{ hash_joins_only() }}", "{{ sort_memory() }}", "{{ reset_run_log() }}"],
          post_hook=["{{ create_removed_rows_table(['conversion_date']) }}", "{{ record_applied_exclusions() }}",
                     "{{ record_run({'conversions_loaded_at': '(select max(ingested_at) from ' ~ ref('int_conversions') ~ ')',
                                     'campaigns_loaded_at': campaigns_loaded_at()}) }}"]) }}
-- One row per conversion × attribution model × credited campaign, with the campaign's share of
-- the conversion (shares of a conversion sum to 1 under every model; a conversion no campaign
-- earned has one row per model with a null campaign and match_type 'unattributed').
--   deterministic (promo_code, vanity_url, utm; see int_conversions): the whole conversion to
--   that campaign under every model.
--   household: the exposures (touchpoints) of the same household to the sponsor's campaigns
--   before the conversion and within each campaign's attribution window, unless the household is
--   excluded (int_household_exclusions), the conversion came from a data-centre address, or the
--   campaign excludes prior customers and the household converted before its flight. Models:
--     first_touch / last_touch   the earliest / latest touchpoint;
--     linear                     an equal share per touchpoint;
--     time_decay                 weight 2^(-age / half-life), the half-life of the touchpoint's
--                                campaign, age = days from exposure to conversion;
--     position_based             40 % first, 40 % last, 20 % over the ones between
--                                (two touchpoints: 50/50; one: all).
-- Incremental by attribution key (household): a run recomputes the households with conversions
-- loaded or exposures removed since its last run (conversions loaded up to
-- var attribution_reprocess_minutes before it too, for loads that committed late), those with
-- exposures computed since then and a conversion at or after the earliest of them (an exposure
-- changes no credit of an earlier conversion), those whose exclusion changed (the exclusions a
-- run applied are kept in `__exclusions`), and every household when campaigns or placements
-- changed. Only the conversions whose credits came out different are written back
-- (strategy changed_rows): `attributed_at` is when a conversion's credits last changed, and the
-- run log (`__runs`) keeps what each run read up to.
-- depends_on: {{ ref('int_placement_episodes') }}
{% set models = var('attribution_models') %}
{% if is_incremental() %}
{% set batch = create_batch_table(this.name ~ '__batch', "
    with watermark as (
        select " ~ last_run('run_at') ~ " as attributed_at,
               " ~ last_run('conversions_loaded_at') ~ " as conversions_loaded_at,
               " ~ last_run('campaigns_loaded_at') ~ " as campaigns_loaded_at
    ),
    campaigns_changed as (
        select coalesce((select " ~ campaigns_loaded_at() ~ ") > (select campaigns_loaded_at from watermark), false)
            as changed
    )
    select attribution_key from " ~ ref('int_conversions') ~ "
    where ingested_at > (select conversions_loaded_at from watermark)
        - make_interval(mins => " ~ var('attribution_reprocess_minutes') ~ ")
    union
    select exposed.household_key
    from (
        select tenant_id, household_key, min(exposed_at) as exposed_at
        from " ~ ref('int_exposures') ~ "
        where computed_at > (select attributed_at from watermark)
        group by tenant_id, household_key
    ) as exposed
    where exists (
        select 1 from " ~ ref('int_conversions') ~ " as later
        where later.tenant_id = exposed.tenant_id and later.household_key = exposed.household_key
            and later.converted_at >= exposed.exposed_at
    )
    union
    select household_key from " ~ removed_rows_relation(ref('int_exposures')) ~ "
    where removed_at > (select attributed_at from watermark)
    union
    " ~ changed_exclusions() ~ "
    union
    select attribution_key from " ~ ref('int_conversions') ~ " where (select changed from campaigns_changed)") %}
{% endif %}
with conversions as (
    {% if is_incremental() %}
    select conversions.* from {{ join_batch(batch, ref('int_conversions'), ['attribution_key'], 'conversions') }}
    {% else %}
    select * from {{ ref('int_conversions') }}
    {% endif %}
),

campaigns as (
    select * from {{ ref('stg_campaigns__campaigns') }}
),

exclusions as (
    {{ household_exclusions() }}
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

-- The first conversion of each household for each sponsor: whether it is a prior customer of a
-- campaign excluding them. (A batch holds whole households, so their first conversion is in it.)
first_conversions as (
    select tenant_id, sponsor_id, household_key, min(converted_at) as first_converted_at
    from conversions
    where household_key is not null
    group by tenant_id, sponsor_id, household_key
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
    -- the household's exposures, read through the index on (tenant_id, household_key)
    cross join lateral (
        select * from {{ ref('int_exposures') }} as rows
        where rows.tenant_id = screened.tenant_id
            and rows.household_key = screened.household_key
            and rows.sponsor_id = screened.sponsor_id
            and rows.exposed_at <= screened.converted_at
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
        case when rows.match_type = 'unattributed' then screened.exclusion_reason end as exclusion_reason,
        now() as attributed_at
    from screened
    inner join (select * from credited union all select * from unattributed) as rows
        on rows.conversion_id = screened.conversion_id
)

select * from final

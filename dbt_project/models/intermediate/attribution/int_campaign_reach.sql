{{ config(indexes=[{'columns': ['reach_key']}, {'columns': ['tenant_id', 'household_key']},
                   {'columns': ['exposures_changed_at']}, {'columns': ['first_exposure_date']}],
          materialized='incremental', incremental_strategy='append',
          pre_hook=["{{ sort_memory() }}",
                    "{{ replace_batch_hook('reach_key', ['first_exposure_date']) }}"],
          post_hook=["{{ create_removed_rows_table(['first_exposure_date']) }}"]) }}
-- One row per campaign and household it reached, at two grains as int_campaign_delivery_daily:
-- 'campaign' (podcast_id and position null) and 'placement' (per show and ad position), with
-- the first day the household got the ad. Reach is a count of these rows (int_campaign_reach_daily
-- counts them by that first day).
-- Incremental: the households int_exposures removed rows of since the last run are recomputed
-- from all their ads. For the other households with ads computed since then (none of their ads
-- went away), a (campaign, household) pair not stored yet is inserted, and a stored one is
-- replaced only when the new ads came before its first day: a household reached again changes
-- nothing. Work is in proportion to the new ads; rows written, to the newly reached households.
{% set exposures = ref('int_exposures') %}

{% if is_incremental() %}
{#- The households to recompute whole, the pairs of the other households' new ads with what is
    stored for them: read before the pre-hook deletes the batch's rows. -#}
{% set removed = create_batch_table(this.name ~ '__removed_households', "
    with watermark as (
        select coalesce(max(exposures_changed_at), '-infinity') as changed_at from " ~ this ~ "
    )
    select distinct tenant_id, household_key from " ~ removed_rows_relation(exposures) ~ "
    where removed_at > (select changed_at from watermark)") %}
{% set added = create_batch_table(this.name ~ '__added', "
    with watermark as (
        select coalesce(max(exposures_changed_at), '-infinity') as changed_at from " ~ this ~ "
    ),
    new_rows as (
        select new_rows.* from " ~ exposures ~ " as new_rows
        where new_rows.computed_at > (select changed_at from watermark)
            and not exists (
                select 1 from " ~ removed ~ " as removed
                where removed.tenant_id = new_rows.tenant_id and removed.household_key = new_rows.household_key
            )
    ),
    rows as (" ~ campaign_reach_rows('new_rows') ~ "),
    keyed as (
        select md5(concat_ws('|', tenant_id, campaign_id, household_key, grain, podcast_id, position))::uuid as reach_key, *
        from rows
    )
    select keyed.*, stored.first_exposure_date as stored_first_exposure_date
    from keyed
    left join lateral (
        select first_exposure_date from " ~ this ~ " as stored where stored.reach_key = keyed.reach_key offset 0
    ) as stored on true
    where stored.first_exposure_date is null or keyed.first_exposure_date < stored.first_exposure_date") %}
{% set batch = create_batch_table(this.name ~ '__batch', "
    select reach_key from " ~ added ~ " where stored_first_exposure_date is not null
    union
    select stored.reach_key from " ~ join_batch(removed, this, ['tenant_id', 'household_key'], 'stored')) %}
{% endif %}

with rows as (
    {% if is_incremental() %}
    select reach_key, tenant_id, sponsor_id, campaign_id, household_key, grain, podcast_id, position,
           first_exposure_date
    from {{ added }}
    union all
    select md5(concat_ws('|', tenant_id, campaign_id, household_key, grain, podcast_id, position))::uuid as reach_key, *
    from ({{ campaign_reach_rows('(select recomputed.* from ' ~ join_batch(removed, exposures, ['tenant_id', 'household_key'], 'recomputed') ~ ') as households') }}) as recomputed
    {% else %}
    select md5(concat_ws('|', tenant_id, campaign_id, household_key, grain, podcast_id, position))::uuid as reach_key, *
    from ({{ campaign_reach_rows(exposures) }}) as everything
    {% endif %}
)

select
    rows.*,
    {{ last_change(exposures, 'computed_at') }} as exposures_changed_at
from rows

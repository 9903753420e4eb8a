{{ config(indexes=[{'columns': ['reach_key']}, {'columns': ['tenant_id', 'household_key']}],
          materialized='incremental', incremental_strategy='append',
          pre_hook=["{{ sort_memory() }}",
                    "{% if is_incremental() %}{{ delete_batch('pg_temp.' ~ this.name ~ '__batch', 'reach_key') }}{% endif %}"]) }}
-- One row per campaign and household it reached, at two grains as int_campaign_delivery_daily:
-- 'campaign' (podcast_id and position null) and 'placement' (per show and ad position), with
-- the first and last day the household got the ad. Reach is a count of these rows.
-- Incremental: the households int_exposures removed rows of since the last run are recomputed
-- from all their ads; for the other households with ads computed since then, each (campaign,
-- household) row takes the earlier first day and the later last day of its stored row and the
-- new ads (exact: none of that household's ads went away). Work is in proportion to the new ads.
{% set exposures = ref('int_exposures') %}

{% if is_incremental() %}
{#- The households to recompute whole, the new ads of the others, and the stored rows those
    new ads update: all read before the pre-hook deletes the batch's rows. -#}
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
    rows as (" ~ campaign_reach_rows('new_rows') ~ ")
    select md5(concat_ws('|', tenant_id, campaign_id, household_key, grain, podcast_id, position))::uuid as reach_key, *
    from rows") %}
{% set batch = create_batch_table(this.name ~ '__batch', "
    select reach_key from " ~ added ~ "
    union
    select stored.reach_key from " ~ join_batch(removed, this, ['tenant_id', 'household_key'], 'stored')) %}
{% set stored = create_batch_table(this.name ~ '__stored', "
    select stored.* from " ~ join_batch(added, this, ['reach_key'], 'stored')) %}
{% endif %}

with rows as (
    {% if is_incremental() %}
    select
        added.reach_key, added.tenant_id, added.sponsor_id, added.campaign_id, added.household_key,
        added.grain, added.podcast_id, added.position,
        least(added.first_exposure_date, stored.first_exposure_date) as first_exposure_date,
        greatest(added.last_exposure_date, stored.last_exposure_date) as last_exposure_date
    from {{ added }} as added
    left join {{ stored }} as stored on stored.reach_key = added.reach_key
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

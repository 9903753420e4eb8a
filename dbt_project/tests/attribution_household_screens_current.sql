{{ config(severity='warn', meta={"dagster": {"ref": {"name": "fct_attributed_conversions"}}}) }}
-- The conversions credited under a household screen other than the current one: the household
-- became shared or a data-centre address (or stopped being one) after the conversion's day was
-- last run, through data of other days (int_household_exclusions is rebuilt whole with every
-- partitioned run). A row per such conversion, with its day: run those partitions again. (A rule
-- change, such as var attribution_max_household_user_agents, reruns every day anyway.)
-- Compared: the screen a stored conversion shows (the reason on its unattributed rows, none on
-- credited ones) and the one int_household_exclusions gives its household now, for the
-- conversions the screen applies to: no deterministic match, an address, not themselves from a
-- data centre.
{%- set model = var('attribution_models')[0] %}
with screens as (
    select tenant_id, household_key, min(reason_code) as reason_code
    from {{ ref('int_household_exclusions') }}
    group by tenant_id, household_key
),

stored as (
    select tenant_id, household_key, conversion_id, conversion_date, max(exclusion_reason) as applied_reason
    from {{ ref('fct_attributed_conversions') }}
    where attribution_model = '{{ model }}' and match_type in ('household', 'unattributed')
        and household_key is not null
    group by tenant_id, household_key, conversion_id, conversion_date
)

select stored.conversion_date, stored.tenant_id, stored.household_key, stored.conversion_id,
       stored.applied_reason, screens.reason_code as current_reason
from stored
inner join {{ ref('int_conversions') }} as conversions
    on conversions.tenant_id = stored.tenant_id and conversions.household_key = stored.household_key
    and conversions.conversion_id = stored.conversion_id
left join screens on screens.tenant_id = stored.tenant_id and screens.household_key = stored.household_key
where not conversions.ip_datacenter and stored.applied_reason is distinct from screens.reason_code

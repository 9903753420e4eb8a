{{ config(indexes=[{'columns': ['tenant_id', 'household_key']}],
          tags=['partitioned'], materialized='incremental', incremental_strategy='append',
          pre_hook=["{{ delete_partition_tenants() }}"]) }}
-- Households (hashed IP prefixes) that household matching must not use, with the reason:
--   shared_ip      on some day, more distinct user agents downloaded from the address than one
--                  home has (offices, campuses, carrier NAT: var attribution_max_household_user_agents);
--   datacenter_ip  conversions from a data-centre or VPN range.
-- Rebuilt whole (its run's tenants' rows, with the var `tenants`: deleted and inserted again, so
-- runs for different tenants never rebuild the same rows), and tagged `partitioned`: it reads the daily shared-address
-- rollup and fct_attributed_conversions reads it, both partitioned, and a Dagster run holds
-- either partitioned or unpartitioned assets; unpartitioned, it would need a run of its own
-- between theirs. So every partitioned run rebuilds it (a pass over the few shared-address rows
-- and the data-centre conversions) before the credits of its days. A household whose screen
-- changed (a new shared day, a data-centre conversion) has its conversions of other days
-- credited under the old screen until those days are run again: the warning test
-- attribution_household_screens_current lists those days.
with shared as (
    select tenant_id, listener_ip_key as household_key, max(unique_listeners) as user_agents
    from {{ ref('int_shared_address_days') }}
    where {{ tenant_predicate('tenant_id') }} and unique_listeners > {{ var('attribution_max_household_user_agents') }}
    group by tenant_id, listener_ip_key
),

datacenter as (
    select distinct tenant_id, household_key
    from {{ ref('stg_conversions__events') }}
    where ip_datacenter and household_key is not null and {{ tenant_predicate('tenant_id') }}
)

select tenant_id, household_key, 'shared_ip' as reason_code, user_agents from shared
union all
select tenant_id, household_key, 'datacenter_ip', null from datacenter
where not exists (
    select 1 from shared
    where shared.tenant_id = datacenter.tenant_id and shared.household_key = datacenter.household_key
)

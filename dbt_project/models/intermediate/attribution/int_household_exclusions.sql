{{ config(indexes=[{'columns': ['tenant_id', 'household_key']}],
          materialized='table') }}
-- Households (hashed IP prefixes) that household matching must not use, with the reason:
--   shared_ip      on some day, more distinct user agents downloaded from the address than one
--                  home has (offices, campuses, carrier NAT: var attribution_max_household_user_agents);
--   datacenter_ip  conversions from a data-centre or VPN range.
with shared as (
    select tenant_id, listener_ip_key as household_key, max(unique_listeners) as user_agents
    from {{ ref('int_shared_address_days') }}
    where unique_listeners > {{ var('attribution_max_household_user_agents') }}
    group by tenant_id, listener_ip_key
),

datacenter as (
    select distinct tenant_id, household_key
    from {{ ref('stg_conversions__events') }}
    where ip_datacenter and household_key is not null
)

select tenant_id, household_key, 'shared_ip' as reason_code, user_agents from shared
union all
select tenant_id, household_key, 'datacenter_ip', null from datacenter
where not exists (
    select 1 from shared
    where shared.tenant_id = datacenter.tenant_id and shared.household_key = datacenter.household_key
)

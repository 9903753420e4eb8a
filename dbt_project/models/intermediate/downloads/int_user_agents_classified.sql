{#- A table, indexed: the request models join every request to it. (As a view with two view
    parents it was dropped by both parents' `drop ... cascade` on parallel dbt threads, and the
    two drops deadlocked.) -#}
{{ config(indexes=[{'columns': ['tenant_id', 'user_agent']}],
          tags=['partitioned'], materialized='incremental', incremental_strategy='append',
          pre_hook=["{{ delete_partition_tenants() }}"]) }}
-- One row per tenant and distinct user agent of its logs, rebuilt whole by every partitioned run
-- (between the day partitions of int_user_agents_daily and of the requests it classifies), for
-- the run's tenants only when it names some (var `tenants`): their rows are deleted and inserted
-- again, so runs for different tenants never rebuild the same rows (a table swap by each would
-- clash). Each agent is classified once per run, whatever the number of tenants it appears in.
-- OPAWG's deterministic match as its README gives it (newlines
-- removed; bots, apps, libraries, browsers, the first pattern in file order wins), the device
-- (first devices pattern, for agents that are not bots), and the IAB rules around it: malformed
-- agents and Apple Watch duplicates are dropped whatever matched; an agent no pattern matched
-- that calls itself a robot (bot, crawler, spider, scraper) is a bot. The text rule never
-- overrides a pattern: a phone named "CUBOT" running Chrome is a browser.
with tenant_agents as (
    select distinct tenant_id, user_agent from {{ ref('int_user_agents_daily') }}
    where {{ tenant_predicate('tenant_id') }}
),

agents as (
    select distinct user_agent from tenant_agents
),

cleaned as (
    select user_agent, regexp_replace(user_agent, '[\r\n]', '', 'g') as match_agent
    from agents
),

patterns as (
    select * from {{ ref('stg_reference__user_agent_patterns') }}
),

matched as (
    select
        cleaned.user_agent,
        entity.pattern_set,
        entity.entity_name,
        device.entity_name as device_name,
        device.category as device_category
    from cleaned
    left join lateral (
        select p.pattern_set, p.entity_name
        from patterns as p
        where p.match_priority is not null and cleaned.match_agent ~ p.pattern
        order by p.match_priority, p.ordinal
        limit 1
    ) as entity on true
    left join lateral (
        select p.entity_name, p.category
        from patterns as p
        where p.pattern_set = 'devices' and entity.pattern_set is distinct from 'bots'
            and cleaned.match_agent ~ p.pattern
        order by p.ordinal
        limit 1
    ) as device on true
),

final as (
    select
        user_agent,
        case
            when length(btrim(user_agent)) < 3 then 'malformed'
            when (user_agent ~* '^atc/' and user_agent ~* 'watchos') or user_agent ~* '\(null\)/\(null\) watchos'
                then 'watch'
            when pattern_set = 'bots' then 'bot'
            when pattern_set = 'apps' then 'app'
            when pattern_set = 'libraries' then 'library'
            when pattern_set = 'browsers' then 'browser'
            -- no pattern matched: an agent that declares itself a robot is one (not the CUBOT
            -- phone brand, which Android players and libraries OPAWG does not list carry)
            when user_agent ~* '((?<!cu)bot\y|crawler|spider|scraper)' then 'bot'
            else 'unknown'
        end as agent_type,
        coalesce(entity_name, 'Unknown') as agent_name,
        coalesce(device_name, 'Unknown') as device_name,
        coalesce(device_category, 'unknown') as device_category,
        case
            when user_agent ~* '(iphone|ipad|ios|cfnetwork|darwin|applecoremedia)' then 'ios'
            when user_agent ~* 'android|dalvik|exoplayer' then 'android'
            when user_agent ~* 'windows' then 'windows'
            when user_agent ~* 'macintosh|mac os x' then 'macos'
            when user_agent ~* 'linux' then 'linux'
            else 'unknown'
        end as platform
    from matched
)

select tenant_agents.tenant_id, final.*
from tenant_agents
inner join final on final.user_agent = tenant_agents.user_agent

{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key='file_key',
          post_hook=["create index if not exists {{ this.name }}_ingested_idx on {{ this }} (ingested_at)",
                     "create index if not exists {{ this.name }}_ip_day_idx on {{ this }} (tenant_id, ip_hash, event_date)",
                     "create index if not exists {{ this.name }}_group_idx on {{ this }} (group_key)"]) }}
-- Every request with its episode, agent, the byte interval it delivered, and the first
-- request-level IAB rule it fails (null when it may count). Incremental: a run takes the
-- log files (re)loaded since the last one, whole, and replaces their rows.
with requests as (
    select * from {{ ref('stg_listener_logs__events') }}
    {% if is_incremental() %}
    where file_key in (
        select distinct file_key from {{ ref('stg_listener_logs__events') }}
        where ingested_at > (select coalesce(max(ingested_at), '-infinity') from {{ this }})
    )
    {% endif %}
),

media as (
    select * from {{ ref('int_episode_media') }}
),

agents as (
    select * from {{ ref('int_user_agents_classified') }}
),

joined as (
    select
        requests.*,
        media.episode_id,
        media.podcast_id,
        media.enclosure_length_bytes,
        media.iab_threshold_bytes,
        agents.agent_type,
        agents.agent_name,
        agents.device_category,
        agents.platform,
        coalesce(requests.range_start, 0) as byte_from,
        coalesce(requests.range_start, 0) + greatest(requests.bytes_sent, 0) - 1 as byte_to,
        requests.range_start = 0 and requests.range_end = 1 as is_probe,
        (requests.event_time at time zone 'UTC')::date as event_date,
        md5(requests.tenant_id || '|' || requests.listener_ip_key || '|' || requests.user_agent || '|'
            || coalesce(media.episode_id, '')) as group_key
    from requests
    left join media
        on media.tenant_id = requests.tenant_id and media.media_key = requests.media_key
    left join agents
        on agents.user_agent = requests.user_agent
),

final as (
    select
        *,
        case
            when method = 'HEAD' then 'head'
            when method <> 'GET' then 'non_get'
            when status = 304 then 'status_304'
            when status not in (200, 206) then 'bad_status'
            when agent_type = 'malformed' then 'malformed_ua'
            when agent_type = 'bot' then 'bot'
            when agent_type = 'watch' then 'watchos_dup'
            when is_datacenter_ip then 'datacenter_ip'
            {% if var('iab_probe_policy') == 'drop' %}
            when is_probe then 'two_byte_range'
            {% endif %}
            when bytes_sent <= 0 then 'no_bytes'
            when episode_id is null then 'unmatched_media'
        end as screen_reason
    from joined
)

select * from final

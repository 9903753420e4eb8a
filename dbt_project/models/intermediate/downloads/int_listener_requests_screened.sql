-- Every request with its episode, agent, the byte interval it delivered, and the first
-- request-level IAB rule it fails (null when it may count).
with requests as (
    select * from {{ ref('stg_listener_logs__events') }}
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
        requests.range_start = 0 and requests.range_end = 1 as is_probe
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

{{ config(indexes=[{'columns': ['file_key', 'ingested_at']}, {'columns': ['screened_at']}, {'columns': ['tenant_id', 'ip_hash', 'event_date']}, {'columns': ['group_key']}],
          materialized='incremental', incremental_strategy='append',
          pre_hook=["{{ replace_batch_hook('file_key', ['group_key', 'tenant_id', 'ip_hash', 'event_date'], 'pg_temp.requests_screened__files') }}"],
          post_hook=["{{ create_removed_rows_table(['group_key', 'tenant_id', 'ip_hash', 'event_date']) }}"]) }}
-- Every request with its episode, agent, the byte interval it delivered, and the first
-- request-level IAB rule it fails (null when it may count), stamped with the run that screened
-- it (`screened_at`, the watermark of the models downstream). Incremental: a run takes the log
-- files of the loader's ledger whose current load it has not screened yet (new, committed late,
-- loaded again with other content, or emptied), whole. The rows of a file screened before are
-- replaced, and their groups recorded in `<this>__removed` so the models downstream recompute
-- them too (see removed_rows).
-- depends_on: {{ source('listener_log_ledger', 'listener_log_files') }}
{% if is_incremental() %}
{% set pending_files = create_batch_table('requests_screened__files', pending_log_files()) %}
{% endif %}
with requests as (
    {% if is_incremental() %}
    select events.* from {{ join_batch(pending_files, ref('stg_listener_logs__events'), ['file_key'], 'events') }}
    {% else %}
    select * from {{ ref('stg_listener_logs__events') }}
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
        now() as screened_at,
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

{{ config(indexes=[{'columns': ['file_key', 'ingested_at']}, {'columns': ['screened_at']}, {'columns': ['tenant_id', 'ip_hash', 'event_date']}, {'columns': ['group_key']}, {'columns': ['episode_id']}],
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
-- Matching: a request with a host matches the media file of its host + path; one logged
-- without a host matches by path (int_media_paths), unless the path is ambiguous
-- (`ambiguous_media_path`) or unknown (`unmatched_media_path`).
-- Bytes: a ranged response delivered the bytes of its range; a response without a range
-- field is placed at byte 0 when it is a 200 (the whole body from the start), but a 206
-- logged without its range (S3, plain combined, GCS...) cannot be placed: its body bytes are
-- `unplaced_bytes`, summed toward the threshold (int_downloads_iab_filtered). A 206 of at
-- most 2 bytes without a range is taken for the `bytes=0-1` probe it almost always is.
-- Status 0 (a CDN's `000`): IAB v2.3 reads Akamai's `000` as a 206 that ended prematurely, to
-- be counted only if it passes every filter; it is screened as a 206 (its bytes count, placed
-- by its range when logged, else unplaced).
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

paths as (
    select * from {{ ref('int_media_paths') }}
),

agents as (
    select * from {{ ref('int_user_agents_classified') }}
),

joined as (
    select
        requests.*,
        media.episode_id,
        media.podcast_id,
        media.media_key as matched_media_key,
        paths.media_files as path_media_files,
        agents.agent_type,
        agents.agent_name,
        agents.device_category,
        agents.platform,
        case when requests.range_start is not null or requests.status not in (0, 206) then
            coalesce(requests.range_start, 0) end as byte_from,
        case when requests.range_start is not null or requests.status not in (0, 206) then
            coalesce(requests.range_start, 0) + greatest(requests.bytes_sent, 0) - 1 end as byte_to,
        case when requests.range_start is null and requests.status in (0, 206) then
            greatest(requests.bytes_sent, 0) else 0 end as unplaced_bytes,
        coalesce(requests.range_start = 0 and requests.range_end = 1, false)
            or (requests.range_start is null and requests.status in (0, 206) and requests.bytes_sent between 1 and 2) as is_probe,
        (requests.event_time at time zone 'UTC')::date as event_date,
        now() as screened_at,
        md5(requests.tenant_id || '|' || requests.listener_ip_key || '|' || requests.user_agent || '|'
            || coalesce(media.episode_id, '')) as group_key
    from requests
    left join paths
        on requests.media_key is null and paths.tenant_id = requests.tenant_id and paths.media_path = requests.path
    left join media
        on media.tenant_id = requests.tenant_id and media.media_key = coalesce(requests.media_key, paths.media_key)
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
            when status not in (0, 200, 206) then 'bad_status'
            when agent_type = 'malformed' then 'malformed_ua'
            when agent_type = 'bot' then 'bot'
            when agent_type = 'watch' then 'watchos_dup'
            when is_datacenter_ip then 'datacenter_ip'
            {% if var('iab_probe_policy') == 'drop' %}
            when is_probe then 'two_byte_range'
            {% endif %}
            when bytes_sent <= 0 then 'no_bytes'
            when episode_id is null and host is not null then 'unmatched_media'
            when episode_id is null and path_media_files > 1 then 'ambiguous_media_path'
            when episode_id is null then 'unmatched_media_path'
        end as screen_reason
    from joined
)

select * from final

{{ config(indexes=[{'columns': ['event_date']}, {'columns': ['request_id']}, {'columns': ['tenant_id', 'ip_hash', 'event_date']},
                   {'columns': ['group_key']}, {'columns': ['episode_id', 'event_date']}],
          tags=['partitioned'], materialized='incremental', incremental_strategy='append',
          meta={'retention_day_column': 'event_date'},
          pre_hook=["{{ delete_partition_window('event_date') }}"]) }}
-- Every request with its episode, agent, the byte interval it delivered, and the first
-- request-level IAB rule it fails (null when it may count). Daily-partitioned by the request's
-- UTC day (`event_date`): a run replaces the requests of its days with what the raw events of
-- those days are now (a file loaded late, loaded again with other content, emptied or removed
-- changes the days its events fall on; the Dagster sensor that watches the loader's ledger
-- requests them, pipelines/partition_sensor.py). Days older than `request_retention_days` are
-- deleted (resources/request_retention.py); the facts keep them.
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
with requests as (
    select * from {{ ref('stg_listener_logs__events') }} where {{ partition_time_window('event_time') }}
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
        md5(requests.tenant_id || '|' || requests.listener_ip_key || '|' || requests.user_agent || '|'
            || coalesce(media.episode_id, '')) as group_key
    from requests
    left join paths
        on requests.media_key is null and paths.tenant_id = requests.tenant_id and paths.media_path = requests.path
    left join media
        on media.tenant_id = requests.tenant_id and media.media_key = coalesce(requests.media_key, paths.media_key)
    left join agents
        on agents.tenant_id = requests.tenant_id and agents.user_agent = requests.user_agent
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

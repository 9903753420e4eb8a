{#- A table with an index: requests logged without a host are joined to it by path. -#}
{{ config(indexes=[{'columns': ['tenant_id', 'media_path']}],
          materialized='table') }}
-- One row per tenant and media path, with the media file a request logged without a host
-- (S3 server access logs, plain `combined`, GCS...) is counted for. The candidates are the
-- tenant's media files on the hosts its log source serves (`raw.listener_log_sources`, from
-- sources.yaml) when the tenant names any, else all of the tenant's media files. A path with
-- one candidate matches it; a path with several (`media_files` > 1: the same path on two
-- hosts) is ambiguous and matches none, so that no request is counted for the wrong show.
with media as (
    select tenant_id, media_key, media_host, media_path
    from {{ ref('int_episode_media') }}
),

log_sources as (
    select distinct tenant_id, lower(btrim(media_host)) as media_host
    from {{ source('listener_logs', 'listener_log_sources') }}
),

candidates as (
    select media.*
    from media
    where not exists (select 1 from log_sources where log_sources.tenant_id = media.tenant_id)
        or exists (
            select 1 from log_sources
            where log_sources.tenant_id = media.tenant_id and log_sources.media_host = media.media_host
        )
),

final as (
    select
        tenant_id,
        media_path,
        count(*) as media_files,
        case when count(*) = 1 then min(media_key) end as media_key
    from candidates
    group by 1, 2
)

select * from final

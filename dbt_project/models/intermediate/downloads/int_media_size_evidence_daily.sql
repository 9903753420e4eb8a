{{ config(indexes=[{'columns': ['event_date']}, {'columns': ['episode_id']}],
          tags=['partitioned'], materialized='incremental', incremental_strategy='append',
          pre_hook=["{{ delete_partition_window('event_date') }}"]) }}
-- Per UTC day and episode, what the servers logged of the episode's file size (the evidence
-- int_media_sizes weighs): the largest object size a log states (S3 `Object Size`,
-- Content-Range totals), the largest body of a `200` without a range, and the largest range end
-- + 1. Daily-partitioned by the requests' day: each is a maximum, so the evidence of all days is
-- the maximum of the days', and a day loaded again replaces its own. Kept whatever
-- `request_retention_days` says (one row per episode and day, not per request): the sizes are
-- learned from every day's evidence, and deleting old days would change them.
select
    event_date,
    tenant_id,
    episode_id,
    max(object_size) filter (where status in (200, 206, 304) and object_size > 0) as log_object_size,
    max(bytes_sent) filter (
        where method = 'GET' and status = 200 and range_start is null and bytes_sent > 0
    ) as log_complete_bytes,
    max(coalesce(range_end, range_start + bytes_sent - 1)) filter (
        where method = 'GET' and status = 206 and range_start is not null and bytes_sent > 0
    ) + 1 as log_range_bound
from {{ ref('int_listener_requests_screened') }}
where episode_id is not null and {{ partition_window('event_date') }}
group by 1, 2, 3

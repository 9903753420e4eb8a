{{ config(indexes=[{'columns': ['event_date']}],
          tags=['partitioned'], materialized='incremental', incremental_strategy='append',
          meta={'retention_day_column': 'event_date'},
          pre_hook=["{{ delete_partition_window('event_date') }}"]) }}
-- The distinct user agents of each UTC day and tenant of the logs, so that classifying the agents
-- does not read every event on each run. Daily-partitioned by the requests' day (and narrowed to
-- the run's tenants with the var `tenants`). Days older than `request_retention_days` are deleted
-- (resources/request_retention.py): the classification then holds the agents of the days kept,
-- the only days a run reads requests of.
select distinct
    (events.event_time at time zone 'UTC')::date as event_date,
    events.tenant_id,
    events.user_agent
from {{ ref('stg_listener_logs__events') }} as events
where {{ partition_time_window('events.event_time') }}

{{ config(indexes=[{'columns': ['file_key', 'ingested_at']}],
          materialized='incremental', incremental_strategy='append',
          pre_hook="{% if is_incremental() %}{{ delete_batch('pg_temp.log_file_user_agents__files', 'file_key') }}{% endif %}") }}
-- The distinct user agents of each loaded log file, so that classifying the agents does not read
-- every event on each run. Incremental: the files of the ledger whose current load is not in
-- yet (see pending_log_files), read through the events' primary key.
-- depends_on: {{ source('listener_log_ledger', 'listener_log_files') }}
{% if is_incremental() %}
{% set pending_files = create_batch_table('log_file_user_agents__files', pending_log_files()) %}
{% endif %}
select distinct
    events.file_key,
    events.ingested_at,
    events.user_agent
{% if is_incremental() %}
from {{ join_batch(pending_files, ref('stg_listener_logs__events'), ['file_key'], 'events') }}
{% else %}
from {{ ref('stg_listener_logs__events') }} as events
{% endif %}

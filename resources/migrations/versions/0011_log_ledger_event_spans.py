"""The log ledger knows which days a file's events fall on: `first_event_at`/`last_event_at` span
the events of its current load, and `changed_from`/`changed_to` the events its latest change
(a load, a load of other content, an emptying or a removal) added or removed, old and new
together. The partition sensor requests the daily-partitioned dbt models of those days
(pipelines/partition_sensor.py). Files loaded before this revision get their span from their
stored events.
"""

from resources.schema import run_script

revision = "0011"
down_revision = "0010"


def upgrade() -> None:
    run_script("""
        alter table ops.listener_log_files add column if not exists first_event_at timestamptz;
        alter table ops.listener_log_files add column if not exists last_event_at timestamptz;
        alter table ops.listener_log_files add column if not exists changed_from timestamptz;
        alter table ops.listener_log_files add column if not exists changed_to timestamptz;
        update ops.listener_log_files as f
        set first_event_at = spans.first_event_at, last_event_at = spans.last_event_at
        from (select file_key, min(event_time) as first_event_at, max(event_time) as last_event_at
              from raw.listener_events group by file_key) as spans
        where spans.file_key = f.file_key and f.first_event_at is null;
        create index if not exists listener_log_files_loaded_idx on ops.listener_log_files (loaded_at);
    """)

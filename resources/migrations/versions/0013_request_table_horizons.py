"""Retention of the request-level dbt tables (`request_retention_days`, docs/PARTITIONED_DBT.md):
the first day each of them still holds once older days were deleted. A partitioned run that would
read a deleted day (a day's IAB windows start from the day before's) is refused against it; a full
rebuild, which reads the raw events again, removes its row.
"""

from resources.schema import run_script

revision = "0013"
down_revision = "0012"


def upgrade() -> None:
    run_script("""
        create table if not exists ops.request_table_horizons (
            table_name   text        primary key,
            kept_from    date        not null,
            pruned_at    timestamptz not null default now(),
            rows_deleted bigint      not null default 0
        );
    """)

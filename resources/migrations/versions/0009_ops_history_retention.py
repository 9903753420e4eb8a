"""Retention of the ops history tables (`PODCAST_OPS_HISTORY_DAYS`): the writers delete rows older
than the retention each time they append, so the tables get an index on time alone.
`ops.sla_status_history` is pruned by snapshot time; `ops.quality_results` by evaluation time,
except the latest result of each rule (scores read the latest, however old).
"""

from resources.schema import run_script

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    run_script("""
        create index if not exists sla_status_history_time_idx on ops.sla_status_history (snapshot_at);
        create index if not exists quality_results_time_idx on ops.quality_results (evaluated_at);
    """)

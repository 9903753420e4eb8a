"""Baseline: the schema the per-run bootstrap used to create (resources/sql/*.sql), the read-only
role's grants (readers.sql), and TimescaleDB's hypertables and policies when the server has it.

Every statement is idempotent (`if not exists`), so a warehouse the old bootstrap created
adopts this revision by running it: nothing is dropped, rows stay. The SQL files are this
revision's: a later change to the schema is a new revision, not an edit of them.
"""

from alembic import op

from resources.schema import run_script
from resources.warehouse import bootstrap_sql, enable_timescale, timescale_available

revision = "0001"
down_revision = None


def upgrade() -> None:
    run_script(bootstrap_sql())
    conn = op.get_bind().connection.driver_connection
    if timescale_available(conn):
        enable_timescale(conn)

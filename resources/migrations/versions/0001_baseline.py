"""Baseline: the schema the per-run bootstrap used to create (resources/sql/*.sql) and the
read-only role's grants (readers.sql). TimescaleDB's hypertables and policies are revision 0010's
(this revision made them whenever the extension was installed, and failed where it was installed
but not preloaded).

Every statement is idempotent (`if not exists`), so a warehouse the old bootstrap created
adopts this revision by running it: nothing is dropped, rows stay. The SQL files are this
revision's: a later change to the schema is a new revision, not an edit of them.
"""

from resources.schema import run_script
from resources.warehouse import bootstrap_sql

revision = "0001"
down_revision = None


def upgrade() -> None:
    run_script(bootstrap_sql())

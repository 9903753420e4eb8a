"""${message}

Forward only: every statement idempotent (`if not exists`, `do $$ ... $$` guards), as the
baseline's, so a half-applied revision can be applied again.
"""

from resources.schema import run_script

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}


def upgrade() -> None:
    run_script("""
        -- the statements of this revision
    """)

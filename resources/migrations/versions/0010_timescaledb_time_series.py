"""TimescaleDB as the raw time-series tables' store: on a server that preloads it (and unless
PODCAST_TIMESCALEDB=off), `raw.listener_events`, `raw.attribution_events` and
`raw.rss_feed_fetches` become hypertables (their rows moved into chunks) with the chunk interval,
compression and retention of the settings; on any other server they stay plain tables, and the
line `migrate` prints says why. The baseline used to do this whenever the extension was merely
installed, and failed on a server that had it installed but not preloaded.

Every later `migrate` brings the policies to the settings again and converts the tables once the
server preloads the extension (`resources.schema.migrate`).
"""

from alembic import context, op

from resources.warehouse import apply_timescale

revision = "0010"
down_revision = "0009"


def upgrade() -> None:
    mode, policies = context.config.attributes["timescale"]
    apply_timescale(op.get_bind().connection.driver_connection, mode, policies)

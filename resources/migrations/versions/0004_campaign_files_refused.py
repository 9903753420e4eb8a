"""A sponsorship file that could not be read (whole, or past a point: a broken gzip stream, a
workbook that does not open, a file over the size limit) is recorded in `ops.campaign_files`
with the reason, so the same bytes are not retried on every run."""

from resources.schema import run_script

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    run_script("""
        alter table ops.campaign_files add column if not exists refused_reason text;
        alter table ops.campaign_files add column if not exists refused_detail text;
    """)

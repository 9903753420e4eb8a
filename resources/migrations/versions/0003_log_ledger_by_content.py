"""The log ledger is keyed by content: `sha256` is the checksum of the content loaded
(decompressed), so a copy, a rename or a rotation (`x.log` -> `x.log.gz`) is recognised.

status: loaded | duplicate (the content of `duplicate_of`, a loaded file of the same tenant;
nothing loaded) | refused (unreadable gzip; sha256 of the file's bytes, one quarantined line)
| deleted (the file left the landing folder; its rows were removed). `reason` says why.
"""

from resources.schema import run_script

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    run_script("""
        alter table ops.listener_log_files add column if not exists status text not null default 'loaded';
        alter table ops.listener_log_files add column if not exists reason text;
        alter table ops.listener_log_files add column if not exists duplicate_of text;
        create index if not exists listener_log_files_content_idx on ops.listener_log_files (tenant_id, sha256);
    """)

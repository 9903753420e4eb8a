"""The log ledger also keeps the checksum of a file's bytes as stored (`raw_sha256`; compressed
for a gzip), beside that of its content (`sha256`). Whether a file is unchanged is decided on
the bytes, which is cheap to hash; the content is hashed while it is loaded, in the same pass,
instead of being decompressed a second time beforehand."""

from resources.schema import run_script

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    run_script("""
        alter table ops.listener_log_files add column if not exists raw_sha256 text;
    """)

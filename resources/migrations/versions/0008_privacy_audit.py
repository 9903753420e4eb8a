"""The audit of data-subject requests and tenant deletions (`podcast-analytics privacy export |
erase`, `tenants delete`): who asked, when, about whom, and how many rows of which table it
touched. The subject is recorded by its keyed hash (`subject_key`), never by the value given.

kind: export | erase | delete_tenant. status: completed | rebuild_pending (rows erased, the
models built from them not yet rebuilt: the next erase with a rebuild takes them along) |
rebuild_failed (the dbt build of the models failed; `detail` says which). `rows` maps
`schema.table` to the rows exported, erased or deleted; `detail` holds the models rebuilt, the
reports to re-render and the files removed.
"""

from resources.schema import run_script

revision = "0008"
down_revision = "0007"


def upgrade() -> None:
    run_script("""
        create table if not exists ops.privacy_requests (
            request_id    bigint generated always as identity primary key,
            kind          text        not null check (kind in ('export', 'erase', 'delete_tenant')),
            tenant_id     text        not null,
            subject_kind  text        not null check (subject_kind in ('email', 'phone', 'customer', 'ip', 'tenant')),
            subject_key   text,
            requested_by  text        not null,
            requested_at  timestamptz not null default now(),
            completed_at  timestamptz,
            rows          jsonb       not null default '{}',
            status        text        not null check (status in ('completed', 'rebuild_pending', 'rebuild_failed')),
            detail        jsonb       not null default '{}'
        );
        create index if not exists privacy_requests_pending_idx on ops.privacy_requests (status)
            where status <> 'completed';
    """)

"""Reader roles cannot hold the warehouse: podcast_reader and every log-in role in it (Grafana's,
a BI tool's) get a statement timeout and an idle-in-transaction timeout. A BI session left
idle in a transaction on a mart blocked dbt's table swap (and every query queued behind the
swap) until someone killed it; now the server ends it after a minute, within the minutes dbt's
swap waits (PODCAST_DBT_LOCK_TIMEOUT).

Role settings are not inherited through membership, hence the loop over the members. A role
added later gets the same two settings by `alter role <name> set ...` (README, "Read-only
access"). A warehouse owner that may not alter roles (a managed database) gets a notice.
"""

from resources.schema import run_script

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    run_script("""
        do $$
        declare
            reader text;
        begin
            for reader in
                select 'podcast_reader' where exists (select from pg_roles where rolname = 'podcast_reader')
                union
                select member.rolname
                from pg_auth_members as membership
                join pg_roles as reader_role on reader_role.oid = membership.roleid
                join pg_roles as member on member.oid = membership.member
                where reader_role.rolname = 'podcast_reader' and not member.rolsuper
            loop
                begin
                    execute format('alter role %I set statement_timeout = %L', reader, '60s');
                    execute format('alter role %I set idle_in_transaction_session_timeout = %L', reader, '60s');
                exception
                    when insufficient_privilege then
                        raise notice 'timeouts of role % not set: % (set them as an administrator)', reader, sqlerrm;
                end;
            end loop;
        end $$;
    """)

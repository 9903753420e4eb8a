"""The dbt models are daily-partitioned (docs/PARTITIONED_DBT.md): the side tables the incremental
models kept in the schema `internal` (`<model>__runs`, `__removed`, `__exclusions`) are read and
written by nothing any more, and go. The schema stays (readable by no reader role)."""

from resources.schema import run_script

revision = "0012"
down_revision = "0011"


def upgrade() -> None:
    run_script("""
        do $$
        declare side record;
        begin
            for side in select c.relname from pg_class as c
                        where c.relnamespace = 'internal'::regnamespace and c.relkind = 'r'
                          and c.relname ~ '__(runs|removed|exclusions)$'
            loop
                execute format('drop table internal.%I', side.relname);
            end loop;
        end $$;
    """)

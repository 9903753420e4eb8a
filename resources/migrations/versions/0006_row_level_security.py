"""Row-level security by tenant, per-tenant readers, and the side tables out of the readers' way.

- `podcast_tenant_reader` (no login): the group of the per-tenant log-in roles
  (`podcast-analytics tenants add-reader TENANT --login NAME`). `ops.tenant_readers` maps each
  such login to the tenants it may read; `public.reader_tenant_ids()` (security definer: the
  readers cannot read ops) returns the tenants of the session's login.
- Every table of marts and reports with a `tenant_id` column gets row-level security: policy
  `network_reader` (podcast_reader sees every row) and `tenant_reader` (a tenant reader sees its
  tenants' rows); `reports.deliveries` follows the report it delivered. Only then does
  podcast_tenant_reader get SELECT. The dbt marts get the same from their post-hook
  (dbt_project/macros/tenant_isolation.sql) at every build; the tables outside dbt
  (marts.sla_status, the report registry) and the marts already built get it here.
- The dbt models' side tables (`<model>__runs`, `__removed`, `__exclusions`) move to the schema
  `internal`, which no reader role may use (dbt writes them there from now on).

The table owner (the platform's own role) is not subject to the policies. A server where the
owner may not create roles (a managed database) gets a notice; an administrator creates the
role there, and the marts' post-hook adds their policies at the next build.
"""

from resources.schema import run_script

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    run_script("""
        do $$
        begin
            if not exists (select from pg_roles where rolname = 'podcast_tenant_reader') then
                create role podcast_tenant_reader nologin;
            end if;
        exception
            when insufficient_privilege then
                raise notice 'podcast_tenant_reader not created: % (create it as an administrator)', sqlerrm;
            when duplicate_object or unique_violation then
                null;  -- another database of this server created it at the same moment
        end $$;

        create table if not exists ops.tenant_readers (
            role_name  text        not null,
            tenant_id  text        not null,
            created_at timestamptz not null default now(),
            primary key (role_name, tenant_id)
        );

        create or replace function public.reader_tenant_ids() returns setof text
        language sql stable security definer
        set search_path = pg_catalog
        as $fn$
            select tenant_id from ops.tenant_readers where role_name = session_user
        $fn$;
        revoke all on function public.reader_tenant_ids() from public;

        create schema if not exists internal;
        revoke all on schema internal from public;

        do $$
        declare
            side record;
            relation record;
            network_role boolean := exists (select from pg_roles where rolname = 'podcast_reader');
            tenant_role boolean := exists (select from pg_roles where rolname = 'podcast_tenant_reader');
        begin
            for side in
                select n.nspname as schema_name, c.relname as table_name
                from pg_class as c join pg_namespace as n on n.oid = c.relnamespace
                where n.nspname in ('staging', 'intermediate', 'marts') and c.relkind in ('r', 'p')
                    and c.relname ~ '__(runs|removed|exclusions)$'
                    and not exists (select from pg_class as moved
                                    where moved.relnamespace = 'internal'::regnamespace and moved.relname = c.relname)
            loop
                execute format('alter table %I.%I set schema internal', side.schema_name, side.table_name);
                if network_role then
                    execute format('revoke all on internal.%I from podcast_reader', side.table_name);
                end if;
            end loop;

            if tenant_role then
                execute 'grant execute on function public.reader_tenant_ids() to podcast_tenant_reader';
                execute 'grant usage on schema marts, reports to podcast_tenant_reader';
            end if;
            for relation in
                select c.oid::regclass as name
                from pg_class as c join pg_namespace as n on n.oid = c.relnamespace
                where n.nspname in ('marts', 'reports') and c.relkind in ('r', 'p')
                    and exists (select from pg_attribute as a
                                where a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped)
            loop
                execute format('alter table %s enable row level security', relation.name);
                if network_role then
                    execute format('drop policy if exists network_reader on %s', relation.name);
                    execute format('create policy network_reader on %s for select to podcast_reader using (true)',
                                   relation.name);
                end if;
                if tenant_role then
                    execute format('drop policy if exists tenant_reader on %s', relation.name);
                    execute format('create policy tenant_reader on %s for select to podcast_tenant_reader '
                                   'using (tenant_id in (select public.reader_tenant_ids()))', relation.name);
                    execute format('grant select on %s to podcast_tenant_reader', relation.name);
                end if;
            end loop;

            -- A delivery is the tenant's when its report is (reports.reports' own policies apply
            -- to the subquery: a tenant reader sees its reports only).
            alter table reports.deliveries enable row level security;
            if network_role then
                drop policy if exists network_reader on reports.deliveries;
                create policy network_reader on reports.deliveries for select to podcast_reader using (true);
            end if;
            if tenant_role then
                drop policy if exists tenant_reader on reports.deliveries;
                create policy tenant_reader on reports.deliveries for select to podcast_tenant_reader
                    using (exists (select 1 from reports.reports as report
                                   where report.report_id = deliveries.report_id));
                grant select on reports.deliveries to podcast_tenant_reader;
            end if;
        end $$;
    """)

-- Read-only access for BI tools and dashboards (Grafana): the role podcast_reader may read the
-- marts and the report registry, nothing else (no raw, quarantine or ops tables, no writes).
-- Log-in roles are made members of it (deploy/initdb does it for Grafana). The default
-- privileges cover the tables dbt creates later, rebuilt ones included. A server where the
-- warehouse's owner may not create roles (a managed database) gets a notice instead; an
-- administrator creates podcast_reader there and the next bootstrap grants it.
do $$
begin
    if not exists (select from pg_roles where rolname = 'podcast_reader') then
        create role podcast_reader nologin;
    end if;
exception
    when insufficient_privilege then
        raise notice 'podcast_reader not created: % (create it as an administrator)', sqlerrm;
    when duplicate_object or unique_violation then
        null;  -- another database of this server created it at the same moment
end $$;

do $$
declare
    schema_name text;
begin
    if exists (select from pg_roles where rolname = 'podcast_reader') then
        foreach schema_name in array array['marts', 'reports'] loop
            execute format('grant usage on schema %I to podcast_reader', schema_name);
            execute format('grant select on all tables in schema %I to podcast_reader', schema_name);
            execute format('alter default privileges in schema %I grant select on tables to podcast_reader',
                           schema_name);
        end loop;
    end if;
end $$;

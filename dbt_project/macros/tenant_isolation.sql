{#-
  tenant_isolation(): post-hook of every mart (dbt_project.yml), run in the model's transaction
  after each build, so a table swap, a full refresh or an incremental run never leaves a mart
  readable without its policies.
    - a table with a `tenant_id` column gets row-level security: the network-wide reader
      (podcast_reader) sees every row (policy network_reader), the per-tenant readers (members of
      podcast_tenant_reader, `podcast-analytics tenants add-reader`) only the rows of their
      tenants (policy tenant_reader, through public.reader_tenant_ids(), migration 0006); only
      then is SELECT granted to podcast_tenant_reader;
    - a table without one (a network-wide dimension, pooled benchmarks) is for podcast_reader
      only: SELECT is revoked from podcast_tenant_reader;
    - a view cannot carry policies: it becomes security_barrier and security_invoker, so the
      policies of the tables under it apply to whoever reads it (podcast_tenant_reader holds
      SELECT only on tables with policies), and tenant readers get it when it has `tenant_id`.
  Each statement runs only when the relation lacks what it sets (no lock on incremental runs
  that change nothing). A server without the reader roles (a managed database before an
  administrator created them) gets row-level security without policies: only the owner reads.
-#}
{% macro tenant_isolation() -%}
{%- set materialized = config.get('materialized') -%}
do $tenants$
declare
    relation regclass := '{{ this }}'::regclass;
    tenant_column boolean := exists (
        select 1 from pg_attribute where attrelid = relation and attname = 'tenant_id' and not attisdropped);
    network_role boolean := exists (select 1 from pg_roles where rolname = 'podcast_reader');
    tenant_role boolean := exists (select 1 from pg_roles where rolname = 'podcast_tenant_reader');
begin
{%- if materialized == 'view' %}
    alter view {{ this }} set (security_barrier = true, security_invoker = true);
{%- else %}
    if tenant_column then
        if not (select relrowsecurity from pg_class where oid = relation) then
            alter table {{ this }} enable row level security;
        end if;
        if network_role and not exists (
                select 1 from pg_policy where polrelid = relation and polname = 'network_reader') then
            create policy network_reader on {{ this }} for select to podcast_reader using (true);
        end if;
        if tenant_role and not exists (
                select 1 from pg_policy where polrelid = relation and polname = 'tenant_reader') then
            create policy tenant_reader on {{ this }} for select to podcast_tenant_reader
                using (tenant_id in (select public.reader_tenant_ids()));
        end if;
    end if;
{%- endif %}
    if tenant_role then
        if tenant_column and not has_table_privilege('podcast_tenant_reader', relation, 'select') then
            grant select on {{ this }} to podcast_tenant_reader;
        elsif not tenant_column and has_table_privilege('podcast_tenant_reader', relation, 'select') then
            revoke select on {{ this }} from podcast_tenant_reader;
        end if;
    end if;
end
$tenants$
{%- endmacro %}

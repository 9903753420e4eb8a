{#-
  When int_listener_requests_screened screens a log file again (loaded again with other content,
  or emptied), the groups (listener + episode) of the rows it replaces may lose requests or
  vanish. The models downstream find new requests by `screened_at`, but cannot see rows that
  are gone; this side table lists the groups, IP and day of every replaced row with the time
  of the run, and the models downstream add them to their batch.
-#}
{% macro replaced_groups_relation(screened) -%}
{{ api.Relation.create(database=screened.database, schema=screened.schema, identifier=screened.identifier ~ '__replaced') }}
{%- endmacro %}

{% macro create_replaced_groups_table() -%}
create table if not exists {{ replaced_groups_relation(this) }} (
    group_key text not null, tenant_id text not null, ip_hash text not null, event_date date,
    replaced_at timestamptz not null
)
{%- endmacro %}

{#- Pre-hook of int_listener_requests_screened (incremental): record, then delete, the rows of
    the pending files (pg_temp.requests_screened__files, made when the model compiled). -#}
{% macro record_replaced_requests() -%}
{{ create_replaced_groups_table() }};
insert into {{ replaced_groups_relation(this) }} (group_key, tenant_id, ip_hash, event_date, replaced_at)
select distinct replaced.group_key, replaced.tenant_id, replaced.ip_hash, replaced.event_date, now()
from {{ join_batch('pg_temp.requests_screened__files', this, ['file_key'], 'replaced') }};
{{ delete_batch('pg_temp.requests_screened__files', 'file_key') }}
{%- endmacro %}

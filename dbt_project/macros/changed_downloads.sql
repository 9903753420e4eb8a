{#-
  The rollups of fct_downloads are incremental by day (and engagement by episode): a run
  recomputes the days and episodes of downloads counted since its last run (`counted_at`), and
  of downloads fct_downloads removed, which it can no longer see. fct_downloads records those
  in `<fct_downloads>__changed` before it removes them.
-#}
{% macro changed_downloads_relation(downloads) -%}
{{ api.Relation.create(database=downloads.database, schema=downloads.schema, identifier=downloads.identifier ~ '__changed') }}
{%- endmacro %}

{% macro create_changed_downloads_table() -%}
create table if not exists {{ changed_downloads_relation(this) }} (
    download_date date not null, episode_id text, changed_at timestamptz not null
)
{%- endmacro %}

{#- Pre-hook of fct_downloads (incremental): record, then delete, the downloads of the batch's
    groups (pg_temp.downloads__groups, made when the model compiled). -#}
{% macro record_changed_downloads() -%}
{{ create_changed_downloads_table() }};
insert into {{ changed_downloads_relation(this) }} (download_date, episode_id, changed_at)
select distinct removed.download_date, removed.episode_id, now()
from {{ join_batch('pg_temp.downloads__groups', this, ['group_key'], 'removed') }};
{{ delete_batch('pg_temp.downloads__groups', 'group_key') }}
{%- endmacro %}

{#- In an incremental rollup: the batch of `key` values (download_date or episode_id) to
    recompute, as an analyzed temporary table. -#}
{% macro changed_downloads_batch(key) -%}
{%- set downloads = ref('fct_downloads') -%}
{{ return(create_batch_table(this.name ~ '__batch', "
    with watermark as (
        select coalesce(max(counted_at), '-infinity') as counted_at from " ~ this ~ "
    )
    select " ~ key ~ " from " ~ downloads ~ " where counted_at > (select counted_at from watermark)
    union
    select " ~ key ~ " from " ~ changed_downloads_relation(downloads) ~ "
    where changed_at > (select counted_at from watermark)")) }}
{%- endmacro %}

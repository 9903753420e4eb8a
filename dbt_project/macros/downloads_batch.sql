{#-
  The rollups of fct_downloads are incremental by day (and engagement by episode): a run
  recomputes the days and episodes of downloads counted since its last run (`counted_at`), and
  of downloads fct_downloads removed, which it can no longer see: fct_downloads records those
  in `<fct_downloads>__removed` before it removes them (see removed_rows).
  changed_downloads_batch(key): the batch of `key` values (download_date or episode_id) to
  recompute, as an analyzed temporary table.
-#}
{% macro changed_downloads_batch(key) -%}
{%- set downloads = ref('fct_downloads') -%}
{{ return(create_batch_table(this.name ~ '__batch', "
    with watermark as (
        select coalesce(max(counted_at), '-infinity') as counted_at from " ~ this ~ "
    )
    select " ~ key ~ " from " ~ downloads ~ " where counted_at > (select counted_at from watermark)
    union
    select " ~ key ~ " from " ~ removed_rows_relation(downloads) ~ "
    where removed_at > (select counted_at from watermark)")) }}
{%- endmacro %}

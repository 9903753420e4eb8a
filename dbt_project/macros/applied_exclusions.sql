{#-
  The household exclusions an attribution run applied, kept beside the model
  (`<model>__exclusions`, one row per household with its reason), so the next run recomputes
  only the households whose exclusion came, went or changed reason since, not every excluded
  household every time.
    household_exclusions(): each excluded household once, with its first reason;
    applied_exclusions(): the side table; an incremental run that finds none (a warehouse built
      before it existed) starts from an empty one, and so recomputes every excluded household;
    changed_exclusions(): the households whose exclusion differs from the applied one;
    record_applied_exclusions() (post-hook): the side table becomes what this run applied.
-#}
{% macro household_exclusions() -%}
select tenant_id, household_key, min(reason_code) as reason_code
from {{ ref('int_household_exclusions') }}
group by tenant_id, household_key
{%- endmacro %}

{% macro applied_exclusions() -%}
{%- set relation = side_relation(this, '__exclusions') %}
{%- if execute and is_incremental() %}
{%- call statement('applied_exclusions_' ~ this.name) %}
create table if not exists {{ relation }} as {{ household_exclusions() }} limit 0
{%- endcall %}
{%- endif %}
{{- relation }}
{%- endmacro %}

{% macro changed_exclusions() -%}
{%- set applied = applied_exclusions() %}
select household_key from (
    ({{ household_exclusions() }} except select tenant_id, household_key, reason_code from {{ applied }})
    union all
    (select tenant_id, household_key, reason_code from {{ applied }} except {{ household_exclusions() }})
) as changed
{%- endmacro %}

{% macro record_applied_exclusions() -%}
drop table if exists {{ side_relation(this, '__exclusions') }};
create table {{ side_relation(this, '__exclusions') }} as {{ household_exclusions() }}
{%- endmacro %}

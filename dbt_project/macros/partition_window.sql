{#-
  The partition window of a run: `[var('min_date'), var('max_date'))`, UTC days, passed by the
  partitioned dbt assets (assets/dbt.py) from the Dagster partition time window. A run without
  them (a bare `dbt build`, `--full-refresh`) covers every day.

  window_day(offset): the window's first day (`'min'`) or the day after its last (`'max'`), moved
  by `offset` days, as a date string; none without vars.
  partition_window(column, before=0, after=0): the predicate that keeps the rows of `column` (a
  date) inside the window, widened by `before` days at the start and `after` days at the end,
  with the bounds as literals (the planner sees plain ranges: index range scans, TimescaleDB
  chunk exclusion at plan time, no scalar subqueries).
  partition_time_window(column, before=0, after=0): the same for a timestamptz column (UTC days).
  delete_partition_window(column): pre-hook of a partitioned model: on an incremental run the
  window's rows go first and the model inserts the window again (strategy `append`), so a day
  whose rows all went away ends up empty.
  Data tests on a partitioned model read the window only: `where: "__partition_window__:<column>"`
  (see get_where_subquery below).

  Tenants: the var `tenants` (a list of tenant ids; absent = every tenant) narrows a run to those
  tenants' rows (docs/PARTITIONED_DBT.md, section 14): the window predicate, the window delete and
  the data tests' window also keep `tenant_id in (...)`, so a run for one tenant reads, deletes
  and rewrites that tenant's rows only, and runs for different tenants touch disjoint rows.
  partition_window's `tenant` argument names the tenant column: by default `tenant_id` of the
  same relation as `column` (`downloads.download_date` -> `downloads.tenant_id`); `none` for a
  read that is not narrowed.
  tenant_predicate(column): `column in (<tenants>)`, or `true` without the var.
  delete_partition_tenants(): pre-hook of the small tables rebuilt whole by every partitioned run
  (int_user_agents_classified, int_household_exclusions): the run's tenants' rows go first.
-#}
{% macro window_day(bound, offset=0) -%}
{%- set value = var('min_date' if bound == 'min' else 'max_date', none) -%}
{%- if value is none -%}{{ return(none) }}{%- endif -%}
{{ return((modules.datetime.date.fromisoformat(value | string) + modules.datetime.timedelta(days=offset)).isoformat()) }}
{%- endmacro %}

{% macro has_partition_window() -%}
{{ return(var('min_date', none) is not none or var('max_date', none) is not none) }}
{%- endmacro %}

{% macro partition_window(column, before=0, after=0, tenant='') -%}
{{ window_predicate(column, before, after, 'date', '', tenant) }}
{%- endmacro %}

{% macro partition_time_window(column, before=0, after=0, tenant='') -%}
{{ window_predicate(column, before, after, 'timestamptz', ' 00:00:00+00', tenant) }}
{%- endmacro %}

{% macro window_predicate(column, before, after, type, midnight, tenant) -%}
{%- set predicates = [] -%}
{%- if has_partition_window() -%}
{%- set low, high = window_day('min', -(before | int)), window_day('max', after | int) -%}
{%- do predicates.append(column ~ " >= '" ~ (low ~ midnight if low else "-infinity") ~ "'::" ~ type) -%}
{%- do predicates.append(column ~ " < '" ~ (high ~ midnight if high else "infinity") ~ "'::" ~ type) -%}
{%- endif -%}
{%- if tenant is not none and partition_tenants() is not none -%}
{%- do predicates.append(tenant_predicate(tenant or tenant_column_of(column))) -%}
{%- endif -%}
{{ predicates | join('\nand ') if predicates else 'true' }}
{%- endmacro %}

{% macro delete_partition_window(column) -%}
{%- if is_incremental() -%}
delete from {{ this }} where {{ partition_window(column) }}
{%- endif -%}
{%- endmacro %}

{% macro partition_tenants() -%}
{%- set tenants = var('tenants', none) -%}
{%- if tenants is none -%}{{ return(none) }}{%- endif -%}
{%- set tenants = [tenants] if tenants is string else tenants | list -%}
{%- if not tenants -%}
{{ exceptions.raise_compiler_error("var tenants: an empty list (leave the var out for every tenant)") }}
{%- endif -%}
{%- for tenant in tenants -%}
{%- if not modules.re.fullmatch('[A-Za-z0-9][A-Za-z0-9._-]{0,127}', tenant | string) -%}
{{ exceptions.raise_compiler_error("var tenants: " ~ tenant ~ " is not a tenant id") }}
{%- endif -%}
{%- endfor -%}
{{ return(tenants) }}
{%- endmacro %}

{% macro tenant_predicate(column) -%}
{%- set tenants = partition_tenants() -%}
{%- if tenants is none -%}
true
{%- else -%}
{{ column }} in ({% for tenant in tenants %}'{{ tenant }}'{% if not loop.last %}, {% endif %}{% endfor %})
{%- endif -%}
{%- endmacro %}

{% macro tenant_column_of(column) -%}
{%- set match = modules.re.fullmatch('(?:([A-Za-z_][A-Za-z0-9_]*)\\.)?[A-Za-z_][A-Za-z0-9_]*', column | trim) -%}
{%- if not match -%}
{{ exceptions.raise_compiler_error("partition_window(" ~ column ~ "): name its tenant column (tenant=...)") }}
{%- endif -%}
{{ return((match.group(1) ~ '.' if match.group(1) else '') ~ 'tenant_id') }}
{%- endmacro %}

{% macro delete_partition_tenants() -%}
{%- if is_incremental() -%}
delete from {{ this }} where {{ tenant_predicate('tenant_id') }}
{%- endif -%}
{%- endmacro %}

{#- A data test's relation, limited to the run's partition window with
    `where: "__partition_window__:<date column>"`; any other `where` works as in dbt. -#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- if where and where.startswith('__partition_window__:') -%}
        {%- set where = partition_window(where.split(':', 1)[1]) -%}
    {%- endif -%}
    {%- if where -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}

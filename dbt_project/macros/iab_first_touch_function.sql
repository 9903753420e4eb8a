{#-
  intermediate.iab_first_touch_starts(times): for the ordered request times of one listener
  group, the start of the IAB first-touch window each request falls in (a window opens at a
  request and lasts 24 hours; the next request after that opens the next one). One pass over
  the array; created by the project's on-run-start hook, one dbt run at a time (runs for
  different tenants start together: two `create or replace` of one function at once fail with
  "tuple concurrently updated"), under a transaction-level advisory lock.
-#}
{% macro create_iab_first_touch_function() -%}
do $create$
begin
perform pg_advisory_xact_lock(hashtext('intermediate.iab_first_touch_starts'));
create schema if not exists intermediate;
create or replace function intermediate.iab_first_touch_starts(times timestamptz[])
returns setof timestamptz
language plpgsql immutable strict
as $fn$
declare
    opened timestamptz;
    t timestamptz;
begin
    foreach t in array times loop
        if opened is null or t >= opened + interval '24 hours' then
            opened := t;
        end if;
        return next opened;
    end loop;
end
$fn$;
end
$create$;
{%- endmacro %}

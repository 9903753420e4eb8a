{#- iTunes explicit values to a boolean: yes/true/explicit -> true, no/false/clean -> false, else null. -#}
{% macro explicit_flag(column) -%}
    case
        when {{ column }} in ('yes', 'true', 'explicit', '1') then true
        when {{ column }} in ('no', 'false', 'clean', '0') then false
    end
{%- endmacro %}

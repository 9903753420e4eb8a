{#- A web address as a sponsor's domain: lower-case host without scheme, "www.", port, path,
    query or fragment ("https://www.Northwind.com/shop?x" -> "northwind.com"); null when empty.
    Compares a sponsor list's website with the domain a detected ad slot names. -#}
{% macro sponsor_domain(expression) -%}
nullif(regexp_replace(regexp_replace(lower(btrim({{ expression }})), '^[a-z][a-z0-9+.-]*://', ''), '^www\.|[:/?#].*$', '', 'g'), '')
{%- endmacro %}

{#- A vanity URL as a matching key: lower-case host + path, without scheme, "www.", query,
    fragment or trailing slash ("https://www.Example.com/Show/" -> "example.com/show"). -#}
{% macro normalize_vanity_url(expression) -%}
rtrim(regexp_replace(regexp_replace(lower(btrim({{ expression }})), '^[a-z]+://', ''), '^www\.|[?#].*$', '', 'g'), '/')
{%- endmacro %}

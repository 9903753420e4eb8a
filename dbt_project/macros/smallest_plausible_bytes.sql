{#- The smallest plausible size of an audio file: the lowest bitrate (`media_min_bitrate_bps`)
    over its duration, or over one minute when the duration is unknown. Below it, a feed's
    `length` or a log's size is not the file's, and a complete 200 is an aborted one. -#}
{% macro smallest_plausible_bytes(duration_seconds) -%}
    ceil({{ var('media_min_bitrate_bps') }} / 8.0
        * case when {{ duration_seconds }} > 0 then {{ duration_seconds }} else 60 end)::bigint
{%- endmacro %}

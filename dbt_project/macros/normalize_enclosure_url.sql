{#-
  Strip measurement prefixes (Podtrac, also as `play.podtrac.com/<network>/` as NPR's feeds
  use it, OP3, Podsights, Chartable, Podscribe, ...) from an enclosure URL so the same media
  file gets one identity. Prefixes may be chained, so the replacement runs three times; an
  inner URL keeps its own scheme when it carries one.
-#}
{% macro normalize_enclosure_url(column) -%}
    {%- set prefixes = "^https?://(dts\\.podtrac\\.com/redirect\\.[a-z0-9]+/|play\\.podtrac\\.com/[^/]+/|www\\.podtrac\\.com/pts/redirect\\.[a-z0-9]+/|op3\\.dev/e(,[^/]*)?/|pdst\\.fm/e/|chtbl\\.com/track/[^/]+/|chrt\\.fm/track/[^/]+/|pfx\\.vpixl\\.com/[^/]+/|arttrk\\.com/p/[^/]+/|mgln\\.ai/e/[^/]+/|claritaspod\\.com/measure/|verifi\\.podscribe\\.com/rss/p/|prfx\\.byspotify\\.com/e/|prefix\\.up\\.audio/s/|pscrb\\.fm/rss/p/)" -%}
    {%- set ns = namespace(expr="btrim(" ~ column ~ ")") -%}
    {%- for _ in range(3) -%}
        {%- set ns.expr = "regexp_replace(regexp_replace(" ~ ns.expr ~ ", '" ~ prefixes ~ "', 'https://', 'i'), '^https://(https?://)', '\\1')" -%}
    {%- endfor -%}
    {{ ns.expr }}
{%- endmacro %}

{#-
  The media file an enclosure URL points to: lowercase host plus path, after the measurement
  prefixes are stripped, without scheme, query string or fragment. Log requests, feed items and
  platform episodes are joined on it.
-#}
{% macro enclosure_media_key(column) -%}
    {%- set url = normalize_enclosure_url(column) -%}
    lower(substring({{ url }} from '^https?://([^/?#]+)'))
        || coalesce(substring({{ url }} from '^https?://[^/?#]+([^?#]*)'), '')
{%- endmacro %}

{#-
  The parts of enclosure_media_key: the media host, and the path (what a log without a host
  field still says about the file requested).
-#}
{% macro enclosure_media_host(column) -%}
    {%- set url = normalize_enclosure_url(column) -%}
    lower(substring({{ url }} from '^https?://([^/?#]+)'))
{%- endmacro %}

{% macro enclosure_media_path(column) -%}
    {%- set url = normalize_enclosure_url(column) -%}
    coalesce(substring({{ url }} from '^https?://[^/?#]+([^?#]*)'), '')
{%- endmacro %}

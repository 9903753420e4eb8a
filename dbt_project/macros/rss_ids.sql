{#- The ids of a feed's podcast and episode, one definition for every model that keys rows like
    stg_rss__podcasts and stg_rss__episodes: per tenant, feed URL and (for an episode) guid. -#}
{% macro rss_podcast_id(tenant_id='tenant_id', feed_url='feed_url') -%}
    md5({{ tenant_id }} || '|' || {{ feed_url }})
{%- endmacro %}

{% macro rss_episode_id(tenant_id='tenant_id', feed_url='feed_url', guid='guid') -%}
    md5({{ tenant_id }} || '|' || {{ feed_url }} || '|' || {{ guid }})
{%- endmacro %}

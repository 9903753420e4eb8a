{#-
  The hosting and listening platforms whose data the project models, and the one vocabulary
  their staging models share. To add a platform: write its staging models (`stg_<platform>__...`
  with the columns below) and add one entry here; the union models, `int_episodes_unified`,
  `dim_episodes` (a `<platform>_episode_id` column) and the platform facts pick it up.

  Each entry names the platform's episodes model, its daily metrics model, and which of the
  daily metrics that model carries (the others are null for the platform).
-#}
{% macro platform_models() -%}
    {{ return({
        'buzzsprout': {'episodes': 'stg_buzzsprout__episodes', 'metrics_daily': 'stg_buzzsprout__downloads_daily', 'metrics': ['downloads']},
        'transistor': {'episodes': 'stg_transistor__episodes', 'metrics_daily': 'stg_transistor__downloads_daily', 'metrics': ['downloads']},
        'podbean': {'episodes': 'stg_podbean__episodes', 'metrics_daily': 'stg_podbean__downloads_daily', 'metrics': ['downloads']},
        'simplecast': {'episodes': 'stg_simplecast__episodes', 'metrics_daily': 'stg_simplecast__downloads_daily', 'metrics': ['downloads']},
        'spotify': {'episodes': 'stg_spotify__episodes', 'metrics_daily': 'stg_spotify__episode_metrics_daily', 'metrics': ['streams', 'starts', 'listeners']},
        'apple': {'episodes': 'stg_apple__episodes', 'metrics_daily': 'stg_apple__episode_metrics_daily', 'metrics': ['plays', 'listeners', 'engaged_listeners', 'seconds_listened']},
        'megaphone': {'episodes': 'stg_megaphone__episodes', 'metrics_daily': 'stg_megaphone__episode_metrics_daily', 'metrics': ['downloads', 'listeners']},
    }) }}
{%- endmacro %}

{#- Columns of every `stg_<platform>__episodes` model, in order. `feed_url` is the show's feed as
    configured for the platform (listening platforms), null where the platform does not say. -#}
{% macro platform_episode_columns() -%}
    {{ return(['platform_episode_key', 'platform', 'tenant_id', 'source_show_id', 'platform_episode_id', 'guid',
               'title', 'enclosure_url', 'published_at', 'duration_seconds', 'season_number', 'episode_number',
               'status', 'feed_url', 'ingested_at', 'batch_id']) }}
{%- endmacro %}

{#- Key columns of every daily metrics model; the metrics follow (`platform_metric_names`). -#}
{% macro platform_metric_key_columns() -%}
    {{ return(['platform_episode_key', 'platform', 'tenant_id', 'source_show_id', 'platform_episode_id',
               'metric_date', 'ingested_at']) }}
{%- endmacro %}

{#- Daily episode metrics across platforms: hosts report downloads, listening platforms
    streams/starts (Spotify), plays/listeners/engaged listeners/time listened (Apple). -#}
{% macro platform_metric_names() -%}
    {{ return(['downloads', 'streams', 'starts', 'plays', 'listeners', 'engaged_listeners', 'seconds_listened']) }}
{%- endmacro %}

{#- The key of one platform episode: platform, tenant, the platform's show id and episode id. -#}
{% macro platform_episode_key(platform, tenant_id, source_show_id, platform_episode_id) -%}
    md5({{ platform }} || '|' || {{ tenant_id }} || '|' || {{ source_show_id }} || '|' || {{ platform_episode_id }})
{%- endmacro %}

{#- The unified episode id: the feed episode's id when matched, else one of the platform episode's own. -#}
{% macro unified_episode_id(episode_id, platform_episode_key) -%}
    coalesce({{ episode_id }}, md5('platform|' || {{ platform_episode_key }}))
{%- endmacro %}

{#- `select` the union of one model kind (`episodes` | `metrics_daily`) over every platform. -#}
{% macro union_platform_models(kind) -%}
    {%- for platform, models in platform_models().items() %}
    select
        {%- if kind == 'episodes' %}
        {{ platform_episode_columns() | join(',\n        ') }}
        {%- else %}
        {{ platform_metric_key_columns() | join(',\n        ') }},
        {%- for metric in platform_metric_names() %}
        {{ metric if metric in models['metrics'] else 'null::bigint as ' ~ metric }}{{ ',' if not loop.last }}
        {%- endfor %}
        {%- endif %}
    from {{ ref(models[kind]) }}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
{%- endmacro %}

{#- Title compared across sources: lowercase ASCII letters and digits, one space between words
    (case, punctuation, dashes and extra whitespace differ between a feed and a host). -#}
{% macro title_match_key(column) -%}
    nullif(btrim(regexp_replace(lower({{ column }}), '[^a-z0-9]+', ' ', 'g')), '')
{%- endmacro %}

{{ config(post_hook="create index if not exists {{ this.name }}_episode_idx on {{ this }} (unified_episode_id, metric_date)") }}
-- One row per platform episode and day (UTC date as the platform reports it): what the platform
-- counted, keyed by the unified episode. Hosts report downloads; listening platforms fill
-- streams, starts, plays, listeners, engaged listeners and time listened (null for hosts).
-- Platform numbers are the platform's own counting, not IAB downloads from our logs
-- (fct_downloads): the two are not added up.
with metrics as (
    select * from {{ ref('int_platform_metrics_daily') }}
),

episodes as (
    select
        platform_episode_key,
        unified_episode_id,
        episode_id,
        podcast_id,
        show_podcast_id,
        match_method,
        match_confidence
    from {{ ref('int_episodes_unified') }}
),

podcasts as (
    select podcast_id, title as podcast_title from {{ ref('dim_podcasts') }}
),

final as (
    select
        md5(metrics.platform_episode_key || '|' || metrics.metric_date::text) as platform_metric_id,
        metrics.metric_date,
        metrics.tenant_id,
        metrics.platform,
        metrics.source_show_id,
        metrics.platform_episode_id,
        metrics.platform_episode_key,
        {{ unified_episode_id('episodes.episode_id', 'metrics.platform_episode_key') }} as unified_episode_id,
        episodes.episode_id,
        coalesce(episodes.podcast_id, episodes.show_podcast_id) as podcast_id,
        podcasts.podcast_title,
        coalesce(episodes.match_method, 'not_in_episode_list') as match_method,
        coalesce(episodes.match_confidence, 0.00) as match_confidence,
        {%- for metric in platform_metric_names() %}
        metrics.{{ metric }},
        {%- endfor %}
        metrics.ingested_at
    from metrics
    left join episodes on episodes.platform_episode_key = metrics.platform_episode_key
    left join podcasts on podcasts.podcast_id = coalesce(episodes.podcast_id, episodes.show_podcast_id)
)

select * from final

-- Listener engagement by platform: one row per platform episode with the totals of its daily
-- metrics, the downloads of its first 7 and 30 days (day 0 = the day the platform says it was
-- published) and the span of days with data.
with metrics as (
    select * from {{ ref('fct_platform_metrics_daily') }}
),

episodes as (
    select platform_episode_key, published_at from {{ ref('int_episodes_unified') }}
),

final as (
    select
        metrics.platform_episode_key,
        metrics.platform,
        metrics.tenant_id,
        metrics.source_show_id,
        metrics.platform_episode_id,
        metrics.unified_episode_id,
        metrics.episode_id,
        metrics.podcast_id,
        metrics.podcast_title,
        metrics.match_method,
        (episodes.published_at at time zone 'UTC')::date as published_date,
        {%- for metric in platform_metric_names() %}
        sum(metrics.{{ metric }}) as {{ metric }},
        {%- endfor %}
        sum(metrics.downloads) filter (
            where metrics.metric_date < (episodes.published_at at time zone 'UTC')::date + 7
        ) as downloads_first_7_days,
        sum(metrics.downloads) filter (
            where metrics.metric_date < (episodes.published_at at time zone 'UTC')::date + 30
        ) as downloads_first_30_days,
        round(sum(metrics.seconds_listened)::numeric / nullif(sum(metrics.listeners), 0), 1)
            as seconds_listened_per_listener,
        count(*) as days_with_data,
        min(metrics.metric_date) as first_metric_date,
        max(metrics.metric_date) as last_metric_date
    from metrics
    left join episodes on episodes.platform_episode_key = metrics.platform_episode_key
    group by 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11
)

select * from final

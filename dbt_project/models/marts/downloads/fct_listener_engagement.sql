{{ config(indexes=[{'columns': ['episode_id']}], materialized='table') }}
-- Engagement per episode: downloads, distinct listeners (IP prefix + user agent) and the share
-- of the file the downloads delivered, as far as bytes tell (a completion estimate, not plays).
-- A table rebuilt whole: distinct listeners over an episode's whole life cannot be summed from
-- days, and the table is one row per episode (docs/BENCHMARKS.md has its build time at scale).
with downloads as (
    select * from {{ ref('fct_downloads') }}
),

episodes as (
    select episode_id, title as episode_title, enclosure_length_bytes from {{ ref('dim_episodes') }}
),

podcasts as (
    select podcast_id, title as podcast_title from {{ ref('dim_podcasts') }}
),

final as (
    select
        downloads.tenant_id,
        downloads.podcast_id,
        podcasts.podcast_title,
        downloads.episode_id,
        episodes.episode_title,
        count(*) as downloads,
        count(distinct downloads.listener_id) as unique_listeners,
        round(count(*)::numeric / nullif(count(distinct downloads.listener_id), 0), 3) as downloads_per_listener,
        round(avg(least(downloads.bytes_covered::numeric / nullif(episodes.enclosure_length_bytes, 0), 1)), 4)
            as avg_completion,
        count(*) filter (where downloads.bytes_covered >= 0.25 * episodes.enclosure_length_bytes) as downloads_25pct,
        count(*) filter (where downloads.bytes_covered >= 0.5 * episodes.enclosure_length_bytes) as downloads_50pct,
        count(*) filter (where downloads.bytes_covered >= 0.75 * episodes.enclosure_length_bytes) as downloads_75pct,
        count(*) filter (where downloads.bytes_covered >= episodes.enclosure_length_bytes) as downloads_complete,
        min(downloads.download_date) as first_download_date,
        max(downloads.download_date) as last_download_date,
        max(downloads.counted_at) as counted_at
    from downloads
    left join episodes on episodes.episode_id = downloads.episode_id
    left join podcasts on podcasts.podcast_id = downloads.podcast_id
    group by 1, 2, 3, 4, 5
)

select * from final

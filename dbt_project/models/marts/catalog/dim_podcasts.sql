with podcasts as (
    select * from {{ ref('stg_rss__podcasts') }}
),

episodes as (
    select
        podcast_id,
        count(*) as episode_count,
        min(published_at) as first_published_at,
        max(published_at) as last_published_at
    from {{ ref('stg_rss__episodes') }}
    group by podcast_id
),

final as (
    select
        podcasts.podcast_id,
        podcasts.tenant_id,
        podcasts.feed_url,
        podcasts.final_url,
        podcasts.podcast_guid,
        podcasts.title,
        podcasts.author,
        podcasts.owner_name,
        podcasts.owner_email,
        podcasts.language,
        podcasts.categories ->> 0 as primary_category,
        podcasts.categories,
        {{ explicit_flag('podcasts.explicit_raw') }} as is_explicit,
        case when podcasts.itunes_type_raw = 'serial' then 'serial' else 'episodic' end as show_type,
        coalesce(podcasts.medium, 'podcast') as medium,
        podcasts.is_complete,
        podcasts.is_blocked,
        podcasts.image_url,
        podcasts.website_url,
        coalesce(episodes.episode_count, 0) as episode_count,
        episodes.first_published_at,
        episodes.last_published_at,
        podcasts.ingested_at
    from podcasts
    left join episodes on episodes.podcast_id = podcasts.podcast_id
)

select * from final

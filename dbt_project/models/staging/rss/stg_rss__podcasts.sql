with source as (
    select * from {{ source('rss', 'rss_podcasts') }}
),

renamed as (
    select
        {{ rss_podcast_id() }} as podcast_id,
        tenant_id,
        feed_url,
        final_url,
        nullif(btrim(title), '') as title,
        link as website_url,
        description_html,
        lower(nullif(btrim(language), '')) as language,
        author,
        owner_name,
        owner_email,
        image_url,
        lower(btrim(itunes_type)) as itunes_type_raw,
        lower(btrim(explicit_raw)) as explicit_raw,
        to_jsonb(categories) as categories,
        nullif(btrim(podcast_guid), '') as podcast_guid,
        lower(nullif(btrim(medium), '')) as medium,
        new_feed_url,
        lower(btrim(itunes_complete)) = 'yes' as is_complete,
        lower(btrim(itunes_block)) = 'yes' as is_blocked,
        episode_count as valid_episode_count,
        parse_degraded,
        to_jsonb(coalesce(parse_warnings, array[]::text[])) as parse_warnings,  -- jsonb: dbt unit-test fixtures cannot cast to arrays
        _ingested_at as ingested_at,
        _batch_id as batch_id
    from source
)

select * from renamed

{{ config(materialized='table',
          post_hook="create index if not exists {{ this.name }}_episode_idx on {{ this }} (episode_id)") }}
-- One episode identity across sources: every platform episode, with the feed episode
-- (stg_rss__episodes, the id dim_episodes uses) it is, how that was decided and how sure it is.
--
-- Evidence, strongest first, always within the tenant:
--   guid           the host's guid equals the feed item's guid                       1.00
--   enclosure_url  the same media file: host + path after measurement prefixes,
--                  scheme, query string and fragment are removed                     0.95
--   title_date     the same title (case, punctuation, whitespace ignored) published
--                  within 36 hours, in the feed the platform show maps to            0.90 within 2 h, else 0.80
--   title          the same title in the show's feed when either side has no date    0.60
-- Evidence pointing outside the feed the platform show maps to costs 0.10. A platform show maps
-- to the feed it is configured with (listening platforms name the show's feed_url), else to the
-- feed most of its guid and URL matches point to.
-- Each feed episode is claimed by at most one episode of a platform (the strongest claim); the
-- others, and episodes without evidence, stay with match_method 'unmatched' and a reason.
with platform_episodes as (
    select
        platform_episode_key,
        platform,
        tenant_id,
        source_show_id,
        platform_episode_id,
        guid,
        title,
        enclosure_url,
        published_at,
        status,
        feed_url,
        {{ enclosure_media_key('enclosure_url') }} as media_key,
        {{ title_match_key('title') }} as title_key
    from {{ ref('int_platform_episodes') }}
),

feed_episodes as (
    select
        episode_id,
        podcast_id,
        tenant_id,
        guid,
        published_at,
        {{ enclosure_media_key('enclosure_url') }} as media_key,
        {{ title_match_key("coalesce(nullif(btrim(title), ''), itunes_title)") }} as title_key
    from {{ ref('stg_rss__episodes') }}
),

identifier_matches as (
    select
        platform_episodes.platform_episode_key,
        feed_episodes.episode_id,
        feed_episodes.podcast_id,
        'guid' as match_method,
        1 as match_rank,
        1.00 as base_confidence,
        abs(extract(epoch from platform_episodes.published_at - feed_episodes.published_at)) as seconds_apart
    from platform_episodes
    inner join feed_episodes
        on feed_episodes.tenant_id = platform_episodes.tenant_id
        and feed_episodes.guid = platform_episodes.guid

    union all

    select
        platform_episodes.platform_episode_key,
        feed_episodes.episode_id,
        feed_episodes.podcast_id,
        'enclosure_url',
        2,
        0.95,
        abs(extract(epoch from platform_episodes.published_at - feed_episodes.published_at))
    from platform_episodes
    inner join feed_episodes
        on feed_episodes.tenant_id = platform_episodes.tenant_id
        and feed_episodes.media_key = platform_episodes.media_key
),

feeds as (
    select podcast_id, tenant_id, feed_url, final_url from {{ ref('stg_rss__podcasts') }}
),

configured_feeds as (
    select distinct
        platform_episodes.platform,
        platform_episodes.tenant_id,
        platform_episodes.source_show_id,
        feeds.podcast_id
    from platform_episodes
    inner join feeds
        on feeds.tenant_id = platform_episodes.tenant_id
        and platform_episodes.feed_url in (feeds.feed_url, feeds.final_url)
),

show_feed_votes as (
    select
        platform_episodes.platform,
        platform_episodes.tenant_id,
        platform_episodes.source_show_id,
        identifier_matches.podcast_id,
        count(distinct platform_episodes.platform_episode_key) as votes
    from identifier_matches
    inner join platform_episodes on platform_episodes.platform_episode_key = identifier_matches.platform_episode_key
    group by 1, 2, 3, 4
),

show_feeds as (
    -- the configured feed first, else the feed with the most guid and URL matches
    select distinct on (platform, tenant_id, source_show_id)
        platform,
        tenant_id,
        source_show_id,
        podcast_id
    from (
        select platform, tenant_id, source_show_id, podcast_id, 0 as evidence_rank, 0::bigint as votes
        from configured_feeds
        union all
        select platform, tenant_id, source_show_id, podcast_id, 1 as evidence_rank, votes
        from show_feed_votes
    ) as show_evidence
    order by platform, tenant_id, source_show_id, evidence_rank, votes desc, podcast_id
),

title_matches as (
    select
        platform_episodes.platform_episode_key,
        feed_episodes.episode_id,
        feed_episodes.podcast_id,
        case
            when platform_episodes.published_at is null or feed_episodes.published_at is null then 'title'
            else 'title_date'
        end as match_method,
        case
            when platform_episodes.published_at is null or feed_episodes.published_at is null then 4
            else 3
        end as match_rank,
        case
            when platform_episodes.published_at is null or feed_episodes.published_at is null then 0.60
            when abs(extract(epoch from platform_episodes.published_at - feed_episodes.published_at)) <= 2 * 3600
                then 0.90
            else 0.80
        end as base_confidence,
        abs(extract(epoch from platform_episodes.published_at - feed_episodes.published_at)) as seconds_apart
    from platform_episodes
    left join show_feeds
        on show_feeds.platform = platform_episodes.platform
        and show_feeds.tenant_id = platform_episodes.tenant_id
        and show_feeds.source_show_id = platform_episodes.source_show_id
    inner join feed_episodes
        on feed_episodes.tenant_id = platform_episodes.tenant_id
        and feed_episodes.title_key = platform_episodes.title_key
    where
        -- a title alone only counts in the show's own feed
        (show_feeds.podcast_id = feed_episodes.podcast_id
            or (show_feeds.podcast_id is null
                and platform_episodes.published_at is not null and feed_episodes.published_at is not null))
        and (platform_episodes.published_at is null or feed_episodes.published_at is null
            or abs(extract(epoch from platform_episodes.published_at - feed_episodes.published_at)) <= 36 * 3600)
),

candidates as (
    select
        matches.*,
        platform_episodes.platform,
        show_feeds.podcast_id is null or show_feeds.podcast_id = matches.podcast_id as in_show_feed
    from (
        select * from identifier_matches
        union all
        select * from title_matches
    ) as matches
    inner join platform_episodes on platform_episodes.platform_episode_key = matches.platform_episode_key
    left join show_feeds
        on show_feeds.platform = platform_episodes.platform
        and show_feeds.tenant_id = platform_episodes.tenant_id
        and show_feeds.source_show_id = platform_episodes.source_show_id
),

best_candidates as (
    select distinct on (platform_episode_key)
        *
    from candidates
    order by platform_episode_key, match_rank, in_show_feed desc, seconds_apart nulls last, episode_id
),

claims as (
    select
        *,
        row_number() over (
            partition by platform, episode_id
            order by match_rank, in_show_feed desc, seconds_apart nulls last, platform_episode_key
        ) as claim_rank
    from best_candidates
),

final as (
    select
        platform_episodes.platform_episode_key,
        platform_episodes.platform,
        platform_episodes.tenant_id,
        platform_episodes.source_show_id,
        platform_episodes.platform_episode_id,
        matched.episode_id,
        matched.podcast_id,
        {{ unified_episode_id('matched.episode_id', 'platform_episodes.platform_episode_key') }} as unified_episode_id,
        coalesce(matched.match_method, 'unmatched') as match_method,
        coalesce(
            round(matched.base_confidence - case when matched.in_show_feed then 0 else 0.10 end, 2), 0.00
        )::numeric(3, 2) as match_confidence,
        case
            when matched.episode_id is not null then null
            when claims.episode_id is not null then 'feed_episode_claimed_by_a_stronger_match'
            when platform_episodes.guid is null and platform_episodes.media_key is null
                and platform_episodes.title_key is null then 'no_episode_details'
            when show_feeds.podcast_id is null then 'show_not_found_in_feeds'
            else 'not_in_feed'
        end as unmatched_reason,
        round(matched.seconds_apart / 3600.0, 1) as published_hours_apart,
        show_feeds.podcast_id as show_podcast_id,
        platform_episodes.guid,
        platform_episodes.title,
        platform_episodes.enclosure_url,
        platform_episodes.published_at,
        platform_episodes.status
    from platform_episodes
    left join claims as matched
        on matched.platform_episode_key = platform_episodes.platform_episode_key
        and matched.claim_rank = 1
    left join claims
        on claims.platform_episode_key = platform_episodes.platform_episode_key
    left join show_feeds
        on show_feeds.platform = platform_episodes.platform
        and show_feeds.tenant_id = platform_episodes.tenant_id
        and show_feeds.source_show_id = platform_episodes.source_show_id
)

select * from final

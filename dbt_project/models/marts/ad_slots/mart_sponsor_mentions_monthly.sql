-- Who advertises where: one row per show, sponsor and month of publication in which the sponsor
-- appeared in the show's episodes (a read or break in the audio, or a show-notes mention), and
-- one row for the month a sponsor churned (is_present false, counts 0).
--   sponsor      sponsor_key (stg_ad_detection__ad_slots: its domain, else its vanity URL's host,
--                else its brand in lower case); slots naming no sponsor are not counted;
--   month        the month the episode was published (UTC);
--   new          the first month the sponsor appears in this show (is_new);
--   churned      the sponsor appeared in the show's previous month with published episodes and
--                not in this one, which has published episodes (is_churned: a show that published
--                nothing in a month churns no sponsor in it; its previous active month is compared).
-- first_month_seen / last_month_seen are over the show's whole history, the same on every row.
with mentions as (
    select
        slots.tenant_id,
        slots.podcast_id,
        date_trunc('month', episodes.published_at_utc)::date as published_month,
        slots.sponsor_key,
        slots.sponsor_brand,
        slots.sponsor_domain,
        slots.sponsor_id,
        slots.sponsor_name,
        slots.episode_id,
        slots.kind
    from {{ ref('int_ad_slots') }} as slots
    inner join {{ ref('dim_episodes') }} as episodes on episodes.episode_id = slots.episode_id
    where slots.sponsor_key is not null and episodes.published_at_utc is not null
),

present as (
    select
        tenant_id,
        podcast_id,
        published_month,
        sponsor_key,
        mode() within group (order by sponsor_brand) as sponsor_brand,
        mode() within group (order by sponsor_domain) as sponsor_domain,
        min(sponsor_id) as sponsor_id,
        min(sponsor_name) as sponsor_name,
        count(distinct episode_id) as episodes,
        count(*) filter (where kind <> 'show_notes') as ad_slots,
        count(*) filter (where kind = 'show_notes') as show_notes_mentions
    from mentions
    group by tenant_id, podcast_id, published_month, sponsor_key
),

show_months as (
    -- the months each show published episodes in, with the one before
    select
        podcast_id,
        published_month,
        lag(published_month) over (partition by podcast_id order by published_month) as previous_month
    from (
        select distinct podcast_id, date_trunc('month', published_at_utc)::date as published_month
        from {{ ref('dim_episodes') }}
        where published_at_utc is not null
    ) as months
),

churned as (
    select
        earlier.tenant_id,
        earlier.podcast_id,
        show_months.published_month,
        earlier.sponsor_key,
        earlier.sponsor_brand,
        earlier.sponsor_domain,
        earlier.sponsor_id,
        earlier.sponsor_name,
        0::bigint as episodes,
        0::bigint as ad_slots,
        0::bigint as show_notes_mentions
    from show_months
    inner join present as earlier
        on earlier.podcast_id = show_months.podcast_id and earlier.published_month = show_months.previous_month
    where not exists (
        select 1 from present as this_month
        where this_month.podcast_id = show_months.podcast_id and this_month.published_month = show_months.published_month
            and this_month.sponsor_key = earlier.sponsor_key)
),

monthly as (
    select *, true as is_present from present
    union all
    select *, false from churned
),

seen as (
    select podcast_id, sponsor_key, min(published_month) as first_month_seen, max(published_month) as last_month_seen
    from present
    group by podcast_id, sponsor_key
),

podcasts as (
    select podcast_id, title, primary_category from {{ ref('dim_podcasts') }}
)

select
    monthly.tenant_id,
    monthly.podcast_id,
    podcasts.title as podcast_title,
    podcasts.primary_category as podcast_category,
    monthly.published_month,
    monthly.sponsor_key,
    monthly.sponsor_brand,
    monthly.sponsor_domain,
    monthly.sponsor_id,
    monthly.sponsor_name,
    monthly.is_present,
    monthly.episodes,
    monthly.ad_slots,
    monthly.show_notes_mentions,
    seen.first_month_seen,
    seen.last_month_seen,
    monthly.is_present and monthly.published_month = seen.first_month_seen as is_new,
    not monthly.is_present as is_churned
from monthly
inner join seen on seen.podcast_id = monthly.podcast_id and seen.sponsor_key = monthly.sponsor_key
left join podcasts on podcasts.podcast_id = monthly.podcast_id

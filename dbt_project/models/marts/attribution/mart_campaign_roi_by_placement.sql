-- One row per campaign, show, placement position and attribution model: delivery by show and
-- position, with the campaign's credited conversions, revenue and cost allocated to its shows
-- and positions in proportion to the impressions they delivered (a conversion's credit is the
-- campaign's; which of its ads tipped a household over is not knowable).
with reach as (
    select tenant_id, campaign_id, podcast_id, position, sum(households) as reach
    from {{ ref('int_campaign_reach_daily') }}
    where grain = 'placement'
    group by tenant_id, campaign_id, podcast_id, position
),

delivery as (
    select daily.tenant_id, daily.campaign_id, daily.podcast_id, daily.position,
           sum(daily.impressions) as impressions, min(reach.reach) as reach
    from {{ ref('int_campaign_delivery_daily') }} as daily
    inner join reach
        on reach.tenant_id = daily.tenant_id and reach.campaign_id = daily.campaign_id
        and reach.podcast_id = daily.podcast_id and reach.position = daily.position
    where daily.grain = 'placement'
    group by daily.tenant_id, daily.campaign_id, daily.podcast_id, daily.position
),

shares as (
    select *, impressions::numeric / sum(impressions) over (partition by tenant_id, campaign_id) as impression_share
    from delivery
),

campaign as (
    select * from {{ ref('mart_campaign_roi') }}
),

podcasts as (
    select podcast_id, title as podcast_title from {{ ref('dim_podcasts') }}
)

select
    campaign.tenant_id,
    campaign.sponsor_id,
    campaign.category,
    campaign.campaign_id,
    shares.podcast_id,
    podcasts.podcast_title,
    shares.position,
    campaign.attribution_model,
    campaign.is_selected_model,
    shares.impressions,
    shares.reach as households_reached,
    round(shares.impression_share, 6) as impression_share,
    round(campaign.conversions * shares.impression_share, 6) as conversions,
    round(campaign.revenue * shares.impression_share, 2) as revenue,
    round(campaign.cost * shares.impression_share, 2) as cost,
    round((campaign.revenue - campaign.cost) / nullif(campaign.cost, 0), 6) as roi,
    round(campaign.conversions * shares.impression_share / nullif(shares.reach, 0), 6) as conversion_rate,
    round(campaign.cost * shares.impression_share / nullif(campaign.conversions * shares.impression_share, 0), 2) as cpa,
    round(campaign.cost * shares.impression_share / nullif(shares.impressions, 0) * 1000, 2) as effective_cpm
from shares
inner join campaign on campaign.tenant_id = shares.tenant_id and campaign.campaign_id = shares.campaign_id
left join podcasts on podcasts.podcast_id = shares.podcast_id

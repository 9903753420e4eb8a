-- Downloads per episode and UTC day, with distinct listeners (IP prefix + user agent).
select
    tenant_id,
    podcast_id,
    episode_id,
    download_date,
    count(*) as downloads,
    count(distinct listener_id) as unique_listeners
from {{ ref('fct_downloads') }}
group by 1, 2, 3, 4

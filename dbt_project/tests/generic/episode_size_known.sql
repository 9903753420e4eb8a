{#-
  Episodes whose requests reached the IAB size rule but none could be measured: every such
  request is `unknown_file_size` (no plausible size in the feed or the logs, and no whole-file
  response). Their downloads are not counted; a warning, so that someone looks at the feed.
-#}
{% test episode_size_known(model) %}
select episode_id, count(*) as unknown_file_size_requests
from {{ model }}
where episode_id is not null
group by episode_id
having count(*) filter (where exclusion_reason = 'unknown_file_size') > 0
    and count(*) filter (where exclusion_reason is null or exclusion_reason = 'below_threshold') = 0
{% endtest %}

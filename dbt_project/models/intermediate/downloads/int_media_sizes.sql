{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key='episode_id',
          indexes=[{'columns': ['episode_id']}, {'columns': ['sized_at']}]) }}
-- One row per episode media file with the size a download is measured against, where it comes
-- from (`size_source`), and the IAB v2.3 threshold (ID3 allowance + one minute of audio, or the
-- whole file when shorter than a minute or of unknown duration).
--
-- The feed's `length` is used when it is plausible: present, above 0, below 2^31, between
-- var('media_min_bitrate_bps') and var('media_max_bitrate_bps') of audio against the duration
-- (without a duration: at least one minute at the lowest bitrate), and not contradicted by the
-- logs (a server never delivers a byte past the end of the file). Real feeds often fail this:
-- Planet Money's lists most enclosures with `length="0"`, and a bogus `length="1"` would make a
-- 1-byte response a download. The size is then learned from what the servers logged for the
-- file, in this order of trust:
--   log_object_size        the object size the log states (S3 `Object Size`, Content-Range
--                          totals), the largest seen;
--   log_complete_response  the largest body of a `200` without a range (a whole-file response;
--                          an aborted one is smaller, so the largest is taken);
--   log_range_end          the largest range end + 1 (players read the end of a file for its
--                          tags, so this is usually the size; it is a lower bound, so the
--                          threshold it gives is too);
-- the larger of the last two is used; each must pass the same plausibility test. `unknown`
-- otherwise: then only a window holding a complete rangeless `200` counts (the whole-file rule,
-- see int_downloads_iab_filtered).
-- Incremental: the evidence is a set of maxima, so a run folds the requests screened since its
-- last run (`screened_through`, the newest screened or removed stamp it read) into the stored
-- evidence and sizes again the episodes they belong to, and those whose feed facts changed;
-- when requests were removed since (a file loaded again or emptied: its evidence may be gone)
-- it reads every request again. `sized_at` moves only when an episode's size, source or
-- threshold changed, so int_downloads_iab_filtered re-measures only those episodes' windows.
{% set screened_relation = ref('int_listener_requests_screened') %}
{% set folding = false %}
{% if is_incremental() and execute %}
{#- The watermark as a literal: compared with a subquery, the planner cannot tell the new
    requests from the whole table and scans it all. -#}
{% set watermark = "'" ~ run_query("select coalesce(max(screened_through), '-infinity')::text from " ~ this).columns[0].values()[0] ~ "'::timestamptz" %}
{% set removed = run_query("select exists (select 1 from " ~ removed_rows_relation(screened_relation)
    ~ " where removed_at > " ~ watermark ~ ")").columns[0].values()[0] %}
{% set folding = not removed %}
{% endif %}
{% if folding %}
{% set new_requests = create_batch_table('media_sizes__requests', "
    select episode_id, method, status, bytes_sent, range_start, range_end, object_size
    from " ~ screened_relation ~ "
    where screened_at > " ~ watermark ~ " and episode_id is not null") %}
{% endif %}
with new_evidence as (
    select
        episode_id,
        max(object_size) filter (where status in (200, 206, 304) and object_size > 0) as log_object_size,
        max(bytes_sent) filter (
            where method = 'GET' and status = 200 and range_start is null and bytes_sent > 0
        ) as log_complete_bytes,
        max(coalesce(range_end, range_start + bytes_sent - 1)) filter (
            where method = 'GET' and status = 206 and range_start is not null and bytes_sent > 0
        ) + 1 as log_range_bound
    {% if folding %}
    from {{ new_requests }}
    {% else %}
    from {{ screened_relation }}
    where episode_id is not null
    {% endif %}
    group by 1
),

media as (
    select media.tenant_id, media.episode_id, media.podcast_id, media.media_key, media.enclosure_length_bytes,
        media.duration_seconds
    from {{ ref('int_episode_media') }} as media
    {% if folding %}
    left join {{ this }} as previous on previous.episode_id = media.episode_id
    where media.episode_id in (select episode_id from new_evidence)
        or previous.episode_id is null
        or (previous.tenant_id, previous.podcast_id, previous.media_key, previous.enclosure_length_bytes, previous.duration_seconds)
            is distinct from (media.tenant_id, media.podcast_id, media.media_key, media.enclosure_length_bytes, media.duration_seconds)
    {% endif %}
),

evidence as (
    select
        media.episode_id,
        {% for column in ['log_object_size', 'log_complete_bytes', 'log_range_bound'] %}
        {% if folding %}greatest(new_evidence.{{ column }}, previous.{{ column }}){% else %}new_evidence.{{ column }}{% endif %} as {{ column }}{% if not loop.last %},{% endif %}
        {% endfor %}
    from media
    left join new_evidence on new_evidence.episode_id = media.episode_id
    {% if folding %}
    left join {{ this }} as previous on previous.episode_id = media.episode_id
    {% endif %}
),

candidates as (
    select
        media.*,
        evidence.log_object_size,
        evidence.log_complete_bytes,
        evidence.log_range_bound,
        greatest(evidence.log_complete_bytes, evidence.log_range_bound) as log_delivered_bytes,
        greatest(evidence.log_object_size, evidence.log_range_bound) as log_lower_bound
    from media
    left join evidence using (episode_id)
),

judged as (
    select
        *,
        {% for name, size in [('feed', 'enclosure_length_bytes'), ('object', 'log_object_size'), ('delivered', 'log_delivered_bytes')] %}
        coalesce(
            {{ size }} > 0 and {{ size }} < 2147483648
            and case
                when duration_seconds > 0 then {{ size }} * 8.0 / duration_seconds
                    between {{ var('media_min_bitrate_bps') }} and {{ var('media_max_bitrate_bps') }}
                else {{ size }} >= {{ smallest_plausible_bytes('duration_seconds') }}
            end,
            false
        ) as {{ name }}_plausible{% if not loop.last %},{% endif %}
        {% endfor %}
    from candidates
),

sized as (
    select
        *,
        case
            when feed_plausible and not coalesce(log_lower_bound > enclosure_length_bytes, false) then 'feed'
            when object_plausible then 'log_object_size'
            when delivered_plausible and log_complete_bytes >= coalesce(log_range_bound, 0) then 'log_complete_response'
            when delivered_plausible then 'log_range_end'
            else 'unknown'
        end as size_source
    from judged
),

final as (
    select
        tenant_id,
        episode_id,
        podcast_id,
        media_key,
        enclosure_length_bytes,
        duration_seconds,
        log_object_size,
        log_complete_bytes,
        log_range_bound,
        size_source,
        media_size_bytes,
        {{ smallest_plausible_bytes('duration_seconds') }} as min_plausible_bytes,
        case
            when media_size_bytes is null then null
            when duration_seconds is null or duration_seconds < 60 then media_size_bytes
            else least(
                media_size_bytes,
                {{ var('iab_id3_allowance_bytes') }} + ceil(media_size_bytes * 60.0 / duration_seconds)::bigint
            )
        end as iab_threshold_bytes
    from (
        select
            *,
            case size_source
                when 'feed' then enclosure_length_bytes
                when 'log_object_size' then log_object_size
                when 'log_complete_response' then log_delivered_bytes
                when 'log_range_end' then log_delivered_bytes
            end as media_size_bytes
        from sized
    ) as with_size
)

{% set size_columns = ['media_size_bytes', 'size_source', 'iab_threshold_bytes', 'media_key'] %}
{% if is_incremental() %}
-- The touched episodes are written again; `sized_at` moves only when the size did.
select
    final.*,
    {{ last_change(screened_relation, 'screened_at') }} as screened_through,
    case
        when previous.episode_id is not null
            and ({% for c in size_columns %}previous.{{ c }}{% if not loop.last %}, {% endif %}{% endfor %})
                is not distinct from ({% for c in size_columns %}final.{{ c }}{% if not loop.last %}, {% endif %}{% endfor %})
            then previous.sized_at
        else now()
    end as sized_at
from final
left join {{ this }} as previous on previous.episode_id = final.episode_id
{% else %}
select final.*, (select max(screened_at) from {{ screened_relation }}) as screened_through, now() as sized_at
from final
{% endif %}

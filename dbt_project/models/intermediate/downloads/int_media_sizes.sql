{{ config(tags=['partitioned'], materialized='incremental', incremental_strategy='delete+insert', unique_key='episode_id',
          indexes=[{'columns': ['episode_id']}, {'columns': ['sized_at']}],
          pre_hook=["{% if is_incremental() %}delete from {{ this }} as sizes where {{ tenant_predicate('sizes.tenant_id') }}
                     and not exists (select 1 from {{ ref('int_episode_media') }} as media where media.episode_id = sizes.episode_id)
                     {% endif %}"]) }}
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
-- Rebuilt whole by every partitioned run (it is small: one row per episode), from the evidence
-- of all days (int_media_size_evidence_daily); a run for some tenants (var `tenants`) rebuilds
-- their episodes only: its rows replace theirs by episode (`delete+insert`, after the pre-hook
-- removed their episodes no feed has any more), so runs for different tenants never rewrite
-- the same rows. `sized_at` keeps its value while an
-- episode's size, source and threshold stay as they were, and moves when they change: the days
-- that episode's windows were measured on are then out of date, and the partition sensor
-- requests them (pipelines/partition_sensor.py).
{% set previous = adapter.get_relation(this.database, this.schema, this.identifier) if execute else none %}
with evidence as (
    select
        episode_id,
        max(log_object_size) as log_object_size,
        max(log_complete_bytes) as log_complete_bytes,
        max(log_range_bound) as log_range_bound
    from {{ ref('int_media_size_evidence_daily') }}
    where {{ tenant_predicate('tenant_id') }}
    group by 1
),

media as (
    select media.tenant_id, media.episode_id, media.podcast_id, media.media_key, media.enclosure_length_bytes,
        media.duration_seconds
    from {{ ref('int_episode_media') }} as media
    where {{ tenant_predicate('media.tenant_id') }}
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
select
    final.*,
    {% if previous is not none %}
    case
        when previous.episode_id is not null
            and ({% for c in size_columns %}previous.{{ c }}{% if not loop.last %}, {% endif %}{% endfor %})
                is not distinct from ({% for c in size_columns %}final.{{ c }}{% if not loop.last %}, {% endif %}{% endfor %})
            then previous.sized_at
        else now()
    end as sized_at
from final
left join {{ previous }} as previous on previous.episode_id = final.episode_id
    {% else %}
    now() as sized_at
from final
    {% endif %}

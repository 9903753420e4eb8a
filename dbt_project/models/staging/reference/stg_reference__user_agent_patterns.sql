with source as (
    select * from {{ source('reference', 'user_agent_patterns') }}
),

renamed as (
    select
        pattern_set,
        ordinal,
        name as entity_name,
        pattern,
        category,
        case pattern_set when 'bots' then 1 when 'apps' then 2 when 'libraries' then 3 when 'browsers' then 4 end
            as match_priority
    from source
)

select * from renamed

with source as (
    select * from {{ source('listener_logs', 'listener_events') }}
),

renamed as (
    select
        md5(file_key || ':' || line_no) as request_id,
        tenant_id,
        event_time,
        log_date,
        file_key,
        line_no,
        lower(host) as host,
        path,
        -- Host + path, the key feed enclosures are matched on; null when the format logs no host
        -- (S3, plain combined...): such requests are matched by path (int_media_paths).
        lower(host) || path as media_key,
        upper(method) as method,
        status,
        bytes_sent,
        range_start,
        range_end,
        object_size,
        ip_hash,
        ip_prefix_hash as listener_ip_key,
        ip_version,
        ip_datacenter as is_datacenter_ip,
        coalesce(user_agent, '') as user_agent,
        referer,
        upper(country) as country_code,
        _ingested_at as ingested_at
    from source
)

select * from renamed

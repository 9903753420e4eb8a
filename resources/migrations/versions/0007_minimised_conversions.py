"""Conversion payloads minimised: a shopper's e-mail and phone are kept only as keyed hashes with
the tenant's salt (`email_key`, `phone_key`, beside `customer_key`), and the payload holds only
the fields attribution and ROI read (assets/ingestion/conversions.py `ORDER_FIELDS`,
`PIXEL_FIELDS`, `VANITY_FIELDS`). Payloads stored before are cut to those fields here, and the
quarantined conversion records lose the buyer's contact and address fields (they cannot be
hashed without the secret). `ops.hash_key_check` keeps a keyed check value of the hash secret,
so a run with another secret is refused instead of splitting every listener and customer."""

from resources.schema import run_script

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    run_script("""
        alter table raw.attribution_events add column if not exists email_key text;
        alter table raw.attribution_events add column if not exists phone_key text;
        create index if not exists attribution_events_email_key_idx
            on raw.attribution_events (tenant_id, email_key) where email_key is not null;
        create index if not exists attribution_events_phone_key_idx
            on raw.attribution_events (tenant_id, phone_key) where phone_key is not null;

        update raw.attribution_events
        set payload = (
            select coalesce(jsonb_object_agg(key, value), '{}'::jsonb)
            from jsonb_each(payload)
            where key = any(case source
                when 'shop_orders' then array['id', 'name', 'created_at', 'updated_at', 'processed_at', 'cancelled_at',
                    'total_price', 'subtotal_price', 'total_discounts', 'currency', 'financial_status', 'test',
                    'source_name', 'landing_site', 'referring_site', 'discount_codes', 'refunds']
                when 'pixel' then array['event_id', 'advertiser_id', 'event', 'value', 'currency', 'ts', 'order_id',
                    'page_url', 'referrer', 'ua']
                else array['visit_id', 'sponsor_id', 'ts', 'host', 'path', 'referer', 'user_agent'] end)
        )
        where jsonb_typeof(payload) = 'object';

        update quarantine.campaign_records
        set payload = payload - array['email', 'contact_email', 'phone', 'customer', 'billing_address',
                                      'shipping_address', 'first_name', 'last_name', 'note', 'note_attributes',
                                      'browser_ip', 'ip', 'client_ip']
        where source in ('shop_orders', 'pixel', 'vanity') and jsonb_typeof(payload) = 'object';

        create table if not exists ops.hash_key_check (
            singleton   boolean     primary key default true check (singleton),
            check_value text        not null,  -- HMAC of a fixed label with the hash secret
            recorded_at timestamptz not null default now()
        );
    """)

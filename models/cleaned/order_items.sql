{{ config(unique_key=['order_id', 'line_number']) }}
select
    _op,
    _commit_ts,
    _change_seq,
    order_id,
    line_number,
    product_id,
    quantity,
    {{ cents_to_amount('unit_price_cents') }} as unit_price,
    {{ cents_to_amount('discount_cents') }} as discount,
    {{ cents_to_amount('quantity * unit_price_cents - discount_cents') }} as net_amount,
    updated_at,
    _source_file
from {{ ref('stg_order_items') }}
where {{ reject_reason('order_items') }} is null

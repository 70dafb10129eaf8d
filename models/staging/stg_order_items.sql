select
    {{ change_columns() }},
    cast(order_id as bigint) as order_id,
    cast(line_number as integer) as line_number,
    cast(product_id as integer) as product_id,
    cast(quantity as integer) as quantity,
    cast(unit_price_cents as bigint) as unit_price_cents,
    cast(discount_cents as bigint) as discount_cents,
    cast(updated_at as timestamp) as updated_at,
    _source_file
from {{ source('shop', 'order_items') }}

select
    {{ change_columns() }},
    cast(product_id as integer) as product_id,
    sku,
    product_name,
    category,
    cast(unit_price_cents as bigint) as unit_price_cents,
    cast(updated_at as timestamp) as updated_at,
    _source_file
from {{ source('shop', 'products') }}

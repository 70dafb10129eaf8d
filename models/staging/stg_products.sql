select
    cast(product_id as integer) as product_id,
    product_name,
    category,
    cast(unit_price_cents as bigint) as unit_price_cents
from {{ ref('raw_products') }}

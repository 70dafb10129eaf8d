select
    {{ surrogate_key(['product_id']) }} as product_key,
    product_id,
    sku,
    product_name,
    category,
    {{ cents_to_amount('unit_price_cents') }} as list_price
from {{ ref('products') }}

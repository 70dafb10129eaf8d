select
    order_id,
    customer_id,
    store_id,
    order_date,
    lower(trim(status)) as status,
    updated_at
from {{ ref('stg_orders') }}

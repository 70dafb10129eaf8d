select
    {{ change_columns() }},
    cast(order_id as bigint) as order_id,
    cast(customer_id as integer) as customer_id,
    cast(store_id as integer) as store_id,
    cast(order_date as date) as order_date,
    status,
    currency,
    cast(updated_at as timestamp) as updated_at,
    _source_file
from {{ source('shop', 'orders') }}

select
    {{ change_columns() }},
    cast(payment_id as bigint) as payment_id,
    cast(order_id as bigint) as order_id,
    payment_method,
    cast(amount_cents as bigint) as amount_cents,
    cast(paid_at as timestamp) as paid_at,
    _source_file
from {{ source('shop', 'payments') }}

select
    cast(payment_id as integer) as payment_id,
    cast(order_id as integer) as order_id,
    payment_method,
    cast(amount_cents as bigint) as amount_cents,
    cast(paid_at as timestamp) as paid_at
from {{ ref('raw_payments') }}

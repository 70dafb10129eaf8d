select
    payment_id,
    order_id,
    lower(payment_method) as payment_method,
    {{ cents_to_amount('amount_cents') }} as amount,
    paid_at
from {{ ref('stg_payments') }}

select
    {{ surrogate_key(['pay.payment_id']) }} as payment_key,
    pay.payment_id,
    pay.order_id,
    c.customer_key,
    {{ date_key('cast(pay.paid_at as date)') }} as date_key,
    pay.payment_method,
    pm.is_voucher,
    pay.amount,
    '{{ var("reporting_currency") }}' as currency
from {{ ref('payments') }} pay
join {{ ref('orders') }} o on pay.order_id = o.order_id
join {{ ref('dim_customer') }} c on o.customer_id = c.customer_id
left join {{ ref('payment_methods') }} pm on pay.payment_method = pm.payment_method

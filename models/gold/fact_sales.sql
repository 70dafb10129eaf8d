{#- One row per order line of orders that were not cancelled. -#}
select
    {{ surrogate_key(['i.order_id', 'i.line_number']) }} as sales_key,
    i.order_id,
    i.line_number,
    c.customer_key,
    p.product_key,
    s.store_key,
    {{ date_key('o.order_date') }} as date_key,
    o.order_date,
    o.status,
    i.quantity,
    i.unit_price,
    i.discount,
    i.net_amount
from {{ ref('order_items') }} i
join {{ ref('orders') }} o on i.order_id = o.order_id
join {{ ref('dim_customer') }} c on o.customer_id = c.customer_id
join {{ ref('dim_product') }} p on i.product_id = p.product_id
join {{ ref('dim_store') }} s on o.store_id = s.store_id
where o.status <> 'cancelled'

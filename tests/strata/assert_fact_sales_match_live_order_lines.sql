{#- Every line of an order that is not cancelled is a sale, with the same amount, and nothing
    else is: incremental runs must retract the lines of deleted and cancelled orders. -#}
with live_lines as (
    select i.order_id, i.line_number, i.net_amount
    from {{ ref('order_items') }} i
    join {{ ref('orders') }} o on i.order_id = o.order_id
    where o.status <> 'cancelled'
),

sales as (
    select order_id, line_number, net_amount from {{ ref('fact_sales') }}
)

select
    coalesce(l.order_id, s.order_id) as order_id,
    coalesce(l.line_number, s.line_number) as line_number,
    l.net_amount as line_amount,
    s.net_amount as sale_amount
from live_lines l
full outer join sales s on l.order_id = s.order_id and l.line_number = s.line_number
where l.order_id is null or s.order_id is null or l.net_amount <> s.net_amount

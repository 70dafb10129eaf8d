select
    f.date_key,
    f.order_date as sales_date,
    s.store_id,
    count(distinct f.order_id) as orders,
    sum(f.quantity) as units,
    sum(f.net_amount) as net_sales
from {{ ref('fact_sales') }} f
join {{ ref('dim_store') }} s on f.store_key = s.store_key
group by 1, 2, 3

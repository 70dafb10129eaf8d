{#- Sales per month and store; on a lake, one partition per month. -#}
{{ config(partitioned_by=['month_start']) }}
select
    d.month_start,
    a.store_id,
    sum(a.orders) as orders,
    sum(a.units) as units,
    sum(a.net_sales) as net_sales
from {{ ref('agg_daily_sales') }} a
join {{ ref('dim_date') }} d on a.date_key = d.date_key
group by 1, 2

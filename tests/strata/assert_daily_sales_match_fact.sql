{#- Reconciliation: the daily aggregate holds exactly the sales of the fact table. -#}
with fact as (
    select sum(net_amount) as total from {{ ref('fact_sales') }}
),

aggregate as (
    select sum(net_sales) as total from {{ ref('agg_daily_sales') }}
)

select fact.total as fact_total, aggregate.total as aggregate_total
from fact cross join aggregate
where abs(coalesce(fact.total, 0) - coalesce(aggregate.total, 0)) > 0.005

{#- One row per order line of orders that were not cancelled.

    Incremental: only orders that changed in the new landing files are recomputed. Their lines
    as the table holds them are retracted (a delete, sequence 0) and their lines as they are now
    restated (sequence 1); the restatement wins where a line still exists, so lines of deleted
    or cancelled orders, and deleted lines, disappear. -#}
{{ config(
    materialized='incremental',
    incremental_strategy='cdc',
    unique_key=['order_id', 'line_number'],
    sequence_column='_change_seq',
    bookmark='files',
) }}
-- depends_on: {{ ref('stg_orders') }}, {{ ref('stg_order_items') }}
with
{%- if is_incremental() %}
changed_orders as (
    select order_id from {{ ref('stg_orders') }}
    union
    select order_id from {{ ref('stg_order_items') }}
),
{%- endif %}
current_lines as (
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
    {%- if is_incremental() %}
        and i.order_id in (select order_id from changed_orders)
    {%- endif %}
)

select *, 'U' as _op, {{ run_commit_ts() }} as _commit_ts, 1 as _change_seq
from current_lines
{%- if is_incremental() %}
union all
select
    sales_key, order_id, line_number, customer_key, product_key, store_key, date_key,
    order_date, status, quantity, unit_price, discount, net_amount,
    'D', {{ run_commit_ts() }}, 0
from {{ this }}
where order_id in (select order_id from changed_orders)
{%- endif %}

{#- One row per order line of orders that were not cancelled.

    Incremental: only the orders that changed in the new landing files are recomputed, and
    their previous lines retracted (see the `restate` macro), so lines of deleted or cancelled
    orders, and deleted lines, disappear. -#}
{{ config(
    materialized='incremental',
    incremental_strategy='cdc',
    unique_key=['order_id', 'line_number'],
    sequence_column='_change_seq',
    bookmark='files',
) }}
-- depends_on: {{ ref('stg_orders') }}, {{ ref('stg_order_items') }}
{%- set changed = 'select order_id from changed_orders' %}
with
{%- if is_incremental() %}
changed_orders as (
    select order_id from {{ ref('stg_orders') }}
    union
    select order_id from {{ ref('stg_order_items') }}
),
{%- endif %}
lines as (
    select * from {{ ref('order_items') }}
    {%- if is_incremental() %}
    where order_id in ({{ changed }})
    {%- endif %}
),
live_orders as (
    select * from {{ ref('orders') }}
    where status <> 'cancelled'
    {%- if is_incremental() %}
        and order_id in ({{ changed }})
    {%- endif %}
),
current_rows as (
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
    from lines i
    join live_orders o on i.order_id = o.order_id
    join {{ ref('dim_customer') }} c on o.customer_id = c.customer_id
    join {{ ref('dim_product') }} p on i.product_id = p.product_id
    join {{ ref('dim_store') }} s on o.store_id = s.store_id
)

{{ restate(
    ['sales_key', 'order_id', 'line_number', 'customer_key', 'product_key', 'store_key',
     'date_key', 'order_date', 'status', 'quantity', 'unit_price', 'discount', 'net_amount'],
    key='order_id',
    changed=changed,
) }}

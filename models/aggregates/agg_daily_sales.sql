{#- Sales per day and store. Incremental: the days of the orders that changed in the new
    landing files are recomputed from `fact_sales` (a day whose sales all went is retracted). -#}
{{ config(
    materialized='incremental',
    incremental_strategy='cdc',
    unique_key=['date_key', 'store_id'],
    sequence_column='_change_seq',
    bookmark='files',
    partitioned_by=['date_key'],
) }}
-- depends_on: {{ ref('stg_orders') }}, {{ ref('stg_order_items') }}
{%- set changed = 'select date_key from changed_days' %}
with
{%- if is_incremental() %}
changed_days as (
    {#- A change row carries the order's date (deletes too); a line's change, its order's. #}
    select {{ date_key('order_date') }} as date_key from {{ ref('stg_orders') }}
    union
    select {{ date_key('o.order_date') }}
    from {{ ref('stg_order_items') }} i
    join {{ ref('orders') }} o on i.order_id = o.order_id
),
{%- endif %}
current_rows as (
    select
        f.date_key,
        f.order_date as sales_date,
        s.store_id,
        count(distinct f.order_id) as orders,
        sum(f.quantity) as units,
        sum(f.net_amount) as net_sales
    from {{ ref('fact_sales') }} f
    join {{ ref('dim_store') }} s on f.store_key = s.store_key
    {%- if is_incremental() %}
    where f.date_key in ({{ changed }})
    {%- endif %}
    group by 1, 2, 3
)

{{ restate(
    ['date_key', 'sales_date', 'store_id', 'orders', 'units', 'net_sales'],
    key='date_key',
    changed=changed,
) }}

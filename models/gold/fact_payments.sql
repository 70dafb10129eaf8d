{#- One row per payment. Incremental like `fact_sales`: the payments that changed in the new
    landing files are restated and their previous rows retracted. -#}
{{ config(
    materialized='incremental',
    incremental_strategy='cdc',
    unique_key='payment_id',
    sequence_column='_change_seq',
    bookmark='files',
) }}
{%- set changed = 'select payment_id from ' ~ ref('stg_payments') %}
with current_rows as (
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
    {%- if is_incremental() %}
    where pay.payment_id in ({{ changed }})
    {%- endif %}
)

{{ restate(
    ['payment_key', 'payment_id', 'order_id', 'customer_key', 'date_key', 'payment_method',
     'is_voucher', 'amount', 'currency'],
    key='payment_id',
    changed=changed,
) }}

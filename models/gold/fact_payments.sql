{#- One row per payment. Incremental like `fact_sales`: the payments that changed in the new
    landing files are retracted and restated. -#}
{{ config(
    materialized='incremental',
    incremental_strategy='cdc',
    unique_key='payment_id',
    sequence_column='_change_seq',
    bookmark='files',
) }}
-- depends_on: {{ ref('stg_payments') }}
with
{%- if is_incremental() %}
changed_payments as (
    select payment_id from {{ ref('stg_payments') }}
),
{%- endif %}
current_payments as (
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
    where pay.payment_id in (select payment_id from changed_payments)
    {%- endif %}
)

select *, 'U' as _op, {{ run_commit_ts() }} as _commit_ts, 1 as _change_seq
from current_payments
{%- if is_incremental() %}
union all
select
    payment_key, payment_id, order_id, customer_key, date_key, payment_method, is_voucher,
    amount, currency, 'D', {{ run_commit_ts() }}, 0
from {{ this }}
where payment_id in (select payment_id from changed_payments)
{%- endif %}

{{ config(unique_key='order_id') }}
select
    _op,
    _commit_ts,
    _change_seq,
    order_id,
    customer_id,
    store_id,
    order_date,
    lower(trim(status)) as status,
    upper(trim(currency)) as currency,
    updated_at,
    _source_file
from {{ ref('stg_orders') }}
where {{ reject_reason('orders') }} is null

{{ config(unique_key='payment_id') }}
select
    _op,
    _commit_ts,
    _change_seq,
    payment_id,
    order_id,
    lower(trim(payment_method)) as payment_method,
    {{ cents_to_amount('amount_cents') }} as amount,
    paid_at,
    _source_file
from {{ ref('stg_payments') }}
where {{ reject_reason('payments') }} is null

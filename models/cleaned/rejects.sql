{#- Every change row the cleaned layer refused, with why and where it came from. Appends the
    rejects of new landing files only, so each landing row is counted once. -#}
{{ config(incremental_strategy='append') }}
{%- set tables = [
    ('customers', 'stg_customers', 'customer_id'),
    ('orders', 'stg_orders', 'order_id'),
    ('order_items', 'stg_order_items', "cast(order_id as varchar) || '-' || cast(line_number as varchar)"),
    ('payments', 'stg_payments', 'payment_id'),
] %}
{%- for table, model, key in tables %}
select
    '{{ table }}' as table_name,
    cast({{ key }} as varchar) as record_key,
    {{ reject_reason(table) }} as reason,
    _op,
    _commit_ts,
    _change_seq,
    _source_file
from {{ ref(model) }}
where {{ reject_reason(table) }} is not null
{% if not loop.last %}union all{% endif %}
{%- endfor %}

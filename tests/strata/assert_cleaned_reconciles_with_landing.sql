{#- Landing against cleaned, net of deletes and rejects: a key is live when its latest valid
    change (commit time, then sequence) is not a delete, and the cleaned table holds exactly the
    live keys. Returns the tables whose counts disagree. -#}
{%- set tables = [
    ('customers', 'stg_customers', 'customer_id'),
    ('products', 'stg_products', 'product_id'),
    ('stores', 'stg_stores', 'store_id'),
    ('orders', 'stg_orders', 'order_id'),
    ('order_items', 'stg_order_items', 'order_id, line_number'),
    ('payments', 'stg_payments', 'payment_id'),
] %}
{%- for table, staging, key in tables %}
select '{{ table }}' as table_name, landing.live_keys, cleaned.row_count
from (
    select count(*) as live_keys
    from (
        select _op, row_number() over (
            partition by {{ key }} order by _commit_ts desc, _change_seq desc
        ) as version
        from {{ ref(staging) }}
        {%- if table in ['customers', 'orders', 'order_items', 'payments'] %}
        where {{ reject_reason(table) }} is null
        {%- endif %}
    ) as versions
    where version = 1 and _op <> 'D'
) as landing
cross join (select count(*) as row_count from {{ ref(table) }}) as cleaned
where landing.live_keys <> cleaned.row_count
{% if not loop.last %}union all{% endif %}
{%- endfor %}

{#- Landing rows = rows that passed the rules + rows in `rejects`, per table: the rejects model
    appends each landing file's rejects exactly once across incremental runs. -#}
{%- set tables = [
    ('customers', 'stg_customers'),
    ('orders', 'stg_orders'),
    ('order_items', 'stg_order_items'),
    ('payments', 'stg_payments'),
] %}
{%- for table, staging in tables %}
select '{{ table }}' as table_name, landing.total, landing.valid, rejected.total as rejected
from (
    select
        count(*) as total,
        sum(case when {{ reject_reason(table) }} is null then 1 else 0 end) as valid
    from {{ ref(staging) }}
) as landing
cross join (
    select count(*) as total from {{ ref('rejects') }} where table_name = '{{ table }}'
) as rejected
where landing.total <> landing.valid + rejected.total
{% if not loop.last %}union all{% endif %}
{%- endfor %}

{#- The DMS header every landing row carries, as the staging layer names it. -#}
{% macro change_columns() -%}
    upper(trim(op)) as _op,
    cast(commit_ts as timestamp) as _commit_ts,
    cast(change_seq as bigint) as _change_seq
{%- endmacro %}

{#- Why a change row of a source table cannot be applied (NULL when it can). Deletes always
    apply: they carry the key, and the key is never invalid. -#}
{% macro reject_reason(table) -%}
    {%- set rules = {
        'customers': [
            ("customer_id is null", "missing customer_id"),
            (parse_date('signup_date') ~ " is null", "invalid signup_date"),
        ],
        'orders': [
            ("customer_id is null", "missing customer_id"),
            ("lower(trim(status)) not in (" ~ order_statuses() ~ ")", "unknown status"),
        ],
        'order_items': [
            ("quantity is null or quantity <= 0", "quantity is not positive"),
        ],
        'payments': [
            ("payment_method is null", "missing payment_method"),
            ("amount_cents is null or amount_cents < 0", "invalid amount"),
        ],
    } -%}
    case
        when _op = 'D' then null
        {%- for condition, reason in rules[table] %}
        when {{ condition }} then '{{ reason }}'
        {%- endfor %}
    end
{%- endmacro %}

{% macro order_statuses() -%}
    'placed', 'shipped', 'completed', 'returned', 'cancelled'
{%- endmacro %}

{#- The commit time of rows a model derives in this run (later runs commit later). -#}
{% macro run_commit_ts() -%}
    cast('{{ run_started_at }}' as timestamp)
{%- endmacro %}

{#- The end of a model that recomputes only the keys that changed (a `cdc` model with file
    bookmarks): its `current_rows` CTE is restated (sequence 1) and, on incremental runs, the
    rows the table holds for the changed keys are retracted (sequence 0). The restatement wins
    where a key still has a row; a key that no longer has one — deleted, cancelled — goes.
    `changed` selects the changed values of `key`. -#}
{% macro restate(columns, key, changed) -%}
select {{ columns | join(', ') }}, 'U' as _op, {{ run_commit_ts() }} as _commit_ts, 1 as _change_seq
from current_rows
{%- if is_incremental() %}
union all
select {{ columns | join(', ') }}, 'D' as _op, {{ run_commit_ts() }} as _commit_ts, 0 as _change_seq
from {{ this }}
where {{ key }} in ({{ changed }})
{%- endif %}
{%- endmacro %}

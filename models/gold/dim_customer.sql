{#- The current customers with their country's name. Incremental: the customers that changed
    in the new landing files are restated (a renamed country reaches every customer with
    --full-refresh). -#}
{{ config(
    materialized='incremental',
    incremental_strategy='cdc',
    unique_key='customer_id',
    sequence_column='_change_seq',
    bookmark='files',
) }}
{%- set changed = 'select customer_id from ' ~ ref('stg_customers') %}
with current_rows as (
    select
        {{ surrogate_key(['c.customer_id']) }} as customer_key,
        c.customer_id,
        c.first_name,
        c.last_name,
        c.email,
        c.city,
        c.country_code,
        cc.country_name,
        c.signup_date
    from {{ ref('customers') }} c
    left join {{ ref('country_codes') }} cc on c.country_code = cc.country_code
    {%- if is_incremental() %}
    where c.customer_id in ({{ changed }})
    {%- endif %}
)

{{ restate(
    ['customer_key', 'customer_id', 'first_name', 'last_name', 'email', 'city',
     'country_code', 'country_name', 'signup_date'],
    key='customer_id',
    changed=changed,
) }}

{#- The current version of each customer: text trimmed, e-mail lower-cased, the signup date as
    an ISO date. Reads only the landing files it has not read yet. -#}
{{ config(unique_key='customer_id') }}
select
    _op,
    _commit_ts,
    _change_seq,
    customer_id,
    {{ clean_text('first_name') }} as first_name,
    {{ clean_text('last_name') }} as last_name,
    {{ clean_email('email') }} as email,
    {{ clean_text('street') }} as street,
    {{ clean_text('city') }} as city,
    upper(trim(country_code)) as country_code,
    {{ parse_date('signup_date') }} as signup_date,
    updated_at,
    _source_file
from {{ ref('stg_customers') }}
where {{ reject_reason('customers') }} is null

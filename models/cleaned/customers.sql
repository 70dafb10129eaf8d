{#- The latest version of each customer, text trimmed, e-mail and country normalized. -#}
with ranked as (
    select
        *,
        row_number() over (partition by customer_id order by updated_at desc) as version_rank
    from {{ ref('stg_customers') }}
)

select
    customer_id,
    {{ clean_text('first_name') }} as first_name,
    {{ clean_text('last_name') }} as last_name,
    {{ clean_email('email') }} as email,
    upper(trim(country_code)) as country_code,
    signup_date,
    updated_at
from ranked
where version_rank = 1

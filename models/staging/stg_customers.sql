{#- Customer changes as the shop exports them (CSV): typed, text kept as written. -#}
select
    {{ change_columns() }},
    cast(customer_id as integer) as customer_id,
    cast(first_name as varchar) as first_name,
    cast(last_name as varchar) as last_name,
    cast(email as varchar) as email,
    cast(street as varchar) as street,
    cast(city as varchar) as city,
    cast(country_code as varchar) as country_code,
    cast(signup_date as varchar) as signup_date,
    cast(updated_at as timestamp) as updated_at,
    _source_file
from {{ source('shop', 'customers') }}

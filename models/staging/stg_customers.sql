select
    cast(customer_id as integer) as customer_id,
    first_name,
    last_name,
    email,
    country_code,
    cast(signup_date as date) as signup_date,
    cast(updated_at as timestamp) as updated_at
from {{ ref('raw_customers') }}

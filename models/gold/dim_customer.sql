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

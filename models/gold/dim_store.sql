select
    {{ surrogate_key(['store_id']) }} as store_key,
    store_id,
    store_name,
    city,
    country_code,
    opened_on,
    store_name = 'Online' as is_online
from {{ ref('stores') }}

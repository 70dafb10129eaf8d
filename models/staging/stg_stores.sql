select
    cast(store_id as integer) as store_id,
    store_name,
    city,
    country_code,
    cast(opened_on as date) as opened_on
from {{ ref('raw_stores') }}

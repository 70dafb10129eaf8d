select
    {{ change_columns() }},
    cast(store_id as integer) as store_id,
    store_name,
    city,
    country_code,
    cast(opened_on as date) as opened_on,
    _source_file
from {{ source('shop', 'stores') }}

{{ config(unique_key='store_id') }}
select
    _op,
    _commit_ts,
    _change_seq,
    store_id,
    {{ clean_text('store_name') }} as store_name,
    {{ clean_text('city') }} as city,
    upper(trim(country_code)) as country_code,
    opened_on,
    _source_file
from {{ ref('stg_stores') }}

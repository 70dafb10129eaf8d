{{ config(unique_key='product_id') }}
select
    _op,
    _commit_ts,
    _change_seq,
    product_id,
    upper(trim(sku)) as sku,
    {{ clean_text('product_name') }} as product_name,
    lower(trim(category)) as category,
    unit_price_cents,
    updated_at,
    _source_file
from {{ ref('stg_products') }}

{#- Every version of every customer: a CDC day that moves a customer or changes an e-mail
    closes the version it held (`dbt_valid_to`) and opens a new one (`dbt_valid_from`), both at
    the change's `updated_at`. A customer deleted in the shop keeps a record of the deletion. -#}
{% snapshot customer_history %}
{{ config(
    unique_key='customer_id',
    strategy='timestamp',
    updated_at='updated_at',
    hard_deletes='new_record',
    tags=['snapshots'],
) }}
select
    customer_id,
    first_name,
    last_name,
    email,
    street,
    city,
    country_code,
    signup_date,
    updated_at
from {{ ref('customers') }}
{% endsnapshot %}

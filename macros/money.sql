{#- Amounts arrive in cents from the source system; the warehouse reports in currency units. -#}
{% macro cents_to_amount(column_name) -%}
    cast({{ column_name }} as decimal(18, 2)) / 100
{%- endmacro %}

{#- Amounts arrive in cents from the source system; the warehouse reports exact currency units. -#}
{% macro cents_to_amount(column_name) -%}
    cast(({{ column_name }}) / 100.0 as decimal(18, 2))
{%- endmacro %}

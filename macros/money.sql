{#- Amounts arrive in cents from the source system; the warehouse reports exact currency units. -#}
{% macro cents_to_amount(column_name) -%}
    {{ return(adapter.dispatch('cents_to_amount')(column_name)) }}
{%- endmacro %}

{% macro default__cents_to_amount(column_name) -%}
    cast(({{ column_name }}) / 100.0 as decimal(18, 2))
{%- endmacro %}

{#- Trino types `100.0` as decimal(4, 1), and a quotient takes the larger scale of its operands:
    divide an exact two-place decimal instead. -#}
{% macro trino__cents_to_amount(column_name) -%}
    cast(cast(({{ column_name }}) as decimal(38, 2)) / 100 as decimal(18, 2))
{%- endmacro %}

{#- Text as the source system leaves it (padded, mixed case) made comparable. -#}
{% macro clean_text(column_name) -%}
    nullif(trim({{ column_name }}), '')
{%- endmacro %}

{% macro clean_email(column_name) -%}
    lower(trim({{ column_name }}))
{%- endmacro %}

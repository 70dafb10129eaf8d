{#- An integer day key (20240131) for joining facts to `dim_date`, per warehouse. -#}
{% macro date_key(column_name) -%}
    {{ return(adapter.dispatch('date_key')(column_name)) }}
{%- endmacro %}

{% macro default__date_key(column_name) -%}
    cast(to_char({{ column_name }}, 'YYYYMMDD') as integer)
{%- endmacro %}

{% macro duckdb__date_key(column_name) -%}
    cast(strftime({{ column_name }}, '%Y%m%d') as integer)
{%- endmacro %}

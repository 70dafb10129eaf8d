{#- Text as the source system leaves it (padded, mixed case) made comparable. -#}
{% macro clean_text(column_name) -%}
    nullif(trim({{ column_name }}), '')
{%- endmacro %}

{% macro clean_email(column_name) -%}
    lower(trim({{ column_name }}))
{%- endmacro %}

{#- A date written as YYYY-MM-DD or, by the legacy client, DD.MM.YYYY; NULL when it is
    neither or names no real day (31.02.2023). -#}
{% macro parse_date(column_name) -%}
    {{ return(adapter.dispatch('parse_date')(column_name)) }}
{%- endmacro %}

{% macro duckdb__parse_date(column_name) -%}
    cast(coalesce(
        try_strptime(trim({{ column_name }}), '%Y-%m-%d'),
        try_strptime(trim({{ column_name }}), '%d.%m.%Y')
    ) as date)
{%- endmacro %}

{% macro trino__parse_date(column_name) -%}
    cast(coalesce(
        try(date_parse(trim({{ column_name }}), '%Y-%m-%d')),
        try(date_parse(trim({{ column_name }}), '%d.%m.%Y'))
    ) as date)
{%- endmacro %}

{% macro default__parse_date(column_name) -%}
    {%- set text = "trim(" ~ column_name ~ ")" -%}
    {%- set iso = "regexp_replace(" ~ text ~ ", '^(\\d{2})\\.(\\d{2})\\.(\\d{4})$', '\\3-\\2-\\1')" -%}
    case
        when {{ iso }} ~ '^\d{4}-(0[1-9]|1[0-2])-\d{2}$'
            and cast(substr({{ iso }}, 9, 2) as integer) between 1 and extract(day from (
                date_trunc('month', to_date(substr({{ iso }}, 1, 7) || '-01', 'YYYY-MM-DD'))
                + interval '1 month' - interval '1 day'))
        then to_date({{ iso }}, 'YYYY-MM-DD')
    end
{%- endmacro %}

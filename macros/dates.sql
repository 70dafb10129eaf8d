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

{% macro trino__date_key(column_name) -%}
    cast(date_format({{ column_name }}, '%Y%m%d') as integer)
{%- endmacro %}

{#- The days from `start_date` to `end_date` (ISO date strings) as one `date` column `day`. -#}
{% macro calendar_days(start_date, end_date) -%}
    {{ return(adapter.dispatch('calendar_days')(start_date, end_date)) }}
{%- endmacro %}

{% macro default__calendar_days(start_date, end_date) -%}
    select cast(day as date) as day
    from generate_series(
        cast('{{ start_date }}' as date),
        cast('{{ end_date }}' as date),
        interval '1 day'
    ) as calendar(day)
{%- endmacro %}

{#- `generate_series` runs on Redshift's leader node only, so a table cannot be built from it:
    count the days from a spine of digits instead (10,000 days, 27 years). -#}
{% macro redshift__calendar_days(start_date, end_date) -%}
    with digits as (
        select 0 as d union all select 1 union all select 2 union all select 3
        union all select 4 union all select 5 union all select 6 union all select 7
        union all select 8 union all select 9
    ),
    numbers as (
        select ones.d + 10 * tens.d + 100 * hundreds.d + 1000 * thousands.d as n
        from digits as ones
        cross join digits as tens
        cross join digits as hundreds
        cross join digits as thousands
    )
    select cast(cast('{{ start_date }}' as date) + n as date) as day
    from numbers
    where n <= cast('{{ end_date }}' as date) - cast('{{ start_date }}' as date)
{%- endmacro %}

{#- Trino (and Athena, which dispatches to `trino__`) builds a day sequence in one call. -#}
{% macro trino__calendar_days(start_date, end_date) -%}
    select day
    from unnest(sequence(date '{{ start_date }}', date '{{ end_date }}', interval '1' day)) as calendar(day)
{%- endmacro %}

{#- The ISO day of the week, Monday 1 to Sunday 7. -#}
{% macro iso_day_of_week(column_name) -%}
    {{ return(adapter.dispatch('iso_day_of_week')(column_name)) }}
{%- endmacro %}

{% macro default__iso_day_of_week(column_name) -%}
    extract(isodow from {{ column_name }})
{%- endmacro %}

{% macro trino__iso_day_of_week(column_name) -%}
    day_of_week({{ column_name }})
{%- endmacro %}

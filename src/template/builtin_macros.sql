{#- strata's built-in macros: dbt's naming macros and the common cross-database helpers.
    Project macros with the same name override these; `dbt.<name>()` always reaches them. -#}
{% macro generate_schema_name(custom_schema_name=none, node=none) -%}
    {{ default__generate_schema_name(custom_schema_name, node) }}
{%- endmacro %}
{% macro default__generate_schema_name(custom_schema_name=none, node=none) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ target.schema }}_{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}
{% macro generate_alias_name(custom_alias_name=none, node=none) -%}
    {{ default__generate_alias_name(custom_alias_name, node) }}
{%- endmacro %}
{% macro default__generate_alias_name(custom_alias_name=none, node=none) -%}
    {%- if custom_alias_name -%}{{ custom_alias_name | trim }}{%- elif node.version -%}{{ node.name ~ "_v" ~ node.version }}{%- else -%}{{ node.name }}{%- endif -%}
{%- endmacro %}
{% macro generate_database_name(custom_database_name=none, node=none) -%}
    {{ default__generate_database_name(custom_database_name, node) }}
{%- endmacro %}
{% macro default__generate_database_name(custom_database_name=none, node=none) -%}
    {%- if custom_database_name is none -%}{{ target.database }}{%- else -%}{{ custom_database_name | trim }}{%- endif -%}
{%- endmacro %}
{% macro current_timestamp() -%}{{ adapter.dispatch('current_timestamp')() }}{%- endmacro %}
{% macro default__current_timestamp() -%}current_timestamp{%- endmacro %}
{% macro redshift__current_timestamp() -%}getdate(){%- endmacro %}
{% macro type_string() -%}{{ adapter.dispatch('type_string')() }}{%- endmacro %}
{% macro default__type_string() -%}varchar{%- endmacro %}
{% macro redshift__type_string() -%}varchar(65535){%- endmacro %}
{% macro type_int() -%}integer{%- endmacro %}
{% macro type_bigint() -%}bigint{%- endmacro %}
{% macro type_float() -%}double precision{%- endmacro %}
{% macro type_numeric() -%}numeric(28, 6){%- endmacro %}
{% macro type_timestamp() -%}timestamp{%- endmacro %}
{% macro type_boolean() -%}boolean{%- endmacro %}
{% macro hash(field) -%}{{ adapter.dispatch('hash')(field) }}{%- endmacro %}
{% macro default__hash(field) -%}md5(cast({{ field }} as {{ type_string() }})){%- endmacro %}
{% macro trino__hash(field) -%}lower(to_hex(md5(to_utf8(cast({{ field }} as varchar))))){%- endmacro %}
{% macro concat(fields) -%}{{ fields | join(' || ') }}{%- endmacro %}
{% macro safe_cast(field, type) -%}{{ adapter.dispatch('safe_cast')(field, type) }}{%- endmacro %}
{% macro default__safe_cast(field, type) -%}cast({{ field }} as {{ type }}){%- endmacro %}
{% macro duckdb__safe_cast(field, type) -%}try_cast({{ field }} as {{ type }}){%- endmacro %}
{% macro trino__safe_cast(field, type) -%}try_cast({{ field }} as {{ type }}){%- endmacro %}
{% macro cast(field, type) -%}cast({{ field }} as {{ type }}){%- endmacro %}
{% macro dateadd(datepart, interval, from_date_or_timestamp) -%}
    {{ adapter.dispatch('dateadd')(datepart, interval, from_date_or_timestamp) }}
{%- endmacro %}
{% macro default__dateadd(datepart, interval, from_date_or_timestamp) -%}
    {{ from_date_or_timestamp }} + ((interval '1 {{ datepart }}') * ({{ interval }}))
{%- endmacro %}
{% macro redshift__dateadd(datepart, interval, from_date_or_timestamp) -%}
    dateadd({{ datepart }}, {{ interval }}, {{ from_date_or_timestamp }})
{%- endmacro %}
{% macro trino__dateadd(datepart, interval, from_date_or_timestamp) -%}
    date_add('{{ datepart }}', {{ interval }}, {{ from_date_or_timestamp }})
{%- endmacro %}
{% macro date_trunc(datepart, date) -%}date_trunc('{{ datepart }}', {{ date }}){%- endmacro %}
{% macro split_part(string_text, delimiter_text, part_number) -%}
    split_part({{ string_text }}, {{ delimiter_text }}, {{ part_number }})
{%- endmacro %}
{% macro any_value(expression) -%}{{ adapter.dispatch('any_value')(expression) }}{%- endmacro %}
{% macro default__any_value(expression) -%}any_value({{ expression }}){%- endmacro %}
{% macro postgres__any_value(expression) -%}min({{ expression }}){%- endmacro %}
{% macro escape_single_quotes(expression) -%}{{ expression | replace("'", "''") }}{%- endmacro %}
{% macro string_literal(value) -%}'{{ value }}'{%- endmacro %}
{#- Generic data tests: each returns the failing rows. -#}
{#- The SQL of these four is written once, in Rust (`template/builtin_tests.rs`). -#}
{% test unique(model, column_name) %}{{ __strata_test_sql('unique', model, column_name) }}{% endtest %}
{% test not_null(model, column_name) %}{{ __strata_test_sql('not_null', model, column_name) }}{% endtest %}
{% test accepted_values(model, column_name, values, quote=true) %}{{ __strata_test_sql('accepted_values', model, column_name, values=values, quote=quote) }}{% endtest %}
{% test relationships(model, column_name, to, field) %}{{ __strata_test_sql('relationships', model, column_name, to=to, field=field) }}{% endtest %}
{% test unique_combination_of_columns(model, combination_of_columns) %}
select {{ combination_of_columns | join(', ') }}, count(*) as n_records
from {{ model }}
group by {{ combination_of_columns | join(', ') }}
having count(*) > 1
{% endtest %}
{% test expression_is_true(model, expression, column_name=none) %}
select *
from {{ model }}
where not ({% if column_name %}{{ column_name }} {% endif %}{{ expression }})
{% endtest %}
{% test not_empty(model) %}
select 1 as empty_relation
where not exists (select 1 from {{ model }})
{% endtest %}
{#- Reconciliation between layers: a measure (row count by default, `sum(column)` for a column
    test, or any aggregate) must agree between this relation and one or more others (summed), per
    group when `group_by` is given, within `tolerance` (absolute) and `tolerance_pct` (percent of
    the other side). Returns one row per group that disagrees. -#}
{% test reconcile(model, to, column_name=none, measure=none, to_measure=none, group_by=none, tolerance=0, tolerance_pct=none, where_to=none) %}
{%- set this_measure = measure if measure else (('sum(' ~ column_name ~ ')') if column_name else 'count(*)') -%}
{%- set other_measure = to_measure if to_measure else this_measure -%}
{%- set others = to if (to is sequence and to is not string) else [to] -%}
{%- set keys = group_by if group_by else [] -%}
with this_side as (
    select {% for k in keys %}{{ k }}, {% endfor %}{{ this_measure }} as measure
    from {{ model }}
    {%- if keys %}
    group by {{ keys | join(', ') }}
    {%- endif %}
),
other_side as (
    select {% for k in keys %}{{ k }}, {% endfor %}sum(measure) as measure
    from (
    {%- for other in others %}
        select {% for k in keys %}{{ k }}, {% endfor %}{{ other_measure }} as measure
        from {{ other }}
        {%- if where_to %}
        where {{ where_to }}
        {%- endif %}
        {%- if keys %}
        group by {{ keys | join(', ') }}
        {%- endif %}
        {%- if not loop.last %}
        union all
        {%- endif %}
    {%- endfor %}
    ) as unioned
    {%- if keys %}
    group by {{ keys | join(', ') }}
    {%- endif %}
),
compared as (
    {#- One side per row, summed per group: GROUP BY matches NULL keys, and no engine needs a
        full outer join on an OR condition (PostgreSQL cannot run one). #}
    select {% for k in keys %}{{ k }}, {% endfor %}sum(this_measure) as this_measure, sum(other_measure) as other_measure
    from (
        select {% for k in keys %}{{ k }}, {% endfor %}coalesce(measure, 0) as this_measure, 0 as other_measure
        from this_side
        union all
        select {% for k in keys %}{{ k }}, {% endfor %}0 as this_measure, coalesce(measure, 0) as other_measure
        from other_side
    ) as sides
    {%- if keys %}
    group by {{ keys | join(', ') }}
    {%- endif %}
)
select compared.*, this_measure - other_measure as difference
from compared
where abs(this_measure - other_measure) > {{ tolerance }}
{%- if tolerance_pct is not none %}
  and abs(this_measure - other_measure) > {{ tolerance_pct }} / 100.0 * abs(other_measure)
{%- endif %}
{% endtest %}
{% test row_count(model, min=none, max=none) %}
select n_records
from (select count(*) as n_records from {{ model }}) counted
where {% if min is not none %}n_records < {{ min }}{% else %}false{% endif %}
   or {% if max is not none %}n_records > {{ max }}{% else %}false{% endif %}
{% endtest %}

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
{#- PostgreSQL's intervals know no quarter: three months. -#}
{% macro default__dateadd(datepart, interval, from_date_or_timestamp) -%}
    {%- if datepart | lower == 'quarter' -%}
    {{ from_date_or_timestamp }} + ((interval '3 month') * ({{ interval }}))
    {%- else -%}
    {{ from_date_or_timestamp }} + ((interval '1 {{ datepart }}') * ({{ interval }}))
    {%- endif -%}
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
{#- dbt's other cross-database macros, each dispatched so a project or package can override it
    per warehouse (`<adapter>__name`), with strata's own SQL for each warehouse it supports. -#}
{% macro length(expression) -%}{{ adapter.dispatch('length', 'dbt')(expression) }}{%- endmacro %}
{% macro default__length(expression) -%}length({{ expression }}){%- endmacro %}
{% macro redshift__length(expression) -%}len({{ expression }}){%- endmacro %}
{% macro position(substring_text, string_text) -%}{{ adapter.dispatch('position', 'dbt')(substring_text, string_text) }}{%- endmacro %}
{% macro default__position(substring_text, string_text) -%}position({{ substring_text }} in {{ string_text }}){%- endmacro %}
{% macro trino__position(substring_text, string_text) -%}strpos({{ string_text }}, {{ substring_text }}){%- endmacro %}
{% macro replace(field, old_chars, new_chars) -%}{{ adapter.dispatch('replace', 'dbt')(field, old_chars, new_chars) }}{%- endmacro %}
{% macro default__replace(field, old_chars, new_chars) -%}replace({{ field }}, {{ old_chars }}, {{ new_chars }}){%- endmacro %}
{% macro right(string_text, length_expression) -%}{{ adapter.dispatch('right', 'dbt')(string_text, length_expression) }}{%- endmacro %}
{% macro default__right(string_text, length_expression) -%}right({{ string_text }}, {{ length_expression }}){%- endmacro %}
{% macro trino__right(string_text, length_expression) -%}
    case when {{ length_expression }} = 0 then '' else substr({{ string_text }}, -({{ length_expression }})) end
{%- endmacro %}
{% macro cast_bool_to_text(field) -%}{{ adapter.dispatch('cast_bool_to_text', 'dbt')(field) }}{%- endmacro %}
{% macro default__cast_bool_to_text(field) -%}cast({{ field }} as {{ type_string() }}){%- endmacro %}
{% macro redshift__cast_bool_to_text(field) -%}
    case when {{ field }} is true then 'true' when {{ field }} is false then 'false' end
{%- endmacro %}
{% macro equals(expr1, expr2) -%}{{ adapter.dispatch('equals', 'dbt')(expr1, expr2) }}{%- endmacro %}
{#- dbt's default: plain `=` (NULL for NULLs), unless the project sets the behaviour flag
    `enable_truthy_nulls_equals_macro`, which makes two NULLs equal. -#}
{% macro default__equals(expr1, expr2) -%}
    {%- if flags.enable_truthy_nulls_equals_macro | default(false) -%}
    (({{ expr1 }} = {{ expr2 }}) or ({{ expr1 }} is null and {{ expr2 }} is null))
    {%- else -%}
    ({{ expr1 }} = {{ expr2 }})
    {%- endif -%}
{%- endmacro %}
{% macro except() -%}{{ adapter.dispatch('except', 'dbt')() }}{%- endmacro %}
{% macro default__except() -%}except{%- endmacro %}
{% macro intersect() -%}{{ adapter.dispatch('intersect', 'dbt')() }}{%- endmacro %}
{% macro default__intersect() -%}intersect{%- endmacro %}
{% macro bool_or(expression) -%}{{ adapter.dispatch('bool_or', 'dbt')(expression) }}{%- endmacro %}
{% macro default__bool_or(expression) -%}bool_or({{ expression }}){%- endmacro %}
{% macro trino__bool_or(expression) -%}bool_or({{ expression }}){%- endmacro %}
{% macro redshift__bool_or(expression) -%}bool_or({{ expression }}){%- endmacro %}
{% macro date(year, month, day) -%}{{ adapter.dispatch('date', 'dbt')(year, month, day) }}{%- endmacro %}
{% macro default__date(year, month, day) -%}
    cast('{{ year }}-{{ ('0' ~ month)[-2:] }}-{{ ('0' ~ day)[-2:] }}' as date)
{%- endmacro %}
{% macro last_day(date, datepart) -%}{{ adapter.dispatch('last_day', 'dbt')(date, datepart) }}{%- endmacro %}
{% macro default__last_day(date, datepart) -%}
    cast({{ dateadd('day', '-1', dateadd(datepart, '1', date_trunc(datepart, date))) }} as date)
{%- endmacro %}
{% macro datediff(first_date, second_date, datepart) -%}{{ adapter.dispatch('datediff', 'dbt')(first_date, second_date, datepart) }}{%- endmacro %}
{#- Calendar boundaries crossed from the first to the second, as dbt counts them. -#}
{% macro default__datediff(first_date, second_date, datepart) -%}
    {%- set part = datepart | lower -%}
    {%- if part == 'year' -%}
        (extract(year from {{ second_date }}) - extract(year from {{ first_date }}))
    {%- elif part == 'quarter' -%}
        ((extract(year from {{ second_date }}) - extract(year from {{ first_date }})) * 4 + extract(quarter from {{ second_date }}) - extract(quarter from {{ first_date }}))
    {%- elif part == 'month' -%}
        ((extract(year from {{ second_date }}) - extract(year from {{ first_date }})) * 12 + extract(month from {{ second_date }}) - extract(month from {{ first_date }}))
    {%- elif part == 'day' -%}
        (cast({{ second_date }} as date) - cast({{ first_date }} as date))
    {%- elif part == 'week' -%}
        (floor((cast(date_trunc('week', cast({{ second_date }} as date)) as date) - cast(date_trunc('week', cast({{ first_date }} as date)) as date)) / 7))
    {%- else -%}
        {{ exceptions.raise_compiler_error("datediff: the datepart `" ~ datepart ~ "` is not supported; use year, quarter, month, week or day") }}
    {%- endif -%}
{%- endmacro %}
{% macro duckdb__datediff(first_date, second_date, datepart) -%}
    date_diff('{{ datepart }}', cast({{ first_date }} as timestamp), cast({{ second_date }} as timestamp))
{%- endmacro %}
{% macro redshift__datediff(first_date, second_date, datepart) -%}
    datediff({{ datepart }}, {{ first_date }}, {{ second_date }})
{%- endmacro %}
{% macro trino__datediff(first_date, second_date, datepart) -%}
    date_diff('{{ datepart }}', date_trunc('{{ datepart }}', cast({{ first_date }} as timestamp)), date_trunc('{{ datepart }}', cast({{ second_date }} as timestamp)))
{%- endmacro %}
{% macro listagg(measure, delimiter_text="','", order_by_clause=none, limit_num=none) -%}
    {{ adapter.dispatch('listagg', 'dbt')(measure, delimiter_text, order_by_clause, limit_num) }}
{%- endmacro %}
{% macro default__listagg(measure, delimiter_text, order_by_clause, limit_num) -%}
    {%- if limit_num -%}
        array_to_string((array_agg({{ measure }} {{ order_by_clause or '' }}))[1:{{ limit_num }}], {{ delimiter_text }})
    {%- else -%}
        string_agg({{ measure }}, {{ delimiter_text }} {{ order_by_clause or '' }})
    {%- endif -%}
{%- endmacro %}
{% macro duckdb__listagg(measure, delimiter_text, order_by_clause, limit_num) -%}
    {%- if limit_num -%}
        array_to_string(list_slice(list({{ measure }} {{ order_by_clause or '' }}), 1, {{ limit_num }}), {{ delimiter_text }})
    {%- else -%}
        string_agg({{ measure }}, {{ delimiter_text }} {{ order_by_clause or '' }})
    {%- endif -%}
{%- endmacro %}
{% macro redshift__listagg(measure, delimiter_text, order_by_clause, limit_num) -%}
    {%- if limit_num -%}
        {{ exceptions.raise_compiler_error("listagg: `limit_num` is not supported on Redshift") }}
    {%- endif -%}
    listagg({{ measure }}, {{ delimiter_text }}){% if order_by_clause %} within group ({{ order_by_clause }}){% endif %}
{%- endmacro %}
{% macro trino__listagg(measure, delimiter_text, order_by_clause, limit_num) -%}
    {%- if limit_num -%}
        array_join(slice(array_agg({{ measure }} {{ order_by_clause or '' }}), 1, {{ limit_num }}), {{ delimiter_text }})
    {%- else -%}
        listagg({{ measure }}, {{ delimiter_text }}) within group ({{ order_by_clause or 'order by 1' }})
    {%- endif -%}
{%- endmacro %}
{% macro array_construct(inputs=[], data_type=api.Column.translate_type('integer')) -%}
    {{ adapter.dispatch('array_construct', 'dbt')(inputs, data_type) }}
{%- endmacro %}
{% macro default__array_construct(inputs, data_type) -%}
    {%- if inputs | length > 0 -%}array[ {{ inputs | join(' , ') }} ]{%- else -%}cast(array[] as {{ data_type }}[]){%- endif -%}
{%- endmacro %}
{% macro trino__array_construct(inputs, data_type) -%}
    {%- if inputs | length > 0 -%}array[ {{ inputs | join(' , ') }} ]{%- else -%}cast(array[] as array({{ data_type }})){%- endif -%}
{%- endmacro %}
{% macro array_append(array, new_element) -%}{{ adapter.dispatch('array_append', 'dbt')(array, new_element) }}{%- endmacro %}
{% macro default__array_append(array, new_element) -%}array_append({{ array }}, {{ new_element }}){%- endmacro %}
{% macro trino__array_append(array, new_element) -%}concat({{ array }}, {{ new_element }}){%- endmacro %}
{% macro array_concat(array_1, array_2) -%}{{ adapter.dispatch('array_concat', 'dbt')(array_1, array_2) }}{%- endmacro %}
{% macro default__array_concat(array_1, array_2) -%}array_cat({{ array_1 }}, {{ array_2 }}){%- endmacro %}
{% macro duckdb__array_concat(array_1, array_2) -%}list_concat({{ array_1 }}, {{ array_2 }}){%- endmacro %}
{% macro trino__array_concat(array_1, array_2) -%}concat({{ array_1 }}, {{ array_2 }}){%- endmacro %}
{#- How many binary digits count to `upper_bound` (at least 1). -#}
{% macro get_powers_of_two(upper_bound) -%}{{ return(adapter.dispatch('get_powers_of_two', 'dbt')(upper_bound)) }}{%- endmacro %}
{% macro default__get_powers_of_two(upper_bound) -%}
    {%- if upper_bound <= 0 -%}
        {{ exceptions.raise_compiler_error("get_powers_of_two: `upper_bound` must be positive, not " ~ upper_bound) }}
    {%- endif -%}
    {%- set ns = namespace(digits=0) -%}
    {%- for i in range(1, 64) -%}
        {%- if ns.digits == 0 and 2 ** i >= upper_bound -%}{%- set ns.digits = i -%}{%- endif -%}
    {%- endfor -%}
    {{ return(ns.digits) }}
{%- endmacro %}
{#- The integers 1 to `upper_bound` as `generated_number`, from a cross join of binary digits
    (no engine function, so every warehouse runs it, Redshift's compute nodes too). -#}
{% macro generate_series(upper_bound) -%}{{ return(adapter.dispatch('generate_series', 'dbt')(upper_bound)) }}{%- endmacro %}
{% macro default__generate_series(upper_bound) -%}
    {%- set digits = get_powers_of_two(upper_bound) -%}
    with bits as (select 0 as generated_number union all select 1), digits as (
        select {% for i in range(digits) %}b{{ i }}.generated_number * {{ 2 ** i }}{% if not loop.last %} + {% endif %}{% endfor %} + 1 as generated_number
        from {% for i in range(digits) %}bits b{{ i }}{% if not loop.last %} cross join {% endif %}{% endfor %}
    )
    select generated_number from digits where generated_number <= {{ upper_bound }}
{%- endmacro %}
{#- How many whole `datepart`s lie between two dates, asked of the warehouse (1 while parsing,
    when nothing is asked). -#}
{% macro get_intervals_between(start_date, end_date, datepart) -%}{{ return(adapter.dispatch('get_intervals_between', 'dbt')(start_date, end_date, datepart)) }}{%- endmacro %}
{% macro default__get_intervals_between(start_date, end_date, datepart) -%}
    {%- set answer = run_query("select " ~ dbt.datediff(start_date, end_date, datepart) ~ " as intervals") -%}
    {%- if answer is not none and answer.rows | length > 0 -%}
        {{ return(answer.rows[0][0]) }}
    {%- else -%}
        {{ return(1) }}
    {%- endif -%}
{%- endmacro %}
{#- One row per `datepart` from `start_date` up to `end_date` (not included), as
    `date_<datepart>`. -#}
{% macro date_spine(datepart, start_date, end_date) -%}{{ return(adapter.dispatch('date_spine', 'dbt')(datepart, start_date, end_date)) }}{%- endmacro %}
{% macro default__date_spine(datepart, start_date, end_date) -%}
    {%- set intervals = dbt.get_intervals_between(start_date, end_date, datepart) -%}
    select spine.date_{{ datepart }} from (
        select {{ dbt.dateadd(datepart, "series.generated_number - 1", start_date) }} as date_{{ datepart }}
        from ({{ dbt.generate_series(intervals) }}) as series
    ) as spine
    where spine.date_{{ datepart }} <= {{ end_date }}
{%- endmacro %}
{#- dbt's relation and query helpers that packages call. -#}
{% macro get_columns_in_query(select_sql) -%}{{ return(adapter.dispatch('get_columns_in_query', 'dbt')(select_sql)) }}{%- endmacro %}
{% macro default__get_columns_in_query(select_sql) -%}
    {%- set answer = run_query("select * from (\n" ~ select_sql ~ "\n) as __strata_columns where 1 = 0") -%}
    {{ return(answer.column_names if answer is not none else []) }}
{%- endmacro %}
{% macro make_temp_relation(base_relation, suffix='__dbt_tmp') -%}
    {{ return(base_relation.incorporate(path={"identifier": base_relation.identifier ~ suffix})) }}
{%- endmacro %}
{% macro make_intermediate_relation(base_relation, suffix='__dbt_tmp') -%}{{ return(make_temp_relation(base_relation, suffix)) }}{%- endmacro %}
{% macro make_backup_relation(base_relation, backup_relation_type, suffix='__dbt_backup') -%}
    {{ return(base_relation.incorporate(path={"identifier": base_relation.identifier ~ suffix}, type=backup_relation_type)) }}
{%- endmacro %}
{% macro load_cached_relation(relation) -%}
    {{ return(adapter.get_relation(database=relation.database, schema=relation.schema, identifier=relation.identifier)) }}
{%- endmacro %}
{% macro load_relation(relation) -%}{{ return(load_cached_relation(relation)) }}{%- endmacro %}
{% macro drop_relation_if_exists(relation) -%}
    {%- if relation is not none -%}{{ adapter.drop_relation(relation) }}{%- endif -%}
{%- endmacro %}
{#- dbt's DDL helpers packages call: the SQL of a table or a view over a query, and the
    relation operations as macros. -#}
{% macro get_create_table_as_sql(temporary, relation, sql) -%}{{ return(adapter.dispatch('get_create_table_as_sql', 'dbt')(temporary, relation, sql)) }}{%- endmacro %}
{% macro default__get_create_table_as_sql(temporary, relation, sql) -%}{{ return(create_table_as(temporary, relation, sql)) }}{%- endmacro %}
{% macro create_table_as(temporary, relation, compiled_code, language='sql') -%}{{ adapter.dispatch('create_table_as', 'dbt')(temporary, relation, compiled_code, language) }}{%- endmacro %}
{% macro default__create_table_as(temporary, relation, sql, language='sql') -%}
    {%- if temporary -%}
    create temporary table {{ relation.include(database=false, schema=false) }} as (
{{ sql }}
    )
    {%- else -%}
    create table {{ relation }} as (
{{ sql }}
    )
    {%- endif -%}
{%- endmacro %}
{% macro get_create_view_as_sql(relation, sql) -%}{{ return(adapter.dispatch('get_create_view_as_sql', 'dbt')(relation, sql)) }}{%- endmacro %}
{% macro default__get_create_view_as_sql(relation, sql) -%}{{ return(create_view_as(relation, sql)) }}{%- endmacro %}
{% macro create_view_as(relation, sql) -%}{{ adapter.dispatch('create_view_as', 'dbt')(relation, sql) }}{%- endmacro %}
{% macro default__create_view_as(relation, sql) -%}
    create view {{ relation }} as (
{{ sql }}
    )
{%- endmacro %}
{% macro get_drop_sql(relation) -%}drop {{ relation.type or 'table' }} if exists {{ relation }}{%- endmacro %}
{% macro drop_relation(relation) -%}{%- do adapter.drop_relation(relation) -%}{%- endmacro %}
{% macro truncate_relation(relation) -%}{%- do adapter.truncate_relation(relation) -%}{%- endmacro %}
{% macro rename_relation(from_relation, to_relation) -%}{%- do adapter.rename_relation(from_relation, to_relation) -%}{%- endmacro %}
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
{#- Incremental strategies as dbt's templates reach them: `get_incremental_<strategy>_sql(arg_dict)`
    and the helpers those call, each dispatched so a project can override any of them. strata's
    own plans build the built-in strategies; these run only for a model whose strategy a project
    macro writes or overrides, so an override calls what dbt's would. `arg_dict` holds
    `target_relation`, `temp_relation` (the new rows), `unique_key`, `dest_columns` and
    `incremental_predicates`. -#}
{% macro get_incremental_append_sql(arg_dict) -%}{{ return(adapter.dispatch('get_incremental_append_sql', 'dbt')(arg_dict)) }}{%- endmacro %}
{% macro default__get_incremental_append_sql(arg_dict) -%}
{{ return(get_insert_into_sql(arg_dict["target_relation"], arg_dict["temp_relation"], arg_dict["dest_columns"])) }}
{%- endmacro %}
{% macro get_incremental_delete_insert_sql(arg_dict) -%}{{ return(adapter.dispatch('get_incremental_delete_insert_sql', 'dbt')(arg_dict)) }}{%- endmacro %}
{% macro default__get_incremental_delete_insert_sql(arg_dict) -%}
{{ return(get_delete_insert_merge_sql(arg_dict["target_relation"], arg_dict["temp_relation"], arg_dict["unique_key"], arg_dict["dest_columns"], arg_dict["incremental_predicates"])) }}
{%- endmacro %}
{% macro get_incremental_merge_sql(arg_dict) -%}{{ return(adapter.dispatch('get_incremental_merge_sql', 'dbt')(arg_dict)) }}{%- endmacro %}
{% macro default__get_incremental_merge_sql(arg_dict) -%}
{{ return(get_merge_sql(arg_dict["target_relation"], arg_dict["temp_relation"], arg_dict["unique_key"], arg_dict["dest_columns"], arg_dict["incremental_predicates"])) }}
{%- endmacro %}
{% macro get_incremental_insert_overwrite_sql(arg_dict) -%}{{ return(adapter.dispatch('get_incremental_insert_overwrite_sql', 'dbt')(arg_dict)) }}{%- endmacro %}
{% macro default__get_incremental_insert_overwrite_sql(arg_dict) -%}
{{ return(get_insert_overwrite_merge_sql(arg_dict["target_relation"], arg_dict["temp_relation"], arg_dict["dest_columns"], arg_dict["incremental_predicates"])) }}
{%- endmacro %}
{#- The strategy of a model that names none: append, or (PostgreSQL, Redshift, DuckDB, as their
    dbt adapters do) delete+insert when it has a `unique_key`. -#}
{% macro get_incremental_default_sql(arg_dict) -%}{{ return(adapter.dispatch('get_incremental_default_sql', 'dbt')(arg_dict)) }}{%- endmacro %}
{% macro default__get_incremental_default_sql(arg_dict) -%}{{ return(get_incremental_append_sql(arg_dict)) }}{%- endmacro %}
{% macro postgres__get_incremental_default_sql(arg_dict) -%}
{{ return(get_incremental_delete_insert_sql(arg_dict) if arg_dict["unique_key"] else get_incremental_append_sql(arg_dict)) }}
{%- endmacro %}
{% macro duckdb__get_incremental_default_sql(arg_dict) -%}{{ return(get_incremental_delete_insert_sql(arg_dict)) }}{%- endmacro %}
{% macro get_quoted_csv(column_names) -%}
{%- set quoted -%}{% for name in column_names %}{{ adapter.quote(name) }}{{ ", " if not loop.last }}{% endfor %}{%- endset -%}
{{ return(quoted) }}
{%- endmacro %}
{% macro get_insert_into_sql(target_relation, temp_relation, dest_columns) -%}
{%- set columns = get_quoted_csv(dest_columns | map(attribute="name")) -%}
insert into {{ target_relation }} ({{ columns }})
select {{ columns }} from {{ temp_relation }}
{%- endmacro %}
{#- The key as a list: dbt takes one column name or a list of them. -#}
{% macro strata__key_list(unique_key) -%}
{{ return([] if not unique_key else ([unique_key] if unique_key is string else unique_key)) }}
{%- endmacro %}
{% macro get_delete_insert_merge_sql(target, source, unique_key, dest_columns, incremental_predicates=none) -%}
{{ adapter.dispatch('get_delete_insert_merge_sql', 'dbt')(target, source, unique_key, dest_columns, incremental_predicates) }}
{%- endmacro %}
{% macro default__get_delete_insert_merge_sql(target, source, unique_key, dest_columns, incremental_predicates) -%}
{{ strata__delete_insert(target, source, unique_key, dest_columns, incremental_predicates, "DBT_INTERNAL_DEST") }}
{%- endmacro %}
{#- Trino and Athena delete without an alias on the table. -#}
{% macro trino__get_delete_insert_merge_sql(target, source, unique_key, dest_columns, incremental_predicates) -%}
{{ strata__delete_insert(target, source, unique_key, dest_columns, incremental_predicates, none) }}
{%- endmacro %}
{% macro strata__delete_insert(target, source, unique_key, dest_columns, incremental_predicates, alias) -%}
{%- set keys = strata__key_list(unique_key) -%}
{%- set columns = get_quoted_csv(dest_columns | map(attribute="name")) -%}
{%- if keys -%}
delete from {{ target }}{% if alias %} as {{ alias }}{% endif %}
where ({{ keys | join(", ") }}) in (select distinct {{ keys | join(", ") }} from {{ source }})
{%- for predicate in incremental_predicates or [] %}
    and {{ predicate }}
{%- endfor %};
{% endif -%}
insert into {{ target }} ({{ columns }})
select {{ columns }} from {{ source }}
{%- endmacro %}
{#- The new rows' values, qualified: Trino finds a bare column of both tables ambiguous. -#}
{% macro strata__source_values(dest_columns) -%}
{%- for column in dest_columns %}DBT_INTERNAL_SOURCE.{{ adapter.quote(column.name) }}{{ ", " if not loop.last }}{% endfor -%}
{%- endmacro %}
{% macro get_merge_unique_key_match(source_unique_key, target_unique_key) -%}
{{ return(adapter.dispatch('get_merge_unique_key_match', 'dbt')(source_unique_key, target_unique_key)) }}
{%- endmacro %}
{% macro default__get_merge_unique_key_match(source_unique_key, target_unique_key) -%}
{{ return(equals(source_unique_key, target_unique_key) | trim) }}
{%- endmacro %}
{% macro get_merge_update_columns(merge_update_columns, merge_exclude_columns, dest_columns) -%}
{{ return(adapter.dispatch('get_merge_update_columns', 'dbt')(merge_update_columns, merge_exclude_columns, dest_columns)) }}
{%- endmacro %}
{% macro default__get_merge_update_columns(merge_update_columns, merge_exclude_columns, dest_columns) -%}
{%- if merge_update_columns and merge_exclude_columns -%}
{{ exceptions.raise_compiler_error("a model cannot set both merge_update_columns and merge_exclude_columns: keep one") }}
{%- elif merge_update_columns -%}
{{ return(merge_update_columns) }}
{%- else -%}
{%- set excluded = (merge_exclude_columns or []) | map("lower") | list -%}
{%- set kept = namespace(columns=[]) -%}
{%- for column in dest_columns if column.name | lower not in excluded -%}
{%- set kept.columns = kept.columns + [column.quoted] -%}
{%- endfor -%}
{{ return(kept.columns) }}
{%- endif -%}
{%- endmacro %}
{% macro get_merge_sql(target, source, unique_key, dest_columns, incremental_predicates=none) -%}
{{ adapter.dispatch('get_merge_sql', 'dbt')(target, source, unique_key, dest_columns, incremental_predicates) }}
{%- endmacro %}
{% macro default__get_merge_sql(target, source, unique_key, dest_columns, incremental_predicates=none) -%}
{%- set keys = [] if not unique_key else ([unique_key] if unique_key is string else unique_key) -%}
{%- set key_matches -%}
{%- if unique_key is string -%}{{ get_merge_unique_key_match("DBT_INTERNAL_SOURCE." ~ unique_key, "DBT_INTERNAL_DEST." ~ unique_key) }}
{%- else -%}{% for key in keys %}DBT_INTERNAL_SOURCE.{{ key }} = DBT_INTERNAL_DEST.{{ key }}{{ ") and (" if not loop.last }}{% endfor %}{%- endif -%}
{%- endset -%}
{%- set conditions = (incremental_predicates or []) | list + ([key_matches] if keys else ["FALSE"]) -%}
{%- set update_columns = get_merge_update_columns(config.get('merge_update_columns'), config.get('merge_exclude_columns'), dest_columns) -%}
{%- set columns = get_quoted_csv(dest_columns | map(attribute="name")) -%}
merge into {{ target }} as DBT_INTERNAL_DEST
using {{ source }} as DBT_INTERNAL_SOURCE
on ({{ conditions | join(") and (") }})
{%- if keys %}
when matched then update set {% for column in update_columns %}{{ column }} = DBT_INTERNAL_SOURCE.{{ column }}{{ ", " if not loop.last }}{% endfor %}
{%- endif %}
when not matched then insert ({{ columns }}) values ({{ strata__source_values(dest_columns) }})
{%- endmacro %}
{% macro get_insert_overwrite_merge_sql(target, source, dest_columns, predicates, include_sql_header=false) -%}
{{ adapter.dispatch('get_insert_overwrite_merge_sql', 'dbt')(target, source, dest_columns, predicates, include_sql_header) }}
{%- endmacro %}
{% macro default__get_insert_overwrite_merge_sql(target, source, dest_columns, predicates, include_sql_header=false) -%}
{%- set columns = get_quoted_csv(dest_columns | map(attribute="name")) -%}
merge into {{ target }} as DBT_INTERNAL_DEST
using {{ source }} as DBT_INTERNAL_SOURCE
on FALSE
when not matched by source{% if predicates %} and {{ predicates | join(" and ") }}{% endif %} then delete
when not matched then insert ({{ columns }}) values ({{ strata__source_values(dest_columns) }})
{%- endmacro %}
{#- What a custom materialization calls around its statements, as dbt's own materializations do.
    strata runs each statement as it comes (autocommit): `adapter.commit()` has nothing left to
    commit. Comments (`persist_docs`) and grants are applied by strata after every model's
    build, the custom ones included, so their macros here do nothing; strata creates no
    indexes. -#}
{% macro run_hooks(hooks, inside_transaction=True) -%}
{%- for hook in hooks if (hook.transaction if hook.transaction is defined else true) == inside_transaction -%}
{%- set text = (hook.sql if hook.sql is defined else hook) | trim -%}
{%- if text %}{% call statement(auto_begin=inside_transaction) %}{{ text }}{% endcall %}{% endif -%}
{%- endfor -%}
{%- endmacro %}
{% macro should_full_refresh() -%}
{%- set from_config = config.get('full_refresh') -%}
{{ return(flags.FULL_REFRESH if from_config is none else from_config) }}
{%- endmacro %}
{% macro persist_docs(relation, model, for_relation=true, for_columns=true) -%}{%- endmacro %}
{% macro create_indexes(relation) -%}{%- endmacro %}
{% macro apply_grants(relation, grant_config, should_revoke=true) -%}{%- endmacro %}
{% macro should_revoke(existing_relation, full_refresh_mode=true) -%}{{ return(false) }}{%- endmacro %}

//! Every materialization and incremental strategy on real DuckDB, asserting table contents
//! after each run: composite-key merge, delete+insert, append, insert_overwrite by partition,
//! each `on_schema_change` mode, ephemeral chains, custom schemas and aliases, and hooks.

use std::path::Path;

use crate::common::{project, query, strata};

const PROJECT: &str = "name: shop\nmodels:\n  shop:\n    +materialized: table\n";

fn rows(data: &[&[&str]]) -> Vec<Vec<String>> {
    data.iter()
        .map(|r| r.iter().map(|v| v.to_string()).collect())
        .collect()
}

fn build_ok(dir: &Path, args: &[&str]) -> String {
    let mut all = vec!["build"];
    all.extend_from_slice(args);
    let run = strata(dir, &all);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.stderr
}

fn set_seed(dir: &Path, name: &str, csv: &str) {
    std::fs::write(dir.join("seeds").join(name), csv).expect("write seed");
}

#[test]
fn merge_on_a_composite_key_updates_and_inserts() {
    let dir = project(&[
        ("project.yml", PROJECT),
        ("seeds/lines.csv", "order_id,line,qty\n1,1,5\n1,2,6\n2,1,7\n"),
        (
            "models/order_lines.sql",
            "{{ config(materialized='incremental', unique_key=['order_id', 'line']) }}\nselect * from {{ ref('lines') }}\n",
        ),
    ]);
    build_ok(dir.path(), &[]);
    set_seed(
        dir.path(),
        "lines.csv",
        "order_id,line,qty\n1,2,60\n2,2,8\n",
    );
    build_ok(dir.path(), &[]);
    let db = dir.path().join("target/shop.duckdb");
    assert_eq!(
        query(
            &db,
            "select order_id, line, qty from main.order_lines order by 1, 2"
        ),
        rows(&[
            &["1", "1", "5"],
            &["1", "2", "60"],
            &["2", "1", "7"],
            &["2", "2", "8"]
        ])
    );
}

#[test]
fn delete_insert_and_append_strategies() {
    let dir = project(&[
        ("project.yml", PROJECT),
        ("seeds/events.csv", "id,v\n1,a\n2,b\n"),
        (
            "models/by_key.sql",
            "{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key='id') }}\nselect * from {{ ref('events') }}\n",
        ),
        (
            "models/log.sql",
            "{{ config(materialized='incremental', incremental_strategy='append') }}\nselect * from {{ ref('events') }}\n",
        ),
    ]);
    build_ok(dir.path(), &[]);
    set_seed(dir.path(), "events.csv", "id,v\n2,B\n3,c\n");
    build_ok(dir.path(), &[]);
    let db = dir.path().join("target/shop.duckdb");
    assert_eq!(
        query(&db, "select id, v from main.by_key order by id"),
        rows(&[&["1", "a"], &["2", "B"], &["3", "c"]])
    );
    assert_eq!(
        query(&db, "select id, v from main.log order by id, v"),
        rows(&[&["1", "a"], &["2", "B"], &["2", "b"], &["3", "c"]])
    );
}

#[test]
fn insert_overwrite_replaces_only_the_touched_partitions() {
    let dir = project(&[
        ("project.yml", PROJECT),
        (
            "seeds/sales.csv",
            "day,store,amount\n2024-01-01,a,1\n2024-01-01,b,2\n2024-01-02,a,3\n",
        ),
        (
            "models/daily.sql",
            "{{ config(materialized='incremental', incremental_strategy='insert_overwrite', partition_by='day') }}\nselect * from {{ ref('sales') }}\n",
        ),
    ]);
    build_ok(dir.path(), &[]);
    // The new batch restates 2024-01-02 (one row instead of one other) and adds 2024-01-03;
    // 2024-01-01 is untouched even though the batch does not carry it.
    set_seed(
        dir.path(),
        "sales.csv",
        "day,store,amount\n2024-01-02,c,30\n2024-01-03,a,4\n",
    );
    build_ok(dir.path(), &[]);
    let db = dir.path().join("target/shop.duckdb");
    assert_eq!(
        query(
            &db,
            "select cast(day as varchar), store, amount from main.daily order by 1, 2"
        ),
        rows(&[
            &["2024-01-01", "a", "1"],
            &["2024-01-01", "b", "2"],
            &["2024-01-02", "c", "30"],
            &["2024-01-03", "a", "4"]
        ])
    );
}

fn schema_change_project(mode: &str) -> tempfile::TempDir {
    project(&[
        ("project.yml", PROJECT),
        ("seeds/src.csv", "id,a,b\n1,x,y\n"),
        (
            "models/inc.sql",
            &format!(
                "{{{{ config(materialized='incremental', unique_key='id', on_schema_change='{mode}') }}}}\nselect * from {{{{ ref('src') }}}}\n"
            ),
        ),
    ])
}

fn columns(db: &Path) -> Vec<String> {
    query(
        db,
        "select column_name from information_schema.columns where table_name = 'inc' order by ordinal_position",
    )
    .into_iter()
    .map(|r| r[0].clone())
    .collect()
}

#[test]
fn on_schema_change_modes() {
    // The second batch drops `b` and adds `c`.
    let next = "id,a,c\n2,x2,z2\n";
    let db_of = |dir: &tempfile::TempDir| dir.path().join("target/shop.duckdb");

    let ignore = schema_change_project("ignore");
    build_ok(ignore.path(), &[]);
    set_seed(ignore.path(), "src.csv", next);
    // The seed itself is rebuilt with the new columns; the incremental keeps its own.
    build_ok(ignore.path(), &[]);
    assert_eq!(columns(&db_of(&ignore)), ["id", "a", "b"]);
    assert_eq!(
        query(&db_of(&ignore), "select id, a, b from main.inc order by id"),
        rows(&[&["1", "x", "y"], &["2", "x2", "NULL"]])
    );

    let fail = schema_change_project("fail");
    build_ok(fail.path(), &[]);
    set_seed(fail.path(), "src.csv", next);
    let run = strata(fail.path(), &["build"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("+c, -b"), "{}", run.stderr);
    assert_eq!(
        query(&db_of(&fail), "select count(*) from main.inc"),
        rows(&[&["1"]])
    );

    let append = schema_change_project("append_new_columns");
    build_ok(append.path(), &[]);
    set_seed(append.path(), "src.csv", next);
    build_ok(append.path(), &[]);
    assert_eq!(columns(&db_of(&append)), ["id", "a", "b", "c"]);
    assert_eq!(
        query(&db_of(&append), "select id, b, c from main.inc order by id"),
        rows(&[&["1", "y", "NULL"], &["2", "NULL", "z2"]])
    );

    let sync = schema_change_project("sync_all_columns");
    build_ok(sync.path(), &[]);
    set_seed(sync.path(), "src.csv", next);
    build_ok(sync.path(), &[]);
    assert_eq!(columns(&db_of(&sync)), ["id", "a", "c"]);
    assert_eq!(
        query(&db_of(&sync), "select id, a, c from main.inc order by id"),
        rows(&[&["1", "x", "NULL"], &["2", "x2", "z2"]])
    );
}

#[test]
fn ephemeral_chains_inline_and_build_nothing_themselves() {
    let dir = project(&[
        ("project.yml", PROJECT),
        ("seeds/src.csv", "id\n1\n2\n3\n"),
        (
            "models/eph_a.sql",
            "{{ config(materialized='ephemeral') }}\nselect id from {{ ref('src') }} where id > 1\n",
        ),
        (
            "models/eph_b.sql",
            "{{ config(materialized='ephemeral') }}\nselect id * 10 as id from {{ ref('eph_a') }}\n",
        ),
        ("models/final.sql", "select id from {{ ref('eph_b') }}\n"),
    ]);
    build_ok(dir.path(), &[]);
    let db = dir.path().join("target/shop.duckdb");
    assert_eq!(
        query(&db, "select id from main.final order by id"),
        rows(&[&["20"], &["30"]])
    );
    assert_eq!(
        query(
            &db,
            "select count(*) from information_schema.tables where table_name like 'eph_%'"
        ),
        rows(&[&["0"]])
    );
}

#[test]
fn custom_schemas_aliases_and_generate_schema_name_overrides() {
    let dir = project(&[
        (
            "project.yml",
            "name: shop\nmodels:\n  shop:\n    +materialized: table\n    gold:\n      +schema: gold\n",
        ),
        ("models/gold/dim_a.sql", "select 1 as id\n"),
        (
            "models/b.sql",
            "{{ config(alias='renamed_b', schema='extra') }}\nselect 2 as id\n",
        ),
    ]);
    build_ok(dir.path(), &[]);
    let db = dir.path().join("target/shop.duckdb");
    // dbt's default: <target schema>_<custom schema>
    assert_eq!(
        query(&db, "select id from main_gold.dim_a"),
        rows(&[&["1"]])
    );
    assert_eq!(
        query(&db, "select id from main_extra.renamed_b"),
        rows(&[&["2"]])
    );
    // A project macro overriding generate_schema_name takes the custom schema as is.
    std::fs::create_dir_all(dir.path().join("macros")).unwrap();
    std::fs::write(
        dir.path().join("macros/schemas.sql"),
        "{% macro generate_schema_name(custom_schema_name, node) %}{{ custom_schema_name or target.schema }}{% endmacro %}\n",
    )
    .unwrap();
    build_ok(dir.path(), &[]);
    assert_eq!(query(&db, "select id from gold.dim_a"), rows(&[&["1"]]));
}

#[test]
fn hooks_run_around_models_and_the_whole_run() {
    let dir = project(&[
        (
            "project.yml",
            "name: shop\nmodels:\n  shop:\n    +materialized: table\non-run-start:\n  - \"create table if not exists main.audit (what varchar)\"\n  - \"insert into main.audit values ('start')\"\non-run-end: \"insert into main.audit values ('end {{ target.name }}')\"\n",
        ),
        (
            "models/a.sql",
            "{{ config(pre_hook=\"insert into main.audit values ('before ' || '{{ this.identifier }}')\", post_hook=[\"insert into main.audit select 'after ' || count(*) from {{ this }}\"]) }}\nselect 1 as id union all select 2\n",
        ),
    ]);
    build_ok(dir.path(), &[]);
    let db = dir.path().join("target/shop.duckdb");
    assert_eq!(
        query(&db, "select what from main.audit"),
        rows(&[&["start"], &["before a"], &["after 2"], &["end dev"]])
    );
}

#[test]
fn a_failing_post_hook_leaves_the_previous_table() {
    let dir = project(&[
        ("project.yml", PROJECT),
        ("models/a.sql", "select 1 as id\n"),
    ]);
    build_ok(dir.path(), &[]);
    std::fs::write(
        dir.path().join("models/a.sql"),
        "{{ config(post_hook='insert into main.no_such_table values (1)') }}\nselect 2 as id\n",
    )
    .unwrap();
    let run = strata(dir.path(), &["build"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let db = dir.path().join("target/shop.duckdb");
    assert_eq!(query(&db, "select id from main.a"), rows(&[&["1"]]));
    assert_eq!(
        query(
            &db,
            "select count(*) from information_schema.tables where table_name like '%strata%'"
        ),
        rows(&[&["0"]])
    );
}

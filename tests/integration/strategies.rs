//! Builds a project's macros write. Incremental strategies — dbt's custom strategies
//! (`get_incremental_<name>_sql(arg_dict)`, here also built on dbt's own `get_merge_sql` and
//! `get_incremental_delete_insert_sql`) and a project's `default__get_incremental_append_sql`,
//! which dbt's `append` reaches through dispatch — against what dbt-core 1.12.6 built from the
//! same project (`tests/fixtures/strategies`, whose `expect.sh` wrote `expected.json`): built
//! twice, the second build applying batch 2 through each model's strategy. And custom
//! materializations (`tests/fixtures/materializations`, pinned the same way).

use crate::common::{expected_tables, fixture, project, query, same_rows, strata, strata_env};

const DUCK_PROFILE: &str =
    "strategies:\n  target: dev\n  outputs:\n    dev: {type: duckdb, path: target/s.duckdb}\n";

/// Builds the fixture twice with `env`, then compares every table with dbt's through `read`
/// (table, columns → rows as text).
fn build_twice_and_compare(
    dir: &std::path::Path,
    env: &[(&str, &str)],
    label: &str,
    read: impl Fn(&str, &[String]) -> Vec<Vec<String>>,
) -> String {
    let first = strata_env(dir, &["build"], env);
    assert_eq!(first.code, 0, "{label}: {}\n{}", first.stdout, first.stderr);
    let second = strata_env(dir, &["build"], env);
    assert_eq!(
        second.code, 0,
        "{label}: {}\n{}",
        second.stdout, second.stderr
    );
    for (table, columns, rows) in expected_tables("strategies") {
        let mut got = read(&table, &columns);
        got.sort();
        assert!(
            same_rows(&got, &rows),
            "{label}: `{table}` differs from dbt's: {got:?} vs {rows:?}"
        );
    }
    second.stderr
}

fn text_columns(columns: &[String], text_type: &str) -> String {
    columns
        .iter()
        .map(|c| format!("coalesce(cast(\"{c}\" as {text_type}), 'NULL')"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[test]
fn strategies_written_by_macros_build_what_dbt_builds_on_duckdb() {
    let dir = fixture("strategies");
    std::fs::write(dir.path().join("profiles.yml"), DUCK_PROFILE).expect("profiles");
    let db = dir.path().join("target/s.duckdb");
    let stderr = build_twice_and_compare(dir.path(), &[], "DuckDB", |table, columns| {
        query(
            &db,
            &format!(
                "select {} from main.{table}",
                text_columns(columns, "varchar")
            ),
        )
    });
    // The status is the last statement's, as dbt reports the strategy's SQL.
    assert!(stderr.contains("OK insert_only [INSERT 2 in"), "{stderr}");
    assert!(stderr.contains("OK positive_merge [MERGE 4 in"), "{stderr}");
    // No table built aside for the new rows is left behind.
    let leftovers = query(
        &db,
        "select table_name from information_schema.tables where table_name like '%strata%' and table_schema = 'main'",
    );
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn strategies_written_by_macros_build_what_dbt_builds_on_postgres() {
    let Some(pg) = crate::postgres::Database::create("strategies") else {
        return;
    };
    let dir = fixture("strategies");
    std::fs::write(
        dir.path().join("profiles.yml"),
        format!(
            "strategies:\n  target: pg\n  outputs:\n    pg:\n      type: postgres\n      host: 127.0.0.1\n      user: postgres\n      dbname: {}\n      schema: strat\n      sslmode: disable\n",
            pg.name
        ),
    )
    .expect("profiles");
    build_twice_and_compare(dir.path(), &[], "PostgreSQL", |table, columns| {
        pg.query(&format!(
            "select concat_ws(chr(31), {}) from strat.{table}",
            text_columns(columns, "text")
        ))
        .lines()
        .map(|l| l.split('\u{1f}').map(str::to_string).collect())
        .collect()
    });
}

/// On Trino (the stand-in's Iceberg catalog) and on Athena (the stand-in's Glue catalog,
/// Iceberg tables): strategies that delete and merge run there.
#[test]
fn strategies_written_by_macros_build_what_dbt_builds_on_trino_and_athena() {
    if !crate::lake::stand_in("strategies_trino") || !crate::lake::athena_front("strategies_athena")
    {
        return;
    }
    let schema = format!("strategies_{}", std::process::id());
    let dir = fixture("strategies");
    std::fs::write(
        dir.path().join("profiles.yml"),
        format!(
            "strategies:\n  target: trino\n  outputs:\n    trino:\n      type: trino\n      host: 127.0.0.1\n      port: 8090\n      user: strata\n      database: iceberg\n      schema: {schema}\n    athena:\n      type: athena\n      region_name: us-east-1\n      schema: {schema}_athena\n      work_group: primary\n      s3_staging_dir: s3://strata-athena/staging/{schema}/\n"
        ),
    )
    .expect("profiles");
    // Athena deletes and merges rows of Iceberg tables only.
    let project = dir.path().join("dbt_project.yml");
    let text = std::fs::read_to_string(&project).expect("project");
    std::fs::write(&project, format!("{text}    +table_type: iceberg\n")).expect("project");
    let env = crate::lake::aws_environment();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    for (target, catalog, schema) in [
        ("trino", "iceberg", schema.clone()),
        ("athena", "awsdatacatalog", format!("{schema}_athena")),
    ] {
        let mut env = env.clone();
        env.push(("STRATA_TARGET", target));
        build_twice_and_compare(dir.path(), &env, target, |table, columns| {
            let sql = format!(
                "select {} from {catalog}.\"{schema}\".{table}",
                text_columns(columns, "varchar")
            );
            crate::lake::trino(&sql)
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
                .iter()
                .map(|r| {
                    r.iter()
                        .map(|v| v.as_str().unwrap_or("NULL").to_string())
                        .collect()
                })
                .collect()
        });
        crate::lake::drop_schema(catalog, &schema);
        crate::lake::drop_schema(catalog, &format!("{schema}_strata"));
    }
}

const EVENTS: &str = "id,amount\n1,10\n2,20\n";

/// A typo in a strategy's name stops the parse, naming the file and the built-in strategy
/// meant; nothing is written.
#[test]
fn an_unknown_strategy_is_an_error_with_the_strategy_meant() {
    let dir = project(&[
        ("project.yml", "name: typo\n"),
        ("seeds/events.csv", EVENTS),
        (
            "models/log.sql",
            "{{ config(materialized='incremental', incremental_strategy='delete_insrt', unique_key='id') }}\nselect * from {{ ref('events') }}\n",
        ),
    ]);
    let run = strata(dir.path(), &["build"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("unknown incremental_strategy `delete_insrt` for model `log`: no macro `get_incremental_delete_insrt_sql` defines it"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("models/log.sql"), "{}", run.stderr);
    assert!(
        run.stderr.contains("did you mean `delete+insert`"),
        "{}",
        run.stderr
    );
    assert!(!dir.path().join("target/typo.duckdb").exists());
}

/// A strategy macro that fails fails its model with the macro's message, file and line; the
/// table keeps its rows and the new rows built aside are dropped.
#[test]
fn a_failing_strategy_macro_fails_its_model_and_leaves_the_table() {
    let dir = project(&[
        ("project.yml", "name: failing\n"),
        ("seeds/events.csv", EVENTS),
        (
            "macros/strategy.sql",
            "{% macro get_incremental_picky_sql(arg_dict) %}\n  {% if arg_dict['dest_columns'] | length > 1 %}\n    {{ exceptions.raise_compiler_error('picky refuses ' ~ arg_dict['temp_relation'].identifier[:6]) }}\n  {% endif %}\n{% endmacro %}\n",
        ),
        (
            "models/log.sql",
            "{{ config(materialized='incremental', incremental_strategy='picky') }}\nselect * from {{ ref('events') }}\n",
        ),
        ("models/child.sql", "select * from {{ ref('log') }}\n"),
    ]);
    let first = strata(dir.path(), &["build"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    std::fs::write(dir.path().join("seeds/events.csv"), "id,amount\n3,30\n").expect("seed");
    let second = strata(dir.path(), &["build"]);
    assert_eq!(second.code, 1, "{}", second.stderr);
    assert!(
        second.stderr.contains("picky refuses log__s"),
        "{}",
        second.stderr
    );
    assert!(
        second.stderr.contains("macros/strategy.sql:3"),
        "{}",
        second.stderr
    );
    assert!(second.stderr.contains("SKIP=1"), "{}", second.stderr);
    let db = dir.path().join("target/failing.duckdb");
    assert_eq!(
        query(&db, "select id, amount from main.log order by id"),
        [["1", "10"], ["2", "20"]]
    );
    let leftovers = query(
        &db,
        "select table_name from information_schema.tables where table_name like 'log\\_\\_%' escape '\\'",
    );
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// Builds `tests/fixtures/materializations` twice with `env` and compares every table with
/// what dbt-core built (`built_by` is the variant of `stamped` that ran: dbt ran DuckDB's).
fn materializations_twice(
    dir: &std::path::Path,
    env: &[(&str, &str)],
    label: &str,
    variant: &str,
    read: impl Fn(&str, &[String]) -> Vec<Vec<String>>,
) {
    for _ in 0..2 {
        let built = strata_env(dir, &["build"], env);
        assert_eq!(built.code, 0, "{label}: {}\n{}", built.stdout, built.stderr);
    }
    for (table, columns, rows) in expected_tables("materializations") {
        let mut want: Vec<Vec<String>> = rows
            .into_iter()
            .map(|r| {
                r.into_iter()
                    .map(|v| {
                        if v == "duckdb" {
                            variant.to_string()
                        } else {
                            v
                        }
                    })
                    .collect()
            })
            .collect();
        want.sort();
        let mut got = read(&table, &columns);
        got.sort();
        assert!(
            same_rows(&got, &want),
            "{label}: `{table}` differs from dbt's: {got:?} vs {want:?}"
        );
    }
}

/// Custom materializations (`{% materialization name, adapter %}`) run as dbt runs them: the
/// variant for the warehouse (else `default`), with `sql`, `this`, `pre_hooks`/`post_hooks`
/// through `run_hooks`, `should_full_refresh()`, `load_cached_relation`, statements, and the
/// relations it returns; a model reading one waits for it.
#[test]
fn custom_materializations_build_what_dbt_builds_on_duckdb() {
    let dir = fixture("materializations");
    std::fs::write(
        dir.path().join("profiles.yml"),
        "materializations:\n  target: dev\n  outputs:\n    dev: {type: duckdb, path: target/m.duckdb}\n",
    )
    .expect("profiles");
    let db = dir.path().join("target/m.duckdb");
    materializations_twice(dir.path(), &[], "DuckDB", "duckdb", |table, columns| {
        query(
            &db,
            &format!(
                "select {} from main.{table}",
                text_columns(columns, "varchar")
            ),
        )
    });
    // A full refresh starts the appended table again, as the macro says.
    let refreshed = strata(dir.path(), &["build", "--full-refresh"]);
    assert_eq!(refreshed.code, 0, "{}", refreshed.stderr);
    assert_eq!(
        query(&db, "select count(*) from main.readings_log"),
        [["3"]]
    );
}

#[test]
fn custom_materializations_build_what_dbt_builds_on_postgres() {
    let Some(pg) = crate::postgres::Database::create("materializations") else {
        return;
    };
    let dir = fixture("materializations");
    std::fs::write(
        dir.path().join("profiles.yml"),
        format!(
            "materializations:\n  target: pg\n  outputs:\n    pg:\n      type: postgres\n      host: 127.0.0.1\n      user: postgres\n      dbname: {}\n      schema: mat\n      sslmode: disable\n",
            pg.name
        ),
    )
    .expect("profiles");
    materializations_twice(
        dir.path(),
        &[],
        "PostgreSQL",
        "default",
        |table, columns| {
            pg.query(&format!(
                "select concat_ws(chr(31), {}) from mat.{table}",
                text_columns(columns, "text")
            ))
            .lines()
            .map(|l| l.split('\u{1f}').map(str::to_string).collect())
            .collect()
        },
    );
}

/// A materialization no macro defines is an error naming the model; a failing one fails its
/// model with the macro's file and line and skips what reads it.
#[test]
fn an_unknown_or_failing_materialization_is_named() {
    let dir = project(&[
        ("project.yml", "name: mats\n"),
        (
            "macros/m.sql",
            "{% materialization fragile, default %}\n  {% call statement('main') %}select * from no_such_table{% endcall %}\n  {{ return({'relations': [this]}) }}\n{% endmaterialization %}\n",
        ),
        (
            "models/a.sql",
            "{{ config(materialized='fragil') }}\nselect 1 as x\n",
        ),
    ]);
    let run = strata(dir.path(), &["build"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("unknown materialization `fragil` for model `a`"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("models/a.sql"), "{}", run.stderr);

    std::fs::write(
        dir.path().join("models/a.sql"),
        "{{ config(materialized='fragile') }}\nselect 1 as x\n",
    )
    .expect("model");
    std::fs::write(
        dir.path().join("models/b.sql"),
        "select * from {{ ref('a') }}\n",
    )
    .expect("model");
    let failed = strata(dir.path(), &["build"]);
    assert_eq!(failed.code, 1, "{}", failed.stderr);
    assert!(failed.stderr.contains("no_such_table"), "{}", failed.stderr);
    assert!(
        failed.stderr.contains("macros/m.sql:2"),
        "{}",
        failed.stderr
    );
    assert!(failed.stderr.contains("SKIP=1"), "{}", failed.stderr);

    // A project's own `table` materialization is not run, and says so.
    std::fs::write(
        dir.path().join("macros/table.sql"),
        "{% materialization table, default %}{{ return({'relations': [this]}) }}{% endmaterialization %}\n",
    )
    .expect("macro");
    let parsed = strata(dir.path(), &["parse"]);
    assert_eq!(parsed.code, 0, "{}", parsed.stderr);
    assert!(
        parsed
            .stderr
            .contains("`{% materialization table %}` is not run: strata builds `table` models with its own plans"),
        "{}",
        parsed.stderr
    );
    assert!(
        parsed.stderr.contains("macros/table.sql:1"),
        "{}",
        parsed.stderr
    );
}

/// The same on Trino (the stand-in's Iceberg catalog), where `stamped` runs its default variant.
#[test]
fn custom_materializations_build_what_dbt_builds_on_trino() {
    if !crate::lake::stand_in("materializations_trino") {
        return;
    }
    let schema = format!("materializations_{}", std::process::id());
    let dir = fixture("materializations");
    std::fs::write(
        dir.path().join("profiles.yml"),
        format!(
            "materializations:\n  target: trino\n  outputs:\n    trino:\n      type: trino\n      host: 127.0.0.1\n      port: 8090\n      user: strata\n      database: iceberg\n      schema: {schema}\n"
        ),
    )
    .expect("profiles");
    materializations_twice(dir.path(), &[], "Trino", "default", |table, columns| {
        let sql = format!(
            "select {} from iceberg.\"{schema}\".{table}",
            text_columns(columns, "varchar")
        );
        crate::lake::trino(&sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .iter()
            .map(|r| {
                r.iter()
                    .map(|v| v.as_str().unwrap_or("NULL").to_string())
                    .collect()
            })
            .collect()
    });
    crate::lake::drop_schema("iceberg", &schema);
    crate::lake::drop_schema("iceberg", &format!("{schema}_strata"));
}

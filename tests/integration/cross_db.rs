//! dbt's cross-database macros (`dbt.length`, `dbt.datediff`, `dbt.listagg`,
//! `dbt.generate_series`, …) against what dbt-core itself computed: `tests/fixtures/cross_db`
//! is a project of one column per macro, and its `expected.json` holds the tables dbt-core
//! 1.12.6 with dbt-duckdb 1.11.1 built from it (`expect.sh` regenerates it). strata builds the
//! same project on DuckDB, PostgreSQL, Trino and Athena (the local stand-ins), and every value
//! must be dbt's. Redshift's own variants (`len`, `datediff(part, a, b)`, `listagg … within group`)
//! are not executed here: the Redshift stand-in is PostgreSQL, which has none of them.

use std::collections::BTreeMap;

use crate::common::{fixture, strata_env};

/// A table's columns and its rows as text.
type Rows = (Vec<String>, Vec<Vec<String>>);

/// Each table's columns and its rows as text, sorted (NULL as `NULL`).
fn expected() -> BTreeMap<String, Rows> {
    crate::common::expected_tables("cross_db")
        .into_iter()
        .map(|(table, columns, rows)| (table, (columns, rows)))
        .collect()
}

/// A query of every column of `table` as text, `NULL` for nulls.
fn text_sql(table: &str, columns: &[String]) -> String {
    let parts: Vec<String> = columns
        .iter()
        .map(|c| format!("coalesce(cast(\"{c}\" as varchar), 'NULL')"))
        .collect();
    format!("select {} from {table}", parts.join(", "))
}

/// Trino prints timestamps with their fraction: dbt's values have none.
fn without_zero_fraction(value: &str) -> String {
    match value.split_once('.') {
        Some((head, tail))
            if head.len() == 19 && !tail.is_empty() && tail.chars().all(|c| c == '0') =>
        {
            head.to_string()
        }
        _ => value.to_string(),
    }
}

fn profiles(pg_database: &str, trino_schema: &str) -> String {
    format!(
        "cross_db:\n  target: duck\n  outputs:\n    duck: {{type: duckdb, path: target/cross.duckdb}}\n    pg:\n      type: postgres\n      host: 127.0.0.1\n      user: postgres\n      dbname: {pg_database}\n      schema: cross\n      sslmode: disable\n    trino:\n      type: trino\n      host: 127.0.0.1\n      port: 8090\n      user: strata\n      database: iceberg\n      schema: {trino_schema}\n    athena:\n      type: athena\n      region_name: us-east-1\n      schema: {trino_schema}_athena\n      work_group: primary\n      s3_staging_dir: s3://strata-athena/staging/{trino_schema}/\n"
    )
}

#[test]
fn cross_database_macros_compute_what_dbt_computes_on_every_warehouse() {
    let expected = expected();
    let Some(db) = crate::postgres::Database::create("cross_db") else {
        return;
    };
    let trino_schema = format!("cross_{}", std::process::id());
    let dir = fixture("cross_db");
    std::fs::write(
        dir.path().join("profiles.yml"),
        profiles(&db.name, &trino_schema),
    )
    .expect("profiles");

    let built = strata_env(dir.path(), &["build"], &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let duck = dir.path().join("target/cross.duckdb");
    for (table, (columns, rows)) in &expected {
        let mut got = crate::common::query(&duck, &text_sql(&format!("main.{table}"), columns));
        got.sort();
        assert_eq!(&got, rows, "DuckDB: `{table}` differs from dbt's");
    }

    // With dbt's behaviour flag, two NULLs are equal (dbt-core 1.12.6 gives `true, false` for
    // these two columns with the flag set, run by hand with the peers' venv).
    let project = dir.path().join("dbt_project.yml");
    let original = std::fs::read_to_string(&project).expect("project");
    std::fs::write(
        &project,
        format!("{original}flags:\n  enable_truthy_nulls_equals_macro: true\n"),
    )
    .expect("project");
    let flagged = strata_env(dir.path(), &["run", "--select", "scalars"], &[]);
    assert_eq!(flagged.code, 0, "{}", flagged.stderr);
    assert_eq!(
        crate::common::query(
            &duck,
            "select cast(nulls_equal as varchar), cast(one_is_two as varchar) from main.scalars"
        ),
        [["true", "false"]]
    );
    std::fs::write(&project, original).expect("project");

    // Arrays print differently on each engine; their values are DuckDB's concern above.
    let portable: Vec<(&String, &Rows)> = expected
        .iter()
        .filter(|(t, _)| t.as_str() != "arrays")
        .collect();
    let pg = strata_env(dir.path(), &["build", "--target", "pg"], &[]);
    assert_eq!(pg.code, 0, "{}", pg.stderr);
    for (table, (columns, rows)) in &portable {
        let sql = text_sql(&format!("\"cross\".{table}"), columns).replacen(
            "select ",
            "select concat_ws('\u{1f}', ",
            1,
        ) + "";
        let sql = sql.replacen(" from ", ") from ", 1);
        let mut got: Vec<Vec<String>> = db
            .query(&sql)
            .lines()
            .map(|l| l.split('\u{1f}').map(str::to_string).collect())
            .collect();
        got.sort();
        assert_eq!(&got, rows, "PostgreSQL: `{table}` differs from dbt's");
    }

    if !crate::lake::stand_in("cross_db_trino") || !crate::lake::athena_front("cross_db_athena") {
        return;
    }
    let env = crate::lake::aws_environment();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    for (target, catalog, schema) in [
        ("trino", "iceberg", trino_schema.clone()),
        ("athena", "awsdatacatalog", format!("{trino_schema}_athena")),
    ] {
        let built = strata_env(dir.path(), &["build", "--target", target], &env);
        assert_eq!(built.code, 0, "{target}: {}", built.stderr);
        for (table, (columns, rows)) in &portable {
            let sql = text_sql(&format!("{catalog}.\"{schema}\".{table}"), columns);
            let mut got: Vec<Vec<String>> = crate::lake::trino(&sql)
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
                .iter()
                .map(|r| {
                    r.iter()
                        .map(|v| without_zero_fraction(v.as_str().unwrap_or("NULL")))
                        .collect()
                })
                .collect();
            got.sort();
            // `dateadd` of a date is a date on Trino and Athena (as dbt-trino's and
            // dbt-athena's are), a timestamp on DuckDB.
            let midnight = |rows: &[Vec<String>]| -> Vec<Vec<String>> {
                rows.iter()
                    .map(|r| {
                        r.iter()
                            .map(|v| v.trim_end_matches(" 00:00:00").to_string())
                            .collect()
                    })
                    .collect()
            };
            assert_eq!(
                midnight(&got),
                midnight(rows),
                "{target}: `{table}` differs from dbt's"
            );
        }
    }
    crate::lake::drop_schema("awsdatacatalog", &format!("{trino_schema}_athena"));
    crate::lake::drop_schema("awsdatacatalog", &format!("{trino_schema}_athena_strata"));
    crate::lake::drop_schema("iceberg", &trino_schema);
    crate::lake::drop_schema("iceberg", &format!("{trino_schema}_strata"));
}

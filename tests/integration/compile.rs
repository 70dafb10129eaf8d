//! `strata compile`: the compiled SQL of every node of the fixture, pinned by snapshots.

use crate::common::{files_under, fixture, strata, strata_env};

#[test]
fn compiled_sql_of_every_node_matches_snapshots() {
    let dir = fixture("jaffle");
    let run = strata_env(dir.path(), &["compile"], &[("JAFFLE_UNSET_ENV", "")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let compiled_root = dir.path().join("target/compiled/jaffle");
    let files = files_under(&compiled_root);
    let names: Vec<String> = files
        .iter()
        .map(|p| p.to_string_lossy().replace('\\', "/"))
        .collect();
    insta::assert_snapshot!("compiled_files", names.join("\n"));
    for file in &files {
        let sql = std::fs::read_to_string(compiled_root.join(file)).unwrap();
        let name = file.to_string_lossy().replace(['/', '\\'], "__");
        insta::assert_snapshot!(format!("compiled__{name}"), sql);
    }
}

#[test]
fn single_selected_model_prints_its_sql_and_vars_override() {
    let dir = fixture("jaffle");
    let run = strata(
        dir.path(),
        &[
            "compile",
            "--select",
            "stg_orders",
            "--vars",
            "{min_order_date: '2020-02-02'}",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("where order_date >= '2020-02-02'"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("id as order_id, user_id as customer_id"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("from \"jaffle\".\"main\".\"raw_orders\""),
        "{}",
        run.stdout
    );
}

#[test]
fn ephemeral_models_are_inlined_as_ctes() {
    let dir = fixture("jaffle");
    let run = strata(dir.path(), &["compile", "-s", "orders"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("with __dbt__cte__stg_payments as ("),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("select * from __dbt__cte__stg_payments"),
        "{}",
        run.stdout
    );
    let run = strata(dir.path(), &["compile"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stderr.contains("warning"), "{}", run.stderr);
    let ephemeral = std::fs::read_to_string(
        dir.path()
            .join("target/compiled/jaffle/models/staging/stg_payments.sql"),
    )
    .unwrap();
    assert!(
        ephemeral.contains("from \"jaffle\".\"main\".\"raw_payments\""),
        "{ephemeral}"
    );
}

#[test]
fn sql_syntax_error_points_at_compiled_file_and_model() {
    let dir = crate::common::project(&[
        ("project.yml", "name: p\n"),
        ("models/good.sql", "select 1 as x\n"),
        (
            "models/bad.sql",
            "select 1 as x\nfrom {{ ref('good') }} where\n",
        ),
    ]);
    let run = strata(dir.path(), &["compile"]);
    assert_eq!(run.code, 1);
    insta::assert_snapshot!(run.stderr_redacted(dir.path()));
    let compiled = dir.path().join("target/compiled/p/models");
    assert!(
        compiled.join("bad.sql").exists(),
        "the failing node's SQL is written for inspection"
    );
    assert!(
        !compiled.join("good.sql").exists(),
        "nothing else is written when compile fails"
    );
}

#[test]
fn hard_coded_tables_warn() {
    let dir = crate::common::project(&[
        ("project.yml", "name: p\n"),
        ("models/a.sql", "select * from raw.orders\n"),
    ]);
    let run = strata(dir.path(), &["compile"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "warning: model `a` reads `raw.orders`, which is neither a ref() nor a source()"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn project_can_override_schema_naming() {
    let dir = crate::common::project(&[
        ("project.yml", "name: p\nmodels:\n  p:\n    marts:\n      +schema: marts\n"),
        (
            "macros/generate_schema_name.sql",
            "{% macro generate_schema_name(custom_schema_name, node) -%}\n  {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}\n{%- endmacro %}\n",
        ),
        ("models/marts/m.sql", "select 1 as id\n"),
        ("models/n.sql", "select * from {{ ref('m') }}\n"),
    ]);
    let run = strata(dir.path(), &["compile", "-s", "n"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.trim(), "select * from \"p\".\"marts\".\"m\"");
}

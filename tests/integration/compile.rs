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

/// Built-in tests compile without the template engine in their common forms and through it in
/// the rest; debug builds (these tests) render both ways and fail if the SQL differs. Each
/// form here is then run against DuckDB, so the SQL is not only equal but valid.
#[test]
fn built_in_tests_compile_the_same_in_every_form() {
    let schema = r#"
version: 2
sources:
  - name: shop
    schema: main
    tables:
      - name: raw_customers
        columns:
          - name: id
            data_tests:
              - not_null
              - relationships: {to: ref('customers'), field: id}
models:
  - name: customers
    columns:
      - name: id
        data_tests: [unique, not_null]
  - name: orders
    columns:
      - name: id
        data_tests:
          - unique:
              config: {where: "id > 0"}
      - name: status
        data_tests:
          - accepted_values: {values: ['placed', "it's"]}
      - name: qty
        data_tests:
          - accepted_values: {values: [1, 2], quote: false}
          - accepted_values: {values: [1.5], quote: false}
      - name: customer_id
        data_tests:
          - relationships: {to: ref('customers'), field: id}
          - relationships: {to: "source('shop', 'raw_customers')", field: id}
  - name: eph
    columns:
      - name: id
        data_tests: [not_null]
"#;
    let dir = crate::common::project(&[
        ("project.yml", "name: p\n"),
        ("seeds/raw_customers.csv", "id\n1\n2\n"),
        ("models/customers.sql", "select 1 as id union all select 2\n"),
        (
            "models/orders.sql",
            "select * from (values (1, 'placed', 1, 1), (0, 'it''s', 2, 2), (0, 'placed', 1, 2)) as t(id, status, qty, customer_id)\n",
        ),
        (
            "models/eph.sql",
            "{{ config(materialized='ephemeral') }}\nselect 1 as id\n",
        ),
        ("models/uses_eph.sql", "select * from {{ ref('eph') }}\n"),
        ("models/schema.yml", schema),
    ]);
    let run = strata(dir.path(), &["compile"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let folder = dir.path().join("target/compiled/p/models/schema.yml");
    let mut files: Vec<_> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let compiled: Vec<String> = files
        .iter()
        .map(|f| {
            format!(
                "-- {}\n{}",
                f.file_name().unwrap().to_string_lossy(),
                std::fs::read_to_string(f).unwrap()
            )
        })
        .collect();
    insta::assert_snapshot!("built_in_tests", compiled.join("\n"));

    // The source's table is the seed's. Every test passes but the one whose value list is
    // wrong; without its `where`, `unique` on `orders.id` would fail too.
    for command in ["seed", "run"] {
        let run = strata(dir.path(), &[command]);
        assert_eq!(run.code, 0, "{command}: {}\n{}", run.stdout, run.stderr);
    }
    let run = strata(dir.path(), &["test"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let results = crate::common::run_results(dir.path(), "target/run_results.json");
    let failed: Vec<(String, Option<i64>)> = results
        .iter()
        .filter(|r| r["status"] != "pass")
        .map(|r| {
            (
                r["unique_id"].as_str().unwrap_or_default().to_string(),
                r["failures"].as_i64(),
            )
        })
        .collect();
    assert_eq!(results.len(), 11, "{results:#?}");
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert!(
        failed[0]
            .0
            .starts_with("test.p.accepted_values_orders_qty__False__1_5."),
        "{failed:#?}"
    );
    assert_eq!(failed[0].1, Some(2), "{failed:#?}");
}

#[test]
fn a_project_test_overrides_the_built_in_one() {
    let dir = crate::common::project(&[
        ("project.yml", "name: p\n"),
        ("models/a.sql", "select 1 as id\n"),
        (
            "models/schema.yml",
            "version: 2\nmodels:\n  - name: a\n    columns:\n      - name: id\n        data_tests: [unique]\n",
        ),
        (
            "macros/unique.sql",
            "{% test unique(model, column_name) %}\nselect {{ column_name }} from {{ model }} where 'overridden' = 'overridden' and false\n{% endtest %}\n",
        ),
    ]);
    let run = strata(dir.path(), &["compile"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let sql = std::fs::read_to_string(
        dir.path()
            .join("target/compiled/p/models/schema.yml/unique_a_id.sql"),
    )
    .unwrap();
    assert!(sql.contains("'overridden'"), "{sql}");
}

/// A recompile rewrites only the compiled files whose SQL changed.
#[test]
fn recompiling_rewrites_only_changed_files() {
    let dir = crate::common::project(&[
        ("project.yml", "name: p\n"),
        ("models/a.sql", "select 1 as id\n"),
        ("models/b.sql", "select * from {{ ref('a') }}\n"),
    ]);
    let compiled = dir.path().join("target/compiled/p/models");
    let modified = |name: &str| {
        std::fs::metadata(compiled.join(name))
            .and_then(|m| m.modified())
            .unwrap()
    };
    let run = strata(dir.path(), &["compile"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let (a, b) = (modified("a.sql"), modified("b.sql"));
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(
        dir.path().join("models/b.sql"),
        "select id from {{ ref('a') }}\n",
    )
    .unwrap();
    let run = strata(dir.path(), &["compile"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(modified("a.sql"), a, "unchanged SQL is not rewritten");
    assert_ne!(modified("b.sql"), b, "changed SQL is rewritten");
    assert_eq!(
        std::fs::read_to_string(compiled.join("b.sql")).unwrap(),
        "select id from \"p\".\"main\".\"a\"\n"
    );
}

/// Compiles a project twice: with every shortcut (kept parse renders, built-in tests written
/// natively, refs read off test arguments, SQL checks kept from the parse phase) and with none
/// (`reference`). Both must give the same SQL, the same relations read and the same
/// dependencies for every node. This is the check debug builds used to make inline.
fn assert_shortcuts_agree(dir: &std::path::Path) {
    use strata::compile::{compile, CompileOptions};
    use strata::manifest::{build, ParseOptions};
    let project = strata::project::load(&strata::project::LoadOptions {
        project_dir: dir.to_path_buf(),
        profiles_dir: None,
        target: None,
        vars: Default::default(),
        threads: None,
        skip_package_check: false,
        skip_version_check: false,
    })
    .expect("the project loads");
    let engine = strata::template::Engine::new(&project, Default::default()).expect("engine");
    let parse = |reference: bool| {
        build(
            &project,
            &engine,
            ParseOptions {
                check_sql_ahead: !reference,
                reference,
                keep_lineage: false,
            },
        )
        .expect("the project parses")
    };
    let (fast, slow) = (parse(false), parse(true));
    assert_eq!(fast.nodes.len(), slow.nodes.len());
    for (id, node) in &fast.nodes {
        let other = &slow.nodes[id];
        assert_eq!(
            (&node.refs, &node.sources, &node.depends_on),
            (&other.refs, &other.sources, &other.depends_on),
            "dependencies of `{}`",
            id.0
        );
    }
    let all: Vec<_> = fast.nodes.keys().cloned().collect();
    let compiled = |manifest: &strata::manifest::Manifest, reference: bool| {
        compile(
            &project,
            manifest,
            &engine,
            &all,
            &CompileOptions {
                reference,
                ..CompileOptions::default()
            },
        )
        .unwrap_or_else(|d| panic!("{:?}", d.sorted()))
    };
    let (fast, slow) = (compiled(&fast, false), compiled(&slow, true));
    assert!(
        !fast.reused.is_empty(),
        "nothing was reused: the check checks nothing"
    );
    assert!(slow.reused.is_empty());
    assert_eq!(fast.nodes.len(), slow.nodes.len());
    let mut native = 0;
    for (id, node) in &fast.nodes {
        let other = &slow.nodes[id];
        assert_eq!(node.sql, other.sql, "the SQL of `{}`", id.0);
        assert_eq!(
            node.relations_read, other.relations_read,
            "what `{}` reads",
            id.0
        );
        native += usize::from(id.0.starts_with("test.") && node.sql.contains("n_records"));
    }
    assert!(native > 0, "no built-in test was compiled");
}

#[test]
fn shortcuts_compile_what_the_template_engine_renders() {
    assert_shortcuts_agree(fixture("jaffle").path());
    assert_shortcuts_agree(crate::example::example().path());
    // Every argument shape the native writer takes, and some it leaves to the macro.
    let dir = crate::common::project(&[
        ("project.yml", "name: shapes\n"),
        ("models/a.sql", "select 1 as id, 'x' as s, 1.5 as f, true as b\n"),
        ("models/b.sql", "select id from {{ ref('a') }}\n"),
        (
            "models/schema.yml",
            "version: 2\nmodels:\n  - name: a\n    columns:\n      - name: id\n        data_tests:\n          - unique\n          - not_null:\n              config: {where: \"id > 0\"}\n          - accepted_values: {values: [1, 2, 3], quote: false}\n          - accepted_values: {values: [1, 2], quote: true}\n      - name: s\n        data_tests:\n          - accepted_values: {values: ['x', \"it's\"]}\n      - name: f\n        data_tests:\n          - accepted_values: {values: [1.5, 2.25], quote: false}\n  - name: b\n    columns:\n      - name: id\n        data_tests:\n          - relationships: {to: ref('a'), field: id}\n          - relationships:\n              to: ref('a')\n              field: id\n              config: {where: \"id is not null\"}\n",
        ),
    ]);
    assert_shortcuts_agree(dir.path());
}

/// `adapter.dispatch` tries the warehouse's own prefix, then its parents', then `default__`:
/// on Redshift, `redshift__` → `postgres__` → `default__`, as dbt does (compiled without a
/// connection: the flavour is known from the target).
#[test]
fn dispatch_falls_back_through_the_adapters_parents() {
    let dir = crate::common::project(&[
        ("dbt_project.yml", "name: chain\nprofile: chain\n"),
        (
            "profiles.yml",
            "chain:\n  target: rs\n  outputs:\n    rs:\n      type: redshift\n      host: 127.0.0.1\n      user: u\n      password: p\n      port: 5439\n      dbname: d\n      schema: s\n",
        ),
        (
            "macros/which.sql",
            "{% macro which() %}{{ return(adapter.dispatch('which')()) }}{% endmacro %}\n{% macro default__which() %}'default'{% endmacro %}\n{% macro postgres__which() %}'postgres'{% endmacro %}\n",
        ),
        ("models/m.sql", "select {{ which() }} as picked\n"),
    ]);
    let compiled = crate::common::strata(dir.path(), &["compile", "--select", "m"]);
    assert_eq!(compiled.code, 0, "{}", compiled.stderr);
    assert!(
        compiled.stdout.contains("'postgres' as picked"),
        "{}",
        compiled.stdout
    );
    let macros = dir.path().join("macros/which.sql");
    let text = std::fs::read_to_string(&macros).expect("macros");
    std::fs::write(
        &macros,
        format!("{text}{{% macro redshift__which() %}}'redshift'{{% endmacro %}}\n"),
    )
    .expect("macros");
    let compiled = crate::common::strata(dir.path(), &["compile", "--select", "m"]);
    assert_eq!(compiled.code, 0, "{}", compiled.stderr);
    assert!(
        compiled.stdout.contains("'redshift' as picked"),
        "{}",
        compiled.stdout
    );
    std::fs::write(
        &macros,
        text.replace(
            "{% macro postgres__which() %}'postgres'{% endmacro %}\n",
            "",
        ),
    )
    .expect("macros");
    let compiled = crate::common::strata(dir.path(), &["compile", "--select", "m"]);
    assert_eq!(compiled.code, 0, "{}", compiled.stderr);
    assert!(
        compiled.stdout.contains("'default' as picked"),
        "{}",
        compiled.stdout
    );
}

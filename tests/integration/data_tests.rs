//! Data tests on real DuckDB: each planted defect is caught by the right test with the right
//! failure count, the clean checks pass, `build` skips exactly what depends on bad data, and the
//! reports (exit code, run_results.json, JUnit XML, stored failures) say so.

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::{project, query, strata};

/// `test name → (status, failures)` from run_results.json.
fn test_results(dir: &Path) -> BTreeMap<String, (String, Option<i64>)> {
    crate::common::run_results(dir, "target/run_results.json")
        .iter()
        .map(|r| {
            let id = r["unique_id"].as_str().unwrap_or_default();
            // test.<project>.<name>[.<hash>] or model.<project>.<name>
            let parts: Vec<&str> = id.split('.').collect();
            let name = parts.get(2).copied().unwrap_or(id).to_string();
            (
                name,
                (
                    r["status"].as_str().unwrap_or_default().to_string(),
                    r["failures"].as_i64(),
                ),
            )
        })
        .collect()
}

fn status(results: &BTreeMap<String, (String, Option<i64>)>, name: &str) -> (String, Option<i64>) {
    results
        .get(name)
        .cloned()
        .unwrap_or_else(|| panic!("no result for `{name}` in {results:#?}"))
}

const DEFECTS_YML: &str = r#"
version: 2
models:
  - name: customers
    columns:
      - name: id
        data_tests: [unique, not_null]
      - name: country
        data_tests:
          - accepted_values:
              values: ['FR', 'DE']
  - name: orders
    data_tests:
      - unique_combination_of_columns:
          combination_of_columns: [order_id, line]
    columns:
      - name: customer_id
        data_tests:
          - not_null
          - relationships:
              to: ref('customers')
              field: id
      - name: status
        data_tests:
          - accepted_values:
              values: ['placed', 'shipped']
      - name: order_id
        data_tests: [not_null]
  - name: orders_clean
    data_tests:
      - reconcile:
          to: ref('orders')
      - reconcile:
          name: amount_reconciles
          to: ref('orders')
          measure: sum(amount)
          tolerance_pct: 50
"#;

/// A small warehouse with one planted defect per test kind.
fn defects_project() -> tempfile::TempDir {
    project(&[
        (
            "project.yml",
            "name: shop\nmodels:\n  shop:\n    +materialized: table\n",
        ),
        (
            "seeds/raw_customers.csv",
            "id,name,country\n1,Ann,FR\n2,Bob,DE\n3,Cy,FR\n3,Cy again,FR\n4,Di,XX\n",
        ),
        (
            "seeds/raw_orders.csv",
            "order_id,line,customer_id,status,amount\n\
             10,1,1,placed,5\n\
             10,2,1,placed,7\n\
             11,1,2,shipped,3\n\
             11,1,2,shipped,3\n\
             12,1,,placed,4\n\
             13,1,99,lost,0\n",
        ),
        (
            "models/customers.sql",
            "select * from {{ ref('raw_customers') }}\n",
        ),
        (
            "models/orders.sql",
            "select * from {{ ref('raw_orders') }}\n",
        ),
        (
            "models/orders_clean.sql",
            "select * from {{ ref('orders') }} where amount > 0\n",
        ),
        ("models/schema.yml", DEFECTS_YML),
    ])
}

#[test]
fn each_planted_defect_fails_its_test_with_the_right_count() {
    let dir = defects_project();
    let seeded = strata(dir.path(), &["seed"]);
    assert_eq!(seeded.code, 0, "{}", seeded.stderr);
    let ran = strata(dir.path(), &["run"]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);

    let tested = strata(dir.path(), &["test"]);
    assert_eq!(tested.code, 1, "{}", tested.stderr);
    let results = test_results(dir.path());
    let fail = |n: i64| ("fail".to_string(), Some(n));
    let pass = ("pass".to_string(), Some(0));
    // customers: id 3 twice, country XX
    assert_eq!(status(&results, "unique_customers_id"), fail(1));
    assert_eq!(status(&results, "not_null_customers_id"), pass);
    assert_eq!(
        status(&results, "accepted_values_customers_country__FR__DE"),
        fail(1)
    );
    // orders: one NULL customer, one orphan (99), one unexpected status, (11, 1) twice
    assert_eq!(status(&results, "not_null_orders_customer_id"), fail(1));
    assert_eq!(
        status(
            &results,
            "relationships_orders_customer_id__id__ref_customers_"
        ),
        fail(1)
    );
    assert_eq!(
        status(&results, "accepted_values_orders_status__placed__shipped"),
        fail(1)
    );
    assert_eq!(
        status(
            &results,
            "unique_combination_of_columns_orders_order_id__line"
        ),
        fail(1)
    );
    assert_eq!(status(&results, "not_null_orders_order_id"), pass);
    // orders_clean lost the zero-amount row: counts differ, sums agree (0 lost)
    assert_eq!(
        status(&results, "reconcile_orders_clean_ref_orders_"),
        fail(1)
    );
    assert_eq!(status(&results, "amount_reconciles"), pass);
    assert!(
        tested.stderr.contains("PASS=3 WARN=0 ERROR=7 SKIP=0"),
        "{}",
        tested.stderr
    );
    // The report names the compiled SQL and shows a failing row.
    assert!(
        tested
            .stderr
            .contains("target/compiled/shop/models/schema.yml/unique_customers_id.sql"),
        "{}",
        tested.stderr
    );
    assert!(
        tested.stderr.contains("first failing rows:"),
        "{}",
        tested.stderr
    );

    // Column tests sharing one scan per relation give the same answers as one query each.
    let batched = strata(dir.path(), &["test", "--batch-tests"]);
    assert_eq!(batched.code, 1, "{}", batched.stderr);
    assert_eq!(test_results(dir.path()), results);
}

#[test]
fn a_broken_test_in_a_batch_does_not_spoil_the_others() {
    let dir = project(&[
        ("project.yml", "name: shop\nmodels:\n  shop:\n    +materialized: table\n"),
        ("models/orders.sql", "select 1 as id, null as note, 'x' as status\n"),
        (
            "models/schema.yml",
            "version: 2\nmodels:\n  - name: orders\n    columns:\n      - name: id\n        data_tests: [not_null]\n      - name: note\n        data_tests: [not_null]\n      - name: missing\n        data_tests: [not_null]\n      - name: status\n        data_tests:\n          - accepted_values: {values: [x, y]}\n",
        ),
    ]);
    let built = strata(dir.path(), &["build", "--batch-tests"]);
    assert_eq!(built.code, 1, "{}", built.stderr);
    let results = test_results(dir.path());
    assert_eq!(
        status(&results, "not_null_orders_id"),
        ("pass".to_string(), Some(0))
    );
    assert_eq!(
        status(&results, "not_null_orders_note"),
        ("fail".to_string(), Some(1))
    );
    assert_eq!(status(&results, "not_null_orders_missing").0, "error");
    assert_eq!(
        status(&results, "accepted_values_orders_status__x__y"),
        ("pass".to_string(), Some(0))
    );
}

#[test]
fn build_skips_exactly_what_reads_a_model_with_a_failing_test() {
    let dir = project(&[
        (
            "project.yml",
            "name: shop\nmodels:\n  shop:\n    +materialized: table\n",
        ),
        ("seeds/raw_customers.csv", "id,name\n1,Ann\n2,Bob\n"),
        ("seeds/raw_orders.csv", "order_id,customer_id\n10,1\n11,\n"),
        (
            "models/customers.sql",
            "select * from {{ ref('raw_customers') }}\n",
        ),
        (
            "models/customer_report.sql",
            "select count(*) as n from {{ ref('customers') }}\n",
        ),
        (
            "models/orders.sql",
            "select * from {{ ref('raw_orders') }}\n",
        ),
        (
            "models/order_report.sql",
            "select count(*) as n from {{ ref('orders') }}\n",
        ),
        (
            "models/order_report_2.sql",
            "select n from {{ ref('order_report') }}\n",
        ),
        (
            "models/schema.yml",
            r#"
version: 2
models:
  - name: customers
    columns:
      - name: id
        data_tests: [unique]
  - name: orders
    columns:
      - name: customer_id
        data_tests:
          - not_null
          - relationships: {to: ref('customers'), field: id}
"#,
        ),
    ]);
    let built = strata(dir.path(), &["build"]);
    assert_eq!(built.code, 1, "{}", built.stderr);
    let results = test_results(dir.path());
    assert_eq!(status(&results, "customers").0, "success");
    assert_eq!(status(&results, "customer_report").0, "success");
    assert_eq!(status(&results, "orders").0, "success");
    assert_eq!(
        status(&results, "not_null_orders_customer_id"),
        ("fail".to_string(), Some(1))
    );
    // NULLs are not orphans: the relationships test passes
    assert_eq!(
        status(
            &results,
            "relationships_orders_customer_id__id__ref_customers_"
        )
        .0,
        "pass"
    );
    assert_eq!(status(&results, "order_report").0, "skipped");
    assert_eq!(status(&results, "order_report_2").0, "skipped");
    let db = dir.path().join("target/shop.duckdb");
    assert_eq!(
        query(
            &db,
            "select count(*) from information_schema.tables where table_name like 'order_report%'"
        ),
        vec![vec!["0".to_string()]]
    );
    // Tests run after their model, never before.
    let position = |needle: &str| {
        built
            .stderr
            .find(needle)
            .unwrap_or_else(|| panic!("`{needle}` missing from {}", built.stderr))
    };
    assert!(position("OK orders ") < position("START test not_null_orders_customer_id"));
}

#[test]
fn warn_severity_and_thresholds_decide_the_exit_code() {
    let dir = project(&[
        (
            "project.yml",
            "name: shop\nmodels:\n  shop:\n    +materialized: table\n",
        ),
        (
            "seeds/raw_orders.csv",
            "order_id,status\n1,a\n2,\n3,\n4,b\n",
        ),
        (
            "models/orders.sql",
            "select * from {{ ref('raw_orders') }}\n",
        ),
        (
            "models/schema.yml",
            r#"
version: 2
models:
  - name: orders
    columns:
      - name: status
        data_tests:
          - not_null:
              config:
                severity: warn
          - not_null:
              name: status_mostly_present
              config:
                warn_if: ">0"
                error_if: ">5"
          - not_null:
              name: status_present_after_two
              config:
                where: "order_id > 3"
"#,
        ),
    ]);
    let built = strata(dir.path(), &["build"]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let results = test_results(dir.path());
    assert_eq!(
        status(&results, "not_null_orders_status"),
        ("warn".to_string(), Some(2))
    );
    assert_eq!(
        status(&results, "status_mostly_present"),
        ("warn".to_string(), Some(2))
    );
    assert_eq!(
        status(&results, "status_present_after_two"),
        ("pass".to_string(), Some(0))
    );
    assert!(built.stderr.contains("WARN=2 ERROR=0"), "{}", built.stderr);
}

#[test]
fn store_failures_keeps_the_failing_rows_in_an_audit_table() {
    let dir = project(&[
        ("project.yml", "name: shop\nmodels:\n  shop:\n    +materialized: table\ndata_tests:\n  shop:\n    +store_failures: true\n"),
        ("seeds/raw_orders.csv", "order_id\n1\n2\n2\n3\n3\n3\n"),
        ("models/orders.sql", "select * from {{ ref('raw_orders') }}\n"),
        (
            "models/schema.yml",
            "version: 2\nmodels:\n  - name: orders\n    columns:\n      - name: order_id\n        data_tests:\n          - unique:\n              config:\n                limit: 1\n",
        ),
    ]);
    let built = strata(dir.path(), &["build"]);
    assert_eq!(built.code, 1, "{}", built.stderr);
    let results = test_results(dir.path());
    // Two duplicated ids, capped at one by `limit`.
    assert_eq!(
        status(&results, "unique_orders_order_id"),
        ("fail".to_string(), Some(1))
    );
    let db = dir.path().join("target/shop.duckdb");
    assert_eq!(
        query(
            &db,
            "select count(*) from main_dbt_test__audit.unique_orders_order_id"
        ),
        vec![vec!["1".to_string()]]
    );
    assert!(
        built.stderr.contains("failing rows stored in"),
        "{}",
        built.stderr
    );
}

#[test]
fn custom_generic_and_singular_tests_run() {
    let dir = project(&[
        ("project.yml", "name: shop\nmodels:\n  shop:\n    +materialized: table\n"),
        ("seeds/raw_orders.csv", "order_id,amount\n1,5\n2,-3\n3,-1\n"),
        ("models/orders.sql", "select * from {{ ref('raw_orders') }}\n"),
        (
            "tests/generic/is_positive.sql",
            "{% test is_positive(model, column_name) %}\nselect * from {{ model }} where {{ column_name }} <= 0\n{% endtest %}\n",
        ),
        (
            "tests/no_big_orders.sql",
            "select * from {{ ref('orders') }} where amount > 100\n",
        ),
        (
            "tests/some_negative.sql",
            "{{ config(severity='warn') }}\nselect * from {{ ref('orders') }} where amount < -2\n",
        ),
        (
            "models/schema.yml",
            "version: 2\nmodels:\n  - name: orders\n    columns:\n      - name: amount\n        data_tests: [is_positive]\n",
        ),
    ]);
    let built = strata(dir.path(), &["build"]);
    assert_eq!(built.code, 1, "{}", built.stderr);
    let results = test_results(dir.path());
    assert_eq!(
        status(&results, "is_positive_orders_amount"),
        ("fail".to_string(), Some(2))
    );
    assert_eq!(
        status(&results, "no_big_orders"),
        ("pass".to_string(), Some(0))
    );
    assert_eq!(
        status(&results, "some_negative"),
        ("warn".to_string(), Some(1))
    );
    // Selecting the model selects its tests, singular ones included.
    let tested = strata(dir.path(), &["test", "--select", "test_type:singular"]);
    assert_eq!(tested.code, 0, "{}", tested.stderr);
    assert_eq!(test_results(dir.path()).len(), 2);
}

#[test]
fn a_test_on_a_missing_column_points_at_its_yaml_entry() {
    let dir = project(&[
        ("project.yml", "name: shop\nmodels:\n  shop:\n    +materialized: table\n"),
        ("models/orders.sql", "select 1 as order_id\n"),
        (
            "models/schema.yml",
            "version: 2\nmodels:\n  - name: orders\n    columns:\n      - name: order_idd\n        data_tests: [not_null]\n",
        ),
    ]);
    let built = strata(dir.path(), &["build"]);
    assert_eq!(built.code, 1, "{}", built.stderr);
    let results = test_results(dir.path());
    assert_eq!(status(&results, "not_null_orders_order_idd").0, "error");
    assert!(
        built.stderr.contains("models/schema.yml:5"),
        "{}",
        built.stderr
    );
    assert!(built.stderr.contains("order_idd"), "{}", built.stderr);
}

#[test]
fn junit_xml_counts_tests_failures_and_skips() {
    let dir = project(&[
        ("project.yml", "name: shop\nmodels:\n  shop:\n    +materialized: table\n"),
        ("seeds/raw_orders.csv", "order_id\n1\n1\n"),
        ("models/orders.sql", "select * from {{ ref('raw_orders') }}\n"),
        ("models/report.sql", "select count(*) as n from {{ ref('orders') }}\n"),
        (
            "models/schema.yml",
            "version: 2\nmodels:\n  - name: orders\n    columns:\n      - name: order_id\n        data_tests: [unique, not_null]\n",
        ),
    ]);
    let built = strata(dir.path(), &["build", "--junit", "reports/junit.xml"]);
    assert_eq!(built.code, 1, "{}", built.stderr);
    let xml = std::fs::read_to_string(dir.path().join("reports/junit.xml")).expect("junit file");
    let document = roxmltree::Document::parse(&xml).expect("well-formed XML");
    let suite = document
        .descendants()
        .find(|n| n.has_tag_name("testsuite"))
        .expect("a test suite");
    assert_eq!(suite.attribute("tests"), Some("5"));
    assert_eq!(suite.attribute("failures"), Some("1"));
    assert_eq!(suite.attribute("skipped"), Some("1"));
    let cases: Vec<_> = suite
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), 5);
    let failed: Vec<&str> = cases
        .iter()
        .filter(|c| c.children().any(|n| n.has_tag_name("failure")))
        .filter_map(|c| c.attribute("name"))
        .collect();
    assert_eq!(failed, vec!["unique_orders_order_id"]);
    let skipped: Vec<&str> = cases
        .iter()
        .filter(|c| c.children().any(|n| n.has_tag_name("skipped")))
        .filter_map(|c| c.attribute("name"))
        .collect();
    assert_eq!(skipped, vec!["report"]);
}

/// Regression: relationships tests from two facts to one dim made each fact wait for the other's
/// test, a cycle that left both facts (and everything after them) unrun.
#[test]
fn relationships_tests_from_two_facts_to_one_dim_do_not_deadlock_build() {
    let dir = project(&[
        ("project.yml", "name: shop\nmodels:\n  shop:\n    +materialized: table\n"),
        ("models/dim.sql", "select 1 as id\n"),
        ("models/fact_a.sql", "select id from {{ ref('dim') }}\n"),
        ("models/fact_b.sql", "select id from {{ ref('dim') }}\n"),
        ("models/agg.sql", "select count(*) as n from {{ ref('fact_a') }}\n"),
        (
            "models/schema.yml",
            "version: 2\nmodels:\n  - name: fact_a\n    columns:\n      - name: id\n        data_tests:\n          - relationships: {to: ref('dim'), field: id}\n  - name: fact_b\n    columns:\n      - name: id\n        data_tests:\n          - relationships: {to: ref('dim'), field: id}\n",
        ),
    ]);
    let built = strata(dir.path(), &["build"]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    assert!(
        built.stderr.contains("PASS=6 WARN=0 ERROR=0 SKIP=0"),
        "{}",
        built.stderr
    );
    // agg reads fact_a, and fact_a's test reads only what agg reads: agg waits for it.
    let position = |needle: &str| built.stderr.find(needle).unwrap_or(usize::MAX);
    assert!(
        position("PASS relationships_fact_a_id__id__ref_dim_")
            < position("START sql table model main.agg"),
        "{}",
        built.stderr
    );
}

#[test]
fn expression_row_count_not_empty_and_grouped_reconcile_tests() {
    let dir = project(&[
        (
            "project.yml",
            "name: shop\nmodels:\n  shop:\n    +materialized: table\n",
        ),
        (
            "seeds/landing.csv",
            "day,amount\n2024-01-01,10\n2024-01-01,5\n2024-01-02,7\n2024-01-03,1\n",
        ),
        (
            "models/cleaned.sql",
            "select * from {{ ref('landing') }} where amount > 1\n",
        ),
        (
            "models/rejects.sql",
            "select * from {{ ref('landing') }} where amount <= 1\n",
        ),
        ("models/empty.sql", "select 1 as x where false\n"),
        (
            "models/schema.yml",
            r#"
version: 2
models:
  - name: cleaned
    data_tests:
      - expression_is_true: {expression: "amount > 0"}
      - expression_is_true:
          name: amounts_are_big
          expression: "amount > 6"
      - row_count: {min: 1, max: 3}
      - row_count:
          name: at_least_ten_rows
          min: 10
      - not_empty
  - name: empty
    data_tests: [not_empty]
seeds:
  - name: landing
    data_tests:
      - reconcile:
          name: landing_equals_cleaned_plus_rejects
          to: [ref('cleaned'), ref('rejects')]
      - reconcile:
          name: landing_equals_cleaned_per_day
          to: ref('cleaned')
          measure: sum(amount)
          group_by: [day]
      - reconcile:
          name: landing_near_cleaned_per_day
          to: ref('cleaned')
          measure: sum(amount)
          group_by: [day]
          tolerance: 1
"#,
        ),
    ]);
    let built = strata(dir.path(), &["build"]);
    assert_eq!(built.code, 1, "{}", built.stderr);
    let results = test_results(dir.path());
    let pass = ("pass".to_string(), Some(0));
    assert_eq!(
        status(&results, "expression_is_true_cleaned_amount_0"),
        pass
    );
    // 5 fails `amount > 6`
    assert_eq!(
        status(&results, "amounts_are_big"),
        ("fail".to_string(), Some(1))
    );
    assert_eq!(status(&results, "row_count_cleaned_3__1"), pass);
    assert_eq!(
        status(&results, "at_least_ten_rows"),
        ("fail".to_string(), Some(1))
    );
    assert_eq!(status(&results, "not_empty_cleaned_"), pass);
    assert_eq!(
        status(&results, "not_empty_empty_"),
        ("fail".to_string(), Some(1))
    );
    // No row is lost: landing = cleaned + rejects.
    assert_eq!(
        status(&results, "landing_equals_cleaned_plus_rejects"),
        pass
    );
    // 2024-01-03 lost 1 (it went to rejects) ...
    assert_eq!(
        status(&results, "landing_equals_cleaned_per_day"),
        ("fail".to_string(), Some(1))
    );
    // ... which an absolute tolerance of 1 accepts.
    assert_eq!(status(&results, "landing_near_cleaned_per_day"), pass);
}

#[test]
fn a_test_on_a_missing_relation_points_at_its_yaml_entry_and_builds_nothing() {
    let dir = project(&[
        ("project.yml", "name: shop\n"),
        ("models/orders.sql", "select 1 as id\n"),
        (
            "models/schema.yml",
            "version: 2\nmodels:\n  - name: orders\n    columns:\n      - name: id\n        data_tests:\n          - relationships:\n              to: ref('customerz')\n              field: id\n",
        ),
    ]);
    let built = strata(dir.path(), &["build"]);
    assert_eq!(built.code, 1, "{}", built.stderr);
    assert!(
        built
            .stderr
            .contains("refers to `customerz`, which does not exist"),
        "{}",
        built.stderr
    );
    assert!(
        built.stderr.contains("models/schema.yml:5"),
        "{}",
        built.stderr
    );
    assert!(!dir.path().join("target").exists());
}

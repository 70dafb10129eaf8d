//! dbt's unit tests, against what dbt-core 1.12.6 did with the same project
//! (`tests/fixtures/unit_tests`, whose `expect.sh` wrote `expected.json`): each input format
//! (`dict`, `csv`, `sql`, inline and from fixture files) passing and failing, overrides of a
//! macro, a var, an env var and `is_incremental()` with `input: this`, dbt's documented
//! e-mail and incremental examples, a disabled test. The statuses are dbt's, and the rows each
//! side of every comparison holds are dbt's. `order_age` is not built: its `current_date`
//! needs DuckDB's ICU extension, which the bundled DuckDB loads from the network (its unit test
//! overrides the date and needs only its inputs).

use std::collections::BTreeMap;

use serde_json::Value as Json;

use crate::common::{fixture, project, query, same_rows, strata};

fn expected() -> BTreeMap<String, Json> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/unit_tests/expected.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("expected.json")).expect("JSON")
}

fn rows(value: &Json) -> Vec<Vec<String>> {
    let mut rows: Vec<Vec<String>> = value
        .as_array()
        .into_iter()
        .flatten()
        .map(|row| {
            row.as_array()
                .into_iter()
                .flatten()
                .map(|v| v.as_str().unwrap_or("NULL").to_string())
                .collect()
        })
        .collect();
    rows.sort();
    rows
}

fn setup() -> tempfile::TempDir {
    let dir = fixture("unit_tests");
    std::fs::write(
        dir.path().join("profiles.yml"),
        "unit_tests:\n  target: dev\n  outputs:\n    dev: {type: duckdb, path: target/u.duckdb}\n",
    )
    .expect("profiles");
    dir
}

/// Each unit test's status in the last run's results.
fn statuses(dir: &std::path::Path) -> BTreeMap<String, String> {
    crate::common::run_results(dir, "target/run_results.json")
        .into_iter()
        .filter_map(|r| {
            let id = r["unique_id"].as_str()?;
            let name = id.strip_prefix("unit_test.unit_tests.")?;
            let name = name.split_once('.')?.1.to_string();
            Some((name, r["status"].as_str()?.to_string()))
        })
        .collect()
}

#[test]
fn unit_tests_give_what_dbt_gives() {
    let dir = setup();
    let parents = strata(
        dir.path(),
        &["build", "--exclude", "test_type:unit", "order_age"],
    );
    assert_eq!(parents.code, 0, "{}", parents.stderr);
    let run = strata(dir.path(), &["test", "--select", "test_type:unit"]);
    assert_eq!(
        run.code, 1,
        "failing unit tests fail the run: {}",
        run.stderr
    );

    let expected = expected();
    let got = statuses(dir.path());
    let want: BTreeMap<String, String> = expected
        .iter()
        .map(|(name, t)| (name.clone(), t["status"].as_str().unwrap_or("").to_string()))
        .collect();
    assert_eq!(got, want, "{}", run.stderr);

    // The rows on each side of every comparison are dbt's.
    let db = dir.path().join("target/u.duckdb");
    for (name, test) in &expected {
        if test.get("actual").is_none() {
            continue;
        }
        let compiled = walk(&dir.path().join("target/compiled"))
            .into_iter()
            .find(|p| p.file_name().and_then(|f| f.to_str()) == Some(&format!("{name}.sql")))
            .unwrap_or_else(|| panic!("no compiled SQL for `{name}`"));
        let sql = std::fs::read_to_string(&compiled).expect("compiled SQL");
        // Every value as DuckDB prints it as text, as dbt's were.
        let all = query(
            &db,
            &format!("select cast(columns(*) as varchar) from ({sql}) as compared"),
        );
        let side = |which: &str| -> Vec<Vec<String>> {
            let mut rows: Vec<Vec<String>> = all
                .iter()
                .filter(|r| r.last().map(String::as_str) == Some(which))
                .map(|r| r[..r.len() - 1].to_vec())
                .collect();
            rows.sort();
            rows
        };
        for which in ["actual", "expected"] {
            let (got, want) = (side(which), rows(&test[which]));
            assert!(
                same_rows(&got, &want),
                "`{name}`, {which}: {got:?} vs dbt's {want:?}"
            );
        }
    }

    // A failure says which rows are missing and which were not expected.
    let buggy = run
        .stderr
        .split("unit test `email_validation_with_buggy_regex` failed")
        .nth(1)
        .expect("the buggy e-mail check fails");
    assert!(
        buggy.contains("missing    | cool@example.com | true"),
        "{buggy}"
    );
    assert!(
        buggy.contains("unexpected | cool@example.com | false"),
        "{buggy}"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found
}

/// `build` runs a model's unit tests before it: one that fails skips the model and what reads
/// it; a passing one lets it build. Unit tests are selected with their model, by
/// `test_type:unit` and by tag, and JUnit reports them.
#[test]
fn a_failing_unit_test_skips_its_model_in_a_build() {
    let dir = setup();
    let junit = dir.path().join("junit.xml");
    let built = strata(
        dir.path(),
        &[
            "build",
            "--exclude",
            "order_age",
            "--junit",
            junit.to_str().expect("path"),
        ],
    );
    assert_eq!(built.code, 1, "{}", built.stderr);
    let results: BTreeMap<String, String> =
        crate::common::run_results(dir.path(), "target/run_results.json")
            .into_iter()
            .filter_map(|r| {
                Some((
                    r["unique_id"].as_str()?.to_string(),
                    r["status"].as_str()?.to_string(),
                ))
            })
            .collect();
    // Its unit tests failed: the model and its unit tests' siblings do not matter, it is skipped.
    assert_eq!(results["model.unit_tests.order_amounts"], "skipped");
    assert_eq!(
        results["model.unit_tests.dim_customers_buggy_regex"],
        "skipped"
    );
    // Every unit test of these passed: they are built.
    assert_eq!(results["model.unit_tests.dim_customers"], "success");
    assert_eq!(results["model.unit_tests.my_incremental_model"], "success");
    assert!(
        !results.contains_key("unit_test.unit_tests.order_amounts.disabled_test_never_runs"),
        "a disabled unit test does not run"
    );
    let xml = std::fs::read_to_string(&junit).expect("junit");
    assert!(
        xml.contains("email_validation_with_buggy_regex"),
        "JUnit lists unit tests: {xml}"
    );

    let ls = |selector: &str| {
        let run = strata(
            dir.path(),
            &["ls", "--select", selector, "--output", "name"],
        );
        assert_eq!(run.code, 0, "{}", run.stderr);
        run.stdout.lines().map(str::to_string).collect::<Vec<_>>()
    };
    assert_eq!(ls("test_type:unit").len(), 15);
    assert_eq!(ls("tag:smoke"), ["dict_row_omitting_column_is_null"]);
    let with_model = ls("customer_totals");
    assert!(
        with_model.contains(&"sql_inline_input_and_expect".to_string()),
        "{with_model:?}"
    );
}

/// A unit test that cannot work is an error naming its YAML file and line, before anything
/// runs.
#[test]
fn unit_test_mistakes_name_the_file_and_line() {
    let cases: &[(&str, &str)] = &[
        (
            "  - name: t\n    model: nosuch\n    given: []\n    expect: {rows: []}\n",
            "tests model `nosuch`, which does not exist",
        ),
        (
            "  - name: t\n    model: m\n    given: []\n    expect: {rows: []}\n",
            "does not give ref('raw'), which model `m` reads",
        ),
        (
            "  - name: t\n    model: m\n    given:\n      - input: ref('raw')\n        rows: []\n      - input: ref('other')\n        rows: []\n    expect: {rows: []}\n",
            "gives `ref('other')`, which model `m` does not read",
        ),
        (
            "  - name: t\n    model: m\n    given:\n      - input: ref('raw')\n        format: json\n        rows: []\n    expect: {rows: []}\n",
            "has format `json`",
        ),
        (
            "  - name: t\n    model: m\n    given:\n      - input: ref('raw')\n        format: csv\n        fixture: nosuch\n    expect: {rows: []}\n",
            "names fixture `nosuch`",
        ),
        (
            "  - name: t\n    model: m\n    given:\n      - input: ref('raw')\n        rows: []\n    expect: {rows: []}\n    overide: {}\n",
            "invalid unit test `t`",
        ),
    ];
    for (yaml, message) in cases {
        let dir = project(&[
            ("project.yml", "name: bad\n"),
            ("seeds/raw.csv", "id\n1\n"),
            ("seeds/other.csv", "id\n1\n"),
            ("models/m.sql", "select id from {{ ref('raw') }}\n"),
            ("models/tests.yml", &format!("unit_tests:\n{yaml}")),
        ]);
        let run = strata(dir.path(), &["build"]);
        assert_eq!(run.code, 1, "{message}: {}", run.stderr);
        assert!(run.stderr.contains(message), "{message}: {}", run.stderr);
        assert!(
            run.stderr.contains("models/tests.yml:2"),
            "{message}: {}",
            run.stderr
        );
        assert!(!dir.path().join("target/bad.duckdb").exists());
    }
}

/// The same query on each warehouse: inputs cast to the types PostgreSQL names too, and a
/// passing and a failing test, with a csv input leaving a column NULL.
fn unit_tests_run_in_the_warehouse(kind: crate::warehouse::Kind) {
    let Some(w) = crate::warehouse::Warehouse::new(
        kind,
        "unit",
        "name: shop\n",
        &[
            ("seeds/raw.csv", "id,amount,label\n1,10,a\n"),
            (
                "models/doubled.sql",
                "select id, amount * 2 as doubled, coalesce(label, 'none') as label from {{ ref('raw') }}\n",
            ),
            (
                "models/tests.yml",
                "unit_tests:\n  - name: doubles\n    model: doubled\n    given:\n      - input: ref('raw')\n        format: csv\n        rows: |\n          id,amount,label\n          1,5,\n          2,7,b\n    expect:\n      rows:\n        - {id: 1, doubled: 10, label: none}\n        - {id: 2, doubled: 14, label: b}\n  - name: wrong\n    model: doubled\n    given:\n      - input: ref('raw')\n        rows:\n          - {id: 3, amount: 1}\n    expect:\n      rows:\n        - {id: 3, doubled: 3}\n",
            ),
        ],
    ) else {
        return;
    };
    let run = w.run(&["build"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("PASS doubles"), "{}", run.stderr);
    assert!(run.stderr.contains("FAIL wrong"), "{}", run.stderr);
    assert!(run.stderr.contains("missing    | 3  | 3"), "{}", run.stderr);
    assert!(
        run.stderr.contains("SKIP=1"),
        "the model is skipped: {}",
        run.stderr
    );
}

crate::on_every_warehouse!(unit_tests_run_in_the_warehouse);

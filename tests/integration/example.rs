//! The retail-finance example at the repository root: it must build on embedded DuckDB with
//! every data test passing, and `--select gold+` must build exactly gold and aggregates.

use std::path::{Path, PathBuf};

use crate::common::strata;

/// A copy of the example project (only its own files, not the Rust crate) in a temp folder.
pub fn example() -> tempfile::TempDir {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::copy(root.join("project.yml"), dir.path().join("project.yml")).expect("project.yml");
    for folder in [
        "models",
        "seeds",
        "macros",
        "snapshots",
        "tests/strata",
        "landing",
    ] {
        copy_tree(&root.join(folder), &dir.path().join(folder));
    }
    dir
}

fn copy_tree(from: &Path, to: &Path) {
    if !from.is_dir() {
        return;
    }
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir").flatten() {
        let target: PathBuf = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

fn statuses(dir: &Path) -> Vec<(String, String)> {
    let results: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join("target/strata/run_results.json")).expect("run_results.json"),
    )
    .expect("json");
    results["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            (
                r["unique_id"].as_str().unwrap_or_default().to_string(),
                r["status"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[test]
fn the_example_builds_with_every_test_passing() {
    let dir = example();
    let built = strata(dir.path(), &["build"]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let results = statuses(dir.path());
    let bad: Vec<_> = results
        .iter()
        .filter(|(_, status)| status != "success" && status != "pass")
        .collect();
    assert!(bad.is_empty(), "{bad:?}\n{}", built.stderr);
    assert!(
        results
            .iter()
            .filter(|(id, _)| id.starts_with("test."))
            .count()
            >= 30,
        "{results:?}"
    );

    // `--select gold+` builds exactly the gold models and what reads them, with their tests.
    let gold = strata(dir.path(), &["build", "--select", "gold+"]);
    assert_eq!(gold.code, 0, "{}", gold.stderr);
    let mut models: Vec<String> = statuses(dir.path())
        .into_iter()
        .filter(|(id, _)| id.starts_with("model."))
        .map(|(id, _)| id.trim_start_matches("model.retail_finance.").to_string())
        .collect();
    models.sort();
    assert_eq!(
        models,
        [
            "agg_daily_sales",
            "agg_monthly_sales",
            "dim_customer",
            "dim_date",
            "dim_product",
            "dim_store",
            "fact_payments",
            "fact_sales"
        ]
    );
}

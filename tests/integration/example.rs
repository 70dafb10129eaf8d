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

/// `(unique id, field)` of every result in the example's run_results.json.
fn results(dir: &Path, field: &str) -> Vec<(String, String)> {
    crate::common::run_results(dir, "target/strata/run_results.json")
        .iter()
        .map(|r| {
            (
                r["unique_id"].as_str().unwrap_or_default().to_string(),
                r[field].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn statuses(dir: &Path) -> Vec<(String, String)> {
    results(dir, "status")
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

/// The generator binary cargo builds beside the tests (`examples/gen_landing.rs`).
pub fn gen_landing() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let debug = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    debug.join("examples").join("gen_landing")
}

/// The example's models that recompute changed keys with the `restate` macro: their
/// `_op`, `_commit_ts` and `_change_seq` are stamped by the run that derived the row.
pub const RESTATED: [&str; 4] = [
    "fact_sales",
    "fact_payments",
    "dim_customer",
    "agg_daily_sales",
];

/// A table's rows, sorted; for restated models without the columns a run stamps.
fn stored_rows(db: &Path, table: &str) -> Vec<Vec<String>> {
    let columns = if RESTATED.contains(&table) {
        "* exclude (_op, _commit_ts, _change_seq)"
    } else {
        "*"
    };
    crate::common::query(
        db,
        &format!("select {columns} from main.{table} order by all"),
    )
}

/// The README's walk-through: a scheduled run with no new file changes nothing and runs no
/// query for the bookmarked models; after the next day lands, they read only its files; and
/// the warehouse then equals a full build over the same landing zone, table by table.
#[test]
fn the_next_day_reads_only_its_files_and_equals_a_full_build() {
    let dir = example();
    let db = dir.path().join("target/strata/retail_finance.duckdb");
    let built = strata(dir.path(), &["build"]);
    assert_eq!(built.code, 0, "{}", built.stderr);

    let cleaned = [
        "customers",
        "orders",
        "order_items",
        "payments",
        "fact_sales",
        "dim_customer",
        "agg_daily_sales",
    ];
    let before: Vec<_> = cleaned.iter().map(|t| stored_rows(&db, t)).collect();
    let quiet = strata(dir.path(), &["run"]);
    assert_eq!(quiet.code, 0, "{}", quiet.stderr);
    let bookmarked = results(dir.path(), "message")
        .into_iter()
        .filter(|(id, _)| {
            id.contains(".customers")
                || id.contains(".orders")
                || id.contains(".fact_sales")
                || id.contains(".dim_customer")
                || id.contains(".agg_daily_sales")
                || id.contains(".rejects")
        })
        .collect::<Vec<_>>();
    assert!(bookmarked.len() >= 6, "{bookmarked:?}");
    assert!(
        bookmarked
            .iter()
            .all(|(_, message)| message == "NO NEW DATA"),
        "{bookmarked:?}"
    );
    // The staging views stand as this run would create them: none is re-created (a view
    // over landing files makes DuckDB list and sniff every file when it is created).
    let views: Vec<_> = results(dir.path(), "message")
        .into_iter()
        .filter(|(id, _)| id.contains(".stg_"))
        .collect();
    assert_eq!(views.len(), 6, "{views:?}");
    assert!(
        views.iter().all(|(_, message)| message == "VIEW UNCHANGED"),
        "{views:?}"
    );
    let after: Vec<_> = cleaned.iter().map(|t| stored_rows(&db, t)).collect();
    assert_eq!(before, after, "a run with no new file changed a table");

    let landed = std::process::Command::new(gen_landing())
        .args(["--out", "landing", "--next-day"])
        .current_dir(dir.path())
        .output()
        .expect("gen_landing runs");
    assert!(landed.status.success(), "{landed:?}");
    let day = strata(dir.path(), &["build"]);
    assert_eq!(day.code, 0, "{}", day.stderr);
    assert!(day.stderr.contains("ERROR=0 SKIP=0"), "{}", day.stderr);
    let compiled = std::fs::read_to_string(
        dir.path()
            .join("target/strata/compiled/retail_finance/models/cleaned/orders.sql"),
    )
    .expect("compiled orders");
    assert!(
        compiled.contains("20240705-061500000.parquet"),
        "{compiled}"
    );
    assert!(!compiled.contains("LOAD00000001"), "{compiled}");

    // The same landing zone, built from nothing.
    let full = example();
    std::fs::remove_dir_all(full.path().join("landing")).expect("remove landing");
    copy_tree(&dir.path().join("landing"), &full.path().join("landing"));
    let rebuilt = strata(full.path(), &["build"]);
    assert_eq!(rebuilt.code, 0, "{}", rebuilt.stderr);
    let full_db = full.path().join("target/strata/retail_finance.duckdb");
    for table in [
        "customers",
        "products",
        "stores",
        "orders",
        "order_items",
        "payments",
        "rejects",
        "dim_customer",
        "dim_product",
        "fact_sales",
        "fact_payments",
        "agg_daily_sales",
        "agg_monthly_sales",
    ] {
        assert_eq!(
            stored_rows(&db, table),
            stored_rows(&full_db, table),
            "`{table}` after the daily runs differs from a full build"
        );
    }
}

/// `gen_landing --next-day` replays the shop to write exactly the day a longer generation
/// would have written: the same files, byte for byte.
#[test]
fn landing_the_next_day_writes_what_generating_all_days_writes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(gen_landing())
            .args(args)
            .current_dir(dir.path())
            .output()
            .expect("gen_landing runs");
        assert!(out.status.success(), "{out:?}");
    };
    run(&["--out", "stepwise", "--orders", "400", "--days", "2"]);
    run(&["--out", "stepwise", "--next-day"]);
    run(&["--out", "at_once", "--orders", "400", "--days", "3"]);
    let files = |root: &str| -> Vec<(PathBuf, Vec<u8>)> {
        crate::common::files_under(&dir.path().join(root))
            .into_iter()
            .map(|path| {
                let bytes = std::fs::read(dir.path().join(root).join(&path)).expect("read");
                (path, bytes)
            })
            .collect()
    };
    let stepwise = files("stepwise");
    assert!(stepwise.len() > 15, "{:?}", stepwise.len());
    assert_eq!(stepwise, files("at_once"));
}

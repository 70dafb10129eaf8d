//! Where DDL is not transactional, a table is built aside and swapped in by renames with a
//! backup. These tests run a build on DuckDB seen as such a warehouse (`TestWarehouse`), make
//! every statement of it fail in turn, and stop it dead after every statement in turn: the
//! table is never lost, and the next run completes and leaves nothing behind.

use std::path::Path;

use crate::common::{project, query};
use crate::library::{build, build_only, database, non_transactional};

/// A table, a CDC model (its table and its tombstones swap together) and a view over both.
const FILES: &[(&str, &str)] = &[
    ("project.yml", "name: shop\n"),
    (
        "models/t.sql",
        "{{ config(materialized='table') }}\nselect {{ var('n') }} as n\n",
    ),
    (
        "models/c.sql",
        "{{ config(materialized='incremental', incremental_strategy='cdc', unique_key='id') }}\nselect 1 as id, 'I' as _op, timestamp '2024-01-01' as _commit_ts, {{ var('n') }} as n\nunion all select 2, 'D', timestamp '2024-01-01', 0\n",
    ),
    ("models/v.sql", "select t.n from {{ ref('t') }} t join {{ ref('c') }} c on c.n = t.n\n"),
];

fn n(value: i64) -> Vec<(&'static str, serde_json::Value)> {
    vec![("n", serde_json::json!(value))]
}

/// Every relation of the project's schemas, sorted.
fn relations(db: &Path) -> Vec<String> {
    query(
        db,
        "select table_schema || '.' || table_name from information_schema.tables order by 1",
    )
    .into_iter()
    .map(|r| r[0].clone())
    .collect()
}

/// The value a table holds now: `Some(n)`, or `None` when it does not exist.
fn value(db: &Path, table: &str) -> Option<String> {
    let exists = query(
        db,
        &format!("select count(*) from information_schema.tables where table_schema = 'main' and table_name = '{table}'"),
    );
    (exists[0][0] == "1")
        .then(|| query(db, &format!("select n from main.{table} where n <> 0"))[0][0].clone())
}

/// The values the table's backups hold (a killed swap leaves at most one).
fn backups(db: &Path, table: &str) -> Vec<String> {
    relations(db)
        .into_iter()
        .filter(|r| r.starts_with(&format!("main.{table}__strata_backup_")))
        .map(|r| query(db, &format!("select n from {r} where n <> 0"))[0][0].clone())
        .collect()
}

/// After a failed or killed build, each table holds the old or the new value, or — killed
/// between the two renames — its backup holds the old one.
fn assert_not_lost(db: &Path, what: &str) {
    for table in ["t", "c"] {
        match value(db, table) {
            Some(v) => assert!(v == "1" || v == "2", "{what}: `{table}` holds {v}"),
            None => assert_eq!(
                backups(db, table),
                ["1"],
                "{what}: `{table}` is missing and no backup holds it: {:?}",
                relations(db)
            ),
        }
    }
}

/// The next run completes and leaves only the models and strata's two state tables.
fn assert_repaired(dir: &Path, what: &str) {
    let next = build(dir, non_transactional(), |w| w, &n(2), true);
    assert!(
        next.ok(),
        "{what}: the next run failed: {:?} {:?}",
        next.stopped,
        next.results
    );
    let db = database(dir);
    assert_eq!(value(&db, "t").as_deref(), Some("2"), "{what}");
    assert_eq!(value(&db, "c").as_deref(), Some("2"), "{what}");
    assert_eq!(
        relations(&db),
        [
            "main.c",
            "main.t",
            "main.v",
            "main_strata.cdc__main__c",
            "main_strata.strata_batches",
            "main_strata.strata_files",
            "main_strata.strata_views"
        ],
        "{what}: stray relations"
    );
}

/// A project built once with `n = 1`, copied for each case.
fn base() -> tempfile::TempDir {
    let dir = project(FILES);
    let first = build(dir.path(), non_transactional(), |w| w, &n(1), false);
    assert!(first.ok(), "{:?} {:?}", first.stopped, first.results);
    dir
}

fn copy_of(base: &Path) -> tempfile::TempDir {
    let dir = project(FILES);
    std::fs::create_dir_all(dir.path().join("target")).unwrap();
    std::fs::copy(database(base), database(dir.path())).unwrap();
    dir
}

#[test]
fn no_failed_statement_of_a_non_transactional_swap_loses_a_table() {
    let base = base();
    // How many statements the rebuild takes.
    let probe = copy_of(base.path());
    let clean = build(probe.path(), non_transactional(), |w| w, &n(2), true);
    assert!(clean.ok(), "{:?}", clean.stopped);
    let total = clean.log.len();
    assert!(
        clean.log.iter().any(|s| s.contains("__strata_backup_")),
        "the rebuild did not swap by renames: {:#?}",
        clean.log
    );
    for at in 1..=total {
        let dir = copy_of(base.path());
        let failed = build(
            dir.path(),
            non_transactional(),
            |w| w.failing_at(at),
            &n(2),
            true,
        );
        let what = format!("statement {at} of {total} failed ({})", clean.log[at - 1]);
        // Dropping a backup after the swap is clean-up: its failure is a warning. So is one to
        // mark the views' fingerprints in flight: the views are then re-created next time.
        let warned = failed.results.iter().any(|r| !r.warnings.is_empty());
        let statement = &clean.log[at - 1];
        let mark = statement.contains("\"relation_name\" = ''")
            || statement.contains("values ('', '', ''");
        assert!(
            !failed.ok() || warned || mark,
            "{what}: the build did not notice"
        );
        let db = database(dir.path());
        // A failure is undone at once: no table is even moved aside.
        for table in ["t", "c"] {
            let v = value(&db, table);
            assert!(
                matches!(v.as_deref(), Some("1") | Some("2")),
                "{what}: `{table}` is {v:?}: {:?}",
                relations(&db)
            );
        }
        assert_repaired(dir.path(), &what);
    }
}

#[test]
fn a_run_killed_between_any_two_statements_loses_no_table() {
    let base = base();
    let probe = copy_of(base.path());
    let clean = build(probe.path(), non_transactional(), |w| w, &n(2), true);
    assert!(clean.ok(), "{:?}", clean.stopped);
    let total = clean.log.len();
    let mut window = 0;
    for after in 0..total {
        let dir = copy_of(base.path());
        let _ = build(
            dir.path(),
            non_transactional(),
            |w| w.killed_after(after),
            &n(2),
            true,
        );
        let what = format!("killed after statement {after} of {total}");
        let db = database(dir.path());
        assert_not_lost(&db, &what);
        let lost: Vec<&str> = ["t", "c"]
            .into_iter()
            .filter(|t| value(&db, t).is_none())
            .collect();
        if !lost.is_empty() {
            window += 1;
            // A run that builds neither table restores them from their backups first.
            let other = build_only(dir.path(), non_transactional(), |w| w, &n(2), false, &["v"]);
            assert!(
                other.ok(),
                "{what}: {:?} {:?}",
                other.stopped,
                other.results
            );
            for table in lost {
                assert_eq!(
                    value(&db, table).as_deref(),
                    Some("1"),
                    "{what}: `{table}` was not restored"
                );
            }
        }
        assert_repaired(dir.path(), &what);
    }
    // The kills between the renames did leave a table only in its backup, and it was restored.
    assert!(window > 0, "no kill fell between the renames");
}

//! strata's own state lives in `<schema>_strata`: earlier versions' tables beside the models
//! are moved there on the next run, and a warehouse where each write is slow gets its state
//! written in one batch per table as the run ends.

use crate::common::{project, query, strata};
use crate::library::{build, database};

const FILES: &[(&str, &str)] = &[
    ("project.yml", "name: shop\n"),
    ("models/stg.sql", "select 1 as id\n"),
    ("models/stg_two.sql", "select 2 as id\n"),
    (
        "models/c.sql",
        "{{ config(materialized='incremental', incremental_strategy='cdc', unique_key='id') }}\nselect 1 as id, 'I' as _op, timestamp '2024-01-01' as _commit_ts\nunion all select 2, 'D', timestamp '2024-01-02'\n",
    ),
    (
        "models/sources.yml",
        "version: 2\nsources:\n  - name: shop\n    tables:\n      - name: orders\n        external: {location: 'landing/orders/*.csv', format: csv}\n",
    ),
    (
        "models/loaded.sql",
        "{{ config(materialized='incremental', bookmark='files') }}\nselect id, _source_file from {{ source('shop', 'orders') }}\n",
    ),
    ("landing/orders/LOAD00000001.csv", "id\n1\n2\n"),
    ("landing/orders/20240702-000000000.csv", "id\n3\n"),
];

fn lines(stderr: &str, marker: &str) -> usize {
    stderr.lines().filter(|l| l.contains(marker)).count()
}

#[test]
fn state_an_earlier_version_kept_beside_the_models_moves_into_the_state_schema() {
    let dir = project(FILES);
    let first = strata(dir.path(), &["build"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    // Put the state back where earlier versions kept it, in their tables' shapes.
    let db = dir.path().join("target/shop.duckdb");
    let connection = duckdb::Connection::open(&db).unwrap();
    connection
        .execute_batch(
            "create table main.strata__views as select relation_name as view_name, fingerprint, recorded_at from main_strata.strata_views;
             create table main.loaded__strata_files as select source_name, table_name, file_path, file_size, recorded_at from main_strata.strata_files where relation_name = 'loaded';
             create table main.c__strata_cdc as select * from main_strata.cdc__main__c;
             drop schema main_strata cascade;",
        )
        .unwrap();
    drop(connection);

    let next = strata(dir.path(), &["build"]);
    assert_eq!(next.code, 0, "{}", next.stderr);
    for what in [
        "moved the view fingerprints of schema `main`",
        "moved the file bookmarks of `main.loaded`",
        "moved the CDC tombstones of `main.c`",
    ] {
        assert!(next.stderr.contains(what), "{what}: {}", next.stderr);
    }
    // What was recorded still counts: the views stand, the files were read.
    assert_eq!(lines(&next.stderr, "VIEW UNCHANGED"), 2, "{}", next.stderr);
    assert!(
        next.stderr.contains("OK loaded [NO NEW DATA"),
        "{}",
        next.stderr
    );
    assert_eq!(
        query(
            &db,
            "select table_schema || '.' || table_name from information_schema.tables order by 1"
        ),
        [
            ["main.c"],
            ["main.loaded"],
            ["main.stg"],
            ["main.stg_two"],
            ["main_strata.cdc__main__c"],
            ["main_strata.strata_batches"],
            ["main_strata.strata_files"],
            ["main_strata.strata_views"],
        ]
    );
    // The deleted key's tombstone came along.
    assert_eq!(
        query(&db, "select id from main_strata.cdc__main__c"),
        [["2"]]
    );
}

#[test]
fn where_writes_are_slow_state_is_written_once_per_table_as_the_run_ends() {
    let dir = project(FILES);
    let batching = || {
        let mut flavour = strata::adapter::Adjusted::new(strata::adapter::embedded_flavour());
        flavour.capabilities.batch_state_writes = true;
        flavour
    };
    let first = build(dir.path(), batching(), |w| w, &[], false);
    assert!(first.ok(), "{:?} {:?}", first.stopped, first.results);
    let writes = |table: &str| {
        first
            .log
            .iter()
            .filter(|s| {
                s.contains(&format!("\"main_strata\".\"{table}\"")) && !s.starts_with("create")
            })
            .cloned()
            .collect::<Vec<_>>()
    };
    // Two views and one bookmarked model: one delete and one insert per table, at the end;
    // the views' behind an in-flight mark set before any view is built and cleared with them.
    let mark =
        |s: &String| s.contains("\"relation_name\" = ''") || s.contains("values ('', '', ''");
    let views = writes("strata_views");
    assert_eq!(views.iter().filter(|s| !mark(s)).count(), 2, "{views:#?}");
    assert!(
        mark(&views[0]) && mark(&views[views.len() - 1]),
        "{views:#?}"
    );
    assert_eq!(
        writes("strata_files").len(),
        2,
        "{:#?}",
        writes("strata_files")
    );
    let last: Vec<&String> = first.log.iter().rev().take(4).collect();
    assert!(
        last.iter().all(|s| s.contains("\"main_strata\".\"strata_")),
        "the state is not written last: {last:#?}"
    );
    let db = database(dir.path());
    assert_eq!(
        query(&db, "select count(*) from main_strata.strata_views"),
        [["2"]]
    );
    assert_eq!(
        query(&db, "select count(*) from main_strata.strata_files"),
        [["2"]]
    );
    let next = build(dir.path(), batching(), |w| w, &[], false);
    assert!(next.ok(), "{:?}", next.stopped);
    let messages: Vec<&str> = next.results.iter().map(|r| r.message.as_str()).collect();
    assert_eq!(
        messages.iter().filter(|m| **m == "VIEW UNCHANGED").count(),
        2,
        "{messages:?}"
    );
    assert!(messages.contains(&"NO NEW DATA"), "{messages:?}");
}

/// A run killed after re-creating a view but before writing its fingerprint leaves a mark:
/// the next run trusts no fingerprint, so a view whose SQL went back to what was recorded is
/// re-created rather than left with the killed run's SQL.
#[test]
fn a_run_killed_before_its_fingerprints_are_written_leaves_no_view_trusted() {
    let dir = project(FILES);
    let plain = || strata::adapter::Adjusted::new(strata::adapter::embedded_flavour());
    let first = build(dir.path(), plain(), |w| w, &[], false);
    assert!(first.ok(), "{:?}", first.stopped);
    std::fs::write(dir.path().join("models/stg.sql"), "select 10 as id\n").unwrap();
    // Where the fingerprints are written, in a run that is not killed (on a copy).
    let copy = project(FILES);
    std::fs::create_dir_all(copy.path().join("target")).unwrap();
    std::fs::copy(database(dir.path()), database(copy.path())).unwrap();
    std::fs::write(copy.path().join("models/stg.sql"), "select 10 as id\n").unwrap();
    let probe = build(copy.path(), plain(), |w| w, &[], false);
    let at = probe
        .log
        .iter()
        .position(|s| s.starts_with("delete from \"shop\".\"main_strata\".\"strata_views\" where (\"relation_database\" = 'shop'"))
        .expect("the fingerprints are written");
    let killed = build(dir.path(), plain(), |w| w.killed_after(at), &[], false);
    assert!(!killed.ok());
    let db = database(dir.path());
    assert_eq!(
        query(&db, "select id from main.stg"),
        [["10"]],
        "the view was re-created"
    );
    // Back to the SQL the recorded fingerprint describes: the view must still be re-created.
    std::fs::write(dir.path().join("models/stg.sql"), "select 1 as id\n").unwrap();
    let next = build(dir.path(), plain(), |w| w, &[], false);
    assert!(next.ok(), "{:?}", next.stopped);
    assert_eq!(query(&db, "select id from main.stg"), [["1"]]);
    let messages: Vec<&str> = next.results.iter().map(|r| r.message.as_str()).collect();
    assert!(!messages.contains(&"VIEW UNCHANGED"), "{messages:?}");
    // And once written again, fingerprints are trusted.
    let again = build(dir.path(), plain(), |w| w, &[], false);
    let messages: Vec<&str> = again.results.iter().map(|r| r.message.as_str()).collect();
    assert_eq!(
        messages.iter().filter(|m| **m == "VIEW UNCHANGED").count(),
        2,
        "{messages:?}"
    );
}

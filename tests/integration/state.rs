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
    // Two views and one bookmarked model: one delete and one insert per table, at the end.
    assert_eq!(
        writes("strata_views").len(),
        2,
        "{:#?}",
        writes("strata_views")
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

//! Landing files and file bookmarks: a model with `bookmark: files` reads each landing file
//! once, through the views between it and the files; its bookmarks commit with its rows; a run
//! with nothing new runs no query; `--full-refresh` forgets them; and, over many random
//! sequences of CDC files, incremental runs give the table a full refresh gives.

use crate::common::{project, query, strata};
use crate::on_every_warehouse;
use crate::warehouse::{rows, Kind, Warehouse};

const PROJECT: &str = "name: shop\nmodels:\n  shop:\n    +materialized: view\n";

const SOURCES: &str = "version: 2\nsources:\n  - name: landing\n    tables:\n      - name: orders\n        external: {location: 'landing/orders/*.csv', format: csv}\n";

/// A typed staging view over the files, and an append model that bookmarks them.
fn files(extra_config: &str) -> Vec<(&'static str, String)> {
    vec![
        ("models/sources.yml", SOURCES.to_string()),
        (
            "models/stg_orders.sql",
            "select cast(id as integer) as id, cast(amount as integer) as amount, _source_file from {{ source('landing', 'orders') }}\n".to_string(),
        ),
        (
            "models/loaded.sql",
            format!("{{{{ config(materialized='incremental', bookmark='files'{extra_config}) }}}}\nselect id, amount, _source_file from {{{{ ref('stg_orders') }}}}\n"),
        ),
        (
            "landing/orders/LOAD00000001.csv",
            "id,amount\n1,10\n2,20\n".to_string(),
        ),
    ]
}

fn warehouse(kind: Kind, key: &str, extra_config: &str) -> Option<Warehouse> {
    let files = files(extra_config);
    let borrowed: Vec<(&str, &str)> = files.iter().map(|(p, c)| (*p, c.as_str())).collect();
    Warehouse::new(kind, key, PROJECT, &borrowed)
}

on_every_warehouse!(
    a_bookmarked_model_reads_each_landing_file_once,
    bookmarks_commit_with_the_rows_they_describe,
);

fn a_bookmarked_model_reads_each_landing_file_once(kind: Kind) {
    let Some(w) = warehouse(kind, "bookmark_once", "") else {
        return;
    };
    w.build_ok(&[]);
    let loaded = "select id, amount, _source_file from {s}.loaded order by id";
    assert_eq!(
        w.query(loaded),
        rows(&[
            &["1", "10", "landing/orders/LOAD00000001.csv"],
            &["2", "20", "landing/orders/LOAD00000001.csv"]
        ])
    );
    let recorded = "select file_path from {s}_strata.strata_files where relation_name = 'loaded' order by file_path";
    assert_eq!(
        w.query(recorded),
        rows(&[&["landing/orders/LOAD00000001.csv"]])
    );

    // The next day's file: only it is read (an append of both files would repeat 1 and 2).
    w.write("landing/orders/20240702-061500000.csv", "id,amount\n3,30\n");
    w.build_ok(&[]);
    assert_eq!(
        w.query("select id from {s}.loaded order by id"),
        rows(&[&["1"], &["2"], &["3"]])
    );
    let compiled = std::fs::read_to_string(w.path().join("target/compiled/shop/models/loaded.sql"))
        .expect("compiled SQL");
    assert!(compiled.contains("20240702-061500000.csv"), "{compiled}");
    assert!(!compiled.contains("LOAD00000001.csv"), "{compiled}");
    assert_eq!(
        w.query(recorded),
        rows(&[
            &["landing/orders/20240702-061500000.csv"],
            &["landing/orders/LOAD00000001.csv"]
        ])
    );
    // The staging view itself still reads every file.
    assert_eq!(
        w.query("select count(*) from {s}.stg_orders"),
        rows(&[&["3"]])
    );

    // Nothing new: the model runs no query and reports it.
    let quiet = w.build_ok(&[]);
    assert!(quiet.contains("NO NEW DATA"), "{quiet}");
    assert_eq!(w.query("select count(*) from {s}.loaded"), rows(&[&["3"]]));

    // A full refresh forgets the bookmarks: every file is read once, and recorded.
    w.build_ok(&["--full-refresh"]);
    assert_eq!(
        w.query("select id from {s}.loaded order by id"),
        rows(&[&["1"], &["2"], &["3"]])
    );
    assert_eq!(w.query(recorded).len(), 2);
}

fn bookmarks_commit_with_the_rows_they_describe(kind: Kind) {
    // The post hook runs in the write's transaction, after the bookmarks: when it fails, the
    // rows and the bookmarks of the new file roll back together.
    let hook = ", post_hook=\"{% if var('fail', false) %}select * from no_such_table{% endif %}\"";
    let Some(w) = warehouse(kind, "bookmark_commit", hook) else {
        return;
    };
    w.build_ok(&[]);
    w.write("landing/orders/20240702-061500000.csv", "id,amount\n3,30\n");
    let failed = w.run(&["build", "--vars", "{fail: true}"]);
    assert_eq!(failed.code, 1, "{}", failed.stderr);
    assert_eq!(w.query("select count(*) from {s}.loaded"), rows(&[&["2"]]));
    assert_eq!(
        w.query("select count(*) from {s}_strata.strata_files where relation_name = 'loaded'"),
        rows(&[&["1"]])
    );
    w.build_ok(&[]);
    assert_eq!(
        w.query("select id from {s}.loaded order by id"),
        rows(&[&["1"], &["2"], &["3"]])
    );
}

/// PostgreSQL does not read local files: strata stages them into the source's table by COPY,
/// loading each file once, widening the table when a file brings a column, and replacing the
/// rows of a file that changed.
#[test]
fn postgres_stages_landing_files_into_the_source_table() {
    let Some(w) = warehouse(Kind::Postgres, "bookmark_stage", "") else {
        return;
    };
    let first = w.build_ok(&[]);
    assert!(first.contains("staged landing.orders into"), "{first}");
    let raw = "select id, amount, _source_file from landing.orders order by id, _source_file";
    assert_eq!(
        w.query(raw),
        rows(&[
            &["1", "10", "landing/orders/LOAD00000001.csv"],
            &["2", "20", "landing/orders/LOAD00000001.csv"]
        ])
    );

    // A later file with a column the first lacked.
    w.write(
        "landing/orders/20240702-061500000.csv",
        "id,amount,note\n3,30,late\n",
    );
    w.build_ok(&[]);
    assert_eq!(
        w.query("select id, coalesce(note, '-') from landing.orders order by id"),
        rows(&[&["1", "-"], &["2", "-"], &["3", "late"]])
    );
    assert_eq!(
        w.query("select id from {s}.loaded order by id"),
        rows(&[&["1"], &["2"], &["3"]])
    );

    // Nothing new: nothing is loaded again.
    let quiet = w.build_ok(&[]);
    assert!(quiet.contains("NO NEW FILES"), "{quiet}");
    assert_eq!(
        w.query("select count(*) from landing.orders"),
        rows(&[&["3"]])
    );

    // A rewritten file (a file is known by its path and size) replaces its rows, and the
    // bookmarked model reads it again, with a warning.
    w.write(
        "landing/orders/LOAD00000001.csv",
        "id,amount\n1,110\n2,220\n",
    );
    let again = w.build_ok(&[]);
    assert!(
        again.contains("changed since model `loaded` read it"),
        "{again}"
    );
    assert_eq!(
        w.query("select id, amount from landing.orders order by id"),
        rows(&[&["1", "110"], &["2", "220"], &["3", "30"]])
    );
}

/// A bookmarked model reads the views on its way to the files inlined, so it does not wait for
/// them: when building a view fails, the model still runs (and is not skipped).
#[test]
fn a_bookmarked_model_does_not_wait_for_the_views_it_inlines() {
    let mut all = files("");
    all.retain(|(p, _)| *p != "models/stg_orders.sql");
    all.push((
        "models/stg_orders.sql",
        "{{ config(pre_hook='select * from no_such_table') }}\nselect cast(id as integer) as id, cast(amount as integer) as amount, _source_file from {{ source('landing', 'orders') }}\n".to_string(),
    ));
    all.push(("project.yml", PROJECT.to_string()));
    let borrowed: Vec<(&str, &str)> = all.iter().map(|(p, c)| (*p, c.as_str())).collect();
    let dir = project(&borrowed);
    let run = strata(dir.path(), &["run"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("ERROR stg_orders"), "{}", run.stderr);
    assert!(
        run.stderr.contains("PASS=1 WARN=0 ERROR=1 SKIP=0"),
        "{}",
        run.stderr
    );
    assert_eq!(
        query(
            &dir.path().join("target/shop.duckdb"),
            "select count(*) from main.loaded"
        ),
        rows(&[&["2"]])
    );
}

#[test]
fn bookmark_mistakes_name_the_file_and_stop_before_running() {
    let cases: [(&str, &str, &str, &str); 4] = [
        (
            "models/loaded.sql",
            "{{ config(materialized='table', bookmark='files') }}\nselect * from {{ ref('stg_orders') }}\n",
            "`bookmark: files` needs `materialized: incremental`, found `table`",
            "models/loaded.sql",
        ),
        (
            "models/loaded.sql",
            "{{ config(materialized='incremental', bookmark='files') }}\nselect 1 as id\n",
            "model `loaded` has `bookmark: files` but reads no external source",
            "models/loaded.sql",
        ),
        (
            "models/sources.yml",
            "version: 2\nsources:\n  - name: landing\n    tables:\n      - name: orders\n        external: {location: 'landing/orders/*.csv', format: xlsx}\n",
            "external source `landing.orders`: unknown file format `xlsx`",
            "models/sources.yml",
        ),
        (
            "models/sources.yml",
            "version: 2\nsources:\n  - name: landing\n    tables:\n      - name: orders\n        external: {location: 'landing/none/*.csv', format: csv}\n",
            "external source `landing.orders` has no files matching `landing/none/*.csv`",
            "models/loaded.sql",
        ),
    ];
    for (path, contents, message, at) in cases {
        let mut all = files("");
        all.retain(|(p, _)| *p != path);
        all.push((path, contents.to_string()));
        all.push(("project.yml", PROJECT.to_string()));
        let borrowed: Vec<(&str, &str)> = all.iter().map(|(p, c)| (*p, c.as_str())).collect();
        let dir = project(&borrowed);
        let run = strata(dir.path(), &["build"]);
        assert_eq!(run.code, 1, "{message}: {}", run.stderr);
        assert!(run.stderr.contains(message), "{message}: {}", run.stderr);
        assert!(run.stderr.contains(at), "{at}: {}", run.stderr);
        assert!(
            !run.stderr.contains(" nodes with "),
            "nothing may run: {}",
            run.stderr
        );
    }
}

/// A tiny deterministic generator, so every sequence is reproducible from its seed.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % bound
    }
}

/// Issue 5's invariant: for 50 seeded random sequences of CDC files (inserts, updates, deletes,
/// re-inserts of deleted keys, rows delivered twice, and files carrying changes older than ones
/// already applied), a `cdc` model bookmarking the files, built after each file lands, equals a
/// full refresh over all the files, row for row.
#[test]
fn cdc_over_landing_files_equals_a_full_refresh_for_random_sequences() {
    let model = |name: &str| {
        (
            format!("models/{name}.sql"),
            "{{ config(materialized='incremental', incremental_strategy='cdc', unique_key='id', sequence_column='_seq', bookmark='files') }}\nselect id, name, _op, _commit_ts, _seq from {{ ref('stg_changes') }}\n".to_string(),
        )
    };
    let fixed = [
        (
            "models/sources.yml".to_string(),
            "version: 2\nsources:\n  - name: landing\n    tables:\n      - name: changes\n        external: {location: 'landing/changes/*.csv', format: csv}\n".to_string(),
        ),
        (
            "models/stg_changes.sql".to_string(),
            "select cast(id as integer) as id, cast(name as varchar) as name, cast(op as varchar) as _op, cast(commit_ts as integer) as _commit_ts, cast(seq as integer) as _seq from {{ source('landing', 'changes') }}\n".to_string(),
        ),
        model("incremental"),
        model("full"),
        ("project.yml".to_string(), PROJECT.to_string()),
    ];
    let header = "id,name,op,commit_ts,seq\n";
    for sequence in 0..50u64 {
        let mut rng = Lcg(sequence * 7919 + 1);
        // Changes in commit order (several may share a commit, told apart by their sequence),
        // cut into files landing in a shuffled order, so a later file may carry older changes.
        let mut changes: Vec<String> = Vec::new();
        let mut commit = 0;
        for seq in 1..=(10 + rng.next(25)) {
            if rng.next(3) > 0 {
                commit += 1;
            }
            let id = rng.next(6);
            let op = ["I", "U", "U", "D"][rng.next(4) as usize];
            let row = format!("{id},n{seq},{op},{commit},{seq}\n");
            if rng.next(5) == 0 {
                changes.push(row.clone()); // delivered twice
            }
            changes.push(row);
        }
        let mut files: Vec<String> = changes
            .chunks(1 + rng.next(6) as usize)
            .map(|c| c.concat())
            .collect();
        for i in (1..files.len()).rev() {
            if rng.next(3) == 0 {
                let j = rng.next(i as u64 + 1) as usize;
                files.swap(i, j);
            }
        }
        let borrowed: Vec<(&str, &str)> = fixed
            .iter()
            .map(|(p, c)| (p.as_str(), c.as_str()))
            .collect();
        let dir = project(&borrowed);
        let landing = dir.path().join("landing/changes");
        std::fs::create_dir_all(&landing).unwrap();
        let run = |args: &[&str]| {
            let out = strata(dir.path(), args);
            assert_eq!(out.code, 0, "sequence {sequence}: {}", out.stderr);
        };
        for (i, file) in files.iter().enumerate() {
            std::fs::write(
                landing.join(format!("{i:04}.csv")),
                format!("{header}{file}"),
            )
            .unwrap();
            run(&["run", "--select", "incremental"]);
        }
        run(&["run", "--select", "full", "--full-refresh"]);
        let db = dir.path().join("target/shop.duckdb");
        let incremental = query(&db, "select id, name from main.incremental order by id");
        let full = query(&db, "select id, name from main.full order by id");
        assert_eq!(incremental, full, "sequence {sequence}: files {files:?}");
    }
}

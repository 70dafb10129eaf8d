//! `strata run` / `seed` / `build` on embedded DuckDB: what lands in the warehouse, and that a
//! failure leaves the previous tables intact.

use crate::common::{project, query, strata};

const PROJECT: &str = "name: shop\nmodels:\n  shop:\n    +materialized: table\n";

#[test]
fn build_loads_seeds_and_models_in_order() {
    let dir = project(&[
        ("project.yml", PROJECT),
        ("seeds/raw_orders.csv", "id,amount,note\n1,10,\"a, quoted\"\n2,20,\n3,30,x\n"),
        ("models/stg_orders.sql", "{{ config(materialized='view') }}\nselect id, amount, note from {{ ref('raw_orders') }}\n"),
        ("models/big_orders.sql", "select id, amount from {{ ref('stg_orders') }} where amount >= 20\n"),
    ]);
    let run = strata(dir.path(), &["build"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("PASS=3 WARN=0 ERROR=0 SKIP=0"),
        "{}",
        run.stderr
    );
    let db = dir.path().join("target/shop.duckdb");
    assert_eq!(
        query(&db, "select id, amount from main.big_orders order by id"),
        vec![
            vec!["2".to_string(), "20".to_string()],
            vec!["3".to_string(), "30".to_string()]
        ]
    );
    assert_eq!(
        query(&db, "select note from main.raw_orders order by id"),
        vec![
            vec!["a, quoted".to_string()],
            vec!["NULL".to_string()],
            vec!["x".to_string()]
        ]
    );
    assert_eq!(
        query(
            &db,
            "select table_type from information_schema.tables where table_name = 'stg_orders'"
        ),
        vec![vec!["VIEW".to_string()]]
    );
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("target/run_results.json")).unwrap())
            .unwrap();
    assert_eq!(results["results"].as_array().unwrap().len(), 3);
}

#[test]
fn a_failing_model_keeps_the_previous_table_and_skips_descendants() {
    let dir = project(&[
        ("project.yml", PROJECT),
        ("models/a.sql", "select 1 as id\n"),
        ("models/b.sql", "select id from {{ ref('a') }}\n"),
        ("models/c.sql", "select id from {{ ref('b') }}\n"),
    ]);
    assert_eq!(strata(dir.path(), &["run"]).code, 0);
    let db = dir.path().join("target/shop.duckdb");
    // A runtime error (the column does not exist), not a compile error.
    std::fs::write(
        dir.path().join("models/b.sql"),
        "select no_such_column from {{ ref('a') }}\n",
    )
    .unwrap();
    let run = strata(dir.path(), &["run"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("PASS=1 WARN=0 ERROR=1 SKIP=1"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("no_such_column"), "{}", run.stderr);
    assert_eq!(
        query(&db, "select id from main.b"),
        vec![vec!["1".to_string()]],
        "the old b is intact"
    );
    let leftovers = query(
        &db,
        "select count(*) from information_schema.tables where table_name like '%__strata_%'",
    );
    assert_eq!(
        leftovers,
        vec![vec!["0".to_string()]],
        "no staging tables are left behind"
    );
}

#[test]
fn incremental_merge_updates_by_key_and_rejects_duplicate_keys() {
    let model = "{{ config(materialized='incremental', unique_key='id') }}\nselect * from {{ ref('src') }}\n{% if is_incremental() %}where updated > (select max(updated) from {{ this }}){% endif %}\n";
    let dir = project(&[
        ("project.yml", PROJECT),
        ("seeds/src.csv", "id,value,updated\n1,a,1\n2,b,1\n"),
        ("models/inc.sql", model),
    ]);
    assert_eq!(strata(dir.path(), &["build"]).code, 0);
    std::fs::write(
        dir.path().join("seeds/src.csv"),
        "id,value,updated\n1,a,1\n2,B,2\n3,c,2\n",
    )
    .unwrap();
    let run = strata(dir.path(), &["build"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("INSERT 2"),
        "only the new rows are written: {}",
        run.stderr
    );
    let db = dir.path().join("target/shop.duckdb");
    assert_eq!(
        query(&db, "select id, value from main.inc order by id"),
        vec![
            vec!["1".to_string(), "a".to_string()],
            vec!["2".to_string(), "B".to_string()],
            vec!["3".to_string(), "c".to_string()]
        ]
    );
    std::fs::write(
        dir.path().join("seeds/src.csv"),
        "id,value,updated\n4,d,3\n4,e,3\n",
    )
    .unwrap();
    let run = strata(dir.path(), &["build"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("repeat the unique key (id), e.g. id = 4"),
        "{}",
        run.stderr
    );
    assert_eq!(
        query(&db, "select count(*) from main.inc"),
        vec![vec!["3".to_string()]]
    );
    let run = strata(dir.path(), &["run", "--full-refresh", "--select", "inc"]);
    assert_eq!(
        run.code, 0,
        "a full refresh rebuilds from scratch: {}",
        run.stderr
    );
    assert_eq!(
        query(&db, "select count(*) from main.inc"),
        vec![vec!["2".to_string()]]
    );
}

#[test]
fn a_database_held_by_another_process_is_reported_as_locked() {
    let dir = project(&[
        ("project.yml", PROJECT),
        ("models/a.sql", "select 1 as id\n"),
    ]);
    std::fs::create_dir_all(dir.path().join("target")).unwrap();
    let db = dir.path().join("target/shop.duckdb");
    let _holder = duckdb::Connection::open(&db).expect("this test process holds the file");
    let run = strata(dir.path(), &["run"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("is locked by another run"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("hint: wait for the other strata"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_seed_value_that_does_not_fit_its_type_names_file_line_column_and_value() {
    let dir = project(&[
        (
            "project.yml",
            "name: shop\nseeds:\n  shop:\n    prices:\n      +column_types:\n        amount: integer\n",
        ),
        ("seeds/prices.csv", "id,amount\n1,10\n2,20\n"),
    ]);
    assert_eq!(strata(dir.path(), &["seed"]).code, 0);
    std::fs::write(
        dir.path().join("seeds/prices.csv"),
        "id,amount\n1,11\n2,abc\n3,30\n",
    )
    .unwrap();
    let run = strata(dir.path(), &["seed"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("seeds/prices.csv:3"), "{}", run.stderr);
    assert!(run.stderr.contains("column `amount`"), "{}", run.stderr);
    assert!(run.stderr.contains("value `abc`"), "{}", run.stderr);
    let db = dir.path().join("target/shop.duckdb");
    assert_eq!(
        query(&db, "select id, amount from main.prices order by id"),
        vec![
            vec!["1".to_string(), "10".to_string()],
            vec!["2".to_string(), "20".to_string()]
        ]
    );
}

#[test]
fn a_run_killed_mid_flight_leaves_consistent_tables_and_the_next_run_completes() {
    let dir = project(&[
        ("project.yml", PROJECT),
        ("models/quick.sql", "select 1 as id\n"),
        ("models/slow.sql", "select 1 as id\n"),
    ]);
    assert_eq!(strata(dir.path(), &["build"]).code, 0);
    // A query that runs for far longer than it takes to kill the process.
    std::fs::write(
        dir.path().join("models/slow.sql"),
        "select count(*) as id from range(200000) a, range(200000) b\n",
    )
    .unwrap();
    let running = crate::common::Running::until(
        dir.path(),
        &["build", "--select", "slow", "--threads", "1"],
        "START sql table model main.slow",
    );
    assert!(
        running.seen.contains("START sql table model main.slow"),
        "{}",
        running.seen
    );
    running.kill();
    let db = dir.path().join("target/shop.duckdb");
    // The previous table is intact.
    assert_eq!(
        query(&db, "select id from main.slow"),
        vec![vec!["1".to_string()]]
    );
    std::fs::write(dir.path().join("models/slow.sql"), "select 2 as id\n").unwrap();
    let next = strata(dir.path(), &["build"]);
    assert_eq!(next.code, 0, "{}", next.stderr);
    assert_eq!(
        query(&db, "select id from main.slow"),
        vec![vec!["2".to_string()]]
    );
    assert_eq!(
        query(
            &db,
            "select count(*) from information_schema.tables where table_name like '%__strata_%'"
        ),
        vec![vec!["0".to_string()]]
    );
}

#[test]
fn ctrl_c_cancels_the_running_query_and_leaves_no_half_built_table() {
    let dir = project(&[
        ("project.yml", PROJECT),
        ("models/slow.sql", "select 1 as id\n"),
    ]);
    assert_eq!(strata(dir.path(), &["build"]).code, 0);
    std::fs::write(
        dir.path().join("models/slow.sql"),
        "select count(*) as id from range(200000) a, range(200000) b\n",
    )
    .unwrap();
    let running = crate::common::Running::until(
        dir.path(),
        &["run", "--threads", "1"],
        "START sql table model main.slow",
    );
    let (code, seen) = running.interrupt();
    assert_eq!(code, Some(1), "{seen}");
    assert!(seen.contains("interrupted"), "{seen}");
    let db = dir.path().join("target/shop.duckdb");
    assert_eq!(
        query(&db, "select id from main.slow"),
        vec![vec!["1".to_string()]]
    );
    assert_eq!(
        query(
            &db,
            "select count(*) from information_schema.tables where table_name like '%strata%' and table_name not in ('strata_views', 'strata_files', 'strata_batches')"
        ),
        vec![vec!["0".to_string()]]
    );
}

#[test]
fn log_format_json_writes_one_event_per_node_start_and_finish() {
    let dir = project(&[
        ("project.yml", PROJECT),
        ("models/a.sql", "select 1 as id\n"),
        ("models/b.sql", "select id from {{ ref('a') }}\n"),
    ]);
    let run = strata(dir.path(), &["--log-format", "json", "build"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let events: Vec<serde_json::Value> = run
        .stderr
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}")))
        .collect();
    let finished: Vec<(&str, &str)> = events
        .iter()
        .filter(|e| e["event"] == "node_finished")
        .map(|e| {
            (
                e["unique_id"].as_str().unwrap_or_default(),
                e["status"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        finished,
        vec![("model.shop.a", "success"), ("model.shop.b", "success")]
    );
    assert_eq!(
        events.iter().filter(|e| e["event"] == "node_start").count(),
        2
    );
}

#[test]
fn external_sources_read_landing_files_directly_on_duckdb() {
    let dir = project(&[
        ("project.yml", "name: shop\nmodels:\n  shop:\n    +materialized: table\n"),
        (
            "models/sources.yml",
            "version: 2\nsources:\n  - name: landing\n    tables:\n      - name: orders\n        external: {location: 'landing/orders/*.parquet', format: parquet}\n      - name: customers\n        external: {location: 'landing/customers/*.csv', format: csv}\n",
        ),
        (
            "models/stg_orders.sql",
            "select order_id, amount, _source_file from {{ source('landing', 'orders') }}\n",
        ),
        (
            "models/stg_customers.sql",
            "select id, name from {{ source('landing', 'customers') }}\n",
        ),
        (
            "landing/customers/LOAD00000001.csv",
            "id,name\n1,\"Smith, Ann\"\n2,\"O\"\"Brien\"\n",
        ),
    ]);
    let folder = dir.path().join("landing/orders");
    std::fs::create_dir_all(&folder).unwrap();
    let writer = duckdb::Connection::open_in_memory().unwrap();
    for (file, rows) in [
        (
            "LOAD00000001.parquet",
            "select 1 as order_id, 10.5 as amount union all select 2, 3.0",
        ),
        (
            "20240102-120000000.parquet",
            "select 3 as order_id, 7.25 as amount",
        ),
    ] {
        writer
            .execute_batch(&format!(
                "copy ({rows}) to '{}' (format parquet)",
                folder.join(file).display()
            ))
            .unwrap();
    }
    let built = strata(dir.path(), &["build"]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let db = dir.path().join("target/shop.duckdb");
    assert_eq!(
        query(
            &db,
            "select order_id, regexp_extract(_source_file, '[^/]+$') from main.stg_orders order by order_id"
        ),
        vec![
            vec!["1".to_string(), "LOAD00000001.parquet".to_string()],
            vec!["2".to_string(), "LOAD00000001.parquet".to_string()],
            vec!["3".to_string(), "20240102-120000000.parquet".to_string()]
        ]
    );
    assert_eq!(
        query(&db, "select name from main.stg_customers order by id"),
        vec![vec!["Smith, Ann".to_string()], vec!["O\"Brien".to_string()]]
    );
}

#[test]
fn seeds_honour_delimiter_and_quote_config() {
    let dir = project(&[
        (
            "project.yml",
            "name: shop\nseeds:\n  shop:\n    prices:\n      +delimiter: \";\"\n      +quote: \"'\"\n",
        ),
        ("seeds/prices.csv", "id;label\n1;'a;b'\n2;\n"),
    ]);
    let run = strata(dir.path(), &["seed"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        query(
            &dir.path().join("target/shop.duckdb"),
            "select id, coalesce(label, 'NULL') from main.prices order by id"
        ),
        vec![
            vec!["1".to_string(), "a;b".to_string()],
            vec!["2".to_string(), "NULL".to_string()]
        ]
    );
}

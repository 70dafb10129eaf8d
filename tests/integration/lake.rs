//! The Trino and Athena adapters against the local stand-in (`tests/athena/`): a real Trino
//! (Iceberg and Hive catalogs over moto's Glue and S3) at 127.0.0.1:8090, and the Athena API
//! front at 127.0.0.1:4440 that forwards to it (with its control API for injected faults and
//! the events it saw). Tables are read back through Trino itself, not through strata. In CI a
//! missing stand-in fails the test; elsewhere the test prints why it skipped.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value as Json;

use crate::common::{strata_env, Run};

const TRINO: &str = "http://127.0.0.1:8090";
const FRONT: &str = "127.0.0.1:4440";

/// Runs one query on the stand-in's Trino with curl, following `nextUri`; rows as JSON.
pub fn trino(sql: &str) -> Result<Vec<Vec<Json>>, String> {
    let curl = |args: &[&str], body: Option<&str>| -> Result<Json, String> {
        let mut command = Command::new("curl");
        command
            .args(["-sS", "--max-time", "120", "-H", "X-Trino-User: tests"])
            .args(args);
        if let Some(body) = body {
            command.args(["--data-binary", body]);
        }
        let out = command.output().map_err(|e| format!("curl: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        serde_json::from_slice(&out.stdout)
            .map_err(|e| format!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
    };
    let mut page = curl(&["-X", "POST", &format!("{TRINO}/v1/statement")], Some(sql))?;
    let mut rows = Vec::new();
    loop {
        if let Some(data) = page["data"].as_array() {
            rows.extend(
                data.iter()
                    .map(|r| r.as_array().cloned().unwrap_or_default()),
            );
        }
        if let Some(error) = page.get("error") {
            return Err(format!("{}: {}", error["errorName"], error["message"]));
        }
        match page["nextUri"].as_str() {
            Some(next) => page = curl(&[next], None)?,
            None => return Ok(rows),
        }
    }
}

/// A query's single text column.
fn texts(sql: &str) -> Vec<String> {
    trino(sql)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .map(|r| match r.first() {
            Some(Json::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        })
        .collect()
}

/// Whether the stand-in answers; in CI its absence fails the test.
pub fn stand_in(test: &str) -> bool {
    match trino("select 1") {
        Ok(_) => true,
        Err(reason) => {
            if std::env::var_os("CI").is_some() {
                panic!("the Athena stand-in (tests/athena/start.sh) is required in CI: {reason}");
            }
            eprintln!("skipping {test}: no Trino at {TRINO} ({reason}); run tests/services.sh");
            false
        }
    }
}

/// One HTTP/1.1 request to the Athena front's control API; the status and the body.
fn http(method: &str, path: &str, body: &str) -> Result<(u16, String), String> {
    crate::common::http(FRONT, method, path, body)
}

/// Whether the Athena front answers; in CI its absence fails the test.
pub fn athena_front(test: &str) -> bool {
    match http("GET", "/_standin/health", "") {
        Ok((200, _)) => true,
        other => {
            let reason = format!("{other:?}");
            if std::env::var_os("CI").is_some() {
                panic!("the Athena stand-in (tests/athena/start.sh) is required in CI: {reason}");
            }
            eprintln!(
                "skipping {test}: no Athena front at {FRONT} ({reason}); run tests/services.sh"
            );
            false
        }
    }
}

/// The AWS settings that point strata's SDK clients at the stand-in.
pub fn aws_environment() -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", "standin".into()),
        ("AWS_SECRET_ACCESS_KEY", "standin".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ("AWS_ENDPOINT_URL_ATHENA", format!("http://{FRONT}")),
        ("AWS_ENDPOINT_URL_GLUE", format!("http://{FRONT}")),
        ("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:4567".into()),
    ]
}

pub fn run(dir: &Path, args: &[&str], extra: &[(&str, &str)]) -> Run {
    let mut env = aws_environment();
    env.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    strata_env(dir, args, &env)
}

/// Drops a schema and everything in it, so a test starts clean.
pub fn drop_schema(catalog: &str, schema: &str) {
    let exists = texts(&format!(
        "select schema_name from {catalog}.information_schema.schemata where schema_name = '{schema}'"
    ));
    if exists.is_empty() {
        return;
    }
    for (name, kind) in trino(&format!(
        "select table_name, table_type from {catalog}.information_schema.tables where table_schema = '{schema}'"
    ))
    .unwrap_or_default()
    .iter()
    .map(|r| (r[0].as_str().unwrap_or_default().to_string(), r[1].as_str().unwrap_or_default().to_string()))
    {
        let what = if kind == "VIEW" { "view" } else { "table" };
        let _ = trino(&format!("drop {what} if exists {catalog}.\"{schema}\".\"{name}\""));
    }
    let _ = trino(&format!("drop schema if exists {catalog}.\"{schema}\""));
}

/// Every column of `table` as comparable text, by the Trino column types: numbers as
/// decimal(38,6), timestamps to the second (`timestamp` formats it: Trino's and DuckDB's
/// functions differ), booleans as words, NULL as `∅`.
fn rows_sql(table: &str, columns: &[(String, String)], timestamp: fn(&str) -> String) -> String {
    let parts: Vec<String> = columns
        .iter()
        .map(|(name, data_type)| {
            let ty = data_type.to_lowercase();
            let column = format!("\"{name}\"");
            let value = if ["int", "decimal", "double", "real"]
                .iter()
                .any(|t| ty.contains(t))
            {
                format!("cast(cast({column} as decimal(38, 6)) as varchar)")
            } else if ty.starts_with("timestamp") {
                timestamp(&column)
            } else if ty == "boolean" {
                format!("case when {column} then 'true' when not {column} then 'false' end")
            } else {
                format!("cast({column} as varchar)")
            };
            format!("coalesce({value}, '∅')")
        })
        .collect();
    format!(
        "select {} as r from {table} order by 1",
        parts.join(" || '|' || ")
    )
}

fn trino_rows_sql(table: &str, columns: &[(String, String)]) -> String {
    rows_sql(table, columns, |c| {
        format!("format_datetime({c}, 'yyyy-MM-dd HH:mm:ss')")
    })
}

fn duck_rows_sql(table: &str, columns: &[(String, String)]) -> String {
    rows_sql(table, columns, |c| {
        format!("strftime({c}, '%Y-%m-%d %H:%M:%S')")
    })
}

/// The columns of a table on Trino, by name and type.
fn lake_columns(catalog: &str, schema: &str, table: &str) -> Vec<(String, String)> {
    trino(&format!(
        "select column_name, data_type from {catalog}.information_schema.columns where table_schema = '{schema}' and table_name = '{table}' order by ordinal_position"
    ))
    .unwrap_or_else(|e| panic!("columns of {table}: {e}"))
    .iter()
    .map(|r| {
        (
            r[0].as_str().unwrap_or_default().to_string(),
            r[1].as_str().unwrap_or_default().to_string(),
        )
    })
    .collect()
}

/// One table on Trino (`lake`, a relation or a subquery with its columns in `schema.table`)
/// equals one in DuckDB, row for row, over the columns `keep` allows.
fn assert_table_equal(
    catalog: &str,
    (schema, table): (&str, &str),
    lake: &str,
    duck: &Path,
    duck_table: &str,
    keep: impl Fn(&str) -> bool,
) {
    let columns: Vec<(String, String)> = lake_columns(catalog, schema, table)
        .into_iter()
        .filter(|(name, _)| keep(name))
        .collect();
    assert!(!columns.is_empty(), "no columns for {table}");
    let lake_rows = texts(&trino_rows_sql(lake, &columns));
    let duck_rows: Vec<String> = crate::common::query(duck, &duck_rows_sql(duck_table, &columns))
        .into_iter()
        .map(|r| r.join(""))
        .collect();
    assert_eq!(lake_rows, duck_rows, "table `{table}` differs");
}

/// Every model table and view of the example in `catalog.schema` equals DuckDB's, row for
/// row (run-stamped columns aside), and so do the file bookmarks.
pub fn assert_same_tables(catalog: &str, schema: &str, duck: &Path) {
    let tables = texts(&format!(
        "select table_name from {catalog}.information_schema.tables where table_schema = '{schema}' order by 1"
    ));
    assert!(tables.len() >= 20, "{tables:?}");
    let restated = |table: &str| {
        crate::example::RESTATED
            .iter()
            .any(|r| table.starts_with(r))
    };
    for table in &tables {
        // A snapshot's ids hash each engine's text of a timestamp (Trino's has microseconds).
        let keep = |column: &str| {
            column != "recorded_at"
                && column != "dbt_scd_id"
                && !(restated(table) && ["_op", "_commit_ts", "_change_seq"].contains(&column))
        };
        assert_table_equal(
            catalog,
            (schema, table),
            &format!("{catalog}.\"{schema}\".\"{table}\""),
            duck,
            &format!("main.\"{table}\""),
            keep,
        );
    }
    // The models' bookmarks; they name the relation by its database and schema, which differ.
    assert_table_equal(
        catalog,
        (&format!("{schema}_strata"), "strata_files"),
        &format!("(select * from {catalog}.\"{schema}_strata\".strata_files where relation_schema = '{schema}') as b"),
        duck,
        "(select * from main_strata.strata_files where relation_schema = 'main') as b",
        |column| !["recorded_at", "relation_database", "relation_schema"].contains(&column),
    );
}

/// Builds the example on DuckDB and on `target`, and compares; then lands the next day and
/// does it again.
fn example_equals_duckdb(target: &str, catalog: &str, schema: &str, env: &[(&str, &str)]) {
    let dir = crate::example::example();
    let build = |dir: &Path| {
        let on_duckdb = crate::common::strata(dir, &["build"]);
        assert_eq!(on_duckdb.code, 0, "{}", on_duckdb.stderr);
        let built = run(dir, &["build", "--target", target], env);
        assert_eq!(built.code, 0, "{target}: {}", built.stderr);
        assert!(
            built.stderr.contains("WARN=0 ERROR=0 SKIP=0"),
            "{target}: {}",
            built.stderr
        );
    };
    build(dir.path());
    let duck = dir.path().join("target/strata/retail_finance.duckdb");
    assert_same_tables(catalog, schema, &duck);
    let landed = Command::new(crate::example::gen_landing())
        .args(["--out", "landing", "--next-day"])
        .current_dir(dir.path())
        .output()
        .expect("gen_landing runs");
    assert!(landed.status.success(), "{landed:?}");
    build(dir.path());
    assert_same_tables(catalog, schema, &duck);
}

/// Both lake targets in one test: they share the stand-in's Glue catalog, and the example's
/// sources land in the one schema `shop`.
#[test]
fn the_example_builds_on_trino_and_athena_and_equals_duckdb() {
    if !stand_in("the_example_builds_on_trino_and_athena") {
        return;
    }
    let schema = format!("ex_trino_{}", std::process::id());
    drop_schema("iceberg", &schema);
    example_equals_duckdb(
        "trino",
        "iceberg",
        &schema,
        &[("STRATA_TRINO_SCHEMA", &schema)],
    );
    drop_schema("iceberg", &schema);
    drop_schema("iceberg", &format!("{schema}_strata"));
    if !athena_front("the_example_builds_on_athena") {
        return;
    }
    let schema = format!("ex_athena_{}", std::process::id());
    example_equals_duckdb(
        "athena",
        "awsdatacatalog",
        &schema,
        &[("STRATA_ATHENA_SCHEMA", &schema)],
    );
    drop_schema("awsdatacatalog", &schema);
    drop_schema("awsdatacatalog", &format!("{schema}_strata"));
}

/// The stand-in's events of `kind` (`query`, `call`, `stop`, `fault`) whose fields mention
/// `needle`.
fn events(kind: &str, needle: &str) -> Vec<Json> {
    let (_, body) = http("GET", "/_standin/events", "").expect("events");
    let all: Vec<Json> = serde_json::from_str(&body).expect("events are JSON");
    all.into_iter()
        .filter(|e| e["kind"] == kind)
        .filter(|e| {
            e.as_object().is_some_and(|fields| {
                fields.values().any(|v| match v {
                    Json::String(s) => s.contains(needle),
                    Json::Array(items) => items
                        .iter()
                        .any(|i| i.as_str().is_some_and(|s| s.contains(needle))),
                    _ => false,
                })
            })
        })
        .collect()
}

/// Injects a fault (`tests/athena/shared.py` documents the kinds).
fn inject(fault: Json) {
    let (status, body) = http("POST", "/_standin/faults", &fault.to_string()).expect("inject");
    assert_eq!(status, 200, "{body}");
}

/// A project with a DuckDB target and an Athena target writing to `schema`.
fn lake_project(schema: &str, files: &[(&str, &str)]) -> tempfile::TempDir {
    let profiles = format!(
        "lake:\n  target: duck\n  outputs:\n    duck:\n      type: duckdb\n      path: target/lake.duckdb\n    athena:\n      type: athena\n      region_name: us-east-1\n      schema: {schema}\n      work_group: primary\n      s3_staging_dir: s3://strata-athena/staging/{schema}/\n      s3_data_dir: s3://strata-athena/tables/\n      threads: 4\n    trino:\n      type: trino\n      host: 127.0.0.1\n      port: 8090\n      user: strata\n      database: iceberg\n      schema: {schema}\n      threads: 4\n      session_properties: {{query_max_run_time: 2m}}\n"
    );
    let mut all: Vec<(&str, &str)> = vec![
        ("project.yml", "name: lake\nprofile: lake\n"),
        ("profiles.yml", &profiles),
    ];
    all.extend_from_slice(files);
    crate::common::project(&all)
}

/// `days` days of sales for 20 stores from 2024-01-01, as a seed's CSV, padded so the file
/// is larger than one Athena statement may be.
fn sales_seed(days: i64) -> String {
    let mut csv = String::from("day,store_id,amount,note\n");
    let start = chrono::NaiveDate::from_ymd_opt(2024, 1, 1).expect("a date");
    for d in 0..days {
        let day = start + chrono::Duration::days(d);
        for store in 1..=20 {
            let cents = (d * 37 + store * 11) % 10_000;
            csv.push_str(&format!(
                "{day},{store},{}.{:02},till receipt {d:04}-{store:02} for the quarterly reconciliation run\n",
                cents / 100,
                cents % 100
            ));
        }
    }
    csv
}

const SALES_YML: &str = "seeds:\n  - name: sales\n    config:\n      column_types: {day: date, store_id: integer, amount: 'decimal(10,2)', note: varchar}\n";

/// A table partitioned by day, and a Hive table overwritten by the days new rows touch.
const DAILY: &str = "{{ config(materialized='table', partitioned_by=['day']) }}\nselect store_id, sum(amount) as amount, count(*) as n, day\nfrom {{ ref('sales') }}\ngroup by store_id, day\n";
const DAILY_HIVE: &str = "{{ config(materialized='incremental', incremental_strategy='insert_overwrite', table_type='hive', partitioned_by=['day'], partition_by=['day']) }}\nselect store_id, sum(amount) as amount, count(*) as n, day\nfrom {{ ref('sales') }}\n{% if is_incremental() %}where day >= (select max(day) from {{ this }}){% endif %}\ngroup by store_id, day\n";

#[test]
fn partitioned_tables_write_at_most_100_partitions_at_a_time_and_a_large_seed_goes_through_s3() {
    if !stand_in("partitions") || !athena_front("partitions") {
        return;
    }
    let schema = format!("parts_{}", std::process::id());
    drop_schema("awsdatacatalog", &schema);
    let seed = sales_seed(260);
    assert!(seed.len() > 262_144, "{}", seed.len());
    let dir = lake_project(
        &schema,
        &[
            ("seeds/sales.csv", &seed),
            ("seeds/sales.yml", SALES_YML),
            ("models/daily.sql", DAILY),
            ("models/daily_hive.sql", DAILY_HIVE),
        ],
    );
    let compare = |dir: &Path| {
        let duck = crate::common::strata(dir, &["build"]);
        assert_eq!(duck.code, 0, "{}", duck.stderr);
        let db = dir.join("target/lake.duckdb");
        for table in ["sales", "daily", "daily_hive"] {
            assert_table_equal(
                "awsdatacatalog",
                (&schema, table),
                &format!("awsdatacatalog.\"{schema}\".\"{table}\""),
                &db,
                &format!("main.\"{table}\""),
                |_| true,
            );
        }
    };
    let built = run(dir.path(), &["build", "--target", "athena"], &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    // The seed went up to S3 and was read through an external table, not inserted.
    assert!(events("query", "__strata_load_").iter().any(|e| e["sql"]
        .as_str()
        .is_some_and(|s| s.starts_with(&format!("create external table `{schema}`.`sales")))));
    // 260 days at most 100 at a time: at least three writes into each table.
    for table in ["daily", "daily_hive"] {
        let writes: Vec<String> = events("query", &schema)
            .iter()
            .filter_map(|e| e["sql"].as_str().map(str::to_string))
            .filter(|sql| {
                ["create table", "insert into"].iter().any(|verb| {
                    sql.starts_with(&format!(
                        "{verb} \"awsdatacatalog\".\"{schema}\".\"{table}\""
                    )) || sql.starts_with(&format!(
                        "{verb} \"awsdatacatalog\".\"{schema}\".\"{table}__strata_tmp_"
                    ))
                })
            })
            .collect();
        assert!(writes.len() >= 3, "{table}: {writes:?}");
        for write in &writes {
            let days = write.matches(" as date)").count();
            assert!(
                (1..=100).contains(&days),
                "{table}: a write of {days} days: {write}"
            );
        }
    }
    compare(dir.path());

    // The next day lands: the Hive table's touched partitions are replaced, in Glue and S3.
    let next = sales_seed(261);
    std::fs::write(dir.path().join("seeds/sales.csv"), &next).expect("seed");
    let built = run(dir.path(), &["build", "--target", "athena"], &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    assert!(
        events("call", "BatchDeletePartition")
            .iter()
            .any(|e| e["DatabaseName"] == schema.as_str() && e["TableName"] == "daily_hive"),
        "no partition of daily_hive was deleted through Glue"
    );
    compare(dir.path());
    drop_schema("awsdatacatalog", &schema);
}

/// An Iceberg table, a Hive table (swapped by repointing Glue) and a view over both.
const SWAPPED: &[(&str, &str)] = &[
    (
        "models/t.sql",
        "{{ config(materialized='table') }}\nselect {{ var('n') }} as n\n",
    ),
    (
        "models/h.sql",
        "{{ config(materialized='table', table_type='hive') }}\nselect {{ var('n') }} as n\n",
    ),
    (
        "models/v.sql",
        "select t.n from {{ ref('t') }} t join {{ ref('h') }} h on h.n = t.n\n",
    ),
];

/// The value a table of the swap test holds, or `None` when it does not exist.
fn held(schema: &str, table: &str) -> Option<String> {
    let exists = texts(&format!(
        "select table_name from awsdatacatalog.information_schema.tables where table_schema = '{schema}' and table_name = '{table}'"
    ));
    if exists.is_empty() {
        return None;
    }
    Some(
        texts(&format!(
            "select n from awsdatacatalog.\"{schema}\".\"{table}\""
        ))
        .join(","),
    )
}

#[test]
fn a_run_killed_between_any_two_steps_of_an_athena_swap_loses_no_table() {
    if !stand_in("athena_kill") || !athena_front("athena_kill") {
        return;
    }
    let schema = format!("kill_{}", std::process::id());
    drop_schema("awsdatacatalog", &schema);
    let dir = lake_project(&schema, SWAPPED);
    let env = aws_environment();
    for (key, value) in &env {
        // The library connects in this process: the SDKs read the environment.
        std::env::set_var(key, value);
    }
    let n = |value: i64| vec![("n", serde_json::json!(value))];
    let build = |value: i64,
                 faults: &dyn Fn(
        strata::adapter::testing::TestWarehouse,
    ) -> strata::adapter::testing::TestWarehouse| {
        crate::library::build_on_target(dir.path(), "athena", faults, &n(value), true)
    };
    let first = build(1, &|w| w);
    assert!(first.ok(), "{:?} {:?}", first.stopped, first.results);
    let probe = build(2, &|w| w);
    assert!(probe.ok(), "{:?}", probe.stopped);
    let total = probe.log.len();
    assert!(
        probe.log.iter().any(|s| s.contains("glue:UpdateTable"))
            && probe.log.iter().any(|s| s.contains("__strata_backup_")),
        "the rebuild did not swap both ways: {:#?}",
        probe.log
    );
    let mut value = 2;
    let mut window = 0;
    for after in 0..total {
        let old = value;
        let new = value + 1;
        let _ = build(new, &|w| w.killed_after(after));
        let what = format!(
            "killed after step {after} of {total} ({:?})",
            probe.log.get(after)
        );
        for table in ["t", "h"] {
            match held(&schema, table) {
                Some(v) => assert!(
                    v == old.to_string() || v == new.to_string(),
                    "{what}: `{table}` holds {v}"
                ),
                None => {
                    window += 1;
                    let backups = texts(&format!(
                        "select table_name from awsdatacatalog.information_schema.tables where table_schema = '{schema}' and table_name like '{table}\\_\\_strata\\_backup\\_%' escape '\\'"
                    ));
                    assert_eq!(
                        backups.len(),
                        1,
                        "{what}: `{table}` is missing and no backup holds it"
                    );
                    assert_eq!(held(&schema, &backups[0]), Some(old.to_string()), "{what}");
                }
            }
        }
        // The next run repairs what the kill left and leaves only the models.
        value = new + 1;
        let next = build(value, &|w| w);
        assert!(
            next.ok(),
            "{what}: the next run failed: {:?} {:?}",
            next.stopped,
            next.results
        );
        for table in ["t", "h", "v"] {
            assert_eq!(
                held(&schema, table),
                Some(value.to_string()),
                "{what}: `{table}`"
            );
        }
        let stray = texts(&format!(
            "select table_name from awsdatacatalog.information_schema.tables where table_schema = '{schema}' and table_name not in ('t', 'h', 'v') order by 1"
        ));
        assert!(stray.is_empty(), "{what}: stray relations {stray:?}");
    }
    // Some kill did fall between the renames, and the table came back from its backup.
    assert!(window > 0, "no kill fell between the renames");
    drop_schema("awsdatacatalog", &schema);
    drop_schema("awsdatacatalog", &format!("{schema}_strata"));
}

#[test]
fn throttling_and_iceberg_commit_errors_are_retried_and_ctrl_c_stops_the_query() {
    if !stand_in("athena_faults") || !athena_front("athena_faults") {
        return;
    }
    let schema = format!("faults_{}", std::process::id());
    drop_schema("awsdatacatalog", &schema);
    let dir = lake_project(
        &schema,
        &[(
            "models/m.sql",
            "{{ config(materialized='table') }}\nselect 1 as n\n",
        )],
    );
    assert_eq!(run(dir.path(), &["run", "--target", "athena"], &[]).code, 0);

    // Throttled calls and a commit that fails twice: the run succeeds all the same.
    inject(serde_json::json!({"kind": "throttle", "count": 3, "match": "StartQueryExecution"}));
    let table = format!("\"{schema}\".\"m__strata_tmp_");
    inject(serde_json::json!({"kind": "iceberg_commit", "count": 2, "match": table}));
    std::fs::write(
        dir.path().join("models/m.sql"),
        "{{ config(materialized='table') }}\nselect 2 as n\n",
    )
    .expect("model");
    let retried = run(dir.path(), &["run", "--target", "athena"], &[]);
    assert_eq!(retried.code, 0, "{}", retried.stderr);
    let commits: Vec<Json> = events("query", &table)
        .into_iter()
        .filter(|e| {
            e["error"]
                .as_str()
                .is_some_and(|r| r.starts_with("ICEBERG_COMMIT_ERROR"))
        })
        .collect();
    assert_eq!(commits.len(), 2, "{commits:?}");
    let (_, faults) = http("GET", "/_standin/faults", "").expect("faults");
    let faults: Vec<Json> = serde_json::from_str(&faults).expect("faults are JSON");
    assert!(
        faults.iter().all(|f| f["remaining"] == 0),
        "faults left unused: {faults:?}"
    );
    assert_eq!(held(&schema, "m").as_deref(), Some("2"));

    // A slow query, then Ctrl-C: the stand-in sees StopQueryExecution, the table stays.
    inject(serde_json::json!({"kind": "slow", "seconds": 120, "match": table}));
    std::fs::write(
        dir.path().join("models/m.sql"),
        "{{ config(materialized='table') }}\nselect 3 as n\n",
    )
    .expect("model");
    let env = aws_environment();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let started = std::time::Instant::now();
    let running = crate::common::Running::until_env(
        dir.path(),
        &["run", "--target", "athena"],
        &env,
        &format!("START sql table model {schema}.m"),
    );
    let slowed = || {
        let (_, body) = http("GET", "/_standin/events", "").expect("events");
        let all: Vec<Json> = serde_json::from_str(&body).expect("events are JSON");
        let queries: Vec<String> = all
            .iter()
            .filter(|e| e["kind"] == "query" || e["kind"] == "fault")
            .filter(|e| e["detail"] == "slow")
            .filter_map(|e| e["id"].as_str().map(str::to_string))
            .collect();
        (all, queries)
    };
    let mut slow_ids = Vec::new();
    for _ in 0..200 {
        let (_, ids) = slowed();
        if !ids.is_empty() {
            slow_ids = ids;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!slow_ids.is_empty(), "the slow query never started");
    let (code, seen) = running.interrupt();
    assert_eq!(code, Some(1), "{seen}");
    assert!(
        started.elapsed().as_secs() < 60,
        "the query was not stopped: {seen}"
    );
    let (all, _) = slowed();
    assert!(
        all.iter()
            .any(|e| e["kind"] == "stop" && slow_ids.iter().any(|id| e["id"] == id.as_str())),
        "the stand-in saw no StopQueryExecution for {slow_ids:?}"
    );
    assert_eq!(held(&schema, "m").as_deref(), Some("2"), "{seen}");
    let next = run(dir.path(), &["run", "--target", "athena"], &[]);
    assert_eq!(next.code, 0, "{}", next.stderr);
    assert_eq!(held(&schema, "m").as_deref(), Some("3"));

    // Polls throttled past the SDK's retries (none here): strata polls again, and the query is
    // started once, not run again.
    let profiles = std::fs::read_to_string(dir.path().join("profiles.yml")).expect("profiles");
    std::fs::write(
        dir.path().join("profiles.yml"),
        profiles.replace(
            "      work_group: primary\n",
            "      work_group: primary\n      num_retries: 0\n",
        ),
    )
    .expect("profiles");
    std::fs::write(
        dir.path().join("models/m.sql"),
        "{{ config(materialized='table') }}\nselect 4 as n\n",
    )
    .expect("model");
    inject(serde_json::json!({"kind": "throttle", "count": 3, "match": "GetQueryExecution"}));
    let polled = run(dir.path(), &["run", "--target", "athena"], &[]);
    assert_eq!(polled.code, 0, "{}", polled.stderr);
    assert_eq!(held(&schema, "m").as_deref(), Some("4"));
    let started: Vec<Json> = events("query", "select 4 as n")
        .into_iter()
        .filter(|e| e["sql"].as_str().is_some_and(|s| s.contains(&table)))
        .collect();
    assert_eq!(started.len(), 1, "the query ran again: {started:?}");
    drop_schema("awsdatacatalog", &schema);
    drop_schema("awsdatacatalog", &format!("{schema}_strata"));
}

#[test]
fn the_glue_catalog_is_listed_once_per_schema_per_run_and_debug_checks_the_target() {
    if !stand_in("athena_catalog") || !athena_front("athena_catalog") {
        return;
    }
    let schema = format!("glue_{}", std::process::id());
    drop_schema("awsdatacatalog", &schema);
    let dir = lake_project(
        &schema,
        &[
            ("models/a.sql", "{{ config(materialized='table') }}\nselect 1 as id\n"),
            ("models/b.sql", "select id from {{ ref('a') }}\n"),
            ("models/c.sql", "{{ config(materialized='incremental', unique_key='id') }}\nselect id from {{ ref('b') }}\n"),
            ("models/d.sql", "{{ config(materialized='table') }}\nselect id from {{ ref('c') }}\n"),
        ],
    );
    let listings = |schema: &str| {
        events("call", "GetTables")
            .iter()
            .filter(|e| e["operation"] == "GetTables" && e["DatabaseName"] == schema)
            .count()
    };
    for round in 1..=2 {
        let before = (listings(&schema), listings(&format!("{schema}_strata")));
        let built = run(dir.path(), &["build", "--target", "athena"], &[]);
        assert_eq!(built.code, 0, "{}", built.stderr);
        let after = (listings(&schema), listings(&format!("{schema}_strata")));
        assert!(
            after.0 - before.0 <= 1,
            "round {round}: {} listings of {schema}",
            after.0 - before.0
        );
        assert!(
            after.1 - before.1 <= 1,
            "round {round}: {} listings of its state schema",
            after.1 - before.1
        );
    }
    let debug = run(dir.path(), &["debug", "--target", "athena"], &[]);
    assert_eq!(debug.code, 0, "{}{}", debug.stdout, debug.stderr);
    let said = format!("{}{}", debug.stdout, debug.stderr);
    for check in [
        "workgroup `primary`",
        "staging location s3://strata-athena/staging/",
        "catalog `awsdatacatalog` (Glue)",
    ] {
        assert!(said.contains(check), "{check}: {said}");
    }
    // A workgroup that enforces its own result location.
    let profiles = std::fs::read_to_string(dir.path().join("profiles.yml")).expect("profiles");
    std::fs::write(
        dir.path().join("profiles.yml"),
        profiles.replace("work_group: primary", "work_group: enforced"),
    )
    .expect("profiles");
    let enforced = run(dir.path(), &["debug", "--target", "athena"], &[]);
    let said = format!("{}{}", enforced.stdout, enforced.stderr);
    assert!(
        said.contains("results where the workgroup enforces"),
        "{said}"
    );
    std::fs::write(dir.path().join("profiles.yml"), &profiles).expect("profiles");
    // A workgroup that does not exist is named in the error.
    let profiles = std::fs::read_to_string(dir.path().join("profiles.yml")).expect("profiles");
    std::fs::write(
        dir.path().join("profiles.yml"),
        profiles.replace("work_group: primary", "work_group: nowhere"),
    )
    .expect("profiles");
    let refused = run(dir.path(), &["build", "--target", "athena"], &[]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("workgroup `nowhere`"),
        "{}",
        refused.stderr
    );
    drop_schema("awsdatacatalog", &schema);
    drop_schema("awsdatacatalog", &format!("{schema}_strata"));
}

/// A model whose query is longer than one Athena statement: three CTEs of literal rows.
fn long_model() -> String {
    let values = |tag: &str| {
        (0..1500)
            .map(|i| format!("({i}, '{tag} row {i} of a hand-kept mapping table, padded out')"))
            .collect::<Vec<_>>()
            .join(",\n")
    };
    format!(
        "{{{{ config(materialized='table') }}}}\nwith a as (select * from (values {}) as t(id, note)),\nb as (select * from (values {}) as t(id, note)),\nc as (select id + 10000 as id, note from a union all select * from (values {}) as t(id, note))\nselect * from a union all select * from b union all select * from c\n",
        values("a"),
        values("b"),
        values("c")
    )
}

#[test]
fn a_model_longer_than_one_statement_is_staged_by_its_ctes_and_equals_duckdb() {
    if !stand_in("athena_long") || !athena_front("athena_long") {
        return;
    }
    let schema = format!("long_{}", std::process::id());
    drop_schema("awsdatacatalog", &schema);
    let model = long_model();
    assert!(model.len() > 262_144, "{}", model.len());
    let dir = lake_project(&schema, &[("models/mapping.sql", &model)]);
    let duck = crate::common::strata(dir.path(), &["run"]);
    assert_eq!(duck.code, 0, "{}", duck.stderr);
    let built = run(dir.path(), &["run", "--target", "athena"], &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let staged: Vec<Json> = events("query", "mapping_cte")
        .into_iter()
        .filter(|e| {
            e["sql"].as_str().is_some_and(|s| {
                s.starts_with(&format!(
                    "create table \"awsdatacatalog\".\"{schema}\".\"mapping_cte"
                ))
            })
        })
        .collect();
    assert_eq!(staged.len(), 3, "{staged:?}");
    assert!(
        staged.iter().all(|e| e["state"] == "SUCCEEDED"),
        "{staged:?}"
    );
    assert_table_equal(
        "awsdatacatalog",
        (&schema, "mapping"),
        &format!("awsdatacatalog.\"{schema}\".\"mapping\""),
        &dir.path().join("target/lake.duckdb"),
        "main.\"mapping\"",
        |_| true,
    );
    let left = texts(&format!(
        "select table_name from awsdatacatalog.information_schema.tables where table_schema = '{schema}' order by 1"
    ));
    assert_eq!(left, ["mapping"]);
    drop_schema("awsdatacatalog", &schema);
    drop_schema("awsdatacatalog", &format!("{schema}_strata"));
}

/// Puts a local file into the stand-in's S3 (moto takes unsigned path-style PUTs; `-T`
/// sends no form content type, which moto would try to parse).
fn put_object(key: &str, file: &Path) {
    let out = Command::new("curl")
        .args(["-sS", "-f", "--max-time", "30", "-T"])
        .arg(file)
        .arg(format!("http://127.0.0.1:4567/strata-athena/{key}"))
        .output()
        .expect("curl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn landing_files_in_s3_are_read_where_they_lie_and_only_new_files_are_read_next_time() {
    if !stand_in("athena_s3_landing") || !athena_front("athena_s3_landing") {
        return;
    }
    let schema = format!("s3land_{}", std::process::id());
    drop_schema("awsdatacatalog", &schema);
    drop_schema("awsdatacatalog", &format!("{schema}_raw"));
    let orders = Path::new(env!("CARGO_MANIFEST_DIR")).join("landing/shop/orders");
    let prefix = format!("landing/{schema}/orders");
    let sources = format!(
        "sources:\n  - name: shop\n    schema: {schema}_raw\n    tables:\n      - name: orders\n        external: {{location: 's3://strata-athena/{prefix}/*.parquet', format: parquet}}\n"
    );
    let dir = lake_project(
        &schema,
        &[
            ("models/sources.yml", &sources),
            (
                "models/orders_copy.sql",
                "{{ config(materialized='incremental', bookmark='files') }}\nselect order_id, op, _source_file from {{ source('shop', 'orders') }}\n",
            ),
        ],
    );
    for file in ["LOAD00000001.parquet", "20240702-061500000.parquet"] {
        put_object(&format!("{prefix}/{file}"), &orders.join(file));
    }
    // Not matched by the glob: never read.
    put_object(
        &format!("{prefix}/notes.txt"),
        &orders.join("LOAD00000001.parquet"),
    );
    let first = run(dir.path(), &["build", "--target", "athena"], &[]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(first.stderr.contains("LOADED 2 files"), "{}", first.stderr);
    let count = |table: &str| {
        texts(&format!(
            "select cast(count(*) as varchar) from awsdatacatalog.\"{table}\""
        ))
    };
    let local = |files: &[&str]| {
        let list: Vec<String> = files
            .iter()
            .map(|f| format!("'{}'", orders.join(f).display()))
            .collect();
        crate::common::query(
            &dir.path().join("target/scratch.duckdb"),
            &format!("select count(*) from read_parquet([{}])", list.join(", ")),
        )[0][0]
            .clone()
    };
    let two = local(&["LOAD00000001.parquet", "20240702-061500000.parquet"]);
    assert_eq!(
        count(&format!("{schema}_raw\".\"orders")),
        std::slice::from_ref(&two)
    );
    assert_eq!(count(&format!("{schema}\".\"orders_copy")), [two]);

    // A new file lands: only it is read, by the load and by the model.
    put_object(
        &format!("{prefix}/20240703-061500000.parquet"),
        &orders.join("20240703-061500000.parquet"),
    );
    let next = run(dir.path(), &["build", "--target", "athena"], &[]);
    assert_eq!(next.code, 0, "{}", next.stderr);
    assert!(next.stderr.contains("LOADED 1 files"), "{}", next.stderr);
    let loads: Vec<String> = events("query", "\"$path\" in (")
        .iter()
        .filter_map(|e| e["sql"].as_str().map(str::to_string))
        .filter(|sql| sql.contains(&format!("\"{schema}_raw\".\"orders\"")))
        .collect();
    assert_eq!(loads.len(), 2, "{loads:?}");
    assert!(
        loads[1].contains("20240703-061500000.parquet") && !loads[1].contains("LOAD00000001"),
        "{}",
        loads[1]
    );
    let three = local(&[
        "LOAD00000001.parquet",
        "20240702-061500000.parquet",
        "20240703-061500000.parquet",
    ]);
    assert_eq!(
        count(&format!("{schema}_raw\".\"orders")),
        std::slice::from_ref(&three)
    );
    assert_eq!(count(&format!("{schema}\".\"orders_copy")), [three]);
    let sources_read = texts(&format!(
        "select distinct _source_file from awsdatacatalog.\"{schema}\".\"orders_copy\" order by 1"
    ));
    assert_eq!(sources_read.len(), 3, "{sources_read:?}");
    assert!(sources_read
        .iter()
        .all(|s| s.starts_with(&format!("s3://strata-athena/{prefix}/"))));
    // The external tables the loads read through are gone.
    let left = texts(&format!(
        "select table_name from awsdatacatalog.information_schema.tables where table_schema = '{schema}_raw' order by 1"
    ));
    assert_eq!(left, ["orders"]);
    drop_schema("awsdatacatalog", &schema);
    drop_schema("awsdatacatalog", &format!("{schema}_raw"));
    drop_schema("awsdatacatalog", &format!("{schema}_strata"));
}

#[test]
fn ctrl_c_cancels_the_running_query_on_trino_and_debug_checks_the_target() {
    if !stand_in("trino_cancel") {
        return;
    }
    let schema = format!("cancel_{}", std::process::id());
    drop_schema("iceberg", &schema);
    let marker = format!("slow_{}", std::process::id());
    let dir = lake_project(
        &schema,
        &[(
            "models/slow.sql",
            &format!(
                "{{{{ config(materialized='table') }}}}\n-- {marker}\nselect count(*) as n from unnest(sequence(1, 3000)) a(x) cross join unnest(sequence(1, 3000)) b(y) cross join unnest(sequence(1, 3000)) c(z) where a.x * b.y * c.z % 7 = 3\n"
            ),
        )],
    );
    let debug = run(dir.path(), &["debug", "--target", "trino"], &[]);
    let said = format!("{}{}", debug.stdout, debug.stderr);
    assert_eq!(debug.code, 0, "{said}");
    assert!(said.contains("catalog `iceberg` readable"), "{said}");

    let started = std::time::Instant::now();
    let running = crate::common::Running::until_env(
        dir.path(),
        &["run", "--target", "trino"],
        &[],
        &format!("START sql table model {schema}.slow"),
    );
    let state = |wanted: &str| {
        trino(&format!(
            "select state, coalesce(error_code, '') from system.runtime.queries where query like '%-- {marker}%' and query not like '%system.runtime%'"
        ))
        .unwrap_or_default()
        .iter()
        .any(|r| r.iter().any(|c| c.as_str() == Some(wanted)))
    };
    for _ in 0..200 {
        if state("RUNNING") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(state("RUNNING"), "the slow query never ran on Trino");
    let (code, seen) = running.interrupt();
    assert_eq!(code, Some(1), "{seen}");
    assert!(started.elapsed().as_secs() < 60, "{seen}");
    let mut cancelled = false;
    for _ in 0..100 {
        if state("USER_CANCELED") {
            cancelled = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(cancelled, "Trino did not see the query cancelled: {seen}");
    drop_schema("iceberg", &schema);
    drop_schema("iceberg", &format!("{schema}_strata"));
}

#[test]
fn iceberg_insert_overwrite_and_new_columns_on_athena() {
    if !stand_in("athena_schema_change") || !athena_front("athena_schema_change") {
        return;
    }
    let schema = format!("evolve_{}", std::process::id());
    drop_schema("awsdatacatalog", &schema);
    let wide = "{{ config(materialized='incremental', unique_key='id', on_schema_change='append_new_columns') }}\n";
    let over = "{{ config(materialized='incremental', incremental_strategy='insert_overwrite', partitioned_by=['day']) }}\n";
    let dir = lake_project(
        &schema,
        &[
            ("models/wide.sql", &format!("{wide}select 1 as id\n")),
            (
                "models/over.sql",
                &format!("{over}select 1 as n, date '2024-01-01' as day union all select 2, date '2024-01-02'\n"),
            ),
        ],
    );
    let first = run(dir.path(), &["run", "--target", "athena"], &[]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    std::fs::write(
        dir.path().join("models/wide.sql"),
        format!("{wide}select 2 as id, 'x' as note\n"),
    )
    .expect("model");
    std::fs::write(
        dir.path().join("models/over.sql"),
        format!("{over}select 3 as n, date '2024-01-02' as day\n"),
    )
    .expect("model");
    let next = run(dir.path(), &["run", "--target", "athena"], &[]);
    assert_eq!(next.code, 0, "{}", next.stderr);
    assert_eq!(
        texts(&format!("select cast(id as varchar) || ':' || coalesce(note, '∅') from awsdatacatalog.\"{schema}\".wide order by id")),
        ["1:∅", "2:x"]
    );
    // The touched day's rows were replaced, the other day's kept (Iceberg: a row delete).
    assert_eq!(
        texts(&format!("select cast(n as varchar) || '@' || cast(day as varchar) from awsdatacatalog.\"{schema}\".over order by n")),
        ["1@2024-01-01", "3@2024-01-02"]
    );
    drop_schema("awsdatacatalog", &schema);
    drop_schema("awsdatacatalog", &format!("{schema}_strata"));
}

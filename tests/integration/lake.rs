//! The Trino and Athena adapters against the local stand-in (`tests/athena/`): a real Trino
//! (Iceberg and Hive catalogs over moto's Glue and S3) at 127.0.0.1:8090, and the Athena API
//! front at 127.0.0.1:4440 that forwards to it (with its control API for injected faults and
//! the events it saw). Tables are read back through Trino itself, not through strata. In CI a
//! missing stand-in fails the test; elsewhere the test prints why it skipped.

use std::io::{Read, Write};
use std::net::TcpStream;
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
    let mut stream = TcpStream::connect(FRONT).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {FRONT}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| e.to_string())?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not an HTTP response: {response}"))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
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

/// Every column as comparable text on Trino: numbers as decimal(38,6), timestamps to the
/// second, NULL as `∅`.
fn trino_rows_sql(table: &str, columns: &[(String, String)]) -> String {
    let parts: Vec<String> = columns
        .iter()
        .map(|(name, data_type)| {
            let ty = data_type.to_lowercase();
            let value = if ["int", "decimal", "double", "real"]
                .iter()
                .any(|t| ty.contains(t))
            {
                format!("cast(cast(\"{name}\" as decimal(38, 6)) as varchar)")
            } else if ty.starts_with("timestamp") {
                format!("format_datetime(\"{name}\", 'yyyy-MM-dd HH:mm:ss')")
            } else if ty == "boolean" {
                format!("case when \"{name}\" then 'true' when not \"{name}\" then 'false' end")
            } else {
                format!("cast(\"{name}\" as varchar)")
            };
            format!("coalesce({value}, '∅')")
        })
        .collect();
    format!(
        "select {} as r from {table} order by 1",
        parts.join(" || '|' || ")
    )
}

/// The same text of DuckDB's columns, by the Trino column types.
fn duck_rows_sql(table: &str, columns: &[(String, String)]) -> String {
    let parts: Vec<String> = columns
        .iter()
        .map(|(name, data_type)| {
            let ty = data_type.to_lowercase();
            let value = if ["int", "decimal", "double", "real"]
                .iter()
                .any(|t| ty.contains(t))
            {
                format!("cast(cast(\"{name}\" as decimal(38, 6)) as varchar)")
            } else if ty.starts_with("timestamp") {
                format!("strftime(\"{name}\", '%Y-%m-%d %H:%M:%S')")
            } else if ty == "boolean" {
                format!("case when \"{name}\" then 'true' when not \"{name}\" then 'false' end")
            } else {
                format!("cast(\"{name}\" as varchar)")
            };
            format!("coalesce({value}, '∅')")
        })
        .collect();
    format!(
        "select {} as r from {table} order by 1",
        parts.join(" || '|' || ")
    )
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
    let run_derived = |table: &str, column: &str| {
        column == "recorded_at"
            || (restated(table) && ["_op", "_commit_ts", "_change_seq"].contains(&column))
            || (table == "strata_files"
                && ["relation_database", "relation_schema"].contains(&column))
    };
    let mut pairs: Vec<(String, String, String, String)> = tables
        .iter()
        .map(|t| {
            (
                format!("{catalog}.\"{schema}\".\"{t}\""),
                format!("main.\"{t}\""),
                schema.to_string(),
                t.to_string(),
            )
        })
        .collect();
    pairs.push((
        format!("(select * from {catalog}.\"{schema}_strata\".strata_files where relation_schema = '{schema}') as b"),
        "(select * from main_strata.strata_files where relation_schema = 'main') as b".into(),
        format!("{schema}_strata"),
        "strata_files".into(),
    ));
    for (lake_table, duck_table, in_schema, table) in pairs {
        let columns: Vec<(String, String)> = trino(&format!(
            "select column_name, data_type from {catalog}.information_schema.columns where table_schema = '{in_schema}' and table_name = '{table}' order by ordinal_position"
        ))
        .unwrap_or_else(|e| panic!("columns of {table}: {e}"))
        .iter()
        .map(|r| (r[0].as_str().unwrap_or_default().to_string(), r[1].as_str().unwrap_or_default().to_string()))
        .filter(|(name, _)| !run_derived(&table, name))
        .collect();
        assert!(!columns.is_empty(), "no columns for {table}");
        let lake_rows = texts(&trino_rows_sql(&lake_table, &columns));
        let duck_rows: Vec<String> =
            crate::common::query(duck, &duck_rows_sql(&duck_table, &columns))
                .into_iter()
                .map(|r| r.join(""))
                .collect();
        assert_eq!(lake_rows, duck_rows, "table `{table}` differs");
    }
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

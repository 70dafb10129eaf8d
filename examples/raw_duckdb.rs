//! The raw-DuckDB arm of `bench/run.sh`: the same compiled SQL strata runs, with no tool around
//! it. Reads a project's `manifest.json` (written by `strata compile` or `strata build`) and runs
//! every seed, model and test as plain statements on one connection of a fresh DuckDB file, in
//! dependency order: `create or replace table|view … as (…)` for models, a `read_csv` table for
//! seeds, `select count(*) from (…)` for tests.
//!
//! `cargo run --release --example raw_duckdb -- PROJECT_DIR MANIFEST OUT_DIR`
//!
//! The database file is `OUT_DIR/<database>.duckdb`, named like strata's so the compiled SQL's
//! three-part names resolve. Prints the number of statements and the seconds they took.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;
use std::process::ExitCode;

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn text<'a>(node: &'a serde_json::Value, key: &str) -> &'a str {
    node.get(key).and_then(|v| v.as_str()).unwrap_or_default()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [project, manifest, out] = args.as_slice() else {
        eprintln!("usage: raw_duckdb PROJECT_DIR MANIFEST OUT_DIR");
        return ExitCode::from(2);
    };
    match run(Path::new(project), Path::new(manifest), Path::new(out)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(project: &Path, manifest: &Path, out: &Path) -> Result<(), String> {
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(manifest).map_err(|e| format!("cannot read the manifest: {e}"))?,
    )
    .map_err(|e| e.to_string())?;
    let nodes = manifest["nodes"]
        .as_object()
        .ok_or("the manifest has no nodes")?;
    // The nodes that run, and who waits on whom.
    let runs = |node: &serde_json::Value| match text(node, "resource_type") {
        "seed" | "test" => true,
        "model" => text(&node["config"], "materialized") != "ephemeral",
        _ => false,
    };
    let ids: Vec<&String> = nodes
        .iter()
        .filter(|(_, n)| runs(n))
        .map(|(id, _)| id)
        .collect();
    let mut waiting: HashMap<&str, usize> = HashMap::new();
    let mut children: HashMap<&str, Vec<&str>> = HashMap::new();
    for id in &ids {
        let mut parents = Vec::new();
        let mut stack: Vec<&str> = nodes[id.as_str()]["depends_on"]["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str())
            .collect();
        // Ephemerals are inlined: wait for what they read.
        while let Some(parent) = stack.pop() {
            match nodes.get(parent) {
                Some(node) if runs(node) => parents.push(parent),
                Some(node) => stack.extend(
                    node["depends_on"]["nodes"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|v| v.as_str()),
                ),
                None => {}
            }
        }
        parents.sort_unstable();
        parents.dedup();
        waiting.insert(id.as_str(), parents.len());
        for parent in parents {
            children.entry(parent).or_default().push(id.as_str());
        }
    }
    let mut ready: VecDeque<&str> = {
        let mut first: Vec<&str> = waiting
            .iter()
            .filter(|(_, n)| **n == 0)
            .map(|(id, _)| *id)
            .collect();
        first.sort_unstable();
        first.into()
    };
    let database = ids
        .iter()
        .map(|id| text(&nodes[id.as_str()], "database"))
        .find(|d| !d.is_empty())
        .ok_or("no node names its database")?
        .to_string();
    std::fs::create_dir_all(out).map_err(|e| e.to_string())?;
    let path = out.join(format!("{database}.duckdb"));
    let _ = std::fs::remove_file(&path);
    let connection = duckdb::Connection::open(&path).map_err(|e| e.to_string())?;
    let started = std::time::Instant::now();
    let mut statements = 0usize;
    let mut schemas: BTreeMap<String, ()> = BTreeMap::new();
    // Seconds and statements per kind of node, to compare with strata's run_results.json.
    let mut kinds: BTreeMap<String, (f64, usize)> = BTreeMap::new();
    while let Some(id) = ready.pop_front() {
        let node = &nodes[id];
        let relation = format!(
            "{}.{}.{}",
            quote(&database),
            quote(text(node, "schema")),
            quote(text(node, "alias"))
        );
        let sql = match text(node, "resource_type") {
            "test" => format!(
                "select count(*) from (\n{}\n) as failing",
                text(node, "compiled_code")
            ),
            kind => {
                let schema = text(node, "schema").to_string();
                if schemas.insert(schema.clone(), ()).is_none() {
                    connection
                        .execute_batch(&format!(
                            "create schema if not exists {}.{}",
                            quote(&database),
                            quote(&schema)
                        ))
                        .map_err(|e| e.to_string())?;
                    statements += 1;
                }
                if kind == "seed" {
                    let file = project.join(text(node, "original_file_path"));
                    format!(
                        "create or replace table {relation} as select * from read_csv('{}', header = true, auto_detect = true)",
                        file.to_string_lossy().replace('\'', "''")
                    )
                } else {
                    let what = if text(&node["config"], "materialized") == "view" {
                        "view"
                    } else {
                        "table"
                    };
                    format!(
                        "create or replace {what} {relation} as (\n{}\n)",
                        text(node, "compiled_code").trim().trim_end_matches(';')
                    )
                }
            }
        };
        let kind = match text(node, "resource_type") {
            "model" => format!("model:{}", text(&node["config"], "materialized")),
            other => other.to_string(),
        };
        let clock = std::time::Instant::now();
        if text(node, "resource_type") == "test" {
            let mut query = connection.prepare(&sql).map_err(|e| format!("{id}: {e}"))?;
            let _: i64 = query
                .query_row([], |row| row.get(0))
                .map_err(|e| format!("{id}: {e}"))?;
        } else {
            connection
                .execute_batch(&sql)
                .map_err(|e| format!("{id}: {e}"))?;
        }
        statements += 1;
        let entry = kinds.entry(kind).or_default();
        entry.0 += clock.elapsed().as_secs_f64();
        entry.1 += 1;
        for child in children.get(id).into_iter().flatten() {
            if let Some(n) = waiting.get_mut(child) {
                *n -= 1;
                if *n == 0 {
                    ready.push_back(child);
                }
            }
        }
    }
    eprintln!(
        "raw_duckdb: {statements} statements in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    for (kind, (seconds, count)) in kinds {
        eprintln!(
            "raw_duckdb: {kind}: {count} in {seconds:.2} s ({:.2} ms each)",
            seconds * 1000.0 / count as f64
        );
    }
    Ok(())
}

//! Golden plans: every case under `tests/plans/` (a node, what stands in the warehouse, what the
//! warehouse would answer) is planned and lowered for DuckDB, PostgreSQL, Redshift and Athena
//! (Iceberg and Hive tables), and the statements are snapshots. Each statement must parse with
//! sqlparser's dialect for its warehouse, unless `tests/plans/unparsed.yaml` lists it with the
//! reason sqlparser cannot read that valid SQL. A new case is a new file.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use serde::Deserialize;
use strata::adapter::{ColumnInfo, Flavour, Lowered, RelationInfo, RelationKind};
use strata::materialize::plans::SeedSource;
use strata::materialize::preview::{self, Case};
use strata::plan::{ColumnDef, Literal, RecordedFile, RunContext, StateWrite};
use strata::relation::RelationName;
use strata::state::{StateLocation, StateTables};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    /// What the case shows (kept in the snapshot's header).
    about: String,
    #[serde(default)]
    config: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    sql: String,
    #[serde(default)]
    existing: Option<Existing>,
    #[serde(default)]
    new_columns: Vec<(String, String)>,
    #[serde(default)]
    partitions: Option<Vec<Vec<serde_json::Value>>>,
    #[serde(default)]
    post_hooks: Vec<String>,
    #[serde(default)]
    files: Vec<String>,
    #[serde(default)]
    fingerprint: Option<String>,
    #[serde(default)]
    dependents: Vec<String>,
    #[serde(default)]
    seed: Option<Seed>,
    #[serde(default)]
    tombstones_exist: bool,
    #[serde(default)]
    full_refresh: bool,
    #[serde(default)]
    comments: Vec<(Option<String>, String)>,
    /// Privileges others hold now, `[grantee, privilege]`.
    #[serde(default)]
    current_grants: Vec<(String, String)>,
    /// The warehouses to plan for; every one when empty.
    #[serde(default)]
    warehouses: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Existing {
    kind: String,
    #[serde(default)]
    columns: Vec<(String, String)>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Seed {
    /// Columns as DuckDB infers them from the file.
    columns: Vec<(String, String)>,
    rows: Vec<Vec<Option<String>>>,
}

#[derive(Debug, Deserialize)]
struct Unparsed {
    warehouse: String,
    contains: String,
    reason: String,
}

const WAREHOUSES: [&str; 6] = [
    "duckdb",
    "postgres",
    "redshift",
    "athena_iceberg",
    "athena_hive",
    "trino",
];

fn flavour(warehouse: &str) -> Arc<dyn Flavour> {
    match warehouse {
        "duckdb" => strata::adapter::embedded_flavour(),
        "postgres" => Arc::new(strata::adapter::postgres::PostgresFlavour::for_server(
            Some(150_004),
        )),
        "redshift" => Arc::new(strata::adapter::redshift::RedshiftFlavour::new(
            &serde_json::from_value(serde_json::json!({
                "host": "cluster.example", "user": "u", "dbname": "warehouse", "schema": "analytics"
            }))
            .unwrap(),
        )),
        "trino" => Arc::new(strata::adapter::athena::AthenaFlavour::trino(
            &serde_json::from_value(serde_json::json!({
                "host": "trino.example", "user": "u", "database": "iceberg", "schema": "analytics"
            }))
            .unwrap(),
        )),
        _ => Arc::new(strata::adapter::athena::AthenaFlavour::new(
            &serde_json::from_value(serde_json::json!({
                "s3_staging_dir": "s3://lake/staging/", "s3_data_dir": "s3://lake/tables/",
                "region_name": "eu-west-1", "schema": "analytics"
            }))
            .unwrap(),
        )),
    }
}

fn columns(list: &[(String, String)]) -> Vec<ColumnInfo> {
    list.iter()
        .map(|(name, data_type)| ColumnInfo {
            name: name.clone(),
            data_type: data_type.clone(),
        })
        .collect()
}

fn literal(value: &serde_json::Value) -> Literal {
    match value {
        serde_json::Value::Null => Literal::Null,
        serde_json::Value::Bool(b) => Literal::Bool(*b),
        serde_json::Value::Number(n) if n.is_i64() => Literal::Int(n.as_i64().unwrap()),
        serde_json::Value::String(s) => Literal::Text(s.clone()),
        other => Literal::Text(other.to_string()),
    }
}

fn case_for(file: &CaseFile, warehouse: &str, flavour: &dyn Flavour) -> Case {
    let database = if warehouse.starts_with("athena") {
        "awsdatacatalog"
    } else if warehouse == "trino" {
        "iceberg"
    } else {
        "warehouse"
    };
    let relation = RelationName::new(Some(database.into()), "analytics", "orders");
    let mut config: strata::project::ConfigMap = file
        .config
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if warehouse == "athena_hive" {
        config.insert("table_type".into(), serde_json::json!("hive"));
    }
    let mut records = Vec::new();
    if !file.files.is_empty() {
        records.push(StateWrite::Files {
            relation: relation.clone(),
            replace_all: file.existing.is_none() || file.full_refresh,
            files: file
                .files
                .iter()
                .map(|path| RecordedFile {
                    source_name: "shop".into(),
                    table_name: "orders".into(),
                    path: path.clone(),
                    size: 1024,
                })
                .collect(),
        });
    }
    if let Some(fingerprint) = &file.fingerprint {
        records.push(StateWrite::ViewFingerprint {
            view: relation.clone(),
            fingerprint: fingerprint.clone(),
        });
    }
    let seed = file.seed.as_ref().map(|seed| {
        let typed: Vec<ColumnDef> = seed
            .columns
            .iter()
            .map(|(name, ty)| ColumnDef {
                name: name.clone(),
                data_type: flavour.column_type_for(ty),
            })
            .collect();
        let path = std::path::PathBuf::from("/project/seeds/orders.csv");
        let options = strata::adapter::CsvOptions::default();
        match flavour.capabilities().seeds {
            strata::adapter::SeedLoad::EngineReadsFile => {
                SeedSource::Select(flavour.csv_select(&path, &options, &[]).unwrap())
            }
            strata::adapter::SeedLoad::BulkLoad => SeedSource::File {
                path,
                options,
                columns: typed,
            },
            strata::adapter::SeedLoad::InsertRows => SeedSource::Rows {
                columns: typed,
                rows: seed
                    .rows
                    .iter()
                    .map(|row| {
                        row.iter()
                            .map(|v| v.clone().map_or(Literal::Null, Literal::Text))
                            .collect()
                    })
                    .collect(),
            },
        }
    });
    Case {
        relation: relation.clone(),
        config,
        sql: file.sql.clone(),
        existing: file.existing.as_ref().map(|e| RelationInfo {
            name: relation.clone(),
            kind: if e.kind == "view" {
                RelationKind::View
            } else {
                RelationKind::Table
            },
            columns: columns(&e.columns),
        }),
        new_columns: columns(&file.new_columns),
        partitions: file
            .partitions
            .as_ref()
            .map(|p| p.iter().map(|t| t.iter().map(literal).collect()).collect()),
        post_hooks: file.post_hooks.clone(),
        records,
        dependents: if flavour.capabilities().views_bind_to_tables {
            file.dependents.clone()
        } else {
            Vec::new()
        },
        seed,
        tombstones_exist: file.tombstones_exist,
        full_refresh: file.full_refresh,
        comments: file
            .comments
            .iter()
            .map(|(column, text)| strata::materialize::Comment {
                column: column.clone(),
                text: text.clone(),
            })
            .collect(),
        current_grants: file.current_grants.clone(),
        built_columns: if file.new_columns.is_empty() {
            file.existing
                .as_ref()
                .map(|e| columns(&e.columns))
                .unwrap_or_default()
        } else {
            columns(&file.new_columns)
        },
    }
}

/// The statements a lowered step runs, with the dialect kind each parses with.
fn texts(lowered: &Lowered) -> Vec<(strata::adapter::StatementKind, String)> {
    match lowered {
        Lowered::Sql { kind, text } => vec![(*kind, text.clone())],
        Lowered::KeyCheck {
            nulls, duplicates, ..
        } => vec![
            (strata::adapter::StatementKind::Dml, nulls.clone()),
            (strata::adapter::StatementKind::Dml, duplicates.clone()),
        ],
        Lowered::Load { .. } | Lowered::Api(_) => Vec::new(),
    }
}

#[test]
fn every_plan_lowers_to_statements_each_warehouse_parses() {
    let unparsed: Vec<Unparsed> = serde_yaml::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/plans/unparsed.yaml"
        ))
        .expect("unparsed.yaml"),
    )
    .expect("unparsed.yaml reads");
    let used: Mutex<BTreeSet<usize>> = Mutex::new(BTreeSet::new());
    let failures: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let run = RunContext {
        run_id: "0a1b2c3d".into(),
        started_at: chrono::DateTime::UNIX_EPOCH,
        event_time_start: None,
        event_time_end: None,
        retry_batches: Default::default(),
        full_refresh: false,
    };
    let started = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    insta::glob!(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/plans"),
        "*.yaml",
        |path| {
            if path.file_name().is_some_and(|n| n == "unparsed.yaml") {
                return;
            }
            let file: CaseFile = serde_yaml::from_str(&std::fs::read_to_string(path).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let mut out = format!("{}\n", file.about.trim());
            let warehouses: Vec<&str> = if file.warehouses.is_empty() {
                WAREHOUSES.to_vec()
            } else {
                file.warehouses.iter().map(String::as_str).collect()
            };
            for warehouse in warehouses {
                let flavour = flavour(warehouse);
                let case = case_for(&file, warehouse, flavour.as_ref());
                let database = case.relation.database.clone();
                let tables = StateTables::new(
                    StateLocation {
                        database,
                        schema: "analytics_strata".into(),
                    },
                    started,
                    flavour.limits().identifier_length,
                );
                let run = RunContext {
                    full_refresh: file.full_refresh,
                    ..run.clone()
                };
                out.push_str(&format!("\n# {warehouse}\n"));
                let stages = match preview::stages(flavour.as_ref(), &tables, &run, &case) {
                    Ok(stages) => stages,
                    Err(err) => {
                        out.push_str(&format!("error: {err}\n"));
                        continue;
                    }
                };
                out.push_str(&preview::render(flavour.as_ref(), &stages));
                for stage in &stages {
                    for block in &stage.plan.blocks {
                        for statement in preview::lowered(flavour.as_ref(), &block.steps) {
                            for (kind, text) in texts(&statement) {
                                let dialect = flavour.statement_dialect(kind);
                                if sqlparser::parser::Parser::parse_sql(dialect, &text).is_ok() {
                                    continue;
                                }
                                let family = warehouse.split('_').next().unwrap_or(warehouse);
                                let listed = unparsed.iter().position(|u| {
                                    (u.warehouse == warehouse || u.warehouse == family)
                                        && text.contains(&u.contains)
                                });
                                match listed {
                                    Some(i) => {
                                        used.lock().unwrap().insert(i);
                                        out.push_str(&format!(
                                            "-- not parsed by sqlparser: {}\n",
                                            unparsed[i].reason
                                        ));
                                    }
                                    None => failures.lock().unwrap().push(format!(
                                        "{} on {warehouse}: sqlparser cannot parse\n{text}\n{}",
                                        path.display(),
                                        sqlparser::parser::Parser::parse_sql(dialect, &text)
                                            .unwrap_err()
                                    )),
                                }
                            }
                        }
                    }
                }
            }
            insta::assert_snapshot!(out);
        }
    );
    let failures = failures.into_inner().unwrap();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    let used = used.into_inner().unwrap();
    for (i, entry) in unparsed.iter().enumerate() {
        assert!(
            used.contains(&i),
            "unparsed.yaml lists `{}` on {}, which every plan now parses: remove it",
            entry.contains,
            entry.warehouse
        );
    }
}

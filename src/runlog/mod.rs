//! The run log: rows a run appends to tables in the warehouse, as migration pipelines keep a
//! tracking table — one per invocation (written as the run starts with status `running`,
//! replaced by its outcome as it ends) and one per node (written as each node finishes, by a
//! task of its own, so a killed run leaves the rows of what it did). Configured by the
//! project's `run-log:` block; a failure to write it is a warning, never a failed run.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde_json::Value as Json;
use tokio::sync::mpsc;

use crate::catalog::{Catalog, SchemaName};
use crate::plan::{Block, ColumnDef, Filter, Literal, Plan, Role, Step};
use crate::relation::RelationName;
use crate::run::{NodeResult, Shared, Status};

/// Where the log goes: `run-log: {schema, database, invocations_table, nodes_table}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunLogConfig {
    pub database: Option<String>,
    /// `None`: strata's state schema of the target.
    pub schema: Option<String>,
    pub invocations_table: String,
    pub nodes_table: String,
}

const KEYS: &[&str] = &[
    "enabled",
    "schema",
    "database",
    "invocations_table",
    "nodes_table",
];

impl RunLogConfig {
    /// Reads the `run-log:` block; `Ok(None)` when there is none or it says `enabled: false`.
    pub fn from_json(value: Option<&Json>) -> Result<Option<RunLogConfig>, String> {
        let map = match value {
            None | Some(Json::Null) => return Ok(None),
            Some(Json::Bool(false)) => return Ok(None),
            Some(Json::Bool(true)) => serde_json::Map::new(),
            Some(Json::Object(map)) => map.clone(),
            Some(other) => {
                return Err(format!(
                    "`run-log` must be a mapping (`schema`, `invocations_table`, `nodes_table`, `enabled`), not `{other}`"
                ))
            }
        };
        crate::diagnostic::unknown_key(map.keys(), KEYS, "run-log")?;
        let enabled = match map.get("enabled") {
            None | Some(Json::Null) => true,
            Some(Json::Bool(b)) => *b,
            // Rendered from `env_var(...)`.
            Some(Json::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => true,
                "false" | "0" | "no" | "off" | "" => false,
                other => return Err(format!("`run-log.enabled` is `{other}`: use true or false")),
            },
            Some(other) => {
                return Err(format!("`run-log.enabled` is `{other}`: use true or false"))
            }
        };
        if !enabled {
            return Ok(None);
        }
        let text = |key: &str, default: Option<&str>| -> Result<Option<String>, String> {
            match map.get(key) {
                None | Some(Json::Null) => Ok(default.map(str::to_string)),
                Some(Json::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_string())),
                Some(other) => Err(format!("`run-log.{key}` must be a name, not `{other}`")),
            }
        };
        Ok(Some(RunLogConfig {
            database: text("database", None)?,
            schema: text("schema", None)?,
            invocations_table: text("invocations_table", Some("strata_invocations"))?
                .unwrap_or_default(),
            nodes_table: text("nodes_table", Some("strata_node_runs"))?.unwrap_or_default(),
        }))
    }
}

/// What a run says about itself in its invocation row.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub id: String,
    pub project: String,
    pub command: String,
    /// The selection as given (`--select …`, `--exclude …`, `--selector …`).
    pub selector: String,
    pub target: String,
    pub started_at: DateTime<Utc>,
}

/// The two tables, their columns, and the steps writing their rows: pure, so the SQL can be
/// shown without a connection.
#[derive(Debug, Clone)]
pub struct LogTables {
    pub invocations: RelationName,
    pub nodes: RelationName,
}

fn columns(list: &[(&str, &str)]) -> Vec<ColumnDef> {
    list.iter()
        .map(|(name, data_type)| ColumnDef {
            name: (*name).into(),
            data_type: (*data_type).into(),
        })
        .collect()
}

fn invocation_columns() -> Vec<ColumnDef> {
    columns(&[
        ("invocation_id", "varchar(64)"),
        ("project", "varchar(256)"),
        ("command", "varchar(64)"),
        ("selector", "varchar(4096)"),
        ("target", "varchar(256)"),
        ("status", "varchar(32)"),
        ("nodes", "bigint"),
        ("succeeded", "bigint"),
        ("warned", "bigint"),
        ("failed", "bigint"),
        ("skipped", "bigint"),
        ("started_at", "timestamp"),
        ("finished_at", "timestamp"),
        ("strata_version", "varchar(64)"),
    ])
}

fn node_columns() -> Vec<ColumnDef> {
    columns(&[
        ("invocation_id", "varchar(64)"),
        ("node_id", "varchar(1024)"),
        ("resource_type", "varchar(32)"),
        ("status", "varchar(32)"),
        ("rows_affected", "bigint"),
        ("failures", "bigint"),
        ("started_at", "timestamp"),
        ("finished_at", "timestamp"),
        ("message", "varchar(4096)"),
    ])
}

/// A UTC time as the log's timestamp columns take it.
fn time(t: &DateTime<Utc>) -> Literal {
    Literal::Text(t.format("%Y-%m-%d %H:%M:%S%.6f").to_string())
}

fn count(n: usize) -> Literal {
    Literal::Int(i64::try_from(n).unwrap_or(i64::MAX))
}

/// The tally an invocation row ends with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub nodes: usize,
    pub succeeded: usize,
    pub warned: usize,
    pub failed: usize,
    pub skipped: usize,
}

impl Tally {
    pub fn of(results: &[NodeResult]) -> Tally {
        let mut tally = Tally {
            nodes: results.len(),
            ..Tally::default()
        };
        for r in results {
            match r.status {
                Status::Success | Status::Pass => tally.succeeded += 1,
                Status::Warn => tally.warned += 1,
                Status::Error | Status::Fail => tally.failed += 1,
                Status::Skipped => tally.skipped += 1,
            }
        }
        tally
    }
}

impl LogTables {
    pub fn new(config: &RunLogConfig, state_schema: &SchemaName) -> LogTables {
        let database = config
            .database
            .clone()
            .or_else(|| state_schema.database.clone());
        let schema = config
            .schema
            .clone()
            .unwrap_or_else(|| state_schema.schema.clone());
        LogTables {
            invocations: RelationName::new(
                database.clone(),
                schema.clone(),
                config.invocations_table.clone(),
            ),
            nodes: RelationName::new(database, schema, config.nodes_table.clone()),
        }
    }

    fn schema(&self) -> SchemaName {
        SchemaName {
            database: self.nodes.database.clone(),
            schema: self.nodes.schema.clone(),
        }
    }

    /// The invocation's row: `running` as it starts, its outcome as it ends.
    fn invocation_row(
        invocation: &Invocation,
        outcome: Option<(&str, Tally, DateTime<Utc>)>,
    ) -> Vec<Literal> {
        let (status, tally, finished) = match outcome {
            Some((status, tally, finished)) => (status, Some(tally), Some(finished)),
            None => ("running", None, None),
        };
        let number = |f: fn(&Tally) -> usize| tally.as_ref().map_or(Literal::Null, |t| count(f(t)));
        vec![
            Literal::Text(invocation.id.clone()),
            Literal::Text(invocation.project.clone()),
            Literal::Text(invocation.command.clone()),
            Literal::Text(cut(&invocation.selector, 4096)),
            Literal::Text(invocation.target.clone()),
            Literal::Text(status.into()),
            number(|t| t.nodes),
            number(|t| t.succeeded),
            number(|t| t.warned),
            number(|t| t.failed),
            number(|t| t.skipped),
            time(&invocation.started_at),
            finished.as_ref().map_or(Literal::Null, time),
            Literal::Text(format!("strata {}", env!("CARGO_PKG_VERSION"))),
        ]
    }

    /// Inserts the invocation's first row.
    pub fn start(&self, invocation: &Invocation) -> Step {
        Step::InsertRows {
            relation: self.invocations.clone(),
            columns: invocation_columns(),
            rows: vec![Self::invocation_row(invocation, None)],
        }
    }

    /// Replaces the invocation's row by its outcome.
    pub fn finish(
        &self,
        invocation: &Invocation,
        status: &str,
        tally: Tally,
        finished: DateTime<Utc>,
    ) -> Vec<Step> {
        vec![
            Step::Delete {
                from: self.invocations.clone(),
                filter: Filter::In {
                    columns: vec!["invocation_id".into()],
                    values: vec![vec![Literal::Text(invocation.id.clone())]],
                },
            },
            Step::InsertRows {
                relation: self.invocations.clone(),
                columns: invocation_columns(),
                rows: vec![Self::invocation_row(
                    invocation,
                    Some((status, tally, finished)),
                )],
            },
        ]
    }

    /// Appends node rows.
    pub fn nodes(&self, rows: Vec<Vec<Literal>>) -> Step {
        Step::InsertRows {
            relation: self.nodes.clone(),
            columns: node_columns(),
            rows,
        }
    }

    /// A node's row, from its result as it finishes (`finished`).
    pub fn node_row(
        invocation_id: &str,
        result: &NodeResult,
        finished: DateTime<Utc>,
    ) -> Vec<Literal> {
        let started =
            finished - chrono::Duration::microseconds((result.execution_time * 1_000_000.0) as i64);
        let resource_type = result
            .unique_id
            .0
            .split('.')
            .next()
            .unwrap_or_default()
            .to_string();
        vec![
            Literal::Text(invocation_id.to_string()),
            Literal::Text(result.unique_id.0.clone()),
            Literal::Text(resource_type),
            Literal::Text(result.status.as_str().into()),
            result.rows_affected.map_or(Literal::Null, |n| {
                Literal::Int(i64::try_from(n).unwrap_or(i64::MAX))
            }),
            result.failures.map_or(Literal::Null, Literal::Int),
            time(&started),
            time(&finished),
            Literal::Text(cut(&result.message, 4000)),
        ]
    }
}

/// `text` cut to `max` characters.
fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => text[..at].to_string(),
        None => text.to_string(),
    }
}

/// An open run log: node rows go to a writer task as nodes finish.
pub struct RunLog {
    tables: LogTables,
    invocation: Invocation,
    shared: Shared,
    sender: mpsc::UnboundedSender<Vec<Literal>>,
    writer: tokio::task::JoinHandle<()>,
    warnings: Arc<Mutex<Vec<String>>>,
}

async fn run(shared: &Shared, steps: Vec<Step>, transaction: bool) -> Result<(), String> {
    let plan = Plan {
        blocks: vec![Block::new(Role::Publish, transaction, steps)],
        ..Plan::default()
    };
    crate::materialize::execute::run_plan(
        shared.adapter.as_ref(),
        shared.catalog.as_ref(),
        shared.state.as_ref(),
        &plan,
    )
    .await
    .map(|_| ())
    .map_err(|e| e.to_string())
}

impl RunLog {
    /// Creates the log's schema and tables where missing and writes the invocation's first
    /// row; `Err` (a warning to print) when the warehouse refuses.
    pub async fn open(
        shared: &Shared,
        config: &RunLogConfig,
        state_schema: &SchemaName,
        invocation: Invocation,
    ) -> Result<RunLog, String> {
        let tables = LogTables::new(config, state_schema);
        let catalog: &Catalog = shared.catalog.as_ref();
        let schema = tables.schema();
        catalog
            .list([schema.clone()])
            .await
            .map_err(|e| e.to_string())?;
        let existing: Vec<String> = catalog
            .relations_in(&schema)
            .into_iter()
            .map(|r| r.name.identifier.to_ascii_lowercase())
            .collect();
        let mut setup = Vec::new();
        if existing.is_empty() {
            setup.push(Step::CreateSchema {
                database: schema.database.clone(),
                schema: schema.schema.clone(),
            });
        }
        for (table, columns) in [
            (&tables.invocations, invocation_columns()),
            (&tables.nodes, node_columns()),
        ] {
            if !existing.contains(&table.identifier.to_ascii_lowercase()) {
                setup.push(Step::CreateTable {
                    relation: table.clone(),
                    columns,
                    storage: crate::plan::Storage::plain(),
                });
            }
        }
        if !setup.is_empty() {
            run(shared, setup, false).await?;
        }
        run(shared, vec![tables.start(&invocation)], false).await?;
        let (sender, mut receiver) = mpsc::unbounded_channel::<Vec<Literal>>();
        let warnings: Arc<Mutex<Vec<String>>> = Arc::default();
        let writer = {
            let shared = shared.clone();
            let tables = tables.clone();
            let warnings = warnings.clone();
            tokio::spawn(async move {
                let mut failed = false;
                while let Some(first) = receiver.recv().await {
                    // Whatever finished while the last write ran goes in one insert.
                    let mut rows = vec![first];
                    while let Ok(more) = receiver.try_recv() {
                        rows.push(more);
                    }
                    if failed {
                        continue;
                    }
                    if let Err(e) = run(&shared, vec![tables.nodes(rows)], false).await {
                        failed = true;
                        warnings
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(format!(
                                "cannot append to the run log's `{}`: {e}",
                                tables.nodes
                            ));
                    }
                }
            })
        };
        Ok(RunLog {
            tables,
            invocation,
            shared: shared.clone(),
            sender,
            writer,
            warnings,
        })
    }

    /// Hands a finished node's row to the writer.
    pub fn node_finished(&self, result: &NodeResult) {
        let row = LogTables::node_row(&self.invocation.id, result, Utc::now());
        let _ = self.sender.send(row);
    }

    /// What the scheduler calls as each node finishes (drop it before [`RunLog::close`]).
    pub fn recorder(&self) -> crate::run::ResultHook {
        let sender = self.sender.clone();
        let id = self.invocation.id.clone();
        Arc::new(move |result: &NodeResult| {
            let _ = sender.send(LogTables::node_row(&id, result, Utc::now()));
        })
    }

    /// Waits for the node rows, then replaces the invocation's row by its outcome; the
    /// warnings of every write that failed.
    pub async fn close(self, results: &[NodeResult], failed: bool) -> Vec<String> {
        let RunLog {
            tables,
            invocation,
            shared,
            sender,
            writer,
            warnings,
        } = self;
        drop(sender);
        let _ = writer.await;
        let status = if failed { "error" } else { "success" };
        let steps = tables.finish(&invocation, status, Tally::of(results), Utc::now());
        let transaction = shared.adapter.flavour().capabilities().transactions;
        let mut warnings = std::mem::take(&mut *warnings.lock().unwrap_or_else(|p| p.into_inner()));
        if let Err(e) = run(&shared, steps, transaction).await {
            warnings.push(format!(
                "cannot record the invocation's outcome in the run log's `{}`: {e}",
                tables.invocations
            ));
        }
        warnings
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_block_names_the_tables_and_can_turn_the_log_off() {
        let config = RunLogConfig::from_json(Some(&json!({"schema": "audit"})))
            .unwrap()
            .unwrap();
        assert_eq!(config.schema.as_deref(), Some("audit"));
        assert_eq!(config.invocations_table, "strata_invocations");
        assert_eq!(config.nodes_table, "strata_node_runs");
        assert_eq!(RunLogConfig::from_json(None).unwrap(), None);
        assert_eq!(
            RunLogConfig::from_json(Some(&json!({"enabled": "false"}))).unwrap(),
            None
        );
        assert!(RunLogConfig::from_json(Some(&json!({"shema": "audit"})))
            .unwrap_err()
            .contains("did you mean `schema`"));
        assert!(RunLogConfig::from_json(Some(&json!(true)))
            .unwrap()
            .is_some());
    }

    #[test]
    fn messages_are_cut_on_character_boundaries() {
        assert_eq!(cut("äöü", 2), "äö");
        assert_eq!(cut("ab", 5), "ab");
    }
}

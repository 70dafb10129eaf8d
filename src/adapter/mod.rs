//! The warehouse boundary: one object-safe, async [`Adapter`] trait and a [`Capabilities`] value
//! that materializations consult instead of asking which warehouse this is.
//!
//! Adapters speak SQL strings and typed results only; they know nothing of templates, nodes or
//! the DAG. One folder (file) per warehouse.

pub mod duckdb;
pub mod postgres;
pub mod retry;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;

use crate::project::{AdapterKind, ConnectionConfig, Target};
use crate::relation::{QuoteStyle, RelationName};

/// What a warehouse can do; materializations plan from these answers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// DDL (create, drop, rename) can run inside a transaction and roll back.
    pub transactional_ddl: bool,
    /// `ALTER TABLE … RENAME TO …` exists.
    pub rename_relation: bool,
    /// `CREATE OR REPLACE TABLE` exists.
    pub create_or_replace_table: bool,
    /// `CREATE OR REPLACE VIEW` exists.
    pub create_or_replace_view: bool,
    /// `MERGE INTO` exists.
    pub merge: bool,
    /// `COMMENT ON` exists (for `persist_docs`).
    pub comments: bool,
    /// The engine reads CSV and Parquet files itself (`read_csv`, `read_parquet`), so seeds
    /// and landing files load without a client-side copy.
    pub reads_local_files: bool,
    /// Dropping a relation that views depend on needs `cascade` (PostgreSQL binds views to
    /// tables; those views are rebuilt when they are part of the run, as with dbt-postgres).
    pub drop_cascade: bool,
    /// Column tests on one relation are cheaper as one shared scan than as one query each.
    /// True for row stores and engines that bill per scan (PostgreSQL, Redshift, Athena);
    /// false for DuckDB, whose per-column statistics answer most single-column checks without
    /// reading the data, which a shared multi-column query would forfeit (measured).
    pub batch_column_tests: bool,
    /// A view binds its query anew on every read, so a view whose SQL is unchanged stays right
    /// when the relations and files it reads change (DuckDB). Where views freeze their input
    /// columns at creation (PostgreSQL expands `select *`), an unchanged view is only left
    /// alone while its inputs' columns are unchanged too.
    pub late_binding_views: bool,
}

/// Schemas an adapter has created during this run (keyed by their `create schema` statement),
/// so each is created once. The lock is held while a schema is created: PostgreSQL's
/// `create schema if not exists` is not safe against itself running concurrently.
#[derive(Debug, Default)]
pub struct KnownSchemas(tokio::sync::Mutex<std::collections::HashSet<String>>);

impl KnownSchemas {
    /// Runs `create` (once per key in this run) with the set locked.
    pub async fn ensure<F, Fut>(&self, key: String, create: F) -> Result<(), AdapterError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<(), AdapterError>>,
    {
        let mut known = self.0.lock().await;
        if known.contains(&key) {
            return Ok(());
        }
        create().await?;
        known.insert(key);
        Ok(())
    }
}

/// Whether the run was cancelled. A cancel that arrives between two statements is lost by the
/// warehouse (DuckDB clears it when the next statement starts; PostgreSQL cancels only what is
/// running), so once cancelled, statements not yet started are refused, but for a lone `drop`:
/// that is how a cancelled build removes what it staged.
#[derive(Debug, Default)]
pub struct Cancellation(std::sync::atomic::AtomicBool);

impl Cancellation {
    pub fn cancel(&self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// `Err(Cancelled)` for any work about to start after a cancel (queries, batches).
    pub fn check(&self) -> Result<(), AdapterError> {
        if self.0.load(std::sync::atomic::Ordering::SeqCst) {
            Err(AdapterError::Cancelled)
        } else {
            Ok(())
        }
    }

    /// Like [`Cancellation::check`] for one statement run on its own, which may still be a
    /// `drop` cleaning up after the cancelled work.
    pub fn admit(&self, sql: &str) -> Result<(), AdapterError> {
        let head = sql.trim_start().get(..5).unwrap_or("");
        if head.eq_ignore_ascii_case("drop ") {
            return Ok(());
        }
        self.check()
    }
}

/// How a CSV file is written (seeds' `delimiter` and `quote` config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsvOptions {
    pub delimiter: char,
    pub quote: char,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            delimiter: ',',
            quote: '"',
        }
    }
}

/// A bulk load of a local CSV file into a table.
#[derive(Debug, Clone, Copy)]
pub struct CsvLoad<'a> {
    pub relation: &'a RelationName,
    pub path: &'a std::path::Path,
    pub options: &'a CsvOptions,
    /// The table columns the file's columns fill, in file order; every column when empty.
    pub columns: &'a [String],
    /// Statements run first, on the same connection and in the same transaction.
    pub before: &'a [String],
    /// Statements run after the load in its transaction: it commits only if they succeed.
    pub after: &'a [String],
}

/// Whether a relation is a table or a view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RelationKind {
    Table,
    View,
}

/// A column as the warehouse reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ColumnInfo {
    pub name: String,
    pub data_type: String,
}

/// A relation that exists in the warehouse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RelationInfo {
    pub name: RelationName,
    pub kind: RelationKind,
    pub columns: Vec<ColumnInfo>,
}

impl RelationInfo {
    /// Reads a catalog query's rows of `(kind, column name, column type)`, one per column in
    /// order; `is_view` says which kind values mean a view. `None` when there are no rows.
    pub fn from_catalog_rows(
        name: &RelationName,
        table: &Table,
        is_view: impl Fn(&str) -> bool,
    ) -> Option<RelationInfo> {
        let first = table.rows.first()?;
        let kind = match first.first() {
            Some(Cell::Text(k)) if is_view(k) => RelationKind::View,
            _ => RelationKind::Table,
        };
        let columns = table
            .rows
            .iter()
            .filter_map(|row| match (row.get(1), row.get(2)) {
                (Some(Cell::Text(name)), Some(Cell::Text(data_type))) => Some(ColumnInfo {
                    name: name.clone(),
                    data_type: data_type.clone(),
                }),
                _ => None,
            })
            .collect();
        Some(RelationInfo {
            name: name.clone(),
            kind,
            columns,
        })
    }
}

/// What a statement did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExecOutcome {
    /// Rows inserted, updated or deleted, when the warehouse says.
    pub rows_affected: Option<u64>,
}

/// One value of a query result.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Cell {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// Decimals, dates, timestamps and anything else, as the warehouse prints them.
    Text(String),
}

impl fmt::Display for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cell::Null => f.write_str("NULL"),
            Cell::Bool(b) => write!(f, "{b}"),
            Cell::Int(i) => write!(f, "{i}"),
            Cell::Float(x) => write!(f, "{x}"),
            Cell::Text(s) => f.write_str(s),
        }
    }
}

/// A query result: typed columns and rows.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Table {
    pub columns: Vec<ColumnInfo>,
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    /// The rows as an aligned text table, cells cut at `max_width` characters.
    pub fn to_text(&self, max_width: usize) -> String {
        let headers: Vec<String> = self.columns.iter().map(|c| c.name.clone()).collect();
        let rows: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|row| row.iter().map(ToString::to_string).collect())
            .collect();
        crate::output::format_table(&headers, &rows, max_width)
    }
}

/// Why a warehouse call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AdapterError {
    #[error("cannot connect to the {adapter} target: {message}")]
    Connect {
        adapter: &'static str,
        message: String,
    },
    /// `what` names the database (a DuckDB file, a PostgreSQL database and schema).
    #[error("{what} is locked by another run")]
    Locked { what: String, detail: String },
    #[error("{message}")]
    Database {
        message: String,
        /// Whether the retry policy may try again (serialization failures, dropped connections).
        retryable: bool,
    },
    #[error("the query was cancelled")]
    Cancelled,
    #[error("{0}; this is a bug, please report it")]
    Internal(String),
}

impl AdapterError {
    /// A hint for the user, where one helps.
    pub fn hint(&self) -> Option<String> {
        match self {
            AdapterError::Locked { .. } => Some(
                "wait for the other strata run (or DuckDB client) to finish, or point this run at another target".into(),
            ),
            AdapterError::Connect { .. } => Some("check the target's settings with `strata debug`".into()),
            _ => None,
        }
    }
}

/// A warehouse connection (a pool, for remote warehouses).
#[async_trait]
pub trait Adapter: Send + Sync + fmt::Debug {
    fn kind(&self) -> AdapterKind;

    fn capabilities(&self) -> &Capabilities;

    /// How relation names are quoted in this warehouse's SQL.
    fn quote_style(&self) -> QuoteStyle {
        QuoteStyle::default()
    }

    /// Runs one statement.
    async fn execute(&self, sql: &str) -> Result<ExecOutcome, AdapterError>;

    /// Runs statements in order on one connection; inside one transaction when `transaction`
    /// is set, so either all of them take effect or none does.
    async fn execute_all(
        &self,
        statements: &[String],
        transaction: bool,
    ) -> Result<Vec<ExecOutcome>, AdapterError>;

    /// Runs a query and returns its rows.
    async fn query(&self, sql: &str) -> Result<Table, AdapterError>;

    /// Looks a relation up in the catalog, with its columns.
    async fn relation(&self, name: &RelationName) -> Result<Option<RelationInfo>, AdapterError>;

    /// Whether a relation exists and is a table or a view, without its columns: cheaper where
    /// listing a view's columns binds its query (DuckDB binds a view over files by reading them).
    async fn relation_kind(
        &self,
        name: &RelationName,
    ) -> Result<Option<RelationKind>, AdapterError> {
        Ok(self.relation(name).await?.map(|info| info.kind))
    }

    /// Cancels every running statement of this adapter, on the warehouse side too.
    async fn cancel(&self) -> Result<(), AdapterError>;

    /// Time spent waiting on the warehouse so far, summed over connections (benchmarks use it
    /// to separate strata's own overhead from the SQL's).
    fn busy_time(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }

    /// The schemas this adapter created in this run, when it keeps track (all built-in
    /// adapters do); `None` creates the schema before every node.
    fn known_schemas(&self) -> Option<&KnownSchemas> {
        None
    }

    /// Keeps other strata runs off this target until the adapter is dropped (PostgreSQL's
    /// advisory lock). Embedded DuckDB needs nothing: its file lock already does this.
    async fn lock_target(&self) -> Result<(), AdapterError> {
        Ok(())
    }

    /// Bulk-loads a CSV file (with a header) into a table, for warehouses that do not read
    /// local files themselves, with the load's statements around it in one transaction.
    /// Returns the rows loaded.
    async fn load_csv(&self, load: &CsvLoad<'_>) -> Result<u64, AdapterError> {
        let _ = load;
        Err(AdapterError::Internal(format!(
            "the {} adapter cannot load local files",
            self.kind().as_str()
        )))
    }

    /// Statements that recreate the views reading `relation` (directly or through other
    /// views) after it is dropped with `cascade` and replaced, for warehouses that bind views
    /// to tables (PostgreSQL). They run in the swap's transaction. The default is none.
    async fn recreate_dependent_views(
        &self,
        relation: &RelationName,
    ) -> Result<Vec<String>, AdapterError> {
        let _ = relation;
        Ok(Vec::new())
    }

    /// This warehouse's type for a column DuckDB inferred from a file (`BIGINT`, `DATE`, …).
    fn column_type_for(&self, duckdb_type: &str) -> String {
        duckdb_type.to_string()
    }
}

/// Connects to a target.
pub async fn connect(target: &Target) -> Result<Arc<dyn Adapter>, AdapterError> {
    match &target.connection {
        ConnectionConfig::Duckdb(config) => {
            let path = config
                .path
                .clone()
                .unwrap_or_else(|| ":memory:".to_string());
            let adapter = duckdb::DuckdbAdapter::open(
                &path,
                duckdb::setup_statements(config),
                target.threads,
            )
            .await?;
            Ok(Arc::new(adapter))
        }
        ConnectionConfig::Postgres(config) => {
            let adapter = postgres::PostgresAdapter::connect(config, target.threads).await?;
            Ok(Arc::new(adapter))
        }
        other => Err(AdapterError::Connect {
            adapter: other.kind().as_str(),
            message: "this adapter is not available yet".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_a_cancel_only_a_lone_drop_starts() {
        let cancellation = Cancellation::default();
        assert!(cancellation.check().is_ok());
        assert!(cancellation.admit("create table t as select 1").is_ok());
        cancellation.cancel();
        assert!(matches!(cancellation.check(), Err(AdapterError::Cancelled)));
        assert!(matches!(
            cancellation.admit("create table t as select 1"),
            Err(AdapterError::Cancelled)
        ));
        assert!(cancellation
            .admit("  DROP table if exists t__strata_tmp")
            .is_ok());
        assert!(cancellation.admit("dropx").is_err());
    }
}

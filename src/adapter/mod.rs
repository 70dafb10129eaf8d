//! The warehouse boundary. A [`Flavour`] says what differs between warehouses and needs no
//! connection (dialect, quoting, capabilities, limits, relation properties, the SQL each plan
//! step lowers to); an [`Adapter`] is a connection that runs statements and queries and reads the
//! catalog. Materializations ask the flavour; they never name a warehouse.
//!
//! Adapters speak SQL strings and typed results only; they know nothing of templates, nodes or
//! the DAG. One module per warehouse, holding its flavour and its connection; the PostgreSQL
//! wire protocol, which Redshift speaks too, is [`wire`].

pub mod ansi;
pub mod athena;
pub mod aws;
pub mod duckdb;
pub mod flavour;
pub mod postgres;
pub mod properties;
pub mod redshift;
pub mod retry;
pub mod testing;
pub mod trino;
pub mod wire;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;

pub use flavour::{
    Adjusted, ApiCall, Capabilities, Flavour, Limits, Lowered, PropertyError, SeedLoad,
    SeedValueError, StatementKind, SwapMethod,
};

use crate::project::{ConnectionConfig, Target};
use crate::relation::RelationName;

/// The embedded warehouse's flavour (DuckDB): what tests and tools use when no target says
/// otherwise.
pub fn embedded_flavour() -> Arc<dyn Flavour> {
    Arc::new(duckdb::DuckdbFlavour::default())
}

/// The flavour of a target's warehouse, known before connecting.
pub fn flavour_for(target: &Target) -> Arc<dyn Flavour> {
    match &target.connection {
        ConnectionConfig::Duckdb(_) => Arc::new(duckdb::DuckdbFlavour::default()),
        ConnectionConfig::Postgres(_) => Arc::new(postgres::PostgresFlavour::default()),
        ConnectionConfig::Redshift(config) => Arc::new(redshift::RedshiftFlavour::new(config)),
        ConnectionConfig::Athena(config) => Arc::new(athena::AthenaFlavour::new(config)),
        ConnectionConfig::Trino(config) => Arc::new(athena::AthenaFlavour::trino(config)),
    }
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
/// running), so once cancelled, statements not yet started are refused, but for a lone `drop`
/// or rename: that is how a cancelled build removes what it staged and puts a table it moved
/// aside back.
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
    /// `drop` or a rename cleaning up after the cancelled work.
    pub fn admit(&self, sql: &str) -> Result<(), AdapterError> {
        if Cancellation::is_cleanup(sql) {
            return Ok(());
        }
        self.check()
    }

    /// Whether a statement is a lone `drop` or rename: what a cancelled build still runs to
    /// remove what it staged and put a moved table back.
    pub fn is_cleanup(sql: &str) -> bool {
        let text = sql.trim_start();
        let starts = |word: &str| {
            text.get(..word.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(word))
        };
        starts("drop ") || (starts("alter ") && text.to_ascii_lowercase().contains(" rename to "))
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

/// How a file to bulk-load is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// CSV with a header.
    Csv(CsvOptions),
    /// Parquet whose columns are the table's, in order (Redshift's COPY matches them by
    /// position and takes no column list).
    Parquet,
}

/// A bulk load of a local file into a table.
#[derive(Debug, Clone, Copy)]
pub struct FileLoad<'a> {
    pub relation: &'a RelationName,
    pub path: &'a std::path::Path,
    pub format: &'a FileFormat,
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

    /// Reads a schema listing's rows of `(name, kind, column name, column type)`, ordered by
    /// name and then column position; a relation without columns has NULL column cells.
    pub fn from_schema_rows(
        database: Option<&str>,
        schema: &str,
        table: &Table,
        is_view: impl Fn(&str) -> bool,
    ) -> Vec<RelationInfo> {
        let mut out: Vec<RelationInfo> = Vec::new();
        for row in &table.rows {
            let (Some(Cell::Text(identifier)), Some(Cell::Text(kind))) = (row.first(), row.get(1))
            else {
                continue;
            };
            if out
                .last()
                .is_none_or(|last| last.name.identifier != *identifier)
            {
                out.push(RelationInfo {
                    name: RelationName::new(
                        database.map(str::to_string),
                        schema,
                        identifier.clone(),
                    ),
                    kind: if is_view(kind) {
                        RelationKind::View
                    } else {
                        RelationKind::Table
                    },
                    columns: Vec::new(),
                });
            }
            if let (Some(Cell::Text(column)), Some(Cell::Text(data_type)), Some(last)) =
                (row.get(2), row.get(3), out.last_mut())
            {
                last.columns.push(ColumnInfo {
                    name: column.clone(),
                    data_type: data_type.clone(),
                });
            }
        }
        out
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
    /// What this warehouse's SQL is like, as this connection found it (a server version may
    /// turn a capability on).
    fn flavour(&self) -> &dyn Flavour;

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

    /// Looks one relation up in the catalog, with its columns.
    async fn relation(&self, name: &RelationName) -> Result<Option<RelationInfo>, AdapterError>;

    /// Every relation of one schema with its kind and columns, in one catalog read.
    async fn list_schema(
        &self,
        database: Option<&str>,
        schema: &str,
    ) -> Result<Vec<RelationInfo>, AdapterError> {
        let flavour = self.flavour();
        let Some(sql) = flavour.catalog_sql(database, schema) else {
            return Err(AdapterError::Internal(format!(
                "the {} adapter reads no catalog by SQL",
                flavour.name()
            )));
        };
        let table = self.query(&sql).await?;
        Ok(RelationInfo::from_schema_rows(
            database,
            schema,
            &table,
            |k| flavour.is_view_kind(k),
        ))
    }

    /// Whether a schema exists (empty or not): `information_schema.schemata` unless the
    /// warehouse answers otherwise.
    async fn schema_exists(
        &self,
        database: Option<&str>,
        schema: &str,
    ) -> Result<bool, AdapterError> {
        if !self.list_schema(database, schema).await?.is_empty() {
            return Ok(true);
        }
        let table = self
            .query(&format!(
                "select count(*) from information_schema.schemata where lower(schema_name) = lower({})",
                crate::relation::string_literal(schema)
            ))
            .await?;
        Ok(matches!(
            table.rows.first().and_then(|row| row.first()),
            Some(Cell::Int(n)) if *n > 0
        ))
    }

    /// Runs a warehouse API call a plan step lowered to.
    async fn call(&self, call: &ApiCall) -> Result<(), AdapterError> {
        Err(AdapterError::Internal(format!(
            "the {} adapter cannot run `{}`",
            self.flavour().name(),
            call.operation
        )))
    }

    /// Cancels every running statement of this adapter, on the warehouse side too.
    async fn cancel(&self) -> Result<(), AdapterError>;

    /// What `strata debug` checks, by name: the connection (with a trivial query), and where a
    /// warehouse needs more (a staging location), that too.
    async fn checks(&self) -> Vec<(String, Result<String, AdapterError>)> {
        vec![(
            "connection".to_string(),
            self.query("select 1 as ok").await.map(|_| "OK".to_string()),
        )]
    }

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
    async fn load_file(&self, load: &FileLoad<'_>) -> Result<u64, AdapterError> {
        let _ = load;
        Err(AdapterError::Internal(format!(
            "the {} adapter cannot load local files",
            self.flavour().name()
        )))
    }

    /// The files under a remote location glob (`s3://bucket/landing/orders/*.parquet`) with
    /// their sizes, sorted by path, for warehouses that read files where they lie; `None` where
    /// this warehouse does not.
    async fn list_remote(
        &self,
        location: &str,
    ) -> Result<Option<Vec<(String, u64)>>, AdapterError> {
        let _ = location;
        Ok(None)
    }

    /// Copies one remote file (as [`Adapter::list_remote`] names it) to a local path: strata
    /// reads a landing file's columns from it.
    async fn fetch_remote(&self, path: &str, to: &std::path::Path) -> Result<(), AdapterError> {
        let _ = to;
        Err(AdapterError::Internal(format!(
            "the {} adapter cannot fetch {path}",
            self.flavour().name()
        )))
    }

    /// Statements that recreate the views reading `relation` (directly or through other
    /// views) after it is dropped with `cascade` and replaced, for warehouses whose views bind
    /// to tables (PostgreSQL). They run in the swap's transaction. The default is none.
    async fn recreate_dependent_views(
        &self,
        relation: &RelationName,
    ) -> Result<Vec<String>, AdapterError> {
        let _ = relation;
        Ok(Vec::new())
    }
}

/// Connects to a target unless connecting would create it: an embedded database file that is
/// not there yet holds nothing to read, and opening it would write the file (`None`).
pub async fn connect_existing(target: &Target) -> Result<Option<Arc<dyn Adapter>>, AdapterError> {
    if let ConnectionConfig::Duckdb(config) = &target.connection {
        if !duckdb::exists(config) {
            return Ok(None);
        }
    }
    connect(target).await.map(Some)
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
        ConnectionConfig::Redshift(config) => {
            let adapter =
                redshift::connection::RedshiftAdapter::connect(config, target.threads).await?;
            Ok(Arc::new(adapter))
        }
        ConnectionConfig::Athena(config) => {
            let adapter =
                athena::connection::AthenaAdapter::connect(config, target.threads).await?;
            Ok(Arc::new(adapter))
        }
        ConnectionConfig::Trino(config) => {
            let adapter = trino::TrinoAdapter::connect(config, target.threads).await?;
            Ok(Arc::new(adapter))
        }
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
        assert!(cancellation
            .admit("alter table t__strata_backup_1 rename to \"t\"")
            .is_ok());
        assert!(cancellation
            .admit("alter table t add column c int")
            .is_err());
    }
}

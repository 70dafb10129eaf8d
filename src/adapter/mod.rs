//! The warehouse boundary: one object-safe, async [`Adapter`] trait and a [`Capabilities`] value
//! that materializations consult instead of asking which warehouse this is.
//!
//! Adapters speak SQL strings and typed results only; they know nothing of templates, nodes or
//! the DAG. One folder (file) per warehouse.

pub mod duckdb;

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

/// Why a warehouse call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AdapterError {
    #[error("cannot connect to the {adapter} target: {message}")]
    Connect {
        adapter: &'static str,
        message: String,
    },
    #[error("the database `{path}` is locked by another run")]
    Locked { path: String, detail: String },
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
                "wait for the other strata (or DuckDB client) to finish, or point this run at another database file".into(),
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

    /// Cancels every running statement of this adapter, on the warehouse side too.
    async fn cancel(&self) -> Result<(), AdapterError>;
}

/// Connects to a target.
pub async fn connect(target: &Target) -> Result<Arc<dyn Adapter>, AdapterError> {
    match &target.connection {
        ConnectionConfig::Duckdb(config) => {
            let path = config
                .path
                .clone()
                .unwrap_or_else(|| ":memory:".to_string());
            let adapter =
                duckdb::DuckdbAdapter::open(&path, &target.database, target.threads).await?;
            Ok(Arc::new(adapter))
        }
        other => Err(AdapterError::Connect {
            adapter: other.kind().as_str(),
            message: "this adapter is not available yet".into(),
        }),
    }
}

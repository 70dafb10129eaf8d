//! What differs between warehouses and needs no connection: the sqlparser dialect, quoting per
//! statement kind, capabilities, limits, the relation properties a model's config sets, how
//! errors read, and how each plan step is lowered to SQL or API calls. Compile, `ls` and the SQL
//! check use a [`Flavour`] before anything connects; materializations ask it instead of asking
//! which warehouse this is.
//!
//! Each warehouse's flavour lives in that warehouse's module; the SQL most of them share is
//! [`super::ansi`], which a flavour calls for the steps it does not lower itself.

use std::fmt;

use sqlparser::dialect::Dialect;

use crate::plan::{Literal, Step, Storage};
use crate::project::ConfigMap;
use crate::relation::{QuoteStyle, RelationName};

/// Statements quote names differently on some warehouses (Athena's DDL takes backticks, its
/// queries double quotes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatementKind {
    /// Creates, alters or drops a table's definition (Hive DDL on Athena).
    Ddl,
    /// Reads or writes rows, and creates tables or views from a SELECT.
    Dml,
}

/// What a warehouse can do; plans are built from these answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// Several statements commit or roll back together.
    pub transactions: bool,
    /// DDL (create, drop, rename) can run inside a transaction and roll back with it.
    pub transactional_ddl: bool,
    /// `create or replace table … as` replaces a table in one statement.
    pub create_or_replace_table: bool,
    /// `create or replace view` replaces a view in one statement (and can change its columns).
    pub create_or_replace_view: bool,
    /// `MERGE INTO` exists (for tables whose storage allows it, see [`Flavour::can_merge`]).
    pub merge: bool,
    /// `COMMENT ON` exists (for `persist_docs`).
    pub comments: bool,
    /// How a seed's CSV file reaches the warehouse.
    pub seeds: SeedLoad,
    /// The engine reads local CSV and Parquet files itself (`read_csv`, `read_parquet`), so
    /// external sources are read where they lie; other warehouses stage them into a table.
    pub reads_local_files: bool,
    /// Views bind to the tables they read: replacing a table drops its views (`cascade`), and
    /// the swap recreates them in its transaction (PostgreSQL).
    pub views_bind_to_tables: bool,
    /// Column tests on one relation are cheaper as one shared scan than as one query each:
    /// true for row stores and engines that bill per scan; false for DuckDB, whose column
    /// statistics answer most single-column checks without reading the data (measured).
    pub batch_column_tests: bool,
    /// A view binds its query anew on every read, so a view whose SQL is unchanged stays right
    /// when the relations it reads change (DuckDB). Where views freeze their inputs' columns
    /// at creation, an unchanged view is left alone only while those columns are unchanged.
    pub late_binding_views: bool,
    /// Each small write is a slow commit (an Athena Iceberg commit takes seconds): strata's
    /// state is written once, in one batch, as the run ends, rather than with each build.
    pub batch_state_writes: bool,
    /// Writes to disjoint rows of one table may run at once on several connections: a
    /// microbatch model's batches then run in parallel. Not where one writer holds the file
    /// (DuckDB), where concurrent writes to a table abort each other (Redshift's serializable
    /// isolation) or conflict in a commit (Iceberg on Athena and Trino).
    pub concurrent_batches: bool,
    /// `alter table … alter column … type` may run inside a transaction (Redshift refuses it
    /// there: a widened column is then altered before the transaction that writes the rows).
    pub alter_type_in_transaction: bool,
}

/// How seeds load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedLoad {
    /// The engine reads the file in a `create table … as select` (DuckDB's `read_csv`).
    EngineReadsFile,
    /// The adapter's bulk load streams the file into a typed table (PostgreSQL's COPY).
    BulkLoad,
    /// `insert … values` statements, split to fit the statement limit.
    InsertRows,
}

/// How a warehouse's sizes are bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The longest statement the warehouse accepts, in bytes; plans split longer ones.
    pub statement_bytes: Option<usize>,
    /// The most partitions one write may create or replace; plans batch larger writes.
    pub partitions_per_write: Option<usize>,
    /// The longest identifier; names built aside are shortened to fit.
    pub identifier_length: usize,
    /// Seeds of at most this many bytes load by inserts where the warehouse would bulk load
    /// them: one statement costs less than an upload and a `COPY` (Redshift).
    pub seed_insert_bytes: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            statement_bytes: None,
            partitions_per_write: None,
            identifier_length: 255,
            seed_insert_bytes: None,
        }
    }
}

/// How a table built aside replaces the live one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwapMethod {
    /// Drop and rename in one transaction.
    Transaction,
    /// Rename the live table to a backup, rename the new one in, drop the backup; the backup
    /// is renamed back on failure, and a killed run's leftovers are repaired by the next.
    Rename,
    /// Point the live table's definition at the new table's data in one catalog call, then
    /// drop the aside definition and the old data (Athena's Hive tables).
    Repoint,
}

/// A lowered step: what the warehouse runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Lowered {
    Sql {
        kind: StatementKind,
        text: String,
    },
    /// Queries whose answers fail the plan: `nulls` counts rows with a NULL key part,
    /// `duplicates` returns one repeated key (with its count) or nothing.
    KeyCheck {
        key: Vec<String>,
        nulls: String,
        duplicates: String,
    },
    /// The adapter's bulk load of a local file (see [`crate::adapter::Adapter::load_file`]).
    Load {
        relation: RelationName,
        path: std::path::PathBuf,
        format: super::FileFormat,
        columns: Vec<String>,
    },
    /// A call to the warehouse's API rather than SQL (Glue, S3).
    Api(ApiCall),
}

impl Lowered {
    pub fn sql(kind: StatementKind, text: impl Into<String>) -> Lowered {
        Lowered::Sql {
            kind,
            text: text.into(),
        }
    }

    /// The SQL text, for statements.
    pub fn text(&self) -> Option<&str> {
        match self {
            Lowered::Sql { text, .. } => Some(text),
            _ => None,
        }
    }
}

impl fmt::Display for Lowered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Lowered::Sql { text, .. } => f.write_str(text),
            Lowered::KeyCheck {
                nulls, duplicates, ..
            } => write!(f, "-- check: {nulls}\n-- check: {duplicates}"),
            Lowered::Load {
                relation,
                path,
                columns,
                ..
            } => write!(
                f,
                "-- load: {} into {relation} ({})",
                path.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                columns.join(", ")
            ),
            Lowered::Api(call) => write!(f, "-- api: {call}"),
        }
    }
}

/// A warehouse API call a plan step lowers to, described well enough to snapshot and run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiCall {
    /// `service:Operation`, as the AWS SDK names it (`glue:UpdateTable`).
    pub operation: String,
    /// Its arguments, in order, as `name=value`.
    pub arguments: Vec<(String, String)>,
}

impl fmt::Display for ApiCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.operation)?;
        for (name, value) in &self.arguments {
            write!(f, " {name}={value}")?;
        }
        Ok(())
    }
}

/// A model config value a warehouse cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("config `{key}`: {message}")]
pub struct PropertyError {
    pub key: String,
    pub message: String,
}

impl PropertyError {
    pub fn new(key: &str, message: impl Into<String>) -> PropertyError {
        PropertyError {
            key: key.to_string(),
            message: message.into(),
        }
    }
}

/// A value of a seed that the warehouse rejected, read back from its error message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedValueError {
    /// The line of the CSV file (the header is line 1).
    pub line: usize,
    pub column: String,
    pub value: String,
    /// What the warehouse said about it, in parentheses, or empty.
    pub detail: String,
}

/// Everything about a warehouse that needs no connection. One implementation per warehouse,
/// in its own module.
pub trait Flavour: Send + Sync + fmt::Debug {
    /// The adapter type as dbt spells it (`duckdb`, `postgres`, `redshift`, `athena`): what
    /// `target.type` says and `adapter.dispatch` prefixes macro names with.
    fn name(&self) -> &'static str;

    /// The adapters whose macros `adapter.dispatch` falls back to, nearest first, before
    /// `default__` (Redshift's are PostgreSQL's, as in dbt).
    fn dispatch_parents(&self) -> &'static [&'static str] {
        &[]
    }

    /// The sqlparser dialect compiled models are checked with.
    fn dialect(&self) -> &(dyn Dialect + Send + Sync);

    /// The dialect a lowered statement of `kind` parses with (the golden plan tests).
    fn statement_dialect(&self, kind: StatementKind) -> &(dyn Dialect + Send + Sync) {
        let _ = kind;
        self.dialect()
    }

    /// How names are quoted in statements of `kind`.
    fn quote_style(&self, kind: StatementKind) -> QuoteStyle;

    /// How templates render `ref()` and `source()` (queries, so with the database part).
    fn template_quote_style(&self) -> QuoteStyle {
        QuoteStyle::default()
    }

    fn capabilities(&self) -> &Capabilities;

    fn limits(&self) -> Limits {
        Limits::default()
    }

    /// The config keys this warehouse reads as relation properties (`dist`, `table_type`, …).
    fn property_keys(&self) -> &'static [&'static str] {
        &[]
    }

    /// A table's storage from its model's config; an unusable value is an error naming the key.
    fn table_storage(
        &self,
        relation: &RelationName,
        config: &ConfigMap,
    ) -> Result<Storage, PropertyError> {
        let _ = (relation, config);
        Ok(Storage::plain())
    }

    /// Whether a view reads its relations late (`bind: false` on Redshift).
    fn late_binding_view(&self, config: &ConfigMap) -> Result<bool, PropertyError> {
        let _ = config;
        Ok(false)
    }

    /// The storage of tables strata builds for its own use in a run (an incremental model's
    /// new rows, CDC tombstones): their rows are deleted, so the storage must allow it.
    fn scratch_storage(&self, relation: &RelationName) -> Storage {
        let _ = relation;
        Storage::plain()
    }

    /// Whether rows of a table of this storage can be deleted (delete+insert, CDC, merge
    /// without `MERGE`); a table that is files in folders can only lose whole partitions.
    fn can_delete_rows(&self, storage: &Storage) -> bool {
        let _ = storage;
        true
    }

    /// A query giving `(table name, estimated row count)` for the tables of a schema from the
    /// warehouse's own statistics (no scan), for the docs; `None` where it keeps none.
    fn row_counts_sql(&self, database: Option<&str>, schema: &str) -> Option<String> {
        let _ = (database, schema);
        None
    }

    /// A point in time as the warehouse compares it with a date or timestamp column: a
    /// microbatch batch's bound. dbt's form, a string the column's type reads as UTC.
    fn event_time_literal(&self, at: chrono::DateTime<chrono::Utc>) -> String {
        format!("'{}'", at.format("%Y-%m-%d %H:%M:%S+00:00"))
    }

    /// The time a snapshot run records in a table of this storage (dbt's
    /// `snapshot_get_time()`): a timestamp without a time zone, read once per statement.
    fn snapshot_time(&self, storage: &Storage) -> String {
        let _ = storage;
        "cast(current_timestamp as timestamp)".into()
    }

    /// The select list of a source freshness query: `max_expr` (the newest load time) and
    /// the warehouse's clock, as text strata reads (`max_loaded_at`, `snapshotted_at`); a
    /// timestamp without a zone is taken as UTC.
    fn freshness_columns(&self, max_expr: &str) -> String {
        format!(
            "cast({max_expr} as varchar) as max_loaded_at, cast(current_timestamp as varchar) as snapshotted_at"
        )
    }

    /// A value of `data_type` as a table of this storage can hold it, where the storage
    /// narrows what the query gives (Athena's Hive tables keep timestamps to milliseconds).
    fn fit_to_storage(&self, expr: &str, data_type: &str, storage: &Storage) -> String {
        let _ = (data_type, storage);
        expr.to_string()
    }

    /// The hex MD5 of a text expression (snapshots' `dbt_scd_id`).
    fn md5_sql(&self, text: &str) -> String {
        format!("md5({text})")
    }

    /// The type a value is cast to to be hashed or compared as text.
    fn text_type(&self) -> &'static str {
        "varchar"
    }

    /// Whether `MERGE INTO` works on a table of this storage.
    fn can_merge(&self, storage: &Storage) -> bool {
        let _ = storage;
        self.capabilities().merge
    }

    /// How a table of this storage built aside replaces the live one.
    fn swap_method(&self, storage: &Storage) -> SwapMethod {
        let _ = storage;
        if self.capabilities().transactional_ddl {
            SwapMethod::Transaction
        } else {
            SwapMethod::Rename
        }
    }

    /// The type a column of `existing` type becomes in place when new rows bring `new` (a
    /// longer `varchar`), where the warehouse widens columns without a rebuild.
    fn widened_type(&self, existing: &str, new: &str) -> Option<String> {
        let _ = (existing, new);
        None
    }

    /// What one step runs here.
    fn lower(&self, step: &Step) -> Vec<Lowered> {
        super::ansi::lower(self, step)
    }

    /// A literal of a column of `data_type` (seeds inserted row by row).
    fn literal(&self, value: &Literal, data_type: &str) -> String {
        let _ = data_type;
        super::ansi::literal(value)
    }

    /// A SELECT of a local CSV file's rows read by the engine itself, where it reads local
    /// files (seeds on DuckDB); `types` are the columns' types the seed's config sets.
    fn csv_select(
        &self,
        path: &std::path::Path,
        options: &super::CsvOptions,
        types: &[(String, String)],
    ) -> Option<String> {
        let _ = (path, options, types);
        None
    }

    /// This warehouse's type for a column DuckDB inferred from a file (`BIGINT`, `DATE`, …).
    fn column_type_for(&self, duckdb_type: &str) -> String {
        duckdb_type.to_string()
    }

    /// Reads a seed value the warehouse rejected out of its error message.
    fn seed_value_error(&self, message: &str) -> Option<SeedValueError> {
        let _ = message;
        None
    }

    /// The query listing every relation of one schema with its kind and, for tables, its
    /// columns in order: rows of `(name, kind, column name, column type)`, the kind as
    /// [`Flavour::is_view_kind`] reads it and the column NULL for relations without one.
    /// `None` where the catalog is read through an API (Athena's Glue).
    fn catalog_sql(&self, database: Option<&str>, schema: &str) -> Option<String> {
        let _ = (database, schema);
        None
    }

    /// The format landing files are staged in for the warehouse's bulk load: CSV by default;
    /// Parquet where the load reads it (Redshift's COPY from S3), which keeps every type.
    fn staged_file_format(&self) -> super::FileFormat {
        super::FileFormat::Csv(super::CsvOptions::default())
    }

    /// A query of the privileges others hold on a relation, rows `(grantee, privilege)`, for
    /// warehouses with SQL grants; `None` where `grants:` does not apply (DuckDB, Athena).
    fn grants_sql(&self, relation: &RelationName) -> Option<String> {
        let _ = relation;
        None
    }

    /// Whether a catalog row's kind value means a view.
    fn is_view_kind(&self, kind: &str) -> bool {
        kind.eq_ignore_ascii_case("view")
    }

    /// Whether a driver message means the statement may be retried as is (serialization
    /// failures and the like; the wire transport also reads SQLSTATEs).
    fn is_retryable_message(&self, message: &str) -> bool {
        let _ = message;
        false
    }
}

/// How an adjusted flavour resolves a table's storage instead of its inner flavour.
pub type StorageOverride = std::sync::Arc<
    dyn Fn(&RelationName, &ConfigMap) -> Result<Storage, PropertyError> + Send + Sync,
>;

/// Wraps a flavour and overrides its limits and capabilities (and, optionally, how it reads
/// table storage): tests use it to run DuckDB as a warehouse without transactional DDL, with
/// small limits, or with partitioned tables.
#[derive(Clone)]
pub struct Adjusted {
    pub inner: std::sync::Arc<dyn Flavour>,
    pub capabilities: Capabilities,
    pub limits: Limits,
    pub storage: Option<StorageOverride>,
}

impl fmt::Debug for Adjusted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Adjusted")
            .field("inner", &self.inner)
            .field("capabilities", &self.capabilities)
            .field("limits", &self.limits)
            .field("storage", &self.storage.is_some())
            .finish()
    }
}

impl Adjusted {
    pub fn new(inner: std::sync::Arc<dyn Flavour>) -> Adjusted {
        Adjusted {
            capabilities: inner.capabilities().clone(),
            limits: inner.limits(),
            storage: None,
            inner,
        }
    }
}

impl Flavour for Adjusted {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn dispatch_parents(&self) -> &'static [&'static str] {
        self.inner.dispatch_parents()
    }

    fn dialect(&self) -> &(dyn Dialect + Send + Sync) {
        self.inner.dialect()
    }

    fn statement_dialect(&self, kind: StatementKind) -> &(dyn Dialect + Send + Sync) {
        self.inner.statement_dialect(kind)
    }

    fn quote_style(&self, kind: StatementKind) -> QuoteStyle {
        self.inner.quote_style(kind)
    }

    fn template_quote_style(&self) -> QuoteStyle {
        self.inner.template_quote_style()
    }

    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    fn limits(&self) -> Limits {
        self.limits
    }

    fn property_keys(&self) -> &'static [&'static str] {
        self.inner.property_keys()
    }

    fn table_storage(
        &self,
        relation: &RelationName,
        config: &ConfigMap,
    ) -> Result<Storage, PropertyError> {
        match &self.storage {
            Some(resolve) => resolve(relation, config),
            None => self.inner.table_storage(relation, config),
        }
    }

    fn late_binding_view(&self, config: &ConfigMap) -> Result<bool, PropertyError> {
        self.inner.late_binding_view(config)
    }

    fn can_merge(&self, storage: &Storage) -> bool {
        self.capabilities.merge && self.inner.can_merge(storage)
    }

    fn scratch_storage(&self, relation: &RelationName) -> Storage {
        self.inner.scratch_storage(relation)
    }

    fn snapshot_time(&self, storage: &Storage) -> String {
        self.inner.snapshot_time(storage)
    }

    fn md5_sql(&self, text: &str) -> String {
        self.inner.md5_sql(text)
    }

    fn fit_to_storage(&self, expr: &str, data_type: &str, storage: &Storage) -> String {
        self.inner.fit_to_storage(expr, data_type, storage)
    }

    fn freshness_columns(&self, max_expr: &str) -> String {
        self.inner.freshness_columns(max_expr)
    }

    fn text_type(&self) -> &'static str {
        self.inner.text_type()
    }

    fn can_delete_rows(&self, storage: &Storage) -> bool {
        self.inner.can_delete_rows(storage)
    }

    fn event_time_literal(&self, at: chrono::DateTime<chrono::Utc>) -> String {
        self.inner.event_time_literal(at)
    }

    fn row_counts_sql(&self, database: Option<&str>, schema: &str) -> Option<String> {
        self.inner.row_counts_sql(database, schema)
    }

    fn swap_method(&self, storage: &Storage) -> SwapMethod {
        match self.inner.swap_method(storage) {
            SwapMethod::Transaction if !self.capabilities.transactional_ddl => SwapMethod::Rename,
            other => other,
        }
    }

    fn widened_type(&self, existing: &str, new: &str) -> Option<String> {
        self.inner.widened_type(existing, new)
    }

    fn lower(&self, step: &Step) -> Vec<Lowered> {
        self.inner.lower(step)
    }

    fn literal(&self, value: &Literal, data_type: &str) -> String {
        self.inner.literal(value, data_type)
    }

    fn csv_select(
        &self,
        path: &std::path::Path,
        options: &super::CsvOptions,
        types: &[(String, String)],
    ) -> Option<String> {
        self.inner.csv_select(path, options, types)
    }

    fn column_type_for(&self, duckdb_type: &str) -> String {
        self.inner.column_type_for(duckdb_type)
    }

    fn seed_value_error(&self, message: &str) -> Option<SeedValueError> {
        self.inner.seed_value_error(message)
    }

    fn catalog_sql(&self, database: Option<&str>, schema: &str) -> Option<String> {
        self.inner.catalog_sql(database, schema)
    }

    fn grants_sql(&self, relation: &RelationName) -> Option<String> {
        self.inner.grants_sql(relation)
    }

    fn staged_file_format(&self) -> super::FileFormat {
        self.inner.staged_file_format()
    }

    fn is_view_kind(&self, kind: &str) -> bool {
        self.inner.is_view_kind(kind)
    }

    fn is_retryable_message(&self, message: &str) -> bool {
        self.inner.is_retryable_message(message)
    }
}

//! DuckDB, embedded: its [`DuckdbFlavour`] (what differs in its SQL) and [`DuckdbAdapter`], a
//! database file (or `:memory:`) opened in-process, with one connection per worker cloned from
//! the first, all calls run off the async runtime's workers.
//!
//! DuckDB has transactional DDL and `create or replace`, so a table is replaced by one
//! statement in one transaction: a failed or killed build leaves the previous table. A second
//! process opening the same file gets DuckDB's lock error, reported as "locked by another run".

use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use duckdb::types::Value;
use duckdb::{Connection, InterruptHandle};
use sqlparser::dialect::{Dialect, DuckDbDialect};

use super::flavour::{Capabilities, Flavour, Limits, SeedLoad, SeedValueError, StatementKind};
use super::{Adapter, AdapterError, Cell, ColumnInfo, ExecOutcome, RelationInfo, Table};
use crate::relation::{string_literal, QuoteStyle, RelationName};

/// What DuckDB's SQL and engine can do.
#[derive(Debug, Clone)]
pub struct DuckdbFlavour {
    capabilities: Capabilities,
}

impl Default for DuckdbFlavour {
    fn default() -> Self {
        DuckdbFlavour {
            capabilities: Capabilities {
                transactions: true,
                transactional_ddl: true,
                create_or_replace_table: true,
                create_or_replace_view: true,
                merge: true,
                comments: true,
                seeds: SeedLoad::EngineReadsFile,
                reads_local_files: true,
                views_bind_to_tables: false,
                batch_column_tests: false,
                late_binding_views: true,
                batch_state_writes: false,
                concurrent_batches: false,
                alter_type_in_transaction: true,
            },
        }
    }
}

static DUCKDB_DIALECT: DuckDbDialect = DuckDbDialect {};

impl Flavour for DuckdbFlavour {
    fn name(&self) -> &'static str {
        "duckdb"
    }

    /// DuckDB keeps each table's row count (`estimated_size`, exact for DuckDB's own tables).
    fn row_counts_sql(&self, database: Option<&str>, schema: &str) -> Option<String> {
        let database = match database {
            Some(db) => format!(
                " and database_name = {}",
                crate::relation::string_literal(db)
            ),
            None => String::new(),
        };
        Some(format!(
            "select table_name, estimated_size from duckdb_tables() where schema_name = {}{database}",
            crate::relation::string_literal(schema)
        ))
    }

    fn dialect(&self) -> &(dyn Dialect + Send + Sync) {
        &DUCKDB_DIALECT
    }

    fn quote_style(&self, _kind: StatementKind) -> QuoteStyle {
        QuoteStyle::default()
    }

    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    fn limits(&self) -> Limits {
        Limits::default()
    }

    fn seed_value_error(&self, message: &str) -> Option<SeedValueError> {
        csv_value_error(message)
    }

    fn csv_select(
        &self,
        path: &std::path::Path,
        options: &super::CsvOptions,
        types: &[(String, String)],
    ) -> Option<String> {
        let mut read_options = vec![
            "header = true".to_string(),
            "auto_detect = true".to_string(),
            format!("delim = {}", string_literal(&options.delimiter.to_string())),
            format!("quote = {}", string_literal(&options.quote.to_string())),
        ];
        if !types.is_empty() {
            let entries: Vec<String> = types
                .iter()
                .map(|(column, ty)| format!("{}: {}", string_literal(column), string_literal(ty)))
                .collect();
            read_options.push(format!("types = {{{}}}", entries.join(", ")));
        }
        Some(format!(
            "select * from read_csv({}, {})",
            string_literal(&path.to_string_lossy()),
            read_options.join(", ")
        ))
    }

    fn catalog_sql(&self, database: Option<&str>, schema: &str) -> Option<String> {
        // `duckdb_columns()` reads the columns the catalog stores (a view's as of its creation)
        // without binding anything: a view over files costs no file read here.
        let catalog_filter = match database {
            Some(db) => format!(" and t.table_catalog = {}", string_literal(db)),
            None => String::new(),
        };
        Some(format!(
            "select t.table_name, t.table_type, c.column_name, c.data_type \
             from information_schema.tables t \
             left join duckdb_columns() c \
               on c.database_name = t.table_catalog and c.schema_name = t.table_schema \
              and c.table_name = t.table_name \
             where t.table_schema = {}{catalog_filter} \
             order by t.table_name, c.column_index",
            string_literal(schema)
        ))
    }

    fn is_view_kind(&self, kind: &str) -> bool {
        kind.eq_ignore_ascii_case("VIEW")
    }
}

/// Reads DuckDB's CSV value error: `CSV Error on Line: 3` (the header is line 1),
/// `column "amount"` and `string "abc"`.
fn csv_value_error(message: &str) -> Option<SeedValueError> {
    let after = |marker: &str| -> Option<&str> {
        let start = message.find(marker)? + marker.len();
        Some(&message[start..])
    };
    let quoted = |marker: &str| -> Option<String> {
        let rest = after(marker)?.strip_prefix('"')?;
        Some(rest[..rest.find('"')?].to_string())
    };
    let rest = after("CSV Error on Line: ")?;
    let line = rest
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()?;
    Some(SeedValueError {
        line,
        column: quoted("column ").unwrap_or_else(|| "?".into()),
        value: quoted("string ").unwrap_or_default(),
        detail: after("to '")
            .and_then(|rest| rest.split('\'').next())
            .map(|ty| format!(" ({ty})"))
            .unwrap_or_default(),
    })
}

/// An open DuckDB database.
pub struct DuckdbAdapter {
    path: String,
    /// The connection new ones are cloned from (they share the database instance).
    base: Mutex<Connection>,
    idle: Mutex<Vec<Connection>>,
    interrupts: Mutex<Vec<Arc<InterruptHandle>>>,
    /// The connections running work a cancel must stop (not cleanup), by a work number:
    /// DuckDB forgets an interrupt that arrives before a statement starts, so a cancel keeps
    /// interrupting these until they are done.
    in_flight: Arc<Mutex<std::collections::HashMap<u64, Arc<InterruptHandle>>>>,
    next_work: std::sync::atomic::AtomicU64,
    cancelled: Arc<super::Cancellation>,
    /// Nanoseconds spent inside DuckDB calls, summed over connections.
    busy: Arc<std::sync::atomic::AtomicU64>,
    schemas: super::KnownSchemas,
    flavour: Arc<dyn Flavour>,
}

impl std::fmt::Debug for DuckdbAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DuckdbAdapter")
            .field("path", &self.path)
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn database_error(err: duckdb::Error) -> AdapterError {
    let message = err.to_string();
    if message.contains("INTERRUPT") || message.contains("Interrupted") {
        return AdapterError::Cancelled;
    }
    AdapterError::Database {
        message,
        retryable: false,
    }
}

fn join_error(err: tokio::task::JoinError) -> AdapterError {
    AdapterError::Internal(format!("a DuckDB task failed: {err}"))
}

/// Whether the database `config` names is there to open without creating it.
pub fn exists(config: &crate::project::target::DuckdbConfig) -> bool {
    match config.path.as_deref() {
        None | Some(":memory:") => true,
        Some(path) => std::path::Path::new(path).exists(),
    }
}

fn open_connection(path: &str) -> Result<Connection, AdapterError> {
    let result = if path == ":memory:" {
        Connection::open_in_memory()
    } else {
        if let Some(parent) = std::path::Path::new(path).parent() {
            std::fs::create_dir_all(parent).map_err(|e| AdapterError::Connect {
                adapter: "duckdb",
                message: format!("cannot create `{}`: {e}", parent.display()),
            })?;
        }
        Connection::open(path)
    };
    result.map_err(|err| {
        let message = err.to_string();
        if message.contains("lock") {
            AdapterError::Locked {
                what: format!("the database `{path}`"),
                detail: message,
            }
        } else {
            AdapterError::Connect {
                adapter: "duckdb",
                message,
            }
        }
    })
}

impl DuckdbAdapter {
    /// Opens (creating if needed) the database at `path`, `:memory:` for an in-memory one.
    /// `setup` statements (settings, attachments) run once on the shared database instance.
    pub async fn open(
        path: &str,
        setup: Vec<String>,
        threads: usize,
    ) -> Result<DuckdbAdapter, AdapterError> {
        let owned = path.to_string();
        let base = tokio::task::spawn_blocking(move || {
            let connection = open_connection(&owned)?;
            for statement in &setup {
                connection
                    .execute_batch(statement)
                    .map_err(|e| AdapterError::Connect {
                        adapter: "duckdb",
                        message: format!("`{statement}` failed: {e}"),
                    })?;
            }
            Ok::<_, AdapterError>(connection)
        })
        .await
        .map_err(join_error)??;
        let interrupts = vec![base.interrupt_handle()];
        let adapter = DuckdbAdapter {
            path: path.to_string(),
            base: Mutex::new(base),
            idle: Mutex::new(Vec::with_capacity(threads)),
            interrupts: Mutex::new(interrupts),
            in_flight: Arc::default(),
            next_work: std::sync::atomic::AtomicU64::new(0),
            cancelled: Arc::default(),
            busy: Arc::new(std::sync::atomic::AtomicU64::new(0)),
            schemas: super::KnownSchemas::default(),
            flavour: Arc::new(DuckdbFlavour::default()),
        };
        Ok(adapter)
    }

    fn checkout(&self) -> Result<Connection, AdapterError> {
        if let Some(connection) = lock(&self.idle).pop() {
            return Ok(connection);
        }
        let connection = lock(&self.base).try_clone().map_err(database_error)?;
        lock(&self.interrupts).push(connection.interrupt_handle());
        Ok(connection)
    }

    /// Runs `work` on a pooled connection on a blocking thread; `stoppable` work (anything but
    /// cleanup) is registered for [`Adapter::cancel`] before it checks for a cancel.
    async fn with_connection<T, F>(&self, stoppable: bool, work: F) -> Result<T, AdapterError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, AdapterError> + Send + 'static,
    {
        let connection = self.checkout()?;
        let busy = self.busy.clone();
        let in_flight = self.in_flight.clone();
        let number = self
            .next_work
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if stoppable {
            lock(&in_flight).insert(number, connection.interrupt_handle());
        }
        let (connection, result) = tokio::task::spawn_blocking(move || {
            let clock = std::time::Instant::now();
            let result = work(&connection);
            lock(&in_flight).remove(&number);
            let spent = u64::try_from(clock.elapsed().as_nanos()).unwrap_or(u64::MAX);
            busy.fetch_add(spent, std::sync::atomic::Ordering::Relaxed);
            (connection, result)
        })
        .await
        .map_err(join_error)?;
        lock(&self.idle).push(connection);
        result
    }
}

fn cell(value: Value) -> Cell {
    match value {
        Value::Null => Cell::Null,
        Value::Boolean(b) => Cell::Bool(b),
        Value::TinyInt(i) => Cell::Int(i.into()),
        Value::SmallInt(i) => Cell::Int(i.into()),
        Value::Int(i) => Cell::Int(i.into()),
        Value::BigInt(i) => Cell::Int(i),
        Value::UTinyInt(i) => Cell::Int(i.into()),
        Value::USmallInt(i) => Cell::Int(i.into()),
        Value::UInt(i) => Cell::Int(i.into()),
        Value::UBigInt(i) => i64::try_from(i)
            .map(Cell::Int)
            .unwrap_or_else(|_| Cell::Text(i.to_string())),
        Value::HugeInt(i) => i64::try_from(i)
            .map(Cell::Int)
            .unwrap_or_else(|_| Cell::Text(i.to_string())),
        Value::UHugeInt(i) => i64::try_from(i)
            .map(Cell::Int)
            .unwrap_or_else(|_| Cell::Text(i.to_string())),
        Value::Float(x) => Cell::Float(x.into()),
        Value::Double(x) => Cell::Float(x),
        Value::Decimal(d) => Cell::Text(d.to_string()),
        Value::Text(s) | Value::Enum(s) => Cell::Text(s),
        Value::Date32(days) => Cell::Text(
            chrono::NaiveDate::from_ymd_opt(1970, 1, 1)
                .and_then(|epoch| epoch.checked_add_signed(chrono::Duration::days(days.into())))
                .map(|d| d.to_string())
                .unwrap_or_else(|| days.to_string()),
        ),
        Value::Timestamp(unit, v) => {
            let micros = unit.to_micros(v);
            Cell::Text(
                chrono::DateTime::from_timestamp_micros(micros)
                    .map(|t| t.naive_utc().format("%Y-%m-%d %H:%M:%S%.f").to_string())
                    .unwrap_or_else(|| micros.to_string()),
            )
        }
        other => Cell::Text(format!("{other:?}")),
    }
}

fn run_query(connection: &Connection, sql: &str) -> Result<Table, AdapterError> {
    let mut statement = connection.prepare(sql).map_err(database_error)?;
    let mut rows = statement.query([]).map_err(database_error)?;
    let columns: Vec<ColumnInfo> = match rows.as_ref() {
        Some(statement) => (0..statement.column_count())
            .map(|i| ColumnInfo {
                name: statement
                    .column_name(i)
                    .map(|n| n.to_string())
                    .unwrap_or_default(),
                data_type: format!("{:?}", statement.column_type(i)),
            })
            .collect(),
        None => Vec::new(),
    };
    // Columns of DuckDB's NULL type (`select null as x`) hold only NULLs, and the driver
    // cannot read them: answer NULL without asking.
    let null_typed: Vec<bool> = columns.iter().map(|c| c.data_type == "Null").collect();
    let mut table_rows = Vec::new();
    while let Some(row) = rows.next().map_err(database_error)? {
        let mut cells = Vec::with_capacity(columns.len());
        for (i, null) in null_typed.iter().enumerate() {
            if *null {
                cells.push(Cell::Null);
                continue;
            }
            let value: Value = row.get(i).map_err(database_error)?;
            cells.push(cell(value));
        }
        table_rows.push(cells);
    }
    Ok(Table {
        columns,
        rows: table_rows,
    })
}

/// Whether a statement reports no rows worth counting (views, drops, renames, comments,
/// schemas): those run unprepared, which skips a second parse and bind (measured: a third of a
/// `create view`'s time).
fn counts_no_rows(sql: &str) -> bool {
    let head: String = sql
        .trim_start()
        .chars()
        .take(40)
        .collect::<String>()
        .to_ascii_lowercase();
    let head = head.split_whitespace().collect::<Vec<_>>();
    matches!(
        head.as_slice(),
        ["drop", ..]
            | ["alter", ..]
            | ["comment", ..]
            | ["create", "schema", ..]
            | ["create", "view", ..]
            | ["create", "or", "replace", "view", ..]
    )
}

fn run_statement(connection: &Connection, sql: &str) -> Result<ExecOutcome, AdapterError> {
    if counts_no_rows(sql) {
        connection.execute_batch(sql).map_err(database_error)?;
        return Ok(ExecOutcome::default());
    }
    match connection.execute(sql, []) {
        Ok(rows) => Ok(ExecOutcome {
            rows_affected: Some(rows as u64),
        }),
        // Several statements in one string: run them as a batch.
        Err(err) if err.to_string().contains("multiple statements") => {
            connection.execute_batch(sql).map_err(database_error)?;
            Ok(ExecOutcome::default())
        }
        Err(err) => Err(database_error(err)),
    }
}

/// The statements that apply a target's `settings:` and `attach:` when the database opens.
pub fn setup_statements(config: &crate::project::target::DuckdbConfig) -> Vec<String> {
    let mut statements = Vec::new();
    for (key, value) in &config.settings {
        let value = match value {
            serde_json::Value::String(s) => string_literal(s),
            other => other.to_string(),
        };
        statements.push(format!("set {key} = {value}"));
    }
    for attached in &config.attach {
        let mut sql = format!("attach if not exists {}", string_literal(&attached.path));
        if let Some(alias) = &attached.alias {
            sql.push_str(&format!(" as \"{}\"", alias.replace('"', "\"\"")));
        }
        if attached.read_only {
            sql.push_str(" (read_only)");
        }
        statements.push(sql);
    }
    statements
}

#[async_trait]
impl Adapter for DuckdbAdapter {
    fn flavour(&self) -> &dyn Flavour {
        self.flavour.as_ref()
    }

    async fn execute(&self, sql: &str) -> Result<ExecOutcome, AdapterError> {
        let sql = sql.to_string();
        let cancelled = self.cancelled.clone();
        let stoppable = !super::Cancellation::is_cleanup(&sql);
        self.with_connection(stoppable, move |c| {
            cancelled.admit(&sql)?;
            run_statement(c, &sql)
        })
        .await
    }

    async fn execute_all(
        &self,
        statements: &[String],
        transaction: bool,
    ) -> Result<Vec<ExecOutcome>, AdapterError> {
        let statements = statements.to_vec();
        let cancelled = self.cancelled.clone();
        self.with_connection(true, move |c| {
            cancelled.check()?;
            if transaction {
                c.execute_batch("begin transaction")
                    .map_err(database_error)?;
            }
            let mut outcomes = Vec::with_capacity(statements.len());
            for statement in &statements {
                let run = cancelled.check().and_then(|()| run_statement(c, statement));
                match run {
                    Ok(outcome) => outcomes.push(outcome),
                    Err(err) => {
                        if transaction {
                            // The statement's error is what matters; a failed rollback after a
                            // failed statement leaves nothing committed either way.
                            let _ = c.execute_batch("rollback");
                        }
                        return Err(err);
                    }
                }
            }
            if transaction {
                c.execute_batch("commit").map_err(database_error)?;
            }
            Ok(outcomes)
        })
        .await
    }

    async fn query(&self, sql: &str) -> Result<Table, AdapterError> {
        let sql = sql.to_string();
        let cancelled = self.cancelled.clone();
        self.with_connection(true, move |c| {
            cancelled.check()?;
            run_query(c, &sql)
        })
        .await
    }

    async fn relation(&self, name: &RelationName) -> Result<Option<RelationInfo>, AdapterError> {
        // One question of the catalog: `duckdb_columns()` reads stored columns and binds
        // nothing, so a view over files is not read to be described.
        let catalog_filter = match &name.database {
            Some(db) => format!(" and t.table_catalog = {}", string_literal(db)),
            None => String::new(),
        };
        let sql = format!(
            "select t.table_type, c.column_name, c.data_type \
             from information_schema.tables t \
             left join duckdb_columns() c \
               on c.database_name = t.table_catalog and c.schema_name = t.table_schema \
              and c.table_name = t.table_name \
             where t.table_schema = {} and t.table_name = {}{catalog_filter} \
             order by c.column_index",
            string_literal(&name.schema),
            string_literal(&name.identifier),
        );
        let table = self.query(&sql).await?;
        Ok(RelationInfo::from_catalog_rows(name, &table, |k| {
            k.eq_ignore_ascii_case("VIEW")
        }))
    }

    async fn cancel(&self) -> Result<(), AdapterError> {
        self.cancelled.cancel();
        for handle in lock(&self.interrupts).iter() {
            handle.interrupt();
        }
        // Work that passed its cancel check just before may start its statement after the
        // interrupt above, which DuckDB then forgets: interrupt it until it ends.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let running: Vec<Arc<InterruptHandle>> =
                lock(&self.in_flight).values().cloned().collect();
            if running.is_empty() || std::time::Instant::now() > deadline {
                return Ok(());
            }
            for handle in running {
                handle.interrupt();
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    fn busy_time(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.busy.load(std::sync::atomic::Ordering::Relaxed))
    }

    fn known_schemas(&self) -> Option<&super::KnownSchemas> {
        Some(&self.schemas)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
    }

    #[test]
    fn executes_queries_and_reads_the_catalog() {
        runtime().block_on(async {
            let adapter = DuckdbAdapter::open(":memory:", Vec::new(), 2).await.unwrap();
            adapter.execute("create schema s").await.unwrap();
            let outcome = adapter
                .execute("create table s.t as select 1 as id, 'a' as name, date '2024-01-02' as d, 1.50::decimal(5,2) as amount")
                .await
                .unwrap();
            assert_eq!(outcome.rows_affected, Some(1));
            let table = adapter.query("select * from s.t").await.unwrap();
            assert_eq!(
                table.columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
                ["id", "name", "d", "amount"]
            );
            assert_eq!(
                table.rows,
                vec![vec![
                    Cell::Int(1),
                    Cell::Text("a".into()),
                    Cell::Text("2024-01-02".into()),
                    Cell::Text("1.50".into())
                ]]
            );
            let info = adapter
                .relation(&RelationName::new(Some("memory".into()), "s", "t"))
                .await
                .unwrap()
                .expect("the table exists");
            assert_eq!(info.kind, crate::adapter::RelationKind::Table);
            assert_eq!(info.columns.len(), 4);
            assert_eq!(info.columns[0].name, "id");
            assert!(adapter
                .relation(&RelationName::new(None, "s", "missing"))
                .await
                .unwrap()
                .is_none());
        });
    }

    #[test]
    fn statements_without_row_counts_are_told_apart() {
        assert!(counts_no_rows("create or replace view \"v\" as (select 1)"));
        assert!(counts_no_rows("  DROP table if exists t"));
        assert!(counts_no_rows("alter table t rename to u"));
        assert!(!counts_no_rows("create or replace table t as (select 1)"));
        assert!(!counts_no_rows("insert into t values (1)"));
        assert!(!counts_no_rows("delete from t"));
    }

    #[test]
    fn a_failed_transaction_changes_nothing() {
        runtime().block_on(async {
            let adapter = DuckdbAdapter::open(":memory:", Vec::new(), 1)
                .await
                .unwrap();
            adapter
                .execute("create table t as select 1 as id")
                .await
                .unwrap();
            let err = adapter
                .execute_all(
                    &[
                        "drop table t".to_string(),
                        "select * from no_such_table".to_string(),
                    ],
                    true,
                )
                .await
                .unwrap_err();
            assert!(err.to_string().contains("no_such_table"), "{err}");
            let table = adapter.query("select count(*) from t").await.unwrap();
            assert_eq!(
                table.rows,
                vec![vec![Cell::Int(1)]],
                "the drop was rolled back"
            );
        });
    }
}

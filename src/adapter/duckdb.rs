//! The embedded DuckDB adapter: a database file (or `:memory:`) opened in-process, with one
//! connection per worker cloned from the first, all calls run off the async runtime's workers.
//!
//! DuckDB has transactional DDL and renames, so tables are built aside and swapped in one
//! transaction. A second process opening the same file gets DuckDB's lock error, reported as
//! "locked by another run".

use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use duckdb::types::Value;
use duckdb::{Connection, InterruptHandle};

use super::{
    Adapter, AdapterError, Capabilities, Cell, ColumnInfo, ExecOutcome, RelationInfo, RelationKind,
    Table,
};
use crate::project::AdapterKind;
use crate::relation::{string_literal, RelationName};

/// An open DuckDB database.
pub struct DuckdbAdapter {
    path: String,
    /// The connection new ones are cloned from (they share the database instance).
    base: Mutex<Connection>,
    idle: Mutex<Vec<Connection>>,
    interrupts: Mutex<Vec<Arc<InterruptHandle>>>,
    cancelled: Arc<super::Cancellation>,
    /// Nanoseconds spent inside DuckDB calls, summed over connections.
    busy: Arc<std::sync::atomic::AtomicU64>,
    schemas: super::KnownSchemas,
    capabilities: Capabilities,
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
            cancelled: Arc::default(),
            busy: Arc::new(std::sync::atomic::AtomicU64::new(0)),
            schemas: super::KnownSchemas::default(),
            capabilities: Capabilities {
                transactional_ddl: true,
                rename_relation: true,
                create_or_replace_table: true,
                create_or_replace_view: true,
                merge: true,
                comments: true,
                reads_local_files: true,
                drop_cascade: false,
                batch_column_tests: false,
                late_binding_views: true,
            },
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

    /// Runs `work` on a pooled connection on a blocking thread.
    async fn with_connection<T, F>(&self, work: F) -> Result<T, AdapterError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, AdapterError> + Send + 'static,
    {
        let connection = self.checkout()?;
        let busy = self.busy.clone();
        let (connection, result) = tokio::task::spawn_blocking(move || {
            let clock = std::time::Instant::now();
            let result = work(&connection);
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

fn run_statement(connection: &Connection, sql: &str) -> Result<ExecOutcome, AdapterError> {
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

/// The columns DuckDB infers for a CSV file with a header, so warehouses that load files over
/// the wire (PostgreSQL's COPY) can create a typed table first. Runs on an in-memory database.
pub fn infer_csv_columns(
    path: &std::path::Path,
    options: &super::CsvOptions,
) -> Result<Vec<ColumnInfo>, AdapterError> {
    describe_local(&format!(
        "select * from read_csv({}, header = true, auto_detect = true, delim = {}, quote = {})",
        string_literal(&path.to_string_lossy()),
        string_literal(&options.delimiter.to_string()),
        string_literal(&options.quote.to_string()),
    ))
}

/// The columns a query over local files gives, read with the bundled DuckDB (warehouses that
/// stage landing files type their tables from it).
pub fn describe_local(select: &str) -> Result<Vec<ColumnInfo>, AdapterError> {
    let connection = Connection::open_in_memory().map_err(database_error)?;
    let table = run_query(&connection, &format!("describe {select}"))?;
    Ok(table
        .rows
        .into_iter()
        .filter_map(|row| match (row.first(), row.get(1)) {
            (Some(Cell::Text(name)), Some(Cell::Text(data_type))) => Some(ColumnInfo {
                name: name.clone(),
                data_type: data_type.clone(),
            }),
            _ => None,
        })
        .collect())
}

/// Writes a query's rows over local files to a CSV file with a header, with the bundled
/// DuckDB; empty strings are quoted and NULLs left empty, as PostgreSQL's COPY reads them.
pub fn export_csv(select: &str, out: &std::path::Path) -> Result<(), AdapterError> {
    let connection = Connection::open_in_memory().map_err(database_error)?;
    connection
        .execute_batch(&format!(
            "copy ({select}) to {} (format csv, header true)",
            string_literal(&out.to_string_lossy())
        ))
        .map_err(database_error)
}

#[async_trait]
impl Adapter for DuckdbAdapter {
    fn kind(&self) -> AdapterKind {
        AdapterKind::Duckdb
    }

    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    async fn execute(&self, sql: &str) -> Result<ExecOutcome, AdapterError> {
        let sql = sql.to_string();
        let cancelled = self.cancelled.clone();
        self.with_connection(move |c| {
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
        self.with_connection(move |c| {
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
        self.with_connection(move |c| {
            cancelled.check()?;
            run_query(c, &sql)
        })
        .await
    }

    async fn relation_kind(
        &self,
        name: &RelationName,
    ) -> Result<Option<RelationKind>, AdapterError> {
        let catalog_filter = match &name.database {
            Some(db) => format!(" and table_catalog = {}", string_literal(db)),
            None => String::new(),
        };
        let kind_sql = format!(
            "select table_type from information_schema.tables \
             where table_schema = {} and table_name = {}{catalog_filter}",
            string_literal(&name.schema),
            string_literal(&name.identifier),
        );
        let kinds = self.query(&kind_sql).await?;
        Ok(kinds.rows.first().map(|first| match first.first() {
            Some(Cell::Text(k)) if k.eq_ignore_ascii_case("VIEW") => RelationKind::View,
            _ => RelationKind::Table,
        }))
    }

    async fn relation(&self, name: &RelationName) -> Result<Option<RelationInfo>, AdapterError> {
        // Two cheap questions instead of one join: `information_schema.columns` enumerates every
        // column of every table (perf showed it dominating builds of 1,000 models), while the
        // kind needs only the table list and `describe` binds the one relation by name.
        let Some(kind) = self.relation_kind(name).await? else {
            return Ok(None);
        };
        let described = self
            .query(&format!(
                "describe {}",
                name.render(&crate::relation::QuoteStyle::default())
            ))
            .await?;
        let columns = described
            .rows
            .iter()
            .filter_map(|row| match (row.first(), row.get(1)) {
                (Some(Cell::Text(column)), Some(Cell::Text(data_type))) => Some(ColumnInfo {
                    name: column.clone(),
                    data_type: data_type.clone(),
                }),
                _ => None,
            })
            .collect();
        Ok(Some(RelationInfo {
            name: name.clone(),
            kind,
            columns,
        }))
    }

    async fn cancel(&self) -> Result<(), AdapterError> {
        self.cancelled.cancel();
        for handle in lock(&self.interrupts).iter() {
            handle.interrupt();
        }
        Ok(())
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

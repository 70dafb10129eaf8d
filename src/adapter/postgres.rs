//! PostgreSQL: its [`PostgresFlavour`] (what differs in its SQL) and [`PostgresAdapter`], the
//! wire transport ([`super::wire`]) plus what only PostgreSQL does: an advisory lock that keeps
//! two runs off one target, `COPY … FROM STDIN` for seeds and landing files, views re-created
//! from `pg_depend` after a table they read is replaced, and indexes on staged files.

use std::sync::Arc;

use async_trait::async_trait;
use sqlparser::dialect::{Dialect, PostgreSqlDialect};
use tokio_postgres::error::SqlState;

use super::ansi;
use super::flavour::{
    Capabilities, Flavour, Limits, Lowered, SeedLoad, SeedValueError, StatementKind,
};
use super::wire::{WireSettings, WireTransport};
use super::{Adapter, AdapterError, Cell, ExecOutcome, FileLoad, RelationInfo, Table};
use crate::plan::Step;
use crate::project::target::PostgresConfig;
use crate::relation::{string_literal, QuoteStyle, RelationName};

/// What PostgreSQL's SQL can do. `merge` depends on the server (`MERGE` came with 15): the
/// flavour known before connecting says no; the connected adapter's says what the server has.
#[derive(Debug, Clone)]
pub struct PostgresFlavour {
    capabilities: Capabilities,
}

impl Default for PostgresFlavour {
    fn default() -> Self {
        PostgresFlavour::for_server(None)
    }
}

impl PostgresFlavour {
    /// The flavour of a server of `version_num` (`server_version_num`, e.g. 150004).
    pub fn for_server(version_num: Option<u32>) -> PostgresFlavour {
        PostgresFlavour {
            capabilities: Capabilities {
                transactions: true,
                transactional_ddl: true,
                create_or_replace_table: false,
                // `create or replace view` cannot drop or retype columns: views are dropped and
                // created in one transaction instead, which PostgreSQL makes atomic.
                create_or_replace_view: false,
                merge: version_num.is_some_and(|v| v >= 150_000),
                comments: true,
                seeds: SeedLoad::BulkLoad,
                reads_local_files: false,
                views_bind_to_tables: true,
                batch_column_tests: true,
                late_binding_views: false,
                batch_state_writes: false,
                concurrent_batches: true,
                alter_type_in_transaction: true,
            },
        }
    }
}

static POSTGRES_DIALECT: PostgreSqlDialect = PostgreSqlDialect {};

/// DDL names stay within the connected database (`create schema "db"."s"` is not valid
/// PostgreSQL); templates still render three-part names for queries.
pub const POSTGRES_STYLE: QuoteStyle = QuoteStyle {
    quote: '"',
    include_database: false,
};

impl Flavour for PostgresFlavour {
    fn name(&self) -> &'static str {
        "postgres"
    }

    /// The planner's estimate (`reltuples`: -1 until the table is first analyzed).
    fn row_counts_sql(&self, _database: Option<&str>, schema: &str) -> Option<String> {
        Some(format!(
            "select c.relname, cast(c.reltuples as bigint) from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = {} and c.relkind in ('r', 'p')",
            crate::relation::string_literal(schema)
        ))
    }

    fn dialect(&self) -> &(dyn Dialect + Send + Sync) {
        &POSTGRES_DIALECT
    }

    fn quote_style(&self, _kind: StatementKind) -> QuoteStyle {
        POSTGRES_STYLE
    }

    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    fn limits(&self) -> Limits {
        Limits {
            identifier_length: 63,
            ..Limits::default()
        }
    }

    fn lower(&self, step: &Step) -> Vec<Lowered> {
        match step {
            Step::IndexColumn { relation, column } => {
                // `<table>__strata_<last word of the column>_idx`: `_source_file` gives the
                // name earlier versions created, so no second index appears beside it.
                let word = column.rsplit('_').find(|w| !w.is_empty()).unwrap_or(column);
                let index = format!("{}__strata_{word}_idx", relation.identifier);
                vec![Lowered::sql(
                    StatementKind::Ddl,
                    format!(
                        "create index if not exists {} on {} ({})",
                        POSTGRES_STYLE.quote_identifier(&index),
                        relation.render(&POSTGRES_STYLE),
                        POSTGRES_STYLE.quote_identifier(column)
                    ),
                )]
            }
            other => super::ansi::lower(self, other),
        }
    }

    fn column_type_for(&self, duckdb_type: &str) -> String {
        postgres_type(duckdb_type)
    }

    fn seed_value_error(&self, message: &str) -> Option<SeedValueError> {
        copy_value_error(message)
    }

    fn catalog_sql(&self, _database: Option<&str>, schema: &str) -> Option<String> {
        // pg_catalog rather than information_schema: it also sees relations the user may not
        // select from, and answers in one query with kinds and columns in order.
        Some(format!(
            "select c.relname::text, c.relkind::text, a.attname::text, \
                    format_type(a.atttypid, a.atttypmod) \
             from pg_catalog.pg_class c \
             join pg_catalog.pg_namespace n on n.oid = c.relnamespace \
             left join pg_catalog.pg_attribute a \
               on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped \
             where n.nspname = {} and c.relkind in ('r', 'v', 'm', 'p', 'f') \
             order by c.relname, a.attnum",
            string_literal(schema)
        ))
    }

    fn grants_sql(&self, relation: &RelationName) -> Option<String> {
        Some(ansi::grants_sql(relation))
    }

    fn is_view_kind(&self, kind: &str) -> bool {
        kind == "v" || kind == "m"
    }
}

/// PostgreSQL's retryable errors: serialization failures, deadlocks, a server going down or
/// coming up.
fn retryable(state: &SqlState, _message: &str) -> bool {
    super::wire::retryable_state(state)
}

/// Reads PostgreSQL's COPY value error: `<problem>\ncontext: COPY <table>, line 3, column
/// amount: "abc"`.
fn copy_value_error(message: &str) -> Option<SeedValueError> {
    let start = message.find("context: COPY ")? + "context: COPY ".len();
    let context = &message[start..];
    let number = |text: &str| -> Option<usize> {
        text.split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    };
    let line = number(context.split(", line ").nth(1)?)?;
    let column_part = context.split(", column ").nth(1)?;
    let (column, value) = match column_part.split_once(": ") {
        Some((column, value)) => (
            column.to_string(),
            value.trim().trim_matches('"').to_string(),
        ),
        None => (column_part.trim().to_string(), String::new()),
    };
    let problem = message.lines().next().unwrap_or_default();
    Some(SeedValueError {
        line,
        column,
        value,
        detail: format!(" ({problem})"),
    })
}

/// An advisory lock key for a target: the same database and schema give the same key.
pub fn lock_key(database: &str, schema: &str) -> i64 {
    let digest = crate::util::sha256_hex(format!("strata:{database}:{schema}").as_bytes());
    let prefix = u64::from_str_radix(&digest[..16], 16).unwrap_or(0);
    prefix as i64
}

/// PostgreSQL through the wire transport.
pub struct PostgresAdapter {
    wire: WireTransport,
    flavour: Arc<dyn Flavour>,
    database: String,
    schema: String,
    /// The session holding the run's advisory lock.
    lock_session: tokio::sync::Mutex<Option<tokio_postgres::Client>>,
    schemas: super::KnownSchemas,
}

impl std::fmt::Debug for PostgresAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresAdapter")
            .field("database", &self.database)
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

impl PostgresAdapter {
    /// Connects once to check the settings (and read the server's version); more connections
    /// open as work needs them.
    pub async fn connect(
        settings: &PostgresConfig,
        threads: usize,
    ) -> Result<PostgresAdapter, AdapterError> {
        let search_path = settings
            .search_path
            .clone()
            .unwrap_or_else(|| format!("\"{}\"", settings.schema.replace('"', "\"\"")));
        let wire = WireTransport::connect(
            &WireSettings {
                adapter: "postgres",
                host: settings.host.clone(),
                port: settings.port,
                user: settings.user.clone(),
                password: settings.password.clone(),
                dbname: settings.dbname.clone(),
                sslmode: settings.sslmode.clone(),
                connect_timeout: settings.connect_timeout,
                keepalives_idle: settings.keepalives_idle,
                search_path: Some(search_path),
                retries: settings.retries,
                threads,
            },
            retryable,
        )
        .await?;
        let version = wire.query("show server_version_num").await?;
        let version_num = match version.rows.first().and_then(|r| r.first()) {
            Some(Cell::Text(text)) => text.trim().parse().ok(),
            Some(Cell::Int(n)) => u32::try_from(*n).ok(),
            _ => None,
        };
        Ok(PostgresAdapter {
            wire,
            flavour: Arc::new(PostgresFlavour::for_server(version_num)),
            database: settings.dbname.clone(),
            schema: settings.schema.clone(),
            lock_session: tokio::sync::Mutex::new(None),
            schemas: super::KnownSchemas::default(),
        })
    }
}

#[async_trait]
impl Adapter for PostgresAdapter {
    fn flavour(&self) -> &dyn Flavour {
        self.flavour.as_ref()
    }

    async fn execute(&self, sql: &str) -> Result<ExecOutcome, AdapterError> {
        self.wire.execute(sql).await
    }

    async fn execute_all(
        &self,
        statements: &[String],
        transaction: bool,
    ) -> Result<Vec<ExecOutcome>, AdapterError> {
        self.wire.execute_all(statements, transaction).await
    }

    async fn query(&self, sql: &str) -> Result<Table, AdapterError> {
        self.wire.query(sql).await
    }

    async fn relation(&self, name: &RelationName) -> Result<Option<RelationInfo>, AdapterError> {
        // pg_catalog rather than information_schema: it also sees relations the user may not
        // select from, and answers in one query with the kind and the columns in order.
        let sql = format!(
            "select c.relkind::text, a.attname::text, format_type(a.atttypid, a.atttypmod) \
             from pg_catalog.pg_class c \
             join pg_catalog.pg_namespace n on n.oid = c.relnamespace \
             left join pg_catalog.pg_attribute a \
               on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped \
             where n.nspname = {} and c.relname = {} and c.relkind in ('r', 'v', 'm', 'p', 'f') \
             order by a.attnum",
            string_literal(&name.schema),
            string_literal(&name.identifier),
        );
        let table = self.query(&sql).await?;
        Ok(RelationInfo::from_catalog_rows(name, &table, |k| {
            k == "v" || k == "m"
        }))
    }

    async fn cancel(&self) -> Result<(), AdapterError> {
        self.wire.cancel().await;
        Ok(())
    }

    fn busy_time(&self) -> std::time::Duration {
        self.wire.busy_time()
    }

    fn known_schemas(&self) -> Option<&super::KnownSchemas> {
        Some(&self.schemas)
    }

    async fn lock_target(&self) -> Result<(), AdapterError> {
        let client = self.wire.open().await?;
        let key = lock_key(&self.database, &self.schema);
        let rows = client
            .query_one("select pg_try_advisory_lock($1)", &[&key])
            .await
            .map_err(|e| self.wire.error(&e, false))?;
        let taken: bool = rows.get(0);
        if !taken {
            return Err(AdapterError::Locked {
                what: format!(
                    "the PostgreSQL target (database `{}`, schema `{}`)",
                    self.database, self.schema
                ),
                detail: "another strata run holds this target's advisory lock".into(),
            });
        }
        // The lock lives as long as this session: until the adapter is dropped.
        *self.lock_session.lock().await = Some(client);
        Ok(())
    }

    async fn load_file(&self, load: &FileLoad<'_>) -> Result<u64, AdapterError> {
        self.wire.copy_in(load, &POSTGRES_STYLE).await
    }

    async fn recreate_dependent_views(
        &self,
        relation: &RelationName,
    ) -> Result<Vec<String>, AdapterError> {
        let name = relation.render(&POSTGRES_STYLE);
        let sql = format!(
            "with recursive dependents(oid, depth) as ( \
               select distinct r.ev_class, 1 \
               from pg_catalog.pg_depend d \
               join pg_catalog.pg_rewrite r on r.oid = d.objid \
               where d.refobjid = to_regclass({}) and r.ev_class <> d.refobjid \
               union \
               select distinct r.ev_class, dependents.depth + 1 \
               from dependents \
               join pg_catalog.pg_depend d on d.refobjid = dependents.oid \
               join pg_catalog.pg_rewrite r on r.oid = d.objid \
               where r.ev_class <> dependents.oid and dependents.depth < 100 \
             ) \
             select n.nspname::text, c.relname::text, pg_catalog.pg_get_viewdef(c.oid) \
             from dependents \
             join pg_catalog.pg_class c on c.oid = dependents.oid \
             join pg_catalog.pg_namespace n on n.oid = c.relnamespace \
             where c.relkind = 'v' \
             group by 1, 2, 3 \
             order by max(dependents.depth), 1, 2",
            string_literal(&name)
        );
        let table = self.query(&sql).await?;
        Ok(view_definitions(&table, &POSTGRES_STYLE)
            .iter()
            .map(|(view, definition)| recreate_view_sql(view, definition))
            .collect())
    }
}

/// Rows of `(schema, view, definition)` read from the PostgreSQL catalog (Redshift's too) as
/// the view's rendered name and its definition without a trailing `;`.
pub fn view_definitions(table: &Table, style: &QuoteStyle) -> Vec<(String, String)> {
    table
        .rows
        .iter()
        .filter_map(|row| match (row.first(), row.get(1), row.get(2)) {
            (Some(Cell::Text(schema)), Some(Cell::Text(view)), Some(Cell::Text(definition))) => {
                let name = RelationName::new(None, schema.clone(), view.clone());
                Some((
                    name.render(style),
                    definition.trim().trim_end_matches(';').to_string(),
                ))
            }
            _ => None,
        })
        .collect()
}

/// Recreates a view dropped by `cascade`. In its own subtransaction (a `DO` block with an
/// exception handler): a view the new table no longer satisfies stays dropped, as with
/// dbt-postgres, with a server warning, instead of failing the swap; it is rebuilt when it is a
/// model of the run.
fn recreate_view_sql(view: &str, definition: &str) -> String {
    let create = format!("create view {view} as {definition}");
    format!(
        "do $strata$ begin execute {}; exception when others then raise warning 'strata: view % could not be recreated: %', {}, sqlerrm; end $strata$",
        string_literal(&create),
        string_literal(view)
    )
}

/// The PostgreSQL type for a column DuckDB inferred from a CSV file.
pub fn postgres_type(duckdb_type: &str) -> String {
    let upper = duckdb_type.to_ascii_uppercase();
    match upper.as_str() {
        "BIGINT" | "HUGEINT" | "UBIGINT" => "bigint".into(),
        "INTEGER" | "UINTEGER" | "USMALLINT" => "integer".into(),
        "SMALLINT" | "TINYINT" | "UTINYINT" => "smallint".into(),
        "DOUBLE" => "double precision".into(),
        "FLOAT" => "real".into(),
        "BOOLEAN" => "boolean".into(),
        "DATE" => "date".into(),
        "TIME" => "time".into(),
        "TIMESTAMP" | "TIMESTAMP_NS" | "TIMESTAMP_MS" | "TIMESTAMP_S" => "timestamp".into(),
        "TIMESTAMP WITH TIME ZONE" => "timestamptz".into(),
        "UUID" => "uuid".into(),
        "INTERVAL" => "interval".into(),
        "BLOB" => "bytea".into(),
        _ if upper.starts_with("DECIMAL") => format!("numeric{}", &duckdb_type[7..]),
        _ => "text".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duckdb_types_map_to_postgres_types() {
        assert_eq!(postgres_type("BIGINT"), "bigint");
        assert_eq!(postgres_type("DECIMAL(18,2)"), "numeric(18,2)");
        assert_eq!(postgres_type("VARCHAR"), "text");
        assert_eq!(postgres_type("TIMESTAMP WITH TIME ZONE"), "timestamptz");
    }

    #[test]
    fn lock_keys_are_stable_per_target() {
        assert_eq!(lock_key("db", "s"), lock_key("db", "s"));
        assert_ne!(lock_key("db", "s"), lock_key("db", "t"));
    }
}

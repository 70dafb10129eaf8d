//! PostgreSQL over the wire protocol (tokio-postgres): a pool sized by `threads`, TLS through
//! rustls by `sslmode`, statement cancel, typed query results, `COPY … FROM STDIN` for bulk
//! loads, an advisory lock that keeps two runs off one target, and the shared retry policy for
//! serialization failures, deadlocks and dropped connections. Redshift speaks this protocol and
//! will reuse this transport.
//!
//! Passwords go to the driver only; nothing here formats a `Secret`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::SinkExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;
use tokio_postgres::{CancelToken, Client, Config, NoTls, SimpleQueryMessage};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::retry::RetryPolicy;
use super::{
    Adapter, AdapterError, Capabilities, Cell, ColumnInfo, CsvLoad, ExecOutcome, RelationInfo,
    Table,
};
use crate::project::target::PostgresConfig;
use crate::project::AdapterKind;
use crate::relation::{string_literal, RelationName};

/// How the connection is encrypted (libpq's `sslmode` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    /// TLS when the server offers it, without verifying the certificate (libpq's default).
    Prefer,
    /// TLS always, certificate not verified.
    Require,
    /// TLS always, certificate verified against the Mozilla roots and the host name.
    VerifyFull,
}

impl SslMode {
    pub fn parse(text: Option<&str>) -> Result<SslMode, String> {
        match text.map(str::to_ascii_lowercase).as_deref() {
            None | Some("prefer") | Some("allow") => Ok(SslMode::Prefer),
            Some("disable") => Ok(SslMode::Disable),
            Some("require") => Ok(SslMode::Require),
            Some("verify-full") | Some("verify-ca") => Ok(SslMode::VerifyFull),
            Some(other) => Err(format!(
                "unknown sslmode `{other}`; use disable, prefer, require or verify-full"
            )),
        }
    }
}

#[derive(Clone)]
enum Tls {
    None,
    Rustls(MakeRustlsConnect),
}

/// Accepts any server certificate: `sslmode=prefer|require` encrypt without verifying, as libpq
/// does. `verify-full` never uses this.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn tls_for(mode: SslMode) -> Result<Tls, AdapterError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| AdapterError::Internal(format!("TLS set-up failed: {e}")))?;
    Ok(match mode {
        SslMode::Disable => Tls::None,
        SslMode::Prefer | SslMode::Require => Tls::Rustls(MakeRustlsConnect::new(
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
                .with_no_client_auth(),
        )),
        SslMode::VerifyFull => {
            // `with_webpki_roots` uses the process-wide provider; installing it twice is fine.
            let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
            Tls::Rustls(MakeRustlsConnect::with_webpki_roots())
        }
    })
}

/// The SQLSTATE classes the retry policy may retry.
fn retryable_state(state: &SqlState) -> bool {
    *state == SqlState::T_R_SERIALIZATION_FAILURE
        || *state == SqlState::T_R_DEADLOCK_DETECTED
        || *state == SqlState::ADMIN_SHUTDOWN
        || *state == SqlState::CANNOT_CONNECT_NOW
}

/// A driver error as the adapter reports it. `may_retry_closed` says whether a dropped
/// connection is safe to retry here (nothing could have committed).
fn database_error(err: &tokio_postgres::Error, may_retry_closed: bool) -> AdapterError {
    if let Some(db) = err.as_db_error() {
        if *db.code() == SqlState::QUERY_CANCELED {
            return AdapterError::Cancelled;
        }
        let mut message = db.message().to_string();
        if let Some(detail) = db.detail() {
            message.push_str(&format!(" ({detail})"));
        }
        if let Some(context) = db.where_() {
            message.push_str(&format!("\ncontext: {context}"));
        }
        return AdapterError::Database {
            message,
            retryable: retryable_state(db.code()),
        };
    }
    AdapterError::Database {
        message: err.to_string(),
        retryable: may_retry_closed && err.is_closed(),
    }
}

/// An advisory lock key for a target: the same database and schema give the same key.
pub fn lock_key(database: &str, schema: &str) -> i64 {
    let digest = crate::util::sha256_hex(format!("strata:{database}:{schema}").as_bytes());
    let prefix = u64::from_str_radix(&digest[..16], 16).unwrap_or(0);
    prefix as i64
}

/// PostgreSQL through a small pool of connections.
pub struct PostgresAdapter {
    config: Config,
    tls: Tls,
    database: String,
    schema: String,
    idle: Mutex<Vec<Client>>,
    permits: Arc<Semaphore>,
    cancels: Mutex<Vec<CancelToken>>,
    cancelled: super::Cancellation,
    /// The session holding the run's advisory lock.
    lock_session: tokio::sync::Mutex<Option<Client>>,
    retry: RetryPolicy,
    busy: AtomicU64,
    schemas: super::KnownSchemas,
    capabilities: Capabilities,
}

impl std::fmt::Debug for PostgresAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The config holds the password: show only what identifies the target.
        f.debug_struct("PostgresAdapter")
            .field("database", &self.database)
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A pooled connection; back to the pool when dropped, unless it broke.
struct Pooled<'a> {
    client: Option<Client>,
    adapter: &'a PostgresAdapter,
    _permit: OwnedSemaphorePermit,
}

impl Pooled<'_> {
    fn client(&self) -> &Client {
        self.client
            .as_ref()
            .unwrap_or_else(|| unreachable!("a pooled connection is present until dropped"))
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            if !client.is_closed() {
                lock(&self.adapter.idle).push(client);
            }
        }
    }
}

impl PostgresAdapter {
    /// Connects once to check the settings; more connections open as work needs them.
    pub async fn connect(
        settings: &PostgresConfig,
        threads: usize,
    ) -> Result<PostgresAdapter, AdapterError> {
        let connect_error = |message: String| AdapterError::Connect {
            adapter: "postgres",
            message,
        };
        let mode = SslMode::parse(settings.sslmode.as_deref()).map_err(connect_error)?;
        let mut config = Config::new();
        config
            .host(&settings.host)
            .port(settings.port)
            .user(&settings.user)
            .dbname(&settings.dbname)
            .application_name("strata")
            .connect_timeout(Duration::from_secs(settings.connect_timeout.unwrap_or(10)))
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(settings.keepalives_idle.unwrap_or(60)))
            .ssl_mode(match mode {
                SslMode::Disable => tokio_postgres::config::SslMode::Disable,
                SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
                SslMode::Require | SslMode::VerifyFull => tokio_postgres::config::SslMode::Require,
            });
        if let Some(password) = &settings.password {
            config.password(password.expose());
        }
        let search_path = settings
            .search_path
            .clone()
            .unwrap_or_else(|| format!("\"{}\"", settings.schema.replace('"', "\"\"")));
        config.options(format!("-c search_path={search_path}"));
        let adapter = PostgresAdapter {
            config,
            tls: tls_for(mode)?,
            database: settings.dbname.clone(),
            schema: settings.schema.clone(),
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(threads.max(1) + 1)),
            cancels: Mutex::new(Vec::new()),
            cancelled: super::Cancellation::default(),
            lock_session: tokio::sync::Mutex::new(None),
            retry: RetryPolicy::with_retries(settings.retries.unwrap_or(3)),
            busy: AtomicU64::new(0),
            schemas: super::KnownSchemas::default(),
            capabilities: Capabilities {
                transactional_ddl: true,
                rename_relation: true,
                create_or_replace_table: false,
                // `create or replace view` cannot drop or retype columns: views are dropped and
                // created in one transaction instead, which PostgreSQL makes atomic.
                create_or_replace_view: false,
                merge: true,
                comments: true,
                reads_local_files: false,
                drop_cascade: true,
                batch_column_tests: true,
                late_binding_views: false,
            },
        };
        let first = adapter.open().await?;
        lock(&adapter.idle).push(first);
        Ok(adapter)
    }

    async fn open(&self) -> Result<Client, AdapterError> {
        // The driver's message ("error performing TLS handshake") hides the cause (an
        // untrusted certificate, a refused connection): show the whole chain.
        let failed = |err: tokio_postgres::Error| {
            let mut message = err.to_string();
            let mut source = std::error::Error::source(&err);
            while let Some(cause) = source {
                message.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            AdapterError::Connect {
                adapter: "postgres",
                message,
            }
        };
        let client = match &self.tls {
            Tls::None => {
                let (client, connection) = self.config.connect(NoTls).await.map_err(failed)?;
                tokio::spawn(connection);
                client
            }
            Tls::Rustls(make) => {
                let (client, connection) =
                    self.config.connect(make.clone()).await.map_err(failed)?;
                tokio::spawn(connection);
                client
            }
        };
        lock(&self.cancels).push(client.cancel_token());
        Ok(client)
    }

    async fn checkout(&self) -> Result<Pooled<'_>, AdapterError> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| AdapterError::Cancelled)?;
        let reused = lock(&self.idle).pop();
        let client = match reused {
            Some(client) if !client.is_closed() => client,
            _ => self.open().await?,
        };
        Ok(Pooled {
            client: Some(client),
            adapter: self,
            _permit: permit,
        })
    }

    fn record(&self, started: Instant) {
        let spent = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.busy.fetch_add(spent, Ordering::Relaxed);
    }

    async fn execute_once(&self, sql: &str) -> Result<ExecOutcome, AdapterError> {
        let pooled = self.checkout().await?;
        self.cancelled.admit(sql)?;
        let started = Instant::now();
        let result = pooled.client().simple_query(sql).await;
        self.record(started);
        let messages = result.map_err(|e| database_error(&e, false))?;
        Ok(ExecOutcome {
            rows_affected: last_count(&messages),
        })
    }

    async fn execute_all_once(
        &self,
        statements: &[String],
        transaction: bool,
    ) -> Result<Vec<ExecOutcome>, AdapterError> {
        let pooled = self.checkout().await?;
        self.cancelled.check()?;
        let client = pooled.client();
        let started = Instant::now();
        let result = async {
            if transaction {
                client
                    .batch_execute("begin")
                    .await
                    .map_err(|e| database_error(&e, true))?;
            }
            let mut outcomes = Vec::with_capacity(statements.len());
            for statement in statements {
                let run = match self.cancelled.check() {
                    Ok(()) => client
                        .simple_query(statement)
                        .await
                        .map_err(|err| database_error(&err, transaction)),
                    Err(cancelled) => Err(cancelled),
                };
                match run {
                    Ok(messages) => outcomes.push(ExecOutcome {
                        rows_affected: last_count(&messages),
                    }),
                    Err(err) => {
                        if transaction {
                            let _ = client.batch_execute("rollback").await;
                        }
                        // Inside a transaction nothing committed: a dropped connection is safe
                        // to retry (`database_error` was told so above).
                        return Err(err);
                    }
                }
            }
            if transaction {
                client
                    .batch_execute("commit")
                    .await
                    .map_err(|e| database_error(&e, false))?;
            }
            Ok(outcomes)
        }
        .await;
        self.record(started);
        result
    }

    async fn query_once(&self, sql: &str) -> Result<Table, AdapterError> {
        let pooled = self.checkout().await?;
        self.cancelled.check()?;
        let client = pooled.client();
        let started = Instant::now();
        let result = async {
            // The extended protocol tells the column types; the simple protocol returns text
            // for every type (NUMERIC included), which the types then read.
            let statement = client
                .prepare(sql)
                .await
                .map_err(|e| database_error(&e, true))?;
            let types: Vec<Type> = statement
                .columns()
                .iter()
                .map(|c| c.type_().clone())
                .collect();
            let columns: Vec<ColumnInfo> = statement
                .columns()
                .iter()
                .map(|c| ColumnInfo {
                    name: c.name().to_string(),
                    data_type: c.type_().name().to_string(),
                })
                .collect();
            let messages = client
                .simple_query(sql)
                .await
                .map_err(|e| database_error(&e, true))?;
            let mut rows = Vec::new();
            for message in messages {
                if let SimpleQueryMessage::Row(row) = message {
                    let cells = (0..row.len())
                        .map(|i| typed_cell(row.get(i), types.get(i)))
                        .collect();
                    rows.push(cells);
                }
            }
            Ok(Table { columns, rows })
        }
        .await;
        self.record(started);
        result
    }

    /// `COPY … FROM STDIN` of a CSV file into an existing table, inside one transaction with
    /// the load's other statements.
    async fn copy_once(&self, load: &CsvLoad<'_>) -> Result<u64, AdapterError> {
        let path = load.path;
        let bytes = tokio::fs::read(path)
            .await
            .map_err(|e| AdapterError::Database {
                message: format!("cannot read `{}`: {e}", path.display()),
                retryable: false,
            })?;
        let pooled = self.checkout().await?;
        let client = pooled.client();
        let started = Instant::now();
        let style = self.quote_style();
        let quote_char = |c: char| format!("'{}'", c.to_string().replace('\'', "''"));
        let columns = if load.columns.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = load
                .columns
                .iter()
                .map(|c| style.quote_identifier(c))
                .collect();
            format!(" ({})", quoted.join(", "))
        };
        let statement = format!(
            "copy {}{columns} from stdin with (format csv, header true, delimiter {}, quote {})",
            load.relation.render(&style),
            quote_char(load.options.delimiter),
            quote_char(load.options.quote),
        );
        let result = async {
            // Nothing commits before `commit`: a connection dropped earlier is safe to retry.
            client
                .batch_execute("begin")
                .await
                .map_err(|e| database_error(&e, true))?;
            for sql in load.before {
                client
                    .batch_execute(sql)
                    .await
                    .map_err(|e| database_error(&e, true))?;
            }
            let sink = client
                .copy_in::<_, std::io::Cursor<Vec<u8>>>(statement.as_str())
                .await
                .map_err(|e| database_error(&e, true))?;
            futures::pin_mut!(sink);
            for chunk in bytes.chunks(1 << 20) {
                sink.send(std::io::Cursor::new(chunk.to_vec()))
                    .await
                    .map_err(|e| database_error(&e, true))?;
            }
            let rows = sink.finish().await.map_err(|e| database_error(&e, true))?;
            for sql in load.after {
                client
                    .batch_execute(sql)
                    .await
                    .map_err(|e| database_error(&e, true))?;
            }
            client
                .batch_execute("commit")
                .await
                .map_err(|e| database_error(&e, false))?;
            Ok(rows)
        }
        .await;
        if result.is_err() && !client.is_closed() {
            let _ = client.batch_execute("rollback").await;
        }
        self.record(started);
        result
    }
}

fn last_count(messages: &[SimpleQueryMessage]) -> Option<u64> {
    messages.iter().rev().find_map(|m| match m {
        SimpleQueryMessage::CommandComplete(n) => Some(*n),
        _ => None,
    })
}

fn typed_cell(text: Option<&str>, ty: Option<&Type>) -> Cell {
    let Some(text) = text else {
        return Cell::Null;
    };
    match ty {
        Some(t) if *t == Type::INT2 || *t == Type::INT4 || *t == Type::INT8 || *t == Type::OID => {
            text.parse::<i64>()
                .map(Cell::Int)
                .unwrap_or_else(|_| Cell::Text(text.to_string()))
        }
        Some(t) if *t == Type::FLOAT4 || *t == Type::FLOAT8 => text
            .parse::<f64>()
            .map(Cell::Float)
            .unwrap_or_else(|_| Cell::Text(text.to_string())),
        Some(t) if *t == Type::BOOL => Cell::Bool(text == "t"),
        _ => Cell::Text(text.to_string()),
    }
}

#[async_trait]
impl Adapter for PostgresAdapter {
    fn kind(&self) -> AdapterKind {
        AdapterKind::Postgres
    }

    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    /// DDL names stay within the connected database (`create schema "db"."s"` is not valid
    /// PostgreSQL); templates may still render three-part names for queries.
    fn quote_style(&self) -> crate::relation::QuoteStyle {
        crate::relation::QuoteStyle {
            quote: '"',
            include_database: false,
        }
    }

    async fn execute(&self, sql: &str) -> Result<ExecOutcome, AdapterError> {
        self.retry.run(|| self.execute_once(sql)).await
    }

    async fn execute_all(
        &self,
        statements: &[String],
        transaction: bool,
    ) -> Result<Vec<ExecOutcome>, AdapterError> {
        self.retry
            .run(|| self.execute_all_once(statements, transaction))
            .await
    }

    async fn query(&self, sql: &str) -> Result<Table, AdapterError> {
        self.retry.run(|| self.query_once(sql)).await
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
        self.cancelled.cancel();
        let tokens: Vec<CancelToken> = lock(&self.cancels).clone();
        for token in tokens {
            let _ = match &self.tls {
                Tls::None => token.cancel_query(NoTls).await,
                Tls::Rustls(make) => token.cancel_query(make.clone()).await,
            };
        }
        Ok(())
    }

    fn busy_time(&self) -> Duration {
        Duration::from_nanos(self.busy.load(Ordering::Relaxed))
    }

    fn known_schemas(&self) -> Option<&super::KnownSchemas> {
        Some(&self.schemas)
    }

    async fn lock_target(&self) -> Result<(), AdapterError> {
        let client = self.open().await?;
        let key = lock_key(&self.database, &self.schema);
        let rows = client
            .query_one("select pg_try_advisory_lock($1)", &[&key])
            .await
            .map_err(|e| database_error(&e, false))?;
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

    async fn load_csv(&self, load: &CsvLoad<'_>) -> Result<u64, AdapterError> {
        // The load either commits whole or not at all; a retry reloads from the start.
        self.retry.run(|| self.copy_once(load)).await
    }

    fn column_type_for(&self, duckdb_type: &str) -> String {
        postgres_type(duckdb_type)
    }

    async fn recreate_dependent_views(
        &self,
        relation: &RelationName,
    ) -> Result<Vec<String>, AdapterError> {
        let name = relation.render(&self.quote_style());
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
        let style = self.quote_style();
        Ok(table
            .rows
            .into_iter()
            .filter_map(|row| match (row.first(), row.get(1), row.get(2)) {
                (
                    Some(Cell::Text(schema)),
                    Some(Cell::Text(view)),
                    Some(Cell::Text(definition)),
                ) => {
                    let name = RelationName::new(None, schema.clone(), view.clone());
                    Some(recreate_view_sql(
                        &name.render(&style),
                        definition.trim().trim_end_matches(';'),
                    ))
                }
                _ => None,
            })
            .collect())
    }
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
    fn sslmodes_parse_like_libpq() {
        assert_eq!(SslMode::parse(None), Ok(SslMode::Prefer));
        assert_eq!(SslMode::parse(Some("disable")), Ok(SslMode::Disable));
        assert_eq!(SslMode::parse(Some("REQUIRE")), Ok(SslMode::Require));
        assert_eq!(SslMode::parse(Some("verify-full")), Ok(SslMode::VerifyFull));
        assert!(SslMode::parse(Some("sometimes")).is_err());
    }

    #[test]
    fn duckdb_types_map_to_postgres_types() {
        assert_eq!(postgres_type("BIGINT"), "bigint");
        assert_eq!(postgres_type("DECIMAL(18,2)"), "numeric(18,2)");
        assert_eq!(postgres_type("VARCHAR"), "text");
        assert_eq!(postgres_type("TIMESTAMP WITH TIME ZONE"), "timestamptz");
    }

    #[test]
    fn text_cells_are_read_by_their_column_type() {
        assert_eq!(typed_cell(Some("42"), Some(&Type::INT8)), Cell::Int(42));
        assert_eq!(typed_cell(Some("t"), Some(&Type::BOOL)), Cell::Bool(true));
        assert_eq!(
            typed_cell(Some("1.50"), Some(&Type::NUMERIC)),
            Cell::Text("1.50".into())
        );
        assert_eq!(typed_cell(None, Some(&Type::INT4)), Cell::Null);
    }

    #[test]
    fn lock_keys_are_stable_per_target() {
        assert_eq!(lock_key("db", "s"), lock_key("db", "s"));
        assert_ne!(lock_key("db", "s"), lock_key("db", "t"));
    }
}

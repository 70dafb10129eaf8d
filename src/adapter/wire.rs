//! The PostgreSQL wire protocol as a transport (tokio-postgres): a pool sized by `threads`, TLS
//! through rustls by `sslmode`, keepalives, statement cancel on Ctrl-C, typed query results,
//! `COPY … FROM STDIN`, and the shared retry policy for the errors the warehouse's flavour calls
//! retryable. PostgreSQL and Redshift both speak it; what each does beyond the protocol
//! (advisory locks, `pg_depend`, S3 loads) lives in its own module.
//!
//! Passwords go to the driver only; nothing here formats a `Secret`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::SinkExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;
use tokio_postgres::{CancelToken, Client, Config, NoTls, SimpleQueryMessage};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::retry::RetryPolicy;
use super::{AdapterError, Cell, ColumnInfo, ExecOutcome, FileFormat, FileLoad, Table};
use crate::project::Secret;
use crate::relation::QuoteStyle;

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

/// Which server errors the retry policy may retry: the warehouse's flavour decides.
pub type Retryable = fn(&SqlState, &str) -> bool;

/// The SQLSTATE classes PostgreSQL's retries cover: serialization failures, deadlocks, a
/// server shutting down or starting up.
pub fn retryable_state(state: &SqlState) -> bool {
    *state == SqlState::T_R_SERIALIZATION_FAILURE
        || *state == SqlState::T_R_DEADLOCK_DETECTED
        || *state == SqlState::ADMIN_SHUTDOWN
        || *state == SqlState::CANNOT_CONNECT_NOW
}

/// What a wire connection needs, from a PostgreSQL or Redshift profile.
#[derive(Debug, Clone)]
pub struct WireSettings {
    /// Names the warehouse in connection errors.
    pub adapter: &'static str,
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Option<Secret>,
    pub dbname: String,
    pub sslmode: Option<String>,
    pub connect_timeout: Option<u64>,
    pub keepalives_idle: Option<u64>,
    /// `-c search_path=…` on every session.
    pub search_path: Option<String>,
    pub retries: Option<u32>,
    pub threads: usize,
}

/// A pool of wire connections.
pub struct WireTransport {
    adapter: &'static str,
    config: Config,
    tls: Tls,
    idle: Mutex<Vec<Client>>,
    permits: Arc<Semaphore>,
    cancels: Mutex<Vec<CancelToken>>,
    cancelled: super::Cancellation,
    retry: RetryPolicy,
    retryable: Retryable,
    busy: AtomicU64,
}

impl std::fmt::Debug for WireTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The config holds the password: show nothing of it.
        f.debug_struct("WireTransport")
            .field("adapter", &self.adapter)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A pooled connection; back to the pool when dropped, unless it broke.
pub struct Pooled<'a> {
    client: Option<Client>,
    transport: &'a WireTransport,
    _permit: OwnedSemaphorePermit,
}

impl Pooled<'_> {
    pub fn client(&self) -> &Client {
        self.client
            .as_ref()
            .unwrap_or_else(|| unreachable!("a pooled connection is present until dropped"))
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            if !client.is_closed() {
                lock(&self.transport.idle).push(client);
            }
        }
    }
}

impl WireTransport {
    /// Connects once to check the settings; more connections open as work needs them.
    pub async fn connect(
        settings: &WireSettings,
        retryable: Retryable,
    ) -> Result<WireTransport, AdapterError> {
        let connect_error = |message: String| AdapterError::Connect {
            adapter: settings.adapter,
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
        if let Some(search_path) = &settings.search_path {
            config.options(format!("-c search_path={search_path}"));
        }
        let transport = WireTransport {
            adapter: settings.adapter,
            config,
            tls: tls_for(mode)?,
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(settings.threads.max(1) + 1)),
            cancels: Mutex::new(Vec::new()),
            cancelled: super::Cancellation::default(),
            retry: RetryPolicy::with_retries(settings.retries.unwrap_or(3)),
            retryable,
            busy: AtomicU64::new(0),
        };
        let first = transport.open().await?;
        lock(&transport.idle).push(first);
        Ok(transport)
    }

    /// A new session outside the pool (the advisory lock's, which lives as long as it does).
    pub async fn open(&self) -> Result<Client, AdapterError> {
        // The driver's message ("error performing TLS handshake") hides the cause (an
        // untrusted certificate, a refused connection): show the whole chain.
        let adapter = self.adapter;
        let failed = |err: tokio_postgres::Error| {
            let mut message = err.to_string();
            let mut source = std::error::Error::source(&err);
            while let Some(cause) = source {
                message.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            AdapterError::Connect { adapter, message }
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

    pub async fn checkout(&self) -> Result<Pooled<'_>, AdapterError> {
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
            transport: self,
            _permit: permit,
        })
    }

    /// A driver error as the adapter reports it. `may_retry_closed` says whether a dropped
    /// connection is safe to retry here (nothing could have committed).
    pub fn error(&self, err: &tokio_postgres::Error, may_retry_closed: bool) -> AdapterError {
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
            let retryable = (self.retryable)(db.code(), &message);
            return AdapterError::Database { message, retryable };
        }
        AdapterError::Database {
            message: err.to_string(),
            retryable: may_retry_closed && err.is_closed(),
        }
    }

    fn record(&self, started: Instant) {
        let spent = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.busy.fetch_add(spent, Ordering::Relaxed);
    }

    pub fn busy_time(&self) -> Duration {
        Duration::from_nanos(self.busy.load(Ordering::Relaxed))
    }

    async fn execute_once(&self, sql: &str) -> Result<ExecOutcome, AdapterError> {
        let pooled = self.checkout().await?;
        self.cancelled.admit(sql)?;
        let started = Instant::now();
        let result = pooled.client().simple_query(sql).await;
        self.record(started);
        let messages = result.map_err(|e| self.error(&e, false))?;
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
                    .map_err(|e| self.error(&e, true))?;
            }
            let mut outcomes = Vec::with_capacity(statements.len());
            for statement in statements {
                let run = match self.cancelled.check() {
                    Ok(()) => client
                        .simple_query(statement)
                        .await
                        .map_err(|err| self.error(&err, transaction)),
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
                        // to retry (`error` was told so above).
                        return Err(err);
                    }
                }
            }
            if transaction {
                client
                    .batch_execute("commit")
                    .await
                    .map_err(|e| self.error(&e, false))?;
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
                .map_err(|e| self.error(&e, true))?;
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
                .map_err(|e| self.error(&e, true))?;
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
    async fn copy_once(
        &self,
        load: &FileLoad<'_>,
        style: &QuoteStyle,
    ) -> Result<u64, AdapterError> {
        let FileFormat::Csv(options) = load.format else {
            return Err(AdapterError::Internal(format!(
                "COPY FROM STDIN reads CSV, not {:?}",
                load.format
            )));
        };
        let path = load.path;
        let bytes = tokio::fs::read(path)
            .await
            .map_err(|e| AdapterError::Database {
                message: format!("cannot read `{}`: {e}", path.display()),
                retryable: false,
            })?;
        let pooled = self.checkout().await?;
        self.cancelled.check()?;
        let client = pooled.client();
        let started = Instant::now();
        let quote_char = |c: char| crate::relation::string_literal(&c.to_string());
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
            load.relation.render(style),
            quote_char(options.delimiter),
            quote_char(options.quote),
        );
        let result = async {
            // Nothing commits before `commit`: a connection dropped earlier is safe to retry.
            client
                .batch_execute("begin")
                .await
                .map_err(|e| self.error(&e, true))?;
            for sql in load.before {
                client
                    .batch_execute(sql)
                    .await
                    .map_err(|e| self.error(&e, true))?;
            }
            let sink = client
                .copy_in::<_, std::io::Cursor<Vec<u8>>>(statement.as_str())
                .await
                .map_err(|e| self.error(&e, true))?;
            futures::pin_mut!(sink);
            for chunk in bytes.chunks(1 << 20) {
                sink.send(std::io::Cursor::new(chunk.to_vec()))
                    .await
                    .map_err(|e| self.error(&e, true))?;
            }
            let rows = sink.finish().await.map_err(|e| self.error(&e, true))?;
            for sql in load.after {
                client
                    .batch_execute(sql)
                    .await
                    .map_err(|e| self.error(&e, true))?;
            }
            client
                .batch_execute("commit")
                .await
                .map_err(|e| self.error(&e, false))?;
            Ok(rows)
        }
        .await;
        if result.is_err() && !client.is_closed() {
            let _ = client.batch_execute("rollback").await;
        }
        self.record(started);
        result
    }

    /// Runs one statement, retried by the policy.
    pub async fn execute(&self, sql: &str) -> Result<ExecOutcome, AdapterError> {
        self.retry.run(|| self.execute_once(sql)).await
    }

    /// Runs statements on one connection, in one transaction when asked, retried whole.
    pub async fn execute_all(
        &self,
        statements: &[String],
        transaction: bool,
    ) -> Result<Vec<ExecOutcome>, AdapterError> {
        self.retry
            .run(|| self.execute_all_once(statements, transaction))
            .await
    }

    pub async fn query(&self, sql: &str) -> Result<Table, AdapterError> {
        self.retry.run(|| self.query_once(sql)).await
    }

    /// A bulk load by `COPY … FROM STDIN`; it commits whole or not at all, and a retry
    /// reloads from the start.
    pub async fn copy_in(
        &self,
        load: &FileLoad<'_>,
        style: &QuoteStyle,
    ) -> Result<u64, AdapterError> {
        self.retry.run(|| self.copy_once(load, style)).await
    }

    /// Cancels every statement running on this transport, on the server too; statements not
    /// yet started are refused from now on.
    pub async fn cancel(&self) {
        self.cancelled.cancel();
        let tokens: Vec<CancelToken> = lock(&self.cancels).clone();
        for token in tokens {
            let _ = match &self.tls {
                Tls::None => token.cancel_query(NoTls).await,
                Tls::Rustls(make) => token.cancel_query(make.clone()).await,
            };
        }
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
    fn text_cells_are_read_by_their_column_type() {
        assert_eq!(typed_cell(Some("42"), Some(&Type::INT8)), Cell::Int(42));
        assert_eq!(typed_cell(Some("t"), Some(&Type::BOOL)), Cell::Bool(true));
        assert_eq!(
            typed_cell(Some("1.50"), Some(&Type::NUMERIC)),
            Cell::Text("1.50".into())
        );
        assert_eq!(typed_cell(None, Some(&Type::INT4)), Cell::Null);
    }
}

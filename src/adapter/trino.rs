//! Trino as a warehouse: its client protocol over HTTP (`POST /v1/statement`, then `nextUri`
//! until the query ends; `DELETE` of the current `nextUri` cancels it), the catalog read from
//! the target catalog's `information_schema`, and the SQL of [`super::athena::AthenaFlavour`]
//! with Trino's DDL. Nothing on Trino is transactional: statements run one by one.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use serde_json::Value as Json;

use super::ansi;
use super::athena::{AthenaFlavour, DML_STYLE};
use super::retry::RetryPolicy;
use super::{
    Adapter, AdapterError, Cancellation, Cell, ColumnInfo, ExecOutcome, FileFormat, FileLoad,
    Flavour, KnownSchemas, RelationInfo, Table,
};
use crate::plan::{ColumnDef, Literal};
use crate::project::target::TrinoConfig;
use crate::relation::RelationName;

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The size `insert … values` statements of a loaded file are cut to, at most (Trino takes
/// a query text of up to 1,000,000 characters by default; the flavour's limit may be lower).
const INSERT_BYTES: usize = 512 * 1024;

/// How long a `503 Service Unavailable` (the coordinator is busy or starting) is waited out
/// before the same request is sent again, at most.
const BUSY_WAIT: Duration = Duration::from_millis(100);

/// One page of the client protocol's answer.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueryResults {
    id: String,
    #[serde(default)]
    next_uri: Option<String>,
    #[serde(default)]
    columns: Option<Vec<Column>>,
    #[serde(default)]
    data: Option<Vec<Vec<Json>>>,
    #[serde(default)]
    error: Option<QueryError>,
    #[serde(default)]
    update_count: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct Column {
    name: String,
    #[serde(rename = "type")]
    data_type: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueryError {
    message: String,
    #[serde(default)]
    error_name: Option<String>,
    #[serde(default)]
    error_type: Option<String>,
}

/// A Trino coordinator, as one target.
pub struct TrinoAdapter {
    flavour: AthenaFlavour,
    client: HttpsClient,
    /// `http://host:port`.
    base: String,
    user: String,
    authorization: Option<String>,
    catalog: String,
    schema: String,
    /// `X-Trino-Session`: `name=value` pairs, values percent-encoded.
    session: Option<String>,
    retry: RetryPolicy,
    timeout: Option<Duration>,
    /// Queries in flight: their id and the `nextUri` a cancel deletes.
    running: Mutex<HashMap<String, String>>,
    cancelled: Cancellation,
    schemas: KnownSchemas,
    busy: AtomicU64,
}

impl std::fmt::Debug for TrinoAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrinoAdapter")
            .field("base", &self.base)
            .field("user", &self.user)
            .field("catalog", &self.catalog)
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn connect_error(message: impl Into<String>) -> AdapterError {
    AdapterError::Connect {
        adapter: "trino",
        message: message.into(),
    }
}

/// The `X-Trino-Session` header of a target's `session_properties`.
fn session_header(properties: &indexmap::IndexMap<String, Json>) -> Option<String> {
    if properties.is_empty() {
        return None;
    }
    let encode = |text: &str| {
        percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    Some(
        properties
            .iter()
            .map(|(name, value)| {
                let value = match value {
                    Json::String(s) => s.clone(),
                    other => other.to_string(),
                };
                format!("{name}={}", encode(&value))
            })
            .collect::<Vec<_>>()
            .join(","),
    )
}

/// A value of a result row: integers, floats and booleans as the protocol types them; decimals,
/// dates, timestamps and text as Trino prints them; arrays, maps and rows as JSON text.
fn cell(value: &Json) -> Cell {
    match value {
        Json::Null => Cell::Null,
        Json::Bool(b) => Cell::Bool(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Cell::Int(i),
            None => Cell::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Cell::Text(s.clone()),
        other => Cell::Text(other.to_string()),
    }
}

impl TrinoAdapter {
    /// Reads a Trino target's settings and checks the coordinator answers.
    pub async fn connect(
        config: &TrinoConfig,
        threads: usize,
    ) -> Result<TrinoAdapter, AdapterError> {
        let method = config.method.as_deref().unwrap_or("none");
        let authorization = match (method, &config.password) {
            ("none", None) => None,
            ("ldap", Some(password)) | ("none", Some(password)) => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!(
                    "{}:{}",
                    config.user,
                    password.expose()
                ))
            )),
            ("ldap", None) => {
                return Err(connect_error(
                    "`method: ldap` needs `password` (set it with env_var(), not in the file)",
                ))
            }
            (other, _) => {
                return Err(connect_error(format!(
                    "`method: {other}` is not supported; use `none` or `ldap`"
                )))
            }
        };
        let scheme = match config.http_scheme.as_deref() {
            Some("http") => "http",
            Some("https") => "https",
            None if authorization.is_some() => "https",
            None => "http",
            Some(other) => {
                return Err(connect_error(format!(
                    "`http_scheme: {other}` is not a scheme; write http or https"
                )))
            }
        };
        if scheme == "http" && authorization.is_some() {
            return Err(connect_error(
                "Trino takes a password over HTTPS only: set `http_scheme: https`",
            ));
        }
        let connector = crate::util::https_connector().map_err(connect_error)?;
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(threads.max(1) * 2)
            .build(connector);
        let adapter = TrinoAdapter {
            flavour: AthenaFlavour::trino(config),
            client,
            base: format!("{scheme}://{}:{}", config.host, config.port),
            user: config.user.clone(),
            authorization,
            catalog: config.database.clone(),
            schema: config.schema.clone(),
            session: session_header(&config.session_properties),
            retry: RetryPolicy::with_retries(config.retries.unwrap_or(3)),
            timeout: config.query_timeout.map(Duration::from_secs),
            running: Mutex::new(HashMap::new()),
            cancelled: Cancellation::default(),
            schemas: KnownSchemas::default(),
            busy: AtomicU64::new(0),
        };
        adapter
            .send(Method::GET, &format!("{}/v1/info", adapter.base), None)
            .await
            .map_err(|e| connect_error(format!("{} does not answer: {e}", adapter.base)))?;
        Ok(adapter)
    }

    /// One HTTP request; `503` (busy) is waited out and sent again a few times. Returns the
    /// body of a `200`.
    async fn send(
        &self,
        method: Method,
        uri: &str,
        body: Option<&str>,
    ) -> Result<Bytes, AdapterError> {
        let mut busy = 0;
        loop {
            let mut request = Request::builder()
                .method(method.clone())
                .uri(uri)
                .header("X-Trino-User", &self.user)
                .header("X-Trino-Source", "strata")
                .header("User-Agent", concat!("strata/", env!("CARGO_PKG_VERSION")));
            if let Some(auth) = &self.authorization {
                request = request.header("Authorization", auth);
            }
            if method == Method::POST {
                request = request
                    .header("X-Trino-Catalog", &self.catalog)
                    .header("X-Trino-Schema", &self.schema);
                if let Some(session) = &self.session {
                    request = request.header("X-Trino-Session", session);
                }
            }
            let request = request
                .body(Full::new(Bytes::from(body.unwrap_or_default().to_string())))
                .map_err(|e| {
                    AdapterError::Internal(format!("cannot build a request to {uri}: {e}"))
                })?;
            let response = self.client.request(request).await.map_err(|e| {
                AdapterError::Database {
                    message: format!("the request to Trino at {} failed: {e}", self.base),
                    // Only a connection that never opened submitted nothing: a statement whose
                    // request or answer was cut may have run, and running it again could write
                    // its rows twice.
                    retryable: e.is_connect(),
                }
            })?;
            let status = response.status();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| AdapterError::Database {
                    message: format!("reading Trino's answer failed: {e}"),
                    retryable: false,
                })?
                .to_bytes();
            match status {
                StatusCode::OK | StatusCode::NO_CONTENT => return Ok(bytes),
                StatusCode::SERVICE_UNAVAILABLE | StatusCode::BAD_GATEWAY | StatusCode::GATEWAY_TIMEOUT
                    if busy < 20 =>
                {
                    busy += 1;
                    tokio::time::sleep(BUSY_WAIT.mul_f64(0.5 + f64::from(busy.min(10)) / 20.0)).await;
                }
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                    return Err(connect_error(format!(
                        "Trino refused user `{}` (HTTP {status}): check `user`, `method` and `password`",
                        self.user
                    )))
                }
                _ => {
                    return Err(AdapterError::Database {
                        message: format!(
                            "Trino answered HTTP {status}: {}",
                            String::from_utf8_lossy(&bytes).trim()
                        ),
                        retryable: status.is_server_error() && method == Method::POST,
                    })
                }
            }
        }
    }

    /// Submits a statement and follows it to its end, collecting its rows.
    async fn run_once(&self, sql: &str) -> Result<(Table, Option<u64>), AdapterError> {
        self.cancelled.admit(sql)?;
        let started = Instant::now();
        let body = self
            .send(
                Method::POST,
                &format!("{}/v1/statement", self.base),
                Some(sql),
            )
            .await?;
        let mut page = parse(&body)?;
        let id = page.id.clone();
        let mut table = Table::default();
        let mut update_count = None;
        let outcome = loop {
            if table.columns.is_empty() {
                if let Some(columns) = &page.columns {
                    table.columns = columns
                        .iter()
                        .map(|c| ColumnInfo {
                            name: c.name.clone(),
                            data_type: c.data_type.clone(),
                        })
                        .collect();
                }
            }
            if let Some(data) = page.data.take() {
                table
                    .rows
                    .extend(data.iter().map(|row| row.iter().map(cell).collect()));
            }
            if page.update_count.is_some() {
                update_count = page.update_count;
            }
            if let Some(error) = page.error.take() {
                break Err(self.query_error(error));
            }
            let Some(next) = page.next_uri.take() else {
                break Ok(());
            };
            lock(&self.running).insert(id.clone(), next.clone());
            // A cancel that came before the query was in `running` found nothing to cancel
            // (it sets the flag before reading `running`): cancel it here.
            if self.cancelled.admit(sql).is_err() {
                let _ = self.send(Method::DELETE, &next, None).await;
                break Err(AdapterError::Cancelled);
            }
            if let Some(timeout) = self.timeout {
                if started.elapsed() > timeout {
                    let _ = self.send(Method::DELETE, &next, None).await;
                    break Err(AdapterError::Database {
                        message: format!(
                            "the query did not finish within {} s (`query_timeout`); it was cancelled",
                            timeout.as_secs()
                        ),
                        retryable: false,
                    });
                }
            }
            match self.send(Method::GET, &next, None).await {
                Ok(body) => page = parse(&body)?,
                Err(err) => break Err(err),
            }
        };
        lock(&self.running).remove(&id);
        let spent = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.busy.fetch_add(spent, Ordering::Relaxed);
        outcome.map(|()| (table, update_count))
    }

    fn query_error(&self, error: QueryError) -> AdapterError {
        if error.error_name.as_deref() == Some("USER_CANCELED") || self.cancelled.check().is_err() {
            return AdapterError::Cancelled;
        }
        let message = match &error.error_name {
            Some(name) => format!("{name}: {}", error.message),
            None => error.message.clone(),
        };
        // Internal errors and exhausted resources may pass; a user error will not.
        let transient = matches!(
            error.error_type.as_deref(),
            Some("INTERNAL_ERROR" | "INSUFFICIENT_RESOURCES")
        ) && !message.contains("TABLE_NOT_FOUND");
        AdapterError::Database {
            retryable: transient || self.flavour.is_retryable_message(&message),
            message,
        }
    }

    async fn run(&self, sql: &str) -> Result<(Table, Option<u64>), AdapterError> {
        self.retry.run(|| self.run_once(sql)).await
    }
}

fn parse(body: &[u8]) -> Result<QueryResults, AdapterError> {
    serde_json::from_slice(body).map_err(|e| AdapterError::Database {
        message: format!(
            "Trino's answer is not the client protocol's JSON ({e}): {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        ),
        retryable: false,
    })
}

#[async_trait]
impl Adapter for TrinoAdapter {
    fn flavour(&self) -> &dyn Flavour {
        &self.flavour
    }

    async fn execute(&self, sql: &str) -> Result<ExecOutcome, AdapterError> {
        let (_, update_count) = self.run(sql).await?;
        Ok(ExecOutcome {
            rows_affected: update_count,
        })
    }

    async fn execute_all(
        &self,
        statements: &[String],
        _transaction: bool,
    ) -> Result<Vec<ExecOutcome>, AdapterError> {
        // Trino's connectors commit each statement on its own; plans for a warehouse without
        // transactions never rely on two statements committing together.
        let mut outcomes = Vec::with_capacity(statements.len());
        for statement in statements {
            outcomes.push(self.execute(statement).await?);
        }
        Ok(outcomes)
    }

    async fn query(&self, sql: &str) -> Result<Table, AdapterError> {
        self.run(sql).await.map(|(table, _)| table)
    }

    async fn list_schema(
        &self,
        database: Option<&str>,
        schema: &str,
    ) -> Result<Vec<RelationInfo>, AdapterError> {
        let sql = self
            .flavour
            .catalog_sql(database, schema)
            .ok_or_else(|| AdapterError::Internal("Trino's catalog query is missing".into()))?;
        match self.query(&sql).await {
            Ok(table) => Ok(RelationInfo::from_schema_rows(
                database,
                schema,
                &table,
                |k| self.flavour.is_view_kind(k),
            )),
            // Some metastores (Glue) fail the listing of a schema that does not exist rather
            // than answer with no rows.
            Err(err) => {
                let catalog = database.unwrap_or(&self.catalog);
                let exists = self
                    .query(&format!(
                        "select 1 from {}.information_schema.schemata where schema_name = {}",
                        DML_STYLE.quote_identifier(catalog),
                        crate::relation::string_literal(&schema.to_lowercase())
                    ))
                    .await?;
                if exists.rows.is_empty() {
                    Ok(Vec::new())
                } else {
                    Err(err)
                }
            }
        }
    }

    async fn relation(&self, name: &RelationName) -> Result<Option<RelationInfo>, AdapterError> {
        let listed = self
            .list_schema(name.database.as_deref(), &name.schema)
            .await?;
        Ok(listed
            .into_iter()
            .find(|r| r.name.identifier.eq_ignore_ascii_case(&name.identifier)))
    }

    async fn cancel(&self) -> Result<(), AdapterError> {
        self.cancelled.cancel();
        let next: Vec<String> = lock(&self.running).values().cloned().collect();
        for uri in next {
            // A query that ended meanwhile has nothing to cancel.
            let _ = self.send(Method::DELETE, &uri, None).await;
        }
        Ok(())
    }

    async fn checks(&self) -> Vec<(String, Result<String, AdapterError>)> {
        let connection = self.query("select 1 as ok").await.map(|_| "OK".to_string());
        let catalog = self
            .query(&format!(
                "select count(*) from {}.information_schema.schemata",
                crate::relation::QuoteStyle::default().quote_identifier(&self.catalog)
            ))
            .await
            .map(|_| format!("catalog `{}` readable", self.catalog));
        vec![
            (format!("connection ({})", self.base), connection),
            ("catalog".to_string(), catalog),
        ]
    }

    fn busy_time(&self) -> Duration {
        Duration::from_nanos(self.busy.load(Ordering::Relaxed))
    }

    fn known_schemas(&self) -> Option<&KnownSchemas> {
        Some(&self.schemas)
    }

    /// A local CSV file as `insert … values` statements of at most the statement limit each,
    /// each value cast to its column's type, with the load's statements around them. Trino
    /// reads no local files and has no transactions: a failure midway leaves the rows already
    /// inserted, and the plan's own clean-up handles that as for any failed write.
    async fn load_file(&self, load: &FileLoad<'_>) -> Result<u64, AdapterError> {
        let FileFormat::Csv(options) = *load.format else {
            return Err(AdapterError::Internal(
                "Trino loads files staged as CSV".into(),
            ));
        };
        for statement in load.before {
            self.execute(statement).await?;
        }
        let path = load.path.to_path_buf();
        let (names, rows) =
            tokio::task::spawn_blocking(move || crate::local::read_csv_text(&path, &options))
                .await
                .map_err(|e| {
                    AdapterError::Internal(format!("the file reader task failed: {e}"))
                })??;
        let table = self.relation(load.relation).await?.ok_or_else(|| {
            AdapterError::Internal(format!("{} is missing after its creation", load.relation))
        })?;
        let columns: Vec<ColumnDef> = names
            .iter()
            .map(|name| ColumnDef {
                name: name.to_lowercase(),
                data_type: table
                    .columns
                    .iter()
                    .find(|c| c.name.eq_ignore_ascii_case(name))
                    .map(|c| c.data_type.clone())
                    .unwrap_or_else(|| "varchar".into()),
            })
            .collect();
        let head = ansi::insert_rows_head(load.relation, &columns, &DML_STYLE);
        let limit = self
            .flavour
            .limits()
            .statement_bytes
            .unwrap_or(INSERT_BYTES)
            .min(INSERT_BYTES);
        let mut loaded = 0;
        let mut sql = head.clone();
        let mut in_statement = 0;
        for row in &rows {
            let values: Vec<String> = row
                .iter()
                .zip(&columns)
                .map(|(value, column)| match value {
                    Some(text) => self
                        .flavour
                        .literal(&Literal::Text(text.clone()), &column.data_type),
                    None => "null".to_string(),
                })
                .collect();
            let tuple = format!("({})", values.join(", "));
            if in_statement > 0 && sql.len() + tuple.len() + 2 > limit {
                loaded += self.execute(&sql).await?.rows_affected.unwrap_or(0);
                sql = head.clone();
                in_statement = 0;
            }
            if in_statement > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&tuple);
            in_statement += 1;
        }
        if in_statement > 0 {
            loaded += self.execute(&sql).await?.rows_affected.unwrap_or(0);
        }
        for statement in load.after {
            self.execute(statement).await?;
        }
        Ok(loaded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_properties_are_one_encoded_header() {
        let mut properties = indexmap::IndexMap::new();
        properties.insert("query_max_run_time".to_string(), Json::from("1h"));
        properties.insert("task_concurrency".to_string(), Json::from(2));
        properties.insert("time_zone".to_string(), Json::from("Europe/Paris"));
        assert_eq!(
            session_header(&properties).as_deref(),
            Some("query_max_run_time=1h,task_concurrency=2,time_zone=Europe%2FParis")
        );
        assert_eq!(session_header(&indexmap::IndexMap::new()), None);
    }

    #[test]
    fn protocol_pages_read_as_rows() {
        let page: QueryResults = serde_json::from_str(
            r#"{"id":"q1","nextUri":"http://x/v1/statement/executing/q1/1","columns":[{"name":"n","type":"bigint"},{"name":"d","type":"decimal(10,2)"}],"data":[[1,"2.50"],[null,"0.00"]]}"#,
        )
        .unwrap();
        assert_eq!(page.id, "q1");
        assert!(page.next_uri.is_some());
        let rows: Vec<Vec<Cell>> = page
            .data
            .unwrap()
            .iter()
            .map(|r| r.iter().map(cell).collect())
            .collect();
        assert_eq!(rows[0], vec![Cell::Int(1), Cell::Text("2.50".into())]);
        assert_eq!(rows[1][0], Cell::Null);
        let failed: QueryResults = serde_json::from_str(
            r#"{"id":"q2","error":{"message":"line 1:15: Table 'c.s.t' does not exist","errorName":"TABLE_NOT_FOUND","errorType":"USER_ERROR"}}"#,
        )
        .unwrap();
        assert_eq!(
            failed.error.unwrap().error_name.as_deref(),
            Some("TABLE_NOT_FOUND")
        );
    }
}

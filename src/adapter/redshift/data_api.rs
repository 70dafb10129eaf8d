//! The Redshift Data API as a transport (aws-sdk-redshiftdata): `ExecuteStatement` for one
//! statement, `BatchExecuteStatement` for statements that must commit together (a swap and its
//! bookmarks), `DescribeStatement` polled with exponential backoff, jitter and a deadline,
//! `GetStatementResult` paged by `NextToken`, and `CancelStatement` for every statement in
//! flight on Ctrl-C. A statement the server failed is reported with the server's text.
//!
//! Calls are counted, so benchmarks can say how many a run makes per statement.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use aws_sdk_redshiftdata::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_redshiftdata::types::{Field, StatusString};
use aws_sdk_redshiftdata::Client;

use super::retryable_message;
use crate::adapter::aws::{error_text, Polling};
use crate::adapter::retry::RetryPolicy;
use crate::adapter::{AdapterError, Cancellation, Cell, ColumnInfo, ExecOutcome, Table};
use crate::project::target::RedshiftConfig;

/// The most statements one `BatchExecuteStatement` takes.
pub const BATCH_STATEMENTS: usize = 40;

/// Which database the statements run against, and as whom.
#[derive(Debug, Clone)]
enum Endpoint {
    Cluster {
        cluster: String,
        db_user: Option<String>,
        secret_arn: Option<String>,
    },
    Workgroup {
        workgroup: String,
        secret_arn: Option<String>,
    },
}

/// Sets who runs a statement on a request: `ExecuteStatement`'s and `BatchExecuteStatement`'s
/// builders are different types with the same setters.
macro_rules! with_endpoint {
    ($request:expr, $endpoint:expr) => {
        match $endpoint {
            Endpoint::Cluster {
                cluster,
                db_user,
                secret_arn,
            } => $request
                .cluster_identifier(cluster)
                .set_db_user(db_user.clone())
                .set_secret_arn(secret_arn.clone()),
            Endpoint::Workgroup {
                workgroup,
                secret_arn,
            } => $request
                .workgroup_name(workgroup)
                .set_secret_arn(secret_arn.clone()),
        }
    };
}

/// What a finished statement said.
#[derive(Debug, Clone, Default)]
struct Finished {
    has_result_set: bool,
    rows: Option<u64>,
    /// Per sub-statement of a batch, their rows affected.
    sub_rows: Vec<Option<u64>>,
}

/// The Data API client of one target.
pub struct DataApi {
    client: Client,
    database: String,
    endpoint: Endpoint,
    polling: Polling,
    retry: RetryPolicy,
    running: Mutex<HashSet<String>>,
    cancelled: Cancellation,
    calls: AtomicU64,
    busy: AtomicU64,
}

impl std::fmt::Debug for DataApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataApi")
            .field("database", &self.database)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// An SDK call's error. The SDK has already retried throttling and transport failures with
/// the same request (and client token, so a statement is submitted once); what is retryable
/// here is what the server refused before a statement existed: throttling that outlasted the
/// SDK's retries, and the quota of statements in flight.
fn call_error<E, R>(operation: &str, err: SdkError<E, R>) -> AdapterError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    let retryable = matches!(
        err.code(),
        Some("ThrottlingException" | "ActiveStatementsExceededException")
    );
    AdapterError::Database {
        message: format!("Redshift Data API {operation} failed: {}", error_text(&err)),
        retryable,
    }
}

impl DataApi {
    /// Reads the target's Data API settings and checks them with a first statement.
    pub async fn connect(config: &RedshiftConfig) -> Result<DataApi, AdapterError> {
        let connect_error = |message: String| AdapterError::Connect {
            adapter: "redshift",
            message,
        };
        let endpoint = match (&config.cluster_identifier, &config.workgroup_name) {
            (Some(cluster), None) => {
                if config.db_user.is_none() && config.secret_arn.is_none() {
                    return Err(connect_error(
                        "a Data API target with `cluster_identifier` needs `db_user` or `secret_arn`"
                            .into(),
                    ));
                }
                Endpoint::Cluster {
                    cluster: cluster.clone(),
                    db_user: config.db_user.clone(),
                    secret_arn: config.secret_arn.clone(),
                }
            }
            (None, Some(workgroup)) => Endpoint::Workgroup {
                workgroup: workgroup.clone(),
                secret_arn: config.secret_arn.clone(),
            },
            (Some(_), Some(_)) => {
                return Err(connect_error(
                    "set one of `cluster_identifier` (a provisioned cluster) and `workgroup_name` (Serverless), not both"
                        .into(),
                ))
            }
            (None, None) => {
                return Err(connect_error(
                    "`method: data_api` needs `cluster_identifier` (with `db_user` or `secret_arn`) or `workgroup_name`"
                        .into(),
                ))
            }
        };
        let sdk = crate::adapter::aws::sdk_config(
            config.region.as_deref(),
            config.aws_profile_name.as_deref(),
        )
        .await;
        let mut polling = Polling::default();
        if let Some(seconds) = config
            .extra
            .get("data_api_timeout")
            .and_then(serde_json::Value::as_u64)
        {
            polling.deadline = Duration::from_secs(seconds);
        }
        Ok(DataApi {
            client: Client::new(&sdk),
            database: config.dbname.clone(),
            endpoint,
            polling,
            retry: RetryPolicy::with_retries(config.retries.unwrap_or(3)),
            running: Mutex::new(HashSet::new()),
            cancelled: Cancellation::default(),
            calls: AtomicU64::new(0),
            busy: AtomicU64::new(0),
        })
    }

    /// Data API calls made so far (polls included).
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    pub fn busy_time(&self) -> Duration {
        Duration::from_nanos(self.busy.load(Ordering::Relaxed))
    }

    fn count(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }

    async fn submit(&self, sql: &str, token: &str) -> Result<String, AdapterError> {
        self.count();
        let mut request = self
            .client
            .execute_statement()
            .sql(sql)
            .database(&self.database)
            .client_token(token);
        request = with_endpoint!(request, &self.endpoint);
        let output = request
            .send()
            .await
            .map_err(|e| call_error("ExecuteStatement", e))?;
        output.id().map(str::to_string).ok_or_else(|| {
            AdapterError::Internal("ExecuteStatement answered without a statement id".into())
        })
    }

    async fn submit_batch(&self, sqls: &[String], token: &str) -> Result<String, AdapterError> {
        self.count();
        let mut request = self
            .client
            .batch_execute_statement()
            .set_sqls(Some(sqls.to_vec()))
            .database(&self.database)
            .client_token(token);
        request = with_endpoint!(request, &self.endpoint);
        let output = request
            .send()
            .await
            .map_err(|e| call_error("BatchExecuteStatement", e))?;
        output.id().map(str::to_string).ok_or_else(|| {
            AdapterError::Internal("BatchExecuteStatement answered without a statement id".into())
        })
    }

    /// Polls a submitted statement until it ends; past the deadline it is cancelled.
    async fn wait(&self, id: &str) -> Result<Finished, AdapterError> {
        let started = Instant::now();
        let mut poll = 0;
        loop {
            tokio::time::sleep(self.polling.wait(poll)).await;
            poll += 1;
            self.count();
            let described = match self.client.describe_statement().id(id).send().await {
                Ok(described) => described,
                Err(err) => {
                    let err = call_error("DescribeStatement", err);
                    // A throttled poll polls again later: the statement runs on regardless,
                    // and submitting it again could write its rows twice.
                    if err.is_retryable() && started.elapsed() <= self.polling.deadline {
                        continue;
                    }
                    return Err(err.not_retryable());
                }
            };
            match described.status() {
                Some(StatusString::Finished) => {
                    let rows = |n: i64| u64::try_from(n).ok();
                    return Ok(Finished {
                        has_result_set: described.has_result_set().unwrap_or(false),
                        rows: rows(described.result_rows()),
                        sub_rows: described
                            .sub_statements()
                            .iter()
                            .map(|s| rows(s.result_rows()))
                            .collect(),
                    });
                }
                Some(StatusString::Failed) => {
                    let message = described
                        .error()
                        .unwrap_or("the statement failed without a message")
                        .trim()
                        .to_string();
                    let message = message
                        .strip_prefix("ERROR: ")
                        .unwrap_or(&message)
                        .to_string();
                    return Err(AdapterError::Database {
                        retryable: retryable_message(&message),
                        message,
                    });
                }
                Some(StatusString::Aborted) => return Err(AdapterError::Cancelled),
                _ => {}
            }
            if started.elapsed() > self.polling.deadline {
                self.cancel_statement(id).await;
                return Err(AdapterError::Database {
                    message: format!(
                        "the statement did not finish within {} s (`data_api_timeout`); it was cancelled",
                        self.polling.deadline.as_secs()
                    ),
                    retryable: false,
                });
            }
        }
    }

    /// Submits, then waits, keeping the id known to [`DataApi::cancel`] meanwhile.
    async fn run(&self, sqls: &[String], batch: bool) -> Result<(String, Finished), AdapterError> {
        self.retry
            .run(|| async {
                self.cancelled.check()?;
                // A new token per attempt: a statement that failed is run again, not looked up.
                let token = uuid::Uuid::new_v4().to_string();
                let started = Instant::now();
                let id = if batch {
                    self.submit_batch(sqls, &token).await?
                } else {
                    let sql = sqls.first().map(String::as_str).unwrap_or_default();
                    self.submit(sql, &token).await?
                };
                lock(&self.running).insert(id.clone());
                // A cancel that came while it was being submitted found nothing to cancel
                // (it sets the flag before reading `running`): cancel it here.
                if self.cancelled.check().is_err() {
                    self.cancel_statement(&id).await;
                    lock(&self.running).remove(&id);
                    return Err(AdapterError::Cancelled);
                }
                let finished = self.wait(&id).await;
                lock(&self.running).remove(&id);
                let spent = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
                self.busy.fetch_add(spent, Ordering::Relaxed);
                Ok((id, finished?))
            })
            .await
    }

    pub async fn execute(&self, sql: &str) -> Result<ExecOutcome, AdapterError> {
        self.cancelled.admit(sql)?;
        let (_, finished) = self.run(&[sql.to_string()], false).await?;
        Ok(ExecOutcome {
            rows_affected: finished.rows,
        })
    }

    /// Statements in order: in one transaction when asked (one `BatchExecuteStatement`, which
    /// commits all or nothing), else one call each.
    pub async fn execute_all(
        &self,
        statements: &[String],
        transaction: bool,
    ) -> Result<Vec<ExecOutcome>, AdapterError> {
        if statements.is_empty() {
            return Ok(Vec::new());
        }
        if !transaction || statements.len() == 1 {
            let mut outcomes = Vec::with_capacity(statements.len());
            for statement in statements {
                outcomes.push(self.execute(statement).await?);
            }
            return Ok(outcomes);
        }
        if statements.len() > BATCH_STATEMENTS {
            return Err(AdapterError::Database {
                message: format!(
                    "{} statements must commit together, more than the Data API's {BATCH_STATEMENTS} per batch; \
                     a large seed loads in one COPY once the target sets `s3_staging_dir` and `iam_role`, \
                     or use the wire protocol (`method: database`)",
                    statements.len()
                ),
                retryable: false,
            });
        }
        let (_, finished) = self.run(statements, true).await?;
        Ok((0..statements.len())
            .map(|i| ExecOutcome {
                rows_affected: finished.sub_rows.get(i).copied().flatten(),
            })
            .collect())
    }

    /// Runs a query and reads every page of its result.
    pub async fn query(&self, sql: &str) -> Result<Table, AdapterError> {
        let (id, finished) = self.run(&[sql.to_string()], false).await?;
        let mut table = Table::default();
        if !finished.has_result_set {
            return Ok(table);
        }
        let mut next: Option<String> = None;
        loop {
            self.cancelled.check()?;
            self.count();
            let page = self
                .client
                .get_statement_result()
                .id(&id)
                .set_next_token(next.take())
                .send()
                .await
                // The statement has run: reading its result again is all a retry could do.
                .map_err(|e| call_error("GetStatementResult", e).not_retryable())?;
            if table.columns.is_empty() {
                table.columns = page
                    .column_metadata()
                    .iter()
                    .map(|c| ColumnInfo {
                        name: c.name().or(c.label()).unwrap_or_default().to_string(),
                        data_type: c.type_name().unwrap_or_default().to_string(),
                    })
                    .collect();
            }
            table.rows.extend(
                page.records()
                    .iter()
                    .map(|row| row.iter().map(cell).collect()),
            );
            match page.next_token() {
                Some(token) if !token.is_empty() => next = Some(token.to_string()),
                _ => return Ok(table),
            }
        }
    }

    async fn cancel_statement(&self, id: &str) {
        self.count();
        // A statement that ended meanwhile cannot be cancelled: nothing to do either way.
        let _ = self.client.cancel_statement().id(id).send().await;
    }

    /// Cancels every statement in flight, on the server; later statements are refused.
    pub async fn cancel(&self) {
        self.cancelled.cancel();
        let ids: Vec<String> = lock(&self.running).iter().cloned().collect();
        for id in ids {
            self.cancel_statement(&id).await;
        }
    }
}

/// A result field as a cell: the Data API types integers, floats and booleans; everything else
/// (decimals, dates, timestamps, text) arrives as the server prints it.
fn cell(field: &Field) -> Cell {
    match field {
        Field::IsNull(true) => Cell::Null,
        Field::BooleanValue(b) => Cell::Bool(*b),
        Field::LongValue(n) => Cell::Int(*n),
        Field::DoubleValue(x) => Cell::Float(*x),
        Field::StringValue(s) => Cell::Text(s.clone()),
        Field::BlobValue(b) => Cell::Text(String::from_utf8_lossy(b.as_ref()).into_owned()),
        _ => Cell::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_read_as_cells() {
        assert_eq!(cell(&Field::IsNull(true)), Cell::Null);
        assert_eq!(cell(&Field::LongValue(7)), Cell::Int(7));
        assert_eq!(
            cell(&Field::StringValue("1.50".into())),
            Cell::Text("1.50".into())
        );
    }
}

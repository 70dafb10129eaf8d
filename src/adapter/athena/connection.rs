//! The Athena connection (aws-sdk-athena): `StartQueryExecution` with a client token per
//! attempt and the output location of `s3_staging_dir` (unless the workgroup enforces its
//! own), `GetQueryExecution` polled with backoff, jitter and a deadline, `GetQueryResults`
//! paged (the header row of a SELECT's first page dropped), `StopQueryExecution` on Ctrl-C and
//! at the deadline; throttling and `ICEBERG_COMMIT_ERROR` retried with jitter; a failed query
//! reported with its `StateChangeReason`. The catalog is read through Glue ([`super::glue`]),
//! local files reach tables through S3, and the Glue and S3 calls Hive-table plans lower to
//! run here.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_athena::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_athena::types::{
    QueryExecutionContext, QueryExecutionState, ResultConfiguration, StatementType,
};
use aws_sdk_athena::Client;

use super::glue::Glue;
use super::{AthenaFlavour, DDL_STYLE, DML_STYLE};
use crate::adapter::aws::{error_text, AwsSettings, Polling, S3Location, S3};
use crate::adapter::retry::RetryPolicy;
use crate::adapter::{
    Adapter, AdapterError, ApiCall, Cancellation, Cell, ColumnInfo, ExecOutcome, FileFormat,
    FileLoad, Flavour, KnownSchemas, RelationInfo, Table,
};
use crate::project::target::AthenaConfig;
use crate::relation::{string_literal, RelationName};

/// The longest query string Athena takes.
pub const QUERY_BYTES: usize = 262_144;

/// How a query ended well.
#[derive(Debug, Clone)]
struct Finished {
    statement_type: Option<StatementType>,
}

/// An Athena workgroup, through the AWS APIs.
pub struct AthenaAdapter {
    flavour: AthenaFlavour,
    client: Client,
    glue: Glue,
    s3: S3,
    catalog: String,
    schema: String,
    work_group: Option<String>,
    /// Where results go; `None` where the workgroup enforces its own.
    output: Option<String>,
    staging: S3Location,
    polling: Polling,
    retry: RetryPolicy,
    running: Mutex<HashSet<String>>,
    cancelled: Cancellation,
    schemas: KnownSchemas,
    /// The location a repointed Hive table had, until its objects are removed.
    previous: Mutex<HashMap<String, String>>,
    /// How long this target's statements of each kind have been taking (moving averages,
    /// microseconds; see [`kind_of`]): the first poll waits about that long, so a statement as
    /// fast as its kind's others costs one poll.
    typical: [AtomicU64; 4],
    busy: AtomicU64,
}

impl std::fmt::Debug for AthenaAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AthenaAdapter")
            .field("catalog", &self.catalog)
            .field("schema", &self.schema)
            .field("work_group", &self.work_group)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn connect_error(message: impl Into<String>) -> AdapterError {
    AdapterError::Connect {
        adapter: "athena",
        message: message.into(),
    }
}

/// An SDK call's error. The SDK has retried throttling with the same request; throttling that
/// outlasted its retries is retryable here, with a new token.
fn call_error<E, R>(operation: &str, err: SdkError<E, R>) -> AdapterError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    let retryable = matches!(
        err.code(),
        Some("ThrottlingException" | "TooManyRequestsException")
    );
    AdapterError::Database {
        message: format!("Athena {operation} failed: {}", error_text(&err)),
        retryable,
    }
}

/// A result value: integers, floats and booleans by the column's type; the rest as Athena
/// prints it.
fn cell(value: Option<&str>, data_type: &str) -> Cell {
    let Some(text) = value else {
        return Cell::Null;
    };
    match data_type {
        "tinyint" | "smallint" | "integer" | "int" | "bigint" => text
            .parse()
            .map(Cell::Int)
            .unwrap_or_else(|_| Cell::Text(text.to_string())),
        "double" | "float" | "real" => text
            .parse()
            .map(Cell::Float)
            .unwrap_or_else(|_| Cell::Text(text.to_string())),
        "boolean" => Cell::Bool(text == "true"),
        _ => Cell::Text(text.to_string()),
    }
}

/// Which of four kinds a statement is, for polling: DDL that writes no data, a table created
/// from a query, a write of rows, a query.
fn kind_of(sql: &str) -> usize {
    let text = sql.trim_start();
    let head: String = text
        .chars()
        .take(8)
        .collect::<String>()
        .to_ascii_lowercase();
    if head.starts_with("select") || head.starts_with("with") || head.starts_with("show") {
        3
    } else if head.starts_with("insert")
        || head.starts_with("merge")
        || head.starts_with("delete")
        || head.starts_with("update")
    {
        2
    } else if text
        .get(..12)
        .is_some_and(|h| h.eq_ignore_ascii_case("create table"))
        && text.contains(" as\n")
    {
        1
    } else {
        0
    }
}

/// `(schema, table)` of an API call's `table=catalog.schema.table` argument.
fn table_argument(call: &ApiCall) -> Result<(String, String), AdapterError> {
    table_named(call, "table")
}

/// `(schema, table)` of an API call's argument `name`, written `catalog.schema.table`.
fn table_named(call: &ApiCall, name: &str) -> Result<(String, String), AdapterError> {
    let dotted = argument(call, name)?;
    let mut parts = dotted.rsplitn(2, '.');
    let table = parts.next().unwrap_or_default();
    let schema = parts
        .next()
        .map(|rest| rest.rsplit('.').next().unwrap_or(rest))
        .unwrap_or_default();
    if schema.is_empty() || table.is_empty() {
        return Err(AdapterError::Internal(format!(
            "`{call}` names no schema and table"
        )));
    }
    Ok((schema.to_string(), table.to_string()))
}

fn argument<'a>(call: &'a ApiCall, name: &str) -> Result<&'a str, AdapterError> {
    call.arguments
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .ok_or_else(|| AdapterError::Internal(format!("`{call}` has no `{name}`")))
}

impl AthenaAdapter {
    /// Reads an Athena target's settings: the SDK configuration, the workgroup's output
    /// location rule (one `GetWorkGroup` where a workgroup is named).
    pub async fn connect(
        config: &AthenaConfig,
        threads: usize,
    ) -> Result<AthenaAdapter, AdapterError> {
        let _ = threads;
        let staging = S3Location::parse(&config.s3_staging_dir)
            .map_err(|e| connect_error(format!("`s3_staging_dir`: {e}")))?;
        let keys = match (&config.aws_access_key_id, &config.aws_secret_access_key) {
            (Some(id), Some(secret)) => Some((id.expose(), secret.expose())),
            (None, None) => None,
            _ => {
                return Err(connect_error(
                    "set both `aws_access_key_id` and `aws_secret_access_key`, or neither (to use the usual credential chain)",
                ))
            }
        };
        let sdk = crate::adapter::aws::sdk_config_for(&AwsSettings {
            region: Some(config.region_name.as_str()),
            profile: config.aws_profile_name.as_deref(),
            endpoint_url: config.endpoint_url.as_deref(),
            max_attempts: Some(config.num_retries.unwrap_or(5) + 1),
            keys,
        })
        .await;
        let client = Client::new(&sdk);
        let mut polling = Polling {
            first: Duration::from_millis(50),
            max: Duration::from_secs_f64(config.poll_interval.unwrap_or(1.0).clamp(0.05, 60.0)),
            ..Polling::default()
        };
        if let Some(seconds) = config.query_timeout {
            polling.deadline = Duration::from_secs(seconds);
        }
        let mut output = Some(config.s3_staging_dir.clone());
        if let Some(group) = &config.work_group {
            let answer = client
                .get_work_group()
                .work_group(group)
                .send()
                .await
                .map_err(|e| connect_error(format!("workgroup `{group}`: {}", error_text(&e))))?;
            let enforced = answer
                .work_group()
                .and_then(|w| w.configuration())
                .and_then(|c| c.enforce_work_group_configuration())
                .unwrap_or(false);
            if enforced {
                output = None;
            }
        }
        Ok(AthenaAdapter {
            flavour: AthenaFlavour::new(config),
            glue: Glue::new(aws_sdk_glue::Client::new(&sdk)),
            s3: S3::new(&sdk),
            client,
            catalog: config.database.clone(),
            schema: config.schema.clone(),
            work_group: config.work_group.clone(),
            output,
            staging,
            polling,
            retry: RetryPolicy::with_retries(config.num_iceberg_retries.unwrap_or(3)),
            running: Mutex::new(HashSet::new()),
            cancelled: Cancellation::default(),
            schemas: KnownSchemas::default(),
            previous: Mutex::new(HashMap::new()),
            typical: Default::default(),
            busy: AtomicU64::new(0),
        })
    }

    async fn start(&self, sql: &str) -> Result<String, AdapterError> {
        if sql.len() > QUERY_BYTES {
            return Err(AdapterError::Database {
                message: format!(
                    "the statement is {} bytes, more than Athena's {QUERY_BYTES}; split the model or move literal rows into a seed",
                    sql.len()
                ),
                retryable: false,
            });
        }
        let output = self.output.as_ref().map(|location| {
            ResultConfiguration::builder()
                .output_location(location)
                .build()
        });
        let answer = self
            .client
            .start_query_execution()
            .query_string(sql)
            // A new token per attempt: a query that failed is run again, not looked up.
            .client_request_token(uuid::Uuid::new_v4().to_string())
            .query_execution_context(
                QueryExecutionContext::builder()
                    .catalog(&self.catalog)
                    .database(&self.schema)
                    .build(),
            )
            .set_work_group(self.work_group.clone())
            .set_result_configuration(output)
            .send()
            .await
            .map_err(|e| call_error("StartQueryExecution", e))?;
        answer
            .query_execution_id()
            .map(str::to_string)
            .ok_or_else(|| {
                AdapterError::Internal("StartQueryExecution answered without an id".into())
            })
    }

    async fn stop(&self, id: &str) {
        // A query that ended meanwhile cannot be stopped: nothing to do either way.
        let _ = self
            .client
            .stop_query_execution()
            .query_execution_id(id)
            .send()
            .await;
    }

    /// The first wait of a poll: about as long as this target's queries have been taking
    /// (never less than the policy's first wait, at most its longest), so a query as fast as
    /// the others is found finished by one `GetQueryExecution`.
    fn first_wait(&self, kind: usize) -> Duration {
        let typical = Duration::from_micros(self.typical[kind].load(Ordering::Relaxed));
        let random = (uuid::Uuid::new_v4().as_u128() % 1_000_001) as f64 / 1_000_000.0;
        typical
            .mul_f64(1.0 + random / 10.0)
            .clamp(self.polling.first, self.polling.max)
    }

    /// Folds a finished query's time into the moving average (weight 1/8, as TCP's RTT).
    fn observe(&self, kind: usize, took: Duration) {
        let sample = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let _ = self.typical[kind].fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
            Some(if old == 0 {
                sample
            } else {
                old - old / 8 + sample / 8
            })
        });
    }

    /// Polls a query until it ends; past the deadline it is stopped.
    async fn wait(&self, id: &str, kind: usize) -> Result<Finished, AdapterError> {
        let started = Instant::now();
        let mut poll = 0;
        loop {
            let pause = if poll == 0 {
                self.first_wait(kind)
            } else {
                self.polling.wait(poll)
            };
            tokio::time::sleep(pause).await;
            poll += 1;
            let answer = match self
                .client
                .get_query_execution()
                .query_execution_id(id)
                .send()
                .await
            {
                Ok(answer) => answer,
                Err(err) => {
                    let err = call_error("GetQueryExecution", err);
                    // A throttled poll polls again later: the query runs on regardless, and
                    // starting it again could write its rows twice.
                    if err.is_retryable() && started.elapsed() <= self.polling.deadline {
                        continue;
                    }
                    return Err(err.not_retryable());
                }
            };
            let execution = answer.query_execution();
            let status = execution.and_then(|e| e.status());
            match status.and_then(|s| s.state()) {
                Some(QueryExecutionState::Succeeded) => {
                    self.observe(kind, started.elapsed());
                    return Ok(Finished {
                        statement_type: execution.and_then(|e| e.statement_type()).cloned(),
                    });
                }
                Some(QueryExecutionState::Failed) => {
                    let reason = status
                        .and_then(|s| s.state_change_reason())
                        .or_else(|| {
                            status
                                .and_then(|s| s.athena_error())
                                .and_then(|e| e.error_message())
                        })
                        .unwrap_or("the query failed without a reason")
                        .trim()
                        .to_string();
                    let retryable = self.flavour.is_retryable_message(&reason);
                    return Err(AdapterError::Database {
                        message: reason,
                        retryable,
                    });
                }
                Some(QueryExecutionState::Cancelled) => return Err(AdapterError::Cancelled),
                _ => {}
            }
            if started.elapsed() > self.polling.deadline {
                self.stop(id).await;
                return Err(AdapterError::Database {
                    message: format!(
                        "the query did not finish within {} s (`query_timeout`); it was stopped",
                        self.polling.deadline.as_secs()
                    ),
                    retryable: false,
                });
            }
        }
    }

    /// Starts and waits, keeping the id known to [`Adapter::cancel`] meanwhile; retried on
    /// throttling and Iceberg commit conflicts.
    async fn run(&self, sql: &str) -> Result<(String, Finished), AdapterError> {
        self.retry
            .run(|| async {
                self.cancelled.admit(sql)?;
                let started = Instant::now();
                let id = self.start(sql).await?;
                lock(&self.running).insert(id.clone());
                // A cancel that came while the query was being started found nothing to
                // stop: the flag is set before `cancel` reads the running ids, and the id is
                // in them before this reads the flag, so one of the two stops it.
                if self.cancelled.admit(sql).is_err() {
                    self.stop(&id).await;
                    lock(&self.running).remove(&id);
                    return Err(AdapterError::Cancelled);
                }
                let finished = self.wait(&id, kind_of(sql)).await;
                lock(&self.running).remove(&id);
                let spent = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
                self.busy.fetch_add(spent, Ordering::Relaxed);
                Ok((id, finished?))
            })
            .await
    }

    /// Reads a finished query's results, every page; `limit` stops after the first page.
    async fn results(
        &self,
        id: &str,
        first_page_only: bool,
    ) -> Result<(Table, Option<u64>), AdapterError> {
        let mut table = Table::default();
        let mut update_count = None;
        let mut next: Option<String> = None;
        let mut first = true;
        loop {
            let page = self
                .client
                .get_query_results()
                .query_execution_id(id)
                .max_results(1000)
                .set_next_token(next.take())
                .send()
                .await
                // The query has run: reading its results again is all a retry could do.
                .map_err(|e| call_error("GetQueryResults", e).not_retryable())?;
            if let Some(count) = page.update_count() {
                update_count = u64::try_from(count).ok();
            }
            if let Some(set) = page.result_set() {
                if table.columns.is_empty() {
                    table.columns = set
                        .result_set_metadata()
                        .map(|m| {
                            m.column_info()
                                .iter()
                                .map(|c| ColumnInfo {
                                    name: c.name().to_string(),
                                    data_type: c.r#type().to_string(),
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                }
                let mut rows = set.rows().iter();
                if first {
                    // A SELECT's first page opens with its column names.
                    if let Some(head) = set.rows().first() {
                        let names: Vec<Option<&str>> =
                            head.data().iter().map(|d| d.var_char_value()).collect();
                        let header = !names.is_empty()
                            && names.len() == table.columns.len()
                            && names
                                .iter()
                                .zip(&table.columns)
                                .all(|(n, c)| *n == Some(c.name.as_str()));
                        if header {
                            rows.next();
                        }
                    }
                }
                for row in rows {
                    table.rows.push(
                        row.data()
                            .iter()
                            .zip(&table.columns)
                            .map(|(d, c)| cell(d.var_char_value(), &c.data_type))
                            .collect(),
                    );
                }
            }
            first = false;
            match page.next_token() {
                Some(token) if !token.is_empty() && !first_page_only => {
                    self.cancelled.check()?;
                    next = Some(token.to_string());
                }
                _ => return Ok((table, update_count)),
            }
        }
    }

    /// Whether a statement writes rows, so its count is worth a `GetQueryResults`.
    fn writes_rows(sql: &str) -> bool {
        kind_of(sql) == 2
    }

    /// Loads a local Parquet file: uploaded to the staging dir, read through an external
    /// table over its folder, inserted with the load's statements around it; the external
    /// table and the object removed after, whether or not the load succeeded.
    /// With `cast`, the file's columns are text, cast to the table's column types on insert.
    async fn load_parquet(
        &self,
        load: &FileLoad<'_>,
        file: &std::path::Path,
        cast: bool,
    ) -> Result<u64, AdapterError> {
        let run = uuid::Uuid::new_v4().simple().to_string();
        let folder = self.staging.join(&format!("strata/load/{run}/"));
        let object = folder.join(&format!("{}.parquet", load.relation.identifier));
        let path = file.to_path_buf();
        let reader = format!(
            "select * from read_parquet({})",
            string_literal(&path.to_string_lossy())
        );
        let described = tokio::task::spawn_blocking(move || crate::local::describe(&reader))
            .await
            .map_err(|e| AdapterError::Internal(format!("the file reader task failed: {e}")))??;
        self.s3.upload(file, &object).await?;
        let external = RelationName::new(
            load.relation.database.clone(),
            load.relation.schema.clone(),
            format!("{}__strata_load_{}", load.relation.identifier, &run[..8]),
        );
        let columns: Vec<String> = described
            .iter()
            .map(|c| {
                format!(
                    "{} {}",
                    DDL_STYLE.quote_identifier(&c.name),
                    self.flavour.column_type_for(&c.data_type)
                )
            })
            .collect();
        let names: Vec<String> = described
            .iter()
            .map(|c| DML_STYLE.quote_identifier(&c.name))
            .collect();
        for statement in load.before {
            self.execute(statement).await?;
        }
        let mut selected = names.clone();
        if cast {
            let table = self
                .glue
                .table(&load.relation.schema, &load.relation.identifier)
                .await?
                .ok_or_else(|| {
                    AdapterError::Internal(format!(
                        "{} is missing after its creation",
                        load.relation
                    ))
                })?;
            selected = described
                .iter()
                .zip(&names)
                .map(|(column, quoted)| {
                    let ty = table
                        .columns
                        .iter()
                        .find(|c| c.name.eq_ignore_ascii_case(&column.name))
                        .and_then(|c| super::dml_type(&c.data_type));
                    match ty {
                        Some(ty) => format!("cast({quoted} as {ty})"),
                        None => quoted.clone(),
                    }
                })
                .collect();
        }
        let mut statements: Vec<String> = Vec::new();
        statements.push(format!(
            "create external table {} ({}) stored as parquet location {}",
            external.render(&DDL_STYLE),
            columns.join(", "),
            string_literal(&folder.uri())
        ));
        let at = statements.len();
        statements.push(format!(
            "insert into {} ({}) select {} from {}",
            load.relation.render(&DML_STYLE),
            names.join(", "),
            selected.join(", "),
            external.render(&DML_STYLE)
        ));
        statements.extend(load.after.iter().cloned());
        let mut loaded = Ok(0);
        for (index, statement) in statements.iter().enumerate() {
            match self.execute(statement).await {
                Ok(outcome) if index == at => loaded = Ok(outcome.rows_affected.unwrap_or(0)),
                Ok(_) => {}
                Err(err) => {
                    loaded = Err(err);
                    break;
                }
            }
        }
        let dropped = self
            .execute(&format!(
                "drop table if exists {}",
                external.render(&DDL_STYLE)
            ))
            .await;
        let removed = self.s3.remove_prefix(&folder).await;
        let rows = loaded?;
        dropped?;
        removed?;
        Ok(rows)
    }
}

#[async_trait]
impl Adapter for AthenaAdapter {
    fn flavour(&self) -> &dyn Flavour {
        &self.flavour
    }

    async fn execute(&self, sql: &str) -> Result<ExecOutcome, AdapterError> {
        let (id, finished) = self.run(sql).await?;
        let rows_affected =
            if finished.statement_type == Some(StatementType::Dml) && Self::writes_rows(sql) {
                self.results(&id, true).await?.1
            } else {
                None
            };
        Ok(ExecOutcome { rows_affected })
    }

    async fn execute_all(
        &self,
        statements: &[String],
        _transaction: bool,
    ) -> Result<Vec<ExecOutcome>, AdapterError> {
        // Athena has no transactions; plans for it never rely on two statements committing
        // together.
        let mut outcomes = Vec::with_capacity(statements.len());
        for statement in statements {
            outcomes.push(self.execute(statement).await?);
        }
        Ok(outcomes)
    }

    async fn query(&self, sql: &str) -> Result<Table, AdapterError> {
        let (id, _) = self.run(sql).await?;
        Ok(self.results(&id, false).await?.0)
    }

    async fn relation(&self, name: &RelationName) -> Result<Option<RelationInfo>, AdapterError> {
        Ok(self
            .glue
            .table(&name.schema, &name.identifier)
            .await?
            .map(|t| RelationInfo {
                name: RelationName::new(name.database.clone(), name.schema.clone(), t.name),
                kind: t.kind,
                columns: t.columns,
            }))
    }

    async fn list_schema(
        &self,
        database: Option<&str>,
        schema: &str,
    ) -> Result<Vec<RelationInfo>, AdapterError> {
        Ok(self
            .glue
            .list(schema)
            .await?
            .into_iter()
            .map(|t| RelationInfo {
                name: RelationName::new(database.map(str::to_string), schema, t.name),
                kind: t.kind,
                columns: t.columns,
            })
            .collect())
    }

    async fn call(&self, call: &ApiCall) -> Result<(), AdapterError> {
        self.cancelled.check().or_else(|e| {
            // Putting a table's data back in place is cleanup a cancelled run still does.
            if call.operation.starts_with("glue:") {
                Ok(())
            } else {
                Err(e)
            }
        })?;
        let (schema, table) = table_argument(call)?;
        match call.operation.as_str() {
            "glue:BatchDeletePartition" => {
                let partitions: Vec<Vec<String>> =
                    serde_json::from_str(argument(call, "partitions")?)
                        .map_err(|e| AdapterError::Internal(format!("`{call}`: {e}")))?;
                self.glue
                    .delete_partitions(&schema, &table, &partitions)
                    .await
            }
            "glue:UpdateTable" => {
                let (_, aside) = table_named(call, "location_and_columns_of")?;
                if let Some(previous) = self.glue.repoint(&schema, &table, &aside).await? {
                    lock(&self.previous).insert(format!("{schema}.{table}"), previous);
                }
                Ok(())
            }
            "glue:DeleteTable" => self.glue.delete_table(&schema, &table).await,
            "s3:DeleteObjects" => {
                let live = self.glue.table(&schema, &table).await?;
                let current = live.as_ref().and_then(|t| t.location.clone());
                let prefix = match call.arguments.iter().find(|(n, _)| n == "partition") {
                    Some((_, path)) => match &current {
                        Some(location) => format!("{location}/{path}/"),
                        None => return Ok(()),
                    },
                    None => match lock(&self.previous).remove(&format!("{schema}.{table}")) {
                        Some(previous) => format!("{}/", previous.trim_end_matches('/')),
                        None => return Ok(()),
                    },
                };
                let prefix = S3Location::parse(&prefix).map_err(|e| AdapterError::Database {
                    message: format!("table {schema}.{table}: {e}"),
                    retryable: false,
                })?;
                // Never the live data: a location built aside may lie under the old one.
                let keep = current
                    .and_then(|c| S3Location::parse(&format!("{}/", c.trim_end_matches('/'))).ok())
                    .filter(|c| {
                        c.bucket == prefix.bucket
                            && c.key.starts_with(&prefix.key)
                            && c.key != prefix.key
                    });
                match keep {
                    None => self.s3.remove_prefix(&prefix).await.map(|_| ()),
                    Some(keep) => {
                        let doomed: Vec<String> = self
                            .s3
                            .list(&prefix)
                            .await?
                            .into_iter()
                            .filter(|key| !key.starts_with(&keep.key))
                            .collect();
                        for key in doomed {
                            self.s3
                                .remove(&S3Location {
                                    bucket: prefix.bucket.clone(),
                                    key,
                                })
                                .await?;
                        }
                        Ok(())
                    }
                }
            }
            other => Err(AdapterError::Internal(format!(
                "the Athena adapter cannot run `{other}`"
            ))),
        }
    }

    async fn cancel(&self) -> Result<(), AdapterError> {
        self.cancelled.cancel();
        let ids: Vec<String> = lock(&self.running).iter().cloned().collect();
        for id in ids {
            self.stop(&id).await;
        }
        Ok(())
    }

    async fn checks(&self) -> Vec<(String, Result<String, AdapterError>)> {
        let mut checks = vec![(
            format!(
                "workgroup `{}`",
                self.work_group.as_deref().unwrap_or("primary")
            ),
            self.query("select 1 as ok")
                .await
                .map(|_| match &self.output {
                    Some(location) => format!("OK, results in {location}"),
                    None => "OK, results where the workgroup enforces".to_string(),
                }),
        )];
        checks.push((
            format!("staging location {}", self.staging.uri()),
            self.s3
                .check(&self.staging)
                .await
                .map(|()| "listable".to_string()),
        ));
        checks.push((
            format!("catalog `{}` (Glue)", self.catalog),
            self.glue
                .check()
                .await
                .map(|n| format!("{n} databases readable")),
        ));
        checks
    }

    fn busy_time(&self) -> Duration {
        Duration::from_nanos(self.busy.load(Ordering::Relaxed))
    }

    fn known_schemas(&self) -> Option<&KnownSchemas> {
        Some(&self.schemas)
    }

    async fn list_remote(
        &self,
        location: &str,
    ) -> Result<Option<Vec<(String, u64)>>, AdapterError> {
        let bad = |message: String| AdapterError::Database {
            message: format!("the landing location `{location}`: {message}"),
            retryable: false,
        };
        if !location.starts_with("s3://") {
            return Ok(None);
        }
        // The literal folders before the first glob character are the prefix listed.
        let folder = crate::util::glob_folder(location);
        let prefix = S3Location::parse(folder).map_err(bad)?;
        let matcher = globset::GlobBuilder::new(location)
            .literal_separator(true)
            .build()
            .map_err(|e| bad(e.to_string()))?
            .compile_matcher();
        let mut files: Vec<(String, u64)> = self
            .s3
            .list_sized(&prefix)
            .await?
            .into_iter()
            .map(|(key, size)| (format!("s3://{}/{key}", prefix.bucket), size))
            .filter(|(uri, _)| matcher.is_match(uri))
            .collect();
        files.sort();
        Ok(Some(files))
    }

    async fn fetch_remote(&self, path: &str, to: &std::path::Path) -> Result<(), AdapterError> {
        let at = S3Location::parse(path).map_err(|message| AdapterError::Database {
            message,
            retryable: false,
        })?;
        self.s3.download(&at, to).await
    }

    async fn load_file(&self, load: &FileLoad<'_>) -> Result<u64, AdapterError> {
        match load.format {
            FileFormat::Parquet => self.load_parquet(load, load.path, false).await,
            // A seed: its CSV rewritten as Parquet of text, cast to the table's types.
            FileFormat::Csv(options) => {
                let scratch = tempfile::NamedTempFile::new().map_err(|e| {
                    AdapterError::Internal(format!("cannot create a scratch file: {e}"))
                })?;
                let (path, out, options) = (
                    load.path.to_path_buf(),
                    scratch.path().to_path_buf(),
                    *options,
                );
                tokio::task::spawn_blocking(move || {
                    crate::local::csv_to_text_parquet(&path, &options, &out)
                })
                .await
                .map_err(|e| {
                    AdapterError::Internal(format!("the file writer task failed: {e}"))
                })??;
                self.load_parquet(load, scratch.path(), true).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_by_their_column_types() {
        assert_eq!(cell(Some("7"), "bigint"), Cell::Int(7));
        assert_eq!(cell(Some("1.5"), "double"), Cell::Float(1.5));
        assert_eq!(cell(Some("true"), "boolean"), Cell::Bool(true));
        assert_eq!(cell(Some("12.50"), "decimal"), Cell::Text("12.50".into()));
        assert_eq!(cell(None, "varchar"), Cell::Null);
    }

    #[test]
    fn api_calls_name_their_table() {
        let call = ApiCall {
            operation: "glue:DeleteTable".into(),
            arguments: vec![("table".into(), "awsdatacatalog.analytics.orders".into())],
        };
        assert_eq!(
            table_argument(&call).unwrap(),
            ("analytics".to_string(), "orders".to_string())
        );
        assert!(AthenaAdapter::writes_rows("  INSERT into t select 1"));
        assert_eq!(
            kind_of("create table t with (format='PARQUET') as\nselect 1"),
            1
        );
        assert_eq!(kind_of("create or replace view v as\nselect 1"), 0);
        assert_eq!(kind_of("insert into t select 1"), 2);
        assert_eq!(kind_of("select 1"), 3);
        assert!(!AthenaAdapter::writes_rows("create table t as select 1"));
    }
}

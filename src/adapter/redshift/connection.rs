//! [`RedshiftAdapter`]: Redshift's SQL run over one of two transports — the PostgreSQL wire
//! protocol ([`crate::adapter::wire`], without advisory locks or `COPY … FROM STDIN`, which
//! Redshift lacks) or the Data API ([`super::data_api`]) — with files loaded through S3: put
//! under the target's `s3_staging_dir`, `COPY … FROM 's3://…' IAM_ROLE …` in one transaction
//! with the statements around the load, the object removed after.

use std::sync::Arc;

use async_trait::async_trait;
use tokio_postgres::error::SqlState;

use super::data_api::DataApi;
use super::{retryable_message, RedshiftFlavour, REDSHIFT_STYLE};
use crate::adapter::aws::{S3Location, S3};
use crate::adapter::wire::{WireSettings, WireTransport};
use crate::adapter::{
    Adapter, AdapterError, ExecOutcome, FileFormat, FileLoad, Flavour, KnownSchemas, RelationInfo,
    Table,
};
use crate::project::target::RedshiftConfig;
use crate::relation::{string_literal, RelationName};

/// How statements reach the cluster.
#[derive(Debug)]
enum Transport {
    Wire(WireTransport),
    DataApi(DataApi),
}

/// Where files are staged for `COPY`, and the role Redshift reads them as.
#[derive(Debug)]
struct Stage {
    s3: S3,
    location: S3Location,
    iam_role: String,
    region: Option<String>,
}

/// A Redshift cluster or Serverless workgroup.
#[derive(Debug)]
pub struct RedshiftAdapter {
    transport: Transport,
    flavour: Arc<RedshiftFlavour>,
    stage: Option<Stage>,
    schemas: KnownSchemas,
}

/// Redshift's retryable errors over the wire: serialization failures by SQLSTATE (40001) or by
/// their message (1023), relations dropped under a query, concurrent transactions in conflict.
fn retryable(state: &SqlState, message: &str) -> bool {
    *state == SqlState::T_R_SERIALIZATION_FAILURE || retryable_message(message)
}

impl RedshiftAdapter {
    /// Opens the transport the target's `method` names (a first wire connection checks the
    /// settings; the Data API is checked by its first statement).
    pub async fn connect(
        config: &RedshiftConfig,
        threads: usize,
    ) -> Result<RedshiftAdapter, AdapterError> {
        let connect_error = |message: String| AdapterError::Connect {
            adapter: "redshift",
            message,
        };
        let transport = if config.uses_data_api() {
            Transport::DataApi(DataApi::connect(config).await?)
        } else {
            let method = config.method.as_deref().unwrap_or("database");
            if !method.eq_ignore_ascii_case("database") {
                return Err(connect_error(format!(
                    "unknown method `{method}`; use database (the wire protocol) or data_api"
                )));
            }
            let host = config
                .host
                .clone()
                .ok_or_else(|| connect_error("a wire-protocol target needs `host`".into()))?;
            let user = config
                .user
                .clone()
                .ok_or_else(|| connect_error("a wire-protocol target needs `user`".into()))?;
            let wire = WireTransport::connect(
                &WireSettings {
                    adapter: "redshift",
                    host,
                    port: config.port,
                    user,
                    password: config.password.clone(),
                    dbname: config.dbname.clone(),
                    sslmode: config.sslmode.clone(),
                    connect_timeout: config.connect_timeout,
                    keepalives_idle: config.keepalives_idle,
                    search_path: Some(REDSHIFT_STYLE.quote_identifier(&config.schema)),
                    retries: config.retries,
                    threads,
                },
                retryable,
            )
            .await?;
            Transport::Wire(wire)
        };
        let stage = match &config.s3_staging_dir {
            None => None,
            Some(dir) => {
                let location = S3Location::parse(dir)
                    .map_err(|e| connect_error(format!("`s3_staging_dir`: {e}")))?;
                let iam_role = config.iam_role.clone().ok_or_else(|| {
                    connect_error(
                        "`s3_staging_dir` needs `iam_role`: the role Redshift's COPY reads the staged files as"
                            .into(),
                    )
                })?;
                let sdk = crate::adapter::aws::sdk_config(
                    config.region.as_deref(),
                    config.aws_profile_name.as_deref(),
                )
                .await;
                Some(Stage {
                    s3: S3::new(&sdk),
                    location,
                    iam_role,
                    region: config.region.clone(),
                })
            }
        };
        Ok(RedshiftAdapter {
            transport,
            flavour: Arc::new(RedshiftFlavour::new(config)),
            stage,
            schemas: KnownSchemas::default(),
        })
    }

    /// Which transport this adapter uses, for `strata debug`.
    pub fn transport_name(&self) -> &'static str {
        match self.transport {
            Transport::Wire(_) => "wire protocol",
            Transport::DataApi(_) => "Data API",
        }
    }
}

/// `COPY` of a staged file into `relation`. CSV (with a header) fills `columns` (all when
/// empty), empty fields as NULL as the other warehouses read them; Parquet fills every column
/// by position and takes neither a column list nor `region` (Redshift refuses both).
pub fn copy_sql(
    relation: &RelationName,
    columns: &[String],
    from: &S3Location,
    iam_role: &str,
    format: &FileFormat,
    region: Option<&str>,
) -> String {
    let style = &REDSHIFT_STYLE;
    let head = format!(
        "copy {}{{columns}} from {} iam_role {}",
        relation.render(style),
        string_literal(&from.uri()),
        string_literal(iam_role),
    );
    match format {
        FileFormat::Parquet => format!("{} format as parquet", head.replace("{columns}", "")),
        FileFormat::Csv(options) => {
            let columns = if columns.is_empty() {
                String::new()
            } else {
                format!(" ({})", crate::adapter::ansi::column_list(columns, style))
            };
            let region = region
                .map(|r| format!(" region {}", string_literal(r)))
                .unwrap_or_default();
            format!(
                "{} format as csv quote as {} delimiter {} ignoreheader 1 emptyasnull dateformat 'auto' timeformat 'auto'{region}",
                head.replace("{columns}", &columns),
                string_literal(&options.quote.to_string()),
                string_literal(&options.delimiter.to_string()),
            )
        }
    }
}

#[async_trait]
impl Adapter for RedshiftAdapter {
    fn flavour(&self) -> &dyn Flavour {
        self.flavour.as_ref()
    }

    async fn execute(&self, sql: &str) -> Result<ExecOutcome, AdapterError> {
        match &self.transport {
            Transport::Wire(wire) => wire.execute(sql).await,
            Transport::DataApi(api) => api.execute(sql).await,
        }
    }

    async fn execute_all(
        &self,
        statements: &[String],
        transaction: bool,
    ) -> Result<Vec<ExecOutcome>, AdapterError> {
        match &self.transport {
            Transport::Wire(wire) => wire.execute_all(statements, transaction).await,
            Transport::DataApi(api) => api.execute_all(statements, transaction).await,
        }
    }

    async fn query(&self, sql: &str) -> Result<Table, AdapterError> {
        match &self.transport {
            Transport::Wire(wire) => wire.query(sql).await,
            Transport::DataApi(api) => api.query(sql).await,
        }
    }

    async fn relation(&self, name: &RelationName) -> Result<Option<RelationInfo>, AdapterError> {
        let sql = super::relation_sql(&name.schema, &name.identifier);
        let table = self.query(&sql).await?;
        Ok(RelationInfo::from_catalog_rows(name, &table, |k| {
            self.flavour.is_view_kind(k)
        }))
    }

    async fn cancel(&self) -> Result<(), AdapterError> {
        match &self.transport {
            Transport::Wire(wire) => wire.cancel().await,
            Transport::DataApi(api) => api.cancel().await,
        }
        Ok(())
    }

    fn busy_time(&self) -> std::time::Duration {
        match &self.transport {
            Transport::Wire(wire) => wire.busy_time(),
            Transport::DataApi(api) => api.busy_time(),
        }
    }

    fn known_schemas(&self) -> Option<&KnownSchemas> {
        Some(&self.schemas)
    }

    async fn load_file(&self, load: &FileLoad<'_>) -> Result<u64, AdapterError> {
        let Some(stage) = &self.stage else {
            return Err(AdapterError::Database {
                message: format!(
                    "loading files into {} on Redshift goes through S3: set `s3_staging_dir` and `iam_role` in the target",
                    load.relation
                ),
                retryable: false,
            });
        };
        let extension = match load.format {
            FileFormat::Csv(_) => "csv",
            FileFormat::Parquet => "parquet",
        };
        let object = stage.location.join(&format!(
            "strata/{}/{}.{}.{extension}",
            uuid::Uuid::new_v4(),
            load.relation.schema,
            load.relation.identifier
        ));
        stage.s3.upload(load.path, &object).await?;
        let copy = copy_sql(
            load.relation,
            load.columns,
            &object,
            &stage.iam_role,
            load.format,
            stage.region.as_deref(),
        );
        let mut statements: Vec<String> = load.before.to_vec();
        let at = statements.len();
        statements.push(copy);
        statements.extend(load.after.iter().cloned());
        let loaded = self.execute_all(&statements, true).await;
        // The object served its load, whether or not it committed; a retry uploads it again.
        let removed = stage.s3.remove(&object).await;
        let outcomes = loaded?;
        removed?;
        Ok(outcomes.get(at).and_then(|o| o.rows_affected).unwrap_or(0))
    }

    async fn recreate_dependent_views(
        &self,
        relation: &RelationName,
    ) -> Result<Vec<String>, AdapterError> {
        let table = self.query(&super::dependent_views_sql(relation)).await?;
        // No `DO` blocks on Redshift: a view the new table no longer satisfies fails the swap.
        Ok(
            crate::adapter::postgres::view_definitions(&table, &REDSHIFT_STYLE)
                .iter()
                .map(|(view, definition)| format!("create view {view} as {definition}"))
                .collect(),
        )
    }

    async fn checks(&self) -> Vec<(String, Result<String, AdapterError>)> {
        let mut checks = vec![(
            format!("connection ({})", self.transport_name()),
            self.query("select 1 as ok").await.map(|_| "OK".to_string()),
        )];
        if let Some(stage) = &self.stage {
            checks.push((
                format!("S3 staging {}", stage.location.uri()),
                stage.s3.check(&stage.location).await.map(|()| "OK".into()),
            ));
        }
        checks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_read_csv_from_the_stage_with_the_role() {
        let sql = copy_sql(
            &RelationName::new(None, "raw", "orders"),
            &["id".into(), "amount".into()],
            &S3Location::parse("s3://lake/stage/x.csv").unwrap(),
            "arn:aws:iam::123:role/load",
            &FileFormat::Csv(crate::adapter::CsvOptions::default()),
            Some("eu-west-1"),
        );
        assert_eq!(
            sql,
            "copy \"raw\".\"orders\" (\"id\", \"amount\") from 's3://lake/stage/x.csv' iam_role 'arn:aws:iam::123:role/load' format as csv quote as '\"' delimiter ',' ignoreheader 1 emptyasnull dateformat 'auto' timeformat 'auto' region 'eu-west-1'"
        );
        let parsed =
            sqlparser::parser::Parser::parse_sql(&sqlparser::dialect::RedshiftSqlDialect {}, &sql);
        assert!(parsed.is_ok(), "{parsed:?}");
        let parquet = copy_sql(
            &RelationName::new(None, "raw", "orders"),
            &["id".into()],
            &S3Location::parse("s3://lake/stage/x.parquet").unwrap(),
            "arn:aws:iam::123:role/load",
            &FileFormat::Parquet,
            Some("eu-west-1"),
        );
        assert_eq!(
            parquet,
            "copy \"raw\".\"orders\" from 's3://lake/stage/x.parquet' iam_role 'arn:aws:iam::123:role/load' format as parquet"
        );
    }
}

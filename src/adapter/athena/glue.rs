//! Athena's catalog through the Glue API, not `information_schema`: one paged `GetTables` per
//! schema, `GetTable` for one relation (type, location, columns, partition keys, names in lower
//! case), and the catalog calls Hive-table plans lower to: partitions deleted at most 25 a
//! call, a table pointed at another table's data and partitions.

use aws_sdk_glue::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_glue::types::{
    Column, Partition, PartitionInput, PartitionValueList, StorageDescriptor, Table, TableInput,
};
use aws_sdk_glue::Client;

use crate::adapter::aws::error_text;
use crate::adapter::{AdapterError, ColumnInfo, RelationKind};

/// Glue deletes at most 25 partitions a call.
pub const PARTITIONS_PER_DELETE: usize = 25;
/// Glue creates at most 100 partitions a call.
const PARTITIONS_PER_CREATE: usize = 100;

/// A table as Glue describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlueTable {
    /// Lower case, as Glue stores names.
    pub name: String,
    pub kind: RelationKind,
    /// The data columns, then the partition keys, as Athena lists them.
    pub columns: Vec<ColumnInfo>,
    pub partition_keys: Vec<String>,
    pub location: Option<String>,
    pub iceberg: bool,
}

impl GlueTable {
    fn of(table: &Table) -> GlueTable {
        let column = |c: &Column| ColumnInfo {
            name: c.name().to_lowercase(),
            data_type: c.r#type().unwrap_or_default().to_string(),
        };
        let descriptor = table.storage_descriptor();
        let mut columns: Vec<ColumnInfo> = descriptor
            .map(|sd| sd.columns().iter().map(column).collect())
            .unwrap_or_default();
        columns.extend(table.partition_keys().iter().map(column));
        let iceberg = table.parameters().is_some_and(|p| {
            p.get("table_type")
                .is_some_and(|t| t.eq_ignore_ascii_case("iceberg"))
        });
        GlueTable {
            name: table.name().to_lowercase(),
            kind: if table.table_type() == Some("VIRTUAL_VIEW") {
                RelationKind::View
            } else {
                RelationKind::Table
            },
            columns,
            partition_keys: table
                .partition_keys()
                .iter()
                .map(|c| c.name().to_lowercase())
                .collect(),
            location: descriptor
                .and_then(StorageDescriptor::location)
                .map(|l| l.trim_end_matches('/').to_string()),
            iceberg,
        }
    }
}

fn glue_error<E, R>(operation: &str, err: SdkError<E, R>) -> AdapterError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    let retryable = matches!(
        err.code(),
        Some(
            "ThrottlingException" | "ConcurrentModificationException" | "InternalServiceException"
        )
    );
    AdapterError::Database {
        message: format!("Glue {operation} failed: {}", error_text(&err)),
        retryable,
    }
}

fn not_found<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    err.code() == Some("EntityNotFoundException")
}

/// The Glue client of one Athena target.
#[derive(Debug)]
pub struct Glue {
    client: Client,
}

impl Glue {
    pub fn new(client: Client) -> Glue {
        Glue { client }
    }

    /// Every table and view of a schema (a Glue database), in one paged listing; a schema
    /// that does not exist holds nothing.
    pub async fn list(&self, schema: &str) -> Result<Vec<GlueTable>, AdapterError> {
        let mut tables = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let page = self
                .client
                .get_tables()
                .database_name(schema.to_lowercase())
                .set_next_token(next.take())
                .send()
                .await;
            let page = match page {
                Ok(page) => page,
                Err(err) if not_found(&err) => return Ok(Vec::new()),
                Err(err) => return Err(glue_error("GetTables", err)),
            };
            tables.extend(page.table_list().iter().map(GlueTable::of));
            match page.next_token() {
                Some(token) if !token.is_empty() => next = Some(token.to_string()),
                _ => break,
            }
        }
        tables.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(tables)
    }

    async fn get(&self, schema: &str, name: &str) -> Result<Option<Table>, AdapterError> {
        match self
            .client
            .get_table()
            .database_name(schema.to_lowercase())
            .name(name.to_lowercase())
            .send()
            .await
        {
            Ok(answer) => Ok(answer.table().cloned()),
            Err(err) if not_found(&err) => Ok(None),
            Err(err) => Err(glue_error("GetTable", err)),
        }
    }

    /// One table, or `None`.
    pub async fn table(&self, schema: &str, name: &str) -> Result<Option<GlueTable>, AdapterError> {
        Ok(self.get(schema, name).await?.as_ref().map(GlueTable::of))
    }

    /// Deletes partitions by their values (Hive's text form), 25 a call; partitions that do
    /// not exist are no error (a retried or repeated delete).
    pub async fn delete_partitions(
        &self,
        schema: &str,
        table: &str,
        partitions: &[Vec<String>],
    ) -> Result<(), AdapterError> {
        for batch in partitions.chunks(PARTITIONS_PER_DELETE) {
            let lists = batch
                .iter()
                .map(|values| {
                    PartitionValueList::builder()
                        .set_values(Some(values.clone()))
                        .build()
                        .map_err(|e| AdapterError::Internal(format!("a partition list: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let answer = self
                .client
                .batch_delete_partition()
                .database_name(schema.to_lowercase())
                .table_name(table.to_lowercase())
                .set_partitions_to_delete(Some(lists))
                .send()
                .await
                .map_err(|e| glue_error("BatchDeletePartition", e))?;
            if let Some(error) = answer
                .errors()
                .iter()
                .filter_map(|e| e.error_detail())
                .find(|d| d.error_code() != Some("EntityNotFoundException"))
            {
                return Err(AdapterError::Database {
                    message: format!(
                        "Glue BatchDeletePartition on {schema}.{table} failed: {} {}",
                        error.error_code().unwrap_or_default(),
                        error.error_message().unwrap_or_default()
                    ),
                    retryable: false,
                });
            }
        }
        Ok(())
    }

    async fn partitions(&self, schema: &str, table: &str) -> Result<Vec<Partition>, AdapterError> {
        let mut out = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let page = self
                .client
                .get_partitions()
                .database_name(schema)
                .table_name(table)
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| glue_error("GetPartitions", e))?;
            out.extend(page.partitions().iter().cloned());
            match page.next_token() {
                Some(token) if !token.is_empty() => next = Some(token.to_string()),
                _ => return Ok(out),
            }
        }
    }

    /// Points `live` at the data, columns and partitions of `aside` in its schema; returns
    /// the location `live` had, whose objects the caller removes once `aside` is dropped.
    pub async fn repoint(
        &self,
        schema: &str,
        live: &str,
        aside: &str,
    ) -> Result<Option<String>, AdapterError> {
        let (schema, live, aside) = (
            schema.to_lowercase(),
            live.to_lowercase(),
            aside.to_lowercase(),
        );
        let missing = |name: &str| AdapterError::Database {
            message: format!("Glue has no table {schema}.{name} to repoint"),
            retryable: false,
        };
        let old = self
            .get(&schema, &live)
            .await?
            .ok_or_else(|| missing(&live))?;
        let new = self
            .get(&schema, &aside)
            .await?
            .ok_or_else(|| missing(&aside))?;
        let previous = old
            .storage_descriptor()
            .and_then(StorageDescriptor::location)
            .map(str::to_string);
        // The live table's partitions name the old data: they go, the new table's come.
        let old_partitions: Vec<Vec<String>> = if old.partition_keys().is_empty() {
            Vec::new()
        } else {
            self.partitions(&schema, &live)
                .await?
                .iter()
                .map(|p| p.values().to_vec())
                .collect()
        };
        self.delete_partitions(&schema, &live, &old_partitions)
            .await?;
        let input = TableInput::builder()
            .name(&live)
            .set_description(new.description().map(str::to_string))
            .set_owner(new.owner().map(str::to_string))
            .retention(new.retention())
            .set_storage_descriptor(new.storage_descriptor().cloned())
            .set_partition_keys(Some(new.partition_keys().to_vec()))
            .set_table_type(new.table_type().map(str::to_string))
            .set_parameters(new.parameters().cloned())
            .build()
            .map_err(|e| AdapterError::Internal(format!("a Glue table input: {e}")))?;
        self.client
            .update_table()
            .database_name(&schema)
            .table_input(input)
            .send()
            .await
            .map_err(|e| glue_error("UpdateTable", e))?;
        if !new.partition_keys().is_empty() {
            let inputs: Vec<PartitionInput> = self
                .partitions(&schema, &aside)
                .await?
                .iter()
                .map(|p| {
                    PartitionInput::builder()
                        .set_values(Some(p.values().to_vec()))
                        .set_storage_descriptor(p.storage_descriptor().cloned())
                        .set_parameters(p.parameters().cloned())
                        .build()
                })
                .collect();
            for batch in inputs.chunks(PARTITIONS_PER_CREATE) {
                self.client
                    .batch_create_partition()
                    .database_name(&schema)
                    .table_name(&live)
                    .set_partition_input_list(Some(batch.to_vec()))
                    .send()
                    .await
                    .map_err(|e| glue_error("BatchCreatePartition", e))?;
            }
        }
        Ok(previous)
    }

    /// Removes a table's definition (not its data); a missing table is no error.
    pub async fn delete_table(&self, schema: &str, name: &str) -> Result<(), AdapterError> {
        match self
            .client
            .delete_table()
            .database_name(schema.to_lowercase())
            .name(name.to_lowercase())
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(err) if not_found(&err) => Ok(()),
            Err(err) => Err(glue_error("DeleteTable", err)),
        }
    }

    /// Checks the catalog can be read (`strata debug`).
    pub async fn check(&self) -> Result<usize, AdapterError> {
        let answer = self
            .client
            .get_databases()
            .send()
            .await
            .map_err(|e| glue_error("GetDatabases", e))?;
        Ok(answer.database_list().len())
    }
}

//! Amazon Athena and Trino, which share one SQL: their [`AthenaFlavour`], and the Athena
//! connection ([`connection`]: queries through aws-sdk-athena, the catalog through Glue, files
//! through S3). Trino's own connection is [`super::trino`].
//!
//! On Athena, tables are Iceberg by default (`table_type='iceberg'`) or Hive
//! (`table_type='hive'`), each in an S3 location unique to the run that built it; DDL goes to
//! Athena's Hive engine and quotes with backticks, queries with double quotes; nothing is
//! transactional, so tables are swapped by renames with a backup (Iceberg) or by pointing the
//! Glue table at the new data (Hive); a write opens at most 100 partitions and a statement is at
//! most 262,144 bytes. On Trino every statement is Trino SQL (double quotes, catalog included)
//! and the target's catalog decides the table format (Iceberg, whose rows can be deleted and
//! merged); locations are the catalog's unless `s3_data_dir` names one.

pub mod connection;
pub mod glue;

use std::any::Any;

use serde_json::Value as Json;
use sqlparser::dialect::{Dialect, GenericDialect, HiveDialect};

use super::ansi;
use super::flavour::{
    ApiCall, Capabilities, Flavour, Limits, Lowered, PropertyError, SeedLoad, StatementKind,
    SwapMethod,
};
use super::properties::{columns, text};
use crate::plan::{Literal, Step, Storage, StorageSpec};
use crate::project::target::{AthenaConfig, TrinoConfig};
use crate::project::ConfigMap;
use crate::relation::{string_literal, QuoteStyle, RelationName};

/// Hive DDL quotes with backticks and names no catalog.
pub const DDL_STYLE: QuoteStyle = QuoteStyle {
    quote: '`',
    include_database: false,
};

/// Queries (and CTAS, views) quote with double quotes, catalog included.
pub const DML_STYLE: QuoteStyle = QuoteStyle {
    quote: '"',
    include_database: true,
};

use glue::PARTITIONS_PER_DELETE;

/// The engine the SQL is sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// Athena: table definitions in Hive DDL, Glue and S3 calls where SQL cannot do it.
    Athena,
    /// Trino itself: Trino SQL for everything.
    Trino,
}

/// What Athena's (or Trino's) SQL can do, and where its tables' data goes.
#[derive(Debug, Clone)]
pub struct AthenaFlavour {
    engine: Engine,
    capabilities: Capabilities,
    /// The S3 prefix tables are written under (`s3_data_dir`, or the staging dir's); `None`
    /// on Trino without `s3_data_dir`, whose catalog then places each table.
    data_dir: Option<String>,
    /// Where tables strata builds for its own use in a run go (`s3_tmp_table_dir`); the data
    /// dir when unset.
    tmp_dir: Option<String>,
    naming: DataNaming,
}

/// How a table's S3 location is named (`s3_data_naming`, as dbt-athena spells it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataNaming {
    Unique,
    Table,
    TableUnique,
    SchemaTable,
    SchemaTableUnique,
}

impl DataNaming {
    pub fn parse(text: &str) -> Option<DataNaming> {
        Some(match text {
            "unique" => DataNaming::Unique,
            "table" => DataNaming::Table,
            "table_unique" => DataNaming::TableUnique,
            "schema_table" => DataNaming::SchemaTable,
            "schema_table_unique" => DataNaming::SchemaTableUnique,
            _ => return None,
        })
    }
}

impl AthenaFlavour {
    pub fn new(config: &AthenaConfig) -> AthenaFlavour {
        let data_dir = config
            .s3_data_dir
            .clone()
            .unwrap_or_else(|| format!("{}/tables", config.s3_staging_dir.trim_end_matches('/')));
        AthenaFlavour {
            tmp_dir: config
                .s3_tmp_table_dir
                .as_ref()
                .map(|d| d.trim_end_matches('/').to_string()),
            ..AthenaFlavour::with(
                Engine::Athena,
                Some(data_dir),
                config.s3_data_naming.as_deref(),
            )
        }
    }

    /// Trino's flavour: the same SQL, with Trino's DDL in place of Athena's Hive DDL.
    pub fn trino(config: &TrinoConfig) -> AthenaFlavour {
        AthenaFlavour::with(
            Engine::Trino,
            config.s3_data_dir.clone(),
            config.s3_data_naming.as_deref(),
        )
    }

    fn with(engine: Engine, data_dir: Option<String>, naming: Option<&str>) -> AthenaFlavour {
        AthenaFlavour {
            engine,
            capabilities: Capabilities {
                transactions: false,
                transactional_ddl: false,
                create_or_replace_table: false,
                create_or_replace_view: true,
                merge: true,
                comments: false,
                // Athena's seeds go through S3 unless they are small; Trino's are inserted.
                seeds: match engine {
                    Engine::Athena => SeedLoad::BulkLoad,
                    Engine::Trino => SeedLoad::InsertRows,
                },
                reads_local_files: false,
                views_bind_to_tables: false,
                batch_column_tests: true,
                late_binding_views: true,
                batch_state_writes: true,
                concurrent_batches: false,
                alter_type_in_transaction: true,
            },
            data_dir: data_dir.map(|d| d.trim_end_matches('/').to_string()),
            tmp_dir: None,
            naming: naming
                .and_then(DataNaming::parse)
                .unwrap_or(DataNaming::SchemaTableUnique),
        }
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }
}

/// Iceberg or Hive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableType {
    Iceberg,
    Hive,
}

/// An Athena table's storage, from dbt-athena's config keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AthenaTable {
    pub table_type: TableType,
    /// `parquet` unless `format` says otherwise.
    pub format: String,
    pub partitioned_by: Vec<String>,
    pub bucketed_by: Vec<String>,
    pub bucket_count: Option<u64>,
    pub write_compression: Option<String>,
    /// Where the table's data lives: its `external_location`, or one built by the naming
    /// rule, without a trailing slash; empty where the engine places it (Trino's catalog).
    pub location: String,
    /// Which engine's `with (…)` properties the table is written with.
    pub engine: Engine,
    /// The location is the user's `external_location`: tables built aside go beside it.
    pub external: bool,
}

impl AthenaTable {
    fn with_clause(&self) -> String {
        let array = |items: &[String]| {
            format!(
                "ARRAY[{}]",
                items
                    .iter()
                    .map(|i| string_literal(i))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let mut parts = Vec::new();
        if self.engine == Engine::Trino {
            // The catalog's connector decides the format; Iceberg's properties.
            if !self.location.is_empty() {
                parts.push(format!(
                    "location={}",
                    string_literal(&format!("{}/", self.location))
                ));
            }
            if !self.partitioned_by.is_empty() {
                parts.push(format!("partitioning={}", array(&self.partitioned_by)));
            }
            parts.push(format!(
                "format={}",
                string_literal(&self.format.to_ascii_uppercase())
            ));
            if let Some(compression) = &self.write_compression {
                parts.push(format!(
                    "compression_codec={}",
                    string_literal(&compression.to_ascii_uppercase())
                ));
            }
            return parts.join(", ");
        }
        match self.table_type {
            TableType::Iceberg => {
                parts.push("table_type='ICEBERG'".to_string());
                parts.push("is_external=false".to_string());
                parts.push(format!(
                    "location={}",
                    string_literal(&format!("{}/", self.location))
                ));
                if !self.partitioned_by.is_empty() {
                    parts.push(format!("partitioning={}", array(&self.partitioned_by)));
                }
            }
            TableType::Hive => {
                parts.push(format!(
                    "external_location={}",
                    string_literal(&format!("{}/", self.location))
                ));
                if !self.partitioned_by.is_empty() {
                    parts.push(format!("partitioned_by={}", array(&self.partitioned_by)));
                }
                if !self.bucketed_by.is_empty() {
                    parts.push(format!("bucketed_by={}", array(&self.bucketed_by)));
                    if let Some(count) = self.bucket_count {
                        parts.push(format!("bucket_count={count}"));
                    }
                }
            }
        }
        parts.push(format!(
            "format={}",
            string_literal(&self.format.to_ascii_uppercase())
        ));
        if let Some(compression) = &self.write_compression {
            parts.push(format!(
                "write_compression={}",
                string_literal(&compression.to_ascii_uppercase())
            ));
        }
        parts.join(", ")
    }
}

impl StorageSpec for AthenaTable {
    fn partition_columns(&self) -> &[String] {
        &self.partitioned_by
    }

    fn aside(&self, run_id: &str) -> Storage {
        // A location of its own: the live table's data is never written over.
        Storage::new(AthenaTable {
            location: if self.location.is_empty() {
                String::new()
            } else {
                format!("{}/{run_id}", self.location)
            },
            ..self.clone()
        })
    }

    fn describe(&self) -> String {
        self.with_clause()
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

static GENERIC_DIALECT: GenericDialect = GenericDialect {};
static HIVE_DIALECT: HiveDialect = HiveDialect {};

impl AthenaFlavour {
    /// Where a table's data goes by the naming rule; empty where the engine places it.
    fn base_location(&self, relation: &RelationName) -> String {
        let Some(data_dir) = &self.data_dir else {
            return String::new();
        };
        let (schema, table) = (&relation.schema, &relation.identifier);
        match self.naming {
            DataNaming::Unique => data_dir.clone(),
            DataNaming::Table | DataNaming::TableUnique => format!("{data_dir}/{table}"),
            DataNaming::SchemaTable | DataNaming::SchemaTableUnique => {
                format!("{data_dir}/{schema}/{table}")
            }
        }
    }

    /// How table definitions are quoted: Hive DDL's backticks on Athena, Trino's SQL on Trino.
    fn ddl_style(&self) -> QuoteStyle {
        match self.engine {
            Engine::Athena => DDL_STYLE,
            Engine::Trino => DML_STYLE,
        }
    }

    fn is_hive(storage: &Storage) -> bool {
        storage
            .get::<AthenaTable>()
            .is_some_and(|t| t.table_type == TableType::Hive)
    }
}

impl AthenaFlavour {
    /// Trino's DDL for the steps Athena sends to its Hive engine; `None` for the steps both
    /// lower alike.
    fn lower_trino_ddl(&self, step: &Step) -> Option<Vec<Lowered>> {
        let ddl = |text: String| Lowered::sql(StatementKind::Ddl, text);
        Some(match step {
            Step::CreateSchema { database, schema } => {
                let name = match database {
                    Some(catalog) => format!(
                        "{}.{}",
                        DML_STYLE.quote_identifier(catalog),
                        DML_STYLE.quote_identifier(schema)
                    ),
                    None => DML_STYLE.quote_identifier(schema),
                };
                vec![ddl(format!("create schema if not exists {name}"))]
            }
            Step::CreateTable {
                relation,
                columns,
                storage,
            } => {
                let with = storage
                    .get::<AthenaTable>()
                    .map(AthenaTable::with_clause)
                    .unwrap_or_else(|| "format='PARQUET'".into());
                vec![ddl(format!(
                    "create table {} ({}) with ({with})",
                    relation.render(&DML_STYLE),
                    ansi::column_definitions(columns, &DML_STYLE)
                ))]
            }
            Step::AddColumns { relation, columns } => columns
                .iter()
                .map(|c| {
                    ddl(format!(
                        "alter table {} add column {} {}",
                        relation.render(&DML_STYLE),
                        DML_STYLE.quote_identifier(&c.name),
                        c.data_type
                    ))
                })
                .collect(),
            Step::AlterColumnTypes { relation, columns } => columns
                .iter()
                .map(|c| {
                    ddl(format!(
                        "alter table {} alter column {} set data type {}",
                        relation.render(&DML_STYLE),
                        DML_STYLE.quote_identifier(&c.name),
                        c.data_type
                    ))
                })
                .collect(),
            Step::Rename {
                from,
                to,
                kind: crate::adapter::RelationKind::Table,
            } => {
                let target = RelationName::new(from.database.clone(), from.schema.clone(), to);
                vec![ddl(format!(
                    "alter table {} rename to {}",
                    from.render(&DML_STYLE),
                    target.render(&DML_STYLE)
                ))]
            }
            Step::Drop {
                relation,
                kind: crate::adapter::RelationKind::Table,
                ..
            } => vec![ddl(format!(
                "drop table if exists {}",
                relation.render(&DML_STYLE)
            ))],
            _ => return None,
        })
    }
}

impl Flavour for AthenaFlavour {
    fn name(&self) -> &'static str {
        match self.engine {
            Engine::Athena => "athena",
            Engine::Trino => "trino",
        }
    }

    fn dispatch_parents(&self) -> &'static [&'static str] {
        // Athena's engine is Trino: a `trino__` macro is right on Athena too.
        match self.engine {
            Engine::Athena => &["trino"],
            Engine::Trino => &[],
        }
    }

    fn dialect(&self) -> &(dyn Dialect + Send + Sync) {
        // sqlparser has no Trino dialect; the generic one reads Trino's queries.
        &GENERIC_DIALECT
    }

    fn snapshot_time(&self, storage: &Storage) -> String {
        // Hive tables keep milliseconds, Iceberg tables microseconds.
        let precision = if Self::is_hive(storage) { 3 } else { 6 };
        format!("cast(current_timestamp as timestamp({precision}))")
    }

    fn freshness_columns(&self, max_expr: &str) -> String {
        // ISO 8601 with the zone as an offset, whatever the column's type.
        format!(
            "to_iso8601({max_expr}) as max_loaded_at, to_iso8601(current_timestamp) as snapshotted_at"
        )
    }

    fn fit_to_storage(&self, expr: &str, data_type: &str, storage: &Storage) -> String {
        if Self::is_hive(storage)
            && data_type
                .trim()
                .to_ascii_lowercase()
                .starts_with("timestamp")
        {
            format!("cast({expr} as timestamp(3))")
        } else {
            expr.to_string()
        }
    }

    fn md5_sql(&self, text: &str) -> String {
        format!("lower(to_hex(md5(to_utf8({text}))))")
    }

    fn statement_dialect(&self, kind: StatementKind) -> &(dyn Dialect + Send + Sync) {
        match (kind, self.engine) {
            (StatementKind::Ddl, Engine::Athena) => &HIVE_DIALECT,
            _ => &GENERIC_DIALECT,
        }
    }

    fn quote_style(&self, kind: StatementKind) -> QuoteStyle {
        match kind {
            StatementKind::Ddl => self.ddl_style(),
            StatementKind::Dml => DML_STYLE,
        }
    }

    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    fn limits(&self) -> Limits {
        Limits {
            statement_bytes: Some(262_144),
            partitions_per_write: Some(100),
            identifier_length: 255,
            // One insert costs less than an upload, an external table and an insert.
            seed_insert_bytes: Some(64 * 1024),
        }
    }

    fn property_keys(&self) -> &'static [&'static str] {
        &[
            "table_type",
            "format",
            "partitioned_by",
            "bucketed_by",
            "bucket_count",
            "write_compression",
            "s3_data_naming",
            "external_location",
        ]
    }

    fn table_storage(
        &self,
        relation: &RelationName,
        config: &ConfigMap,
    ) -> Result<Storage, PropertyError> {
        let table_type = match text(config, "table_type")?.map(|t| t.to_ascii_lowercase()) {
            None => TableType::Iceberg,
            Some(t) if t == "iceberg" => TableType::Iceberg,
            Some(t) if t == "hive" && self.engine == Engine::Athena => TableType::Hive,
            Some(t) if t == "hive" => {
                return Err(PropertyError::new(
                    "table_type",
                    "on Trino the target's catalog decides the table format: point `catalog` at an Iceberg catalog, or use an Athena target for Hive tables",
                ))
            }
            Some(other) => {
                return Err(PropertyError::new(
                    "table_type",
                    format!("`{other}` is not a table type; write iceberg or hive"),
                ))
            }
        };
        let naming = match text(config, "s3_data_naming")? {
            None => self.naming,
            Some(n) => DataNaming::parse(&n).ok_or_else(|| {
                PropertyError::new(
                    "s3_data_naming",
                    format!("`{n}` is not a naming; write unique, table, table_unique, schema_table or schema_table_unique"),
                )
            })?,
        };
        let external = text(config, "external_location")?;
        let location = match &external {
            Some(location) => location.trim_end_matches('/').to_string(),
            None => AthenaFlavour {
                naming,
                ..self.clone()
            }
            .base_location(relation),
        };
        let bucket_count = match config.get("bucket_count") {
            None | Some(Json::Null) => None,
            Some(Json::Number(n)) if n.as_u64().is_some_and(|n| n > 0) => n.as_u64(),
            Some(other) => {
                return Err(PropertyError::new(
                    "bucket_count",
                    format!("expected a whole number of buckets, found `{other}`"),
                ))
            }
        };
        let bucketed_by = columns(config, "bucketed_by")?;
        if table_type == TableType::Iceberg && !bucketed_by.is_empty() {
            return Err(PropertyError::new(
                "bucketed_by",
                "Iceberg tables take buckets as partition transforms: write `partitioned_by: ['bucket(4, col)']`",
            ));
        }
        Ok(Storage::new(AthenaTable {
            table_type,
            format: text(config, "format")?.unwrap_or_else(|| "parquet".into()),
            partitioned_by: columns(config, "partitioned_by")?,
            bucketed_by,
            bucket_count,
            write_compression: text(config, "write_compression")?,
            location,
            external: external.is_some(),
            engine: self.engine,
        }))
    }

    fn can_merge(&self, storage: &Storage) -> bool {
        !Self::is_hive(storage)
    }

    /// Trino compares no string with a date or a timestamp: a timestamp with its zone.
    fn event_time_literal(&self, at: chrono::DateTime<chrono::Utc>) -> String {
        format!(
            "from_iso8601_timestamp('{}')",
            at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )
    }

    fn can_delete_rows(&self, storage: &Storage) -> bool {
        !Self::is_hive(storage)
    }

    fn scratch_storage(&self, relation: &RelationName) -> Storage {
        // Iceberg, so the run can delete from it; its name is unique to the run, and so its
        // location.
        Storage::new(AthenaTable {
            table_type: TableType::Iceberg,
            format: "parquet".into(),
            partitioned_by: Vec::new(),
            bucketed_by: Vec::new(),
            bucket_count: None,
            write_compression: None,
            location: match &self.tmp_dir {
                Some(dir) => format!("{dir}/{}/{}", relation.schema, relation.identifier),
                None => self.base_location(relation),
            },
            external: false,
            engine: self.engine,
        })
    }

    fn swap_method(&self, storage: &Storage) -> SwapMethod {
        if Self::is_hive(storage) {
            SwapMethod::Repoint
        } else {
            SwapMethod::Rename
        }
    }

    fn lower(&self, step: &Step) -> Vec<Lowered> {
        if self.engine == Engine::Trino {
            if let Some(lowered) = self.lower_trino_ddl(step) {
                return lowered;
            }
        }
        let ddl = |text: String| vec![Lowered::sql(StatementKind::Ddl, text)];
        let dml = |text: String| vec![Lowered::sql(StatementKind::Dml, text)];
        match step {
            // No transactions: the versions closed and opened commit in one MERGE.
            Step::ApplySnapshot {
                relation,
                staged,
                columns,
                scd_id,
                valid_to,
                change_type,
            } => dml(ansi::snapshot_merge(
                relation,
                staged,
                columns,
                scd_id,
                valid_to,
                change_type,
                &DML_STYLE,
            )),
            Step::CreateSchema { schema, .. } => ddl(format!(
                "create schema if not exists {}",
                DDL_STYLE.quote_identifier(schema)
            )),
            Step::CreateTableAs {
                relation,
                select,
                storage,
                ..
            } => {
                let with = storage
                    .get::<AthenaTable>()
                    .map(AthenaTable::with_clause)
                    .unwrap_or_else(|| "format='PARQUET'".into());
                dml(format!(
                    "create table {} with ({with}) as\n{}",
                    relation.render(&DML_STYLE),
                    ansi::body(select)
                ))
            }
            Step::CreateView {
                relation, select, ..
            } => dml(format!(
                "create or replace view {} as\n{}",
                relation.render(&DML_STYLE),
                ansi::body(select)
            )),
            Step::CreateTable {
                relation,
                columns,
                storage,
            } => {
                let table = storage.get::<AthenaTable>();
                // A table of strata's own (a landing table) goes where the naming rule says.
                let location = format!(
                    "{}/",
                    table
                        .map(|t| t.location.clone())
                        .unwrap_or_else(|| self.base_location(relation))
                );
                let columns = ansi::column_definitions(columns, &DDL_STYLE);
                let name = relation.render(&DDL_STYLE);
                ddl(match table.map(|t| t.table_type) {
                    Some(TableType::Hive) => format!(
                        "create external table {name} ({columns}) stored as parquet location {}",
                        string_literal(&location)
                    ),
                    _ => format!(
                        "create table {name} ({columns}) location {} tblproperties ('table_type'='ICEBERG', 'format'='parquet')",
                        string_literal(&location)
                    ),
                })
            }
            Step::DeletePartitions {
                relation,
                columns,
                values,
                storage,
            } if Self::is_hive(storage) => {
                // A Hive table's rows go by whole partitions: their Glue entries, then their
                // objects in S3.
                let mut calls = Vec::new();
                for batch in values.chunks(PARTITIONS_PER_DELETE) {
                    calls.push(Lowered::Api(ApiCall {
                        operation: "glue:BatchDeletePartition".into(),
                        arguments: vec![
                            ("table".into(), relation.dotted()),
                            ("partitions".into(), partition_values(batch)),
                        ],
                    }));
                }
                for tuple in values {
                    calls.push(Lowered::Api(ApiCall {
                        operation: "s3:DeleteObjects".into(),
                        arguments: vec![
                            ("table".into(), relation.dotted()),
                            ("partition".into(), partition_path(columns, tuple)),
                        ],
                    }));
                }
                calls
            }
            Step::LoadRemote {
                relation,
                prefix,
                files,
                columns,
                source_column,
                reader,
            } => {
                // An external table over the files' folder; each row's file is its `$path`.
                let mut out = vec![Lowered::sql(
                    StatementKind::Ddl,
                    format!(
                        "create external table {} ({}) stored as parquet location {}",
                        reader.render(&DDL_STYLE),
                        ansi::column_definitions(columns, &DDL_STYLE),
                        string_literal(prefix)
                    ),
                )];
                let names: Vec<String> = columns
                    .iter()
                    .map(|c| DML_STYLE.quote_identifier(&c.name))
                    .collect();
                let head = format!(
                    "insert into {} ({}, {}) select {}, \"$path\" from {} where \"$path\" in (",
                    relation.render(&DML_STYLE),
                    names.join(", "),
                    DML_STYLE.quote_identifier(source_column),
                    names.join(", "),
                    reader.render(&DML_STYLE)
                );
                // As many files a statement as fit in half the statement limit.
                let budget = self.limits().statement_bytes.unwrap_or(262_144) / 2;
                let mut batch: Vec<String> = Vec::new();
                let mut length = head.len();
                let flush = |batch: &mut Vec<String>, out: &mut Vec<Lowered>| {
                    if !batch.is_empty() {
                        out.push(Lowered::sql(
                            StatementKind::Dml,
                            format!("{head}{})", batch.join(", ")),
                        ));
                        batch.clear();
                    }
                };
                for file in files {
                    let literal = string_literal(file);
                    if length + literal.len() + 2 > budget {
                        flush(&mut batch, &mut out);
                        length = head.len();
                    }
                    length += literal.len() + 2;
                    batch.push(literal);
                }
                flush(&mut batch, &mut out);
                out.push(Lowered::sql(
                    StatementKind::Ddl,
                    format!("drop table if exists {}", reader.render(&DDL_STYLE)),
                ));
                out
            }
            Step::Delete { from, filter } => dml(ansi::delete(from, filter, &DML_STYLE, false)),
            Step::AddColumns { relation, columns } => ddl(format!(
                "alter table {} add columns ({})",
                relation.render(&DDL_STYLE),
                ansi::column_definitions(columns, &DDL_STYLE)
            )),
            Step::AlterColumnTypes { relation, columns } => columns
                .iter()
                .map(|c| {
                    let name = DDL_STYLE.quote_identifier(&c.name);
                    Lowered::sql(
                        StatementKind::Ddl,
                        format!(
                            "alter table {} change column {name} {name} {}",
                            relation.render(&DDL_STYLE),
                            c.data_type
                        ),
                    )
                })
                .collect(),
            Step::Rename {
                from,
                to,
                kind: crate::adapter::RelationKind::Table,
            } => {
                let target = RelationName::new(from.database.clone(), from.schema.clone(), to);
                ddl(format!(
                    "alter table {} rename to {}",
                    from.render(&DDL_STYLE),
                    target.render(&DDL_STYLE)
                ))
            }
            Step::Drop {
                relation,
                kind: crate::adapter::RelationKind::View,
                ..
            } => dml(format!(
                "drop view if exists {}",
                relation.render(&DML_STYLE)
            )),
            Step::Drop { relation, .. } => ddl(format!(
                "drop table if exists {}",
                relation.render(&DDL_STYLE)
            )),
            Step::Repoint { live, from } => vec![
                Lowered::Api(ApiCall {
                    operation: "glue:UpdateTable".into(),
                    arguments: vec![
                        ("table".into(), live.dotted()),
                        ("location_and_columns_of".into(), from.dotted()),
                    ],
                }),
                Lowered::Api(ApiCall {
                    operation: "glue:DeleteTable".into(),
                    arguments: vec![("table".into(), from.dotted())],
                }),
                Lowered::Api(ApiCall {
                    operation: "s3:DeleteObjects".into(),
                    arguments: vec![
                        ("table".into(), live.dotted()),
                        ("location".into(), "previous".into()),
                    ],
                }),
            ],
            // Lake Formation permissions are not SQL grants.
            Step::Comment { .. } | Step::IndexColumn { .. } | Step::Grant { .. } => Vec::new(),
            other => ansi::lower(self, other),
        }
    }

    fn literal(&self, value: &Literal, data_type: &str) -> String {
        // Trino casts no text to numbers or dates on its own.
        match (value, dml_type(data_type)) {
            (Literal::Text(text), Some(ty)) => format!("cast({} as {ty})", string_literal(text)),
            (value, _) => ansi::literal(value),
        }
    }

    fn column_type_for(&self, duckdb_type: &str) -> String {
        let upper = duckdb_type.to_ascii_uppercase();
        if self.engine == Engine::Trino {
            return match upper.as_str() {
                "BIGINT" | "HUGEINT" | "UBIGINT" | "UINTEGER" => "bigint".into(),
                "INTEGER" | "USMALLINT" => "integer".into(),
                "SMALLINT" | "TINYINT" | "UTINYINT" => "smallint".into(),
                "DOUBLE" => "double".into(),
                "FLOAT" => "real".into(),
                "BOOLEAN" => "boolean".into(),
                "DATE" => "date".into(),
                "TIMESTAMP" | "TIMESTAMP_NS" | "TIMESTAMP_MS" | "TIMESTAMP_S" => {
                    "timestamp(6)".into()
                }
                _ if upper.starts_with("DECIMAL") => format!("decimal{}", &duckdb_type[7..]),
                _ => "varchar".into(),
            };
        }
        match upper.as_str() {
            "BIGINT" | "HUGEINT" | "UBIGINT" | "UINTEGER" => "bigint".into(),
            "INTEGER" | "USMALLINT" => "int".into(),
            "SMALLINT" | "TINYINT" | "UTINYINT" => "smallint".into(),
            "DOUBLE" => "double".into(),
            "FLOAT" => "float".into(),
            "BOOLEAN" => "boolean".into(),
            "DATE" => "date".into(),
            "TIMESTAMP" | "TIMESTAMP_NS" | "TIMESTAMP_MS" | "TIMESTAMP_S" => "timestamp".into(),
            _ if upper.starts_with("DECIMAL") => format!("decimal{}", &duckdb_type[7..]),
            _ => "string".into(),
        }
    }

    fn staged_file_format(&self) -> crate::adapter::FileFormat {
        // Athena reads the Parquet file through an external table over S3; Trino gets the
        // rows of a CSV file as inserts.
        match self.engine {
            Engine::Athena => crate::adapter::FileFormat::Parquet,
            Engine::Trino => crate::adapter::FileFormat::Csv(crate::adapter::CsvOptions::default()),
        }
    }

    fn catalog_sql(&self, database: Option<&str>, schema: &str) -> Option<String> {
        // Athena's catalog is Glue, read through its API (`connection.rs`); Trino's is the
        // target catalog's information_schema.
        if self.engine == Engine::Athena {
            return None;
        }
        let info = match database {
            Some(catalog) => format!("{}.information_schema", DML_STYLE.quote_identifier(catalog)),
            None => "information_schema".to_string(),
        };
        Some(format!(
            "select t.table_name, t.table_type, c.column_name, c.data_type \
             from {info}.tables t \
             left join {info}.columns c \
               on c.table_schema = t.table_schema and c.table_name = t.table_name \
             where t.table_schema = {} \
             order by t.table_name, c.ordinal_position",
            string_literal(&schema.to_lowercase())
        ))
    }

    fn is_retryable_message(&self, message: &str) -> bool {
        [
            "ICEBERG_COMMIT_ERROR",
            "ThrottlingException",
            "TooManyRequestsException",
            "SlowDown",
        ]
        .iter()
        .any(|marker| message.contains(marker))
    }
}

/// The Athena query type of a DDL type, for casting literals; `None` for text columns.
pub(super) fn dml_type(data_type: &str) -> Option<String> {
    let lower = data_type.trim().to_ascii_lowercase();
    if lower.is_empty()
        || lower == "string"
        || lower.starts_with("varchar")
        || lower.starts_with("char")
    {
        return None;
    }
    Some(match lower.as_str() {
        "int" => "integer".into(),
        other => other.to_string(),
    })
}

/// A literal as Hive writes it in a partition's values and path.
pub fn partition_text(value: &Literal) -> String {
    match value {
        Literal::Null => "__HIVE_DEFAULT_PARTITION__".to_string(),
        Literal::Bool(b) => b.to_string(),
        Literal::Int(i) => i.to_string(),
        Literal::Text(t) | Literal::Typed { text: t, .. } => t.clone(),
    }
}

/// Partitions' values as Glue takes them: a JSON list of lists of text.
fn partition_values(batch: &[Vec<Literal>]) -> String {
    let lists: Vec<Vec<String>> = batch
        .iter()
        .map(|tuple| tuple.iter().map(partition_text).collect())
        .collect();
    Json::from(lists).to_string()
}

/// Escapes a partition value as Hive does in a path (`:` in a timestamp becomes `%3A`).
fn escape_path_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() || "\"#%'*/:=?\\\x7f{[]^".contains(c) {
            out.push_str(&format!("%{:02X}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

fn partition_path(columns: &[String], tuple: &[Literal]) -> String {
    columns
        .iter()
        .zip(tuple)
        .map(|(column, value)| format!("{column}={}", escape_path_value(&partition_text(value))))
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flavour(extra: serde_json::Value) -> AthenaFlavour {
        let mut config = serde_json::json!({
            "s3_staging_dir": "s3://lake/staging/", "s3_data_dir": "s3://lake/tables/",
            "region_name": "eu-west-1", "schema": "analytics"
        });
        if let (Some(config), Some(extra)) = (config.as_object_mut(), extra.as_object()) {
            config.extend(extra.clone());
        }
        AthenaFlavour::new(&serde_json::from_value(config).unwrap())
    }

    fn location(storage: &Storage) -> String {
        storage.get::<AthenaTable>().unwrap().location.clone()
    }

    #[test]
    fn scratch_tables_go_to_the_tmp_table_dir_when_one_is_set() {
        let relation = RelationName::new(
            Some("awsdatacatalog".into()),
            "analytics",
            "orders__strata_new_1a2b3c4d",
        );
        assert_eq!(
            location(&flavour(serde_json::json!({})).scratch_storage(&relation)),
            "s3://lake/tables/analytics/orders__strata_new_1a2b3c4d"
        );
        assert_eq!(
            location(
                &flavour(serde_json::json!({"s3_tmp_table_dir": "s3://scratch/tmp/"}))
                    .scratch_storage(&relation)
            ),
            "s3://scratch/tmp/analytics/orders__strata_new_1a2b3c4d"
        );
    }

    #[test]
    fn partition_values_are_hive_text_and_paths_escape_as_hive_does() {
        let batch = vec![vec![Literal::Text("2024-07-01".into()), Literal::Null]];
        assert_eq!(
            partition_values(&batch),
            r#"[["2024-07-01","__HIVE_DEFAULT_PARTITION__"]]"#
        );
        assert_eq!(
            partition_path(
                &["at".to_string()],
                &[Literal::Text("2024-07-01 10:00:00".into())]
            ),
            "at=2024-07-01 10%3A00%3A00"
        );
    }
}

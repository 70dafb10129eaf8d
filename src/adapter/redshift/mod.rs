//! Amazon Redshift: its [`RedshiftFlavour`], what its SQL says differently from PostgreSQL's —
//! `dist`, `sort`, `sort_type` and `backup` on tables, late-binding views (`bind: false`),
//! `delete … using`, `svv_tables`/`svv_columns` for the catalog, the statement limits of the
//! wire protocol and of the Data API, `COPY … FROM 's3://…'`, and which errors are worth
//! retrying — and [`connection::RedshiftAdapter`], which runs it over the wire protocol or the
//! Data API ([`data_api`]).

pub mod connection;
pub mod data_api;

use std::any::Any;

use sqlparser::dialect::{Dialect, RedshiftSqlDialect};

use super::ansi;
use super::flavour::{
    Capabilities, Flavour, Limits, Lowered, PropertyError, SeedLoad, StatementKind,
};
use super::properties::{boolean, columns, text};
use crate::plan::{Filter, Step, Storage, StorageSpec};
use crate::project::target::RedshiftConfig;
use crate::project::ConfigMap;
use crate::relation::{string_literal, QuoteStyle, RelationName};

/// Names stay within the connected database, as on PostgreSQL.
pub const REDSHIFT_STYLE: QuoteStyle = QuoteStyle {
    quote: '"',
    include_database: false,
};

/// The largest statement the Data API's `ExecuteStatement` takes (100 KB), and the wire
/// protocol's (16 MB).
const DATA_API_STATEMENT_BYTES: usize = 100_000;
const WIRE_STATEMENT_BYTES: usize = 16 * 1024 * 1024;

/// Seeds up to this size are inserted rather than uploaded and copied (`seed_insert_max_bytes`).
const SEED_INSERT_BYTES: u64 = 256 * 1024;

/// What Redshift's SQL can do.
#[derive(Debug, Clone)]
pub struct RedshiftFlavour {
    capabilities: Capabilities,
    limits: Limits,
}

impl RedshiftFlavour {
    pub fn new(config: &RedshiftConfig) -> RedshiftFlavour {
        let data_api = config.uses_data_api();
        // Files reach Redshift through S3: without a staging location seeds are inserted.
        let staged = config.s3_staging_dir.is_some();
        RedshiftFlavour {
            capabilities: Capabilities {
                transactions: true,
                transactional_ddl: true,
                create_or_replace_table: false,
                // Like PostgreSQL's, a view replaced in place must keep its columns.
                create_or_replace_view: false,
                merge: true,
                comments: true,
                seeds: if staged {
                    SeedLoad::BulkLoad
                } else {
                    SeedLoad::InsertRows
                },
                reads_local_files: false,
                views_bind_to_tables: true,
                batch_column_tests: true,
                late_binding_views: false,
                batch_state_writes: false,
                concurrent_batches: false,
                alter_type_in_transaction: false,
            },
            limits: Limits {
                statement_bytes: Some(if data_api {
                    DATA_API_STATEMENT_BYTES
                } else {
                    WIRE_STATEMENT_BYTES
                }),
                partitions_per_write: None,
                identifier_length: 127,
                seed_insert_bytes: staged
                    .then(|| config.seed_insert_max_bytes.unwrap_or(SEED_INSERT_BYTES)),
            },
        }
    }
}

/// How rows are spread over a cluster's slices (`dist`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Distribution {
    Auto,
    Even,
    All,
    Key(String),
}

/// How sort keys combine (`sort_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortType {
    Compound,
    Interleaved,
}

/// A Redshift table's storage, from dbt-redshift's config keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedshiftTable {
    pub dist: Option<Distribution>,
    pub sort: Vec<String>,
    pub sort_type: SortType,
    /// `backup: false` leaves the table out of snapshots (`backup no`).
    pub backup: bool,
    /// `merge_strategy: delete+insert` applies a merge as a delete and an insert rather than
    /// one `MERGE INTO` (faster on Redshift for batches that touch most of the table's blocks).
    pub merge: bool,
}

impl RedshiftTable {
    /// `backup no diststyle key distkey ("c") compound sortkey ("a", "b")`, or empty.
    fn attributes(&self) -> String {
        let mut parts = Vec::new();
        if !self.backup {
            parts.push("backup no".to_string());
        }
        match &self.dist {
            None => {}
            Some(Distribution::Auto) => parts.push("diststyle auto".into()),
            Some(Distribution::Even) => parts.push("diststyle even".into()),
            Some(Distribution::All) => parts.push("diststyle all".into()),
            Some(Distribution::Key(column)) => parts.push(format!(
                "diststyle key distkey ({})",
                REDSHIFT_STYLE.quote_identifier(column)
            )),
        }
        if !self.sort.is_empty() {
            // Compound is Redshift's default sort key: left unsaid.
            let kind = match self.sort_type {
                SortType::Compound => "",
                SortType::Interleaved => "interleaved ",
            };
            parts.push(format!(
                "{kind}sortkey ({})",
                ansi::column_list(&self.sort, &REDSHIFT_STYLE)
            ));
        }
        parts.join(" ")
    }
}

/// A table's attributes as they follow its name in `create table`: ` backup no …`, or nothing.
fn attributes_of(storage: &Storage) -> String {
    match storage
        .get::<RedshiftTable>()
        .map(RedshiftTable::attributes)
    {
        Some(attributes) if !attributes.is_empty() => format!(" {attributes}"),
        _ => String::new(),
    }
}

impl StorageSpec for RedshiftTable {
    fn aside(&self, _run_id: &str) -> Storage {
        Storage::new(self.clone())
    }

    fn describe(&self) -> String {
        self.attributes()
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

static REDSHIFT_DIALECT: RedshiftSqlDialect = RedshiftSqlDialect {};

impl Flavour for RedshiftFlavour {
    fn name(&self) -> &'static str {
        "redshift"
    }

    /// `svv_table_info.tbl_rows`, kept by Redshift for every table.
    fn row_counts_sql(&self, _database: Option<&str>, schema: &str) -> Option<String> {
        Some(format!(
            "select \"table\", cast(tbl_rows as bigint) from svv_table_info where \"schema\" = {}",
            crate::relation::string_literal(schema)
        ))
    }

    fn dispatch_parents(&self) -> &'static [&'static str] {
        &["postgres"]
    }

    fn dialect(&self) -> &(dyn Dialect + Send + Sync) {
        &REDSHIFT_DIALECT
    }

    fn freshness_columns(&self, max_expr: &str) -> String {
        // GETDATE: the statement's start in UTC.
        format!(
            "cast({max_expr} as varchar) as max_loaded_at, cast(getdate() as varchar) as snapshotted_at"
        )
    }

    fn snapshot_time(&self, _storage: &Storage) -> String {
        "getdate()".into()
    }

    fn text_type(&self) -> &'static str {
        "varchar(65535)"
    }

    fn quote_style(&self, _kind: StatementKind) -> QuoteStyle {
        REDSHIFT_STYLE
    }

    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    fn limits(&self) -> Limits {
        self.limits
    }

    fn property_keys(&self) -> &'static [&'static str] {
        &[
            "dist",
            "sort",
            "sort_type",
            "backup",
            "bind",
            "merge_strategy",
        ]
    }

    fn table_storage(
        &self,
        _relation: &RelationName,
        config: &ConfigMap,
    ) -> Result<Storage, PropertyError> {
        let dist = match text(config, "dist")? {
            None => None,
            Some(d) if d.is_empty() => {
                return Err(PropertyError::new(
                    "dist",
                    "write auto, even, all or a column name",
                ))
            }
            Some(d) => Some(match d.to_ascii_lowercase().as_str() {
                "auto" => Distribution::Auto,
                "even" => Distribution::Even,
                "all" => Distribution::All,
                _ => Distribution::Key(d),
            }),
        };
        let sort_type = match text(config, "sort_type")?.map(|s| s.to_ascii_lowercase()) {
            None => SortType::Compound,
            Some(s) if s == "compound" => SortType::Compound,
            Some(s) if s == "interleaved" => SortType::Interleaved,
            Some(other) => {
                return Err(PropertyError::new(
                    "sort_type",
                    format!("`{other}` is not a sort type; write compound or interleaved"),
                ))
            }
        };
        Ok(Storage::new(RedshiftTable {
            dist,
            sort: columns(config, "sort")?,
            sort_type,
            backup: boolean(config, "backup")?.unwrap_or(true),
            merge: match text(config, "merge_strategy")?.map(|s| s.to_ascii_lowercase()) {
                None => true,
                Some(s) if s == "merge" => true,
                Some(s) if s == "delete+insert" => false,
                Some(other) => {
                    return Err(PropertyError::new(
                        "merge_strategy",
                        format!("`{other}` is not a merge strategy; write merge or delete+insert"),
                    ))
                }
            },
        }))
    }

    fn can_merge(&self, storage: &Storage) -> bool {
        self.capabilities.merge && storage.get::<RedshiftTable>().is_none_or(|t| t.merge)
    }

    fn late_binding_view(&self, config: &ConfigMap) -> Result<bool, PropertyError> {
        Ok(boolean(config, "bind")? == Some(false))
    }

    fn widened_type(&self, existing: &str, new: &str) -> Option<String> {
        let length = |ty: &str| -> Option<u32> {
            let lower = ty.trim().to_ascii_lowercase();
            let inner = lower
                .strip_prefix("character varying(")
                .or_else(|| lower.strip_prefix("varchar("))?;
            inner.strip_suffix(')')?.trim().parse().ok()
        };
        let (old, wanted) = (length(existing)?, length(new)?);
        (wanted > old).then(|| format!("varchar({wanted})"))
    }

    fn lower(&self, step: &Step) -> Vec<Lowered> {
        let dml = |text: String| vec![Lowered::sql(StatementKind::Dml, text)];
        match step {
            Step::CreateTableAs {
                relation,
                select,
                storage,
                ..
            } => dml(format!(
                "create table {}{} as (\n{}\n)",
                relation.render(&REDSHIFT_STYLE),
                attributes_of(storage),
                ansi::body(select)
            )),
            Step::CreateTable {
                relation,
                columns,
                storage,
            } => {
                let sql = format!(
                    "create table {} ({}){}",
                    relation.render(&REDSHIFT_STYLE),
                    ansi::column_definitions(columns, &REDSHIFT_STYLE),
                    attributes_of(storage)
                );
                vec![Lowered::sql(StatementKind::Ddl, sql)]
            }
            Step::CreateView {
                relation,
                select,
                late_binding,
                replace,
            } => dml(format!(
                "create {}view {} as (\n{}\n){}",
                if *replace { "or replace " } else { "" },
                relation.render(&REDSHIFT_STYLE),
                ansi::body(select),
                if *late_binding {
                    " with no schema binding"
                } else {
                    ""
                }
            )),
            // Redshift's DELETE takes no alias: match through `using`.
            Step::Delete {
                from,
                filter:
                    Filter::Matching {
                        relation,
                        key,
                        predicates,
                    },
            } => {
                let target = REDSHIFT_STYLE.quote_identifier(&from.identifier);
                let condition = key
                    .iter()
                    .map(|k| {
                        let q = REDSHIFT_STYLE.quote_identifier(k);
                        format!("{target}.{q} = {}.{q}", ansi::NEW_ROWS)
                    })
                    .collect::<Vec<_>>()
                    .join(" and ");
                let condition = format!("{condition}{}", ansi::predicates_sql(predicates, &target));
                dml(format!(
                    "delete from {} using {} as {} where {condition}",
                    from.render(&REDSHIFT_STYLE),
                    relation.render(&REDSHIFT_STYLE),
                    ansi::NEW_ROWS
                ))
            }
            Step::Delete { from, filter } => {
                dml(ansi::delete(from, filter, &REDSHIFT_STYLE, false))
            }
            Step::Merge {
                into,
                using,
                key,
                update,
                insert,
                predicates,
            } => dml(merge(into, using, key, update, insert, predicates)),
            // A seed's table keeps its column order; Redshift has no `if not exists` index.
            other => ansi::lower(self, other),
        }
    }

    fn column_type_for(&self, duckdb_type: &str) -> String {
        let upper = duckdb_type.to_ascii_uppercase();
        match upper.as_str() {
            "BIGINT" | "HUGEINT" | "UBIGINT" | "UINTEGER" => "bigint".into(),
            "INTEGER" | "USMALLINT" => "integer".into(),
            "SMALLINT" | "TINYINT" | "UTINYINT" => "smallint".into(),
            "DOUBLE" => "double precision".into(),
            "FLOAT" => "real".into(),
            "BOOLEAN" => "boolean".into(),
            "DATE" => "date".into(),
            "TIMESTAMP" | "TIMESTAMP_NS" | "TIMESTAMP_MS" | "TIMESTAMP_S" => "timestamp".into(),
            "TIMESTAMP WITH TIME ZONE" => "timestamptz".into(),
            _ if upper.starts_with("DECIMAL") => format!("decimal{}", &duckdb_type[7..]),
            // Redshift stores a varchar by its length, not its declared size.
            _ => "varchar(65535)".into(),
        }
    }

    fn catalog_sql(&self, _database: Option<&str>, schema: &str) -> Option<String> {
        Some(catalog_sql(schema))
    }

    fn staged_file_format(&self) -> crate::adapter::FileFormat {
        crate::adapter::FileFormat::Parquet
    }

    fn grants_sql(&self, relation: &RelationName) -> Option<String> {
        Some(ansi::grants_sql(relation))
    }

    fn is_view_kind(&self, kind: &str) -> bool {
        kind.eq_ignore_ascii_case("VIEW")
    }

    fn is_retryable_message(&self, message: &str) -> bool {
        retryable_message(message)
    }
}

/// A column's type as `svv_columns` gives it, with the length of character types.
const COLUMN_TYPE: &str = "case when c.character_maximum_length is not null \
     then c.data_type || '(' || c.character_maximum_length || ')' else c.data_type end";

/// Relations with their columns: `svv_tables` and `svv_columns` also list late-binding views'
/// columns, which `pg_attribute` does not.
const RELATIONS_WITH_COLUMNS: &str = "from svv_tables t \
     left join svv_columns c \
       on c.table_catalog = t.table_catalog and c.table_schema = t.table_schema \
      and c.table_name = t.table_name";

/// Every relation of a schema (rows: name, kind, column, type).
fn catalog_sql(schema: &str) -> String {
    format!(
        "select t.table_name, t.table_type, c.column_name, {COLUMN_TYPE} {RELATIONS_WITH_COLUMNS} \
         where t.table_schema = {} order by t.table_name, c.ordinal_position",
        string_literal(schema)
    )
}

/// One relation's kind and columns (rows: kind, column, type).
pub fn relation_sql(schema: &str, table: &str) -> String {
    format!(
        "select t.table_type, c.column_name, {COLUMN_TYPE} {RELATIONS_WITH_COLUMNS} \
         where t.table_schema = {} and t.table_name = {} order by c.ordinal_position",
        string_literal(schema),
        string_literal(table)
    )
}

/// The views reading `relation`, directly or through other views, deepest last, with their
/// definitions (rows: schema, view, definition), from the catalog Redshift shares with
/// PostgreSQL (late-binding views depend on nothing and are not listed).
pub fn dependent_views_sql(relation: &RelationName) -> String {
    format!(
        "with recursive dependents(oid, depth) as ( \
           select distinct r.ev_class, 1 \
           from pg_catalog.pg_depend d \
           join pg_catalog.pg_rewrite r on r.oid = d.objid \
           where d.refobjid = (select c.oid from pg_catalog.pg_class c \
                               join pg_catalog.pg_namespace n on n.oid = c.relnamespace \
                               where n.nspname = {} and c.relname = {}) \
             and r.ev_class <> d.refobjid \
           union all \
           select distinct r.ev_class, dependents.depth + 1 \
           from dependents \
           join pg_catalog.pg_depend d on d.refobjid = dependents.oid \
           join pg_catalog.pg_rewrite r on r.oid = d.objid \
           where r.ev_class <> dependents.oid and dependents.depth < 20 \
         ) \
         select n.nspname::varchar, c.relname::varchar, pg_catalog.pg_get_viewdef(c.oid)::varchar(65535) \
         from dependents \
         join pg_catalog.pg_class c on c.oid = dependents.oid \
         join pg_catalog.pg_namespace n on n.oid = c.relnamespace \
         where c.relkind = 'v' \
         group by 1, 2, 3 \
         order by max(dependents.depth), 1, 2",
        string_literal(&relation.schema),
        string_literal(&relation.identifier)
    )
}

/// Redshift's `MERGE`: the target takes no alias (its columns are named by the table's name),
/// and a `when matched` clause must be there even when every column is in the key.
fn merge(
    into: &RelationName,
    using: &RelationName,
    key: &[String],
    update: &[String],
    insert: &[String],
    predicates: &[String],
) -> String {
    let style = &REDSHIFT_STYLE;
    let target = style.quote_identifier(&into.identifier);
    let on = key
        .iter()
        .map(|k| {
            let q = style.quote_identifier(k);
            format!("{target}.{q} = {}.{q}", ansi::NEW_ROWS)
        })
        .collect::<Vec<_>>()
        .join(" and ");
    let set_columns = if update.is_empty() { key } else { update };
    let sets: Vec<String> = set_columns
        .iter()
        .map(|c| {
            let q = style.quote_identifier(c);
            format!("{q} = {}.{q}", ansi::NEW_ROWS)
        })
        .collect();
    let values: Vec<String> = insert
        .iter()
        .map(|c| format!("{}.{}", ansi::NEW_ROWS, style.quote_identifier(c)))
        .collect();
    format!(
        "merge into {} using {} as {} on ({on}{})\nwhen matched then update set {}\nwhen not matched then insert ({}) values ({})",
        into.render(style),
        using.render(style),
        ansi::NEW_ROWS,
        ansi::predicates_sql(predicates, &target),
        sets.join(", "),
        ansi::column_list(insert, style),
        values.join(", ")
    )
}

/// Redshift's errors worth retrying as they are: serializable isolation violations (error
/// 1023), a relation dropped under a concurrent query, concurrent transactions in conflict.
pub fn retryable_message(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    lower.contains("serializable isolation violation")
        || lower.starts_with("1023")
        || lower.contains("could not open relation with oid")
        || lower.contains("conflict with concurrent transaction")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value as Json;

    fn flavour() -> RedshiftFlavour {
        let config: RedshiftConfig = serde_json::from_value(serde_json::json!({
            "host": "h", "user": "u", "dbname": "d", "schema": "s"
        }))
        .unwrap();
        RedshiftFlavour::new(&config)
    }

    fn config(value: Json) -> ConfigMap {
        value
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }

    #[test]
    fn table_properties_follow_dbt_redshift() {
        let relation = RelationName::new(None, "s", "t");
        let storage = flavour()
            .table_storage(
                &relation,
                &config(serde_json::json!({"dist": "customer_id", "sort": ["a", "b"], "sort_type": "interleaved", "backup": false})),
            )
            .unwrap();
        assert_eq!(
            format!("{storage:?}"),
            "backup no diststyle key distkey (\"customer_id\") interleaved sortkey (\"a\", \"b\")"
        );
        let even = flavour()
            .table_storage(&relation, &config(serde_json::json!({"dist": "EVEN"})))
            .unwrap();
        assert_eq!(format!("{even:?}"), "diststyle even");
        let bad = flavour().table_storage(
            &relation,
            &config(serde_json::json!({"sort_type": "zigzag"})),
        );
        assert_eq!(bad.unwrap_err().key, "sort_type");
        assert!(flavour()
            .late_binding_view(&config(serde_json::json!({"bind": false})))
            .unwrap());
    }

    #[test]
    fn serialization_errors_are_retryable() {
        assert!(retryable_message(
            "1023 DETAIL: Serializable isolation violation on table - 123, transactions forming the cycle are: 1, 2"
        ));
        assert!(retryable_message("could not open relation with OID 4711"));
        assert!(!retryable_message("column \"x\" does not exist"));
    }

    #[test]
    fn the_data_api_bounds_statements_at_100_kb() {
        let config: RedshiftConfig = serde_json::from_value(serde_json::json!({
            "method": "data_api", "dbname": "d", "schema": "s"
        }))
        .unwrap();
        assert_eq!(
            RedshiftFlavour::new(&config).limits().statement_bytes,
            Some(100_000)
        );
        assert_eq!(flavour().limits().statement_bytes, Some(16 * 1024 * 1024));
    }
}

//! Materializations: how a compiled SELECT becomes a view, a table or an incremental table, and
//! how a seed file becomes a table — always built aside and swapped in, so a failed or killed
//! run leaves the previous relation readable and unchanged.
//!
//! Statement text comes from small pure functions (pinned by unit tests); the async drivers
//! decide which to run from the adapter's [`Capabilities`] and the relation's current state,
//! never from the adapter's name.

mod cdc;
mod landing;
pub mod view_state;

pub use landing::stage_files;

use std::path::Path;

use crate::adapter::{Adapter, AdapterError, ColumnInfo, RelationInfo, RelationKind};
use crate::project::config::{IncrementalStrategy, Materialization, NodeConfig, OnSchemaChange};
use crate::relation::{string_literal, QuoteStyle, RelationName};

/// Why a node could not be materialized. The previous relation is untouched in every case.
#[derive(Debug, Clone, thiserror::Error)]
pub enum MaterializeError {
    #[error("{0}")]
    Adapter(#[from] AdapterError),
    #[error(
        "the new rows have {count} NULL value(s) in the unique key ({key}); nothing was written"
    )]
    NullKeys { key: String, count: i64 },
    #[error("the new rows repeat the unique key ({key}), e.g. {sample}; nothing was written")]
    DuplicateKeys { key: String, sample: String },
    #[error(
        "the columns changed ({changes}) and `on_schema_change` is `fail`; nothing was written"
    )]
    SchemaChanged { changes: String },
    #[error("`{0}` models need {1}")]
    Config(String, String),
    /// A config value the node cannot run with (e.g. a test's `error_if`).
    #[error("{0}")]
    Settings(String),
    #[error("line {line}, column `{column}`: value `{value}` does not fit the column's type{detail}; the previous table is unchanged")]
    SeedValue {
        line: usize,
        column: String,
        value: String,
        detail: String,
    },
}

impl MaterializeError {
    /// The line of the node's file the error points at, when known (seed values).
    pub fn line(&self) -> Option<usize> {
        match self {
            MaterializeError::SeedValue { line, .. } => Some(*line),
            _ => None,
        }
    }

    pub fn hint(&self) -> Option<String> {
        match self {
            MaterializeError::NullKeys { .. } | MaterializeError::DuplicateKeys { .. } => Some(
                "deduplicate the model's new rows on its `unique_key` (e.g. keep the latest version per key)".into(),
            ),
            MaterializeError::SchemaChanged { .. } => Some(
                "set `on_schema_change` to append_new_columns or sync_all_columns, or rebuild with --full-refresh".into(),
            ),
            MaterializeError::Adapter(e) => e.hint(),
            MaterializeError::Config(..) | MaterializeError::Settings(_) => None,
            MaterializeError::SeedValue { column, .. } => Some(format!(
                "fix the value in the CSV file, or set the column's type in the seed's `column_types` config (e.g. `{column}: varchar`)"
            )),
        }
    }
}

/// What a materialization did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// dbt-style status message: `CREATE VIEW`, `CREATE TABLE (42 rows)`, `INSERT 7`.
    pub message: String,
    pub rows_affected: Option<u64>,
}

/// Everything a materialization needs to know about the node.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub relation: &'a RelationName,
    pub config: &'a NodeConfig,
    /// `partition_by` and other adapter keys, as written.
    pub config_map: &'a crate::project::ConfigMap,
    /// The compiled SELECT.
    pub sql: &'a str,
    pub full_refresh: bool,
    /// Rendered `pre_hook` statements: run before the build starts.
    pub pre_hooks: &'a [String],
    /// Rendered `post_hook` statements: run in the same transaction as the swap (or the
    /// insert) where the engine has transactional DDL, so a failing hook leaves the old relation.
    pub post_hooks: &'a [String],
    /// Statements recording what this build consumed (file bookmarks): they run in the write's
    /// transaction, before the post hooks, so rows and bookmarks commit together or not at all.
    pub record: &'a [String],
}

impl Request<'_> {
    /// What runs after the write in its transaction: the records, then the post hooks.
    fn after_write(&self) -> impl Iterator<Item = String> + '_ {
        self.record.iter().chain(self.post_hooks).cloned()
    }
}

/// The relation a table is built as before the swap. Deterministic, so a run killed mid-build
/// leaves a name the next run clears.
pub fn staging_relation(relation: &RelationName, suffix: &str) -> RelationName {
    RelationName::new(
        relation.database.clone(),
        relation.schema.clone(),
        format!("{}__strata_{suffix}", relation.identifier),
    )
}

pub fn create_schema_sql(relation: &RelationName, style: &QuoteStyle) -> String {
    let schema = RelationName::new(relation.database.clone(), relation.schema.clone(), "");
    let rendered = schema.render(style);
    // `render` ends with `.""` for the empty identifier; drop it.
    let schema_sql = rendered.trim_end_matches(&format!(".{}{}", style.quote, style.quote));
    format!("create schema if not exists {schema_sql}")
}

pub fn drop_sql(relation: &RelationName, kind: RelationKind, style: &QuoteStyle) -> String {
    let what = match kind {
        RelationKind::Table => "table",
        RelationKind::View => "view",
    };
    format!("drop {what} if exists {}", relation.render(style))
}

/// Creates the relation's schema unless this run already did: one catalog write per schema
/// instead of one per node (each is a committed transaction on a DuckDB file).
pub(crate) async fn ensure_schema(
    adapter: &dyn Adapter,
    relation: &RelationName,
) -> Result<(), AdapterError> {
    let sql = create_schema_sql(relation, &adapter.quote_style());
    match adapter.known_schemas() {
        Some(known) => {
            known
                .ensure(sql.clone(), || async {
                    adapter.execute(&sql).await.map(|_| ())
                })
                .await
        }
        None => adapter.execute(&sql).await.map(|_| ()),
    }
}

/// `drop_sql` as this adapter needs it (with `cascade` where views bind to tables).
fn drop_stmt(adapter: &dyn Adapter, relation: &RelationName, kind: RelationKind) -> String {
    let sql = drop_sql(relation, kind, &adapter.quote_style());
    if adapter.capabilities().drop_cascade {
        format!("{sql} cascade")
    } else {
        sql
    }
}

pub fn create_table_as_sql(relation: &RelationName, sql: &str, style: &QuoteStyle) -> String {
    format!(
        "create table {} as (\n{}\n)",
        relation.render(style),
        sql.trim().trim_end_matches(';')
    )
}

pub fn create_view_sql(
    relation: &RelationName,
    sql: &str,
    style: &QuoteStyle,
    or_replace: bool,
) -> String {
    let replace = if or_replace { "or replace " } else { "" };
    format!(
        "create {replace}view {} as (\n{}\n)",
        relation.render(style),
        sql.trim().trim_end_matches(';')
    )
}

pub fn rename_sql(from: &RelationName, to_identifier: &str, style: &QuoteStyle) -> String {
    format!(
        "alter table {} rename to {}",
        from.render(style),
        style.quote_identifier(to_identifier)
    )
}

fn column_list(columns: &[&str], style: &QuoteStyle) -> String {
    columns
        .iter()
        .map(|c| style.quote_identifier(c))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn insert_sql(
    target: &RelationName,
    source: &RelationName,
    columns: &[&str],
    style: &QuoteStyle,
) -> String {
    let list = column_list(columns, style);
    format!(
        "insert into {} ({list}) select {list} from {}",
        target.render(style),
        source.render(style)
    )
}

/// Deletes the target rows whose key (or partition) appears in the new rows.
pub fn delete_matching_sql(
    target: &RelationName,
    source: &RelationName,
    key: &[&str],
    style: &QuoteStyle,
) -> String {
    let condition = key
        .iter()
        .map(|k| {
            let q = style.quote_identifier(k);
            format!("target.{q} = new_rows.{q}")
        })
        .collect::<Vec<_>>()
        .join(" and ");
    format!(
        "delete from {} as target where exists (select 1 from {} as new_rows where {condition})",
        target.render(style),
        source.render(style)
    )
}

/// `(count of rows with a NULL key part, a duplicated key or NULL)` over the new rows.
pub fn key_check_sql(source: &RelationName, key: &[&str], style: &QuoteStyle) -> (String, String) {
    let quoted: Vec<String> = key.iter().map(|k| style.quote_identifier(k)).collect();
    let nulls = quoted
        .iter()
        .map(|q| format!("{q} is null"))
        .collect::<Vec<_>>()
        .join(" or ");
    let list = quoted.join(", ");
    (
        format!(
            "select count(*) from {} where {nulls}",
            source.render(style)
        ),
        format!(
            "select {list}, count(*) as n from {} group by {list} having count(*) > 1 limit 1",
            source.render(style)
        ),
    )
}

/// Column changes between an incremental model's table and its new rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchemaDiff {
    pub added: Vec<ColumnInfo>,
    pub removed: Vec<ColumnInfo>,
}

impl SchemaDiff {
    pub fn between(existing: &[ColumnInfo], new: &[ColumnInfo]) -> SchemaDiff {
        let has = |cols: &[ColumnInfo], name: &str| {
            cols.iter().any(|c| c.name.eq_ignore_ascii_case(name))
        };
        SchemaDiff {
            added: new
                .iter()
                .filter(|c| !has(existing, &c.name))
                .cloned()
                .collect(),
            removed: existing
                .iter()
                .filter(|c| !has(new, &c.name))
                .cloned()
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty()
    }

    fn describe(&self) -> String {
        let mut parts = Vec::new();
        for c in &self.added {
            parts.push(format!("+{}", c.name));
        }
        for c in &self.removed {
            parts.push(format!("-{}", c.name));
        }
        parts.join(", ")
    }
}

fn first_int(table: &crate::adapter::Table) -> i64 {
    match table.rows.first().and_then(|r| r.first()) {
        Some(crate::adapter::Cell::Int(i)) => *i,
        _ => 0,
    }
}

/// Statements that recreate the views `drop … cascade` removes with `relation` (warehouses that
/// bind views to tables): appended to the swap's transaction, so views outside the run survive.
async fn recreate_dependents(
    adapter: &dyn Adapter,
    relation: &RelationName,
) -> Result<Vec<String>, MaterializeError> {
    if !adapter.capabilities().drop_cascade {
        return Ok(Vec::new());
    }
    Ok(adapter.recreate_dependent_views(relation).await?)
}

/// Builds a table aside and swaps it in within one transaction.
async fn build_table(
    adapter: &dyn Adapter,
    request: &Request<'_>,
    existing: Option<&RelationInfo>,
) -> Result<Outcome, MaterializeError> {
    let style = adapter.quote_style();
    let relation = request.relation;
    let staged = staging_relation(relation, "tmp");
    ensure_schema(adapter, relation).await?;
    adapter
        .execute(&drop_stmt(adapter, &staged, RelationKind::Table))
        .await?;
    let created = adapter
        .execute(&create_table_as_sql(&staged, request.sql, &style))
        .await;
    let created = match created {
        Ok(outcome) => outcome,
        Err(err) => {
            let _ = adapter
                .execute(&drop_stmt(adapter, &staged, RelationKind::Table))
                .await;
            return Err(err.into());
        }
    };
    let mut swap = Vec::new();
    if let Some(existing) = existing {
        swap.push(drop_stmt(adapter, relation, existing.kind));
    }
    swap.push(rename_sql(&staged, &relation.identifier, &style));
    swap.extend(recreate_dependents(adapter, relation).await?);
    swap.extend(request.after_write());
    if let Err(err) = adapter
        .execute_all(&swap, adapter.capabilities().transactional_ddl)
        .await
    {
        let _ = adapter
            .execute(&drop_stmt(adapter, &staged, RelationKind::Table))
            .await;
        return Err(err.into());
    }
    let rows = created.rows_affected;
    Ok(Outcome {
        message: match rows {
            Some(n) => format!("CREATE TABLE ({n} rows)"),
            None => "CREATE TABLE".into(),
        },
        rows_affected: rows,
    })
}

async fn build_view(
    adapter: &dyn Adapter,
    request: &Request<'_>,
    existing: Option<RelationKind>,
) -> Result<Outcome, MaterializeError> {
    let style = adapter.quote_style();
    let relation = request.relation;
    ensure_schema(adapter, relation).await?;
    let capabilities = adapter.capabilities();
    let mut statements = Vec::new();
    match existing {
        Some(RelationKind::Table) => {
            statements.push(drop_stmt(adapter, relation, RelationKind::Table))
        }
        Some(RelationKind::View) if !capabilities.create_or_replace_view => {
            statements.push(drop_stmt(adapter, relation, RelationKind::View))
        }
        _ => {}
    }
    statements.push(create_view_sql(
        relation,
        request.sql,
        &style,
        capabilities.create_or_replace_view,
    ));
    if existing.is_some() {
        statements.extend(recreate_dependents(adapter, relation).await?);
    }
    statements.extend(request.after_write());
    adapter
        .execute_all(&statements, capabilities.transactional_ddl)
        .await?;
    Ok(Outcome {
        message: "CREATE VIEW".into(),
        rows_affected: None,
    })
}

async fn build_incremental(
    adapter: &dyn Adapter,
    request: &Request<'_>,
    existing: &RelationInfo,
) -> Result<Outcome, MaterializeError> {
    let style = adapter.quote_style();
    let relation = request.relation;
    let new_rows = staging_relation(relation, "new");
    adapter
        .execute(&drop_stmt(adapter, &new_rows, RelationKind::Table))
        .await?;
    adapter
        .execute(&create_table_as_sql(&new_rows, request.sql, &style))
        .await?;
    let result = apply_increment(adapter, request, existing, &new_rows).await;
    let _ = adapter
        .execute(&drop_stmt(adapter, &new_rows, RelationKind::Table))
        .await;
    result
}

async fn apply_increment(
    adapter: &dyn Adapter,
    request: &Request<'_>,
    existing: &RelationInfo,
    new_rows: &RelationName,
) -> Result<Outcome, MaterializeError> {
    let style = adapter.quote_style();
    let relation = request.relation;
    let config = request.config;
    let new_info = adapter
        .relation(new_rows)
        .await?
        .ok_or_else(|| AdapterError::Internal("the new rows' table vanished".into()))?;
    let diff = SchemaDiff::between(&existing.columns, &new_info.columns);
    let mut statements = Vec::new();
    let mut columns: Vec<String> = new_info.columns.iter().map(|c| c.name.clone()).collect();
    if !diff.is_empty() {
        match config.on_schema_change {
            OnSchemaChange::Ignore => {
                columns.retain(|c| {
                    existing
                        .columns
                        .iter()
                        .any(|e| e.name.eq_ignore_ascii_case(c))
                });
            }
            OnSchemaChange::Fail => {
                return Err(MaterializeError::SchemaChanged {
                    changes: diff.describe(),
                })
            }
            OnSchemaChange::AppendNewColumns | OnSchemaChange::SyncAllColumns => {
                for column in &diff.added {
                    statements.push(format!(
                        "alter table {} add column {} {}",
                        relation.render(&style),
                        style.quote_identifier(&column.name),
                        column.data_type
                    ));
                }
                if config.on_schema_change == OnSchemaChange::SyncAllColumns {
                    for column in &diff.removed {
                        statements.push(format!(
                            "alter table {} drop column {}",
                            relation.render(&style),
                            style.quote_identifier(&column.name)
                        ));
                    }
                }
            }
        }
    }
    let column_refs: Vec<&str> = columns.iter().map(String::as_str).collect();
    let key: Vec<&str> = config.unique_key.iter().map(String::as_str).collect();
    let strategy = config.incremental_strategy.unwrap_or(if key.is_empty() {
        IncrementalStrategy::Append
    } else {
        IncrementalStrategy::Merge
    });
    match strategy {
        IncrementalStrategy::Append => {}
        IncrementalStrategy::Merge | IncrementalStrategy::DeleteInsert => {
            if key.is_empty() {
                return Err(MaterializeError::Config(
                    format!("{strategy:?}").to_lowercase(),
                    "a `unique_key`".into(),
                ));
            }
            if strategy == IncrementalStrategy::Merge {
                let (nulls, duplicates) = key_check_sql(new_rows, &key, &style);
                let null_count = first_int(&adapter.query(&nulls).await?);
                if null_count > 0 {
                    return Err(MaterializeError::NullKeys {
                        key: key.join(", "),
                        count: null_count,
                    });
                }
                let duplicate = adapter.query(&duplicates).await?;
                if let Some(row) = duplicate.rows.first() {
                    let sample = key
                        .iter()
                        .zip(row)
                        .map(|(k, v)| format!("{k} = {v}"))
                        .collect::<Vec<_>>()
                        .join(", ");
                    return Err(MaterializeError::DuplicateKeys {
                        key: key.join(", "),
                        sample,
                    });
                }
            }
            statements.push(delete_matching_sql(relation, new_rows, &key, &style));
        }
        IncrementalStrategy::InsertOverwrite => {
            let partitions =
                crate::project::config::as_string_list(request.config_map.get("partition_by"));
            if partitions.is_empty() {
                return Err(MaterializeError::Config(
                    "insert_overwrite".into(),
                    "`partition_by` (the columns whose touched values are replaced)".into(),
                ));
            }
            let partition_refs: Vec<&str> = partitions.iter().map(String::as_str).collect();
            statements.push(delete_matching_sql(
                relation,
                new_rows,
                &partition_refs,
                &style,
            ));
        }
        IncrementalStrategy::Cdc => {
            return Err(AdapterError::Internal(
                "cdc batches are applied by materialize::cdc".into(),
            )
            .into())
        }
        IncrementalStrategy::Microbatch => {
            return Err(MaterializeError::Config(
                format!("{strategy:?}").to_lowercase(),
                "a later strata version (not implemented yet)".into(),
            ))
        }
    }
    let insert_index = statements.len();
    statements.push(insert_sql(relation, new_rows, &column_refs, &style));
    statements.extend(request.after_write());
    let outcomes = adapter
        .execute_all(&statements, adapter.capabilities().transactional_ddl)
        .await?;
    let inserted = outcomes.get(insert_index).and_then(|o| o.rows_affected);
    Ok(Outcome {
        message: match inserted {
            Some(n) => format!("INSERT {n}"),
            None => "INSERT".into(),
        },
        rows_affected: inserted,
    })
}

/// Materializes a model.
pub async fn materialize(
    adapter: &dyn Adapter,
    request: &Request<'_>,
) -> Result<Outcome, MaterializeError> {
    for hook in request.pre_hooks {
        adapter.execute(hook).await?;
    }
    if request.config.materialized == Materialization::View {
        // A view needs only to know what is there: its columns would bind its query.
        let existing = adapter.relation_kind(request.relation).await?;
        return build_view(adapter, request, existing).await;
    }
    let existing = adapter.relation(request.relation).await?;
    let full_refresh = request.full_refresh && request.config.full_refresh != Some(false);
    match &request.config.materialized {
        Materialization::Table => build_table(adapter, request, existing.as_ref()).await,
        Materialization::Incremental
            if request.config.incremental_strategy == Some(IncrementalStrategy::Cdc) =>
        {
            match existing {
                Some(info) if info.kind == RelationKind::Table && !full_refresh => {
                    cdc::apply_batch(adapter, request, &info).await
                }
                _ => cdc::build_full(adapter, request).await,
            }
        }
        Materialization::Incremental => match existing {
            Some(info) if info.kind == RelationKind::Table && !full_refresh => {
                build_incremental(adapter, request, &info).await
            }
            other => build_table(adapter, request, other.as_ref()).await,
        },
        other => Err(MaterializeError::Config(
            other.as_str().to_string(),
            "a materialization strata does not run yet".into(),
        )),
    }
}

/// Replaces `relation` with a table of `sql`'s rows, built aside and swapped in (audit tables of
/// stored test failures use this).
pub async fn replace_table(
    adapter: &dyn Adapter,
    relation: &RelationName,
    sql: &str,
) -> Result<Outcome, MaterializeError> {
    let config = NodeConfig::resolve(&Default::default(), Materialization::Table)
        .map_err(|e| MaterializeError::Config("table".into(), e.message))?;
    let config_map = crate::project::ConfigMap::new();
    let request = Request {
        relation,
        config: &config,
        config_map: &config_map,
        sql,
        full_refresh: true,
        pre_hooks: &[],
        post_hooks: &[],
        record: &[],
    };
    let existing = adapter.relation(relation).await?;
    build_table(adapter, &request, existing.as_ref()).await
}

/// A description to store as a comment on a relation (`column: None`) or one of its columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    pub column: Option<String>,
    pub text: String,
}

/// Stores `comments` on the built relation in one transaction. Columns the relation does not
/// have (documented in YAML but not produced by the SQL) are skipped, as dbt does.
pub async fn apply_comments(
    adapter: &dyn Adapter,
    relation: &RelationName,
    comments: &[Comment],
) -> Result<(), MaterializeError> {
    let Some(info) = adapter.relation(relation).await? else {
        return Ok(());
    };
    let style = adapter.quote_style();
    let what = match info.kind {
        RelationKind::Table => "table",
        RelationKind::View => "view",
    };
    let statements: Vec<String> = comments
        .iter()
        .filter_map(|comment| match &comment.column {
            None => Some(format!(
                "comment on {what} {} is {}",
                relation.render(&style),
                string_literal(&comment.text)
            )),
            Some(column) => info
                .columns
                .iter()
                .find(|c| c.name.eq_ignore_ascii_case(column))
                .map(|c| {
                    format!(
                        "comment on column {}.{} is {}",
                        relation.render(&style),
                        style.quote_identifier(&c.name),
                        string_literal(&comment.text)
                    )
                }),
        })
        .collect();
    if !statements.is_empty() {
        adapter
            .execute_all(&statements, adapter.capabilities().transactional_ddl)
            .await?;
    }
    Ok(())
}

fn csv_options(config_map: &crate::project::ConfigMap) -> crate::adapter::CsvOptions {
    let single = |key: &str, default: char| {
        config_map
            .get(key)
            .and_then(|v| v.as_str())
            .and_then(|s| s.chars().next())
            .unwrap_or(default)
    };
    crate::adapter::CsvOptions {
        delimiter: single("delimiter", ','),
        quote: single("quote", '"'),
    }
}

fn column_types(config_map: &crate::project::ConfigMap) -> Vec<(String, String)> {
    match config_map.get("column_types") {
        Some(serde_json::Value::Object(types)) => types
            .iter()
            .filter_map(|(column, ty)| ty.as_str().map(|t| (column.clone(), t.to_string())))
            .collect(),
        _ => Vec::new(),
    }
}

/// Loads a seed CSV, built aside and swapped in: with the engine's own CSV reader where it
/// reads local files (DuckDB), otherwise into a typed table by the adapter's bulk load (COPY).
pub async fn load_seed(
    adapter: &dyn Adapter,
    relation: &RelationName,
    path: &Path,
    config_map: &crate::project::ConfigMap,
) -> Result<Outcome, MaterializeError> {
    let options = csv_options(config_map);
    let types = column_types(config_map);
    let outcome = if adapter.capabilities().reads_local_files {
        load_seed_locally(adapter, relation, path, &options, &types).await
    } else {
        load_seed_by_copy(adapter, relation, path, &options, &types).await
    };
    let mut outcome = outcome.map_err(|err| match &err {
        MaterializeError::Adapter(AdapterError::Database { message, .. }) => {
            csv_value_error(message).unwrap_or(err)
        }
        _ => err,
    })?;
    outcome.message = match outcome.rows_affected {
        Some(n) => format!("INSERT {n}"),
        None => "INSERT".into(),
    };
    Ok(outcome)
}

async fn load_seed_locally(
    adapter: &dyn Adapter,
    relation: &RelationName,
    path: &Path,
    options: &crate::adapter::CsvOptions,
    types: &[(String, String)],
) -> Result<Outcome, MaterializeError> {
    let mut read_options = vec![
        "header = true".to_string(),
        "auto_detect = true".to_string(),
        format!("delim = {}", string_literal(&options.delimiter.to_string())),
        format!("quote = {}", string_literal(&options.quote.to_string())),
    ];
    if !types.is_empty() {
        let entries: Vec<String> = types
            .iter()
            .map(|(column, ty)| format!("{}: {}", string_literal(column), string_literal(ty)))
            .collect();
        read_options.push(format!("types = {{{}}}", entries.join(", ")));
    }
    let sql = format!(
        "select * from read_csv({}, {})",
        string_literal(&path.to_string_lossy()),
        read_options.join(", ")
    );
    replace_table(adapter, relation, &sql).await
}

async fn load_seed_by_copy(
    adapter: &dyn Adapter,
    relation: &RelationName,
    path: &Path,
    options: &crate::adapter::CsvOptions,
    types: &[(String, String)],
) -> Result<Outcome, MaterializeError> {
    let style = adapter.quote_style();
    // The bundled DuckDB reads the file's shape; the warehouse parses the values, so a value
    // that does not fit is the warehouse's error, naming line and column.
    let owned_path = path.to_path_buf();
    let owned_options = *options;
    let inferred = tokio::task::spawn_blocking(move || {
        crate::adapter::duckdb::infer_csv_columns(&owned_path, &owned_options)
    })
    .await
    .map_err(|e| AdapterError::Internal(format!("CSV inference task failed: {e}")))??;
    let columns: Vec<String> = inferred
        .iter()
        .map(|column| {
            let ty = types
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(&column.name))
                .map(|(_, ty)| ty.clone())
                .unwrap_or_else(|| adapter.column_type_for(&column.data_type));
            format!("{} {ty}", style.quote_identifier(&column.name))
        })
        .collect();
    let staged = staging_relation(relation, "tmp");
    ensure_schema(adapter, relation).await?;
    adapter
        .execute(&drop_stmt(adapter, &staged, RelationKind::Table))
        .await?;
    adapter
        .execute(&format!(
            "create table {} ({})",
            staged.render(&style),
            columns.join(", ")
        ))
        .await?;
    let load = crate::adapter::CsvLoad {
        relation: &staged,
        path,
        options,
        columns: &[],
        before: &[],
        after: &[],
    };
    let loaded = match adapter.load_csv(&load).await {
        Ok(rows) => rows,
        Err(err) => {
            let _ = adapter
                .execute(&drop_stmt(adapter, &staged, RelationKind::Table))
                .await;
            return Err(err.into());
        }
    };
    let mut swap = Vec::new();
    if let Some(existing) = adapter.relation(relation).await? {
        swap.push(drop_stmt(adapter, relation, existing.kind));
    }
    swap.push(rename_sql(&staged, &relation.identifier, &style));
    swap.extend(recreate_dependents(adapter, relation).await?);
    if let Err(err) = adapter
        .execute_all(&swap, adapter.capabilities().transactional_ddl)
        .await
    {
        let _ = adapter
            .execute(&drop_stmt(adapter, &staged, RelationKind::Table))
            .await;
        return Err(err.into());
    }
    Ok(Outcome {
        message: String::new(),
        rows_affected: Some(loaded),
    })
}

/// Reads a CSV value error of the warehouse into file line, column and value. DuckDB says
/// `CSV Error on Line: 3` (the header is line 1), `column "amount"` and `string "abc"`;
/// PostgreSQL's COPY says `COPY t, line 3, column amount: "abc"`.
fn csv_value_error(message: &str) -> Option<MaterializeError> {
    let after = |marker: &str| -> Option<&str> {
        let start = message.find(marker)? + marker.len();
        Some(&message[start..])
    };
    let number = |text: &str| -> Option<usize> {
        text.split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    };
    let quoted = |marker: &str| -> Option<String> {
        let rest = after(marker)?;
        let rest = rest.strip_prefix('"')?;
        Some(rest[..rest.find('"')?].to_string())
    };
    if let Some(rest) = after("CSV Error on Line: ") {
        let line = number(rest)?;
        let column = quoted("column ").unwrap_or_else(|| "?".into());
        let value = quoted("string ").unwrap_or_default();
        let detail = after("to '")
            .and_then(|rest| rest.split('\'').next())
            .map(|ty| format!(" ({ty})"))
            .unwrap_or_default();
        return Some(MaterializeError::SeedValue {
            line,
            column,
            value,
            detail,
        });
    }
    // PostgreSQL: "<problem>\ncontext: COPY <table>, line 3, column amount: \"abc\""
    let context = after("context: COPY ")?;
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
    Some(MaterializeError::SeedValue {
        line,
        column,
        value,
        detail: format!(" ({problem})"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relation() -> RelationName {
        RelationName::new(Some("dev".into()), "main", "orders")
    }

    #[test]
    fn statements_are_quoted_and_staged_aside() {
        let style = QuoteStyle::default();
        let staged = staging_relation(&relation(), "tmp");
        assert_eq!(
            create_schema_sql(&relation(), &style),
            "create schema if not exists \"dev\".\"main\""
        );
        assert_eq!(
            create_table_as_sql(&staged, "select 1;\n", &style),
            "create table \"dev\".\"main\".\"orders__strata_tmp\" as (\nselect 1\n)"
        );
        assert_eq!(
            rename_sql(&staged, "orders", &style),
            "alter table \"dev\".\"main\".\"orders__strata_tmp\" rename to \"orders\""
        );
        assert_eq!(
            delete_matching_sql(&relation(), &staged, &["id", "line"], &style),
            "delete from \"dev\".\"main\".\"orders\" as target where exists (select 1 from \"dev\".\"main\".\"orders__strata_tmp\" as new_rows where target.\"id\" = new_rows.\"id\" and target.\"line\" = new_rows.\"line\")"
        );
    }

    #[test]
    fn csv_value_errors_name_line_column_and_value() {
        let duckdb = "Conversion Error: CSV Error on Line: 3\nOriginal Line: 2,abc\nError when converting column \"amount\". Could not convert string \"abc\" to 'INTEGER'";
        match csv_value_error(duckdb) {
            Some(MaterializeError::SeedValue {
                line,
                column,
                value,
                ..
            }) => {
                assert_eq!(
                    (line, column.as_str(), value.as_str()),
                    (3, "amount", "abc")
                );
            }
            other => panic!("{other:?}"),
        }
        let postgres = "invalid input syntax for type integer: \"abc\"\ncontext: COPY prices__strata_tmp, line 3, column amount: \"abc\"";
        match csv_value_error(postgres) {
            Some(MaterializeError::SeedValue {
                line,
                column,
                value,
                ..
            }) => {
                assert_eq!(
                    (line, column.as_str(), value.as_str()),
                    (3, "amount", "abc")
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(csv_value_error("some other failure").is_none());
    }

    #[test]
    fn schema_diff_finds_added_and_removed_columns() {
        let col = |n: &str| ColumnInfo {
            name: n.into(),
            data_type: "INTEGER".into(),
        };
        let diff = SchemaDiff::between(&[col("a"), col("b")], &[col("A"), col("c")]);
        assert_eq!(diff.added, vec![col("c")]);
        assert_eq!(diff.removed, vec![col("b")]);
    }
}

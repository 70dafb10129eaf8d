//! Materializations: how a compiled SELECT becomes a view, a table or an incremental table, how
//! a seed file becomes a table, how landing files are staged — always so that a failed or
//! killed run leaves the previous relation readable and unchanged.
//!
//! Each materialization is a thin driver: it asks the catalog what stands there now, builds a
//! typed plan with the pure functions of [`plans`] and [`cdc`] (asking the warehouse's flavour
//! what it can do, never which warehouse it is), bounds it to the warehouse's limits, and hands
//! it to [`execute`]. Where a plan needs the warehouse's answer midway (the columns of an
//! incremental model's new rows), the driver runs the first part, asks, and plans the rest.

pub mod bounds;
pub mod cdc;
pub mod execute;
mod landing;
pub mod microbatch;
pub mod plans;
pub mod preview;
pub mod repair;
pub mod snapshot;
pub mod view_state;

pub use landing::stage_files;

use std::path::Path;

use crate::adapter::{
    Adapter, AdapterError, Cell, CsvOptions, RelationKind, SeedLoad, StatementKind,
};
use crate::catalog::Catalog;
use crate::plan::{ColumnDef, Literal, Plan, RunContext, StateWrite, Step, Storage};
use crate::project::config::{IncrementalStrategy, Materialization, NodeConfig};
use crate::relation::RelationName;
use crate::state::StateStore;

use plans::Build;

/// Why a node could not be materialized. The previous relation is untouched in every case.
#[derive(Debug, Clone, thiserror::Error)]
pub enum MaterializeError {
    #[error("{0}")]
    Adapter(#[from] AdapterError),
    /// The node's compile right before it ran failed (a `run_query` in it, say).
    #[error("{0}")]
    Compile(String),
    /// A project macro that writes part of the build (a strategy, a materialization) failed.
    #[error("{0}")]
    Macro(String),
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
    #[error("{0}; this is a bug, please report it")]
    Internal(String),
    /// Some batches of a microbatch model failed; the others were built and recorded.
    #[error("{message}")]
    Batches {
        message: String,
        results: microbatch::BatchResults,
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
                "deduplicate the rows its query returns on its `unique_key` (e.g. keep the latest version of each key)".into(),
            ),
            MaterializeError::SchemaChanged { .. } => Some(
                "set `on_schema_change` to append_new_columns or sync_all_columns, or rebuild with --full-refresh".into(),
            ),
            MaterializeError::Adapter(e) => e.hint(),
            MaterializeError::Compile(_) => Some(
                "the node is compiled right before it runs, as its templates may query the warehouse; fix the template or what it queries".into(),
            ),
            MaterializeError::Macro(_) => Some(
                "the project's macro failed while it built the model; fix the macro (its file and line are above)".into(),
            ),
            MaterializeError::Config(..)
            | MaterializeError::Settings(_)
            | MaterializeError::Internal(_) => None,
            MaterializeError::Batches { .. } => Some(
                "fix what failed, then `strata retry` builds exactly the failed batches; a scheduled run builds them too".into(),
            ),
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
    /// Clean-up left for the next run (a backup that could not be dropped).
    pub warnings: Vec<String>,
    /// A microbatch model's batches.
    pub batches: Option<microbatch::BatchResults>,
}

/// Where a materialization runs: the connection, what the run knows of the catalog, strata's
/// state, and the run's own facts.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    pub adapter: &'a dyn Adapter,
    pub catalog: &'a Catalog,
    pub state: &'a dyn StateStore,
    pub run: &'a RunContext,
}

impl Context<'_> {
    /// Places inline records and bounds the plan to the warehouse's limits, then runs it.
    pub async fn run(&self, plan: Plan) -> Result<execute::Executed, MaterializeError> {
        let plan = self.finish(plan);
        execute::run_plan(self.adapter, self.catalog, self.state, &plan).await
    }

    /// The plan as it runs: records the state store writes with the build spelled out as
    /// steps, and statements split to the warehouse's limits.
    pub fn finish(&self, plan: Plan) -> Plan {
        let plan = inline_records(|write| self.state.inline(write), plan);
        bounds::bound(plan, self.adapter.flavour())
    }
}

/// Replaces each record the store writes with the build by the steps that write it.
pub fn inline_records(inline: impl Fn(&StateWrite) -> Option<Vec<Step>>, mut plan: Plan) -> Plan {
    let mut count = Vec::new();
    let mut position = 0usize;
    let mut counted = plan.count.iter().copied().peekable();
    let mut old_position = 0usize;
    for block in &mut plan.blocks {
        let mut steps = Vec::with_capacity(block.steps.len());
        for step in block.steps.drain(..) {
            let is_counted = counted.peek() == Some(&old_position);
            if is_counted {
                counted.next();
                count.push(position);
            }
            old_position += 1;
            match &step {
                Step::Record(write) => match inline(write) {
                    Some(inline) => {
                        position += inline.len();
                        steps.extend(inline);
                    }
                    None => {
                        position += 1;
                        steps.push(step);
                    }
                },
                _ => {
                    position += 1;
                    steps.push(step);
                }
            }
        }
        block.steps = steps;
    }
    plan.count = count;
    plan
}

/// An incremental strategy a macro of the project writes (dbt's custom strategies, or a
/// built-in one whose macros the project overrides): the run room renders it with the model's
/// context; this room builds the new rows aside, asks it for the statements that apply them,
/// and runs those in the write's commit.
pub trait WrittenStrategy: Send + Sync + std::fmt::Debug {
    /// The macro, for messages (`get_incremental_insert_only_sql`).
    fn name(&self) -> &str;
    /// The statements that apply `temp`'s rows to `target` (dbt's `arg_dict` relations),
    /// writing `dest_columns`. Blocks until the template has rendered.
    fn sql(
        &self,
        target: &RelationName,
        temp: &RelationName,
        dest_columns: &[crate::adapter::ColumnInfo],
    ) -> Result<String, String>;
}

/// A custom materialization (`{% materialization name, adapter %}`): the run room renders its
/// macro with the model's context, and the macro runs its own statements as it renders.
pub trait WrittenMaterialization: Send + Sync + std::fmt::Debug {
    /// The macro, for messages (`materialization_insert_by_period_default`).
    fn name(&self) -> &str;
    /// Runs the macro over the model's compiled SELECT and rendered hooks (which the macro
    /// runs itself, with `run_hooks`). Blocks until it has rendered.
    fn run(
        &self,
        sql: &str,
        pre_hooks: &[String],
        post_hooks: &[String],
    ) -> Result<crate::template::written::MaterializationRun, String>;
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
    /// What this build records in strata's state (file bookmarks, the view's fingerprint): in
    /// the write's commit, before the post hooks, so rows and records commit together.
    pub records: &'a [StateWrite],
    /// How the table is stored, as the warehouse resolved the model's config.
    pub storage: &'a Storage,
    /// A view that resolves its relations when read (`bind: false`).
    pub late_binding: bool,
    /// An incremental model whose strategy a macro of the project writes.
    pub strategy: Option<&'a dyn WrittenStrategy>,
    /// A model built by a custom materialization.
    pub materialization: Option<&'a dyn WrittenMaterialization>,
}

impl Request<'_> {
    /// What runs after the write in its commit: the records, then the post hooks.
    fn after_write(&self) -> Vec<Step> {
        self.records
            .iter()
            .cloned()
            .map(Step::Record)
            .chain(self.post_hooks.iter().cloned().map(Step::Sql))
            .collect()
    }
}

/// Creates the relation's schema unless this run already did: one catalog write per schema
/// instead of one per node (each is a committed transaction on a DuckDB file).
pub(crate) async fn ensure_schema(
    adapter: &dyn Adapter,
    relation: &RelationName,
) -> Result<(), AdapterError> {
    let step = Step::CreateSchema {
        database: relation.database.clone(),
        schema: relation.schema.clone(),
    };
    let statements: Vec<String> = adapter
        .flavour()
        .lower(&step)
        .into_iter()
        .filter_map(|l| l.text().map(str::to_string))
        .collect();
    let key = statements.join(";\n");
    let create = || async {
        for sql in &statements {
            adapter.execute(sql).await?;
        }
        Ok(())
    };
    match adapter.known_schemas() {
        Some(known) => known.ensure(key, create).await,
        None => create().await,
    }
}

/// The build of a node: its flavour, run, relation and storage, and what runs in its commit.
async fn build_for<'a>(
    ctx: &Context<'a>,
    request: &'a Request<'a>,
    existing: Option<RelationKind>,
) -> Result<Build<'a>, MaterializeError> {
    let flavour = ctx.adapter.flavour();
    let dependents = if existing.is_some() && flavour.capabilities().views_bind_to_tables {
        ctx.adapter
            .recreate_dependent_views(request.relation)
            .await?
    } else {
        Vec::new()
    };
    Ok(Build {
        flavour,
        run: ctx.run,
        relation: request.relation,
        storage: request.storage,
        after: request.after_write(),
        dependents,
    })
}

fn table_message(rows: Option<u64>) -> String {
    match rows {
        Some(n) => format!("CREATE TABLE ({n} rows)"),
        None => "CREATE TABLE".into(),
    }
}

async fn build_table(
    ctx: &Context<'_>,
    request: &Request<'_>,
    existing: Option<RelationKind>,
) -> Result<Outcome, MaterializeError> {
    let flavour = ctx.adapter.flavour();
    if flavour.limits().partitions_per_write.is_some()
        && !request.storage.partition_columns().is_empty()
    {
        return build_partitioned_table(ctx, request, existing).await;
    }
    let build = build_for(ctx, request, existing).await?;
    let plan = plans::table(&build, request.sql, existing);
    let executed = ctx.run(plan).await?;
    Ok(Outcome {
        batches: None,
        message: table_message(executed.rows),
        rows_affected: executed.rows,
        warnings: executed.warnings,
    })
}

/// A table whose partitions one write may not all open: its rows built once aside, then
/// written in batches of partitions (see [`plans::table_from_scratch`]).
async fn build_partitioned_table(
    ctx: &Context<'_>,
    request: &Request<'_>,
    existing: Option<RelationKind>,
) -> Result<Outcome, MaterializeError> {
    let build = build_for(ctx, request, existing).await?;
    let (scratch, stage) = plans::new_rows(&build, request.sql);
    let staged = ctx
        .run(Plan {
            count: vec![0],
            ..stage
        })
        .await?;
    let built = async {
        let columns = aside_columns(ctx, &scratch).await?;
        let partitions = partitions_of(ctx, &scratch, request.storage.partition_columns()).await?;
        let plan = plans::table_from_scratch(
            &build,
            &scratch,
            &columns,
            partitions.as_deref().unwrap_or_default(),
            existing,
        );
        ctx.run(plan).await
    }
    .await;
    let executed = dropping_on_error(ctx, &scratch, built).await?;
    let rows = staged.rows;
    Ok(Outcome {
        batches: None,
        message: table_message(rows),
        rows_affected: rows,
        warnings: executed.warnings,
    })
}

async fn build_view(
    ctx: &Context<'_>,
    request: &Request<'_>,
    existing: Option<RelationKind>,
) -> Result<Outcome, MaterializeError> {
    let build = build_for(ctx, request, existing).await?;
    let plan = plans::view(&build, request.sql, request.late_binding, existing);
    let executed = ctx.run(plan).await?;
    Ok(Outcome {
        batches: None,
        message: "CREATE VIEW".into(),
        rows_affected: None,
        warnings: executed.warnings,
    })
}

/// The partition values an incremental model's new rows touch, where the warehouse bounds the
/// partitions one write may open.
async fn partitions_of(
    ctx: &Context<'_>,
    new_rows: &RelationName,
    columns: &[String],
) -> Result<Option<Vec<Vec<Literal>>>, MaterializeError> {
    if ctx
        .adapter
        .flavour()
        .limits()
        .partitions_per_write
        .is_none()
        || columns.is_empty()
    {
        return Ok(None);
    }
    let style = ctx.adapter.flavour().quote_style(StatementKind::Dml);
    let list = crate::adapter::ansi::column_list(columns, &style);
    let table = ctx
        .adapter
        .query(&format!(
            "select distinct {list} from {} order by {list}",
            new_rows.render(&style)
        ))
        .await?;
    Ok(Some(
        table
            .rows
            .into_iter()
            .map(|row| row.into_iter().map(literal_of).collect())
            .collect(),
    ))
}

/// A query result's value as a literal to write back.
pub fn literal_of(cell: Cell) -> Literal {
    match cell {
        Cell::Null => Literal::Null,
        Cell::Bool(b) => Literal::Bool(b),
        Cell::Int(i) => Literal::Int(i),
        Cell::Float(x) => Literal::Text(x.to_string()),
        Cell::Text(t) => Literal::Text(t),
    }
}

/// How an incremental model writes its new rows, from its config; a config the strategy cannot
/// run with is an error before anything is built.
pub fn increment_of(request: &Request<'_>) -> Result<plans::Increment, MaterializeError> {
    let config = request.config;
    let key = config.unique_key.clone();
    let strategy = config
        .incremental_strategy
        .clone()
        .unwrap_or(if key.is_empty() {
            IncrementalStrategy::Append
        } else {
            IncrementalStrategy::Merge
        });
    let mut partition_by =
        crate::project::config::as_string_list(request.config_map.get("partition_by"));
    if partition_by.is_empty() {
        partition_by = request.storage.partition_columns().to_vec();
    }
    if matches!(
        strategy,
        IncrementalStrategy::Merge | IncrementalStrategy::DeleteInsert
    ) && key.is_empty()
    {
        return Err(MaterializeError::Config(
            strategy.as_str().to_string(),
            "a `unique_key`".into(),
        ));
    }
    if strategy == IncrementalStrategy::InsertOverwrite && partition_by.is_empty() {
        return Err(MaterializeError::Config(
            "insert_overwrite".into(),
            "`partition_by` (the columns whose touched values are replaced)".into(),
        ));
    }
    let mut predicates =
        crate::project::config::as_string_list(request.config_map.get("incremental_predicates"));
    if predicates.is_empty() {
        predicates = crate::project::config::as_string_list(request.config_map.get("predicates"));
    }
    if !predicates.is_empty()
        && !matches!(
            strategy,
            IncrementalStrategy::Merge | IncrementalStrategy::DeleteInsert
        )
    {
        return Err(MaterializeError::Settings(format!(
            "`incremental_predicates` limit which rows a merge or delete+insert replaces; the `{}` strategy does not use them, so they would be ignored: remove them or use merge or delete+insert",
            strategy.as_str()
        )));
    }
    let update_columns = request
        .config_map
        .get("merge_update_columns")
        .filter(|v| !v.is_null())
        .map(|v| crate::project::config::as_string_list(Some(v)));
    let exclude_columns =
        crate::project::config::as_string_list(request.config_map.get("merge_exclude_columns"));
    if update_columns.is_some() && !exclude_columns.is_empty() {
        return Err(MaterializeError::Settings(
            "`merge_update_columns` and `merge_exclude_columns` cannot both be set: keep one"
                .into(),
        ));
    }
    if (update_columns.is_some() || !exclude_columns.is_empty())
        && strategy != IncrementalStrategy::Merge
    {
        return Err(MaterializeError::Settings(format!(
            "`merge_update_columns` / `merge_exclude_columns` choose the columns a merge updates; the `{}` strategy replaces whole rows, so they would be ignored: remove them or use merge",
            strategy.as_str()
        )));
    }
    Ok(plans::Increment {
        strategy,
        unique_key: key,
        on_schema_change: config.on_schema_change,
        partition_by,
        predicates,
        update_columns,
        exclude_columns,
    })
}

async fn build_incremental(
    ctx: &Context<'_>,
    request: &Request<'_>,
    existing: &crate::adapter::RelationInfo,
) -> Result<Outcome, MaterializeError> {
    if let Some(written) = request.strategy {
        return build_written_increment(ctx, request, existing, written).await;
    }
    let increment = increment_of(request)?;
    let strategy = increment.strategy.clone();
    let flavour = ctx.adapter.flavour();
    plans::check_increment(
        flavour,
        request.storage,
        &increment,
        flavour.limits().partitions_per_write.is_some(),
    )?;
    let build = build_for(ctx, request, None).await?;
    let (new_rows, prepare) = plans::new_rows(&build, request.sql);
    ctx.run(prepare).await?;
    let applied = async {
        let new_columns = aside_columns(ctx, &new_rows).await?;
        let partitions = if strategy == IncrementalStrategy::InsertOverwrite {
            partitions_of(ctx, &new_rows, &increment.partition_by).await?
        } else {
            None
        };
        let plan = plans::apply_increment(
            &build,
            &new_rows,
            &existing.columns,
            &new_columns,
            &increment,
            partitions.as_deref(),
        )?;
        ctx.run(plan).await
    }
    .await;
    let executed = dropping_on_error(ctx, &new_rows, applied).await?;
    Ok(Outcome {
        batches: None,
        message: match executed.rows {
            Some(n) => format!("INSERT {n}"),
            None => "INSERT".into(),
        },
        rows_affected: executed.rows,
        warnings: executed.warnings,
    })
}

/// An incremental build whose statements a project macro writes: the new rows built aside,
/// the schema change applied as for strata's own strategies, the macro given the columns to
/// write, and its statements run in the write's commit with the records and post hooks.
async fn build_written_increment(
    ctx: &Context<'_>,
    request: &Request<'_>,
    existing: &crate::adapter::RelationInfo,
    written: &dyn WrittenStrategy,
) -> Result<Outcome, MaterializeError> {
    let on_schema_change = request.config.on_schema_change;
    let build = build_for(ctx, request, None).await?;
    let (new_rows, prepare) = plans::new_rows(&build, request.sql);
    ctx.run(prepare).await?;
    let applied = async {
        let new_columns = aside_columns(ctx, &new_rows).await?;
        let change =
            plans::SchemaChange::plan(&build, &existing.columns, &new_columns, on_schema_change)?;
        let dest_columns: Vec<crate::adapter::ColumnInfo> = new_columns
            .iter()
            .filter(|c| change.columns.contains(&c.name))
            .cloned()
            .collect();
        let sql = blocking(|| written.sql(request.relation, &new_rows, &dest_columns))
            .map_err(MaterializeError::Macro)?;
        let statements = crate::sql::split_statements(&sql);
        // The status names what the last statement did (`INSERT 3`, `MERGE 3`), as dbt's does.
        let verb = statements
            .last()
            .and_then(|s| s.split_whitespace().next())
            .map(str::to_ascii_uppercase)
            .ok_or_else(|| {
                MaterializeError::Macro(format!("`{}` wrote no statement", written.name()))
            })?;
        let plan = plans::apply_written(&build, &new_rows, change, statements);
        Ok((ctx.run(plan).await?, verb))
    }
    .await;
    let (executed, verb) = dropping_on_error(ctx, &new_rows, applied).await?;
    Ok(Outcome {
        batches: None,
        message: match executed.rows {
            Some(n) => format!("{verb} {n}"),
            None => verb,
        },
        rows_affected: executed.rows,
        warnings: executed.warnings,
    })
}

/// A model built by a custom materialization: the macro runs its own statements and hooks,
/// so what it leaves is its own (its statements commit as they run). The catalog forgets what
/// the macro says it built.
async fn build_written(
    ctx: &Context<'_>,
    request: &Request<'_>,
    written: &dyn WrittenMaterialization,
) -> Result<Outcome, MaterializeError> {
    if !request.records.is_empty() {
        return Err(MaterializeError::Config(
            request.config.materialized.as_str().to_string(),
            "no `bookmark` (strata records the files a model read only with its own materializations)".into(),
        ));
    }
    ensure_schema(ctx.adapter, request.relation).await?;
    let ran = blocking(|| written.run(request.sql, request.pre_hooks, request.post_hooks));
    // Whatever the macro did before it failed is in the warehouse: forget what was known.
    ctx.catalog.forget(request.relation);
    let ran = ran.map_err(MaterializeError::Macro)?;
    for relation in &ran.relations {
        ctx.catalog.forget(relation);
    }
    let rows = ran
        .status
        .as_deref()
        .and_then(|s| s.split_whitespace().last())
        .and_then(|n| n.parse().ok());
    Ok(Outcome {
        batches: None,
        message: ran.status.unwrap_or_else(|| "OK".into()),
        rows_affected: rows,
        warnings: Vec::new(),
    })
}

/// A snapshot: its first build makes a table of every source row's first version; later ones
/// stage the source rows and the changes aside, then close and open versions in one commit.
async fn build_snapshot(
    ctx: &Context<'_>,
    request: &Request<'_>,
) -> Result<Outcome, MaterializeError> {
    let flavour = ctx.adapter.flavour();
    let settings = snapshot::SnapshotSettings::from_request(request, flavour)?;
    let existing = ctx.catalog.relation(request.relation).await?;
    let Some(info) = existing.filter(|i| i.kind == RelationKind::Table) else {
        let sql = snapshot::first_select(flavour, &settings, request.sql);
        let first = Request {
            sql: &sql,
            ..request.clone()
        };
        let kind = ctx.catalog.kind(request.relation).await?;
        return build_table(ctx, &first, kind).await;
    };
    let build = build_for(ctx, request, None).await?;
    let (source, prepare) = snapshot::stage_source(&build, request.sql, &settings);
    ctx.run(prepare).await?;
    let applied = async {
        let source_columns = aside_columns(ctx, &source).await?;
        let select = snapshot::staging_select(
            flavour,
            &settings,
            &source,
            request.relation,
            &source_columns,
            &info.columns,
        );
        let (staged, stage) = snapshot::stage_changes(&build, select, &source);
        ctx.run(stage).await?;
        let shape = snapshot::Shape::of(&settings, &source_columns, &info.columns);
        if flavour.can_delete_rows(request.storage) {
            let plan = snapshot::apply(&build, &settings, &staged, &source, &shape);
            return ctx.run(plan).await.map(|executed| Outcome {
                batches: None,
                message: match executed.rows {
                    Some(n) => format!("SNAPSHOT {n}"),
                    None => "SNAPSHOT".into(),
                },
                rows_affected: executed.rows,
                warnings: executed.warnings,
            });
        }
        // Rows that cannot be updated in place: the next state built aside and swapped in.
        let select = snapshot::rebuild_select(&build, &settings, &staged, &info.columns, &shape);
        let rebuilt = build_table(
            ctx,
            &Request {
                sql: &select,
                ..request.clone()
            },
            Some(RelationKind::Table),
        )
        .await;
        let _ = ctx.run(snapshot::cleanup(&staged, &source)).await;
        let outcome = rebuilt?;
        Ok(Outcome {
            batches: None,
            message: match outcome.rows_affected {
                Some(n) => format!("SNAPSHOT rebuilt, {n} rows"),
                None => "SNAPSHOT rebuilt".into(),
            },
            ..outcome
        })
    }
    .await;
    dropping_on_error(ctx, &source, applied).await
}

/// Runs a call that blocks (a template render, which may query the warehouse itself) without
/// stalling the runtime's other tasks.
fn blocking<T>(call: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(call)
        }
        _ => call(),
    }
}

async fn build_cdc(
    ctx: &Context<'_>,
    request: &Request<'_>,
    existing: Option<&crate::adapter::RelationInfo>,
    full_refresh: bool,
) -> Result<Outcome, MaterializeError> {
    let columns = cdc::CdcColumns::from_request(request)?;
    cdc::supported(ctx.adapter.flavour(), request.storage)?;
    let tombstones = ctx.state.tombstones(request.relation);
    let tombstones_exist = ctx.catalog.kind(&tombstones).await?.is_some();
    let style = ctx.adapter.flavour().quote_style(StatementKind::Dml);
    match existing {
        Some(info) if info.kind == RelationKind::Table && !full_refresh => {
            let build = build_for(ctx, request, None).await?;
            let (new_rows, prepare) =
                cdc::batch_prepare(&build, request.sql, &columns, &tombstones, tombstones_exist);
            ctx.run(prepare).await?;
            let applied = async {
                let new_columns = aside_columns(ctx, &new_rows).await?;
                let plan = cdc::batch_apply(
                    &build,
                    &new_rows,
                    &new_columns,
                    &info.columns,
                    &columns,
                    &tombstones,
                );
                ctx.run(plan).await
            }
            .await;
            let executed = dropping_on_error(ctx, &new_rows, applied).await?;
            Ok(Outcome {
                batches: None,
                message: match executed.rows {
                    Some(n) => format!("CDC {n} upserted"),
                    None => "CDC".into(),
                },
                rows_affected: executed.rows,
                warnings: executed.warnings,
            })
        }
        other => {
            let kind = other.map(|info| info.kind);
            let build = build_for(ctx, request, kind).await?;
            crate::materialize::ensure_schema(ctx.adapter, &tombstones).await?;
            let partitions = request.storage.partition_columns();
            let bounded = ctx
                .adapter
                .flavour()
                .limits()
                .partitions_per_write
                .is_some()
                && !partitions.is_empty();
            let (mut staged, staged_tombstones, prepare) =
                cdc::full_prepare(&build, request.sql, &columns, &tombstones, bounded);
            ctx.run(prepare).await?;
            if bounded {
                // The rows went aside unpartitioned: copy them into the partitioned table built
                // aside, a batch of partitions at a time.
                let copied = async {
                    let raw_columns = aside_columns(ctx, &staged).await?;
                    let values = partitions_of(ctx, &staged, partitions).await?;
                    let target = build.aside(crate::plan::aside::STAGED);
                    let steps = plans::batched_copy(
                        &build,
                        &staged,
                        &raw_columns,
                        values.as_deref().unwrap_or_default(),
                        &target,
                        &build.storage.spec().aside(&build.run.run_id),
                        false,
                    );
                    ctx.run(Plan {
                        blocks: vec![
                            crate::plan::Block::new(crate::plan::Role::Prepare, false, steps),
                            crate::plan::Block::new(
                                crate::plan::Role::Cleanup,
                                false,
                                vec![plans::drop_table(&staged)],
                            ),
                        ],
                        on_failure: vec![
                            plans::drop_table(&target),
                            plans::drop_table(&staged_tombstones),
                        ],
                        count: Vec::new(),
                    })
                    .await?;
                    Ok::<_, MaterializeError>(target)
                }
                .await;
                staged = dropping_on_error(ctx, &staged, copied).await?;
            }
            let swap = cdc::full_swap(
                &build,
                &staged,
                &staged_tombstones,
                &tombstones,
                kind,
                tombstones_exist,
            );
            let executed = ctx.run(swap).await?;
            let rows = ctx
                .adapter
                .query(&format!(
                    "select count(*) from {}",
                    request.relation.render(&style)
                ))
                .await?;
            let count = match rows.rows.first().and_then(|r| r.first()) {
                Some(Cell::Int(n)) => u64::try_from(*n).ok(),
                _ => None,
            };
            Ok(Outcome {
                batches: None,
                message: table_message(count),
                rows_affected: count,
                warnings: executed.warnings,
            })
        }
    }
}

/// `result`, with `aside` (a table this run built for its own use) dropped when it is an error:
/// a plan that failed before it ran did not drop it. The error is the one to report; a drop
/// that fails too is left to the next run's repair.
async fn dropping_on_error<T>(
    ctx: &Context<'_>,
    aside: &RelationName,
    result: Result<T, MaterializeError>,
) -> Result<T, MaterializeError> {
    if result.is_err() {
        let plan = Plan {
            blocks: vec![crate::plan::Block::new(
                crate::plan::Role::Cleanup,
                false,
                vec![plans::drop_table(aside)],
            )],
            ..Plan::default()
        };
        let _ = ctx.run(plan).await;
    }
    result
}

/// The columns of a table this run built aside, read back from the warehouse.
async fn aside_columns(
    ctx: &Context<'_>,
    aside: &RelationName,
) -> Result<Vec<crate::adapter::ColumnInfo>, MaterializeError> {
    ctx.catalog
        .relation(aside)
        .await?
        .map(|info| info.columns)
        .ok_or_else(|| {
            MaterializeError::Internal(format!("`{aside}`, built for this run, vanished"))
        })
}

/// Materializes a model.
pub async fn materialize(
    ctx: &Context<'_>,
    request: &Request<'_>,
) -> Result<Outcome, MaterializeError> {
    if let Materialization::Custom(name) = &request.config.materialized {
        let written = request.materialization.ok_or_else(|| {
            MaterializeError::Internal(format!(
                "no macro was found for the materialization `{name}`"
            ))
        })?;
        return build_written(ctx, request, written).await;
    }
    for hook in request.pre_hooks {
        ctx.adapter.execute(hook).await?;
    }
    ensure_schema(ctx.adapter, request.relation).await?;
    let full_refresh = request.full_refresh && request.config.full_refresh != Some(false);
    match &request.config.materialized {
        Materialization::View => {
            let existing = ctx.catalog.kind(request.relation).await?;
            build_view(ctx, request, existing).await
        }
        Materialization::Table => {
            let existing = ctx.catalog.kind(request.relation).await?;
            build_table(ctx, request, existing).await
        }
        Materialization::Incremental
            if request.config.incremental_strategy == Some(IncrementalStrategy::Cdc) =>
        {
            let existing = ctx.catalog.relation(request.relation).await?;
            build_cdc(ctx, request, existing.as_ref(), full_refresh).await
        }
        Materialization::Incremental
            if request.config.incremental_strategy == Some(IncrementalStrategy::Microbatch) =>
        {
            microbatch::build(ctx, request, full_refresh).await
        }
        // Snapshots keep their history: `--full-refresh` does not rebuild them, as in dbt.
        Materialization::Snapshot => build_snapshot(ctx, request).await,
        Materialization::Incremental => {
            let kind = ctx.catalog.kind(request.relation).await?;
            if kind == Some(RelationKind::Table) && !full_refresh {
                let existing = ctx
                    .catalog
                    .relation(request.relation)
                    .await?
                    .ok_or_else(|| {
                        MaterializeError::Internal("the model's table vanished".into())
                    })?;
                build_incremental(ctx, request, &existing).await
            } else {
                build_table(ctx, request, kind).await
            }
        }
        other => Err(MaterializeError::Config(
            other.as_str().to_string(),
            "a materialization strata does not run yet".into(),
        )),
    }
}

/// Replaces `relation` with a table of `sql`'s rows (audit tables of stored test failures).
pub async fn replace_table(
    ctx: &Context<'_>,
    relation: &RelationName,
    sql: &str,
) -> Result<Outcome, MaterializeError> {
    ensure_schema(ctx.adapter, relation).await?;
    let existing = ctx.catalog.kind(relation).await?;
    let storage = Storage::plain();
    let request = Request {
        relation,
        config: &NodeConfig::resolve(&Default::default(), Materialization::Table)
            .map_err(|e| MaterializeError::Config("table".into(), e.message))?,
        config_map: &crate::project::ConfigMap::new(),
        sql,
        full_refresh: true,
        pre_hooks: &[],
        post_hooks: &[],
        records: &[],
        storage: &storage,
        late_binding: false,
        strategy: None,
        materialization: None,
    };
    build_table(ctx, &request, existing).await
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
    ctx: &Context<'_>,
    relation: &RelationName,
    comments: &[Comment],
) -> Result<(), MaterializeError> {
    let Some(info) = ctx.catalog.relation(relation).await? else {
        return Ok(());
    };
    let plan = plans::comments(
        ctx.adapter.flavour(),
        relation,
        info.kind,
        comments,
        &info.columns,
    );
    if !plan.blocks.is_empty() {
        ctx.run(plan).await?;
    }
    Ok(())
}

/// Reads a `grants:` config (privilege → a grantee or a list of them).
pub fn grants_config(
    config_map: &crate::project::ConfigMap,
) -> Result<Vec<(String, Vec<String>)>, MaterializeError> {
    let bad = || {
        MaterializeError::Settings(
            "`grants` maps privileges to grantees, e.g. `grants: {select: [\"reporter\"]}`".into(),
        )
    };
    match config_map.get("grants") {
        None | Some(serde_json::Value::Null) => Ok(Vec::new()),
        Some(serde_json::Value::Object(map)) => map
            .iter()
            .map(|(privilege, grantees)| {
                let names = match grantees {
                    serde_json::Value::String(one) => vec![one.clone()],
                    serde_json::Value::Array(many) => many
                        .iter()
                        .map(|g| g.as_str().map(str::to_string).ok_or_else(bad))
                        .collect::<Result<_, _>>()?,
                    serde_json::Value::Null => Vec::new(),
                    _ => return Err(bad()),
                };
                Ok((privilege.clone(), names))
            })
            .collect(),
        Some(_) => Err(bad()),
    }
}

/// Makes a built relation's privileges what its `grants:` config says, in one transaction,
/// where the warehouse has SQL grants; nothing without a `grants:` config.
pub async fn apply_grants(
    ctx: &Context<'_>,
    relation: &RelationName,
    config_map: &crate::project::ConfigMap,
) -> Result<(), MaterializeError> {
    let wanted = grants_config(config_map)?;
    let flavour = ctx.adapter.flavour();
    let Some(sql) = flavour.grants_sql(relation).filter(|_| !wanted.is_empty()) else {
        return Ok(());
    };
    let held = ctx.adapter.query(&sql).await?;
    let current: Vec<(String, String)> = held
        .rows
        .iter()
        .filter_map(|row| match (row.first(), row.get(1)) {
            (Some(Cell::Text(grantee)), Some(Cell::Text(privilege))) => {
                Some((grantee.clone(), privilege.clone()))
            }
            _ => None,
        })
        .collect();
    let plan = plans::grants(flavour, relation, &wanted, &current);
    if !plan.blocks.is_empty() {
        ctx.run(plan).await?;
    }
    Ok(())
}

fn csv_options(config_map: &crate::project::ConfigMap) -> CsvOptions {
    let single = |key: &str, default: char| {
        config_map
            .get(key)
            .and_then(|v| v.as_str())
            .and_then(|s| s.chars().next())
            .unwrap_or(default)
    };
    CsvOptions {
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
/// reads local files (DuckDB), by the adapter's bulk load (COPY) into a typed table, or by
/// inserts split to the warehouse's statement limit.
pub async fn load_seed(
    ctx: &Context<'_>,
    relation: &RelationName,
    path: &Path,
    config_map: &crate::project::ConfigMap,
    storage: &Storage,
) -> Result<Outcome, MaterializeError> {
    let flavour = ctx.adapter.flavour();
    let options = csv_options(config_map);
    let types = column_types(config_map);
    ensure_schema(ctx.adapter, relation).await?;
    let existing = ctx.catalog.kind(relation).await?;
    let request_relation = relation.clone();
    let dependents = if existing.is_some() && flavour.capabilities().views_bind_to_tables {
        ctx.adapter.recreate_dependent_views(relation).await?
    } else {
        Vec::new()
    };
    let build = Build {
        flavour,
        run: ctx.run,
        relation: &request_relation,
        storage,
        after: Vec::new(),
        dependents,
    };
    let typed = |inferred: Vec<crate::adapter::ColumnInfo>| -> Vec<ColumnDef> {
        inferred
            .iter()
            .map(|column| ColumnDef {
                name: column.name.clone(),
                data_type: types
                    .iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case(&column.name))
                    .map(|(_, ty)| ty.clone())
                    .unwrap_or_else(|| flavour.column_type_for(&column.data_type)),
            })
            .collect()
    };
    let infer = |path: std::path::PathBuf| async move {
        tokio::task::spawn_blocking(move || crate::local::infer_csv_columns(&path, &options))
            .await
            .map_err(|e| AdapterError::Internal(format!("CSV inference task failed: {e}")))?
    };
    // A small seed goes by inserts where a bulk load would first upload it (Redshift's COPY
    // from S3): one statement against an upload, a COPY and a removal.
    let small = |max: u64| std::fs::metadata(path).is_ok_and(|m| m.len() <= max);
    let load = match flavour.capabilities().seeds {
        SeedLoad::BulkLoad if flavour.limits().seed_insert_bytes.is_some_and(small) => {
            SeedLoad::InsertRows
        }
        other => other,
    };
    let (source, rows) = match load {
        SeedLoad::EngineReadsFile => {
            let select = flavour.csv_select(path, &options, &types).ok_or_else(|| {
                MaterializeError::Internal(format!(
                    "the {} flavour reads files but wrote no reader",
                    flavour.name()
                ))
            })?;
            (plans::SeedSource::Select(select), None)
        }
        SeedLoad::BulkLoad => {
            // The bundled DuckDB reads the file's shape; the warehouse parses the values, so a
            // value that does not fit is the warehouse's error, naming line and column.
            let columns = typed(infer(path.to_path_buf()).await?);
            let source = plans::SeedSource::File {
                path: path.to_path_buf(),
                options,
                columns,
            };
            (source, None)
        }
        SeedLoad::InsertRows => {
            let columns = typed(infer(path.to_path_buf()).await?);
            let owned = path.to_path_buf();
            let (_, text_rows) =
                tokio::task::spawn_blocking(move || crate::local::read_csv_text(&owned, &options))
                    .await
                    .map_err(|e| {
                        AdapterError::Internal(format!("CSV reader task failed: {e}"))
                    })??;
            let count = text_rows.len() as u64;
            let rows: Vec<Vec<Literal>> = text_rows
                .into_iter()
                .map(|row| {
                    row.into_iter()
                        .map(|v| v.map_or(Literal::Null, Literal::Text))
                        .collect()
                })
                .collect();
            (plans::SeedSource::Rows { columns, rows }, Some(count))
        }
    };
    let plan = plans::seed(&build, &source, existing);
    let executed = ctx.run(plan).await.map_err(|err| match &err {
        MaterializeError::Adapter(AdapterError::Database { message, .. }) => {
            match flavour.seed_value_error(message) {
                Some(bad) => MaterializeError::SeedValue {
                    line: bad.line,
                    column: bad.column,
                    value: bad.value,
                    detail: bad.detail,
                },
                None => err,
            }
        }
        _ => err,
    })?;
    let rows = rows.or(executed.rows);
    Ok(Outcome {
        batches: None,
        message: match rows {
            Some(n) => format!("INSERT {n}"),
            None => "INSERT".into(),
        },
        rows_affected: rows,
        warnings: executed.warnings,
    })
}

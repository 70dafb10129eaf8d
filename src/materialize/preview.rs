//! A node's plans without a connection: the stages a materialization would run, given what
//! the warehouse holds and what it would answer midway (an incremental model's new columns, the
//! partitions its new rows touch). The golden plan tests lower these for every warehouse; the
//! drivers in this module's parent make the same choices with a live catalog.

use crate::adapter::{ColumnInfo, Flavour, Lowered, RelationInfo, RelationKind};
use crate::plan::{Literal, Plan, Role, RunContext, StateWrite, Step};
use crate::project::config::{IncrementalStrategy, Materialization, NodeConfig};
use crate::project::ConfigMap;
use crate::relation::RelationName;
use crate::state::StateTables;

use super::plans::{self, Build, SeedSource};
use super::{cdc, snapshot, MaterializeError, Request};

/// A node and everything its plans depend on.
#[derive(Debug, Clone)]
pub struct Case {
    pub relation: RelationName,
    /// The node's merged config, as written (`materialized`, `unique_key`, `dist`, …).
    pub config: ConfigMap,
    /// The compiled SELECT (models).
    pub sql: String,
    /// What stands at the relation now.
    pub existing: Option<RelationInfo>,
    /// The columns of an incremental model's new rows.
    pub new_columns: Vec<ColumnInfo>,
    /// The partition values the new rows touch, where the warehouse bounds partitions per write.
    pub partitions: Option<Vec<Vec<Literal>>>,
    pub post_hooks: Vec<String>,
    pub records: Vec<StateWrite>,
    /// Views a `cascade` drop would remove, as the warehouse recreates them.
    pub dependents: Vec<String>,
    /// A seed: how its rows come.
    pub seed: Option<SeedSource>,
    /// Whether a CDC model's tombstones table exists.
    pub tombstones_exist: bool,
    pub full_refresh: bool,
    /// `persist_docs` comments, and the columns the built relation has.
    pub comments: Vec<super::Comment>,
    pub built_columns: Vec<ColumnInfo>,
    /// The privileges others hold on the relation now (grantee, privilege), for `grants:`.
    pub current_grants: Vec<(String, String)>,
}

/// One plan of a node's build, named for what it does.
#[derive(Debug, Clone)]
pub struct Stage {
    pub title: &'static str,
    pub plan: Plan,
}

/// The stages of a node's build on `flavour`, its records placed by `tables`.
pub fn stages(
    flavour: &dyn Flavour,
    tables: &StateTables,
    run: &RunContext,
    case: &Case,
) -> Result<Vec<Stage>, MaterializeError> {
    let config = NodeConfig::resolve(&case.config, Materialization::View)
        .map_err(|e| MaterializeError::Settings(e.message))?;
    let materialization = if case.seed.is_some() {
        Materialization::Seed
    } else {
        config.materialized.clone()
    };
    let storage = if materialization == Materialization::View {
        crate::plan::Storage::plain()
    } else {
        flavour
            .table_storage(&case.relation, &case.config)
            .map_err(|e| MaterializeError::Settings(e.to_string()))?
    };
    let late_binding = flavour
        .late_binding_view(&case.config)
        .map_err(|e| MaterializeError::Settings(e.to_string()))?;
    let request = Request {
        relation: &case.relation,
        config: &config,
        config_map: &case.config,
        sql: &case.sql,
        full_refresh: case.full_refresh,
        pre_hooks: &[],
        post_hooks: &case.post_hooks,
        records: &case.records,
        storage: &storage,
        late_binding,
        strategy: None,
        materialization: None,
    };
    let existing_kind = case.existing.as_ref().map(|e| e.kind);
    let build = |with_dependents: bool| Build {
        flavour,
        run,
        relation: &case.relation,
        storage: &storage,
        after: request.after_write(),
        dependents: if with_dependents && existing_kind.is_some() {
            case.dependents.clone()
        } else {
            Vec::new()
        },
    };
    let finish = |title: &'static str, plan: Plan| Stage {
        title,
        plan: super::bounds::bound(
            super::inline_records(
                |write| tables.placement(write, flavour.capabilities().batch_state_writes),
                plan,
            ),
            flavour,
        ),
    };
    let full_refresh = case.full_refresh && config.full_refresh != Some(false);
    let incremental_table = existing_kind == Some(RelationKind::Table) && !full_refresh;
    let mut stages = stages_of(
        &materialization,
        &config,
        &request,
        case,
        &build,
        &finish,
        incremental_table,
        flavour,
        tables,
    )?;
    if !case.comments.is_empty() && flavour.capabilities().comments {
        let kind = if materialization == Materialization::View {
            RelationKind::View
        } else {
            RelationKind::Table
        };
        let plan = plans::comments(
            flavour,
            &case.relation,
            kind,
            &case.comments,
            &case.built_columns,
        );
        stages.push(finish("persist docs", plan));
    }
    let grants = super::grants_config(&case.config)?;
    if !grants.is_empty() && flavour.grants_sql(&case.relation).is_some() {
        let plan = plans::grants(flavour, &case.relation, &grants, &case.current_grants);
        stages.push(finish("grants", plan));
    }
    Ok(stages)
}

#[expect(
    clippy::too_many_arguments,
    reason = "the preview's inputs, passed through"
)]
fn stages_of<'a>(
    materialization: &Materialization,
    config: &NodeConfig,
    request: &Request<'_>,
    case: &Case,
    build: &dyn Fn(bool) -> Build<'a>,
    finish: &dyn Fn(&'static str, Plan) -> Stage,
    incremental_table: bool,
    flavour: &dyn Flavour,
    tables: &StateTables,
) -> Result<Vec<Stage>, MaterializeError> {
    let existing_kind = case.existing.as_ref().map(|e| e.kind);
    let late_binding = request.late_binding;
    Ok(match materialization.clone() {
        Materialization::Seed => {
            let source = case
                .seed
                .as_ref()
                .ok_or_else(|| MaterializeError::Internal("a seed case without its rows".into()))?;
            vec![finish(
                "load",
                plans::seed(&build(true), source, existing_kind),
            )]
        }
        Materialization::View => vec![finish(
            "create",
            plans::view(&build(true), &case.sql, late_binding, existing_kind),
        )],
        Materialization::Table
            if flavour.limits().partitions_per_write.is_some()
                && !request.storage.partition_columns().is_empty() =>
        {
            let b = build(true);
            let (scratch, stage) = plans::new_rows(&b, &case.sql);
            let partitions = case.partitions.clone().unwrap_or_default();
            let plan = plans::table_from_scratch(
                &b,
                &scratch,
                &case.new_columns,
                &partitions,
                existing_kind,
            );
            vec![finish("build the rows once", stage), finish("build", plan)]
        }
        Materialization::Table => vec![finish(
            "build",
            plans::table(&build(true), &case.sql, existing_kind),
        )],
        Materialization::Incremental
            if config.incremental_strategy == Some(IncrementalStrategy::Cdc) =>
        {
            let columns = cdc::CdcColumns::from_request(request)?;
            cdc::supported(flavour, request.storage)?;
            let tombstones = tables.tombstones(&case.relation);
            if incremental_table {
                let b = build(false);
                let (new_rows, prepare) =
                    cdc::batch_prepare(&b, &case.sql, &columns, &tombstones, case.tombstones_exist);
                let existing = case
                    .existing
                    .as_ref()
                    .map(|e| e.columns.clone())
                    .unwrap_or_default();
                let apply = cdc::batch_apply(
                    &b,
                    &new_rows,
                    &case.new_columns,
                    &existing,
                    &columns,
                    &tombstones,
                );
                vec![finish("stage the batch", prepare), finish("apply", apply)]
            } else {
                let b = build(true);
                // A partitioned table copied in batches needs the warehouse's answer (which
                // partitions the rows touch): previews show the unbatched build.
                let (staged, staged_tombstones, prepare) =
                    cdc::full_prepare(&b, &case.sql, &columns, &tombstones, false);
                let swap = cdc::full_swap(
                    &b,
                    &staged,
                    &staged_tombstones,
                    &tombstones,
                    existing_kind,
                    case.tombstones_exist,
                );
                vec![finish("build aside", prepare), finish("swap", swap)]
            }
        }
        Materialization::Incremental if incremental_table => {
            let increment = super::increment_of(request)?;
            let b = build(false);
            let (new_rows, prepare) = plans::new_rows(&b, &case.sql);
            let existing = case
                .existing
                .as_ref()
                .map(|e| e.columns.clone())
                .unwrap_or_default();
            let partitions = match increment.strategy {
                IncrementalStrategy::InsertOverwrite
                    if flavour.limits().partitions_per_write.is_some() =>
                {
                    case.partitions.as_deref()
                }
                _ => None,
            };
            let apply = plans::apply_increment(
                &b,
                &new_rows,
                &existing,
                &case.new_columns,
                &increment,
                partitions,
            )?;
            vec![
                finish("stage the new rows", prepare),
                finish("apply", apply),
            ]
        }
        Materialization::Incremental => vec![finish(
            "build",
            plans::table(&build(true), &case.sql, existing_kind),
        )],
        Materialization::Snapshot => {
            let settings = snapshot::SnapshotSettings::from_request(request, flavour)?;
            let existing = case
                .existing
                .as_ref()
                .filter(|e| e.kind == RelationKind::Table);
            let Some(existing) = existing else {
                let first = snapshot::first_select(flavour, &settings, &case.sql);
                return Ok(vec![finish(
                    "build",
                    plans::table(&build(true), &first, existing_kind),
                )]);
            };
            // `new_columns` stand for the source query's columns.
            let b = build(false);
            let (source, prepare) = snapshot::stage_source(&b, &case.sql, &settings);
            let select = snapshot::staging_select(
                flavour,
                &settings,
                &source,
                &case.relation,
                &case.new_columns,
                &existing.columns,
            );
            let (staged, stage) = snapshot::stage_changes(&b, select, &source);
            let shape = snapshot::Shape::of(&settings, &case.new_columns, &existing.columns);
            let mut stages = vec![
                finish("stage the source rows", prepare),
                finish("stage the changes", stage),
            ];
            if flavour.can_delete_rows(request.storage) {
                let plan = snapshot::apply(&b, &settings, &staged, &source, &shape);
                stages.push(finish("apply", plan));
            } else {
                let b = build(true);
                let next =
                    snapshot::rebuild_select(&b, &settings, &staged, &existing.columns, &shape);
                stages.push(finish(
                    "rebuild",
                    plans::table(&b, &next, Some(RelationKind::Table)),
                ));
                stages.push(finish("clean up", snapshot::cleanup(&staged, &source)));
            }
            stages
        }
        other => {
            return Err(MaterializeError::Config(
                other.as_str().to_string(),
                "a materialization strata does not run yet".into(),
            ))
        }
    })
}

fn role(role: Role) -> &'static str {
    match role {
        Role::Prepare => "prepare",
        Role::Publish => "publish",
        Role::After => "after publishing",
        Role::Cleanup => "clean up",
    }
}

fn describe(write: &StateWrite) -> String {
    match write {
        StateWrite::ViewFingerprint { view, fingerprint } => {
            format!("view `{view}` stands as fingerprint {fingerprint}")
        }
        StateWrite::Files {
            relation,
            replace_all,
            files,
        } => format!(
            "`{relation}` read {} file(s){}",
            files.len(),
            if *replace_all {
                ", replacing what it read before"
            } else {
                ""
            }
        ),
        StateWrite::Batches {
            relation,
            replace_all,
            batches,
        } => format!(
            "`{relation}` built batch(es) {}{}",
            batches
                .iter()
                .map(|(start, end)| format!("[{start}, {end})"))
                .collect::<Vec<_>>()
                .join(", "),
            if *replace_all {
                ", replacing what was built before"
            } else {
                ""
            }
        ),
    }
}

/// A block's statements as the warehouse runs them.
pub fn lowered(flavour: &dyn Flavour, steps: &[Step]) -> Vec<Lowered> {
    steps.iter().flat_map(|s| flavour.lower(s)).collect()
}

/// The stages as text: each block with its role and whether it is one transaction, then its
/// statements; undo steps and the clean-up on failure after them.
pub fn render(flavour: &dyn Flavour, stages: &[Stage]) -> String {
    let mut out = String::new();
    for stage in stages {
        out.push_str(&format!("## {}\n", stage.title));
        for (i, block) in stage.plan.blocks.iter().enumerate() {
            let statements = lowered(flavour, &block.steps);
            let transaction = if block.transaction && statements.len() > 1 {
                ", one transaction"
            } else {
                ""
            };
            out.push_str(&format!(
                "-- block {}: {}{transaction}\n",
                i + 1,
                role(block.role)
            ));
            for statement in statements {
                out.push_str(&format!("{statement};\n"));
            }
            for step in &block.steps {
                if let Step::Record(write) = step {
                    out.push_str(&format!(
                        "-- recorded in strata's state in one batch as the run ends: {}\n",
                        describe(write)
                    ));
                }
            }
            if !block.undo.is_empty() {
                out.push_str("-- undo, if a later block fails:\n");
                for statement in lowered(flavour, &block.undo) {
                    out.push_str(&format!("--   {statement};\n"));
                }
            }
        }
        if !stage.plan.on_failure.is_empty() {
            out.push_str("-- on failure:\n");
            for statement in lowered(flavour, &stage.plan.on_failure) {
                out.push_str(&format!("--   {statement};\n"));
            }
        }
    }
    out
}

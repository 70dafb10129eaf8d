//! From a selection to the work a run does, before any model runs: connect and lock the
//! target, list the catalog of every schema the run touches (once each), open strata's state
//! (migrating what older versions left beside the models), repair what a killed run left
//! behind, stage landing files where the warehouse cannot read them, plan bookmarked models'
//! files, compile, resolve each node's storage and settings, and plan which views may be left
//! alone and which column tests share a scan.
//!
//! Errors are diagnostics for the CLI to print; nothing here prints but progress notes.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use super::{Job, ModelWork, SeedWork, Shared, TestWork, Work};
use crate::catalog::{Catalog, SchemaName};
use crate::compile::{CompileOptions, Compiled};
use crate::data_test::{SettingsError, TestSettings};
use crate::diagnostic::{Diagnostic, Location};
use crate::manifest::{Manifest, Node, NodeId, ResourceType};
use crate::materialize::view_state::ViewPlan;
use crate::output::Printer;
use crate::plan::RunContext;
use crate::project::config::{Bookmark, Materialization};
use crate::project::Project;
use crate::relation::RelationName;
use crate::state::{StateLocation, StateStore, WarehouseState};
use crate::template::Engine;

/// What a run works from.
#[derive(Clone, Copy)]
pub struct Inputs<'a> {
    pub project: &'a Project,
    pub manifest: &'a Manifest,
    /// Shared with the run's tasks, which render the macros a model's build calls.
    pub engine: &'a Arc<Engine>,
    pub printer: &'a Printer,
}

/// How a run was asked to go.
#[derive(Debug, Clone, Default)]
pub struct Choices {
    pub full_refresh: bool,
    /// A connection to run on instead of connecting to the target (tests run on
    /// `adapter::testing::TestWarehouse`).
    pub adapter: Option<Arc<dyn crate::adapter::Adapter>>,
    /// Share one scan among column tests of a relation: `Some(true)` always, `Some(false)`
    /// never, `None` where the warehouse says it pays.
    pub batch_tests: Option<bool>,
    /// Refs to unselected nodes read another run's relations (`--defer`).
    pub defer: Option<Deferral>,
    /// The window microbatch models build (`--event-time-start`/`--event-time-end`).
    pub event_time_start: Option<chrono::DateTime<chrono::Utc>>,
    pub event_time_end: Option<chrono::DateTime<chrono::Utc>>,
    /// A retry's failed batches, by microbatch model.
    pub retry_batches: HashMap<NodeId, Vec<crate::materialize::microbatch::Batch>>,
}

/// `--defer`: where unselected nodes stood in the `--state` run.
#[derive(Debug, Clone, Default)]
pub struct Deferral {
    /// Each node of that run and its relation there.
    pub relations: HashMap<NodeId, RelationName>,
    /// Read from there even where the current target has the relation (`--favor-state`).
    pub always: bool,
}

/// Why a run stopped before running any node: what to print.
#[derive(Debug)]
pub struct Stopped {
    pub diagnostics: Vec<Diagnostic>,
    /// A closing line, when one helps ("strata stopped before running anything").
    pub note: Option<&'static str>,
}

impl Stopped {
    fn one(diagnostic: Diagnostic) -> Stopped {
        Stopped {
            diagnostics: vec![diagnostic],
            note: None,
        }
    }

    fn before(diagnostics: Vec<Diagnostic>) -> Stopped {
        Stopped {
            diagnostics,
            note: Some("strata stopped before running anything: fix the errors above"),
        }
    }
}

/// A run ready to go.
pub struct Prepared {
    pub shared: Shared,
    pub work: Vec<Work>,
    pub compiled: Compiled,
    /// Warnings of the compile and of the file plans, to print before the run.
    pub warnings: Vec<Diagnostic>,
    pub run_start_hooks: Vec<String>,
    pub run_end_hooks: Vec<String>,
    /// Unselected parents whose refs read the `--state` run's relations.
    pub deferred: HashMap<NodeId, RelationName>,
}

fn adapter_error(err: &crate::adapter::AdapterError) -> Diagnostic {
    Diagnostic::error(err.to_string()).with_hint_opt(err.hint())
}

/// Where strata's state lives for a project's target.
pub fn state_location(project: &Project) -> StateLocation {
    StateLocation {
        database: Some(project.target.database.clone()),
        schema: project
            .target
            .state_schema
            .clone()
            .unwrap_or_else(|| format!("{}_strata", project.target.schema)),
    }
}

/// Connects, lists, repairs, stages, plans and compiles: everything before the first node.
pub async fn prepare(
    inputs: Inputs<'_>,
    selected: &[NodeId],
    choices: &Choices,
) -> Result<Prepared, Stopped> {
    let Inputs {
        project,
        manifest,
        engine,
        printer,
    } = inputs;
    let runnable: Vec<&Node> = selected
        .iter()
        .filter_map(|id| manifest.get(id))
        .filter(|n| match n.resource_type {
            ResourceType::Seed | ResourceType::Snapshot => true,
            ResourceType::Model => n.config.materialized != Materialization::Ephemeral,
            ResourceType::Test | ResourceType::UnitTest => n.config.enabled,
            _ => false,
        })
        .collect();
    let base = match &choices.adapter {
        Some(adapter) => adapter.clone(),
        None => crate::adapter::connect(&project.target)
            .await
            .map_err(|e| Stopped::one(adapter_error(&e)))?,
    };
    base.lock_target()
        .await
        .map_err(|e| Stopped::one(adapter_error(&e)))?;
    let adapter: Arc<dyn crate::adapter::Adapter> = Arc::new(super::Counted(base));
    engine.attach_warehouse(Arc::new(super::introspect::Introspection::new(
        adapter.clone(),
        tokio::runtime::Handle::current(),
    )));
    let flavour = adapter.flavour();
    let run = Arc::new(RunContext {
        run_id: uuid::Uuid::new_v4().simple().to_string()[..8].to_string(),
        full_refresh: choices.full_refresh,
        started_at: engine.shared().run_started_at,
        event_time_start: choices.event_time_start,
        event_time_end: choices.event_time_end,
        retry_batches: choices
            .retry_batches
            .iter()
            .filter_map(|(id, batches)| {
                let relation = manifest.get(id)?.relation.clone()?;
                Some((relation, batches.clone()))
            })
            .collect(),
    });
    let catalog = Arc::new(Catalog::new(adapter.clone()));
    let location = state_location(project);
    let state = Arc::new(WarehouseState::new(
        adapter.clone(),
        location.clone(),
        flavour.capabilities().batch_state_writes,
        engine.shared().run_started_at,
    ));

    // One catalog read per schema the run touches.
    let mut schemas: BTreeSet<SchemaName> = BTreeSet::new();
    let mut known_live = Vec::new();
    for node in &runnable {
        if node.resource_type == ResourceType::Test {
            continue;
        }
        if let Some(relation) = &node.relation {
            schemas.insert(SchemaName::of(relation));
            known_live.push(relation.clone());
        }
    }
    let staged_sources = if flavour.capabilities().reads_local_files {
        BTreeSet::new()
    } else {
        external_sources_read(manifest, &runnable)
    };
    for id in &staged_sources {
        if let Some(relation) = manifest.get(id).and_then(|n| n.relation.as_ref()) {
            schemas.insert(SchemaName::of(relation));
        }
    }
    schemas.insert(location.schema_name());
    catalog
        .list(schemas.iter().cloned())
        .await
        .map_err(|e| Stopped::one(adapter_error(&e)))?;
    let moved = state.open(&catalog).await.map_err(|e| {
        Stopped::one(adapter_error(&e).with_hint(format!(
            "strata keeps its state in schema `{}`; set the target's `state_schema` to use another",
            location.schema
        )))
    })?;
    for what in moved {
        printer.info(&format!(
            "moved the {what} into strata's state schema `{}`",
            location.schema
        ));
    }
    repair(
        &catalog,
        state.as_ref(),
        &run,
        &schemas,
        &known_live,
        printer,
    )
    .await?;

    let shared = Shared {
        adapter: adapter.clone(),
        catalog: catalog.clone(),
        state: state.clone(),
        run: run.clone(),
    };
    let ctx = shared.context();

    // An incremental model renders its incremental branch only when its table exists.
    let mut incremental = HashSet::new();
    if !choices.full_refresh {
        for node in runnable
            .iter()
            .filter(|n| n.config.materialized == Materialization::Incremental)
        {
            if let Some(relation) = &node.relation {
                let kind = catalog
                    .kind(relation)
                    .await
                    .map_err(|e| Stopped::one(adapter_error(&e)))?;
                if kind == Some(crate::adapter::RelationKind::Table) {
                    incremental.insert(node.unique_id.clone());
                }
            }
        }
    }
    let deferred = match &choices.defer {
        None => HashMap::new(),
        Some(deferral) => deferred_parents(manifest, selected, Some(&catalog), deferral)
            .await
            .map_err(|e| Stopped::one(adapter_error(&e)))?,
    };
    if !deferred.is_empty() {
        let mut names: Vec<String> = deferred
            .iter()
            .filter_map(|(id, relation)| Some(format!("{} ({relation})", manifest.get(id)?.name)))
            .collect();
        names.sort();
        printer.info(&format!(
            "--defer: {} unselected parent(s) read from the --state run: {}",
            names.len(),
            names.join(", ")
        ));
    }
    let mut listings = crate::landing::Listings::default();
    if !staged_sources.is_empty() {
        stage_landing(
            project,
            manifest,
            &ctx,
            &staged_sources,
            &mut listings,
            choices.full_refresh,
            printer,
        )
        .await
        .map_err(|d| Stopped {
            diagnostics: vec![d],
            note: Some("strata stopped before running any model: fix the error above"),
        })?;
    }
    let (mut planned, mut warnings) = plan_files(
        project,
        manifest,
        &ctx,
        &runnable,
        &incremental,
        &mut listings,
    )
    .await
    .map_err(Stopped::before)?;
    // Nodes whose templates may ask the warehouse are compiled right before they run, once
    // what they ask about is built; the rest all at once, here.
    let models: Vec<NodeId> = runnable
        .iter()
        .filter(|n| {
            matches!(
                n.resource_type,
                ResourceType::Model | ResourceType::Snapshot | ResourceType::Test
            )
        })
        .filter(|n| !n.compile_late)
        .map(|n| n.unique_id.clone())
        .collect();
    let options = CompileOptions {
        write: true,
        incremental: incremental.clone(),
        files: planned
            .iter()
            .map(|(id, plan)| (id.clone(), plan.files.clone()))
            .collect(),
        reference: false,
        deferred: deferred.clone(),
    };
    let compiled = crate::compile::compile(project, manifest, engine, &models, &options)
        .map_err(|d| Stopped::before(d.sorted()))?;
    crate::compile::write_files(project, &compiled).map_err(|d| Stopped::before(d.sorted()))?;
    warnings.extend(compiled.warnings.iter().cloned());

    // Each node's storage and settings, resolved before anything runs.
    let mut errors = Vec::new();
    let mut work = Vec::with_capacity(runnable.len());
    let resolver = crate::compile::deferring_resolver(project, manifest, &deferred);
    for node in &runnable {
        let built = compiled.nodes.get(&node.unique_id);
        let job = match node.resource_type {
            ResourceType::UnitTest => Job::Unit(super::UnitTestWork::default()),
            ResourceType::Test => {
                let settings = test_settings(project, node);
                Job::Test(TestWork {
                    sql: built.map(|c| c.sql.clone()).unwrap_or_default(),
                    settings,
                    batch: None,
                })
            }
            ResourceType::Seed => {
                let Some(relation) = node.relation.clone() else {
                    continue;
                };
                let storage = match crate::compile::storage_of(flavour, node) {
                    Ok((storage, _)) => storage,
                    Err(diagnostic) => {
                        errors.push(diagnostic);
                        continue;
                    }
                };
                Job::Seed(SeedWork {
                    relation,
                    config_map: node.config_map.clone(),
                    path: project.root.join(&node.original_file_path),
                    storage,
                })
            }
            _ => {
                let Some(relation) = node.relation.clone() else {
                    continue;
                };
                let (storage, late_binding) = match crate::compile::storage_of(flavour, node) {
                    Ok(resolved) => resolved,
                    Err(diagnostic) => {
                        errors.push(diagnostic);
                        continue;
                    }
                };
                Job::Model(Box::new(ModelWork {
                    relation,
                    config: node.config.clone(),
                    config_map: node.config_map.clone(),
                    sql: built.map(|c| c.sql.clone()).unwrap_or_default(),
                    pre_hooks: built.map(|c| c.pre_hooks.clone()).unwrap_or_default(),
                    post_hooks: built.map(|c| c.post_hooks.clone()).unwrap_or_default(),
                    comments: if flavour.capabilities().comments {
                        persist_docs(engine, node)
                    } else {
                        Vec::new()
                    },
                    files: planned.remove(&node.unique_id),
                    view: None,
                    strategy: written_strategy(project, engine, &resolver, node),
                    materialization: written_materialization(project, engine, &resolver, node),
                    storage,
                    late_binding,
                }))
            }
        };
        let label = match (&job, &node.relation) {
            (Job::Test(_) | Job::Unit(_), _) | (_, None) => node.name.clone(),
            (_, Some(relation)) => format!("{}.{}", relation.schema, relation.identifier),
        };
        let late = (node.compile_late
            && matches!(
                node.resource_type,
                ResourceType::Model
                    | ResourceType::Snapshot
                    | ResourceType::Test
                    | ResourceType::UnitTest
            ))
        .then(|| super::Late {
            incremental: incremental.contains(&node.unique_id),
        });
        work.push(Work {
            unique_id: node.unique_id.clone(),
            label,
            job,
            late,
        });
    }
    if !errors.is_empty() {
        return Err(Stopped::before(errors));
    }
    let run_start_hooks =
        render_project_hooks(project, manifest, engine, "on-run-start").map_err(Stopped::one)?;
    let run_end_hooks =
        render_project_hooks(project, manifest, engine, "on-run-end").map_err(Stopped::one)?;
    plan_views(&ctx, &project.target.schema, &compiled, &mut work, printer).await;
    let batch = choices
        .batch_tests
        .unwrap_or(flavour.capabilities().batch_column_tests);
    if batch {
        crate::data_test::plan_batches(
            manifest,
            &mut work,
            &flavour.quote_style(crate::adapter::StatementKind::Dml),
        );
    }
    Ok(Prepared {
        shared,
        work,
        compiled,
        warnings,
        run_start_hooks,
        run_end_hooks,
        deferred,
    })
}

/// Repairs what killed runs left in the run's schemas (state schema included).
async fn repair(
    catalog: &Catalog,
    state: &dyn StateStore,
    run: &RunContext,
    schemas: &BTreeSet<SchemaName>,
    known: &[RelationName],
    printer: &Printer,
) -> Result<(), Stopped> {
    let adapter = catalog.adapter().as_ref();
    for schema in schemas {
        let relations = catalog.relations_in(schema);
        for repair in
            crate::materialize::repair::repairs(adapter.flavour(), &relations, &run.run_id, known)
        {
            crate::materialize::execute::run_plan(adapter, catalog, state, &repair.plan)
                .await
                .map_err(|err| {
                    Stopped::one(
                        Diagnostic::error(format!("cannot repair what an earlier run left: {err}"))
                            .with_hint(format!("strata tried this: {}", repair.message)),
                    )
                })?;
            printer.info(&format!("repaired: {}", repair.message));
        }
    }
    Ok(())
}

/// The external sources the selected models read, directly or through views.
fn external_sources_read(manifest: &Manifest, runnable: &[&Node]) -> BTreeSet<NodeId> {
    let mut sources = BTreeSet::new();
    for node in runnable
        .iter()
        .filter(|n| n.resource_type == ResourceType::Model)
    {
        sources.extend(crate::landing::reach(manifest, node).sources);
    }
    sources
}

/// Gives each view of the run its fingerprint check, so a view that stands as this run would
/// create it is left alone. Views with hooks are always re-created (their hooks run every
/// time). When the recorded fingerprints cannot be read, views are re-created, with a warning.
async fn plan_views(
    ctx: &crate::materialize::Context<'_>,
    target_schema: &str,
    compiled: &Compiled,
    work: &mut [Work],
    printer: &Printer,
) {
    let views: Vec<usize> = work
        .iter()
        .enumerate()
        .filter(|(_, w)| match &w.job {
            Job::Model(m) => {
                m.config.materialized == Materialization::View
                    && m.pre_hooks.is_empty()
                    && m.post_hooks.is_empty()
            }
            _ => false,
        })
        .map(|(i, _)| i)
        .collect();
    if views.is_empty() {
        return;
    }
    let recorded = match ctx.state.view_fingerprints().await {
        Ok(recorded) => recorded,
        Err(err) => {
            printer.diagnostic(
                &Diagnostic::warning(format!("cannot read the view fingerprints: {err}"))
                    .with_hint("views are re-created on every run until they can be read"),
            );
            return;
        }
    };
    // Fingerprints are written as the run ends: mark the run in flight first, so a run that
    // dies in between leaves its views to be re-created rather than trusted.
    if let Err(err) = ctx.state.begin_views().await {
        printer.diagnostic(
            &Diagnostic::warning(format!("cannot mark the views' fingerprints: {err}"))
                .with_hint("views are re-created on every run until it can"),
        );
        return;
    }
    let late = ctx.adapter.flavour().capabilities().late_binding_views;
    for index in views {
        let unique_id = work[index].unique_id.clone();
        let Job::Model(model) = &mut work[index].job else {
            continue;
        };
        let Some(node) = compiled.nodes.get(&unique_id) else {
            continue;
        };
        let inputs = if late || model.late_binding {
            Vec::new()
        } else {
            let mut inputs =
                crate::materialize::view_state::read_relations(&node.relations_read, target_schema);
            inputs.retain(|r| {
                r.schema != model.relation.schema || r.identifier != model.relation.identifier
            });
            inputs
        };
        model.view = Some(ViewPlan::new(
            &model.relation,
            &model.sql,
            &model.comments,
            inputs,
            recorded.get(&model.relation).cloned(),
        ));
    }
}

/// Loads the new landing files of every external source the selected models read into the
/// source's raw table, for warehouses that do not read local files (PostgreSQL stages them
/// with COPY). Each source loads in one transaction with the record of its files.
async fn stage_landing(
    project: &Project,
    manifest: &Manifest,
    ctx: &crate::materialize::Context<'_>,
    sources: &BTreeSet<NodeId>,
    listings: &mut crate::landing::Listings,
    full_refresh: bool,
    printer: &Printer,
) -> Result<(), Diagnostic> {
    use crate::landing;
    let relations: Vec<RelationName> = sources
        .iter()
        .filter_map(|id| manifest.get(id)?.relation.clone())
        .collect();
    let recorded = ctx
        .state
        .files(&relations)
        .await
        .map_err(|e| adapter_error(&e))?;
    for id in sources {
        let Some(node) = manifest.get(id) else {
            continue;
        };
        let at = |message: String, hint: Option<String>| {
            Diagnostic::error(message)
                .at_file(node.original_file_path.clone())
                .with_hint_opt(hint)
        };
        let external =
            landing::external_sources(manifest, std::slice::from_ref(id)).map_err(|err| {
                let diagnostic = at(err.to_string(), err.hint());
                match spec_location(project, &err) {
                    Some(location) => diagnostic.at(location),
                    None => diagnostic,
                }
            })?;
        let (Some(relation), Some(source)) = (&node.relation, external.first()) else {
            continue;
        };
        if source.external.is_remote() {
            let location = &source.external.location;
            let listed = ctx
                .adapter
                .list_remote(location)
                .await
                .map_err(|e| adapter_error(&e))?
                .ok_or_else(|| {
                    at(
                        format!(
                            "source `{}.{}`: the {} target cannot read files at `{location}`",
                            source.source_name,
                            source.table,
                            ctx.adapter.flavour().name()
                        ),
                        Some("remote landing locations (s3://…) are read on Athena targets; elsewhere use a local path".into()),
                    )
                })?;
            listings.insert(
                location,
                listed
                    .into_iter()
                    .map(|(path, size)| landing::LandingFile { path, size })
                    .collect(),
            );
        }
        let exists = ctx
            .catalog
            .kind(relation)
            .await
            .map_err(|e| adapter_error(&e))?
            .is_some();
        let plan = landing::plan_stage(
            &project.root,
            listings,
            source,
            relation,
            exists,
            recorded.get(relation),
            full_refresh,
        )
        .map_err(|err| at(err.to_string(), err.hint()))?;
        let outcome = crate::materialize::stage_files(ctx, &plan)
            .await
            .map_err(|err| {
                at(
                    format!(
                        "cannot load the files of `{}.{}` into `{}`: {err}",
                        source.source_name,
                        source.table,
                        relation.dotted()
                    ),
                    err.hint(),
                )
            })?;
        printer.info(&format!(
            "staged {}.{} into {}: {}",
            source.source_name,
            source.table,
            relation.dotted(),
            outcome.message
        ));
    }
    Ok(())
}

/// Where an unusable `external:` block is: the line of its table's entry in the YAML file.
fn spec_location(project: &Project, err: &crate::landing::LandingError) -> Option<Location> {
    let crate::landing::LandingError::Spec { table, path, .. } = err else {
        return None;
    };
    let line = std::fs::read_to_string(project.root.join(path))
        .ok()
        .and_then(|text| crate::project::yaml::entry_line(&text, table));
    Some(match line {
        Some(line) => Location::at(path.clone(), line, None),
        None => Location::file(path.clone()),
    })
}

/// Bookmarked models' files, and warnings about them.
type PlannedFiles = (HashMap<NodeId, crate::landing::ModelFiles>, Vec<Diagnostic>);

/// Lists the landing files of every selected model with `bookmark: files` and, for those that
/// build incrementally, leaves out the files their state records. Errors name the model or the
/// source's YAML file.
async fn plan_files(
    project: &Project,
    manifest: &Manifest,
    ctx: &crate::materialize::Context<'_>,
    runnable: &[&Node],
    incremental: &HashSet<NodeId>,
    listings: &mut crate::landing::Listings,
) -> Result<PlannedFiles, Vec<Diagnostic>> {
    use crate::landing;
    let bookmarked: Vec<&&Node> = runnable
        .iter()
        .filter(|n| n.config.bookmark == Some(Bookmark::Files))
        .collect();
    let mut planned = HashMap::new();
    let mut errors = Vec::new();
    if bookmarked.is_empty() {
        return Ok((planned, errors));
    }
    let relations: Vec<RelationName> = bookmarked
        .iter()
        .filter(|n| incremental.contains(&n.unique_id))
        .filter_map(|n| n.relation.clone())
        .collect();
    let recorded = ctx.state.files(&relations).await.map_err(|err| {
        vec![
            Diagnostic::error(format!("cannot read the file bookmarks: {err}"))
                .with_hint_opt(err.hint()),
        ]
    })?;
    let none = HashMap::new();
    for node in bookmarked {
        let Some(relation) = &node.relation else {
            continue;
        };
        let reach = landing::reach(manifest, node);
        if reach.sources.is_empty() {
            errors.push(
                Diagnostic::error(format!(
                    "model `{}` has `bookmark: files` but reads no external source",
                    node.name
                ))
                .at_file(node.original_file_path.clone())
                .with_hint("declare the landing files as a source with `external: {location, format}` and read it with source(), directly or through views"),
            );
            continue;
        }
        let planned_model =
            landing::external_sources(manifest, &reach.sources).and_then(|sources| {
                landing::plan_model(
                    &project.root,
                    listings,
                    relation,
                    &sources,
                    incremental.contains(&node.unique_id),
                    recorded.get(relation).unwrap_or(&none),
                )
            });
        match planned_model {
            Ok(plan) => {
                for path in &plan.changed {
                    errors.push(
                        Diagnostic::warning(format!(
                            "`{path}` changed since model `{}` read it; reading it again",
                            node.name
                        ))
                        .with_hint("landing files are expected never to change once written; check what rewrote it"),
                    );
                }
                planned.insert(node.unique_id.clone(), plan);
            }
            Err(err) => {
                let mut diagnostic = Diagnostic::error(format!("model `{}`: {err}", node.name))
                    .with_hint_opt(err.hint());
                diagnostic = match spec_location(project, &err) {
                    Some(location) => diagnostic.at(location),
                    None => diagnostic.at_file(node.original_file_path.clone()),
                };
                errors.push(diagnostic);
            }
        }
    }
    if errors.iter().any(Diagnostic::is_error) {
        return Err(errors);
    }
    Ok((planned, errors))
}

/// The unselected nodes the selection reads (through ephemeral models too) whose refs read
/// the `--state` run's relation: every one that run had, with `--favor-state`; else those the
/// current target (`catalog`, needed then) does not have.
pub async fn deferred_parents(
    manifest: &Manifest,
    selected: &[NodeId],
    catalog: Option<&Catalog>,
    deferral: &Deferral,
) -> Result<HashMap<NodeId, RelationName>, crate::adapter::AdapterError> {
    let chosen: HashSet<&NodeId> = selected.iter().collect();
    let mut parents: BTreeSet<&NodeId> = BTreeSet::new();
    let mut stack: Vec<&NodeId> = selected.iter().collect();
    let mut seen: HashSet<&NodeId> = HashSet::new();
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        let Some(node) = manifest.get(id) else {
            continue;
        };
        for parent in &node.depends_on {
            let Some(parent_node) = manifest.get(parent) else {
                continue;
            };
            if parent_node.is_ephemeral() {
                stack.push(parent);
            } else if !chosen.contains(parent)
                && matches!(
                    parent_node.resource_type,
                    ResourceType::Model | ResourceType::Seed | ResourceType::Snapshot
                )
            {
                parents.insert(parent);
            }
        }
    }
    let mut deferred = HashMap::new();
    for id in parents {
        let (Some(there), Some(node)) = (deferral.relations.get(id), manifest.get(id)) else {
            continue;
        };
        let defer = match (&node.relation, catalog) {
            _ if deferral.always => true,
            (Some(here), Some(catalog)) => catalog.kind(here).await?.is_none(),
            _ => true,
        };
        if defer {
            deferred.insert(id.clone(), there.clone());
        }
    }
    Ok(deferred)
}

/// `on-run-start` / `on-run-end` from the project file (a string or a list), rendered with the
/// project's macros, `target` and `var`.
fn render_project_hooks(
    project: &Project,
    manifest: &Manifest,
    engine: &Engine,
    key: &str,
) -> Result<Vec<String>, Diagnostic> {
    let value = match key {
        "on-run-start" => &project.file.on_run_start,
        _ => &project.file.on_run_end,
    };
    let hooks: Vec<String> = match value {
        serde_json::Value::String(s) => vec![s.clone()],
        serde_json::Value::Array(items) => items
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect(),
        _ => Vec::new(),
    };
    let mut rendered = Vec::new();
    for (i, hook) in hooks.iter().enumerate() {
        let name = format!("{} ({key} {})", project.project_file.display(), i + 1);
        let (sql, _) = engine
            .render(
                &name,
                hook,
                crate::template::NodeInfo::default(),
                crate::template::Phase::Compile,
                Some(crate::compile::resolver(project, manifest)),
            )
            .map_err(|err| {
                err.to_diagnostic(&project.root, Some(&format!("the `{key}` hook")))
                    .at_file(project.project_file.clone())
            })?;
        if !sql.trim().is_empty() {
            rendered.push(sql);
        }
    }
    Ok(rendered)
}

/// The descriptions to store as comments for a node whose `persist_docs` config asks for them
/// (`relation: true`, `columns: true`), as dbt does; `doc()` blocks are rendered.
fn persist_docs(engine: &Engine, node: &Node) -> Vec<crate::materialize::Comment> {
    use crate::materialize::Comment;
    let Some(serde_json::Value::Object(wanted)) = node.config_map.get("persist_docs") else {
        return Vec::new();
    };
    let on = |key: &str| wanted.get(key).and_then(serde_json::Value::as_bool) == Some(true);
    let render = |text: &str| -> Option<String> {
        let text = if text.contains("{{") {
            engine
                .render(
                    "<description>",
                    text,
                    node.node_info(),
                    crate::template::Phase::Compile,
                    None,
                )
                .map(|(rendered, _)| rendered)
                .unwrap_or_else(|_| text.to_string())
        } else {
            text.to_string()
        };
        let text = text.trim().to_string();
        (!text.is_empty()).then_some(text)
    };
    let mut comments = Vec::new();
    if on("relation") {
        if let Some(text) = render(&node.description) {
            comments.push(Comment { column: None, text });
        }
    }
    if on("columns") {
        for column in node.columns.values() {
            if let Some(text) = render(&column.description) {
                comments.push(Comment {
                    column: Some(column.name.clone()),
                    text,
                });
            }
        }
    }
    comments
}

/// Where a test's failing rows are stored: `<target schema>_dbt_test__audit.<test name>` as in
/// dbt, or `<target schema>_<schema>` when the test configures a `schema`.
pub fn audit_relation(project: &Project, node: &Node) -> RelationName {
    let suffix = node.config.schema.as_deref().unwrap_or("dbt_test__audit");
    RelationName::new(
        Some(project.target.database.clone()),
        format!("{}_{suffix}", project.target.schema),
        node.name.clone(),
    )
}

fn test_settings(project: &Project, node: &Node) -> Result<TestSettings, SettingsError> {
    TestSettings::from_config(
        &node.config_map,
        node.config.severity,
        audit_relation(project, node),
    )
}

/// The strategy macro an incremental model's build calls, when a macro of the project writes
/// its strategy (see `template::written`).
fn written_strategy(
    project: &Project,
    engine: &Arc<Engine>,
    resolver: &Arc<dyn crate::template::context::Resolver>,
    node: &Node,
) -> Option<Arc<dyn crate::materialize::WrittenStrategy>> {
    use crate::project::config::IncrementalStrategy;
    if node.config.materialized != Materialization::Incremental {
        return None;
    }
    let strategy = node.config.incremental_strategy.as_ref();
    if matches!(
        strategy,
        Some(IncrementalStrategy::Cdc | IncrementalStrategy::Microbatch)
    ) {
        return None;
    }
    let macro_name = engine.written_strategy(strategy.map(IncrementalStrategy::as_str))?;
    let mut info = node.node_info();
    info.config = node.config_map.clone();
    info.is_incremental = true;
    Some(Arc::new(super::written::TemplateStrategy {
        engine: engine.clone(),
        node: info,
        macro_name,
        resolver: resolver.clone(),
        root: project.root.clone(),
    }))
}

/// The macro of a model's custom materialization, as the materialize room calls it.
fn written_materialization(
    project: &Project,
    engine: &Arc<Engine>,
    resolver: &Arc<dyn crate::template::context::Resolver>,
    node: &Node,
) -> Option<Arc<dyn crate::materialize::WrittenMaterialization>> {
    let Materialization::Custom(name) = &node.config.materialized else {
        return None;
    };
    let macro_name = engine.materialization_macro(&node.package_name, name)?;
    Some(Arc::new(super::written::TemplateMaterialization {
        engine: engine.clone(),
        node: node.node_info(),
        macro_name,
        resolver: resolver.clone(),
        root: project.root.clone(),
    }))
}

/// Compiles one node right before it runs (see [`Work::late`]) and puts its SQL into its work.
fn compile_late(
    project: &Project,
    manifest: &Manifest,
    engine: &Engine,
    deferred: &HashMap<NodeId, RelationName>,
    work: &mut Work,
) -> Result<crate::compile::CompiledNode, String> {
    // Its schema exists before its templates run, as dbt creates every schema of a run first:
    // a statement of the template may write into it.
    if let (Job::Model(model), Some(warehouse)) = (&work.job, engine.shared().warehouse.get()) {
        warehouse
            .create_schema(model.relation.database.as_deref(), &model.relation.schema)
            .map_err(|e| format!("cannot create schema `{}`: {e}", model.relation.schema))?;
    }
    let incremental = work.late.as_ref().is_some_and(|l| l.incremental);
    let options = CompileOptions {
        write: true,
        incremental: if incremental {
            [work.unique_id.clone()].into_iter().collect()
        } else {
            HashSet::new()
        },
        files: Default::default(),
        reference: false,
        deferred: deferred.clone(),
    };
    let describe = |d: &Diagnostic| match &d.location {
        Some(at) => format!("{} ({at})", d.message),
        None => d.message.clone(),
    };
    let mut compiled = crate::compile::compile(
        project,
        manifest,
        engine,
        std::slice::from_ref(&work.unique_id),
        &options,
    )
    .map_err(|d| {
        d.sorted()
            .iter()
            .filter(|d| d.is_error())
            .map(describe)
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    if let Err(d) = crate::compile::write_files(project, &compiled) {
        return Err(d
            .sorted()
            .iter()
            .map(describe)
            .collect::<Vec<_>>()
            .join("; "));
    }
    let node = compiled
        .nodes
        .shift_remove(&work.unique_id)
        .ok_or_else(|| format!("`{}` did not compile", work.label))?;
    match &mut work.job {
        Job::Model(model) => {
            model.sql = node.sql.clone();
            model.pre_hooks = node.pre_hooks.clone();
            model.post_hooks = node.post_hooks.clone();
        }
        Job::Test(test) => test.sql = node.sql.clone(),
        Job::Unit(unit) => unit.sql = node.sql.clone(),
        Job::Seed(_) => {}
    }
    Ok(node)
}

/// What a run did.
pub struct Finished {
    pub results: Vec<super::NodeResult>,
    pub compiled: Compiled,
    /// An `on-run-end` hook failed, or strata's state could not be written.
    pub end_hook_failed: bool,
}

/// Runs the project's `on-run-start` hooks, then the nodes, then `on-run-end`, and writes what
/// strata's state held back.
pub async fn run(
    inputs: Inputs<'_>,
    graph: &crate::graph::Graph,
    prepared: Prepared,
    options: &super::RunOptions,
) -> Result<Finished, Stopped> {
    let Prepared {
        shared,
        work,
        mut compiled,
        run_start_hooks,
        run_end_hooks,
        deferred,
        ..
    } = prepared;
    let compiled_late: std::sync::Mutex<Vec<crate::compile::CompiledNode>> = Default::default();
    let late = |work: &mut Work| -> Result<(), String> {
        let node = compile_late(
            inputs.project,
            inputs.manifest,
            inputs.engine,
            &deferred,
            work,
        )?;
        compiled_late
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(node);
        Ok(())
    };
    let project = inputs.project;
    for hook in &run_start_hooks {
        if let Err(err) = shared.adapter.execute(hook).await {
            return Err(Stopped::one(
                Diagnostic::error(format!("`on-run-start` hook failed: {err}"))
                    .at_file(project.project_file.clone())
                    .with_hint("nothing was built; fix the hook or the SQL it runs"),
            ));
        }
    }
    let results = super::execute(
        inputs.manifest,
        graph,
        &shared,
        work,
        options,
        inputs.printer,
        &late,
    )
    .await;
    for node in compiled_late
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
    {
        compiled.nodes.insert(node.unique_id.clone(), node);
    }
    let mut end_hook_failed = false;
    for hook in &run_end_hooks {
        if let Err(err) = shared.adapter.execute(hook).await {
            inputs.printer.diagnostic(
                &Diagnostic::error(format!("`on-run-end` hook failed: {err}"))
                    .at_file(project.project_file.clone()),
            );
            end_hook_failed = true;
            break;
        }
    }
    if let Err(err) = shared.state.flush().await {
        inputs.printer.diagnostic(
            &Diagnostic::error(format!("cannot write strata's state: {err}"))
                .with_hint("the next run reads again what this one read"),
        );
        end_hook_failed = true;
    }
    Ok(Finished {
        results,
        compiled,
        end_hook_failed,
    })
}

//! `strata run`, `strata seed`, `strata test` and `strata build`: compile the selection, connect,
//! and hand the nodes to the scheduler; then write `run_results.json` (and JUnit XML when asked)
//! and a summary with the failing tests' sample rows.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use super::args::RunArgs;
use super::session;
use super::settings::Settings;
use super::{EXIT_FAILURE, EXIT_OK};
use crate::adapter::RelationKind;
use crate::compile::CompileOptions;
use crate::data_test::{SettingsError, TestSettings};
use crate::diagnostic::Diagnostic;
use crate::manifest::Node;
use crate::manifest::ResourceType;
use crate::project::config::Materialization;
use crate::relation::RelationName;
use crate::run::{NodeResult, RunOptions, Status, Work};

/// Which nodes a command runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Models,
    Seeds,
    /// Data tests only, against what the warehouse holds.
    Tests,
    /// Seeds, models and data tests together, in DAG order (snapshots join later).
    Build,
}

pub fn run(settings: &Settings, args: &RunArgs, scope: Scope) -> anyhow::Result<u8> {
    // `seed` compiles nothing; the others compile every selected model and test.
    let next = match scope {
        Scope::Seeds => session::Next::Inspect,
        _ => session::Next::Compile,
    };
    let session = match session::open(settings, next) {
        Ok(session) => session,
        Err(code) => return Ok(code),
    };
    let types = match scope {
        Scope::Models => vec![ResourceType::Model],
        Scope::Seeds => vec![ResourceType::Seed],
        Scope::Tests => vec![ResourceType::Test],
        Scope::Build => vec![ResourceType::Model, ResourceType::Seed, ResourceType::Test],
    };
    let selected = match session::select(&session, settings, &args.selection, types) {
        Ok(selected) => selected,
        Err(code) => return Ok(code),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run_selected(settings, &session, selected, args))
}

async fn run_selected(
    settings: &Settings,
    session: &session::Session,
    selected: Vec<crate::manifest::NodeId>,
    args: &RunArgs,
) -> anyhow::Result<u8> {
    let printer = &settings.printer;
    let project = &session.project;
    let manifest = &session.manifest;
    let started = Instant::now();
    let runnable: Vec<&crate::manifest::Node> = selected
        .iter()
        .filter_map(|id| manifest.get(id))
        .filter(|n| match n.resource_type {
            ResourceType::Seed => true,
            ResourceType::Model => n.config.materialized != Materialization::Ephemeral,
            ResourceType::Test => n.config.enabled,
            _ => false,
        })
        .collect();
    let adapter = match crate::adapter::connect(&project.target).await {
        Ok(adapter) => adapter,
        Err(err) => {
            printer.diagnostic(&Diagnostic::error(err.to_string()).with_hint_opt(err.hint()));
            return Ok(EXIT_FAILURE);
        }
    };
    if let Err(err) = adapter.lock_target().await {
        printer.diagnostic(&Diagnostic::error(err.to_string()).with_hint_opt(err.hint()));
        return Ok(EXIT_FAILURE);
    }
    // An incremental model renders its incremental branch only when its table exists.
    let mut incremental = HashSet::new();
    if !args.full_refresh {
        for node in runnable
            .iter()
            .filter(|n| n.config.materialized == Materialization::Incremental)
        {
            if let Some(relation) = &node.relation {
                match adapter.relation(relation).await {
                    Ok(Some(info)) if info.kind == RelationKind::Table => {
                        incremental.insert(node.unique_id.clone());
                    }
                    Ok(_) => {}
                    Err(err) => {
                        printer.diagnostic(
                            &Diagnostic::error(err.to_string()).with_hint_opt(err.hint()),
                        );
                        return Ok(EXIT_FAILURE);
                    }
                }
            }
        }
    }
    let models: Vec<_> = runnable
        .iter()
        .filter(|n| matches!(n.resource_type, ResourceType::Model | ResourceType::Test))
        .map(|n| n.unique_id.clone())
        .collect();
    let mut listings = crate::landing::Listings::default();
    if !adapter.capabilities().reads_local_files {
        if let Err(diagnostic) = stage_landing(
            session,
            adapter.as_ref(),
            &runnable,
            &mut listings,
            args.full_refresh,
            printer,
        )
        .await
        {
            printer.diagnostic(&diagnostic);
            printer.info("strata stopped before running any model: fix the error above");
            return Ok(EXIT_FAILURE);
        }
    }
    let mut planned = match plan_files(
        session,
        adapter.as_ref(),
        &runnable,
        &incremental,
        &mut listings,
    )
    .await
    {
        Ok((planned, warnings)) => {
            printer.diagnostics(&warnings);
            planned
        }
        Err(diagnostics) => {
            printer.diagnostics(&diagnostics);
            printer.info("strata stopped before running anything: fix the errors above");
            return Ok(EXIT_FAILURE);
        }
    };
    let options = CompileOptions {
        write: true,
        incremental,
        files: planned
            .iter()
            .map(|(id, plan)| (id.clone(), plan.files.clone()))
            .collect(),
    };
    let compiled =
        match crate::compile::compile(project, manifest, &session.engine, &models, &options) {
            Ok(compiled) => compiled,
            Err(diagnostics) => {
                let sorted = diagnostics.sorted();
                printer.diagnostics(&sorted);
                printer.info("strata stopped before running anything: fix the errors above");
                return Ok(EXIT_FAILURE);
            }
        };
    if let Err(diagnostics) = crate::compile::write_files(project, &compiled) {
        printer.diagnostics(&diagnostics.sorted());
        printer.info("strata stopped before running anything: fix the errors above");
        return Ok(EXIT_FAILURE);
    }
    printer.diagnostics(&compiled.warnings);
    let work: Vec<Work> = runnable
        .iter()
        .filter_map(|node| {
            let test =
                (node.resource_type == ResourceType::Test).then(|| test_settings(project, node));
            let relation = match &test {
                Some(Ok(settings)) => settings
                    .audit_relation
                    .clone()
                    .unwrap_or_else(|| audit_relation(project, node)),
                Some(Err(_)) => audit_relation(project, node),
                None => node.relation.clone()?,
            };
            let built = compiled.nodes.get(&node.unique_id);
            Some(Work {
                unique_id: node.unique_id.clone(),
                resource_type: node.resource_type,
                label: if test.is_some() {
                    node.name.clone()
                } else {
                    format!("{}.{}", relation.schema, relation.identifier)
                },
                test,
                batch: None,
                files: planned.remove(&node.unique_id),
                view: None,
                relation,
                config: node.config.clone(),
                config_map: node.config_map.clone(),
                sql: built.map(|c| c.sql.clone()).unwrap_or_default(),
                pre_hooks: built.map(|c| c.pre_hooks.clone()).unwrap_or_default(),
                post_hooks: built.map(|c| c.post_hooks.clone()).unwrap_or_default(),
                comments: if adapter.capabilities().comments {
                    persist_docs(session, node)
                } else {
                    Vec::new()
                },
                seed_path: (node.resource_type == ResourceType::Seed)
                    .then(|| project.root.join(&node.original_file_path)),
            })
        })
        .collect();
    let run_start_hooks = match render_project_hooks(session, "on-run-start") {
        Ok(hooks) => hooks,
        Err(diagnostic) => {
            printer.diagnostic(&diagnostic);
            return Ok(EXIT_FAILURE);
        }
    };
    let run_end_hooks = match render_project_hooks(session, "on-run-end") {
        Ok(hooks) => hooks,
        Err(diagnostic) => {
            printer.diagnostic(&diagnostic);
            return Ok(EXIT_FAILURE);
        }
    };
    for hook in &run_start_hooks {
        if let Err(err) = adapter.execute(hook).await {
            printer.diagnostic(
                &Diagnostic::error(format!("`on-run-start` hook failed: {err}"))
                    .at_file(project.project_file.clone())
                    .with_hint("nothing was built; fix the hook or the SQL it runs"),
            );
            return Ok(EXIT_FAILURE);
        }
    }
    let mut work = work;
    plan_views(
        adapter.as_ref(),
        &project.target.schema,
        &compiled,
        &mut work,
        printer,
    )
    .await;
    if !args.no_batch_tests && (args.batch_tests || adapter.capabilities().batch_column_tests) {
        plan_batches(manifest, &mut work, &adapter.quote_style());
    }
    let threads = project.target.threads;
    printer.info(&format!(
        "running {} nodes with {threads} threads on {} target `{}`",
        work.len(),
        project.target.kind().as_str(),
        project.target.name
    ));
    let run_options = RunOptions {
        threads,
        full_refresh: args.full_refresh,
        fail_fast: args.fail_fast,
    };
    let results = crate::run::execute(
        manifest,
        &session.graph,
        adapter.clone(),
        work,
        &run_options,
        printer,
    )
    .await;
    let mut end_hook_failed = false;
    for hook in &run_end_hooks {
        if let Err(err) = adapter.execute(hook).await {
            printer.diagnostic(
                &Diagnostic::error(format!("`on-run-end` hook failed: {err}"))
                    .at_file(project.project_file.clone()),
            );
            end_hook_failed = true;
            break;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    if let Err(e) =
        crate::artifacts::write_manifest(project, manifest, &session.engine, Some(&compiled))
    {
        printer.diagnostic(&Diagnostic::error(format!(
            "cannot write `manifest.json`: {e}"
        )));
    }
    if let Err(e) = crate::artifacts::write_run_results(
        project,
        &session.engine,
        Some(&compiled),
        &results,
        elapsed,
        adapter.busy_time().as_secs_f64(),
    ) {
        printer.diagnostic(&Diagnostic::error(format!(
            "cannot write `run_results.json`: {e}"
        )));
    }
    if let Some(path) = &args.junit {
        if let Err(e) = crate::artifacts::junit::write(path, manifest, &results, elapsed) {
            printer.diagnostic(&Diagnostic::error(format!(
                "cannot write JUnit XML to `{}`: {e}",
                path.display()
            )));
        }
    }
    report_problems(settings, session, &compiled, &results);
    let summary = crate::run::summary(&results);
    printer.info(&format!(
        "finished {} nodes in {elapsed:.2}s: PASS={} WARN={} ERROR={} SKIP={}",
        results.len(),
        summary.pass,
        summary.warn,
        summary.error,
        summary.skip
    ));
    Ok(if summary.error > 0 || end_hook_failed {
        EXIT_FAILURE
    } else {
        EXIT_OK
    })
}

/// Gives each view of the run its fingerprint check, so a view that stands as this run would
/// create it is left alone. Views with hooks are always re-created (their hooks run every
/// time). A schema whose state table cannot be read or created has its views re-created, with
/// a warning.
async fn plan_views(
    adapter: &dyn crate::adapter::Adapter,
    target_schema: &str,
    compiled: &crate::compile::Compiled,
    work: &mut [Work],
    printer: &crate::output::Printer,
) {
    use crate::materialize::view_state::{self, Recorded, ViewPlan};
    let mut recorded: HashMap<RelationName, Option<Recorded>> = HashMap::new();
    for work in work.iter_mut() {
        if work.resource_type != ResourceType::Model
            || work.config.materialized != Materialization::View
            || !work.pre_hooks.is_empty()
            || !work.post_hooks.is_empty()
        {
            continue;
        }
        let Some(node) = compiled.nodes.get(&work.unique_id) else {
            continue;
        };
        let state = view_state::state_relation(&work.relation);
        if !recorded.contains_key(&state) {
            let loaded = match view_state::load(adapter, &state).await {
                Ok(loaded) => Some(loaded),
                Err(err) => {
                    printer.diagnostic(
                        &Diagnostic::warning(format!(
                            "cannot read the view state table `{}`: {err}",
                            state.dotted()
                        ))
                        .with_hint(format!(
                            "the views of schema `{}` are re-created on every run until it can be created",
                            state.schema
                        )),
                    );
                    None
                }
            };
            recorded.insert(state.clone(), loaded);
        }
        let Some(Some(known)) = recorded.get(&state) else {
            continue;
        };
        let inputs = if adapter.capabilities().late_binding_views {
            Vec::new()
        } else {
            let mut inputs = view_state::read_relations(&node.relations_read, target_schema);
            inputs.retain(|r| {
                r.schema != work.relation.schema || r.identifier != work.relation.identifier
            });
            inputs
        };
        work.view = Some(ViewPlan::new(
            &work.relation,
            &work.sql,
            &work.comments,
            inputs,
            known,
        ));
    }
}

/// Loads the new landing files of every external source the selected models read into the
/// source's raw table, for warehouses that do not read local files (PostgreSQL stages them
/// with COPY). Each source loads in one transaction with the record of its files.
async fn stage_landing(
    session: &session::Session,
    adapter: &dyn crate::adapter::Adapter,
    runnable: &[&Node],
    listings: &mut crate::landing::Listings,
    full_refresh: bool,
    printer: &crate::output::Printer,
) -> Result<(), Diagnostic> {
    use crate::landing;
    let manifest = &session.manifest;
    let mut sources = std::collections::BTreeSet::new();
    for node in runnable
        .iter()
        .filter(|n| n.resource_type == ResourceType::Model)
    {
        sources.extend(landing::reach(manifest, node).sources);
    }
    for id in &sources {
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
                match spec_location(&session.project, &err) {
                    Some(location) => diagnostic.at(location),
                    None => diagnostic,
                }
            })?;
        let (Some(relation), Some(source)) = (&node.relation, external.first()) else {
            continue;
        };
        let plan = landing::plan_stage(
            adapter,
            &session.project.root,
            listings,
            source,
            relation,
            full_refresh,
        )
        .await
        .map_err(|err| at(err.to_string(), err.hint()))?;
        let outcome = crate::materialize::stage_files(adapter, &plan)
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
fn spec_location(
    project: &crate::project::Project,
    err: &crate::landing::LandingError,
) -> Option<crate::diagnostic::Location> {
    let crate::landing::LandingError::Spec { table, path, .. } = err else {
        return None;
    };
    let line = std::fs::read_to_string(project.root.join(path))
        .ok()
        .and_then(|text| crate::project::yaml::entry_line(&text, table));
    Some(match line {
        Some(line) => crate::diagnostic::Location::at(path.clone(), line, None),
        None => crate::diagnostic::Location::file(path.clone()),
    })
}

/// Bookmarked models' files, and warnings about them.
type PlannedFiles = (
    HashMap<crate::manifest::NodeId, crate::landing::ModelFiles>,
    Vec<Diagnostic>,
);

/// Lists the landing files of every selected model with `bookmark: files` and, for those that
/// build incrementally, leaves out the files their state table records. Errors name the model
/// or the source's YAML file.
async fn plan_files(
    session: &session::Session,
    adapter: &dyn crate::adapter::Adapter,
    runnable: &[&Node],
    incremental: &HashSet<crate::manifest::NodeId>,
    listings: &mut crate::landing::Listings,
) -> Result<PlannedFiles, Vec<Diagnostic>> {
    use crate::landing;
    let project = &session.project;
    let manifest = &session.manifest;
    let mut planned = HashMap::new();
    let mut errors = Vec::new();
    for node in runnable
        .iter()
        .filter(|n| n.config.bookmark == Some(crate::project::config::Bookmark::Files))
    {
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
        let planned_model = match landing::external_sources(manifest, &reach.sources) {
            Ok(sources) => {
                landing::plan_model(
                    adapter,
                    &project.root,
                    listings,
                    relation,
                    &sources,
                    incremental.contains(&node.unique_id),
                )
                .await
            }
            Err(err) => Err(err),
        };
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

/// Groups `not_null` and `accepted_values` tests on the same relation into batches that share
/// one scan. Tests with `where`, `limit`, `fail_calc` or `store_failures` keep their own query.
fn plan_batches(
    manifest: &crate::manifest::Manifest,
    work: &mut [Work],
    style: &crate::relation::QuoteStyle,
) {
    use crate::data_test::{Batch, BatchSlot, ColumnCheck};
    use std::collections::BTreeMap;
    let mut groups: BTreeMap<String, Vec<(usize, ColumnCheck)>> = BTreeMap::new();
    for (i, item) in work.iter().enumerate() {
        let Some(Ok(settings)) = &item.test else {
            continue;
        };
        let Some(node) = manifest.get(&item.unique_id) else {
            continue;
        };
        let Some(test) = node
            .test
            .as_ref()
            .filter(|t| t.generic && t.namespace.is_none())
        else {
            continue;
        };
        if settings.audit_relation.is_some()
            || settings.limit.is_some()
            || settings.fail_calc != "count(*)"
            || node.config_map.get("where").is_some_and(|w| !w.is_null())
        {
            continue;
        }
        let (Some(column), Some(attached)) = (&test.column_name, &test.attached_node) else {
            continue;
        };
        let Some(relation) = manifest
            .get(attached)
            .filter(|n| !n.is_ephemeral())
            .and_then(|n| n.relation.as_ref())
        else {
            continue;
        };
        let check = match test.test_name.as_str() {
            "not_null" => ColumnCheck::NotNull {
                column: column.clone(),
            },
            "accepted_values" => {
                let quote = test
                    .kwargs
                    .get("quote")
                    .and_then(serde_json::Value::as_bool)
                    .unwrap_or(true);
                let Some(values) = test.kwargs.get("values").and_then(|v| v.as_array()) else {
                    continue;
                };
                let mut rendered = Vec::with_capacity(values.len());
                for value in values {
                    let text = match value {
                        serde_json::Value::String(s) => s.clone(),
                        serde_json::Value::Number(n) => n.to_string(),
                        serde_json::Value::Bool(b) => b.to_string(),
                        _ => break,
                    };
                    rendered.push(if quote {
                        format!("'{}'", text.replace('\'', "''"))
                    } else {
                        text
                    });
                }
                if rendered.len() != values.len() || rendered.is_empty() {
                    continue;
                }
                ColumnCheck::AcceptedValues {
                    column: column.clone(),
                    values: rendered,
                }
            }
            _ => continue,
        };
        groups
            .entry(relation.render(style))
            .or_default()
            .push((i, check));
    }
    for (relation, members) in groups {
        if members.len() < 2 {
            continue;
        }
        let checks: Vec<ColumnCheck> = members.iter().map(|(_, c)| c.clone()).collect();
        let batch = Batch::new(&relation, &checks);
        for (index, (position, check)) in members.into_iter().enumerate() {
            work[position].batch = Some(BatchSlot {
                batch: batch.clone(),
                index,
                exact: check.count_is_exact(),
            });
        }
    }
}

/// `on-run-start` / `on-run-end` from the project file (a string or a list), rendered with the
/// project's macros, `target` and `var`.
fn render_project_hooks(session: &session::Session, key: &str) -> Result<Vec<String>, Diagnostic> {
    let project = &session.project;
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
        let (sql, _) = session
            .engine
            .render(
                &name,
                hook,
                crate::template::NodeInfo::default(),
                crate::template::Phase::Compile,
                Some(crate::compile::resolver(project, &session.manifest)),
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
fn persist_docs(session: &session::Session, node: &Node) -> Vec<crate::materialize::Comment> {
    use crate::materialize::Comment;
    let Some(serde_json::Value::Object(wanted)) = node.config_map.get("persist_docs") else {
        return Vec::new();
    };
    let on = |key: &str| wanted.get(key).and_then(serde_json::Value::as_bool) == Some(true);
    let render = |text: &str| -> Option<String> {
        let text = if text.contains("{{") {
            session
                .engine
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
fn audit_relation(project: &crate::project::Project, node: &Node) -> RelationName {
    let suffix = node.config.schema.as_deref().unwrap_or("dbt_test__audit");
    RelationName::new(
        Some(project.target.database.clone()),
        format!("{}_{suffix}", project.target.schema),
        node.name.clone(),
    )
}

fn test_settings(
    project: &crate::project::Project,
    node: &Node,
) -> Result<TestSettings, SettingsError> {
    TestSettings::from_config(
        &node.config_map,
        node.config.severity,
        audit_relation(project, node),
    )
}

/// Errors, failing tests (with their SQL file and a few failing rows) and warnings, after the
/// progress lines so they are not lost among them.
fn report_problems(
    settings: &Settings,
    session: &session::Session,
    compiled: &crate::compile::Compiled,
    results: &[NodeResult],
) {
    let printer = &settings.printer;
    let manifest = &session.manifest;
    for result in results {
        let Some(node) = manifest.get(&result.unique_id) else {
            continue;
        };
        let declared_at = node.test.as_ref().and_then(|t| t.declared_at.clone());
        let at = |diagnostic: Diagnostic| match (&declared_at, result.line) {
            (Some(location), _) => diagnostic.at(location.clone()),
            (None, Some(line)) => diagnostic.at(crate::diagnostic::Location::at(
                node.original_file_path.clone(),
                line,
                None,
            )),
            (None, None) => diagnostic.at_file(node.original_file_path.clone()),
        };
        let sql_path = compiled
            .nodes
            .get(&result.unique_id)
            .map(|c| c.compiled_path.display().to_string());
        match result.status {
            Status::Error => {
                let mut diagnostic = at(Diagnostic::error(format!(
                    "{}: {}",
                    result.unique_id, result.message
                )))
                .with_hint_opt(result.hint.clone());
                if node.resource_type == ResourceType::Test && diagnostic.hint.is_none() {
                    diagnostic = diagnostic.with_hint_opt(sql_path.map(|p| {
                        format!("the test's compiled SQL is in `{p}`; check the columns and relations it names")
                    }));
                }
                printer.diagnostic(&diagnostic);
            }
            Status::Fail | Status::Warn => {
                let failures = result.failures.unwrap_or(0);
                let what = if result.status == Status::Fail {
                    Diagnostic::error(format!(
                        "test `{}` failed: {failures} failing row(s)",
                        node.name
                    ))
                } else {
                    Diagnostic::warning(format!(
                        "test `{}` warned: {failures} failing row(s)",
                        node.name
                    ))
                };
                let mut details = Vec::new();
                if let Some(path) = &sql_path {
                    details.push(format!("compiled SQL: {path}"));
                }
                if let Some(stored) = &result.stored_in {
                    details.push(format!("failing rows stored in {stored}"));
                }
                if let Some(sample) = &result.sample {
                    let table = sample
                        .to_text(40)
                        .lines()
                        .map(|line| format!("    {line}"))
                        .collect::<Vec<_>>()
                        .join("\n");
                    details.push(format!("first failing rows:\n{table}"));
                }
                let mut diagnostic = at(what);
                if !details.is_empty() {
                    diagnostic = diagnostic.with_hint(details.join("\n"));
                }
                printer.diagnostic(&diagnostic);
            }
            _ => {}
        }
    }
}

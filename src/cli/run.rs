//! `strata run`, `strata seed` and `strata build`: compile the selection, connect, and hand the
//! nodes to the scheduler; then write `run_results.json` and a summary.

use std::collections::HashSet;
use std::time::Instant;

use super::args::RunArgs;
use super::session;
use super::settings::Settings;
use super::{EXIT_FAILURE, EXIT_OK};
use crate::adapter::RelationKind;
use crate::compile::CompileOptions;
use crate::diagnostic::Diagnostic;
use crate::manifest::ResourceType;
use crate::project::config::Materialization;
use crate::run::{RunOptions, Work};

/// Which nodes a command runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Models,
    Seeds,
    /// Seeds and models together, in DAG order (data tests and snapshots join later).
    Build,
}

pub fn run(settings: &Settings, args: &RunArgs, scope: Scope) -> anyhow::Result<u8> {
    let session = match session::open(settings) {
        Ok(session) => session,
        Err(code) => return Ok(code),
    };
    let types = match scope {
        Scope::Models => vec![ResourceType::Model],
        Scope::Seeds => vec![ResourceType::Seed],
        Scope::Build => vec![ResourceType::Model, ResourceType::Seed],
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
        .filter(|n| n.resource_type == ResourceType::Model)
        .map(|n| n.unique_id.clone())
        .collect();
    let options = CompileOptions {
        write: true,
        incremental,
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
    printer.diagnostics(&compiled.warnings);
    let work: Vec<Work> = runnable
        .iter()
        .filter_map(|node| {
            let relation = node.relation.clone()?;
            Some(Work {
                unique_id: node.unique_id.clone(),
                resource_type: node.resource_type,
                label: format!("{}.{}", relation.schema, relation.identifier),
                relation,
                config: node.config.clone(),
                config_map: node.config_map.clone(),
                sql: compiled
                    .nodes
                    .get(&node.unique_id)
                    .map(|c| c.sql.clone())
                    .unwrap_or_default(),
                seed_path: (node.resource_type == ResourceType::Seed)
                    .then(|| project.root.join(&node.original_file_path)),
            })
        })
        .collect();
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
        adapter,
        work,
        &run_options,
        printer,
    )
    .await;
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
    ) {
        printer.diagnostic(&Diagnostic::error(format!(
            "cannot write `run_results.json`: {e}"
        )));
    }
    for result in results
        .iter()
        .filter(|r| r.status == crate::run::Status::Error)
    {
        let name = manifest
            .get(&result.unique_id)
            .map(|n| n.original_file_path.clone());
        let mut diagnostic = Diagnostic::error(format!("{}: {}", result.unique_id, result.message))
            .with_hint_opt(result.hint.clone());
        if let Some(path) = name {
            diagnostic = diagnostic.at_file(path);
        }
        printer.diagnostic(&diagnostic);
    }
    let (pass, error, skip) = crate::run::summary(&results);
    printer.info(&format!(
        "finished {} nodes in {elapsed:.2}s: PASS={pass} ERROR={error} SKIP={skip}",
        results.len()
    ));
    Ok(if error > 0 { EXIT_FAILURE } else { EXIT_OK })
}

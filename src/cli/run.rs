//! `strata run`, `strata seed`, `strata test` and `strata build`: resolve the selection, hand it
//! to the library's run (`run::prepare`), then write `run_results.json` (and JUnit XML when
//! asked) and print a summary with the failing tests' sample rows. Everything between is the
//! library's.

use std::time::Instant;

use super::args::RunArgs;
use super::session;
use super::settings::Settings;
use super::{EXIT_FAILURE, EXIT_OK};
use crate::diagnostic::Diagnostic;
use crate::manifest::ResourceType;
use crate::run::prepare;
use crate::run::{NodeResult, RunOptions, Status};

/// Which nodes a command runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Models,
    Seeds,
    /// Snapshots only.
    Snapshots,
    /// Data tests only, against what the warehouse holds.
    Tests,
    /// Seeds, models and data tests together, in DAG order (snapshots join later).
    Build,
}

pub fn run(settings: &Settings, args: &RunArgs, scope: Scope) -> anyhow::Result<u8> {
    run_only(settings, args, scope, None)
}

/// [`run`], limited to `only` among what the selection selects (`strata retry`).
pub fn run_only(
    settings: &Settings,
    args: &RunArgs,
    scope: Scope,
    only: Option<&std::collections::HashSet<crate::manifest::NodeId>>,
) -> anyhow::Result<u8> {
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
        Scope::Tests => vec![ResourceType::Test, ResourceType::UnitTest],
        Scope::Snapshots => vec![ResourceType::Snapshot],
        Scope::Build => vec![
            ResourceType::Model,
            ResourceType::Seed,
            ResourceType::Snapshot,
            ResourceType::Test,
            ResourceType::UnitTest,
        ],
    };
    let mut selected = match session::select(&session, settings, &args.selection, types) {
        Ok(selected) => selected,
        Err(code) => return Ok(code),
    };
    if let Some(only) = only {
        selected.retain(|id| only.contains(id));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let skip_stale = args.skip_stale_sources
        || std::env::var("STRATA_SKIP_STALE_SOURCES")
            .is_ok_and(|v| matches!(v.trim(), "1" | "true" | "True" | "yes"));
    let stale = match skip_stale {
        true => match runtime.block_on(skip_stale_sources(settings, &session, &mut selected)) {
            Ok(skipped) => skipped,
            Err(code) => return Ok(code),
        },
        false => Vec::new(),
    };
    runtime.block_on(run_selected(settings, &session, selected, args, stale))
}

/// `--skip-stale-sources`: checks the freshness of the sources (with criteria) the selection
/// reads, writes `sources.json`, and takes every selected node downstream of a source past
/// its `error_after` out of the run; their results, skipped with the source named.
async fn skip_stale_sources(
    settings: &Settings,
    session: &session::Session,
    selected: &mut Vec<crate::manifest::NodeId>,
) -> Result<Vec<NodeResult>, u8> {
    let chosen: std::collections::HashSet<&crate::manifest::NodeId> = selected.iter().collect();
    let mut reach = std::collections::HashMap::new();
    for node in session.manifest.nodes.values() {
        if node.resource_type != ResourceType::Source
            || !matches!(crate::freshness::criteria_of(node), Ok(Some(_)))
        {
            continue;
        }
        let downstream: Vec<_> = session
            .graph
            .descendants(&node.unique_id, None)
            .into_iter()
            .filter(|d| chosen.contains(d))
            .collect();
        if !downstream.is_empty() {
            reach.insert(node.unique_id.clone(), downstream);
        }
    }
    let mut sources: Vec<_> = reach.keys().cloned().collect();
    sources.sort();
    let started = Instant::now();
    let checked = super::freshness::check(settings, session, &sources).await?;
    if !checked.is_empty() {
        if let Err(e) = crate::artifacts::write_sources(
            &session.project,
            &session.engine,
            &checked,
            started.elapsed().as_secs_f64(),
            None,
        ) {
            settings.printer.diagnostic(&Diagnostic::error(format!(
                "cannot write `sources.json`: {e}"
            )));
        }
    }
    let mut skipped: std::collections::BTreeMap<crate::manifest::NodeId, String> =
        std::collections::BTreeMap::new();
    for check in checked
        .iter()
        .filter(|c| c.status == crate::freshness::Status::Error)
    {
        for id in reach.get(&check.unique_id).into_iter().flatten() {
            skipped.entry(id.clone()).or_insert_with(|| {
                format!(
                    "SKIP: source `{}` is stale: {}",
                    check.name,
                    check.summary()
                )
            });
        }
    }
    if !skipped.is_empty() {
        settings.printer.info(&format!(
            "--skip-stale-sources: {} selected nodes read a stale source and are skipped",
            skipped.len()
        ));
    }
    selected.retain(|id| !skipped.contains_key(id));
    Ok(skipped
        .into_iter()
        .map(|(unique_id, message)| NodeResult {
            hint: Some("load the source (or check why its loads stopped), then run again".into()),
            ..NodeResult::skipped(unique_id, message)
        })
        .collect())
}

async fn run_selected(
    settings: &Settings,
    session: &session::Session,
    selected: Vec<crate::manifest::NodeId>,
    args: &RunArgs,
    stale: Vec<NodeResult>,
) -> anyhow::Result<u8> {
    let printer = &settings.printer;
    let project = &session.project;
    let manifest = &session.manifest;
    let started = Instant::now();
    let inputs = prepare::Inputs {
        project,
        manifest,
        engine: &session.engine,
        printer,
    };
    let choices = prepare::Choices {
        full_refresh: args.full_refresh,
        batch_tests: if args.no_batch_tests {
            Some(false)
        } else if args.batch_tests {
            Some(true)
        } else {
            None
        },
        adapter: None,
        defer: super::compile::deferral(settings, session),
        event_time_start: args.event_time_start,
        event_time_end: args.event_time_end,
        retry_batches: settings.retry_batches.clone(),
    };
    let log_config = match crate::runlog::RunLogConfig::from_json(project.file.run_log.as_ref()) {
        Ok(config) => config,
        Err(message) => {
            printer.diagnostic(
                &project_key_error(project, "run-log:", message)
                    .with_hint("e.g. `run-log: {schema: audit}`; see the README's \"Run log\""),
            );
            return Ok(EXIT_FAILURE);
        }
    };
    let alerts = match super::alerting::config(project) {
        Ok(alerts) => alerts,
        Err(diagnostic) => {
            printer.diagnostic(&diagnostic);
            return Ok(EXIT_FAILURE);
        }
    };
    let invocation_id = session.engine.shared().invocation_id.clone();
    let prepared = match prepare::prepare(inputs, &selected, &choices).await {
        Ok(prepared) => prepared,
        Err(stopped) => {
            alert_stopped(settings, project, &invocation_id, &stopped).await;
            return Ok(stop(printer, stopped));
        }
    };
    printer.diagnostics(&prepared.warnings);
    let run_log = match log_config {
        Some(config) => {
            let invocation = crate::runlog::Invocation {
                id: session.engine.shared().invocation_id.clone(),
                project: project.name.clone(),
                command: settings.command.clone(),
                selector: selection_text(&args.selection),
                target: project.target.name.clone(),
                started_at: chrono::Utc::now(),
            };
            let state_schema = prepare::state_location(project).schema_name();
            match crate::runlog::RunLog::open(&prepared.shared, &config, &state_schema, invocation)
                .await
            {
                Ok(log) => {
                    for result in &stale {
                        log.node_finished(result);
                    }
                    Some(log)
                }
                Err(message) => {
                    printer.diagnostic(
                        &Diagnostic::warning(format!("cannot open the run log: {message}"))
                            .with_hint("the run goes on without it"),
                    );
                    None
                }
            }
        }
        None => None,
    };
    let threads = project.target.threads;
    printer.info(&format!(
        "running {} nodes with {threads} threads on {} target `{}`",
        prepared.work.len(),
        prepared.shared.adapter.flavour().name(),
        project.target.name
    ));
    let run_options = RunOptions {
        threads,
        full_refresh: args.full_refresh,
        fail_fast: args.fail_fast,
        on_result: run_log.as_ref().map(|log| log.recorder()),
    };
    let adapter = prepared.shared.adapter.clone();
    let finished = prepare::run(inputs, &session.graph, prepared, &run_options).await;
    drop(run_options);
    let finished = match finished {
        Ok(finished) => finished,
        Err(stopped) => {
            if let Some(log) = run_log {
                for warning in log.close(&stale, true).await {
                    printer.diagnostic(&Diagnostic::warning(warning));
                }
            }
            alert_stopped(settings, project, &invocation_id, &stopped).await;
            return Ok(stop(printer, stopped));
        }
    };
    let prepare::Finished {
        mut results,
        compiled,
        end_hook_failed,
    } = finished;
    let stale_sources = stale.len();
    results.extend(stale.iter().cloned());
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
        &settings.command,
        &settings.invocation,
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
    if stale_sources > 0 {
        printer.info(&format!(
            "{stale_sources} of the skipped nodes read a source past its `error_after`: the run fails so it is noticed"
        ));
    }
    let failed = summary.error > 0 || end_hook_failed || stale_sources > 0;
    if let Some(log) = run_log {
        for warning in log.close(&results, failed).await {
            printer.diagnostic(
                &Diagnostic::warning(warning).with_hint("the run's outcome does not depend on it"),
            );
        }
    }
    if let Some(config) = &alerts {
        let summary = super::alerting::summary(
            settings,
            project,
            manifest,
            &invocation_id,
            &results,
            &stale,
            failed,
            elapsed,
        );
        super::alerting::send(settings, project, config, &summary).await;
    }
    Ok(if failed { EXIT_FAILURE } else { EXIT_OK })
}

/// The notification of a run that stopped before (or while) running its nodes.
async fn alert_stopped(
    settings: &Settings,
    project: &crate::project::Project,
    invocation_id: &str,
    stopped: &prepare::Stopped,
) {
    if let Some((config, summary)) = super::alerting::stopped_summary(
        settings,
        project,
        Some(invocation_id),
        &stopped.diagnostics,
    ) {
        super::alerting::send(settings, project, &config, &summary).await;
    }
}

/// An error about a top-level key of the project file, pointing at its line.
pub(super) fn project_key_error(
    project: &crate::project::Project,
    key: &str,
    message: String,
) -> Diagnostic {
    let line = std::fs::read_to_string(&project.project_file)
        .ok()
        .and_then(|text| crate::project::yaml::find_line(&text, key));
    let path = crate::diagnostic::display_path(&project.project_file, &project.root);
    match line {
        Some(line) => {
            Diagnostic::error(message).at(crate::diagnostic::Location::at(path, line, None))
        }
        None => Diagnostic::error(message).at_file(path),
    }
}

/// The selection as given, for the run log.
fn selection_text(selection: &super::args::SelectArgs) -> String {
    let mut parts = Vec::new();
    if !selection.select.is_empty() {
        parts.push(format!("--select {}", selection.select.join(" ")));
    }
    if !selection.exclude.is_empty() {
        parts.push(format!("--exclude {}", selection.exclude.join(" ")));
    }
    if let Some(name) = &selection.selector {
        parts.push(format!("--selector {name}"));
    }
    parts.join(" ")
}

/// Prints why the run stopped before running anything; the exit code.
fn stop(printer: &crate::output::Printer, stopped: prepare::Stopped) -> u8 {
    printer.diagnostics(&stopped.diagnostics);
    if let Some(note) = stopped.note {
        printer.info(note);
    }
    EXIT_FAILURE
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
            Status::Fail if node.resource_type == ResourceType::UnitTest => {
                let mut details = Vec::new();
                if let Some(sample) = &result.sample {
                    let table = sample
                        .to_text(40)
                        .lines()
                        .map(|line| format!("    {line}"))
                        .collect::<Vec<_>>()
                        .join("\n");
                    details.push(format!(
                        "rows the model should return and did not (missing), and rows it returned that were not expected (unexpected):\n{table}"
                    ));
                }
                if let Some(path) = &sql_path {
                    details.push(format!("compiled SQL: {path}"));
                }
                printer.diagnostic(
                    &at(Diagnostic::error(format!(
                        "unit test `{}` failed: the model's rows differ from the expected ones",
                        node.name
                    )))
                    .with_hint(details.join("\n")),
                );
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

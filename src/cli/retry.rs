//! `strata retry`: the last `run`, `seed`, `test` or `build` again, as it was asked for (its
//! command line, kept in `run_results.json`), limited to the nodes it left in error, failed or
//! skipped. Its own `run_results.json` keeps that command line, so a second retry retries what
//! is still failing.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use clap::Parser;
use serde_json::Value as Json;

use super::args::{Cli, Command};
use super::run::Scope;
use super::settings::Settings;
use super::{EXIT_FAILURE, EXIT_OK};
use crate::diagnostic::Diagnostic;
use crate::manifest::NodeId;
use crate::materialize::microbatch::Batch;

/// The statuses a retry runs again.
const RETRIED: &[&str] = &["error", "fail", "skipped"];

pub fn run(settings: &Settings) -> anyhow::Result<u8> {
    let printer = &settings.printer;
    let fail = |diagnostic: Diagnostic| {
        printer.diagnostic(&diagnostic);
        Ok(EXIT_FAILURE)
    };
    let project_dir = &settings.load.project_dir;
    let target_path = crate::project::packages::project_field(project_dir, "target-path")
        .unwrap_or_else(|| "target".into());
    let path: PathBuf = project_dir.join(target_path).join("run_results.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(_) => return fail(
            Diagnostic::error(format!(
                "no previous run to retry: `{}` is missing",
                path.display()
            ))
            .with_hint(
                "run `strata build` (or run, seed, test) first; retry reruns what it left failing",
            ),
        ),
    };
    let results: Json = match serde_json::from_str(&text) {
        Ok(results) => results,
        Err(e) => {
            return fail(
                Diagnostic::error(format!("`{}` is not valid JSON: {e}", path.display()))
                    .with_hint("run the command again instead of retrying it"),
            )
        }
    };
    let argv: Vec<String> = results
        .pointer("/args/argv")
        .and_then(Json::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let Ok(cli) = Cli::try_parse_from(std::iter::once("strata".to_string()).chain(argv.clone()))
    else {
        return fail(
            Diagnostic::error(format!(
                "`{}` does not say how its run was asked for",
                path.display()
            ))
            .with_hint("it was written by an older strata or another tool: run the command again"),
        );
    };
    let (args, scope) = match &cli.command {
        Command::Run(args) => (args, Scope::Models),
        Command::Seed(args) => (args, Scope::Seeds),
        Command::Test(args) => (args, Scope::Tests),
        Command::Snapshot(args) => (args, Scope::Snapshots),
        Command::Build(args) => (args, Scope::Build),
        _ => {
            return fail(Diagnostic::error(
                "the last run recorded is not a run, seed, test or build",
            ))
        }
    };
    // The nodes to run again, and of a microbatch model the batches that failed: exactly
    // those are built again.
    let mut retried: HashSet<NodeId> = HashSet::new();
    let mut batches: HashMap<NodeId, Vec<Batch>> = HashMap::new();
    for result in results
        .get("results")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        let status = result.get("status").and_then(Json::as_str);
        let id = result.get("unique_id").and_then(Json::as_str);
        let (Some(status), Some(id)) = (status, id) else {
            continue;
        };
        if !RETRIED.contains(&status) {
            continue;
        }
        let id = NodeId(id.to_string());
        let failed: Vec<Batch> = result
            .pointer("/batch_results/failed")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
            .filter_map(|pair| Batch::from_bounds(pair.get(0)?.as_str()?, pair.get(1)?.as_str()?))
            .collect();
        if !failed.is_empty() {
            batches.insert(id.clone(), failed);
        }
        retried.insert(id);
    }
    let command = argv.join(" ");
    if retried.is_empty() {
        printer.info(&format!(
            "nothing to retry: `strata {command}` left no node in error, failed or skipped"
        ));
        return Ok(EXIT_OK);
    }
    let mut again = match Settings::resolve(&cli) {
        Ok(settings) => settings,
        Err(diagnostic) => return fail(diagnostic),
    };
    // The retry's own results keep the command it retried, so another retry retries it too.
    again.invocation = argv;
    let batch_count: usize = batches.values().map(Vec::len).sum();
    printer.info(&format!(
        "retrying {} node(s) of `strata {command}`{}",
        retried.len(),
        if batch_count > 0 {
            format!(", {batch_count} failed microbatch batch(es) among them")
        } else {
            String::new()
        }
    ));
    again.retry_batches = batches;
    super::run::run_only(&again, args, scope, Some(&retried))
}

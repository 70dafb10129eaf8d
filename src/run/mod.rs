//! The scheduler: runs selected seeds and models in dependency order with at most `threads` in
//! flight, skips the descendants of a failure, stops early with `--fail-fast`, and cancels
//! running statements on Ctrl-C. Each node's work is a materialization; this room only decides
//! when, and records what happened.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use tokio::task::JoinSet;

use crate::adapter::Adapter;
use crate::graph::Graph;
use crate::manifest::{Manifest, NodeId, ResourceType};
use crate::materialize::{self, MaterializeError, Outcome, Request};
use crate::output::Printer;
use crate::project::config::{Materialization, NodeConfig};
use crate::project::ConfigMap;
use crate::relation::RelationName;

/// How a node ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Success,
    Error,
    Skipped,
}

/// One node's result, as `run_results.json` records it.
#[derive(Debug, Clone, Serialize)]
pub struct NodeResult {
    pub unique_id: NodeId,
    pub status: Status,
    pub message: String,
    pub execution_time: f64,
    pub rows_affected: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// What one node runs.
#[derive(Debug, Clone)]
pub struct Work {
    pub unique_id: NodeId,
    pub resource_type: ResourceType,
    pub label: String,
    pub relation: RelationName,
    pub config: NodeConfig,
    pub config_map: ConfigMap,
    /// The compiled SELECT (models) — empty for seeds.
    pub sql: String,
    /// The CSV file (seeds), absolute.
    pub seed_path: Option<std::path::PathBuf>,
}

/// Knobs of a run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub threads: usize,
    pub full_refresh: bool,
    pub fail_fast: bool,
}

fn describe(work: &Work) -> String {
    match work.resource_type {
        ResourceType::Seed => format!("seed file {}", work.label),
        _ => format!(
            "sql {} model {}",
            work.config.materialized.as_str(),
            work.label
        ),
    }
}

async fn run_one(
    adapter: Arc<dyn Adapter>,
    work: Work,
    full_refresh: bool,
) -> Result<Outcome, MaterializeError> {
    match work.resource_type {
        ResourceType::Seed => {
            let path = work.seed_path.as_ref().ok_or_else(|| {
                crate::adapter::AdapterError::Internal("a seed without a file".into())
            })?;
            materialize::load_seed(adapter.as_ref(), &work.relation, path, &work.config_map).await
        }
        _ => {
            let request = Request {
                relation: &work.relation,
                config: &work.config,
                config_map: &work.config_map,
                sql: &work.sql,
                full_refresh,
            };
            materialize::materialize(adapter.as_ref(), &request).await
        }
    }
}

/// Runs `work` (already in any order) respecting the DAG. Returns one result per node.
pub async fn execute(
    manifest: &Manifest,
    graph: &Graph,
    adapter: Arc<dyn Adapter>,
    work: Vec<Work>,
    options: &RunOptions,
    printer: &Printer,
) -> Vec<NodeResult> {
    let total = work.len();
    let ids: HashSet<NodeId> = work.iter().map(|w| w.unique_id.clone()).collect();
    let order: HashMap<NodeId, usize> = graph
        .topological_order()
        .into_iter()
        .enumerate()
        .map(|(i, id)| (id, i))
        .collect();
    let mut by_id: HashMap<NodeId, Work> =
        work.into_iter().map(|w| (w.unique_id.clone(), w)).collect();
    // Parents within this run: a node waits for those, through ephemeral models too.
    let mut waiting: HashMap<NodeId, usize> = HashMap::new();
    let mut children: HashMap<NodeId, Vec<NodeId>> = HashMap::new();
    for id in &ids {
        let parents: HashSet<NodeId> = runnable_parents(manifest, id, &ids);
        waiting.insert(id.clone(), parents.len());
        for parent in parents {
            children.entry(parent).or_default().push(id.clone());
        }
    }
    let mut ready: Vec<NodeId> = waiting
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(id, _)| id.clone())
        .collect();
    ready.sort_by_key(|id| order.get(id).copied().unwrap_or(usize::MAX));
    let mut ready: VecDeque<NodeId> = ready.into();

    let mut results: Vec<NodeResult> = Vec::with_capacity(total);
    let mut skipped: HashSet<NodeId> = HashSet::new();
    let mut running: JoinSet<(NodeId, f64, Result<Outcome, MaterializeError>)> = JoinSet::new();
    let mut started = 0usize;
    let mut stop = false;
    let threads = options.threads.max(1);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);

    loop {
        while !stop && running.len() < threads {
            let Some(id) = ready.pop_front() else { break };
            let Some(work) = by_id.remove(&id) else {
                continue;
            };
            if skipped.contains(&id) {
                finish_skipped(
                    &id,
                    &mut results,
                    &children,
                    &mut waiting,
                    &mut ready,
                    &order,
                );
                continue;
            }
            started += 1;
            printer.info(&format!(
                "{started} of {total} START {} [RUN]",
                describe(&work)
            ));
            let adapter = adapter.clone();
            let full_refresh = options.full_refresh;
            running.spawn(async move {
                let clock = Instant::now();
                let id = work.unique_id.clone();
                let result = run_one(adapter, work, full_refresh).await;
                (id, clock.elapsed().as_secs_f64(), result)
            });
        }
        if running.is_empty() {
            if stop || ready.is_empty() {
                break;
            }
            continue;
        }
        let joined = tokio::select! {
            joined = running.join_next() => joined,
            _ = &mut ctrl_c, if !stop => {
                printer.info("interrupted: cancelling running queries; tables being built are dropped, the previous ones stay");
                let _ = adapter.cancel().await;
                stop = true;
                continue;
            }
        };
        let Some(joined) = joined else { continue };
        let (id, seconds, result) = match joined {
            Ok(done) => done,
            Err(err) => {
                printer.info(&format!(
                    "a node's task failed: {err}; this is a bug, please report it"
                ));
                stop = true;
                continue;
            }
        };
        let name = manifest
            .get(&id)
            .map(|n| n.name.clone())
            .unwrap_or_else(|| id.0.clone());
        match result {
            Ok(outcome) => {
                printer.info(&format!("OK {name} [{} in {seconds:.2}s]", outcome.message));
                results.push(NodeResult {
                    unique_id: id.clone(),
                    status: Status::Success,
                    message: outcome.message,
                    execution_time: seconds,
                    rows_affected: outcome.rows_affected,
                    hint: None,
                });
            }
            Err(err) => {
                printer.info(&format!("ERROR {name} [{seconds:.2}s]: {err}"));
                results.push(NodeResult {
                    unique_id: id.clone(),
                    status: Status::Error,
                    message: err.to_string(),
                    execution_time: seconds,
                    rows_affected: None,
                    hint: err.hint(),
                });
                for descendant in graph.descendants(&id, None) {
                    if ids.contains(&descendant) {
                        skipped.insert(descendant);
                    }
                }
                if options.fail_fast {
                    let _ = adapter.cancel().await;
                    stop = true;
                }
            }
        }
        release_children(&id, &children, &mut waiting, &mut ready, &order);
    }
    // Whatever never started (fail-fast, Ctrl-C, or behind a failure) is skipped.
    let mut leftover: Vec<NodeId> = by_id.into_keys().collect();
    leftover.sort_by_key(|id| order.get(id).copied().unwrap_or(usize::MAX));
    for id in leftover {
        results.push(skip_result(&id));
    }
    results
}

fn skip_result(id: &NodeId) -> NodeResult {
    NodeResult {
        unique_id: id.clone(),
        status: Status::Skipped,
        message: "SKIP: an upstream node failed or the run stopped".into(),
        execution_time: 0.0,
        rows_affected: None,
        hint: None,
    }
}

fn release_children(
    id: &NodeId,
    children: &HashMap<NodeId, Vec<NodeId>>,
    waiting: &mut HashMap<NodeId, usize>,
    ready: &mut VecDeque<NodeId>,
    order: &HashMap<NodeId, usize>,
) {
    let mut newly: Vec<NodeId> = Vec::new();
    for child in children.get(id).into_iter().flatten() {
        if let Some(n) = waiting.get_mut(child) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                newly.push(child.clone());
            }
        }
    }
    newly.sort_by_key(|id| order.get(id).copied().unwrap_or(usize::MAX));
    ready.extend(newly);
}

fn finish_skipped(
    id: &NodeId,
    results: &mut Vec<NodeResult>,
    children: &HashMap<NodeId, Vec<NodeId>>,
    waiting: &mut HashMap<NodeId, usize>,
    ready: &mut VecDeque<NodeId>,
    order: &HashMap<NodeId, usize>,
) {
    results.push(skip_result(id));
    release_children(id, children, waiting, ready, order);
}

/// The nearest ancestors of `id` that run in this invocation, looking through ephemerals and
/// nodes outside the selection.
fn runnable_parents(
    manifest: &Manifest,
    id: &NodeId,
    runnable: &HashSet<NodeId>,
) -> HashSet<NodeId> {
    let mut found = HashSet::new();
    let mut seen = HashSet::new();
    let mut stack: Vec<&NodeId> = manifest
        .get(id)
        .map(|n| n.depends_on.iter().collect())
        .unwrap_or_default();
    while let Some(parent) = stack.pop() {
        if !seen.insert(parent.clone()) {
            continue;
        }
        if runnable.contains(parent) {
            found.insert(parent.clone());
        } else if let Some(node) = manifest.get(parent) {
            if node.config.materialized == Materialization::Ephemeral {
                stack.extend(node.depends_on.iter());
            }
        }
    }
    found
}

/// Counts of results by status, for the summary line and the exit code.
pub fn summary(results: &[NodeResult]) -> (usize, usize, usize) {
    let count = |s: Status| results.iter().filter(|r| r.status == s).count();
    (
        count(Status::Success),
        count(Status::Error),
        count(Status::Skipped),
    )
}

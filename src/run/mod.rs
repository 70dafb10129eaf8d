//! The scheduler: runs selected seeds, models and tests in dependency order with at most
//! `threads` in flight, skips the descendants of a failure, stops early with `--fail-fast`, and
//! cancels running statements on Ctrl-C. Each node's work is a materialization or a data test;
//! this room only decides when, and records what happened. [`prepare`] turns a selection into
//! that work before anything runs.

mod counted;
pub mod introspect;
pub mod prepare;
mod written;

use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use tokio::task::JoinSet;

pub use counted::Counted;

use crate::adapter::Adapter;
use crate::catalog::Catalog;
use crate::data_test::{SettingsError, TestOutcome, TestSettings, Verdict};
use crate::graph::Graph;
use crate::manifest::{Manifest, NodeId, ResourceType};
use crate::materialize::{self, Context, MaterializeError, Outcome, Request};
use crate::output::Printer;
use crate::plan::{RunContext, Storage};
use crate::project::config::{Materialization, NodeConfig};
use crate::project::ConfigMap;
use crate::relation::RelationName;
use crate::state::StateStore;

/// How a node ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// A model or seed was built.
    Success,
    /// A model, seed or test could not run (bad SQL, missing column, lost connection).
    Error,
    Skipped,
    /// A data test found nothing wrong.
    Pass,
    /// A data test found failures below its error threshold, or has `severity: warn`.
    Warn,
    /// A data test found failures: what depends on its model is skipped.
    Fail,
}

impl Status {
    /// As `run_results.json` writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Success => "success",
            Status::Error => "error",
            Status::Skipped => "skipped",
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

/// One node's result, as `run_results.json` records it.
#[derive(Debug, Clone, Serialize)]
pub struct NodeResult {
    pub unique_id: NodeId,
    pub status: Status,
    pub message: String,
    pub execution_time: f64,
    pub rows_affected: Option<u64>,
    /// A data test's failure count.
    pub failures: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// A few failing rows of a test that did not pass, for the summary.
    #[serde(skip)]
    pub sample: Option<crate::adapter::Table>,
    /// Where a test's failing rows were stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stored_in: Option<String>,
    /// The line of the node's file an error points at (a seed's bad value).
    #[serde(skip)]
    pub line: Option<usize>,
    /// Statements (queries included) the node ran in the warehouse, and transactions.
    pub statements: usize,
    pub transactions: usize,
    /// Clean-up left for the next run, and other things the node's report should mention.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// A microbatch model's batches, as dbt's `batch_results`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_results: Option<crate::materialize::microbatch::BatchResults>,
}

impl NodeResult {
    /// A node that did not run, saying why.
    pub fn skipped(unique_id: NodeId, message: String) -> NodeResult {
        NodeResult {
            unique_id,
            status: Status::Skipped,
            message,
            execution_time: 0.0,
            rows_affected: None,
            failures: None,
            hint: None,
            sample: None,
            stored_in: None,
            line: None,
            statements: 0,
            transactions: 0,
            warnings: Vec::new(),
            batch_results: None,
        }
    }
}

/// A seed to load.
#[derive(Debug, Clone)]
pub struct SeedWork {
    pub relation: RelationName,
    pub config_map: ConfigMap,
    /// The CSV file, absolute.
    pub path: std::path::PathBuf,
    pub storage: Storage,
}

/// A model to build.
#[derive(Debug, Clone)]
pub struct ModelWork {
    pub relation: RelationName,
    pub config: NodeConfig,
    pub config_map: ConfigMap,
    /// The compiled SELECT.
    pub sql: String,
    /// Rendered hooks.
    pub pre_hooks: Vec<String>,
    pub post_hooks: Vec<String>,
    /// Descriptions stored as comments after the build (`persist_docs`).
    pub comments: Vec<crate::materialize::Comment>,
    /// A bookmarked model's landing files for this run and their record.
    pub files: Option<crate::landing::ModelFiles>,
    /// A view's fingerprint check: set for views that are left alone when unchanged.
    pub view: Option<materialize::view_state::ViewPlan>,
    pub storage: Storage,
    pub late_binding: bool,
    /// An incremental model whose strategy a macro of the project writes.
    pub strategy: Option<Arc<dyn materialize::WrittenStrategy>>,
    /// A model built by a custom materialization.
    pub materialization: Option<Arc<dyn materialize::WrittenMaterialization>>,
}

/// A data test to run.
#[derive(Debug, Clone)]
pub struct TestWork {
    /// The compiled query selecting failing rows.
    pub sql: String,
    /// Thresholds and options; `Err` when its config is unusable.
    pub settings: Result<TestSettings, SettingsError>,
    /// A column test's place in a batch sharing one scan of its relation.
    pub batch: Option<crate::data_test::BatchSlot>,
}

/// A unit test to run: its comparison query (empty until it compiles, right before it runs).
#[derive(Debug, Clone, Default)]
pub struct UnitTestWork {
    pub sql: String,
}

/// What one node runs.
#[derive(Debug, Clone)]
pub enum Job {
    Seed(SeedWork),
    Model(Box<ModelWork>),
    Test(TestWork),
    Unit(UnitTestWork),
}

/// One node of the run and its job.
#[derive(Debug, Clone)]
pub struct Work {
    pub unique_id: NodeId,
    pub label: String,
    pub job: Job,
    /// Compiled right before it runs (its SQL is empty until then), once the relations its
    /// templates may query exist: it reads `execute` or asks the warehouse.
    pub late: Option<Late>,
}

/// What a node compiled right before it runs needs to know.
#[derive(Debug, Clone)]
pub struct Late {
    /// Its relation exists and is incremental: `is_incremental()` is true.
    pub incremental: bool,
}

/// Compiles a late node's SQL into its work (see [`Work::late`]); the message on failure.
pub type LateCompile<'a> = dyn Fn(&mut Work) -> Result<(), String> + Sync + 'a;

/// What is told of each node's result as it is known.
pub type ResultHook = Arc<dyn Fn(&NodeResult) + Send + Sync>;

/// Knobs of a run.
#[derive(Clone)]
pub struct RunOptions {
    pub threads: usize,
    pub full_refresh: bool,
    pub fail_fast: bool,
    /// Told of each node's result as it is known (the run log).
    pub on_result: Option<ResultHook>,
}

fn describe(work: &Work) -> String {
    match &work.job {
        Job::Seed(_) => format!("seed file {}", work.label),
        Job::Test(_) => format!("test {}", work.label),
        Job::Unit(_) => format!("unit_test {}", work.label),
        Job::Model(model) if model.config.materialized == Materialization::Snapshot => {
            format!("snapshot {}", work.label)
        }
        Job::Model(model) => format!(
            "sql {} model {}",
            model.config.materialized.as_str(),
            work.label
        ),
    }
}

/// The message of a bookmarked model that found no new files: it ran no query.
pub const NO_NEW_DATA: &str = "NO NEW DATA";

/// The message of a view left alone: it exists as this run would create it.
pub const VIEW_UNCHANGED: &str = "VIEW UNCHANGED";

/// What a node's work produced.
enum Done {
    Built(Outcome),
    Tested(TestOutcome),
}

/// Where the run's nodes run: shared by every task.
#[derive(Clone)]
pub struct Shared {
    pub adapter: Arc<dyn Adapter>,
    pub catalog: Arc<Catalog>,
    pub state: Arc<dyn StateStore>,
    pub run: Arc<RunContext>,
}

impl Shared {
    fn context(&self) -> Context<'_> {
        Context {
            adapter: self.adapter.as_ref(),
            catalog: self.catalog.as_ref(),
            state: self.state.as_ref(),
            run: self.run.as_ref(),
        }
    }
}

async fn run_model(
    ctx: &Context<'_>,
    model: &ModelWork,
    full_refresh: bool,
) -> Result<Outcome, MaterializeError> {
    if let Some(files) = &model.files {
        if files.is_empty() {
            return Ok(Outcome {
                batches: None,
                message: NO_NEW_DATA.into(),
                rows_affected: Some(0),
                warnings: Vec::new(),
            });
        }
    }
    let mut records: Vec<crate::plan::StateWrite> = model
        .files
        .as_ref()
        .and_then(|f| f.record.clone())
        .into_iter()
        .collect();
    if let Some(plan) = &model.view {
        let fingerprint = plan.fingerprint(ctx.catalog).await?;
        if !full_refresh
            && plan.recorded.as_deref() == Some(fingerprint.as_str())
            && ctx.catalog.kind(&model.relation).await? == Some(crate::adapter::RelationKind::View)
        {
            return Ok(Outcome {
                batches: None,
                message: VIEW_UNCHANGED.into(),
                rows_affected: None,
                warnings: Vec::new(),
            });
        }
        records.push(plan.record(&model.relation, &fingerprint));
    }
    let request = Request {
        relation: &model.relation,
        config: &model.config,
        config_map: &model.config_map,
        sql: &model.sql,
        full_refresh,
        pre_hooks: &model.pre_hooks,
        post_hooks: &model.post_hooks,
        records: &records,
        storage: &model.storage,
        late_binding: model.late_binding,
        strategy: model.strategy.as_deref(),
        materialization: model.materialization.as_deref(),
    };
    let built = materialize::materialize(ctx, &request).await?;
    if !model.comments.is_empty() {
        materialize::apply_comments(ctx, &model.relation, &model.comments).await?;
    }
    materialize::apply_grants(ctx, &model.relation, &model.config_map).await?;
    Ok(built)
}

async fn run_one(shared: Shared, work: Work, full_refresh: bool) -> Result<Done, MaterializeError> {
    let ctx = shared.context();
    match &work.job {
        Job::Unit(unit) => {
            let outcome = crate::data_test::run_unit(&ctx, &unit.sql).await?;
            Ok(Done::Tested(outcome))
        }
        Job::Test(test) => {
            let settings = test
                .settings
                .as_ref()
                .map_err(|e| MaterializeError::Settings(e.to_string()))?;
            let outcome =
                crate::data_test::run(&ctx, &test.sql, settings, test.batch.as_ref()).await?;
            Ok(Done::Tested(outcome))
        }
        Job::Seed(seed) => {
            let loaded = materialize::load_seed(
                &ctx,
                &seed.relation,
                &seed.path,
                &seed.config_map,
                &seed.storage,
            )
            .await?;
            materialize::apply_grants(&ctx, &seed.relation, &seed.config_map).await?;
            Ok(Done::Built(loaded))
        }
        Job::Model(model) => run_model(&ctx, model, full_refresh).await.map(Done::Built),
    }
}

/// Runs `work` (already in any order) respecting the DAG. Returns one result per node.
///
/// Data tests run after the nodes they test; in a `build`, the models that read a tested model
/// also wait for its tests, so a failing error-severity test skips them (dbt's behaviour).
pub async fn execute(
    manifest: &Manifest,
    graph: &Graph,
    shared: &Shared,
    work: Vec<Work>,
    options: &RunOptions,
    printer: &Printer,
    late: &LateCompile<'_>,
) -> Vec<NodeResult> {
    let total = work.len();
    let ids: HashSet<NodeId> = work.iter().map(|w| w.unique_id.clone()).collect();
    let order: HashMap<NodeId, usize> = graph
        .topological_order()
        .into_iter()
        .enumerate()
        .map(|(i, id)| (id, i))
        .collect();
    // A bookmarked model reads the views between it and its landing files inlined, over its
    // own files: it waits for what those views read, not for the views.
    let inlined: HashMap<NodeId, HashSet<NodeId>> = work
        .iter()
        .filter(|w| matches!(&w.job, Job::Model(m) if m.files.is_some()))
        .filter_map(|w| {
            let node = manifest.get(&w.unique_id)?;
            let inline = crate::landing::reach(manifest, node).inline;
            Some((w.unique_id.clone(), inline.into_iter().collect()))
        })
        .collect();
    let mut by_id: HashMap<NodeId, Work> =
        work.into_iter().map(|w| (w.unique_id.clone(), w)).collect();
    let (mut waiting, children) = dependencies(manifest, graph, &ids, &inlined);
    let priority = Priority::new(&children, &order);
    let mut ready: BinaryHeap<Ranked> = waiting
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(id, _)| priority.rank(id))
        .collect();

    let mut results: Vec<NodeResult> = Vec::with_capacity(total);
    let record = |results: &mut Vec<NodeResult>, result: NodeResult| {
        if let Some(told) = &options.on_result {
            told(&result);
        }
        results.push(result);
    };
    let mut skipped: HashSet<NodeId> = HashSet::new();
    type Joined = (
        NodeId,
        f64,
        Arc<counted::Counts>,
        Result<Done, MaterializeError>,
    );
    let mut running: JoinSet<Joined> = JoinSet::new();
    let mut started = 0usize;
    let mut stop = false;
    let threads = options.threads.max(1);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    // Polling once registers the handler now, before any query starts: a Ctrl-C from here on
    // cancels cleanly instead of killing the process mid-statement.
    let _ = futures::poll!(&mut ctrl_c);

    loop {
        while !stop && running.len() < threads {
            let Some(Ranked(_, _, id)) = ready.pop() else {
                break;
            };
            let Some(mut work) = by_id.remove(&id) else {
                continue;
            };
            if skipped.contains(&id) {
                record(&mut results, skip_result(&id));
                release_children(&id, &children, &mut waiting, &mut ready, &priority);
                continue;
            }
            started += 1;
            printer.event(
                &format!("{started} of {total} START {} [RUN]", describe(&work)),
                serde_json::json!({
                    "event": "node_start",
                    "unique_id": work.unique_id.0,
                    "index": started,
                    "total": total,
                }),
            );
            let shared = shared.clone();
            let full_refresh = options.full_refresh;
            let counts = Arc::new(counted::Counts::default());
            // Its parents are built now: compile it (its templates may query them).
            let clock = Instant::now();
            let late_error = match work.late.is_some() {
                true => late(&mut work).err(),
                false => None,
            };
            running.spawn(counted::NODE.scope(counts.clone(), async move {
                let id = work.unique_id.clone();
                let result = match late_error {
                    Some(message) => Err(MaterializeError::Compile(message)),
                    None => run_one(shared, work, full_refresh).await,
                };
                (id, clock.elapsed().as_secs_f64(), counts, result)
            }));
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
                let _ = shared.adapter.cancel().await;
                stop = true;
                continue;
            }
        };
        let Some(joined) = joined else { continue };
        let (id, seconds, counts, result) = match joined {
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
        let failed = match result {
            Ok(Done::Built(outcome)) => {
                printer.event(
                    &format!("OK {name} [{} in {seconds:.2}s]", outcome.message),
                    finished(&id, "success", seconds, &outcome.message),
                );
                for warning in &outcome.warnings {
                    printer.diagnostic(
                        &crate::diagnostic::Diagnostic::warning(format!(
                            "{name}: clean-up after the build failed: {warning}"
                        ))
                        .with_hint("the table is built; the next run drops what is left"),
                    );
                }
                record(
                    &mut results,
                    NodeResult {
                        unique_id: id.clone(),
                        status: Status::Success,
                        message: outcome.message,
                        execution_time: seconds,
                        rows_affected: outcome.rows_affected,
                        failures: None,
                        hint: None,
                        sample: None,
                        stored_in: None,
                        line: None,
                        statements: counts.statements(),
                        transactions: counts.transactions(),
                        warnings: outcome.warnings,
                        batch_results: outcome.batches,
                    },
                );
                false
            }
            Ok(Done::Tested(outcome)) => {
                let message = outcome.message();
                let (status, label) = match outcome.verdict {
                    Verdict::Pass => (Status::Pass, "PASS"),
                    Verdict::Warn => (Status::Warn, "WARN"),
                    Verdict::Fail => (Status::Fail, "FAIL"),
                };
                printer.event(
                    &format!("{label} {name} [{message} in {seconds:.2}s]"),
                    finished(&id, &label.to_lowercase(), seconds, &message),
                );
                record(
                    &mut results,
                    NodeResult {
                        unique_id: id.clone(),
                        status,
                        message,
                        execution_time: seconds,
                        rows_affected: None,
                        failures: Some(outcome.failures),
                        hint: None,
                        sample: outcome.sample,
                        stored_in: outcome.stored_in.map(|r| r.to_string()),
                        line: None,
                        statements: counts.statements(),
                        transactions: counts.transactions(),
                        warnings: Vec::new(),
                        batch_results: None,
                    },
                );
                status == Status::Fail
            }
            Err(err) => {
                printer.event(
                    &format!("ERROR {name} [{seconds:.2}s]: {err}"),
                    finished(&id, "error", seconds, &err.to_string()),
                );
                record(
                    &mut results,
                    NodeResult {
                        unique_id: id.clone(),
                        status: Status::Error,
                        message: err.to_string(),
                        execution_time: seconds,
                        rows_affected: None,
                        failures: None,
                        hint: err.hint(),
                        sample: None,
                        stored_in: None,
                        line: err.line(),
                        statements: counts.statements(),
                        transactions: counts.transactions(),
                        warnings: Vec::new(),
                        batch_results: match err {
                            MaterializeError::Batches { results, .. } => Some(results),
                            _ => None,
                        },
                    },
                );
                true
            }
        };
        if failed {
            skip_behind(&id, graph, &children, &ids, &mut skipped);
            if options.fail_fast {
                let _ = shared.adapter.cancel().await;
                stop = true;
            }
        }
        release_children(&id, &children, &mut waiting, &mut ready, &priority);
        printer.progress(results.len(), total);
    }
    printer.finish_progress();
    // Whatever never started (fail-fast, Ctrl-C, or behind a failure) is skipped. A node that
    // never became ready in a run that went to the end is a scheduling bug: say so loudly.
    let mut leftover: Vec<NodeId> = by_id.into_keys().collect();
    leftover.sort_by_key(|id| order.get(id).copied().unwrap_or(usize::MAX));
    for id in leftover {
        if stop || skipped.contains(&id) {
            record(&mut results, skip_result(&id));
        } else {
            printer.info(&format!(
                "ERROR {id}: it never became ready to run; this is a bug, please report it"
            ));
            let mut result = skip_result(&id);
            result.status = Status::Error;
            result.message = "never became ready to run (a scheduling bug)".into();
            record(&mut results, result);
        }
    }
    results
}

/// Marks everything that waits on a failed node, directly or through others, as skipped.
fn skip_behind(
    id: &NodeId,
    graph: &Graph,
    children: &HashMap<NodeId, Vec<NodeId>>,
    ids: &HashSet<NodeId>,
    skipped: &mut HashSet<NodeId>,
) {
    let mut stack = vec![id.clone()];
    // Selected descendants are skipped even when unselected nodes sit between them.
    for descendant in graph.descendants(id, None) {
        if ids.contains(&descendant) && skipped.insert(descendant.clone()) {
            stack.push(descendant);
        }
    }
    while let Some(next) = stack.pop() {
        for child in children.get(&next).into_iter().flatten() {
            if skipped.insert(child.clone()) {
                stack.push(child.clone());
            }
        }
    }
}

/// For each node of the run, how many of its run-parents it waits for, and who waits on whom.
///
/// A node waits for its nearest ancestors in the run (looking through ephemeral models), and for
/// the tests of those ancestors whose every input is upstream of it.
fn dependencies(
    manifest: &Manifest,
    graph: &Graph,
    ids: &HashSet<NodeId>,
    inlined: &HashMap<NodeId, HashSet<NodeId>>,
) -> (HashMap<NodeId, usize>, HashMap<NodeId, Vec<NodeId>>) {
    let mut parents_of: HashMap<NodeId, HashSet<NodeId>> = HashMap::new();
    // Who reads whom as the DAG has it: the test gates are found on these edges.
    let mut direct: HashMap<NodeId, Vec<NodeId>> = HashMap::new();
    let none = HashSet::new();
    for id in ids {
        let parents = runnable_parents(manifest, id, ids, &none);
        for parent in &parents {
            direct.entry(parent.clone()).or_default().push(id.clone());
        }
        parents_of.insert(id.clone(), parents);
    }
    let is_test = |id: &NodeId| {
        manifest
            .get(id)
            .is_some_and(|n| n.resource_type == ResourceType::Test)
    };
    // dbt's rule: a node waits for a test when everything the test reads is upstream of the
    // node. A `relationships` test from a fact to a dim reads the fact, so the dim's other
    // children do not wait for it, and no cycle can form.
    let mut ancestors: HashMap<NodeId, HashSet<NodeId>> = HashMap::new();
    let mut gates: Vec<(NodeId, NodeId)> = Vec::new();
    for test in ids.iter().filter(|id| is_test(id)) {
        let tested = &parents_of[test];
        let reads: &[NodeId] = manifest
            .get(test)
            .map(|n| n.depends_on.as_slice())
            .unwrap_or_default();
        for parent in tested {
            for child in direct.get(parent).into_iter().flatten() {
                if is_test(child) {
                    continue;
                }
                let upstream_of_child = reads.len() <= 1 || {
                    let upstream = ancestors
                        .entry(child.clone())
                        .or_insert_with(|| graph.ancestors(child, None).into_iter().collect());
                    reads.iter().all(|r| upstream.contains(r))
                };
                if upstream_of_child {
                    gates.push((test.clone(), child.clone()));
                }
            }
        }
    }
    // Tests gate what reads their model as the DAG has it; but a model that inlines views waits
    // for what those views read, not for the views.
    for (id, inline) in inlined {
        if let Some(parents) = parents_of.get_mut(id) {
            *parents = runnable_parents(manifest, id, ids, inline);
        }
    }
    // A model waits for its unit tests: one that fails skips it and what reads it.
    for id in ids {
        let attached = manifest
            .get(id)
            .filter(|n| n.resource_type == ResourceType::UnitTest)
            .and_then(|n| n.test.as_ref()?.attached_node.clone());
        if let Some(model) = attached.filter(|m| ids.contains(m)) {
            gates.push((id.clone(), model));
        }
    }
    for (test, child) in gates {
        if let Some(parents) = parents_of.get_mut(&child) {
            parents.insert(test);
        }
    }
    let mut children: HashMap<NodeId, Vec<NodeId>> = HashMap::new();
    for (id, parents) in &parents_of {
        for parent in parents {
            children.entry(parent.clone()).or_default().push(id.clone());
        }
    }
    let waiting = parents_of
        .into_iter()
        .map(|(id, parents)| (id, parents.len()))
        .collect();
    (waiting, children)
}

fn finished(id: &NodeId, status: &str, seconds: f64, message: &str) -> serde_json::Value {
    serde_json::json!({
        "event": "node_finished",
        "unique_id": id.0,
        "status": status,
        "execution_time": seconds,
        "result": message,
    })
}

fn skip_result(id: &NodeId) -> NodeResult {
    NodeResult::skipped(
        id.clone(),
        "SKIP: an upstream node failed or the run stopped".into(),
    )
}

fn release_children(
    id: &NodeId,
    children: &HashMap<NodeId, Vec<NodeId>>,
    waiting: &mut HashMap<NodeId, usize>,
    ready: &mut BinaryHeap<Ranked>,
    priority: &Priority,
) {
    for child in children.get(id).into_iter().flatten() {
        if let Some(n) = waiting.get_mut(child) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                ready.push(priority.rank(child));
            }
        }
    }
}

/// A ready node's place in the queue: the longest chain of nodes still to run behind it first
/// (starting the critical path early shortens the run; a view nothing waits for goes last),
/// then DAG order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Ranked(usize, std::cmp::Reverse<usize>, NodeId);

/// How long a chain of this run's nodes waits on each node, and the DAG order.
struct Priority<'a> {
    chain: HashMap<NodeId, usize>,
    order: &'a HashMap<NodeId, usize>,
}

impl<'a> Priority<'a> {
    fn new(children: &HashMap<NodeId, Vec<NodeId>>, order: &'a HashMap<NodeId, usize>) -> Self {
        // Post-order over the run's DAG (its edges include test gates), without recursion.
        let mut chain: HashMap<NodeId, usize> = HashMap::new();
        for root in children.keys() {
            let mut stack: Vec<(&NodeId, bool)> = vec![(root, false)];
            while let Some((id, expanded)) = stack.pop() {
                if chain.contains_key(id) {
                    continue;
                }
                let kids = children.get(id).map(Vec::as_slice).unwrap_or_default();
                if expanded {
                    let longest = kids.iter().filter_map(|c| chain.get(c)).max();
                    chain.insert(id.clone(), longest.copied().unwrap_or(0) + 1);
                } else {
                    stack.push((id, true));
                    stack.extend(
                        kids.iter()
                            .filter(|c| !chain.contains_key(*c))
                            .map(|c| (c, false)),
                    );
                }
            }
        }
        Priority { chain, order }
    }

    fn rank(&self, id: &NodeId) -> Ranked {
        Ranked(
            self.chain.get(id).copied().unwrap_or(1),
            std::cmp::Reverse(self.order.get(id).copied().unwrap_or(usize::MAX)),
            id.clone(),
        )
    }
}

/// The runnable nodes `id` waits for: its nearest ancestors that run in this invocation, seen
/// through ephemerals, nodes outside the selection and the models it inlines (`inlined`).
fn runnable_parents(
    manifest: &Manifest,
    id: &NodeId,
    runnable: &HashSet<NodeId>,
    inlined: &HashSet<NodeId>,
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
        if runnable.contains(parent) && !inlined.contains(parent) {
            found.insert(parent.clone());
        } else if let Some(node) = manifest.get(parent) {
            if node.config.materialized == Materialization::Ephemeral || inlined.contains(parent) {
                stack.extend(node.depends_on.iter());
            }
        }
    }
    found
}

/// Counts of results by outcome, for the summary line and the exit code.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Built nodes and passing tests.
    pub pass: usize,
    pub warn: usize,
    /// Errors and failing tests.
    pub error: usize,
    pub skip: usize,
}

pub fn summary(results: &[NodeResult]) -> Summary {
    let count = |statuses: &[Status]| {
        results
            .iter()
            .filter(|r| statuses.contains(&r.status))
            .count()
    };
    Summary {
        pass: count(&[Status::Success, Status::Pass]),
        warn: count(&[Status::Warn]),
        error: count(&[Status::Error, Status::Fail]),
        skip: count(&[Status::Skipped]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(name: &str) -> NodeId {
        NodeId(name.to_string())
    }

    /// `a` comes first in DAG order but nothing waits for it; `b` heads a chain of three.
    #[test]
    fn the_longest_chain_starts_first_then_dag_order() {
        let children: HashMap<NodeId, Vec<NodeId>> = [
            (id("b"), vec![id("c"), id("d")]),
            (id("c"), vec![id("e")]),
            (id("x"), vec![id("y")]),
        ]
        .into_iter()
        .collect();
        let order: HashMap<NodeId, usize> = ["a", "x", "b", "c", "d", "e", "y"]
            .iter()
            .enumerate()
            .map(|(i, n)| (id(n), i))
            .collect();
        let priority = Priority::new(&children, &order);
        let mut ready: BinaryHeap<Ranked> = ["a", "x", "b", "z"]
            .iter()
            .map(|n| priority.rank(&id(n)))
            .collect();
        let mut popped = Vec::new();
        while let Some(Ranked(chain, _, node)) = ready.pop() {
            popped.push((node.0, chain));
        }
        let expected: Vec<(String, usize)> = [("b", 3), ("x", 2), ("a", 1), ("z", 1)]
            .iter()
            .map(|(n, c)| (n.to_string(), *c))
            .collect();
        assert_eq!(popped, expected);
    }
}

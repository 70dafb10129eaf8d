//! Runs `strata build` through the library on a connection the test chooses (a
//! `TestWarehouse` that fails on demand), the way the CLI runs it: load, parse, select every
//! seed, model and test, prepare, run.

use std::path::Path;
use std::sync::Arc;

use strata::adapter::testing::TestWarehouse;
use strata::adapter::{Adapter, Adjusted};
use strata::run::{prepare, NodeResult, RunOptions, Status};

/// What a build did.
pub struct Built {
    pub results: Vec<NodeResult>,
    /// The statements the warehouse ran.
    pub log: Vec<String>,
    /// Why the run stopped before running nodes, if it did.
    pub stopped: Option<String>,
    /// An end hook failed, or strata's state could not be written as the run ended.
    pub end_failed: bool,
}

impl Built {
    pub fn ok(&self) -> bool {
        self.stopped.is_none()
            && !self.end_failed
            && self
                .results
                .iter()
                .all(|r| !matches!(r.status, Status::Error | Status::Fail | Status::Skipped))
    }
}

/// The embedded DuckDB file of a project at `dir` (the default target).
pub fn database(dir: &Path) -> std::path::PathBuf {
    dir.join("target/shop.duckdb")
}

/// DuckDB as a warehouse without transactions or transactional DDL.
pub fn non_transactional() -> Adjusted {
    let mut flavour = Adjusted::new(strata::adapter::embedded_flavour());
    flavour.capabilities.transactions = false;
    flavour.capabilities.transactional_ddl = false;
    flavour
}

/// `strata build` of the project at `dir` on `flavour`, with the warehouse made by `faults`.
pub fn build(
    dir: &Path,
    flavour: Adjusted,
    faults: impl FnOnce(TestWarehouse) -> TestWarehouse,
    vars: &[(&str, serde_json::Value)],
    full_refresh: bool,
) -> Built {
    build_only(dir, flavour, faults, vars, full_refresh, &[])
}

/// [`build`] of the nodes named in `only` (every node when empty).
pub fn build_only(
    dir: &Path,
    flavour: Adjusted,
    faults: impl FnOnce(TestWarehouse) -> TestWarehouse,
    vars: &[(&str, serde_json::Value)],
    full_refresh: bool,
    only: &[&str],
) -> Built {
    build_with(dir, None, Some(flavour), faults, vars, full_refresh, only)
}

/// `strata build` of the project at `dir` on its target `target`, connected as the CLI
/// connects, with the warehouse made by `faults` (its own flavour, unadjusted).
pub fn build_on_target(
    dir: &Path,
    target: &str,
    faults: impl FnOnce(TestWarehouse) -> TestWarehouse,
    vars: &[(&str, serde_json::Value)],
    full_refresh: bool,
) -> Built {
    build_with(dir, Some(target), None, faults, vars, full_refresh, &[])
}

fn build_with(
    dir: &Path,
    target: Option<&str>,
    flavour: Option<Adjusted>,
    faults: impl FnOnce(TestWarehouse) -> TestWarehouse,
    vars: &[(&str, serde_json::Value)],
    full_refresh: bool,
    only: &[&str],
) -> Built {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let project = strata::project::load(&strata::project::LoadOptions {
            project_dir: dir.to_path_buf(),
            profiles_dir: None,
            target: target.map(str::to_string),
            vars: vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            threads: Some(1),
            skip_package_check: false,
            skip_version_check: false,
        })
        .expect("the project loads");
        let engine = Arc::new(
            strata::template::Engine::new(
                &project,
                strata::template::EngineOptions {
                    full_refresh,
                    command: "build".into(),
                    ..Default::default()
                },
            )
            .expect("engine"),
        );
        let manifest = strata::manifest::build(
            &project,
            &engine,
            strata::manifest::ParseOptions {
                check_sql_ahead: false,
                reference: false,
                keep_lineage: false,
            },
        )
        .expect("the project parses");
        let graph = strata::graph::Graph::build(&manifest).expect("no cycle");
        let selected: Vec<_> = graph
            .topological_order()
            .into_iter()
            .filter(|id| {
                manifest.get(id).is_some_and(|n| {
                    (only.is_empty() || only.contains(&n.name.as_str()))
                        && matches!(
                            n.resource_type,
                            strata::manifest::ResourceType::Model
                                | strata::manifest::ResourceType::Seed
                                | strata::manifest::ResourceType::Test
                        )
                })
            })
            .collect();
        let (inner, flavour): (Arc<dyn Adapter>, Adjusted) = match flavour {
            Some(flavour) => {
                let path = database(dir);
                let duckdb = strata::adapter::duckdb::DuckdbAdapter::open(
                    &path.to_string_lossy(),
                    Vec::new(),
                    1,
                )
                .await
                .expect("the database opens");
                (Arc::new(duckdb), flavour)
            }
            None => (
                strata::adapter::connect(&project.target)
                    .await
                    .expect("the target connects"),
                Adjusted::new(strata::adapter::flavour_for(&project.target)),
            ),
        };
        let warehouse = Arc::new(faults(TestWarehouse::new(inner, flavour)));
        let printer = strata::output::Printer::new(true, true, Default::default());
        let inputs = prepare::Inputs {
            project: &project,
            manifest: &manifest,
            engine: &engine,
            printer: &printer,
        };
        let choices = prepare::Choices {
            full_refresh,
            adapter: Some(warehouse.clone() as Arc<dyn Adapter>),
            ..Default::default()
        };
        let options = RunOptions {
            threads: 1,
            full_refresh,
            fail_fast: false,
            on_result: None,
        };
        let outcome = match prepare::prepare(inputs, &selected, &choices).await {
            Ok(prepared) => prepare::run(inputs, &graph, prepared, &options).await,
            Err(stopped) => Err(stopped),
        };
        let log = warehouse.log();
        match outcome {
            Ok(finished) => Built {
                results: finished.results,
                log,
                stopped: None,
                end_failed: finished.end_hook_failed,
            },
            Err(stopped) => Built {
                results: Vec::new(),
                end_failed: false,
                log,
                stopped: Some(
                    stopped
                        .diagnostics
                        .iter()
                        .map(|d| d.to_string())
                        .collect::<Vec<_>>()
                        .join("\n"),
                ),
            },
        }
    })
}

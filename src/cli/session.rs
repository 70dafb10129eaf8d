//! The steps every command shares: load the project, build the engine, run the parse phase,
//! build the DAG, resolve the selection. Each step prints its diagnostics and stops the command
//! with exit code 1 on user errors, before anything is written.

use std::time::Instant;

use super::args::SelectArgs;
use super::settings::Settings;
use super::EXIT_FAILURE;
use crate::diagnostic::Diagnostic;
use crate::graph::selector::{self, Selection, SelectionSpec, SelectorsFile};
use crate::graph::Graph;
use crate::manifest::{Manifest, NodeId, ResourceType};
use crate::project::{self, Project};
use crate::template::{Engine, EngineOptions};

/// A loaded, parsed project.
pub struct Session {
    pub project: Project,
    /// Shared with the run's tasks, which render the macros a model's build calls.
    pub engine: std::sync::Arc<Engine>,
    pub manifest: Manifest,
    pub graph: Graph,
    pub started: Instant,
    /// The previous run `--state` names.
    pub baseline: Option<std::sync::Arc<crate::changes::Baseline>>,
}

impl Session {
    /// Ends a command without freeing the project, the engine and the manifest one allocation
    /// at a time: the process is about to exit, and on 10,000 models the drop alone took
    /// about 50 ms.
    pub fn finish<T>(self, also: T) {
        std::mem::forget((self, also));
    }
}

/// What a command does with the parsed project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Reads the manifest and graph, or compiles a node or two (`parse`, `ls`, `show`, `seed`).
    Inspect,
    /// Compiles a selection (`compile`, `run`, `test`, `build`): the SQL check of the parse
    /// renders starts ahead (see `SqlPrecheck`).
    Compile,
    /// Compiles and traces column lineage (`docs generate`, `lineage`): the check keeps each
    /// render's lineage plan, so the lineage does not parse the SQL again.
    Lineage,
}

/// Loads and parses; on failure the diagnostics are already printed and the exit code returned.
pub fn open(settings: &Settings, next: Next) -> Result<Session, u8> {
    open_with(settings, next, |_| {})
}

/// [`open`], calling `loaded` once the project is loaded and before its parse phase: a command
/// starts there what needs only the project (a warehouse connection) to run alongside the parse.
pub fn open_with(
    settings: &Settings,
    next: Next,
    loaded: impl FnOnce(&Project),
) -> Result<Session, u8> {
    let started = Instant::now();
    let printer = &settings.printer;
    let project = load_project(settings)?;
    loaded(&project);
    // The previous run is read first: a wrong `--state` stops the command before it parses.
    let baseline = match &settings.state {
        None => None,
        Some(dir) => match crate::changes::Baseline::read(dir) {
            Ok(baseline) => Some(std::sync::Arc::new(baseline)),
            Err(err) => {
                printer.diagnostic(&err.to_diagnostic());
                print_error_count(settings, 1);
                return Err(EXIT_FAILURE);
            }
        },
    };
    let engine = match Engine::new(
        &project,
        EngineOptions {
            command: settings.command.clone(),
            full_refresh: settings.full_refresh,
            ..EngineOptions::default()
        },
    ) {
        Ok(engine) => std::sync::Arc::new(engine),
        Err(errors) => {
            printer.diagnostics(&project.warnings);
            for error in &errors {
                printer.diagnostic(&error.to_diagnostic(&project.root, None));
            }
            print_error_count(settings, errors.len());
            return Err(EXIT_FAILURE);
        }
    };
    let manifest = match crate::manifest::build(
        &project,
        &engine,
        crate::manifest::ParseOptions {
            check_sql_ahead: next != Next::Inspect,
            reference: false,
            keep_lineage: next == Next::Lineage,
        },
    ) {
        Ok(manifest) => manifest,
        Err(diagnostics) => {
            let sorted = diagnostics.sorted();
            let errors = sorted.iter().filter(|d| d.is_error()).count();
            printer.diagnostics(&sorted);
            print_error_count(settings, errors);
            super::alerting::stopped(
                settings,
                &project,
                Some(&engine.shared().invocation_id),
                &sorted,
            );
            return Err(EXIT_FAILURE);
        }
    };
    let graph = match Graph::build(&manifest) {
        Ok(graph) => graph,
        Err(cycle) => {
            printer.diagnostics(&manifest.warnings);
            let diagnostic = cycle.to_diagnostic(&manifest);
            printer.diagnostic(&diagnostic);
            print_error_count(settings, 1);
            super::alerting::stopped(
                settings,
                &project,
                Some(&engine.shared().invocation_id),
                std::slice::from_ref(&diagnostic),
            );
            return Err(EXIT_FAILURE);
        }
    };
    printer.diagnostics(&manifest.warnings);
    // `graph.nodes` for the templates that read it (compile phase), as manifest.json has them.
    if project
        .macro_files
        .iter()
        .any(|f| f.source.contains("graph"))
        || manifest.nodes.values().any(|n| n.raw_sql.contains("graph"))
    {
        engine.attach_graph(crate::artifacts::graph_json(&manifest));
    }
    Ok(Session {
        project,
        engine,
        manifest,
        graph,
        started,
        baseline,
    })
}

/// Loads the project alone (commands that need no parse phase, like `debug` and `clean`).
pub fn load_project(settings: &Settings) -> Result<Project, u8> {
    load_project_with(settings, &settings.load)
}

/// Loads the project with adjusted options.
pub fn load_project_with(
    settings: &Settings,
    options: &project::LoadOptions,
) -> Result<Project, u8> {
    match project::load(options) {
        Ok(project) => Ok(project),
        Err(errors) => {
            let root = std::fs::canonicalize(&settings.load.project_dir)
                .unwrap_or_else(|_| settings.load.project_dir.clone());
            for error in &errors {
                settings.printer.diagnostic(&error.to_diagnostic(&root));
            }
            print_error_count(settings, errors.len());
            Err(EXIT_FAILURE)
        }
    }
}

fn print_error_count(settings: &Settings, errors: usize) {
    let noun = if errors == 1 { "error" } else { "errors" };
    settings.printer.info(&format!(
        "strata {} stopped: {errors} {noun}; nothing was written",
        settings.command
    ));
}

/// Resolves `--select`/`--exclude`/`--selector` into node ids.
pub fn select(
    session: &Session,
    settings: &Settings,
    args: &SelectArgs,
    resource_types: Vec<ResourceType>,
) -> Result<Vec<NodeId>, u8> {
    let printer = &settings.printer;
    let fail = |diagnostic: Diagnostic| {
        printer.diagnostic(&diagnostic);
        EXIT_FAILURE
    };
    let mut spec = SelectionSpec {
        resource_types,
        indirect_tests: true,
        ..SelectionSpec::default()
    };
    spec.select = Selection::parse_all(&args.select).map_err(|e| fail(e.to_diagnostic()))?;
    spec.exclude = Selection::parse_all(&args.exclude).map_err(|e| fail(e.to_diagnostic()))?;
    let selectors_path = session.project.root.join("selectors.yml");
    let named = if selectors_path.is_file() {
        let text = std::fs::read_to_string(&selectors_path).map_err(|e| {
            fail(Diagnostic::error(format!(
                "cannot read `selectors.yml`: {e}"
            )))
        })?;
        let file: SelectorsFile = serde_yaml::from_str(&text).map_err(|e| {
            fail(
                Diagnostic::error(format!("invalid `selectors.yml`: {e}")).at(
                    crate::diagnostic::Location {
                        path: "selectors.yml".into(),
                        line: e.location().map(|l| l.line()),
                        column: e.location().map(|l| l.column()),
                    },
                ),
            )
        })?;
        file.selectors
    } else {
        Vec::new()
    };
    let chosen =
        match &args.selector {
            Some(name) => match named.iter().find(|s| &s.name == name) {
                Some(found) => Some(found),
                None => return Err(fail(
                    Diagnostic::error(format!("selector `{name}` is not defined")).with_hint_opt(
                        crate::diagnostic::did_you_mean(
                            name,
                            named.iter().map(|s| s.name.as_str()),
                        )
                        .or(Some(
                            "define it under `selectors:` in `selectors.yml` at the project root"
                                .into(),
                        )),
                    ),
                )),
            },
            None if args.select.is_empty() && args.exclude.is_empty() => {
                named.iter().find(|s| s.default == Some(true))
            }
            None => None,
        };
    if let Some(named) = chosen {
        let (select, exclude) = selector::definition_to_selection(&named.definition)
            .map_err(|e| fail(e.to_diagnostic()))?;
        spec.select.union.extend(select.union);
        spec.exclude.union.extend(exclude.union);
    }
    // The comparison with the previous run costs every node's fingerprint: made only when a
    // selector asks it.
    let compares = [&spec.select, &spec.exclude].iter().any(|s| {
        s.union.iter().flatten().any(|atom| {
            matches!(
                atom.method,
                selector::Method::State | selector::Method::Result
            )
        })
    });
    let source_status = [&spec.select, &spec.exclude].iter().any(|s| {
        s.union
            .iter()
            .flatten()
            .any(|atom| atom.method == selector::Method::SourceStatus)
    });
    if let Some(baseline) = &session.baseline {
        let mut previous = match compares {
            true => {
                Some(baseline.compare(&session.manifest, &session.engine, &session.project.root))
            }
            false => None,
        };
        if source_status {
            let current = crate::changes::read_source_loads(
                &session.project.target_path.join("sources.json"),
            )
            .map_err(|e| fail(e.to_diagnostic()))?;
            let fresher = match (&baseline.source_loads, current) {
                (Some(before), Some(now)) => Some(crate::changes::fresher(before, &now)),
                _ => None,
            };
            previous.get_or_insert_with(Default::default).fresher = fresher;
        }
        spec.previous = previous.map(std::sync::Arc::new);
    }
    let selected = selector::select(&session.manifest, &session.graph, &spec)
        .map_err(|e| fail(e.to_diagnostic()))?;
    session
        .engine
        .set_selected(selected.iter().map(|id| id.0.clone()).collect());
    Ok(selected)
}

/// Connects to the target and gives the templates the connection (`run_query` and the like,
/// for nodes that ask the warehouse while compiling); the runtime the connection lives on is
/// returned, to be kept until compiling is done.
pub fn connect_for_templates(
    session: &Session,
) -> Result<tokio::runtime::Runtime, crate::diagnostic::Diagnostic> {
    use crate::diagnostic::Diagnostic;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Diagnostic::error(format!("cannot start the async runtime: {e}")))?;
    let adapter = runtime
        .block_on(crate::adapter::connect(&session.project.target))
        .map_err(|e| {
            Diagnostic::error(format!(
                "cannot connect to target `{}`, which the selected nodes' templates query: {e}",
                session.project.target.name
            ))
            .with_hint("check the target with `strata debug`")
        })?;
    session.engine.attach_warehouse(std::sync::Arc::new(
        crate::run::introspect::Introspection::new(adapter, runtime.handle().clone()),
    ));
    Ok(runtime)
}

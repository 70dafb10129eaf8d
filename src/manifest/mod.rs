//! The parse phase: every node of the project rendered once to capture its `ref`, `source` and
//! `config` calls, configs merged and resolved, relation names generated, generic tests
//! synthesized from YAML. The result, a [`Manifest`], is what graph/, compile/ and artifacts/
//! work from.
//!
//! Rendering fans out over all cores; errors from every node are collected and reported
//! together, in a stable order. `ref()` and `source()` render as the relations the project and
//! YAML config promise, and each render is kept with what it read, so the compile phase can
//! take it as the compiled SQL when those reads come out the same. For commands that compile
//! next, the kept renders' SQL check starts on a spare thread while the rest of the parse phase
//! runs ([`SqlPrecheck`]).

pub mod generic_tests;
pub mod unit_tests;

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use indexmap::IndexMap;
use rayon::prelude::*;
use serde::Serialize;
use serde_json::Value as Json;

use crate::adapter::Flavour;
use crate::diagnostic::{did_you_mean, Diagnostic, Diagnostics, Location};
use crate::project::config::{
    merge_into, ConfigMap, ConfigTree, IncrementalStrategy, Materialization, NodeConfig,
};
use crate::project::{yaml, ColumnSpec, NodeSpec, Project};
use crate::relation::RelationName;
use crate::sql::{SqlFacts, SqlSyntaxError};
use crate::template::{Engine, NodeInfo, Phase, PhaseReads, RefCall, Resolved, Resolver};

/// The kinds of nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceType {
    Model,
    Seed,
    Snapshot,
    Source,
    Test,
    Analysis,
    /// dbt's unit tests: one model's SQL over fixed inputs.
    UnitTest,
}

impl ResourceType {
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceType::Model => "model",
            ResourceType::Seed => "seed",
            ResourceType::Snapshot => "snapshot",
            ResourceType::Source => "source",
            ResourceType::Test => "test",
            ResourceType::Analysis => "analysis",
            ResourceType::UnitTest => "unit_test",
        }
    }

    pub fn parse(value: &str) -> Option<ResourceType> {
        Some(match value {
            "model" => ResourceType::Model,
            "seed" => ResourceType::Seed,
            "snapshot" => ResourceType::Snapshot,
            "source" => ResourceType::Source,
            "test" | "data_test" => ResourceType::Test,
            "analysis" => ResourceType::Analysis,
            "unit_test" => ResourceType::UnitTest,
            _ => return None,
        })
    }

    pub const ALL: [&'static str; 7] = [
        "model",
        "seed",
        "snapshot",
        "source",
        "test",
        "analysis",
        "unit_test",
    ];
}

/// A node's unique id, as dbt writes it: `model.<project>.<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct NodeId(pub String);

impl std::fmt::Display for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A documented column.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Column {
    pub name: String,
    pub description: String,
    pub data_type: Option<String>,
    pub meta: Json,
    pub tags: Vec<String>,
}

/// What a data test is about.
#[derive(Debug, Clone, Serialize)]
pub struct TestInfo {
    /// `singular`, or the generic test's name (`unique`, `relationships`, …).
    pub test_name: String,
    pub generic: bool,
    pub namespace: Option<String>,
    pub kwargs: IndexMap<String, Json>,
    pub column_name: Option<String>,
    /// The model, seed, snapshot or source the test is attached to.
    pub attached_node: Option<NodeId>,
    /// Where the test was declared (a YAML entry), for errors.
    #[serde(skip)]
    pub declared_at: Option<Location>,
}

/// A source table.
#[derive(Debug, Clone, Serialize)]
pub struct SourceInfo {
    pub source_name: String,
    pub table_name: String,
    pub loaded_at_field: Option<String>,
    /// dbt 1.10's query giving the newest load time.
    pub loaded_at_query: Option<String>,
    /// The `freshness:` block, merged from the project's config, the source and the table.
    pub freshness: Option<Json>,
    pub external: Option<Json>,
}

/// One node of the project, parsed.
#[derive(Debug, Clone, Serialize)]
pub struct Node {
    pub unique_id: NodeId,
    pub resource_type: ResourceType,
    pub name: String,
    pub package_name: String,
    /// Path of the defining file, relative to the project root.
    pub original_file_path: PathBuf,
    /// The YAML file that documents or declares it.
    pub patch_path: Option<PathBuf>,
    pub fqn: Vec<String>,
    #[serde(skip)]
    pub raw_sql: Arc<str>,
    /// Where in `original_file_path` the SQL starts (snapshot blocks), for error lines.
    #[serde(skip)]
    pub raw_line_offset: usize,
    pub config_map: ConfigMap,
    pub config: NodeConfig,
    pub relation: Option<RelationName>,
    pub depends_on: Vec<NodeId>,
    pub refs: Vec<RefCall>,
    pub sources: Vec<(String, String)>,
    pub description: String,
    pub columns: IndexMap<String, Column>,
    pub checksum: String,
    pub test: Option<TestInfo>,
    pub source: Option<SourceInfo>,
    /// The parse phase's render, when nothing it read marks it as phase-specific: the compile
    /// phase uses it as the compiled SQL if every relation and config it read is unchanged.
    #[serde(skip)]
    pub parse_render: Option<Arc<ParseRender>>,
    /// Its parse render read `execute` or asked the warehouse: a run compiles it right before
    /// running it, once the relations it may query are built, as dbt does.
    #[serde(skip)]
    pub compile_late: bool,
    /// Its config as written, where Jinja in the YAML it came from rendered it otherwise
    /// (`schema: "{{ target.schema }}"`): what a state comparison compares (dbt's
    /// `unrendered_config`). `None`: the same as `config_map`.
    #[serde(skip)]
    pub unrendered_config: Option<ConfigMap>,
    /// The macros, vars and environment variables its parse render read.
    #[serde(skip)]
    pub inputs: crate::template::RenderInputs,
    /// A unit test's inputs, expected rows and overrides.
    #[serde(skip)]
    pub unit: Option<Arc<unit_tests::UnitTest>>,
}

/// A parse-phase render kept for the compile phase.
#[derive(Debug, PartialEq)]
pub struct ParseRender {
    pub sql: String,
    /// What the render read that the compile phase may see differently.
    pub reads: PhaseReads,
    /// Messages it logged with `info=True`.
    pub logs: Vec<String>,
    /// The SQL check of `sql` in one warehouse's dialect, run at most once: by
    /// [`SqlPrecheck`] ahead of the compile phase, or by the compile phase itself.
    checked: OnceLock<(&'static str, Result<SqlFacts, SqlSyntaxError>)>,
    /// Reduce the check's syntax tree to its lineage plan, so column lineage need not parse
    /// the SQL again (the tree itself is dropped: on 10,000 models it held 430 MB).
    keep_lineage: bool,
    lineage: OnceLock<Result<crate::lineage::Plan, crate::lineage::LineageError>>,
}

impl ParseRender {
    /// Keeps a render unless it read something that differs between phases by definition.
    fn keep(
        sql: String,
        capture: &crate::template::Capture,
        keep_lineage: bool,
    ) -> Option<Arc<ParseRender>> {
        (!capture.reads.opaque).then(|| {
            Arc::new(ParseRender {
                sql,
                reads: capture.reads.clone(),
                logs: capture.logs.clone(),
                checked: OnceLock::new(),
                keep_lineage,
                lineage: OnceLock::new(),
            })
        })
    }

    /// The SQL check of the render in the warehouse's dialect, done once and kept.
    pub fn check(&self, flavour: &dyn Flavour) -> Cow<'_, Result<SqlFacts, SqlSyntaxError>> {
        let analyze = || crate::sql::analyze(&self.sql, flavour.dialect());
        let (checked_as, result) = self.checked.get_or_init(|| {
            if !self.keep_lineage {
                return (flavour.name(), analyze());
            }
            let checked = crate::sql::analyze_keeping(&self.sql, flavour.dialect()).map(
                |(facts, statements)| {
                    let _ = self.lineage.set(crate::lineage::Plan::of(&statements));
                    facts
                },
            );
            (flavour.name(), checked)
        });
        if *checked_as == flavour.name() {
            Cow::Borrowed(result)
        } else {
            Cow::Owned(analyze())
        }
    }

    /// The lineage plan of the render's SQL in the warehouse's dialect, when the parse keeps
    /// it (`ParseOptions::keep_lineage`) and the SQL parses: checked now if it was not yet.
    pub fn lineage_plan(
        &self,
        flavour: &dyn Flavour,
    ) -> Option<&Result<crate::lineage::Plan, crate::lineage::LineageError>> {
        if !self.keep_lineage {
            return None;
        }
        let _ = self.check(flavour);
        match self.checked.get() {
            Some((checked_as, _)) if *checked_as == flavour.name() => self.lineage.get(),
            _ => None,
        }
    }
}

/// The SQL check of the kept parse renders, run on a thread of its own from the end of the
/// parse phase's renders until the compile phase starts: the rest of the parse phase, the
/// graph, the selection and a run's warehouse round trips leave a core idle, and the check is
/// a fifth of a large compile's work. Whatever it has not reached when it stops, the compile
/// phase checks itself; nothing depends on how far it got.
#[derive(Debug)]
pub struct SqlPrecheck {
    stop: Arc<AtomicBool>,
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "joined by tests; commands never wait for it")
    )]
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SqlPrecheck {
    fn start(renders: Vec<Arc<ParseRender>>, flavour: Arc<dyn Flavour>) -> SqlPrecheck {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        // A thread that cannot be started only leaves all the checking to the compile phase.
        let thread = std::thread::Builder::new()
            .name("sql-precheck".into())
            .spawn(move || {
                for render in renders {
                    if stopped.load(Ordering::Relaxed) {
                        break;
                    }
                    let _ = render.check(flavour.as_ref());
                }
            })
            .ok();
        SqlPrecheck { stop, thread }
    }

    /// Waits until every render is checked (tests only: commands never wait for it).
    #[cfg(test)]
    fn finish(mut self) {
        if let Some(thread) = self.thread.take() {
            thread.join().expect("the precheck thread panicked");
        }
    }

    /// Stops the thread after the render it is checking: the compile phase wants both cores.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Drop for SqlPrecheck {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What the parse phase does beyond building the manifest.
#[derive(Debug, Clone, Copy, Default)]
pub struct ParseOptions {
    /// Start a [`SqlPrecheck`]: the command compiles next.
    pub check_sql_ahead: bool,
    /// Render every generic test to capture its refs, even where they can be read off a
    /// built-in test's arguments (the tests compare both ways).
    pub reference: bool,
    /// Keep the lineage plan of each kept render's SQL check, for column lineage.
    pub keep_lineage: bool,
}

impl Node {
    pub fn tags(&self) -> &[String] {
        &self.config.tags
    }

    /// Whether column lineage traces it: models and snapshots.
    pub fn traces_lineage(&self) -> bool {
        matches!(
            self.resource_type,
            ResourceType::Model | ResourceType::Snapshot
        )
    }

    pub fn is_ephemeral(&self) -> bool {
        self.config.materialized == Materialization::Ephemeral
    }

    /// Whether its compiled SQL is checked with sqlparser (`+sql_check: false` turns it off).
    pub fn sql_check(&self) -> bool {
        self.config_map
            .get("sql_check")
            .and_then(Json::as_bool)
            .unwrap_or(true)
    }

    /// The name `ls --output selector` prints.
    pub fn selector_name(&self) -> String {
        match self.resource_type {
            ResourceType::Source => match &self.source {
                Some(s) => format!(
                    "source:{}.{}.{}",
                    self.package_name, s.source_name, s.table_name
                ),
                None => format!("source:{}", self.fqn.join(".")),
            },
            _ => self.fqn.join("."),
        }
    }

    /// The info templates need to render this node.
    pub fn node_info(&self) -> NodeInfo {
        let mut extra = serde_json::Map::new();
        extra.insert("description".into(), Json::from(self.description.clone()));
        extra.insert("raw_code".into(), Json::from(self.raw_sql.to_string()));
        extra.insert(
            "columns".into(),
            serde_json::to_value(&self.columns).unwrap_or(Json::Null),
        );
        NodeInfo {
            unique_id: self.unique_id.0.clone(),
            name: self.name.clone(),
            resource_type: self.resource_type.as_str().to_string(),
            package: self.package_name.clone(),
            path: self.original_file_path.to_string_lossy().into_owned(),
            fqn: self.fqn.clone(),
            this: self.relation.clone(),
            config: self.config_map.clone(),
            is_incremental: false,
            model_extra: extra,
            variables: Default::default(),
            overrides: None,
        }
    }
}

/// Every node of a project after the parse phase.
#[derive(Debug, Default)]
pub struct Manifest {
    pub project_name: String,
    pub nodes: IndexMap<NodeId, Node>,
    /// Disabled nodes, kept so a ref to one gets a precise error.
    pub disabled: IndexMap<NodeId, Node>,
    pub warnings: Vec<Diagnostic>,
    /// The SQL check running ahead of the compile phase, when one was asked for.
    pub precheck: Option<SqlPrecheck>,
}

impl Manifest {
    /// Finds the node a `ref()` from a node of `from_package` names: models, seeds and
    /// snapshots share one namespace, searched as dbt searches it (the named package; else
    /// the root project, the calling node's package, then any package).
    pub fn find_ref(&self, call: &RefCall, from_package: &str) -> Option<&NodeId> {
        let kinds = [
            ResourceType::Model,
            ResourceType::Seed,
            ResourceType::Snapshot,
        ];
        for package in search_packages(&self.project_name, from_package, call.package.as_deref()) {
            for kind in &kinds {
                let id = NodeId(format!("{}.{package}.{}", kind.as_str(), call.name));
                if let Some((k, _)) = self.nodes.get_key_value(&id) {
                    return Some(k);
                }
            }
        }
        if call.package.is_some() {
            return None;
        }
        self.nodes
            .iter()
            .find(|(_, n)| n.name == call.name && kinds.contains(&n.resource_type))
            .map(|(k, _)| k)
    }

    /// Finds a source table declared in the root project, the calling node's package, or
    /// any package, in that order.
    pub fn find_source(&self, source: &str, table: &str, from_package: &str) -> Option<&NodeId> {
        for package in search_packages(&self.project_name, from_package, None) {
            let id = NodeId(format!("source.{package}.{source}.{table}"));
            if let Some((k, _)) = self.nodes.get_key_value(&id) {
                return Some(k);
            }
        }
        self.nodes
            .iter()
            .find(|(_, n)| {
                n.source
                    .as_ref()
                    .is_some_and(|s| s.source_name == source && s.table_name == table)
            })
            .map(|(k, _)| k)
    }

    pub fn get(&self, id: &NodeId) -> Option<&Node> {
        self.nodes.get(id)
    }
}

/// The packages a `ref()` or `source()` searches before any package, as dbt orders them: the
/// package it names; else the root project, then the calling node's own package.
pub fn search_packages<'a>(
    root: &'a str,
    from_package: &'a str,
    named: Option<&'a str>,
) -> Vec<&'a str> {
    match named {
        Some(package) => vec![package],
        None if from_package == root => vec![root],
        None => vec![root, from_package],
    }
}

/// A node before rendering: its file, identity and pre-render config.
struct Pending {
    node: Node,
    /// Template path for error messages.
    template_path: String,
}

/// Runs the parse phase over a loaded project.
pub fn build(
    project: &Project,
    engine: &Engine,
    options: ParseOptions,
) -> Result<Manifest, Diagnostics> {
    let mut diagnostics = Diagnostics::new();
    let project_name = project.name.clone();
    let root = project.root.as_path();

    // Index YAML entries by (section, name) with the file they came from.
    #[allow(clippy::type_complexity)]
    let mut patches: IndexMap<
        (String, ResourceType, String),
        (&NodeSpec, PathBuf, &yaml::EntryIndex),
    > = IndexMap::new();
    // The config trees of each package: its own project file's, then the root project's.
    let trees = |package: &str, pick: fn(&crate::project::ConfigTrees) -> &ConfigTree| {
        project
            .config_trees(package)
            .into_iter()
            .map(pick)
            .collect::<Vec<&ConfigTree>>()
    };
    for spec in &project.specs {
        let sections = [
            (ResourceType::Model, &spec.spec.models),
            (ResourceType::Seed, &spec.spec.seeds),
            (ResourceType::Snapshot, &spec.spec.snapshots),
            (ResourceType::Analysis, &spec.spec.analyses),
        ];
        for (kind, entries) in sections {
            for entry in entries {
                let key = (spec.package.clone(), kind, entry.name.clone());
                if let Some((_, first, _)) = patches.get(&key) {
                    if kind != ResourceType::Snapshot || entry.relation.is_none() {
                        diagnostics.push(
                            Diagnostic::error(format!(
                                "{} `{}` is described twice in YAML: `{}` and `{}`",
                                kind.as_str(),
                                entry.name,
                                first.display(),
                                spec.path.display()
                            ))
                            .at(Location {
                                path: spec.path.clone(),
                                line: spec.entries.first(&entry.name),
                                column: None,
                            })
                            .with_hint("keep one entry per node"),
                        );
                    }
                    continue;
                }
                patches.insert(key, (entry, spec.path.clone(), &spec.entries));
            }
        }
    }

    // The same entries as written, where a YAML file has Jinja (see `SpecFile::unrendered`).
    let mut raw_patches: std::collections::HashMap<(String, ResourceType, String), &NodeSpec> =
        std::collections::HashMap::new();
    for spec in &project.specs {
        let Some(raw) = &spec.unrendered else {
            continue;
        };
        for (kind, entries) in [
            (ResourceType::Model, &raw.models),
            (ResourceType::Seed, &raw.seeds),
            (ResourceType::Snapshot, &raw.snapshots),
            (ResourceType::Analysis, &raw.analyses),
        ] {
            for entry in entries {
                raw_patches
                    .entry((spec.package.clone(), kind, entry.name.clone()))
                    .or_insert(entry);
            }
        }
    }
    // Where a node's config came from Jinja, what was written.
    let unrendered = |package: &str,
                      pick: fn(&crate::project::ConfigTrees) -> &ConfigTree,
                      kind: ResourceType,
                      name: &str|
     -> Option<Unrendered<'_>> {
        let spec = raw_patches
            .get(&(package.to_string(), kind, name.to_string()))
            .copied();
        let trees_have_jinja = project.unrendered_configs.is_some()
            || project
                .package(package)
                .is_some_and(|p| p.unrendered_configs.is_some());
        (spec.is_some() || trees_have_jinja).then(|| Unrendered {
            trees: project
                .unrendered_config_trees(package)
                .into_iter()
                .map(pick)
                .collect(),
            spec,
        })
    };

    let mut pending: Vec<Pending> = Vec::new();

    // Models.
    for file in &project.models {
        let fqn = fqn_of(&file.package, &file.folders, &file.name);
        let patch = patches.get(&(file.package.clone(), ResourceType::Model, file.name.clone()));
        let node = base_node(
            ResourceType::Model,
            &file.package,
            &file.name,
            &file.path,
            fqn,
            Arc::from(file.source.as_str()),
            &trees(&file.package, |t| &t.models),
            patch.map(|(spec, path, _)| (*spec, path.clone())),
            unrendered(
                &file.package,
                |t| &t.models,
                ResourceType::Model,
                &file.name,
            ),
            &mut diagnostics,
        );
        pending.push(Pending {
            template_path: file.path.to_string_lossy().into_owned(),
            node,
        });
    }
    // Analyses render like models but never run.
    for file in &project.analyses {
        let fqn = fqn_of(&file.package, &file.folders, &file.name);
        let patch = patches.get(&(
            file.package.clone(),
            ResourceType::Analysis,
            file.name.clone(),
        ));
        let node = base_node(
            ResourceType::Analysis,
            &file.package,
            &file.name,
            &file.path,
            fqn,
            Arc::from(file.source.as_str()),
            &trees(&file.package, |t| &t.analyses),
            patch.map(|(spec, path, _)| (*spec, path.clone())),
            unrendered(
                &file.package,
                |t| &t.analyses,
                ResourceType::Analysis,
                &file.name,
            ),
            &mut diagnostics,
        );
        pending.push(Pending {
            template_path: file.path.to_string_lossy().into_owned(),
            node,
        });
    }
    // Snapshots: `{% snapshot name %}` blocks in SQL files, and YAML snapshots with `relation:`.
    for file in &project.snapshots {
        for block in snapshot_blocks(&file.source) {
            let fqn = fqn_of(&file.package, &file.folders, &block.name);
            let patch = patches.get(&(
                file.package.clone(),
                ResourceType::Snapshot,
                block.name.clone(),
            ));
            let mut node = base_node(
                ResourceType::Snapshot,
                &file.package,
                &block.name,
                &file.path,
                fqn,
                Arc::from(block.body.as_str()),
                &trees(&file.package, |t| &t.snapshots),
                patch.map(|(spec, path, _)| (*spec, path.clone())),
                unrendered(
                    &file.package,
                    |t| &t.snapshots,
                    ResourceType::Snapshot,
                    &block.name,
                ),
                &mut diagnostics,
            );
            node.raw_line_offset = block.line_offset;
            pending.push(Pending {
                template_path: file.path.to_string_lossy().into_owned(),
                node,
            });
        }
    }
    for ((package, kind, name), (spec, path, _)) in &patches {
        if *kind != ResourceType::Snapshot {
            continue;
        }
        let Some(relation) = &spec.relation else {
            continue;
        };
        let sql = format!("select * from {{{{ {relation} }}}}");
        let fqn = vec![package.clone(), name.clone()];
        let node = base_node(
            ResourceType::Snapshot,
            package,
            name,
            path,
            fqn,
            Arc::from(sql.as_str()),
            &trees(package, |t| &t.snapshots),
            Some(((*spec), path.clone())),
            unrendered(package, |t| &t.snapshots, ResourceType::Snapshot, name),
            &mut diagnostics,
        );
        pending.push(Pending {
            template_path: path.to_string_lossy().into_owned(),
            node,
        });
    }
    // Singular tests.
    for file in &project.singular_tests {
        let fqn = fqn_of(&file.package, &file.folders, &file.name);
        let mut node = base_node(
            ResourceType::Test,
            &file.package,
            &file.name,
            &file.path,
            fqn,
            Arc::from(file.source.as_str()),
            &trees(&file.package, |t| &t.tests),
            None,
            unrendered(&file.package, |t| &t.tests, ResourceType::Test, &file.name),
            &mut diagnostics,
        );
        node.test = Some(TestInfo {
            test_name: "singular".into(),
            generic: false,
            namespace: None,
            kwargs: IndexMap::new(),
            column_name: None,
            attached_node: None,
            declared_at: None,
        });
        pending.push(Pending {
            template_path: file.path.to_string_lossy().into_owned(),
            node,
        });
    }

    // Seeds (before the render: models ref them).
    let mut seeds: Vec<Node> = Vec::with_capacity(project.seeds.len());
    for seed in &project.seeds {
        let fqn = fqn_of(&seed.package, &seed.folders, &seed.name);
        let patch = patches.get(&(seed.package.clone(), ResourceType::Seed, seed.name.clone()));
        let mut node = base_node(
            ResourceType::Seed,
            &seed.package,
            &seed.name,
            &seed.path,
            fqn,
            Arc::from(""),
            &trees(&seed.package, |t| &t.seeds),
            patch.map(|(spec, path, _)| (*spec, path.clone())),
            unrendered(&seed.package, |t| &t.seeds, ResourceType::Seed, &seed.name),
            &mut diagnostics,
        );
        node.checksum = seed.checksum.clone();
        seeds.push(node);
    }

    // Render every SQL node in parallel to capture refs, sources and config().
    let provisional: Arc<dyn Resolver> = Arc::new(Provisional::new(
        project,
        pending.iter().map(|p| &p.node).chain(&seeds),
    ));
    let rendered: Vec<Result<Node, (String, Diagnostic)>> = pending
        .into_par_iter()
        .map(
            |Pending {
                 mut node,
                 template_path,
             }| {
                let mut info = node.node_info();
                info.this = Some(provisional_relation(&node, project));
                let resolver = Some(provisional.clone());
                match engine.render(&template_path, &node.raw_sql, info, Phase::Parse, resolver) {
                    Ok((sql, capture)) => {
                        node.compile_late = capture.reads.execute || capture.reads.introspective;
                        let keep_lineage = options.keep_lineage && node.traces_lineage();
                        node.parse_render = ParseRender::keep(sql, &capture, keep_lineage);
                        node.refs = capture.refs;
                        node.sources = capture.sources;
                        merge_into(&mut node.config_map, &capture.config);
                        if let Some(written) = &mut node.unrendered_config {
                            merge_into(written, &capture.config);
                        }
                        node.inputs = capture.inputs;
                        Ok(node)
                    }
                    Err(err) => {
                        let mut err = err;
                        if err.path == template_path {
                            err.line = err.line.map(|l| l + node.raw_line_offset);
                        }
                        Err((
                            node.name.clone(),
                            err.to_diagnostic(
                                root,
                                Some(&format!("{} `{}`", node.resource_type.as_str(), node.name)),
                            ),
                        ))
                    }
                }
            },
        )
        .collect();

    let mut nodes: Vec<Node> = Vec::with_capacity(rendered.len() + seeds.len());
    let mut failed: Vec<String> = Vec::new();
    for result in rendered {
        match result {
            Ok(node) => nodes.push(node),
            Err((name, diagnostic)) => {
                failed.push(name);
                diagnostics.push(diagnostic);
            }
        }
    }
    nodes.extend(seeds);
    let precheck = options.check_sql_ahead.then(|| {
        let renders = nodes
            .iter()
            .filter(|node| {
                // Configs are not resolved yet: `materialized` is read as written.
                let materialized = node.config_map.get("materialized").and_then(Json::as_str);
                node.sql_check() && materialized != Some("ephemeral")
            })
            .filter_map(|node| node.parse_render.clone())
            .collect();
        SqlPrecheck::start(renders, crate::adapter::flavour_for(&project.target))
    });

    // Sources.
    for spec_file in &project.specs {
        for (i, source) in spec_file.spec.sources.iter().enumerate() {
            for (j, table) in source.tables.iter().enumerate() {
                let folders = spec_file.folders();
                let package = &spec_file.package;
                let mut fqn = vec![package.clone()];
                fqn.extend(folders);
                fqn.push(source.name.clone());
                fqn.push(table.name.clone());
                let config_map =
                    source_config(&fqn, &trees(package, |t| &t.sources), source, table);
                // Its definition as written (the same file parsed without rendering its
                // Jinja, so the same positions), which a state comparison compares.
                let written = spec_file
                    .unrendered
                    .as_ref()
                    .and_then(|raw| raw.sources.get(i))
                    .and_then(|raw| Some((raw, raw.tables.get(j)?)))
                    .unwrap_or((source, table));
                let raw_trees: Vec<&ConfigTree> = project
                    .unrendered_config_trees(package)
                    .into_iter()
                    .map(|t| &t.sources)
                    .collect();
                let unrendered_config = Some(source_definition(
                    source_config(&fqn, &raw_trees, written.0, written.1),
                    written.0,
                    written.1,
                ));
                let config = resolve_config(
                    &config_map,
                    Materialization::Table,
                    &spec_file.path,
                    &mut diagnostics,
                );
                let unique_id = NodeId(format!("source.{package}.{}.{}", source.name, table.name));
                // dbt 1.10 also takes these under `config:` (and the project's `sources:`).
                let config_text = |key: &str| {
                    config_map
                        .get(key)
                        .and_then(Json::as_str)
                        .map(str::to_string)
                };
                let source_info = SourceInfo {
                    source_name: source.name.clone(),
                    table_name: table.name.clone(),
                    loaded_at_field: table
                        .loaded_at_field
                        .clone()
                        .or_else(|| source.loaded_at_field.clone())
                        .or_else(|| config_text("loaded_at_field")),
                    loaded_at_query: table
                        .loaded_at_query
                        .clone()
                        .or_else(|| source.loaded_at_query.clone())
                        .or_else(|| config_text("loaded_at_query")),
                    freshness: crate::freshness::merge(&[
                        config_map.get("freshness"),
                        source.freshness.as_ref(),
                        table.freshness.as_ref(),
                    ]),
                    external: table.external.clone(),
                };
                let node = Node {
                    unique_id: unique_id.clone(),
                    resource_type: ResourceType::Source,
                    name: table.name.clone(),
                    package_name: package.clone(),
                    original_file_path: spec_file.path.clone(),
                    patch_path: Some(spec_file.path.clone()),
                    fqn,
                    raw_sql: Arc::from(""),
                    raw_line_offset: 0,
                    config_map,
                    config,
                    relation: Some(source_relation(project, source, table)),
                    depends_on: Vec::new(),
                    refs: Vec::new(),
                    sources: Vec::new(),
                    description: table
                        .description
                        .clone()
                        .or_else(|| source.description.clone())
                        .unwrap_or_default(),
                    columns: columns_of(&table.columns),
                    checksum: String::new(),
                    test: None,
                    source: Some(source_info),
                    parse_render: None,
                    compile_late: false,
                    unrendered_config,
                    inputs: Default::default(),
                    unit: None,
                };
                nodes.push(node);
            }
        }
    }

    // Resolve configs, relation names; split enabled from disabled.
    let mut manifest = Manifest {
        project_name: project_name.clone(),
        precheck,
        ..Manifest::default()
    };
    // Nodes are large (about 1 KB inline): sized once here and once more for the tests, not
    // grown by doubling.
    manifest.nodes.reserve(nodes.len());
    for mut node in nodes {
        if node.resource_type != ResourceType::Source {
            let default = default_materialization(node.resource_type);
            node.config = resolve_config(
                &node.config_map,
                default,
                &node.original_file_path,
                &mut diagnostics,
            );
            if node.resource_type != ResourceType::Test {
                node.relation = Some(relation_for(&node, project, engine, &mut diagnostics));
            }
        }
        if let Materialization::Custom(name) = &node.config.materialized {
            let defined = engine
                .materialization_macro(&node.package_name, name)
                .is_some();
            if !defined || node.resource_type != ResourceType::Model {
                let (message, hint) = if defined {
                    (
                        format!(
                            "custom materialization `{name}` for {} `{}`: strata runs custom materializations for models only",
                            node.resource_type.as_str(),
                            node.name
                        ),
                        None,
                    )
                } else {
                    (
                        format!(
                            "unknown materialization `{name}` for {} `{}`: no `{{% materialization {name} %}}` block defines it",
                            node.resource_type.as_str(),
                            node.name
                        ),
                        did_you_mean(
                            name,
                            crate::project::config::BUILTIN_MATERIALIZATIONS
                                .iter()
                                .copied(),
                        )
                        .or(Some(format!(
                            "use view, table, incremental or ephemeral, or define `{{% materialization {name}, default %}}` in macros/"
                        ))),
                    )
                };
                diagnostics.push(
                    Diagnostic::error(message)
                        .at_file(&node.original_file_path)
                        .with_hint_opt(hint),
                );
            }
        }
        if let Some(IncrementalStrategy::Custom(name)) = &node.config.incremental_strategy {
            let wanted = crate::template::written::strategy_macro_name(name);
            if node.config.materialized == Materialization::Incremental
                && !engine.reaches_macro(&node.package_name, &wanted)
            {
                diagnostics.push(
                    Diagnostic::error(format!(
                        "unknown incremental_strategy `{name}` for {} `{}`: no macro `{wanted}` defines it",
                        node.resource_type.as_str(),
                        node.name
                    ))
                    .at_file(&node.original_file_path)
                    .with_hint_opt(
                        did_you_mean(
                            name,
                            crate::project::config::BUILTIN_STRATEGIES.iter().copied(),
                        )
                        .or(Some(format!(
                            "use append, merge, delete+insert or insert_overwrite, or write a custom strategy as a macro `{wanted}(arg_dict)` in macros/"
                        ))),
                    ),
                );
            }
        }
        let id = node.unique_id.clone();
        if node.config.enabled {
            manifest.nodes.insert(id, node);
        } else {
            manifest.disabled.insert(id, node);
        }
    }

    // A project's own version of a built-in materialization is not run: strata builds those
    // with its plans (atomic swaps, state). Said once per macro, never silent.
    let macros = engine
        .macros()
        .iter()
        .chain(engine.package_macros().values().flat_map(|m| m.iter()));
    for (name, location) in macros {
        // `materialization_<name>_<adapter>`; adapter names have no underscore.
        let Some((materialization, _)) = name
            .strip_prefix("materialization_")
            .and_then(|rest| rest.rsplit_once('_'))
        else {
            continue;
        };
        let Some(builtin) = crate::project::config::BUILTIN_MATERIALIZATIONS
            .iter()
            .find(|m| **m == materialization)
        else {
            continue;
        };
        diagnostics.push(
            Diagnostic::warning(format!(
                "`{{% materialization {builtin} %}}` is not run: strata builds `{builtin}` models with its own plans"
            ))
            .at(Location {
                path: location.path.clone().into(),
                line: Some(location.line),
                column: None,
            })
            .with_hint("give the materialization another name and set `materialized:` to it on the models that need it"),
        );
    }

    // Configs strata accepts but does not act on: named, once per key, never silent.
    let mut unacted: IndexMap<&'static str, (bool, &'static str, Vec<&Node>)> = IndexMap::new();
    for node in manifest.nodes.values() {
        // A strategy a macro of the project writes may read these keys itself.
        let written = node.config.materialized == Materialization::Incremental
            && engine
                .written_strategy(
                    node.config
                        .incremental_strategy
                        .as_ref()
                        .map(IncrementalStrategy::as_str),
                )
                .is_some();
        for (key, changes_data, hint) in crate::project::config::not_acted_on(&node.config_map) {
            if written && crate::project::config::STRATEGY_KEYS.contains(&key) {
                continue;
            }
            unacted
                .entry(key)
                .or_insert((changes_data, hint, Vec::new()))
                .2
                .push(node);
        }
    }
    for (key, (changes_data, hint, nodes)) in unacted {
        let first = nodes[0];
        let mut named: Vec<String> = nodes
            .iter()
            .take(3)
            .map(|n| format!("`{}`", n.name))
            .collect();
        if nodes.len() > 3 {
            named.push(format!("{} more", nodes.len() - 3));
        }
        let message = if changes_data {
            format!(
                "config `{key}` is not supported by strata, and ignoring it could change what is built: {}",
                named.join(", ")
            )
        } else {
            format!(
                "config `{key}` is not acted on by strata: {}",
                named.join(", ")
            )
        };
        let diagnostic = if changes_data {
            Diagnostic::error(message)
        } else {
            Diagnostic::warning(message)
        };
        let diagnostic = diagnostic
            .at_file(
                first
                    .patch_path
                    .as_ref()
                    .unwrap_or(&first.original_file_path),
            )
            .with_hint(hint);
        if changes_data {
            diagnostics.push(diagnostic);
        } else {
            manifest.warnings.push(diagnostic);
        }
    }

    // YAML entries that describe nothing.
    for ((package, kind, name), (_, path, entries)) in &patches {
        let id = NodeId(format!("{}.{package}.{name}", kind.as_str()));
        if !manifest.nodes.contains_key(&id) && !manifest.disabled.contains_key(&id) {
            let candidates: Vec<&str> = manifest
                .nodes
                .values()
                .filter(|n| n.resource_type == *kind)
                .map(|n| n.name.as_str())
                .collect();
            manifest.warnings.push(
                Diagnostic::warning(format!(
                    "YAML describes {} `{name}`, but there is no such {}",
                    kind.as_str(),
                    kind.as_str()
                ))
                .at(Location {
                    path: path.clone(),
                    line: entries.first(name),
                    column: None,
                })
                .with_hint_opt(did_you_mean(name, candidates)),
            );
        }
    }

    // Generic tests from YAML: rendered like any node to capture their refs, unless those are
    // known from the arguments of a built-in test.
    let tests = generic_tests::synthesize(project, &manifest, engine, &mut diagnostics);
    let rendered_tests: Vec<Result<Node, Diagnostic>> = tests
        .into_par_iter()
        .map(|test| {
            let mut node = test.node;
            if test.dependencies_known && !options.reference {
                return Ok(node);
            }
            let info = node.node_info();
            let path = node.original_file_path.to_string_lossy().into_owned();
            let resolver = Some(provisional.clone());
            match engine.render(&path, &node.raw_sql, info, Phase::Parse, resolver) {
                Ok((sql, capture)) => {
                    node.compile_late = capture.reads.execute || capture.reads.introspective;
                    let keep_lineage = options.keep_lineage && node.traces_lineage();
                    node.parse_render = ParseRender::keep(sql, &capture, keep_lineage);
                    node.refs = capture.refs;
                    node.sources = capture.sources;
                    Ok(node)
                }
                Err(err) => {
                    let declared = node.test.as_ref().and_then(|t| t.declared_at.clone());
                    let mut diagnostic =
                        Diagnostic::error(format!("in test `{}`: {}", node.name, err.message))
                            .with_hint_opt(err.hint.clone());
                    if let Some(location) = declared {
                        diagnostic = diagnostic.at(location);
                    }
                    Err(diagnostic)
                }
            }
        })
        .collect();
    manifest.nodes.reserve(rendered_tests.len());
    for result in rendered_tests {
        match result {
            Ok(node) => {
                if node.config.enabled {
                    manifest.nodes.insert(node.unique_id.clone(), node);
                }
            }
            Err(d) => diagnostics.push(d),
        }
    }

    resolve_dependencies(&mut manifest, root, &failed, &mut diagnostics);
    unit_tests::add(project, &mut manifest, &mut diagnostics);
    manifest.warnings.extend(project.warnings.iter().cloned());
    if diagnostics.has_errors() {
        diagnostics.extend(manifest.warnings.drain(..));
        return Err(diagnostics);
    }
    manifest.warnings.extend(diagnostics);
    Ok(manifest)
}

/// Turns captured `ref`/`source` calls into node ids, reporting missing ones with did-you-mean.
fn resolve_dependencies(
    manifest: &mut Manifest,
    root: &Path,
    failed: &[String],
    diagnostics: &mut Diagnostics,
) {
    let ref_names: Vec<String> = manifest
        .nodes
        .values()
        .filter(|n| {
            matches!(
                n.resource_type,
                ResourceType::Model | ResourceType::Seed | ResourceType::Snapshot
            )
        })
        .map(|n| n.name.clone())
        .collect();
    let source_names: Vec<String> = manifest
        .nodes
        .values()
        .filter_map(|n| {
            n.source
                .as_ref()
                .map(|s| format!("{}.{}", s.source_name, s.table_name))
        })
        .collect();
    let mut resolved: Vec<(NodeId, Vec<NodeId>)> = Vec::new();
    for node in manifest.nodes.values() {
        let mut deps: Vec<NodeId> = Vec::new();
        let locate = |needle: &str| -> Location {
            match &node.test {
                Some(test) if test.generic => test
                    .declared_at
                    .clone()
                    .unwrap_or_else(|| Location::file(&node.original_file_path)),
                _ => Location {
                    path: node.original_file_path.clone(),
                    line: call_line(&node.raw_sql, needle).map(|l| l + node.raw_line_offset),
                    column: None,
                },
            }
        };
        let what = format!("{} `{}`", node.resource_type.as_str(), node.name);
        for call in &node.refs {
            match manifest.find_ref(call, &node.package_name) {
                Some(id) => {
                    if !deps.contains(id) {
                        deps.push(id.clone());
                    }
                }
                None if failed.contains(&call.name) => {
                    // Its own render failed and was reported; a second error would only be noise.
                }
                None => {
                    let disabled = manifest.disabled.values().any(|n| n.name == call.name);
                    let (message, hint) = if disabled {
                        (
                            format!("{what} refers to `{}`, which is disabled", call.name),
                            Some(format!("enable `{}` or remove the ref", call.name)),
                        )
                    } else {
                        (
                            format!("{what} refers to `{}`, which does not exist", call.name),
                            did_you_mean(&call.name, ref_names.iter().map(String::as_str)).or(
                                Some("create the model or seed, or fix the name in ref()".into()),
                            ),
                        )
                    };
                    let diagnostic = Diagnostic::error(message)
                        .at(locate(&call.name))
                        .with_hint_opt(hint);
                    diagnostics.push(with_source_frame(diagnostic, root));
                }
            }
        }
        for (source, table) in &node.sources {
            match manifest.find_source(source, table, &node.package_name) {
                Some(id) => {
                    if !deps.contains(id) {
                        deps.push(id.clone());
                    }
                }
                None => {
                    let wanted = format!("{source}.{table}");
                    let diagnostic = Diagnostic::error(format!(
                        "{what} reads source `{wanted}`, which is not declared"
                    ))
                    .at(locate(table))
                    .with_hint_opt(
                        did_you_mean(&wanted, source_names.iter().map(String::as_str)).or(Some(
                            "declare it under `sources:` in a YAML file beside the models".into(),
                        )),
                    );
                    diagnostics.push(with_source_frame(diagnostic, root));
                }
            }
        }
        resolved.push((node.unique_id.clone(), deps));
    }
    for (id, deps) in resolved {
        if let Some(node) = manifest.nodes.get_mut(&id) {
            node.depends_on = deps;
        }
    }
}

/// Adds a code frame from the file the diagnostic points at, read relative to `root`.
fn with_source_frame(diagnostic: Diagnostic, root: &Path) -> Diagnostic {
    let path = diagnostic.location.as_ref().map(|l| root.join(&l.path));
    match path.and_then(|p| std::fs::read_to_string(p).ok()) {
        Some(text) => diagnostic.with_frame_from(&text),
        None => diagnostic,
    }
}

/// The line of a `ref('name')`/`source(…, 'name')` call naming `name`, else of any mention.
fn call_line(sql: &str, name: &str) -> Option<usize> {
    let quoted = [format!("'{name}'"), format!("\"{name}\"")];
    sql.lines()
        .position(|line| {
            (line.contains("ref(") || line.contains("source("))
                && quoted.iter().any(|q| line.contains(q.as_str()))
        })
        .map(|i| i + 1)
        .or_else(|| yaml::find_line(sql, name))
}

fn default_materialization(kind: ResourceType) -> Materialization {
    match kind {
        ResourceType::Model | ResourceType::Analysis => Materialization::View,
        ResourceType::Seed => Materialization::Seed,
        ResourceType::Snapshot => Materialization::Snapshot,
        ResourceType::Test | ResourceType::UnitTest => Materialization::Test,
        ResourceType::Source => Materialization::Table,
    }
}

pub(crate) fn resolve_config(
    map: &ConfigMap,
    default: Materialization,
    path: &Path,
    diagnostics: &mut Diagnostics,
) -> NodeConfig {
    match NodeConfig::resolve(map, default.clone()) {
        Ok(config) => config,
        Err(err) => {
            diagnostics.push(
                Diagnostic::error(format!("invalid config: {}", err.message))
                    .at_file(path)
                    .with_hint_opt(err.hint),
            );
            let mut fallback = map.clone();
            fallback.shift_remove(&err.key);
            NodeConfig::resolve(&fallback, default.clone()).unwrap_or_else(|_| {
                NodeConfig::resolve(&ConfigMap::new(), default)
                    .expect("an empty config always resolves")
            })
        }
    }
}

fn fqn_of(project: &str, folders: &[String], name: &str) -> Vec<String> {
    let mut fqn = Vec::with_capacity(folders.len() + 2);
    fqn.push(project.to_string());
    fqn.extend(folders.iter().cloned());
    fqn.push(name.to_string());
    fqn
}

pub(crate) fn columns_of(specs: &[ColumnSpec]) -> IndexMap<String, Column> {
    specs
        .iter()
        .map(|c| {
            (
                c.name.clone(),
                Column {
                    name: c.name.clone(),
                    description: c.description.clone().unwrap_or_default(),
                    data_type: c.data_type.clone(),
                    meta: c.meta.clone().unwrap_or(Json::Object(Default::default())),
                    tags: crate::project::config::as_string_list(c.tags.as_ref()),
                },
            )
        })
        .collect()
}

/// A node's config sources as written, Jinja unrendered (see `SpecFile::unrendered`).
struct Unrendered<'a> {
    trees: Vec<&'a ConfigTree>,
    /// Its YAML entry as written, when its file has Jinja.
    spec: Option<&'a NodeSpec>,
}

/// A node's config from the project's config trees, then its YAML entry (`tags`, `meta`,
/// `docs`, then `config:`), later ones winning.
fn merged_config(fqn: &[String], trees: &[&ConfigTree], spec: Option<&NodeSpec>) -> ConfigMap {
    let mut config_map = ConfigMap::new();
    for tree in trees {
        tree.apply(fqn, &mut config_map);
    }
    if let Some(spec) = spec {
        let mut overlay: ConfigMap = ConfigMap::new();
        for (key, value) in [
            ("tags", &spec.tags),
            ("meta", &spec.meta),
            ("docs", &spec.docs),
        ] {
            if let Some(value) = value {
                overlay.insert(key.to_string(), value.clone());
            }
        }
        merge_into(&mut config_map, &overlay);
        merge_into(&mut config_map, &spec.config);
    }
    config_map
}

#[expect(
    clippy::too_many_arguments,
    reason = "a node's parts come from this many places; a struct would only rename them"
)]
fn base_node(
    kind: ResourceType,
    project_name: &str,
    name: &str,
    path: &Path,
    fqn: Vec<String>,
    raw_sql: Arc<str>,
    trees: &[&ConfigTree],
    patch: Option<(&NodeSpec, PathBuf)>,
    unrendered: Option<Unrendered<'_>>,
    diagnostics: &mut Diagnostics,
) -> Node {
    let config_map = merged_config(&fqn, trees, patch.as_ref().map(|(spec, _)| *spec));
    // What was written, where it differs from what rendered: the rendered entry stands for
    // a YAML file without Jinja.
    let unrendered_config = unrendered
        .map(|u| {
            merged_config(
                &fqn,
                &u.trees,
                u.spec.or(patch.as_ref().map(|(spec, _)| *spec)),
            )
        })
        .filter(|written| *written != config_map);
    let mut description = String::new();
    let mut columns = IndexMap::new();
    let mut patch_path = None;
    if let Some((spec, spec_path)) = patch {
        description = spec.description.clone().unwrap_or_default();
        columns = columns_of(&spec.columns);
        patch_path = Some(spec_path);
    }
    let _ = diagnostics;
    Node {
        unique_id: NodeId(format!("{}.{project_name}.{name}", kind.as_str())),
        resource_type: kind,
        name: name.to_string(),
        package_name: project_name.to_string(),
        original_file_path: path.to_path_buf(),
        patch_path,
        fqn,
        checksum: crate::util::sha256_hex(raw_sql.as_bytes()),
        raw_sql,
        raw_line_offset: 0,
        config_map,
        config: NodeConfig::resolve(&ConfigMap::new(), default_materialization(kind))
            .expect("an empty config always resolves"),
        relation: None,
        depends_on: Vec::new(),
        refs: Vec::new(),
        sources: Vec::new(),
        description,
        columns,
        test: None,
        source: None,
        parse_render: None,
        compile_late: false,
        unrendered_config,
        inputs: Default::default(),
        unit: None,
    }
}

/// Database, schema and identifier for a node: dbt's `generate_*_name` rules, or the project's
/// own macros when it overrides them.
fn relation_for(
    node: &Node,
    project: &Project,
    engine: &Engine,
    diagnostics: &mut Diagnostics,
) -> RelationName {
    let target = &project.target;
    let custom_schema = node.config.schema.clone();
    let custom_database = node.config.database.clone();
    let mut call = |macro_name: &str, custom: Option<String>, default: String| -> String {
        if !engine.has_project_macro(macro_name) {
            return default;
        }
        let node_value = minijinja::Value::from(minijinja::value::Serde(serde_json::json!({
            "name": node.name,
            "unique_id": node.unique_id.0,
            "resource_type": node.resource_type.as_str(),
            "fqn": node.fqn,
            "path": node.original_file_path,
            "original_file_path": node.original_file_path,
            "package_name": node.package_name,
            "config": node.config_map,
            "tags": node.config.tags,
        })));
        let args = [minijinja::Value::from(custom), node_value];
        match engine.call_macro(macro_name, &args, node.node_info(), Phase::Parse) {
            Ok(value) => value.to_string().trim().to_string(),
            Err(err) => {
                diagnostics.push(err.to_diagnostic(
                    &project.root,
                    Some(&format!("`{macro_name}` for `{}`", node.name)),
                ));
                default
            }
        }
    };
    let schema_default = match &custom_schema {
        None => target.schema.clone(),
        Some(custom) => format!("{}_{}", target.schema, custom.trim()),
    };
    let schema = call(
        "generate_schema_name",
        custom_schema.clone(),
        schema_default,
    );
    let alias_default = node
        .config
        .alias
        .clone()
        .unwrap_or_else(|| node.name.clone());
    let identifier = call(
        "generate_alias_name",
        node.config.alias.clone(),
        alias_default,
    );
    let database_default = custom_database
        .clone()
        .unwrap_or_else(|| target.database.clone());
    let database = call("generate_database_name", custom_database, database_default);
    // A snapshot's legacy `target_schema` / `target_database` name the place as written,
    // after (and over) the naming macros, as dbt does.
    let (target_database, target_schema) = snapshot_target(node);
    let database = target_database.unwrap_or(database);
    let schema = target_schema.unwrap_or(schema);
    RelationName::new(Some(database), schema, identifier)
}

/// A snapshot's `target_database` and `target_schema`, where set (dbt's older snapshot configs).
fn snapshot_target(node: &Node) -> (Option<String>, Option<String>) {
    if node.resource_type != ResourceType::Snapshot {
        return (None, None);
    }
    let get = |key: &str| {
        node.config_map
            .get(key)
            .and_then(|v| v.as_str())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    (get("target_database"), get("target_schema"))
}

/// The relation `this` names during the parse phase: dbt's default naming over the config known
/// before the node renders (the project's own naming macros run after the render).
/// Where a source table lives: its source's database and schema (the source's name by default)
/// and its identifier (its name by default).
/// A source table's config: the project's `sources:` trees, then the source's and the table's
/// `config:`, `tags` and `meta`.
fn source_config(
    fqn: &[String],
    trees: &[&ConfigTree],
    source: &crate::project::files::SourceSpec,
    table: &crate::project::files::SourceTableSpec,
) -> ConfigMap {
    let mut config_map = ConfigMap::new();
    for tree in trees {
        tree.apply(fqn, &mut config_map);
    }
    merge_into(&mut config_map, &source.config);
    merge_into(&mut config_map, &table.config);
    for (key, value) in [
        ("tags", &source.tags),
        ("tags", &table.tags),
        ("meta", &source.meta),
        ("meta", &table.meta),
    ] {
        if let Some(value) = value {
            let mut overlay = ConfigMap::new();
            overlay.insert(key.to_string(), value.clone());
            merge_into(&mut config_map, &overlay);
        }
    }
    config_map
}

/// A source table's config with what else defines it (where it lives, its freshness, its
/// files), as a state comparison compares it.
fn source_definition(
    mut config: ConfigMap,
    source: &crate::project::files::SourceSpec,
    table: &crate::project::files::SourceTableSpec,
) -> ConfigMap {
    let text = |v: &Option<String>| v.clone().map(Json::from).unwrap_or(Json::Null);
    for (key, value) in [
        ("database", text(&source.database)),
        ("schema", text(&source.schema)),
        ("identifier", text(&table.identifier)),
        (
            "loaded_at_field",
            text(
                &table
                    .loaded_at_field
                    .clone()
                    .or(source.loaded_at_field.clone()),
            ),
        ),
        (
            "freshness",
            table
                .freshness
                .clone()
                .or(source.freshness.clone())
                .unwrap_or(Json::Null),
        ),
        ("external", table.external.clone().unwrap_or(Json::Null)),
        ("quoting", source.quoting.clone().unwrap_or(Json::Null)),
    ] {
        config.insert(key.to_string(), value);
    }
    config
}

fn source_relation(
    project: &Project,
    source: &crate::project::files::SourceSpec,
    table: &crate::project::files::SourceTableSpec,
) -> RelationName {
    RelationName::new(
        Some(
            source
                .database
                .clone()
                .unwrap_or_else(|| project.target.database.clone()),
        ),
        source.schema.clone().unwrap_or_else(|| source.name.clone()),
        table
            .identifier
            .clone()
            .unwrap_or_else(|| table.name.clone()),
    )
}

/// What `ref()` and `source()` render as in the parse phase: each model's relation as its
/// project and YAML config name it (before in-file `config()` calls and project overrides of
/// `generate_schema_name`), and each source's relation. The compile phase reuses a parse render
/// only where these turn out to be the final names.
#[derive(Debug, Default)]
struct Provisional {
    project: String,
    refs: std::collections::HashMap<(String, String), RelationName>,
    sources: std::collections::HashMap<(String, String), RelationName>,
}

impl Provisional {
    fn new<'a>(project: &Project, nodes: impl Iterator<Item = &'a Node>) -> Self {
        let refs = nodes
            .filter(|n| {
                matches!(
                    n.resource_type,
                    ResourceType::Model | ResourceType::Seed | ResourceType::Snapshot
                )
            })
            .map(|n| {
                (
                    (n.package_name.clone(), n.name.clone()),
                    provisional_relation(n, project),
                )
            })
            .collect();
        let sources = project
            .specs
            .iter()
            .flat_map(|file| &file.spec.sources)
            .flat_map(|source| {
                source.tables.iter().map(move |table| {
                    (
                        (source.name.clone(), table.name.clone()),
                        source_relation(project, source, table),
                    )
                })
            })
            .collect();
        Provisional {
            project: project.name.clone(),
            refs,
            sources,
        }
    }
}

impl Resolver for Provisional {
    fn resolve_ref(&self, call: &RefCall, from_package: &str) -> Result<Resolved, String> {
        lookup_ref(&self.refs, &self.project, from_package, call, true)
            .map(|r| Resolved::Relation(r.clone()))
            .ok_or_else(|| format!("ref `{}` is not known yet", call.name))
    }

    fn resolve_source(&self, source: &str, table: &str) -> Result<RelationName, String> {
        self.sources
            .get(&(source.to_string(), table.to_string()))
            .cloned()
            .ok_or_else(|| format!("source `{source}.{table}` is not declared"))
    }
}

/// Finds a ref in a map keyed by `(package, name)`, in dbt's search order (see
/// [`search_packages`]), then (`any`) in any package.
pub fn lookup_ref<'a, T>(
    map: &'a std::collections::HashMap<(String, String), T>,
    root: &str,
    from_package: &str,
    call: &RefCall,
    any: bool,
) -> Option<&'a T> {
    for package in search_packages(root, from_package, call.package.as_deref()) {
        if let Some(found) = map.get(&(package.to_string(), call.name.clone())) {
            return Some(found);
        }
    }
    if call.package.is_some() || !any {
        return None;
    }
    map.iter()
        .filter(|((_, name), _)| *name == call.name)
        .min_by(|a, b| a.0.cmp(b.0))
        .map(|(_, v)| v)
}

fn provisional_relation(node: &Node, project: &Project) -> RelationName {
    let get = |key: &str| {
        node.config_map
            .get(key)
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    let (target_database, target_schema) = snapshot_target(node);
    let schema = target_schema.unwrap_or_else(|| match get("schema") {
        None => project.target.schema.clone(),
        Some(custom) => format!("{}_{}", project.target.schema, custom.trim()),
    });
    RelationName::new(
        Some(
            target_database
                .or_else(|| get("database"))
                .unwrap_or_else(|| project.target.database.clone()),
        ),
        schema,
        get("alias").unwrap_or_else(|| node.name.clone()),
    )
}

/// A `{% snapshot name %}…{% endsnapshot %}` block.
struct SnapshotBlock {
    name: String,
    body: String,
    /// Lines before the body in the file.
    line_offset: usize,
}

fn snapshot_blocks(source: &str) -> Vec<SnapshotBlock> {
    let mut blocks = Vec::new();
    let mut search_from = 0;
    while let Some(start) = source[search_from..].find("{%").map(|i| i + search_from) {
        let Some(close) = source[start..].find("%}").map(|i| i + start) else {
            break;
        };
        let tag = source[start + 2..close].trim().trim_matches('-').trim();
        if let Some(name) = tag.strip_prefix("snapshot ") {
            let body_start = close + 2;
            let end = source[body_start..]
                .find("endsnapshot")
                .map(|i| i + body_start)
                .unwrap_or(source.len());
            let body_end = source[body_start..end]
                .rfind("{%")
                .map(|i| i + body_start)
                .unwrap_or(end);
            blocks.push(SnapshotBlock {
                name: name.trim().to_string(),
                body: source[body_start..body_end].to_string(),
                line_offset: source[..body_start].matches('\n').count(),
            });
            search_from = end;
        } else {
            search_from = close + 2;
        }
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_blocks_are_found_with_line_offsets() {
        let blocks =
            snapshot_blocks("-- c\n{% snapshot orders_snap %}\nselect 1\n{% endsnapshot %}\n");
        assert_eq!(blocks.len(), 1);
        assert_eq!(blocks[0].name, "orders_snap");
        assert_eq!(blocks[0].body, "\nselect 1\n");
        assert_eq!(blocks[0].line_offset, 1);
    }

    fn render(sql: &str) -> Arc<ParseRender> {
        Arc::new(ParseRender {
            sql: sql.into(),
            reads: PhaseReads::default(),
            logs: Vec::new(),
            checked: OnceLock::new(),
            keep_lineage: false,
            lineage: OnceLock::new(),
        })
    }

    #[test]
    fn a_kept_sql_check_answers_only_for_the_dialect_it_ran_in() {
        let kept = render("select a from raw.orders");
        assert!(kept.checked.get().is_none());
        let relations = |checked: &Result<SqlFacts, SqlSyntaxError>| {
            checked.as_ref().map(|facts| facts.relations.clone()).ok()
        };
        let duckdb = crate::adapter::duckdb::DuckdbFlavour::default();
        let postgres = crate::adapter::postgres::PostgresFlavour::default();
        let first = kept.check(&duckdb);
        assert!(matches!(first, Cow::Borrowed(_)));
        assert_eq!(relations(&first), Some(vec!["raw.orders".to_string()]));
        assert!(matches!(kept.checked.get(), Some(("duckdb", Ok(_)))));
        assert!(matches!(kept.check(&duckdb), Cow::Borrowed(_)));
        // Another dialect is checked afresh, and the kept answer stays.
        let other = kept.check(&postgres);
        assert!(matches!(other, Cow::Owned(_)));
        assert_eq!(relations(&other), Some(vec!["raw.orders".to_string()]));
        assert!(matches!(kept.checked.get(), Some(("duckdb", _))));
        // Errors are kept as well.
        let broken = render("select a from raw.orders where");
        assert!(matches!(broken.check(&duckdb), Cow::Borrowed(Err(_))));
    }

    #[test]
    fn the_precheck_checks_every_render_it_is_given() {
        let renders: Vec<Arc<ParseRender>> = (0..50)
            .map(|i| render(&format!("select * from raw.t{i}")))
            .collect();
        SqlPrecheck::start(
            renders.clone(),
            Arc::new(crate::adapter::duckdb::DuckdbFlavour::default()),
        )
        .finish();
        for (i, kept) in renders.iter().enumerate() {
            let Some(("duckdb", Ok(facts))) = kept.checked.get() else {
                panic!("render {i} was not checked: {:?}", kept.checked.get());
            };
            assert_eq!(facts.relations, vec![format!("raw.t{i}")]);
        }
    }
}

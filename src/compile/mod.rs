//! The compile phase: selected nodes rendered with real relation names, ephemeral models inlined
//! as CTEs, the SQL checked with sqlparser, and compiled files written under the target path.
//!
//! A node's parse-phase render is its compiled SQL when everything it read (refs, sources,
//! `this`, config values, `is_incremental()`) resolves the same now; otherwise it is rendered
//! again. A reused render's SQL check may already have run during the parse phase
//! ([`SqlPrecheck`]). The common built-in tests are written without the template engine. The
//! same code runs in debug and release builds; [`CompileOptions::reference`] turns every
//! shortcut off, and the tests compare the two compiles.
//!
//! Nothing is written unless every selected node compiles: a failed compile leaves the previous
//! compiled files as they were.
//!
//! [`SqlPrecheck`]: crate::manifest::SqlPrecheck

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::IndexMap;
use rayon::prelude::*;

use crate::diagnostic::{Diagnostic, Diagnostics, Location};
use crate::landing::{External, FileSet, NodeFiles};
use crate::manifest::{Manifest, Node, NodeId, ResourceType};
use crate::project::Project;
use crate::relation::{QuoteStyle, RelationName};
use crate::template::{Engine, Phase, RefCall, Resolved, Resolver, SourceRead};

mod builtin_tests;
pub mod unit_test;

/// A compiled node.
#[derive(Debug, Clone)]
pub struct CompiledNode {
    pub unique_id: NodeId,
    /// The SQL to run, ephemeral CTEs inlined.
    pub sql: String,
    /// Where the compiled file is written, relative to the project root.
    pub compiled_path: PathBuf,
    /// Relations the SQL reads, as sqlparser saw them.
    pub relations_read: Vec<String>,
    /// Messages the templates logged with `log(…, info=True)`.
    pub logs: Vec<String>,
    /// `pre_hook` statements, rendered for this node (run before it is built).
    pub pre_hooks: Vec<String>,
    /// `post_hook` statements, rendered for this node (run with its swap, in one transaction
    /// where the engine allows).
    pub post_hooks: Vec<String>,
}

/// Options of a compile.
#[derive(Debug, Clone, Default)]
pub struct CompileOptions {
    /// Write the compiled SQL of a node that fails the SQL check, so the error's line can be
    /// looked up; the compiled files of a successful compile are written by [`write_files`].
    pub write: bool,
    /// Nodes whose `is_incremental()` is true (their relation exists and no full refresh).
    pub incremental: HashSet<NodeId>,
    /// Bookmarked models: the landing files each reads in this run.
    pub files: HashMap<NodeId, NodeFiles>,
    /// Render every node through the template engine and check all SQL afresh: no kept parse
    /// render, no built-in test written natively, no SQL check kept from the parse phase. The
    /// tests compile each fixture both ways and compare, so the shortcuts are checked without
    /// debug builds running different code from release builds.
    pub reference: bool,
    /// Unselected nodes whose refs read another run's relation (`--defer`): node → relation.
    pub deferred: HashMap<NodeId, RelationName>,
}

/// The result of compiling a selection.
#[derive(Debug, Default)]
pub struct Compiled {
    pub nodes: IndexMap<NodeId, CompiledNode>,
    pub warnings: Vec<Diagnostic>,
    /// Nodes whose parse-phase render stood as their compiled SQL.
    pub reused: HashSet<NodeId>,
}

/// Resolves refs and sources against the manifest.
#[derive(Debug)]
struct ManifestResolver {
    refs: HashMap<(String, String), Resolved>,
    sources: HashMap<(String, String), RelationName>,
    /// External sources: their files, and the raw table warehouses that stage them load.
    externals: HashMap<(String, String), (External, RelationName)>,
    /// The folder relative external locations start from, when the warehouse reads local
    /// files itself (DuckDB); other warehouses read the staged raw tables.
    files_root: Option<PathBuf>,
    project: String,
    /// The `event_time` column of each relation whose node names one.
    event_times: HashMap<RelationName, String>,
}

impl ManifestResolver {
    /// `files_root` is the project folder when the target reads local files (DuckDB): external
    /// sources then render as readers of their files.
    fn new(
        manifest: &Manifest,
        files_root: Option<&Path>,
        deferred: &HashMap<NodeId, RelationName>,
    ) -> Self {
        let mut refs = HashMap::new();
        let mut sources = HashMap::new();
        let mut externals = HashMap::new();
        let mut event_times = HashMap::new();
        for node in manifest.nodes.values() {
            if let Some(column) = node
                .config_map
                .get("event_time")
                .and_then(serde_json::Value::as_str)
                .filter(|c| !c.trim().is_empty())
            {
                let relation = deferred.get(&node.unique_id).or(node.relation.as_ref());
                if let Some(relation) = relation {
                    event_times.insert(relation.clone(), column.trim().to_string());
                }
            }
            match node.resource_type {
                ResourceType::Model | ResourceType::Seed | ResourceType::Snapshot => {
                    let resolved = if node.is_ephemeral() {
                        Resolved::Ephemeral {
                            unique_id: node.unique_id.0.clone(),
                            cte_name: format!("__dbt__cte__{}", node.name),
                        }
                    } else if let Some(relation) = deferred.get(&node.unique_id) {
                        Resolved::Relation(relation.clone())
                    } else if let Some(relation) = &node.relation {
                        Resolved::Relation(relation.clone())
                    } else {
                        continue;
                    };
                    refs.insert((node.package_name.clone(), node.name.clone()), resolved);
                }
                ResourceType::Source => {
                    if let (Some(source), Some(relation)) = (&node.source, &node.relation) {
                        let key = (source.source_name.clone(), source.table_name.clone());
                        if let Some(spec) = &source.external {
                            if let Ok(external) = External::from_json(spec) {
                                externals.insert(key.clone(), (external, relation.clone()));
                            }
                        }
                        sources.entry(key).or_insert_with(|| relation.clone());
                    }
                }
                _ => {}
            }
        }
        ManifestResolver {
            refs,
            sources,
            externals,
            files_root: files_root.map(Path::to_path_buf),
            project: manifest.project_name.clone(),
            event_times,
        }
    }

    fn reader(&self, source: &str, table: &str, files: FileSet<'_>) -> Option<SourceRead> {
        let (external, relation) = self
            .externals
            .get(&(source.to_string(), table.to_string()))?;
        match &self.files_root {
            Some(root) => Some(SourceRead::Inline(crate::landing::duckdb_reader(
                root, external, files,
            ))),
            // Names render as the template engine renders them.
            None => {
                crate::landing::staged_reader(relation, files, &QuoteStyle::default()).map(|sql| {
                    SourceRead::Cte {
                        name: format!("__strata_files__{source}__{table}"),
                        sql,
                    }
                })
            }
        }
    }
}

impl Resolver for ManifestResolver {
    fn resolve_ref(&self, call: &RefCall, from_package: &str) -> Result<Resolved, String> {
        crate::manifest::lookup_ref(&self.refs, &self.project, from_package, call, true)
            .cloned()
            .ok_or_else(|| format!("ref `{}` does not exist", call.name))
    }

    fn source_expression(&self, source: &str, table: &str) -> Option<SourceRead> {
        self.reader(source, table, FileSet::Glob)
    }

    fn resolve_source(&self, source: &str, table: &str) -> Result<RelationName, String> {
        self.sources
            .get(&(source.to_string(), table.to_string()))
            .cloned()
            .ok_or_else(|| format!("source `{source}.{table}` is not declared"))
    }

    fn event_time(&self, relation: &RelationName) -> Option<String> {
        self.event_times.get(relation).cloned()
    }
}

/// The resolver of one bookmarked model: its external sources read exactly this run's files,
/// and the views and ephemerals between it and them are inlined as CTEs that read the same.
#[derive(Debug)]
struct FilesResolver {
    base: Arc<ManifestResolver>,
    files: NodeFiles,
    /// `(package, name)` of inlined models to their unique id and CTE name.
    inline: HashMap<(String, String), (String, String)>,
}

impl Resolver for FilesResolver {
    fn resolve_ref(&self, call: &RefCall, from_package: &str) -> Result<Resolved, String> {
        match crate::manifest::lookup_ref(
            &self.inline,
            &self.base.project,
            from_package,
            call,
            false,
        ) {
            Some((unique_id, cte_name)) => Ok(Resolved::Ephemeral {
                unique_id: unique_id.clone(),
                cte_name: cte_name.clone(),
            }),
            None => self.base.resolve_ref(call, from_package),
        }
    }

    fn source_expression(&self, source: &str, table: &str) -> Option<SourceRead> {
        match self.files.get(&(source.to_string(), table.to_string())) {
            Some(files) => self.base.reader(source, table, files.file_set()),
            None => self.base.source_expression(source, table),
        }
    }

    fn resolve_source(&self, source: &str, table: &str) -> Result<RelationName, String> {
        self.base.resolve_source(source, table)
    }

    fn event_time(&self, relation: &RelationName) -> Option<String> {
        self.base.event_time(relation)
    }
}

/// A resolver for templates that belong to no node (inline SQL, project hooks).
pub fn resolver(project: &Project, manifest: &Manifest) -> Arc<dyn Resolver> {
    deferring_resolver(project, manifest, &HashMap::new())
}

/// [`resolver`], with the refs of `deferred` nodes reading another run's relations.
pub fn deferring_resolver(
    project: &Project,
    manifest: &Manifest,
    deferred: &HashMap<NodeId, RelationName>,
) -> Arc<dyn Resolver> {
    Arc::new(ManifestResolver::new(
        manifest,
        files_root(project),
        deferred,
    ))
}

/// The folder external sources' relative locations start from, for targets that read files
/// themselves (DuckDB); other warehouses will stage the files as tables.
fn files_root(project: &Project) -> Option<&Path> {
    crate::adapter::flavour_for(&project.target)
        .capabilities()
        .reads_local_files
        .then_some(project.root.as_path())
}

/// Renders SQL that belongs to no node (`show --inline`), with refs, sources and macros; the
/// ephemeral models it refers to are inlined as CTEs.
pub fn compile_inline(
    project: &Project,
    manifest: &Manifest,
    engine: &Engine,
    sql: &str,
) -> Result<String, Diagnostics> {
    let resolver = resolver(project, manifest);
    let (rendered, capture) = engine
        .render(
            "<inline>",
            sql,
            crate::template::NodeInfo::default(),
            Phase::Compile,
            Some(resolver),
        )
        .map_err(|err| {
            let mut d = Diagnostics::new();
            d.push(err.to_diagnostic(&project.root, Some("the inline SQL")));
            d
        })?;
    if capture.ephemerals.is_empty() {
        return Ok(rendered);
    }
    let ids: Vec<NodeId> = capture
        .ephemerals
        .iter()
        .map(|id| NodeId(id.clone()))
        .collect();
    let options = CompileOptions::default();
    let compiled = compile(project, manifest, engine, &ids, &options)?;
    let ctes: Vec<(String, &String)> = compiled
        .nodes
        .values()
        .map(|node| {
            let name = node.unique_id.0.rsplit('.').next().unwrap_or_default();
            (format!("__dbt__cte__{name}"), &node.sql)
        })
        .collect();
    Ok(inject_ctes(&rendered, &ctes))
}

/// Whether a node has SQL to compile.
pub fn has_sql(node: &Node) -> bool {
    matches!(
        node.resource_type,
        ResourceType::Model
            | ResourceType::Snapshot
            | ResourceType::Analysis
            | ResourceType::Test
            | ResourceType::UnitTest
    )
}

/// Where a node's compiled SQL goes, relative to the project root.
pub fn compiled_path(project: &Project, node: &Node) -> PathBuf {
    let base = project
        .target_path
        .strip_prefix(&project.root)
        .map(Path::to_path_buf)
        .unwrap_or_else(|_| project.target_path.clone())
        .join("compiled")
        .join(&project.name);
    match &node.test {
        Some(test) if test.generic || node.resource_type == ResourceType::UnitTest => base
            .join(&node.original_file_path)
            .join(format!("{}.sql", node.name)),
        _ if node.resource_type == ResourceType::Snapshot => base
            .join(&node.original_file_path)
            .with_file_name(format!("{}.sql", node.name)),
        _ => base.join(&node.original_file_path),
    }
}

/// Compiles `selected` (nodes without SQL are skipped).
pub fn compile(
    project: &Project,
    manifest: &Manifest,
    engine: &Engine,
    selected: &[NodeId],
    options: &CompileOptions,
) -> Result<Compiled, Diagnostics> {
    // From here on both cores compile; what the precheck has not checked, this phase checks.
    if let Some(precheck) = &manifest.precheck {
        precheck.stop();
    }
    let base = Arc::new(ManifestResolver::new(
        manifest,
        files_root(project),
        &options.deferred,
    ));
    let resolver: Arc<dyn Resolver> = base.clone();
    let flavour = crate::adapter::flavour_for(&project.target);
    let dialect = flavour.dialect();
    let mut diagnostics = Diagnostics::new();

    // Ephemeral models the selection reaches, parents first.
    let mut needed: HashSet<NodeId> = HashSet::new();
    let mut stack: Vec<&NodeId> = selected.iter().collect();
    let reaches: HashMap<&NodeId, crate::landing::Reach> = options
        .files
        .keys()
        .filter_map(|id| Some((id, crate::landing::reach(manifest, manifest.get(id)?))))
        .collect();
    // What a bookmarked model inlines may use ephemerals of its own.
    stack.extend(reaches.values().flat_map(|r| r.inline.iter()));
    while let Some(id) = stack.pop() {
        if let Some(node) = manifest.get(id) {
            for dep in &node.depends_on {
                if manifest.get(dep).is_some_and(Node::is_ephemeral) && needed.insert(dep.clone()) {
                    stack.push(dep);
                }
            }
        }
    }
    let ephemeral_order = ephemeral_order(manifest, &needed);
    let mut ephemerals: Inlined = HashMap::new();
    for id in &ephemeral_order {
        let node = &manifest.nodes[id];
        match render_node(project, engine, node, &resolver, &ephemerals, options) {
            Ok(rendered) => {
                ephemerals.insert(id.0.clone(), (rendered.sql, rendered.known));
            }
            Err(d) => diagnostics.push(d),
        }
    }
    if diagnostics.has_errors() {
        return Err(diagnostics);
    }

    let results: Vec<Result<Outcome, Diagnostic>> = selected
        .par_iter()
        .filter_map(|id| manifest.get(id))
        .filter(|node| has_sql(node))
        .map(|node| {
            if node.resource_type == ResourceType::UnitTest {
                return unit_test::compile(project, manifest, engine, node, options)
                    .map(|compiled| (compiled, Vec::new(), false));
            }
            // What the SQL reads when it is valid by construction and need not be parsed.
            let mut read_by_construction: Option<Vec<String>> = None;
            // The parse render standing as the SQL: it may have been checked already.
            let mut reused: Option<&crate::manifest::ParseRender> = None;
            let (sql, known, logs, hooks) = if let Some((sql, known)) = ephemerals.get(&node.unique_id.0) {
                (sql.clone(), known.clone(), Vec::new(), (Vec::new(), Vec::new()))
            } else if let Some(native) = native_test(engine, manifest, node, &base, options)? {
                read_by_construction = native.relations_read;
                (native.sql, native.known, Vec::new(), (Vec::new(), Vec::new()))
            } else {
                let bookmarked = match (options.files.get(&node.unique_id), reaches.get(&node.unique_id)) {
                    (Some(files), Some(reach)) => Some(with_files(project, engine, manifest, &base, &ephemerals, options, files, reach)?),
                    _ => None,
                };
                let (resolver, ephemerals) = match &bookmarked {
                    Some((resolver, inlined)) => (resolver, inlined),
                    None => (&resolver, &ephemerals),
                };
                let parsed = if options.reference { None } else { reuse_parse_render(node, resolver.as_ref(), options) };
                let rendered = match parsed {
                    Some(parsed) => {
                        reused = node.parse_render.as_deref();
                        parsed
                    }
                    None => render_node(project, engine, node, resolver, ephemerals, options)?,
                };
                let hooks = if node.resource_type == ResourceType::Model {
                    (
                        render_hooks(project, engine, node, resolver, options, "pre_hook", &node.config.pre_hook)?,
                        render_hooks(project, engine, node, resolver, options, "post_hook", &node.config.post_hook)?,
                    )
                } else {
                    (Vec::new(), Vec::new())
                };
                (rendered.sql, rendered.known, rendered.logs, hooks)
            };
            let compiled_path = compiled_path(project, node);
            let mut warnings = Vec::new();
            let mut relations_read = Vec::new();
            let check = node.sql_check();
            if let Some(read) = read_by_construction.filter(|_| check) {
                relations_read = read;
            } else if check {
                let checked = match reused {
                    Some(render) => render.check(flavour.as_ref()),
                    None => Cow::Owned(crate::sql::analyze(&sql, dialect)),
                };
                match checked.as_ref() {
                    Ok(facts) => {
                        if facts.statements == 0 && node.resource_type == ResourceType::Model {
                            return Err(Diagnostic::error(format!("model `{}` compiles to no SQL", node.name))
                                .at_file(&node.original_file_path)
                                .with_hint("a model is one SELECT statement"));
                        }
                        for relation in &facts.relations {
                            if !is_known(relation, &known) {
                                warnings.push(
                                    Diagnostic::warning(format!(
                                        "{} `{}` reads `{relation}`, which is neither a ref() nor a source()",
                                        node.resource_type.as_str(),
                                        node.name
                                    ))
                                    .at(Location {
                                        path: node.original_file_path.clone(),
                                        line: crate::project::yaml::find_line(&node.raw_sql, relation.rsplit('.').next().unwrap_or(relation)).map(|l| l + node.raw_line_offset),
                                        column: None,
                                    })
                                    .with_hint("use {{ ref('…') }} or declare it as a source, so strata knows the dependency"),
                                );
                            }
                        }
                        relations_read = facts.relations.clone();
                    }
                    Err(err) => {
                        let mut diagnostic = Diagnostic::error(format!(
                            "SQL syntax error in {} `{}` (from `{}`): {}",
                            node.resource_type.as_str(),
                            node.name,
                            node.original_file_path.display(),
                            err.message
                        ))
                        .at(Location {
                            path: compiled_path.clone(),
                            line: err.line,
                            column: err.column,
                        })
                        .with_frame_from(&sql)
                        .with_hint(format!(
                            "fix the SQL in `{}`; if it is valid for {}, sqlparser does not know this syntax yet: set `+sql_check: false` on the model",
                            node.original_file_path.display(),
                            flavour.name()
                        ));
                        // The compiled file is what the line number refers to: write it so the
                        // user can open it. Nodes that compiled stay unwritten.
                        if options.write {
                            if let Err(e) = crate::util::write_atomic(&project.root.join(&compiled_path), sql.as_bytes()) {
                                diagnostic.message.push_str(&format!(" (and the compiled SQL could not be written: {e})"));
                            }
                        }
                        return Err(diagnostic);
                    }
                }
            }
            Ok((
                CompiledNode {
                    unique_id: node.unique_id.clone(),
                    sql,
                    compiled_path,
                    relations_read,
                    logs,
                    pre_hooks: hooks.0,
                    post_hooks: hooks.1,
                },
                warnings,
                reused.is_some(),
            ))
        })
        .collect();

    // Storage settings are the target's to read: a bad one fails the compile, as bad SQL does.
    for node in selected.iter().filter_map(|id| manifest.get(id)) {
        if node.resource_type == ResourceType::Model && !node.is_ephemeral() {
            if let Err(diagnostic) = storage_of(flavour.as_ref(), node) {
                diagnostics.push(diagnostic);
            }
        }
    }
    let mut compiled = Compiled::default();
    for result in results {
        match result {
            Ok((node, warnings, reused)) => {
                compiled.warnings.extend(warnings);
                if reused {
                    compiled.reused.insert(node.unique_id.clone());
                }
                compiled.nodes.insert(node.unique_id.clone(), node);
            }
            Err(d) => diagnostics.push(d),
        }
    }
    if diagnostics.has_errors() {
        return Err(diagnostics);
    }
    compiled.nodes.sort_keys();
    Ok(compiled)
}

/// How a model or seed is stored on the target's warehouse, from its config (`dist`,
/// `table_type`, …), and whether a view binds late (`bind: false`). An unusable value is an
/// error naming the node, its file and the line that sets the key when its own file does.
pub fn storage_of(
    flavour: &dyn crate::adapter::Flavour,
    node: &Node,
) -> Result<(crate::plan::Storage, bool), Diagnostic> {
    let resolved = match &node.relation {
        None => Ok((crate::plan::Storage::plain(), false)),
        Some(_) if node.config.materialized == crate::project::config::Materialization::View => {
            flavour
                .late_binding_view(&node.config_map)
                .map(|late| (crate::plan::Storage::plain(), late))
        }
        Some(relation) => flavour
            .table_storage(relation, &node.config_map)
            .map(|storage| (storage, false)),
    };
    resolved.map_err(|err| {
        Diagnostic::error(format!(
            "{} `{}`: {err}",
            node.resource_type.as_str(),
            node.name
        ))
        .at(Location {
            path: node.original_file_path.clone(),
            // The line that sets the key, when the node's own file sets it (`config(…)`).
            line: crate::project::yaml::find_line(&node.raw_sql, &err.key)
                .map(|line| line + node.raw_line_offset),
            column: None,
        })
        .with_hint(format!(
            "the {} target reads {}",
            flavour.name(),
            match flavour.property_keys() {
                [] => "no storage keys".to_string(),
                keys => keys
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
            }
        ))
    })
}

/// One node's compile: the node, its warnings, and whether its parse render was reused.
type Outcome = (CompiledNode, Vec<Diagnostic>, bool);

/// Writes every compiled node's SQL under `<target-path>/compiled/`.
pub fn write_files(project: &Project, compiled: &Compiled) -> Result<(), Diagnostics> {
    let mut diagnostics = Diagnostics::new();
    // Compiled SQL is a by-product users read, not state a run depends on: plain writes in
    // parallel, with each folder created once (per-file create_dir_all and rename cost more
    // in the kernel than the rendering itself on large projects), and files that already
    // hold the same SQL left alone.
    let folders: std::collections::BTreeSet<PathBuf> = compiled
        .nodes
        .values()
        .filter_map(|n| {
            project
                .root
                .join(&n.compiled_path)
                .parent()
                .map(Path::to_path_buf)
        })
        .collect();
    for folder in &folders {
        if let Err(e) = std::fs::create_dir_all(folder) {
            diagnostics.push(Diagnostic::error(format!(
                "cannot create `{}`: {e}",
                folder.display()
            )));
        }
    }
    // In byte order of their paths, so each thread fills one folder after another rather than
    // hopping between all of them (a folder's entries are one ext4 directory to update).
    let mut nodes: Vec<&CompiledNode> = compiled.nodes.values().collect();
    nodes.sort_unstable_by(|a, b| a.compiled_path.as_os_str().cmp(b.compiled_path.as_os_str()));
    let written: Vec<Result<(), Diagnostic>> = nodes
        .par_iter()
        .map(|node| {
            write_if_changed(&project.root.join(&node.compiled_path), node.sql.as_bytes()).map_err(
                |e| {
                    Diagnostic::error(format!(
                        "cannot write `{}`: {e}",
                        node.compiled_path.display()
                    ))
                },
            )
        })
        .collect();
    for result in written {
        if let Err(d) = result {
            diagnostics.push(d);
        }
    }
    if diagnostics.has_errors() {
        return Err(diagnostics);
    }
    Ok(())
}

/// Writes a compiled file unless it already holds `contents`: a recompile of a large project
/// then creates no files, and rewrites only what changed.
fn write_if_changed(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::{Read, Seek, Write};
    // One open either way: a new file is created by it, an old one compared through it.
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    let length = file.metadata()?.len();
    if length == contents.len() as u64 && length > 0 {
        let mut existing = Vec::with_capacity(contents.len());
        file.read_to_end(&mut existing)?;
        if existing == contents {
            return Ok(());
        }
        file.rewind()?;
    }
    if length > 0 {
        file.set_len(0)?;
    }
    file.write_all(contents)
}

/// A built-in generic test's SQL written without the template engine, when it is one of the
/// common cases. The text comes from the same writer the test macros call, and the compile
/// tests check both paths agree on every fixture (see `CompileOptions::reference`).
fn native_test(
    engine: &Engine,
    manifest: &Manifest,
    node: &Node,
    base: &Arc<ManifestResolver>,
    options: &CompileOptions,
) -> Result<Option<builtin_tests::NativeTest>, Diagnostic> {
    if options.reference
        || node.resource_type != ResourceType::Test
        || options.files.contains_key(&node.unique_id)
    {
        return Ok(None);
    }
    let Some(native) = builtin_tests::render(engine, manifest, node, base.as_ref()) else {
        return Ok(None);
    };
    Ok(Some(native))
}

/// The resolver and inlined models of a bookmarked model: the views and ephemerals between it
/// and its external sources are rendered again over this run's files, parents first.
#[expect(
    clippy::too_many_arguments,
    reason = "the compile phase's inputs, passed through"
)]
fn with_files(
    project: &Project,
    engine: &Engine,
    manifest: &Manifest,
    base: &Arc<ManifestResolver>,
    ephemerals: &Inlined,
    options: &CompileOptions,
    files: &NodeFiles,
    reach: &crate::landing::Reach,
) -> Result<(Arc<dyn Resolver>, Inlined), Diagnostic> {
    let mut inline = HashMap::new();
    for id in &reach.inline {
        if let Some(node) = manifest.get(id) {
            inline.insert(
                (node.package_name.clone(), node.name.clone()),
                (id.0.clone(), format!("__dbt__cte__{}", node.name)),
            );
        }
    }
    let resolver: Arc<dyn Resolver> = Arc::new(FilesResolver {
        base: base.clone(),
        files: files.clone(),
        inline,
    });
    let mut inlined = ephemerals.clone();
    for id in &reach.inline {
        if let Some(node) = manifest.get(id) {
            let rendered = render_node(project, engine, node, &resolver, &inlined, options)?;
            inlined.insert(id.0.clone(), (rendered.sql, rendered.known));
        }
    }
    Ok((resolver, inlined))
}

/// The parse phase's render of `node` as its compiled SQL, when everything that render read
/// reads the same in the compile phase: every `ref()` and `source()` resolved to the relation
/// it rendered as (no ephemeral CTE, no file reader), `this` is the final relation,
/// `is_incremental()` is false, and every config value it read is the value the compile phase
/// reads. Anything else is rendered again.
fn reuse_parse_render(
    node: &Node,
    resolver: &dyn Resolver,
    options: &CompileOptions,
) -> Option<Rendered> {
    let parsed = node.parse_render.as_deref()?;
    let reads = &parsed.reads;
    if reads.opaque
        || options.files.contains_key(&node.unique_id)
        || (reads.is_incremental && options.incremental.contains(&node.unique_id))
        || reads
            .this
            .as_ref()
            .is_some_and(|this| *this != node.relation)
    {
        return None;
    }
    let mut known: Vec<RelationName> =
        Vec::with_capacity(reads.refs.len() + reads.sources.len() + 1);
    for (call, rendered) in &reads.refs {
        match resolver.resolve_ref(call, &node.package_name) {
            Ok(Resolved::Relation(relation)) if relation == *rendered => known.push(relation),
            _ => return None,
        }
    }
    for ((source, table), rendered) in &reads.sources {
        if resolver.source_expression(source, table).is_some() {
            return None;
        }
        match resolver.resolve_source(source, table) {
            Ok(relation) if relation == *rendered => known.push(relation),
            _ => return None,
        }
    }
    // `config.get` returns the node's config overlaid with the template's own `config()` calls
    // so far: the config before the render in the parse phase, the final one in the compile
    // phase. A key the template had already set reads the same in both unless values of that
    // key merge; any other key must have kept the value the parse phase found.
    for read in &reads.config {
        let same = if read.set_by_template {
            !crate::project::config::merges(&read.key)
        } else {
            node.config_map.get(&read.key) == read.found.as_ref()
        };
        if !same {
            return None;
        }
    }
    if let Some(this) = &node.relation {
        known.push(this.clone());
    }
    Some(Rendered {
        sql: parsed.sql.clone(),
        known,
        logs: parsed.logs.clone(),
    })
}

/// Rendered ephemeral (or inlined) models by unique id: their SQL and the relations it reads.
type Inlined = HashMap<String, (String, Vec<RelationName>)>;

/// Renders one node in the compile phase and inlines the ephemeral CTEs it uses. Returns the SQL
/// and the relations it legitimately reads (its refs, sources and itself).
fn render_node(
    project: &Project,
    engine: &Engine,
    node: &Node,
    resolver: &Arc<dyn Resolver>,
    ephemerals: &Inlined,
    options: &CompileOptions,
) -> Result<Rendered, Diagnostic> {
    let mut info = node.node_info();
    info.is_incremental = options.incremental.contains(&node.unique_id);
    let template_path = node.original_file_path.to_string_lossy().into_owned();
    let (sql, capture) = engine
        .render(
            &template_path,
            &node.raw_sql,
            info,
            Phase::Compile,
            Some(resolver.clone()),
        )
        .map_err(|err| {
            let mut err = err;
            if err.path == template_path {
                err.line = err.line.map(|l| l + node.raw_line_offset);
            }
            let mut diagnostic = err.to_diagnostic(
                &project.root,
                Some(&format!("{} `{}`", node.resource_type.as_str(), node.name)),
            );
            if let (Some(test), true) = (&node.test, err.path == template_path) {
                if let Some(at) = &test.declared_at {
                    diagnostic.location = Some(Box::new(at.clone()));
                    diagnostic.frame = None;
                }
            }
            diagnostic
        })?;
    let mut known: Vec<RelationName> = Vec::new();
    for call in &capture.refs {
        if let Ok(Resolved::Relation(r)) = resolver.resolve_ref(call, &node.package_name) {
            known.push(r);
        }
    }
    for (source, table) in &capture.sources {
        if let Ok(r) = resolver.resolve_source(source, table) {
            known.push(r);
        }
    }
    if let Some(this) = &node.relation {
        known.push(this.clone());
    }
    let ctes: Vec<(String, &String)> = capture
        .source_ctes
        .iter()
        .map(|(name, sql)| (name.clone(), sql))
        .chain(capture.ephemerals.iter().filter_map(|id| {
            let name = id.rsplit('.').next().unwrap_or(id);
            ephemerals.get(id).map(|(sql, inner)| {
                // What the inlined CTE reads, this node reads too.
                known.extend(inner.iter().cloned());
                (format!("__dbt__cte__{name}"), sql)
            })
        }))
        .collect();
    Ok(Rendered {
        sql: inject_ctes(&crate::materialize::microbatch::settle_aliases(&sql), &ctes),
        known,
        logs: capture.logs,
    })
}

/// Renders a model's hooks with its context (`this`, `config`, `is_incremental()`, macros);
/// hooks without Jinja pass through untouched.
fn render_hooks(
    project: &Project,
    engine: &Engine,
    node: &Node,
    resolver: &Arc<dyn Resolver>,
    options: &CompileOptions,
    key: &str,
    hooks: &[String],
) -> Result<Vec<String>, Diagnostic> {
    let mut rendered = Vec::with_capacity(hooks.len());
    for (i, hook) in hooks.iter().enumerate() {
        if !hook.contains("{{") && !hook.contains("{%") {
            rendered.push(hook.clone());
            continue;
        }
        let mut info = node.node_info();
        info.is_incremental = options.incremental.contains(&node.unique_id);
        let name = format!("{} ({key} {})", node.original_file_path.display(), i + 1);
        let (sql, _) = engine
            .render(&name, hook, info, Phase::Compile, Some(resolver.clone()))
            .map_err(|err| {
                err.to_diagnostic(
                    &project.root,
                    Some(&format!("the {key} of model `{}`", node.name)),
                )
                .at_file(&node.original_file_path)
            })?;
        if !sql.trim().is_empty() {
            rendered.push(sql);
        }
    }
    Ok(rendered)
}

/// A node rendered in the compile phase.
struct Rendered {
    sql: String,
    /// Relations it legitimately reads: its refs, sources, itself and its inlined ephemerals'.
    known: Vec<RelationName>,
    logs: Vec<String>,
}

fn is_known(relation: &str, known: &[RelationName]) -> bool {
    let wanted = relation.to_lowercase();
    known.iter().any(|r| {
        let full = r.dotted().to_lowercase();
        let short = format!("{}.{}", r.schema, r.identifier).to_lowercase();
        wanted == full || wanted == short
    })
}

/// Ephemeral nodes in dependency order (an ephemeral may select from another).
fn ephemeral_order(manifest: &Manifest, needed: &HashSet<NodeId>) -> Vec<NodeId> {
    let mut order = Vec::new();
    let mut done: HashSet<NodeId> = HashSet::new();
    fn visit(
        id: &NodeId,
        manifest: &Manifest,
        needed: &HashSet<NodeId>,
        done: &mut HashSet<NodeId>,
        order: &mut Vec<NodeId>,
    ) {
        if !done.insert(id.clone()) {
            return;
        }
        if let Some(node) = manifest.get(id) {
            for dep in &node.depends_on {
                if needed.contains(dep) {
                    visit(dep, manifest, needed, done, order);
                }
            }
        }
        order.push(id.clone());
    }
    let mut sorted: Vec<&NodeId> = needed.iter().collect();
    sorted.sort();
    for id in sorted {
        visit(id, manifest, needed, &mut done, &mut order);
    }
    order
}

/// Puts `ctes` in front of `sql`: into its leading `WITH` if it has one, else in a new one.
pub fn inject_ctes(sql: &str, ctes: &[(String, &String)]) -> String {
    if ctes.is_empty() {
        return sql.to_string();
    }
    let definitions = ctes
        .iter()
        .map(|(name, body)| format!("{name} as (\n{}\n)", body.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    let start = skip_trivia(sql);
    let rest = &sql[start..];
    let keyword_len = 4;
    let starts_with_with = rest.len() > keyword_len
        && rest[..keyword_len].eq_ignore_ascii_case("with")
        && rest[keyword_len..].starts_with(|c: char| c.is_whitespace() || c == '(');
    if starts_with_with {
        let after_with = start + keyword_len;
        let after = &sql[after_with..];
        let trimmed = after.trim_start();
        if trimmed.len() >= 9 && trimmed[..9].eq_ignore_ascii_case("recursive") {
            let recursive_end = after_with + (after.len() - trimmed.len()) + 9;
            return format!(
                "{} {definitions},{}",
                &sql[..recursive_end],
                &sql[recursive_end..]
            );
        }
        format!(
            "{} {definitions},{}",
            &sql[..after_with],
            &sql[after_with..]
        )
    } else {
        format!("{}with {definitions}\n{}", &sql[..start], rest)
    }
}

/// Byte offset of the first token after whitespace and comments.
fn skip_trivia(sql: &str) -> usize {
    let bytes = sql.as_bytes();
    let mut i = 0;
    loop {
        while i < bytes.len() && (bytes[i] as char).is_whitespace() {
            i += 1;
        }
        if sql[i..].starts_with("--") {
            match sql[i..].find('\n') {
                Some(end) => i += end + 1,
                None => return sql.len(),
            }
        } else if sql[i..].starts_with("/*") {
            match sql[i..].find("*/") {
                Some(end) => i += end + 2,
                None => return sql.len(),
            }
        } else {
            return i;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_renders_stand_in_only_where_nothing_read_differs() {
        let dir = tempfile::tempdir().unwrap();
        let files = [
            (
                "project.yml",
                "name: p\nmodels:\n  p:\n    marts:\n      +schema: marts\n      +materialized: table\n",
            ),
            (
                "models/sources.yml",
                "sources:\n  - name: raw\n    schema: landing\n    tables:\n      - name: orders\n        identifier: orders_v1\n",
            ),
            ("models/a.sql", "select 1 as id\n"),
            ("models/marts/b.sql", "select * from {{ ref('a') }}\n"),
            ("models/c.sql", "{{ config(alias='c_final') }}select 2 as id\n"),
            ("models/d.sql", "select * from {{ ref('c') }}\n"),
            ("models/e.sql", "select {{ 1 if execute else 0 }} as x\n"),
            (
                "models/f.sql",
                "{{ config(materialized='table') }}select '{{ config.get(\"materialized\") }}' as m\n",
            ),
            ("models/marts/g.sql", "select * from {{ ref('b') }}\n"),
            (
                "models/h.sql",
                "select '{{ config.get(\"alias\", \"none\") }}' as a\n{{ config(alias='h_final') }}",
            ),
            ("models/i.sql", "select * from {{ source('raw', 'orders') }}\n"),
            ("models/j.sql", "{{ config(materialized='ephemeral') }}select 1 as id\n"),
            ("models/k.sql", "select * from {{ ref('j') }}\n"),
            ("models/l.sql", "select 1 as id -- {{ this }}\n"),
            (
                "models/marts/m.sql",
                "{{ config(schema='other') }}select 1 as id -- {{ this }}\n",
            ),
            (
                "models/marts/n.sql",
                "select '{{ config.get(\"materialized\") }}' as m\n",
            ),
            (
                "models/o.sql",
                "{{ config(materialized='incremental') }}select 1 as id\n{% if is_incremental() %}where id > 0{% endif %}\n",
            ),
        ];
        for (path, text) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let project = crate::project::load(&crate::project::LoadOptions {
            project_dir: dir.path().to_path_buf(),
            ..Default::default()
        })
        .unwrap();
        let engine = Engine::new(&project, crate::template::EngineOptions::default()).unwrap();
        let manifest = crate::manifest::build(&project, &engine, Default::default()).unwrap();
        let models: Vec<NodeId> = manifest
            .nodes
            .values()
            .filter(|n| n.resource_type == ResourceType::Model)
            .map(|n| n.unique_id.clone())
            .collect();
        let id = |name: &str| NodeId(format!("model.p.{name}"));
        let reused = |compiled: &Compiled| {
            let mut names: Vec<String> = compiled
                .reused
                .iter()
                .map(|id| id.0.trim_start_matches("model.p.").to_string())
                .collect();
            names.sort();
            names
        };

        let compiled = compile(
            &project,
            &manifest,
            &engine,
            &models,
            &CompileOptions::default(),
        )
        .unwrap();
        // d reads c under its final alias, k inlines an ephemeral, m's `this` moved to another
        // schema, e reads `execute`, h reads a config key before setting it: all rendered
        // again.
        assert_eq!(
            reused(&compiled),
            ["a", "b", "c", "f", "g", "i", "l", "n", "o"]
        );
        let sql = |id: &NodeId| compiled.nodes[id].sql.clone();
        assert!(sql(&id("d")).contains("\"c_final\""), "{}", sql(&id("d")));
        assert!(
            sql(&id("k")).contains("__dbt__cte__j as ("),
            "{}",
            sql(&id("k"))
        );
        assert!(
            sql(&id("m")).contains("\"main_other\".\"m\""),
            "{}",
            sql(&id("m"))
        );
        assert!(
            sql(&id("e")).starts_with("select 1 as x"),
            "{}",
            sql(&id("e"))
        );
        assert!(sql(&id("f")).contains("'table' as m"), "{}", sql(&id("f")));
        assert!(sql(&id("n")).contains("'table' as m"), "{}", sql(&id("n")));
        assert!(
            sql(&id("h")).starts_with("select 'h_final' as a"),
            "{}",
            sql(&id("h"))
        );
        assert!(
            sql(&id("i")).contains("\"landing\".\"orders_v1\""),
            "{}",
            sql(&id("i"))
        );

        // An incremental run's `is_incremental()` is true: o is rendered again.
        let options = CompileOptions {
            incremental: [id("o")].into_iter().collect(),
            ..CompileOptions::default()
        };
        let compiled = compile(&project, &manifest, &engine, &[id("o")], &options).unwrap();
        assert!(compiled.reused.is_empty());
        assert!(compiled.nodes[&id("o")].sql.contains("where id > 0"));
    }

    #[test]
    fn ctes_join_an_existing_with_or_start_a_new_one() {
        let body = "select 1 as x".to_string();
        let ctes = vec![("__dbt__cte__e".to_string(), &body)];
        assert_eq!(
            inject_ctes("-- c\nselect * from __dbt__cte__e", &ctes),
            "-- c\nwith __dbt__cte__e as (\nselect 1 as x\n)\nselect * from __dbt__cte__e"
        );
        assert_eq!(
            inject_ctes("WITH a AS (select 2) select * from a, __dbt__cte__e", &ctes),
            "WITH __dbt__cte__e as (\nselect 1 as x\n), a AS (select 2) select * from a, __dbt__cte__e"
        );
        let sql = inject_ctes("with recursive r as (select 1) select * from r", &ctes);
        assert!(
            sql.starts_with("with recursive __dbt__cte__e as ("),
            "{sql}"
        );
    }
}

//! The Jinja engine: one minijinja environment per command with project macros, strata's
//! built-in macros and dbt's context, rendering nodes in two phases (parse, compile).
//!
//! This room knows templates and values; it does not load files (project/) or decide what
//! depends on what (graph/). Rendering is synchronous and thread-safe: callers fan nodes out
//! across cores.

pub mod builtin_tests;
pub mod builtins;
pub mod calls;
pub mod context;
pub mod macros;
pub mod mutable;
pub mod pyre;
pub mod warehouse;
pub mod written;

use std::borrow::Cow;
use std::sync::{Arc, Mutex, OnceLock};

use indexmap::IndexMap;
use minijinja::value::Value;
use minijinja::{Environment, ErrorKind, UndefinedBehavior};
use serde_json::Value as Json;

pub use context::{
    Capture, ConfigRead, NodeInfo, Phase, PhaseReads, RefCall, RenderContext, RenderInputs,
    RenderOverrides, Resolved, Resolver, SourceRead,
};
use macros::{MacroDef, MacroProxy};

use crate::diagnostic::{did_you_mean, Diagnostic, Location};
use crate::project::Project;
use crate::relation::QuoteStyle;

/// The root-context key through which macros reach the calling node's context.
pub(crate) const CONTEXT_KEY: &str = "__strata_ctx";
/// The template name of strata's built-in macros.
pub(crate) const BUILTIN_TEMPLATE: &str = "<strata built-in macros>";
/// Marks errors raised on purpose by `exceptions.raise_compiler_error`.
pub(crate) const RAISED_PREFIX: &str = "__strata_raised__";
static BUILTIN_MACROS_SOURCE: &str = include_str!("builtin_macros.sql");
pub(crate) static BUILTIN_MACRO_NAMES: OnceLock<Vec<String>> = OnceLock::new();

/// Run-wide facts every render can see.
#[derive(Debug)]
pub struct Shared {
    pub target: Value,
    pub target_schema: String,
    pub target_database: String,
    /// The adapter type as dbt spells it (`target.type`, `adapter.dispatch` prefixes).
    pub adapter: &'static str,
    /// The adapters `adapter.dispatch` falls back to before `default__`.
    pub dispatch_parents: &'static [&'static str],
    pub style: QuoteStyle,
    pub vars: IndexMap<String, Json>,
    pub project_name: String,
    pub invocation_id: String,
    pub run_started_at: chrono::DateTime<chrono::Utc>,
    pub docs: IndexMap<String, String>,
    pub full_refresh: bool,
    pub command: String,
    /// The project file's `flags:` (dbt's behaviour flags), visible to templates as
    /// `flags.<name>` beside the run's own flags.
    pub project_flags: Json,
    /// Each installed package's macros by name: the bare names a node of that package sees
    /// before the root project's, and what `<package>.<macro>` reaches.
    pub package_macros: std::collections::HashMap<String, Arc<MacroNamespace>>,
    /// The root project's macros by name (`<project>.<macro>`).
    pub root_macros: Arc<MacroNamespace>,
    /// The vars of each package's nodes (the root project's are `vars`).
    pub package_vars: std::collections::HashMap<String, IndexMap<String, Json>>,
    /// The project's `dispatch:` config: macro namespace → packages to search, in order.
    pub dispatch_orders: std::collections::HashMap<String, Vec<String>>,
    /// The warehouse, once the command has connected (`run_query` and the like).
    pub warehouse: OnceLock<Arc<dyn warehouse::WarehouseAccess>>,
    /// `graph` once the manifest exists, for templates that read it (compile phase).
    pub graph: OnceLock<Value>,
    /// `selected_resources`: the unique ids the command selected.
    pub selected: OnceLock<Value>,
}

/// One package's macros: public name → macro proxy.
pub type MacroNamespace = std::collections::BTreeMap<String, Value>;

impl Shared {
    /// The macros `<package>.` reaches: the root project's, an installed package's, or
    /// (`dbt`) strata's built-in ones.
    pub fn namespace(&self, package: &str) -> Option<Namespace<'_>> {
        if package == self.project_name {
            Some(Namespace::Macros(&self.root_macros))
        } else if let Some(macros) = self.package_macros.get(package) {
            Some(Namespace::Macros(macros))
        } else if package == "dbt" {
            Some(Namespace::Builtin)
        } else {
            None
        }
    }

    /// The vars a node of `package` sees.
    pub fn vars_for(&self, package: &str) -> &IndexMap<String, Json> {
        self.package_vars.get(package).unwrap_or(&self.vars)
    }
}

/// A macro namespace as `adapter.dispatch` searches it.
#[derive(Debug, Clone, Copy)]
pub enum Namespace<'a> {
    Macros(&'a MacroNamespace),
    Builtin,
}

impl Namespace<'_> {
    pub fn get(&self, name: &str) -> Option<Value> {
        match self {
            Namespace::Macros(macros) => macros.get(name).cloned(),
            Namespace::Builtin => BUILTIN_MACRO_NAMES
                .get()
                .filter(|names| names.iter().any(|n| n == name))
                .map(|_| Value::from_object(MacroProxy::new(BUILTIN_TEMPLATE, name))),
        }
    }
}

/// What went wrong in a template, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TemplateError {
    pub kind: TemplateErrorKind,
    /// The template's path relative to the project root (a model or a macro file).
    pub path: String,
    pub line: Option<usize>,
    pub message: String,
    pub hint: Option<String>,
}

/// The classes of template errors users act on differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateErrorKind {
    Syntax,
    Undefined,
    UnknownMacro,
    /// `exceptions.raise_compiler_error()` from the project's own code.
    Raised,
    Other,
}

impl TemplateError {
    pub fn to_diagnostic(&self, root: &std::path::Path, node: Option<&str>) -> Diagnostic {
        let message = match node {
            Some(node)
                if self.kind != TemplateErrorKind::Syntax || !self.path.ends_with(".sql") =>
            {
                format!("in {node}: {}", self.message)
            }
            _ => self.message.clone(),
        };
        let mut diagnostic = Diagnostic::error(message)
            .at(Location {
                path: self.path.clone().into(),
                line: self.line,
                column: None,
            })
            .with_hint_opt(self.hint.clone());
        if let Ok(text) = std::fs::read_to_string(root.join(&self.path)) {
            diagnostic = diagnostic.with_frame_from(&text);
        }
        diagnostic
    }
}

/// Knobs of an engine that do not come from the project.
#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    pub full_refresh: bool,
    pub command: String,
    pub invocation_id: Option<String>,
}

/// Where a project macro is defined.
#[derive(Debug, Clone)]
pub struct MacroLocation {
    pub path: String,
    pub line: usize,
}

/// How a generic test's macro is called from the test's SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestMacro {
    /// strata's own built-in test macro (`test_unique`).
    Builtin,
    /// A project or package macro, by its qualified name (`dbt_utils.test_at_least_one`).
    Project(String),
}

/// The environment for one command.
#[derive(Debug)]
pub struct Engine {
    env: Environment<'static>,
    shared: Arc<Shared>,
    /// The root project's macros.
    macros: IndexMap<String, MacroLocation>,
    /// Each package's macros.
    package_macros: IndexMap<String, IndexMap<String, MacroLocation>>,
    /// Every project and package macro's text and calls, for state comparison.
    macro_graph: calls::MacroGraph,
}

impl Engine {
    /// Builds the environment: built-ins, then every project macro file (which may override
    /// built-ins). All macro files are compiled here, so syntax errors surface together.
    pub fn new(project: &Project, options: EngineOptions) -> Result<Engine, Vec<TemplateError>> {
        let flavour = crate::adapter::flavour_for(&project.target);
        let style = flavour.template_quote_style();

        let paths: Vec<String> = project
            .macro_files
            .iter()
            .map(|file| file.path.to_string_lossy().replace('\\', "/"))
            .collect();
        let macro_graph =
            calls::MacroGraph::new(
                &project.name,
                project.macro_files.iter().zip(&paths).map(|(file, path)| {
                    (path.as_str(), file.package.as_str(), file.source.as_ref())
                }),
            );
        // Every macro file, rewritten (see `macros.rs`), before the environment exists: the
        // namespaces of proxies are run-wide facts renders look bare names up in.
        struct MacroFile {
            path: String,
            package: String,
            source: String,
            defs: Vec<MacroDef>,
        }
        let files: Vec<MacroFile> = project
            .macro_files
            .iter()
            .map(|file| {
                let path = file.path.to_string_lossy().replace('\\', "/");
                let (source, defs) = macros::rewrite_macro_file(&file.source);
                let source = mutable::rewrite_mutable_sets(&source).unwrap_or(source);
                MacroFile {
                    path,
                    package: file.package.clone(),
                    source,
                    defs,
                }
            })
            .collect();
        let mut root_macros = MacroNamespace::new();
        let mut package_namespaces: std::collections::HashMap<String, MacroNamespace> =
            std::collections::HashMap::new();
        let mut macro_locations: IndexMap<String, MacroLocation> = IndexMap::new();
        let mut package_locations: IndexMap<String, IndexMap<String, MacroLocation>> =
            IndexMap::new();
        for file in &files {
            let root = file.package == project.name;
            for MacroDef { name, line } in &file.defs {
                let proxy = Value::from_object(MacroProxy::new(&file.path, name));
                let location = MacroLocation {
                    path: file.path.clone(),
                    line: *line,
                };
                if root {
                    root_macros.insert(name.clone(), proxy);
                    macro_locations.insert(name.clone(), location);
                } else {
                    package_namespaces
                        .entry(file.package.clone())
                        .or_default()
                        .insert(name.clone(), proxy);
                    package_locations
                        .entry(file.package.clone())
                        .or_default()
                        .insert(name.clone(), location);
                }
            }
        }
        let dispatch_orders = project
            .file
            .dispatch
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|entry| {
                let namespace = entry.get("macro_namespace")?.as_str()?.to_string();
                let order = entry
                    .get("search_order")?
                    .as_array()?
                    .iter()
                    .filter_map(|p| p.as_str().map(str::to_string))
                    .collect();
                Some((namespace, order))
            })
            .collect();

        let shared = Arc::new(Shared {
            target: Value::from(minijinja::value::Serde(project.target.jinja_value())),
            target_schema: project.target.schema.clone(),
            target_database: project.target.database.clone(),
            adapter: flavour.name(),
            dispatch_parents: flavour.dispatch_parents(),
            style,
            vars: project.vars.clone(),
            project_name: project.name.clone(),
            invocation_id: options
                .invocation_id
                .clone()
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            run_started_at: chrono::Utc::now(),
            docs: project
                .docs
                .iter()
                .map(|(k, v)| (k.clone(), v.text.clone()))
                .collect(),
            full_refresh: options.full_refresh,
            command: options.command.clone(),
            project_flags: project.file.flags.clone(),
            package_macros: package_namespaces
                .into_iter()
                .map(|(k, v)| (k, Arc::new(v)))
                .collect(),
            root_macros: Arc::new(root_macros),
            package_vars: project
                .packages
                .iter()
                .map(|p| (p.name.clone(), p.vars.clone()))
                .collect(),
            dispatch_orders,
            warehouse: OnceLock::new(),
            graph: OnceLock::new(),
            selected: OnceLock::new(),
        });
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
        match minijinja::syntax::SyntaxConfig::builder()
            .keep_trailing_newline(true)
            .build()
        {
            Ok(syntax) => env.set_syntax(syntax),
            Err(err) => return Err(vec![convert_error(&err, BUILTIN_TEMPLATE, &[])]),
        }
        env.set_recursion_limit(1000);
        // SQL is never HTML- or JSON-escaped, whatever the template's file name (tests render
        // under their YAML file's name, which would otherwise turn on JSON escaping).
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        builtins::register(&mut env, &shared);

        let mut errors = Vec::new();
        let (builtin_source, builtin_defs) = macros::rewrite_macro_file(BUILTIN_MACROS_SOURCE);
        BUILTIN_MACRO_NAMES.get_or_init(|| builtin_defs.iter().map(|d| d.name.clone()).collect());
        if let Err(err) = env.add_template_owned(BUILTIN_TEMPLATE, builtin_source) {
            errors.push(convert_error(&err, BUILTIN_TEMPLATE, &[]));
        }
        for def in &builtin_defs {
            env.add_global(
                def.name.clone(),
                Value::from_object(MacroProxy::new(BUILTIN_TEMPLATE, &def.name)),
            );
        }
        for file in files {
            if let Err(err) = env.add_template_owned(file.path.clone(), file.source) {
                errors.push(convert_error(&err, &file.path, &[]));
            }
        }
        // Bare names reach the root project's macros (over the built-ins); a package's macros
        // are reached as `<package>.<macro>`, or bare from that package's own nodes (the
        // render's root looks those up first, see `context.rs`).
        for (name, proxy) in shared.root_macros.iter() {
            env.add_global(name.clone(), proxy.clone());
        }
        for (package, macros) in &shared.package_macros {
            env.add_global(package.clone(), Value::from_dyn_object(macros.clone()));
        }
        env.add_global(
            project.name.clone(),
            Value::from_dyn_object(shared.root_macros.clone()),
        );
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Engine {
            env,
            shared,
            macros: macro_locations,
            package_macros: package_locations,
            macro_graph,
        })
    }

    /// How the generic test `test_name` (namespaced or not) is called from a test of
    /// `from_package`, as dbt finds test macros: the named package's; else the test's own
    /// package's, the root project's, any package's, then strata's built-in one. `None`
    /// when no macro defines it.
    pub fn test_macro(
        &self,
        namespace: Option<&str>,
        test_name: &str,
        from_package: &str,
    ) -> Option<TestMacro> {
        let macro_name = format!("test_{test_name}");
        let root = &self.shared.project_name;
        let builtin = || {
            BUILTIN_MACRO_NAMES
                .get()
                .is_some_and(|names| names.contains(&macro_name))
                .then_some(TestMacro::Builtin)
        };
        let in_package = |package: &str| -> Option<TestMacro> {
            let found = if package == root {
                self.macros.contains_key(&macro_name)
            } else {
                self.package_macros
                    .get(package)
                    .is_some_and(|m| m.contains_key(&macro_name))
            };
            found.then(|| TestMacro::Project(format!("{package}.{macro_name}")))
        };
        match namespace {
            Some("dbt") => builtin(),
            Some(package) => in_package(package),
            None => in_package(from_package)
                .or_else(|| in_package(root))
                .or_else(|| {
                    self.package_macros
                        .iter()
                        .find(|(_, m)| m.contains_key(&macro_name))
                        .map(|(p, _)| TestMacro::Project(format!("{p}.{macro_name}")))
                })
                .or_else(builtin),
        }
    }

    /// Every generic test name any macro defines, for "did you mean".
    pub fn test_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .macros
            .keys()
            .chain(self.package_macros.values().flat_map(|m| m.keys()))
            .chain(BUILTIN_MACRO_NAMES.get().into_iter().flatten())
            .filter_map(|k| k.strip_prefix("test_").map(String::from))
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Gives templates the warehouse (`run_query`, statements, the adapter's introspection);
    /// set once per command, when it connects.
    pub fn attach_warehouse(&self, warehouse: Arc<dyn warehouse::WarehouseAccess>) {
        let _ = self.shared.warehouse.set(warehouse);
    }

    /// Gives templates `graph` (`graph.nodes`, `graph.sources`) in the compile phase.
    pub fn attach_graph(&self, graph: Json) {
        let _ = self
            .shared
            .graph
            .set(Value::from(minijinja::value::Serde(graph)));
    }

    /// Sets `selected_resources`.
    pub fn set_selected(&self, ids: Vec<String>) {
        let _ = self.shared.selected.set(Value::from(ids));
    }

    /// Each installed package's macros by name.
    pub fn package_macros(&self) -> &IndexMap<String, IndexMap<String, MacroLocation>> {
        &self.package_macros
    }

    /// Every project and package macro's text and calls, for state comparison.
    pub fn macro_graph(&self) -> &calls::MacroGraph {
        &self.macro_graph
    }

    /// Project macros by name.
    pub fn macros(&self) -> &IndexMap<String, MacroLocation> {
        &self.macros
    }

    /// Whether the project defines (or overrides) a macro.
    pub fn has_project_macro(&self, name: &str) -> bool {
        self.macros.contains_key(name)
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    fn root(
        &self,
        node: NodeInfo,
        phase: Phase,
        resolver: Option<Arc<dyn Resolver>>,
    ) -> Arc<RenderContext> {
        Arc::new(RenderContext {
            shared: self.shared.clone(),
            node,
            phase,
            resolver,
            capture: Mutex::new(Capture::default()),
            results: Mutex::new(Default::default()),
        })
    }

    /// Renders `source` (the template at `path`) for a node.
    pub fn render(
        &self,
        path: &str,
        source: &str,
        node: NodeInfo,
        phase: Phase,
        resolver: Option<Arc<dyn Resolver>>,
    ) -> Result<(String, Capture), TemplateError> {
        let source: Cow<'_, str> = match mutable::rewrite_mutable_sets(source) {
            Some(rewritten) => Cow::Owned(rewritten),
            None => Cow::Borrowed(source),
        };
        let root = self.root(node, phase, resolver);
        // Environments are covariant in their source lifetime: a shorter-lived view lets us
        // compile templates whose source lives only for this call.
        let env: &Environment<'_> = &self.env;
        let template = env
            .template_from_named_str(path, &source)
            .map_err(|e| convert_error(&e, path, &[]))?;
        let rendered = template
            .render(Value::from_dyn_object(root.clone()))
            .map_err(|e| {
                let mut err = convert_error(&e, path, &self.macro_names());
                if err.kind == TemplateErrorKind::Undefined && err.message == "undefined value" {
                    err.message = undefined_message(&template, &self.env, &root);
                }
                err
            })?;
        let capture = root.capture().clone();
        Ok((rendered, capture))
    }

    /// Calls a macro by name for a node (e.g. a project's `generate_schema_name`): the root
    /// project's, else the built-in one; a package's own macro of that name is not used, as
    /// dbt does not use a package's `generate_schema_name` for its nodes.
    pub fn call_macro(
        &self,
        name: &str,
        args: &[Value],
        node: NodeInfo,
        phase: Phase,
    ) -> Result<Value, TemplateError> {
        let root = self.root(node, phase, None);
        let shared = self.shared.clone();
        self.call_in_render(name, args, root, |state| {
            shared
                .root_macros
                .get(name)
                .cloned()
                .or_else(|| Namespace::Builtin.get(name))
                .or_else(|| state.lookup(name))
        })
    }

    /// Calls a macro in a render of its own with `root` as its context: the one `find` picks,
    /// seeing the render's state.
    fn call_in_render(
        &self,
        name: &str,
        args: &[Value],
        root: Arc<RenderContext>,
        find: impl Fn(&minijinja::State<'_, '_>) -> Option<Value>,
    ) -> Result<Value, TemplateError> {
        let location = self.macro_path(name);
        let template = self
            .env
            .template_from_str("")
            .map_err(|e| convert_error(&e, "<call>", &[]))?;
        let mut captured = template
            .render_captured(Value::from_dyn_object(root))
            .map_err(|e| convert_error(&e, "<call>", &[]))?;
        captured.with_state_mut(|state| {
            let function = find(state)
                .filter(|v| !v.is_undefined() && !v.is_none())
                .ok_or_else(|| TemplateError {
                    kind: TemplateErrorKind::UnknownMacro,
                    path: location.clone(),
                    line: None,
                    message: format!("macro `{name}` is not defined"),
                    hint: Some("define it with {% macro %} in a file under the macro paths".into()),
                })?;
            function
                .call(state, args)
                .map_err(|e| convert_error(&e, &location, &[]))
        })
    }

    /// The file that defines a macro the root project or strata reaches by bare name.
    fn macro_path(&self, name: &str) -> String {
        self.macros
            .get(name)
            .map(|l| l.path.clone())
            .unwrap_or_else(|| BUILTIN_TEMPLATE.to_string())
    }

    fn macro_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.macros.keys().cloned().collect();
        if let Some(builtins) = BUILTIN_MACRO_NAMES.get() {
            names.extend(builtins.iter().cloned());
        }
        names.extend(
            [
                "ref",
                "source",
                "config",
                "var",
                "env_var",
                "this",
                "is_incremental",
                "log",
                "return",
                "adapter",
                "exceptions",
                "modules",
                "run_query",
                "statement",
                "doc",
                "zip",
                "tojson",
                "fromjson",
                "target",
                "dbt",
            ]
            .iter()
            .map(|s| s.to_string()),
        );
        names
    }
}

/// minijinja's undefined errors do not name the variable; find it among the template's free
/// variables.
fn undefined_message(
    template: &minijinja::Template<'_, '_>,
    env: &Environment<'_>,
    root: &Arc<RenderContext>,
) -> String {
    let root_value = Value::from_dyn_object(root.clone());
    let mut unknown: Vec<String> = template
        .undeclared_variables(false)
        .into_iter()
        .filter(|name| {
            env.globals().all(|(g, _)| g != name)
                && root_value
                    .get_attr(name)
                    .map(|v| v.is_undefined())
                    .unwrap_or(true)
        })
        .collect();
    unknown.sort();
    match unknown.as_slice() {
        [] => "undefined value".to_string(),
        [one] => format!("undefined variable `{one}`"),
        many => format!(
            "undefined variables {}",
            many.iter()
                .map(|v| format!("`{v}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Converts a minijinja error into a [`TemplateError`] pointing at the innermost template and
/// line that failed (a macro file when the failure is inside a macro).
fn convert_error(err: &minijinja::Error, fallback_path: &str, known: &[String]) -> TemplateError {
    let mut innermost = err;
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(mj) = e.downcast_ref::<minijinja::Error>() {
            if mj.line().is_some() {
                innermost = mj;
            }
        }
        current = e.source();
    }
    let detail = innermost
        .detail()
        .map(str::to_string)
        .unwrap_or_else(|| innermost.kind().to_string());
    let detail = detail.replace(macros::PRIVATE_PREFIX, "");
    let path = innermost.name().unwrap_or(fallback_path).to_string();
    let line = innermost.line();
    let (kind, message, hint) = match innermost.kind() {
        ErrorKind::SyntaxError => (
            TemplateErrorKind::Syntax,
            format!("Jinja syntax error: {detail}"),
            Some(
                "check that every `{{`, `{%` and block tag is closed and spelled as in dbt"
                    .to_string(),
            ),
        ),
        ErrorKind::UnknownFunction => {
            let name = detail
                .split_whitespace()
                .find_map(|w| {
                    w.strip_prefix('`')
                        .or(Some(w))
                        .map(|w| w.trim_matches(['`', '\'', '"']))
                })
                .unwrap_or("");
            let name = if detail.contains(" is unknown") {
                detail
                    .split(" is unknown")
                    .next()
                    .unwrap_or("")
                    .rsplit(' ')
                    .next()
                    .unwrap_or(name)
            } else {
                name
            };
            (
                TemplateErrorKind::UnknownMacro,
                format!("unknown macro or function: {detail}"),
                did_you_mean(name, known.iter().map(String::as_str)).or(Some(
                    "define it with {% macro %} in a file under the macro paths".to_string(),
                )),
            )
        }
        ErrorKind::UndefinedError => {
            if detail.starts_with("required var") || detail.starts_with("environment variable") {
                (TemplateErrorKind::Undefined, detail, None)
            } else {
                (
                    TemplateErrorKind::Undefined,
                    detail,
                    Some(
                        "define it with {% set %}, pass it as a var, or guard it with `is defined`"
                            .to_string(),
                    ),
                )
            }
        }
        _ if detail.starts_with(RAISED_PREFIX) => (
            TemplateErrorKind::Raised,
            detail.trim_start_matches(RAISED_PREFIX).to_string(),
            None,
        ),
        _ => (TemplateErrorKind::Other, detail, None),
    };
    TemplateError {
        kind,
        path,
        line,
        message,
        hint,
    }
}

/// Renders Jinja inside a YAML value: `env_var()` and `var()` exist there, and `target` in
/// the YAML beside models (not in the file the target is chosen from), as in dbt.
pub fn render_yaml_string(
    source: &str,
    vars: &IndexMap<String, Json>,
    target: Option<&Json>,
) -> Result<String, minijinja::Error> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    let env = ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.add_function("env_var", |name: String, default: Option<Value>| {
            builtins::lookup_env_var(&name, default)
        });
        env.add_function(
            "var",
            |state: &minijinja::State<'_, '_>, name: String, default: Option<Value>| {
                let vars: IndexMap<String, Json> = state
                    .lookup("__vars")
                    .and_then(|v| serde_json::to_value(&v).ok())
                    .and_then(|j| serde_json::from_value(j).ok())
                    .unwrap_or_default();
                builtins::lookup_var(&vars, &name, default)
            },
        );
        env
    });
    let env: &Environment<'_> = env;
    let vars = Value::from(minijinja::value::Serde(vars));
    match target {
        Some(target) => env.render_str(
            source,
            minijinja::context! { __vars => vars, target => Value::from(minijinja::value::Serde(target)) },
        ),
        None => env.render_str(source, minijinja::context! { __vars => vars }),
    }
}

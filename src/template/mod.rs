//! The Jinja engine: one minijinja environment per command with project macros, strata's
//! built-in macros and dbt's context, rendering nodes in two phases (parse, compile).
//!
//! This room knows templates and values; it does not load files (project/) or decide what
//! depends on what (graph/). Rendering is synchronous and thread-safe: callers fan nodes out
//! across cores.

pub mod builtin_tests;
pub mod builtins;
pub mod context;
pub mod macros;
pub mod mutable;

use std::borrow::Cow;
use std::sync::{Arc, Mutex, OnceLock};

use indexmap::IndexMap;
use minijinja::value::Value;
use minijinja::{Environment, ErrorKind, UndefinedBehavior};
use serde_json::Value as Json;

pub use context::{
    Capture, ConfigRead, NodeInfo, Phase, PhaseReads, RefCall, RenderContext, Resolved, Resolver,
    SourceRead,
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

/// The environment for one command.
#[derive(Debug)]
pub struct Engine {
    env: Environment<'static>,
    shared: Arc<Shared>,
    macros: IndexMap<String, MacroLocation>,
}

impl Engine {
    /// Builds the environment: built-ins, then every project macro file (which may override
    /// built-ins). All macro files are compiled here, so syntax errors surface together.
    pub fn new(project: &Project, options: EngineOptions) -> Result<Engine, Vec<TemplateError>> {
        let flavour = crate::adapter::flavour_for(&project.target);
        let style = flavour.template_quote_style();
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

        let mut macro_locations: IndexMap<String, MacroLocation> = IndexMap::new();
        let mut project_namespace: IndexMap<String, Value> = IndexMap::new();
        for file in &project.macro_files {
            let path = file.path.to_string_lossy().replace('\\', "/");
            let (source, defs) = macros::rewrite_macro_file(&file.source);
            let source = mutable::rewrite_mutable_sets(&source).unwrap_or(source);
            if let Err(err) = env.add_template_owned(path.clone(), source) {
                errors.push(convert_error(&err, &path, &[]));
                continue;
            }
            for MacroDef { name, line } in defs {
                let proxy = Value::from_object(MacroProxy::new(&path, &name));
                env.add_global(name.clone(), proxy.clone());
                project_namespace.insert(name.clone(), proxy);
                macro_locations.insert(
                    name,
                    MacroLocation {
                        path: path.clone(),
                        line,
                    },
                );
            }
        }
        // `{{ my_project.some_macro() }}` reaches project macros by package name.
        env.add_global(
            project.name.clone(),
            Value::from_object(
                project_namespace
                    .into_iter()
                    .collect::<std::collections::BTreeMap<String, Value>>(),
            ),
        );
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Engine {
            env,
            shared,
            macros: macro_locations,
        })
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

    /// Calls a macro by name for a node (e.g. a project's `generate_schema_name`).
    pub fn call_macro(
        &self,
        name: &str,
        args: &[Value],
        node: NodeInfo,
        phase: Phase,
    ) -> Result<Value, TemplateError> {
        let root = self.root(node, phase, None);
        let template = self
            .env
            .template_from_str("")
            .map_err(|e| convert_error(&e, "<call>", &[]))?;
        let mut captured = template
            .render_captured(Value::from_dyn_object(root))
            .map_err(|e| convert_error(&e, "<call>", &[]))?;
        let location = self
            .macros
            .get(name)
            .map(|l| l.path.clone())
            .unwrap_or_else(|| BUILTIN_TEMPLATE.to_string());
        captured.with_state_mut(|state| {
            let function = state.lookup(name).ok_or_else(|| TemplateError {
                kind: TemplateErrorKind::UnknownMacro,
                path: location.clone(),
                line: None,
                message: format!("macro `{name}` is not defined"),
                hint: None,
            })?;
            function
                .call(state, args)
                .map_err(|e| convert_error(&e, &location, &[]))
        })
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

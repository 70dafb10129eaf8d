//! The per-node render context: `ref`, `source`, `config`, `this`, `model`, `is_incremental` and
//! `execute`, as one root object per render.
//!
//! The root object is what makes dbt's API work across macros: strata's macro proxies render
//! macros with the caller's root, so a macro that calls `ref()` records a dependency of the
//! model that called it. In the parse phase calls are captured; in the compile phase `ref` and
//! `source` resolve to real, quoted relation names.

use std::sync::{Arc, Mutex, MutexGuard};

use indexmap::IndexMap;
use minijinja::value::{Enumerator, Kwargs, Object, ObjectRepr, Value};
use minijinja::{Error, ErrorKind, State};
use serde_json::Value as Json;

use super::Shared;
use crate::project::config::{merge_into, ConfigMap};
use crate::relation::RelationName;

/// Which rendering pass this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Capture refs, sources and configs; no warehouse, `execute` is false.
    Parse,
    /// Render with real relation names; `execute` is true.
    Compile,
}

/// A `ref()` call as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct RefCall {
    pub package: Option<String>,
    pub name: String,
    pub version: Option<String>,
}

/// What `ref()` resolves to at compile time.
#[derive(Debug, Clone)]
pub enum Resolved {
    Relation(RelationName),
    /// An ephemeral model, inlined as the CTE `cte_name`.
    Ephemeral {
        unique_id: String,
        cte_name: String,
    },
}

/// Resolves `ref` and `source` in the compile phase.
pub trait Resolver: Send + Sync + std::fmt::Debug {
    /// What `call`, made by a node of package `from_package`, resolves to.
    fn resolve_ref(&self, call: &RefCall, from_package: &str) -> Result<Resolved, String>;
    fn resolve_source(&self, source: &str, table: &str) -> Result<RelationName, String>;

    /// The event-time column of the model, seed, snapshot or source at `relation`, when its
    /// config names one (`event_time`): a microbatch model reads it bounded to each batch.
    fn event_time(&self, relation: &RelationName) -> Option<String> {
        let _ = relation;
        None
    }

    /// How an external source is read when not by its relation name (DuckDB's
    /// `read_parquet(…)` over its files, or a CTE over some files' rows); `None` for sources
    /// that are tables.
    fn source_expression(&self, source: &str, table: &str) -> Option<SourceRead> {
        let _ = (source, table);
        None
    }
}

/// SQL that reads an external source in place of its relation name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceRead {
    /// Rendered where `source()` stands (a table function DuckDB takes in `from`).
    Inline(String),
    /// A CTE in front of the query, named where `source()` stands: works wherever a table
    /// name does, with or without an alias (PostgreSQL wants one for a subquery).
    Cte { name: String, sql: String },
}

/// What a render captured.
#[derive(Debug, Default, Clone)]
pub struct Capture {
    pub refs: Vec<RefCall>,
    pub sources: Vec<(String, String)>,
    /// Merged arguments of every `config()` call, in order.
    pub config: ConfigMap,
    /// Unique ids of ephemeral models referenced, in first-use order.
    pub ephemerals: Vec<String>,
    /// CTEs `source()` calls need in front of the query, `(name, SQL)`, in first-use order.
    pub source_ctes: Vec<(String, String)>,
    /// `{{ log() }}` / `print()` messages with `info=True`.
    pub logs: Vec<String>,
    /// What the render read that the other phase may see differently.
    pub reads: PhaseReads,
    /// What the render's output depends on beyond its own text, for state comparison.
    pub inputs: RenderInputs,
}

/// What a render read besides its own source: the project macros it called (directly, through
/// other macros, or by dispatch), and the vars and environment variables it read with the
/// values it found. A previous run's record of these tells which nodes a change reaches.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct RenderInputs {
    /// `(template, macro name)` of every macro called.
    pub macros: std::collections::BTreeSet<(Arc<str>, Arc<str>)>,
    /// Each var read and the value it had as written (`None`: not set; a default was used).
    pub vars: std::collections::BTreeMap<String, Option<Json>>,
    /// Each environment variable read and its value (`None`: not set). Secrets
    /// (`DBT_ENV_SECRET_…`) are not kept.
    pub env_vars: std::collections::BTreeMap<String, Option<String>>,
}

/// One `config.get`/`config.require` in a render.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigRead {
    /// The key, normalized.
    pub key: String,
    pub found: Option<Json>,
    /// Whether the template's own `config()` calls had set the key by then.
    pub set_by_template: bool,
}

/// What a parse-phase render read that the compile phase may see differently. When every one
/// of them reads the same at compile time, the two renders take the same path through the
/// template and the parse render's text already is the compiled SQL.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct PhaseReads {
    /// Something was read that is different in the other phase by definition (`execute`,
    /// `model`): the render cannot stand in for the other phase's.
    pub opaque: bool,
    /// `this` was read, and was this relation (`None`: it was undefined).
    pub this: Option<Option<RelationName>>,
    /// `is_incremental` was read (it is false in the parse phase).
    pub is_incremental: bool,
    /// Each `ref()` and the relation it rendered as.
    pub refs: Vec<(RefCall, RelationName)>,
    /// Each `source()` and the relation it rendered as.
    pub sources: Vec<((String, String), RelationName)>,
    /// Each `config.get`/`config.require`: the key (normalized), the value found, and whether
    /// the template's own `config()` calls had set the key by then.
    pub config: Vec<ConfigRead>,
    /// The render asked the warehouse something (`run_query`, a statement, the adapter's
    /// introspection): the node is compiled right before it runs, once its parents exist.
    pub introspective: bool,
    /// The render read `execute`, as templates guarding warehouse calls do (`{% if execute %}`):
    /// the compile phase may ask the warehouse, so such a node too is compiled right before
    /// it runs.
    pub execute: bool,
}

/// What a render needs to know about its node.
#[derive(Debug, Clone, Default)]
pub struct NodeInfo {
    pub unique_id: String,
    pub name: String,
    pub resource_type: String,
    pub package: String,
    /// Path relative to the project root.
    pub path: String,
    pub fqn: Vec<String>,
    /// Where the node is built; `None` for tests and ephemerals at parse time.
    pub this: Option<RelationName>,
    /// Config before in-file `config()` calls (project tree and YAML).
    pub config: ConfigMap,
    pub is_incremental: bool,
    /// Extra fields for the `model` variable (description, columns, …).
    pub model_extra: serde_json::Map<String, Json>,
    /// Further top-level variables of this render: a materialization's `sql`,
    /// `compiled_code`, `pre_hooks` and `post_hooks`.
    pub variables: serde_json::Map<String, Json>,
    /// What a unit test replaces in the render of its model.
    pub overrides: Option<Arc<RenderOverrides>>,
}

/// What a unit test replaces while its model renders (dbt's `overrides:`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RenderOverrides {
    /// Vars, over the project's and `--vars`.
    pub vars: IndexMap<String, Json>,
    /// Environment variables, over the process's.
    pub env_vars: IndexMap<String, String>,
    /// Macro name → the value it returns instead of running.
    pub macros: IndexMap<String, Json>,
    /// `this` renders as this name (the CTE of a unit test's `input: this`).
    pub this_cte: Option<String>,
}

/// The root object of one render.
#[derive(Debug)]
pub struct RenderContext {
    pub(crate) shared: Arc<Shared>,
    pub(crate) node: NodeInfo,
    pub(crate) phase: Phase,
    pub(crate) resolver: Option<Arc<dyn Resolver>>,
    pub(crate) capture: Mutex<Capture>,
    /// What `{% call statement('name') %}` blocks returned, for `load_result('name')`.
    pub(crate) results: Mutex<std::collections::HashMap<String, Value>>,
}

impl RenderContext {
    /// A macro of the node's own package, when the node belongs to an installed package.
    fn package_macro(&self, name: &str) -> Option<Value> {
        if self.node.package.is_empty() || self.node.package == self.shared.project_name {
            return None;
        }
        self.shared
            .package_macros
            .get(&self.node.package)?
            .get(name)
            .cloned()
    }

    /// The package of the node being rendered (the root project for nodes of no package).
    pub fn package(&self) -> &str {
        if self.node.package.is_empty() {
            &self.shared.project_name
        } else {
            &self.node.package
        }
    }

    pub fn results(&self) -> MutexGuard<'_, std::collections::HashMap<String, Value>> {
        self.results.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn capture(&self) -> MutexGuard<'_, Capture> {
        self.capture.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The node's config as it stands: YAML/project config overlaid with `config()` calls so far.
    fn current_config(&self) -> ConfigMap {
        let mut config = self.node.config.clone();
        merge_into(&mut config, &self.capture().config);
        config
    }

    fn relation_value(&self, relation: &RelationName) -> Value {
        Value::from_object(self.relation_object(relation))
    }

    /// Whether the node is a microbatch model (its inputs with an event time render bounded
    /// to the batch).
    fn is_microbatch(&self) -> bool {
        // Two keys of the config as it stands, read without merging the whole of it.
        let capture = self.capture();
        let is = |key: &str, value: &str| {
            capture
                .config
                .get(key)
                .or_else(|| self.node.config.get(key))
                .and_then(Json::as_str)
                .is_some_and(|s| s.trim().eq_ignore_ascii_case(value))
        };
        is("materialized", "incremental") && is("incremental_strategy", "microbatch")
    }

    /// The event-time column `relation` renders bounded by, in a microbatch model.
    fn batch_filter(&self, resolver: &dyn Resolver, relation: &RelationName) -> Option<String> {
        if !self.is_microbatch() {
            return None;
        }
        resolver.event_time(relation)
    }

    /// A ref's or a source's relation, bounded to the batch in a microbatch model.
    fn input_value(&self, resolver: &dyn Resolver, relation: &RelationName) -> Value {
        let mut object = self.relation_object(relation);
        object.event_time = self.batch_filter(resolver, relation);
        Value::from_object(object)
    }

    fn relation_object(&self, relation: &RelationName) -> RelationValue {
        RelationValue {
            event_time: None,
            relation: relation.clone(),
            style: self.shared.style,
            include_database: true,
            include_schema: true,
            cte_name: None,
            expression: None,
            kind: None,
        }
    }

    /// The value a unit test gives a macro instead of running it.
    pub(crate) fn macro_override(&self, name: &str) -> Option<Value> {
        let value = self.node.overrides.as_ref()?.macros.get(name)?;
        let value = Value::from(minijinja::value::Serde(value.clone()));
        Some(Value::from_function(
            move |_args: minijinja::value::Rest<Value>| value.clone(),
        ))
    }

    fn model_value(&self) -> Value {
        let mut map = self.node.model_extra.clone();
        map.insert("name".into(), Json::from(self.node.name.clone()));
        map.insert("unique_id".into(), Json::from(self.node.unique_id.clone()));
        map.insert(
            "resource_type".into(),
            Json::from(self.node.resource_type.clone()),
        );
        map.insert("package_name".into(), Json::from(self.node.package.clone()));
        map.insert(
            "original_file_path".into(),
            Json::from(self.node.path.clone()),
        );
        map.insert("path".into(), Json::from(self.node.path.clone()));
        map.insert("fqn".into(), Json::from(self.node.fqn.clone()));
        let config = self.current_config();
        if let Some(tags) = config.get("tags") {
            map.insert("tags".into(), tags.clone());
        }
        map.insert("config".into(), Json::Object(config.into_iter().collect()));
        if let Some(this) = &self.node.this {
            map.insert("schema".into(), Json::from(this.schema.clone()));
            map.insert("alias".into(), Json::from(this.identifier.clone()));
            map.insert("database".into(), Json::from(this.database.clone()));
        }
        // dbt 1.9's `model.batch` of a microbatch model: values each batch fills in (see
        // `materialize::microbatch::batch_sql`); none for other models.
        let batch = if self.is_microbatch() {
            use crate::materialize::microbatch::{BATCH_END, BATCH_ID, BATCH_START};
            serde_json::json!({
                "id": BATCH_ID,
                "event_time_start": BATCH_START,
                "event_time_end": BATCH_END,
            })
        } else {
            Json::Null
        };
        map.insert("batch".into(), batch);
        Value::from(minijinja::value::Serde(Json::Object(map)))
    }
}

impl Object for RenderContext {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let key = key.as_str()?;
        Some(match key {
            "ref" => Value::from_object(RefFunction(self.clone())),
            "source" => Value::from_object(SourceFunction(self.clone())),
            "config" => Value::from_object(ConfigObject(self.clone())),
            "this" => {
                self.capture().reads.this = Some(self.node.this.clone());
                let cte = self
                    .node
                    .overrides
                    .as_ref()
                    .and_then(|o| o.this_cte.clone());
                match (&self.node.this, cte) {
                    (Some(relation), Some(cte)) => Value::from_object(RelationValue {
                        event_time: None,
                        cte_name: Some(cte),
                        ..self.relation_object(relation)
                    }),
                    (Some(relation), None) => self.relation_value(relation),
                    (None, _) => Value::from(()),
                }
            }
            "model" => {
                self.capture().reads.opaque = true;
                self.model_value()
            }
            "execute" => {
                let mut capture = self.capture();
                capture.reads.opaque = true;
                capture.reads.execute = true;
                drop(capture);
                Value::from(self.phase == Phase::Compile)
            }
            "is_incremental" => {
                self.capture().reads.is_incremental = true;
                let flag = self.phase == Phase::Compile && self.node.is_incremental;
                Value::from_function(move || flag)
            }
            super::CONTEXT_KEY => Value::from_dyn_object(self.clone()),
            // dbt's own `ref`, `source` and `config`, for projects that override them.
            "builtins" => {
                let mut map: std::collections::BTreeMap<&'static str, Value> = Default::default();
                map.insert("ref", Value::from_object(RefFunction(self.clone())));
                map.insert("source", Value::from_object(SourceFunction(self.clone())));
                map.insert("config", Value::from_object(ConfigObject(self.clone())));
                Value::from_object(map)
            }
            // Empty while parsing, the manifest's nodes once compiling: the two renders differ.
            "graph" => {
                self.capture().reads.opaque = true;
                match self.phase {
                    Phase::Compile => self.shared.graph.get()?.clone(),
                    Phase::Parse => return None,
                }
            }
            "selected_resources" => self.shared.selected.get()?.clone(),
            name if self.node.variables.contains_key(name) => {
                Value::from(minijinja::value::Serde(&self.node.variables[name]))
            }
            name if self
                .node
                .overrides
                .as_ref()
                .is_some_and(|o| o.macros.contains_key(name)) =>
            {
                return self.macro_override(name);
            }
            // A package's nodes see its macros by bare name before the root project's, as
            // in dbt (the root's and the built-ins are environment globals).
            name => return self.package_macro(name),
        })
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&[
            "ref",
            "source",
            "config",
            "this",
            "model",
            "execute",
            "is_incremental",
        ])
    }
}

/// Splits call arguments into positional values and keyword arguments.
pub(crate) fn split_args(args: &[Value]) -> Result<(Vec<Value>, Option<Kwargs>), Error> {
    match args.last() {
        Some(last) if last.is_kwargs() => Ok((
            args[..args.len() - 1].to_vec(),
            Some(Kwargs::try_from(last.clone())?),
        )),
        _ => Ok((args.to_vec(), None)),
    }
}

fn string_arg(value: &Value, what: &str) -> Result<String, Error> {
    value.as_str().map(str::to_string).ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("{what} must be a string, got `{value}`"),
        )
    })
}

/// `ref('name')`, `ref('package', 'name')`, `ref('name', version=2)`.
#[derive(Debug)]
struct RefFunction(Arc<RenderContext>);

impl Object for RefFunction {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn call(self: &Arc<Self>, _state: &mut State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        let (positional, kwargs) = split_args(args)?;
        let version = match &kwargs {
            Some(kwargs) => {
                let v = kwargs
                    .peek::<Option<Value>>("version")
                    .ok()
                    .flatten()
                    .or_else(|| kwargs.peek::<Option<Value>>("v").ok().flatten());
                v.map(|v| v.to_string())
            }
            None => None,
        };
        let call = match positional.as_slice() {
            [name] => RefCall {
                package: None,
                name: string_arg(name, "the model name in ref()")?,
                version,
            },
            [package, name] => RefCall {
                package: Some(string_arg(package, "the package name in ref()")?),
                name: string_arg(name, "the model name in ref()")?,
                version,
            },
            _ => {
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    "ref() takes a model name, or a package and a model name",
                ))
            }
        };
        let ctx = &self.0;
        ctx.capture().refs.push(call.clone());
        match (ctx.phase, &ctx.resolver) {
            (Phase::Compile, Some(resolver)) => {
                match resolver.resolve_ref(&call, &ctx.node.package) {
                    Ok(Resolved::Relation(relation)) => {
                        Ok(ctx.input_value(resolver.as_ref(), &relation))
                    }
                    Ok(Resolved::Ephemeral {
                        unique_id,
                        cte_name,
                    }) => {
                        let mut capture = ctx.capture();
                        if !capture.ephemerals.contains(&unique_id) {
                            capture.ephemerals.push(unique_id);
                        }
                        Ok(Value::from_object(RelationValue {
                            event_time: None,
                            relation: RelationName::new(None, "", cte_name.clone()),
                            style: ctx.shared.style,
                            include_database: false,
                            include_schema: false,
                            cte_name: Some(cte_name),
                            expression: None,
                            kind: None,
                        }))
                    }
                    Err(message) => Err(Error::new(ErrorKind::InvalidOperation, message)),
                }
            }
            (_, resolver) => {
                // Parse phase: the relation the model is expected to get (the resolver knows
                // every model's config before in-file `config()` calls), else a stand-in, so
                // templates can use `.identifier` etc.
                let relation = match resolver
                    .as_ref()
                    .map(|r| r.resolve_ref(&call, &ctx.node.package))
                {
                    Some(Ok(Resolved::Relation(relation))) => relation,
                    _ => RelationName::new(
                        Some(ctx.shared.target_database.clone()),
                        ctx.shared.target_schema.clone(),
                        call.name.clone(),
                    ),
                };
                let value = ctx.relation_value(&relation);
                ctx.capture().reads.refs.push((call, relation));
                // Bounded to each batch at compile time: the parse render cannot stand in.
                if ctx.is_microbatch() {
                    ctx.capture().reads.opaque = true;
                }
                Ok(value)
            }
        }
    }
}

/// `source('source_name', 'table_name')`.
#[derive(Debug)]
struct SourceFunction(Arc<RenderContext>);

impl Object for SourceFunction {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn call(self: &Arc<Self>, _state: &mut State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        let (positional, _) = split_args(args)?;
        let [source, table] = positional.as_slice() else {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                "source() takes a source name and a table name",
            ));
        };
        let source = string_arg(source, "the source name")?;
        let table = string_arg(table, "the table name")?;
        let ctx = &self.0;
        ctx.capture().sources.push((source.clone(), table.clone()));
        match (ctx.phase, &ctx.resolver) {
            (Phase::Compile, Some(resolver)) => {
                let relation = resolver
                    .resolve_source(&source, &table)
                    .map_err(|message| Error::new(ErrorKind::InvalidOperation, message))?;
                let (cte_name, expression) = match resolver.source_expression(&source, &table) {
                    None => return Ok(ctx.input_value(resolver.as_ref(), &relation)),
                    Some(SourceRead::Inline(expression)) => (None, Some(expression)),
                    Some(SourceRead::Cte { name, sql }) => {
                        let mut capture = ctx.capture();
                        if !capture.source_ctes.iter().any(|(n, _)| *n == name) {
                            capture.source_ctes.push((name.clone(), sql));
                        }
                        (Some(name), None)
                    }
                };
                Ok(Value::from_object(RelationValue {
                    event_time: ctx.batch_filter(resolver.as_ref(), &relation),
                    relation,
                    style: ctx.shared.style,
                    include_database: true,
                    include_schema: true,
                    cte_name,
                    expression,
                    kind: None,
                }))
            }
            (_, resolver) => {
                let relation = match resolver.as_ref().map(|r| r.resolve_source(&source, &table)) {
                    Some(Ok(relation)) => relation,
                    _ => RelationName::new(
                        Some(ctx.shared.target_database.clone()),
                        source.clone(),
                        table.clone(),
                    ),
                };
                let value = ctx.relation_value(&relation);
                ctx.capture()
                    .reads
                    .sources
                    .push(((source, table), relation));
                if ctx.is_microbatch() {
                    ctx.capture().reads.opaque = true;
                }
                Ok(value)
            }
        }
    }
}

/// `config(...)` to set, `config.get(key, default)` / `config.require(key)` to read.
#[derive(Debug)]
struct ConfigObject(Arc<RenderContext>);

impl Object for ConfigObject {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn call(self: &Arc<Self>, _state: &mut State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        let (positional, kwargs) = split_args(args)?;
        let mut map = ConfigMap::new();
        for value in positional {
            let json: Json = serde_json::to_value(&value).map_err(|e| {
                Error::new(
                    ErrorKind::InvalidOperation,
                    format!("config() argument: {e}"),
                )
            })?;
            match json {
                Json::Object(obj) => map.extend(obj),
                other => {
                    return Err(Error::new(
                        ErrorKind::InvalidOperation,
                        format!("config() takes keyword arguments or a dict, got `{other}`"),
                    ))
                }
            }
        }
        if let Some(kwargs) = kwargs {
            for key in kwargs.args() {
                let value: Value = kwargs.peek(key)?;
                let json = serde_json::to_value(&value).map_err(|e| {
                    Error::new(ErrorKind::InvalidOperation, format!("config({key}=…): {e}"))
                })?;
                map.insert(key.to_string(), json);
            }
        }
        merge_into(&mut self.0.capture().config, &map);
        Ok(Value::from(""))
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let (positional, kwargs) = split_args(args)?;
        let key = positional
            .first()
            .and_then(|k| k.as_str().map(str::to_string))
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidOperation,
                    format!("config.{method}() needs a key"),
                )
            })?;
        let default = positional.get(1).cloned().or_else(|| {
            kwargs
                .as_ref()
                .and_then(|k| k.peek::<Value>("default").ok())
        });
        let config = self.0.current_config();
        let normalized = crate::project::config::normalize_key(&key);
        let found = config.get(&normalized);
        if matches!(method, "get" | "require") {
            let mut capture = self.0.capture();
            let read = ConfigRead {
                set_by_template: capture.config.contains_key(&normalized),
                key: normalized.clone(),
                found: found.cloned(),
            };
            capture.reads.config.push(read);
        }
        let found = found.map(|v| Value::from(minijinja::value::Serde(v.clone())));
        match method {
            "get" => Ok(found.or(default).unwrap_or(Value::from(()))),
            "require" => found.ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidOperation,
                    format!("required config `{key}` is not set"),
                )
            }),
            "set" | "persist_relation_docs" | "persist_column_docs" => Ok(Value::from(())),
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}

/// A relation as templates see it: renders as the quoted name, exposes its parts.
#[derive(Debug, Clone)]
pub struct RelationValue {
    pub relation: RelationName,
    pub style: crate::relation::QuoteStyle,
    pub include_database: bool,
    pub include_schema: bool,
    pub cte_name: Option<String>,
    /// SQL rendered instead of the name (an external source's file reader).
    pub expression: Option<String>,
    /// `table` or `view`, when the warehouse said (`adapter.get_relation`).
    pub kind: Option<String>,
    /// In a microbatch model, an input's event-time column: the relation renders as its rows
    /// in the batch's window (`.render()` still gives the plain name, as in dbt).
    pub event_time: Option<String>,
}

impl RelationValue {
    fn rendered(&self) -> String {
        if let Some(cte) = &self.cte_name {
            return cte.clone();
        }
        if let Some(expression) = &self.expression {
            return expression.clone();
        }
        let mut style = self.style;
        style.include_database &= self.include_database;
        if self.include_schema {
            self.relation.render(&style)
        } else {
            style.quote_identifier(&self.relation.identifier)
        }
    }

    /// What the relation renders as where it stands in SQL: in a microbatch model, an input
    /// with an event time is its rows in the batch's window, the bounds left as placeholders
    /// each batch fills.
    fn shown(&self) -> String {
        let name = self.rendered();
        match &self.event_time {
            None => name,
            Some(column) => {
                use crate::materialize::microbatch::{ALIAS, END, START};
                let column = self.style.quote_identifier(column);
                let alias: String = self
                    .relation
                    .identifier
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                    .collect();
                format!(
                    "(select * from {name} where {column} >= {START} and {column} < {END}) as {ALIAS}{alias}"
                )
            }
        }
    }
}

impl Object for RelationValue {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        Some(match key.as_str()? {
            "database" => Value::from(self.relation.database.clone()),
            "schema" => Value::from(self.relation.schema.clone()),
            "identifier" | "name" | "table" => Value::from(self.relation.identifier.clone()),
            "is_cte" => Value::from(self.cte_name.is_some()),
            "type" => Value::from(self.kind.clone()),
            "is_table" => Value::from(self.kind.as_deref() == Some("table")),
            "is_view" => Value::from(self.kind.as_deref() == Some("view")),
            "is_materialized_view" => Value::from(false),
            _ => return None,
        })
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "render" => Ok(Value::from(self.rendered())),
            "include" => {
                let (_, kwargs) = split_args(args)?;
                let mut copy = (**self).clone();
                if let Some(kwargs) = kwargs {
                    if let Ok(Some(db)) = kwargs.peek::<Option<bool>>("database") {
                        copy.include_database = db;
                    }
                    if let Ok(Some(schema)) = kwargs.peek::<Option<bool>>("schema") {
                        copy.include_schema = schema;
                    }
                }
                Ok(Value::from_object(copy))
            }
            // `relation.incorporate(path={'identifier': …}, type='table')`: a copy with those
            // parts replaced (dbt's `make_temp_relation` and the like).
            "incorporate" => {
                let (_, kwargs) = split_args(args)?;
                let mut copy = (**self).clone();
                if let Some(kwargs) = kwargs {
                    if let Ok(Some(path)) = kwargs.peek::<Option<Value>>("path") {
                        let part = |key: &str| {
                            path.get_attr(key)
                                .ok()
                                .filter(|v| !v.is_undefined() && !v.is_none())
                                .map(|v| v.to_string())
                        };
                        if let Some(identifier) = part("identifier") {
                            copy.relation.identifier = identifier;
                        }
                        if let Some(schema) = part("schema") {
                            copy.relation.schema = schema;
                        }
                        if let Some(database) = part("database") {
                            copy.relation.database = Some(database);
                        }
                    }
                    if let Ok(Some(kind)) = kwargs.peek::<Option<String>>("type") {
                        copy.kind = Some(kind);
                    }
                    for key in kwargs.args() {
                        let _: Value = kwargs.peek(key)?;
                    }
                }
                Ok(Value::from_object(copy))
            }
            "quote" => Ok(Value::from_dyn_object(self.clone())),
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown())
    }
}

//! dbt's global Jinja API beyond the per-node context: `var`, `env_var`, `log`, `exceptions`,
//! `modules.datetime`, `adapter`, `api`, `zip`, `tojson`/`fromjson`, `doc`, `run_query`, …
//!
//! Everything here is registered once per engine and reads run-wide facts from [`Shared`]; what
//! differs per node comes from the render's root context (see `context.rs`).

use std::sync::Arc;

use chrono::{DateTime, Datelike, Local, Timelike, Utc};
use minijinja::value::{Kwargs, Object, ObjectRepr, Rest, Value};
use minijinja::{Environment, Error, ErrorKind, State};
use serde_json::Value as Json;

use super::context::{split_args, RelationValue};
use super::macros::MacroProxy;
use super::{Shared, BUILTIN_TEMPLATE};
use crate::relation::RelationName;

/// Prefixes of environment variables whose values are secrets (never rendered into SQL logs).
pub const SECRET_ENV_PREFIXES: &[&str] = &["STRATA_ENV_SECRET_", "DBT_ENV_SECRET_"];

/// Looks up a var: CLI `--vars` first, then the project's `vars:`.
pub fn lookup_var(
    vars: &indexmap::IndexMap<String, Json>,
    name: &str,
    default: Option<Value>,
) -> Result<Value, Error> {
    match vars.get(name) {
        Some(value) => Ok(Value::from(minijinja::value::Serde(value.clone()))),
        None => default.ok_or_else(|| {
            Error::new(
                ErrorKind::UndefinedError,
                format!(
                    "required var `{name}` is not defined; set it under `vars:` in the project file or pass `--vars '{{{name}: ...}}'`"
                ),
            )
        }),
    }
}

/// dbt's prefix for environment variables that hold secrets: never recorded anywhere.
pub const SECRET_PREFIX: &str = "DBT_ENV_SECRET_";

/// Reads an environment variable, with an optional default.
pub fn lookup_env_var(name: &str, default: Option<Value>) -> Result<Value, Error> {
    match std::env::var(name) {
        Ok(value) => Ok(Value::from(value)),
        Err(_) => default.map(|d| Value::from(d.to_string())).ok_or_else(|| {
            Error::new(
                ErrorKind::UndefinedError,
                format!(
                    "environment variable `{name}` is not set and env_var() has no default; export it or pass a default: env_var('{name}', 'value')"
                ),
            )
        }),
    }
}

pub(crate) fn register(env: &mut Environment<'static>, shared: &Arc<Shared>) {
    minijinja_contrib::add_to_environment(env);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);

    let s = shared.clone();
    env.add_function(
        "var",
        move |state: &State<'_, '_>, name: String, default: Option<Value>| {
            // A package's nodes see the vars merged for that package.
            let root = state.lookup(super::CONTEXT_KEY);
            let ctx = root
                .as_ref()
                .and_then(|v| v.downcast_object_ref::<super::RenderContext>());
            let vars = match ctx {
                Some(ctx) => s.vars_for(ctx.package()),
                None => &s.vars,
            };
            if let Some(ctx) = ctx {
                ctx.capture()
                    .inputs
                    .vars
                    .insert(name.clone(), vars.get(&name).cloned());
            }
            // A unit test's `overrides: {vars: …}` win.
            let overridden = ctx
                .and_then(|c| c.node.overrides.as_ref())
                .and_then(|o| o.vars.get(&name));
            let value = match overridden {
                Some(value) => Value::from(minijinja::value::Serde(value.clone())),
                None => lookup_var(vars, &name, default)?,
            };
            // A var written as Jinja (`"{{ target.schema }}_raw"`) renders where it is read,
            // with the reading node's context, as dbt renders it.
            match value.as_str() {
                Some(text) if text.contains("{{") || text.contains("{%") => {
                    let context = root.unwrap_or_default();
                    state.env().render_str(text, context).map(Value::from)
                }
                _ => Ok(value),
            }
        },
    );
    env.add_function(
        "env_var",
        |state: &State<'_, '_>, name: String, default: Option<Value>| {
            if let Some(ctx) = state
                .lookup(super::CONTEXT_KEY)
                .as_ref()
                .and_then(|v| v.downcast_object_ref::<super::RenderContext>())
            {
                if !name.starts_with(SECRET_PREFIX) {
                    ctx.capture()
                        .inputs
                        .env_vars
                        .insert(name.clone(), std::env::var(&name).ok());
                }
                // A unit test's `overrides: {env_vars: …}` win.
                if let Some(value) = ctx
                    .node
                    .overrides
                    .as_ref()
                    .and_then(|o| o.env_vars.get(&name))
                {
                    return Ok(Value::from(value.clone()));
                }
            }
            lookup_env_var(&name, default)
        },
    );
    env.add_function("return", super::macros::return_function);
    env.add_function("__strata_mutable", super::mutable::make_mutable);
    env.add_function("log", log);
    // A generic test's `where` config narrows the relation it tests, as dbt does.
    env.add_function("__strata_where", |model: Value, condition: String| {
        format!("(select * from {model} where {condition}) dbt_subquery")
    });
    env.add_function("__strata_test_sql", super::builtin_tests::function);
    env.add_function("print", log);
    env.add_function("local_md5", |text: String| -> String {
        use md5::Digest;
        crate::util::hex(&md5::Md5::digest(text.as_bytes()))
    });
    env.add_function("zip", |lists: Rest<Value>| -> Result<Value, Error> {
        let columns: Vec<Vec<Value>> = lists
            .iter()
            .map(|l| l.try_iter().map(|it| it.collect()))
            .collect::<Result<_, _>>()?;
        let len = columns.iter().map(Vec::len).min().unwrap_or(0);
        Ok(Value::from(
            (0..len)
                .map(|i| Value::from(columns.iter().map(|c| c[i].clone()).collect::<Vec<_>>()))
                .collect::<Vec<_>>(),
        ))
    });
    env.add_function(
        "tojson",
        |value: Value, kwargs: Kwargs| -> Result<String, Error> {
            // As Python's `json.dumps` writes it, which is what dbt's `tojson` calls.
            let sort_keys = kwargs.get::<Option<bool>>("sort_keys")?.unwrap_or(false);
            let json = serde_json::to_value(&value)
                .map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))?;
            Ok(crate::util::python_json(&json, sort_keys))
        },
    );
    env.add_function(
        "fromjson",
        |text: String, default: Option<Value>| -> Result<Value, Error> {
            match serde_json::from_str::<Json>(&text) {
                Ok(json) => Ok(Value::from(minijinja::value::Serde(json))),
                Err(e) => default.ok_or_else(|| {
                    Error::new(ErrorKind::InvalidOperation, format!("fromjson: {e}"))
                }),
            }
        },
    );
    env.add_function(
        "fromyaml",
        |text: String, default: Option<Value>| -> Result<Value, Error> {
            match serde_yaml::from_str::<Json>(&text) {
                Ok(json) => Ok(Value::from(minijinja::value::Serde(json))),
                Err(e) => default.ok_or_else(|| {
                    Error::new(ErrorKind::InvalidOperation, format!("fromyaml: {e}"))
                }),
            }
        },
    );
    env.add_function("toyaml", |value: Value| -> Result<String, Error> {
        serde_yaml::to_string(&value)
            .map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))
    });
    env.add_function("set", |value: Value| -> Result<Value, Error> {
        let mut seen: Vec<Value> = Vec::new();
        for item in value.try_iter()? {
            if !seen.contains(&item) {
                seen.push(item);
            }
        }
        Ok(Value::from(seen))
    });
    env.add_function("list", |value: Value| -> Result<Value, Error> {
        Ok(Value::from(value.try_iter()?.collect::<Vec<_>>()))
    });
    let s = shared.clone();
    env.add_function("doc", move |name: String| -> Result<Value, Error> {
        s.docs.get(&name).map(|d| Value::from(d.clone())).ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidOperation,
                format!("docs block `{name}` not found; define it with {{% docs {name} %}} in a .md file under the model paths"),
            )
        })
    });
    env.add_function("run_query", super::warehouse::run_query);
    env.add_function("load_result", super::warehouse::load_result);
    env.add_function("statement", super::warehouse::statement);
    env.add_global("exceptions", Value::from_object(Exceptions));
    env.add_global("modules", Value::from_object(Modules));
    env.add_global("api", Value::from_object(Api(shared.clone())));
    env.add_global("adapter", Value::from_object(Adapter(shared.clone())));
    env.add_global("dbt", Value::from_object(BuiltinNamespace));
    env.add_global("target", shared.target.clone());
    env.add_global("project_name", Value::from(shared.project_name.clone()));
    env.add_global("invocation_id", Value::from(shared.invocation_id.clone()));
    env.add_global(
        "run_started_at",
        Value::from_object(DateTimeValue(shared.run_started_at)),
    );
    env.add_global(
        "dbt_version",
        Value::from(crate::project::version::DBT_VERSION),
    );
    env.add_global("strata_version", Value::from(env!("CARGO_PKG_VERSION")));
    let mut flags = serde_json::json!({
        "FULL_REFRESH": shared.full_refresh,
        "STORE_FAILURES": false,
        "WHICH": shared.command,
    });
    if let (Some(all), Some(project)) = (flags.as_object_mut(), shared.project_flags.as_object()) {
        for (name, value) in project {
            all.entry(name.clone()).or_insert_with(|| value.clone());
        }
    }
    env.add_global("flags", Value::from(minijinja::value::Serde(flags)));
    env.add_global(
        "graph",
        Value::from(minijinja::value::Serde(serde_json::json!({
            "nodes": {}, "sources": {}, "exposures": {}, "metrics": {}, "groups": {}
        }))),
    );
    env.add_global("selected_resources", Value::from(Vec::<Value>::new()));
    for filter in ["as_bool", "as_native", "as_number", "as_text"] {
        env.add_filter(filter, move |value: Value| -> Value {
            match filter {
                "as_text" => Value::from(value.to_string()),
                "as_bool" => match value.as_str() {
                    Some(s) => Value::from(s.eq_ignore_ascii_case("true")),
                    None => value,
                },
                "as_number" => match value.as_str() {
                    Some(s) => s
                        .parse::<i64>()
                        .map(Value::from)
                        .or_else(|_| s.parse::<f64>().map(Value::from))
                        .unwrap_or(value),
                    None => value,
                },
                _ => value,
            }
        });
    }
}

fn log(state: &State<'_, '_>, message: Value, kwargs: Kwargs) -> Result<String, Error> {
    let info = kwargs
        .peek::<Option<bool>>("info")
        .ok()
        .flatten()
        .unwrap_or(false);
    if info {
        if let Some(ctx) = state
            .lookup(super::CONTEXT_KEY)
            .and_then(|v| v.downcast_object::<super::context::RenderContext>())
        {
            ctx.capture().logs.push(message.to_string());
        }
    }
    Ok(String::new())
}

/// `exceptions.raise_compiler_error(msg)` and friends.
#[derive(Debug)]
struct Exceptions;

impl Object for Exceptions {
    fn call_method(
        self: &Arc<Self>,
        state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let message = args.first().map(|m| m.to_string()).unwrap_or_default();
        match method {
            "raise_compiler_error"
            | "raise_not_implemented"
            | "raise_fail_fast_error"
            | "raise_database_error" => Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("{}{message}", super::RAISED_PREFIX),
            )),
            "warn" => {
                log(
                    state,
                    Value::from(format!("warning: {message}")),
                    Kwargs::from_iter([("info", Value::from(true))]),
                )?;
                Ok(Value::from(""))
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}

/// `modules.datetime`, `modules.pytz` (UTC), `modules.re`, `modules.itertools`.
#[derive(Debug)]
struct Modules;

impl Object for Modules {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "datetime" => Some(Value::from_object(DatetimeModule)),
            "pytz" => Some(Value::from_object(PytzModule)),
            "re" => Some(Value::from_object(super::pyre::ReModule)),
            "itertools" => Some(Value::from_object(Itertools)),
            _ => None,
        }
    }
}

/// `modules.itertools`: `product`, `chain`, `combinations`, `permutations` over lists, each
/// giving a list of lists (Python gives tuples, which templates iterate the same way).
#[derive(Debug)]
struct Itertools;

impl Object for Itertools {
    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let (positional, kwargs) = split_args(args)?;
        let lists: Vec<Vec<Value>> = positional
            .iter()
            .map(|l| l.try_iter().map(|it| it.collect()))
            .collect::<Result<_, _>>()?;
        let r = kwargs
            .as_ref()
            .and_then(|k| k.peek::<Option<usize>>("r").ok().flatten());
        match method {
            "chain" => Ok(Value::from(lists.concat())),
            "product" => {
                let mut out: Vec<Vec<Value>> = vec![Vec::new()];
                for list in &lists {
                    out = out
                        .into_iter()
                        .flat_map(|prefix| {
                            list.iter().map(move |v| {
                                let mut next = prefix.clone();
                                next.push(v.clone());
                                next
                            })
                        })
                        .collect();
                }
                Ok(Value::from(
                    out.into_iter().map(Value::from).collect::<Vec<_>>(),
                ))
            }
            "combinations" | "permutations" => {
                let items = lists.first().cloned().unwrap_or_default();
                let size = r
                    .or_else(|| positional.get(1).and_then(|v| v.as_usize()))
                    .unwrap_or(items.len());
                let mut out = Vec::new();
                let mut chosen = Vec::new();
                choose(
                    &items,
                    size,
                    method == "permutations",
                    &mut vec![false; items.len()],
                    0,
                    &mut chosen,
                    &mut out,
                );
                Ok(Value::from(
                    out.into_iter().map(Value::from).collect::<Vec<_>>(),
                ))
            }
            _ => Err(Error::new(
                ErrorKind::UnknownMethod,
                format!("modules.itertools.{method}() is not supported by strata"),
            )),
        }
    }
}

/// Python's order of `combinations` (indexes increasing) and `permutations` (any order).
fn choose(
    items: &[Value],
    size: usize,
    ordered: bool,
    used: &mut Vec<bool>,
    from: usize,
    chosen: &mut Vec<Value>,
    out: &mut Vec<Vec<Value>>,
) {
    if chosen.len() == size {
        out.push(chosen.clone());
        return;
    }
    let start = if ordered { 0 } else { from };
    for i in start..items.len() {
        if used[i] {
            continue;
        }
        used[i] = true;
        chosen.push(items[i].clone());
        choose(items, size, ordered, used, i + 1, chosen, out);
        chosen.pop();
        used[i] = false;
    }
}

#[derive(Debug)]
struct DatetimeModule;

impl Object for DatetimeModule {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "datetime" => Some(Value::from_object(DatetimeClass { date_only: false })),
            "date" => Some(Value::from_object(DatetimeClass { date_only: true })),
            _ => None,
        }
    }
}

#[derive(Debug)]
struct PytzModule;

impl Object for PytzModule {
    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        _args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "timezone" => Ok(Value::from("UTC")),
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        (key.as_str()? == "utc").then(|| Value::from("UTC"))
    }
}

/// `datetime.datetime` / `datetime.date`: `now()`, `utcnow()`, `today()`.
#[derive(Debug)]
struct DatetimeClass {
    date_only: bool,
}

impl Object for DatetimeClass {
    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        _args: &[Value],
    ) -> Result<Value, Error> {
        let now = match method {
            "now" | "today" => Local::now().naive_local().and_utc(),
            "utcnow" => Utc::now(),
            _ => return Err(Error::from(ErrorKind::UnknownMethod)),
        };
        if self.date_only {
            Ok(Value::from_object(DateValue(now)))
        } else {
            Ok(Value::from_object(DateTimeValue(now)))
        }
    }
}

/// A Python `datetime` as templates use it: `strftime`, `isoformat`, parts.
#[derive(Debug)]
pub struct DateTimeValue(pub DateTime<Utc>);

fn datetime_attr(dt: &DateTime<Utc>, key: &str) -> Option<Value> {
    Some(Value::from(match key {
        "year" => dt.year() as i64,
        "month" => dt.month() as i64,
        "day" => dt.day() as i64,
        "hour" => dt.hour() as i64,
        "minute" => dt.minute() as i64,
        "second" => dt.second() as i64,
        "microsecond" => (dt.nanosecond() / 1000) as i64,
        _ => return None,
    }))
}

impl Object for DateTimeValue {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        datetime_attr(&self.0, key.as_str()?)
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "strftime" => {
                let format = args
                    .first()
                    .and_then(|f| f.as_str())
                    .unwrap_or("%Y-%m-%d %H:%M:%S");
                Ok(Value::from(self.0.format(format).to_string()))
            }
            "isoformat" => Ok(Value::from(
                self.0.format("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
            )),
            "date" => Ok(Value::from_object(DateValue(self.0))),
            "timestamp" => Ok(Value::from(self.0.timestamp() as f64)),
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%d %H:%M:%S%.6f"))
    }
}

/// A Python `date`.
#[derive(Debug)]
struct DateValue(DateTime<Utc>);

impl Object for DateValue {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            k @ ("year" | "month" | "day") => datetime_attr(&self.0, k),
            _ => None,
        }
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "strftime" => {
                let format = args.first().and_then(|f| f.as_str()).unwrap_or("%Y-%m-%d");
                Ok(Value::from(self.0.format(format).to_string()))
            }
            "isoformat" => Ok(Value::from(self.0.format("%Y-%m-%d").to_string())),
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%d"))
    }
}

/// `adapter`: dispatch and quoting; warehouse lookups answer "nothing" until a run connects.
#[derive(Debug)]
struct Adapter(Arc<Shared>);

impl Object for Adapter {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "type" => Some(Value::from(self.0.adapter)),
            _ => None,
        }
    }

    fn call_method(
        self: &Arc<Self>,
        state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let (positional, kwargs) = split_args(args)?;
        if let Some(answer) = super::warehouse::adapter_method(
            state,
            method,
            &positional,
            kwargs.as_ref(),
            self.0.style,
        ) {
            return answer;
        }
        match method {
            "dispatch" => {
                let name = positional
                    .first()
                    .and_then(|n| n.as_str().map(str::to_string))
                    .or_else(|| {
                        kwargs
                            .as_ref()
                            .and_then(|k| k.peek::<String>("macro_name").ok())
                    })
                    .ok_or_else(|| {
                        Error::new(
                            ErrorKind::InvalidOperation,
                            "adapter.dispatch() needs a macro name",
                        )
                    })?;
                if let Some((namespace, macro_name)) = name.split_once('.') {
                    return Err(Error::new(
                        ErrorKind::InvalidOperation,
                        format!("adapter.dispatch got the macro name `{name}`, but `.` is not part of a macro name; did you mean adapter.dispatch('{macro_name}', macro_namespace='{namespace}')?"),
                    ));
                }
                let namespace = positional
                    .get(1)
                    .filter(|v| !v.is_none() && !v.is_undefined())
                    .map(|v| v.to_string())
                    .or_else(|| {
                        kwargs
                            .as_ref()
                            .and_then(|k| k.peek::<Option<String>>("macro_namespace").ok())
                            .flatten()
                    });
                let shared = &self.0;
                // dbt's search: the project's `dispatch:` order for the namespace; else the
                // root project, then the namespace when it is an installed package or dbt's
                // own (each with every prefix before the next); else (no namespace, or one
                // that is not a package) names as the caller sees them.
                let packages: Vec<Option<String>> = match &namespace {
                    Some(ns) => match shared.dispatch_orders.get(ns) {
                        Some(order) => order.iter().cloned().map(Some).collect(),
                        None if shared.package_macros.contains_key(ns) || ns == "dbt" => {
                            vec![Some(shared.project_name.clone()), Some(ns.clone())]
                        }
                        None => vec![None],
                    },
                    None => vec![None],
                };
                let prefixes: Vec<&str> = std::iter::once(shared.adapter)
                    .chain(shared.dispatch_parents.iter().copied())
                    .chain(["default"])
                    .collect();
                let mut searched = Vec::new();
                for package in &packages {
                    for prefix in &prefixes {
                        let candidate = format!("{prefix}__{name}");
                        let found = match package {
                            None => state.lookup(&candidate).filter(|v| !v.is_undefined()),
                            Some(p) => shared.namespace(p).and_then(|ns| ns.get(&candidate)),
                        };
                        if let Some(found) = found {
                            return Ok(found);
                        }
                        searched.push(match package {
                            None => format!("`{candidate}`"),
                            Some(p) => format!("`{p}.{candidate}`"),
                        });
                    }
                }
                // strata also takes a macro of the dispatched name itself (some of its built-in
                // ones have no `default__` twin).
                if packages == [None] {
                    if let Some(found) = state.lookup(&name).filter(|v| !v.is_undefined()) {
                        return Ok(found);
                    }
                }
                if namespace.as_deref() == Some("dbt") {
                    if let Some(found) = super::Namespace::Builtin.get(&name) {
                        return Ok(found);
                    }
                }
                Err(Error::new(
                    ErrorKind::UnknownFunction,
                    format!(
                        "adapter.dispatch found no implementation of `{name}` in namespace `{}`; searched {}",
                        namespace.as_deref().unwrap_or("(none)"),
                        searched.join(", ")
                    ),
                ))
            }
            "quote" => {
                let identifier = positional
                    .first()
                    .map(|v| v.to_string())
                    .unwrap_or_default();
                Ok(Value::from(self.0.style.quote_identifier(&identifier)))
            }
            "type" => Ok(Value::from(self.0.adapter)),
            "already_exists" => {
                let schema = positional
                    .first()
                    .map(|v| v.to_string())
                    .unwrap_or_default();
                let name = positional.get(1).map(|v| v.to_string()).unwrap_or_default();
                let found = super::warehouse::adapter_method(
                    state,
                    "get_relation",
                    &[
                        Value::from(self.0.target_database.clone()),
                        Value::from(schema),
                        Value::from(name),
                    ],
                    None,
                    self.0.style,
                )
                .unwrap_or(Ok(Value::from(())))?;
                Ok(Value::from(!found.is_none()))
            }
            // Statements run as they come (autocommit): a custom materialization's
            // `adapter.commit()` has nothing left to commit.
            "commit" | "begin" => Ok(Value::from(())),
            "quote_as_configured" | "quote_seed_column" => {
                Ok(positional.first().cloned().unwrap_or_default())
            }
            "get_missing_columns" => Ok(Value::from(Vec::<Value>::new())),
            _ => Err(Error::new(
                ErrorKind::UnknownMethod,
                format!("adapter.{method}() is not supported by strata yet"),
            )),
        }
    }
}

/// `api.Relation.create(database=…, schema=…, identifier=…)`.
#[derive(Debug)]
struct Api(Arc<Shared>);

impl Object for Api {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "Relation" => Some(Value::from_object(RelationFactory(self.0.clone()))),
            "Column" => Some(Value::from_object(ColumnFactory)),
            _ => None,
        }
    }
}

/// `api.Column`: dbt's column type helpers. `translate_type` maps dbt's portable type names
/// (`string`, `integer`, `float`, `timestamp`, `boolean`) to SQL every supported warehouse
/// casts to; any other name is returned as written, as dbt does.
#[derive(Debug)]
struct ColumnFactory;

impl Object for ColumnFactory {
    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let (positional, _) = split_args(args)?;
        let text = |i: usize| positional.get(i).map(|v| v.to_string());
        match method {
            "translate_type" => {
                let name = text(0).unwrap_or_default();
                Ok(Value::from(match name.to_ascii_lowercase().as_str() {
                    "string" => "varchar".to_string(),
                    "integer" => "integer".to_string(),
                    "float" => "float".to_string(),
                    "timestamp" => "timestamp".to_string(),
                    "boolean" => "boolean".to_string(),
                    _ => name,
                }))
            }
            "string_type" => Ok(Value::from(match text(0) {
                Some(size) => format!("character varying({size})"),
                None => "character varying".to_string(),
            })),
            "numeric_type" => {
                let dtype = text(0).unwrap_or_else(|| "numeric".into());
                Ok(Value::from(match (text(1), text(2)) {
                    (Some(p), Some(s)) if p != "none" && s != "none" => format!("{dtype}({p},{s})"),
                    _ => dtype,
                }))
            }
            _ => Err(Error::new(
                ErrorKind::UnknownMethod,
                format!("api.Column.{method}() is not supported by strata yet"),
            )),
        }
    }
}

#[derive(Debug)]
struct RelationFactory(Arc<Shared>);

impl Object for RelationFactory {
    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        if method != "create" {
            return Err(Error::from(ErrorKind::UnknownMethod));
        }
        let (_, kwargs) = split_args(args)?;
        let get = |key: &str| -> Option<String> {
            kwargs
                .as_ref()
                .and_then(|k| k.peek::<Option<String>>(key).ok().flatten())
        };
        let database = get("database");
        let schema = get("schema").unwrap_or_else(|| self.0.target_schema.clone());
        let identifier = get("identifier").unwrap_or_default();
        Ok(Value::from_object(RelationValue {
            event_time: None,
            include_database: database.is_some(),
            relation: RelationName::new(database, schema, identifier),
            style: self.0.style,
            include_schema: true,
            cte_name: None,
            expression: None,
            kind: get("type"),
        }))
    }
}

/// `dbt.<macro>()`: strata's built-in cross-database macros.
#[derive(Debug)]
struct BuiltinNamespace;

impl Object for BuiltinNamespace {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let name = key.as_str()?;
        super::BUILTIN_MACRO_NAMES
            .get()
            .filter(|names| names.iter().any(|n| n == name))
            .map(|_| Value::from_object(MacroProxy::new(BUILTIN_TEMPLATE, name)))
    }
}

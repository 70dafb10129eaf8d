//! Macros that write part of a build, called as dbt calls them: an incremental strategy's
//! `get_incremental_<strategy>_sql(arg_dict)`, and a custom materialization
//! (`{% materialization name, adapter %}`), which runs its own statements as it renders.
//!
//! strata's own plans build the built-in strategies. A model goes through these macros only
//! when the project writes its strategy (dbt's custom strategies) or overrides a macro dbt's
//! strategy would call (`get_merge_sql`, `default__get_delete_insert_merge_sql`, …): ignoring
//! such an override would build other rows than dbt builds. This room renders; the run room
//! executes what comes back.

use std::collections::BTreeMap;
use std::sync::Arc;

use minijinja::value::Value;
use serde_json::Value as Json;

use super::context::{NodeInfo, RelationValue, Resolver};
use super::{Engine, Phase, TemplateError, TemplateErrorKind};
use crate::relation::RelationName;

/// What a strategy macro is given besides the model's config: dbt's `arg_dict` carries these
/// with `unique_key` and `incremental_predicates` from the config.
#[derive(Debug, Clone)]
pub struct StrategyArgs {
    /// The model's table (`target_relation`).
    pub target: RelationName,
    /// The new rows, built aside (`temp_relation`).
    pub temp: RelationName,
    /// The columns to write, `(name, type)` (`dest_columns`).
    pub dest_columns: Vec<(String, String)>,
}

/// What a custom materialization did: the relations it returned (`{'relations': [...]}`) and
/// the status of its `main` statement.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MaterializationRun {
    pub relations: Vec<RelationName>,
    pub status: Option<String>,
}

/// The macros each built-in strategy reaches in dbt (each also as `<adapter>__`, its parents'
/// and `default__`): a project defining any of them writes that strategy itself.
fn chain(strategy: &str) -> &'static [&'static str] {
    match strategy {
        "append" => &[
            "get_incremental_append_sql",
            "get_insert_into_sql",
            "get_quoted_csv",
        ],
        "delete_insert" => &[
            "get_incremental_delete_insert_sql",
            "get_delete_insert_merge_sql",
            "get_quoted_csv",
        ],
        "merge" => &[
            "get_incremental_merge_sql",
            "get_merge_sql",
            "get_merge_unique_key_match",
            "get_merge_update_columns",
            "get_quoted_csv",
        ],
        "insert_overwrite" => &[
            "get_incremental_insert_overwrite_sql",
            "get_insert_overwrite_merge_sql",
            "get_quoted_csv",
        ],
        // A model that names no strategy: dbt asks `get_incremental_default_sql`, which
        // appends or deletes and inserts.
        "default" => &[
            "get_incremental_default_sql",
            "get_incremental_append_sql",
            "get_insert_into_sql",
            "get_incremental_delete_insert_sql",
            "get_delete_insert_merge_sql",
            "get_quoted_csv",
        ],
        _ => &[],
    }
}

/// The strategies strata's plans write; any other name is a custom strategy.
const PLANNED: &[&str] = &[
    "append",
    "merge",
    "delete_insert",
    "insert_overwrite",
    "cdc",
    "microbatch",
];

/// The macro dbt asks for a strategy's SQL: `delete+insert` → `get_incremental_delete_insert_sql`.
pub fn strategy_macro_name(strategy: &str) -> String {
    format!("get_incremental_{}_sql", strategy.replace('+', "_"))
}

impl Engine {
    /// The macro that writes an incremental model's strategy when a macro of the project
    /// writes it rather than strata's plans: always for a custom strategy; for a built-in one
    /// (`None`: the model names none) only when the root project, or a package the project's
    /// `dispatch:` puts before dbt's own macros, defines a macro that strategy calls.
    pub fn written_strategy(&self, strategy: Option<&str>) -> Option<String> {
        let key = strategy.unwrap_or("default").replace('+', "_");
        if key != "default" && !PLANNED.contains(&key.as_str()) {
            return Some(strategy_macro_name(&key));
        }
        if matches!(key.as_str(), "cdc" | "microbatch") {
            return None;
        }
        let shared = &self.shared;
        let prefixes: Vec<&str> = std::iter::once(shared.adapter)
            .chain(shared.dispatch_parents.iter().copied())
            .chain(["default"])
            .collect();
        let packages: Vec<&str> = shared
            .dispatch_orders
            .get("dbt")
            .into_iter()
            .flatten()
            .map(String::as_str)
            .filter(|p| *p != shared.project_name && *p != "dbt")
            .collect();
        let defined = |name: &str| {
            self.macros.contains_key(name)
                || packages.iter().any(|p| {
                    self.package_macros
                        .get(*p)
                        .is_some_and(|m| m.contains_key(name))
                })
        };
        let overridden = chain(&key).iter().any(|base| {
            defined(base)
                || prefixes
                    .iter()
                    .any(|prefix| defined(&format!("{prefix}__{base}")))
        });
        overridden.then(|| strategy_macro_name(&key))
    }

    /// Whether a node of `package` reaches a macro by its bare name: its own package's, the
    /// root project's or strata's built-in one.
    pub fn reaches_macro(&self, package: &str, name: &str) -> bool {
        self.macros.contains_key(name)
            || self
                .package_macros
                .get(package)
                .is_some_and(|m| m.contains_key(name))
            || super::Namespace::Builtin.get(name).is_some()
    }

    /// Calls an incremental model's strategy macro with dbt's `arg_dict` and returns the SQL it
    /// writes. `node` carries the model's final config (`unique_key`,
    /// `incremental_predicates`, `merge_update_columns`, … as `config.get` reads them).
    pub fn strategy_sql(
        &self,
        node: NodeInfo,
        macro_name: &str,
        args: &StrategyArgs,
        resolver: Option<Arc<dyn Resolver>>,
    ) -> Result<String, TemplateError> {
        let config = &node.config;
        let present = |key: &str| config.get(key).filter(|v| !v.is_null()).cloned();
        let unique_key = present("unique_key").unwrap_or(Json::Null);
        let predicates = present("predicates")
            .or_else(|| present("incremental_predicates"))
            .unwrap_or(Json::Null);
        let style = self.shared.style;
        let relation = |name: &RelationName| {
            Value::from_object(RelationValue {
                event_time: None,
                relation: name.clone(),
                style,
                include_database: true,
                include_schema: true,
                cte_name: None,
                expression: None,
                kind: Some("table".into()),
            })
        };
        let columns: Vec<Value> = args
            .dest_columns
            .iter()
            .map(|(name, data_type)| super::warehouse::column_value(name, data_type, style))
            .collect();
        let mut arg_dict: BTreeMap<&'static str, Value> = BTreeMap::new();
        arg_dict.insert("target_relation", relation(&args.target));
        arg_dict.insert("temp_relation", relation(&args.temp));
        arg_dict.insert(
            "unique_key",
            Value::from(minijinja::value::Serde(&unique_key)),
        );
        arg_dict.insert("dest_columns", Value::from(columns));
        arg_dict.insert(
            "incremental_predicates",
            Value::from(minijinja::value::Serde(&predicates)),
        );
        let written =
            self.call_for_node(macro_name, &[Value::from_object(arg_dict)], node, resolver)?;
        let sql = if written.is_none() || written.is_undefined() {
            String::new()
        } else {
            written.to_string()
        };
        if sql.trim().is_empty() {
            return Err(TemplateError {
                kind: TemplateErrorKind::Other,
                path: self.macro_path(macro_name),
                line: None,
                message: format!("`{macro_name}` wrote no SQL"),
                hint: Some(
                    "a strategy macro returns the statements that apply the new rows: `{{ return(sql) }}` or its rendered text".into(),
                ),
            });
        }
        Ok(sql)
    }

    /// Calls a macro as a node's own template would: its package's first, then the root
    /// project's, then the built-in one, with the node's `this`, `config` and `model`.
    fn call_for_node(
        &self,
        name: &str,
        args: &[Value],
        node: NodeInfo,
        resolver: Option<Arc<dyn Resolver>>,
    ) -> Result<Value, TemplateError> {
        let root = self.root(node, Phase::Compile, resolver);
        self.call_in_render(name, args, root, |state| state.lookup(name))
    }

    /// The macro of a custom materialization for a node of `package`, as dbt finds it: for
    /// this warehouse, then its parents, then `default`, each in the root project, the node's
    /// own package, then any package. `None` when no macro defines it.
    pub fn materialization_macro(&self, package: &str, name: &str) -> Option<String> {
        let shared = &self.shared;
        let prefixes = std::iter::once(shared.adapter)
            .chain(shared.dispatch_parents.iter().copied())
            .chain(["default"]);
        for prefix in prefixes {
            let candidate = format!("materialization_{name}_{prefix}");
            let defined = self.macros.contains_key(&candidate)
                || self
                    .package_macros
                    .get(package)
                    .is_some_and(|m| m.contains_key(&candidate))
                || self
                    .package_macros
                    .values()
                    .any(|m| m.contains_key(&candidate));
            if defined {
                return Some(candidate);
            }
        }
        None
    }

    /// Runs a custom materialization for a node: its macro rendered with the node's context
    /// and dbt's materialization variables (`sql` and `compiled_code`, `pre_hooks` and
    /// `post_hooks` as hooks with `sql` and `transaction`); its `statement` blocks execute as
    /// it renders.
    pub fn run_materialization(
        &self,
        mut node: NodeInfo,
        macro_name: &str,
        sql: &str,
        hooks: (&[String], &[String]),
        resolver: Option<Arc<dyn Resolver>>,
    ) -> Result<MaterializationRun, TemplateError> {
        let as_hooks = |hooks: &[String]| {
            Json::Array(
                hooks
                    .iter()
                    .enumerate()
                    .map(|(index, sql)| {
                        serde_json::json!({"sql": sql, "transaction": true, "index": index})
                    })
                    .collect(),
            )
        };
        node.variables.insert("sql".into(), Json::from(sql));
        node.variables
            .insert("compiled_code".into(), Json::from(sql));
        node.variables.insert("pre_hooks".into(), as_hooks(hooks.0));
        node.variables
            .insert("post_hooks".into(), as_hooks(hooks.1));
        node.model_extra
            .insert("compiled_code".into(), Json::from(sql));
        node.model_extra
            .insert("language".into(), Json::from("sql"));
        let package = node.package.clone();
        let root = self.root(node, Phase::Compile, resolver);
        let shared = self.shared.clone();
        let returned = self.call_in_render(macro_name, &[], root.clone(), |_| {
            shared
                .root_macros
                .get(macro_name)
                .or_else(|| shared.package_macros.get(&package)?.get(macro_name))
                .or_else(|| {
                    shared
                        .package_macros
                        .values()
                        .find_map(|m| m.get(macro_name))
                })
                .cloned()
        })?;
        let relations = returned
            .get_attr("relations")
            .ok()
            .filter(|v| !v.is_undefined() && !v.is_none())
            .and_then(|v| v.try_iter().ok())
            .map(|items| {
                items
                    .filter_map(|item| {
                        item.downcast_object_ref::<RelationValue>()
                            .map(|r| r.relation.clone())
                    })
                    .collect()
            })
            .unwrap_or_default();
        let status = root
            .results()
            .get("main")
            .and_then(|main| main.get_attr("response").ok())
            .and_then(|response| response.get_attr("_message").ok())
            .filter(|m| !m.is_undefined() && !m.is_none())
            .map(|m| m.to_string());
        Ok(MaterializationRun { relations, status })
    }
}

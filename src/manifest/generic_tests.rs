//! Generic data tests declared in YAML (`data_tests:` / `tests:` on models, columns, seeds,
//! snapshots and sources) turned into test nodes, named as dbt names them.
//!
//! A test node's SQL is a call of the test macro — `{{ test_unique(model=ref('orders'),
//! column_name='id') }}` — so rendering it captures the refs it needs like any other node, and
//! a project can override a built-in test by defining `{% test unique %}`. The built-in tests'
//! bodies call neither `ref` nor `source`, so for those the parse phase reads the refs off the
//! arguments instead of rendering the call (two thirds of a typical project's nodes are tests).

use std::path::PathBuf;
use std::sync::Arc;

use indexmap::IndexMap;
use md5::{Digest, Md5};
use rayon::prelude::*;
use serde_json::Value as Json;

use super::{
    default_materialization, resolve_config, Manifest, Node, NodeId, ResourceType, TestInfo,
};
use crate::diagnostic::{did_you_mean, Diagnostic, Diagnostics, Location};
use crate::project::config::{merge_into, ConfigMap, NodeConfig};
use crate::project::{yaml, ColumnSpec, Project};
use crate::template::context::RefCall;
use crate::template::{Engine, TestMacro};

/// Keys of a test entry that configure it rather than pass arguments.
const CONFIG_KEYS: &[&str] = &[
    "severity",
    "where",
    "limit",
    "tags",
    "enabled",
    "error_if",
    "warn_if",
    "store_failures",
    "store_failures_as",
    "meta",
    "fail_calc",
    "database",
    "schema",
    "alias",
];

/// One test entry to synthesize.
struct Declared<'a> {
    /// The package whose YAML declares it.
    package: &'a str,
    definition: &'a Json,
    /// The model expression the test receives (`ref('orders')`, `source('shop', 'orders')`).
    model_expr: String,
    /// The node name part of the test name (`orders`, `source_shop_orders`… see dbt).
    target_name: String,
    attached: NodeId,
    column: Option<&'a str>,
    path: &'a PathBuf,
    line: Option<usize>,
    folders: Vec<String>,
}

/// Built-in generic tests whose bodies call neither `ref` nor `source`: what they read is
/// what their arguments say.
const BUILTIN_TESTS: &[&str] = &[
    "unique",
    "not_null",
    "accepted_values",
    "relationships",
    "unique_combination_of_columns",
    "expression_is_true",
    "not_empty",
    "reconcile",
    "row_count",
];

/// A test node, and whether its refs and sources are already known (it need not be rendered
/// in the parse phase to find them).
pub(crate) struct Synthesized {
    pub node: Node,
    pub dependencies_known: bool,
}

pub(crate) fn synthesize(
    project: &Project,
    manifest: &Manifest,
    engine: &Engine,
    diagnostics: &mut Diagnostics,
) -> Vec<Synthesized> {
    let known: Vec<String> = engine.test_names();
    let mut declared: Vec<Declared<'_>> = Vec::new();
    for spec in &project.specs {
        let folders = spec.folders();
        let package = spec.package.as_str();
        // A package's tests name their model with the package, so a root model of the same
        // name is never the one tested.
        let ref_expr = |name: &str| {
            if package == project.name {
                format!("ref({})", literal(&Json::from(name)))
            } else {
                format!(
                    "ref({}, {})",
                    literal(&Json::from(package)),
                    literal(&Json::from(name))
                )
            }
        };
        let sections = [
            (ResourceType::Model, &spec.spec.models),
            (ResourceType::Seed, &spec.spec.seeds),
            (ResourceType::Snapshot, &spec.spec.snapshots),
        ];
        for (kind, entries) in sections {
            for entry in entries {
                let attached = NodeId(format!("{}.{package}.{}", kind.as_str(), entry.name));
                if !manifest.nodes.contains_key(&attached) {
                    continue;
                }
                let entry_line = spec.entries.first(&entry.name);
                let model_expr = ref_expr(&entry.name);
                for definition in entry.all_tests() {
                    declared.push(Declared {
                        package,
                        definition,
                        model_expr: model_expr.clone(),
                        target_name: entry.name.clone(),
                        attached: attached.clone(),
                        column: None,
                        path: &spec.path,
                        line: entry_line,
                        folders: folders.clone(),
                    });
                }
                push_column_tests(
                    &mut declared,
                    package,
                    &entry.columns,
                    &model_expr,
                    &entry.name,
                    &attached,
                    &spec.path,
                    &spec.entries,
                    entry_line,
                    &folders,
                );
            }
        }
        for source in &spec.spec.sources {
            for table in &source.tables {
                let attached = NodeId(format!("source.{package}.{}.{}", source.name, table.name));
                let model_expr = format!(
                    "source({}, {})",
                    literal(&Json::from(source.name.clone())),
                    literal(&Json::from(table.name.clone()))
                );
                let target_name = format!("source_{}_{}", source.name, table.name);
                let table_line = spec.entries.first(&table.name);
                for definition in table.all_tests() {
                    declared.push(Declared {
                        package,
                        definition,
                        model_expr: model_expr.clone(),
                        target_name: target_name.clone(),
                        attached: attached.clone(),
                        column: None,
                        path: &spec.path,
                        line: table_line,
                        folders: folders.clone(),
                    });
                }
                push_column_tests(
                    &mut declared,
                    package,
                    &table.columns,
                    &model_expr,
                    &target_name,
                    &attached,
                    &spec.path,
                    &spec.entries,
                    table_line,
                    &folders,
                );
            }
        }
    }

    let built: Vec<Result<(Synthesized, Diagnostics), Diagnostic>> = declared
        .par_iter()
        .map(|item| synthesize_one(project, engine, &known, item))
        .collect();
    // Sequentially, in declaration order: the first of two identical tests is kept.
    let mut nodes = Vec::with_capacity(built.len());
    let mut seen: std::collections::HashSet<String> =
        std::collections::HashSet::with_capacity(built.len());
    for (item, result) in declared.iter().zip(built) {
        match result {
            Err(diagnostic) => diagnostics.push(diagnostic),
            Ok((synthesized, item_diagnostics)) => {
                let node = &synthesized.node;
                if !seen.insert(node.unique_id.0.clone()) {
                    let full_name = node.fqn.last().map(String::as_str).unwrap_or_default();
                    diagnostics.push(
                        Diagnostic::warning(format!(
                            "test `{full_name}` is declared twice; keeping one"
                        ))
                        .at(Location {
                            path: item.path.clone(),
                            line: item.line,
                            column: None,
                        }),
                    );
                    continue;
                }
                diagnostics.extend(item_diagnostics);
                nodes.push(synthesized);
            }
        }
    }
    nodes
}

/// One declared test as a node, with the warnings its config raised.
fn synthesize_one(
    project: &Project,
    engine: &Engine,
    known: &[String],
    item: &Declared<'_>,
) -> Result<(Synthesized, Diagnostics), Diagnostic> {
    let package = item.package;
    let mut diagnostics = Diagnostics::new();
    let location = Location {
        path: item.path.clone(),
        line: item.line,
        column: None,
    };
    let parsed = match parse_definition(item.definition) {
        Ok(parsed) => parsed,
        Err(message) => {
            return Err(Diagnostic::error(message).at(location).with_hint(
                "write a test as `- unique` or `- relationships: {to: ref('x'), field: id}`",
            ));
        }
    };
    let callee = engine.test_macro(parsed.namespace.as_deref(), &parsed.test_name, package);
    if callee.is_none() {
        if let Some(namespace) = parsed.namespace.as_deref() {
            if engine.shared().namespace(namespace).is_none() {
                return Err(Diagnostic::error(format!(
                    "unknown generic test `{}`: no package `{namespace}` is installed",
                    parsed.full_test_name()
                ))
                .at(location)
                .with_hint(format!(
                    "add `{namespace}` to packages.yml and run `strata deps`"
                )));
            }
        }
        let known = if parsed.namespace.is_some() {
            Vec::new()
        } else {
            known.to_vec()
        };
        return Err(
            Diagnostic::error(format!("unknown generic test `{}`", parsed.full_test_name()))
                .at(location)
                .with_hint_opt(did_you_mean(&parsed.test_name, known.iter().map(String::as_str)).or(Some(format!(
                    "define it with {{% test {}(model, column_name) %}} in a macro file or `tests/generic/`",
                    parsed.test_name
                )))),
        );
    }
    let mut args = parsed.args.clone();
    if let Some(column) = item.column {
        args.insert("column_name".into(), Json::from(column));
    }
    // dbt names a namespaced test with its package: `dbt_utils_at_least_one_orders_id`.
    let named = match &parsed.namespace {
        Some(namespace) => format!("{namespace}_{}", parsed.test_name),
        None => parsed.test_name.clone(),
    };
    let (short_name, full_name) = test_names(&named, &item.target_name, &args);
    let full_name = parsed.custom_name.clone().unwrap_or(full_name);
    let short_name = parsed.custom_name.clone().unwrap_or(short_name);
    let hash = hex_md5(&format!("{full_name}{}", item.attached))[..10].to_string();
    let unique_id = NodeId(format!("test.{package}.{full_name}.{hash}"));
    let mut fqn = vec![package.to_string()];
    fqn.extend(item.folders.iter().cloned());
    fqn.push(full_name.clone());
    let mut config_map = ConfigMap::new();
    for trees in project.config_trees(package) {
        trees.tests.apply(&fqn, &mut config_map);
    }
    merge_into(&mut config_map, &parsed.config);
    let config: NodeConfig = resolve_config(
        &config_map,
        default_materialization(ResourceType::Test),
        item.path,
        &mut diagnostics,
    );
    // `where` narrows the tested relation to a subquery, as in dbt.
    let model_arg = match config_map.get("where").and_then(Json::as_str) {
        Some(condition) if !condition.trim().is_empty() => format!(
            "__strata_where({}, {})",
            item.model_expr,
            literal(&Json::from(condition))
        ),
        _ => item.model_expr.clone(),
    };
    let mut call_args: Vec<String> = vec![format!("model={model_arg}")];
    for (key, value) in &args {
        call_args.push(format!("{key}={}", literal(value)));
    }
    let callee = match callee {
        Some(TestMacro::Project(qualified)) => qualified,
        _ => format!("test_{}", parsed.test_name),
    };
    let raw_sql = format!("{{{{ {callee}({}) }}}}", call_args.join(", "));
    let builtin = is_builtin(
        engine,
        parsed.namespace.as_deref(),
        &parsed.test_name,
        package,
    );
    let known = if builtin {
        known_dependencies(&item.model_expr, &args)
    } else {
        None
    };
    let dependencies_known = known.is_some();
    let (refs, sources) = known.unwrap_or_default();

    let node = Node {
        unique_id,
        resource_type: ResourceType::Test,
        name: short_name,
        package_name: package.to_string(),
        original_file_path: item.path.clone(),
        patch_path: None,
        fqn,
        checksum: crate::util::sha256_hex(raw_sql.as_bytes()),
        raw_sql: Arc::from(raw_sql.as_str()),
        raw_line_offset: 0,
        config_map,
        config,
        relation: None,
        depends_on: Vec::new(),
        refs,
        sources,
        description: String::new(),
        columns: IndexMap::new(),
        test: Some(TestInfo {
            test_name: parsed.test_name.clone(),
            generic: true,
            namespace: parsed.namespace.clone(),
            kwargs: args,
            column_name: item.column.map(String::from),
            attached_node: Some(item.attached.clone()),
            declared_at: Some(location),
        }),
        source: None,
        parse_render: None,
        compile_late: false,
        unrendered_config: None,
        inputs: Default::default(),
        unit: None,
    };
    Ok((
        Synthesized {
            node,
            dependencies_known,
        },
        diagnostics,
    ))
}

/// Whether a generic test is strata's own built-in one: not namespaced (or under `dbt.`), and
/// not overridden by a project or package macro.
pub(crate) fn is_builtin(
    engine: &Engine,
    namespace: Option<&str>,
    test_name: &str,
    from_package: &str,
) -> bool {
    matches!(namespace, None | Some("dbt"))
        && BUILTIN_TESTS.contains(&test_name)
        && engine.test_macro(namespace, test_name, from_package) == Some(TestMacro::Builtin)
}

/// The refs and the `(source, table)` pairs a node reads.
type Dependencies = (Vec<RefCall>, Vec<(String, String)>);

/// What a built-in test reads, in the order rendering its call would capture it: the model
/// expression, then each `ref(…)`/`source(…)` among its arguments. `None` when any of those is
/// more than a call with plain quoted names (the call is then rendered to find out).
fn known_dependencies(model_expr: &str, args: &IndexMap<String, Json>) -> Option<Dependencies> {
    let mut refs = Vec::new();
    let mut sources = Vec::new();
    let mut add = |text: &str| -> Option<()> {
        match simple_call(text)? {
            Call::Ref(call) => refs.push(call),
            Call::Source(source, table) => sources.push((source, table)),
        }
        Some(())
    };
    add(model_expr)?;
    let mut stack: Vec<&Json> = args.values().rev().collect();
    while let Some(value) = stack.pop() {
        match value {
            Json::String(text) if is_call(text) => add(text)?,
            Json::Array(items) => stack.extend(items.iter().rev()),
            Json::Object(map) => stack.extend(map.values().rev()),
            _ => {}
        }
    }
    Some((refs, sources))
}

pub(crate) enum Call {
    Ref(RefCall),
    Source(String, String),
}

/// `ref('x')`, `ref('package', 'x')` or `source('s', 't')` with plain quoted names.
pub(crate) fn simple_call(text: &str) -> Option<Call> {
    let text = text.trim();
    let (is_ref, rest) = match text.strip_prefix("ref(") {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix("source(")?),
    };
    let inner = rest.strip_suffix(')')?;
    let mut names = Vec::new();
    for part in inner.split(',') {
        let part = part.trim();
        let quote = part.chars().next().filter(|c| *c == '\'' || *c == '"')?;
        let name = part.strip_prefix(quote)?.strip_suffix(quote)?;
        if name.is_empty() || name.contains(['\'', '"', '\\']) {
            return None;
        }
        names.push(name.to_string());
    }
    match (is_ref, &names[..]) {
        (true, [name]) => Some(Call::Ref(RefCall {
            package: None,
            name: name.clone(),
            version: None,
        })),
        (true, [package, name]) => Some(Call::Ref(RefCall {
            package: Some(package.clone()),
            name: name.clone(),
            version: None,
        })),
        (false, [source, table]) => Some(Call::Source(source.clone(), table.clone())),
        _ => None,
    }
}

/// Whether a YAML string is a `ref(…)`/`source(…)` expression (kept as Jinja, not quoted).
pub(crate) fn is_call(text: &str) -> bool {
    let trimmed = text.trim();
    (trimmed.starts_with("ref(") || trimmed.starts_with("source(")) && trimmed.ends_with(')')
}

#[allow(clippy::too_many_arguments)]
fn push_column_tests<'a>(
    declared: &mut Vec<Declared<'a>>,
    package: &'a str,
    columns: &'a [ColumnSpec],
    model_expr: &str,
    target_name: &str,
    attached: &NodeId,
    path: &'a PathBuf,
    entries: &yaml::EntryIndex,
    entry_line: Option<usize>,
    folders: &[String],
) {
    for column in columns {
        let line = entries
            .first_after(&column.name, entry_line.unwrap_or(0))
            .or(entry_line);
        for definition in column.all_tests() {
            declared.push(Declared {
                package,
                definition,
                model_expr: model_expr.to_string(),
                target_name: target_name.to_string(),
                attached: attached.clone(),
                column: Some(column.name.as_str()),
                path,
                line,
                folders: folders.to_vec(),
            });
        }
    }
}

/// A test entry, understood.
#[derive(Debug, Clone, PartialEq)]
struct Definition {
    test_name: String,
    namespace: Option<String>,
    args: IndexMap<String, Json>,
    config: ConfigMap,
    custom_name: Option<String>,
}

impl Definition {
    fn full_test_name(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{ns}.{}", self.test_name),
            None => self.test_name.clone(),
        }
    }
}

fn split_namespace(name: &str) -> (Option<String>, String) {
    match name.split_once('.') {
        Some((ns, test)) => (Some(ns.to_string()), test.to_string()),
        None => (None, name.to_string()),
    }
}

fn parse_definition(definition: &Json) -> Result<Definition, String> {
    let (name, body) = match definition {
        Json::String(name) => (name.clone(), None),
        Json::Object(map) if map.contains_key("test_name") => {
            let name = map
                .get("test_name")
                .and_then(Json::as_str)
                .ok_or("`test_name` must be a string")?
                .to_string();
            (name, Some(map.clone()))
        }
        Json::Object(map) if map.len() == 1 => {
            let (name, body) = map.iter().next().ok_or("empty test entry")?;
            let body = match body {
                Json::Object(body) => Some(body.clone()),
                Json::Null => None,
                other => {
                    return Err(format!(
                        "the arguments of test `{name}` must be a mapping, found `{other}`"
                    ))
                }
            };
            (name.clone(), body)
        }
        other => return Err(format!("cannot read test entry `{other}`")),
    };
    let (namespace, test_name) = split_namespace(&name);
    let mut args = IndexMap::new();
    let mut config = ConfigMap::new();
    let mut custom_name = None;
    if let Some(body) = body {
        for (key, value) in body {
            match key.as_str() {
                "test_name" => {}
                "name" => custom_name = value.as_str().map(String::from),
                "config" => {
                    if let Json::Object(c) = value {
                        config.extend(c.clone());
                    }
                }
                "arguments" => {
                    if let Json::Object(a) = value {
                        args.extend(a.clone());
                    }
                }
                key if CONFIG_KEYS.contains(&key) => {
                    config.insert(key.to_string(), value.clone());
                }
                _ => {
                    args.insert(key.clone(), value.clone());
                }
            }
        }
    }
    Ok(Definition {
        test_name,
        namespace,
        args,
        config,
        custom_name,
    })
}

fn hex_md5(text: &str) -> String {
    crate::util::hex(&Md5::digest(text.as_bytes()))
}

/// dbt's test names: `<test>_<target>_<args…>`, hashed when 64 characters or longer.
fn test_names(
    test_name: &str,
    target_name: &str,
    args: &IndexMap<String, Json>,
) -> (String, String) {
    let mut keys: Vec<&String> = args.keys().collect();
    keys.sort();
    let mut flat: Vec<String> = Vec::new();
    for key in keys {
        if key == "model" {
            continue;
        }
        let value = &args[key];
        let parts: Vec<&Json> = match value {
            Json::Object(map) => map.values().collect(),
            Json::Array(items) => items.iter().collect(),
            other => vec![other],
        };
        for part in parts {
            flat.push(python_str(part));
        }
    }
    let clean: Vec<String> = flat
        .iter()
        .map(|s| {
            let mut out = String::new();
            let mut in_run = false;
            for c in s.chars() {
                if c.is_ascii_alphanumeric() || c == '_' {
                    out.push(c);
                    in_run = false;
                } else if !in_run {
                    out.push('_');
                    in_run = true;
                }
            }
            out
        })
        .collect();
    let unique = clean.join("__");
    let identifier = format!("{test_name}_{target_name}");
    let full = format!("{identifier}_{unique}");
    if full.len() >= 64 {
        let truncated: String = identifier.chars().take(30).collect();
        (format!("{truncated}_{}", hex_md5(&full)), full)
    } else {
        (full.clone(), full)
    }
}

/// How Python's `str()` prints a YAML scalar, which dbt's names are built from.
fn python_str(value: &Json) -> String {
    match value {
        Json::String(s) => s.clone(),
        Json::Bool(true) => "True".into(),
        Json::Bool(false) => "False".into(),
        Json::Null => "None".into(),
        other => other.to_string(),
    }
}

/// A Jinja literal for a YAML value; `ref(…)`/`source(…)` strings stay expressions, as in dbt.
fn literal(value: &Json) -> String {
    match value {
        Json::String(s) => {
            if is_call(s) {
                s.trim().to_string()
            } else {
                let escaped = s
                    .replace('\\', "\\\\")
                    .replace('\'', "\\'")
                    .replace('\n', "\\n");
                format!("'{escaped}'")
            }
        }
        Json::Null => "none".into(),
        Json::Bool(b) => b.to_string(),
        Json::Number(n) => n.to_string(),
        Json::Array(items) => format!(
            "[{}]",
            items.iter().map(literal).collect::<Vec<_>>().join(", ")
        ),
        Json::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{}: {}", literal(&Json::from(k.clone())), literal(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(value: Json) -> IndexMap<String, Json> {
        value
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    #[test]
    fn names_follow_dbt() {
        assert_eq!(
            test_names("not_null", "orders", &args(json!({"column_name": "id"}))).1,
            "not_null_orders_id"
        );
        assert_eq!(
            test_names(
                "relationships",
                "orders",
                &args(
                    json!({"column_name": "customer_id", "to": "ref('customers')", "field": "id"})
                )
            )
            .1,
            "relationships_orders_customer_id__id__ref_customers_"
        );
        let (short, full) = test_names(
            "accepted_values",
            "stg_orders",
            &args(
                json!({"column_name": "status", "values": ["placed", "shipped", "completed", "return_pending", "returned"]}),
            ),
        );
        assert_eq!(full, "accepted_values_stg_orders_status__placed__shipped__completed__return_pending__returned");
        // The same hashed name dbt gives this test in its jaffle_shop example.
        assert_eq!(
            short,
            "accepted_values_stg_orders_4f514bf94b77b7ea437830eec4421c58"
        );
    }

    #[test]
    fn definitions_split_args_config_and_new_arguments_form() {
        let d = parse_definition(&json!({"relationships": {"arguments": {"to": "ref('a')", "field": "id"}, "severity": "warn", "config": {"where": "x > 1"}}})).unwrap();
        assert_eq!(d.test_name, "relationships");
        assert_eq!(d.args, args(json!({"to": "ref('a')", "field": "id"})));
        assert_eq!(d.config["severity"], json!("warn"));
        assert_eq!(d.config["where"], json!("x > 1"));
        let d = parse_definition(&json!("dbt_utils.unique_combination_of_columns")).unwrap();
        assert_eq!(d.namespace.as_deref(), Some("dbt_utils"));
    }

    #[test]
    fn dependencies_are_read_off_plain_refs_and_sources_only() {
        let (refs, sources) = known_dependencies(
            "ref('orders')",
            &args(json!({
                "column_name": "customer_id",
                "to": " ref(\"customers\") ",
                "others": ["source('shop', 'payments')", {"x": "ref('pkg', 'stores')"}],
                "field": "id",
            })),
        )
        .expect("plain calls");
        let names: Vec<(Option<&str>, &str)> = refs
            .iter()
            .map(|r| (r.package.as_deref(), r.name.as_str()))
            .collect();
        assert_eq!(
            names,
            vec![
                (None, "orders"),
                (None, "customers"),
                (Some("pkg"), "stores")
            ]
        );
        assert_eq!(sources, vec![("shop".to_string(), "payments".to_string())]);
        let rendered_only = [
            "ref('orders', v=2)",
            "ref(model_name)",
            "ref('a' ~ 'b')",
            "source('shop')",
            "ref('it''s')",
        ];
        for call in rendered_only {
            assert!(
                known_dependencies("ref('orders')", &args(json!({ "to": call }))).is_none(),
                "{call}"
            );
        }
        assert!(known_dependencies("source('shop', 'orders')", &IndexMap::new()).is_some());
    }

    #[test]
    fn literals_keep_refs_as_expressions() {
        assert_eq!(literal(&json!("ref('x')")), "ref('x')");
        assert_eq!(literal(&json!("it's")), "'it\\'s'");
        assert_eq!(
            literal(&json!([1, "a", null, true])),
            "[1, 'a', none, true]"
        );
    }
}

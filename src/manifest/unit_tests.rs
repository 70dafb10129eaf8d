//! dbt's unit tests (`unit_tests:` in YAML, dbt 1.8): each is a node that checks one model's
//! SQL against fixed inputs. Here they are read and checked: the model exists, every input the
//! model reads is given and nothing else, each input's rows are in a format dbt knows (`dict`,
//! `csv`, `sql`, inline or from a fixture file), and the overrides are dbt's (`macros`, `vars`,
//! `env_vars`). Compiling them against the warehouse's column types is the compile room's.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::IndexMap;
use serde::Serialize;
use serde_json::Value as Json;

use super::{Diagnostics, Manifest, Node, NodeId, ResourceType, TestInfo};
use crate::diagnostic::{did_you_mean, Diagnostic, Location};
use crate::project::{ConfigMap, Project};
use crate::template::RefCall;

/// Rows for an input or for what the model must return.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "format", content = "rows", rename_all = "lowercase")]
pub enum Rows {
    /// Each row a mapping of column to value; columns a row leaves out are NULL.
    Dict(Vec<IndexMap<String, Json>>),
    /// CSV text with a header line; an empty cell is NULL.
    Csv(String),
    /// A SELECT giving the rows, every column named.
    Sql(String),
}

/// One `given:` entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Given {
    /// As written: `ref('orders')`, `source('shop', 'orders')`, `this`.
    pub input: String,
    /// The node it stands for; `None` for `this` (the model's own table).
    pub node: Option<NodeId>,
    pub rows: Rows,
}

/// What a unit test replaces while it runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Overrides {
    /// Macro name → the value it returns (`is_incremental: true`).
    pub macros: IndexMap<String, Json>,
    pub vars: IndexMap<String, Json>,
    pub env_vars: IndexMap<String, String>,
}

/// A unit test, checked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnitTest {
    /// The model it tests.
    pub model: NodeId,
    pub given: Vec<Given>,
    pub expect: Rows,
    pub overrides: Overrides,
}

/// The shape of a `unit_tests:` entry as written.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    name: String,
    model: Json,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    given: Vec<GivenSpec>,
    expect: RowsSpec,
    #[serde(default)]
    overrides: Option<OverridesSpec>,
    #[serde(default)]
    config: ConfigMap,
    #[serde(default)]
    versions: Option<Json>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct GivenSpec {
    input: String,
    #[serde(flatten)]
    rows: RowsSpec,
}

#[derive(Debug, serde::Deserialize)]
struct RowsSpec {
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    rows: Option<Json>,
    #[serde(default)]
    fixture: Option<String>,
}

#[derive(Debug, serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct OverridesSpec {
    #[serde(default)]
    macros: IndexMap<String, Json>,
    #[serde(default)]
    vars: IndexMap<String, Json>,
    #[serde(default)]
    env_vars: IndexMap<String, Json>,
}

/// An input as written, parsed.
#[derive(Debug, PartialEq)]
enum Input {
    Ref(RefCall),
    Source(String, String),
    This,
}

/// The quoted arguments of `name(…)`: `ref('a')` → `["a"]`.
fn arguments(text: &str, name: &str) -> Option<Vec<String>> {
    let inner = text
        .trim()
        .strip_prefix(name)?
        .trim_start()
        .strip_prefix('(')?
        .strip_suffix(')')?;
    inner
        .split(',')
        .map(|arg| {
            let arg = arg.trim();
            let quote = arg.chars().next().filter(|c| *c == '\'' || *c == '"')?;
            arg.strip_prefix(quote)?
                .strip_suffix(quote)
                .map(str::to_string)
        })
        .collect()
}

fn parse_input(text: &str) -> Option<Input> {
    if text.trim() == "this" {
        return Some(Input::This);
    }
    if let Some(args) = arguments(text, "ref") {
        return match args.as_slice() {
            [name] => Some(Input::Ref(RefCall {
                package: None,
                name: name.clone(),
                version: None,
            })),
            [package, name] => Some(Input::Ref(RefCall {
                package: Some(package.clone()),
                name: name.clone(),
                version: None,
            })),
            _ => None,
        };
    }
    match arguments(text, "source")?.as_slice() {
        [source, table] => Some(Input::Source(source.clone(), table.clone())),
        _ => None,
    }
}

/// Where a unit test's fixture files live: `fixtures/` under each test path.
fn fixture_file(project: &Project, base: &Path, name: &str, extension: &str) -> Option<PathBuf> {
    project.test_paths().iter().find_map(|dir| {
        let path = base
            .join(dir)
            .join("fixtures")
            .join(format!("{name}.{extension}"));
        project.root.join(&path).is_file().then_some(path)
    })
}

/// Adds every unit test of the project's YAML to the manifest (disabled ones to its disabled
/// nodes), reporting what is wrong with each, file and line.
pub fn add(project: &Project, manifest: &mut Manifest, diagnostics: &mut Diagnostics) {
    let mut nodes: Vec<Node> = Vec::new();
    for spec_file in &project.specs {
        let Json::Array(entries) = &spec_file.spec.unit_tests else {
            continue;
        };
        let base = project
            .package(&spec_file.package)
            .map(|p| p.dir.clone())
            .unwrap_or_default();
        for entry in entries {
            let name = entry.get("name").and_then(Json::as_str).unwrap_or("");
            let at = Location {
                path: spec_file.path.clone(),
                line: spec_file.entries.first(name),
                column: None,
            };
            let error = |message: String, hint: &str| {
                Diagnostic::error(message)
                    .at(at.clone())
                    .with_hint(hint.to_string())
            };
            let spec: Spec = match serde_json::from_value(entry.clone()) {
                Ok(spec) => spec,
                Err(e) => {
                    diagnostics.push(error(
                        format!("invalid unit test `{name}`: {e}"),
                        "a unit test has `name`, `model`, `given` (each with `input` and `rows` or `fixture`), `expect`, and optionally `overrides`, `config`, `description`",
                    ));
                    continue;
                }
            };
            match unit_test(project, manifest, spec_file, &base, &spec, &at) {
                Ok(node) => nodes.push(node),
                Err(diagnostic) => diagnostics.push(diagnostic),
            }
        }
    }
    for node in nodes {
        if node.config.enabled {
            manifest.nodes.insert(node.unique_id.clone(), node);
        } else {
            manifest.disabled.insert(node.unique_id.clone(), node);
        }
    }
}

/// One unit test as a node, or what is wrong with it.
fn unit_test(
    project: &Project,
    manifest: &Manifest,
    spec_file: &crate::project::SpecFile,
    base: &Path,
    spec: &Spec,
    at: &Location,
) -> Result<Node, Diagnostic> {
    let package = &spec_file.package;
    let error =
        |message: String, hint: String| Diagnostic::error(message).at(at.clone()).with_hint(hint);
    let model_name = match &spec.model {
        Json::String(name) => name.clone(),
        Json::Object(map) => map
            .get("name")
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_string(),
        _ => String::new(),
    };
    let call = RefCall {
        package: None,
        name: model_name.clone(),
        version: None,
    };
    let model: &Node = manifest
        .find_ref(&call, package)
        .and_then(|id| manifest.get(id))
        .filter(|n| n.resource_type == ResourceType::Model)
        .ok_or_else(|| {
            let names = manifest
                .nodes
                .values()
                .filter(|n| n.resource_type == ResourceType::Model)
                .map(|n| n.name.as_str());
            error(
                format!(
                    "unit test `{}` tests model `{model_name}`, which does not exist",
                    spec.name
                ),
                did_you_mean(&model_name, names)
                    .unwrap_or_else(|| "set `model:` to the name of a model".into()),
            )
        })?;
    if spec.versions.is_some() {
        return Err(error(
            format!("unit test `{}` names model versions", spec.name),
            "strata does not version models yet: remove `versions:`".into(),
        ));
    }
    let rows = |what: &str, rows: &RowsSpec| -> Result<Rows, Diagnostic> {
        let format = rows.format.as_deref().unwrap_or("dict");
        let fixture = |extension: &str| -> Result<String, Diagnostic> {
            let Some(name) = &rows.fixture else {
                return Err(error(
                    format!("{what} of unit test `{}` has neither `rows` nor `fixture`", spec.name),
                    "give the rows inline under `rows:`, or name a file of `tests/fixtures/` with `fixture:`".into(),
                ));
            };
            let path = fixture_file(project, base, name, extension).ok_or_else(|| {
                error(
                    format!("{what} of unit test `{}` names fixture `{name}`, and there is no `{name}.{extension}` in a `fixtures/` folder of the test paths", spec.name),
                    format!("add `tests/fixtures/{name}.{extension}`"),
                )
            })?;
            std::fs::read_to_string(project.root.join(&path)).map_err(|e| {
                error(
                    format!("cannot read `{}`: {e}", path.display()),
                    "check the file".into(),
                )
            })
        };
        match (format, &rows.rows) {
            ("dict", Some(Json::Array(items))) => items
                .iter()
                .map(|item| match item {
                    Json::Object(map) => Ok(map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
                    other => Err(error(
                        format!("{what} of unit test `{}`: a `dict` row is a mapping of column to value, not `{other}`", spec.name),
                        "write each row as `{column: value, …}`".into(),
                    )),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Rows::Dict),
            ("dict", Some(Json::Null)) => Ok(Rows::Dict(Vec::new())),
            ("dict", None) => fixture("csv").map(Rows::Csv),
            ("csv", Some(Json::String(text))) => Ok(Rows::Csv(text.clone())),
            ("csv", None) => fixture("csv").map(Rows::Csv),
            ("sql", Some(Json::String(text))) => Ok(Rows::Sql(text.clone())),
            ("sql", None) => fixture("sql").map(Rows::Sql),
            ("dict" | "csv" | "sql", Some(other)) => Err(error(
                format!("{what} of unit test `{}`: `{format}` rows cannot be `{other}`", spec.name),
                "`dict` rows are a list of mappings; `csv` and `sql` rows are text (use `|` for several lines)".into(),
            )),
            (other, _) => Err(error(
                format!("{what} of unit test `{}` has format `{other}`", spec.name),
                did_you_mean(other, ["dict", "csv", "sql"])
                    .unwrap_or_else(|| "use dict, csv or sql".into()),
            )),
        }
    };
    let mut given = Vec::new();
    for input in &spec.given {
        let what = format!("input `{}`", input.input);
        let node = match parse_input(&input.input) {
            Some(Input::This) => None,
            Some(Input::Ref(call)) => {
                Some(manifest.find_ref(&call, package).cloned().ok_or_else(|| {
                    error(
                        format!(
                            "unit test `{}` gives `{}`, which does not exist",
                            spec.name, input.input
                        ),
                        "give the inputs the model reads, as it reads them".into(),
                    )
                })?)
            }
            Some(Input::Source(source, table)) => Some(
                manifest
                    .find_source(&source, &table, package)
                    .cloned()
                    .ok_or_else(|| {
                        error(
                            format!(
                                "unit test `{}` gives `{}`, which is not declared",
                                spec.name, input.input
                            ),
                            "give the inputs the model reads, as it reads them".into(),
                        )
                    })?,
            ),
            None => {
                return Err(error(
                    format!("unit test `{}` has input `{}`", spec.name, input.input),
                    "an input is `ref('model')`, `source('source', 'table')` or `this`".into(),
                ))
            }
        };
        if let Some(id) = &node {
            if !model.depends_on.contains(id) {
                return Err(error(
                    format!(
                        "unit test `{}` gives `{}`, which model `{}` does not read",
                        spec.name, input.input, model.name
                    ),
                    "give only the refs and sources the model reads".into(),
                ));
            }
        }
        given.push(Given {
            input: input.input.clone(),
            node,
            rows: rows(&what, &input.rows)?,
        });
    }
    let missing: Vec<String> = model
        .depends_on
        .iter()
        .filter(|id| !given.iter().any(|g| g.node.as_ref() == Some(*id)))
        .filter_map(|id| {
            let node = manifest.get(id)?;
            Some(match &node.source {
                Some(s) => format!("source('{}', '{}')", s.source_name, s.table_name),
                None => format!("ref('{}')", node.name),
            })
        })
        .collect();
    if !missing.is_empty() {
        return Err(error(
            format!(
                "unit test `{}` does not give {}, which model `{}` reads",
                spec.name,
                missing.join(", "),
                model.name
            ),
            "add each under `given:` with the rows the test needs (`rows: []` for none)".into(),
        ));
    }
    let expect = rows("`expect`", &spec.expect)?;
    let overrides = spec.overrides.as_ref().map(|o| Overrides {
        macros: o.macros.clone(),
        vars: o.vars.clone(),
        env_vars: o
            .env_vars
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_str().map_or_else(|| v.to_string(), str::to_string),
                )
            })
            .collect(),
    });
    let config = super::resolve_config(
        &spec.config,
        crate::project::config::Materialization::Test,
        &spec_file.path,
        &mut Diagnostics::new(),
    );
    let mut fqn = vec![package.clone()];
    fqn.extend(spec_file.folders());
    fqn.push(model.name.clone());
    fqn.push(spec.name.clone());
    let unit = UnitTest {
        model: model.unique_id.clone(),
        given,
        expect,
        overrides: overrides.unwrap_or_default(),
    };
    let raw = serde_json::to_string(&unit).unwrap_or_default();
    let mut depends_on: Vec<NodeId> = unit.given.iter().filter_map(|g| g.node.clone()).collect();
    depends_on.dedup();
    Ok(Node {
        unique_id: NodeId(format!("unit_test.{package}.{}.{}", model.name, spec.name)),
        resource_type: ResourceType::UnitTest,
        name: spec.name.clone(),
        package_name: package.clone(),
        original_file_path: spec_file.path.clone(),
        patch_path: Some(spec_file.path.clone()),
        fqn,
        checksum: crate::util::sha256_hex(raw.as_bytes()),
        raw_sql: model.raw_sql.clone(),
        raw_line_offset: model.raw_line_offset,
        config_map: spec.config.clone(),
        config,
        relation: None,
        depends_on,
        refs: Vec::new(),
        sources: Vec::new(),
        description: spec.description.clone().unwrap_or_default(),
        columns: IndexMap::new(),
        test: Some(TestInfo {
            test_name: "unit".into(),
            generic: false,
            namespace: None,
            kwargs: IndexMap::new(),
            column_name: None,
            attached_node: Some(model.unique_id.clone()),
            declared_at: Some(at.clone()),
        }),
        source: None,
        parse_render: None,
        compile_late: true,
        unrendered_config: None,
        inputs: Default::default(),
        unit: Some(Arc::new(unit)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_are_refs_sources_or_this() {
        assert_eq!(
            parse_input("ref('orders')"),
            Some(Input::Ref(RefCall {
                package: None,
                name: "orders".into(),
                version: None
            }))
        );
        assert_eq!(
            parse_input(" source(\"shop\", 'orders') "),
            Some(Input::Source("shop".into(), "orders".into()))
        );
        assert_eq!(parse_input("this"), Some(Input::This));
        assert_eq!(parse_input("ref(orders)"), None);
        assert_eq!(parse_input("orders"), None);
    }
}

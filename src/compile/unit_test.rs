//! A unit test's SQL, as dbt builds it: the model rendered over one CTE per given input (its
//! rows cast to the input relation's column types, read from the warehouse; columns a row
//! leaves out are NULL of their type), then the expected rows cast to the types the model's
//! query returns, in one query whose last column says which side a row is on
//! (`actual_or_expected`). Only the columns the expected rows name are compared.
//!
//! The warehouse answers the types, so a unit test compiles once it is connected and its
//! inputs exist (right before it runs, in a build once its parents are built).

use std::collections::HashMap;
use std::sync::Arc;

use indexmap::IndexMap;
use serde_json::Value as Json;

use super::{inject_ctes, CompileOptions, CompiledNode};
use crate::diagnostic::Diagnostic;
use crate::manifest::unit_tests::{Rows, UnitTest};
use crate::manifest::{Manifest, Node, NodeId};
use crate::project::Project;
use crate::relation::{QuoteStyle, RelationName};
use crate::template::warehouse::WarehouseAccess;
use crate::template::{Engine, Phase, RefCall, RenderOverrides, Resolved, Resolver, SourceRead};

/// The column a unit test's query marks each row's side with.
pub const SIDE: &str = "actual_or_expected";

/// The refs and sources of a unit test's model, each read from its input's CTE.
#[derive(Debug)]
struct FixtureResolver {
    manifest_project: String,
    /// Node id → CTE name.
    inputs: HashMap<NodeId, String>,
    /// `(package, name)` of every ref-able node → its id.
    refs: HashMap<(String, String), NodeId>,
    /// `(source, table)` → its id.
    sources: HashMap<(String, String), NodeId>,
}

impl Resolver for FixtureResolver {
    fn resolve_ref(&self, call: &RefCall, from_package: &str) -> Result<Resolved, String> {
        let id = crate::manifest::lookup_ref(
            &self.refs,
            &self.manifest_project,
            from_package,
            call,
            true,
        )
        .ok_or_else(|| format!("`{}` does not exist", call.name))?;
        let cte = self.inputs.get(id).ok_or_else(|| {
            format!(
                "the unit test gives no rows for ref('{}'): add it under `given:`",
                call.name
            )
        })?;
        Ok(Resolved::Ephemeral {
            unique_id: id.0.clone(),
            cte_name: cte.clone(),
        })
    }

    fn source_expression(&self, source: &str, table: &str) -> Option<SourceRead> {
        let id = self.sources.get(&(source.to_string(), table.to_string()))?;
        self.inputs.get(id).cloned().map(SourceRead::Inline)
    }

    fn resolve_source(&self, source: &str, table: &str) -> Result<RelationName, String> {
        let id = self
            .sources
            .get(&(source.to_string(), table.to_string()))
            .ok_or_else(|| format!("source `{source}.{table}` is not declared"))?;
        self.inputs
            .get(id)
            .map(|cte| RelationName::new(None, "", cte.clone()))
            .ok_or_else(|| format!("the unit test gives no rows for source('{source}', '{table}')"))
    }
}

/// A JSON value from YAML as a SQL literal.
fn literal(value: &Json) -> String {
    match value {
        Json::Null => "null".into(),
        Json::Bool(b) => b.to_string(),
        Json::Number(n) => n.to_string(),
        Json::String(s) => crate::relation::string_literal(s),
        other => crate::relation::string_literal(&other.to_string()),
    }
}

/// Rows as `(column, value)` lists: dict rows as written, CSV rows as text (an empty cell is
/// NULL, as in dbt).
fn tabular(rows: &Rows) -> Result<Vec<IndexMap<String, Json>>, String> {
    match rows {
        Rows::Dict(rows) => Ok(rows.clone()),
        Rows::Csv(text) => {
            let mut reader = csv::ReaderBuilder::new()
                .trim(csv::Trim::All)
                .from_reader(text.trim().as_bytes());
            let headers: Vec<String> = reader
                .headers()
                .map_err(|e| format!("its CSV has no header line: {e}"))?
                .iter()
                .map(str::to_string)
                .collect();
            reader
                .records()
                .map(|record| {
                    let record = record.map_err(|e| format!("its CSV does not read: {e}"))?;
                    Ok(headers
                        .iter()
                        .zip(record.iter())
                        .map(|(h, v)| {
                            let value = if v.is_empty() {
                                Json::Null
                            } else {
                                Json::from(v)
                            };
                            (h.clone(), value)
                        })
                        .collect())
                })
                .collect()
        }
        Rows::Sql(_) => Err("its rows are SQL".into()),
    }
}

/// One SELECT per row, united: each column cast to its type, NULL where a row leaves it out;
/// no row gives an empty result of those columns.
fn rows_sql(
    rows: &[IndexMap<String, Json>],
    columns: &[(String, String)],
    style: &QuoteStyle,
) -> String {
    let select = |row: Option<&IndexMap<String, Json>>| {
        let parts: Vec<String> = columns
            .iter()
            .map(|(name, data_type)| {
                let value = row
                    .and_then(|r| {
                        r.iter()
                            .find(|(k, _)| k.eq_ignore_ascii_case(name))
                            .map(|(_, v)| v)
                    })
                    .unwrap_or(&Json::Null);
                format!(
                    "cast({} as {data_type}) as {}",
                    literal(value),
                    style.quote_identifier(name)
                )
            })
            .collect();
        format!("select {}", parts.join(", "))
    };
    if rows.is_empty() {
        return format!("{} where 1 = 0", select(None));
    }
    rows.iter()
        .map(|row| select(Some(row)))
        .collect::<Vec<_>>()
        .join("\nunion all\n")
}

/// The resolver that reads each given input's CTE.
fn fixture_resolver(manifest: &Manifest, inputs: HashMap<NodeId, String>) -> Arc<dyn Resolver> {
    let mut refs: HashMap<(String, String), NodeId> = HashMap::new();
    let mut sources: HashMap<(String, String), NodeId> = HashMap::new();
    for n in manifest.nodes.values() {
        match (&n.source, n.resource_type) {
            (Some(s), _) => {
                sources.insert(
                    (s.source_name.clone(), s.table_name.clone()),
                    n.unique_id.clone(),
                );
            }
            (
                None,
                crate::manifest::ResourceType::Model
                | crate::manifest::ResourceType::Seed
                | crate::manifest::ResourceType::Snapshot,
            ) => {
                refs.insert(
                    (n.package_name.clone(), n.name.clone()),
                    n.unique_id.clone(),
                );
            }
            _ => {}
        }
    }
    Arc::new(FixtureResolver {
        manifest_project: manifest.project_name.clone(),
        inputs,
        refs,
        sources,
    })
}

/// The model's SQL rendered over the inputs' CTEs (not yet put in front of it), with the unit
/// test's overrides of vars, environment variables and macros.
#[expect(
    clippy::too_many_arguments,
    reason = "what a render of the model under test needs; a struct would only rename them"
)]
fn render_model(
    project: &Project,
    engine: &Engine,
    node: &Node,
    model: &Node,
    unit: &UnitTest,
    resolver: Arc<dyn Resolver>,
    is_incremental: bool,
    this_cte: Option<String>,
) -> Result<String, Diagnostic> {
    let mut macros = unit.overrides.macros.clone();
    macros.shift_remove("is_incremental");
    let mut info = model.node_info();
    info.is_incremental = is_incremental;
    info.overrides = Some(Arc::new(RenderOverrides {
        vars: unit.overrides.vars.clone(),
        env_vars: unit.overrides.env_vars.clone(),
        macros,
        this_cte,
    }));
    let template_path = model.original_file_path.to_string_lossy().into_owned();
    engine
        .render(
            &template_path,
            &model.raw_sql,
            info,
            Phase::Compile,
            Some(resolver),
        )
        .map(|(rendered, _)| rendered)
        .map_err(|err| {
            err.to_diagnostic(&project.root, Some(&format!("unit test `{}`", node.name)))
        })
}

/// Compiles a unit test into its comparison query.
pub fn compile(
    project: &Project,
    manifest: &Manifest,
    engine: &Engine,
    node: &Node,
    options: &CompileOptions,
) -> Result<CompiledNode, Diagnostic> {
    let unit: &UnitTest = node.unit.as_deref().ok_or_else(|| {
        Diagnostic::error(format!("`{}` is not a unit test; this is a bug", node.name))
    })?;
    let at = node
        .test
        .as_ref()
        .and_then(|t| t.declared_at.clone())
        .unwrap_or_else(|| crate::diagnostic::Location::file(&node.original_file_path));
    let fail = |message: String, hint: &str| {
        Diagnostic::error(format!("unit test `{}`: {message}", node.name))
            .at(at.clone())
            .with_hint(hint.to_string())
    };
    let model = manifest
        .get(&unit.model)
        .ok_or_else(|| fail("its model is gone".into(), "this is a bug"))?;
    let warehouse: Arc<dyn WarehouseAccess> = engine
        .shared()
        .warehouse
        .get()
        .cloned()
        .ok_or_else(|| {
            fail(
                "it reads its inputs' column types from the warehouse, and this command has no connection".into(),
                "run it with `strata test` or `strata build`",
            )
        })?;
    let style = engine.shared().style;
    let mut ctes: Vec<(String, String)> = Vec::new();
    let mut inputs: HashMap<NodeId, String> = HashMap::new();
    let mut this_cte = None;
    // `this` last: where the model's table does not exist yet, its columns are what the model
    // returns over the other inputs (its full-refresh branch).
    let mut ordered: Vec<&crate::manifest::unit_tests::Given> = unit.given.iter().collect();
    ordered.sort_by_key(|g| g.node.is_none());
    let near = model.relation.clone().unwrap_or_else(|| {
        RelationName::new(None, project.target.schema.clone(), model.name.clone())
    });
    for given in ordered {
        let (cte, relation) = match &given.node {
            Some(id) => {
                let input = manifest
                    .get(id)
                    .ok_or_else(|| fail(format!("`{}` is gone", given.input), "this is a bug"))?;
                let name = match &input.source {
                    Some(s) => format!("{}__{}", s.source_name, s.table_name),
                    None => input.name.clone(),
                };
                let relation = options
                    .deferred
                    .get(id)
                    .cloned()
                    .or_else(|| input.relation.clone());
                (format!("__dbt__cte__{name}"), relation)
            }
            None => (
                format!("__dbt__cte__{}", model.name),
                model.relation.clone(),
            ),
        };
        let body = match &given.rows {
            Rows::Sql(sql) => sql.trim().trim_end_matches(';').to_string(),
            rows => {
                let rows = tabular(rows).map_err(|e| {
                    fail(
                        format!("the rows of `{}`: {e}", given.input),
                        "fix the rows",
                    )
                })?;
                let found = match &relation {
                    Some(relation) => warehouse.relation(relation).map_err(|e| {
                        fail(
                            format!("cannot read the columns of `{relation}`: {e}"),
                            "check the connection",
                        )
                    })?,
                    None => None,
                };
                let columns: Vec<(String, String)> = match found {
                    Some(found) => found.columns,
                    // The model's own table (`this`) does not exist yet: it would hold what
                    // the model returns, so that is what its rows are typed as.
                    None if given.node.is_none() => {
                        let resolver = fixture_resolver(manifest, inputs.clone());
                        let full = render_model(project, engine, node, model, unit, resolver, false, None)?;
                        let cte_refs: Vec<(String, &String)> =
                            ctes.iter().map(|(name, body)| (name.clone(), body)).collect();
                        warehouse
                            .query_columns(&inject_ctes(&full, &cte_refs), &near)
                            .map_err(|e| {
                                fail(
                                    format!("the model's table does not exist and its SQL does not run over the given rows to tell its columns: {e}"),
                                    "check the given rows, or build the model once so its table exists",
                                )
                            })?
                    }
                    None => {
                        return Err(fail(
                            format!(
                                "`{}` is not in the warehouse, and its column types are read from there",
                                relation.map(|r| r.to_string()).unwrap_or_else(|| given.input.clone())
                            ),
                            "build the model's parents first (`strata build --select +<model> --exclude <model>`), or compare with production's (`--defer --state`)",
                        ))
                    }
                };
                for row in &rows {
                    for key in row.keys() {
                        if !columns.iter().any(|(c, _)| c.eq_ignore_ascii_case(key)) {
                            return Err(fail(
                                format!("`{}` has no column `{key}`", given.input),
                                "name only the input's columns in its rows",
                            ));
                        }
                    }
                }
                rows_sql(&rows, &columns, &style)
            }
        };
        match &given.node {
            Some(id) => {
                inputs.insert(id.clone(), cte.clone());
            }
            None => this_cte = Some(cte.clone()),
        }
        ctes.push((cte, body));
    }

    // The model, over those CTEs, with the test's overrides.
    let is_incremental = unit
        .overrides
        .macros
        .get("is_incremental")
        .is_some_and(|v| v.as_bool().unwrap_or(false) || v.as_str() == Some("true"));
    let resolver = fixture_resolver(manifest, inputs);
    let rendered = render_model(
        project,
        engine,
        node,
        model,
        unit,
        resolver,
        is_incremental,
        this_cte,
    )?;
    let cte_refs: Vec<(String, &String)> = ctes
        .iter()
        .map(|(name, body)| (name.clone(), body))
        .collect();
    let actual = inject_ctes(&rendered, &cte_refs);

    // What the model returns, with the warehouse's type names.
    let returned = warehouse.query_columns(&actual, &near).map_err(|e| {
        fail(
            format!("its model's SQL does not run over the given rows: {e}"),
            "check the given rows' columns and values against what the model reads",
        )
    })?;
    let type_of = |name: &str| {
        returned
            .iter()
            .find(|(c, _)| c.eq_ignore_ascii_case(name))
            .cloned()
    };

    // The expected rows, over the columns they name.
    let (columns, expected) = match &unit.expect {
        Rows::Sql(sql) => {
            let sql = sql.trim().trim_end_matches(';').to_string();
            let named = warehouse.query_columns(&sql, &near).map_err(|e| {
                fail(
                    format!("its expected SQL does not run: {e}"),
                    "fix the SQL under `expect:`",
                )
            })?;
            (named.into_iter().map(|(n, _)| n).collect::<Vec<_>>(), sql)
        }
        rows => {
            let rows = tabular(rows)
                .map_err(|e| fail(format!("the rows of `expect`: {e}"), "fix the rows"))?;
            // dbt compares the columns of the first row without a NULL (else the first row);
            // every row names the same ones.
            let first = rows
                .iter()
                .find(|r| r.values().all(|v| !v.is_null()))
                .or(rows.first());
            let names: Vec<String> = first
                .map(|r| r.keys().cloned().collect())
                .unwrap_or_default();
            for row in &rows {
                let same = row.len() == names.len()
                    && row
                        .keys()
                        .all(|k| names.iter().any(|n| n.eq_ignore_ascii_case(k)));
                if !same {
                    return Err(fail(
                        format!(
                            "its expected rows name different columns ({} and {})",
                            names.join(", "),
                            row.keys().cloned().collect::<Vec<_>>().join(", ")
                        ),
                        "name the same columns in every expected row (dbt stops here too)",
                    ));
                }
            }
            let mut typed = Vec::new();
            for name in &names {
                let column = type_of(name).ok_or_else(|| {
                    fail(
                        format!(
                            "`expect` names column `{name}`, which model `{}` does not return",
                            model.name
                        ),
                        "name only columns the model returns",
                    )
                })?;
                typed.push(column);
            }
            let names = typed.iter().map(|(n, _)| n.clone()).collect();
            (names, rows_sql(&rows, &typed, &style))
        }
    };
    let mut actual_columns = Vec::new();
    let mut expected_columns = Vec::new();
    for name in &columns {
        let (column, data_type) = type_of(name).ok_or_else(|| {
            fail(
                format!(
                    "`expect` names column `{name}`, which model `{}` does not return",
                    model.name
                ),
                "name only columns the model returns",
            )
        })?;
        let quoted = style.quote_identifier(&column);
        actual_columns.push(quoted.clone());
        expected_columns.push(format!(
            "cast({} as {data_type}) as {quoted}",
            style.quote_identifier(name)
        ));
    }
    let side = style.quote_identifier(SIDE);
    let sql = format!(
        "select {}, 'actual' as {side}\nfrom (\n{}\n) as dbt_internal_unit_test_actual\nunion all\nselect {}, 'expected' as {side}\nfrom (\n{}\n) as dbt_internal_unit_test_expected\n",
        actual_columns.join(", "),
        actual.trim(),
        expected_columns.join(", "),
        expected.trim()
    );
    Ok(CompiledNode {
        unique_id: node.unique_id.clone(),
        sql,
        compiled_path: super::compiled_path(project, node),
        relations_read: Vec::new(),
        logs: Vec::new(),
        pre_hooks: Vec::new(),
        post_hooks: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_cast_and_missing_columns_are_null() {
        let rows = tabular(&Rows::Csv("id,name\n1,\n2,bo\n".into())).expect("csv");
        let columns = vec![
            ("id".to_string(), "INTEGER".to_string()),
            ("name".to_string(), "VARCHAR".to_string()),
            ("extra".to_string(), "DATE".to_string()),
        ];
        let sql = rows_sql(&rows, &columns, &QuoteStyle::default());
        assert_eq!(
            sql,
            "select cast('1' as INTEGER) as \"id\", cast(null as VARCHAR) as \"name\", cast(null as DATE) as \"extra\"\nunion all\nselect cast('2' as INTEGER) as \"id\", cast('bo' as VARCHAR) as \"name\", cast(null as DATE) as \"extra\""
        );
        assert!(rows_sql(&[], &columns, &QuoteStyle::default()).ends_with("where 1 = 0"));
    }
}

//! The project's docs: what the warehouse says of each relation (columns, types, cheap row
//! counts), each model's column lineage over the whole project, and the static site
//! (`index.html` with its assets and `docs-data.js`) written to the target folder.

pub mod serve;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use rayon::prelude::*;

use crate::adapter::{Adapter, AdapterError, Cell, RelationKind};
use crate::catalog::{Catalog, SchemaName};
use crate::compile::Compiled;
use crate::graph::Graph;
use crate::lineage::{ColumnLineage, Inputs, LineageError, Trace};
use crate::manifest::{Manifest, Node, NodeId, ResourceType};
use crate::project::Project;
use crate::relation::RelationName;

/// The site's files, copied as they are next to the generated data.
const SITE: &[(&str, &str)] = &[
    ("index.html", include_str!("site/index.html")),
    ("app.js", include_str!("site/app.js")),
    ("style.css", include_str!("site/style.css")),
];

/// What the warehouse says of one relation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogEntry {
    pub kind: RelationKind,
    /// `(name, type)` in order.
    pub columns: Vec<(String, String)>,
    /// Where the warehouse keeps an estimate it gives cheaply.
    pub row_count: Option<i64>,
}

/// Every relation of the project's nodes that exists, by name.
pub type WarehouseCatalog = HashMap<RelationName, CatalogEntry>;

/// The nodes that stand for relations: models, seeds, snapshots and sources.
fn has_relation(node: &Node) -> bool {
    matches!(
        node.resource_type,
        ResourceType::Model | ResourceType::Seed | ResourceType::Snapshot | ResourceType::Source
    ) && !node.is_ephemeral()
}

/// The relations the docs read from the warehouse: those of the models, seeds, snapshots
/// and sources.
pub fn wanted_relations(manifest: &Manifest) -> Vec<RelationName> {
    manifest
        .nodes
        .values()
        .filter(|n| has_relation(n))
        .filter_map(|n| n.relation.clone())
        .collect()
}

/// Reads the catalog of the schemas `wanted` live in: one listing per schema, and one
/// row-count query per schema where the warehouse keeps estimates.
pub async fn read_catalog(
    adapter: std::sync::Arc<dyn Adapter>,
    wanted: Vec<RelationName>,
) -> Result<WarehouseCatalog, AdapterError> {
    let wanted: HashSet<RelationName> = wanted.into_iter().collect();
    let schemas: std::collections::BTreeSet<SchemaName> = wanted
        .iter()
        .map(|r| SchemaName {
            database: r.database.clone(),
            schema: r.schema.clone(),
        })
        .collect();
    let catalog = Catalog::new(adapter.clone());
    catalog.list(schemas.iter().cloned()).await?;
    let mut out = WarehouseCatalog::new();
    for schema in &schemas {
        let counts = match adapter
            .flavour()
            .row_counts_sql(schema.database.as_deref(), &schema.schema)
        {
            Some(sql) => row_counts(adapter.as_ref(), &sql).await,
            None => HashMap::new(),
        };
        for info in catalog.relations_in(schema) {
            if !wanted.contains(&info.name) {
                continue;
            }
            let row_count = counts
                .get(&info.name.identifier.to_ascii_lowercase())
                .copied();
            out.insert(
                info.name.clone(),
                CatalogEntry {
                    kind: info.kind,
                    columns: info
                        .columns
                        .into_iter()
                        .map(|c| (c.name, c.data_type))
                        .collect(),
                    row_count,
                },
            );
        }
    }
    Ok(out)
}

/// Estimates by lowercased table name; none when the query fails (they are a nicety).
async fn row_counts(adapter: &dyn Adapter, sql: &str) -> HashMap<String, i64> {
    let Ok(table) = adapter.query(sql).await else {
        return HashMap::new();
    };
    table
        .rows
        .iter()
        .filter_map(|row| {
            let name = match row.first()? {
                Cell::Text(t) => t.to_ascii_lowercase(),
                _ => return None,
            };
            let count = match row.get(1)? {
                Cell::Int(n) => *n,
                Cell::Float(x) => *x as i64,
                Cell::Text(t) => t.parse().ok()?,
                _ => return None,
            };
            (count >= 0).then_some((name, count))
        })
        .collect()
}

/// What lineage reads the project's relation names as.
struct ProjectInputs<'a> {
    names: &'a HashMap<String, NodeId>,
    known: &'a HashMap<NodeId, Vec<String>>,
    traced: &'a HashMap<NodeId, Vec<String>>,
}

impl Inputs for ProjectInputs<'_> {
    fn node(&self, parts: &[String]) -> Option<NodeId> {
        let lower: Vec<String> = parts.iter().map(|p| p.to_ascii_lowercase()).collect();
        (0..lower.len()).find_map(|skip| self.names.get(&lower[skip..].join(".")).cloned())
    }

    fn columns(&self, node: &NodeId) -> Option<Vec<String>> {
        self.known
            .get(node)
            .or_else(|| self.traced.get(node))
            .cloned()
    }
}

/// The names a model's SQL may use for each node: its relation (with and without database),
/// and for ephemeral models the stand-in name the parse phase renders and the CTE name the
/// compiled SQL inlines. A bare table name counts only where it names one node.
fn relation_names(project: &Project, manifest: &Manifest) -> HashMap<String, NodeId> {
    let mut names: HashMap<String, NodeId> = HashMap::new();
    let mut bare: HashMap<String, Option<NodeId>> = HashMap::new();
    let mut add = |relation: &RelationName, id: &NodeId| {
        let schema = relation.schema.to_ascii_lowercase();
        let table = relation.identifier.to_ascii_lowercase();
        if let Some(db) = &relation.database {
            names.insert(
                format!("{}.{schema}.{table}", db.to_ascii_lowercase()),
                id.clone(),
            );
        }
        names.insert(format!("{schema}.{table}"), id.clone());
        bare.entry(table)
            .and_modify(|e| {
                if e.as_ref() != Some(id) {
                    *e = None
                }
            })
            .or_insert_with(|| Some(id.clone()));
    };
    for node in manifest.nodes.values() {
        if node.is_ephemeral() {
            let stand_in = RelationName::new(
                Some(project.target.database.clone()),
                project.target.schema.clone(),
                node.name.clone(),
            );
            add(&stand_in, &node.unique_id);
        } else if has_relation(node) {
            if let Some(relation) = &node.relation {
                add(relation, &node.unique_id);
            }
        }
    }
    for node in manifest.nodes.values().filter(|n| n.is_ephemeral()) {
        names.insert(
            format!("__dbt__cte__{}", node.name.to_ascii_lowercase()),
            node.unique_id.clone(),
        );
    }
    for (table, id) in bare {
        if let Some(id) = id {
            names.entry(table).or_insert(id);
        }
    }
    names
}

/// The columns known without tracing: the warehouse's, else a seed's CSV header, else a
/// source's documented columns.
fn known_columns(
    project: &Project,
    manifest: &Manifest,
    catalog: &WarehouseCatalog,
) -> HashMap<NodeId, Vec<String>> {
    let mut known = HashMap::new();
    for node in manifest.nodes.values() {
        let from_catalog = node
            .relation
            .as_ref()
            .and_then(|r| catalog.get(r))
            .map(|e| e.columns.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>());
        let columns = match (from_catalog, node.resource_type) {
            (Some(columns), _) => Some(columns),
            (None, ResourceType::Seed) => seed_header(&project.root.join(&node.original_file_path)),
            (None, ResourceType::Source) if !node.columns.is_empty() => {
                Some(node.columns.keys().cloned().collect())
            }
            _ => None,
        };
        if let Some(columns) = columns {
            known.insert(node.unique_id.clone(), columns);
        }
    }
    known
}

fn seed_header(path: &Path) -> Option<Vec<String>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .ok()?;
    let columns: Vec<String> = reader
        .headers()
        .ok()?
        .iter()
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect();
    (!columns.is_empty()).then_some(columns)
}

/// Each model's and snapshot's column lineage, traced in dependency order (a child's `*`
/// expands to what its parent was traced to return), the nodes of one depth in parallel.
/// The SQL read is the parse phase's render where the manifest kept it (refs and sources as
/// relation names, `is_incremental()` false: what a full build runs), else the compiled SQL.
pub fn project_lineage(
    project: &Project,
    manifest: &Manifest,
    graph: &Graph,
    compiled: Option<&Compiled>,
    catalog: &WarehouseCatalog,
) -> HashMap<NodeId, Result<Vec<ColumnLineage>, LineageError>> {
    let names = relation_names(project, manifest);
    let known = known_columns(project, manifest, catalog);
    let flavour = crate::adapter::flavour_for(&project.target);
    let dialect = flavour.dialect();
    let order = graph.topological_order();
    let mut depth: HashMap<NodeId, usize> = HashMap::new();
    for id in &order {
        let d = graph
            .parents(id)
            .iter()
            .filter_map(|p| depth.get(p))
            .max()
            .map_or(0, |d| d + 1);
        depth.insert(id.clone(), d);
    }
    let mut levels: BTreeMap<usize, Vec<&Node>> = BTreeMap::new();
    for id in &order {
        if let Some(node) = manifest.get(id) {
            if node.traces_lineage() {
                levels.entry(depth[id]).or_default().push(node);
            }
        }
    }
    let mut traced: HashMap<NodeId, Vec<String>> = HashMap::new();
    let mut out = HashMap::new();
    for nodes in levels.values() {
        let inputs = ProjectInputs {
            names: &names,
            known: &known,
            traced: &traced,
        };
        let done: Vec<(NodeId, Result<Vec<ColumnLineage>, LineageError>)> = nodes
            .par_iter()
            .map(|node| {
                // The lineage plan the SQL check kept, else the SQL parsed.
                let kept = node
                    .parse_render
                    .as_ref()
                    .and_then(|r| r.lineage_plan(flavour.as_ref()));
                let sql = node
                    .parse_render
                    .as_ref()
                    .map(|r| r.sql.as_str())
                    .or_else(|| {
                        compiled
                            .and_then(|c| c.nodes.get(&node.unique_id))
                            .map(|c| c.sql.as_str())
                    });
                let result = match (kept, sql) {
                    (Some(Ok(plan)), _) => Ok(plan.trace(&inputs)),
                    (Some(Err(e)), _) => Err(e.clone()),
                    (None, Some(sql)) => crate::lineage::lineage(sql, dialect, &inputs),
                    (None, None) => Err(LineageError("the model was not compiled".into())),
                };
                (node.unique_id.clone(), result)
            })
            .collect();
        for (id, result) in done {
            if let Ok(columns) = &result {
                traced.insert(
                    id.clone(),
                    columns
                        .iter()
                        .filter(|c| c.column != "*")
                        .map(|c| c.column.clone())
                        .collect(),
                );
            }
            out.insert(id, result);
        }
    }
    out
}

/// The site's data (`window.STRATA_DOCS`): every node with what its page and the graph show.
/// Children are the site's to derive from the parents. Borrowed from the manifest and
/// serialized as it stands, without an intermediate JSON tree.
#[derive(serde::Serialize)]
pub struct SiteData<'a> {
    project: &'a str,
    target: &'a str,
    generated_at: String,
    #[serde(serialize_with = "crate::util::pairs_as_map")]
    nodes: Vec<(&'a str, SiteNode<'a>)>,
}

#[derive(serde::Serialize)]
struct SiteNode<'a> {
    name: &'a str,
    resource_type: &'static str,
    package: &'a str,
    path: String,
    fqn: &'a [String],
    tags: &'a [String],
    description: &'a str,
    materialized: Option<&'a str>,
    relation: Option<String>,
    config: &'a crate::project::ConfigMap,
    raw_sql: &'a str,
    compiled_sql: &'a str,
    columns: Vec<SiteColumn<'a>>,
    parents: Vec<&'a str>,
    tests: Vec<&'a str>,
    row_count: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    test_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attached_node: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    column_name: Option<&'a str>,
}

#[derive(serde::Serialize)]
struct SiteColumn<'a> {
    name: &'a str,
    #[serde(rename = "type")]
    data_type: Option<&'a str>,
    description: &'a str,
    tests: Vec<&'a str>,
    lineage: Option<SiteLineage<'a>>,
}

#[derive(serde::Serialize)]
struct SiteLineage<'a> {
    status: Trace,
    note: Option<&'a str>,
    upstream: Vec<(&'a str, &'a str)>,
}

/// Builds the site's data, the nodes in parallel.
pub fn site_data<'a>(
    project: &'a Project,
    manifest: &'a Manifest,
    compiled: Option<&'a Compiled>,
    catalog: &'a WarehouseCatalog,
    lineage: &'a HashMap<NodeId, Result<Vec<ColumnLineage>, LineageError>>,
    generated_at: &str,
) -> SiteData<'a> {
    let mut tests_of: HashMap<&NodeId, Vec<&str>> = HashMap::new();
    let mut column_tests: HashMap<(&NodeId, String), Vec<&str>> = HashMap::new();
    for node in manifest.nodes.values() {
        if let Some(test) = &node.test {
            if let Some(attached) = &test.attached_node {
                tests_of
                    .entry(attached)
                    .or_default()
                    .push(&node.unique_id.0);
                if let Some(column) = &test.column_name {
                    column_tests
                        .entry((attached, column.to_ascii_lowercase()))
                        .or_default()
                        .push(&node.unique_id.0);
                }
            }
        }
    }
    let all: Vec<&Node> = manifest.nodes.values().collect();
    let nodes = all
        .par_iter()
        .map(|node| {
            let id = &node.unique_id;
            (
                id.0.as_str(),
                site_node(node, compiled, catalog, lineage, &tests_of, &column_tests),
            )
        })
        .collect();
    SiteData {
        project: &project.name,
        target: &project.target.name,
        generated_at: generated_at.to_string(),
        nodes,
    }
}

type ColumnTests<'a> = HashMap<(&'a NodeId, String), Vec<&'a str>>;

fn site_node<'a>(
    node: &'a Node,
    compiled: Option<&'a Compiled>,
    catalog: &'a WarehouseCatalog,
    lineage: &'a HashMap<NodeId, Result<Vec<ColumnLineage>, LineageError>>,
    tests_of: &HashMap<&NodeId, Vec<&'a str>>,
    column_tests: &ColumnTests<'a>,
) -> SiteNode<'a> {
    let id = &node.unique_id;
    let entry = node.relation.as_ref().and_then(|r| catalog.get(r));
    let traced = lineage.get(id);
    let by_name: HashMap<String, &ColumnLineage> = match traced {
        Some(Ok(columns)) => columns
            .iter()
            .map(|c| (c.column.to_ascii_lowercase(), c))
            .collect(),
        _ => HashMap::new(),
    };
    let untraced: Option<&LineageError> = match traced {
        Some(Err(e)) => Some(e),
        _ => None,
    };
    // Columns: the warehouse's order, else the traced ones, then documented ones not seen.
    let mut names: Vec<(&str, Option<&str>)> = match (entry, traced) {
        (Some(e), _) => e
            .columns
            .iter()
            .map(|(n, t)| (n.as_str(), Some(t.as_str())))
            .collect(),
        (None, Some(Ok(columns))) => columns
            .iter()
            .filter(|c| c.column != "*")
            .map(|c| (c.column.as_str(), None))
            .collect(),
        _ => Vec::new(),
    };
    for (name, column) in &node.columns {
        if !names.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            names.push((name.as_str(), column.data_type.as_deref()));
        }
    }
    let columns = names
        .into_iter()
        .map(|(name, data_type)| {
            let lower = name.to_ascii_lowercase();
            let documented = node
                .columns
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, c)| c);
            let lineage = match (by_name.get(&lower), untraced) {
                (Some(c), _) => Some(SiteLineage {
                    status: c.status,
                    note: c.note.as_deref(),
                    upstream: c
                        .upstream
                        .iter()
                        .map(|(n, col)| (n.0.as_str(), col.as_str()))
                        .collect(),
                }),
                (None, Some(why)) => Some(SiteLineage {
                    status: Trace::Untraced,
                    note: Some(why.0.as_str()),
                    upstream: Vec::new(),
                }),
                (None, None) => None,
            };
            SiteColumn {
                name,
                data_type: data_type.or_else(|| documented.and_then(|c| c.data_type.as_deref())),
                description: documented
                    .map(|c| c.description.as_str())
                    .unwrap_or_default(),
                tests: column_tests.get(&(id, lower)).cloned().unwrap_or_default(),
                lineage,
            }
        })
        .collect();
    SiteNode {
        name: &node.name,
        resource_type: node.resource_type.as_str(),
        package: &node.package_name,
        path: node.original_file_path.to_string_lossy().replace('\\', "/"),
        fqn: &node.fqn,
        tags: &node.config.tags,
        description: &node.description,
        materialized: matches!(
            node.resource_type,
            ResourceType::Model | ResourceType::Seed | ResourceType::Snapshot
        )
        .then(|| node.config.materialized.as_str()),
        relation: node
            .relation
            .as_ref()
            .filter(|_| has_relation(node))
            .map(|r| r.to_string()),
        config: &node.config_map,
        raw_sql: &node.raw_sql,
        compiled_sql: compiled
            .and_then(|c| c.nodes.get(id))
            .map(|c| c.sql.as_str())
            .unwrap_or_default(),
        columns,
        parents: node.depends_on.iter().map(|p| p.0.as_str()).collect(),
        tests: tests_of.get(id).cloned().unwrap_or_default(),
        row_count: entry.and_then(|e| e.row_count),
        source_name: node.source.as_ref().map(|s| s.source_name.as_str()),
        test_name: node.test.as_ref().map(|t| t.test_name.as_str()),
        attached_node: node
            .test
            .as_ref()
            .and_then(|t| t.attached_node.as_ref())
            .map(|n| n.0.as_str()),
        column_name: node.test.as_ref().and_then(|t| t.column_name.as_deref()),
    }
}

/// Writes the site to `dir`: its files, and `docs-data.js` holding `data`, streamed.
pub fn write_site(dir: &Path, data: &SiteData<'_>) -> std::io::Result<()> {
    use serde::Serialize;
    use std::io::Write;
    std::fs::create_dir_all(dir)?;
    for (name, text) in SITE {
        crate::util::write_atomic(&dir.join(name), text.as_bytes())?;
    }
    crate::util::write_atomic_with(&dir.join("docs-data.js"), |out| {
        out.write_all(b"window.STRATA_DOCS = ")?;
        let mut serializer = serde_json::Serializer::with_formatter(&mut *out, ScriptSafe);
        data.serialize(&mut serializer)
            .map_err(std::io::Error::other)?;
        out.write_all(b";\n")
    })
}

/// Compact JSON that a `<script>` can hold: `</script>` in a model's SQL must not end the
/// script, so `</` in a string is written `<\/`, which JSON reads back the same.
struct ScriptSafe;

impl serde_json::ser::Formatter for ScriptSafe {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        // serde_json escapes neither `<` nor `/`, so a `</` is never split across fragments.
        let mut rest = fragment;
        while let Some(at) = rest.find("</") {
            writer.write_all(&rest.as_bytes()[..at])?;
            writer.write_all(b"<\\/")?;
            rest = &rest[at + 2..];
        }
        writer.write_all(rest.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closing_tags_in_strings_cannot_end_the_script() {
        use serde::Serialize;
        let value =
            serde_json::json!({"sql": "select '</script><script>alert(1)</script>' as x", "n": 1});
        let mut out = Vec::new();
        value
            .serialize(&mut serde_json::Serializer::with_formatter(
                &mut out, ScriptSafe,
            ))
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains("</"), "{text}");
        assert_eq!(text.matches(r"<\/script>").count(), 2, "{text}");
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, value);
    }
}

//! Artifacts users and tools read after a command: `manifest.json` in dbt's layout (so tools
//! built for dbt keep working), written atomically under the target path.
//!
//! Artifacts never contain secrets: only node configs and the target's non-secret fields.

pub mod junit;

use std::collections::BTreeMap;
use std::path::PathBuf;

use indexmap::IndexMap;
use serde::Serialize;
use serde_json::Value as Json;

use crate::compile::Compiled;
use crate::manifest::{Manifest, Node, NodeId, ResourceType};
use crate::project::Project;
use crate::template::Engine;

#[derive(Serialize)]
struct Metadata<'a> {
    dbt_schema_version: &'static str,
    dbt_version: String,
    generator: &'static str,
    generated_at: String,
    invocation_id: &'a str,
    project_name: &'a str,
    adapter_type: &'static str,
    target_name: &'a str,
}

impl<'a> Metadata<'a> {
    fn new(schema: &'static str, project: &'a Project, engine: &'a Engine) -> Self {
        Metadata {
            dbt_schema_version: schema,
            dbt_version: format!("strata-{}", env!("CARGO_PKG_VERSION")),
            generator: "strata",
            generated_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            invocation_id: &engine.shared().invocation_id,
            project_name: &project.name,
            adapter_type: project.target.kind().as_str(),
            target_name: &project.target.name,
        }
    }
}

#[derive(Serialize)]
struct Checksum<'a> {
    name: &'static str,
    checksum: std::borrow::Cow<'a, str>,
}

#[derive(Serialize)]
struct DependsOn<'a> {
    nodes: &'a [NodeId],
    macros: Vec<String>,
}

#[derive(Serialize)]
struct RefEntry<'a> {
    name: &'a str,
    package: Option<&'a str>,
    version: Option<&'a str>,
}

#[derive(Serialize)]
struct TestMetadata<'a> {
    name: &'a str,
    kwargs: &'a IndexMap<String, Json>,
    namespace: Option<&'a str>,
}

#[derive(Serialize)]
struct NodeEntry<'a> {
    unique_id: &'a NodeId,
    name: &'a str,
    resource_type: ResourceType,
    package_name: &'a str,
    path: String,
    original_file_path: String,
    patch_path: Option<String>,
    fqn: &'a [String],
    database: Option<&'a str>,
    schema: Option<&'a str>,
    alias: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    identifier: Option<&'a str>,
    config: BTreeMap<&'a str, &'a Json>,
    /// The config as written, Jinja unrendered (dbt's field; what `state:modified` compares).
    unrendered_config: BTreeMap<&'a str, &'a Json>,
    materialized: &'a str,
    tags: &'a [String],
    description: &'a str,
    columns: &'a IndexMap<String, crate::manifest::Column>,
    depends_on: DependsOn<'a>,
    refs: Vec<RefEntry<'a>>,
    sources: Vec<[&'a str; 2]>,
    checksum: Checksum<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    raw_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    compiled_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    compiled_checksum: Option<Checksum<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    compiled_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    test_metadata: Option<TestMetadata<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    column_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attached_node: Option<&'a NodeId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    loaded_at_field: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    external: Option<&'a Json>,
    /// What a later `--state` comparison compares (strata's extension).
    #[serde(skip_serializing_if = "Option::is_none")]
    strata_fingerprint: Option<&'a crate::changes::fingerprint::Fingerprint>,
}

#[derive(Serialize)]
struct MacroEntry {
    unique_id: String,
    name: String,
    package_name: String,
    original_file_path: String,
    line: usize,
    /// SHA-256 of the macro's text (strata's extension; `--state` compares it).
    #[serde(skip_serializing_if = "Option::is_none")]
    checksum: Option<String>,
}

#[derive(Serialize)]
struct DocEntry<'a> {
    unique_id: String,
    name: &'a str,
    original_file_path: String,
    block_contents: &'a str,
}

#[derive(Serialize)]
struct ManifestFile<'a> {
    metadata: Metadata<'a>,
    nodes: Entries<'a>,
    sources: Entries<'a>,
    unit_tests: Entries<'a>,
    macros: BTreeMap<String, MacroEntry>,
    docs: BTreeMap<String, DocEntry<'a>>,
    disabled: BTreeMap<&'a str, Vec<NodeEntry<'a>>>,
    parent_map: BTreeMap<&'a str, Vec<&'a str>>,
    child_map: BTreeMap<&'a str, Vec<&'a str>>,
}

fn path_string(path: &std::path::Path) -> String {
    path.to_string_lossy().replace('\\', "/")
}

fn entry<'a>(
    node: &'a Node,
    compiled: Option<&'a Compiled>,
    fingerprint: Option<&'a crate::changes::fingerprint::Fingerprint>,
) -> NodeEntry<'a> {
    let compiled_node = compiled.and_then(|c| c.nodes.get(&node.unique_id));
    NodeEntry {
        unique_id: &node.unique_id,
        name: &node.name,
        resource_type: node.resource_type,
        package_name: &node.package_name,
        path: path_string(&node.original_file_path),
        original_file_path: path_string(&node.original_file_path),
        patch_path: node.patch_path.as_deref().map(path_string),
        fqn: &node.fqn,
        database: node.relation.as_ref().and_then(|r| r.database.as_deref()),
        schema: node.relation.as_ref().map(|r| r.schema.as_str()),
        alias: node.relation.as_ref().map(|r| r.identifier.as_str()),
        identifier: node
            .source
            .as_ref()
            .and(node.relation.as_ref())
            .map(|r| r.identifier.as_str()),
        config: node
            .config_map
            .iter()
            .map(|(k, v)| (k.as_str(), v))
            .collect(),
        unrendered_config: node
            .unrendered_config
            .as_ref()
            .unwrap_or(&node.config_map)
            .iter()
            .map(|(k, v)| (k.as_str(), v))
            .collect(),
        materialized: node.config.materialized.as_str(),
        tags: &node.config.tags,
        description: &node.description,
        columns: &node.columns,
        depends_on: DependsOn {
            nodes: &node.depends_on,
            macros: fingerprint.map(|f| f.macros.clone()).unwrap_or_default(),
        },
        refs: node
            .refs
            .iter()
            .map(|r| RefEntry {
                name: &r.name,
                package: r.package.as_deref(),
                version: r.version.as_deref(),
            })
            .collect(),
        sources: node
            .sources
            .iter()
            .map(|(s, t)| [s.as_str(), t.as_str()])
            .collect(),
        checksum: Checksum {
            name: "sha256",
            checksum: node.checksum.as_str().into(),
        },
        raw_code: (node.resource_type != ResourceType::Source
            && node.resource_type != ResourceType::Seed)
            .then_some(&*node.raw_sql),
        compiled_code: compiled_node.map(|c| c.sql.as_str()),
        compiled_checksum: compiled_node.map(|c| Checksum {
            name: "sha256",
            checksum: crate::util::sha256_hex(c.sql.as_bytes()).into(),
        }),
        compiled_path: compiled_node.map(|c| path_string(&c.compiled_path)),
        test_metadata: node
            .test
            .as_ref()
            .filter(|t| t.generic)
            .map(|t| TestMetadata {
                name: &t.test_name,
                kwargs: &t.kwargs,
                namespace: t.namespace.as_deref(),
            }),
        column_name: node.test.as_ref().and_then(|t| t.column_name.as_deref()),
        attached_node: node.test.as_ref().and_then(|t| t.attached_node.as_ref()),
        source_name: node.source.as_ref().map(|s| s.source_name.as_str()),
        loaded_at_field: node
            .source
            .as_ref()
            .and_then(|s| s.loaded_at_field.as_deref()),
        external: node.source.as_ref().and_then(|s| s.external.as_ref()),
        strata_fingerprint: fingerprint,
    }
}

/// Nodes keyed by unique id, in id order, each entry built only when it is written: on 10,000
/// models holding all 31,000 entries at once cost about 30 MB of peak memory.
struct Entries<'a> {
    nodes: Vec<&'a Node>,
    compiled: Option<&'a Compiled>,
    fingerprints: &'a BTreeMap<NodeId, crate::changes::fingerprint::Fingerprint>,
}

impl<'a> Entries<'a> {
    fn new(
        mut nodes: Vec<&'a Node>,
        compiled: Option<&'a Compiled>,
        fingerprints: &'a BTreeMap<NodeId, crate::changes::fingerprint::Fingerprint>,
    ) -> Self {
        nodes.sort_unstable_by(|a, b| a.unique_id.0.cmp(&b.unique_id.0));
        Entries {
            nodes,
            compiled,
            fingerprints,
        }
    }
}

impl Serialize for Entries<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.nodes.iter().map(|node| {
            (
                node.unique_id.0.as_str(),
                entry(node, self.compiled, self.fingerprints.get(&node.unique_id)),
            )
        }))
    }
}

/// Writes `<target-path>/manifest.json`; returns its path.
/// `graph` as templates see it at compile time: every node and source as `manifest.json`
/// has them, by unique id.
pub fn graph_json(manifest: &Manifest) -> serde_json::Value {
    let mut nodes = serde_json::Map::new();
    let mut sources = serde_json::Map::new();
    for node in manifest.nodes.values() {
        let value = serde_json::to_value(entry(node, None, None)).unwrap_or_default();
        if node.resource_type == ResourceType::Source {
            sources.insert(node.unique_id.0.clone(), value);
        } else {
            nodes.insert(node.unique_id.0.clone(), value);
        }
    }
    serde_json::json!({
        "nodes": nodes,
        "sources": sources,
        "exposures": {},
        "metrics": {},
        "groups": {},
        "semantic_models": {},
        "saved_queries": {},
    })
}

pub fn write_manifest(
    project: &Project,
    manifest: &Manifest,
    engine: &Engine,
    compiled: Option<&Compiled>,
) -> std::io::Result<PathBuf> {
    let mut nodes: Vec<&Node> = Vec::with_capacity(manifest.nodes.len());
    let mut sources: Vec<&Node> = Vec::new();
    let mut unit_tests: Vec<&Node> = Vec::new();
    let mut parent_map: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut child_map: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for node in manifest.nodes.values() {
        let id = node.unique_id.0.as_str();
        child_map.entry(id).or_default();
        let parents = parent_map.entry(id).or_default();
        for dep in &node.depends_on {
            parents.push(dep.0.as_str());
        }
        for dep in &node.depends_on {
            child_map.entry(dep.0.as_str()).or_default().push(id);
        }
        match node.resource_type {
            ResourceType::Source => sources.push(node),
            ResourceType::UnitTest => unit_tests.push(node),
            _ => nodes.push(node),
        }
    }
    let fingerprints = crate::changes::fingerprint::fingerprints(manifest, engine);
    let (nodes, sources, unit_tests) = (
        Entries::new(nodes, compiled, &fingerprints),
        Entries::new(sources, compiled, &fingerprints),
        Entries::new(unit_tests, compiled, &fingerprints),
    );
    for children in child_map.values_mut() {
        children.sort();
    }
    let disabled = manifest
        .disabled
        .values()
        .map(|n| (n.unique_id.0.as_str(), vec![entry(n, None, None)]))
        .collect();
    let macros = engine
        .macros()
        .iter()
        .map(|(name, location)| (&project.name, name, location))
        .chain(
            engine
                .package_macros()
                .iter()
                .flat_map(|(package, macros)| macros.iter().map(move |(n, l)| (package, n, l))),
        )
        .map(|(package, name, location)| {
            let unique_id = format!("macro.{package}.{name}");
            (
                unique_id.clone(),
                MacroEntry {
                    checksum: engine
                        .macro_graph()
                        .get(package, name)
                        .map(|m| m.checksum.clone()),
                    unique_id,
                    name: name.clone(),
                    package_name: package.clone(),
                    original_file_path: location.path.clone(),
                    line: location.line,
                },
            )
        })
        .collect();
    let docs = project
        .docs
        .values()
        .map(|d| {
            let unique_id = format!("doc.{}.{}", project.name, d.name);
            (
                unique_id.clone(),
                DocEntry {
                    unique_id,
                    name: &d.name,
                    original_file_path: path_string(&d.path),
                    block_contents: &d.text,
                },
            )
        })
        .collect();
    let file = ManifestFile {
        metadata: Metadata::new(
            "https://schemas.getdbt.com/dbt/manifest/v12.json",
            project,
            engine,
        ),
        nodes,
        sources,
        unit_tests,
        macros,
        docs,
        disabled,
        parent_map,
        child_map,
    };
    // Streamed: on 10,000 models the manifest is tens of MB, and building it in memory first
    // raised the peak of `parse` and `compile`.
    let path = project.target_path.join("manifest.json");
    crate::util::write_atomic_with(&path, |out| {
        serde_json::to_writer(out, &file).map_err(std::io::Error::other)
    })?;
    Ok(path)
}

#[derive(Serialize)]
struct RunResultsFile<'a> {
    metadata: Metadata<'a>,
    /// How the run was asked for: `which` command and the command line (`argv`), which
    /// `strata retry` runs again.
    args: serde_json::Value,
    elapsed_time: f64,
    /// Seconds spent waiting on the warehouse, summed over connections (strata's extension).
    adapter_seconds: f64,
    results: Vec<RunResultEntry<'a>>,
}

#[derive(Serialize)]
struct RunResultEntry<'a> {
    unique_id: &'a NodeId,
    status: crate::run::Status,
    message: &'a str,
    execution_time: f64,
    rows_affected: Option<u64>,
    /// A data test's failure count (dbt's field).
    failures: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stored_in: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    compiled_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<&'a str>,
    /// A microbatch model's batches (dbt's field).
    #[serde(skip_serializing_if = "Option::is_none")]
    batch_results: Option<&'a crate::materialize::microbatch::BatchResults>,
    /// What the node cost the warehouse (dbt's field; strata's keys).
    adapter_response: AdapterResponse<'a>,
}

#[derive(Serialize)]
struct AdapterResponse<'a> {
    /// Statements the node ran, queries included.
    statements: usize,
    /// Transactions of more than one statement among them.
    transactions: usize,
    /// Clean-up left for the next run.
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    warnings: &'a [String],
}

/// Writes `<target-path>/run_results.json`; returns its path.
#[expect(
    clippy::too_many_arguments,
    reason = "the file holds what each of them knows; a struct would only rename them"
)]
pub fn write_run_results(
    project: &Project,
    engine: &Engine,
    compiled: Option<&Compiled>,
    results: &[crate::run::NodeResult],
    elapsed: f64,
    adapter_seconds: f64,
    command: &str,
    invocation: &[String],
) -> std::io::Result<PathBuf> {
    let file = RunResultsFile {
        metadata: Metadata::new(
            "https://schemas.getdbt.com/dbt/run-results/v6.json",
            project,
            engine,
        ),
        args: serde_json::json!({"which": command, "argv": invocation}),
        elapsed_time: elapsed,
        adapter_seconds,
        results: results
            .iter()
            .map(|r| RunResultEntry {
                unique_id: &r.unique_id,
                status: r.status,
                message: &r.message,
                execution_time: r.execution_time,
                rows_affected: r.rows_affected,
                failures: r.failures,
                stored_in: r.stored_in.as_deref(),
                compiled_path: compiled
                    .and_then(|c| c.nodes.get(&r.unique_id))
                    .map(|c| path_string(&c.compiled_path)),
                hint: r.hint.as_deref(),
                batch_results: r.batch_results.as_ref(),
                adapter_response: AdapterResponse {
                    statements: r.statements,
                    transactions: r.transactions,
                    warnings: &r.warnings,
                },
            })
            .collect(),
    };
    let bytes = serde_json::to_vec_pretty(&file).map_err(std::io::Error::other)?;
    let path = project.target_path.join("run_results.json");
    crate::util::write_atomic(&path, &bytes)?;
    Ok(path)
}

/// `<target-path>/catalog.json` in dbt's layout (v1): each existing relation of a model, seed,
/// snapshot or source with its columns and types, and a row count where the warehouse gave
/// one cheaply.
pub fn write_catalog(
    project: &Project,
    manifest: &Manifest,
    engine: &Engine,
    catalog: &crate::docs::WarehouseCatalog,
) -> std::io::Result<PathBuf> {
    let mut nodes = Vec::new();
    let mut sources = Vec::new();
    for node in manifest.nodes.values() {
        let (Some(relation), Some(entry)) = (
            &node.relation,
            node.relation.as_ref().and_then(|r| catalog.get(r)),
        ) else {
            continue;
        };
        let table = CatalogTable {
            metadata: CatalogTableMetadata {
                kind: if entry.kind == crate::adapter::RelationKind::View {
                    "VIEW"
                } else {
                    "BASE TABLE"
                },
                schema: &relation.schema,
                name: &relation.identifier,
                database: relation.database.as_deref(),
                comment: None,
                owner: None,
            },
            columns: &entry.columns,
            stats: CatalogStats {
                has_stats: CatalogStat {
                    id: "has_stats",
                    label: "Has Stats?",
                    value: Json::Bool(entry.row_count.is_some()),
                    include: false,
                    description: "Indicates whether there are statistics for this table",
                },
                row_count: entry.row_count.map(|rows| CatalogStat {
                    id: "row_count",
                    label: "Row Count",
                    value: Json::from(rows),
                    include: true,
                    description: "An approximate count of rows in this table",
                }),
            },
            unique_id: &node.unique_id.0,
        };
        if node.resource_type == ResourceType::Source {
            sources.push((node.unique_id.0.as_str(), table));
        } else {
            nodes.push((node.unique_id.0.as_str(), table));
        }
    }
    let file = CatalogFile {
        metadata: Metadata::new(
            "https://schemas.getdbt.com/dbt/catalog/v1.json",
            project,
            engine,
        ),
        nodes,
        sources,
        errors: None,
    };
    let bytes = serde_json::to_vec(&file).map_err(std::io::Error::other)?;
    let path = project.target_path.join("catalog.json");
    crate::util::write_atomic(&path, &bytes)?;
    Ok(path)
}

/// `catalog.json` as dbt lays it out, borrowed from the catalog read.
#[derive(Serialize)]
struct CatalogFile<'a> {
    metadata: Metadata<'a>,
    #[serde(serialize_with = "crate::util::pairs_as_map")]
    nodes: Vec<(&'a str, CatalogTable<'a>)>,
    #[serde(serialize_with = "crate::util::pairs_as_map")]
    sources: Vec<(&'a str, CatalogTable<'a>)>,
    errors: Option<Vec<String>>,
}

#[derive(Serialize)]
struct CatalogTable<'a> {
    metadata: CatalogTableMetadata<'a>,
    #[serde(serialize_with = "catalog_columns")]
    columns: &'a [(String, String)],
    stats: CatalogStats,
    unique_id: &'a str,
}

#[derive(Serialize)]
struct CatalogTableMetadata<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    schema: &'a str,
    name: &'a str,
    database: Option<&'a str>,
    comment: Option<&'a str>,
    owner: Option<&'a str>,
}

/// Columns by name, each with its type and 1-based position.
fn catalog_columns<S: serde::Serializer>(
    columns: &&[(String, String)],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Column<'a> {
        #[serde(rename = "type")]
        data_type: &'a str,
        index: usize,
        name: &'a str,
        comment: Option<&'a str>,
    }
    serializer.collect_map(columns.iter().enumerate().map(|(i, (name, data_type))| {
        (
            name,
            Column {
                data_type,
                index: i + 1,
                name,
                comment: None,
            },
        )
    }))
}

#[derive(Serialize)]
struct CatalogStats {
    has_stats: CatalogStat,
    #[serde(skip_serializing_if = "Option::is_none")]
    row_count: Option<CatalogStat>,
}

#[derive(Serialize)]
struct CatalogStat {
    id: &'static str,
    label: &'static str,
    value: Json,
    include: bool,
    description: &'static str,
}

/// `sources.json`, in dbt's layout (v3): each checked source's newest load, the check's
/// time, the age in seconds, the status and the criteria; a check that could not measure
/// carries its error instead.
pub fn write_sources(
    project: &Project,
    engine: &Engine,
    results: &[crate::freshness::Checked],
    elapsed: f64,
    path: Option<&std::path::Path>,
) -> std::io::Result<PathBuf> {
    let time =
        |t: &chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let threshold = |t: Option<crate::freshness::Threshold>| match t {
        Some(t) => serde_json::json!({"count": t.count, "period": t.period.as_str()}),
        None => serde_json::json!({"count": null, "period": null}),
    };
    let entries: Vec<Json> = results
        .iter()
        .map(|r| {
            let timing = serde_json::json!([
                {"name": "compile", "started_at": time(&r.started_at), "completed_at": time(&r.started_at)},
                {"name": "execute", "started_at": time(&r.started_at), "completed_at": time(&r.completed_at)},
            ]);
            match (&r.error, r.max_loaded_at, r.snapshotted_at, r.age) {
                (None, Some(max), Some(now), Some(age)) => serde_json::json!({
                    "unique_id": r.unique_id,
                    "max_loaded_at": time(&max),
                    "snapshotted_at": time(&now),
                    "max_loaded_at_time_ago_in_s": age,
                    "status": r.status.as_str(),
                    "criteria": {
                        "warn_after": threshold(r.criteria.warn_after),
                        "error_after": threshold(r.criteria.error_after),
                        "filter": r.criteria.filter,
                    },
                    "adapter_response": {},
                    "timing": timing,
                    "thread_id": "Thread-1",
                    "execution_time": r.execution_time,
                }),
                _ => serde_json::json!({
                    "unique_id": r.unique_id,
                    "error": r.error.clone().unwrap_or_default(),
                    "status": r.status.as_str(),
                }),
            }
        })
        .collect();
    let file = serde_json::json!({
        "metadata": Metadata::new("https://schemas.getdbt.com/dbt/sources/v3.json", project, engine),
        "results": entries,
        "elapsed_time": elapsed,
    });
    let bytes = serde_json::to_vec_pretty(&file).map_err(std::io::Error::other)?;
    let path = path
        .map(std::path::Path::to_path_buf)
        .unwrap_or_else(|| project.target_path.join("sources.json"));
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    crate::util::write_atomic(&path, &bytes)?;
    Ok(path)
}

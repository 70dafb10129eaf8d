//! Each node's fingerprint: digests of the parts of a node a change can touch, computed from
//! what was written (configs with their Jinja unrendered) and what its render read (macros,
//! vars, environment variables), never from the target, so that the same project on another
//! target (dev, CI, prod) has the same fingerprints.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::manifest::{Manifest, Node, NodeId, ResourceType};
use crate::project::ConfigMap;
use crate::template::Engine;

/// Config keys that say where a node is built: compared as its relation, not its configs.
const RELATION_KEYS: &[&str] = &["database", "schema", "alias", "identifier"];

/// Config keys that change neither what is built nor how (docs are compared where they are
/// stored, as `persisted_descriptions`).
const IGNORED_KEYS: &[&str] = &["docs", "description"];

/// A node's fingerprint. Empty strings stand for "nothing here" (a view has no contract).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// Its own text: a SQL file, a seed's CSV, a generic test's call.
    pub body: String,
    /// Its config as written, but for where it is built.
    pub configs: String,
    /// Where it is built, as configured (`schema`, `alias`, `database` as written, and the
    /// project's `generate_*_name` macros): not as one target renders it.
    pub relation: String,
    /// The descriptions a build stores as comments (`persist_docs`).
    pub persisted_descriptions: String,
    /// Its contract, where one is enforced.
    pub contract: String,
    /// The project and package macros it reaches, by unique id (their checksums are the
    /// manifest's `macros`).
    pub macros: Vec<String>,
    /// The vars its render read: name → digest of the value (empty: not set).
    pub vars: BTreeMap<String, String>,
    /// The environment variables its render read: name → digest of the value (empty: not set).
    pub env_vars: BTreeMap<String, String>,
}

/// SHA-256 of a value's JSON with every object's keys in order, so that the order a file
/// wrote them in (`{relation: true, columns: true}`) does not count.
fn digest(value: &impl Serialize) -> String {
    let json = serde_json::to_value(value).unwrap_or_default();
    let text = serde_json::to_string(&canonical(json)).unwrap_or_default();
    short(text.as_bytes())
}

/// The first 64 bits of SHA-256, in hex: enough to tell a change (a collision is one in
/// 2^64), and a fifth of the size in a manifest of 40,000 nodes.
fn short(bytes: &[u8]) -> String {
    let mut hex = crate::util::sha256_hex(bytes);
    hex.truncate(16);
    hex
}

fn canonical(value: Json) -> Json {
    match value {
        Json::Object(map) => {
            let sorted: BTreeMap<String, Json> =
                map.into_iter().map(|(k, v)| (k, canonical(v))).collect();
            Json::Object(sorted.into_iter().collect())
        }
        Json::Array(items) => Json::Array(items.into_iter().map(canonical).collect()),
        other => other,
    }
}

/// The config as written, without the keys `keep` rejects, in a stable key order.
fn config_part(config: &ConfigMap, keep: impl Fn(&str) -> bool) -> BTreeMap<&str, &Json> {
    config
        .iter()
        .filter(|(key, value)| keep(key) && !value.is_null())
        .map(|(key, value)| (key.as_str(), value))
        .collect()
}

/// The names of the docs blocks a description reads (`{{ doc('name') }}`).
fn doc_names(text: &str) -> Vec<String> {
    if !text.contains("doc(") {
        return Vec::new();
    }
    text.match_indices("doc(")
        .filter_map(|(at, _)| {
            let rest = text[at + 4..].trim_start();
            let quote = rest.chars().next().filter(|c| *c == '\'' || *c == '"')?;
            let body = &rest[1..];
            body.find(quote).map(|end| body[..end].to_string())
        })
        .collect()
}

/// A description with the docs blocks it reads, as stored.
fn described(engine: &Engine, text: &str) -> Json {
    let docs = &engine.shared().docs;
    let blocks: BTreeMap<String, Option<&String>> = doc_names(text)
        .into_iter()
        .map(|name| {
            let block = docs.get(&name);
            (name, block)
        })
        .collect();
    serde_json::json!({"text": text, "docs": blocks})
}

/// The `generate_*_name` macros the project defines, which decide every node's relation.
fn naming_macros(engine: &Engine, manifest: &Manifest) -> Vec<String> {
    let graph = engine.macro_graph();
    let mut ids: Vec<String> = [
        "generate_schema_name",
        "generate_alias_name",
        "generate_database_name",
    ]
    .iter()
    .filter_map(|name| graph.get(&manifest.project_name, name))
    .flat_map(|facts| {
        graph.reached(
            &facts.package,
            &[crate::template::calls::Call::Namespaced(
                facts.package.clone(),
                facts.unique_id.rsplit('.').next().unwrap_or("").to_string(),
            )],
            [],
        )
    })
    .collect();
    ids.sort();
    ids.dedup();
    ids.iter()
        .filter_map(|id| {
            let name = id.rsplit('.').next()?;
            let package = id.split('.').nth(1)?;
            graph
                .get(package, name)
                .map(|m| format!("{id}={}", m.checksum))
        })
        .collect()
}

/// A node as dbt's manifest records it, computed from the project as it stands: what a
/// comparison with a manifest dbt wrote compares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DbtView {
    /// dbt's file checksum: SQL files with their whitespace compacted, seeds stripped.
    pub checksum: String,
    /// The config as written, but for where it is built (as [`Fingerprint::configs`]).
    pub configs: String,
    /// `database`, `schema`, `alias` as written.
    pub relation: String,
    /// A generic test's name and arguments but its model (dbt's `test_metadata`).
    pub test: Option<Json>,
    /// The descriptions a build stores as comments (see [`persisted`]).
    pub descriptions: Json,
    /// An enforced contract's column types (see [`contracted`]).
    pub contract: Json,
}

/// The column types an enforced contract holds a node to (`null` where none is enforced), in
/// one shape for strata's nodes and dbt's manifest entries.
pub fn contracted<'a>(
    contract: Option<&Json>,
    columns: impl Iterator<Item = (&'a str, Option<&'a str>)>,
) -> Json {
    let enforced = contract
        .and_then(|c| c.get("enforced"))
        .and_then(Json::as_bool)
        .unwrap_or(false);
    if !enforced {
        return Json::Null;
    }
    let types: BTreeMap<&str, Option<&str>> = columns.collect();
    serde_json::json!(types)
}

/// The descriptions `persist_docs` stores for a node with this config, description and
/// column descriptions (`null` where it stores none), in one shape for strata's nodes and
/// dbt's manifest entries.
pub fn persisted<'a>(
    persist_docs: Option<&Json>,
    description: &str,
    columns: impl Iterator<Item = (&'a str, &'a str)>,
) -> Json {
    let on = |key: &str| {
        persist_docs
            .and_then(|p| p.get(key))
            .and_then(Json::as_bool)
            .unwrap_or(false)
    };
    if !on("relation") && !on("columns") {
        return Json::Null;
    }
    let columns: BTreeMap<&str, &str> = if on("columns") {
        columns.filter(|(_, d)| !d.is_empty()).collect()
    } else {
        BTreeMap::new()
    };
    serde_json::json!({
        "relation": on("relation").then_some(description),
        "columns": columns,
    })
}

/// The digest of a config's keys but where it is built, as written.
pub fn configs_digest(config: &ConfigMap) -> String {
    digest(&config_part(config, |key| {
        !RELATION_KEYS.contains(&key) && !IGNORED_KEYS.contains(&key)
    }))
}

/// The digest of where a config says a node is built.
pub fn relation_digest(config: &ConfigMap) -> String {
    digest(&config_part(config, |key| RELATION_KEYS.contains(&key)))
}

/// How dbt's manifest would record `node` as the project stands (`root` is the project's
/// folder, for the files dbt checksums whole).
pub fn dbt_view(node: &Node, root: &std::path::Path) -> DbtView {
    let written = node.unrendered_config.as_ref().unwrap_or(&node.config_map);
    let file = || std::fs::read_to_string(root.join(&node.original_file_path)).unwrap_or_default();
    let checksum = match node.resource_type {
        ResourceType::Seed => crate::util::sha256_hex(file().trim().as_bytes()),
        ResourceType::Source | ResourceType::UnitTest => String::new(),
        ResourceType::Test if node.test.as_ref().is_some_and(|t| t.generic) => String::new(),
        _ => {
            let text = file();
            let compact: Vec<&str> = text.split_whitespace().collect();
            crate::util::sha256_hex(compact.join(" ").as_bytes())
        }
    };
    let test = node.test.as_ref().filter(|t| t.generic).map(|t| {
        let kwargs: BTreeMap<&str, &Json> = t
            .kwargs
            .iter()
            .filter(|(k, _)| k.as_str() != "model")
            .map(|(k, v)| (k.as_str(), v))
            .collect();
        serde_json::json!({"name": t.test_name, "namespace": t.namespace, "kwargs": kwargs})
    });
    DbtView {
        checksum,
        configs: configs_digest(written),
        relation: relation_digest(written),
        test,
        descriptions: persisted(
            node.config_map.get("persist_docs"),
            &node.description,
            node.columns
                .values()
                .map(|c| (c.name.as_str(), c.description.as_str())),
        ),
        contract: contracted(
            node.config_map.get("contract"),
            node.columns
                .values()
                .map(|c| (c.name.as_str(), c.data_type.as_deref())),
        ),
    }
}

/// Every node's fingerprint (sources, seeds, models, snapshots, tests, analyses).
pub fn fingerprints(manifest: &Manifest, engine: &Engine) -> BTreeMap<NodeId, Fingerprint> {
    use rayon::prelude::*;
    let naming = naming_macros(engine, manifest);
    let nodes: Vec<&Node> = manifest.nodes.values().collect();
    nodes
        .par_iter()
        .map(|node| (node.unique_id.clone(), of(node, engine, &naming)))
        .collect()
}

/// One node's fingerprint; `naming` is [`naming_macros`].
fn of(node: &Node, engine: &Engine, naming: &[String]) -> Fingerprint {
    let written = node.unrendered_config.as_ref().unwrap_or(&node.config_map);
    let body = match node.resource_type {
        ResourceType::Source => String::new(),
        _ => node.checksum[..node.checksum.len().min(16)].to_string(),
    };
    let configs = digest(&config_part(written, |key| {
        !RELATION_KEYS.contains(&key) && !IGNORED_KEYS.contains(&key)
    }));
    let relation = match node.resource_type {
        ResourceType::Test => String::new(),
        _ => digest(&(
            config_part(written, |key| RELATION_KEYS.contains(&key)),
            naming,
        )),
    };
    let persist = node.config_map.get("persist_docs");
    let on = |key: &str| {
        persist
            .and_then(|p| p.get(key))
            .and_then(Json::as_bool)
            .unwrap_or(false)
    };
    let persisted_descriptions = if on("relation") || on("columns") {
        let relation = on("relation").then(|| described(engine, &node.description));
        let columns: BTreeMap<&str, Json> = if on("columns") {
            node.columns
                .values()
                .map(|c| (c.name.as_str(), described(engine, &c.description)))
                .collect()
        } else {
            BTreeMap::new()
        };
        digest(&(relation, columns))
    } else {
        String::new()
    };
    let enforced = node
        .config_map
        .get("contract")
        .and_then(|c| c.get("enforced"))
        .and_then(Json::as_bool)
        .unwrap_or(false);
    let contract = if enforced {
        let columns: BTreeMap<&str, &Option<String>> = node
            .columns
            .values()
            .map(|c| (c.name.as_str(), &c.data_type))
            .collect();
        digest(&(node.config_map.get("contract"), columns))
    } else {
        String::new()
    };
    let calls = crate::template::calls::calls(&node.raw_sql);
    let macros = engine
        .macro_graph()
        .reached(
            &node.package_name,
            &calls,
            node.inputs
                .macros
                .iter()
                .map(|(template, name)| (template.as_ref(), name.as_ref())),
        )
        .into_iter()
        .collect();
    let vars = node
        .inputs
        .vars
        .iter()
        .map(|(name, value)| {
            let value = value.as_ref().map(digest).unwrap_or_default();
            (name.clone(), value)
        })
        .collect();
    let env_vars = node
        .inputs
        .env_vars
        .iter()
        .map(|(name, value)| {
            let value = value
                .as_ref()
                .map(|v| short(v.as_bytes()))
                .unwrap_or_default();
            (name.clone(), value)
        })
        .collect();
    Fingerprint {
        body,
        configs,
        relation,
        persisted_descriptions,
        contract,
        macros,
        vars,
        env_vars,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_name_the_docs_blocks_they_read() {
        assert_eq!(
            doc_names("{{ doc('orders') }} and {{ doc(\"lines\") }}"),
            ["orders", "lines"]
        );
        assert!(doc_names("no docs here").is_empty());
    }
}

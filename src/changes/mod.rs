//! What changed since a previous run (`--state DIR`): that run's artifacts read back (strata's
//! `manifest.json`, or dbt's, for projects moving from dbt), each node's fingerprint compared,
//! and the previous run's results; what `state:` and `result:` select and what `--defer`
//! resolves to.
//!
//! strata's own manifest carries a fingerprint per node (see [`fingerprint`]), so a
//! comparison is exact: a macro change marks the nodes that reach it, a var change the nodes
//! that read it, and a change of target alone marks nothing. dbt's manifest records less
//! (no vars read, configs rendered where dbt could not keep them unrendered): against it the
//! comparison is dbt's own (checksums, unrendered configs, macros and their text).

pub mod fingerprint;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use crate::graph::selector::{Changes, PreviousRun};
use crate::manifest::{Manifest, NodeId};
use crate::relation::RelationName;
use crate::template::Engine;
use fingerprint::Fingerprint;

/// Why a previous run's artifacts cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ChangesError {
    #[error("no `manifest.json` in `{}`", dir.display())]
    NoManifest { dir: PathBuf },
    #[error("cannot read `{}`: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{}` is not a manifest: {message}", path.display())]
    Invalid {
        path: PathBuf,
        line: Option<usize>,
        message: String,
    },
}

impl ChangesError {
    pub fn to_diagnostic(&self) -> crate::diagnostic::Diagnostic {
        use crate::diagnostic::{Diagnostic, Location};
        match self {
            ChangesError::NoManifest { .. } => Diagnostic::error(self.to_string()).with_hint(
                "point --state (or STRATA_STATE / DBT_STATE) at the target folder of the run to compare against, e.g. the production artifacts your CI downloads",
            ),
            ChangesError::Io { .. } => Diagnostic::error(self.to_string()),
            ChangesError::Invalid { path, line, .. } => Diagnostic::error(self.to_string())
                .at(Location {
                    path: path.clone(),
                    line: *line,
                    column: None,
                })
                .with_hint("give --state the folder of a `manifest.json` written by strata or dbt"),
        }
    }
}

/// Who wrote a previous run's manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writer {
    Strata,
    Dbt,
}

/// One node of a previous run.
#[derive(Debug, Clone)]
pub struct PreviousNode {
    /// Where it was built there (what `--defer` reads).
    pub relation: Option<RelationName>,
    pub resource_type: String,
    /// strata's fingerprint; `None` in dbt's manifest.
    pub fingerprint: Option<Fingerprint>,
    /// dbt's record of the node (its manifest entry), where dbt wrote the manifest.
    pub dbt: Option<Json>,
}

/// A previous run's artifacts.
#[derive(Debug, Clone)]
pub struct Baseline {
    pub dir: PathBuf,
    pub writer: Writer,
    pub nodes: HashMap<NodeId, PreviousNode>,
    /// Macro unique id → checksum of its text.
    pub macros: HashMap<String, String>,
    /// dbt's macros' own macro dependencies (to close a node's over), where dbt wrote it.
    macro_calls: HashMap<String, Vec<String>>,
    /// Each node's status in the run's `run_results.json`, where it is there.
    pub results: Option<BTreeMap<NodeId, String>>,
    /// Each source's newest load in the run's `sources.json`, where it is there.
    pub source_loads: Option<SourceLoads>,
}

/// Each checked source's newest load, as a `sources.json` records it (`None` where the check
/// could not measure it).
pub type SourceLoads = HashMap<NodeId, Option<chrono::DateTime<chrono::Utc>>>;

/// Reads a `sources.json` (strata's or dbt's); `Ok(None)` when there is none.
pub fn read_source_loads(path: &Path) -> Result<Option<SourceLoads>, ChangesError> {
    if !path.is_file() {
        return Ok(None);
    }
    let json = read_json(path)?;
    let loads = json
        .get("results")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| {
            let id = NodeId(r.get("unique_id")?.as_str()?.to_string());
            let load = match r.get("status").and_then(Json::as_str) {
                Some("runtime error") => None,
                _ => r
                    .get("max_loaded_at")
                    .and_then(Json::as_str)
                    .and_then(crate::freshness::parse_instant),
            };
            Some((id, load))
        })
        .collect();
    Ok(Some(loads))
}

/// dbt's `source_status:fresher`: the sources the current check measured later loads of than
/// the previous one did, or that it had not checked; never one whose check failed in either.
pub fn fresher(previous: &SourceLoads, current: &SourceLoads) -> BTreeSet<NodeId> {
    current
        .iter()
        .filter_map(|(id, now)| {
            let now = (*now)?;
            match previous.get(id) {
                None => Some(id.clone()),
                Some(None) => None,
                Some(Some(before)) => (now > *before).then(|| id.clone()),
            }
        })
        .collect()
}

fn read_json(path: &Path) -> Result<Json, ChangesError> {
    let text = std::fs::read_to_string(path).map_err(|source| ChangesError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| ChangesError::Invalid {
        path: path.to_path_buf(),
        line: Some(e.line()),
        message: e.to_string(),
    })
}

/// The id strata gives a node dbt names: dbt's generic tests end in a hash of their
/// arguments (`test.shop.not_null_orders_id.84ef11d8fe`), strata's do not.
fn strata_id(dbt_id: &str) -> String {
    match dbt_id.rsplit_once('.') {
        Some((head, hash))
            if dbt_id.starts_with("test.")
                && head.matches('.').count() >= 2
                && hash.len() == 10
                && hash.chars().all(|c| c.is_ascii_hexdigit()) =>
        {
            head.to_string()
        }
        _ => dbt_id.to_string(),
    }
}

/// A manifest as a comparison reads it; every other field is skipped unread.
#[derive(Debug, serde::Deserialize)]
struct ManifestIn<E> {
    metadata: MetadataIn,
    #[serde(default = "HashMap::new")]
    nodes: HashMap<String, E>,
    #[serde(default = "HashMap::new")]
    sources: HashMap<String, E>,
    #[serde(default = "HashMap::new")]
    unit_tests: HashMap<String, E>,
    #[serde(default)]
    macros: HashMap<String, MacroIn>,
}

#[derive(Debug, serde::Deserialize)]
struct MetadataIn {
    #[serde(default)]
    dbt_schema_version: Option<String>,
}

/// The fields of a manifest entry that say where a node was built (read as plain fields:
/// a flattened struct would make serde buffer every other field of the entry).
trait Placed {
    fn parts(&self) -> [&Option<String>; 5];

    /// `database`, `schema`, and `alias` (or a source's `identifier`, else the name).
    fn relation(&self) -> Option<RelationName> {
        let [database, schema, alias, identifier, name] = self.parts();
        let identifier = alias
            .clone()
            .or_else(|| identifier.clone())
            .or_else(|| name.clone())?;
        Some(RelationName::new(
            database.clone(),
            schema.clone()?,
            identifier,
        ))
    }
}

impl Placed for StrataEntry {
    fn parts(&self) -> [&Option<String>; 5] {
        [
            &self.database,
            &self.schema,
            &self.alias,
            &self.identifier,
            &self.name,
        ]
    }
}

impl Placed for DbtEntry {
    fn parts(&self) -> [&Option<String>; 5] {
        [
            &self.database,
            &self.schema,
            &self.alias,
            &self.identifier,
            &self.name,
        ]
    }
}

#[derive(Debug, serde::Deserialize)]
struct StrataEntry {
    #[serde(default)]
    resource_type: String,
    #[serde(default)]
    database: Option<String>,
    #[serde(default)]
    schema: Option<String>,
    #[serde(default)]
    alias: Option<String>,
    #[serde(default)]
    identifier: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    strata_fingerprint: Option<Fingerprint>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct DbtConfigIn {
    #[serde(default)]
    persist_docs: Option<Json>,
    #[serde(default)]
    contract: Option<Json>,
}

#[derive(Debug, serde::Deserialize)]
struct DbtEntry {
    #[serde(default)]
    resource_type: String,
    #[serde(default)]
    database: Option<String>,
    #[serde(default)]
    schema: Option<String>,
    #[serde(default)]
    alias: Option<String>,
    #[serde(default)]
    identifier: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    checksum: Option<Json>,
    #[serde(default)]
    unrendered_config: Option<Json>,
    #[serde(default)]
    config: DbtConfigIn,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    columns: Option<Json>,
    #[serde(default)]
    test_metadata: Option<Json>,
    #[serde(default)]
    depends_on: Option<Json>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct MacroDependsIn {
    #[serde(default)]
    macros: Vec<String>,
}

#[derive(Debug, serde::Deserialize)]
struct MacroIn {
    #[serde(default)]
    checksum: Option<String>,
    #[serde(default)]
    macro_sql: Option<String>,
    #[serde(default)]
    depends_on: MacroDependsIn,
}

impl Baseline {
    /// Reads `dir/manifest.json` (strata's or dbt's) and, where there, `dir/run_results.json`.
    pub fn read(dir: &Path) -> Result<Baseline, ChangesError> {
        let path = dir.join("manifest.json");
        if !path.is_file() {
            return Err(ChangesError::NoManifest {
                dir: dir.to_path_buf(),
            });
        }
        let text = std::fs::read(&path).map_err(|source| ChangesError::Io {
            path: path.clone(),
            source,
        })?;
        let invalid = |e: serde_json::Error| ChangesError::Invalid {
            path: path.clone(),
            line: Some(e.line()),
            message: e.to_string(),
        };
        // Only what a comparison reads is kept: on 10,000 models the manifest is tens of MB.
        // strata writes its metadata first, so its head says who wrote the file.
        let head = String::from_utf8_lossy(&text[..text.len().min(4096)]);
        let by_strata = head.contains("\"generator\":\"strata\"");
        let (writer, sections, macro_entries) = if by_strata {
            let file: ManifestIn<StrataEntry> = serde_json::from_slice(&text).map_err(invalid)?;
            let sections = [file.nodes, file.sources, file.unit_tests]
                .into_iter()
                .flatten()
                .map(|(id, entry)| {
                    let node = PreviousNode {
                        relation: entry.relation(),
                        resource_type: entry.resource_type,
                        fingerprint: entry.strata_fingerprint,
                        dbt: None,
                    };
                    (id, node)
                })
                .collect::<Vec<_>>();
            (Writer::Strata, sections, file.macros)
        } else {
            let file: ManifestIn<DbtEntry> = serde_json::from_slice(&text).map_err(invalid)?;
            if file.metadata.dbt_schema_version.is_none() {
                return Err(ChangesError::Invalid {
                    path: path.clone(),
                    line: None,
                    message: "it has no `metadata` saying who wrote it".into(),
                });
            }
            let sections = [file.nodes, file.sources, file.unit_tests]
                .into_iter()
                .flatten()
                .map(|(id, entry)| {
                    let node = PreviousNode {
                        relation: entry.relation(),
                        resource_type: entry.resource_type.clone(),
                        fingerprint: None,
                        dbt: Some(serde_json::json!({
                            "resource_type": entry.resource_type,
                            "checksum": entry.checksum,
                            "unrendered_config": entry.unrendered_config,
                            "config": {
                                "persist_docs": entry.config.persist_docs,
                                "contract": entry.config.contract,
                            },
                            "description": entry.description,
                            "columns": entry.columns,
                            "test_metadata": entry.test_metadata,
                            "depends_on": entry.depends_on,
                        })),
                    };
                    (strata_id(&id), node)
                })
                .collect::<Vec<_>>();
            (Writer::Dbt, sections, file.macros)
        };
        let nodes: HashMap<NodeId, PreviousNode> = sections
            .into_iter()
            .map(|(id, node)| (NodeId(id), node))
            .collect();
        let mut macros = HashMap::new();
        let mut macro_calls = HashMap::new();
        for (id, entry) in macro_entries {
            let checksum = match writer {
                Writer::Strata => entry.checksum,
                Writer::Dbt => entry
                    .macro_sql
                    .map(|sql| crate::util::sha256_hex(sql.as_bytes())),
            };
            if let Some(checksum) = checksum {
                macros.insert(id.clone(), checksum);
            }
            macro_calls.insert(id, entry.depends_on.macros);
        }
        let results_path = dir.join("run_results.json");
        let results = if results_path.is_file() {
            let results = read_json(&results_path)?;
            Some(
                results
                    .get("results")
                    .and_then(Json::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|r| {
                        Some((
                            NodeId(r.get("unique_id")?.as_str()?.to_string()),
                            r.get("status")?.as_str()?.to_string(),
                        ))
                    })
                    .collect(),
            )
        } else {
            None
        };
        let source_loads = read_source_loads(&dir.join("sources.json"))?;
        Ok(Baseline {
            dir: dir.to_path_buf(),
            writer,
            nodes,
            macros,
            macro_calls,
            results,
            source_loads,
        })
    }

    /// Where each of its nodes was built (what `--defer` reads).
    pub fn relations(&self) -> HashMap<NodeId, RelationName> {
        self.nodes
            .iter()
            .filter_map(|(id, node)| Some((id.clone(), node.relation.clone()?)))
            .collect()
    }

    /// A dbt node's macros, closed over the macros those call.
    fn dbt_macros(&self, node: &Json) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<String> = node
            .pointer("/depends_on/macros")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
            .filter_map(|m| m.as_str().map(String::from))
            .collect();
        while let Some(next) = stack.pop() {
            if seen.insert(next.clone()) {
                stack.extend(self.macro_calls.get(&next).cloned().unwrap_or_default());
            }
        }
        seen
    }

    /// Compares the project as it stands (in `root`) with this run: which nodes are new, and
    /// what changed in the others.
    pub fn compare(&self, manifest: &Manifest, engine: &Engine, root: &Path) -> PreviousRun {
        let now = fingerprint::fingerprints(manifest, engine);
        let macros_now: HashMap<&str, &str> = engine
            .macro_graph()
            .macros()
            .map(|m| (m.unique_id.as_str(), m.checksum.as_str()))
            .collect();
        let mut new = BTreeSet::new();
        let mut old = BTreeSet::new();
        let mut changed = BTreeMap::new();
        for (id, current) in &now {
            // Generic tests' ids end in a hash of their arguments, which strata and dbt
            // compute differently: against dbt's manifest they are matched without it.
            let key = match self.writer {
                Writer::Dbt => NodeId(strata_id(&id.0)),
                Writer::Strata => id.clone(),
            };
            let Some(previous) = self.nodes.get(&key) else {
                new.insert(id.clone());
                continue;
            };
            old.insert(id.clone());
            let changes = match (&previous.fingerprint, &previous.dbt, manifest.get(id)) {
                (Some(before), _, _) => self.against_strata(before, current, &macros_now),
                (None, Some(entry), Some(node)) => self.against_dbt(
                    entry,
                    &fingerprint::dbt_view(node, root),
                    current,
                    &macros_now,
                ),
                _ => Changes {
                    body: true,
                    ..Changes::default()
                },
            };
            if changes.any() {
                changed.insert(id.clone(), changes);
            }
        }
        PreviousRun {
            new,
            old,
            changed,
            results: self.results.clone(),
            fresher: None,
        }
    }

    /// Whether a macro set reached now differs from before, or any of its macros' text.
    /// Both lists are sorted, as fingerprints keep them.
    fn macros_differ(
        &self,
        before: &[String],
        now: &[String],
        macros_now: &HashMap<&str, &str>,
    ) -> bool {
        before != now
            || now.iter().any(|id| {
                self.macros.get(id).map(String::as_str) != macros_now.get(id.as_str()).copied()
            })
    }

    fn against_strata(
        &self,
        before: &Fingerprint,
        now: &Fingerprint,
        macros_now: &HashMap<&str, &str>,
    ) -> Changes {
        Changes {
            body: before.body != now.body,
            configs: before.configs != now.configs,
            relation: before.relation != now.relation,
            persisted_descriptions: before.persisted_descriptions != now.persisted_descriptions,
            contract: before.contract != now.contract,
            macros: self.macros_differ(&before.macros, &now.macros, macros_now),
            vars: before.vars != now.vars || before.env_vars != now.env_vars,
        }
    }

    /// Against dbt's manifest: its file checksums (whitespace compacted, as dbt does), a
    /// generic test's arguments, unrendered configs, relation configs, the descriptions
    /// `persist_docs` stores, an enforced contract's column types, and the text of every
    /// macro either side reaches. dbt records no vars read, so those are not compared.
    fn against_dbt(
        &self,
        entry: &Json,
        view: &fingerprint::DbtView,
        now: &Fingerprint,
        macros_now: &HashMap<&str, &str>,
    ) -> Changes {
        let checksum = entry
            .pointer("/checksum/checksum")
            .and_then(Json::as_str)
            .unwrap_or_default();
        let body = match &view.test {
            Some(test) => {
                let kwargs: BTreeMap<&str, &Json> = entry
                    .pointer("/test_metadata/kwargs")
                    .and_then(Json::as_object)
                    .into_iter()
                    .flatten()
                    .filter(|(k, _)| k.as_str() != "model")
                    .map(|(k, v)| (k.as_str(), v))
                    .collect();
                let before = serde_json::json!({
                    "name": entry.pointer("/test_metadata/name"),
                    "namespace": entry.pointer("/test_metadata/namespace"),
                    "kwargs": kwargs,
                });
                &before != test
            }
            None => !view.checksum.is_empty() && checksum != view.checksum,
        };
        let unrendered: crate::project::ConfigMap = entry
            .get("unrendered_config")
            .and_then(Json::as_object)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        let is_source = entry.get("resource_type").and_then(Json::as_str) == Some("source");
        // Only the macros of the project and its packages (dbt's own are not compared), by
        // their text: what either side reaches and changed.
        let before: BTreeSet<String> = self
            .dbt_macros(entry)
            .into_iter()
            .filter(|id| macros_now.contains_key(id.as_str()))
            .collect();
        let macros = before
            .iter()
            .map(String::as_str)
            .chain(now.macros.iter().map(String::as_str))
            .any(|id| self.macros.get(id).map(String::as_str) != macros_now.get(id).copied());
        let columns = entry.get("columns").and_then(Json::as_object);
        let descriptions = fingerprint::persisted(
            entry.pointer("/config/persist_docs"),
            entry
                .get("description")
                .and_then(Json::as_str)
                .unwrap_or_default(),
            columns.into_iter().flatten().map(|(name, column)| {
                (
                    name.as_str(),
                    column
                        .get("description")
                        .and_then(Json::as_str)
                        .unwrap_or_default(),
                )
            }),
        );
        let contract = fingerprint::contracted(
            entry.pointer("/config/contract"),
            columns.into_iter().flatten().map(|(name, column)| {
                (
                    name.as_str(),
                    column.get("data_type").and_then(Json::as_str),
                )
            }),
        );
        Changes {
            body,
            contract: contract != view.contract,
            persisted_descriptions: descriptions != view.descriptions,
            configs: !is_source && fingerprint::configs_digest(&unrendered) != view.configs,
            relation: !is_source && fingerprint::relation_digest(&unrendered) != view.relation,
            macros,
            ..Changes::default()
        }
    }
}

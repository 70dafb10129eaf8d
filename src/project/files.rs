//! The shapes of the YAML files a user writes: `project.yml` / `dbt_project.yml` and the schema
//! files beside models (models, sources, seeds, snapshots, macros).
//!
//! These are `*Config`-style types: what the user wrote, deserialized with serde so errors carry
//! YAML line and column. Keys strata does not know land in `extra` and become warnings; keys dbt
//! allows but strata does not act on yet (exposures, metrics, …) are accepted silently.

use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::Value as Json;

/// `project.yml` (strata) or `dbt_project.yml` (dbt): the same keys.
#[derive(Debug, Deserialize, Default)]
pub struct ProjectFile {
    pub name: String,
    #[serde(default)]
    pub version: Option<Json>,
    #[serde(default, rename = "config-version")]
    pub config_version: Option<Json>,
    #[serde(default)]
    pub profile: Option<String>,
    #[serde(default, rename = "model-paths", alias = "source-paths")]
    pub model_paths: Option<Vec<String>>,
    #[serde(default, rename = "seed-paths", alias = "data-paths")]
    pub seed_paths: Option<Vec<String>>,
    #[serde(default, rename = "macro-paths")]
    pub macro_paths: Option<Vec<String>>,
    #[serde(default, rename = "test-paths")]
    pub test_paths: Option<Vec<String>>,
    #[serde(default, rename = "snapshot-paths")]
    pub snapshot_paths: Option<Vec<String>>,
    #[serde(default, rename = "analysis-paths")]
    pub analysis_paths: Option<Vec<String>>,
    #[serde(default, rename = "docs-paths")]
    pub docs_paths: Option<Vec<String>>,
    #[serde(default, rename = "asset-paths")]
    pub asset_paths: Option<Vec<String>>,
    #[serde(default, rename = "target-path")]
    pub target_path: Option<String>,
    #[serde(default, rename = "log-path")]
    pub log_path: Option<String>,
    #[serde(default, rename = "packages-install-path")]
    pub packages_install_path: Option<String>,
    #[serde(default, rename = "clean-targets")]
    pub clean_targets: Option<Vec<String>>,
    #[serde(default, rename = "require-dbt-version")]
    pub require_dbt_version: Option<Json>,
    #[serde(default)]
    pub vars: IndexMap<String, Json>,
    #[serde(default)]
    pub models: Json,
    #[serde(default)]
    pub seeds: Json,
    #[serde(default)]
    pub snapshots: Json,
    #[serde(default)]
    pub data_tests: Json,
    #[serde(default)]
    pub tests: Json,
    #[serde(default)]
    pub sources: Json,
    #[serde(default)]
    pub analyses: Json,
    #[serde(default)]
    pub quoting: Json,
    #[serde(default, rename = "on-run-start")]
    pub on_run_start: Json,
    #[serde(default, rename = "on-run-end")]
    pub on_run_end: Json,
    /// strata's run log in the warehouse (`runlog`).
    #[serde(default, rename = "run-log")]
    pub run_log: Option<Json>,
    /// strata's notifications of a failed run (`alerts`).
    #[serde(default, rename = "on-failure")]
    pub on_failure: Option<Json>,
    #[serde(default)]
    pub dispatch: Json,
    #[serde(default)]
    pub flags: Json,
    #[serde(default, rename = "query-comment")]
    pub query_comment: Json,
    #[serde(default, rename = "dbt-cloud")]
    pub dbt_cloud: Json,
    #[serde(default)]
    pub exposures: Json,
    #[serde(default)]
    pub metrics: Json,
    #[serde(default, rename = "semantic-models")]
    pub semantic_models: Json,
    #[serde(default, rename = "saved-queries")]
    pub saved_queries: Json,
    #[serde(default, rename = "unit_tests")]
    pub unit_tests: Json,
    /// Default target for the inline `targets:` block.
    #[serde(default)]
    pub target: Option<String>,
    /// Inline targets (strata): name → connection settings, as in a profile's `outputs:`.
    #[serde(default)]
    pub targets: Option<IndexMap<String, Json>>,
    #[serde(flatten)]
    pub extra: IndexMap<String, Json>,
}

/// One `schema.yml`-style file.
#[derive(Debug, Deserialize, Default)]
pub struct SchemaFile {
    #[serde(default)]
    pub version: Option<Json>,
    #[serde(default)]
    pub models: Vec<NodeSpec>,
    #[serde(default)]
    pub seeds: Vec<NodeSpec>,
    #[serde(default)]
    pub snapshots: Vec<NodeSpec>,
    #[serde(default)]
    pub analyses: Vec<NodeSpec>,
    #[serde(default)]
    pub sources: Vec<SourceSpec>,
    #[serde(default)]
    pub macros: Vec<MacroSpec>,
    #[serde(default)]
    pub exposures: Json,
    #[serde(default)]
    pub metrics: Json,
    #[serde(default)]
    pub semantic_models: Json,
    #[serde(default)]
    pub saved_queries: Json,
    #[serde(default)]
    pub groups: Json,
    #[serde(default)]
    pub unit_tests: Json,
    #[serde(default)]
    pub data_tests: Json,
    #[serde(flatten)]
    pub extra: IndexMap<String, Json>,
}

/// A model, seed, snapshot or analysis entry.
#[derive(Debug, Deserialize, Default, Clone)]
pub struct NodeSpec {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub config: IndexMap<String, Json>,
    #[serde(default)]
    pub columns: Vec<ColumnSpec>,
    #[serde(default)]
    pub data_tests: Vec<Json>,
    #[serde(default)]
    pub tests: Vec<Json>,
    /// Old-style configs dbt still reads at the entry's top level.
    #[serde(default)]
    pub tags: Option<Json>,
    #[serde(default)]
    pub meta: Option<Json>,
    #[serde(default)]
    pub docs: Option<Json>,
    /// New-style (YAML) snapshots: the relation to snapshot, e.g. `source('shop', 'orders')`.
    #[serde(default)]
    pub relation: Option<String>,
    #[serde(default)]
    pub access: Option<Json>,
    #[serde(default)]
    pub group: Option<Json>,
    #[serde(default)]
    pub constraints: Option<Json>,
    #[serde(default)]
    pub latest_version: Option<Json>,
    #[serde(default)]
    pub versions: Option<Json>,
    #[serde(default)]
    pub deprecation_date: Option<Json>,
    #[serde(flatten)]
    pub extra: IndexMap<String, Json>,
}

impl NodeSpec {
    /// `data_tests:` and the older `tests:` together.
    pub fn all_tests(&self) -> impl Iterator<Item = &Json> {
        self.data_tests.iter().chain(self.tests.iter())
    }
}

/// A column of a model, seed, snapshot or source table.
#[derive(Debug, Deserialize, Default, Clone)]
pub struct ColumnSpec {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub data_type: Option<String>,
    #[serde(default)]
    pub quote: Option<bool>,
    #[serde(default)]
    pub data_tests: Vec<Json>,
    #[serde(default)]
    pub tests: Vec<Json>,
    #[serde(default)]
    pub meta: Option<Json>,
    #[serde(default)]
    pub tags: Option<Json>,
    #[serde(default)]
    pub constraints: Option<Json>,
    #[serde(default)]
    pub config: Option<Json>,
    #[serde(default)]
    pub policy_tags: Option<Json>,
    #[serde(default)]
    pub granularity: Option<Json>,
    #[serde(flatten)]
    pub extra: IndexMap<String, Json>,
}

impl ColumnSpec {
    pub fn all_tests(&self) -> impl Iterator<Item = &Json> {
        self.data_tests.iter().chain(self.tests.iter())
    }
}

/// A `sources:` entry: one schema of raw tables.
#[derive(Debug, Deserialize, Default, Clone)]
pub struct SourceSpec {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub database: Option<String>,
    #[serde(default)]
    pub schema: Option<String>,
    #[serde(default)]
    pub loader: Option<String>,
    #[serde(default)]
    pub loaded_at_field: Option<String>,
    /// dbt 1.10's query giving the newest load time, instead of a column.
    #[serde(default)]
    pub loaded_at_query: Option<String>,
    /// `Some(Null)` where written as `null` (freshness turned off).
    #[serde(default, deserialize_with = "present")]
    pub freshness: Option<Json>,
    #[serde(default)]
    pub meta: Option<Json>,
    #[serde(default)]
    pub tags: Option<Json>,
    #[serde(default)]
    pub config: IndexMap<String, Json>,
    #[serde(default)]
    pub quoting: Option<Json>,
    #[serde(default)]
    pub overrides: Option<String>,
    #[serde(default)]
    pub tables: Vec<SourceTableSpec>,
    #[serde(flatten)]
    pub extra: IndexMap<String, Json>,
}

/// A key that is there, `null` included (`Some(Null)`); a missing key stays `None` by
/// `#[serde(default)]`.
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Json>, D::Error> {
    Json::deserialize(deserializer).map(Some)
}

/// A table of a source.
#[derive(Debug, Deserialize, Default, Clone)]
pub struct SourceTableSpec {
    pub name: String,
    #[serde(default)]
    pub identifier: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub loaded_at_field: Option<String>,
    #[serde(default)]
    pub loaded_at_query: Option<String>,
    /// `Some(Null)` where written as `null`: this table's freshness is not checked.
    #[serde(default, deserialize_with = "present")]
    pub freshness: Option<Json>,
    /// Files in a landing zone instead of a table: `{location: glob, format: parquet|csv, …}`.
    #[serde(default)]
    pub external: Option<Json>,
    #[serde(default)]
    pub columns: Vec<ColumnSpec>,
    #[serde(default)]
    pub data_tests: Vec<Json>,
    #[serde(default)]
    pub tests: Vec<Json>,
    #[serde(default)]
    pub meta: Option<Json>,
    #[serde(default)]
    pub tags: Option<Json>,
    #[serde(default)]
    pub config: IndexMap<String, Json>,
    #[serde(default)]
    pub quoting: Option<Json>,
    #[serde(flatten)]
    pub extra: IndexMap<String, Json>,
}

impl SourceTableSpec {
    pub fn all_tests(&self) -> impl Iterator<Item = &Json> {
        self.data_tests.iter().chain(self.tests.iter())
    }
}

/// A `macros:` entry (documentation only).
#[derive(Debug, Deserialize, Default, Clone)]
pub struct MacroSpec {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub arguments: Option<Json>,
    #[serde(default)]
    pub docs: Option<Json>,
    #[serde(default)]
    pub meta: Option<Json>,
    #[serde(flatten)]
    pub extra: IndexMap<String, Json>,
}

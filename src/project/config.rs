//! Node configuration: merging what users wrote at every level and resolving it into typed settings.
//!
//! Configs arrive as loose maps from three places — the project's `models:`/`seeds:`/… tree keyed
//! by folder, a node's YAML entry, and an in-file `config()` call — and merge in that order with
//! dbt's rules (tags union, `meta` merges, hooks append, everything else overrides). The merged
//! map is kept for `config.get()` in Jinja and `config.<key>:` selectors; [`NodeConfig`] is the
//! typed view the rest of strata acts on.

use indexmap::IndexMap;
use serde_json::Value as Json;

/// A config as written: normalized keys to JSON values.
pub type ConfigMap = IndexMap<String, Json>;

/// Normalizes a config key as dbt does: the `+` prefix goes, `pre-hook` and `pre_hook` are one key.
pub fn normalize_key(key: &str) -> String {
    let key = key.strip_prefix('+').unwrap_or(key);
    match key {
        "pre-hook" => "pre_hook".to_string(),
        "post-hook" => "post_hook".to_string(),
        "data-type" => "data_type".to_string(),
        other => other.to_string(),
    }
}

/// Whether a later value of `key` (normalized) merges into the earlier one (tags, dicts, hooks)
/// rather than replacing it, as [`merge_into`] does it.
pub fn merges(key: &str) -> bool {
    matches!(
        key,
        "tags"
            | "meta"
            | "grants"
            | "docs"
            | "persist_docs"
            | "column_types"
            | "pre_hook"
            | "post_hook"
    )
}

/// Merges `overlay` into `base` with dbt's rules.
pub fn merge_into(base: &mut ConfigMap, overlay: &ConfigMap) {
    for (key, value) in overlay {
        let key = normalize_key(key);
        match key.as_str() {
            "tags" => {
                let mut tags = as_string_list(base.get("tags"));
                for tag in as_string_list(Some(value)) {
                    if !tags.contains(&tag) {
                        tags.push(tag);
                    }
                }
                base.insert(key, Json::from(tags));
            }
            "meta" | "grants" | "docs" | "persist_docs" | "column_types" => {
                match (base.get_mut(&key), value) {
                    (Some(Json::Object(existing)), Json::Object(new)) => {
                        for (k, v) in new {
                            existing.insert(k.clone(), v.clone());
                        }
                    }
                    _ => {
                        base.insert(key, value.clone());
                    }
                }
            }
            "pre_hook" | "post_hook" => {
                let mut hooks = as_list(base.get(&key));
                hooks.extend(as_list(Some(value)));
                base.insert(key, Json::Array(hooks));
            }
            _ => {
                base.insert(key, value.clone());
            }
        }
    }
}

fn as_list(value: Option<&Json>) -> Vec<Json> {
    match value {
        None | Some(Json::Null) => Vec::new(),
        Some(Json::Array(items)) => items.clone(),
        Some(other) => vec![other.clone()],
    }
}

/// A JSON value that is a string or a list of strings, as a list.
pub fn as_string_list(value: Option<&Json>) -> Vec<String> {
    as_list(value)
        .into_iter()
        .filter_map(|v| match v {
            Json::String(s) => Some(s),
            Json::Null => None,
            other => Some(other.to_string()),
        })
        .collect()
}

/// Config keys strata knows, across resource types and adapters. Anything else earns a warning.
pub const KNOWN_KEYS: &[&str] = &[
    // every node
    "enabled",
    "tags",
    "meta",
    "docs",
    "description",
    "group",
    "access",
    "contract",
    "constraints",
    "database",
    "schema",
    "alias",
    "materialized",
    "persist_docs",
    "pre_hook",
    "post_hook",
    "quoting",
    "grants",
    "full_refresh",
    "on_configuration_change",
    "sql_header",
    "event_time",
    "packages",
    "labels",
    // incremental
    "unique_key",
    "incremental_strategy",
    "on_schema_change",
    "partition_by",
    "cluster_by",
    "incremental_predicates",
    "merge_update_columns",
    "merge_exclude_columns",
    "batch_size",
    "lookback",
    "begin",
    "bookmark",
    "commit_time_column",
    "sequence_column",
    "operation_column",
    "delete_value",
    // seeds
    "column_types",
    "delimiter",
    "quote_columns",
    "quote",
    // snapshots
    "strategy",
    "updated_at",
    "check_cols",
    "target_schema",
    "target_database",
    "invalidate_hard_deletes",
    "hard_deletes",
    "snapshot_meta_column_names",
    "dbt_valid_to_current",
    // data tests
    "severity",
    "error_if",
    "warn_if",
    "where",
    "limit",
    "fail_calc",
    "store_failures",
    "store_failures_as",
    // postgres / redshift
    "indexes",
    "unlogged",
    "dist",
    "sort",
    "sort_type",
    "bind",
    "backup",
    "autorefresh",
    // athena
    "external_location",
    "partitioned_by",
    "bucketed_by",
    "bucket_count",
    "format",
    "write_compression",
    "field_delimiter",
    "table_type",
    "table_properties",
    "s3_data_naming",
    "lf_tags_config",
    "force_batch",
    "update_condition",
    "insert_condition",
    "partitions_limit",
    "native_drop",
    "seed_by_insert",
    "ha",
    // trino
    "properties",
    "on_table_exists",
    "views_enabled",
    "view_security",
    // duckdb
    "location",
    "options",
    "plugin",
    "merge_update_condition",
    "merge_insert_condition",
    "merge_update_set_expressions",
    "merge_clauses",
    "merge_on_using_columns",
    "merge_returning_columns",
    // microbatch
    "concurrent_batches",
];

/// Configs dbt and its adapters document that strata accepts but does not act on yet, with
/// whether ignoring them could change the data built (an error then, a warning otherwise) and
/// what to do instead.
pub const NOT_ACTED_ON: &[(&str, bool, &str)] = &[
    (
        "sql_header",
        true,
        "strata does not run SQL headers yet; run the statement in a `pre_hook` instead",
    ),
    (
        "plugin",
        true,
        "strata does not load DuckDB plugins; write the model to the target's database",
    ),
    (
        "field_delimiter",
        true,
        "strata does not write Athena text tables with a custom delimiter; use `format: parquet`",
    ),
    (
        "contract",
        false,
        "strata builds the model without checking its columns against the contract; add data tests on the columns that matter",
    ),
    (
        "constraints",
        false,
        "strata creates no table constraints; add `not_null`, `unique` or `relationships` tests",
    ),
    ("indexes", false, "strata creates no indexes on models yet"),
    ("unlogged", false, "strata creates logged tables"),
    ("autorefresh", false, "strata does not build materialized views yet"),
    ("on_configuration_change", false, "strata does not build materialized views yet"),
    ("cluster_by", false, "clustering is not a setting of strata's warehouses"),
    ("labels", false, "labels are a BigQuery setting"),
    ("lf_tags_config", false, "strata does not set Lake Formation tags yet"),
    ("force_batch", false, "strata batches partitioned writes itself"),
    (
        "update_condition",
        true,
        "strata's merge updates every matched row; write the condition into the model's new rows, or use a custom incremental strategy",
    ),
    (
        "insert_condition",
        true,
        "strata's merge inserts every unmatched row; filter the model's new rows instead",
    ),
    (
        "merge_update_condition",
        true,
        "strata's merge updates every matched row; write the condition into the model's new rows, or use a custom incremental strategy",
    ),
    (
        "merge_insert_condition",
        true,
        "strata's merge inserts every unmatched row; filter the model's new rows instead",
    ),
    (
        "merge_update_set_expressions",
        true,
        "strata's merge sets matched columns to the new rows' values; compute the values in the model, or use a custom incremental strategy",
    ),
    (
        "merge_clauses",
        true,
        "strata writes its own merge clauses; use a custom incremental strategy (`get_incremental_<name>_sql`) for others",
    ),
    (
        "merge_on_using_columns",
        true,
        "strata matches a merge on `unique_key`; set `unique_key` to those columns",
    ),
    (
        "merge_returning_columns",
        false,
        "strata's merge returns no rows",
    ),
    (
        "partitions_limit",
        false,
        "strata writes as many partitions at a time as the warehouse allows (100 on Athena)",
    ),
    (
        "native_drop",
        false,
        "strata drops tables through the warehouse's own DDL and the catalog",
    ),
    (
        "seed_by_insert",
        false,
        "strata loads seeds through S3 as files",
    ),
    (
        "ha",
        false,
        "strata always builds a table aside and swaps it in, so readers never see it half-built",
    ),
    (
        "properties",
        false,
        "strata does not pass Trino table properties yet; the table is stored as the catalog's default",
    ),
    (
        "on_table_exists",
        false,
        "strata always builds a table aside and swaps it in",
    ),
    (
        "views_enabled",
        false,
        "strata builds views as views",
    ),
    (
        "view_security",
        false,
        "strata creates views with the warehouse's default security",
    ),
];

/// Keys of [`NOT_ACTED_ON`] that only an incremental strategy reads: a strategy a project
/// macro writes may act on them itself.
pub const STRATEGY_KEYS: &[&str] = &[
    "update_condition",
    "insert_condition",
    "merge_update_condition",
    "merge_insert_condition",
    "merge_update_set_expressions",
    "merge_clauses",
    "merge_on_using_columns",
    "merge_returning_columns",
];

/// The keys of `map` strata accepts but does not act on (see [`NOT_ACTED_ON`]), skipping
/// values that ask for nothing (`contract: {enforced: false}`, empty lists, null).
pub fn not_acted_on(map: &ConfigMap) -> Vec<(&'static str, bool, &'static str)> {
    NOT_ACTED_ON
        .iter()
        .filter(|(key, _, _)| match map.get(*key) {
            None | Some(Json::Null) | Some(Json::Bool(false)) => false,
            Some(Json::Array(items)) => !items.is_empty(),
            Some(Json::String(s)) => !s.trim().is_empty(),
            Some(Json::Object(o)) if *key == "contract" => {
                o.get("enforced").and_then(Json::as_bool).unwrap_or(false)
            }
            Some(Json::Object(o)) => !o.is_empty(),
            Some(_) => true,
        })
        .copied()
        .collect()
}

/// The closest known config key, for a "did you mean" hint.
pub fn suggest_key(key: &str) -> Option<String> {
    crate::diagnostic::did_you_mean(key, KNOWN_KEYS.iter().copied())
}

/// Config keys whose values are maps themselves, so an un-prefixed mapping under a folder is
/// still a config, not a sub-folder.
const MAP_VALUED_KEYS: &[&str] = &[
    "meta",
    "docs",
    "persist_docs",
    "column_types",
    "grants",
    "contract",
    "partition_by",
    "quoting",
    "table_properties",
    "lf_tags_config",
    "options",
];

/// One level of a project config tree (`models:` in project.yml): configs for every node below
/// this folder, and the sub-folders.
#[derive(Debug, Default, Clone)]
pub struct ConfigTree {
    pub configs: ConfigMap,
    pub children: IndexMap<String, ConfigTree>,
}

impl ConfigTree {
    /// Builds a tree from YAML, reporting keys that are neither folders nor known configs.
    /// `path` is the key path so far, for warnings (`models.shop.staging`).
    pub fn from_yaml(value: &Json, path: &str, unknown: &mut Vec<String>) -> ConfigTree {
        let mut tree = ConfigTree::default();
        let Json::Object(map) = value else {
            return tree;
        };
        for (key, value) in map {
            let child_path = format!("{path}.{key}");
            if let Some(stripped) = key.strip_prefix('+') {
                let normalized = normalize_key(stripped);
                if !KNOWN_KEYS.contains(&normalized.as_str()) {
                    unknown.push(child_path);
                }
                tree.configs.insert(normalized, value.clone());
                continue;
            }
            let normalized = normalize_key(key);
            let is_config = KNOWN_KEYS.contains(&normalized.as_str())
                && (!value.is_object() || MAP_VALUED_KEYS.contains(&normalized.as_str()));
            if is_config {
                tree.configs.insert(normalized, value.clone());
            } else if value.is_object() || value.is_null() {
                tree.children.insert(
                    key.clone(),
                    ConfigTree::from_yaml(value, &child_path, unknown),
                );
            } else {
                unknown.push(child_path);
                tree.configs.insert(normalized, value.clone());
            }
        }
        tree
    }

    /// Applies every level along `fqn` (project, folders…, name) onto `out`, outermost first.
    pub fn apply(&self, fqn: &[String], out: &mut ConfigMap) {
        merge_into(out, &self.configs);
        let mut level = self;
        for part in fqn {
            match level.children.get(part) {
                Some(child) => {
                    merge_into(out, &child.configs);
                    level = child;
                }
                None => break,
            }
        }
    }
}

/// How a node is materialized in the warehouse.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Materialization {
    View,
    Table,
    Incremental,
    Ephemeral,
    Seed,
    Snapshot,
    Test,
    MaterializedView,
    /// A custom materialization from a project macro; strata refuses to run it for now.
    Custom(String),
}

impl Materialization {
    pub fn parse(value: &str) -> Materialization {
        match value {
            "view" => Materialization::View,
            "table" => Materialization::Table,
            "incremental" => Materialization::Incremental,
            "ephemeral" => Materialization::Ephemeral,
            "seed" => Materialization::Seed,
            "snapshot" => Materialization::Snapshot,
            "test" => Materialization::Test,
            "materialized_view" => Materialization::MaterializedView,
            other => Materialization::Custom(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Materialization::View => "view",
            Materialization::Table => "table",
            Materialization::Incremental => "incremental",
            Materialization::Ephemeral => "ephemeral",
            Materialization::Seed => "seed",
            Materialization::Snapshot => "snapshot",
            Materialization::Test => "test",
            Materialization::MaterializedView => "materialized_view",
            Materialization::Custom(name) => name,
        }
    }

    /// Whether the node exists as a relation in the warehouse (ephemerals are inlined).
    pub fn is_relational(&self) -> bool {
        !matches!(self, Materialization::Ephemeral | Materialization::Test)
    }
}

/// Materializations strata builds itself, for "did you mean" on a typo.
pub const BUILTIN_MATERIALIZATIONS: &[&str] = &[
    "view",
    "table",
    "incremental",
    "ephemeral",
    "seed",
    "snapshot",
    "materialized_view",
];

/// How an incremental model writes a new batch.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IncrementalStrategy {
    Append,
    Merge,
    DeleteInsert,
    InsertOverwrite,
    Cdc,
    Microbatch,
    /// dbt's custom strategy: the project's `get_incremental_<name>_sql` macro writes the SQL.
    Custom(String),
}

/// The strategies strata writes itself, for "did you mean" on a typo.
pub const BUILTIN_STRATEGIES: &[&str] = &[
    "append",
    "merge",
    "delete+insert",
    "insert_overwrite",
    "cdc",
    "microbatch",
];

impl IncrementalStrategy {
    pub fn parse(value: &str) -> IncrementalStrategy {
        match value {
            "append" => IncrementalStrategy::Append,
            "merge" => IncrementalStrategy::Merge,
            "delete+insert" | "delete_insert" => IncrementalStrategy::DeleteInsert,
            "insert_overwrite" => IncrementalStrategy::InsertOverwrite,
            "cdc" => IncrementalStrategy::Cdc,
            "microbatch" => IncrementalStrategy::Microbatch,
            other => IncrementalStrategy::Custom(other.to_string()),
        }
    }

    /// The strategy as dbt spells it.
    pub fn as_str(&self) -> &str {
        match self {
            IncrementalStrategy::Custom(name) => name,
            IncrementalStrategy::Append => "append",
            IncrementalStrategy::Merge => "merge",
            IncrementalStrategy::DeleteInsert => "delete+insert",
            IncrementalStrategy::InsertOverwrite => "insert_overwrite",
            IncrementalStrategy::Cdc => "cdc",
            IncrementalStrategy::Microbatch => "microbatch",
        }
    }
}

/// What an incremental model does when its columns change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnSchemaChange {
    #[default]
    Ignore,
    Fail,
    AppendNewColumns,
    SyncAllColumns,
}

impl OnSchemaChange {
    pub fn parse(value: &str) -> Option<OnSchemaChange> {
        Some(match value {
            "ignore" => OnSchemaChange::Ignore,
            "fail" => OnSchemaChange::Fail,
            "append_new_columns" => OnSchemaChange::AppendNewColumns,
            "sync_all_columns" => OnSchemaChange::SyncAllColumns,
            _ => return None,
        })
    }
}

/// What an incremental model remembers between runs so that it reads only new data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Bookmark {
    /// The landing files of the external sources it reads (like Glue job bookmarks).
    Files,
}

/// Severity of a data test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TestSeverity {
    #[default]
    Error,
    Warn,
}

/// The typed, resolved configuration of a node.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NodeConfig {
    pub enabled: bool,
    pub materialized: Materialization,
    pub schema: Option<String>,
    pub database: Option<String>,
    pub alias: Option<String>,
    pub tags: Vec<String>,
    pub unique_key: Vec<String>,
    pub incremental_strategy: Option<IncrementalStrategy>,
    pub on_schema_change: OnSchemaChange,
    pub full_refresh: Option<bool>,
    pub pre_hook: Vec<String>,
    pub post_hook: Vec<String>,
    pub severity: TestSeverity,
    pub bookmark: Option<Bookmark>,
}

/// A config value that does not fit its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigValueError {
    pub key: String,
    pub message: String,
    pub hint: Option<String>,
}

impl NodeConfig {
    /// Resolves a merged map into typed settings; `default_materialization` depends on the
    /// resource type (models are views, seeds are seeds, tests are tests).
    pub fn resolve(
        map: &ConfigMap,
        default_materialization: Materialization,
    ) -> Result<NodeConfig, ConfigValueError> {
        let string = |key: &str| -> Result<Option<String>, ConfigValueError> {
            match map.get(key) {
                None | Some(Json::Null) => Ok(None),
                Some(Json::String(s)) => Ok(Some(s.clone())),
                Some(Json::Number(n)) => Ok(Some(n.to_string())),
                Some(other) => Err(ConfigValueError {
                    key: key.to_string(),
                    message: format!("`{key}` must be a string, found `{other}`"),
                    hint: None,
                }),
            }
        };
        let enabled = match map.get("enabled") {
            None | Some(Json::Null) => true,
            Some(Json::Bool(b)) => *b,
            Some(Json::String(s)) if s.eq_ignore_ascii_case("true") => true,
            Some(Json::String(s)) if s.eq_ignore_ascii_case("false") => false,
            Some(other) => {
                return Err(ConfigValueError {
                    key: "enabled".into(),
                    message: format!("`enabled` must be true or false, found `{other}`"),
                    hint: None,
                })
            }
        };
        let materialized = match string("materialized")? {
            None => default_materialization,
            Some(name) => Materialization::parse(&name),
        };
        // A name strata does not write itself is dbt's custom strategy; the run checks that
        // its macro exists (and suggests a built-in one for a typo).
        let incremental_strategy =
            string("incremental_strategy")?.map(|name| IncrementalStrategy::parse(&name));
        let on_schema_change = match string("on_schema_change")? {
            None => OnSchemaChange::Ignore,
            Some(name) => OnSchemaChange::parse(&name).ok_or_else(|| ConfigValueError {
                key: "on_schema_change".into(),
                message: format!("unknown on_schema_change `{name}`"),
                hint: Some("use one of ignore, fail, append_new_columns, sync_all_columns".into()),
            })?,
        };
        let severity = match string("severity")? {
            None => TestSeverity::Error,
            Some(s) if s.eq_ignore_ascii_case("error") => TestSeverity::Error,
            Some(s) if s.eq_ignore_ascii_case("warn") => TestSeverity::Warn,
            Some(s) => {
                return Err(ConfigValueError {
                    key: "severity".into(),
                    message: format!("unknown severity `{s}`"),
                    hint: Some("use `error` or `warn`".into()),
                })
            }
        };
        let bookmark = match string("bookmark")? {
            None => None,
            Some(kind) if kind == "files" => Some(Bookmark::Files),
            Some(kind) => return Err(ConfigValueError {
                key: "bookmark".into(),
                message: format!("unknown bookmark `{kind}`"),
                hint: Some(
                    "use `bookmark: files` to read only the landing files a model has not read yet"
                        .into(),
                ),
            }),
        };
        if bookmark.is_some() && materialized != Materialization::Incremental {
            return Err(ConfigValueError {
                key: "bookmark".into(),
                message: format!(
                    "`bookmark: files` needs `materialized: incremental`, found `{}`",
                    materialized.as_str()
                ),
                hint: Some(
                    "only an incremental model keeps what it read before; make the model incremental or drop the bookmark"
                        .into(),
                ),
            });
        }
        let full_refresh = match map.get("full_refresh") {
            Some(Json::Bool(b)) => Some(*b),
            _ => None,
        };
        let hooks = |key: &str| -> Vec<String> {
            as_list(map.get(key))
                .into_iter()
                .filter_map(|hook| match hook {
                    Json::String(sql) => Some(sql),
                    Json::Object(obj) => obj.get("sql").and_then(|s| s.as_str()).map(String::from),
                    _ => None,
                })
                .collect()
        };
        Ok(NodeConfig {
            enabled,
            materialized,
            schema: string("schema")?,
            database: string("database")?,
            alias: string("alias")?,
            tags: as_string_list(map.get("tags")),
            unique_key: as_string_list(map.get("unique_key")),
            incremental_strategy,
            on_schema_change,
            full_refresh,
            pre_hook: hooks("pre_hook"),
            post_hook: hooks("post_hook"),
            severity,
            bookmark,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(value: Json) -> ConfigMap {
        value
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    #[test]
    fn merges_names_the_keys_merge_into_does_not_replace() {
        let keys = [
            "tags",
            "meta",
            "grants",
            "docs",
            "persist_docs",
            "column_types",
            "pre_hook",
            "post_hook",
            "materialized",
            "schema",
            "alias",
            "unique_key",
            "enabled",
        ];
        for key in keys {
            let (first, second) = if key == "tags" || key.ends_with("hook") {
                (serde_json::json!(["a"]), serde_json::json!(["b"]))
            } else {
                (serde_json::json!({"a": 1}), serde_json::json!({"b": 2}))
            };
            let mut base = ConfigMap::new();
            base.insert(key.to_string(), first);
            let mut overlay = ConfigMap::new();
            overlay.insert(key.to_string(), second.clone());
            merge_into(&mut base, &overlay);
            assert_eq!(merges(key), base[key] != second, "`{key}`");
        }
    }

    #[test]
    fn tags_union_meta_merges_hooks_append_others_override() {
        let mut base =
            map(json!({"tags": ["a"], "meta": {"x": 1}, "pre_hook": "h1", "materialized": "view"}));
        merge_into(
            &mut base,
            &map(
                json!({"+tags": "b", "meta": {"y": 2}, "pre-hook": ["h2"], "materialized": "table"}),
            ),
        );
        assert_eq!(base["tags"], json!(["a", "b"]));
        assert_eq!(base["meta"], json!({"x": 1, "y": 2}));
        assert_eq!(base["pre_hook"], json!(["h1", "h2"]));
        assert_eq!(base["materialized"], json!("table"));
    }

    #[test]
    fn tree_distinguishes_folders_from_configs_and_reports_unknown_keys() {
        let mut unknown = Vec::new();
        let tree = ConfigTree::from_yaml(
            &json!({"shop": {"+materialized": "table", "staging": {"materialized": "view", "+matrialized": "x"}}}),
            "models",
            &mut unknown,
        );
        assert_eq!(
            unknown,
            vec!["models.shop.staging.+matrialized".to_string()]
        );
        let mut out = ConfigMap::new();
        tree.apply(&["shop".into(), "staging".into(), "stg_a".into()], &mut out);
        assert_eq!(out["materialized"], json!("view"));
        let mut out = ConfigMap::new();
        tree.apply(&["shop".into(), "gold".into(), "dim".into()], &mut out);
        assert_eq!(out["materialized"], json!("table"));
    }
}

//! Reading a model's config values as the relation properties warehouses take (`dist`,
//! `table_type`, `partitioned_by`, …): text, booleans and column lists, each wrong shape an
//! error naming the key. Shared by the flavours that have properties.

use serde_json::Value as Json;

use super::PropertyError;
use crate::project::ConfigMap;

/// A text value, trimmed.
pub fn text(config: &ConfigMap, key: &str) -> Result<Option<String>, PropertyError> {
    match config.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) => Ok(Some(s.trim().to_string())),
        Some(other) => Err(PropertyError::new(
            key,
            format!("expected text, found `{other}`"),
        )),
    }
}

/// `true`/`false`, as YAML or as text.
pub fn boolean(config: &ConfigMap, key: &str) -> Result<Option<bool>, PropertyError> {
    match config.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::Bool(b)) => Ok(Some(*b)),
        Some(Json::String(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(Json::String(s)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(other) => Err(PropertyError::new(
            key,
            format!("expected true or false, found `{other}`"),
        )),
    }
}

/// A column or a list of columns (`sort: col` or `sort: [a, b]`).
pub fn columns(config: &ConfigMap, key: &str) -> Result<Vec<String>, PropertyError> {
    match config.get(key) {
        None | Some(Json::Null) => Ok(Vec::new()),
        Some(Json::String(s)) => Ok(vec![s.trim().to_string()]),
        Some(Json::Array(items)) => items
            .iter()
            .map(|item| match item {
                Json::String(s) => Ok(s.trim().to_string()),
                other => Err(PropertyError::new(
                    key,
                    format!("expected column names, found `{other}`"),
                )),
            })
            .collect(),
        Some(other) => Err(PropertyError::new(
            key,
            format!("expected a column or a list of columns, found `{other}`"),
        )),
    }
}

//! Source freshness: each source table's criteria (`freshness:` with `warn_after`,
//! `error_after` and `filter`, merged from the project, the source and the table as dbt merges
//! them), how its newest load is measured (`loaded_at_field` or `loaded_at_query` in the
//! warehouse, or the newest landing file of an external source), and the status that gives.
//! `strata source freshness` and `build --skip-stale-sources` run the checks; `sources.json`
//! (the artifacts room) records them.

use std::path::Path;
use std::time::Instant;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use futures::StreamExt;
use serde_json::Value as Json;

use crate::adapter::{Adapter, Cell};
use crate::diagnostic::Diagnostic;
use crate::manifest::{Manifest, Node, NodeId};

/// A unit of `warn_after` / `error_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Minute,
    Hour,
    Day,
}

impl Period {
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Minute => "minute",
            Period::Hour => "hour",
            Period::Day => "day",
        }
    }

    fn seconds(self) -> u64 {
        match self {
            Period::Minute => 60,
            Period::Hour => 3600,
            Period::Day => 86_400,
        }
    }
}

/// `{count: 12, period: hour}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threshold {
    pub count: u64,
    pub period: Period,
}

impl Threshold {
    pub fn seconds(self) -> f64 {
        (self.count * self.period.seconds()) as f64
    }

    /// As people say it: `4 hours`.
    pub fn describe(self) -> String {
        let unit = self.period.as_str();
        if self.count == 1 {
            format!("1 {unit}")
        } else {
            format!("{} {unit}s", self.count)
        }
    }
}

/// A source table's freshness criteria.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Criteria {
    pub warn_after: Option<Threshold>,
    pub error_after: Option<Threshold>,
    /// A `where` condition limiting the rows whose newest load counts.
    pub filter: Option<String>,
}

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pass,
    Warn,
    Error,
    /// The newest load could not be measured (a failing query, no rows, no files).
    RuntimeError,
}

impl Status {
    /// As `sources.json` writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Error => "error",
            Status::RuntimeError => "runtime error",
        }
    }
}

impl Criteria {
    /// Reads a merged `freshness:` block; `Ok(None)` when it sets no threshold (nothing to
    /// check). Errors say what is wrong with which key.
    pub fn from_json(value: &Json) -> Result<Option<Criteria>, String> {
        let Json::Object(map) = value else {
            return match value {
                Json::Null => Ok(None),
                other => Err(format!(
                    "`freshness` must be a mapping with `warn_after` and/or `error_after`, not `{other}`"
                )),
            };
        };
        for key in map.keys() {
            if !["warn_after", "error_after", "filter"].contains(&key.as_str()) {
                return Err(format!(
                    "unknown key `{key}` in `freshness`{}",
                    crate::diagnostic::did_you_mean(
                        key,
                        ["warn_after", "error_after", "filter"].into_iter()
                    )
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
                ));
            }
        }
        let threshold = |key: &str| -> Result<Option<Threshold>, String> {
            let Some(value) = map.get(key).filter(|v| !v.is_null()) else {
                return Ok(None);
            };
            let count = match value.get("count") {
                None | Some(Json::Null) => return Ok(None),
                Some(Json::Number(n)) => n.as_u64().filter(|c| *c > 0).ok_or_else(|| {
                    format!("`freshness.{key}.count` must be a whole number above 0, not {n}")
                })?,
                Some(other) => {
                    return Err(format!(
                        "`freshness.{key}.count` must be a whole number, not `{other}`"
                    ))
                }
            };
            let period = match value.get("period").and_then(Json::as_str) {
                Some("minute") => Period::Minute,
                Some("hour") => Period::Hour,
                Some("day") => Period::Day,
                Some(other) => {
                    return Err(format!(
                        "`freshness.{key}.period` is `{other}`: use minute, hour or day"
                    ))
                }
                None => {
                    return Err(format!(
                        "`freshness.{key}` needs a `period` (minute, hour or day) beside its count"
                    ))
                }
            };
            Ok(Some(Threshold { count, period }))
        };
        let criteria = Criteria {
            warn_after: threshold("warn_after")?,
            error_after: threshold("error_after")?,
            filter: map
                .get("filter")
                .and_then(Json::as_str)
                .map(str::trim)
                .filter(|f| !f.is_empty())
                .map(str::to_string),
        };
        if let (Some(warn), Some(error)) = (criteria.warn_after, criteria.error_after) {
            if warn.seconds() > error.seconds() {
                return Err(format!(
                    "`freshness.warn_after` ({}) is longer than `error_after` ({}): a source would be an error before it warns",
                    warn.describe(),
                    error.describe()
                ));
            }
        }
        Ok((criteria.warn_after.is_some() || criteria.error_after.is_some()).then_some(criteria))
    }

    /// The status an age in seconds earns: past `error_after` is an error, past `warn_after`
    /// a warning.
    pub fn status(&self, age: f64) -> Status {
        if self.error_after.is_some_and(|t| age > t.seconds()) {
            Status::Error
        } else if self.warn_after.is_some_and(|t| age > t.seconds()) {
            Status::Warn
        } else {
            Status::Pass
        }
    }
}

/// dbt's merge of `freshness:` blocks, from the broadest (the project's `sources:` config) to
/// the narrowest (the table's): a narrower block's keys replace the broader's, one level into
/// `warn_after` and `error_after`; a block written as `null` turns freshness off, until a
/// narrower one sets it again.
pub fn merge(levels: &[Option<&Json>]) -> Option<Json> {
    let mut merged: Option<serde_json::Map<String, Json>> = None;
    for level in levels.iter().flatten() {
        match level {
            Json::Null => merged = None,
            Json::Object(map) => {
                let into = merged.get_or_insert_with(serde_json::Map::new);
                for (key, value) in map {
                    match (into.get_mut(key), value) {
                        (Some(Json::Object(old)), Json::Object(new)) => {
                            for (k, v) in new {
                                old.insert(k.clone(), v.clone());
                            }
                        }
                        _ => {
                            into.insert(key.clone(), value.clone());
                        }
                    }
                }
            }
            // Not a mapping: kept as written, so reading it reports the mistake.
            other => return Some((*other).clone()),
        }
    }
    merged.map(Json::Object)
}

/// How a source's newest load is measured.
#[derive(Debug, Clone)]
pub enum Measure {
    /// A query (compiled SQL) returning `max_loaded_at` and `snapshotted_at` as text.
    Query(String),
    /// The newest modification time of the landing files matching a local location.
    Files(String),
}

/// One source table to check.
#[derive(Debug, Clone)]
pub struct Check {
    pub unique_id: NodeId,
    /// `source_name.table_name`, as lines name it.
    pub name: String,
    pub criteria: Criteria,
    pub measure: Measure,
}

/// A check's outcome.
#[derive(Debug, Clone)]
pub struct Checked {
    pub unique_id: NodeId,
    pub name: String,
    pub criteria: Criteria,
    pub status: Status,
    pub max_loaded_at: Option<DateTime<Utc>>,
    pub snapshotted_at: Option<DateTime<Utc>>,
    /// Seconds between the newest load and the check.
    pub age: Option<f64>,
    /// Why the load time could not be measured (runtime errors).
    pub error: Option<String>,
    pub started_at: DateTime<Utc>,
    pub completed_at: DateTime<Utc>,
    pub execution_time: f64,
}

impl Checked {
    /// How the check reads in a log line: `3.0 hours old (warn after 2 hours)`.
    pub fn summary(&self) -> String {
        match (&self.error, self.age) {
            (Some(error), _) => error.clone(),
            (None, Some(age)) => {
                let limits: Vec<String> = [
                    ("warn after", self.criteria.warn_after),
                    ("error after", self.criteria.error_after),
                ]
                .into_iter()
                .filter_map(|(what, t)| Some(format!("{what} {}", t?.describe())))
                .collect();
                format!("{} old ({})", describe_age(age), limits.join(", "))
            }
            (None, None) => String::new(),
        }
    }
}

/// An age as people say it: `45 s`, `12.5 minutes`, `3.0 hours`, `2.1 days`.
pub fn describe_age(seconds: f64) -> String {
    if seconds < 60.0 {
        format!("{seconds:.0} s")
    } else if seconds < 3600.0 {
        format!("{:.1} minutes", seconds / 60.0)
    } else if seconds < 86_400.0 {
        format!("{:.1} hours", seconds / 3600.0)
    } else {
        format!("{:.1} days", seconds / 86_400.0)
    }
}

/// A source table's criteria, from its merged config; `Ok(None)` when it has none.
pub fn criteria_of(node: &Node) -> Result<Option<Criteria>, String> {
    match node.source.as_ref().and_then(|s| s.freshness.as_ref()) {
        Some(value) => Criteria::from_json(value),
        None => Ok(None),
    }
}

/// The checks of the selected sources that have freshness criteria, each with how it is
/// measured; `render` compiles a query's Jinja (`source()`, macros in `filter`). Sources
/// with criteria and no way to measure them are warnings; unusable criteria are errors.
pub fn plan(
    manifest: &Manifest,
    selected: &[NodeId],
    flavour: &dyn crate::adapter::Flavour,
    render: &dyn Fn(&str) -> Result<String, Diagnostic>,
) -> (Vec<Check>, Vec<Diagnostic>) {
    let mut checks = Vec::new();
    let mut diagnostics = Vec::new();
    for id in selected {
        let Some(node) = manifest.get(id) else {
            continue;
        };
        let Some(source) = &node.source else {
            continue;
        };
        let name = format!("{}.{}", source.source_name, source.table_name);
        let at = || crate::diagnostic::Location::file(node.original_file_path.clone());
        let criteria = match criteria_of(node) {
            Ok(Some(criteria)) => criteria,
            Ok(None) => continue,
            Err(message) => {
                diagnostics.push(
                    Diagnostic::error(format!("source `{name}`: {message}"))
                        .at(at())
                        .with_hint("e.g. `freshness: {warn_after: {count: 12, period: hour}, error_after: {count: 24, period: hour}}`"),
                );
                continue;
            }
        };
        let filter = criteria
            .filter
            .as_ref()
            .map(|f| format!("\nwhere {f}"))
            .unwrap_or_default();
        let measure = if let Some(query) = &source.loaded_at_query {
            let sql = format!(
                "select {}",
                flavour.freshness_columns(&format!("({})", query.trim().trim_end_matches(';')))
            );
            Measure::Query(sql)
        } else if let Some(field) = &source.loaded_at_field {
            let sql = format!(
                "select {}\nfrom {{{{ source('{}', '{}') }}}}{filter}",
                flavour.freshness_columns(&format!("max({field})")),
                source.source_name,
                source.table_name
            );
            Measure::Query(sql)
        } else if let Some(location) = source
            .external
            .as_ref()
            .and_then(|e| e.get("location"))
            .and_then(Json::as_str)
            .filter(|l| !l.contains("://"))
        {
            Measure::Files(location.to_string())
        } else {
            diagnostics.push(
                Diagnostic::warning(format!(
                    "source `{name}` has `freshness` but nothing to measure it by: it is not checked"
                ))
                .at(at())
                .with_hint("give the table a `loaded_at_field` (the column holding when each row was loaded) or a `loaded_at_query`"),
            );
            continue;
        };
        let measure = match measure {
            Measure::Query(sql) => match render(&sql) {
                Ok(rendered) => Measure::Query(rendered),
                Err(diagnostic) => {
                    diagnostics.push(diagnostic.at(at()));
                    continue;
                }
            },
            files => files,
        };
        checks.push(Check {
            unique_id: id.clone(),
            name,
            criteria,
            measure,
        });
    }
    (checks, diagnostics)
}

/// Runs the checks, `threads` at a time, calling `done` as each finishes; results in the
/// order the checks were given.
pub async fn run(
    adapter: &dyn Adapter,
    root: &Path,
    checks: &[Check],
    threads: usize,
    done: &(dyn Fn(usize, &Checked) + Sync),
) -> Vec<Checked> {
    let mut results: Vec<(usize, Checked)> = futures::stream::iter(checks.iter().enumerate())
        .map(|(i, check)| async move {
            let checked = check_one(adapter, root, check).await;
            done(i, &checked);
            (i, checked)
        })
        .buffer_unordered(threads.max(1))
        .collect()
        .await;
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, c)| c).collect()
}

async fn check_one(adapter: &dyn Adapter, root: &Path, check: &Check) -> Checked {
    let started_at = Utc::now();
    let clock = Instant::now();
    let measured = match &check.measure {
        Measure::Query(sql) => measure_query(adapter, sql).await,
        Measure::Files(location) => measure_files(root, location),
    };
    let (status, max_loaded_at, snapshotted_at, age, error) = match measured {
        Ok((newest, now)) => {
            let age = (now - newest).num_milliseconds() as f64 / 1000.0;
            (
                check.criteria.status(age),
                Some(newest),
                Some(now),
                Some(age),
                None,
            )
        }
        Err(message) => (Status::RuntimeError, None, None, None, Some(message)),
    };
    Checked {
        unique_id: check.unique_id.clone(),
        name: check.name.clone(),
        criteria: check.criteria.clone(),
        status,
        max_loaded_at,
        snapshotted_at,
        age,
        error,
        started_at,
        completed_at: Utc::now(),
        execution_time: clock.elapsed().as_secs_f64(),
    }
}

async fn measure_query(
    adapter: &dyn Adapter,
    sql: &str,
) -> Result<(DateTime<Utc>, DateTime<Utc>), String> {
    let table = adapter.query(sql).await.map_err(|e| e.to_string())?;
    let row = table
        .rows
        .first()
        .ok_or_else(|| "the freshness query returned no row".to_string())?;
    let text = |i: usize| match row.get(i) {
        Some(Cell::Null) | None => None,
        Some(cell) => Some(cell.to_string()),
    };
    let newest = text(0).ok_or_else(|| {
        "no rows to measure: the newest load time is NULL (an empty table, or a filter that keeps nothing)".to_string()
    })?;
    let now = text(1).ok_or_else(|| "the warehouse returned no current time".to_string())?;
    let parse = |value: &str| {
        parse_instant(value).ok_or_else(|| format!("`{value}` is not a timestamp strata can read"))
    };
    Ok((parse(&newest)?, parse(&now)?))
}

fn measure_files(root: &Path, location: &str) -> Result<(DateTime<Utc>, DateTime<Utc>), String> {
    let files = crate::landing::list_files(root, location).map_err(|e| e.to_string())?;
    let mut newest: Option<DateTime<Utc>> = None;
    for file in &files {
        let path = if Path::new(&file.path).is_absolute() {
            Path::new(&file.path).to_path_buf()
        } else {
            root.join(&file.path)
        };
        let modified = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .map_err(|e| format!("cannot read when `{}` was written: {e}", file.path))?;
        let modified = DateTime::<Utc>::from(modified);
        newest = Some(newest.map_or(modified, |n| n.max(modified)));
    }
    let newest = newest.ok_or_else(|| format!("no landing files match `{location}`"))?;
    Ok((newest, Utc::now()))
}

/// A timestamp as warehouses print one: with an offset (`+00`, `+05:30`, `Z`, ` UTC`) or
/// without (taken as UTC, as dbt takes it), with or without fractions, or a date.
pub fn parse_instant(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    let text = text.strip_suffix(" UTC").unwrap_or(text);
    let text = text.replacen('T', " ", 1);
    let text = match text.strip_suffix('Z') {
        Some(rest) => format!("{rest}+00:00"),
        None => text,
    };
    if let Ok(with_offset) = DateTime::parse_from_str(&text, "%Y-%m-%d %H:%M:%S%.f%#z") {
        return Some(with_offset.with_timezone(&Utc));
    }
    if let Ok(naive) = NaiveDateTime::parse_from_str(&text, "%Y-%m-%d %H:%M:%S%.f") {
        return Some(naive.and_utc());
    }
    NaiveDate::parse_from_str(&text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn timestamps_are_read_as_warehouses_print_them() {
        let at = |t: &str| parse_instant(t).map(|d| d.to_rfc3339());
        let utc = Some("2024-07-01T10:00:00+00:00".to_string());
        assert_eq!(at("2024-07-01 10:00:00"), utc);
        assert_eq!(at("2024-07-01 10:00:00+00"), utc);
        assert_eq!(at("2024-07-01 12:00:00+02"), utc);
        assert_eq!(at("2024-07-01T10:00:00Z"), utc);
        assert_eq!(at("2024-07-01T15:30:00+05:30"), utc);
        assert_eq!(at("2024-07-01 10:00:00 UTC"), utc);
        assert_eq!(
            at("2024-07-01 10:00:00.250"),
            Some("2024-07-01T10:00:00.250+00:00".into())
        );
        assert_eq!(at("2024-07-01"), Some("2024-07-01T00:00:00+00:00".into()));
        assert_eq!(at("yesterday"), None);
    }

    #[test]
    fn narrower_blocks_replace_keys_one_level_deep_and_null_turns_freshness_off() {
        let source = json!({"warn_after": {"count": 12, "period": "hour"}, "error_after": {"count": 24, "period": "hour"}});
        let table = json!({"warn_after": {"count": 2}});
        let merged = merge(&[Some(&source), Some(&table)]).expect("merged");
        let criteria = Criteria::from_json(&merged).unwrap().unwrap();
        assert_eq!(
            criteria.warn_after,
            Some(Threshold {
                count: 2,
                period: Period::Hour
            })
        );
        assert_eq!(criteria.error_after.map(|t| t.count), Some(24));
        assert_eq!(merge(&[Some(&source), Some(&Json::Null)]), None);
        assert_eq!(merge(&[Some(&source), None]), Some(source.clone()));
        assert_eq!(merge(&[None, None]), None);
    }

    #[test]
    fn ages_past_error_after_are_errors_and_past_warn_after_warnings() {
        let criteria = Criteria::from_json(&json!({
            "warn_after": {"count": 2, "period": "hour"},
            "error_after": {"count": 4, "period": "hour"}
        }))
        .unwrap()
        .unwrap();
        assert_eq!(criteria.status(3.0 * 3600.0), Status::Warn);
        assert_eq!(criteria.status(3600.0), Status::Pass);
        assert_eq!(criteria.status(5.0 * 3600.0), Status::Error);
    }

    #[test]
    fn unusable_criteria_say_which_key_is_wrong() {
        let err = |v: Json| Criteria::from_json(&v).unwrap_err();
        assert!(err(json!({"warn_after": {"count": 2, "period": "hours"}}))
            .contains("use minute, hour or day"));
        assert!(err(json!({"warn_afer": {"count": 2, "period": "hour"}}))
            .contains("did you mean `warn_after`"));
        assert!(err(json!({"warn_after": {"count": 5, "period": "day"}, "error_after": {"count": 1, "period": "day"}})).contains("longer than"));
        assert!(err(json!({"error_after": {"count": 2}})).contains("needs a `period`"));
        // No threshold: nothing to check.
        assert_eq!(
            Criteria::from_json(&json!({"filter": "x > 1"})).unwrap(),
            None
        );
    }
}

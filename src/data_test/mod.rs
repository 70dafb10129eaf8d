//! Data tests at run time: turns a compiled test query (it selects the rows that fail) into a
//! verdict. It counts failures with `fail_calc`, applies `severity`, `warn_if` / `error_if` and
//! `limit`, keeps the failing rows in an audit table when `store_failures` is on, and fetches a
//! few sample rows for the report. Query text comes from `compile`; this room renders no Jinja
//! and never decides what runs when (that is the scheduler's job).

use std::fmt;
use std::sync::Arc;

use serde_json::Value as Json;

use crate::adapter::{Adapter, AdapterError, Cell, Table};
use crate::manifest::Manifest;
use crate::project::config::TestSeverity;
use crate::project::ConfigMap;
use crate::relation::RelationName;

/// How many failing rows a report shows.
pub const SAMPLE_ROWS: usize = 5;

/// A test's verdict, as dbt names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Warn,
    Fail,
}

/// A comparison of the failure count with a number: `!=0`, `>10`, `>=5`, `<3`, `==0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threshold {
    op: Comparison,
    value: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Comparison {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl Threshold {
    /// Parses dbt's `warn_if` / `error_if` syntax.
    pub fn parse(text: &str) -> Option<Threshold> {
        let text = text.trim();
        let (op, rest) = [
            ("!=", Comparison::Ne),
            ("<>", Comparison::Ne),
            (">=", Comparison::Ge),
            ("<=", Comparison::Le),
            ("==", Comparison::Eq),
            ("=", Comparison::Eq),
            (">", Comparison::Gt),
            ("<", Comparison::Lt),
        ]
        .into_iter()
        .find_map(|(prefix, op)| text.strip_prefix(prefix).map(|rest| (op, rest)))?;
        let value = rest.trim().parse::<i64>().ok()?;
        Some(Threshold { op, value })
    }

    pub fn holds(&self, failures: i64) -> bool {
        match self.op {
            Comparison::Eq => failures == self.value,
            Comparison::Ne => failures != self.value,
            Comparison::Gt => failures > self.value,
            Comparison::Ge => failures >= self.value,
            Comparison::Lt => failures < self.value,
            Comparison::Le => failures <= self.value,
        }
    }
}

impl Default for Threshold {
    fn default() -> Self {
        Threshold {
            op: Comparison::Ne,
            value: 0,
        }
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.op {
            Comparison::Eq => "==",
            Comparison::Ne => "!=",
            Comparison::Gt => ">",
            Comparison::Ge => ">=",
            Comparison::Lt => "<",
            Comparison::Le => "<=",
        };
        write!(f, "{op}{}", self.value)
    }
}

/// A test config value that does not fit its key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("test config `{key}`: {message}")]
pub struct SettingsError {
    pub key: String,
    pub message: String,
}

/// The resolved run-time settings of one test.
#[derive(Debug, Clone, PartialEq)]
pub struct TestSettings {
    pub severity: TestSeverity,
    pub warn_if: Threshold,
    pub error_if: Threshold,
    /// The aggregate that counts failures over the failing rows (dbt's `fail_calc`).
    pub fail_calc: String,
    pub limit: Option<u64>,
    /// Where failing rows are kept when `store_failures` is on.
    pub audit_relation: Option<RelationName>,
}

impl TestSettings {
    /// Reads `warn_if`, `error_if`, `fail_calc`, `limit` and `store_failures` from a test's
    /// merged config; `audit_relation` is where failures go if they are stored.
    pub fn from_config(
        config: &ConfigMap,
        severity: TestSeverity,
        audit_relation: RelationName,
    ) -> Result<TestSettings, SettingsError> {
        let threshold = |key: &str| -> Result<Threshold, SettingsError> {
            match config.get(key) {
                None | Some(Json::Null) => Ok(Threshold::default()),
                Some(Json::String(s)) => Threshold::parse(s).ok_or_else(|| SettingsError {
                    key: key.into(),
                    message: format!(
                        "`{s}` is not a comparison; write one like `!=0`, `>10` or `>=5`"
                    ),
                }),
                Some(other) => Err(SettingsError {
                    key: key.into(),
                    message: format!("expected a comparison like `>10`, found `{other}`"),
                }),
            }
        };
        let fail_calc = match config.get("fail_calc") {
            None | Some(Json::Null) => "count(*)".to_string(),
            Some(Json::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
            Some(other) => {
                return Err(SettingsError {
                    key: "fail_calc".into(),
                    message: format!("expected an SQL aggregate like `count(*)`, found `{other}`"),
                })
            }
        };
        let limit = match config.get("limit") {
            None | Some(Json::Null) => None,
            Some(Json::Number(n)) if n.as_u64().is_some() => n.as_u64(),
            Some(other) => {
                return Err(SettingsError {
                    key: "limit".into(),
                    message: format!("expected a whole number of rows, found `{other}`"),
                })
            }
        };
        let store_failures = match config.get("store_failures") {
            None | Some(Json::Null) => false,
            Some(Json::Bool(b)) => *b,
            Some(other) => {
                return Err(SettingsError {
                    key: "store_failures".into(),
                    message: format!("expected true or false, found `{other}`"),
                })
            }
        };
        Ok(TestSettings {
            severity,
            warn_if: threshold("warn_if")?,
            error_if: threshold("error_if")?,
            fail_calc,
            limit,
            audit_relation: store_failures.then_some(audit_relation),
        })
    }

    /// dbt's rule: an error-severity test fails when `error_if` holds, otherwise warns when
    /// `warn_if` holds; a warn-severity test only warns.
    pub fn verdict(&self, failures: i64) -> Verdict {
        if self.severity == TestSeverity::Error && self.error_if.holds(failures) {
            Verdict::Fail
        } else if self.warn_if.holds(failures) {
            Verdict::Warn
        } else {
            Verdict::Pass
        }
    }
}

fn body(sql: &str) -> &str {
    sql.trim().trim_end_matches(';').trim_end()
}

/// The failing rows, capped by `limit`.
pub fn failing_rows_sql(sql: &str, settings: &TestSettings) -> String {
    match settings.limit {
        Some(limit) => format!(
            "select * from (\n{}\n) as failing_rows limit {limit}",
            body(sql)
        ),
        None => body(sql).to_string(),
    }
}

/// One row, one column: the failure count.
pub fn count_sql(sql: &str, settings: &TestSettings) -> String {
    format!(
        "select {} as failures from (\n{}\n) as strata_test",
        settings.fail_calc,
        failing_rows_sql(sql, settings)
    )
}

/// A few failing rows to show.
pub fn sample_sql(sql: &str, settings: &TestSettings) -> String {
    format!(
        "select * from (\n{}\n) as strata_test limit {SAMPLE_ROWS}",
        failing_rows_sql(sql, settings)
    )
}

/// What running a test found.
#[derive(Debug, Clone)]
pub struct TestOutcome {
    pub verdict: Verdict,
    pub failures: i64,
    /// A few failing rows (only fetched when the test did not pass).
    pub sample: Option<Table>,
    /// Where failing rows were stored.
    pub stored_in: Option<RelationName>,
}

impl TestOutcome {
    /// dbt-style status text: `PASS`, `WARN 3`, `FAIL 12`.
    pub fn message(&self) -> String {
        match self.verdict {
            Verdict::Pass => "PASS".into(),
            Verdict::Warn => format!("WARN {}", self.failures),
            Verdict::Fail => format!("FAIL {}", self.failures),
        }
    }
}

fn as_count(cell: Option<&Cell>) -> Result<i64, AdapterError> {
    match cell {
        None | Some(Cell::Null) => Ok(0),
        Some(Cell::Int(i)) => Ok(*i),
        Some(Cell::Float(x)) if x.fract() == 0.0 => Ok(*x as i64),
        Some(Cell::Text(t)) => t.trim().parse::<i64>().map_err(|_| {
            AdapterError::Internal(format!("`fail_calc` returned `{t}`, not a whole number"))
        }),
        Some(other) => Err(AdapterError::Internal(format!(
            "`fail_calc` returned `{other}`, not a whole number"
        ))),
    }
}

/// One column check that can share a scan with others on the same relation.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnCheck {
    /// `not_null`: rows where the column is NULL.
    NotNull { column: String },
    /// `accepted_values`: rows whose non-NULL value is outside the list.
    AcceptedValues { column: String, values: Vec<String> },
}

impl ColumnCheck {
    /// One cheap, parallel aggregate per check: a row count (no `count(distinct …)`, which
    /// engines run poorly many at a time, and no `FILTER`, which Redshift lacks).
    fn aggregate(&self) -> String {
        match self {
            ColumnCheck::NotNull { column } => {
                format!("sum(case when {column} is null then 1 else 0 end)")
            }
            ColumnCheck::AcceptedValues { column, values } => format!(
                "sum(case when {column} not in ({}) then 1 else 0 end)",
                values.join(", ")
            ),
        }
    }

    /// Whether the batch's count is the test's own failure count. dbt counts an
    /// `accepted_values` failure per distinct value, so a non-zero row count there is only a
    /// sign: the test's own query then gives the exact figure.
    pub fn count_is_exact(&self) -> bool {
        matches!(self, ColumnCheck::NotNull { .. })
    }
}

/// Column tests on one relation answered by a single query: one aggregate per test, so a table
/// with twenty column tests is scanned once instead of twenty times. The first test of the
/// batch to run issues the query; the others wait for its answer.
#[derive(Debug)]
pub struct Batch {
    sql: String,
    size: usize,
    answer: tokio::sync::OnceCell<Result<Vec<i64>, AdapterError>>,
}

impl Batch {
    /// A batch over `relation` (as rendered SQL); each check's position is its index.
    pub fn new(relation: &str, checks: &[ColumnCheck]) -> Arc<Batch> {
        let aggregates = checks
            .iter()
            .enumerate()
            .map(|(i, check)| format!("    {} as check_{i}", check.aggregate()))
            .collect::<Vec<_>>()
            .join(",\n");
        Arc::new(Batch {
            sql: format!("select\n{aggregates}\nfrom {relation}"),
            size: checks.len(),
            answer: tokio::sync::OnceCell::new(),
        })
    }

    pub fn sql(&self) -> &str {
        &self.sql
    }

    async fn failures(&self, adapter: &dyn Adapter, index: usize) -> Result<i64, AdapterError> {
        let answer = self
            .answer
            .get_or_init(|| async {
                let table = adapter.query(&self.sql).await?;
                let row = table.rows.first().cloned().unwrap_or_default();
                (0..self.size)
                    .map(|i| as_count(row.get(i)))
                    .collect::<Result<Vec<i64>, AdapterError>>()
            })
            .await;
        match answer {
            Ok(counts) => counts.get(index).copied().ok_or_else(|| {
                AdapterError::Internal("a batched test has no answer; this is a bug".into())
            }),
            Err(err) => Err(err.clone()),
        }
    }
}

/// A test's place in a shared batch.
#[derive(Debug, Clone)]
pub struct BatchSlot {
    pub batch: Arc<Batch>,
    pub index: usize,
    /// See [`ColumnCheck::count_is_exact`].
    pub exact: bool,
}

/// Runs one compiled test against the warehouse; with a batch slot, the failure count comes
/// from the batch's shared query (the test's own SQL still gives the sample rows).
/// Runs a unit test's comparison query (see `compile::unit_test`) and compares its two sides
/// as multisets: it passes when every row the model returned was expected and every expected
/// row returned, as often. A failure's sample lists the rows on one side only, marked
/// `missing` (expected, not returned) or `unexpected` (returned, not expected).
pub async fn run_unit(
    ctx: &crate::materialize::Context<'_>,
    sql: &str,
) -> Result<TestOutcome, AdapterError> {
    let table = ctx.adapter.query(sql).await?;
    let side = table.columns.len().saturating_sub(1);
    let key = |row: &[Cell]| -> Vec<String> { row[..side].iter().map(|c| c.to_string()).collect() };
    let mut balance: std::collections::BTreeMap<Vec<String>, (i64, Vec<Cell>)> =
        std::collections::BTreeMap::new();
    for row in &table.rows {
        let expected = matches!(row.get(side), Some(Cell::Text(t)) if t == "expected");
        let entry = balance
            .entry(key(row))
            .or_insert_with(|| (0, row[..side].to_vec()));
        entry.0 += if expected { -1 } else { 1 };
    }
    let mut columns = vec![crate::adapter::ColumnInfo {
        name: "diff".into(),
        data_type: "text".into(),
    }];
    columns.extend(table.columns[..side].iter().cloned());
    let mut rows = Vec::new();
    for (count, cells) in balance.values() {
        let (mark, times) = if *count < 0 {
            ("missing", -count)
        } else {
            ("unexpected", *count)
        };
        for _ in 0..times {
            let mut row = vec![Cell::Text(mark.into())];
            row.extend(cells.iter().cloned());
            rows.push(row);
        }
    }
    // Missing rows first, then unexpected ones, each sorted.
    rows.sort_by(|a, b| {
        let text = |r: &Vec<Cell>| r.iter().map(|c| c.to_string()).collect::<Vec<_>>();
        text(a).cmp(&text(b))
    });
    let failures = rows.len() as i64;
    Ok(TestOutcome {
        verdict: if failures == 0 {
            Verdict::Pass
        } else {
            Verdict::Fail
        },
        failures,
        sample: (failures > 0).then_some(Table { columns, rows }),
        stored_in: None,
    })
}

pub async fn run(
    ctx: &crate::materialize::Context<'_>,
    sql: &str,
    settings: &TestSettings,
    slot: Option<&BatchSlot>,
) -> Result<TestOutcome, AdapterError> {
    let adapter = ctx.adapter;
    // A batch that fails (one bad column spoils the shared query) falls back to each test's
    // own query, so only the broken test reports the error.
    let batched = match slot {
        Some(slot) => match slot.batch.failures(adapter, slot.index).await {
            Ok(failures) if slot.exact || failures == 0 => Some(failures),
            // Failures found, counted differently by the test itself: ask it.
            Ok(_) => None,
            Err(AdapterError::Cancelled) => return Err(AdapterError::Cancelled),
            Err(_) => None,
        },
        None => None,
    };
    if let Some(failures) = batched {
        let verdict = settings.verdict(failures);
        let sample = if verdict == Verdict::Pass {
            None
        } else {
            Some(adapter.query(&sample_sql(sql, settings)).await?)
        };
        return Ok(TestOutcome {
            verdict,
            failures,
            sample,
            stored_in: None,
        });
    }
    let mut stored_in = None;
    if let Some(audit) = &settings.audit_relation {
        crate::materialize::replace_table(ctx, audit, &failing_rows_sql(sql, settings))
            .await
            .map_err(|e| match e {
                crate::materialize::MaterializeError::Adapter(e) => e,
                other => AdapterError::Internal(other.to_string()),
            })?;
        stored_in = Some(audit.clone());
    }
    let counted = adapter.query(&count_sql(sql, settings)).await?;
    let failures = as_count(counted.rows.first().and_then(|row| row.first()))?;
    let verdict = settings.verdict(failures);
    let sample = if verdict == Verdict::Pass {
        None
    } else {
        Some(adapter.query(&sample_sql(sql, settings)).await?)
    };
    Ok(TestOutcome {
        verdict,
        failures,
        sample,
        stored_in,
    })
}

/// Groups `not_null` and `accepted_values` tests on the same relation into batches that share
/// one scan. Tests with `where`, `limit`, `fail_calc` or `store_failures` keep their own query.
pub fn plan_batches(
    manifest: &Manifest,
    work: &mut [crate::run::Work],
    style: &crate::relation::QuoteStyle,
) {
    use std::collections::BTreeMap;
    let mut groups: BTreeMap<String, Vec<(usize, ColumnCheck)>> = BTreeMap::new();
    for (i, item) in work.iter().enumerate() {
        let crate::run::Job::Test(crate::run::TestWork {
            settings: Ok(settings),
            ..
        }) = &item.job
        else {
            continue;
        };
        let Some(node) = manifest.get(&item.unique_id) else {
            continue;
        };
        let Some(test) = node
            .test
            .as_ref()
            .filter(|t| t.generic && t.namespace.is_none())
        else {
            continue;
        };
        if settings.audit_relation.is_some()
            || settings.limit.is_some()
            || settings.fail_calc != "count(*)"
            || node.config_map.get("where").is_some_and(|w| !w.is_null())
        {
            continue;
        }
        let (Some(column), Some(attached)) = (&test.column_name, &test.attached_node) else {
            continue;
        };
        let Some(relation) = manifest
            .get(attached)
            .filter(|n| !n.is_ephemeral())
            .and_then(|n| n.relation.as_ref())
        else {
            continue;
        };
        let check = match test.test_name.as_str() {
            "not_null" => ColumnCheck::NotNull {
                column: column.clone(),
            },
            "accepted_values" => {
                let quote = test
                    .kwargs
                    .get("quote")
                    .and_then(serde_json::Value::as_bool)
                    .unwrap_or(true);
                let Some(values) = test.kwargs.get("values").and_then(|v| v.as_array()) else {
                    continue;
                };
                let mut rendered = Vec::with_capacity(values.len());
                for value in values {
                    let text = match value {
                        serde_json::Value::String(s) => s.clone(),
                        serde_json::Value::Number(n) => n.to_string(),
                        serde_json::Value::Bool(b) => b.to_string(),
                        _ => break,
                    };
                    rendered.push(if quote {
                        crate::relation::string_literal(&text)
                    } else {
                        text
                    });
                }
                if rendered.len() != values.len() || rendered.is_empty() {
                    continue;
                }
                ColumnCheck::AcceptedValues {
                    column: column.clone(),
                    values: rendered,
                }
            }
            _ => continue,
        };
        groups
            .entry(relation.render(style))
            .or_default()
            .push((i, check));
    }
    for (relation, members) in groups {
        if members.len() < 2 {
            continue;
        }
        let checks: Vec<ColumnCheck> = members.iter().map(|(_, c)| c.clone()).collect();
        let batch = Batch::new(&relation, &checks);
        for (index, (position, check)) in members.into_iter().enumerate() {
            if let crate::run::Job::Test(test) = &mut work[position].job {
                test.batch = Some(BatchSlot {
                    batch: batch.clone(),
                    index,
                    exact: check.count_is_exact(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn audit() -> RelationName {
        RelationName::new(None, "main_dbt_test__audit", "unique_orders_id")
    }

    fn settings(config: Json, severity: TestSeverity) -> Result<TestSettings, SettingsError> {
        let map: ConfigMap = config
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        TestSettings::from_config(&map, severity, audit())
    }

    #[test]
    fn thresholds_parse_dbt_syntax() {
        assert!(Threshold::parse("!=0").is_some_and(|t| t.holds(1) && !t.holds(0)));
        assert!(Threshold::parse(">10").is_some_and(|t| t.holds(11) && !t.holds(10)));
        assert!(Threshold::parse(" >= 5 ").is_some_and(|t| t.holds(5) && !t.holds(4)));
        assert!(Threshold::parse("<3").is_some_and(|t| t.holds(2) && !t.holds(3)));
        assert!(Threshold::parse("=0").is_some_and(|t| t.holds(0) && !t.holds(2)));
        assert_eq!(Threshold::parse("ten"), None);
        assert_eq!(Threshold::parse(">"), None);
    }

    #[test]
    fn verdict_follows_severity_and_thresholds() {
        let plain = settings(json!({}), TestSeverity::Error).unwrap();
        assert_eq!(plain.verdict(0), Verdict::Pass);
        assert_eq!(plain.verdict(1), Verdict::Fail);
        let tolerant = settings(
            json!({"warn_if": ">0", "error_if": ">10"}),
            TestSeverity::Error,
        )
        .unwrap();
        assert_eq!(tolerant.verdict(0), Verdict::Pass);
        assert_eq!(tolerant.verdict(3), Verdict::Warn);
        assert_eq!(tolerant.verdict(11), Verdict::Fail);
        let warn_only = settings(json!({"error_if": ">0"}), TestSeverity::Warn).unwrap();
        assert_eq!(warn_only.verdict(50), Verdict::Warn);
    }

    #[test]
    fn bad_settings_name_their_key() {
        let err = settings(json!({"error_if": "lots"}), TestSeverity::Error).unwrap_err();
        assert_eq!(err.key, "error_if");
        let err = settings(json!({"limit": "5"}), TestSeverity::Error).unwrap_err();
        assert_eq!(err.key, "limit");
    }

    #[test]
    fn batches_put_one_aggregate_per_check_over_one_scan() {
        let batch = Batch::new(
            "\"db\".\"main\".\"orders\"",
            &[
                ColumnCheck::NotNull {
                    column: "id".into(),
                },
                ColumnCheck::AcceptedValues {
                    column: "status".into(),
                    values: vec!["'a'".into(), "'b'".into()],
                },
            ],
        );
        assert_eq!(
            batch.sql(),
            "select\n    sum(case when id is null then 1 else 0 end) as check_0,\n    sum(case when status not in ('a', 'b') then 1 else 0 end) as check_1\nfrom \"db\".\"main\".\"orders\""
        );
    }

    #[test]
    fn queries_wrap_the_failing_rows() {
        let s = settings(
            json!({"limit": 100, "store_failures": true}),
            TestSeverity::Error,
        )
        .unwrap();
        assert_eq!(s.audit_relation, Some(audit()));
        assert_eq!(
            count_sql("select id from t;\n", &s),
            "select count(*) as failures from (\nselect * from (\nselect id from t\n) as failing_rows limit 100\n) as strata_test"
        );
    }
}

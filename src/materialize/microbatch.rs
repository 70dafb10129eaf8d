//! Microbatch models (dbt 1.9's `incremental_strategy: microbatch`): their settings, the
//! batches of `batch_size` a run builds — every batch since `begin` that strata's state does
//! not record as built, the `lookback` batches before the current one and the current one, or
//! exactly the window asked for (`--event-time-start`/`--event-time-end`) or the batches a
//! retry names — and each batch's SQL, the model's compiled SELECT with its inputs' event-time
//! filters bounded to the batch.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc};

use futures::StreamExt;

use super::{Context, MaterializeError, Outcome, Request};
use crate::adapter::RelationKind;
use crate::plan::{Filter, StateWrite};

/// Where the compiled SQL holds a batch's start: a string literal, so the SQL parses as it
/// stands; replaced by the warehouse's timestamp literal for each batch.
pub const START: &str = "'__strata_event_time_start__'";
/// Where the compiled SQL holds a batch's end (exclusive).
pub const END: &str = "'__strata_event_time_end__'";

/// Where `model.batch` values stand in the compiled SQL (dbt 1.9's batch context): the
/// batch's id, start and end as dbt writes them, filled in for each batch.
pub const BATCH_ID: &str = "__strata_batch_id__";
pub const BATCH_START: &str = "__strata_batch_start__";
pub const BATCH_END: &str = "__strata_batch_end__";

/// How long one batch is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchSize {
    Hour,
    Day,
    Month,
    Year,
}

impl BatchSize {
    fn parse(text: &str) -> Option<BatchSize> {
        Some(match text.trim().to_ascii_lowercase().as_str() {
            "hour" => BatchSize::Hour,
            "day" => BatchSize::Day,
            "month" => BatchSize::Month,
            "year" => BatchSize::Year,
            _ => return None,
        })
    }

    /// The start of the batch holding `at`.
    pub fn truncate(self, at: DateTime<Utc>) -> DateTime<Utc> {
        let date = at.date_naive();
        let start = match self {
            BatchSize::Hour => date.and_hms_opt(at.hour(), 0, 0),
            BatchSize::Day => date.and_hms_opt(0, 0, 0),
            BatchSize::Month => date.with_day(1).and_then(|d| d.and_hms_opt(0, 0, 0)),
            BatchSize::Year => {
                NaiveDate::from_ymd_opt(date.year(), 1, 1).and_then(|d| d.and_hms_opt(0, 0, 0))
            }
        };
        start.map_or(at, |s| Utc.from_utc_datetime(&s))
    }

    /// The start of the batch after the one starting at `start`.
    pub fn next(self, start: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            BatchSize::Hour => start + Duration::hours(1),
            BatchSize::Day => start + Duration::days(1),
            BatchSize::Month => start
                .checked_add_months(chrono::Months::new(1))
                .unwrap_or(start + Duration::days(31)),
            BatchSize::Year => start
                .checked_add_months(chrono::Months::new(12))
                .unwrap_or(start + Duration::days(366)),
        }
    }

    /// The start of the batch before the one starting at `start`.
    fn previous(self, start: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            BatchSize::Hour => start - Duration::hours(1),
            BatchSize::Day => start - Duration::days(1),
            BatchSize::Month => start
                .checked_sub_months(chrono::Months::new(1))
                .unwrap_or(start - Duration::days(28)),
            BatchSize::Year => start
                .checked_sub_months(chrono::Months::new(12))
                .unwrap_or(start - Duration::days(365)),
        }
    }
}

/// One batch: the rows whose event time is at or after `start` and before `end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Batch {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Batch {
    /// `2024-01-05T00:00:00Z`, as `run_results.json` and strata's state keep it.
    pub fn bound(at: DateTime<Utc>) -> String {
        at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }

    /// `[start, end]`, as dbt's `batch_results` lists a batch.
    pub fn to_json(self) -> serde_json::Value {
        serde_json::json!([Batch::bound(self.start), Batch::bound(self.end)])
    }

    /// A batch as `batch_results` or strata's state list it.
    pub fn from_bounds(start: &str, end: &str) -> Option<Batch> {
        Some(Batch {
            start: parse_time(start)?,
            end: parse_time(end)?,
        })
    }

    /// `model.batch.id`: the batch's start as digits down to its size (`20240105`,
    /// `2024010513`, `202401`, `2024`).
    pub fn id(self, size: BatchSize) -> String {
        let format = match size {
            BatchSize::Hour => "%Y%m%d%H",
            BatchSize::Day => "%Y%m%d",
            BatchSize::Month => "%Y%m",
            BatchSize::Year => "%Y",
        };
        self.start.format(format).to_string()
    }

    /// A bound as `model.batch.event_time_start`/`_end` print in dbt: `2024-01-05 00:00:00+00:00`.
    pub fn text(at: DateTime<Utc>) -> String {
        at.format("%Y-%m-%d %H:%M:%S+00:00").to_string()
    }

    /// The batch's name in messages: `2024-01-05`, `2024-01-05 13:00`, `2024-01`, `2024`.
    pub fn label(self, size: BatchSize) -> String {
        match size {
            BatchSize::Hour => self.start.format("%Y-%m-%d %H:00").to_string(),
            BatchSize::Day => self.start.format("%Y-%m-%d").to_string(),
            BatchSize::Month => self.start.format("%Y-%m").to_string(),
            BatchSize::Year => self.start.format("%Y").to_string(),
        }
    }
}

/// What a microbatch build did with each of its batches, as `run_results.json` keeps it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchResults {
    pub successful: Vec<Batch>,
    pub failed: Vec<Batch>,
}

impl serde::Serialize for BatchResults {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serde_json::json!({
            "successful": self.successful.iter().map(|b| b.to_json()).collect::<Vec<_>>(),
            "failed": self.failed.iter().map(|b| b.to_json()).collect::<Vec<_>>(),
        })
        .serialize(serializer)
    }
}

/// A time as a user or an artifact writes it: `2024-01-05`, `2024-01-05 13:00:00`,
/// `2024-01-05T13:00:00Z`, `2024-01-05T13:00:00+02:00`. Times without a zone are UTC.
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.with_timezone(&Utc));
    }
    if let Ok(at) = DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%:z") {
        return Some(at.with_timezone(&Utc));
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(at) = NaiveDateTime::parse_from_str(text, format) {
            return Some(Utc.from_utc_datetime(&at));
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|at| Utc.from_utc_datetime(&at))
}

/// A microbatch model's config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The model's own column of event time: each batch replaces the rows it holds in the
    /// batch's window.
    pub event_time: String,
    pub batch_size: BatchSize,
    /// The first batch's start: where a first build (or a full refresh) begins.
    pub begin: DateTime<Utc>,
    /// Batches before the current one that every run builds again (late data).
    pub lookback: u32,
    /// `concurrent_batches`: `None` lets the warehouse decide.
    pub concurrent: Option<bool>,
}

fn text(value: Option<&serde_json::Value>) -> Option<String> {
    match value? {
        serde_json::Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        serde_json::Value::Null | serde_json::Value::String(_) => None,
        other => Some(other.to_string()),
    }
}

impl Settings {
    pub fn from_request(request: &Request<'_>) -> Result<Settings, MaterializeError> {
        Settings::from_config(request.config_map)
    }

    pub fn from_config(config: &crate::project::ConfigMap) -> Result<Settings, MaterializeError> {
        let needs = |what: &str| MaterializeError::Config("microbatch".into(), what.into());
        let event_time = text(config.get("event_time")).ok_or_else(|| {
            needs("an `event_time` (the model's column of event time, which each batch's window bounds)")
        })?;
        let batch_size = match text(config.get("batch_size")) {
            None => return Err(needs("a `batch_size` (hour, day, month or year)")),
            Some(size) => BatchSize::parse(&size).ok_or_else(|| {
                MaterializeError::Settings(format!(
                    "`batch_size: {size}` is not one of hour, day, month, year"
                ))
            })?,
        };
        let begin = match text(config.get("begin")) {
            None => {
                return Err(needs(
                    "a `begin` (the first batch's start, e.g. `2024-01-01`)",
                ))
            }
            Some(begin) => parse_time(&begin).ok_or_else(|| {
                MaterializeError::Settings(format!(
                    "`begin: {begin}` is not a date or a time (write e.g. `2024-01-01` or `2024-01-01 06:00:00`)"
                ))
            })?,
        };
        let lookback = match config.get("lookback") {
            None | Some(serde_json::Value::Null) => 1,
            Some(value) => value
                .as_u64()
                .or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| {
                    MaterializeError::Settings(format!(
                        "`lookback: {value}` is not a number of batches"
                    ))
                })?,
        };
        let concurrent = match config.get("concurrent_batches") {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::Bool(b)) => Some(*b),
            Some(other) => {
                return Err(MaterializeError::Settings(format!(
                    "`concurrent_batches: {other}` is neither true nor false"
                )))
            }
        };
        Ok(Settings {
            event_time,
            batch_size,
            begin: batch_size.truncate(begin),
            lookback,
            concurrent,
        })
    }

    /// Every batch from the one holding `from` to the one before `until` (the batch holding
    /// `until` too, when `until` falls inside it).
    pub fn batches_between(&self, from: DateTime<Utc>, until: DateTime<Utc>) -> Vec<Batch> {
        let size = self.batch_size;
        let mut out = Vec::new();
        let mut start = size.truncate(from);
        while start < until {
            let end = size.next(start);
            out.push(Batch { start, end });
            start = end;
        }
        out
    }
}

/// What decides a run's batches.
#[derive(Debug, Clone, Default)]
pub struct Window<'a> {
    /// The run's start: the current batch is the one holding it.
    pub now: DateTime<Utc>,
    /// `--event-time-start` / `--event-time-end`.
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    /// A retry: exactly these batches.
    pub retry: Option<&'a [Batch]>,
    /// The table is missing, or a full refresh rebuilds it.
    pub rebuild: bool,
    /// The batches strata's state records as built; `None` when it records none for the
    /// model (a table another tool built).
    pub recorded: Option<&'a BTreeSet<Batch>>,
}

/// The batches a run builds, oldest first.
pub fn batches(settings: &Settings, window: &Window<'_>) -> Vec<Batch> {
    if let Some(retry) = window.retry {
        let mut listed: Vec<Batch> = retry.to_vec();
        listed.sort();
        listed.dedup();
        return listed;
    }
    let size = settings.batch_size;
    let current_end = size.next(size.truncate(window.now));
    if window.start.is_some() || window.end.is_some() {
        let start = window.start.unwrap_or(settings.begin);
        let end = window.end.unwrap_or(current_end);
        return settings.batches_between(start, end);
    }
    let all = settings.batches_between(settings.begin, current_end);
    if window.rebuild {
        return all;
    }
    // The current batch and `lookback` before it, always; with the state's record, every
    // earlier batch it does not list too.
    let mut first_kept = size.truncate(window.now);
    for _ in 0..settings.lookback {
        first_kept = size.previous(first_kept);
    }
    all.into_iter()
        .filter(|batch| {
            batch.start >= first_kept
                || window
                    .recorded
                    .is_some_and(|recorded| !recorded.contains(batch))
        })
        .collect()
}

/// The alias a bounded input gets (PostgreSQL wants one on a subquery), unless the model
/// names it itself: [`settle_aliases`] then removes it.
pub const ALIAS: &str = "_strata_batch_";

/// Words that may follow a table in `from` without being its alias.
const NOT_ALIASES: &[&str] = &[
    "where",
    "join",
    "inner",
    "left",
    "right",
    "full",
    "cross",
    "natural",
    "on",
    "using",
    "group",
    "order",
    "limit",
    "union",
    "except",
    "intersect",
    "having",
    "window",
    "qualify",
    "offset",
    "fetch",
    "lateral",
    "tablesample",
    "for",
    "into",
    "returning",
    "minus",
    "outer",
    "anti",
    "semi",
    "positional",
    "asof",
    "pivot",
    "unpivot",
];

/// The compiled SQL with the alias strata gave each bounded input removed where the model
/// gives the input one of its own (`{{ ref('events') }} as e`, `{{ ref('events') }} e`).
pub fn settle_aliases(sql: &str) -> String {
    let marker = format!(") as {ALIAS}");
    if !sql.contains(&marker) {
        return sql.to_string();
    }
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(at) = rest.find(&marker) {
        // `)` stays; ` as _strata_batch_<name>` may go.
        out.push_str(&rest[..=at]);
        let after_marker = &rest[at + marker.len()..];
        let name_len = after_marker
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after_marker.len());
        let ours = &rest[at + 1..at + marker.len() + name_len];
        let tail = &after_marker[name_len..];
        let next = tail.trim_start();
        let word: String = next
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let own_alias = next.starts_with('"')
            || next.starts_with('`')
            || (!word.is_empty()
                && !word.chars().next().is_some_and(|c| c.is_ascii_digit())
                && !NOT_ALIASES.contains(&word.to_ascii_lowercase().as_str()));
        if !own_alias {
            out.push_str(ours);
        }
        rest = tail;
    }
    out.push_str(rest);
    out
}

/// The compiled SELECT bounded to `batch`, its bounds written as the warehouse reads them and
/// `model.batch` as dbt prints it.
pub fn batch_sql(
    sql: &str,
    batch: Batch,
    size: BatchSize,
    literal: &dyn Fn(DateTime<Utc>) -> String,
) -> String {
    sql.replace(START, &literal(batch.start))
        .replace(END, &literal(batch.end))
        .replace(BATCH_ID, &batch.id(size))
        .replace(BATCH_START, &Batch::text(batch.start))
        .replace(BATCH_END, &Batch::text(batch.end))
}

/// Builds a microbatch model: each batch its own write, committed with its record in
/// strata's state, so what a failed or killed run built stays built and known, and the next
/// run builds what is missing. The first batch creates the table (or replaces it in a full
/// refresh) alone; the others run a few at once where the warehouse takes concurrent writes
/// to one table and `concurrent_batches` is not false, else one after another. A failed
/// batch does not stop the others.
pub(super) async fn build(
    ctx: &Context<'_>,
    request: &Request<'_>,
    full_refresh: bool,
) -> Result<Outcome, MaterializeError> {
    let settings = Settings::from_request(request)?;
    let flavour = ctx.adapter.flavour();
    let relation = request.relation;
    let kind = ctx.catalog.kind(relation).await?;
    let mut rebuild = full_refresh || kind != Some(RelationKind::Table);
    let recorded: BTreeSet<Batch> = if rebuild {
        BTreeSet::new()
    } else {
        ctx.state
            .batches(relation)
            .await?
            .iter()
            .filter_map(|(start, end)| Batch::from_bounds(start, end))
            .collect()
    };
    let run = ctx.run;
    let window = Window {
        now: run.started_at,
        start: run.event_time_start,
        end: run.event_time_end,
        retry: run.retry_batches.get(relation).map(Vec::as_slice),
        rebuild,
        recorded: (!recorded.is_empty()).then_some(&recorded),
    };
    let planned = batches(&settings, &window);
    let Some(last) = planned.last().copied() else {
        return Ok(Outcome {
            batches: Some(BatchResults::default()),
            message: "NO BATCHES".into(),
            rows_affected: Some(0),
            warnings: Vec::new(),
        });
    };
    let mut results = BatchResults::default();
    let mut errors: Vec<(Batch, MaterializeError)> = Vec::new();
    let mut rows: Option<u64> = Some(0);
    let mut warnings = Vec::new();
    let mut tally = |batch: Batch, written: Result<Outcome, MaterializeError>| match written {
        Ok(outcome) => {
            results.successful.push(batch);
            rows = rows.zip(outcome.rows_affected).map(|(a, b)| a + b);
            warnings.extend(outcome.warnings);
            true
        }
        Err(error) => {
            results.failed.push(batch);
            errors.push((batch, error));
            false
        }
    };
    let mut pending = planned.iter().copied().peekable();
    // The table is created (or replaced) by the first batch that succeeds, alone.
    while rebuild {
        let Some(batch) = pending.next() else { break };
        let written = write_one(ctx, request, &settings, batch, true, batch == last).await;
        if tally(batch, written) {
            rebuild = false;
        }
    }
    // A model that reads its own table (`{{ this }}`) sees what earlier batches wrote: its
    // batches go one after another, as in dbt.
    let reads_itself = request
        .sql
        .contains(&relation.render(&flavour.template_quote_style()));
    let parallel = flavour.capabilities().concurrent_batches
        && settings.concurrent != Some(false)
        && !reads_itself;
    if parallel {
        // Each batch in flight builds its rows aside under a name of its own.
        let runs: Vec<(Batch, crate::plan::RunContext)> = pending
            .enumerate()
            .map(|(n, batch)| {
                let mut run = ctx.run.clone();
                run.run_id = format!("{}b{n:x}", ctx.run.run_id);
                (batch, run)
            })
            .collect();
        let settings = &settings;
        type Written<'f> = std::pin::Pin<
            Box<
                dyn std::future::Future<Output = (Batch, Result<Outcome, MaterializeError>)>
                    + Send
                    + 'f,
            >,
        >;
        let writes: Vec<Written<'_>> = runs
            .iter()
            .map(|(batch, run)| {
                let batch = *batch;
                Box::pin(async move {
                    let ctx = Context { run, ..*ctx };
                    let done =
                        write_one(&ctx, request, settings, batch, false, batch == last).await;
                    (batch, done)
                }) as Written<'_>
            })
            .collect();
        let mut written = futures::stream::iter(writes).buffer_unordered(CONCURRENT_BATCHES);
        while let Some((batch, done)) = written.next().await {
            tally(batch, done);
        }
    } else {
        for batch in pending {
            let written = write_one(ctx, request, &settings, batch, false, batch == last).await;
            tally(batch, written);
        }
    }
    results.successful.sort();
    results.failed.sort();
    errors.sort_by_key(|(batch, _)| *batch);
    let size = settings.batch_size;
    let span = match planned.as_slice() {
        [one] => one.label(size),
        [first, .., last] => format!("{} … {}", first.label(size), last.label(size)),
        [] => String::new(),
    };
    if errors.is_empty() {
        return Ok(Outcome {
            message: format!(
                "{} batch{} ({span}), {} rows",
                planned.len(),
                if planned.len() == 1 { "" } else { "es" },
                rows.map_or_else(|| "?".into(), |n| n.to_string())
            ),
            rows_affected: rows,
            warnings,
            batches: Some(results),
        });
    }
    let failed: Vec<String> = errors
        .iter()
        .map(|(batch, error)| format!("batch {}: {error}", batch.label(size)))
        .collect();
    Err(MaterializeError::Batches {
        message: format!(
            "{} of {} batches failed ({span}); the others are built and recorded, and `strata retry` or the next run builds the failed ones — {}",
            errors.len(),
            planned.len(),
            failed.join("; ")
        ),
        results,
    })
}

/// How many batches of one model run at once where the warehouse allows it.
const CONCURRENT_BATCHES: usize = 4;

/// One batch written with its record: as the table (`create`: a first build or a full
/// refresh) or into it. The model's post hooks run with its `last` batch.
async fn write_one(
    ctx: &Context<'_>,
    request: &Request<'_>,
    settings: &Settings,
    batch: Batch,
    create: bool,
    last: bool,
) -> Result<Outcome, MaterializeError> {
    let flavour = ctx.adapter.flavour();
    let sql = batch_sql(request.sql, batch, settings.batch_size, &|at| {
        flavour.event_time_literal(at)
    });
    let mut records = request.records.to_vec();
    records.push(StateWrite::Batches {
        relation: request.relation.clone(),
        replace_all: create,
        batches: vec![(Batch::bound(batch.start), Batch::bound(batch.end))],
    });
    let one = Request {
        sql: &sql,
        records: &records,
        post_hooks: if last { request.post_hooks } else { &[] },
        ..request.clone()
    };
    if create {
        let kind = ctx.catalog.kind(request.relation).await?;
        super::build_table(ctx, &one, kind).await
    } else {
        write_batch(ctx, &one, settings, batch).await
    }
}

/// One batch applied to the model's table: its rows built aside, then the table's rows in
/// the batch's window replaced by them in one commit.
async fn write_batch(
    ctx: &Context<'_>,
    request: &Request<'_>,
    settings: &Settings,
    batch: Batch,
) -> Result<Outcome, MaterializeError> {
    let existing = ctx
        .catalog
        .relation(request.relation)
        .await?
        .ok_or_else(|| MaterializeError::Internal("the model's table vanished".into()))?;
    let flavour = ctx.adapter.flavour();
    let build = super::build_for(ctx, request, None).await?;
    let (new_rows, prepare) = super::plans::new_rows(&build, request.sql);
    ctx.run(prepare).await?;
    let applied = async {
        let new_columns = super::aside_columns(ctx, &new_rows).await?;
        let plan = super::plans::apply_batch(
            &build,
            &new_rows,
            &existing.columns,
            &new_columns,
            request.config.on_schema_change,
            Filter::Window {
                column: settings.event_time.clone(),
                start: flavour.event_time_literal(batch.start),
                end: flavour.event_time_literal(batch.end),
            },
        )?;
        ctx.run(plan).await
    }
    .await;
    let executed = super::dropping_on_error(ctx, &new_rows, applied).await?;
    Ok(Outcome {
        message: String::new(),
        rows_affected: executed.rows,
        warnings: executed.warnings,
        batches: None,
    })
}

/// The compiled SELECT over every batch from `begin` to the one holding `now` (what
/// `strata show` previews); SQL without batch bounds, or with a config that does not read,
/// as it is.
pub fn whole_window(
    sql: &str,
    config: &crate::project::ConfigMap,
    flavour: &dyn crate::adapter::Flavour,
    now: DateTime<Utc>,
) -> String {
    if !sql.contains(START)
        && !sql.contains(BATCH_ID)
        && !sql.contains(BATCH_START)
        && !sql.contains(BATCH_END)
    {
        return sql.to_string();
    }
    let Ok(settings) = Settings::from_config(config) else {
        return sql.to_string();
    };
    let size = settings.batch_size;
    let all = Batch {
        start: settings.begin,
        end: size.next(size.truncate(now)),
    };
    batch_sql(sql, all, size, &|at| flavour.event_time_literal(at))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        parse_time(text).unwrap()
    }

    fn settings(size: &str, begin: &str, lookback: u32) -> Settings {
        let config: crate::project::ConfigMap = serde_json::from_value(serde_json::json!({
            "event_time": "ordered_at", "batch_size": size, "begin": begin, "lookback": lookback,
        }))
        .unwrap();
        Settings::from_config(&config).unwrap()
    }

    fn starts(batches: &[Batch]) -> Vec<String> {
        batches.iter().map(|b| Batch::bound(b.start)).collect()
    }

    #[test]
    fn batch_sizes_truncate_and_step_over_month_and_year_ends() {
        let t = at("2024-02-29T13:45:10Z");
        assert_eq!(
            Batch::bound(BatchSize::Hour.truncate(t)),
            "2024-02-29T13:00:00Z"
        );
        assert_eq!(
            Batch::bound(BatchSize::Day.truncate(t)),
            "2024-02-29T00:00:00Z"
        );
        assert_eq!(
            Batch::bound(BatchSize::Month.truncate(t)),
            "2024-02-01T00:00:00Z"
        );
        assert_eq!(
            Batch::bound(BatchSize::Year.truncate(t)),
            "2024-01-01T00:00:00Z"
        );
        assert_eq!(
            Batch::bound(BatchSize::Month.next(at("2024-12-01"))),
            "2025-01-01T00:00:00Z"
        );
        assert_eq!(
            Batch::bound(BatchSize::Month.previous(at("2024-03-01"))),
            "2024-02-01T00:00:00Z"
        );
        assert_eq!(at("2024-01-05 13:00:00+02:00"), at("2024-01-05T11:00:00Z"));
    }

    #[test]
    fn a_first_run_builds_from_begin_and_later_runs_fill_what_the_state_lacks() {
        let s = settings("day", "2024-01-01", 1);
        let now = at("2024-01-05T08:00:00Z");
        let first = batches(
            &s,
            &Window {
                now,
                rebuild: true,
                ..Window::default()
            },
        );
        assert_eq!(first.len(), 5);
        assert_eq!(starts(&first)[0], "2024-01-01T00:00:00Z");
        assert_eq!(Batch::bound(first[4].end), "2024-01-06T00:00:00Z");
        // Day 2 failed: the next run builds it, the lookback day and the current day.
        let recorded: BTreeSet<Batch> = first
            .iter()
            .copied()
            .filter(|b| b.start != at("2024-01-02"))
            .collect();
        let next = batches(
            &s,
            &Window {
                now: at("2024-01-06T08:00:00Z"),
                recorded: Some(&recorded),
                ..Window::default()
            },
        );
        assert_eq!(
            starts(&next),
            [
                "2024-01-02T00:00:00Z",
                "2024-01-05T00:00:00Z",
                "2024-01-06T00:00:00Z"
            ]
        );
        // Without a record (a table dbt built), only the lookback and the current batch.
        let unknown = batches(
            &s,
            &Window {
                now: at("2024-01-06T08:00:00Z"),
                ..Window::default()
            },
        );
        assert_eq!(
            starts(&unknown),
            ["2024-01-05T00:00:00Z", "2024-01-06T00:00:00Z"]
        );
    }

    #[test]
    fn an_explicit_window_and_a_retry_build_exactly_what_they_name() {
        let s = settings("hour", "2024-01-01", 3);
        let window = batches(
            &s,
            &Window {
                now: at("2024-02-01"),
                start: Some(at("2024-01-10 22:30:00")),
                end: Some(at("2024-01-11 01:00:00")),
                ..Window::default()
            },
        );
        assert_eq!(
            starts(&window),
            [
                "2024-01-10T22:00:00Z",
                "2024-01-10T23:00:00Z",
                "2024-01-11T00:00:00Z"
            ]
        );
        let failed = [window[1]];
        let retried = batches(
            &s,
            &Window {
                now: at("2024-02-01"),
                retry: Some(&failed),
                ..Window::default()
            },
        );
        assert_eq!(retried, failed);
    }

    #[test]
    fn a_bounded_input_keeps_the_alias_the_model_gives_it() {
        let bounded = format!("(select * from e where t >= {START} and t < {END}) as {ALIAS}e");
        let sql = format!(
            "select * from {bounded} as x join {bounded} y on x.id = y.id join {bounded}\nwhere 1 = 1 union all select * from {bounded}"
        );
        let settled = settle_aliases(&sql);
        assert_eq!(settled.matches(ALIAS).count(), 2, "{settled}");
        assert!(settled.contains(") as x join"), "{settled}");
        assert!(settled.contains(") y on"), "{settled}");
        assert!(settled.ends_with(&format!(") as {ALIAS}e")), "{settled}");
    }

    #[test]
    fn mistakes_in_the_config_say_what_to_write() {
        let config: crate::project::ConfigMap = serde_json::from_value(
            serde_json::json!({"event_time": "t", "batch_size": "week", "begin": "2024-01-01"}),
        )
        .unwrap();
        assert!(Settings::from_config(&config)
            .unwrap_err()
            .to_string()
            .contains("not one of hour, day, month, year"));
        let config: crate::project::ConfigMap =
            serde_json::from_value(serde_json::json!({"event_time": "t", "batch_size": "day"}))
                .unwrap();
        assert!(Settings::from_config(&config)
            .unwrap_err()
            .to_string()
            .contains("a `begin`"));
        let sql = format!("select * from e where t >= {START} and t < {END}");
        let batch = Batch::from_bounds("2024-01-01", "2024-01-02").unwrap();
        assert_eq!(
            batch_sql(&sql, batch, BatchSize::Day, &|t| format!(
                "'{}'",
                Batch::bound(t)
            )),
            "select * from e where t >= '2024-01-01T00:00:00Z' and t < '2024-01-02T00:00:00Z'"
        );
        let context =
            format!("select '{BATCH_ID}' as id, '{BATCH_START}' as s, '{BATCH_END}' as e");
        assert_eq!(
            batch_sql(&context, batch, BatchSize::Day, &|t| Batch::bound(t)),
            "select '20240101' as id, '2024-01-01 00:00:00+00:00' as s, '2024-01-02 00:00:00+00:00' as e"
        );
    }
}

//! `strata source freshness`: checks the selected sources' newest loads against their
//! `freshness` criteria, prints a line per source, writes `sources.json`, and fails when a
//! source is past `error_after` or cannot be measured. Also the check `build
//! --skip-stale-sources` runs first.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use super::args::FreshnessArgs;
use super::session::{self, Session};
use super::settings::Settings;
use super::{EXIT_FAILURE, EXIT_OK};
use crate::diagnostic::{Diagnostic, Severity};
use crate::freshness::{Checked, Status};
use crate::manifest::{NodeId, ResourceType};

pub fn run(settings: &Settings, args: &FreshnessArgs) -> anyhow::Result<u8> {
    let printer = &settings.printer;
    let session = match session::open(settings, session::Next::Inspect) {
        Ok(session) => session,
        Err(code) => return Ok(code),
    };
    let selected = match session::select(
        &session,
        settings,
        &args.selection,
        vec![ResourceType::Source],
    ) {
        Ok(selected) => selected,
        Err(code) => return Ok(code),
    };
    let alerts = match super::alerting::config(&session.project) {
        Ok(alerts) => alerts,
        Err(diagnostic) => {
            printer.diagnostic(&diagnostic);
            return Ok(EXIT_FAILURE);
        }
    };
    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let results = match runtime.block_on(check(settings, &session, &selected)) {
        Ok(results) => results,
        Err(code) => return Ok(code),
    };
    let elapsed = started.elapsed().as_secs_f64();
    match crate::artifacts::write_sources(
        &session.project,
        &session.engine,
        &results,
        elapsed,
        args.output.as_deref(),
    ) {
        Ok(_) => {}
        Err(e) => printer.diagnostic(&Diagnostic::error(format!(
            "cannot write `sources.json`: {e}"
        ))),
    }
    let count = |status: Status| results.iter().filter(|r| r.status == status).count();
    let failed = count(Status::Error) + count(Status::RuntimeError);
    printer.info(&format!(
        "finished {} sources in {elapsed:.2}s: PASS={} WARN={} ERROR={} (stale {}, not measured {})",
        results.len(),
        count(Status::Pass),
        count(Status::Warn),
        failed,
        count(Status::Error),
        count(Status::RuntimeError),
    ));
    if let Some(config) = &alerts {
        let summary = alert_summary(settings, &session, &results, elapsed);
        runtime.block_on(super::alerting::send(
            settings,
            &session.project,
            config,
            &summary,
        ));
    }
    Ok(if failed > 0 { EXIT_FAILURE } else { EXIT_OK })
}

/// What the check tells the project's alerts: the stale and unmeasured sources.
fn alert_summary(
    settings: &Settings,
    session: &Session,
    results: &[Checked],
    elapsed: f64,
) -> crate::alerts::Summary {
    let project = &session.project;
    let mut counts = std::collections::BTreeMap::new();
    for r in results {
        *counts
            .entry(r.status.as_str().to_string())
            .or_insert(0usize) += 1;
    }
    let failures: Vec<crate::alerts::Failure> = results
        .iter()
        .filter(|r| matches!(r.status, Status::Error | Status::RuntimeError))
        .map(|r| crate::alerts::Failure {
            unique_id: Some(r.unique_id.0.clone()),
            name: r.name.clone(),
            status: r.status.as_str().into(),
            message: r.summary(),
            file: session
                .manifest
                .get(&r.unique_id)
                .map(|n| n.original_file_path.to_string_lossy().replace('\\', "/")),
        })
        .collect();
    crate::alerts::Summary {
        project: project.name.clone(),
        target: project.target.name.clone(),
        command: settings.command.clone(),
        invocation_id: session.engine.shared().invocation_id.clone(),
        failed: !failures.is_empty(),
        started_at: chrono::Utc::now() - chrono::Duration::milliseconds((elapsed * 1000.0) as i64),
        elapsed,
        counts,
        failures,
        artifacts: [project.target_path.join("sources.json")]
            .into_iter()
            .filter(|p| p.is_file())
            .collect(),
    }
}

/// Checks the freshness of `ids` (those with criteria), printing a line as each finishes.
/// `Err` with the exit code when the criteria are unusable or the target unreachable.
pub(super) async fn check(
    settings: &Settings,
    session: &Session,
    ids: &[NodeId],
) -> Result<Vec<Checked>, u8> {
    let printer = &settings.printer;
    let project = &session.project;
    let flavour = crate::adapter::flavour_for(&project.target);
    let render = |sql: &str| {
        crate::compile::compile_inline(project, &session.manifest, &session.engine, sql).map_err(
            |diagnostics| {
                diagnostics.sorted().into_iter().next().unwrap_or_else(|| {
                    Diagnostic::error("the freshness query did not compile".to_string())
                })
            },
        )
    };
    let (checks, diagnostics) =
        crate::freshness::plan(&session.manifest, ids, flavour.as_ref(), &render);
    printer.diagnostics(&diagnostics);
    let errors = diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    if errors > 0 {
        printer.info(&format!(
            "strata {} stopped: {errors} error(s) in sources' freshness; nothing was checked",
            settings.command
        ));
        return Err(EXIT_FAILURE);
    }
    if checks.is_empty() {
        printer.info("no selected source has `freshness` criteria to check");
        return Ok(Vec::new());
    }
    let adapter = match crate::adapter::connect(&project.target).await {
        Ok(adapter) => adapter,
        Err(err) => {
            printer.diagnostic(&Diagnostic::error(err.to_string()).with_hint_opt(err.hint()));
            return Err(EXIT_FAILURE);
        }
    };
    printer.info(&format!(
        "checking the freshness of {} sources with {} threads on {} target `{}`",
        checks.len(),
        project.target.threads,
        flavour.name(),
        project.target.name
    ));
    let total = checks.len();
    let finished = AtomicUsize::new(0);
    let done = |_: usize, checked: &Checked| {
        let index = finished.fetch_add(1, Ordering::Relaxed) + 1;
        let label = match checked.status {
            Status::Pass => "PASS",
            Status::Warn => "WARN",
            Status::Error => "ERROR STALE",
            Status::RuntimeError => "ERROR",
        };
        printer.event(
            &format!(
                "{index} of {total} {label} freshness of {} [{} in {:.2}s]: {}",
                checked.name,
                label.split(' ').next().unwrap_or(label),
                checked.execution_time,
                checked.summary()
            ),
            serde_json::json!({
                "event": "freshness",
                "unique_id": checked.unique_id.0,
                "status": checked.status.as_str(),
                "age_seconds": checked.age,
            }),
        );
    };
    let results = crate::freshness::run(
        adapter.as_ref(),
        &project.root,
        &checks,
        project.target.threads,
        &done,
    )
    .await;
    Ok(results)
}

//! The project's `on-failure` notifications at the end of a run command (`run`, `seed`,
//! `snapshot`, `test`, `build`, `retry`, `source freshness`), or when one stops before its
//! first node; what cannot be delivered is printed as a warning and the exit code stays the
//! run's.

use std::collections::BTreeMap;

use super::settings::Settings;
use crate::alerts::{AlertConfig, Failure, Summary};
use crate::diagnostic::Diagnostic;
use crate::manifest::Manifest;
use crate::project::Project;
use crate::run::{NodeResult, Status};

/// The commands that notify.
const NOTIFYING: &[&str] = &[
    "run",
    "seed",
    "snapshot",
    "test",
    "build",
    "retry",
    "source freshness",
];

/// The project's `on-failure` block, read; an error names the project file's line.
pub(super) fn config(project: &Project) -> Result<Option<AlertConfig>, Diagnostic> {
    AlertConfig::from_json(project.file.on_failure.as_ref()).map_err(|message| {
        super::run::project_key_error(project, "on-failure:", message).with_hint(
            "e.g. `on-failure: {webhook: \"{{ env_var('ALERT_WEBHOOK', '') }}\"}`; see the README's \"Alerts\"",
        )
    })
}

/// A finished run's summary.
#[expect(
    clippy::too_many_arguments,
    reason = "the parts of a finished run, each from a different place in run.rs"
)]
pub(super) fn summary(
    settings: &Settings,
    project: &Project,
    manifest: &Manifest,
    invocation_id: &str,
    results: &[NodeResult],
    extra_failures: &[NodeResult],
    failed: bool,
    elapsed: f64,
) -> Summary {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for r in results {
        *counts.entry(r.status.as_str().to_string()).or_default() += 1;
    }
    let failures = results
        .iter()
        .filter(|r| matches!(r.status, Status::Error | Status::Fail))
        .chain(extra_failures)
        .map(|r| {
            let node = manifest.get(&r.unique_id);
            Failure {
                unique_id: Some(r.unique_id.0.clone()),
                name: node
                    .map(|n| n.name.clone())
                    .unwrap_or_else(|| r.unique_id.0.clone()),
                status: r.status.as_str().into(),
                message: r.message.clone(),
                file: node.map(|n| n.original_file_path.to_string_lossy().replace('\\', "/")),
            }
        })
        .collect();
    Summary {
        project: project.name.clone(),
        target: project.target.name.clone(),
        command: settings.command.clone(),
        invocation_id: invocation_id.to_string(),
        failed,
        started_at: chrono::Utc::now() - chrono::Duration::milliseconds((elapsed * 1000.0) as i64),
        elapsed,
        counts,
        failures,
        artifacts: ["run_results.json", "manifest.json", "sources.json"]
            .iter()
            .map(|name| project.target_path.join(name))
            .filter(|path| path.is_file())
            .map(|path| std::fs::canonicalize(&path).unwrap_or(path))
            .collect(),
    }
}

/// Sends the notifications `config` asks for.
pub(super) async fn send(
    settings: &Settings,
    project: &Project,
    config: &AlertConfig,
    summary: &Summary,
) {
    if !NOTIFYING.contains(&settings.command.as_str()) {
        return;
    }
    for warning in crate::alerts::notify(config, summary, &project.root).await {
        settings.printer.diagnostic(
            &Diagnostic::warning(warning).with_hint("the run's exit code does not depend on it"),
        );
    }
}

/// A run command that stopped before its first node (a template error, a cycle, a compile
/// error, an unreachable warehouse): the summary of one notification listing the errors,
/// when the project asks for notifications.
pub(super) fn stopped_summary(
    settings: &Settings,
    project: &Project,
    invocation_id: Option<&str>,
    diagnostics: &[Diagnostic],
) -> Option<(AlertConfig, Summary)> {
    if !NOTIFYING.contains(&settings.command.as_str()) {
        return None;
    }
    let config = config(project).ok()??;
    let failures: Vec<Failure> = diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| Failure {
            unique_id: None,
            name: "(before the run)".into(),
            status: "error".into(),
            message: d.message.clone(),
            file: d
                .location
                .as_ref()
                .map(|l| l.path.to_string_lossy().replace('\\', "/")),
        })
        .collect();
    let summary = Summary {
        project: project.name.clone(),
        target: project.target.name.clone(),
        command: settings.command.clone(),
        invocation_id: invocation_id.unwrap_or_default().to_string(),
        failed: true,
        started_at: chrono::Utc::now(),
        elapsed: 0.0,
        counts: BTreeMap::new(),
        failures,
        artifacts: Vec::new(),
    };
    Some((config, summary))
}

/// [`stopped_summary`] sent, outside any async runtime.
pub(super) fn stopped(
    settings: &Settings,
    project: &Project,
    invocation_id: Option<&str>,
    diagnostics: &[Diagnostic],
) {
    let Some((config, summary)) = stopped_summary(settings, project, invocation_id, diagnostics)
    else {
        return;
    };
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    runtime.block_on(send(settings, project, &config, &summary));
}

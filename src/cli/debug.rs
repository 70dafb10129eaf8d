//! `strata debug`: shows which project, profile and target a run would use (secrets as `***`)
//! and checks the connection with a trivial query. Exit code 1 when a check fails.

use super::settings::Settings;
use super::{EXIT_FAILURE, EXIT_OK};
use crate::project::target::TargetOrigin;

pub fn run(settings: &Settings) -> anyhow::Result<u8> {
    let printer = &settings.printer;
    printer.data(&format!("strata {}", env!("CARGO_PKG_VERSION")));
    let project = match super::session::load_project(settings) {
        Ok(project) => project,
        Err(code) => {
            printer.data("project: ERROR (see above)");
            return Ok(code);
        }
    };
    printer.diagnostics(&project.warnings);
    let target = &project.target;
    printer.data(&format!(
        "project: {} ({})",
        project.name,
        project.root.join(&project.project_file).display()
    ));
    let origin = match &target.origin {
        TargetOrigin::Profiles(path) => format!("profiles file {}", path.display()),
        TargetOrigin::ProjectFile(path) => format!("`targets:` in {}", path.display()),
        TargetOrigin::Default => "built-in default (embedded DuckDB)".to_string(),
    };
    printer.data(&format!("target: {} from {origin}", target.name));
    printer.data(&format!(
        "  type: {}\n  database: {}\n  schema: {}\n  threads: {}",
        target.kind().as_str(),
        target.database,
        target.schema,
        target.threads
    ));
    // Serialize, not Debug: secrets print as `***` either way, and the keys read like the YAML.
    if let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(&target.connection) {
        for (key, value) in fields {
            if key == "type" || value.is_null() {
                continue;
            }
            let shown = match value {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            printer.data(&format!("  {key}: {shown}"));
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let checks = runtime.block_on(async {
        match crate::adapter::connect(target).await {
            Ok(adapter) => adapter.checks().await,
            Err(err) => vec![("connection".to_string(), Err(err))],
        }
    });
    let mut failed = false;
    for (name, result) in checks {
        match result {
            Ok(status) => printer.data(&format!("{name}: {status}")),
            Err(err) => {
                failed = true;
                printer.data(&format!("{name}: ERROR {err}"));
                if let Some(hint) = err.hint() {
                    printer.data(&format!("  hint: {hint}"));
                }
            }
        }
    }
    if failed {
        Ok(EXIT_FAILURE)
    } else {
        printer.data("All checks passed!");
        Ok(EXIT_OK)
    }
}

//! `strata deps`: installs the project's packages and prints what it did. Needs no profile:
//! the project file and the package file are all it reads.

use super::settings::Settings;
use super::{EXIT_FAILURE, EXIT_OK};
use crate::deps::{DepsOptions, DEFAULT_HUB_URL};

pub fn run(settings: &Settings, args: &crate::cli::args::DepsArgs) -> anyhow::Result<u8> {
    let printer = &settings.printer;
    let hub_url = ["STRATA_PACKAGE_HUB_URL", "DBT_PACKAGE_HUB_URL"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| DEFAULT_HUB_URL.to_string());
    let options = DepsOptions {
        upgrade: args.upgrade,
        lock_only: args.lock,
        hub_url,
        vars: settings.load.vars.clone(),
    };
    let dir = &settings.load.project_dir;
    let mut log = |line: &str| printer.info(line);
    match crate::deps::run(dir, &options, &mut log) {
        Ok(report) => {
            for warning in &report.warnings {
                printer.diagnostic(warning);
            }
            if report.nothing {
                printer.info("no packages to install: the project has no packages.yml or dependencies.yml entries");
                return Ok(EXIT_OK);
            }
            for package in &report.installed {
                printer.info(&format!(
                    "installed {} {} ({})",
                    package.name, package.version, package.label
                ));
            }
            for (name, in_range, latest) in &report.updates {
                printer.info(&match in_range {
                    Some(version) if version != latest => format!(
                        "{name} {version} is available within its range (`strata deps --upgrade` installs it); the newest release is {latest}"
                    ),
                    Some(version) => format!(
                        "{name} {version} is available (`strata deps --upgrade` installs it)"
                    ),
                    None => format!(
                        "{name} {latest} is available; widen its range in packages.yml to use it"
                    ),
                });
            }
            Ok(EXIT_OK)
        }
        Err(err) => {
            let root = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone());
            printer.diagnostic(&err.to_diagnostic(&root));
            Ok(EXIT_FAILURE)
        }
    }
}

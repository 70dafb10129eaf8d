//! Resolves the command line and environment into typed settings before any work starts.

use std::path::PathBuf;

use indexmap::IndexMap;
use serde_json::Value as Json;

use super::args::Cli;
use crate::diagnostic::Diagnostic;
use crate::output::Printer;
use crate::project::LoadOptions;

/// Settings shared by every command.
#[derive(Debug, Clone)]
pub struct Settings {
    pub load: LoadOptions,
    pub printer: Printer,
    pub command: String,
    /// `--full-refresh`: templates see it as `flags.FULL_REFRESH` (`should_full_refresh()`).
    pub full_refresh: bool,
    /// `--state`: a previous run's target folder.
    pub state: Option<PathBuf>,
    /// `--defer` / `--favor-state`.
    pub defer: Defer,
    /// The command line as given (without the program), kept in `run_results.json` so
    /// `strata retry` can run it again.
    pub invocation: Vec<String>,
    /// `strata retry`: the batches each microbatch model failed, built again and no others.
    pub retry_batches: std::collections::HashMap<
        crate::manifest::NodeId,
        Vec<crate::materialize::microbatch::Batch>,
    >,
}

/// Where refs to unselected nodes read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Defer {
    /// The current target, always.
    #[default]
    Off,
    /// The `--state` run's relation where the current target lacks it.
    Missing,
    /// The `--state` run's relation always (`--favor-state`).
    Always,
}

/// Whether a boolean environment variable is set to a true value.
fn env_flag(names: &[&str]) -> bool {
    names.iter().any(|name| {
        std::env::var(name)
            .is_ok_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
    })
}

fn env_path(names: &[&str]) -> Option<PathBuf> {
    names.iter().find_map(|n| {
        std::env::var_os(n)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    })
}

impl Settings {
    pub fn resolve(cli: &Cli) -> Result<Settings, Diagnostic> {
        let global = &cli.global;
        let printer = Printer::new(global.quiet, global.no_color, global.log_format);
        let vars = match &global.vars {
            None => IndexMap::new(),
            Some(text) => parse_vars(text)?,
        };
        if global.threads == Some(0) {
            return Err(Diagnostic::error("`--threads` must be at least 1"));
        }
        let load = LoadOptions {
            project_dir: global
                .project_dir
                .clone()
                .or_else(|| env_path(&["STRATA_PROJECT_DIR", "DBT_PROJECT_DIR"]))
                .unwrap_or_else(|| PathBuf::from(".")),
            profiles_dir: global
                .profiles_dir
                .clone()
                .or_else(|| env_path(&["STRATA_PROFILES_DIR", "DBT_PROFILES_DIR"])),
            target: global.target.clone().or_else(|| {
                std::env::var("STRATA_TARGET")
                    .ok()
                    .filter(|t| !t.is_empty())
            }),
            vars,
            threads: global.threads,
            skip_package_check: false,
            skip_version_check: !global.version_check(),
        };
        let command = match &cli.command {
            super::Command::Parse => "parse",
            super::Command::Compile(_) => "compile",
            super::Command::Ls(_) => "list",
            super::Command::Run(_) => "run",
            super::Command::Seed(_) => "seed",
            super::Command::Build(_) => "build",
            super::Command::Test(_) => "test",
            super::Command::Snapshot(_) => "snapshot",
            super::Command::Source { .. } => "source freshness",
            super::Command::Show(_) => "show",
            super::Command::Debug => "debug",
            super::Command::Clean => "clean",
            super::Command::Init(_) => "init",
            super::Command::Deps(_) => "deps",
            super::Command::Retry => "retry",
            super::Command::Docs {
                command: super::args::DocsCommand::Generate(_),
            } => "docs generate",
            super::Command::Docs {
                command: super::args::DocsCommand::Serve(_),
            } => "docs serve",
            super::Command::Lineage(_) => "lineage",
        };
        let selection = match &cli.command {
            super::Command::Run(args)
            | super::Command::Seed(args)
            | super::Command::Build(args)
            | super::Command::Test(args)
            | super::Command::Snapshot(args) => Some(&args.selection),
            super::Command::Compile(args) => Some(&args.selection),
            super::Command::Ls(args) => Some(&args.selection),
            super::Command::Lineage(args) => Some(&args.selection),
            super::Command::Source {
                command: super::args::SourceCommand::Freshness(args),
            } => Some(&args.selection),
            _ => None,
        };
        let state = selection
            .and_then(|s| s.state.clone())
            .or_else(|| env_path(&["STRATA_STATE", "DBT_STATE"]));
        let favor = selection.is_some_and(|s| s.favor_state)
            || env_flag(&["STRATA_FAVOR_STATE", "DBT_FAVOR_STATE"]);
        let defer = selection.is_some_and(|s| s.defer) || env_flag(&["STRATA_DEFER", "DBT_DEFER"]);
        let defer = match (defer, favor) {
            (false, false) => Defer::Off,
            (_, true) => Defer::Always,
            (true, false) => Defer::Missing,
        };
        if defer != Defer::Off && state.is_none() {
            return Err(Diagnostic::error("--defer needs --state: the previous run whose relations to read")
                .with_hint("pass --state DIR with the target folder of the production run (or set STRATA_STATE)"));
        }
        let full_refresh = match &cli.command {
            super::Command::Run(args)
            | super::Command::Seed(args)
            | super::Command::Build(args)
            | super::Command::Test(args)
            | super::Command::Snapshot(args) => args.full_refresh,
            _ => false,
        };
        Ok(Settings {
            load,
            printer,
            command: command.to_string(),
            full_refresh,
            state,
            defer,
            invocation: std::env::args().skip(1).collect(),
            retry_batches: Default::default(),
        })
    }
}

/// `--vars` as a YAML (or JSON) mapping.
pub fn parse_vars(text: &str) -> Result<IndexMap<String, Json>, Diagnostic> {
    let value: Json = serde_yaml::from_str(text).map_err(|e| {
        Diagnostic::error(format!("invalid `--vars`: {e}"))
            .with_hint("pass a YAML or JSON mapping, e.g. --vars '{start_date: 2024-01-01}'")
    })?;
    match value {
        Json::Object(map) => Ok(map.into_iter().collect()),
        Json::Null => Ok(IndexMap::new()),
        other => Err(Diagnostic::error(format!(
            "invalid `--vars`: expected a mapping, got `{other}`"
        ))
        .with_hint("pass a YAML or JSON mapping, e.g. --vars '{start_date: 2024-01-01}'")),
    }
}

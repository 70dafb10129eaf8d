//! The command line: clap types (kept dumb), the resolution of flags, environment and config
//! into typed settings, and one file per command. This is the only place `anyhow` and exit
//! codes appear.

mod alerting;
mod args;
mod clean;
mod compile;
mod debug;
mod deps;
mod docs;
mod freshness;
mod init;
mod lineage;
mod ls;
mod parse;
mod retry;
mod run;
mod session;
mod settings;
mod show;

use std::process::ExitCode;

use clap::Parser;

pub use args::{Cli, Command};
use settings::Settings;

/// Exit code for success.
pub const EXIT_OK: u8 = 0;
/// A user error or a failed node or test.
pub const EXIT_FAILURE: u8 = 1;
/// Bad command-line usage.
pub const EXIT_USAGE: u8 = 2;

/// Parses the command line and runs the command.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let code = if err.use_stderr() {
                EXIT_USAGE
            } else {
                EXIT_OK
            };
            let _ = err.print();
            return ExitCode::from(code);
        }
    };
    run(cli)
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    let settings = match Settings::resolve(&cli) {
        Ok(settings) => settings,
        Err(diagnostic) => {
            let printer = crate::output::Printer::new(
                cli.global.quiet,
                cli.global.no_color,
                cli.global.log_format,
            );
            printer.diagnostic(&diagnostic);
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let result = match &cli.command {
        Command::Parse => parse::run(&settings),
        Command::Compile(args) => compile::run(&settings, args),
        Command::Ls(args) => ls::run(&settings, args),
        Command::Run(args) => run::run(&settings, args, run::Scope::Models),
        Command::Seed(args) => run::run(&settings, args, run::Scope::Seeds),
        Command::Build(args) => run::run(&settings, args, run::Scope::Build),
        Command::Test(args) => run::run(&settings, args, run::Scope::Tests),
        Command::Snapshot(args) => run::run(&settings, args, run::Scope::Snapshots),
        Command::Source {
            command: args::SourceCommand::Freshness(args),
        } => freshness::run(&settings, args),
        Command::Show(args) => show::run(&settings, args),
        Command::Debug => debug::run(&settings),
        Command::Clean => clean::run(&settings),
        Command::Init(args) => init::run(&settings, args),
        Command::Deps(args) => deps::run(&settings, args),
        Command::Retry => retry::run(&settings),
        Command::Docs {
            command: args::DocsCommand::Generate(args),
        } => docs::generate(&settings, args),
        Command::Docs {
            command: args::DocsCommand::Serve(args),
        } => docs::serve(&settings, args),
        Command::Lineage(args) => lineage::run(&settings, args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            settings
                .printer
                .diagnostic(&crate::diagnostic::Diagnostic::error(format!(
                    "{err:#}; this is a bug, please report it"
                )));
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

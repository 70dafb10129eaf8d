//! clap types for strata's command line. They only describe flags; meaning is given in
//! `settings.rs`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::output::LogFormat;

/// strata: build SQL models — dbt's project layout and Jinja API, one fast binary.
#[derive(Debug, Parser)]
#[command(name = "strata", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command takes.
#[derive(Debug, Args, Clone)]
pub struct GlobalArgs {
    /// The project folder (holding project.yml or dbt_project.yml) [env: STRATA_PROJECT_DIR]
    #[arg(long, global = true, value_name = "DIR")]
    pub project_dir: Option<PathBuf>,
    /// The folder holding profiles.yml [env: STRATA_PROFILES_DIR, DBT_PROFILES_DIR]
    #[arg(long, global = true, value_name = "DIR")]
    pub profiles_dir: Option<PathBuf>,
    /// The target (warehouse connection) to use [env: STRATA_TARGET]
    #[arg(short = 't', long, global = true)]
    pub target: Option<String>,
    /// Variables for var(), as YAML or JSON: --vars '{start_date: 2024-01-01}'
    #[arg(long, global = true, value_name = "YAML")]
    pub vars: Option<String>,
    /// How many nodes run at once
    #[arg(long, global = true)]
    pub threads: Option<usize>,
    /// How log lines on stderr are written
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// No colours in output (also when NO_COLOR is set)
    #[arg(long, global = true)]
    pub no_color: bool,
    /// Print only errors and data
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Run even where a project or package's `require-dbt-version` excludes the dbt version
    /// strata answers to [env: DBT_VERSION_CHECK=false]
    #[arg(long, global = true)]
    pub no_version_check: bool,
}

impl GlobalArgs {
    /// Whether `require-dbt-version` is checked: not with `--no-version-check`, nor with
    /// dbt's `DBT_VERSION_CHECK` (or `STRATA_VERSION_CHECK`) set to false.
    pub fn version_check(&self) -> bool {
        let off = |name: &str| {
            std::env::var(name).is_ok_and(|v| {
                matches!(v.trim().to_ascii_lowercase().as_str(), "false" | "0" | "no")
            })
        };
        !(self.no_version_check || off("DBT_VERSION_CHECK") || off("STRATA_VERSION_CHECK"))
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load and render every node, check the DAG, write manifest.json
    Parse,
    /// Render selected nodes to SQL under the target path
    Compile(CompileArgs),
    /// List selected nodes
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Build selected models in the warehouse
    Run(RunArgs),
    /// Load selected seed CSV files into the warehouse
    Seed(RunArgs),
    /// Seeds, models and their data tests together, in dependency order
    Build(RunArgs),
    /// Run selected data tests against what is in the warehouse
    Test(RunArgs),
    /// Take the selected snapshots: record each source row's changes as versions (SCD type 2)
    Snapshot(RunArgs),
    /// Commands about sources: `strata source freshness`
    Source {
        #[command(subcommand)]
        command: SourceCommand,
    },
    /// Compile a model (or inline SQL), run it and print the first rows
    Show(ShowArgs),
    /// Check the project, the target's settings and the connection
    Debug,
    /// Delete the target folder and the project's `clean-targets`
    Clean,
    /// Create a new project that builds at once on embedded DuckDB
    Init(InitArgs),
    /// Install the packages in packages.yml (or dependencies.yml) and pin them in
    /// package-lock.yml
    Deps(DepsArgs),
    /// Run again, with the same flags, exactly the nodes the last run, seed, test or build
    /// left in error, failed or skipped (from target/run_results.json)
    Retry,
    /// The project's docs site: `strata docs generate`, `strata docs serve`
    Docs {
        #[command(subcommand)]
        command: DocsCommand,
    },
    /// Where each column of the selected models comes from: the columns of their inputs it is
    /// computed from (column lineage)
    Lineage(LineageArgs),
}

#[derive(Debug, Subcommand)]
pub enum DocsCommand {
    /// Compile every node, read the warehouse's catalog (catalog.json), trace column lineage
    /// and write the static site (index.html and its files) to the target folder
    Generate(DocsGenerateArgs),
    /// Serve the generated site on 127.0.0.1
    Serve(DocsServeArgs),
}

#[derive(Debug, Args, Clone)]
pub struct DocsGenerateArgs {
    /// Do not connect to the warehouse: no column types or row counts, an empty catalog.json
    #[arg(long)]
    pub empty_catalog: bool,
}

#[derive(Debug, Args, Clone)]
pub struct DocsServeArgs {
    /// The port on 127.0.0.1 (0: any free port)
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
}

#[derive(Debug, Args, Clone)]
pub struct LineageArgs {
    #[command(flatten)]
    pub selection: SelectArgs,
    /// Only this column of each selected model
    #[arg(long, value_name = "NAME")]
    pub column: Option<String>,
    /// `text` (one line per column) or `json` (for machines)
    #[arg(long, value_name = "FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub output: String,
}

#[derive(Debug, Subcommand)]
pub enum SourceCommand {
    /// Check how long ago each selected source table was last loaded against its
    /// `freshness` criteria (warn_after, error_after); write sources.json
    Freshness(FreshnessArgs),
}

#[derive(Debug, Args, Clone)]
pub struct FreshnessArgs {
    #[command(flatten)]
    pub selection: SelectArgs,
    /// Where to write the results [default: <target-path>/sources.json]
    #[arg(short = 'o', long, value_name = "PATH")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub struct DepsArgs {
    /// Resolve every package afresh (the newest versions the ranges allow), rewriting the lock
    #[arg(long)]
    pub upgrade: bool,
    /// Only resolve and write package-lock.yml; install nothing
    #[arg(long)]
    pub lock: bool,
}

#[derive(Debug, Args, Clone)]
pub struct ShowArgs {
    /// The model (or other node with SQL) to preview
    #[arg(
        short = 's',
        long = "select",
        value_name = "NODE",
        conflicts_with = "inline",
        required_unless_present = "inline"
    )]
    pub select: Option<String>,
    /// SQL to run instead of a model; `ref()`, `source()` and macros work
    #[arg(long, value_name = "SQL")]
    pub inline: Option<String>,
    /// How many rows to print
    #[arg(long, default_value_t = 5)]
    pub limit: usize,
}

#[derive(Debug, Args, Clone)]
pub struct InitArgs {
    /// The new project's name (and folder)
    pub name: String,
}

#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    #[command(flatten)]
    pub selection: SelectArgs,
    /// Rebuild incremental models from scratch
    #[arg(long)]
    pub full_refresh: bool,
    /// Stop at the first failure; running queries are cancelled
    #[arg(short = 'x', long)]
    pub fail_fast: bool,
    /// Also write the results as JUnit XML to this file (one test case per node)
    #[arg(long, value_name = "PATH")]
    pub junit: Option<PathBuf>,
    /// Run every column test as its own query, never sharing one scan per relation
    #[arg(long, conflicts_with = "batch_tests")]
    pub no_batch_tests: bool,
    /// Share one scan per relation among its not_null / accepted_values tests even where the
    /// warehouse does not gain from it by default (DuckDB)
    #[arg(long)]
    pub batch_tests: bool,
    /// First check the freshness of the sources the selected nodes read; skip every node
    /// downstream of a source past its `error_after` (the run then fails, naming the source)
    /// [env: STRATA_SKIP_STALE_SOURCES]
    #[arg(long)]
    pub skip_stale_sources: bool,
    /// Microbatch models build the batches from this time on (`2024-01-01`,
    /// `2024-01-01T06:00:00Z`; UTC unless a zone is given) instead of those the run would
    #[arg(long, value_name = "TIME", value_parser = event_time)]
    pub event_time_start: Option<chrono::DateTime<chrono::Utc>>,
    /// Microbatch models build the batches before this time (exclusive)
    #[arg(long, value_name = "TIME", value_parser = event_time)]
    pub event_time_end: Option<chrono::DateTime<chrono::Utc>>,
}

fn event_time(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    crate::materialize::microbatch::parse_time(text).ok_or_else(|| {
        format!("`{text}` is not a date or a time: write e.g. 2024-01-01 or 2024-01-01T06:00:00Z")
    })
}

/// Which nodes a command works on.
#[derive(Debug, Args, Clone, Default)]
pub struct SelectArgs {
    /// Nodes to select (dbt selector syntax: name, folder, +x, x+, tag:, path:, …)
    #[arg(short = 's', long = "select", alias = "models", short_alias = 'm', num_args = 1.., value_name = "SELECTOR")]
    pub select: Vec<String>,
    /// Nodes to leave out
    #[arg(long, num_args = 1.., value_name = "SELECTOR")]
    pub exclude: Vec<String>,
    /// A named selector from selectors.yml
    #[arg(long, value_name = "NAME")]
    pub selector: Option<String>,
    /// The target folder of a previous run (its manifest.json, strata's or dbt's) that
    /// `state:`, `result:` and `source_status:` selectors and --defer compare with
    /// [env: STRATA_STATE, DBT_STATE]
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// Read unselected parents the current target lacks from the --state run's relations
    /// [env: STRATA_DEFER, DBT_DEFER]
    #[arg(long)]
    pub defer: bool,
    /// With --defer, read unselected parents from the --state run's relations even where
    /// the current target has them [env: STRATA_FAVOR_STATE, DBT_FAVOR_STATE]
    #[arg(long)]
    pub favor_state: bool,
}

#[derive(Debug, Args, Clone)]
pub struct CompileArgs {
    #[command(flatten)]
    pub selection: SelectArgs,
}

/// How `ls` prints nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum LsOutput {
    Name,
    Path,
    #[default]
    Selector,
    Json,
}

#[derive(Debug, Args, Clone)]
pub struct LsArgs {
    #[command(flatten)]
    pub selection: SelectArgs,
    /// Only these resource types (model, seed, snapshot, source, test, analysis)
    #[arg(long = "resource-type", alias = "resource-types", num_args = 1.., value_name = "TYPE")]
    pub resource_types: Vec<String>,
    /// What to print for each node
    #[arg(short = 'o', long, value_enum, default_value_t = LsOutput::Selector)]
    pub output: LsOutput,
}

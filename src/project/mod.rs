//! Loading a project from disk: `project.yml` (or a dbt project's `dbt_project.yml`), the target,
//! and every model, seed, snapshot, macro, singular test, YAML spec and docs block.
//!
//! The output is a [`Project`]: raw files and parsed specs, nothing rendered yet. Loading reads
//! files in parallel, never touches a warehouse, and collects every problem it finds before it
//! gives up, so users fix their YAML in one round.

pub mod config;
pub mod files;
pub mod packages;
pub mod target;
pub mod version;
pub mod yaml;

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use rayon::prelude::*;
use serde_json::Value as Json;

use crate::diagnostic::{did_you_mean, Diagnostic, Location};
pub use config::{ConfigMap, ConfigTree};
pub use files::{ColumnSpec, NodeSpec, ProjectFile, SchemaFile, SourceSpec, SourceTableSpec};
pub use target::{AdapterKind, ConnectionConfig, Secret, Target, TargetOrigin};

/// A user mistake found while loading, with its location as data.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error("no `project.yml` or `dbt_project.yml` in `{}`", dir.display())]
    NoProjectFile { dir: PathBuf },
    #[error("cannot read `{}`: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid YAML: {message}")]
    Yaml {
        path: PathBuf,
        line: Option<usize>,
        column: Option<usize>,
        message: String,
    },
    #[error("cannot render Jinja in YAML: {message}")]
    YamlJinja {
        path: PathBuf,
        line: Option<usize>,
        message: String,
    },
    #[error("profile `{profile}` not found in `{}`", path.display())]
    ProfileNotFound {
        profile: String,
        path: PathBuf,
        available: Vec<String>,
    },
    #[error("no `profiles.yml` in `{}`", dir.display())]
    ProfilesFileNotFound { dir: PathBuf },
    #[error("target `{target}` not found in {origin}")]
    TargetNotFound {
        target: String,
        origin: String,
        path: PathBuf,
        available: Vec<String>,
    },
    #[error("invalid target `{target}`: {message}")]
    InvalidTarget {
        target: String,
        path: PathBuf,
        message: String,
    },
    #[error("two {kind}s are named `{name}`")]
    DuplicateName {
        kind: &'static str,
        name: String,
        first: PathBuf,
        second: PathBuf,
    },
    #[error("invalid `--vars`: {message}")]
    InvalidVars { message: String },
    #[error("{message}")]
    Packages {
        path: PathBuf,
        line: Option<usize>,
        message: String,
        hint: String,
    },
}

impl ProjectError {
    /// The diagnostic users see, paths relative to the project root.
    pub fn to_diagnostic(&self, root: &Path) -> Diagnostic {
        let rel = |p: &Path| crate::diagnostic::display_path(p, root);
        let message = self.to_string();
        match self {
            ProjectError::NoProjectFile { .. } => Diagnostic::error(message).with_hint(
                "run strata in a project folder, pass `--project-dir`, or create one with `strata init NAME`",
            ),
            ProjectError::Io { path, .. } => Diagnostic::error(message).at_file(rel(path)),
            ProjectError::Yaml {
                path, line, column, ..
            } => {
                let location = Location {
                    path: rel(path),
                    line: *line,
                    column: *column,
                };
                let mut diagnostic = Diagnostic::error(message).at(location);
                if let Ok(text) = std::fs::read_to_string(path) {
                    diagnostic = diagnostic.with_frame_from(&text);
                }
                diagnostic.with_hint("fix the YAML at this position (indentation, a missing `:` or an unclosed quote are the usual causes)")
            }
            ProjectError::YamlJinja { path, line, .. } => Diagnostic::error(message)
                .at(Location {
                    path: rel(path),
                    line: *line,
                    column: None,
                })
                .with_hint("YAML values can use `env_var()`, `var()` and, beside models, `target`"),
            ProjectError::ProfileNotFound {
                profile,
                path,
                available,
            } => Diagnostic::error(message).at_file(rel(path)).with_hint_opt(
                did_you_mean(profile, available.iter().map(String::as_str)).or_else(|| {
                    Some(format!(
                        "add a `{profile}:` profile to this file, or change `profile:` in the project file (profiles here: {})",
                        list_or_none(available)
                    ))
                }),
            ),
            ProjectError::ProfilesFileNotFound { .. } => Diagnostic::error(message)
                .with_hint("pass the folder holding `profiles.yml` to `--profiles-dir`"),
            ProjectError::TargetNotFound {
                target,
                path,
                available,
                ..
            } => Diagnostic::error(message).at_file(rel(path)).with_hint(
                did_you_mean(target, available.iter().map(String::as_str)).unwrap_or_else(|| {
                    format!("available targets: {}", list_or_none(available))
                }),
            ),
            ProjectError::InvalidTarget { path, .. } => Diagnostic::error(message)
                .at_file(rel(path))
                .with_hint("see the README's \"Targets\" section for each adapter's keys"),
            ProjectError::DuplicateName {
                first, second, ..
            } => Diagnostic::error(format!(
                "{message}: `{}` and `{}`",
                rel(first).display(),
                rel(second).display()
            ))
            .at_file(rel(second))
            .with_hint("rename one of the files; node names must be unique in a project"),
            ProjectError::Packages {
                path, line, hint, ..
            } => Diagnostic::error(message)
                .at(Location {
                    path: rel(path),
                    line: *line,
                    column: None,
                })
                .with_hint(hint.clone()),
            ProjectError::InvalidVars { .. } => Diagnostic::error(message)
                .with_hint("pass a YAML or JSON mapping, e.g. --vars '{start_date: 2024-01-01}'"),
        }
    }
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(", ")
    }
}

/// What a command asks of loading.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    pub project_dir: PathBuf,
    pub profiles_dir: Option<PathBuf>,
    pub target: Option<String>,
    pub vars: IndexMap<String, Json>,
    pub threads: Option<usize>,
    /// Load without checking the package install against the lock (`strata clean`, which
    /// must work on a stale install).
    pub skip_package_check: bool,
    /// Load without checking each project's `require-dbt-version` (dbt's
    /// `--no-version-check`).
    pub skip_version_check: bool,
}

/// A SQL file of the project: a model, snapshot, analysis, singular test or macro file.
#[derive(Debug, Clone)]
pub struct SqlFile {
    /// The package it belongs to (the root project's name for its own files).
    pub package: String,
    /// Path relative to the project root.
    pub path: PathBuf,
    /// The file stem; for models the node name.
    pub name: String,
    /// Folders between the resource path and the file, for FQNs and folder selectors.
    pub folders: Vec<String>,
    pub source: String,
}

/// A CSV seed file.
#[derive(Debug, Clone)]
pub struct SeedFile {
    pub package: String,
    pub path: PathBuf,
    pub name: String,
    pub folders: Vec<String>,
    /// Checksum of the file contents (seeds are not read whole at parse time when large).
    pub checksum: String,
}

/// A YAML spec file and its text (kept to point at entries by line).
#[derive(Debug)]
pub struct SpecFile {
    pub package: String,
    pub path: PathBuf,
    /// Folders between the resource path and the file (`models/staging/x.yml` → `staging`),
    /// for the FQNs of the sources and tests it declares.
    pub folders: Vec<String>,
    pub text: String,
    pub spec: SchemaFile,
    /// The file as written, without its Jinja rendered: only where it has some (elsewhere
    /// `spec` is the same). A state comparison compares what was written, so that a change of
    /// target alone (`schema: "{{ target.schema }}"`) changes nothing.
    pub unrendered: Option<SchemaFile>,
    /// Lines of its `name:` entries.
    pub entries: yaml::EntryIndex,
}

impl SpecFile {
    pub fn folders(&self) -> Vec<String> {
        self.folders.clone()
    }
}

/// A `{% docs name %}` block.
#[derive(Debug, Clone)]
pub struct DocBlock {
    pub package: String,
    pub name: String,
    pub path: PathBuf,
    pub text: String,
}

/// Config trees from the project file, one per resource type.
#[derive(Debug, Default, Clone)]
pub struct ConfigTrees {
    pub models: ConfigTree,
    pub seeds: ConfigTree,
    pub snapshots: ConfigTree,
    pub tests: ConfigTree,
    pub sources: ConfigTree,
    pub analyses: ConfigTree,
}

/// A loaded project: every file read and every spec parsed, nothing rendered.
#[derive(Debug)]
pub struct Project {
    pub root: PathBuf,
    /// `project.yml` or `dbt_project.yml`, relative to the root.
    pub project_file: PathBuf,
    pub name: String,
    pub file: ProjectFile,
    pub vars: IndexMap<String, Json>,
    pub target: Target,
    /// Absolute path of the target folder (artifacts, compiled SQL).
    pub target_path: PathBuf,
    pub configs: ConfigTrees,
    /// The config trees as written, without their Jinja rendered: only where the project file
    /// has some (see [`SpecFile::unrendered`]).
    pub unrendered_configs: Option<ConfigTrees>,
    pub models: Vec<SqlFile>,
    pub snapshots: Vec<SqlFile>,
    pub analyses: Vec<SqlFile>,
    pub singular_tests: Vec<SqlFile>,
    pub macro_files: Vec<SqlFile>,
    pub seeds: Vec<SeedFile>,
    pub specs: Vec<SpecFile>,
    pub docs: IndexMap<String, DocBlock>,
    /// Installed packages (`packages-install-path`), in name order.
    pub packages: Vec<Package>,
    pub warnings: Vec<Diagnostic>,
}

/// An installed package: its own project file, config trees and the vars its nodes see.
#[derive(Debug)]
pub struct Package {
    pub name: String,
    /// Its folder, relative to the root project.
    pub dir: PathBuf,
    pub file: ProjectFile,
    pub configs: ConfigTrees,
    /// Its config trees as written, where its project file has Jinja.
    pub unrendered_configs: Option<ConfigTrees>,
    /// Vars as its nodes see them: its own, under the root project's, under `--vars`.
    pub vars: IndexMap<String, Json>,
}

impl Project {
    /// The package `name` (not the root project), if installed.
    pub fn package(&self, name: &str) -> Option<&Package> {
        self.packages.iter().find(|p| p.name == name)
    }

    /// The config trees that apply to a node of `package`, outermost first: the package's
    /// own project file, then the root project's (which configures packages by name).
    pub fn config_trees(&self, package: &str) -> Vec<&ConfigTrees> {
        match self.package(package) {
            Some(p) => vec![&p.configs, &self.configs],
            None => vec![&self.configs],
        }
    }

    /// [`Project::config_trees`] as written, Jinja unrendered.
    pub fn unrendered_config_trees(&self, package: &str) -> Vec<&ConfigTrees> {
        let root = self.unrendered_configs.as_ref().unwrap_or(&self.configs);
        match self.package(package) {
            Some(p) => vec![p.unrendered_configs.as_ref().unwrap_or(&p.configs), root],
            None => vec![root],
        }
    }

    /// The vars a node of `package` sees.
    pub fn vars_for(&self, package: &str) -> &IndexMap<String, Json> {
        self.package(package).map(|p| &p.vars).unwrap_or(&self.vars)
    }

    pub fn model_paths(&self) -> Vec<String> {
        self.file
            .model_paths
            .clone()
            .unwrap_or_else(|| vec!["models".into()])
    }

    pub fn test_paths(&self) -> Vec<String> {
        self.file
            .test_paths
            .clone()
            .unwrap_or_else(|| vec!["tests".into()])
    }
}

/// Finds the project file in `dir`: strata's own first, then dbt's.
pub fn find_project_file(dir: &Path) -> Option<PathBuf> {
    ["project.yml", "dbt_project.yml"]
        .iter()
        .map(|name| dir.join(name))
        .find(|p| p.is_file())
}

/// Renders `{{ env_var(...) }}` and `{{ var(...) }}` in YAML strings, and `{{ target.… }}`
/// where the target is known (the YAML beside models).
fn yaml_renderer<'a>(
    vars: &'a IndexMap<String, Json>,
    target: Option<&'a Json>,
) -> impl Fn(&str) -> Result<String, String> + Sync + 'a {
    move |s: &str| crate::template::render_yaml_string(s, vars, target).map_err(|e| e.to_string())
}

/// Renders YAML strings with `env_var()` and `var()` only, leaving a value that needs more
/// (`target`) as written: the first read of a project file, which chooses the target.
pub fn lenient_renderer(
    vars: &IndexMap<String, Json>,
) -> impl Fn(&str) -> Result<String, String> + Sync + '_ {
    move |s: &str| {
        Ok(crate::template::render_yaml_string(s, vars, None).unwrap_or_else(|_| s.to_string()))
    }
}

/// Loads the project in `options.project_dir`.
pub fn load(options: &LoadOptions) -> Result<Project, Vec<ProjectError>> {
    let root = std::fs::canonicalize(&options.project_dir).map_err(|source| {
        vec![ProjectError::Io {
            path: options.project_dir.clone(),
            source,
        }]
    })?;
    let project_path = find_project_file(&root).ok_or_else(|| {
        vec![ProjectError::NoProjectFile {
            dir: options.project_dir.clone(),
        }]
    })?;
    let text = read(&project_path).map_err(|e| vec![e])?;
    let mut warnings = Vec::new();

    // The project file is read twice, as dbt does: first without the target (it says which
    // profile and target to use; a value that needs `target` stays as written), then, once
    // the target is known, with it.
    let first: ProjectFile =
        yaml::parse(&text, &project_path, &lenient_renderer(&options.vars)).map_err(|e| vec![e])?;
    let vars = root_vars(&options.vars, &first);
    let project_rel = PathBuf::from(project_path.file_name().unwrap_or_default());
    let target_path = root.join(first.target_path.as_deref().unwrap_or("target"));
    let target = resolve_target(options, &root, &first, &target_path, &vars, &mut warnings)
        .map_err(|e| vec![e])?;
    let target_value = target.jinja_value();
    let file: ProjectFile = if text.contains("target") && text.contains("{{") {
        yaml::parse(
            &text,
            &project_path,
            &yaml_renderer(&vars, Some(&target_value)),
        )
        .map_err(|e| vec![e])?
    } else {
        first
    };
    warn_unknown_project_keys(&file, &text, &project_rel, &mut warnings);
    let configs = config_trees(&file, &text, &project_rel, &mut warnings);
    let unrendered_configs = unrendered_config_trees(&text, &project_path);

    let mut errors = Vec::new();
    let root_files = read_files(
        &root,
        Path::new(""),
        &file,
        &file.name,
        &yaml_renderer(&vars, Some(&target_value)),
        &mut errors,
    );

    // Packages: every project installed under `packages-install-path`, checked against the
    // package file and its lock first so a stale install is named before anything else.
    let install_dir = file
        .packages_install_path
        .clone()
        .unwrap_or_else(|| "dbt_packages".into());
    let package_render = yaml_renderer(&options.vars, None);
    match packages::read_packages_file(&root, &package_render) {
        Ok(Some(declared)) if !declared.packages.is_empty() && !options.skip_package_check => {
            if let Err(e) =
                packages::check_installed(&root, &install_dir, &declared, &package_render)
            {
                return Err(vec![e]);
            }
        }
        Ok(_) => {}
        Err(e) => return Err(vec![e]),
    }
    let mut packages: Vec<Package> = Vec::new();
    let mut package_files: Vec<Files> = Vec::new();
    for dir_name in packages::installed_names(&root.join(&install_dir)) {
        let dir = PathBuf::from(&install_dir).join(&dir_name);
        let Some(package_path) = find_project_file(&root.join(&dir)) else {
            continue;
        };
        let package_text = match read(&package_path) {
            Ok(text) => text,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let package_rel = dir.join(package_path.file_name().unwrap_or_default());
        let package_file: ProjectFile = match yaml::parse(
            &package_text,
            &package_rel,
            &yaml_renderer(&vars, Some(&target_value)),
        ) {
            Ok(f) => f,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        if package_file.name == file.name {
            errors.push(ProjectError::Packages {
                path: package_rel,
                line: yaml::find_line(&package_text, "name:"),
                message: format!(
                    "the package in `{}` has the root project's name `{}`",
                    dir.display(),
                    file.name
                ),
                hint: "remove it from the package file, or rename one of the projects".into(),
            });
            continue;
        }
        let package_vars = package_vars(&options.vars, &file, &package_file);
        let mut ignored = Vec::new();
        let package_configs =
            config_trees(&package_file, &package_text, &package_rel, &mut ignored);
        let package_unrendered = unrendered_config_trees(&package_text, &package_path);
        let files = read_files(
            &root,
            &dir,
            &package_file,
            &package_file.name,
            &yaml_renderer(&package_vars, Some(&target_value)),
            &mut errors,
        );
        package_files.push(files);
        packages.push(Package {
            name: package_file.name.clone(),
            dir,
            file: package_file,
            configs: package_configs,
            unrendered_configs: package_unrendered,
            vars: package_vars,
        });
    }

    if !options.skip_version_check {
        check_required_version(&project_rel, &text, &file, None, &mut errors);
        for package in &packages {
            let path = package
                .dir
                .join(find_project_file(&root.join(&package.dir)).map_or_else(
                    || PathBuf::from("dbt_project.yml"),
                    |p| PathBuf::from(p.file_name().unwrap_or_default()),
                ));
            let text = std::fs::read_to_string(root.join(&path)).unwrap_or_default();
            check_required_version(
                &path,
                &text,
                &package.file,
                Some(&package.name),
                &mut errors,
            );
        }
    }

    let mut all = root_files;
    for files in package_files {
        all.extend(files);
    }
    for spec in &all.specs {
        warn_unknown_spec_keys(spec, &mut warnings);
    }
    let mut docs = IndexMap::new();
    for block in all.docs {
        // A docs block of the root project wins over a package's of the same name.
        if block.package != file.name && docs.contains_key(&block.name) {
            continue;
        }
        docs.insert(block.name.clone(), block);
    }
    for package in packages
        .iter()
        .map(|p| p.name.as_str())
        .chain([file.name.as_str()])
    {
        check_duplicates(
            "model",
            all.models
                .iter()
                .filter(|m| m.package == package)
                .map(|m| (&m.name, &m.path)),
            &root,
            &mut errors,
        );
        check_duplicates(
            "seed",
            all.seeds
                .iter()
                .filter(|m| m.package == package)
                .map(|m| (&m.name, &m.path)),
            &root,
            &mut errors,
        );
    }

    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Project {
        root,
        project_file: project_rel,
        name: file.name.clone(),
        vars,
        target,
        target_path,
        configs,
        unrendered_configs,
        models: all.models,
        snapshots: all.snapshots,
        analyses: all.analyses,
        singular_tests: all.singular_tests,
        macro_files: all.macro_files,
        seeds: all.seeds,
        specs: all.specs,
        docs,
        packages,
        warnings,
        file,
    })
}

/// Checks a project's `require-dbt-version` (a version, a range, or a list of them that must
/// all hold) against the dbt version strata answers to, as dbt does before anything runs.
fn check_required_version(
    path: &Path,
    text: &str,
    file: &ProjectFile,
    package: Option<&str>,
    errors: &mut Vec<ProjectError>,
) {
    let Some(required) = &file.require_dbt_version else {
        return;
    };
    let ranges: Vec<String> = match required {
        Json::String(s) => vec![s.clone()],
        Json::Array(items) => items
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
            .collect(),
        Json::Null => return,
        other => vec![other.to_string()],
    };
    let line = yaml::find_line(text, "require-dbt-version:");
    let running = version::dbt_version();
    let mut unmet = Vec::new();
    for range in &ranges {
        match version::Constraint::parse(range) {
            Ok(constraint) if constraint.allows(&running) => {}
            Ok(_) => unmet.push(format!("`{range}`")),
            Err(message) => {
                errors.push(ProjectError::Packages {
                    path: path.to_path_buf(),
                    line,
                    message: format!("invalid `require-dbt-version`: {message}"),
                    hint: "write a version or a range, e.g. `[\">=1.3.0\", \"<2.0.0\"]`".into(),
                });
                return;
            }
        }
    }
    if unmet.is_empty() {
        return;
    }
    let (whose, hint) = match package {
        Some(name) => (
            format!("the package `{name}`"),
            format!("install a version of `{name}` that supports dbt {running} (`strata deps --upgrade`, or pin another version in packages.yml), or pass --no-version-check to run anyway"),
        ),
        None => (
            "this project".to_string(),
            "change `require-dbt-version`, or pass --no-version-check to run anyway".to_string(),
        ),
    };
    errors.push(ProjectError::Packages {
        path: path.to_path_buf(),
        line,
        message: format!(
            "{whose} requires dbt {}, and strata runs projects as dbt {running}",
            unmet.join(", ")
        ),
        hint,
    });
}

/// The vars the root project's nodes see: its `vars:` (those scoped to it win over global
/// ones), under `--vars`.
fn root_vars(cli: &IndexMap<String, Json>, file: &ProjectFile) -> IndexMap<String, Json> {
    let mut vars = IndexMap::new();
    overlay_vars(&mut vars, &file.vars, &file.name);
    vars.extend(cli.iter().map(|(k, v)| (k.clone(), v.clone())));
    vars
}

/// The vars a package's nodes see, as dbt merges them (later wins): the package's own
/// `vars:` (global, then scoped to itself), the root project's (global, then scoped to the
/// package), `--vars`.
fn package_vars(
    cli: &IndexMap<String, Json>,
    root: &ProjectFile,
    package: &ProjectFile,
) -> IndexMap<String, Json> {
    let mut vars = IndexMap::new();
    overlay_vars(&mut vars, &package.vars, &package.name);
    overlay_vars(&mut vars, &root.vars, &package.name);
    vars.extend(cli.iter().map(|(k, v)| (k.clone(), v.clone())));
    vars
}

/// Lays a project file's `vars:` over `vars`: the global ones, then those scoped to `package`.
fn overlay_vars(
    vars: &mut IndexMap<String, Json>,
    declared: &IndexMap<String, Json>,
    package: &str,
) {
    for (key, value) in declared {
        if key != package {
            vars.insert(key.clone(), value.clone());
        }
    }
    if let Some(Json::Object(scoped)) = declared.get(package) {
        for (key, value) in scoped {
            vars.insert(key.clone(), value.clone());
        }
    }
}

fn warn_unknown_project_keys(
    file: &ProjectFile,
    text: &str,
    project_rel: &Path,
    warnings: &mut Vec<Diagnostic>,
) {
    for key in file.extra.keys() {
        warnings.push(
            Diagnostic::warning(format!("unknown key `{key}` in the project file"))
                .at(Location {
                    path: project_rel.to_path_buf(),
                    line: yaml::find_line(text, &format!("{key}:")),
                    column: None,
                })
                .with_hint_opt(did_you_mean(
                    key,
                    [
                        "name",
                        "version",
                        "profile",
                        "model-paths",
                        "seed-paths",
                        "macro-paths",
                        "test-paths",
                        "snapshot-paths",
                        "target-path",
                        "vars",
                        "models",
                        "seeds",
                        "snapshots",
                        "data_tests",
                        "sources",
                        "on-run-start",
                        "on-run-end",
                        "targets",
                        "target",
                        "clean-targets",
                        "packages-install-path",
                    ],
                )),
        );
    }
}

/// The project file's config trees, warning about keys that are neither folders nor configs.
/// Returns its text unchanged: YAML read as written.
fn verbatim(text: &str) -> Result<String, String> {
    Ok(text.to_string())
}

/// A project file's config trees as written, where it has Jinja (see
/// [`Project::unrendered_configs`]).
fn unrendered_config_trees(text: &str, path: &Path) -> Option<ConfigTrees> {
    if !text.contains("{{") {
        return None;
    }
    let file: ProjectFile = yaml::parse(text, path, &verbatim).ok()?;
    Some(config_trees(&file, text, path, &mut Vec::new()))
}

fn config_trees(
    file: &ProjectFile,
    text: &str,
    project_rel: &Path,
    warnings: &mut Vec<Diagnostic>,
) -> ConfigTrees {
    let mut configs = ConfigTrees::default();
    let mut unknown = Vec::new();
    configs.models = ConfigTree::from_yaml(&file.models, "models", &mut unknown);
    configs.seeds = ConfigTree::from_yaml(&file.seeds, "seeds", &mut unknown);
    configs.snapshots = ConfigTree::from_yaml(&file.snapshots, "snapshots", &mut unknown);
    configs.sources = ConfigTree::from_yaml(&file.sources, "sources", &mut unknown);
    configs.analyses = ConfigTree::from_yaml(&file.analyses, "analyses", &mut unknown);
    let mut tests = ConfigTree::from_yaml(&file.tests, "tests", &mut unknown);
    let data_tests = ConfigTree::from_yaml(&file.data_tests, "data_tests", &mut unknown);
    config::merge_into(&mut tests.configs, &data_tests.configs);
    tests.children.extend(data_tests.children);
    configs.tests = tests;
    for key_path in unknown {
        let leaf = key_path.rsplit('.').next().unwrap_or(&key_path).to_string();
        warnings.push(
            Diagnostic::warning(format!("unknown config key `{key_path}`"))
                .at(Location {
                    path: project_rel.to_path_buf(),
                    line: yaml::find_line(text, &format!("{leaf}:")),
                    column: None,
                })
                .with_hint_opt(config::suggest_key(leaf.trim_start_matches('+')).or(Some(
                    "strata ignores it; a folder name must hold a mapping".into(),
                ))),
        );
    }
    configs
}

/// The files of one project (the root, or a package in `base`): every SQL file, seed, YAML
/// spec and docs block under its resource paths.
struct Files {
    models: Vec<SqlFile>,
    snapshots: Vec<SqlFile>,
    analyses: Vec<SqlFile>,
    singular_tests: Vec<SqlFile>,
    macro_files: Vec<SqlFile>,
    seeds: Vec<SeedFile>,
    specs: Vec<SpecFile>,
    docs: Vec<DocBlock>,
}

impl Files {
    fn extend(&mut self, other: Files) {
        self.models.extend(other.models);
        self.snapshots.extend(other.snapshots);
        self.analyses.extend(other.analyses);
        self.singular_tests.extend(other.singular_tests);
        self.macro_files.extend(other.macro_files);
        self.seeds.extend(other.seeds);
        self.specs.extend(other.specs);
        self.docs.extend(other.docs);
    }
}

fn read_files(
    root: &Path,
    base: &Path,
    file: &ProjectFile,
    package: &str,
    renderer: &(dyn Fn(&str) -> Result<String, String> + Sync),
    errors: &mut Vec<ProjectError>,
) -> Files {
    let paths = |configured: &Option<Vec<String>>, default: &str| -> Vec<String> {
        configured
            .clone()
            .unwrap_or_else(|| vec![default.to_string()])
            .into_iter()
            .map(|dir| {
                if base.as_os_str().is_empty() {
                    dir
                } else {
                    base.join(dir).to_string_lossy().replace('\\', "/")
                }
            })
            .collect()
    };
    let model_paths = paths(&file.model_paths, "models");
    let seed_paths = paths(&file.seed_paths, "seeds");
    let macro_paths = paths(&file.macro_paths, "macros");
    let test_paths = paths(&file.test_paths, "tests");
    let snapshot_paths = paths(&file.snapshot_paths, "snapshots");
    let analysis_paths = paths(&file.analysis_paths, "analyses");
    let mut docs_paths = match &file.docs_paths {
        Some(_) => paths(&file.docs_paths, "docs"),
        None => Vec::new(),
    };
    // Docs blocks: `.md` files beside models (and in docs-paths).
    for dir in &model_paths {
        if !docs_paths.contains(dir) {
            docs_paths.push(dir.clone());
        }
    }
    let tree = FileTree::walk(
        root,
        [
            &model_paths,
            &seed_paths,
            &macro_paths,
            &test_paths,
            &snapshot_paths,
            &analysis_paths,
            &docs_paths,
        ]
        .into_iter()
        .flatten(),
    );

    let read_sql = |dirs: &[String], errors: &mut Vec<ProjectError>| -> Vec<SqlFile> {
        let found = tree.files(dirs, &["sql"]);
        let results: Vec<Result<SqlFile, ProjectError>> = found
            .into_par_iter()
            .map(|(path, folders)| {
                let source = read(&root.join(&path))?;
                let name = stem(&path);
                Ok(SqlFile {
                    package: package.to_string(),
                    path,
                    name,
                    folders,
                    source,
                })
            })
            .collect();
        let mut files = Vec::with_capacity(results.len());
        for result in results {
            match result {
                Ok(file) => files.push(file),
                Err(e) => errors.push(e),
            }
        }
        files
    };
    let models = read_sql(&model_paths, errors);
    let snapshots = read_sql(&snapshot_paths, errors);
    let analyses = read_sql(&analysis_paths, errors);
    let mut macro_files = read_sql(&macro_paths, errors);
    let mut singular_tests = Vec::new();
    for file in read_sql(&test_paths, errors) {
        // `tests/generic/` holds `{% test %}` blocks: they are macros, not singular tests.
        match file.folders.first().map(String::as_str) {
            Some("generic") => macro_files.push(file),
            // `tests/fixtures/` holds unit tests' fixture files, read by the unit tests.
            Some("fixtures") => {}
            _ => singular_tests.push(file),
        }
    }

    let seeds: Vec<SeedFile> = tree
        .files(&seed_paths, &["csv"])
        .into_par_iter()
        .filter_map(|(path, folders)| {
            let bytes = std::fs::read(root.join(&path)).ok()?;
            Some(SeedFile {
                package: package.to_string(),
                name: stem(&path),
                checksum: crate::util::sha256_hex(&bytes),
                path,
                folders,
            })
        })
        .collect();

    // YAML specs live beside models, seeds, snapshots, macros, tests and analyses.
    let mut spec_dirs: Vec<String> = Vec::new();
    for dirs in [
        &model_paths,
        &seed_paths,
        &snapshot_paths,
        &macro_paths,
        &test_paths,
        &analysis_paths,
    ] {
        for dir in dirs {
            if !spec_dirs.contains(dir) {
                spec_dirs.push(dir.clone());
            }
        }
    }
    let spec_results: Vec<Result<SpecFile, ProjectError>> = tree
        .files(&spec_dirs, &["yml", "yaml"])
        .into_par_iter()
        .map(|(path, folders)| {
            let text = read(&root.join(&path))?;
            let spec: SchemaFile = yaml::parse(&text, &path, renderer)?;
            let unrendered = text
                .contains("{{")
                .then(|| yaml::parse(&text, &path, &verbatim).ok())
                .flatten();
            let entries = yaml::EntryIndex::build(&text);
            Ok(SpecFile {
                package: package.to_string(),
                path,
                folders,
                text,
                spec,
                unrendered,
                entries,
            })
        })
        .collect();
    let mut specs = Vec::new();
    for result in spec_results {
        match result {
            Ok(spec) => specs.push(spec),
            Err(e) => errors.push(e),
        }
    }
    specs.sort_by(|a, b| a.path.cmp(&b.path));

    let mut docs = Vec::new();
    for (path, _) in tree.files(&docs_paths, &["md"]) {
        match read(&root.join(&path)) {
            Ok(text) => {
                for (name, body) in parse_docs_blocks(&text) {
                    docs.push(DocBlock {
                        package: package.to_string(),
                        name,
                        path: path.clone(),
                        text: body,
                    });
                }
            }
            Err(e) => errors.push(e),
        }
    }
    Files {
        models,
        snapshots,
        analyses,
        singular_tests,
        macro_files,
        seeds,
        specs,
        docs,
    }
}

fn check_duplicates<'a>(
    kind: &'static str,
    items: impl Iterator<Item = (&'a String, &'a PathBuf)>,
    root: &Path,
    errors: &mut Vec<ProjectError>,
) {
    let mut seen: IndexMap<&str, &PathBuf> = IndexMap::new();
    for (name, path) in items {
        if let Some(first) = seen.get(name.as_str()) {
            errors.push(ProjectError::DuplicateName {
                kind,
                name: name.clone(),
                first: root.join(first),
                second: root.join(path),
            });
        } else {
            seen.insert(name, path);
        }
    }
}

fn warn_unknown_spec_keys(spec: &SpecFile, warnings: &mut Vec<Diagnostic>) {
    let mut unknown: Vec<Diagnostic> = Vec::new();
    let warn = |unknown: &mut Vec<Diagnostic>, key_path: String, key: &str| {
        unknown.push(
            Diagnostic::warning(format!("unknown key `{key_path}`"))
                .at(Location {
                    path: spec.path.clone(),
                    line: yaml::find_line(&spec.text, &format!("{key}:")),
                    column: None,
                })
                .with_hint("strata ignores it; check the spelling and indentation"),
        );
    };
    for key in spec.spec.extra.keys() {
        warn(&mut unknown, key.clone(), key);
    }
    let sections = [
        ("models", &spec.spec.models),
        ("seeds", &spec.spec.seeds),
        ("snapshots", &spec.spec.snapshots),
        ("analyses", &spec.spec.analyses),
    ];
    for (section, entries) in sections {
        for entry in entries {
            for key in entry.extra.keys() {
                warn(&mut unknown, format!("{section}.{}.{key}", entry.name), key);
            }
            for (key, _) in &entry.config {
                let normalized = config::normalize_key(key);
                if !config::KNOWN_KEYS.contains(&normalized.as_str()) {
                    unknown.push(
                        Diagnostic::warning(format!(
                            "unknown config key `{section}.{}.config.{key}`",
                            entry.name
                        ))
                        .at(Location {
                            path: spec.path.clone(),
                            line: yaml::find_line(&spec.text, &format!("{key}:")),
                            column: None,
                        })
                        .with_hint_opt(config::suggest_key(&normalized)),
                    );
                }
            }
            for column in &entry.columns {
                for key in column.extra.keys() {
                    warn(
                        &mut unknown,
                        format!("{section}.{}.columns.{}.{key}", entry.name, column.name),
                        key,
                    );
                }
            }
        }
    }
    for source in &spec.spec.sources {
        for key in source.extra.keys() {
            warn(&mut unknown, format!("sources.{}.{key}", source.name), key);
        }
        for table in &source.tables {
            for key in table.extra.keys() {
                warn(
                    &mut unknown,
                    format!("sources.{}.tables.{}.{key}", source.name, table.name),
                    key,
                );
            }
        }
    }
    warnings.extend(unknown);
}

fn resolve_target(
    options: &LoadOptions,
    root: &Path,
    file: &ProjectFile,
    target_path: &Path,
    vars: &IndexMap<String, Json>,
    warnings: &mut Vec<Diagnostic>,
) -> Result<Target, ProjectError> {
    let build = |name: String,
                 profile: Option<String>,
                 raw: &Json,
                 origin: TargetOrigin,
                 path: &Path|
     -> Result<Target, ProjectError> {
        let mut connection: ConnectionConfig =
            serde_json::from_value(raw.clone()).map_err(|e| ProjectError::InvalidTarget {
                target: name.clone(),
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        if let Some(threads) = options.threads {
            match &mut connection {
                ConnectionConfig::Duckdb(c) => c.threads = Some(threads),
                ConnectionConfig::Postgres(c) => c.threads = Some(threads),
                ConnectionConfig::Redshift(c) => c.threads = Some(threads),
                ConnectionConfig::Athena(c) => c.threads = Some(threads),
                ConnectionConfig::Trino(c) => c.threads = Some(threads),
            }
        }
        Ok(Target::from_connection(
            name,
            profile,
            connection,
            origin,
            root,
            target_path,
            &file.name,
        ))
    };
    let pick = |available: &IndexMap<String, Json>,
                default: Option<&String>,
                origin: String,
                path: &Path|
     -> Result<(String, Json), ProjectError> {
        let wanted = options
            .target
            .clone()
            .or_else(|| default.cloned())
            .or_else(|| available.keys().next().cloned());
        let keys: Vec<String> = available.keys().cloned().collect();
        match wanted {
            Some(name) => match available.get(&name) {
                Some(raw) => Ok((name, raw.clone())),
                None => Err(ProjectError::TargetNotFound {
                    target: name,
                    origin,
                    path: path.to_path_buf(),
                    available: keys,
                }),
            },
            None => Err(ProjectError::TargetNotFound {
                target: "(none)".into(),
                origin,
                path: path.to_path_buf(),
                available: keys,
            }),
        }
    };

    let project_file_path = find_project_file(root).unwrap_or_else(|| root.join("project.yml"));
    let target = if let Some(targets) = &file.targets {
        let (name, raw) = pick(
            targets,
            file.target.as_ref(),
            "the project's `targets:`".into(),
            &project_file_path,
        )?;
        build(
            name,
            None,
            &raw,
            TargetOrigin::ProjectFile(project_file_path.clone()),
            &project_file_path,
        )?
    } else {
        let profiles_path = match &options.profiles_dir {
            Some(dir) => {
                let path = dir.join("profiles.yml");
                if !path.is_file() {
                    return Err(ProjectError::ProfilesFileNotFound { dir: dir.clone() });
                }
                Some(path)
            }
            None => target::profile_search_dirs(root)
                .into_iter()
                .map(|d| d.join("profiles.yml"))
                .find(|p| p.is_file()),
        };
        match (&file.profile, profiles_path) {
            (Some(profile), Some(path)) => {
                let text = read(&path)?;
                let renderer = yaml_renderer(vars, None);
                // Read as written; only the profile's `target` and the chosen output are
                // rendered below, as dbt does.
                let verbatim = |s: &str| -> Result<String, String> { Ok(s.to_string()) };
                let profiles: IndexMap<String, Json> = yaml::parse(&text, &path, &verbatim)?;
                let Some(raw_profile) = profiles.get(profile) else {
                    return Err(ProjectError::ProfileNotFound {
                        profile: profile.clone(),
                        path,
                        available: profiles
                            .keys()
                            .filter(|k| *k != "config")
                            .cloned()
                            .collect(),
                    });
                };
                let mut raw_profile = raw_profile.clone();
                if let Some(default_target) = raw_profile.get_mut("target") {
                    yaml::render_value(default_target, &text, &path, &renderer)?;
                }
                let spec: target::ProfileSpec =
                    serde_json::from_value(raw_profile).map_err(|e| {
                        ProjectError::InvalidTarget {
                            target: profile.clone(),
                            path: path.clone(),
                            message: e.to_string(),
                        }
                    })?;
                let (name, mut raw) = pick(
                    &spec.outputs,
                    spec.target.as_ref(),
                    format!("profile `{profile}`"),
                    &path,
                )?;
                yaml::render_value(&mut raw, &text, &path, &renderer)?;
                build(
                    name,
                    Some(profile.clone()),
                    &raw,
                    TargetOrigin::Profiles(path.clone()),
                    &path,
                )?
            }
            _ => {
                if let Some(wanted) = &options.target {
                    if wanted != "dev" {
                        return Err(ProjectError::TargetNotFound {
                            target: wanted.clone(),
                            origin: "this project (it has no profile and no `targets:`)".into(),
                            path: project_file_path.clone(),
                            available: vec!["dev".into()],
                        });
                    }
                }
                build(
                    "dev".into(),
                    None,
                    &serde_json::json!({"type": "duckdb"}),
                    TargetOrigin::Default,
                    &project_file_path,
                )?
            }
        }
    };
    for key in target.connection.unknown_keys() {
        warnings.push(Diagnostic::warning(format!(
            "unknown key `{key}` in target `{}`; strata ignores it",
            target.name
        )));
    }
    Ok(target)
}

fn read(path: &Path) -> Result<String, ProjectError> {
    std::fs::read_to_string(path).map_err(|source| ProjectError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A file found under a resource folder: its path relative to the project root, and the
/// folders between the resource folder and the file.
type Found = (PathBuf, Vec<String>);

/// Every file under the project's resource folders, each folder walked once. The model folders
/// hold SQL, YAML and docs side by side, and one walk of a 10,000-model folder costs tens of
/// milliseconds, so the walks are shared rather than repeated per extension.
struct FileTree {
    walked: std::collections::HashMap<String, Vec<Found>>,
}

impl FileTree {
    /// Walks each distinct folder of `dirs` (relative to `root`), in parallel.
    fn walk<'a>(root: &Path, dirs: impl IntoIterator<Item = &'a String>) -> Self {
        let mut distinct: Vec<&String> = Vec::new();
        for dir in dirs {
            if !distinct.contains(&dir) {
                distinct.push(dir);
            }
        }
        let walked = distinct
            .into_par_iter()
            .map(|dir| (dir.clone(), walk_folder(root, dir)))
            .collect();
        Self { walked }
    }

    /// The files under `dirs` with one of `extensions`: folder by folder in the order given,
    /// each folder's files sorted as the walk met them.
    fn files(&self, dirs: &[String], extensions: &[&str]) -> Vec<Found> {
        dirs.iter()
            .filter_map(|dir| self.walked.get(dir))
            .flatten()
            .filter(|(path, _)| {
                path.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| extensions.contains(&e))
            })
            .cloned()
            .collect()
    }
}

/// The files under `dir` (relative to `root`), sorted by name within each folder. Hidden
/// entries are skipped; a missing folder has no files.
fn walk_folder(root: &Path, dir: &str) -> Vec<Found> {
    let base = root.join(dir);
    let mut found = Vec::new();
    if !base.is_dir() {
        return found;
    }
    let walker = walkdir::WalkDir::new(&base)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'));
    for entry in walker.flatten() {
        if !entry.file_type().is_file() {
            continue;
        }
        let path = entry.path();
        let Ok(rel_to_base) = path.strip_prefix(&base) else {
            continue;
        };
        let folders = rel_to_base
            .parent()
            .map(|p| {
                p.components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        let rel = path.strip_prefix(root).unwrap_or(path).to_path_buf();
        found.push((rel, folders));
    }
    found
}

/// `{% docs name %}…{% enddocs %}` blocks in a markdown file.
pub fn parse_docs_blocks(text: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{%") {
        let after = &rest[start + 2..];
        let Some(close) = after.find("%}") else { break };
        let tag = after[..close]
            .trim()
            .trim_start_matches('-')
            .trim_end_matches('-')
            .trim();
        let body_start = &after[close + 2..];
        if let Some(name) = tag.strip_prefix("docs ") {
            let name = name.trim().to_string();
            if let Some(end) = body_start.find("enddocs") {
                let body = &body_start[..end];
                let body = body.rfind("{%").map(|i| &body[..i]).unwrap_or(body);
                blocks.push((name, body.trim().to_string()));
                rest = &body_start[end..];
                continue;
            }
        }
        rest = body_start;
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_folder_is_walked_once_and_filtered_per_extension() {
        let dir = tempfile::tempdir().unwrap();
        for path in [
            "models/b.sql",
            "models/a.sql",
            "models/a.yml",
            "models/docs.md",
            "models/gold/c.sql",
            "models/gold/c.yaml",
            "models/.hidden/d.sql",
            "models/.e.sql",
            "seeds/s.csv",
        ] {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "").unwrap();
        }
        let dirs = ["models", "seeds", "models", "missing"].map(String::from);
        let tree = FileTree::walk(dir.path(), &dirs);
        let mut walked: Vec<&String> = tree.walked.keys().collect();
        walked.sort();
        assert_eq!(walked, ["missing", "models", "seeds"]);

        let files = |dirs: &[&str], extensions: &[&str]| -> Vec<(String, Vec<String>)> {
            let dirs: Vec<String> = dirs.iter().map(|d| d.to_string()).collect();
            tree.files(&dirs, extensions)
                .into_iter()
                .map(|(path, folders)| (path.to_string_lossy().into_owned(), folders))
                .collect()
        };
        let none: Vec<String> = Vec::new();
        assert_eq!(
            files(&["models"], &["sql"]),
            [
                ("models/a.sql".to_string(), none.clone()),
                ("models/b.sql".to_string(), none.clone()),
                ("models/gold/c.sql".to_string(), vec!["gold".to_string()]),
            ]
        );
        assert_eq!(
            files(&["seeds", "models", "missing"], &["yml", "yaml", "csv"]),
            [
                ("seeds/s.csv".to_string(), none.clone()),
                ("models/a.yml".to_string(), none.clone()),
                ("models/gold/c.yaml".to_string(), vec!["gold".to_string()]),
            ]
        );
        assert_eq!(
            files(&["models"], &["md"]),
            [("models/docs.md".to_string(), none)]
        );
    }

    #[test]
    fn docs_blocks_are_extracted() {
        let blocks = parse_docs_blocks(
            "x {% docs orders %}\nAll orders.\n{% enddocs %}\n{% docs b %}B{% enddocs %}",
        );
        assert_eq!(
            blocks,
            vec![
                ("orders".to_string(), "All orders.".to_string()),
                ("b".to_string(), "B".to_string())
            ]
        );
    }
}

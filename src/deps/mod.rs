//! `strata deps`: resolving a project's packages (local folders, git repositories, the package
//! hub, tarballs) with their own dependencies, pinning them in `package-lock.yml` as dbt does,
//! and installing them into `packages-install-path` all at once.
//!
//! The install is built in a scratch folder inside the project and swapped in by two renames,
//! so a failed or interrupted `deps` leaves the previous install as it was. Loading a project
//! never comes here: it only checks that what is installed is what the lock pins
//! (`project::packages::check_installed`).

pub mod fetch;

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde_json::Value as Json;

use crate::diagnostic::{Diagnostic, Location};
use crate::project::packages::{
    self, redact_url, LockFile, PackageSpec, PackagesFile, Source, INSTALLED_LOCK, LOCK_FILE,
    LOCK_HASH_KEY,
};
use crate::project::version::{self, Constraint, Version};
use crate::project::{find_project_file, yaml, ProjectError, ProjectFile};

/// The package hub dbt uses; `DBT_PACKAGE_HUB_URL` (or `STRATA_PACKAGE_HUB_URL`) replaces it.
pub const DEFAULT_HUB_URL: &str = "https://hub.getdbt.com/";

/// What went wrong, with where.
#[derive(Debug, thiserror::Error)]
pub enum DepsError {
    #[error(transparent)]
    Project(#[from] ProjectError),
    #[error("cannot fetch {what}: {message}")]
    Fetch { what: String, message: String },
    #[error("{message}")]
    Resolve {
        path: PathBuf,
        line: Option<usize>,
        message: String,
        hint: String,
    },
    #[error("cannot write `{}`: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl DepsError {
    /// The error placed at the package file's entry that asked for what failed: a failed
    /// download or clone otherwise names only its URL.
    fn at_entry(self, path: &Path, line: Option<usize>) -> DepsError {
        match self {
            DepsError::Fetch { .. } => DepsError::Resolve {
                path: path.to_path_buf(),
                line,
                message: self.to_string(),
                hint: FETCH_HINT.into(),
            },
            other => other,
        }
    }

    pub fn to_diagnostic(&self, root: &Path) -> Diagnostic {
        match self {
            DepsError::Project(e) => e.to_diagnostic(root),
            DepsError::Fetch { .. } => Diagnostic::error(self.to_string()).with_hint(FETCH_HINT),
            DepsError::Resolve {
                path, line, hint, ..
            } => Diagnostic::error(self.to_string())
                .at(Location {
                    path: path.clone(),
                    line: *line,
                    column: None,
                })
                .with_hint(hint.clone()),
            DepsError::Io { .. } => Diagnostic::error(self.to_string()),
        }
    }
}

const FETCH_HINT: &str = "check the URL, the network and your credentials; nothing was installed";

/// What the command asks.
#[derive(Debug, Clone)]
pub struct DepsOptions {
    /// Resolve afresh, ignoring the lock (`--upgrade`).
    pub upgrade: bool,
    /// Write the lock only (`--lock`).
    pub lock_only: bool,
    pub hub_url: String,
    /// `--vars`, for `var()` in the package file.
    pub vars: IndexMap<String, Json>,
}

/// One installed package.
#[derive(Debug, Clone)]
pub struct Installed {
    pub name: String,
    /// Where it came from, as the package file says.
    pub label: String,
    /// The version, commit or `local`.
    pub version: String,
}

/// What `deps` did.
#[derive(Debug, Default)]
pub struct Report {
    pub installed: Vec<Installed>,
    /// Whether `package-lock.yml` was (re)written.
    pub lock_written: bool,
    /// Hub packages with a newer version than the one installed: the name, the newest
    /// version its ranges allow (what `--upgrade` installs) if newer, and the newest release.
    pub updates: Vec<(String, Option<String>, String)>,
    pub warnings: Vec<Diagnostic>,
    /// The project has no packages.
    pub nothing: bool,
}

/// A package pinned to exactly one thing to install.
#[derive(Debug, Clone, PartialEq)]
enum Pinned {
    Local {
        /// As written, relative to the root project.
        written: String,
    },
    Git {
        /// As written (may hold `env_var()`), and rendered.
        written: String,
        url: String,
        commit: String,
        subdirectory: Option<String>,
        /// A `private:` entry, with its `provider:`: locked as written, as dbt does.
        private: Option<Option<String>>,
    },
    Hub {
        package: String,
        version: Version,
        tarball: String,
    },
    Tarball {
        url: String,
    },
}

/// A resolved package.
#[derive(Debug, Clone)]
struct Resolved {
    name: String,
    pinned: Pinned,
    label: String,
    /// Its files, when fetched while resolving (local folders, git checkouts).
    files: Option<PathBuf>,
}

/// Runs `strata deps` for the project in `project_dir`; `log` gets one line per step.
pub fn run(
    project_dir: &Path,
    options: &DepsOptions,
    log: &mut dyn FnMut(&str),
) -> Result<Report, DepsError> {
    let root = std::fs::canonicalize(project_dir).map_err(|source| ProjectError::Io {
        path: project_dir.to_path_buf(),
        source,
    })?;
    let project_path = find_project_file(&root).ok_or_else(|| ProjectError::NoProjectFile {
        dir: project_dir.to_path_buf(),
    })?;
    let text = std::fs::read_to_string(&project_path).map_err(|source| ProjectError::Io {
        path: project_path.clone(),
        source,
    })?;
    let file: ProjectFile = yaml::parse(
        &text,
        &project_path,
        &crate::project::lenient_renderer(&options.vars),
    )?;
    let install_dir = file
        .packages_install_path
        .clone()
        .unwrap_or_else(|| "dbt_packages".into());
    let render = |s: &str| -> Result<String, String> {
        crate::template::render_yaml_string(s, &options.vars, None).map_err(|e| e.to_string())
    };
    let mut report = Report::default();
    let Some(declared) = packages::read_packages_file(&root, &render)? else {
        report.nothing = true;
        return Ok(report);
    };
    if declared.packages.is_empty() {
        report.nothing = true;
        return Ok(report);
    }

    let work = tempfile::Builder::new()
        .prefix(".strata-deps-")
        .tempdir_in(&root)
        .map_err(|source| DepsError::Io {
            path: root.clone(),
            source,
        })?;
    let hash = declared.lock_hash();
    let lock = packages::read_lock(&root, &render)?;
    let current_lock = lock
        .as_ref()
        .filter(|l| !options.upgrade && l.hash.as_deref() == Some(hash.as_str()));
    let mut resolver = Resolver {
        root: &root,
        work: work.path(),
        hub_url: &options.hub_url,
        hub: HashMap::new(),
        fetched: 0,
        warnings: Vec::new(),
        log,
    };
    let resolved = match current_lock {
        Some(lock) => {
            let resolved = resolver.pinned_by(lock)?;
            // The package file's ranges, to say what `--upgrade` would install.
            for spec in &declared.packages {
                if let Source::Hub {
                    package,
                    versions,
                    install_prerelease,
                } = &spec.source
                {
                    resolver.ask_hub(
                        package,
                        versions,
                        *install_prerelease,
                        spec,
                        &declared.path,
                    )?;
                }
            }
            resolved
        }
        None => {
            let resolved = resolver.resolve(&declared)?;
            write_lock(&root, &resolved, &hash)?;
            report.lock_written = true;
            (resolver.log)(&format!("wrote {LOCK_FILE}"));
            resolved
        }
    };
    report.warnings.append(&mut resolver.warnings);
    if options.lock_only {
        return Ok(report);
    }

    // Everything goes into a staging folder first, then replaces the install in two renames.
    let staging = work.path().join("install");
    std::fs::create_dir_all(&staging).map_err(|source| DepsError::Io {
        path: staging.clone(),
        source,
    })?;
    for package in &resolved {
        let dest = staging.join(&package.name);
        resolver.install(package, &dest)?;
        report.installed.push(Installed {
            name: package.name.clone(),
            label: package.label.clone(),
            version: match &package.pinned {
                Pinned::Local { .. } => "local".into(),
                Pinned::Git { commit, .. } => commit.clone(),
                Pinned::Hub { version, .. } => version.to_string(),
                Pinned::Tarball { .. } => "tarball".into(),
            },
        });
        if let Pinned::Hub {
            package: hub_name,
            version,
            ..
        } = &package.pinned
        {
            if let Some((in_range, latest)) = resolver.newer(hub_name) {
                if &latest > version {
                    report.updates.push((
                        package.name.clone(),
                        in_range.filter(|v| v > version).map(|v| v.to_string()),
                        latest.to_string(),
                    ));
                }
            }
        }
    }
    std::fs::copy(root.join(LOCK_FILE), staging.join(INSTALLED_LOCK)).map_err(|source| {
        DepsError::Io {
            path: PathBuf::from(LOCK_FILE),
            source,
        }
    })?;
    let target = root.join(&install_dir);
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(|source| DepsError::Io {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    let old = work.path().join("previous");
    if target.exists() || target.is_symlink() {
        std::fs::rename(&target, &old).map_err(|source| DepsError::Io {
            path: target.clone(),
            source,
        })?;
    }
    if let Err(source) = std::fs::rename(&staging, &target) {
        // Put the previous install back before reporting.
        let _ = std::fs::rename(&old, &target);
        return Err(DepsError::Io {
            path: target,
            source,
        });
    }
    Ok(report)
}

/// What the resolver keeps of a hub package.
#[derive(Debug)]
struct HubPackage {
    /// The package's project name (`dbt_utils`).
    name: String,
    /// `versions` of the hub's answer.
    versions: serde_json::Map<String, Json>,
    constraints: Vec<(Constraint, String)>,
    prerelease: bool,
    picked: Option<Version>,
    /// Where it was first asked for (for errors).
    path: PathBuf,
    line: Option<usize>,
}

struct Resolver<'a> {
    root: &'a Path,
    work: &'a Path,
    hub_url: &'a str,
    hub: HashMap<String, HubPackage>,
    fetched: usize,
    warnings: Vec<Diagnostic>,
    log: &'a mut dyn FnMut(&str),
}

impl Resolver<'_> {
    /// A fresh folder in the work area.
    fn scratch(&mut self, kind: &str) -> PathBuf {
        self.fetched += 1;
        self.work.join(format!("{kind}-{}", self.fetched))
    }

    /// Resolves the package file's entries and, breadth first, theirs.
    fn resolve(&mut self, declared: &PackagesFile) -> Result<Vec<Resolved>, DepsError> {
        let mut queue: VecDeque<(PackageSpec, PathBuf)> = declared
            .packages
            .iter()
            .cloned()
            .map(|spec| (spec, declared.path.clone()))
            .collect();
        let mut resolved: IndexMap<String, Resolved> = IndexMap::new();
        // Hub packages in the order first asked for, resolved once every range is known.
        let mut hub_order: Vec<String> = Vec::new();
        let mut expanded: Vec<(String, Version)> = Vec::new();
        loop {
            while let Some((spec, declared_in)) = queue.pop_front() {
                if let Source::Hub {
                    package,
                    versions,
                    install_prerelease,
                } = &spec.source
                {
                    self.ask_hub(package, versions, *install_prerelease, &spec, &declared_in)?;
                    if !hub_order.contains(package) {
                        hub_order.push(package.clone());
                    }
                    continue;
                }
                let package = self.fetch_spec(&spec, &declared_in)?;
                if let Some(existing) = resolved.get(&package.name) {
                    if existing.pinned != package.pinned {
                        return Err(DepsError::Resolve {
                            path: declared_in,
                            line: spec.line,
                            message: format!(
                                "package `{}` is asked for twice, as {} and as {}",
                                package.name, existing.label, package.label
                            ),
                            hint: "keep one source for each package".into(),
                        });
                    }
                    continue;
                }
                // Its own dependencies, read from its files.
                if let Some(files) = &package.files {
                    if let Some(nested) = packages::read_packages_file(files, &|s| {
                        crate::template::render_yaml_string(s, &IndexMap::new(), None)
                            .map_err(|e| e.to_string())
                    })? {
                        let path = files
                            .strip_prefix(self.root)
                            .unwrap_or(files)
                            .join(&nested.path);
                        for spec in nested.packages {
                            queue.push_back((spec, path.clone()));
                        }
                    }
                }
                resolved.insert(package.name.clone(), package);
            }
            // Pick each hub package's version; a newly picked version's own dependencies
            // (from the hub's metadata) may add ranges, so go round until nothing changes.
            let mut more = false;
            for package in &hub_order {
                let version = self.pick_hub(package)?;
                if expanded.iter().any(|(p, v)| p == package && *v == version) {
                    continue;
                }
                expanded.push((package.clone(), version.clone()));
                let deps = self.hub_dependencies(package, &version);
                for spec in deps {
                    queue.push_back((spec, PathBuf::from(format!("{package} {version} (hub)"))));
                    more = true;
                }
            }
            if !more && queue.is_empty() {
                break;
            }
        }
        for package in &hub_order {
            let resolved_hub = self.hub_resolved(package)?;
            if let Some(existing) = resolved.get(&resolved_hub.name) {
                return Err(DepsError::Resolve {
                    path: PathBuf::from("packages.yml"),
                    line: None,
                    message: format!(
                        "package `{}` is asked for twice, as {} and as {}",
                        resolved_hub.name, existing.label, resolved_hub.label
                    ),
                    hint: "keep one source for each package".into(),
                });
            }
            resolved.insert(resolved_hub.name.clone(), resolved_hub);
        }
        Ok(resolved.into_values().collect())
    }

    /// The packages a lock pins, each fetched as pinned (the lock lists every dependency).
    fn pinned_by(&mut self, lock: &LockFile) -> Result<Vec<Resolved>, DepsError> {
        let mut out = Vec::new();
        for spec in &lock.packages {
            let path = PathBuf::from(LOCK_FILE);
            match &spec.source {
                Source::Hub {
                    package,
                    versions,
                    install_prerelease,
                } => {
                    self.ask_hub(package, versions, *install_prerelease, spec, &path)?;
                    self.pick_hub(package)?;
                    out.push(self.hub_resolved(package)?);
                }
                _ => out.push(self.fetch_spec(spec, &path)?),
            }
        }
        Ok(out)
    }

    /// Fetches a local, git or tarball entry to learn its name (and, for git, its commit); a
    /// failure names the entry.
    fn fetch_spec(
        &mut self,
        spec: &PackageSpec,
        declared_in: &Path,
    ) -> Result<Resolved, DepsError> {
        self.fetch_entry(spec, declared_in)
            .map_err(|e| e.at_entry(declared_in, spec.line))
    }

    fn fetch_entry(
        &mut self,
        spec: &PackageSpec,
        declared_in: &Path,
    ) -> Result<Resolved, DepsError> {
        let label = spec.label();
        match &spec.source {
            Source::Local { path } => {
                let full = self.root.join(path);
                let name =
                    packages::project_field(&full, "name").ok_or_else(|| DepsError::Resolve {
                        path: declared_in.to_path_buf(),
                        line: spec.line,
                        message: format!("local package `{path}` has no dbt_project.yml"),
                        hint: "point `local:` at a dbt project folder, relative to the project"
                            .into(),
                    })?;
                Ok(Resolved {
                    name,
                    pinned: Pinned::Local {
                        written: path.clone(),
                    },
                    label,
                    files: Some(full),
                })
            }
            Source::Git {
                url,
                revision,
                subdirectory,
                warn_unpinned,
            }
            | Source::Private {
                repo: url,
                revision,
                subdirectory,
                warn_unpinned,
                ..
            } => {
                let url = match &spec.source {
                    Source::Private { repo, provider, .. } => {
                        private_url(repo, provider.as_deref())
                    }
                    _ => url.clone(),
                };
                if revision.is_none() && *warn_unpinned != Some(false) {
                    self.warnings.push(
                        Diagnostic::warning(format!(
                            "git package {} is not pinned: the default branch is installed",
                            redact_url(&url)
                        ))
                        .at(Location {
                            path: declared_in.to_path_buf(),
                            line: spec.line,
                            column: None,
                        })
                        .with_hint(
                            "add `revision:` with a tag or commit, or `warn-unpinned: false`",
                        ),
                    );
                }
                (self.log)(&format!("fetching {}", redact_url(&url)));
                let checkout = self.scratch("git");
                let commit = fetch::git_checkout(&url, revision.as_deref(), &checkout)?;
                let files = match subdirectory {
                    Some(sub) => checkout.join(sub),
                    None => checkout,
                };
                let name =
                    packages::project_field(&files, "name").ok_or_else(|| DepsError::Resolve {
                        path: declared_in.to_path_buf(),
                        line: spec.line,
                        message: format!(
                            "git package {} has no dbt_project.yml{}",
                            redact_url(&url),
                            subdirectory
                                .as_deref()
                                .map(|s| format!(" in `{s}`"))
                                .unwrap_or_default()
                        ),
                        hint: "set `subdirectory:` to the folder holding the project".into(),
                    })?;
                let written = spec
                    .unrendered
                    .get("git")
                    .or_else(|| spec.unrendered.get("private"))
                    .and_then(Json::as_str)
                    .unwrap_or(&url)
                    .to_string();
                Ok(Resolved {
                    name,
                    pinned: Pinned::Git {
                        written,
                        url,
                        commit,
                        subdirectory: subdirectory.clone(),
                        private: match &spec.source {
                            Source::Private { provider, .. } => Some(provider.clone()),
                            _ => None,
                        },
                    },
                    label,
                    files: Some(files),
                })
            }
            Source::Tarball { url } => {
                let name = spec.name.clone().unwrap_or_default();
                Ok(Resolved {
                    name,
                    pinned: Pinned::Tarball { url: url.clone() },
                    label,
                    files: None,
                })
            }
            Source::Hub { .. } => unreachable!("hub packages are resolved by `ask_hub`"),
        }
    }

    /// Records a hub requirement, fetching the package's versions once.
    fn ask_hub(
        &mut self,
        package: &str,
        versions: &[String],
        prerelease: bool,
        spec: &PackageSpec,
        declared_in: &Path,
    ) -> Result<(), DepsError> {
        self.ask_hub_for(package, versions, prerelease, spec, declared_in)
            .map_err(|e| e.at_entry(declared_in, spec.line))
    }

    fn ask_hub_for(
        &mut self,
        package: &str,
        versions: &[String],
        prerelease: bool,
        spec: &PackageSpec,
        declared_in: &Path,
    ) -> Result<(), DepsError> {
        let mut constraints = Vec::new();
        for text in versions {
            let constraint = Constraint::parse(text).map_err(|message| DepsError::Resolve {
                path: declared_in.to_path_buf(),
                line: spec.line,
                message: format!("package `{package}`: {message}"),
                hint: "write `version: 1.2.3` or a list of ranges like [\">=1.0.0\", \"<2.0.0\"]"
                    .into(),
            })?;
            constraints.push((constraint, declared_in.display().to_string()));
        }
        if !self.hub.contains_key(package) {
            let url = format!(
                "{}/api/v1/{package}.json",
                self.hub_url.trim_end_matches('/')
            );
            (self.log)(&format!("fetching {package} from the package hub"));
            let body = fetch::http_get(&url).map_err(|e| match e {
                DepsError::Fetch { message, .. } if message.contains("404") => DepsError::Resolve {
                    path: declared_in.to_path_buf(),
                    line: spec.line,
                    message: format!(
                        "package `{package}` is not on the package hub ({})",
                        self.hub_url
                    ),
                    hint: "check the owner and name at hub.getdbt.com".into(),
                },
                other => other,
            })?;
            let answer: Json = serde_json::from_slice(&body).map_err(|e| DepsError::Fetch {
                what: url.clone(),
                message: format!("the hub's answer is not JSON: {e}"),
            })?;
            let name = answer
                .get("name")
                .and_then(Json::as_str)
                .map(str::to_string);
            let versions = answer.get("versions").and_then(Json::as_object).cloned();
            let (Some(name), Some(versions)) = (name, versions) else {
                return Err(DepsError::Fetch {
                    what: url,
                    message: "the hub's answer has no `name` and `versions`".into(),
                });
            };
            self.hub.insert(
                package.to_string(),
                HubPackage {
                    name,
                    versions,
                    constraints: Vec::new(),
                    prerelease: false,
                    picked: None,
                    path: declared_in.to_path_buf(),
                    line: spec.line,
                },
            );
        }
        if let Some(entry) = self.hub.get_mut(package) {
            entry.constraints.extend(constraints);
            entry.prerelease |= prerelease;
        }
        Ok(())
    }

    fn pick_hub(&mut self, package: &str) -> Result<Version, DepsError> {
        let Some(entry) = self.hub.get_mut(package) else {
            return Err(DepsError::Fetch {
                what: package.to_string(),
                message: "not asked for".into(),
            });
        };
        let constraints: Vec<Constraint> =
            entry.constraints.iter().map(|(c, _)| c.clone()).collect();
        let picked = version::pick(
            entry.versions.keys().map(String::as_str),
            &constraints,
            entry.prerelease,
        )
        .ok_or_else(|| {
            let asked: Vec<String> = entry
                .constraints
                .iter()
                .map(|(c, who)| format!("{}{} ({who})", op_text(c), c.version))
                .collect();
            DepsError::Resolve {
                path: entry.path.clone(),
                line: entry.line,
                message: format!(
                    "no version of `{package}` satisfies {}; the hub has {}",
                    asked.join(", "),
                    entry
                        .versions
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                hint: "widen the version range in packages.yml".into(),
            }
        })?;
        entry.picked = Some(picked.clone());
        Ok(picked)
    }

    /// The hub's list of a version's own package dependencies.
    fn hub_dependencies(&self, package: &str, version: &Version) -> Vec<PackageSpec> {
        let Some(entry) = self.hub.get(package) else {
            return Vec::new();
        };
        let Some(meta) = version_meta(&entry.versions, version) else {
            return Vec::new();
        };
        meta.get("packages")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
            .map(|entry| packages::parse_entry(entry, entry.clone(), None))
            .collect::<Result<Vec<_>, _>>()
            .unwrap_or_default()
    }

    fn hub_resolved(&self, package: &str) -> Result<Resolved, DepsError> {
        let entry = self.hub.get(package).ok_or_else(|| DepsError::Fetch {
            what: package.to_string(),
            message: "not asked for".into(),
        })?;
        let version = entry.picked.clone().ok_or_else(|| DepsError::Fetch {
            what: package.to_string(),
            message: "no version picked".into(),
        })?;
        let tarball = version_meta(&entry.versions, &version)
            .and_then(|m| m.get("downloads"))
            .and_then(|d| d.get("tarball"))
            .and_then(Json::as_str)
            .map(str::to_string)
            .ok_or_else(|| DepsError::Fetch {
                what: format!("{package} {version}"),
                message: "the hub lists no tarball for this version".into(),
            })?;
        Ok(Resolved {
            name: entry.name.clone(),
            pinned: Pinned::Hub {
                package: package.to_string(),
                version,
                tarball,
            },
            label: format!("package: {package}"),
            files: None,
        })
    }

    /// The newest release of `package` its ranges allow, and the newest release of all.
    fn newer(&self, package: &str) -> Option<(Option<Version>, Version)> {
        let entry = self.hub.get(package)?;
        let versions = || entry.versions.keys().map(String::as_str);
        let latest = version::pick(versions(), &[], false)?;
        let ranges: Vec<Constraint> = entry
            .constraints
            .iter()
            .map(|(c, _)| c.clone())
            .filter(|c| c.op != version::Op::Eq)
            .collect();
        let in_range = (!ranges.is_empty())
            .then(|| version::pick(versions(), &ranges, entry.prerelease))
            .flatten();
        Some((in_range, latest))
    }

    /// Puts a resolved package's files at `dest`.
    fn install(&mut self, package: &Resolved, dest: &Path) -> Result<(), DepsError> {
        let io = |source: std::io::Error| DepsError::Io {
            path: dest.to_path_buf(),
            source,
        };
        match (&package.pinned, &package.files) {
            (Pinned::Local { .. }, Some(files)) => {
                (self.log)(&format!("installing {} (local)", package.name));
                link_or_copy(files, dest).map_err(io)
            }
            (Pinned::Git { commit, .. }, Some(files)) => {
                (self.log)(&format!(
                    "installing {} at {}",
                    package.name,
                    &commit[..commit.len().min(12)]
                ));
                match std::fs::rename(files, dest) {
                    Ok(()) => Ok(()),
                    Err(_) => fetch::copy_dir(files, dest).map_err(io),
                }
            }
            (
                Pinned::Git {
                    url,
                    commit,
                    subdirectory,
                    ..
                },
                None,
            ) => {
                let checkout = self.scratch("git");
                fetch::git_checkout(url, Some(commit), &checkout)?;
                let files = match subdirectory {
                    Some(sub) => checkout.join(sub),
                    None => checkout,
                };
                std::fs::rename(&files, dest).map_err(io)
            }
            (
                Pinned::Hub {
                    version, tarball, ..
                },
                _,
            ) => {
                (self.log)(&format!("installing {} {version}", package.name));
                let bytes = fetch::http_get(tarball)?;
                fetch::untar(&bytes, dest, &redact_url(tarball))
            }
            (Pinned::Tarball { url }, _) => {
                (self.log)(&format!(
                    "installing {} from {}",
                    package.name,
                    redact_url(url)
                ));
                let bytes = fetch::http_get(url)?;
                fetch::untar(&bytes, dest, &redact_url(url))
            }
            (Pinned::Local { written }, None) => Err(DepsError::Resolve {
                path: PathBuf::from(LOCK_FILE),
                line: None,
                message: format!("local package `{written}` was not found"),
                hint: "fix the path, relative to the project".into(),
            }),
        }
    }
}

/// `>=` etc. for messages.
fn op_text(c: &Constraint) -> &'static str {
    match c.op {
        version::Op::Eq => "",
        version::Op::Lt => "<",
        version::Op::Le => "<=",
        version::Op::Gt => ">",
        version::Op::Ge => ">=",
    }
}

/// A version's entry in the hub's `versions` (keys may be written with or without a `v`).
fn version_meta<'a>(
    versions: &'a serde_json::Map<String, Json>,
    version: &Version,
) -> Option<&'a Json> {
    versions
        .iter()
        .find(|(k, _)| Version::parse(k).as_ref() == Some(version))
        .map(|(_, v)| v)
}

/// The clone URL of a `private:` package, as dbt-core forms it outside dbt's platform: SSH to
/// GitHub unless `provider:` names GitLab or Azure DevOps (git's own keys and URL rewrites
/// apply).
fn private_url(repo: &str, provider: Option<&str>) -> String {
    match provider.unwrap_or("github") {
        "gitlab" => format!("git@gitlab.com:{repo}.git"),
        "azure_devops" | "azure_active_directory" | "ado" => {
            format!("git@ssh.dev.azure.com:v3/{repo}")
        }
        _ => format!("git@github.com:{repo}.git"),
    }
}

/// Links a local package into the install folder (as dbt does), copying where links fail.
fn link_or_copy(from: &Path, dest: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        if std::os::unix::fs::symlink(from, dest).is_ok() {
            return Ok(());
        }
    }
    fetch::copy_dir(from, dest)
}

/// Writes `package-lock.yml` in dbt's shape: every package pinned, with its name, and the
/// hash of the package file it was resolved from.
fn write_lock(root: &Path, resolved: &[Resolved], hash: &str) -> Result<(), DepsError> {
    let mut text = String::from("packages:\n");
    let quote = |s: &str| serde_json::to_string(s).unwrap_or_default();
    for package in resolved {
        match &package.pinned {
            Pinned::Local { written } => {
                text.push_str(&format!("  - local: {}\n", quote(written)));
                text.push_str(&format!("    name: {}\n", package.name));
            }
            Pinned::Git {
                written,
                commit,
                subdirectory,
                private,
                ..
            } => {
                let key = if private.is_some() { "private" } else { "git" };
                text.push_str(&format!("  - {key}: {}\n", quote(written)));
                if let Some(Some(provider)) = private {
                    text.push_str(&format!("    provider: {}\n", quote(provider)));
                }
                text.push_str(&format!("    name: {}\n", package.name));
                text.push_str(&format!("    revision: {commit}\n"));
                if let Some(sub) = subdirectory {
                    text.push_str(&format!("    subdirectory: {}\n", quote(sub)));
                }
            }
            Pinned::Hub {
                package: hub_name,
                version,
                ..
            } => {
                text.push_str(&format!("  - package: {hub_name}\n"));
                text.push_str(&format!("    name: {}\n", package.name));
                text.push_str(&format!("    version: {}\n", quote(&version.to_string())));
            }
            Pinned::Tarball { url } => {
                text.push_str(&format!("  - tarball: {}\n", quote(url)));
                text.push_str(&format!("    name: {}\n", package.name));
            }
        }
    }
    text.push_str(&format!("{LOCK_HASH_KEY}: {hash}\n"));
    let path = root.join(LOCK_FILE);
    crate::util::write_atomic(&path, text.as_bytes()).map_err(|source| DepsError::Io {
        path: PathBuf::from(LOCK_FILE),
        source,
    })
}

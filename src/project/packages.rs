//! A project's package dependencies as written: `packages.yml` or `dependencies.yml`, the
//! `package-lock.yml` that pins them, dbt's hash tying the two together, and the check that
//! what is installed under `packages-install-path` is what the lock says.
//!
//! Reading only: `deps/` resolves and installs. Loading a project never touches the network.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value as Json};
use sha1::{Digest, Sha1};

use super::{yaml, ProjectError};

/// The lock file dbt and strata write beside the project file.
pub const LOCK_FILE: &str = "package-lock.yml";
/// The key of the lock holding the hash of the packages it was resolved from.
pub const LOCK_HASH_KEY: &str = "sha1_hash";
/// A copy of the lock `strata deps` leaves in the install folder: what is installed.
pub const INSTALLED_LOCK: &str = ".package-lock.installed.yml";

/// Where one package comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `local: ../path` (relative to the project).
    Local { path: String },
    /// `git: URL` with an optional `revision` (branch, tag or commit) and `subdirectory`.
    Git {
        url: String,
        revision: Option<String>,
        subdirectory: Option<String>,
        warn_unpinned: Option<bool>,
    },
    /// `private: org/repo`: a git repository on a provider, with the credentials git has.
    Private {
        repo: String,
        provider: Option<String>,
        revision: Option<String>,
        subdirectory: Option<String>,
        warn_unpinned: Option<bool>,
    },
    /// `package: owner/name` from the package hub, `version` one version or a list of ranges.
    Hub {
        package: String,
        versions: Vec<String>,
        install_prerelease: bool,
    },
    /// `tarball: URL` with a `name`.
    Tarball { url: String },
}

/// One entry of `packages:`.
#[derive(Debug, Clone, PartialEq)]
pub struct PackageSpec {
    pub source: Source,
    /// `name:` as written (required for tarballs; lock files always have it).
    pub name: Option<String>,
    /// The entry as written, before `env_var()` was rendered (dbt hashes it).
    pub unrendered: Json,
    /// The entry rendered.
    pub rendered: Json,
    /// 1-based line of the entry in its file.
    pub line: Option<usize>,
}

impl PackageSpec {
    /// How messages name the entry: `dbt-labs/dbt_utils`, the git URL, the local path.
    pub fn label(&self) -> String {
        match &self.source {
            Source::Local { path } => format!("local: {path}"),
            Source::Git { url, .. } => format!("git: {}", redact_url(url)),
            Source::Private { repo, .. } => format!("private: {repo}"),
            Source::Hub { package, .. } => format!("package: {package}"),
            Source::Tarball { url } => format!("tarball: {}", redact_url(url)),
        }
    }

    /// The entry as dbt serializes it for the hash: every field of dbt's dataclass with its
    /// default, `unrendered` the entry as written, `name` only when set.
    fn hash_form(&self) -> Json {
        let mut map = Map::new();
        let opt = |v: &Option<String>| v.clone().map(Json::from).unwrap_or(Json::Null);
        let opt_bool = |v: &Option<bool>| v.map(Json::from).unwrap_or(Json::Null);
        match &self.source {
            Source::Local { path } => {
                map.insert("local".into(), Json::from(path.clone()));
            }
            Source::Git {
                url,
                revision,
                subdirectory,
                warn_unpinned,
            } => {
                map.insert("git".into(), Json::from(url.clone()));
                map.insert(
                    "revision".into(),
                    self.raw_revision().unwrap_or(opt(revision)),
                );
                map.insert("subdirectory".into(), opt(subdirectory));
                map.insert("warn-unpinned".into(), opt_bool(warn_unpinned));
            }
            Source::Private {
                repo,
                provider,
                revision,
                subdirectory,
                warn_unpinned,
            } => {
                map.insert("private".into(), Json::from(repo.clone()));
                map.insert("provider".into(), opt(provider));
                map.insert(
                    "revision".into(),
                    self.raw_revision().unwrap_or(opt(revision)),
                );
                map.insert("subdirectory".into(), opt(subdirectory));
                map.insert("warn-unpinned".into(), opt_bool(warn_unpinned));
            }
            Source::Hub {
                package,
                install_prerelease,
                ..
            } => {
                map.insert("package".into(), Json::from(package.clone()));
                let version = self.rendered.get("version").cloned().unwrap_or(Json::Null);
                map.insert("version".into(), version);
                map.insert("install_prerelease".into(), Json::from(*install_prerelease));
            }
            Source::Tarball { url } => {
                map.insert("tarball".into(), Json::from(url.clone()));
            }
        }
        if let Some(name) = &self.name {
            map.insert("name".into(), Json::from(name.clone()));
        }
        map.insert("unrendered".into(), self.unrendered.clone());
        Json::Object(map)
    }

    /// A revision written as a number (`revision: 1.0`) stays a number in dbt's hash.
    fn raw_revision(&self) -> Option<Json> {
        self.rendered
            .get("revision")
            .filter(|v| v.is_number())
            .cloned()
    }
}

/// `packages.yml` or `dependencies.yml`, read.
#[derive(Debug, Clone, Default)]
pub struct PackagesFile {
    /// The file, relative to the project root.
    pub path: PathBuf,
    pub packages: Vec<PackageSpec>,
}

impl PackagesFile {
    /// dbt's `sha1_hash` of these packages: each entry's JSON with sorted keys (as Python's
    /// `json.dumps(…, sort_keys=True)` writes it), the lines sorted, joined by newlines.
    pub fn lock_hash(&self) -> String {
        let mut lines: Vec<String> = self
            .packages
            .iter()
            .map(|p| crate::util::python_json(&p.hash_form(), true))
            .collect();
        lines.sort();
        let digest = Sha1::digest(lines.join("\n").as_bytes());
        crate::util::hex(&digest)
    }
}

/// Reads the project's package file: `packages.yml`, else `dependencies.yml` (both is an
/// error, as in dbt). `None` when the project has neither or it lists no packages.
pub fn read_packages_file(
    root: &Path,
    render: &dyn Fn(&str) -> Result<String, String>,
) -> Result<Option<PackagesFile>, ProjectError> {
    let candidates: Vec<&str> = ["packages.yml", "dependencies.yml"]
        .into_iter()
        .filter(|name| root.join(name).is_file())
        .collect();
    let name = match candidates.as_slice() {
        [] => return Ok(None),
        [one] => *one,
        _ => {
            return Err(ProjectError::Packages {
                path: PathBuf::from("dependencies.yml"),
                line: None,
                message: "both `packages.yml` and `dependencies.yml` exist".into(),
                hint: "keep your packages in one of them".into(),
            })
        }
    };
    let path = PathBuf::from(name);
    let text = super::read(&root.join(&path))?;
    let packages = parse_packages(&text, &path, render, name == "dependencies.yml")?;
    Ok(Some(PackagesFile { path, packages }))
}

/// Parses a `packages:` list (of `packages.yml`, `dependencies.yml` or a lock file).
pub fn parse_packages(
    text: &str,
    path: &Path,
    render: &dyn Fn(&str) -> Result<String, String>,
    allow_projects: bool,
) -> Result<Vec<PackageSpec>, ProjectError> {
    let unrendered: Json = yaml::parse(text, path, &|s: &str| Ok(s.to_string()))?;
    let rendered: Json = yaml::parse(text, path, render)?;
    let error = |line: Option<usize>, message: String, hint: &str| ProjectError::Packages {
        path: path.to_path_buf(),
        line,
        message,
        hint: hint.to_string(),
    };
    if let Some(map) = rendered.as_object() {
        for key in map.keys() {
            let known =
                key == "packages" || key == LOCK_HASH_KEY || (allow_projects && key == "projects");
            if !known {
                return Err(error(
                    yaml::find_line(text, &format!("{key}:")),
                    format!("unknown key `{key}`"),
                    "the file holds `packages:`, a list of `- package:`, `- git:` or `- local:` entries",
                ));
            }
        }
        if map.get("projects").is_some_and(|p| !p.is_null()) {
            return Err(error(
                yaml::find_line(text, "projects:"),
                "`projects:` (dbt Cloud's cross-project refs) is not supported by strata".into(),
                "list the other project as a package (`- local:` or `- git:`) instead",
            ));
        }
    }
    let entries = match rendered.get("packages") {
        None | Some(Json::Null) => return Ok(Vec::new()),
        Some(Json::Array(entries)) => entries,
        Some(_) => {
            return Err(error(
                yaml::find_line(text, "packages:"),
                "`packages:` must be a list".into(),
                "write each package as `- package: owner/name` with a `version:`",
            ))
        }
    };
    let raw_entries = unrendered
        .get("packages")
        .and_then(Json::as_array)
        .cloned()
        .unwrap_or_default();
    let lines = entry_lines(text);
    let mut packages = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let line = lines.get(i).copied();
        let raw = raw_entries.get(i).cloned().unwrap_or(Json::Null);
        packages.push(
            parse_entry(entry, raw, line).map_err(|(message, hint)| error(line, message, hint))?,
        );
    }
    Ok(packages)
}

/// The 1-based lines of the `- ` items under `packages:`.
fn entry_lines(text: &str) -> Vec<usize> {
    let mut lines = Vec::new();
    let mut inside = false;
    let mut indent = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.starts_with('#') || trimmed.is_empty() {
            continue;
        }
        let depth = line.len() - trimmed.len();
        if depth == 0 {
            inside = trimmed.starts_with("packages:");
            continue;
        }
        if inside && trimmed.starts_with("- ") && *indent.get_or_insert(depth) == depth {
            lines.push(i + 1);
        }
    }
    lines
}

fn text_field(entry: &Json, key: &str) -> Option<String> {
    match entry.get(key)? {
        Json::Null => None,
        Json::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

pub(crate) fn parse_entry(
    entry: &Json,
    unrendered: Json,
    line: Option<usize>,
) -> Result<PackageSpec, (String, &'static str)> {
    let Some(map) = entry.as_object() else {
        return Err((
            format!("a package entry must be a mapping, got `{entry}`"),
            "write `- package: owner/name` with a `version:`, or `- git:`/`- local:`",
        ));
    };
    let kinds: Vec<&str> = ["local", "git", "private", "package", "tarball"]
        .into_iter()
        .filter(|k| map.contains_key(*k))
        .collect();
    let allowed: &[&str] = match kinds.as_slice() {
        ["local"] => &["local", "name"],
        ["git"] | ["private"] => &[
            "git",
            "private",
            "provider",
            "revision",
            "subdirectory",
            "warn-unpinned",
            "name",
        ],
        ["package"] => &["package", "version", "install_prerelease", "name"],
        ["tarball"] => &["tarball", "name"],
        [] => return Err((
            "a package entry needs one of `package:`, `git:`, `private:`, `local:` or `tarball:`"
                .into(),
            "for the package hub write `- package: owner/name` and `version:`",
        )),
        _ => {
            return Err((
                format!("a package entry has both `{}`", kinds.join("` and `")),
                "give each package one source",
            ))
        }
    };
    if let Some(key) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err((
            format!("unknown key `{key}` in the `{}:` entry", kinds[0]),
            "see the README's \"Packages\" section for each kind's keys",
        ));
    }
    let name = text_field(entry, "name");
    let source = match kinds[0] {
        "local" => Source::Local {
            path: text_field(entry, "local").unwrap_or_default(),
        },
        "git" => Source::Git {
            url: text_field(entry, "git").unwrap_or_default(),
            revision: text_field(entry, "revision"),
            subdirectory: text_field(entry, "subdirectory"),
            warn_unpinned: entry.get("warn-unpinned").and_then(Json::as_bool),
        },
        "private" => Source::Private {
            repo: text_field(entry, "private").unwrap_or_default(),
            provider: text_field(entry, "provider"),
            revision: text_field(entry, "revision"),
            subdirectory: text_field(entry, "subdirectory"),
            warn_unpinned: entry.get("warn-unpinned").and_then(Json::as_bool),
        },
        "package" => {
            let package = text_field(entry, "package").unwrap_or_default();
            if !package.contains('/') {
                return Err((
                    format!("hub package `{package}` needs its owner: `owner/{package}`"),
                    "hub packages are named `owner/name`, e.g. `dbt-labs/dbt_utils`",
                ));
            }
            let versions = match entry.get("version") {
                None | Some(Json::Null) => {
                    return Err((
                        format!("hub package `{package}` has no `version:`"),
                        "pin a version or a range, e.g. `version: [\">=1.0.0\", \"<2.0.0\"]`",
                    ))
                }
                Some(Json::Array(items)) => items
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string())
                    })
                    .collect(),
                Some(Json::String(s)) => vec![s.clone()],
                Some(other) => vec![other.to_string()],
            };
            Source::Hub {
                package,
                versions,
                install_prerelease: entry
                    .get("install_prerelease")
                    .and_then(Json::as_bool)
                    .unwrap_or(false),
            }
        }
        _ => {
            if name.is_none() {
                return Err((
                    "a `tarball:` entry needs a `name:`".into(),
                    "name the package as its own dbt_project.yml does",
                ));
            }
            Source::Tarball {
                url: text_field(entry, "tarball").unwrap_or_default(),
            }
        }
    };
    Ok(PackageSpec {
        source,
        name,
        unrendered,
        rendered: entry.clone(),
        line,
    })
}

/// `package-lock.yml`, read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LockFile {
    pub packages: Vec<PackageSpec>,
    pub hash: Option<String>,
}

/// Reads `package-lock.yml` in `root`, if there is one.
pub fn read_lock(
    root: &Path,
    render: &dyn Fn(&str) -> Result<String, String>,
) -> Result<Option<LockFile>, ProjectError> {
    read_lock_at(root, Path::new(LOCK_FILE), render)
}

/// Reads a lock file at `path` (relative to `root`).
pub fn read_lock_at(
    root: &Path,
    path: &Path,
    render: &dyn Fn(&str) -> Result<String, String>,
) -> Result<Option<LockFile>, ProjectError> {
    let full = root.join(path);
    if !full.is_file() {
        return Ok(None);
    }
    let text = super::read(&full)?;
    let packages = parse_packages(&text, path, render, false)?;
    let value: Json = serde_yaml::from_str(&text).unwrap_or(Json::Null);
    let hash = value
        .get(LOCK_HASH_KEY)
        .and_then(Json::as_str)
        .map(str::to_string);
    Ok(Some(LockFile { packages, hash }))
}

/// What is wrong between the package file, its lock and the install folder, if anything.
/// `install_dir` is relative to the root.
pub fn check_installed(
    root: &Path,
    install_dir: &str,
    packages: &PackagesFile,
    render: &dyn Fn(&str) -> Result<String, String>,
) -> Result<(), ProjectError> {
    let stale = |message: String| ProjectError::Packages {
        path: packages.path.clone(),
        line: None,
        message,
        hint: "run `strata deps` to install the packages".into(),
    };
    let lock = read_lock(root, render)?;
    let Some(lock) = lock else {
        // No lock (a project whose packages were installed by hand): each entry that names
        // its package must be installed.
        let installed = installed_names(&root.join(install_dir));
        let count = packages.packages.len();
        if installed.len() < count {
            return Err(stale(format!(
                "{} lists {count} package(s), but {} {} installed in `{install_dir}`",
                packages.path.display(),
                installed.len(),
                if installed.len() == 1 { "is" } else { "are" }
            )));
        }
        return Ok(());
    };
    if lock.hash.as_deref() != Some(packages.lock_hash().as_str()) {
        return Err(stale(format!(
            "{} changed since `{LOCK_FILE}` was written",
            packages.path.display()
        )));
    }
    let install = root.join(install_dir);
    let installed_lock = read_lock_at(root, &Path::new(install_dir).join(INSTALLED_LOCK), render)
        .ok()
        .flatten();
    if let Some(installed_lock) = installed_lock {
        if installed_lock.packages != lock.packages {
            return Err(stale(format!(
                "the packages installed in `{install_dir}` are not the ones `{LOCK_FILE}` pins"
            )));
        }
    }
    for entry in &lock.packages {
        let Some(name) = &entry.name else { continue };
        let dir = install.join(name);
        if !dir.join("dbt_project.yml").is_file() && !dir.join("project.yml").is_file() {
            return Err(ProjectError::Packages {
                path: PathBuf::from(LOCK_FILE),
                line: entry.line,
                message: format!(
                    "package `{name}` ({}) is not installed in `{install_dir}`",
                    entry.label()
                ),
                hint: "run `strata deps` to install the packages".into(),
            });
        }
        if let Source::Hub { versions, .. } = &entry.source {
            let installed = project_field(&dir, "version");
            if let (Some(installed), [pinned]) = (installed, versions.as_slice()) {
                if &installed != pinned {
                    return Err(stale(format!(
                        "package `{name}` {installed} is installed, but `{LOCK_FILE}` pins {pinned}"
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Names of the folders in the install folder that hold a project.
pub fn installed_names(install: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(install) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| {
            let p = e.path();
            p.join("dbt_project.yml").is_file() || p.join("project.yml").is_file()
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A top-level value (`name`, `version`) of the project file in `dir`, as text.
pub fn project_field(dir: &Path, key: &str) -> Option<String> {
    let path = super::find_project_file(dir)?;
    let text = std::fs::read_to_string(path).ok()?;
    let value: Json = serde_yaml::from_str(&text).ok()?;
    match value.get(key)? {
        Json::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// A URL with any user and password taken out, for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Vec<PackageSpec> {
        parse_packages(
            text,
            Path::new("packages.yml"),
            &|s| Ok(s.to_string()),
            false,
        )
        .expect("parses")
    }

    #[test]
    fn each_kind_of_entry_is_read_with_its_line() {
        let specs = parse(
            "packages:\n  - local: ../pkg_a\n  - git: \"file:///tmp/g.git\"\n    revision: main\n  - package: dbt-labs/dbt_utils\n    version: [\">=1.0.0\", \"<2.0.0\"]\n",
        );
        assert_eq!(specs.len(), 3);
        assert_eq!(specs[0].line, Some(2));
        assert_eq!(specs[2].line, Some(5));
        assert_eq!(
            specs[2].source,
            Source::Hub {
                package: "dbt-labs/dbt_utils".into(),
                versions: vec![">=1.0.0".into(), "<2.0.0".into()],
                install_prerelease: false
            }
        );
    }

    #[test]
    fn the_lock_hash_is_dbt_cores() {
        // dbt-core 1.12.6's `_create_sha1_hash` of this file (computed with it, see
        // tests/fixtures/packages/README.md).
        let file = PackagesFile {
            path: "packages.yml".into(),
            packages: parse(concat!(
                "packages:\n",
                "  - local: ../pkg_a\n",
                "  - git: \"file:///tmp/dx/pkg_git.git\"\n",
                "    revision: main\n",
                "    subdirectory: sub\n",
                "  - package: dbt-labs/dbt_utils\n",
                "    version: [\">=1.0.0\", \"<2.0.0\"]\n",
                "  - package: calogica/dbt_date\n",
                "    version: 0.10.1\n",
                "    install_prerelease: true\n",
                "  - tarball: \"https://example.com/x.tar.gz\"\n",
                "    name: xpkg\n",
            )),
        };
        assert_eq!(file.lock_hash(), "c9ef4df6beaa8ce95491a1f5042932f3ef0b7a08");
    }

    #[test]
    fn bad_entries_are_refused_by_name() {
        let err = parse_packages(
            "packages:\n  - package: dbt_utils\n    version: 1.0.0\n",
            Path::new("packages.yml"),
            &|s| Ok(s.to_string()),
            false,
        )
        .unwrap_err();
        assert!(err.to_string().contains("owner"), "{err}");
        let err = parse_packages(
            "packages:\n  - git: x\n    revison: main\n",
            Path::new("packages.yml"),
            &|s| Ok(s.to_string()),
            false,
        )
        .unwrap_err();
        assert!(err.to_string().contains("revison"), "{err}");
    }

    #[test]
    fn credentials_never_reach_labels() {
        assert_eq!(
            redact_url("https://user:tok@github.com/x/y.git"),
            "https://***@github.com/x/y.git"
        );
    }
}

//! Packages installed each way dbt installs them — a local folder, a git repository over
//! `file://`, and the package hub (a hub-shaped index and tarballs served on 127.0.0.1 by this
//! test) — then built: `tests/fixtures/packages` is a root project using the three, and its
//! `expected.json` holds what dbt-core 1.12.6 installed and built from it (`expect.sh`
//! regenerates it), so the tables, the lock (versions and dbt's hash) and the tests' names and
//! verdicts pinned here are dbt's.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use serde_json::Value as Json;

use crate::common::{query, strata_env};

/// Where the git package's repository is made, here and by `expect.sh`.
const GIT_HOME: &str = "/tmp/strata-packages-fixture";

/// A package hub on 127.0.0.1: paths to bodies, changeable while it runs.
struct Hub {
    base: String,
    files: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    hits: Arc<Mutex<Vec<String>>>,
}

impl Hub {
    fn start() -> Hub {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the hub");
        let base = format!("http://{}/", listener.local_addr().expect("address"));
        let files: Arc<Mutex<HashMap<String, Vec<u8>>>> = Arc::default();
        let hits: Arc<Mutex<Vec<String>>> = Arc::default();
        let (served, seen) = (files.clone(), hits.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream);
                let mut request = String::new();
                if reader.read_line(&mut request).is_err() {
                    continue;
                }
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let path = request.split(' ').nth(1).unwrap_or("/").to_string();
                seen.lock().expect("hits").push(path.clone());
                let body = served.lock().expect("files").get(&path).cloned();
                let mut stream = reader.into_inner();
                let _ = match body {
                    Some(body) => stream
                        .write_all(
                            format!(
                                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                                body.len()
                            )
                            .as_bytes(),
                        )
                        .and_then(|_| stream.write_all(&body)),
                    None => stream.write_all(
                        b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    ),
                };
            }
        });
        Hub { base, files, hits }
    }

    /// Publishes `text_helpers` in the given versions (each a folder under `hub`).
    fn publish(&self, hub: &Path, versions: &[&str]) {
        let mut files = self.files.lock().expect("files");
        let mut meta = serde_json::Map::new();
        for version in versions {
            let folder = format!("text_helpers-{version}");
            let mut tarball = Vec::new();
            {
                let encoder =
                    flate2::write::GzEncoder::new(&mut tarball, flate2::Compression::default());
                let mut builder = tar::Builder::new(encoder);
                builder
                    .append_dir_all(&folder, hub.join(&folder))
                    .expect("tar the package");
                builder
                    .into_inner()
                    .expect("finish the tar")
                    .finish()
                    .expect("finish the gzip");
            }
            let path = format!("/tarballs/{folder}.tar.gz");
            meta.insert(
                version.to_string(),
                serde_json::json!({
                    "name": "text_helpers",
                    "version": version,
                    "packages": [],
                    "downloads": {"tarball": format!("{}{}", self.base, &path[1..])},
                }),
            );
            files.insert(path, tarball);
        }
        let answer = serde_json::json!({"name": "text_helpers", "namespace": "strata-test", "versions": meta});
        files.insert(
            "/api/v1/strata-test/text_helpers.json".into(),
            answer.to_string().into_bytes(),
        );
    }
}

/// The fixture in a temp folder: the git package made a repository tagged `v1.0.0`, a hub
/// serving text_helpers 1.0.0, 1.2.0 and 2.0.0, a DuckDB profile.
struct Setup {
    dir: tempfile::TempDir,
    hub: Hub,
    git_url: String,
}

impl Setup {
    fn new() -> Setup {
        let dir = crate::common::fixture("packages");
        let git = |args: &[&str], cwd: &Path| {
            let status = Command::new("git")
                .args(["-c", "user.email=t@example.com", "-c", "user.name=t"])
                .args(args)
                .current_dir(cwd)
                .stdout(std::process::Stdio::null())
                .status()
                .expect("git runs");
            assert!(status.success(), "git {args:?}");
        };
        // The repository lives at the path `expect.sh` gave it: dbt hashes the rendered URL
        // into the lock, so the same URL gives the same hash. Made once per test process.
        static REPOSITORY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        let git_url = REPOSITORY
            .get_or_init(|| {
                let home = Path::new(GIT_HOME);
                let _ = std::fs::remove_dir_all(home);
                std::fs::create_dir_all(home).expect("the repository's folder");
                let source = home.join("pkg_git");
                crate::common::copy_tree(&dir.path().join("pkg_git"), &source);
                git(&["init", "-q", "-b", "main"], &source);
                git(&["add", "."], &source);
                git(&["commit", "-qm", "v1.0.0"], &source);
                git(&["tag", "v1.0.0"], &source);
                git(
                    &["clone", "-q", "--bare", "pkg_git", "shop_overrides.git"],
                    home,
                );
                format!("file://{GIT_HOME}/shop_overrides.git")
            })
            .clone();
        let hub = Hub::start();
        hub.publish(&dir.path().join("hub"), &["1.0.0", "1.2.0", "2.0.0"]);
        std::fs::write(
            dir.path().join("root/profiles.yml"),
            "shop:\n  target: dev\n  outputs:\n    dev: {type: duckdb, path: target/shop.duckdb}\n",
        )
        .expect("profiles");
        Setup { dir, hub, git_url }
    }

    fn root(&self) -> std::path::PathBuf {
        self.dir.path().join("root")
    }

    fn strata(&self, args: &[&str]) -> crate::common::Run {
        strata_env(
            &self.root(),
            args,
            &[
                ("DBT_PACKAGE_HUB_URL", &self.hub.base),
                ("SHOP_OVERRIDES_GIT", &self.git_url),
            ],
        )
    }
}

fn expected() -> Json {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/packages/expected.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("expected.json")).expect("JSON")
}

fn lock(root: &Path) -> serde_json::Value {
    serde_yaml::from_str(&std::fs::read_to_string(root.join("package-lock.yml")).expect("lock"))
        .expect("the lock is YAML")
}

#[test]
fn packages_installed_each_way_build_what_dbt_builds() {
    let setup = Setup::new();
    let root = setup.root();
    let expected = expected();

    let deps = setup.strata(&["deps"]);
    assert_eq!(deps.code, 0, "{}", deps.stderr);
    // The lock names what dbt's names, pins the versions dbt pinned, and carries dbt's hash
    // of the package file, so dbt and strata each accept the other's lock.
    let written = lock(&root);
    assert_eq!(written["sha1_hash"], expected["lock"]["sha1_hash"]);
    let packages = written["packages"].as_array().expect("packages");
    let summary: Vec<Json> = packages
        .iter()
        .map(|p| {
            let mut entry = serde_json::Map::new();
            for key in ["local", "name", "package", "version"] {
                if let Some(v) = p.get(key) {
                    entry.insert(key.into(), v.clone());
                }
            }
            Json::Object(entry)
        })
        .collect();
    assert_eq!(Json::Array(summary), expected["lock"]["packages"]);
    let git_entry = packages
        .iter()
        .find(|p| p["name"] == "shop_overrides")
        .expect("the git package is locked");
    assert_eq!(
        git_entry["git"], "{{ env_var('SHOP_OVERRIDES_GIT') }}",
        "the lock keeps the URL as written, not a rendered secret"
    );
    assert_eq!(git_entry["revision"].as_str().map(str::len), Some(40));
    for name in ["shop_utils", "shop_overrides", "text_helpers"] {
        assert!(
            root.join("dbt_packages")
                .join(name)
                .join("dbt_project.yml")
                .is_file(),
            "{name} is installed"
        );
    }

    let built = setup.strata(&["build"]);
    assert_eq!(built.code, 0, "{}\n{}", built.stdout, built.stderr);
    let db = root.join("target/shop.duckdb");
    for (table, want) in expected["tables"].as_object().expect("tables") {
        let (columns, rows) = crate::common::expected_table(want);
        let select: Vec<String> = columns
            .iter()
            .map(|c| format!("coalesce(cast(\"{c}\" as varchar), 'NULL')"))
            .collect();
        let mut got = query(
            &db,
            &format!("select {} from main.{table}", select.join(", ")),
        );
        got.sort();
        assert_eq!(got, rows, "`{table}` differs from dbt's");
    }
    // The package model the root project disables is not built.
    let mut relations: Vec<String> = query(
        &db,
        "select table_name from information_schema.tables where table_schema = 'main'",
    )
    .into_iter()
    .map(|r| r[0].clone())
    .collect();
    relations.sort();
    let want: Vec<String> = expected["relations"]
        .as_array()
        .expect("relations")
        .iter()
        .map(|r| r.as_str().expect("a name").to_string())
        .collect();
    assert_eq!(relations, want);
    // The same tests, named as dbt names them, each in its package, all passing.
    let mut tests: Vec<Json> = crate::common::run_results(&root, "target/run_results.json")
        .into_iter()
        .filter(|r| {
            r["unique_id"]
                .as_str()
                .is_some_and(|id| id.starts_with("test."))
        })
        .map(|r| {
            let id = r["unique_id"].as_str().expect("id");
            let parts: Vec<&str> = id.split('.').collect();
            serde_json::json!([format!("{}.{}", parts[1], parts[2]), r["status"]])
        })
        .collect();
    tests.sort_by_key(|t| t.to_string());
    assert_eq!(Json::Array(tests), expected["tests"]);
}

#[test]
fn deps_is_idempotent_and_honours_the_lock() {
    let setup = Setup::new();
    let root = setup.root();
    let first = setup.strata(&["deps"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let lock_text = std::fs::read_to_string(root.join("package-lock.yml")).expect("lock");

    // A newer version inside the range appears on the hub: the lock still decides.
    let hub_dir = setup.dir.path().join("hub");
    let newer = hub_dir.join("text_helpers-1.3.0");
    crate::common::copy_tree(&hub_dir.join("text_helpers-1.2.0"), &newer);
    let macros = newer.join("macros/text.sql");
    let text = std::fs::read_to_string(&macros).expect("macro");
    std::fs::write(&macros, text.replace("'1.2.0'", "'1.3.0'")).expect("macro");
    let project = newer.join("dbt_project.yml");
    let text = std::fs::read_to_string(&project).expect("project");
    std::fs::write(&project, text.replace("1.2.0", "1.3.0")).expect("project");
    setup
        .hub
        .publish(&hub_dir, &["1.0.0", "1.2.0", "1.3.0", "2.0.0"]);

    let again = setup.strata(&["deps"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(
        std::fs::read_to_string(root.join("package-lock.yml")).expect("lock"),
        lock_text,
        "a second deps leaves the lock as it was"
    );
    assert!(
        again.stderr.contains("1.3.0 is available within its range"),
        "deps says a newer version exists: {}",
        again.stderr
    );
    let installed = std::fs::read_to_string(root.join("dbt_packages/text_helpers/macros/text.sql"))
        .expect("installed macro");
    assert!(installed.contains("'1.2.0'"), "{installed}");

    let upgraded = setup.strata(&["deps", "--upgrade"]);
    assert_eq!(upgraded.code, 0, "{}", upgraded.stderr);
    assert_eq!(lock(&root)["packages"][2]["version"], "1.3.0");
    let installed = std::fs::read_to_string(root.join("dbt_packages/text_helpers/macros/text.sql"))
        .expect("installed macro");
    assert!(installed.contains("'1.3.0'"), "{installed}");
    let built = setup.strata(&["build", "--select", "+customers"]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    assert_eq!(
        query(
            &root.join("target/shop.duckdb"),
            "select distinct helpers_version from main.customers"
        ),
        [["1.3.0"]]
    );

    // `--lock` resolves and writes the lock, installing nothing.
    std::fs::remove_file(root.join("package-lock.yml")).expect("remove the lock");
    let hits_before = setup.hub.hits.lock().expect("hits").len();
    let locked = setup.strata(&["deps", "--lock"]);
    assert_eq!(locked.code, 0, "{}", locked.stderr);
    assert!(root.join("package-lock.yml").is_file());
    let hits: Vec<String> = setup.hub.hits.lock().expect("hits")[hits_before..].to_vec();
    assert!(
        hits.iter().all(|h| !h.contains("tarballs")),
        "--lock downloads no tarball: {hits:?}"
    );
}

#[test]
fn a_stale_install_is_named_with_the_command_that_fixes_it() {
    let setup = Setup::new();
    let root = setup.root();

    let before = setup.strata(&["parse"]);
    assert_eq!(before.code, 1, "{}", before.stderr);
    assert!(
        before.stderr.contains("packages.yml") && before.stderr.contains("strata deps"),
        "{}",
        before.stderr
    );

    assert_eq!(setup.strata(&["deps"]).code, 0);
    assert_eq!(setup.strata(&["parse"]).code, 0);

    // The package file changes after the lock was written.
    let packages = root.join("packages.yml");
    let text = std::fs::read_to_string(&packages).expect("packages.yml");
    std::fs::write(&packages, text.replace("<2.0.0", "<3.0.0")).expect("packages.yml");
    let changed = setup.strata(&["parse"]);
    assert_eq!(changed.code, 1);
    assert!(
        changed
            .stderr
            .contains("changed since `package-lock.yml` was written")
            && changed.stderr.contains("strata deps"),
        "{}",
        changed.stderr
    );
    std::fs::write(&packages, text).expect("packages.yml");

    // A package folder goes missing.
    std::fs::remove_dir_all(root.join("dbt_packages/text_helpers")).expect("remove");
    let missing = setup.strata(&["parse"]);
    assert_eq!(missing.code, 1);
    assert!(
        missing.stderr.contains("`text_helpers`") && missing.stderr.contains("strata deps"),
        "{}",
        missing.stderr
    );

    // A hub that does not have the package: the entry is named, nothing is installed.
    std::fs::write(
        &packages,
        "packages:\n  - local: ../pkg_local\n  - package: strata-test/nowhere\n    version: 1.0.0\n",
    )
    .expect("packages.yml");
    let nowhere = setup.strata(&["deps"]);
    assert_eq!(nowhere.code, 1);
    assert!(
        nowhere.stderr.contains("strata-test/nowhere") && nowhere.stderr.contains("packages.yml:3"),
        "{}",
        nowhere.stderr
    );
    assert!(
        root.join("dbt_packages/shop_utils").exists(),
        "a failed deps leaves the previous install"
    );
}

/// An error inside a package's macro names the package's file and line; a package's
/// `subdirectory` in a git repository is installed from there.
#[test]
fn errors_in_package_macros_point_into_the_package() {
    let dir = crate::common::project(&[
        ("root/dbt_project.yml", "name: app\n"),
        ("root/packages.yml", "packages:\n  - local: ../helpers\n"),
        (
            "root/models/m.sql",
            "select {{ helpers.double('x') }} as y from (select 1 as x) as t\n",
        ),
        ("helpers/dbt_project.yml", "name: helpers\n"),
        (
            "helpers/macros/math.sql",
            "{% macro double(column) %}\n  {{ exceptions.raise_compiler_error('double() got ' ~ column) }}\n{% endmacro %}\n",
        ),
    ]);
    let root = dir.path().join("root");
    let deps = strata_env(&root, &["deps"], &[]);
    assert_eq!(deps.code, 0, "{}", deps.stderr);
    let run = strata_env(&root, &["compile"], &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("double() got x")
            && run
                .stderr
                .contains("dbt_packages/helpers/macros/math.sql:2"),
        "{}",
        run.stderr
    );
}

/// `strata clean` works on a stale install (its `clean-targets` usually hold it).
#[test]
fn clean_works_while_the_install_is_stale() {
    let dir = crate::common::project(&[
        (
            "root/dbt_project.yml",
            "name: app\nclean-targets: [target, dbt_packages]\n",
        ),
        ("root/packages.yml", "packages:\n  - local: ../helpers\n"),
        ("helpers/dbt_project.yml", "name: helpers\n"),
    ]);
    let root = dir.path().join("root");
    assert_eq!(strata_env(&root, &["deps"], &[]).code, 0);
    std::fs::write(
        root.join("packages.yml"),
        "packages:\n  - local: ../helpers\n  - local: ../elsewhere\n",
    )
    .expect("packages.yml");
    assert_eq!(strata_env(&root, &["parse"], &[]).code, 1);
    let clean = strata_env(&root, &["clean"], &[]);
    assert_eq!(clean.code, 0, "{}", clean.stderr);
    assert!(!root.join("dbt_packages").exists());
}

/// A git package in a `subdirectory:` of its repository is installed from that folder, and
/// the lock pins the commit and keeps the subdirectory.
/// Makes `repo` a git repository with everything in it committed on `main`.
fn commit_folder(repo: &Path) {
    for args in [
        &["init", "-q", "-b", "main"][..],
        &["add", "."],
        &["commit", "-qm", "one"],
    ] {
        let status = Command::new("git")
            .args(["-c", "user.email=t@example.com", "-c", "user.name=t"])
            .args(args)
            .current_dir(repo)
            .status()
            .expect("git runs");
        assert!(status.success());
    }
}

#[test]
fn a_git_package_in_a_subdirectory_installs_from_there() {
    let dir = crate::common::project(&[
        ("repo/README.md", "a monorepo\n"),
        ("repo/dbt/helpers/dbt_project.yml", "name: helpers\n"),
        (
            "repo/dbt/helpers/macros/one.sql",
            "{% macro one() %}1{% endmacro %}\n",
        ),
        ("root/dbt_project.yml", "name: app\n"),
        ("root/models/m.sql", "select {{ helpers.one() }} as x\n"),
    ]);
    let repo = dir.path().join("repo");
    commit_folder(&repo);
    let root = dir.path().join("root");
    std::fs::write(
        root.join("packages.yml"),
        format!(
            "packages:\n  - git: \"file://{}\"\n    revision: main\n    subdirectory: dbt/helpers\n",
            repo.display()
        ),
    )
    .expect("packages.yml");
    let deps = strata_env(&root, &["deps"], &[]);
    assert_eq!(deps.code, 0, "{}", deps.stderr);
    assert!(root.join("dbt_packages/helpers/macros/one.sql").is_file());
    assert!(!root.join("dbt_packages/helpers/README.md").exists());
    let locked = lock(&root);
    assert_eq!(locked["packages"][0]["subdirectory"], "dbt/helpers");
    assert_eq!(
        locked["packages"][0]["revision"].as_str().map(str::len),
        Some(40)
    );
    let compiled = strata_env(&root, &["compile", "--select", "m"], &[]);
    assert_eq!(compiled.code, 0, "{}", compiled.stderr);
    assert!(
        compiled.stdout.contains("select 1 as x"),
        "{}",
        compiled.stdout
    );
}

/// `private: org/repo` clones from the URL dbt-core forms (`git@github.com:org/repo.git`)
/// with whatever git is configured with: here a URL rewrite (`url.<base>.insteadOf`, as CI
/// sets up a token or deploy key) points it at a repository on disk. The lock keeps the entry
/// as dbt writes it, and a later `deps` installs from the lock.
#[test]
fn a_private_package_clones_through_git_s_own_configuration() {
    let dir = crate::common::project(&[
        ("github/acme/helpers.git/dbt_project.yml", "name: helpers\n"),
        (
            "github/acme/helpers.git/macros/one.sql",
            "{% macro one() %}1{% endmacro %}\n",
        ),
        ("root/dbt_project.yml", "name: app\n"),
        ("root/models/m.sql", "select {{ helpers.one() }} as x\n"),
        (
            "root/packages.yml",
            "packages:\n  - private: acme/helpers\n    revision: main\n",
        ),
    ]);
    let repo = dir.path().join("github/acme/helpers.git");
    commit_folder(&repo);
    let root = dir.path().join("root");
    let rewrite = format!("url.file://{}/github/.insteadOf", dir.path().display());
    let env = [
        ("GIT_CONFIG_COUNT", "1"),
        ("GIT_CONFIG_KEY_0", rewrite.as_str()),
        ("GIT_CONFIG_VALUE_0", "git@github.com:"),
    ];
    let deps = strata_env(&root, &["deps"], &env);
    assert_eq!(deps.code, 0, "{}", deps.stderr);
    assert!(root.join("dbt_packages/helpers/macros/one.sql").is_file());
    let locked = lock(&root);
    assert_eq!(locked["packages"][0]["private"], "acme/helpers");
    assert_eq!(
        locked["packages"][0]["revision"].as_str().map(str::len),
        Some(40)
    );
    std::fs::remove_dir_all(root.join("dbt_packages")).expect("remove the install");
    let again = strata_env(&root, &["deps"], &env);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(root.join("dbt_packages/helpers/macros/one.sql").is_file());
    let compiled = strata_env(&root, &["compile", "--select", "m"], &[]);
    assert_eq!(compiled.code, 0, "{}", compiled.stderr);
    assert!(
        compiled.stdout.contains("select 1 as x"),
        "{}",
        compiled.stdout
    );

    // Rewritten to nowhere, the clone fails: the message names the URL git was given and the
    // entry of packages.yml that asked for it.
    let _ = std::fs::remove_dir_all(root.join("dbt_packages"));
    let _ = std::fs::remove_file(root.join("package-lock.yml"));
    let offline = strata_env(
        &root,
        &["deps"],
        &[
            ("GIT_CONFIG_COUNT", "1"),
            ("GIT_CONFIG_KEY_0", "url.file:///nowhere/.insteadOf"),
            ("GIT_CONFIG_VALUE_0", "git@github.com:"),
        ],
    );
    assert_eq!(offline.code, 1, "{}", offline.stderr);
    assert!(
        offline.stderr.contains("git@github.com:acme/helpers.git"),
        "{}",
        offline.stderr
    );
    assert!(
        offline.stderr.contains("packages.yml:2"),
        "{}",
        offline.stderr
    );
}

/// A package's (or the project's) `require-dbt-version` is checked against the dbt version
/// strata answers to, as dbt does: a package that needs a newer dbt stops every command with
/// its project file and line, unless the check is turned off.
#[test]
fn require_dbt_version_is_checked_for_the_project_and_its_packages() {
    let dir = crate::common::project(&[
        (
            "helpers/dbt_project.yml",
            "name: helpers\nrequire-dbt-version: [\">=1.3.0\", \">=99.0.0\"]\n",
        ),
        (
            "helpers/macros/one.sql",
            "{% macro one() %}1{% endmacro %}\n",
        ),
        (
            "root/dbt_project.yml",
            "name: app\nrequire-dbt-version: [\">=1.0.0\", \"<2.0.0\"]\n",
        ),
        (
            "root/models/m.sql",
            "select {{ helpers.one() }} as x, '{{ dbt_version }}' as v\n",
        ),
        ("root/packages.yml", "packages:\n  - local: ../helpers\n"),
    ]);
    let root = dir.path().join("root");
    let deps = strata_env(&root, &["deps"], &[]);
    assert_eq!(deps.code, 0, "{}", deps.stderr);
    let refused = strata_env(&root, &["compile", "--select", "m"], &[]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused.stderr.contains(
            "the package `helpers` requires dbt `>=99.0.0`, and strata runs projects as dbt 1.10.0"
        ),
        "{}",
        refused.stderr
    );
    assert!(
        refused
            .stderr
            .contains("dbt_packages/helpers/dbt_project.yml:2"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("--no-version-check"),
        "{}",
        refused.stderr
    );
    for (args, env) in [
        (
            &["--no-version-check", "compile", "--select", "m"][..],
            &[][..],
        ),
        (
            &["compile", "--select", "m"][..],
            &[("DBT_VERSION_CHECK", "false")][..],
        ),
    ] {
        let compiled = strata_env(&root, args, env);
        assert_eq!(compiled.code, 0, "{args:?}: {}", compiled.stderr);
        assert!(
            compiled.stdout.contains("select 1 as x, '1.10.0' as v"),
            "{}",
            compiled.stdout
        );
    }
}

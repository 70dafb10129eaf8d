//! `init`, `show`, `debug` and `clean` on the real binary.

use crate::common::{project, strata};

#[test]
fn init_scaffolds_a_project_that_builds_and_tests_at_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let created = strata(dir.path(), &["init", "shop"]);
    assert_eq!(created.code, 0, "{}", created.stderr);
    let root = dir.path().join("shop");
    let built = strata(&root, &["build"]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    assert!(
        built.stderr.contains("PASS=8 WARN=0 ERROR=0 SKIP=0"),
        "{}",
        built.stderr
    );
    // A second init into the same folder refuses rather than overwrite.
    let again = strata(dir.path(), &["init", "shop"]);
    assert_eq!(again.code, 1);
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
    let bad = strata(dir.path(), &["init", "Bad-Name"]);
    assert_eq!(bad.code, 1);
    assert!(
        bad.stderr.contains("not a valid project name"),
        "{}",
        bad.stderr
    );
}

#[test]
fn show_prints_a_models_rows_and_inline_sql() {
    let dir = project(&[
        ("project.yml", "name: shop\n"),
        ("seeds/raw.csv", "id,name\n1,ann\n2,bob\n3,cy\n"),
        (
            "models/people.sql",
            "select id, upper(name) as name from {{ ref('raw') }}\n",
        ),
    ]);
    assert_eq!(strata(dir.path(), &["seed"]).code, 0);
    // `show` compiles the model and runs it; the view need not exist.
    let shown = strata(dir.path(), &["show", "--select", "people", "--limit", "2"]);
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    assert_eq!(
        shown.stdout, "id | name\n---+-----\n1  | ANN\n2  | BOB\n",
        "{}",
        shown.stderr
    );
    let inline = strata(
        dir.path(),
        &[
            "show",
            "--inline",
            "select count(*) as n from {{ ref('raw') }}",
        ],
    );
    assert_eq!(inline.code, 0, "{}", inline.stderr);
    assert_eq!(inline.stdout, "n\n-\n3\n");
    let missing = strata(dir.path(), &["show", "--select", "nobody"]);
    assert_eq!(missing.code, 1, "{}", missing.stderr);
}

#[test]
fn debug_reports_the_target_and_checks_the_connection() {
    let dir = project(&[
        ("project.yml", "name: shop\nprofile: shop\n"),
        (
            "profiles.yml",
            "shop:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: target/dev.duckdb\n      threads: 3\n    pg:\n      type: postgres\n      host: 127.0.0.1\n      port: 1\n      user: nobody\n      password: \"{{ env_var('SHOP_PASSWORD') }}\"\n      dbname: nowhere\n      schema: public\n      connect_timeout: 2\n",
        ),
    ]);
    let ok = strata(dir.path(), &["debug"]);
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert!(ok.stdout.contains("type: duckdb"), "{}", ok.stdout);
    assert!(ok.stdout.contains("threads: 3"), "{}", ok.stdout);
    assert!(ok.stdout.contains("connection: OK"), "{}", ok.stdout);
    let failing = crate::common::strata_env(
        dir.path(),
        &["debug", "--target", "pg"],
        &[("SHOP_PASSWORD", "hunter2-secret")],
    );
    assert_eq!(failing.code, 1, "{}", failing.stdout);
    assert!(
        failing.stdout.contains("connection: ERROR"),
        "{}",
        failing.stdout
    );
    assert!(
        failing.stdout.contains("password: ***"),
        "{}",
        failing.stdout
    );
    assert!(!failing.stdout.contains("hunter2"), "{}", failing.stdout);
    assert!(!failing.stderr.contains("hunter2"), "{}", failing.stderr);
}

#[test]
fn clean_removes_the_target_folder_and_refuses_paths_outside() {
    let dir = project(&[
        (
            "project.yml",
            "name: shop\nclean-targets: [target, logs, ../outside]\n",
        ),
        ("models/a.sql", "select 1 as id\n"),
        ("logs/strata.log", "old\n"),
    ]);
    assert_eq!(strata(dir.path(), &["build"]).code, 0);
    assert!(dir.path().join("target").exists());
    let cleaned = strata(dir.path(), &["clean"]);
    assert_eq!(
        cleaned.code, 1,
        "the `..` entry is refused: {}",
        cleaned.stderr
    );
    assert!(
        cleaned.stderr.contains("refusing to clean `../outside`"),
        "{}",
        cleaned.stderr
    );
    assert!(!dir.path().join("target").exists());
    assert!(!dir.path().join("logs").exists());
    assert!(dir.path().join("models/a.sql").exists());
}

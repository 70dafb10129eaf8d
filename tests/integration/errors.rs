//! Every class of bad input gets a clear message naming file, line and what to do, exit code 1
//! (2 for command-line usage), and nothing written to the target path.

use crate::common::{project, strata, Run};

/// Runs `args` on a project made of `files`, asserts the exit code and that nothing was
/// written, and returns stderr with temp paths redacted.
fn failing(files: &[(&str, &str)], args: &[&str], code: i32) -> String {
    let dir = project(files);
    let run: Run = strata(dir.path(), args);
    assert_eq!(
        run.code, code,
        "stdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
    assert!(
        !dir.path().join("target").exists(),
        "nothing may be written on failure: {}",
        run.stderr
    );
    run.stderr_redacted(dir.path())
}

const PROJECT: (&str, &str) = ("project.yml", "name: p\n");

#[test]
fn malformed_yaml_names_file_and_line() {
    let stderr = failing(
        &[
            PROJECT,
            ("models/a.sql", "select 1 as id\n"),
            ("models/schema.yml", "version: 2\nmodels:\n  - name: a\n    columns:\n      - name: id\n     tests: [unique]\n"),
        ],
        &["parse"],
        1,
    );
    insta::assert_snapshot!(stderr);
}

#[test]
fn malformed_project_file() {
    let stderr = failing(&[("project.yml", "name: p\nmodels: [\n")], &["parse"], 1);
    insta::assert_snapshot!(stderr);
}

#[test]
fn unknown_config_keys_warn_with_key_path() {
    let dir = project(&[
        (
            "project.yml",
            "name: p\nmodels:\n  p:\n    staging:\n      +materialised: table\n",
        ),
        ("models/staging/a.sql", "select 1 as id\n"),
        (
            "models/schema.yml",
            "version: 2\nmodels:\n  - name: a\n    config:\n      uniq_key: id\n",
        ),
    ]);
    let run = strata(dir.path(), &["parse"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    insta::assert_snapshot!(run.stderr_redacted(dir.path()));
}

#[test]
fn jinja_syntax_error_names_file_and_line() {
    let stderr = failing(
        &[
            PROJECT,
            (
                "models/a.sql",
                "select 1 as id\n{% if true %}\nwhere 1 = 1\n",
            ),
        ],
        &["parse"],
        1,
    );
    insta::assert_snapshot!(stderr);
}

#[test]
fn undefined_var_names_the_var_file_and_line() {
    let stderr = failing(
        &[
            PROJECT,
            (
                "models/a.sql",
                "select 1 as id\nwhere x > {{ var('start_date') }}\n",
            ),
        ],
        &["parse"],
        1,
    );
    insta::assert_snapshot!(stderr);
}

#[test]
fn undefined_macro_suggests_the_closest_one() {
    let stderr = failing(
        &[
            PROJECT,
            (
                "macros/m.sql",
                "{% macro cents_to_dollars(c) %}{{ c }} / 100{% endmacro %}\n",
            ),
            (
                "models/a.sql",
                "select\n  {{ cent_to_dollars('x') }} as y\n",
            ),
        ],
        &["parse"],
        1,
    );
    insta::assert_snapshot!(stderr);
}

#[test]
fn undefined_variable_is_named() {
    let stderr = failing(
        &[
            PROJECT,
            (
                "models/a.sql",
                "select 1 as id\n-- {{ no_such_variable }}\n",
            ),
        ],
        &["compile"],
        1,
    );
    insta::assert_snapshot!(stderr);
}

#[test]
fn error_inside_a_macro_points_at_the_macro_file() {
    let stderr = failing(
        &[
            PROJECT,
            ("macros/m.sql", "{% macro boom() %}\n  {{ exceptions.raise_compiler_error('boom: bad input') }}\n{% endmacro %}\n"),
            ("models/a.sql", "select 1 as id -- {{ boom() }}\n"),
        ],
        &["parse"],
        1,
    );
    insta::assert_snapshot!(stderr);
}

#[test]
fn missing_ref_and_source_suggest_names() {
    let stderr = failing(
        &[
            PROJECT,
            ("models/dim_customer.sql", "select 1 as id\n"),
            ("models/fact.sql", "select *\nfrom {{ ref('dim_custmer') }}\njoin {{ source('shop', 'ordrs') }} using (id)\n"),
            ("models/sources.yml", "version: 2\nsources:\n  - name: shop\n    tables:\n      - name: orders\n"),
        ],
        &["parse"],
        1,
    );
    insta::assert_snapshot!(stderr);
}

#[test]
fn cycles_print_their_path() {
    let stderr = failing(
        &[
            PROJECT,
            ("models/a.sql", "select * from {{ ref('c') }}\n"),
            ("models/b.sql", "select * from {{ ref('a') }}\n"),
            ("models/c.sql", "select * from {{ ref('b') }}\n"),
        ],
        &["parse"],
        1,
    );
    insta::assert_snapshot!(stderr);
}

#[test]
fn duplicate_model_names_name_both_files() {
    let stderr = failing(
        &[
            PROJECT,
            ("models/staging/orders.sql", "select 1 as id\n"),
            ("models/gold/orders.sql", "select 2 as id\n"),
        ],
        &["parse"],
        1,
    );
    insta::assert_snapshot!(stderr);
}

#[test]
fn invalid_selector_shows_position() {
    let dir = project(&[PROJECT, ("models/a.sql", "select 1 as id\n")]);
    let run = strata(dir.path(), &["ls", "--select", "a tagg:gold"]);
    assert_eq!(run.code, 1);
    insta::assert_snapshot!(run.stderr_redacted(dir.path()));
}

#[test]
fn missing_profile_and_target() {
    let files = [
        ("project.yml", "name: p\nprofile: shop\n"),
        (
            "profiles.yml",
            "shopp:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n",
        ),
        ("models/a.sql", "select 1 as id\n"),
    ];
    let stderr = failing(&files, &["parse"], 1);
    insta::assert_snapshot!("missing_profile", stderr);

    let files = [
        ("project.yml", "name: p\nprofile: shop\n"),
        (
            "profiles.yml",
            "shop:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n",
        ),
        ("models/a.sql", "select 1 as id\n"),
    ];
    let stderr = failing(&files, &["parse", "--target", "prod"], 1);
    insta::assert_snapshot!("missing_target", stderr);

    let stderr = failing(&files, &["parse", "--profiles-dir", "nowhere"], 1);
    assert!(
        stderr.contains("no `profiles.yml` in `nowhere`"),
        "{stderr}"
    );
}

#[test]
fn invalid_target_settings() {
    let stderr = failing(
        &[
            (
                "project.yml",
                "name: p\ntargets:\n  dev:\n    type: postgres\n    host: h\n",
            ),
            ("models/a.sql", "select 1 as id\n"),
        ],
        &["parse"],
        1,
    );
    assert!(
        stderr.contains("invalid target `dev`: missing field"),
        "{stderr}"
    );
}

#[test]
fn usage_errors_exit_2() {
    let dir = project(&[PROJECT]);
    let run = strata(dir.path(), &["ls", "--output", "yaml"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let run = strata(dir.path(), &["frobnicate"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let run = strata(dir.path(), &["parse", "--vars", "[1, 2]"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("expected a mapping"), "{}", run.stderr);
}

#[test]
fn no_project_file() {
    let dir = project(&[("models/a.sql", "select 1\n")]);
    let run = strata(dir.path(), &["parse"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("no `project.yml` or `dbt_project.yml`"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("strata init"), "{}", run.stderr);
}

#[test]
fn all_errors_are_reported_in_one_pass() {
    let dir = project(&[
        PROJECT,
        ("models/a.sql", "select * from {{ ref('nope') }}\n"),
        ("models/b.sql", "select {{ var('missing') }}\n"),
        ("models/c.sql", "{% if %}\n"),
    ]);
    let run = strata(dir.path(), &["parse"]);
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr
            .lines()
            .filter(|l| l.starts_with("error:"))
            .count(),
        3,
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("3 errors; nothing was written"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_storage_setting_the_target_cannot_use_names_the_model_line_and_the_keys() {
    let dir = project(&[
        ("project.yml", "name: shop\nprofile: shop\n"),
        (
            "profiles.yml",
            "shop:\n  target: rs\n  outputs:\n    rs:\n      type: redshift\n      host: cluster.example\n      user: u\n      dbname: warehouse\n      schema: analytics\n",
        ),
        (
            "models/orders.sql",
            "{{ config(materialized='table',\n    sort_type='zigzag') }}\nselect 1 as id\n",
        ),
    ]);
    let run = strata(dir.path(), &["compile"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let stderr = run.stderr_redacted(dir.path());
    assert!(
        stderr.contains("model `orders`: config `sort_type`: `zigzag` is not a sort type; write compound or interleaved"),
        "{stderr}"
    );
    assert!(stderr.contains("models/orders.sql:2"), "{stderr}");
    assert!(
        stderr.contains("the redshift target reads `dist`, `sort`, `sort_type`, `backup`, `bind`"),
        "{stderr}"
    );
}

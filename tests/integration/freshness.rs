//! Source freshness: `strata source freshness` against tables whose newest rows are a known
//! age (seeds written with times relative to now, in UTC), `sources.json` in dbt's shape,
//! `source_status:fresher+`, and `build --skip-stale-sources` — on DuckDB and PostgreSQL,
//! and on the Redshift, Trino and Athena stand-ins.

use std::path::Path;

use crate::common::{project, strata, strata_env};
use crate::warehouse::{Kind, Warehouse};

/// A UTC time `hours` ago, as a seed writes it.
fn hours_ago(hours: f64) -> String {
    let at = chrono::Utc::now() - chrono::Duration::seconds((hours * 3600.0) as i64);
    at.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// Rows loaded long ago and one `hours` ago.
fn events(hours: f64) -> String {
    format!(
        "id,loaded_at\n1,2024-01-01 00:00:00\n2,{}\n",
        hours_ago(hours)
    )
}

/// Sources over the `events` seed: `events` (warn after 2 hours, error after 4), `stale`
/// (error after 1 hour), `old_rows` (a filter keeping only the old row), `unchecked`
/// (freshness turned off) and `other` over the `other_events` seed.
const SOURCES: &str = "sources:
  - name: raw
    schema: '{s}'
    loaded_at_field: loaded_at
    freshness:
      warn_after: {count: 2, period: hour}
      error_after: {count: 4, period: hour}
    tables:
      - name: events
      - name: stale
        identifier: events
        freshness:
          warn_after: null
          error_after: {count: 1, period: hour}
      - name: old_rows
        identifier: events
        freshness:
          filter: id = 1
      - name: unchecked
        identifier: events
        freshness: null
      - name: other
        identifier: other_events
";

fn sources_json(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("target/sources.json")).expect("sources.json");
    serde_json::from_str(&text).expect("sources.json is JSON")
}

fn result<'a>(json: &'a serde_json::Value, table: &str) -> &'a serde_json::Value {
    json["results"]
        .as_array()
        .expect("results")
        .iter()
        .find(|r| r["unique_id"] == format!("source.shop.raw.{table}"))
        .unwrap_or_else(|| panic!("no result for {table}: {json:#}"))
}

fn warns_and_errors_by_age(kind: Kind) {
    let Some(w) = Warehouse::new(
        kind,
        "freshness",
        "name: shop\n",
        &[
            ("seeds/events.csv", &events(3.0)),
            ("seeds/other_events.csv", &events(0.5)),
            ("models/sources.yml", SOURCES),
        ],
    ) else {
        return;
    };
    let seeded = w.run(&["seed"]);
    assert_eq!(seeded.code, 0, "{}", seeded.stderr);
    let checked = w.run(&["source", "freshness"]);
    // `stale` and `old_rows` are past `error_after`.
    assert_eq!(checked.code, 1, "{}", checked.stderr);
    for line in [
        "WARN freshness of raw.events [WARN in",
        "ERROR STALE freshness of raw.stale [ERROR in",
        "ERROR STALE freshness of raw.old_rows [ERROR in",
        "PASS freshness of raw.other [PASS in",
    ] {
        assert!(checked.stderr.contains(line), "{line}\n{}", checked.stderr);
    }
    assert!(
        !checked.stderr.contains("raw.unchecked"),
        "{}",
        checked.stderr
    );
    let json = sources_json(w.path());
    assert_eq!(
        json["metadata"]["dbt_schema_version"],
        "https://schemas.getdbt.com/dbt/sources/v3.json"
    );
    assert_eq!(
        json["results"].as_array().map(Vec::len),
        Some(4),
        "{json:#}"
    );
    let events = result(&json, "events");
    assert_eq!(events["status"], "warn");
    let age = events["max_loaded_at_time_ago_in_s"].as_f64().expect("age");
    assert!((10_800.0 - 120.0..10_800.0 + 600.0).contains(&age), "{age}");
    assert_eq!(
        events["criteria"],
        serde_json::json!({
            "warn_after": {"count": 2, "period": "hour"},
            "error_after": {"count": 4, "period": "hour"},
            "filter": null,
        })
    );
    for key in [
        "max_loaded_at",
        "snapshotted_at",
        "timing",
        "execution_time",
    ] {
        assert!(events.get(key).is_some(), "{key}: {events:#}");
    }
    let stale = result(&json, "stale");
    assert_eq!(stale["status"], "error");
    assert_eq!(
        stale["criteria"]["warn_after"]["count"],
        serde_json::Value::Null
    );
    assert_eq!(result(&json, "old_rows")["criteria"]["filter"], "id = 1");
    assert_eq!(result(&json, "other")["status"], "pass");

    // The case alone: 3 hours old, warn after 2, error after 4 — a warning, exit 0.
    let only = w.run(&["source", "freshness", "--select", "source:raw.events"]);
    assert_eq!(only.code, 0, "{}", only.stderr);
    assert!(
        only.stderr.contains("PASS=0 WARN=1 ERROR=0"),
        "{}",
        only.stderr
    );
}

#[test]
fn freshness_warns_and_errors_by_the_newest_rows_age_on_duckdb() {
    warns_and_errors_by_age(Kind::Duckdb);
}

#[test]
fn freshness_warns_and_errors_by_the_newest_rows_age_on_postgres() {
    warns_and_errors_by_age(Kind::Postgres);
}

/// A `timestamptz` column is read with its offset; an empty table is a runtime error naming
/// why, and fails the command.
#[test]
fn freshness_reads_time_zones_and_reports_an_empty_table_on_postgres() {
    let Some(pg) = crate::postgres::Database::create("freshness_tz") else {
        return;
    };
    pg.query("create schema raw; create table raw.zoned (loaded_at timestamptz); insert into raw.zoned values (now() - interval '3 hours'); create table raw.empty (loaded_at timestamp)");
    let dir = project(&[
        ("project.yml", "name: shop\nprofile: shop\n"),
        ("profiles.yml", &pg.profile()),
        (
            "models/sources.yml",
            "sources:\n  - name: raw\n    loaded_at_field: loaded_at\n    freshness: {warn_after: {count: 2, period: hour}, error_after: {count: 4, period: hour}}\n    tables: [{name: zoned}, {name: empty}]\n",
        ),
    ]);
    // A session in another time zone reads the same age.
    let run = strata_env(
        dir.path(),
        &["source", "freshness"],
        &[("PGTZ", "America/New_York")],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("WARN freshness of raw.zoned"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("ERROR freshness of raw.empty [ERROR in")
            && run.stderr.contains("no rows to measure"),
        "{}",
        run.stderr
    );
    let json = sources_json(dir.path());
    let age = result(&json, "zoned")["max_loaded_at_time_ago_in_s"]
        .as_f64()
        .expect("age");
    assert!((10_800.0 - 120.0..10_800.0 + 600.0).contains(&age), "{age}");
    let empty = result(&json, "empty");
    assert_eq!(empty["status"], "runtime error");
    assert!(
        empty["error"]
            .as_str()
            .is_some_and(|e| e.contains("no rows")),
        "{empty}"
    );
}

/// Unusable criteria stop the command before anything is checked, naming the file and key.
#[test]
fn unusable_freshness_criteria_are_an_error_naming_the_file() {
    let dir = project(&[
        ("project.yml", "name: shop\n"),
        (
            "models/sources.yml",
            "sources:\n  - name: raw\n    schema: main\n    loaded_at_field: loaded_at\n    tables:\n      - name: events\n        freshness: {warn_after: {count: 2, period: hours}}\n",
        ),
    ]);
    let run = strata(dir.path(), &["source", "freshness"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("source `raw.events`: `freshness.warn_after.period` is `hours`: use minute, hour or day"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("models/sources.yml"), "{}", run.stderr);
    assert!(!dir.path().join("target/sources.json").exists());
}

/// `source_status:fresher+` selects the sources loaded since the --state run's check, and
/// what reads them.
#[test]
fn source_status_fresher_selects_sources_loaded_since_the_state_run() {
    let dir = project(&[
        ("project.yml", "name: shop\n"),
        ("seeds/events.csv", &events(3.0)),
        ("seeds/other_events.csv", &events(3.0)),
        ("models/sources.yml", &SOURCES.replace("{s}", "main")),
        (
            "models/from_events.sql",
            "select * from {{ source('raw', 'events') }}\n",
        ),
        (
            "models/from_other.sql",
            "select * from {{ source('raw', 'other') }}\n",
        ),
    ]);
    // Seeds first: a source is not a ref, so nothing orders them before the models.
    assert_eq!(strata(dir.path(), &["seed"]).code, 0);
    let built = strata(dir.path(), &["build"]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    strata(dir.path(), &["source", "freshness"]);
    let prod = dir.path().join("prod");
    crate::common::copy_tree(&dir.path().join("target"), &prod);
    // New rows land in `other_events` only.
    std::fs::write(dir.path().join("seeds/other_events.csv"), events(0.1)).expect("seed");
    assert_eq!(strata(dir.path(), &["seed"]).code, 0);
    strata(dir.path(), &["source", "freshness"]);
    let listed = strata(
        dir.path(),
        &[
            "ls",
            "--select",
            "source_status:fresher+",
            "--state",
            "prod",
            "--output",
            "name",
            "-q",
        ],
    );
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    let mut names: Vec<&str> = listed.stdout.lines().collect();
    names.sort();
    assert_eq!(names, ["from_other", "raw.other"], "{}", listed.stdout);

    // Without a check in this project's target, the selector says what it needs.
    std::fs::remove_file(dir.path().join("target/sources.json")).expect("remove");
    let unavailable = strata(
        dir.path(),
        &[
            "ls",
            "--select",
            "source_status:fresher+",
            "--state",
            "prod",
        ],
    );
    assert_eq!(unavailable.code, 1, "{}", unavailable.stderr);
    assert!(
        unavailable.stderr.contains("strata source freshness"),
        "{}",
        unavailable.stderr
    );
}

/// `build --skip-stale-sources`: what reads a source past `error_after` is skipped (with the
/// source named in `run_results.json`), the rest is built, and the run fails.
#[test]
fn build_skips_what_reads_a_stale_source_and_fails() {
    let dir = project(&[
        ("project.yml", "name: shop\n"),
        ("seeds/events.csv", &events(3.0)),
        ("seeds/other_events.csv", &events(0.5)),
        ("models/sources.yml", &SOURCES.replace("{s}", "main")),
        (
            "models/from_stale.sql",
            "select * from {{ source('raw', 'stale') }}\n",
        ),
        (
            "models/downstream.sql",
            "select * from {{ ref('from_stale') }}\n",
        ),
        (
            "models/from_other.sql",
            "select * from {{ source('raw', 'other') }}\n",
        ),
    ]);
    assert_eq!(strata(dir.path(), &["seed"]).code, 0);
    let built = strata(
        dir.path(),
        &[
            "build",
            "--skip-stale-sources",
            "--exclude",
            "resource_type:seed",
        ],
    );
    assert_eq!(built.code, 1, "{}", built.stderr);
    assert!(
        built.stderr.contains("ERROR STALE freshness of raw.stale"),
        "{}",
        built.stderr
    );
    assert!(built.stderr.contains("OK from_other"), "{}", built.stderr);
    let results: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("target/run_results.json")).expect("results"),
    )
    .expect("JSON");
    let status = |id: &str| {
        results["results"]
            .as_array()
            .expect("results")
            .iter()
            .find(|r| r["unique_id"] == id)
            .map(|r| (r["status"].clone(), r["message"].clone()))
    };
    for id in ["model.shop.from_stale", "model.shop.downstream"] {
        let (status, message) = status(id).expect(id);
        assert_eq!(status, "skipped");
        assert!(
            message
                .as_str()
                .is_some_and(|m| m.contains("source `raw.stale` is stale")),
            "{message}"
        );
    }
    assert_eq!(status("model.shop.from_other").expect("other").0, "success");
    // The check's results are kept for `source_status:`.
    assert!(dir.path().join("target/sources.json").is_file());
    // Without the flag, everything builds.
    let plain = strata(dir.path(), &["build", "--exclude", "resource_type:seed"]);
    assert_eq!(plain.code, 0, "{}", plain.stderr);
}

/// The freshness query on the Redshift stand-in (both transports' SQL is the same), Trino and
/// Athena.
#[test]
fn freshness_warns_by_age_on_the_redshift_trino_and_athena_stand_ins() {
    let seeds = [
        ("seeds/events.csv", events(3.0)),
        ("seeds/other_events.csv", events(0.5)),
    ];
    if let Some(db) = crate::redshift::stand_in("freshness") {
        let dir = project(&[
            ("project.yml", "name: shop\nprofile: shop\n"),
            (
                "profiles.yml",
                &format!("shop:\n  target: rs\n  outputs:\n    rs:\n      type: redshift\n      host: 127.0.0.1\n      port: 5439\n      user: postgres\n      sslmode: disable\n      dbname: {}\n      schema: analytics\n      region: us-east-1\n", db.name),
            ),
            (seeds[0].0, &seeds[0].1),
            (seeds[1].0, &seeds[1].1),
            ("models/sources.yml", &SOURCES.replace("{s}", "analytics")),
        ]);
        let env = crate::redshift::environment(&db);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(strata_env(dir.path(), &["seed"], &env).code, 0);
        let run = strata_env(dir.path(), &["source", "freshness"], &env);
        assert_eq!(run.code, 1, "{}", run.stderr);
        let json = sources_json(dir.path());
        assert_eq!(result(&json, "events")["status"], "warn", "{json:#}");
        assert_eq!(result(&json, "stale")["status"], "error", "{json:#}");
        assert_eq!(result(&json, "other")["status"], "pass", "{json:#}");
    }
    if !crate::lake::stand_in("freshness_trino") || !crate::lake::athena_front("freshness_athena") {
        return;
    }
    let schema = format!("freshness_{}", std::process::id());
    for (target, catalog, schema) in [
        ("trino", "iceberg", schema.clone()),
        ("athena", "awsdatacatalog", format!("{schema}_athena")),
    ] {
        let dir = project(&[
            ("project.yml", "name: shop\nprofile: shop\n"),
            (
                "profiles.yml",
                &format!("shop:\n  target: {target}\n  outputs:\n    trino:\n      type: trino\n      host: 127.0.0.1\n      port: 8090\n      user: strata\n      database: iceberg\n      schema: {schema}\n    athena:\n      type: athena\n      region_name: us-east-1\n      schema: {schema}\n      work_group: primary\n      s3_staging_dir: s3://strata-athena/staging/{schema}/\n"),
            ),
            (seeds[0].0, &seeds[0].1),
            (seeds[1].0, &seeds[1].1),
            ("models/sources.yml", &SOURCES.replace("{s}", &schema)),
        ]);
        let seeded = crate::lake::run(dir.path(), &["seed"], &[]);
        assert_eq!(seeded.code, 0, "{target}: {}", seeded.stderr);
        let run = crate::lake::run(dir.path(), &["source", "freshness"], &[]);
        assert_eq!(run.code, 1, "{target}: {}", run.stderr);
        let json = sources_json(dir.path());
        assert_eq!(
            result(&json, "events")["status"],
            "warn",
            "{target}: {json:#}"
        );
        assert_eq!(
            result(&json, "stale")["status"],
            "error",
            "{target}: {json:#}"
        );
        assert_eq!(
            result(&json, "other")["status"],
            "pass",
            "{target}: {json:#}"
        );
        crate::lake::drop_schema(catalog, &schema);
        crate::lake::drop_schema(catalog, &format!("{schema}_strata"));
    }
}

/// An external source without `loaded_at_field` is as fresh as its newest landing file.
#[test]
fn an_external_source_is_as_fresh_as_its_newest_landing_file() {
    let dir = project(&[
        ("project.yml", "name: shop\n"),
        ("landing/orders/day1.csv", "id\n1\n"),
        ("landing/orders/day2.csv", "id\n2\n"),
        (
            "models/sources.yml",
            "sources:\n  - name: shop\n    freshness: {warn_after: {count: 2, period: hour}, error_after: {count: 4, period: hour}}\n    tables:\n      - name: orders\n        external: {location: 'landing/orders/*.csv', format: csv}\n",
        ),
    ]);
    for (file, age) in [("day1.csv", "5 hours ago"), ("day2.csv", "3 hours ago")] {
        let touched = std::process::Command::new("touch")
            .args(["-d", age])
            .arg(dir.path().join("landing/orders").join(file))
            .status()
            .expect("touch runs");
        assert!(touched.success());
    }
    let run = strata(dir.path(), &["source", "freshness"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("WARN freshness of shop.orders"),
        "{}",
        run.stderr
    );
    let json = sources_json(dir.path());
    let age = json["results"][0]["max_loaded_at_time_ago_in_s"]
        .as_f64()
        .expect("age");
    assert!((10_800.0 - 120.0..10_800.0 + 600.0).contains(&age), "{age}");
}

//! The Redshift adapter against the local stand-in (`tests/redshift/`): PostgreSQL underneath,
//! a wire-protocol front at 127.0.0.1:5439, a Data API endpoint speaking AWS's JSON protocol
//! at 127.0.0.1:4439 (with its control API for injected faults and the events it saw), and
//! moto's S3 at 127.0.0.1:4566, which the stand-in's `COPY … FROM 's3://…'` reads. Each test
//! works in its own database. In CI a missing stand-in fails the test; elsewhere the test
//! prints why it skipped.

use std::path::Path;
use std::time::Duration;

use crate::common::{project, strata_env, Running};
use crate::postgres::Database;

const CONTROL: &str = "127.0.0.1:4439";

/// One HTTP/1.1 request to the stand-in's control API; returns the status and the body.
fn http(method: &str, path: &str, body: &str) -> Result<(u16, String), String> {
    crate::common::http(CONTROL, method, path, body)
}

/// A fresh database on the stand-in's PostgreSQL, when the stand-in is up.
pub fn stand_in(test: &str) -> Option<Database> {
    match http("GET", "/_standin/health", "") {
        Ok((200, _)) => {}
        other => {
            let reason = format!("{other:?}");
            if std::env::var_os("CI").is_some() {
                panic!(
                    "the Redshift stand-in (tests/redshift/start.sh) is required in CI: {reason}"
                );
            }
            eprintln!("skipping {test}: no Redshift stand-in at {CONTROL} ({reason}); run tests/services.sh");
            return None;
        }
    }
    Database::create(&format!("rs_{test}"))
}

/// Injects a fault (`tests/redshift/standin.py` documents the kinds).
fn inject(fault: serde_json::Value) {
    let (status, body) = http("POST", "/_standin/faults", &fault.to_string()).expect("inject");
    assert_eq!(status, 200, "{body}");
}

/// The stand-in's events with a field (the SQL, the S3 location, the kind) that mentions
/// `needle`.
fn events(needle: &str) -> Vec<serde_json::Value> {
    let (_, body) = http("GET", "/_standin/events", "").expect("events");
    let all: Vec<serde_json::Value> = serde_json::from_str(&body).expect("events are JSON");
    all.into_iter()
        .filter(|e| {
            e.as_object().is_some_and(|fields| {
                fields
                    .values()
                    .any(|v| v.as_str().is_some_and(|s| s.contains(needle)))
            })
        })
        .collect()
}

/// The AWS settings that point the SDKs at the stand-in, and the database to use.
pub fn environment(db: &Database) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", "standin".into()),
        ("AWS_SECRET_ACCESS_KEY", "standin".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        (
            "AWS_ENDPOINT_URL_REDSHIFT_DATA",
            "http://127.0.0.1:4439".into(),
        ),
        ("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:4566".into()),
        ("STRATA_REDSHIFT_DATABASE", db.name.clone()),
        ("STRATA_REDSHIFT_SSLMODE", "disable".into()),
    ]
}

fn run(dir: &Path, args: &[&str], db: &Database) -> crate::common::Run {
    let env = environment(db);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    strata_env(dir, args, &env)
}

/// Both transports, by the profile keys that select them.
const TRANSPORTS: [(&str, &str); 2] = [
    (
        "wire",
        "      host: 127.0.0.1\n      port: 5439\n      user: postgres\n      sslmode: disable\n",
    ),
    (
        "data_api",
        "      method: data_api\n      cluster_identifier: standin\n      db_user: postgres\n",
    ),
];

fn profile(db: &Database, transport: &str, extra: &str) -> String {
    format!(
        "shop:\n  target: rs\n  outputs:\n    rs:\n      type: redshift\n{transport}      dbname: {}\n      schema: analytics\n      threads: 4\n      region: us-east-1\n      s3_staging_dir: s3://strata-staging/tests/\n      iam_role: arn:aws:iam::000000000000:role/strata-load\n{extra}",
        db.name
    )
}

/// A model name no other test process uses: faults match statements by their text, and the
/// stand-in is shared.
fn unique(name: &str) -> String {
    format!("{name}_{}", std::process::id())
}

const PROJECT: &str = "name: shop\nprofile: shop\nmodels:\n  shop:\n    +materialized: table\n";

#[test]
fn the_example_builds_on_the_redshift_stand_in_by_both_transports_and_equals_duckdb() {
    let Some(wire_db) = stand_in("example_wire") else {
        return;
    };
    let Some(api_db) = Database::create("rs_example_data_api") else {
        return;
    };
    let dir = crate::example::example();
    let build_all = || {
        let on_duckdb = crate::common::strata(dir.path(), &["build"]);
        assert_eq!(on_duckdb.code, 0, "{}", on_duckdb.stderr);
        for (target, db) in [("redshift", &wire_db), ("redshift_data", &api_db)] {
            let built = run(dir.path(), &["build", "--target", target], db);
            assert_eq!(built.code, 0, "{target}: {}", built.stderr);
            assert!(
                built.stderr.contains("WARN=0 ERROR=0 SKIP=0"),
                "{target}: {}",
                built.stderr
            );
        }
    };
    let parquet_copies = || {
        events("strata-staging/retail_finance/strata/")
            .iter()
            .filter(|e| {
                e["kind"] == "copy" && e["s3"].as_str().is_some_and(|s| s.ends_with(".parquet"))
            })
            .count()
    };
    let copied_before = parquet_copies();
    build_all();
    let duck = dir.path().join("target/strata/retail_finance.duckdb");
    crate::postgres::assert_same_tables(&wire_db, &duck);
    crate::postgres::assert_same_tables(&api_db, &duck);
    // Landing files went to the warehouse as Parquet, through S3 and COPY: six sources by
    // two transports.
    assert!(parquet_copies() >= copied_before + 12);

    let landed = std::process::Command::new(crate::example::gen_landing())
        .args(["--out", "landing", "--next-day"])
        .current_dir(dir.path())
        .output()
        .expect("gen_landing runs");
    assert!(landed.status.success(), "{landed:?}");
    build_all();
    crate::postgres::assert_same_tables(&wire_db, &duck);
    crate::postgres::assert_same_tables(&api_db, &duck);
}

#[test]
fn injected_serialization_errors_on_a_swap_are_retried_by_both_transports() {
    for (name, transport) in TRANSPORTS {
        let Some(db) = stand_in(&format!("retry_{name}")) else {
            return;
        };
        let model = unique(&format!("swapped_{name}"));
        let dir = project(&[
            ("project.yml", PROJECT),
            ("profiles.yml", &profile(&db, transport, "")),
            (&format!("models/{model}.sql"), "select 1 as id\n"),
        ]);
        let first = run(dir.path(), &["run"], &db);
        assert_eq!(first.code, 0, "{name}: {}", first.stderr);
        // The swap renames the new table in: fail that statement twice.
        inject(serde_json::json!({
            "kind": "error1023", "count": 2, "match": format!("rename to \"{model}\""),
        }));
        let second = run(dir.path(), &["run"], &db);
        assert_eq!(second.code, 0, "{name}: {}", second.stderr);
        let fired = events(&format!("rename to \"{model}\""))
            .into_iter()
            .filter(|e| e["kind"] == "fault")
            .count();
        assert_eq!(
            fired, 2,
            "{name}: both injected errors were hit and retried"
        );
        assert_eq!(db.query(&format!("select id from analytics.{model}")), "1");
    }
}

#[test]
fn a_statement_that_keeps_failing_fails_its_model_with_the_message_and_skips_its_children() {
    for (name, transport) in TRANSPORTS {
        let Some(db) = stand_in(&format!("fails_{name}")) else {
            return;
        };
        let model = unique(&format!("failing_{name}"));
        let dir = project(&[
            ("project.yml", PROJECT),
            (
                "profiles.yml",
                &profile(&db, transport, "      retries: 1\n"),
            ),
            (&format!("models/{model}.sql"), "select 1 as id\n"),
            (
                "models/child.sql",
                &format!("select id from {{{{ ref('{model}') }}}}\n"),
            ),
        ]);
        // One attempt and one retry: both fail.
        inject(serde_json::json!({
            "kind": "error1023", "count": 2, "match": format!("create table .*\"{model}"),
        }));
        let failed = run(dir.path(), &["run"], &db);
        assert_eq!(failed.code, 1, "{name}: {}", failed.stderr);
        assert!(
            failed.stderr.contains("Serializable isolation violation"),
            "{name}: {}",
            failed.stderr
        );
        assert!(
            failed.stderr.contains(&format!("models/{model}.sql")),
            "{name}: {}",
            failed.stderr
        );
        assert!(
            failed.stderr.contains("SKIP=1"),
            "{name}: {}",
            failed.stderr
        );
        assert_eq!(
            db.query(
                "select count(*) from information_schema.tables where table_schema = 'analytics'"
            ),
            "0",
            "{name}: nothing half-built"
        );
    }
}

#[test]
fn ctrl_c_cancels_a_slow_statement_on_the_stand_in_by_both_transports() {
    for (name, transport) in TRANSPORTS {
        let Some(db) = stand_in(&format!("cancel_{name}")) else {
            return;
        };
        let model = unique(&format!("slow_{name}"));
        let dir = project(&[
            ("project.yml", PROJECT),
            ("profiles.yml", &profile(&db, transport, "")),
            (&format!("models/{model}.sql"), "select 1 as id\n"),
        ]);
        assert_eq!(run(dir.path(), &["run"], &db).code, 0);
        std::fs::write(
            dir.path().join(format!("models/{model}.sql")),
            "select 2 as id\n",
        )
        .expect("write model");
        inject(serde_json::json!({
            "kind": "slow", "seconds": 120, "match": format!("create table .*\"{model}"),
        }));
        let env = environment(&db);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let started = std::time::Instant::now();
        let running = Running::until_env(
            dir.path(),
            &["run"],
            &env,
            &format!("START sql table model analytics.{model}"),
        );
        // Wait until the slow statement runs on the server, then interrupt strata.
        for _ in 0..200 {
            if events(&model).iter().any(|e| e["kind"] == "fault") {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(200));
        let (code, seen) = running.interrupt();
        assert_eq!(code, Some(1), "{name}: {seen}");
        assert!(
            started.elapsed().as_secs() < 60,
            "{name}: the statement was not cancelled: {seen}"
        );
        // The cancel the stand-in saw after this test's slow statement started.
        let slowed = events(&model)
            .iter()
            .filter(|e| e["kind"] == "fault")
            .filter_map(|e| e["time"].as_f64())
            .fold(f64::NAN, f64::max);
        assert!(slowed.is_finite(), "{name}: the slow statement never ran");
        let transport_name = if name == "wire" { "wire" } else { "data_api" };
        let cancels = events("cancel");
        assert!(
            cancels.iter().any(|e| e["kind"] == "cancel"
                && e["transport"] == transport_name
                && e["time"].as_f64().is_some_and(|t| t >= slowed)),
            "{name}: the stand-in saw no cancel: {cancels:?}"
        );
        assert_eq!(
            db.query(&format!("select id from analytics.{model}")),
            "1",
            "{name}: the previous table is kept"
        );
        assert_eq!(
            db.query("select count(*) from information_schema.tables where table_name like '%\\_\\_strata\\_%'"),
            "0",
            "{name}: nothing half-built is left"
        );
    }
}

#[test]
fn seeds_load_by_copy_from_s3_or_by_inserts_when_small() {
    for (name, transport) in TRANSPORTS {
        let Some(db) = stand_in(&format!("seeds_{name}")) else {
            return;
        };
        let big_seed = unique(&format!("big_{name}"));
        let small_seed = unique(&format!("small_{name}"));
        let big: String = std::iter::once("id,name,amount\n".to_string())
            .chain((1..=500).map(|i| format!("{i},name {i},{i}.25\n")))
            .collect();
        let dir = project(&[
            ("project.yml", PROJECT),
            (
                "profiles.yml",
                &profile(&db, transport, "      seed_insert_max_bytes: 1000\n"),
            ),
            (
                &format!("seeds/{small_seed}.csv"),
                "code,label\na,Alpha\nb,\n",
            ),
            (&format!("seeds/{big_seed}.csv"), &big),
        ]);
        let seeded = run(dir.path(), &["seed"], &db);
        assert_eq!(seeded.code, 0, "{name}: {}", seeded.stderr);
        assert_eq!(
            db.query(&format!(
                "select count(*), sum(amount), count(distinct name) from analytics.{big_seed}"
            )),
            "500|125375|500"
        );
        assert_eq!(
            db.query(&format!(
                "select code || ':' || coalesce(label, 'NULL') from analytics.{small_seed} order by 1"
            )),
            "a:Alpha\nb:NULL"
        );
        let copies: Vec<_> = events(&format!("{big_seed}.csv"))
            .into_iter()
            .filter(|e| e["kind"] == "copy")
            .collect();
        assert_eq!(
            copies.len(),
            1,
            "{name}: the big seed went by COPY: {copies:?}"
        );
        assert!(
            events(&format!("{small_seed}.csv")).is_empty(),
            "{name}: the small seed was inserted"
        );
    }
}

#[test]
fn debug_checks_the_transport_and_the_staging_location() {
    for (name, transport) in TRANSPORTS {
        let Some(db) = stand_in(&format!("debug_{name}")) else {
            return;
        };
        let dir = project(&[
            ("project.yml", PROJECT),
            ("profiles.yml", &profile(&db, transport, "")),
        ]);
        let checked = run(dir.path(), &["debug"], &db);
        assert_eq!(
            checked.code, 0,
            "{name}: {}{}",
            checked.stdout, checked.stderr
        );
        let expected = if name == "wire" {
            "connection (wire protocol): OK"
        } else {
            "connection (Data API): OK"
        };
        assert!(checked.stdout.contains(expected), "{}", checked.stdout);
        assert!(
            checked
                .stdout
                .contains("S3 staging s3://strata-staging/tests/: OK"),
            "{}",
            checked.stdout
        );
    }
}

#[test]
fn a_connection_dropped_in_a_swap_and_a_throttled_call_are_retried() {
    let Some(db) = stand_in("dropped") else {
        return;
    };
    let model = unique("dropped");
    let (_, wire) = TRANSPORTS[0];
    let dir = project(&[
        ("project.yml", PROJECT),
        ("profiles.yml", &profile(&db, wire, "")),
        (&format!("models/{model}.sql"), "select 1 as id\n"),
    ]);
    assert_eq!(run(dir.path(), &["run"], &db).code, 0);
    // Inside the swap's transaction nothing has committed: the whole block is run again.
    inject(serde_json::json!({
        "kind": "drop_connection", "count": 1, "match": format!("rename to \"{model}\""),
        "transport": "wire",
    }));
    let again = run(dir.path(), &["run"], &db);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(
        events(&format!("rename to \"{model}\""))
            .iter()
            .filter(|e| e["kind"] == "fault")
            .count(),
        1
    );
    assert_eq!(db.query(&format!("select id from analytics.{model}")), "1");

    let Some(api_db) = Database::create("rs_throttled") else {
        return;
    };
    let (_, data_api) = TRANSPORTS[1];
    std::fs::write(
        dir.path().join("profiles.yml"),
        profile(&api_db, data_api, ""),
    )
    .expect("write profile");
    // Throttled twice: the SDK's retries absorb it.
    inject(serde_json::json!({
        "kind": "throttle", "count": 2, "match": "BatchExecuteStatement",
    }));
    let throttled = run(dir.path(), &["run"], &api_db);
    assert_eq!(throttled.code, 0, "{}", throttled.stderr);
    assert_eq!(
        api_db.query(&format!("select id from analytics.{model}")),
        "1"
    );
}

#[test]
fn grants_follow_the_config_on_both_transports() {
    for (name, transport) in TRANSPORTS {
        let Some(db) = stand_in(&format!("grants_{name}")) else {
            return;
        };
        // Roles belong to the whole server: two fixed ones, made once.
        let (reader, former) = ("strata_test_reporter", "strata_test_former");
        for role in [reader, former] {
            let _ = crate::postgres::psql("postgres", &format!("create role {role}"));
        }
        let model = unique(&format!("granted_{name}"));
        let config = |role: &str| {
            format!("{{{{ config(grants={{'select': ['{role}']}}) }}}}\nselect 1 as id\n")
        };
        let dir = project(&[
            ("project.yml", PROJECT),
            ("profiles.yml", &profile(&db, transport, "")),
            (&format!("models/{model}.sql"), &config(former)),
        ]);
        let privileges = || {
            db.query(&format!(
                "select grantee || ':' || lower(privilege_type) from information_schema.table_privileges where table_name = '{model}' and grantee <> current_user order by 1"
            ))
        };
        let first = run(dir.path(), &["run"], &db);
        assert_eq!(first.code, 0, "{name}: {}", first.stderr);
        assert_eq!(privileges(), format!("{former}:select"));
        std::fs::write(
            dir.path().join(format!("models/{model}.sql")),
            config(reader),
        )
        .expect("write model");
        let second = run(dir.path(), &["run"], &db);
        assert_eq!(second.code, 0, "{name}: {}", second.stderr);
        assert_eq!(privileges(), format!("{reader}:select"));
    }
}

//! The run log in the warehouse: one invocation row and one row per node with its status,
//! written as nodes finish (a kill -9 leaves the rows of what finished), never failing a run;
//! on DuckDB and PostgreSQL, and on the Redshift, Trino and Athena stand-ins.

use std::time::{Duration, Instant};

use crate::common::{project, strata, Running};
use crate::warehouse::{Kind, Warehouse};

/// A node's id without the hash of a generic test's arguments.
fn without_hash(id: &str) -> String {
    match id.strip_prefix("test.") {
        Some(rest) => format!(
            "test.{}",
            rest.splitn(3, '.').take(2).collect::<Vec<_>>().join(".")
        ),
        None => id.to_string(),
    }
}

/// `a` builds, `bad` fails, `after_bad` is skipped behind it, `b` builds; `a` has a test.
const MODELS: &[(&str, &str)] = &[
    ("models/a.sql", "select 1 as id\n"),
    ("models/b.sql", "select * from {{ ref('a') }}\n"),
    (
        "models/bad.sql",
        "select no_such_column from {{ ref('a') }}\n",
    ),
    ("models/after_bad.sql", "select * from {{ ref('bad') }}\n"),
    (
        "models/schema.yml",
        "models:\n  - name: a\n    columns:\n      - name: id\n        data_tests: [not_null]\n",
    ),
];

fn one_failing_model(kind: Kind) {
    let Some(w) = Warehouse::new(
        kind,
        "runlog",
        "name: shop\nrun-log:\n  schema: audit\n",
        MODELS,
    ) else {
        return;
    };
    let built = w.run(&["build", "--select", "a+", "bad+"]);
    assert_eq!(built.code, 1, "{}", built.stderr);
    assert!(!built.stderr.contains("run log"), "{}", built.stderr);
    let invocations = w.query(
        "select command, selector, status, nodes, succeeded, failed, skipped, case when finished_at >= started_at then 'ok' else 'bad' end from audit.strata_invocations",
    );
    assert_eq!(
        invocations,
        [[
            "build",
            "--select a+ bad+",
            "error",
            "5",
            "3",
            "1",
            "1",
            "ok"
        ]],
        "{}",
        built.stderr
    );
    let mut nodes = w.query(
        "select n.node_id, n.resource_type, n.status from audit.strata_node_runs n join audit.strata_invocations i on i.invocation_id = n.invocation_id",
    );
    for row in &mut nodes {
        row[0] = without_hash(&row[0]);
    }
    nodes.sort();
    assert_eq!(
        nodes,
        [
            ["model.shop.a", "model", "success"],
            ["model.shop.after_bad", "model", "skipped"],
            ["model.shop.b", "model", "success"],
            ["model.shop.bad", "model", "error"],
            ["test.shop.not_null_a_id", "test", "pass"],
        ]
    );
    let message =
        w.query("select message from audit.strata_node_runs where node_id = 'model.shop.bad'");
    assert!(message[0][0].contains("no_such_column"), "{message:?}");
    // A second run appends.
    assert_eq!(w.run(&["run", "--select", "a"]).code, 0);
    assert_eq!(
        w.query("select count(*) from audit.strata_invocations"),
        [["2"]]
    );
    assert_eq!(
        w.query("select count(*) from audit.strata_node_runs"),
        [["6"]]
    );
}

#[test]
fn the_run_log_has_one_invocation_row_and_a_row_per_node_on_duckdb() {
    one_failing_model(Kind::Duckdb);
}

#[test]
fn the_run_log_has_one_invocation_row_and_a_row_per_node_on_postgres() {
    one_failing_model(Kind::Postgres);
}

/// A log the warehouse refuses to write is a warning; the run's exit code is its own.
#[test]
fn a_run_log_that_cannot_be_written_does_not_fail_the_run() {
    let dir = project(&[
        (
            "project.yml",
            "name: shop\nrun-log:\n  database: no_such_catalog\n  schema: audit\n",
        ),
        ("models/a.sql", "select 1 as id\n"),
    ]);
    let run = strata(dir.path(), &["run"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("cannot open the run log"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("OK a"), "{}", run.stderr);
}

/// A mistake in the block stops the run before anything is written, naming the line.
#[test]
fn a_mistake_in_the_run_log_block_names_the_project_file_line() {
    let dir = project(&[
        ("project.yml", "name: shop\n\nrun-log:\n  shema: audit\n"),
        ("models/a.sql", "select 1 as id\n"),
    ]);
    let run = strata(dir.path(), &["run"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("unknown key `shema` in `run-log` (did you mean `schema`?)"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("project.yml:3"), "{}", run.stderr);
    assert!(!dir.path().join("target/shop.duckdb").exists());
}

/// kill -9 while a slow model runs: the rows of the nodes that finished are in the log, and
/// the invocation's row still says `running`, with no end.
#[test]
fn a_killed_run_leaves_the_rows_of_the_nodes_that_finished_on_postgres() {
    let Some(pg) = crate::postgres::Database::create("runlog_kill") else {
        return;
    };
    let dir = project(&[
        (
            "project.yml",
            "name: shop\nprofile: shop\nrun-log:\n  schema: audit\n",
        ),
        ("profiles.yml", &pg.profile()),
        ("models/fast.sql", "select 1 as id\n"),
        ("models/fast_too.sql", "select 2 as id\n"),
        (
            "models/slow.sql",
            "{{ config(materialized='table') }}\nselect 1 as id from (select pg_sleep(60)) as s\n",
        ),
    ]);
    let mut running = Running::until(dir.path(), &["run"], "START sql table model analytics.slow");
    // Wait until both fast models' rows are written, then kill.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rows = crate::postgres::psql(
            &pg.name,
            "select count(*) from audit.strata_node_runs where node_id like 'model.shop.fast%'",
        )
        .unwrap_or_default();
        if rows == "2" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the fast models' rows never came: {}",
            running.seen
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    running.child.kill().expect("kill -9");
    let _ = running.child.wait();
    let nodes = pg.query("select node_id, status from audit.strata_node_runs order by 1");
    assert_eq!(
        nodes,
        "model.shop.fast|success\nmodel.shop.fast_too|success"
    );
    let invocation = pg.query(
        "select status, coalesce(cast(finished_at as text), '-') from audit.strata_invocations",
    );
    assert_eq!(invocation, "running|-");
    // Cancel the orphaned sleep so the database can be dropped quickly.
    let _ = crate::postgres::psql(
        "postgres",
        &format!("select pg_terminate_backend(pid) from pg_stat_activity where datname = '{}' and pid <> pg_backend_pid()", pg.name),
    );
}

/// The log's statements on the Redshift stand-in, Trino and Athena.
#[test]
fn the_run_log_is_written_on_the_redshift_trino_and_athena_stand_ins() {
    let files = |profile: String, project_yml: &str| {
        let mut all: Vec<(String, String)> = MODELS
            .iter()
            .map(|(p, c)| (p.to_string(), c.to_string()))
            .collect();
        all.push(("profiles.yml".into(), profile));
        all.push(("project.yml".into(), project_yml.to_string()));
        all
    };
    let check = |rows: Vec<Vec<String>>, target: &str| {
        let mut rows = rows;
        for row in &mut rows {
            row[0] = without_hash(&row[0]);
        }
        rows.sort();
        assert_eq!(
            rows,
            [
                ["model.shop.a", "success"],
                ["model.shop.after_bad", "skipped"],
                ["model.shop.b", "success"],
                ["model.shop.bad", "error"],
                ["test.shop.not_null_a_id", "pass"],
            ],
            "{target}"
        );
    };
    if let Some(db) = crate::redshift::stand_in("runlog") {
        let all = files(
            format!("shop:\n  target: rs\n  outputs:\n    rs:\n      type: redshift\n      host: 127.0.0.1\n      port: 5439\n      user: postgres\n      sslmode: disable\n      dbname: {}\n      schema: analytics\n      region: us-east-1\n", db.name),
            "name: shop\nprofile: shop\nrun-log: {schema: audit}\n",
        );
        let borrowed: Vec<(&str, &str)> =
            all.iter().map(|(p, c)| (p.as_str(), c.as_str())).collect();
        let dir = project(&borrowed);
        let env = crate::redshift::environment(&db);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let run = crate::common::strata_env(dir.path(), &["build"], &env);
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert!(!run.stderr.contains("run log"), "{}", run.stderr);
        let rows: Vec<Vec<String>> = db
            .query("select node_id, status from audit.strata_node_runs")
            .lines()
            .map(|l| l.split('|').map(str::to_string).collect())
            .collect();
        check(rows, "redshift");
        assert_eq!(
            db.query("select status from audit.strata_invocations"),
            "error"
        );
    }
    if !crate::lake::stand_in("runlog_trino") || !crate::lake::athena_front("runlog_athena") {
        return;
    }
    let schema = format!("runlog_{}", std::process::id());
    for (target, catalog) in [("trino", "iceberg"), ("athena", "awsdatacatalog")] {
        let schema = format!("{schema}_{target}");
        let audit = format!("{schema}_audit");
        let all = files(
            format!("shop:\n  target: {target}\n  outputs:\n    trino:\n      type: trino\n      host: 127.0.0.1\n      port: 8090\n      user: strata\n      database: iceberg\n      schema: {schema}\n    athena:\n      type: athena\n      region_name: us-east-1\n      schema: {schema}\n      work_group: primary\n      s3_staging_dir: s3://strata-athena/staging/{schema}/\n"),
            &format!("name: shop\nprofile: shop\nrun-log: {{schema: {audit}}}\n"),
        );
        let borrowed: Vec<(&str, &str)> =
            all.iter().map(|(p, c)| (p.as_str(), c.as_str())).collect();
        let dir = project(&borrowed);
        let run = crate::lake::run(dir.path(), &["build"], &[]);
        assert_eq!(run.code, 1, "{target}: {}", run.stderr);
        assert!(!run.stderr.contains("run log"), "{target}: {}", run.stderr);
        let rows = crate::lake::trino(&format!(
            "select node_id, status from {catalog}.\"{audit}\".strata_node_runs"
        ))
        .unwrap_or_else(|e| panic!("{target}: {e}"))
        .iter()
        .map(|r| {
            r.iter()
                .map(|v| v.as_str().unwrap_or("NULL").to_string())
                .collect()
        })
        .collect();
        check(rows, target);
        let status = crate::lake::trino(&format!(
            "select status from {catalog}.\"{audit}\".strata_invocations"
        ))
        .unwrap_or_else(|e| panic!("{target}: {e}"));
        assert_eq!(status.len(), 1, "{target}: {status:?}");
        assert_eq!(status[0][0].as_str(), Some("error"), "{target}");
        for s in [schema.as_str(), &audit, &format!("{schema}_strata")] {
            crate::lake::drop_schema(catalog, s);
        }
    }
}

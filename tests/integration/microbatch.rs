//! Microbatch models: each batch its own write, recorded in strata's state; a run whose one
//! day fails leaves the other days built, `retry` builds exactly the failed batch, the next
//! scheduled run builds exactly what is missing and the current batch, an explicit window
//! builds what it names, and the table always equals a full refresh. On DuckDB and PostgreSQL.

use serde_json::Value as Json;

use crate::warehouse::{Kind, Warehouse};

/// `today - n days` as `YYYY-MM-DD` (UTC, as strata's batches).
fn day(n: i64) -> String {
    (chrono::Utc::now().date_naive() - chrono::Duration::days(n))
        .format("%Y-%m-%d")
        .to_string()
}

/// Two events a day from four days ago to today; the one of `bad_day` days ago has an amount
/// that does not cast.
fn events(bad_day: i64) -> String {
    let mut csv = String::from("id,ordered_at,amount_text,currency\n");
    for n in (0..=4).rev() {
        for (k, hour) in [(1, "08:00:00"), (2, "17:30:00")] {
            let amount = if n == bad_day && k == 2 {
                "oops".to_string()
            } else {
                format!("{}", 10 * n + k)
            };
            csv.push_str(&format!(
                "{},{} {hour},{amount},{}\n",
                n * 10 + k,
                day(n),
                if k == 1 { "EUR" } else { "USD" }
            ));
        }
    }
    csv
}

fn files(bad_day: i64) -> Vec<(String, String)> {
    vec![
        ("seeds/events.csv".into(), events(bad_day)),
        (
            "seeds/rates.csv".into(),
            "currency,rate\nEUR,1\nUSD,2\n".into(),
        ),
        (
            "seeds/seeds.yml".into(),
            "seeds:\n  - name: events\n    config:\n      event_time: ordered_at\n      column_types: {ordered_at: timestamp, amount_text: varchar}\n".into(),
        ),
        (
            "models/daily_sales.sql".into(),
            format!(
                "{{{{ config(materialized='incremental', incremental_strategy='microbatch', event_time='ordered_at', batch_size='day', begin='{}', lookback=0) }}}}\n\
                 select e.id, e.ordered_at, cast(e.amount_text as integer) * r.rate as amount\n\
                 from {{{{ ref('events') }}}} as e\n\
                 join {{{{ ref('rates') }}}} as r on r.currency = e.currency\n",
                day(4)
            ),
        ),
    ]
}

/// The batches of `daily_sales` in the last run's results: (successful, failed), as days.
fn batch_results(w: &Warehouse) -> (Vec<String>, Vec<String>) {
    batch_results_in(w.path())
}

/// [`batch_results`] of the project in `dir`.
fn batch_results_in(dir: &std::path::Path) -> (Vec<String>, Vec<String>) {
    let text = std::fs::read_to_string(dir.join("target/run_results.json")).expect("run_results");
    let json: Json = serde_json::from_str(&text).expect("json");
    let result = json["results"]
        .as_array()
        .expect("results")
        .iter()
        .find(|r| r["unique_id"] == "model.shop.daily_sales")
        .expect("daily_sales ran")
        .clone();
    let days = |key: &str| -> Vec<String> {
        result["batch_results"][key]
            .as_array()
            .unwrap_or_else(|| panic!("batch_results.{key} in {result}"))
            .iter()
            .map(|pair| pair[0].as_str().expect("start")[..10].to_string())
            .collect()
    };
    (days("successful"), days("failed"))
}

fn table(w: &Warehouse) -> Vec<Vec<String>> {
    w.query(
        "select id, cast(cast(ordered_at as date) as varchar), amount from {s}.daily_sales order by id",
    )
}

fn days_built(w: &Warehouse) -> Vec<String> {
    w.query(
        "select distinct cast(cast(ordered_at as date) as varchar) from {s}.daily_sales order by 1",
    )
    .into_iter()
    .map(|r| r[0].clone())
    .collect()
}

fn gap_filling(kind: Kind) {
    let owned = files(2);
    let borrowed: Vec<(&str, &str)> = owned
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    let Some(w) = Warehouse::new(kind, "microbatch", "name: shop\n", &borrowed) else {
        return;
    };
    assert_eq!(w.run(&["seed"]).code, 0);

    // Day -2 does not cast: it fails, the four others are built and recorded.
    let first = w.run(&["run"]);
    assert_eq!(first.code, 1, "{}", first.stderr);
    assert!(
        first.stderr.contains("1 of 5 batches failed"),
        "{}",
        first.stderr
    );
    assert_eq!(
        batch_results(&w),
        (vec![day(4), day(3), day(1), day(0)], vec![day(2)])
    );
    assert_eq!(days_built(&w), [day(4), day(3), day(1), day(0)]);
    let state_schema = if kind == Kind::Duckdb {
        "main_strata"
    } else {
        "analytics_strata"
    };
    assert_eq!(
        w.query(&format!(
            "select count(*) from {state_schema}.strata_batches where relation_name = 'daily_sales'"
        )),
        [["4"]]
    );

    // A retry with the data still bad tries exactly the failed batch.
    let retried = w.run(&["retry"]);
    assert_eq!(retried.code, 1, "{}", retried.stderr);
    assert_eq!(batch_results(&w), (vec![], vec![day(2)]));

    // Fixed at the source: a retry builds exactly that day.
    w.execute("update {s}.events set amount_text = '1' where amount_text = 'oops'");
    let retried = w.run(&["retry"]);
    assert_eq!(retried.code, 0, "{}", retried.stderr);
    assert_eq!(batch_results(&w), (vec![day(2)], vec![]));
    assert_eq!(days_built(&w), [day(4), day(3), day(2), day(1), day(0)]);

    // The next scheduled run builds the current day only (lookback 0): nothing is missing.
    let next = w.run(&["run"]);
    assert_eq!(next.code, 0, "{}", next.stderr);
    assert_eq!(batch_results(&w), (vec![day(0)], vec![]));

    // A late event of day -3 is read by a run over an explicit window, which builds exactly
    // the batches it names.
    w.execute(&format!(
        "insert into {{s}}.events values (99, cast('{} 23:00:00' as timestamp), '5', 'USD')",
        day(3)
    ));
    let window = w.run(&[
        "run",
        "--event-time-start",
        &day(3),
        "--event-time-end",
        &day(1),
    ]);
    assert_eq!(window.code, 0, "{}", window.stderr);
    assert_eq!(batch_results(&w), (vec![day(3), day(2)], vec![]));
    let incremental = table(&w);
    assert_eq!(incremental.len(), 11, "{incremental:?}");
    assert!(
        incremental.contains(&vec!["99".into(), day(3), "10".into()]),
        "{incremental:?}"
    );

    // Equal to a full refresh, which builds every batch since `begin`.
    let full = w.run(&["run", "--full-refresh"]);
    assert_eq!(full.code, 0, "{}", full.stderr);
    assert_eq!(batch_results(&w).0.len(), 5);
    assert_eq!(table(&w), incremental);
}

#[test]
fn a_failed_day_is_retried_alone_and_the_next_run_fills_the_gap_on_duckdb() {
    gap_filling(Kind::Duckdb);
}

#[test]
fn a_failed_day_is_retried_alone_and_the_next_run_fills_the_gap_on_postgres() {
    gap_filling(Kind::Postgres);
}

/// The scheduled run after a failed night, without a retry: the missing day and the current
/// one, and inputs without an event time are read whole.
#[test]
fn the_next_scheduled_run_builds_exactly_the_missing_day_and_the_current_one() {
    let owned = files(2);
    let borrowed: Vec<(&str, &str)> = owned
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    let Some(w) = Warehouse::new(Kind::Duckdb, "microbatch_next", "name: shop\n", &borrowed) else {
        return;
    };
    assert_eq!(w.run(&["seed"]).code, 0);
    assert_eq!(w.run(&["run"]).code, 1);
    w.execute("update {s}.events set amount_text = '1' where amount_text = 'oops'");
    let next = w.run(&["run"]);
    assert_eq!(next.code, 0, "{}", next.stderr);
    assert_eq!(batch_results(&w), (vec![day(2), day(0)], vec![]));
    let compiled =
        std::fs::read_to_string(w.path().join("target/compiled/shop/models/daily_sales.sql"))
            .expect("compiled sql");
    assert!(
        compiled.contains("\"ordered_at\" >= '__strata_event_time_start__'"),
        "{compiled}"
    );
    assert!(!compiled.contains("rate\" >="), "{compiled}");
    let incremental = table(&w);
    assert_eq!(w.run(&["run", "--full-refresh"]).code, 0);
    assert_eq!(table(&w), incremental);
    // `show` previews every batch since `begin`.
    let shown = w.run(&["show", "--select", "daily_sales", "--limit", "100"]);
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    assert!(shown.stdout.contains("41"), "{}", shown.stdout);
    // dbt's `model.batch` holds each batch's id and bounds.
    w.write(
        "models/tagged.sql",
        &format!(
            "{{{{ config(materialized='incremental', incremental_strategy='microbatch', event_time='ordered_at', batch_size='day', begin='{}', lookback=0) }}}}\n\
             select e.id, e.ordered_at, '{{{{ model.batch.id }}}}' as batch_id,\n\
             cast('{{{{ model.batch.event_time_start }}}}' as timestamp) as batch_start\n\
             from {{{{ ref('events') }}}} as e\n",
            day(4)
        ),
    );
    let tagged = w.run(&["run", "--select", "tagged"]);
    assert_eq!(tagged.code, 0, "{}", tagged.stderr);
    assert_eq!(
        w.query("select count(*), count(distinct batch_id) from {s}.tagged where batch_id = strftime(ordered_at, '%Y%m%d') and batch_start = date_trunc('day', ordered_at)"),
        [["10", "5"]]
    );
    // Mistakes in the config say what to write, before anything is built.
    w.write(
        "models/daily_sales.sql",
        "{{ config(materialized='incremental', incremental_strategy='microbatch', event_time='ordered_at', batch_size='week', begin='2024-01-01') }}\nselect 1 as id\n",
    );
    let wrong = w.run(&["run"]);
    assert_eq!(wrong.code, 1);
    assert!(
        wrong
            .stderr
            .contains("`batch_size: week` is not one of hour, day, month, year"),
        "{}",
        wrong.stderr
    );
}

/// The batches' statements on the Redshift stand-in, Trino and Athena (Iceberg): a run with a
/// failing day, then the next run after the fix builds that day and the current one.
#[test]
fn batches_are_written_and_recorded_on_the_redshift_trino_and_athena_stand_ins() {
    let project_files = |profile: String| {
        let mut all = files(2);
        all.push(("profiles.yml".into(), profile));
        all.push((
            "project.yml".into(),
            "name: shop\nprofile: shop\n".to_string(),
        ));
        all
    };
    let fix = |all: &mut Vec<(String, String)>| {
        all[0].1 = events(99);
    };
    let expect_days = |dir: &std::path::Path, expected: (Vec<String>, Vec<String>), what: &str| {
        assert_eq!(batch_results_in(dir), expected, "{what}");
    };
    let scenario = |all: Vec<(String, String)>,
                    run: &dyn Fn(&std::path::Path, &[&str]) -> crate::common::Run,
                    what: &str| {
        let borrowed: Vec<(&str, &str)> =
            all.iter().map(|(p, c)| (p.as_str(), c.as_str())).collect();
        let dir = crate::common::project(&borrowed);
        let seeded = run(dir.path(), &["seed"]);
        assert_eq!(seeded.code, 0, "{what}: {}", seeded.stderr);
        let first = run(dir.path(), &["run"]);
        assert_eq!(first.code, 1, "{what}: {}", first.stderr);
        expect_days(
            dir.path(),
            (vec![day(4), day(3), day(1), day(0)], vec![day(2)]),
            what,
        );
        let mut fixed = all.clone();
        fix(&mut fixed);
        std::fs::write(dir.path().join("seeds/events.csv"), &fixed[0].1).expect("write");
        assert_eq!(run(dir.path(), &["seed"]).code, 0, "{what}");
        let next = run(dir.path(), &["run"]);
        assert_eq!(next.code, 0, "{what}: {}", next.stderr);
        expect_days(dir.path(), (vec![day(2), day(0)], vec![]), what);
    };
    if let Some(db) = crate::redshift::stand_in("microbatch") {
        let env = crate::redshift::environment(&db);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        scenario(
            project_files(format!("shop:\n  target: rs\n  outputs:\n    rs:\n      type: redshift\n      host: 127.0.0.1\n      port: 5439\n      user: postgres\n      sslmode: disable\n      dbname: {}\n      schema: analytics\n      region: us-east-1\n", db.name)),
            &|dir, args| crate::common::strata_env(dir, args, &env),
            "redshift",
        );
        assert_eq!(db.query("select count(*) from analytics.daily_sales"), "10");
    }
    if !crate::lake::stand_in("microbatch_trino") || !crate::lake::athena_front("microbatch_athena")
    {
        return;
    }
    let schema = format!("microbatch_{}", std::process::id());
    for (target, catalog) in [("trino", "iceberg"), ("athena", "awsdatacatalog")] {
        let schema = format!("{schema}_{target}");
        scenario(
            project_files(format!("shop:\n  target: {target}\n  outputs:\n    trino:\n      type: trino\n      host: 127.0.0.1\n      port: 8090\n      user: strata\n      database: iceberg\n      schema: {schema}\n    athena:\n      type: athena\n      region_name: us-east-1\n      schema: {schema}\n      work_group: primary\n      s3_staging_dir: s3://strata-athena/staging/{schema}/\n")),
            &|dir, args| crate::lake::run(dir, args, &[]),
            target,
        );
        let count = crate::lake::trino(&format!(
            "select count(*) from {catalog}.\"{schema}\".daily_sales"
        ))
        .unwrap_or_else(|e| panic!("{target}: {e}"));
        assert_eq!(count[0][0].as_i64(), Some(10), "{target}: {count:?}");
        for s in [schema.as_str(), &format!("{schema}_strata")] {
            crate::lake::drop_schema(catalog, s);
        }
    }
}

/// On PostgreSQL the batches after the first run at once: each batch's statement sleeps a
/// second, so batches one after another start at least a second apart, and batches in
/// parallel start closer. `concurrent_batches: false` keeps them one after another.
#[test]
fn batches_after_the_first_run_in_parallel_on_postgres() {
    let model = |concurrent: &str| {
        format!(
            "{{{{ config(materialized='incremental', incremental_strategy='microbatch', event_time='ordered_at', batch_size='day', begin='{}', lookback=0, concurrent_batches={concurrent}) }}}}\n\
             select e.id, e.ordered_at, statement_timestamp() as started_at\n\
             from {{{{ ref('events') }}}} as e cross join (select pg_sleep(1)) as z\n",
            day(4)
        )
    };
    let mut owned = files(99);
    owned[3].1 = model("none");
    let borrowed: Vec<(&str, &str)> = owned
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    let Some(w) = Warehouse::new(
        Kind::Postgres,
        "microbatch_parallel",
        "name: shop\n",
        &borrowed,
    ) else {
        return;
    };
    assert_eq!(w.run(&["seed"]).code, 0);
    // The seconds between the starts of consecutive batches after the first.
    let gaps = |w: &Warehouse| -> Vec<f64> {
        let starts: Vec<f64> = w
            .query("select extract(epoch from min(started_at)) from {s}.daily_sales group by cast(ordered_at as date) order by 1")
            .iter()
            .map(|r| r[0].parse().expect("epoch"))
            .collect();
        assert_eq!(starts.len(), 5, "{starts:?}");
        starts[1..].windows(2).map(|p| p[1] - p[0]).collect()
    };
    let run = w.run(&["run"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let parallel = gaps(&w);
    assert!(
        parallel.iter().any(|gap| *gap < 0.9),
        "no two batches ran at once: {parallel:?}"
    );
    w.write("models/daily_sales.sql", &model("false"));
    let run = w.run(&["run", "--full-refresh"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let sequential = gaps(&w);
    assert!(
        sequential.iter().all(|gap| *gap >= 0.99),
        "batches overlapped: {sequential:?}"
    );
    // A model that reads its own table keeps its batches one after another.
    w.write(
        "models/daily_sales.sql",
        &model("none").replace(
            "as z\n",
            "as z\nwhere e.id not in (select id from {{ this }} where 1 = 0)\n",
        ),
    );
    let run = w.run(&["run", "--full-refresh"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let reading_itself = gaps(&w);
    assert!(
        reading_itself.iter().all(|gap| *gap >= 0.99),
        "batches of a model reading itself overlapped: {reading_itself:?}"
    );
    // No aside table is left behind.
    assert_eq!(
        w.query(
            "select count(*) from information_schema.tables where table_name like '%__strata_%'"
        ),
        [["0"]]
    );
}

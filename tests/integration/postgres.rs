//! The PostgreSQL adapter against the real server at 127.0.0.1:5432 (trust auth, user
//! `postgres`). Each test works in its own fresh database. In CI (`CI` set) a missing server
//! fails the test; elsewhere the test prints why it skipped.

use std::path::Path;
use std::process::Command;

use crate::common::{project, strata, strata_env};

pub fn psql(database: &str, sql: &str) -> Result<String, String> {
    let output = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            database,
            "-X",
            "-q",
            "-At",
            "-v",
            "ON_ERROR_STOP=1",
            "-P",
            "null=NULL",
            "-c",
            sql,
        ])
        .output()
        .map_err(|e| format!("cannot run psql: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout)
            .trim_end()
            .to_string())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

/// A fresh database, dropped at the end; `None` (with the reason printed) when no server
/// answers outside CI.
pub struct Database {
    pub name: String,
}

impl Database {
    pub fn create(test: &str) -> Option<Database> {
        if let Err(reason) = psql("postgres", "select 1") {
            if std::env::var_os("CI").is_some() {
                panic!("PostgreSQL at 127.0.0.1:5432 is required in CI: {reason}");
            }
            eprintln!("skipping {test}: no PostgreSQL at 127.0.0.1:5432 ({reason})");
            return None;
        }
        let name = format!("strata_{test}_{}", std::process::id());
        let _ = psql("postgres", &format!("drop database if exists {name}"));
        psql("postgres", &format!("create database {name}")).expect("create database");
        Some(Database { name })
    }

    pub fn query(&self, sql: &str) -> String {
        psql(&self.name, sql).unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    pub fn profile(&self) -> String {
        format!(
            "shop:\n  target: pg\n  outputs:\n    pg:\n      type: postgres\n      host: 127.0.0.1\n      port: 5432\n      user: postgres\n      password: \"{{{{ env_var('SHOP_PG_PASSWORD', '') }}}}\"\n      dbname: {}\n      schema: analytics\n      threads: 4\n      sslmode: disable\n",
            self.name
        )
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = psql(
            "postgres",
            &format!("drop database if exists {} with (force)", self.name),
        );
    }
}

const PROJECT: &str = "name: shop\nprofile: shop\nmodels:\n  shop:\n    +materialized: table\n";

fn write(dir: &Path, path: &str, contents: &str) {
    std::fs::write(dir.join(path), contents).expect("write file");
}

#[test]
fn postgres_builds_seeds_views_tables_incrementals_and_tests() {
    let Some(db) = Database::create("build") else {
        return;
    };
    let dir = project(&[
        ("project.yml", PROJECT),
        ("profiles.yml", &db.profile()),
        (
            "seeds/raw_orders.csv",
            "order_id,line,amount,note,ordered_at\n1,1,10.50,\"a, quoted \"\"note\"\"\",2024-01-01\n1,2,3.25,,2024-01-02\n2,1,7.00,x,2024-01-02\n",
        ),
        (
            "models/stg_orders.sql",
            "{{ config(materialized='view') }}\nselect order_id, line, amount, note, ordered_at from {{ ref('raw_orders') }}\n",
        ),
        (
            "models/order_totals.sql",
            "select order_id, sum(amount) as total from {{ ref('stg_orders') }} group by order_id\n",
        ),
        (
            "models/lines.sql",
            "{{ config(materialized='incremental', unique_key=['order_id', 'line'], on_schema_change='append_new_columns') }}\nselect order_id, line, amount from {{ ref('raw_orders') }}\n",
        ),
        (
            "models/schema.yml",
            "version: 2\nmodels:\n  - name: order_totals\n    columns:\n      - name: order_id\n        data_tests: [unique, not_null]\n  - name: lines\n    data_tests:\n      - unique_combination_of_columns: {combination_of_columns: [order_id, line]}\n",
        ),
    ]);
    let built = strata(dir.path(), &["build"]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    assert!(
        built.stderr.contains("on postgres target `pg`"),
        "{}",
        built.stderr
    );
    assert_eq!(
        db.query("select note from analytics.raw_orders order by order_id, line"),
        "a, quoted \"note\"\nNULL\nx"
    );
    assert_eq!(
        db.query("select note is null from analytics.raw_orders where line = 2"),
        "t"
    );
    assert_eq!(
        db.query("select data_type from information_schema.columns where table_name = 'raw_orders' and column_name = 'ordered_at'"),
        "date"
    );
    assert_eq!(
        db.query("select order_id || ':' || total from analytics.order_totals order by 1"),
        "1:13.75\n2:7"
    );
    assert_eq!(
        db.query(
            "select table_type from information_schema.tables where table_name = 'stg_orders'"
        ),
        "VIEW"
    );
    // The next batch updates one line and adds another; the merge keeps the rest.
    write(
        dir.path(),
        "seeds/raw_orders.csv",
        "order_id,line,amount,note,ordered_at\n1,2,4.00,,2024-01-02\n3,1,1.00,y,2024-01-03\n",
    );
    let again = strata(dir.path(), &["build"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(
        db.query("select order_id || '/' || line || '=' || amount from analytics.lines order by order_id, line"),
        "1/1=10.5\n1/2=4\n2/1=7\n3/1=1"
    );
    // No staging relations are left behind, and strata's own state is out of the models'
    // schema: only its three tables, in its own schema.
    assert_eq!(
        db.query(
            "select count(*) from pg_class where relname like '%strata%' and relname not in ('strata_views', 'strata_files', 'strata_batches')"
        ),
        "0"
    );
    assert_eq!(
        db.query("select string_agg(table_schema || '.' || table_name, ',' order by table_name) from information_schema.tables where table_name like 'strata%'"),
        "analytics_strata.strata_batches,analytics_strata.strata_files,analytics_strata.strata_views"
    );
}

#[test]
fn postgres_keeps_the_previous_table_when_a_model_or_seed_fails() {
    let Some(db) = Database::create("atomic") else {
        return;
    };
    let dir = project(&[
        ("project.yml", &format!("{PROJECT}seeds:\n  shop:\n    prices:\n      +column_types:\n        amount: integer\n")),
        ("profiles.yml", &db.profile()),
        ("seeds/prices.csv", "id,amount\n1,10\n2,20\n"),
        ("models/a.sql", "select id, amount from {{ ref('prices') }}\n"),
    ]);
    assert_eq!(strata(dir.path(), &["build"]).code, 0);
    write(
        dir.path(),
        "models/a.sql",
        "select id, amount / 0 as amount from {{ ref('prices') }}\n",
    );
    let failed = strata(dir.path(), &["run"]);
    assert_eq!(failed.code, 1, "{}", failed.stderr);
    assert!(
        failed.stderr.contains("division by zero"),
        "{}",
        failed.stderr
    );
    assert_eq!(db.query("select sum(amount) from analytics.a"), "30");

    write(dir.path(), "seeds/prices.csv", "id,amount\n1,11\n2,abc\n");
    let seeded = strata(dir.path(), &["seed"]);
    assert_eq!(seeded.code, 1, "{}", seeded.stderr);
    assert!(
        seeded.stderr.contains("seeds/prices.csv:3"),
        "{}",
        seeded.stderr
    );
    assert!(
        seeded.stderr.contains("column `amount`"),
        "{}",
        seeded.stderr
    );
    assert!(seeded.stderr.contains("value `abc`"), "{}", seeded.stderr);
    assert_eq!(db.query("select sum(amount) from analytics.prices"), "30");
    assert_eq!(
        db.query("select count(*) from pg_class where relname like '%strata%' and relname not in ('strata_views', 'strata_files', 'strata_batches')"),
        "0"
    );
}

#[test]
fn postgres_retries_a_provoked_serialization_failure() {
    let Some(db) = Database::create("retry") else {
        return;
    };
    db.query("create sequence public.attempts");
    // The hook fails with SQLSTATE 40001 twice (sequences are not transactional, so the count
    // survives the rollbacks), then succeeds: the retry policy must carry the model through.
    let hook = "do $$ begin if nextval('public.attempts') < 3 then raise exception 'provoked conflict' using errcode = '40001'; end if; end $$";
    let dir = project(&[
        ("project.yml", PROJECT),
        ("profiles.yml", &db.profile()),
        (
            "models/a.sql",
            &format!("{{{{ config(pre_hook=\"{hook}\") }}}}\nselect 1 as id\n"),
        ),
    ]);
    let built = strata(dir.path(), &["run"]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    assert_eq!(db.query("select last_value from public.attempts"), "3");

    // A failure that is not retryable is tried once.
    db.query("create sequence public.other_attempts");
    let broken = "do $$ begin perform nextval('public.other_attempts'); raise exception 'plain failure'; end $$";
    write(
        dir.path(),
        "models/a.sql",
        &format!("{{{{ config(pre_hook=\"{broken}\") }}}}\nselect 1 as id\n"),
    );
    let failed = strata(dir.path(), &["run"]);
    assert_eq!(failed.code, 1, "{}", failed.stderr);
    assert_eq!(
        db.query("select last_value from public.other_attempts"),
        "1"
    );
}

#[test]
fn a_second_run_on_the_same_postgres_target_is_refused_by_the_advisory_lock() {
    let Some(db) = Database::create("lock") else {
        return;
    };
    let dir = project(&[
        ("project.yml", PROJECT),
        ("profiles.yml", &db.profile()),
        ("models/a.sql", "select 1 as id\n"),
    ]);
    let key = strata::adapter::postgres::lock_key(&db.name, "analytics");
    // Another session holds the target's lock while strata starts.
    let mut holder = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            &db.name,
            "-X",
            "-q",
            "-c",
        ])
        .arg(format!(
            "select pg_advisory_lock({key}); select pg_sleep(60);"
        ))
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("psql");
    // Wait until the holder's lock is visible (polling the server, not sleeping blindly).
    let mut held = false;
    for _ in 0..200 {
        let count = db.query(
            "select count(*) from pg_locks l join pg_database d on d.oid = l.database where l.locktype = 'advisory' and l.granted and d.datname = current_database()",
        );
        if count == "1" {
            held = true;
            break;
        }
        let _ = psql(&db.name, "select pg_sleep(0.05)");
    }
    let refused = strata_env(dir.path(), &["run"], &[]);
    // End the holder's session on the server (a sleeping backend does not notice its client
    // is gone), then wait until its lock is released.
    let holders = "from pg_locks l join pg_database d on d.oid = l.database where l.locktype = 'advisory' and d.datname = current_database()";
    db.query(&format!("select pg_terminate_backend(l.pid) {holders}"));
    let _ = holder.kill();
    let _ = holder.wait();
    for _ in 0..200 {
        if db.query(&format!("select count(*) {holders}")) == "0" {
            break;
        }
        let _ = psql(&db.name, "select pg_sleep(0.05)");
    }
    assert!(held, "the holder never took the lock");
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("is locked by another run"),
        "{}",
        refused.stderr
    );
    // Once the other run is gone, strata runs.
    let ok = strata(dir.path(), &["run"]);
    assert_eq!(ok.code, 0, "{}", ok.stderr);
}

/// Every column as comparable text: numbers as decimal(38,6), NULL as `∅`.
fn normalized_rows_sql(table: &str, columns: &[(String, String)], text_type: &str) -> String {
    let parts: Vec<String> = columns
        .iter()
        .map(|(name, data_type)| {
            let numeric = [
                "int", "numeric", "decimal", "double", "real", "float", "hugeint",
            ]
            .iter()
            .any(|t| data_type.to_lowercase().contains(t));
            let value = if numeric {
                format!("cast(cast(\"{name}\" as decimal(38, 6)) as {text_type})")
            } else if data_type.to_lowercase().contains("bool") {
                format!("case when \"{name}\" then 'true' when not \"{name}\" then 'false' end")
            } else {
                format!("cast(\"{name}\" as {text_type})")
            };
            format!("coalesce({value}, '∅')")
        })
        .collect();
    format!(
        "select {} as r from {table} order by 1",
        parts.join(" || '|' || ")
    )
}

#[test]
fn the_example_builds_on_postgres_and_equals_the_duckdb_build() {
    let Some(db) = Database::create("example") else {
        return;
    };
    let dir = crate::example::example();
    let build_both = || {
        let on_duckdb = strata(dir.path(), &["build"]);
        assert_eq!(on_duckdb.code, 0, "{}", on_duckdb.stderr);
        let on_postgres = strata_env(
            dir.path(),
            &["build", "--target", "pg"],
            &[
                ("STRATA_PG_DATABASE", &db.name),
                ("STRATA_PG_SSLMODE", "disable"),
            ],
        );
        assert_eq!(on_postgres.code, 0, "{}", on_postgres.stderr);
        assert!(
            on_postgres.stderr.contains("WARN=0 ERROR=0 SKIP=0"),
            "{}",
            on_postgres.stderr
        );
        on_postgres.stderr
    };
    build_both();
    assert_same_tables(&db, &dir.path().join("target/strata/retail_finance.duckdb"));

    // The next day: both warehouses read only its files (PostgreSQL stages them by COPY), and
    // still agree.
    let landed = std::process::Command::new(crate::example::gen_landing())
        .args(["--out", "landing", "--next-day"])
        .current_dir(dir.path())
        .output()
        .expect("gen_landing runs");
    assert!(landed.status.success(), "{landed:?}");
    let day = build_both();
    assert!(
        day.contains("staged shop.orders into") && day.contains("LOADED 1 files"),
        "{day}"
    );
    assert_same_tables(&db, &dir.path().join("target/strata/retail_finance.duckdb"));
}

/// Every table of the `analytics` schema holds the same rows on PostgreSQL as in the DuckDB
/// file, order-independent, but for columns a run stamps itself.
pub fn assert_same_tables(db: &Database, duck: &std::path::Path) {
    let tables = db.query(
        "select table_name from information_schema.tables where table_schema = 'analytics' order by 1",
    );
    let tables: Vec<&str> = tables.lines().collect();
    assert!(tables.len() >= 20, "{tables:?}");
    // Restated models stamp their change rows with the run's start; bookmarks record when
    // they were written. Those columns differ between any two builds.
    let restated = |table: &str| {
        crate::example::RESTATED
            .iter()
            .any(|r| table.starts_with(r) || table.starts_with(&format!("cdc__analytics__{r}")))
    };
    let run_derived = |table: &str, column: &str| {
        column == "recorded_at"
            || (restated(table) && ["_op", "_commit_ts", "_change_seq"].contains(&column))
            // Bookmarks name the relation by its database and schema, which differ.
            || (table == "strata_files" && ["relation_database", "relation_schema"].contains(&column))
    };
    // (PostgreSQL table, DuckDB table): the models, then strata's state of them — file
    // bookmarks and CDC tombstones. View fingerprints hash each engine's own SQL.
    let mut pairs: Vec<(String, String, String)> = tables
        .iter()
        .map(|t| (format!("analytics.{t}"), format!("main.{t}"), t.to_string()))
        .collect();
    // The models' bookmarks only: PostgreSQL also records the files it staged into `shop`.
    pairs.push((
        "(select * from analytics_strata.strata_files where relation_schema = 'analytics') as b"
            .into(),
        "(select * from main_strata.strata_files where relation_schema = 'main') as b".into(),
        "strata_files".into(),
    ));
    let tombstones = db.query(
        "select table_name from information_schema.tables where table_schema = 'analytics_strata' and table_name like 'cdc\\_\\_%' order by 1",
    );
    assert!(tombstones.lines().count() >= 5, "{tombstones}");
    for table in tombstones.lines().filter(|t| !restated(t)) {
        let model = table.trim_start_matches("cdc__analytics__");
        pairs.push((
            format!("analytics_strata.{table}"),
            format!("main_strata.cdc__main__{model}"),
            table.to_string(),
        ));
    }
    for (pg_table, duck_table, table) in pairs {
        let (schema, name) = if table == "strata_files" {
            ("analytics_strata", "strata_files")
        } else {
            pg_table.split_once('.').expect("qualified")
        };
        let columns: Vec<(String, String)> = db
            .query(&format!(
                "select column_name || ':' || data_type from information_schema.columns where table_schema = '{schema}' and table_name = '{name}' order by ordinal_position"
            ))
            .lines()
            .filter_map(|l| l.split_once(':').map(|(n, t)| (n.to_string(), t.to_string())))
            .filter(|(name, _)| !run_derived(&table, name))
            .collect();
        let pg_rows = db.query(&normalized_rows_sql(&pg_table, &columns, "text"));
        let duck_rows: Vec<String> =
            crate::common::query(duck, &normalized_rows_sql(&duck_table, &columns, "varchar"))
                .into_iter()
                .map(|r| r.join(""))
                .collect();
        let pg_rows: Vec<&str> = if pg_rows.is_empty() {
            Vec::new()
        } else {
            pg_rows.lines().collect()
        };
        assert_eq!(pg_rows, duck_rows, "table `{table}` differs");
    }
}

#[test]
fn replacing_a_postgres_table_keeps_the_views_that_read_it() {
    let Some(db) = Database::create("views") else {
        return;
    };
    let dir = project(&[
        ("project.yml", PROJECT),
        ("profiles.yml", &db.profile()),
        ("seeds/prices.csv", "id,amount\n1,10\n2,20\n"),
    ]);
    assert_eq!(strata(dir.path(), &["seed"]).code, 0);
    // Views outside the project read the seed, one through the other.
    db.query(
        "create view analytics.expensive as select id from analytics.prices where amount > 15",
    );
    db.query(
        "create view analytics.expensive_count as select count(*) as n from analytics.expensive",
    );
    write(
        dir.path(),
        "seeds/prices.csv",
        "id,amount\n1,10\n2,20\n3,30\n",
    );
    let seeded = strata(dir.path(), &["seed"]);
    assert_eq!(seeded.code, 0, "{}", seeded.stderr);
    assert_eq!(db.query("select n from analytics.expensive_count"), "2");
    // A change the views cannot survive drops them, as dbt-postgres does, instead of failing.
    write(dir.path(), "seeds/prices.csv", "id,price\n1,10\n");
    let seeded = strata(dir.path(), &["seed"]);
    assert_eq!(seeded.code, 0, "{}", seeded.stderr);
    assert_eq!(
        db.query("select count(*) from pg_views where viewname like 'expensive%'"),
        "0"
    );
}

#[test]
fn sslmode_require_encrypts_and_verify_full_rejects_an_untrusted_certificate() {
    let Some(db) = Database::create("tls") else {
        return;
    };
    if db.query("show ssl") != "on" {
        eprintln!("skipping: the local server has TLS off");
        return;
    }
    let dir = project(&[
        ("project.yml", PROJECT),
        (
            "profiles.yml",
            &db.profile().replace("sslmode: disable", "sslmode: require"),
        ),
        (
            "models/tls.sql",
            "select (select ssl from pg_stat_ssl where pid = pg_backend_pid()) as encrypted\n",
        ),
    ]);
    let built = strata(dir.path(), &["build"]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    assert_eq!(db.query("select encrypted from analytics.tls"), "t");

    // The local server's certificate is self-signed: verify-full must refuse it.
    write(
        dir.path(),
        "profiles.yml",
        &db.profile()
            .replace("sslmode: disable", "sslmode: verify-full"),
    );
    let refused = strata(dir.path(), &["build"]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains("cannot connect to the postgres target"),
        "{}",
        refused.stderr
    );
}

#[test]
fn ctrl_c_cancels_the_running_statement_on_the_postgres_server() {
    let Some(db) = Database::create("cancel") else {
        return;
    };
    let dir = project(&[
        ("project.yml", PROJECT),
        ("profiles.yml", &db.profile()),
        ("models/slow.sql", "select 1 as id\n"),
    ]);
    assert_eq!(strata(dir.path(), &["run"]).code, 0);
    write(
        dir.path(),
        "models/slow.sql",
        "select 2 as id from (select pg_sleep(120)) as waiting\n",
    );
    let started = std::time::Instant::now();
    let running =
        crate::common::Running::until(dir.path(), &["run"], "START sql table model analytics.slow");
    // Wait until the statement runs on the server, then interrupt strata.
    for _ in 0..200 {
        if db.query("select count(*) from pg_stat_activity where query like '%pg_sleep(120)%' and state = 'active' and pid <> pg_backend_pid()") == "1" {
            break;
        }
        let _ = psql(&db.name, "select pg_sleep(0.05)");
    }
    let (code, seen) = running.interrupt();
    assert_eq!(code, Some(1), "{seen}");
    assert!(
        started.elapsed().as_secs() < 60,
        "the statement was not cancelled: {seen}"
    );
    assert!(seen.contains("cancelled"), "{seen}");
    assert_eq!(db.query("select id from analytics.slow"), "1");
    assert_eq!(
        db.query("select count(*) from pg_stat_activity where query like '%pg_sleep(120)%' and state = 'active' and pid <> pg_backend_pid()"),
        "0"
    );
}

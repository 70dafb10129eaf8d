//! Snapshots against what dbt-core 1.12.6 built from the same project
//! (`tests/fixtures/history`, whose `expect.sh` wrote `expected.json`): built three times, the
//! seeds replaced by `batches/2` and `batches/3` in between — a timestamp snapshot keeping
//! deletion records under renamed columns with a `dbt_valid_to_current`, a `check_cols: all`
//! snapshot invalidating deletions in the legacy `target_schema`, a two-column key, a YAML
//! snapshot with `relation:`, a column added to the source, a model built after a snapshot and
//! tests on one. Every column, every version, every `dbt_scd_id` hashed from the source, as
//! dbt wrote them; times a run takes from the clock compare by their order.

use std::path::Path;

use crate::common::{expected_tables, fixture, query, same_rows, strata_env};

/// Where a warehouse's tables are read: the target's schema, and the one `target_schema`
/// names for `customers_all` (`history`, or a name of the test's own on a shared warehouse).
struct Schemas<'a> {
    target: &'a str,
    history: &'a str,
}

impl Schemas<'_> {
    fn of(&self, table: &str) -> &str {
        if table == "customers_all" {
            self.history
        } else {
            self.target
        }
    }
}

/// Points `customers_all` at a schema of the test's own.
fn move_history(dir: &Path, schema: &str) {
    let path = dir.join("snapshots/customers_all.sql");
    let text = std::fs::read_to_string(&path).expect("snapshot");
    let moved = text.replace(
        "target_schema='history'",
        &format!("target_schema='{schema}'"),
    );
    assert_ne!(moved, text);
    std::fs::write(path, moved).expect("snapshot");
}

/// The column of a table's version times and the column of its ids (`dbt_scd_id` renamed in
/// `customers_ts`).
fn meta_columns(table: &str) -> Option<(&'static str, &'static str)> {
    match table {
        "customers_ts" => Some(("changed_at", "version_id")),
        "current_customers" => None,
        _ => Some(("dbt_updated_at", "dbt_scd_id")),
    }
}

fn run_time(value: &str) -> bool {
    value.len() >= 4
        && value[..4]
            .parse::<u32>()
            .is_ok_and(|y| (2025..2100).contains(&y))
}

/// How ids hashed from the source compare: as dbt wrote them, or — where the warehouse writes
/// a timestamp as other text than DuckDB does, so its hash differs — as distinct MD5s.
#[derive(Clone, Copy, PartialEq)]
enum Hashes {
    Exact,
    Distinct,
}

/// As `expect.sh` writes rows: run times become `run1`, `run2`, … by their order in the table,
/// and an id hashed from a run time becomes `hash of a run time`. Zero fractions of seconds
/// go (Trino writes `10:00:00.000000`). With [`Hashes::Distinct`], the ids of a table must be
/// distinct MD5s, and those hashed from the source are taken as dbt's.
fn normalized(
    table: &str,
    columns: &[String],
    mut rows: Vec<Vec<String>>,
    hashes: Hashes,
    want: &[Vec<String>],
) -> Vec<Vec<String>> {
    for value in rows.iter_mut().flatten() {
        if let Some((whole, fraction)) = value.split_once('.') {
            if whole.len() == 19 && !fraction.is_empty() && fraction.bytes().all(|b| b == b'0') {
                *value = whole.to_string();
            }
        }
    }
    let mut times: Vec<String> = rows
        .iter()
        .flatten()
        .filter(|v| run_time(v))
        .cloned()
        .collect();
    times.sort();
    times.dedup();
    let position = |name: &str| columns.iter().position(|c| c == name).expect("a column");
    if let (Hashes::Distinct, Some((_, id))) = (hashes, meta_columns(table)) {
        let ids: std::collections::BTreeSet<&String> =
            rows.iter().map(|r| &r[position(id)]).collect();
        assert_eq!(ids.len(), rows.len(), "`{table}`: ids repeat: {rows:?}");
        assert!(
            ids.iter()
                .all(|i| i.len() == 32 && i.bytes().all(|b| b.is_ascii_hexdigit())),
            "`{table}`: ids are not MD5s: {ids:?}"
        );
    }
    for row in &mut rows {
        let clocked = meta_columns(table).is_some_and(|(time, _)| run_time(&row[position(time)]));
        for value in row.iter_mut() {
            if run_time(value) {
                let rank = times.iter().position(|t| t == value).expect("a run time");
                *value = format!("run{}", rank + 1);
            }
        }
        let Some((_, id)) = meta_columns(table) else {
            continue;
        };
        if clocked {
            row[position(id)] = "hash of a run time".into();
        } else if hashes == Hashes::Distinct {
            // dbt's id for the version with the same values.
            let same = want.iter().find(|w| {
                w.iter()
                    .zip(row.iter())
                    .enumerate()
                    .all(|(i, (a, b))| i == position(id) || a == b)
            });
            if let Some(w) = same {
                row[position(id)] = w[position(id)].clone();
            }
        }
    }
    rows.sort();
    rows
}

/// Builds the fixture three times with `env`, then compares every table with dbt's through
/// `columns_of` (schema, table → column names in order) and `read` (schema, table, columns →
/// rows as text).
fn build_three_times_and_compare(
    dir: &Path,
    env: &[(&str, &str)],
    schemas: &Schemas,
    hashes: Hashes,
    label: &str,
    columns_of: impl Fn(&str, &str) -> Vec<String>,
    read: impl Fn(&str, &str, &[String]) -> Vec<Vec<String>>,
) -> String {
    let mut last = String::new();
    for run in 1..=3 {
        if run > 1 {
            // Runs a second apart: Redshift's `getdate()` keeps whole seconds.
            std::thread::sleep(std::time::Duration::from_millis(1100));
            for seed in ["customers.csv", "order_lines.csv"] {
                std::fs::copy(
                    dir.join(format!("batches/{run}/{seed}")),
                    dir.join("seeds").join(seed),
                )
                .expect("batch");
            }
        }
        let built = strata_env(dir, &["build"], env);
        assert_eq!(
            built.code, 0,
            "{label}, run {run}: {}\n{}",
            built.stdout, built.stderr
        );
        last = built.stderr;
    }
    for (table, columns, rows) in expected_tables("history") {
        let schema = schemas.of(&table);
        assert_eq!(
            columns_of(schema, &table),
            columns,
            "{label}: the columns of `{table}`"
        );
        let got = normalized(
            &table,
            &columns,
            read(schema, &table, &columns),
            hashes,
            &rows,
        );
        let only = |a: &[Vec<String>], b: &[Vec<String>]| -> Vec<Vec<String>> {
            a.iter().filter(|r| !b.contains(r)).cloned().collect()
        };
        assert!(
            same_rows(&got, &rows),
            "{label}: `{table}` differs from dbt's: only strata's {:?}, only dbt's {:?}",
            only(&got, &rows),
            only(&rows, &got)
        );
    }
    last
}

fn text_columns(columns: &[String], text_type: &str) -> String {
    columns
        .iter()
        .map(|c| format!("coalesce(cast(\"{c}\" as {text_type}), 'NULL')"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[test]
fn snapshots_write_what_dbt_writes_on_duckdb() {
    let dir = fixture("history");
    std::fs::write(
        dir.path().join("profiles.yml"),
        "history:\n  target: dev\n  outputs:\n    dev: {type: duckdb, path: target/h.duckdb}\n",
    )
    .expect("profiles");
    let db = dir.path().join("target/h.duckdb");
    build_three_times_and_compare(
        dir.path(),
        &[],
        &Schemas {
            target: "main",
            history: "history",
        },
        Hashes::Exact,
        "DuckDB",
        |schema, table| {
            query(&db, &format!("select column_name from information_schema.columns where table_schema = '{schema}' and table_name = '{table}' order by ordinal_position"))
                .into_iter()
                .map(|r| r[0].clone())
                .collect()
        },
        |schema, table, columns| {
            query(
                &db,
                &format!(
                    "select {} from {schema}.{table}",
                    text_columns(columns, "varchar")
                ),
            )
        },
    );
    // Nothing staged is left behind.
    let leftovers = query(
        &db,
        r"select table_name from information_schema.tables where contains(table_name, '__strata_')",
    );
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn snapshots_write_what_dbt_writes_on_postgres() {
    let Some(pg) = crate::postgres::Database::create("history") else {
        return;
    };
    let dir = fixture("history");
    std::fs::write(
        dir.path().join("profiles.yml"),
        format!(
            "history:\n  target: pg\n  outputs:\n    pg:\n      type: postgres\n      host: 127.0.0.1\n      user: postgres\n      dbname: {}\n      schema: hist\n      sslmode: disable\n",
            pg.name
        ),
    )
    .expect("profiles");
    build_three_times_and_compare(
        dir.path(),
        &[],
        &Schemas {
            target: "hist",
            history: "history",
        },
        Hashes::Exact,
        "PostgreSQL",
        |schema, table| pg_columns(&pg, schema, table),
        |schema, table, columns| pg_rows(&pg, schema, table, columns),
    );
}

/// A PostgreSQL table's column names, in order.
fn pg_columns(pg: &crate::postgres::Database, schema: &str, table: &str) -> Vec<String> {
    pg.query(&format!("select column_name from information_schema.columns where table_schema = '{schema}' and table_name = '{table}' order by ordinal_position"))
        .lines()
        .map(str::to_string)
        .collect()
}

/// A PostgreSQL table's rows as text.
fn pg_rows(
    pg: &crate::postgres::Database,
    schema: &str,
    table: &str,
    columns: &[String],
) -> Vec<Vec<String>> {
    pg.query(&format!(
        "select concat_ws(chr(31), {}) from {schema}.{table}",
        text_columns(columns, "text")
    ))
    .lines()
    .map(|l| l.split('\u{1f}').map(str::to_string).collect())
    .collect()
}

/// On the Redshift stand-in, over the wire protocol: `getdate()`, `varchar(65535)`, one
/// transaction per snapshot run.
#[test]
fn snapshots_write_what_dbt_writes_on_the_redshift_stand_in() {
    let Some(db) = crate::redshift::stand_in("history") else {
        return;
    };
    let dir = fixture("history");
    std::fs::write(
        dir.path().join("profiles.yml"),
        format!(
            "history:\n  target: rs\n  outputs:\n    rs:\n      type: redshift\n      host: 127.0.0.1\n      port: 5439\n      user: postgres\n      sslmode: disable\n      dbname: {}\n      schema: hist\n      region: us-east-1\n",
            db.name
        ),
    )
    .expect("profiles");
    let env = crate::redshift::environment(&db);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    build_three_times_and_compare(
        dir.path(),
        &env,
        &Schemas {
            target: "hist",
            history: "history",
        },
        Hashes::Exact,
        "Redshift",
        |schema, table| pg_columns(&db, schema, table),
        |schema, table, columns| pg_rows(&db, schema, table, columns),
    );
}

/// On Trino (the stand-in's Iceberg catalog) and on Athena (its Glue catalog): an Iceberg
/// snapshot's run commits in one `MERGE`; a Hive one is rebuilt aside and swapped in.
#[test]
fn snapshots_write_what_dbt_writes_on_trino_and_athena() {
    if !crate::lake::stand_in("history_trino") || !crate::lake::athena_front("history_athena") {
        return;
    }
    let schema = format!("history_{}", std::process::id());
    let profiles = format!(
        "history:\n  target: trino\n  outputs:\n    trino:\n      type: trino\n      host: 127.0.0.1\n      port: 8090\n      user: strata\n      database: iceberg\n      schema: {schema}\n    athena:\n      type: athena\n      region_name: us-east-1\n      schema: {schema}_athena\n      work_group: primary\n      s3_staging_dir: s3://strata-athena/staging/{schema}/\n"
    );
    let env = crate::lake::aws_environment();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    for (target, catalog, schema) in [
        ("trino", "iceberg", schema.clone()),
        ("athena", "awsdatacatalog", format!("{schema}_athena")),
    ] {
        let dir = fixture("history");
        std::fs::write(dir.path().join("profiles.yml"), &profiles).expect("profiles");
        if target == "athena" {
            // Two snapshots are Hive tables (rebuilt aside and swapped in), two Iceberg,
            // strata's default on Athena (their changes merged in). The seeds are Hive tables
            // too: Hive keeps milliseconds, and a Hive table built from an Iceberg table's
            // microsecond timestamps is refused, as Athena refuses it.
            let project = dir.path().join("dbt_project.yml");
            let text = std::fs::read_to_string(&project).expect("project");
            std::fs::write(
                &project,
                format!("{text}snapshots:\n  history:\n    customers_all: {{+table_type: hive}}\n    lines: {{+table_type: hive}}\nseeds:\n  history:\n    +table_type: hive\n"),
            )
            .expect("project");
        }
        let history = format!("{schema}_history");
        move_history(dir.path(), &history);
        let mut env = env.clone();
        env.push(("STRATA_TARGET", target));
        let stderr = build_three_times_and_compare(
            dir.path(),
            &env,
            &Schemas {
                target: &schema,
                history: &history,
            },
            Hashes::Distinct,
            target,
            |schema, table| {
                crate::lake::trino(&format!("select column_name from {catalog}.information_schema.columns where table_schema = '{schema}' and table_name = '{table}' order by ordinal_position"))
                    .unwrap_or_else(|e| panic!("{e}"))
                    .iter()
                    .map(|r| r[0].as_str().unwrap_or_default().to_string())
                    .collect()
            },
            |schema, table, columns| {
                let sql = format!(
                    "select {} from {catalog}.\"{schema}\".{table}",
                    text_columns(columns, "varchar")
                );
                crate::lake::trino(&sql)
                    .unwrap_or_else(|e| panic!("{sql}: {e}"))
                    .iter()
                    .map(|r| {
                        r.iter()
                            .map(|v| v.as_str().unwrap_or("NULL").to_string())
                            .collect()
                    })
                    .collect()
            },
        );
        let rebuilt = stderr.matches("[SNAPSHOT rebuilt").count();
        assert_eq!(rebuilt, if target == "athena" { 2 } else { 0 }, "{stderr}");
        for s in [schema.as_str(), &history, &format!("{schema}_strata")] {
            crate::lake::drop_schema(catalog, s);
        }
    }
}

const SNAP_PROJECT: &str = "name: shop\nprofile: shop\n";
const SNAP: &str = "{% snapshot snap %}\n{{ config(unique_key='id', strategy='timestamp', updated_at='updated_at', hard_deletes='invalidate') }}\nselect * from {{ ref('src') }}\n{% endsnapshot %}\n";

/// A snapshot run that fails — its insert refused by the warehouse after its update ran, or
/// two rows of one key in its source — leaves the snapshot as it was, and the next run that
/// can succeed records the changes.
#[test]
fn a_failed_snapshot_run_leaves_the_snapshot_as_it_was() {
    let Some(pg) = crate::postgres::Database::create("snapshot_atomic") else {
        return;
    };
    let dir = crate::common::project(&[
        ("project.yml", SNAP_PROJECT),
        ("profiles.yml", &pg.profile()),
        (
            "seeds/src.csv",
            "id,v,updated_at\n1,a,2024-01-01 00:00:00\n",
        ),
        ("snapshots/snap.sql", SNAP),
    ]);
    let build = || strata_env(dir.path(), &["build"], &[]);
    let first = build();
    assert_eq!(first.code, 0, "{}", first.stderr);
    let history = || {
        pg.query("select id, v, coalesce(cast(dbt_valid_to as text), '-') from analytics.snap order by id, dbt_valid_from")
    };
    let before = history();
    assert_eq!(before, "1|a|-");

    // Row 1 changes (an update of its version, then an insert); row 2 is new. The warehouse
    // refuses the insert of row 2, after the update has run.
    std::fs::write(
        dir.path().join("seeds/src.csv"),
        "id,v,updated_at\n1,b,2024-02-01 00:00:00\n2,c,2024-02-01 00:00:00\n",
    )
    .expect("seed");
    pg.query("create function analytics.refuse() returns trigger language plpgsql as $$ begin if new.id = 2 then raise exception 'row 2 refused'; end if; return new; end $$");
    pg.query("create trigger refuse before insert on analytics.snap for each row execute function analytics.refuse()");
    let failed = build();
    assert_eq!(failed.code, 1, "{}", failed.stderr);
    assert!(failed.stderr.contains("row 2 refused"), "{}", failed.stderr);
    assert_eq!(history(), before, "the update of row 1 was rolled back");

    // Two rows of one key: stopped before anything is written.
    pg.query("drop trigger refuse on analytics.snap");
    std::fs::write(
        dir.path().join("seeds/src.csv"),
        "id,v,updated_at\n1,b,2024-02-01 00:00:00\n1,x,2024-02-02 00:00:00\n",
    )
    .expect("seed");
    let duplicated = build();
    assert_eq!(duplicated.code, 1, "{}", duplicated.stderr);
    assert!(
        duplicated.stderr.contains("snap") && duplicated.stderr.contains("id"),
        "{}",
        duplicated.stderr
    );
    assert_eq!(history(), before);

    std::fs::write(
        dir.path().join("seeds/src.csv"),
        "id,v,updated_at\n1,b,2024-02-01 00:00:00\n2,c,2024-02-01 00:00:00\n",
    )
    .expect("seed");
    let fixed = build();
    assert_eq!(fixed.code, 0, "{}", fixed.stderr);
    assert_eq!(history(), "1|a|2024-02-01 00:00:00\n1|b|-\n2|c|-",);
    // Nothing built aside is left.
    let leftovers = pg.query(
        "select count(*) from information_schema.tables where strpos(table_name, '__strata_') > 0",
    );
    assert_eq!(leftovers, "0");
}

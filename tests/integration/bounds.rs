//! A warehouse's limits bound what strata sends it: with a 300-byte statement limit, seed rows,
//! file bookmarks and IN-lists go out as several statements; with at most 3 partitions per
//! write, an insert_overwrite of 10 partitions is 4 writes. The tables come out the same as on
//! a warehouse without limits.

use std::path::Path;

use crate::common::{project, query};
use crate::library::{build, database};
use strata::adapter::{Adjusted, SeedLoad};

fn seed() -> String {
    let mut csv = String::from("id,name,city\n");
    for i in 1..=40 {
        csv.push_str(&format!("{i},person number {i},\"City, {}\"\n", i % 7));
    }
    csv
}

fn files() -> Vec<(String, String)> {
    let mut files = vec![
        ("project.yml".to_string(), "name: shop\n".to_string()),
        ("seeds/people.csv".to_string(), seed()),
        (
            "models/stg_people.sql".to_string(),
            "select id, upper(name) as name from {{ ref('people') }}\n".to_string(),
        ),
        (
            "models/ov.sql".to_string(),
            "{{ config(materialized='incremental', incremental_strategy='insert_overwrite', partition_by='d') }}\nselect a.range as d, b.range as i, a.range * 100 + b.range + {{ var('round') }} as v\nfrom range(10) a, range(3) b\n".to_string(),
        ),
        (
            "models/pt.sql".to_string(),
            "{{ config(materialized='table', partitioned_by=['d']) }}\nselect a.range as d, b.range as i, case when a.range = 9 then null else a.range end as p\nfrom range(10) a, range(4) b\nunion all select null, 0, null\n".to_string(),
        ),
        (
            "models/sources.yml".to_string(),
            "version: 2\nsources:\n  - name: shop\n    tables:\n      - name: orders\n        external: {location: 'landing/orders/*.csv', format: csv}\n".to_string(),
        ),
        (
            "models/loaded.sql".to_string(),
            "{{ config(materialized='incremental', bookmark='files') }}\nselect id, amount, _source_file from {{ source('shop', 'orders') }}\n".to_string(),
        ),
    ];
    for i in 0..25 {
        files.push((
            format!("landing/orders/2024070{}-{:09}.csv", i % 9 + 1, i),
            format!("id,amount\n{i},{}\n", i * 3),
        ));
    }
    files
}

fn warehouse(limited: bool) -> Adjusted {
    let mut flavour = Adjusted::new(strata::adapter::embedded_flavour());
    flavour.capabilities.seeds = SeedLoad::InsertRows;
    // Tables read `partitioned_by`, as on Athena.
    flavour.storage = Some(std::sync::Arc::new(|_relation, config| {
        let columns = strata::project::config::as_string_list(config.get("partitioned_by"));
        Ok(strata::plan::Storage::new(
            strata::adapter::testing::Partitioned(columns),
        ))
    }));
    if limited {
        flavour.limits.statement_bytes = Some(300);
        flavour.limits.partitions_per_write = Some(3);
    }
    flavour
}

fn rows(db: &Path, sql: &str) -> Vec<Vec<String>> {
    query(db, sql)
}

fn tables(db: &Path) -> Vec<Vec<Vec<String>>> {
    [
        "select * from main.people order by all",
        "select * from main.stg_people order by all",
        "select * from main.ov order by all",
        "select * from main.pt order by all",
        "select * from main.loaded order by all",
        "select relation_name, source_name, table_name, file_path, file_size from main_strata.strata_files order by all",
        "select relation_name from main_strata.strata_views order by all",
    ]
    .iter()
    .map(|sql| rows(db, sql))
    .collect()
}

fn inserts_into(log: &[String], table: &str) -> usize {
    let head = format!("insert into \"shop\".\"main\".\"{table}\"");
    log.iter().filter(|s| s.starts_with(&head)).count()
}

#[test]
fn limits_split_statements_and_batch_partitions_into_the_same_tables() {
    let owned = files();
    let borrowed: Vec<(&str, &str)> = owned
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    let limited = project(&borrowed);
    let free = project(&borrowed);
    let round = |r: i64| vec![("round", serde_json::json!(r))];

    let first = build(limited.path(), warehouse(true), |w| w, &round(1), false);
    assert!(first.ok(), "{:?} {:?}", first.stopped, first.results);
    let unlimited = build(free.path(), warehouse(false), |w| w, &round(1), false);
    assert!(unlimited.ok(), "{:?}", unlimited.stopped);
    // The seed's 40 rows went out in several inserts on the limited warehouse, in one on the
    // other; so did the 25 bookmarked files.
    assert!(inserts_into(&first.log, "people") > 3, "{:#?}", first.log);
    assert_eq!(inserts_into(&unlimited.log, "people"), 1);
    let bookmarks = |log: &[String]| {
        log.iter()
            .filter(|s| s.starts_with("insert into \"shop\".\"main_strata\".\"strata_files\""))
            .count()
    };
    assert!(bookmarks(&first.log) > 3, "{:#?}", first.log);
    assert_eq!(bookmarks(&unlimited.log), 1);
    // The partitioned table's 11 partitions (one of them NULL) in writes of at most 3: one
    // table created from the first 3, three inserts of the rest.
    assert_eq!(inserts_into(&first.log, "pt"), 3, "{:#?}", first.log);
    assert_eq!(inserts_into(&unlimited.log, "pt"), 0);

    // The next round: 5 new files, and new rows for all 10 partitions of `ov`.
    for dir in [limited.path(), free.path()] {
        for i in 25..30 {
            std::fs::write(
                dir.join(format!("landing/orders/20240709-{i:09}.csv")),
                format!("id,amount\n{i},{}\n", i * 3),
            )
            .unwrap();
        }
    }
    let second = build(limited.path(), warehouse(true), |w| w, &round(2), false);
    assert!(second.ok(), "{:?} {:?}", second.stopped, second.results);
    let unlimited = build(free.path(), warehouse(false), |w| w, &round(2), false);
    assert!(unlimited.ok(), "{:?}", unlimited.stopped);
    assert_eq!(inserts_into(&second.log, "ov"), 4, "{:#?}", second.log);
    assert_eq!(inserts_into(&unlimited.log, "ov"), 1);

    // Every statement strata could split fits the limit; only the models' own SQL may not.
    for log in [&first.log, &second.log] {
        for statement in log.iter() {
            let splittable = (statement.starts_with("insert into")
                && statement.contains(" values "))
                || statement.starts_with("delete from");
            if splittable {
                assert!(
                    statement.len() <= 300,
                    "{} bytes: {statement}",
                    statement.len()
                );
            }
        }
    }
    let (a, b) = (
        tables(&database(limited.path())),
        tables(&database(free.path())),
    );
    assert_eq!(a, b);
    // The tables hold what they should, not merely the same nothing.
    assert_eq!(a[0].len(), 40);
    assert_eq!(a[2].len(), 30);
    assert_eq!(
        rows(
            &database(limited.path()),
            "select count(*) from main.ov where v <> d * 100 + i + 2"
        ),
        [["0"]],
        "every partition holds the second round's rows"
    );
    assert_eq!(a[3].len(), 41);
    assert_eq!(a[4].len(), 30);
    assert_eq!(a[5].len(), 30);
}

//! `strata ls`: every selector form against the fixture, pinned by snapshots.

use crate::common::{fixture, strata};

#[test]
fn every_selector_form() {
    let dir = fixture("jaffle");
    let cases: &[&[&str]] = &[
        &["ls"],
        &["ls", "--resource-type", "model"],
        &["ls", "-s", "orders"],
        &["ls", "-s", "marts"],
        &["ls", "-s", "jaffle.staging.stg_orders"],
        &["ls", "-s", "+orders", "--resource-type", "model", "seed"],
        &["ls", "-s", "stg_orders+", "--resource-type", "model"],
        &["ls", "-s", "1+orders", "--resource-type", "model"],
        &[
            "ls",
            "-s",
            "raw_orders+1",
            "--resource-type",
            "model",
            "snapshot",
        ],
        &["ls", "-s", "@stg_customers", "--resource-type", "model"],
        &["ls", "-s", "tag:finance"],
        &["ls", "-s", "tag:staging,config.materialized:view"],
        &[
            "ls",
            "-s",
            "tag:finance",
            "tag:staging",
            "--resource-type",
            "model",
        ],
        &[
            "ls",
            "-s",
            "path:models/staging",
            "--exclude",
            "stg_customers",
        ],
        &["ls", "-s", "models/marts/orders.sql"],
        &["ls", "-s", "config.materialized:incremental"],
        &[
            "ls",
            "-s",
            "source:shop+",
            "--resource-type",
            "model",
            "source",
        ],
        &["ls", "-s", "resource_type:seed"],
        &["ls", "-s", "test_type:singular"],
        &["ls", "-s", "test_type:generic,stg_customers"],
        &["ls", "-s", "test_name:relationships"],
        &["ls", "-s", "stg_*", "--output", "name"],
        &["ls", "-s", "orders", "--output", "path"],
        &["ls", "--selector", "finance_marts"],
        &[
            "ls",
            "--selector",
            "everything_but_staging",
            "--resource-type",
            "model",
        ],
        &[
            "list",
            "-s",
            "tag:marts",
            "--output",
            "json",
            "--resource-type",
            "model",
        ],
    ];
    let mut transcript = String::new();
    for args in cases {
        let run = strata(dir.path(), args);
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
        transcript.push_str(&format!("$ strata {}\n{}\n", args.join(" "), run.stdout));
    }
    insta::assert_snapshot!(transcript);
}

#[test]
fn tests_follow_their_models() {
    let dir = fixture("jaffle");
    let run = strata(
        dir.path(),
        &["ls", "-s", "stg_customers", "--resource-type", "test"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.ends_with("not_null_stg_customers_customer_id")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("relationships_stg_orders_customer_id")),
        "{lines:?}"
    );
}

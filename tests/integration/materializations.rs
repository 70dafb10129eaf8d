//! Every materialization and incremental strategy, on embedded DuckDB and on the real
//! PostgreSQL server, asserting table contents after each run: composite-key merge,
//! delete+insert, append, insert_overwrite by partition, each `on_schema_change` mode, full
//! refresh, ephemeral chains, custom schemas and aliases, hooks, and a failing post-hook.
//!
//! Each scenario is written once against a [`Warehouse`]; `{s}` in SQL and project files stands
//! for the target schema (`main` on DuckDB, `analytics` on PostgreSQL).

use crate::common::{project, query, strata};
use crate::on_every_warehouse;
use crate::warehouse::{rows, Kind, Warehouse};

const PROJECT: &str = "name: shop\nmodels:\n  shop:\n    +materialized: table\n";

on_every_warehouse!(
    merge_on_a_composite_key_updates_and_inserts,
    delete_insert_and_append_strategies,
    insert_overwrite_replaces_only_the_touched_partitions,
    on_schema_change_modes,
    full_refresh_rebuilds_an_incremental_model,
    ephemeral_chains_inline_and_build_nothing_themselves,
    custom_schemas_aliases_and_generate_schema_name_overrides,
    hooks_run_around_models_and_the_whole_run,
    a_failing_post_hook_leaves_the_previous_table,
    persist_docs_stores_descriptions_as_comments,
    cdc_batches_apply_the_last_change_per_key_like_a_full_refresh,
    an_unchanged_view_is_left_alone_and_a_changed_one_recreated,
    incremental_predicates_keep_the_rows_outside_them,
);

/// The message `strata` printed for a model: `OK <name> [<message> in …`.
fn outcome(stderr: &str, model: &str) -> String {
    let prefix = format!("OK {model} [");
    stderr
        .lines()
        .find_map(|line| {
            let at = line.find(&prefix)?;
            let rest = &line[at + prefix.len()..];
            Some(rest[..rest.find(" in ")?].to_string())
        })
        .unwrap_or_else(|| panic!("no OK line for {model}:\n{stderr}"))
}

fn an_unchanged_view_is_left_alone_and_a_changed_one_recreated(kind: Kind) {
    let Some(w) = Warehouse::new(
        kind,
        "viewstate",
        "name: shop\n",
        &[
            (
                "models/base.sql",
                "{{ config(materialized='table') }}\nselect 1 as id",
            ),
            ("models/v.sql", "select * from {{ ref('base') }}"),
            (
                "models/hooked.sql",
                "{{ config(post_hook='select 1') }}\nselect id from {{ ref('base') }}",
            ),
        ],
    ) else {
        return;
    };
    let first = w.run(&["run"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert_eq!(outcome(&first.stderr, "v"), "CREATE VIEW");
    let again = w.run(&["run"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(outcome(&again.stderr, "v"), "VIEW UNCHANGED");
    assert_eq!(
        outcome(&again.stderr, "hooked"),
        "CREATE VIEW",
        "a view with hooks runs them every time"
    );

    // The table the view reads gains a column. PostgreSQL froze `select *` at creation, so
    // the view is re-created; DuckDB's views bind anew on each read and need nothing.
    w.write(
        "models/base.sql",
        "{{ config(materialized='table') }}\nselect 1 as id, 2 as extra",
    );
    let widened = w.run(&["run"]);
    assert_eq!(widened.code, 0, "{}", widened.stderr);
    let expected = match kind {
        Kind::Postgres => "CREATE VIEW",
        Kind::Duckdb => "VIEW UNCHANGED",
    };
    assert_eq!(outcome(&widened.stderr, "v"), expected);
    assert_eq!(w.query("select id, extra from {s}.v"), rows(&[&["1", "2"]]));

    w.write(
        "models/v.sql",
        "select id from {{ ref('base') }} where id > 0",
    );
    let edited = w.run(&["run", "--select", "v"]);
    assert_eq!(
        outcome(&edited.stderr, "v"),
        "CREATE VIEW",
        "the SQL changed"
    );
    assert_eq!(w.columns("v"), vec!["id"]);

    w.execute("drop view {s}.v");
    let dropped = w.run(&["run", "--select", "v"]);
    assert_eq!(
        outcome(&dropped.stderr, "v"),
        "CREATE VIEW",
        "the view was gone"
    );
    assert_eq!(w.query("select id from {s}.v"), rows(&[&["1"]]));

    let refreshed = w.run(&["run", "--select", "v", "--full-refresh"]);
    assert_eq!(outcome(&refreshed.stderr, "v"), "CREATE VIEW");
    let last = w.run(&["run", "--select", "v"]);
    assert_eq!(outcome(&last.stderr, "v"), "VIEW UNCHANGED");
}

fn merge_on_a_composite_key_updates_and_inserts(kind: Kind) {
    let Some(w) = Warehouse::new(
        kind,
        "merge",
        PROJECT,
        &[
            ("seeds/lines.csv", "order_id,line,qty\n1,1,5\n1,2,6\n2,1,7\n"),
            (
                "models/order_lines.sql",
                "{{ config(materialized='incremental', unique_key=['order_id', 'line']) }}\nselect * from {{ ref('lines') }}\n",
            ),
        ],
    ) else {
        return;
    };
    w.build_ok(&[]);
    w.write("seeds/lines.csv", "order_id,line,qty\n1,2,60\n2,2,8\n");
    w.build_ok(&[]);
    assert_eq!(
        w.query("select order_id, line, qty from {s}.order_lines order by 1, 2"),
        rows(&[
            &["1", "1", "5"],
            &["1", "2", "60"],
            &["2", "1", "7"],
            &["2", "2", "8"]
        ])
    );
}

fn delete_insert_and_append_strategies(kind: Kind) {
    let Some(w) = Warehouse::new(
        kind,
        "delins",
        PROJECT,
        &[
            ("seeds/events.csv", "id,v\n1,a\n2,b\n"),
            (
                "models/by_key.sql",
                "{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key='id') }}\nselect * from {{ ref('events') }}\n",
            ),
            (
                "models/log.sql",
                "{{ config(materialized='incremental', incremental_strategy='append') }}\nselect * from {{ ref('events') }}\n",
            ),
        ],
    ) else {
        return;
    };
    w.build_ok(&[]);
    w.write("seeds/events.csv", "id,v\n2,B\n3,c\n");
    w.build_ok(&[]);
    assert_eq!(
        w.query("select id, v from {s}.by_key order by id"),
        rows(&[&["1", "a"], &["2", "B"], &["3", "c"]])
    );
    assert_eq!(
        w.query("select id, v from {s}.log order by id, v"),
        rows(&[&["1", "a"], &["2", "B"], &["2", "b"], &["3", "c"]])
    );
}

/// dbt's `incremental_predicates`: a delete+insert keyed on `store` replaces only the rows of
/// recent days; without them it would delete the store's older days too.
fn incremental_predicates_keep_the_rows_outside_them(kind: Kind) {
    let model = "{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key='store', incremental_predicates=['DBT_INTERNAL_DEST.day >= 5']) }}\nselect * from {{ ref('sales') }}\n{% if is_incremental() %}where day >= 5{% endif %}\n";
    let Some(w) = Warehouse::new(
        kind,
        "predicates",
        PROJECT,
        &[
            ("seeds/sales.csv", "store,day,total\n1,1,10\n2,1,20\n"),
            ("models/daily.sql", model),
        ],
    ) else {
        return;
    };
    w.build_ok(&[]);
    w.write(
        "seeds/sales.csv",
        "store,day,total\n1,1,10\n2,1,20\n1,5,50\n",
    );
    w.build_ok(&[]);
    w.write(
        "seeds/sales.csv",
        "store,day,total\n1,1,10\n2,1,20\n1,5,55\n",
    );
    w.build_ok(&[]);
    assert_eq!(
        w.query("select store, day, total from {s}.daily order by store, day"),
        rows(&[&["1", "1", "10"], &["1", "5", "55"], &["2", "1", "20"]])
    );
    // The older spelling, on a strategy that cannot use them, is refused before any write.
    w.write(
        "models/daily.sql",
        &model
            .replace("delete+insert", "append")
            .replace("incremental_predicates", "predicates"),
    );
    let refused = w.run(&["build"]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains("`incremental_predicates` limit which rows"),
        "{}",
        refused.stderr
    );
}

fn insert_overwrite_replaces_only_the_touched_partitions(kind: Kind) {
    let Some(w) = Warehouse::new(
        kind,
        "overwrite",
        PROJECT,
        &[
            (
                "seeds/sales.csv",
                "day,store,amount\n2024-01-01,a,1\n2024-01-01,b,2\n2024-01-02,a,3\n",
            ),
            (
                "models/daily.sql",
                "{{ config(materialized='incremental', incremental_strategy='insert_overwrite', partition_by='day') }}\nselect * from {{ ref('sales') }}\n",
            ),
        ],
    ) else {
        return;
    };
    w.build_ok(&[]);
    // The new batch restates 2024-01-02 (one other row) and adds 2024-01-03; 2024-01-01 is
    // untouched although the batch does not carry it.
    w.write(
        "seeds/sales.csv",
        "day,store,amount\n2024-01-02,c,30\n2024-01-03,a,4\n",
    );
    w.build_ok(&[]);
    assert_eq!(
        w.query("select cast(day as varchar), store, amount from {s}.daily order by 1, 2"),
        rows(&[
            &["2024-01-01", "a", "1"],
            &["2024-01-01", "b", "2"],
            &["2024-01-02", "c", "30"],
            &["2024-01-03", "a", "4"]
        ])
    );
}

fn schema_change_warehouse(kind: Kind, mode: &str) -> Option<Warehouse> {
    let key = format!("osc_{}", &mode[..4]);
    Warehouse::new(
        kind,
        &key,
        PROJECT,
        &[
            ("seeds/src.csv", "id,a,b\n1,x,y\n"),
            (
                "models/inc.sql",
                &format!(
                    "{{{{ config(materialized='incremental', unique_key='id', on_schema_change='{mode}') }}}}\nselect * from {{{{ ref('src') }}}}\n"
                ),
            ),
        ],
    )
}

fn on_schema_change_modes(kind: Kind) {
    // The second batch drops `b` and adds `c`.
    let next = "id,a,c\n2,x2,z2\n";

    let Some(ignore) = schema_change_warehouse(kind, "ignore") else {
        return;
    };
    ignore.build_ok(&[]);
    ignore.write("seeds/src.csv", next);
    // The seed itself is rebuilt with the new columns; the incremental keeps its own.
    ignore.build_ok(&[]);
    assert_eq!(ignore.columns("inc"), ["id", "a", "b"]);
    assert_eq!(
        ignore.query("select id, a, b from {s}.inc order by id"),
        rows(&[&["1", "x", "y"], &["2", "x2", "NULL"]])
    );

    let Some(fail) = schema_change_warehouse(kind, "fail") else {
        return;
    };
    fail.build_ok(&[]);
    fail.write("seeds/src.csv", next);
    let run = strata(fail.path(), &["build"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("+c, -b"), "{}", run.stderr);
    assert_eq!(fail.query("select count(*) from {s}.inc"), rows(&[&["1"]]));

    let Some(append) = schema_change_warehouse(kind, "append_new_columns") else {
        return;
    };
    append.build_ok(&[]);
    append.write("seeds/src.csv", next);
    append.build_ok(&[]);
    assert_eq!(append.columns("inc"), ["id", "a", "b", "c"]);
    assert_eq!(
        append.query("select id, b, c from {s}.inc order by id"),
        rows(&[&["1", "y", "NULL"], &["2", "NULL", "z2"]])
    );

    let Some(sync) = schema_change_warehouse(kind, "sync_all_columns") else {
        return;
    };
    sync.build_ok(&[]);
    sync.write("seeds/src.csv", next);
    sync.build_ok(&[]);
    assert_eq!(sync.columns("inc"), ["id", "a", "c"]);
    assert_eq!(
        sync.query("select id, a, c from {s}.inc order by id"),
        rows(&[&["1", "x", "NULL"], &["2", "x2", "z2"]])
    );
}

fn full_refresh_rebuilds_an_incremental_model(kind: Kind) {
    let Some(w) = Warehouse::new(
        kind,
        "refresh",
        PROJECT,
        &[
            ("seeds/src.csv", "id\n1\n2\n"),
            (
                "models/log.sql",
                "{{ config(materialized='incremental') }}\nselect id from {{ ref('src') }}\n",
            ),
        ],
    ) else {
        return;
    };
    w.build_ok(&[]);
    w.build_ok(&[]);
    assert_eq!(w.query("select count(*) from {s}.log"), rows(&[&["4"]]));
    w.build_ok(&["--full-refresh"]);
    assert_eq!(w.query("select count(*) from {s}.log"), rows(&[&["2"]]));
}

fn ephemeral_chains_inline_and_build_nothing_themselves(kind: Kind) {
    let Some(w) = Warehouse::new(
        kind,
        "ephemeral",
        PROJECT,
        &[
            ("seeds/src.csv", "id\n1\n2\n3\n"),
            (
                "models/eph_a.sql",
                "{{ config(materialized='ephemeral') }}\nselect id from {{ ref('src') }} where id > 1\n",
            ),
            (
                "models/eph_b.sql",
                "{{ config(materialized='ephemeral') }}\nselect id * 10 as id from {{ ref('eph_a') }}\n",
            ),
            ("models/final.sql", "select id from {{ ref('eph_b') }}\n"),
        ],
    ) else {
        return;
    };
    w.build_ok(&[]);
    assert_eq!(
        w.query("select id from {s}.final order by id"),
        rows(&[&["20"], &["30"]])
    );
    assert_eq!(
        w.query("select count(*) from information_schema.tables where table_name like 'eph_%'"),
        rows(&[&["0"]])
    );
}

fn custom_schemas_aliases_and_generate_schema_name_overrides(kind: Kind) {
    let Some(w) = Warehouse::new(
        kind,
        "schemas",
        "name: shop\nmodels:\n  shop:\n    +materialized: table\n    gold:\n      +schema: gold\n",
        &[
            ("models/gold/dim_a.sql", "select 1 as id\n"),
            (
                "models/b.sql",
                "{{ config(alias='renamed_b', schema='extra') }}\nselect 2 as id\n",
            ),
        ],
    ) else {
        return;
    };
    w.build_ok(&[]);
    // dbt's default: <target schema>_<custom schema>
    assert_eq!(w.query("select id from {s}_gold.dim_a"), rows(&[&["1"]]));
    assert_eq!(
        w.query("select id from {s}_extra.renamed_b"),
        rows(&[&["2"]])
    );
    // A project macro overriding generate_schema_name takes the custom schema as is.
    w.write(
        "macros/schemas.sql",
        "{% macro generate_schema_name(custom_schema_name, node) %}{{ custom_schema_name or target.schema }}{% endmacro %}\n",
    );
    w.build_ok(&[]);
    assert_eq!(w.query("select id from gold.dim_a"), rows(&[&["1"]]));
}

fn hooks_run_around_models_and_the_whole_run(kind: Kind) {
    let Some(w) = Warehouse::new(
        kind,
        "hooks",
        "name: shop\nmodels:\n  shop:\n    +materialized: table\non-run-start:\n  - \"create schema if not exists {s}\"\n  - \"create table if not exists {s}.audit (what varchar(40))\"\n  - \"insert into {s}.audit values ('start')\"\non-run-end: \"insert into {s}.audit values ('end ' || '{{ target.name }}')\"\n",
        &[(
            "models/a.sql",
            "{{ config(pre_hook=\"insert into {s}.audit values ('before ' || '{{ this.identifier }}')\", post_hook=[\"insert into {s}.audit select 'after ' || count(*) from {{ this }}\"]) }}\nselect 1 as id union all select 2\n",
        )],
    ) else {
        return;
    };
    w.build_ok(&[]);
    let target = if kind == Kind::Duckdb { "dev" } else { "pg" };
    assert_eq!(
        w.query("select what from {s}.audit"),
        rows(&[
            &["start"],
            &["before a"],
            &["after 2"],
            &[&format!("end {target}")]
        ])
    );
}

fn a_failing_post_hook_leaves_the_previous_table(kind: Kind) {
    let Some(w) = Warehouse::new(
        kind,
        "posthook",
        PROJECT,
        &[("models/a.sql", "select 1 as id\n")],
    ) else {
        return;
    };
    w.build_ok(&[]);
    w.write(
        "models/a.sql",
        "{{ config(post_hook='insert into {s}.no_such_table values (1)') }}\nselect 2 as id\n",
    );
    let run = strata(w.path(), &["build"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(w.query("select id from {s}.a"), rows(&[&["1"]]));
    assert_eq!(
        w.query("select count(*) from information_schema.tables where table_name like '%strata%' and table_name not in ('strata_views', 'strata_files', 'strata_batches')"),
        rows(&[&["0"]])
    );
}

fn persist_docs_stores_descriptions_as_comments(kind: Kind) {
    let Some(w) = Warehouse::new(
        kind,
        "docs",
        "name: shop\nmodels:\n  shop:\n    +materialized: table\n    +persist_docs: {relation: true, columns: true}\n",
        &[
            ("models/a.sql", "select 1 as id, 'x' as name\n"),
            (
                "models/schema.yml",
                "version: 2\nmodels:\n  - name: a\n    description: \"The A table, it's documented\"\n    columns:\n      - name: id\n        description: The key\n      - name: not_produced\n        description: Documented but not in the SQL\n",
            ),
        ],
    ) else {
        return;
    };
    w.build_ok(&[]);
    let (table_comment, column_comment) = match kind {
        Kind::Duckdb => (
            "select comment from duckdb_tables() where table_name = 'a'",
            "select comment from duckdb_columns() where table_name = 'a' and column_name = 'id'",
        ),
        Kind::Postgres => (
            "select obj_description('{s}.a'::regclass)",
            "select col_description('{s}.a'::regclass, 1)",
        ),
    };
    assert_eq!(
        w.query(table_comment),
        rows(&[&["The A table, it's documented"]])
    );
    assert_eq!(w.query(column_comment), rows(&[&["The key"]]));
}

/// DuckDB-only: `+database` builds into another attached database file.
#[test]
fn duckdb_database_config_builds_into_an_attached_database() {
    let dir = project(&[
        (
            "project.yml",
            "name: shop\nprofile: shop\nmodels:\n  shop:\n    +materialized: table\n    archive:\n      +database: archive\n",
        ),
        (
            "profiles.yml",
            "shop:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: target/shop.duckdb\n      settings:\n        threads: 2\n      attach:\n        - path: target/archive.duckdb\n          alias: archive\n",
        ),
        ("models/a.sql", "select 1 as id\n"),
        ("models/archive/old_a.sql", "select id + 1 as id from {{ ref('a') }}\n"),
    ]);
    let run = strata(dir.path(), &["build"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        query(
            &dir.path().join("target/archive.duckdb"),
            "select id from main.old_a"
        ),
        rows(&[&["2"]])
    );
    assert_eq!(
        query(
            &dir.path().join("target/shop.duckdb"),
            "select count(*) from information_schema.tables where table_name = 'old_a'"
        ),
        rows(&[&["0"]])
    );
}

fn cdc_batches_apply_the_last_change_per_key_like_a_full_refresh(kind: Kind) {
    let model = |seed: &str| {
        format!(
            "{{{{ config(materialized='incremental', incremental_strategy='cdc', unique_key='id') }}}}\nselect id, name, _op, _commit_ts from {{{{ ref('{seed}') }}}}\n"
        )
    };
    let Some(w) = Warehouse::new(
        kind,
        "cdc",
        PROJECT,
        &[
            ("seeds/batch.csv", "id,name,_op,_commit_ts\n0,x,I,0\n"),
            ("seeds/history.csv", "id,name,_op,_commit_ts\n0,x,I,0\n"),
            ("models/customers.sql", &model("batch")),
            ("models/customers_full.sql", &model("history")),
        ],
    ) else {
        return;
    };
    let batches = [
        // inserts, and an update of the same key in one batch
        "1,a,I,1\n2,b,I,1\n2,b2,U,2\n3,c,I,1\n",
        // a delete, a duplicated update, an update of a missing key, a late older change
        "1,a,D,3\n3,c3,U,4\n3,c3,U,4\n4,d,U,5\n2,old,U,1\n",
        // a re-insert of a deleted key, a late delete older than the key's last update
        "1,a-again,I,6\n4,d,D,2\n",
    ];
    // The first build is a full one over the first batch; later builds apply batches.
    w.build_ok(&[]);
    let mut history = String::from("id,name,_op,_commit_ts\n0,x,I,0\n");
    for batch in batches {
        history.push_str(batch);
        w.write(
            "seeds/batch.csv",
            &format!("id,name,_op,_commit_ts\n{batch}"),
        );
        w.write("seeds/history.csv", &history);
        let log = w.build_ok(&["--select", "batch", "history", "customers"]);
        assert!(log.contains("OK customers [CDC"), "{log}");
    }
    w.build_ok(&["--select", "customers_full", "--full-refresh"]);
    let expected = rows(&[
        &["0", "x"],
        &["1", "a-again"],
        &["2", "b2"],
        &["3", "c3"],
        &["4", "d"],
    ]);
    assert_eq!(
        w.query("select id, name from {s}.customers order by id"),
        expected
    );
    assert_eq!(
        w.query("select id, name from {s}.customers_full order by id"),
        expected
    );
}

/// `merge_update_columns` / `merge_exclude_columns` limit what a merge updates in matched rows;
/// the rows below are what dbt-core 1.12.6 with dbt-duckdb 1.11.1 left after the same two builds
/// (run by hand with the peers' venv). Where they would be ignored, strata refuses by name.
#[test]
fn merge_update_and_exclude_columns_update_only_the_columns_they_name() {
    let dir = crate::common::project(&[
        ("dbt_project.yml", "name: mu\nprofile: mu\n"),
        (
            "profiles.yml",
            "mu:\n  target: dev\n  outputs:\n    dev: {type: duckdb, path: target/mu.duckdb}\n",
        ),
        ("seeds/src.csv", "id,name,amount\n1,ada,10\n2,bob,20\n"),
        (
            "models/only_amount.sql",
            "{{ config(materialized='incremental', incremental_strategy='merge', unique_key='id', merge_update_columns=['amount']) }}\nselect * from {{ ref('src') }}\n",
        ),
        (
            "models/not_name.sql",
            "{{ config(materialized='incremental', incremental_strategy='merge', unique_key='id', merge_exclude_columns=['name']) }}\nselect * from {{ ref('src') }}\n",
        ),
    ]);
    let first = crate::common::strata(dir.path(), &["build"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    std::fs::write(
        dir.path().join("seeds/src.csv"),
        "id,name,amount\n1,ADA,11\n3,cy,30\n",
    )
    .expect("seed");
    let second = crate::common::strata(dir.path(), &["build"]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    let db = dir.path().join("target/mu.duckdb");
    for table in ["only_amount", "not_name"] {
        assert_eq!(
            crate::common::query(
                &db,
                &format!("select id, name, amount from main.{table} order by id")
            ),
            [["1", "ada", "11"], ["2", "bob", "20"], ["3", "cy", "30"]],
            "{table}"
        );
    }

    std::fs::write(
        dir.path().join("models/only_amount.sql"),
        "{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key='id', merge_update_columns=['amount']) }}\nselect * from {{ ref('src') }}\n",
    )
    .expect("model");
    let refused = crate::common::strata(dir.path(), &["run", "--select", "only_amount"]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("merge_update_columns")
            && refused.stderr.contains("would be ignored"),
        "{}",
        refused.stderr
    );
}

/// A config strata does not act on is named: an error where ignoring it could change what is
/// built (`sql_header`), a warning where only a check is skipped (`contract`), never silence.
#[test]
fn configs_strata_does_not_act_on_are_named() {
    let dir = crate::common::project(&[
        ("project.yml", "name: named\n"),
        (
            "models/a.sql",
            "{{ config(sql_header=\"set timezone = 'UTC'\") }}\nselect 1 as x\n",
        ),
        (
            "models/b.sql",
            "{{ config(materialized='table', contract={'enforced': true}) }}\nselect 1 as y\n",
        ),
    ]);
    let refused = crate::common::strata(dir.path(), &["run"]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains("config `sql_header` is not supported by strata")
            && refused.stderr.contains("`a`")
            && refused.stderr.contains("pre_hook"),
        "{}",
        refused.stderr
    );
    std::fs::write(dir.path().join("models/a.sql"), "select 1 as x\n").expect("model");
    let warned = crate::common::strata(dir.path(), &["run"]);
    assert_eq!(warned.code, 0, "{}", warned.stderr);
    assert!(
        warned
            .stderr
            .contains("config `contract` is not acted on by strata: `b`"),
        "{}",
        warned.stderr
    );
}

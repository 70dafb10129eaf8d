//! `strata parse` on the dbt-style fixture: loads unmodified, writes a manifest with every node.

use crate::common::{fixture, strata};

#[test]
fn dbt_project_parses_unmodified_and_writes_manifest() {
    let dir = fixture("jaffle");
    let run = strata(dir.path(), &["parse"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("parsed 6 models, 2 seeds, 1 snapshots, 1 sources"),
        "{}",
        run.stderr
    );

    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("target/manifest.json")).unwrap())
            .unwrap();
    let orders = &manifest["nodes"]["model.jaffle.orders"];
    assert_eq!(
        orders["fqn"],
        serde_json::json!(["jaffle", "marts", "orders"])
    );
    assert_eq!(orders["config"]["materialized"], "incremental");
    assert_eq!(orders["config"]["unique_key"], "order_id");
    assert_eq!(orders["schema"], "main_marts");
    assert_eq!(orders["tags"], serde_json::json!(["marts", "finance"]));
    assert_eq!(
        orders["depends_on"]["nodes"],
        serde_json::json!(["model.jaffle.stg_payments", "model.jaffle.stg_orders"])
    );
    assert_eq!(orders["checksum"]["name"], "sha256");
    let customers = &manifest["nodes"]["model.jaffle.customers"];
    assert_eq!(customers["alias"], "dim_customers");
    assert_eq!(customers["tags"], serde_json::json!(["marts", "finance"]));
    let stg_orders = &manifest["nodes"]["model.jaffle.stg_orders"];
    assert_eq!(stg_orders["description"], "{{ doc('orders_status') }}");
    assert_eq!(
        manifest["sources"]["source.jaffle.shop.customers"]["identifier"],
        "customers_v2"
    );
    assert_eq!(
        manifest["sources"]["source.jaffle.shop.customers"]["schema"],
        "raw_shop"
    );
    assert!(
        manifest["nodes"]["test.jaffle.not_null_stg_orders_order_id.b2c6c3ea0f"].is_object()
            || manifest["nodes"]
                .as_object()
                .unwrap()
                .keys()
                .any(|k| k.starts_with("test.jaffle.not_null_stg_orders_order_id."))
    );
    let relationship = manifest["nodes"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(k, _)| k.starts_with("test.jaffle.relationships_stg_orders_customer_id__customer_id__ref_stg_customers_."))
        .map(|(_, v)| v.clone())
        .expect("relationships test named as dbt names it");
    assert_eq!(
        relationship["depends_on"]["nodes"],
        serde_json::json!(["model.jaffle.stg_orders", "model.jaffle.stg_customers"])
    );
    assert_eq!(relationship["attached_node"], "model.jaffle.stg_orders");
    assert!(manifest["docs"]["doc.jaffle.orders_status"].is_object());
    assert_eq!(
        manifest["macros"]["macro.jaffle.cents_to_dollars"]["original_file_path"],
        "macros/cents_to_dollars.sql"
    );
    assert_eq!(
        manifest["child_map"]["model.jaffle.orders"],
        serde_json::json!([
            "model.jaffle.customers",
            manifest["child_map"]["model.jaffle.orders"][1].clone()
        ])
    );
}

#[test]
fn inline_targets_and_default_duckdb_target() {
    let dir = crate::common::project(&[
        ("project.yml", "name: tiny\n"),
        (
            "models/a.sql",
            "select '{{ target.type }}:{{ target.name }}:{{ target.schema }}' as t\n",
        ),
    ]);
    let run = strata(dir.path(), &["compile", "-s", "a"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.trim(), "select 'duckdb:dev:main' as t");

    let dir = crate::common::project(&[
        (
            "project.yml",
            "name: tiny\ntarget: local\ntargets:\n  local:\n    type: duckdb\n    schema: analytics\n  pg:\n    type: postgres\n    host: localhost\n    user: postgres\n    password: \"{{ env_var('PGPASS_FOR_TEST', 'secret') }}\"\n    dbname: db\n    schema: s\n",
        ),
        ("models/a.sql", "select '{{ target.type }}:{{ target.name }}:{{ target.schema }}' as t\n"),
    ]);
    let run = strata(dir.path(), &["compile", "-s", "a"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.trim(), "select 'duckdb:local:analytics' as t");
    let run = strata(dir.path(), &["compile", "-s", "a", "--target", "pg"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.trim(), "select 'postgres:pg:s' as t");
    let manifest = std::fs::read_to_string(dir.path().join("target/manifest.json")).unwrap();
    assert!(
        !manifest.contains("secret"),
        "secrets must not reach artifacts"
    );
}

#[test]
fn json_logs_and_quiet_mode() {
    let dir = crate::common::project(&[
        (
            "project.yml",
            "name: p\nmodels:\n  p:\n    +materialised: table\n",
        ),
        ("models/a.sql", "select 1 as id\n"),
    ]);
    let run = strata(dir.path(), &["parse", "--log-format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<serde_json::Value> = run
        .stderr
        .lines()
        .map(|l| serde_json::from_str(l).expect("every stderr line is JSON"))
        .collect();
    assert_eq!(lines[0]["level"], "warning");
    assert_eq!(
        lines[0]["message"],
        "unknown config key `models.p.+materialised`"
    );
    assert_eq!(lines[0]["location"]["path"], "project.yml");
    assert_eq!(lines[0]["location"]["line"], 4);
    assert_eq!(lines.last().unwrap()["level"], "info");

    let run = strata(dir.path(), &["ls", "-q"]);
    assert_eq!(run.code, 0);
    assert_eq!(run.stderr, "", "quiet mode prints only errors");
    assert_eq!(run.stdout, "p.a\n");
}

#[test]
fn environment_selects_project_and_target() {
    let dir = crate::common::project(&[
        (
            "shop/project.yml",
            "name: shop\ntargets:\n  dev: {type: duckdb}\n  ci: {type: duckdb, schema: ci}\n",
        ),
        ("shop/models/a.sql", "select '{{ target.schema }}' as s\n"),
    ]);
    let run = crate::common::strata_env(
        dir.path(),
        &["compile", "-s", "a"],
        &[("STRATA_PROJECT_DIR", "shop"), ("STRATA_TARGET", "ci")],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.trim(), "select 'ci' as s");
    let run = strata(
        dir.path(),
        &["parse", "--project-dir", "shop", "--threads", "0"],
    );
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("`--threads` must be at least 1"),
        "{}",
        run.stderr
    );
}

/// dbt renders `target` in the YAML beside models (a source in the target's own schema is the
/// common case); the project file's `vars:` render when a node reads them, with its context.
#[test]
fn yaml_beside_models_renders_target() {
    let dir = crate::common::project(&[
        ("project.yml", "name: shop\n"),
        (
            "models/sources.yml",
            "version: 2\nsources:\n  - name: raw\n    schema: \"{{ target.schema }}_raw\"\n    tables:\n      - name: orders\n",
        ),
        (
            "models/orders.sql",
            "select * from {{ source('raw', 'orders') }}\n",
        ),
    ]);
    let compiled = strata(dir.path(), &["compile", "--select", "orders"]);
    assert_eq!(compiled.code, 0, "{}", compiled.stderr);
    assert!(
        compiled.stdout.contains("\"main_raw\".\"orders\""),
        "{}",
        compiled.stdout
    );

    std::fs::write(
        dir.path().join("project.yml"),
        "name: shop\nvars:\n  s: \"{{ target.schema }}_{{ this.identifier }}\"\n",
    )
    .expect("write project file");
    std::fs::write(
        dir.path().join("models/orders.sql"),
        "select '{{ var(\"s\") }}' as s\n",
    )
    .expect("write model");
    let rendered = strata(dir.path(), &["compile", "--select", "orders"]);
    assert_eq!(rendered.code, 0, "{}", rendered.stderr);
    assert!(
        rendered.stdout.contains("'main_orders'"),
        "{}",
        rendered.stdout
    );
}

/// dbt renders `dbt_project.yml` and the YAML beside models with `target`, and leaves the
/// semantic layer's own Jinja (`{{ Dimension(…) }}` filters) alone.
#[test]
fn yaml_renders_target_and_leaves_semantic_layer_jinja_alone() {
    let dir = crate::common::project(&[
        (
            "dbt_project.yml",
            "name: sem\nprofile: sem\nmodels:\n  sem:\n    +schema: \"{{ target.name }}_marts\"\n",
        ),
        (
            "profiles.yml",
            "sem:\n  target: dev\n  outputs:\n    dev: {type: duckdb, path: target/sem.duckdb}\n",
        ),
        (
            "models/orders.sql",
            "select 1 as order_id, true as is_food\n",
        ),
        (
            "models/schema.yml",
            concat!(
                "version: 2\n",
                "sources:\n",
                "  - name: raw\n",
                "    schema: \"{{ target.schema }}\"\n",
                "    tables: [{name: events}]\n",
                "semantic_models:\n",
                "  - name: orders\n",
                "    model: ref('orders')\n",
                "    entities: [{name: order, type: primary, expr: order_id}]\n",
                "    dimensions: [{name: is_food, type: categorical}]\n",
                "metrics:\n",
                "  - name: food_orders\n",
                "    type: simple\n",
                "    type_params: {measure: orders}\n",
                "    filter: \"{{ Dimension('order__is_food') }}\"\n",
            ),
        ),
    ]);
    let run = crate::common::strata(dir.path(), &["parse"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("target/manifest.json")).unwrap())
            .unwrap();
    assert_eq!(
        manifest["nodes"]["model.sem.orders"]["schema"],
        "main_dev_marts"
    );
    assert_eq!(
        manifest["sources"]["source.sem.raw.events"]["schema"],
        "main"
    );
}

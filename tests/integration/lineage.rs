//! Column lineage of the example project — every gold and aggregate column against the input
//! columns read by hand from its SQL — and `docs generate` / `docs serve` on it.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};

use serde_json::Value as Json;

use crate::common::{strata, Running};
use crate::example::example;

/// `model.retail_finance.orders` → `orders`, `source.retail_finance.shop.orders` →
/// `shop.orders`, `seed.retail_finance.country_codes` → `country_codes`.
fn short(id: &str) -> String {
    let parts: Vec<&str> = id.split('.').collect();
    match parts.as_slice() {
        ["source", _, source, table] => format!("{source}.{table}"),
        [_, _, name] => name.to_string(),
        _ => id.to_string(),
    }
}

type Traced = BTreeMap<String, (String, BTreeSet<String>)>;

/// `strata lineage --output json` of `select`: model → column → (status, upstream).
fn traced(dir: &std::path::Path, select: &[&str]) -> BTreeMap<String, Traced> {
    let mut args = vec!["lineage", "--output", "json", "--select"];
    args.extend_from_slice(select);
    let run = strata(dir, &args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let json: Json = serde_json::from_str(&run.stdout).expect("json");
    let mut out = BTreeMap::new();
    for (id, model) in json.as_object().expect("object") {
        let mut columns = Traced::new();
        for column in model["columns"].as_array().expect("columns") {
            let upstream = column["upstream"]
                .as_array()
                .expect("upstream")
                .iter()
                .map(|u| {
                    format!(
                        "{}.{}",
                        short(u["node"].as_str().expect("node")),
                        u["column"].as_str().expect("column")
                    )
                })
                .collect();
            columns.insert(
                column["column"].as_str().expect("name").to_string(),
                (
                    column["status"].as_str().expect("status").to_string(),
                    upstream,
                ),
            );
        }
        out.insert(short(id), columns);
    }
    out
}

/// Columns traced to these inputs (none: a constant).
fn traced_to(columns: &[(&str, &[&str])]) -> Traced {
    columns
        .iter()
        .map(|(name, upstream)| {
            (
                name.to_string(),
                (
                    "traced".to_string(),
                    upstream.iter().map(|u| u.to_string()).collect(),
                ),
            )
        })
        .collect()
}

/// The columns the CDC `restate` macro adds: constants.
const RESTATED: [(&str, &[&str]); 3] = [("_op", &[]), ("_commit_ts", &[]), ("_change_seq", &[])];

#[test]
fn every_gold_and_aggregate_column_traces_to_the_inputs_its_sql_reads() {
    let dir = example();
    let got = traced(dir.path(), &["gold", "aggregates"]);
    let with_restated = |columns: &[(&str, &[&str])]| {
        let mut all = columns.to_vec();
        all.extend(RESTATED);
        traced_to(&all)
    };
    let mut expected: BTreeMap<String, Traced> = BTreeMap::new();
    expected.insert(
        "fact_sales".into(),
        with_restated(&[
            (
                "sales_key",
                &["order_items.order_id", "order_items.line_number"],
            ),
            ("order_id", &["order_items.order_id"]),
            ("line_number", &["order_items.line_number"]),
            ("customer_key", &["dim_customer.customer_key"]),
            ("product_key", &["dim_product.product_key"]),
            ("store_key", &["dim_store.store_key"]),
            ("date_key", &["orders.order_date"]),
            ("order_date", &["orders.order_date"]),
            ("status", &["orders.status"]),
            ("quantity", &["order_items.quantity"]),
            ("unit_price", &["order_items.unit_price"]),
            ("discount", &["order_items.discount"]),
            ("net_amount", &["order_items.net_amount"]),
        ]),
    );
    expected.insert(
        "fact_payments".into(),
        with_restated(&[
            ("payment_key", &["payments.payment_id"]),
            ("payment_id", &["payments.payment_id"]),
            ("order_id", &["payments.order_id"]),
            ("customer_key", &["dim_customer.customer_key"]),
            ("date_key", &["payments.paid_at"]),
            ("payment_method", &["payments.payment_method"]),
            ("is_voucher", &["payment_methods.is_voucher"]),
            ("amount", &["payments.amount"]),
            ("currency", &[]),
        ]),
    );
    expected.insert(
        "dim_customer".into(),
        with_restated(&[
            ("customer_key", &["customers.customer_id"]),
            ("customer_id", &["customers.customer_id"]),
            ("first_name", &["customers.first_name"]),
            ("last_name", &["customers.last_name"]),
            ("email", &["customers.email"]),
            ("city", &["customers.city"]),
            ("country_code", &["customers.country_code"]),
            ("country_name", &["country_codes.country_name"]),
            ("signup_date", &["customers.signup_date"]),
        ]),
    );
    expected.insert(
        "dim_product".into(),
        traced_to(&[
            ("product_key", &["products.product_id"]),
            ("product_id", &["products.product_id"]),
            ("sku", &["products.sku"]),
            ("product_name", &["products.product_name"]),
            ("category", &["products.category"]),
            ("list_price", &["products.unit_price_cents"]),
        ]),
    );
    expected.insert(
        "dim_store".into(),
        traced_to(&[
            ("store_key", &["stores.store_id"]),
            ("store_id", &["stores.store_id"]),
            ("store_name", &["stores.store_name"]),
            ("city", &["stores.city"]),
            ("country_code", &["stores.country_code"]),
            ("opened_on", &["stores.opened_on"]),
            ("is_online", &["stores.store_name"]),
        ]),
    );
    // Every day comes from `generate_series`, which is no input of the project: said, not
    // guessed.
    expected.insert(
        "dim_date".into(),
        [
            "date_key",
            "date_day",
            "year",
            "month",
            "day_of_month",
            "iso_day_of_week",
            "month_start",
        ]
        .iter()
        .map(|c| (c.to_string(), ("untraced".to_string(), BTreeSet::new())))
        .collect(),
    );
    expected.insert(
        "agg_daily_sales".into(),
        with_restated(&[
            ("date_key", &["fact_sales.date_key"]),
            ("sales_date", &["fact_sales.order_date"]),
            ("store_id", &["dim_store.store_id"]),
            ("orders", &["fact_sales.order_id"]),
            ("units", &["fact_sales.quantity"]),
            ("net_sales", &["fact_sales.net_amount"]),
        ]),
    );
    expected.insert(
        "agg_monthly_sales".into(),
        traced_to(&[
            ("month_start", &["dim_date.month_start"]),
            ("store_id", &["agg_daily_sales.store_id"]),
            ("orders", &["agg_daily_sales.orders"]),
            ("units", &["agg_daily_sales.units"]),
            ("net_sales", &["agg_daily_sales.net_sales"]),
        ]),
    );
    for (model, columns) in &expected {
        assert_eq!(got.get(model), Some(columns), "{model}");
    }
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    // The text form names the reason.
    let text = strata(
        dir.path(),
        &["lineage", "--select", "dim_date", "--column", "year"],
    );
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(
        text.stdout
            .contains("year  (no input column)  [untraced: read from a relation that is made by the table function `generate_series(…)`]"),
        "{}",
        text.stdout
    );
}

/// A gold column's path back through cleaned and staging models to the landing sources.
#[test]
fn a_gold_column_traces_back_through_staging_to_the_sources() {
    let dir = example();
    let all = traced(dir.path(), &["+fact_sales"]);
    let mut frontier: Vec<String> = vec!["fact_sales.net_amount".into()];
    let mut reached: BTreeSet<String> = BTreeSet::new();
    while let Some(column) = frontier.pop() {
        let (model, name) = column.rsplit_once('.').expect("model.column");
        if let Some((_, upstream)) = all.get(model).and_then(|m| m.get(name)) {
            for up in upstream {
                if reached.insert(up.clone()) {
                    frontier.push(up.clone());
                }
            }
        }
    }
    for expected in [
        "order_items.net_amount",
        "stg_order_items.quantity",
        "stg_order_items.unit_price_cents",
        "stg_order_items.discount_cents",
        "shop.order_items.quantity",
        "shop.order_items.unit_price_cents",
        "shop.order_items.discount_cents",
    ] {
        assert!(reached.contains(expected), "{expected} not in {reached:?}");
    }
}

/// `docs generate` after a build: the site's files, `catalog.json` in dbt's shape with types
/// and row counts, the site data with lineage; `docs serve` serves them and nothing else.
#[test]
fn docs_generate_writes_the_catalog_and_the_site_and_docs_serve_serves_it() {
    let dir = example();
    let built = strata(dir.path(), &["build"]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let docs = strata(dir.path(), &["docs", "generate"]);
    assert_eq!(docs.code, 0, "{}", docs.stderr);
    let target = dir.path().join("target/strata");
    let target = if target.join("index.html").is_file() {
        target
    } else {
        dir.path().join("target")
    };
    for file in [
        "index.html",
        "app.js",
        "style.css",
        "docs-data.js",
        "catalog.json",
    ] {
        assert!(
            target.join(file).is_file(),
            "{file} in {}",
            target.display()
        );
    }
    let catalog: Json =
        serde_json::from_str(&std::fs::read_to_string(target.join("catalog.json")).expect("read"))
            .expect("json");
    let fact = &catalog["nodes"]["model.retail_finance.fact_sales"];
    assert_eq!(fact["metadata"]["name"], "fact_sales");
    assert_eq!(fact["metadata"]["type"], "BASE TABLE");
    assert!(fact["columns"]["net_amount"]["type"]
        .as_str()
        .is_some_and(|t| t.to_ascii_uppercase().starts_with("DECIMAL")));
    assert!(
        fact["stats"]["row_count"]["value"]
            .as_i64()
            .is_some_and(|n| n > 0),
        "{fact}"
    );
    assert!(catalog["sources"].is_object());
    let data = std::fs::read_to_string(target.join("docs-data.js")).expect("data");
    let json = data
        .trim()
        .strip_prefix("window.STRATA_DOCS = ")
        .and_then(|s| s.strip_suffix(';'))
        .expect("window.STRATA_DOCS = {…};");
    let site: Json = serde_json::from_str(json).expect("site data");
    let node = &site["nodes"]["model.retail_finance.fact_sales"];
    let net = node["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .find(|c| c["name"] == "net_amount")
        .expect("net_amount");
    assert_eq!(net["lineage"]["status"], "traced");
    assert_eq!(
        net["lineage"]["upstream"],
        serde_json::json!([["model.retail_finance.order_items", "net_amount"]])
    );
    assert!(!node["tests"].as_array().expect("tests").is_empty());
    assert!(node["compiled_sql"]
        .as_str()
        .is_some_and(|s| s.contains("select")));

    let mut serving = Running::until(
        dir.path(),
        &["docs", "serve", "--port", "0"],
        "serving the docs at",
    );
    let port: u16 = serving
        .seen
        .split("http://127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {}", serving.seen));
    let get = |path: &str| -> String {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        write!(stream, "GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").expect("write");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("read");
        answer
    };
    assert!(get("/").starts_with("HTTP/1.1 200"));
    let data = get("/docs-data.js");
    assert!(data.starts_with("HTTP/1.1 200") && data.contains("text/javascript"));
    assert!(get("/../project.yml").starts_with("HTTP/1.1 404"));
    let _ = serving.child.kill();
    let _ = serving.child.wait();
}

/// The example's generated site in headless Chromium (`tests/browser/docs.test.mjs`, driving
/// Debian's Chromium with playwright-core): it loads, search finds `fact_sales`, its page lists
/// its columns and tests, the graph shows its parents, and clicking `net_amount` highlights its
/// upstream columns down to the staging models. In CI (`CI` set) a missing browser fails.
#[test]
fn the_example_site_works_in_headless_chromium() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let browser_tests = root.join("tests/browser");
    let chromium = std::env::var_os("CHROMIUM")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "/usr/bin/chromium".into());
    let missing = if !browser_tests.join("node_modules/playwright-core").is_dir() {
        Some("tests/browser/node_modules (npm ci there)")
    } else if !chromium.exists() {
        Some("Chromium")
    } else {
        None
    };
    if let Some(what) = missing {
        if std::env::var_os("CI").is_some() {
            panic!("the browser test needs {what} in CI: tests/services.sh installs it");
        }
        eprintln!("skipped: no {what}; run tests/services.sh");
        return;
    }
    let dir = example();
    assert_eq!(strata(dir.path(), &["build"]).code, 0);
    let docs = strata(dir.path(), &["docs", "generate"]);
    assert_eq!(docs.code, 0, "{}", docs.stderr);
    let site = ["target/strata", "target"]
        .iter()
        .map(|t| dir.path().join(t))
        .find(|t| t.join("index.html").is_file())
        .expect("the generated site");
    let run = std::process::Command::new("node")
        .arg(browser_tests.join("docs.test.mjs"))
        .arg(&site)
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains(" 0 failed"), "{stdout}");
}

/// `docs generate` reads the catalog of PostgreSQL and of the Redshift, Trino and Athena
/// stand-ins: columns with the warehouse's types, and the lineage of a model over a seed.
#[test]
fn docs_generate_reads_the_catalog_of_postgres_redshift_trino_and_athena() {
    let files = |profile: String, project_yml: &str| -> Vec<(String, String)> {
        vec![
            ("profiles.yml".into(), profile),
            ("project.yml".into(), project_yml.to_string()),
            ("seeds/rates.csv".into(), "currency,rate\nEUR,1.5\nUSD,2\n".into()),
            (
                "models/priced.sql".into(),
                "{{ config(materialized='table') }}\nselect currency, rate * 100 as cents from {{ ref('rates') }}\n".into(),
            ),
        ]
    };
    let check = |dir: &std::path::Path, run: &dyn Fn(&[&str]) -> crate::common::Run, what: &str| {
        let built = run(&["build"]);
        assert_eq!(built.code, 0, "{what}: {}", built.stderr);
        let docs = run(&["docs", "generate"]);
        assert_eq!(docs.code, 0, "{what}: {}", docs.stderr);
        let catalog: Json = serde_json::from_str(
            &std::fs::read_to_string(dir.join("target/catalog.json")).expect("catalog.json"),
        )
        .expect("json");
        let columns = &catalog["nodes"]["model.shop.priced"]["columns"];
        let types: Vec<String> = ["currency", "cents"]
            .iter()
            .map(|c| {
                columns[c]["type"]
                    .as_str()
                    .unwrap_or_default()
                    .to_ascii_lowercase()
            })
            .collect();
        assert!(
            ["char", "text", "string"]
                .iter()
                .any(|t| types[0].contains(t)),
            "{what}: {types:?} in {catalog}"
        );
        assert!(!types[1].is_empty(), "{what}: {types:?}");
        let lineage = run(&["lineage", "--select", "priced"]);
        assert_eq!(lineage.code, 0, "{what}: {}", lineage.stderr);
        assert!(
            lineage.stdout.contains("cents  <- rates.rate"),
            "{what}: {}",
            lineage.stdout
        );
    };
    if let Some(pg) = crate::postgres::Database::create("docs_catalog") {
        let all = files(pg.profile(), "name: shop\nprofile: shop\n");
        let borrowed: Vec<(&str, &str)> =
            all.iter().map(|(p, c)| (p.as_str(), c.as_str())).collect();
        let dir = crate::common::project(&borrowed);
        check(dir.path(), &|args| strata(dir.path(), args), "postgres");
    }
    if let Some(db) = crate::redshift::stand_in("docs_catalog") {
        let all = files(
            format!("shop:\n  target: rs\n  outputs:\n    rs:\n      type: redshift\n      host: 127.0.0.1\n      port: 5439\n      user: postgres\n      sslmode: disable\n      dbname: {}\n      schema: analytics\n      region: us-east-1\n", db.name),
            "name: shop\nprofile: shop\n",
        );
        let borrowed: Vec<(&str, &str)> =
            all.iter().map(|(p, c)| (p.as_str(), c.as_str())).collect();
        let dir = crate::common::project(&borrowed);
        let env = crate::redshift::environment(&db);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        check(
            dir.path(),
            &|args| crate::common::strata_env(dir.path(), args, &env),
            "redshift",
        );
    }
    if !crate::lake::stand_in("docs_trino") || !crate::lake::athena_front("docs_athena") {
        return;
    }
    let schema = format!("docs_{}", std::process::id());
    for (target, catalog) in [("trino", "iceberg"), ("athena", "awsdatacatalog")] {
        let schema = format!("{schema}_{target}");
        let all = files(
            format!("shop:\n  target: {target}\n  outputs:\n    trino:\n      type: trino\n      host: 127.0.0.1\n      port: 8090\n      user: strata\n      database: iceberg\n      schema: {schema}\n    athena:\n      type: athena\n      region_name: us-east-1\n      schema: {schema}\n      work_group: primary\n      s3_staging_dir: s3://strata-athena/staging/{schema}/\n"),
            "name: shop\nprofile: shop\n",
        );
        let borrowed: Vec<(&str, &str)> =
            all.iter().map(|(p, c)| (p.as_str(), c.as_str())).collect();
        let dir = crate::common::project(&borrowed);
        check(
            dir.path(),
            &|args| crate::lake::run(dir.path(), args, &[]),
            target,
        );
        for s in [schema.as_str(), &format!("{schema}_strata")] {
            crate::lake::drop_schema(catalog, s);
        }
    }
}

#[test]
fn docs_generate_waits_for_the_connection_only_where_templates_query_the_warehouse() {
    // A model asks the warehouse while compiling: its compiled SQL holds the answer.
    let dir = crate::common::project(&[
        ("project.yml", "name: shop\n"),
        (
            "models/answer.sql",
            "{% set r = run_query('select 40 + 2 as answer') %}\nselect {{ r.columns[0].values()[0] if execute else 0 }} as answer\n",
        ),
        (
            "models/doubled.sql",
            "select answer * 2 as doubled from {{ ref('answer') }}\n",
        ),
    ]);
    let built = strata(dir.path(), &["build"]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let docs = strata(dir.path(), &["docs", "generate"]);
    assert_eq!(docs.code, 0, "{}", docs.stderr);
    let data = std::fs::read_to_string(dir.path().join("target/docs-data.js")).expect("data");
    assert!(data.contains("select 42 as answer"), "{data}");
    let catalog: Json = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("target/catalog.json")).expect("catalog"),
    )
    .expect("json");
    assert!(
        catalog["nodes"]["model.shop.doubled"]["columns"]["doubled"].is_object(),
        "{catalog}"
    );

    // A warehouse that cannot be reached stops docs generate after the compile, with the
    // way out named, and writes none of its files.
    let dir = crate::common::project(&[
        ("project.yml", "name: shop\nprofile: shop\n"),
        (
            "profiles.yml",
            "shop:\n  target: pg\n  outputs:\n    pg:\n      type: postgres\n      host: 127.0.0.1\n      port: 1\n      user: postgres\n      dbname: nowhere\n      schema: public\n      connect_timeout: 2\n",
        ),
        ("models/one.sql", "select 1 as id\n"),
    ]);
    let docs = strata(dir.path(), &["docs", "generate"]);
    assert_eq!(docs.code, 1, "{}", docs.stderr);
    assert!(
        docs.stderr
            .contains("cannot connect to target `pg` to read its catalog"),
        "{}",
        docs.stderr
    );
    assert!(docs.stderr.contains("--empty-catalog"), "{}", docs.stderr);
    for file in [
        "index.html",
        "docs-data.js",
        "catalog.json",
        "manifest.json",
    ] {
        assert!(
            !dir.path().join("target").join(file).exists(),
            "{file} was written"
        );
    }
    let empty = strata(dir.path(), &["docs", "generate", "--empty-catalog"]);
    assert_eq!(empty.code, 0, "{}", empty.stderr);
    assert!(dir.path().join("target/docs-data.js").is_file());

    // The connection opens while the project parses, but never creates the warehouse: a
    // project that does not parse leaves no database file behind, and one never built is
    // documented with an empty catalog without one being made.
    let dir = crate::common::project(&[
        (
            "project.yml",
            "name: shop
",
        ),
        ("models/one.sql", "select {{ oops( }} as id\n"),
    ]);
    let docs = strata(dir.path(), &["docs", "generate"]);
    assert_eq!(docs.code, 1, "{}", docs.stderr);
    assert!(docs.stderr.contains("models/one.sql:1"), "{}", docs.stderr);
    assert!(!dir.path().join("target").exists(), "something was written");
    std::fs::write(dir.path().join("models/one.sql"), "select 1 as id\n").expect("write");
    let docs = strata(dir.path(), &["docs", "generate"]);
    assert_eq!(docs.code, 0, "{}", docs.stderr);
    assert!(
        docs.stderr.contains("0 relations in the catalog"),
        "{}",
        docs.stderr
    );
    assert!(!dir.path().join("target/shop.duckdb").exists());
}

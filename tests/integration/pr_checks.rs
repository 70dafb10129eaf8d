//! PR checks: `state:` selectors against a production run's artifacts (`--state`). One table
//! of edits over `tests/fixtures/pr_checks`, each made on a fresh copy after a production
//! parse (target `prod`), and each `state:modified` sub-selector listed on target `ci`: what
//! every one of them lists is pinned, so a false positive fails as surely as a miss. The
//! target differs in every case (another schema), and must mark nothing by itself.

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::{fixture, strata_env};

const PARTS: &[&str] = &[
    "body",
    "configs",
    "relation",
    "persisted_descriptions",
    "macros",
    "contract",
    "vars",
];

/// One edit and what each selector must list after it (selectors not named list nothing).
struct Case {
    name: &'static str,
    edit: fn(&Path),
    args: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
    /// `modified`, `new` or a `modified.<part>`, and the node names listed.
    expected: &'static [(&'static str, &'static [&'static str])],
    /// What is listed against dbt's manifest, where that differs (dbt records no vars, and
    /// compacts whitespace before its checksums).
    dbt: Option<&'static [(&'static str, &'static [&'static str])]>,
}

fn append(path: &Path, text: &str) {
    let mut current = std::fs::read_to_string(path).expect("read");
    current.push_str(text);
    std::fs::write(path, current).expect("write");
}

fn replace(path: &Path, from: &str, to: &str) {
    let current = std::fs::read_to_string(path).expect("read");
    assert!(
        current.contains(from),
        "`{from}` is not in {}",
        path.display()
    );
    std::fs::write(path, current.replacen(from, to, 1)).expect("write");
}

const ORDERS_AND_TESTS: &[&str] = &["not_null_orders_id", "orders", "positive_orders_amount"];
const SUMMARY_AND_TEST: &[&str] = &["assert_revenue_positive", "summary"];

const CASES: &[Case] = &[
    Case {
        name: "nothing but the target changes",
        edit: |_| {},
        args: &[],
        env: &[],
        expected: &[],
        dbt: None,
    },
    Case {
        name: "a model's SQL",
        edit: |dir| {
            append(
                &dir.join("models/summary.sql"),
                "where amount is not null\n",
            )
        },
        args: &[],
        env: &[],
        expected: &[
            ("modified", SUMMARY_AND_TEST),
            ("modified.body", SUMMARY_AND_TEST),
        ],
        dbt: None,
    },
    Case {
        name: "the layout of a model's SQL, not its tokens",
        edit: |dir| {
            replace(
                &dir.join("models/summary.sql"),
                "select count(*)",
                "select\n    count(*)",
            )
        },
        args: &[],
        env: &[],
        expected: &[
            ("modified", SUMMARY_AND_TEST),
            ("modified.body", SUMMARY_AND_TEST),
        ],
        dbt: Some(&[]),
    },
    Case {
        name: "a macro two models reach through a third",
        edit: |dir| {
            replace(
                &dir.join("macros/rounding.sql"),
                "round({{ expression }}, 2)",
                "round({{ expression }}, 4)",
            )
        },
        args: &[],
        env: &[],
        expected: &[
            (
                "modified",
                &[
                    "not_null_orders_id",
                    "orders",
                    "payments",
                    "positive_orders_amount",
                ],
            ),
            (
                "modified.macros",
                &[
                    "not_null_orders_id",
                    "orders",
                    "payments",
                    "positive_orders_amount",
                ],
            ),
        ],
        dbt: None,
    },
    Case {
        name: "another macro of the same file, which nothing calls",
        edit: |dir| replace(&dir.join("macros/rounding.sql"), "    1\n", "    2\n"),
        args: &[],
        env: &[],
        expected: &[],
        dbt: None,
    },
    Case {
        name: "a generic test's macro",
        edit: |dir| replace(&dir.join("macros/positive.sql"), "< 0", "<= 0"),
        args: &[],
        env: &[],
        expected: &[
            ("modified", &["positive_orders_amount"]),
            ("modified.macros", &["positive_orders_amount"]),
        ],
        dbt: None,
    },
    Case {
        name: "a YAML test's config",
        edit: |dir| {
            replace(
                &dir.join("models/schema.yml"),
                "          - not_null\n",
                "          - not_null:\n              config: {severity: warn}\n",
            )
        },
        args: &[],
        env: &[],
        expected: &[
            ("modified", &["not_null_orders_id"]),
            ("modified.configs", &["not_null_orders_id"]),
        ],
        dbt: None,
    },
    Case {
        name: "a seed's rows",
        edit: |dir| append(&dir.join("seeds/countries.csv"), "JP,Japan,apac\n"),
        args: &[],
        env: &[],
        expected: &[
            ("modified", &["countries"]),
            ("modified.body", &["countries"]),
        ],
        dbt: None,
    },
    Case {
        name: "a model's config",
        edit: |dir| {
            replace(
                &dir.join("models/schema.yml"),
                "      alias: order_summary\n",
                "      alias: order_summary\n      materialized: view\n",
            )
        },
        args: &[],
        env: &[],
        expected: &[
            ("modified", SUMMARY_AND_TEST),
            ("modified.configs", SUMMARY_AND_TEST),
        ],
        dbt: None,
    },
    Case {
        name: "a model's alias",
        edit: |dir| {
            replace(
                &dir.join("models/schema.yml"),
                "alias: order_summary",
                "alias: summary_of_orders",
            )
        },
        args: &[],
        env: &[],
        expected: &[
            ("modified", SUMMARY_AND_TEST),
            ("modified.relation", SUMMARY_AND_TEST),
        ],
        dbt: None,
    },
    Case {
        name: "a column type of an enforced contract",
        edit: |dir| {
            replace(
                &dir.join("models/schema.yml"),
                "data_type: integer",
                "data_type: bigint",
            )
        },
        args: &[],
        env: &[],
        expected: &[
            ("modified", &["payments"]),
            ("modified.contract", &["payments"]),
        ],
        dbt: None,
    },
    Case {
        name: "a var one model reads",
        edit: |_| {},
        args: &["--vars", "{vip_threshold: 200}"],
        env: &[],
        expected: &[
            ("modified", &["customers"]),
            ("modified.vars", &["customers"]),
        ],
        dbt: Some(&[]),
    },
    Case {
        name: "an environment variable one model reads",
        edit: |_| {},
        args: &[],
        env: &[("REGION_FILTER", "eu")],
        expected: &[("modified", &["regions"]), ("modified.vars", &["regions"])],
        dbt: Some(&[]),
    },
    Case {
        name: "a description stored as a comment",
        edit: |dir| {
            replace(
                &dir.join("models/schema.yml"),
                "Every order, in dollars.",
                "Every order, in US dollars.",
            )
        },
        args: &[],
        env: &[],
        expected: &[
            ("modified", ORDERS_AND_TESTS),
            ("modified.persisted_descriptions", ORDERS_AND_TESTS),
        ],
        dbt: None,
    },
    Case {
        name: "a description not stored anywhere",
        edit: |dir| {
            replace(
                &dir.join("models/schema.yml"),
                "Customers and what they spent.",
                "Customers and their spending.",
            )
        },
        args: &[],
        env: &[],
        expected: &[],
        dbt: None,
    },
    Case {
        name: "a new model",
        edit: |dir| std::fs::write(dir.join("models/fresh.sql"), "select 1 as x\n").expect("model"),
        args: &[],
        env: &[],
        expected: &[("modified", &["fresh"]), ("new", &["fresh"])],
        dbt: None,
    },
];

/// The names `ls --select <selector>` prints, sorted.
fn listed(dir: &Path, selector: &str, args: &[&str], env: &[(&str, &str)]) -> Vec<String> {
    let mut command = vec![
        "ls",
        "--select",
        selector,
        "--state",
        "prod-artifacts",
        "--target",
        "ci",
        "--output",
        "name",
    ];
    command.extend_from_slice(args);
    let run = strata_env(dir, &command, env);
    assert_eq!(run.code, 0, "ls --select {selector}: {}", run.stderr);
    let mut names: Vec<String> = run.stdout.lines().map(str::to_string).collect();
    names.sort();
    names
}

/// Every case against a production manifest strata wrote (`by_dbt: false`) or the one dbt-core
/// 1.12.6 wrote for the same project (`dbt-prod/`, from `expect.sh`).
fn compare_every_case(by_dbt: bool) {
    let mut failures = Vec::new();
    for case in CASES {
        let dir = fixture("pr_checks");
        std::fs::create_dir_all(dir.path().join("prod-artifacts")).expect("artifacts");
        if by_dbt {
            std::fs::copy(
                dir.path().join("dbt-prod/manifest.json"),
                dir.path().join("prod-artifacts/manifest.json"),
            )
            .expect("dbt's production manifest");
        } else {
            let parsed = strata_env(dir.path(), &["parse", "--target", "prod"], &[]);
            assert_eq!(parsed.code, 0, "{}", parsed.stderr);
            std::fs::copy(
                dir.path().join("target/manifest.json"),
                dir.path().join("prod-artifacts/manifest.json"),
            )
            .expect("the production manifest");
        }
        (case.edit)(dir.path());
        let table = match (by_dbt, case.dbt) {
            (true, Some(dbt)) => dbt,
            _ => case.expected,
        };
        let expected: BTreeMap<&str, &[&str]> = table.iter().copied().collect();
        let selectors = ["modified", "new"]
            .into_iter()
            .map(String::from)
            .chain(PARTS.iter().map(|p| format!("modified.{p}")));
        for selector in selectors {
            let got = listed(
                dir.path(),
                &format!("state:{selector}"),
                case.args,
                case.env,
            );
            let want: Vec<String> = expected
                .get(selector.as_str())
                .copied()
                .unwrap_or_default()
                .iter()
                .map(|s| s.to_string())
                .collect();
            if got != want {
                failures.push(format!(
                    "{}{}: state:{selector} listed {got:?}, expected {want:?}",
                    case.name,
                    if by_dbt { " (dbt's manifest)" } else { "" }
                ));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn state_modified_lists_exactly_what_each_edit_touches() {
    compare_every_case(false);
}

#[test]
fn against_dbts_manifest_state_modified_lists_what_dbt_records() {
    compare_every_case(true);
}

/// The fixture with a production build made (target `prod`) and its artifacts copied to
/// `prod-artifacts/`, as a CI job downloads them; on PostgreSQL both targets share a fresh
/// database.
struct Production {
    dir: tempfile::TempDir,
    postgres: Option<crate::postgres::Database>,
}

impl Production {
    fn build(kind: crate::warehouse::Kind) -> Option<Production> {
        let dir = fixture("pr_checks");
        let postgres = match kind {
            crate::warehouse::Kind::Duckdb => None,
            crate::warehouse::Kind::Postgres => {
                let db = crate::postgres::Database::create("pr_checks")?;
                let output = |schema: &str| {
                    format!(
                        "    {schema}:\n      type: postgres\n      host: 127.0.0.1\n      user: postgres\n      dbname: {}\n      schema: {schema}\n      sslmode: disable\n",
                        db.name
                    )
                };
                std::fs::write(
                    dir.path().join("profiles.yml"),
                    format!(
                        "pr_checks:\n  target: prod\n  outputs:\n{}{}",
                        output("prod"),
                        output("ci")
                    ),
                )
                .expect("profiles");
                Some(db)
            }
        };
        let built = strata_env(dir.path(), &["build", "--target", "prod"], &[]);
        assert_eq!(built.code, 0, "{}", built.stderr);
        let artifacts = dir.path().join("prod-artifacts");
        std::fs::create_dir_all(&artifacts).expect("artifacts");
        for file in ["manifest.json", "run_results.json"] {
            std::fs::copy(dir.path().join("target").join(file), artifacts.join(file))
                .expect("an artifact");
        }
        Some(Production { dir, postgres })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Rows of a query, every value as text.
    fn query(&self, sql: &str) -> Vec<Vec<String>> {
        match &self.postgres {
            Some(db) => db
                .query(sql)
                .lines()
                .map(|l| l.split('|').map(str::to_string).collect())
                .collect(),
            None => crate::common::query(&self.path().join("target/warehouse.duckdb"), sql),
        }
    }

    /// The tables of a schema, sorted.
    fn tables(&self, schema: &str) -> Vec<String> {
        let mut tables: Vec<String> = self
            .query(&format!(
                "select table_name from information_schema.tables where table_schema = '{schema}'"
            ))
            .into_iter()
            .map(|r| r[0].clone())
            .collect();
        tables.sort();
        tables
    }

    fn compiled(&self, model: &str) -> String {
        std::fs::read_to_string(
            self.path()
                .join(format!("target/compiled/pr_checks/models/{model}.sql")),
        )
        .expect("compiled SQL")
    }
}

/// A PR build: after a production build into schema `prod`, `build --select state:modified+
/// --defer --state prod-artifacts` on target `ci` builds only the changed model and what
/// reads it; its ref to the unchanged `orders` reads production's table, which the compiled
/// SQL names and the built rows come from. Once `ci` has its own `orders`, that one is read,
/// unless `--favor-state` asks for production's.
fn a_pr_build_defers_unchanged_parents_to_production(kind: crate::warehouse::Kind) {
    let Some(prod) = Production::build(kind) else {
        return;
    };
    replace(
        &prod.path().join("models/summary.sql"),
        "from {{ ref('orders') }}",
        "from {{ ref('orders') }} where amount > 1",
    );
    let ci = strata_env(
        prod.path(),
        &[
            "build",
            "--select",
            "state:modified+",
            "--defer",
            "--state",
            "prod-artifacts",
            "--target",
            "ci",
        ],
        &[],
    );
    assert_eq!(ci.code, 0, "{}", ci.stderr);
    assert!(
        ci.stderr.contains("finished 2 nodes"),
        "only summary and its test run: {}",
        ci.stderr
    );
    assert_eq!(prod.tables("ci"), ["order_summary"]);
    let compiled = prod.compiled("summary");
    assert!(compiled.contains("\"prod\".\"orders\""), "{compiled}");
    // Production has orders of 12.50, 0.99 and 400.00: two above 1.
    assert_eq!(
        prod.query("select orders, cast(revenue * 100 as integer) from ci.order_summary"),
        [["2", "41250"]]
    );

    // `ci` gets its own orders, from a seed with one more order: the next PR build reads it.
    crate::pr_checks::append(&prod.path().join("seeds/raw_orders.csv"), "4,DE,500,c\n");
    let own = strata_env(
        prod.path(),
        &[
            "build",
            "--select",
            "raw_orders",
            "orders",
            "--target",
            "ci",
        ],
        &[],
    );
    assert_eq!(own.code, 0, "{}", own.stderr);
    let defer = |favor: bool| {
        let mut args = vec![
            "build",
            "--select",
            "summary",
            "--defer",
            "--state",
            "prod-artifacts",
            "--target",
            "ci",
        ];
        if favor {
            args.push("--favor-state");
        }
        let run = strata_env(prod.path(), &args, &[]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        prod.compiled("summary")
    };
    assert!(defer(false).contains("\"ci\".\"orders\""));
    assert_eq!(prod.query("select orders from ci.order_summary"), [["3"]]);
    assert!(defer(true).contains("\"prod\".\"orders\""));
    assert_eq!(prod.query("select orders from ci.order_summary"), [["2"]]);
}

crate::on_every_warehouse!(a_pr_build_defers_unchanged_parents_to_production);

/// `strata retry` after a build with one failing model and two skipped descendants reruns
/// exactly those three, with the build's own flags (`--vars`); `result:` selects them by
/// status from the run's results.
#[test]
fn retry_reruns_exactly_what_failed_or_was_skipped() {
    let dir = crate::common::project(&[
        ("project.yml", "name: retried\nmodels:\n  retried:\n    +materialized: table\n"),
        ("models/a.sql", "select 1 as x\n"),
        (
            "models/b.sql",
            "select x, {{ var('divisor') }} as d, 10 / {{ var('divisor') }} as q from {{ ref('a') }}{% if env_var('B_BREAKS', '0') != '0' %} join no_such_table on true{% endif %}\n",
        ),
        ("models/c.sql", "select * from {{ ref('b') }}\n"),
        ("models/d.sql", "select * from {{ ref('c') }}\n"),
        ("models/e.sql", "select 2 as y\n"),
    ]);
    let first = strata_env(
        dir.path(),
        &["build", "--vars", "{divisor: 5}"],
        &[("B_BREAKS", "1")],
    );
    assert_eq!(first.code, 1, "{}", first.stderr);
    assert!(first.stderr.contains("ERROR=1 SKIP=2"), "{}", first.stderr);

    let by_result = |status: &str| {
        let run = strata_env(
            dir.path(),
            &[
                "ls",
                "--select",
                &format!("result:{status}"),
                "--state",
                "target",
                "--output",
                "name",
                "--vars",
                "{divisor: 5}",
            ],
            &[],
        );
        assert_eq!(run.code, 0, "{}", run.stderr);
        run.stdout.lines().map(str::to_string).collect::<Vec<_>>()
    };
    assert_eq!(by_result("error"), ["b"]);
    assert_eq!(by_result("skipped"), ["c", "d"]);
    assert_eq!(by_result("success"), ["a", "e"]);

    // The cause is gone: retry runs b, c and d, and nothing else, with `--vars` as given.
    let retried = strata_env(dir.path(), &["retry"], &[]);
    assert_eq!(retried.code, 0, "{}", retried.stderr);
    let started: Vec<&str> = retried
        .stderr
        .lines()
        .filter(|l| l.contains(" START "))
        .collect();
    assert_eq!(started.len(), 3, "{}", retried.stderr);
    for model in ["main.b ", "main.c ", "main.d "] {
        assert!(
            started.iter().any(|l| l.contains(model)),
            "{model} not rerun: {}",
            retried.stderr
        );
    }
    let db = dir.path().join("target/retried.duckdb");
    assert_eq!(
        crate::common::query(&db, "select d, cast(q as integer) from main.d"),
        [["5", "2"]]
    );
    let again = strata_env(dir.path(), &["retry"], &[]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(
        again.stderr.contains("nothing to retry"),
        "{}",
        again.stderr
    );
}

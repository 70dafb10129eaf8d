//! `strata init NAME`: writes a small project into a new folder that builds and tests at once
//! on embedded DuckDB (a seed, a staging view, a table, tests), so a newcomer sees every step
//! work before pointing strata at a warehouse. Never writes into a folder that has files.

use std::path::Path;

use super::args::InitArgs;
use super::settings::Settings;
use super::{EXIT_FAILURE, EXIT_OK};
use crate::diagnostic::Diagnostic;

fn files(name: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "project.yml",
            format!(
                "name: {name}\nversion: \"1.0.0\"\n\n# No `targets:` and no profiles.yml: strata builds into an embedded DuckDB file\n# under target/. Add a `targets:` block (or a dbt profiles.yml) for a warehouse.\n\nmodels:\n  {name}:\n    staging:\n      +materialized: view\n      +tags: [staging]\n    marts:\n      +materialized: table\n      +tags: [marts]\n"
            ),
        ),
        (
            "seeds/raw_orders.csv",
            "order_id,customer,ordered_at,status,amount\n1,ann,2024-01-01,shipped,10.50\n2,bob,2024-01-01,placed,4.00\n3,ann,2024-01-02,shipped,7.25\n4,cy,2024-01-03,returned,12.00\n".into(),
        ),
        (
            "models/staging/stg_orders.sql",
            "select\n    order_id,\n    lower(trim(customer)) as customer,\n    cast(ordered_at as date) as order_date,\n    status,\n    amount\nfrom {{ ref('raw_orders') }}\n".into(),
        ),
        (
            "models/marts/daily_sales.sql",
            "select\n    order_date,\n    count(*) as orders,\n    sum(amount) as revenue\nfrom {{ ref('stg_orders') }}\nwhere status != 'returned'\ngroup by order_date\n".into(),
        ),
        (
            "models/schema.yml",
            "version: 2\n\nmodels:\n  - name: stg_orders\n    description: One row per order, cleaned.\n    columns:\n      - name: order_id\n        data_tests: [unique, not_null]\n      - name: status\n        data_tests:\n          - accepted_values:\n              values: [placed, shipped, returned]\n  - name: daily_sales\n    description: Revenue per day, returns excluded.\n    columns:\n      - name: order_date\n        data_tests: [unique, not_null]\n".into(),
        ),
        ("macros/.gitkeep", String::new()),
        ("tests/.gitkeep", String::new()),
        ("snapshots/.gitkeep", String::new()),
        (".gitignore", "target/\n".into()),
    ]
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

pub fn run(settings: &Settings, args: &InitArgs) -> anyhow::Result<u8> {
    let printer = &settings.printer;
    let name = args.name.as_str();
    if !valid_name(name) {
        printer.diagnostic(
            &Diagnostic::error(format!("`{name}` is not a valid project name"))
                .with_hint("use lowercase letters, digits and underscores, starting with a letter, e.g. `shop_analytics`"),
        );
        return Ok(EXIT_FAILURE);
    }
    let root = settings.load.project_dir.join(name);
    let occupied = std::fs::read_dir(&root)
        .map(|mut entries| entries.next().is_some())
        .unwrap_or(false);
    if occupied || root.is_file() {
        printer.diagnostic(
            &Diagnostic::error(format!(
                "`{}` already exists and is not empty",
                root.display()
            ))
            .with_hint("pick another name, or remove the folder first"),
        );
        return Ok(EXIT_FAILURE);
    }
    for (path, contents) in files(name) {
        let full = root.join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&full, contents)?;
    }
    printer.info(&format!(
        "created project `{name}` in {}\n\nnext:\n  cd {}\n  strata build      # seeds, models and tests on embedded DuckDB\n  strata show --select daily_sales",
        root.display(),
        Path::new(name).display()
    ));
    Ok(EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_names_are_identifiers() {
        assert!(valid_name("shop_2"));
        assert!(!valid_name("2shop"));
        assert!(!valid_name("Shop"));
        assert!(!valid_name("../x"));
        assert!(!valid_name(""));
    }
}

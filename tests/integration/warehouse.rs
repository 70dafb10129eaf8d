//! A project in a temp folder plus the warehouse it builds into — embedded DuckDB or a fresh
//! database on the real PostgreSQL server — so each scenario is written once for both. `{s}` in
//! SQL and project files stands for the target schema (`main` on DuckDB, `analytics` on
//! PostgreSQL).

use std::path::Path;

use crate::common::{project, query, strata};
use crate::postgres::Database;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Duckdb,
    Postgres,
}

/// A project in a temp folder plus the warehouse it builds into.
pub struct Warehouse {
    dir: tempfile::TempDir,
    database: Option<Database>,
    schema: &'static str,
}

impl Warehouse {
    /// `None` when PostgreSQL is not reachable outside CI (the reason is printed).
    pub fn new(
        kind: Kind,
        key: &str,
        project_yml: &str,
        files: &[(&str, &str)],
    ) -> Option<Warehouse> {
        let (database, schema) = match kind {
            Kind::Duckdb => (None, "main"),
            Kind::Postgres => (Some(Database::create(key)?), "analytics"),
        };
        let fill = |text: &str| text.replace("{s}", schema);
        let mut all: Vec<(String, String)> = files
            .iter()
            .map(|(path, contents)| (path.to_string(), fill(contents)))
            .collect();
        let mut project_file = fill(project_yml);
        if let Some(db) = &database {
            project_file = format!("profile: shop\n{project_file}");
            all.push(("profiles.yml".into(), db.profile()));
        }
        all.push(("project.yml".into(), project_file));
        let borrowed: Vec<(&str, &str)> =
            all.iter().map(|(p, c)| (p.as_str(), c.as_str())).collect();
        Some(Warehouse {
            dir: project(&borrowed),
            database,
            schema,
        })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn query(&self, sql: &str) -> Vec<Vec<String>> {
        let sql = sql.replace("{s}", self.schema);
        match &self.database {
            Some(db) => {
                let text = db.query(&sql);
                if text.is_empty() {
                    return Vec::new();
                }
                text.lines()
                    .map(|l| l.split('|').map(str::to_string).collect())
                    .collect()
            }
            None => query(&self.path().join("target/shop.duckdb"), &sql),
        }
    }

    /// Runs a statement that returns no rows (DDL, DML).
    pub fn execute(&self, sql: &str) {
        let sql = sql.replace("{s}", self.schema);
        match &self.database {
            Some(db) => {
                db.query(&sql);
            }
            None => duckdb::Connection::open(self.path().join("target/shop.duckdb"))
                .and_then(|c| c.execute_batch(&sql))
                .unwrap_or_else(|e| panic!("{sql}: {e}")),
        }
    }

    /// Runs `strata ARGS` in the project.
    pub fn run(&self, args: &[&str]) -> crate::common::Run {
        strata(self.path(), args)
    }

    pub fn build_ok(&self, args: &[&str]) -> String {
        let mut all = vec!["build"];
        all.extend_from_slice(args);
        let run = strata(self.path(), &all);
        assert_eq!(run.code, 0, "{}", run.stderr);
        run.stderr
    }

    pub fn write(&self, path: &str, contents: &str) {
        let full = self.path().join(path);
        std::fs::create_dir_all(full.parent().expect("parent")).expect("create dir");
        std::fs::write(full, contents.replace("{s}", self.schema)).expect("write file");
    }

    pub fn columns(&self, table: &str) -> Vec<String> {
        self.query(&format!(
            "select column_name from information_schema.columns where table_schema = '{{s}}' and table_name = '{table}' order by ordinal_position"
        ))
        .into_iter()
        .map(|r| r[0].clone())
        .collect()
    }
}

pub fn rows(data: &[&[&str]]) -> Vec<Vec<String>> {
    data.iter()
        .map(|r| r.iter().map(|v| v.to_string()).collect())
        .collect()
}

/// Runs each named scenario `fn name(kind: Kind)` once per warehouse, as `duckdb::name` and
/// `postgres::name`.
#[macro_export]
macro_rules! on_every_warehouse {
    ($($name:ident),* $(,)?) => {
        mod duckdb {
            $(#[test] fn $name() { super::$name($crate::warehouse::Kind::Duckdb) })*
        }
        mod postgres {
            $(#[test] fn $name() { super::$name($crate::warehouse::Kind::Postgres) })*
        }
    };
}

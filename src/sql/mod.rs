//! SQL checks on compiled models with sqlparser: syntax in the target's dialect (the
//! warehouse's flavour says which), and the
//! relations a query reads, for lineage and for "hard-coded table" warnings.
//!
//! This room only reads SQL; it never rewrites what users wrote.

use std::collections::HashSet;
use std::ops::ControlFlow;

use sqlparser::ast::{ObjectName, ObjectNamePart, Query, TableFactor, Visit, Visitor};
use sqlparser::dialect::Dialect;
use sqlparser::parser::Parser;

/// A syntax error in compiled SQL, at a 1-based line and column of the compiled text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SqlSyntaxError {
    pub message: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
}

/// What a query reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SqlFacts {
    /// Relations read, as written (unquoted, dotted), excluding CTEs and table functions.
    pub relations: Vec<String>,
    pub statements: usize,
}

/// Parses `sql` and collects the relations it reads.
pub fn analyze(sql: &str, dialect: &dyn Dialect) -> Result<SqlFacts, SqlSyntaxError> {
    let statements = Parser::parse_sql(dialect, sql).map_err(|err| {
        let text = err.to_string();
        let text = text
            .strip_prefix("sql parser error: ")
            .unwrap_or(&text)
            .to_string();
        let (mut line, mut column) = location_of(&text);
        if line.is_none() && text.ends_with("found: EOF") {
            // The parser ran out of input: point at the end of the last line with text.
            if let Some((index, last)) = sql
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
                .last()
            {
                line = Some(index + 1);
                column = Some(last.trim_end().chars().count() + 1);
            }
        }
        let message = match text.find(" at Line: ") {
            Some(at) => text[..at].to_string(),
            None => text,
        };
        SqlSyntaxError {
            message,
            line,
            column,
        }
    })?;
    let mut collector = RelationCollector::default();
    for statement in &statements {
        let _ = statement.visit(&mut collector);
    }
    let mut relations: Vec<String> = collector
        .relations
        .into_iter()
        .filter(|r| !collector.ctes.contains(&r.to_lowercase()) && !collector.functions.contains(r))
        .collect();
    let mut seen = HashSet::new();
    relations.retain(|r| seen.insert(r.clone()));
    Ok(SqlFacts {
        relations,
        statements: statements.len(),
    })
}

fn location_of(text: &str) -> (Option<usize>, Option<usize>) {
    let number_after = |key: &str| -> Option<usize> {
        let start = text.find(key)? + key.len();
        text[start..]
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect::<String>()
            .parse()
            .ok()
    };
    (number_after("Line: "), number_after("Column: "))
}

fn dotted(name: &ObjectName) -> String {
    name.0
        .iter()
        .map(|part| match part {
            ObjectNamePart::Identifier(ident) => ident.value.clone(),
            ObjectNamePart::Function(f) => f.name.value.clone(),
        })
        .collect::<Vec<_>>()
        .join(".")
}

#[derive(Default)]
struct RelationCollector {
    relations: Vec<String>,
    ctes: HashSet<String>,
    functions: HashSet<String>,
}

impl Visitor for RelationCollector {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        if let Some(with) = &query.with {
            for cte in &with.cte_tables {
                self.ctes.insert(cte.alias.name.value.to_lowercase());
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table {
            name,
            args: Some(_),
            ..
        } = factor
        {
            self.functions.insert(dotted(name));
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<()> {
        self.relations.push(dotted(relation));
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::dialect::DuckDbDialect;

    #[test]
    fn collects_relations_but_not_ctes_or_functions() {
        let facts = analyze(
            "with a as (select * from \"db\".\"main\".\"orders\") select * from a join raw.customers c on true, generate_series(1, 3) as g(n)",
            &DuckDbDialect {},
        )
        .unwrap();
        assert_eq!(
            facts.relations,
            vec!["db.main.orders".to_string(), "raw.customers".to_string()]
        );
    }

    #[test]
    fn syntax_errors_carry_line_and_column() {
        let err = analyze("select (1\nfrom x", &DuckDbDialect {}).unwrap_err();
        assert_eq!(err.line, Some(2));
        assert!(err.column.is_some());
        assert!(!err.message.contains("Line:"), "{}", err.message);
        let err = analyze("select 1\nfrom x where\n\n", &DuckDbDialect {}).unwrap_err();
        assert_eq!((err.line, err.column), (Some(2), Some(13)));
    }
}

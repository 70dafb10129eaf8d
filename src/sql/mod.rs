//! SQL checks on compiled models with sqlparser: syntax in the target's dialect (the
//! warehouse's flavour says which), and the
//! relations a query reads, for lineage and for "hard-coded table" warnings.
//!
//! This room only reads SQL; it never rewrites what users wrote: [`split_statements`] cuts a
//! script at its semicolons and keeps each statement's text as written.

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
    analyze_keeping(sql, dialect).map(|(facts, _)| facts)
}

/// [`analyze`], also giving the parsed statements.
pub fn analyze_keeping(
    sql: &str,
    dialect: &dyn Dialect,
) -> Result<(SqlFacts, Vec<sqlparser::ast::Statement>), SqlSyntaxError> {
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
    Ok((
        SqlFacts {
            relations,
            statements: statements.len(),
        },
        statements,
    ))
}

/// The statements of a script, cut at the semicolons outside strings, quoted identifiers,
/// dollar-quoted bodies and comments, each trimmed; pieces holding only comments or blanks
/// are dropped (a warehouse would refuse to run them).
pub fn split_statements(script: &str) -> Vec<String> {
    let bytes = script.as_bytes();
    let mut statements = Vec::new();
    let mut start = 0;
    let mut code = false;
    let mut i = 0;
    let push = |from: usize, to: usize, code: bool, out: &mut Vec<String>| {
        let text = script[from..to].trim();
        if code && !text.is_empty() {
            out.push(text.to_string());
        }
    };
    while i < bytes.len() {
        match bytes[i] {
            quote @ (b'\'' | b'"' | b'`') => {
                code = true;
                i += 1;
                while i < bytes.len() {
                    if bytes[i] == quote {
                        // A doubled quote is one quote character inside.
                        if bytes.get(i + 1) == Some(&quote) {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < bytes.len() && !(bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/')) {
                    i += 1;
                }
                i += 2;
            }
            b'$' => {
                code = true;
                // `$tag$ … $tag$` (PostgreSQL's function bodies); a lone `$1` is a parameter.
                let tag_end = script[i + 1..]
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .map(|n| i + 1 + n);
                match tag_end {
                    Some(end)
                        if bytes[end] == b'$'
                            && !script[i + 1..end].starts_with(|c: char| c.is_ascii_digit()) =>
                    {
                        let tag = &script[i..=end];
                        match script[end + 1..].find(tag) {
                            Some(close) => i = end + 1 + close + tag.len(),
                            None => i = bytes.len(),
                        }
                    }
                    _ => i += 1,
                }
            }
            b';' => {
                push(start, i, code, &mut statements);
                start = i + 1;
                code = false;
                i += 1;
            }
            c => {
                code |= !c.is_ascii_whitespace();
                i += 1;
            }
        }
    }
    push(start, bytes.len().min(script.len()), code, &mut statements);
    statements
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
    fn scripts_split_at_semicolons_outside_strings_comments_and_bodies() {
        let script = "delete from t where a = 'x;y' and \"we;ird\" = 1 -- gone; still comment\n;\n\
                      insert into t /* a; b */ select 1;\n\
                      create function f() returns int as $body$ select 1; $body$ language sql;\n\
                      select $1, 'it''s; fine';\n-- only a comment;\n  ;";
        assert_eq!(
            split_statements(script),
            vec![
                "delete from t where a = 'x;y' and \"we;ird\" = 1 -- gone; still comment",
                "insert into t /* a; b */ select 1",
                "create function f() returns int as $body$ select 1; $body$ language sql",
                "select $1, 'it''s; fine'",
            ]
        );
        assert_eq!(split_statements("select 1"), vec!["select 1"]);
        assert!(split_statements("  -- nothing\n /* at all */ ").is_empty());
    }

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

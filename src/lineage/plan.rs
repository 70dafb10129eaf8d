//! A query reduced to what column lineage reads: CTEs, set operations, FROM items and joins,
//! and for each select item the column references and subqueries of its expression. Built
//! from sqlparser's syntax tree where the SQL check parses it, so the tree (tens of KB per
//! model) is dropped at once and only this (names) is kept until the lineage is traced.

use std::ops::ControlFlow;

use sqlparser::ast::{
    ExcludeSelectItem, Ident, JoinConstraint, JoinOperator, ObjectName, ObjectNamePart, SelectItem,
    SelectItemQualifiedWildcardKind, SetExpr, Statement, TableAlias, TableFactor, TableWithJoins,
    Visit, Visitor, WildcardAdditionalOptions,
};

use super::LineageError;

/// The lineage plan of a model's SQL: its last SELECT.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan(pub(super) Query);

impl Plan {
    /// The plan of the last query among `statements`.
    pub fn of(statements: &[Statement]) -> Result<Plan, LineageError> {
        statements
            .iter()
            .rev()
            .find_map(|s| match s {
                Statement::Query(q) => Some(Plan(Query::of(q))),
                _ => None,
            })
            .ok_or_else(|| LineageError("the SQL has no SELECT".into()))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Query {
    pub ctes: Vec<Cte>,
    pub body: Body,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Cte {
    /// Lowercased.
    pub name: String,
    /// `cte (a, b) as (…)`: the names its columns take.
    pub columns: Vec<String>,
    pub query: Query,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Body {
    Select(Box<Select>),
    Query(Box<Query>),
    SetOperation(Box<Body>, Box<Body>),
    /// Literal rows, this many columns wide.
    Values(usize),
    /// `table t`.
    Table(Vec<String>),
    /// Something else where a query was expected; its first word.
    Other(String),
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Select {
    pub from: Vec<From>,
    pub items: Vec<Item>,
    /// DuckDB's `select * exclude (…)` at the select level.
    pub exclude: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct From {
    pub relation: Factor,
    pub joins: Vec<Join>,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Join {
    pub relation: Factor,
    /// `using (c, …)`: the columns it merges.
    pub using: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Factor {
    /// A name, or a table function (`generate_series(…)`) when `function`.
    Table {
        parts: Vec<String>,
        function: bool,
        alias: Option<Alias>,
    },
    Derived {
        query: Box<Query>,
        alias: Option<Alias>,
    },
    /// A parenthesized join, as one relation when aliased.
    Nested {
        inner: Box<From>,
        alias: Option<String>,
    },
    /// Another table expression: its alias and its text, shortened.
    Other { alias: String, text: String },
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Alias {
    pub name: String,
    pub columns: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Item {
    /// An expression and the names it is returned as (one, or several with `as (a, b)`).
    Expr {
        expr: Expr,
        names: Vec<String>,
    },
    Wildcard(Star),
    /// `t.*`.
    Qualified {
        name: Vec<String>,
        star: Star,
    },
}

/// `* exclude (…)`, `* except (…)`, `* replace (… as c)`.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Star {
    pub exclude: Option<Vec<String>>,
    pub except: Option<Vec<String>>,
    pub replace: Vec<(String, Expr)>,
}

/// What an expression reads: its column references outside any subquery (`c`, `t.c`), and
/// its subqueries.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Expr {
    pub columns: Vec<Vec<String>>,
    pub subqueries: Vec<Query>,
}

impl Query {
    fn of(query: &sqlparser::ast::Query) -> Query {
        let ctes = query
            .with
            .iter()
            .flat_map(|with| &with.cte_tables)
            .map(|cte| Cte {
                name: cte.alias.name.value.to_ascii_lowercase(),
                columns: cte.alias.columns.iter().map(|c| ident(&c.name)).collect(),
                query: Query::of(&cte.query),
            })
            .collect();
        Query {
            ctes,
            body: Body::of(&query.body),
        }
    }
}

impl Body {
    fn of(body: &SetExpr) -> Body {
        match body {
            SetExpr::Select(select) => Body::Select(Box::new(Select::of(select))),
            SetExpr::Query(q) => Body::Query(Box::new(Query::of(q))),
            SetExpr::SetOperation { left, right, .. } => {
                Body::SetOperation(Box::new(Body::of(left)), Box::new(Body::of(right)))
            }
            SetExpr::Values(values) => {
                Body::Values(values.rows.first().map_or(0, |row| row.content.len()))
            }
            SetExpr::Table(table) => Body::Table(
                table
                    .schema_name
                    .iter()
                    .chain(table.table_name.iter())
                    .cloned()
                    .collect(),
            ),
            other => Body::Other(
                other
                    .to_string()
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_ascii_uppercase(),
            ),
        }
    }
}

impl Select {
    fn of(select: &sqlparser::ast::Select) -> Select {
        let items = select
            .projection
            .iter()
            .map(|item| match item {
                SelectItem::UnnamedExpr(expr) => Item::Expr {
                    expr: Expr::of(expr),
                    names: vec![output_name(expr)],
                },
                SelectItem::ExprWithAlias { expr, alias } => Item::Expr {
                    expr: Expr::of(expr),
                    names: vec![ident(alias)],
                },
                SelectItem::ExprWithAliases { expr, aliases } => Item::Expr {
                    expr: Expr::of(expr),
                    names: aliases.iter().map(ident).collect(),
                },
                SelectItem::Wildcard(options) => Item::Wildcard(Star::of(options)),
                SelectItem::QualifiedWildcard(kind, options) => Item::Qualified {
                    name: match kind {
                        SelectItemQualifiedWildcardKind::ObjectName(name) => parts(name),
                        SelectItemQualifiedWildcardKind::Expr(expr) => vec![expr.to_string()],
                    },
                    star: Star::of(options),
                },
            })
            .collect();
        Select {
            from: select.from.iter().map(From::of).collect(),
            items,
            exclude: select.exclude.as_ref().map(excluded),
        }
    }
}

impl From {
    fn of(table: &TableWithJoins) -> From {
        From {
            relation: Factor::of(&table.relation),
            joins: table
                .joins
                .iter()
                .map(|join| Join {
                    relation: Factor::of(&join.relation),
                    using: match join_constraint(&join.join_operator) {
                        Some(JoinConstraint::Using(columns)) => columns
                            .iter()
                            .filter_map(|c| parts(c).last().cloned())
                            .collect(),
                        _ => Vec::new(),
                    },
                })
                .collect(),
        }
    }
}

impl Factor {
    fn of(factor: &TableFactor) -> Factor {
        let alias_of = |alias: &Option<TableAlias>| {
            alias.as_ref().map(|a| Alias {
                name: a.name.value.clone(),
                columns: a.columns.iter().map(|c| ident(&c.name)).collect(),
            })
        };
        match factor {
            TableFactor::Table {
                name, alias, args, ..
            } => Factor::Table {
                parts: parts(name),
                function: args.is_some(),
                alias: alias_of(alias),
            },
            TableFactor::Derived {
                subquery, alias, ..
            } => Factor::Derived {
                query: Box::new(Query::of(subquery)),
                alias: alias_of(alias),
            },
            TableFactor::NestedJoin {
                table_with_joins,
                alias,
            } => Factor::Nested {
                inner: Box::new(From::of(table_with_joins)),
                alias: alias.as_ref().map(|a| a.name.value.clone()),
            },
            other => Factor::Other {
                alias: table_alias(other).unwrap_or_default(),
                text: shorten(&other.to_string()),
            },
        }
    }
}

impl Star {
    fn of(options: &WildcardAdditionalOptions) -> Star {
        Star {
            exclude: options.opt_exclude.as_ref().map(excluded),
            except: options.opt_except.as_ref().map(|except| {
                std::iter::once(&except.first_element)
                    .chain(&except.additional_elements)
                    .map(ident)
                    .collect()
            }),
            replace: options
                .opt_replace
                .iter()
                .flat_map(|replace| &replace.items)
                .map(|element| (ident(&element.column_name), Expr::of(&element.expr)))
                .collect(),
        }
    }
}

impl Expr {
    fn of(expr: &sqlparser::ast::Expr) -> Expr {
        let mut collector = References::default();
        let _ = expr.visit(&mut collector);
        collector.found
    }
}

fn ident(i: &Ident) -> String {
    i.value.clone()
}

fn parts(name: &ObjectName) -> Vec<String> {
    name.0
        .iter()
        .map(|p| match p {
            ObjectNamePart::Identifier(i) => ident(i),
            other => other.to_string(),
        })
        .collect()
}

/// The constraint of the joins that have one (`on`, `using`, `natural`).
fn join_constraint(operator: &JoinOperator) -> Option<&JoinConstraint> {
    match operator {
        JoinOperator::Join(c)
        | JoinOperator::Inner(c)
        | JoinOperator::Left(c)
        | JoinOperator::LeftOuter(c)
        | JoinOperator::Right(c)
        | JoinOperator::RightOuter(c)
        | JoinOperator::FullOuter(c) => Some(c),
        _ => None,
    }
}

fn excluded(exclude: &ExcludeSelectItem) -> Vec<String> {
    match exclude {
        ExcludeSelectItem::Single(name) => parts(name).last().cloned().into_iter().collect(),
        ExcludeSelectItem::Multiple(names) => names
            .iter()
            .filter_map(|n| parts(n).last().cloned())
            .collect(),
    }
}

/// The name the warehouse gives an unaliased select item: a column's own name, else the
/// expression's text (engines differ; the docs show it as written).
fn output_name(expr: &sqlparser::ast::Expr) -> String {
    use sqlparser::ast::Expr as E;
    match expr {
        E::Identifier(i) => ident(i),
        E::CompoundIdentifier(parts) => parts.last().map(ident).unwrap_or_default(),
        E::Nested(inner) => output_name(inner),
        other => other.to_string(),
    }
}

fn table_alias(factor: &TableFactor) -> Option<String> {
    match factor {
        TableFactor::Function { alias, .. }
        | TableFactor::TableFunction { alias, .. }
        | TableFactor::UNNEST { alias, .. }
        | TableFactor::JsonTable { alias, .. } => alias.as_ref().map(|a| a.name.value.clone()),
        _ => None,
    }
}

fn shorten(text: &str) -> String {
    let mut out: String = text.chars().take(60).collect();
    if text.chars().count() > 60 {
        out.push('…');
    }
    out
}

/// Collects an expression's column references outside any subquery, and its subqueries'
/// plans.
#[derive(Default)]
struct References {
    found: Expr,
    /// Queries entered: references inside them belong to them.
    depth: usize,
}

impl Visitor for References {
    type Break = ();

    fn pre_visit_query(&mut self, query: &sqlparser::ast::Query) -> ControlFlow<()> {
        if self.depth == 0 {
            self.found.subqueries.push(Query::of(query));
        }
        self.depth += 1;
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _query: &sqlparser::ast::Query) -> ControlFlow<()> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &sqlparser::ast::Expr) -> ControlFlow<()> {
        use sqlparser::ast::Expr as E;
        if self.depth > 0 {
            return ControlFlow::Continue(());
        }
        match expr {
            E::Identifier(i) if i.quote_style.is_some() || !is_keyword_value(&i.value) => {
                self.found.columns.push(vec![ident(i)]);
            }
            E::CompoundIdentifier(parts) => {
                self.found.columns.push(parts.iter().map(ident).collect());
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

/// Bare words sqlparser reads as identifiers that are values (`current_date` in some
/// dialects), not columns.
fn is_keyword_value(word: &str) -> bool {
    [
        "current_date",
        "current_timestamp",
        "current_time",
        "localtime",
        "localtimestamp",
        "current_user",
        "session_user",
        "user",
    ]
    .iter()
    .any(|k| k.eq_ignore_ascii_case(word))
}

//! Column lineage: for each column a model's SELECT returns, the columns of the nodes it reads
//! that the column is computed from — through CTEs, subqueries, joins, aggregates, set
//! operations and `select *` (expanded from the columns the inputs are known to have) — read
//! from the SQL with sqlparser. Where a column cannot be traced (a table function, a star over
//! an input whose columns are unknown, an ambiguous name) it says so, per column, rather than
//! guess.

mod plan;

use std::collections::{BTreeSet, HashMap};

use sqlparser::dialect::Dialect;

use crate::manifest::NodeId;
pub use plan::Plan;
use plan::{Body, Factor, Item, Query, Select, Star};

/// How far a column was traced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Trace {
    /// Every input column it is computed from is known.
    Traced,
    /// Some are known; a part of the expression reads something that could not be followed.
    Partial,
    /// Nothing could be followed.
    Untraced,
}

/// One output column and where it comes from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ColumnLineage {
    pub column: String,
    pub status: Trace,
    /// Why the trace is partial or missing.
    pub note: Option<String>,
    /// `(node, column)` of the direct inputs it is computed from, sorted.
    pub upstream: Vec<(NodeId, String)>,
}

/// What the SQL's relation names stand for.
pub trait Inputs {
    /// The node a relation name (its parts as written, unquoted) names, if any.
    fn node(&self, parts: &[String]) -> Option<NodeId>;
    /// The columns of `node`, in order, when known (for `select *`).
    fn columns(&self, node: &NodeId) -> Option<Vec<String>>;
}

/// Why a model's SQL could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LineageError(pub String);

/// The lineage of each column the last SELECT of `sql` returns.
pub fn lineage(
    sql: &str,
    dialect: &dyn Dialect,
    inputs: &dyn Inputs,
) -> Result<Vec<ColumnLineage>, LineageError> {
    let statements = sqlparser::parser::Parser::parse_sql(dialect, sql)
        .map_err(|e| LineageError(format!("the SQL does not parse: {e}")))?;
    Ok(Plan::of(&statements)?.trace(inputs))
}

impl Plan {
    /// The lineage of each column the query returns, its inputs read through `inputs`.
    pub fn trace(&self, inputs: &dyn Inputs) -> Vec<ColumnLineage> {
        let tracer = Tracer { inputs };
        let shape = tracer.query(&self.0, &Ctes::default());
        shape
            .columns
            .into_iter()
            .map(|c| {
                let upstream: Vec<(NodeId, String)> = c.upstream.into_iter().collect();
                let status = match (&c.unknown, upstream.is_empty()) {
                    (None, _) => Trace::Traced,
                    (Some(_), false) => Trace::Partial,
                    (Some(_), true) => Trace::Untraced,
                };
                ColumnLineage {
                    column: c.name,
                    status,
                    note: c.unknown,
                    upstream,
                }
            })
            .collect()
    }
}

/// A column of a relation in the query, as far as it was followed.
#[derive(Debug, Clone, Default)]
struct Col {
    name: String,
    upstream: BTreeSet<(NodeId, String)>,
    /// What could not be followed.
    unknown: Option<String>,
}

impl Col {
    fn absorb(&mut self, other: &Col) {
        self.upstream.extend(other.upstream.iter().cloned());
        if self.unknown.is_none() {
            self.unknown.clone_from(&other.unknown);
        }
    }

    fn unknown(&mut self, why: String) {
        if self.unknown.is_none() {
            self.unknown = Some(why);
        }
    }
}

/// A relation the query reads: a node, or a derived table with its columns followed.
#[derive(Debug, Clone)]
enum Shape {
    Node {
        id: NodeId,
        columns: Option<Vec<String>>,
    },
    Derived(Derived),
    /// Read by a table function or a name strata does not know.
    Opaque(String),
}

#[derive(Debug, Clone, Default)]
struct Derived {
    columns: Vec<Col>,
}

impl Shape {
    /// The column `name` of this relation, if it has it (`None`: it does not; a node whose
    /// columns are unknown is taken to have it).
    fn column(&self, name: &str) -> Option<Col> {
        match self {
            Shape::Node { id, columns } => {
                let found = match columns {
                    Some(list) => list.iter().find(|c| same(c, name))?.clone(),
                    None => name.to_string(),
                };
                let mut col = Col {
                    name: found.clone(),
                    ..Col::default()
                };
                col.upstream.insert((id.clone(), found));
                Some(col)
            }
            Shape::Derived(d) => d.columns.iter().find(|c| same(&c.name, name)).cloned(),
            Shape::Opaque(why) => Some(Col {
                name: name.to_string(),
                upstream: BTreeSet::new(),
                unknown: Some(format!("read from a relation that {why}")),
            }),
        }
    }

    /// Whether the relation surely has `name` (known columns only).
    fn surely_has(&self, name: &str) -> bool {
        match self {
            Shape::Node {
                columns: Some(list),
                ..
            } => list.iter().any(|c| same(c, name)),
            Shape::Derived(d) => d.columns.iter().any(|c| same(&c.name, name)),
            _ => false,
        }
    }

    /// Every column, in order (for `*`); `Err` with the reason when they are unknown.
    fn all(&self) -> Result<Vec<Col>, String> {
        match self {
            Shape::Node {
                id,
                columns: Some(list),
            } => Ok(list
                .iter()
                .map(|c| {
                    let mut col = Col {
                        name: c.clone(),
                        ..Col::default()
                    };
                    col.upstream.insert((id.clone(), c.clone()));
                    col
                })
                .collect()),
            Shape::Node { id, columns: None } => Err(format!(
                "`*` over `{}`, whose columns are not known (build it, or document them)",
                id.0
            )),
            Shape::Derived(d) => Ok(d.columns.clone()),
            Shape::Opaque(why) => Err(format!("`*` over a relation that {why}")),
        }
    }
}

fn same(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// The CTEs in scope, by lowercased name.
#[derive(Debug, Clone, Default)]
struct Ctes(HashMap<String, Shape>);

/// The relations of one SELECT's FROM, by the names its expressions use.
struct Scope<'a> {
    bindings: Vec<(String, Shape)>,
    ctes: &'a Ctes,
    /// Columns a `join … using (c)` merged: a bare `c` is every joined side's `c`.
    merged: Vec<String>,
}

struct Tracer<'a> {
    inputs: &'a dyn Inputs,
}

impl Tracer<'_> {
    fn query(&self, query: &Query, outer: &Ctes) -> Derived {
        if query.ctes.is_empty() {
            return self.body(&query.body, outer);
        }
        let mut ctes = outer.clone();
        for cte in &query.ctes {
            let mut shape = self.query(&cte.query, &ctes);
            rename(&mut shape, &cte.columns);
            ctes.0.insert(cte.name.clone(), Shape::Derived(shape));
        }
        self.body(&query.body, &ctes)
    }

    fn body(&self, body: &Body, ctes: &Ctes) -> Derived {
        match body {
            Body::Select(select) => self.select(select, ctes),
            Body::Query(q) => self.query(q, ctes),
            Body::SetOperation(left, right) => {
                let mut left = self.body(left, ctes);
                let right = self.body(right, ctes);
                if left.columns.len() != right.columns.len() {
                    for col in &mut left.columns {
                        col.unknown("the branches of a set operation differ in width".into());
                    }
                }
                for (l, r) in left.columns.iter_mut().zip(&right.columns) {
                    l.absorb(r);
                }
                left
            }
            // Literal rows read nothing.
            Body::Values(width) => Derived {
                columns: (1..=*width)
                    .map(|n| Col {
                        name: format!("col{n}"),
                        ..Col::default()
                    })
                    .collect(),
            },
            Body::Table(name) => {
                let shape = self.relation(name, ctes);
                Derived {
                    columns: shape.all().unwrap_or_default(),
                }
            }
            Body::Other(word) => Derived {
                columns: vec![Col {
                    name: "?".into(),
                    upstream: BTreeSet::new(),
                    unknown: Some(format!("a `{word}` is not a query")),
                }],
            },
        }
    }

    /// A relation by name: a CTE, a node, or something unknown. An ephemeral model inlined as
    /// the CTE `__dbt__cte__<name>` is the node itself.
    fn relation(&self, name: &[String], ctes: &Ctes) -> Shape {
        let node_shape = |id: NodeId| {
            let columns = self.inputs.columns(&id);
            Shape::Node { id, columns }
        };
        if let [single] = name {
            if single.starts_with("__dbt__cte__") {
                if let Some(id) = self.inputs.node(name) {
                    return node_shape(id);
                }
            }
            if let Some(shape) = ctes.0.get(&single.to_ascii_lowercase()) {
                return shape.clone();
            }
        }
        match self.inputs.node(name) {
            Some(id) => node_shape(id),
            None => Shape::Opaque(format!("is no node of the project (`{}`)", name.join("."))),
        }
    }

    fn factor(&self, factor: &Factor, ctes: &Ctes, bindings: &mut Vec<(String, Shape)>) {
        match factor {
            Factor::Table {
                parts,
                function,
                alias,
            } => {
                let mut shape = if *function {
                    // `generate_series(…)`, `read_parquet(…)`: rows made by a function.
                    Shape::Opaque(format!(
                        "is made by the table function `{}(…)`",
                        parts.join(".")
                    ))
                } else {
                    self.relation(parts, ctes)
                };
                let binding = match alias {
                    Some(alias) => {
                        if let Shape::Derived(d) = &mut shape {
                            rename(d, &alias.columns);
                        }
                        alias.name.clone()
                    }
                    None => parts.last().cloned().unwrap_or_default(),
                };
                bindings.push((binding, shape));
            }
            Factor::Derived { query, alias } => {
                let mut derived = self.query(query, ctes);
                let binding = match alias {
                    Some(alias) => {
                        rename(&mut derived, &alias.columns);
                        alias.name.clone()
                    }
                    None => String::new(),
                };
                bindings.push((binding, Shape::Derived(derived)));
            }
            Factor::Nested { inner, alias } => {
                let mut joined = Vec::new();
                self.from(std::slice::from_ref(inner.as_ref()), ctes, &mut joined);
                match alias {
                    // A parenthesized join with an alias is one relation of all its columns.
                    Some(alias) => {
                        let mut columns = Vec::new();
                        for (_, shape) in &joined {
                            columns.extend(shape.all().unwrap_or_default());
                        }
                        bindings.push((alias.clone(), Shape::Derived(Derived { columns })));
                    }
                    None => bindings.extend(joined),
                }
            }
            Factor::Other { alias, text } => {
                bindings.push((
                    alias.clone(),
                    Shape::Opaque(format!("is made by a table expression (`{text}`)")),
                ));
            }
        }
    }

    fn from(
        &self,
        from: &[plan::From],
        ctes: &Ctes,
        bindings: &mut Vec<(String, Shape)>,
    ) -> Vec<String> {
        let mut merged = Vec::new();
        for table in from {
            self.factor(&table.relation, ctes, bindings);
            for join in &table.joins {
                self.factor(&join.relation, ctes, bindings);
                merged.extend(join.using.iter().cloned());
            }
        }
        merged
    }

    fn select(&self, select: &Select, ctes: &Ctes) -> Derived {
        let mut bindings = Vec::new();
        let merged = self.from(&select.from, ctes, &mut bindings);
        let scope = Scope {
            bindings,
            ctes,
            merged,
        };
        let mut columns: Vec<Col> = Vec::new();
        for item in &select.items {
            match item {
                Item::Expr { expr, names } => {
                    let col = self.expr(expr, &scope);
                    if let [name] = names.as_slice() {
                        columns.push(Col {
                            name: name.clone(),
                            ..col
                        });
                    } else {
                        for name in names {
                            columns.push(Col {
                                name: name.clone(),
                                ..col.clone()
                            });
                        }
                    }
                }
                Item::Wildcard(star) => {
                    let mut all: Vec<Col> = Vec::new();
                    for (_, shape) in &scope.bindings {
                        match shape.all() {
                            Ok(cols) => {
                                for col in cols {
                                    // A column `using` merged appears once.
                                    let merged = scope.merged.iter().any(|m| same(m, &col.name));
                                    match all
                                        .iter_mut()
                                        .find(|c| merged && same(&c.name, &col.name))
                                    {
                                        Some(first) => first.absorb(&col),
                                        None => all.push(col),
                                    }
                                }
                            }
                            Err(why) => all.push(star_unknown(why)),
                        }
                    }
                    columns.extend(self.star_options(all, star, &scope));
                }
                Item::Qualified { name, star } => {
                    let all = match scope.binding(name.last().map_or("", String::as_str)) {
                        Some(shape) => match shape.all() {
                            Ok(cols) => cols,
                            Err(why) => vec![star_unknown(why)],
                        },
                        None => vec![star_unknown(format!(
                            "`{}.*` names no relation of the query",
                            name.join(".")
                        ))],
                    };
                    columns.extend(self.star_options(all, star, &scope));
                }
            }
        }
        // DuckDB's `select * exclude (…)` at the select level.
        if let Some(names) = &select.exclude {
            columns.retain(|c| !names.iter().any(|n| same(n, &c.name)));
        }
        Derived { columns }
    }

    /// `* exclude (…)`, `* except (…)`, `* replace (… as c)`.
    fn star_options(&self, mut all: Vec<Col>, star: &Star, scope: &Scope<'_>) -> Vec<Col> {
        for names in star.exclude.iter().chain(&star.except) {
            all.retain(|c| !names.iter().any(|n| same(n, &c.name)));
        }
        for (name, expr) in &star.replace {
            let mut col = self.expr(expr, scope);
            col.name = name.clone();
            if let Some(slot) = all.iter_mut().find(|c| same(&c.name, &col.name)) {
                *slot = col;
            }
        }
        all
    }

    /// The columns an expression reads, followed through its scope.
    fn expr(&self, expr: &plan::Expr, scope: &Scope<'_>) -> Col {
        let mut col = Col::default();
        for reference in &expr.columns {
            match scope.resolve(reference) {
                Ok(found) => col.absorb(&found),
                Err(why) => col.unknown(why),
            }
        }
        for query in &expr.subqueries {
            // A scalar subquery's value comes from the columns it returns.
            let derived = self.query(query, scope.ctes);
            for found in &derived.columns {
                col.absorb(found);
            }
        }
        col
    }
}

impl Scope<'_> {
    fn binding(&self, name: &str) -> Option<&Shape> {
        self.bindings
            .iter()
            .find(|(binding, _)| same(binding, name))
            .map(|(_, shape)| shape)
    }

    /// A column reference (`c`, `t.c`, `s.t.c`).
    fn resolve(&self, reference: &[String]) -> Result<Col, String> {
        match reference {
            [] => Err("an empty column reference".into()),
            [column] if self.merged.iter().any(|m| same(m, column)) => {
                let mut col = Col::default();
                for (_, shape) in &self.bindings {
                    if let Some(found) = shape.column(column) {
                        col.absorb(&found);
                    }
                }
                Ok(col)
            }
            [column] => {
                let sure: Vec<&Shape> = self
                    .bindings
                    .iter()
                    .map(|(_, s)| s)
                    .filter(|s| s.surely_has(column))
                    .collect();
                if let [shape] = sure.as_slice() {
                    return shape
                        .column(column)
                        .ok_or_else(|| unreachable_column(column));
                }
                let maybe: Vec<&Shape> = self
                    .bindings
                    .iter()
                    .map(|(_, s)| s)
                    .filter(|s| s.column(column).is_some())
                    .collect();
                match maybe.as_slice() {
                    [] => Err(format!("`{column}` is no column of what the query reads")),
                    [shape] => shape
                        .column(column)
                        .ok_or_else(|| unreachable_column(column)),
                    _ if sure.len() > 1 => Err(format!("`{column}` is ambiguous")),
                    _ => Err(format!(
                        "`{column}` could come from more than one relation: qualify it"
                    )),
                }
            }
            [.., table, column] => match self.binding(table) {
                Some(shape) => shape.column(column).ok_or_else(|| {
                    format!("`{table}.{column}` is no column of what the query reads")
                }),
                // A struct field (`c.field`): the column `c`'s lineage.
                None => self.resolve(&reference[..reference.len() - 1]),
            },
        }
    }
}

fn unreachable_column(column: &str) -> String {
    format!("`{column}` could not be followed")
}

fn star_unknown(why: String) -> Col {
    Col {
        name: "*".into(),
        upstream: BTreeSet::new(),
        unknown: Some(why),
    }
}

/// Column aliases of a derived table or CTE (`cte (a, b) as (…)`) rename its columns.
fn rename(derived: &mut Derived, columns: &[String]) {
    for (col, alias) in derived.columns.iter_mut().zip(columns) {
        col.name.clone_from(alias);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Project(Vec<(&'static str, Option<Vec<&'static str>>)>);

    impl Inputs for Project {
        fn node(&self, parts: &[String]) -> Option<NodeId> {
            let name = parts.last()?.trim_start_matches("__dbt__cte__");
            self.0
                .iter()
                .find(|(n, _)| same(n, name))
                .map(|(n, _)| NodeId(format!("model.p.{n}")))
        }

        fn columns(&self, node: &NodeId) -> Option<Vec<String>> {
            let name = node.0.rsplit('.').next()?;
            let (_, cols) = self.0.iter().find(|(n, _)| *n == name)?;
            cols.as_ref()
                .map(|c| c.iter().map(|s| s.to_string()).collect())
        }
    }

    fn project() -> Project {
        Project(vec![
            (
                "orders",
                Some(vec!["order_id", "customer_id", "order_date", "status"]),
            ),
            (
                "order_items",
                Some(vec!["order_id", "line_number", "quantity", "net_amount"]),
            ),
            ("customers", None),
        ])
    }

    fn traced(sql: &str) -> Vec<(String, Trace, Vec<String>)> {
        lineage(sql, &sqlparser::dialect::DuckDbDialect {}, &project())
            .unwrap()
            .into_iter()
            .map(|c| {
                (
                    c.column,
                    c.status,
                    c.upstream
                        .into_iter()
                        .map(|(n, col)| format!("{}.{col}", n.0.rsplit('.').next().unwrap()))
                        .collect(),
                )
            })
            .collect()
    }

    fn up(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn columns_are_followed_through_ctes_joins_aggregates_and_stars() {
        let sql = r#"
            with lines as (select * from "db"."main"."order_items"),
            live as (select * from "db"."main"."orders" where status <> 'cancelled')
            select o.order_date as sales_date, o.customer_id,
                   count(distinct l.order_id) as orders,
                   sum(l.quantity * l.net_amount) as value,
                   'x' as constant
            from lines l join live o on l.order_id = o.order_id
            group by 1, 2"#;
        assert_eq!(
            traced(sql),
            [
                (
                    "sales_date".into(),
                    Trace::Traced,
                    up(&["orders.order_date"])
                ),
                (
                    "customer_id".into(),
                    Trace::Traced,
                    up(&["orders.customer_id"])
                ),
                (
                    "orders".into(),
                    Trace::Traced,
                    up(&["order_items.order_id"])
                ),
                (
                    "value".into(),
                    Trace::Traced,
                    up(&["order_items.net_amount", "order_items.quantity"])
                ),
                ("constant".into(), Trace::Traced, up(&[])),
            ]
        );
    }

    #[test]
    fn unions_subqueries_and_ephemeral_ctes_are_followed() {
        let sql = r#"
            with __dbt__cte__orders as (select 1 as whatever)
            select order_id, (select max(quantity) from order_items) as top
            from __dbt__cte__orders
            union all
            select order_id, line_number from order_items"#;
        assert_eq!(
            traced(sql),
            [
                (
                    "order_id".into(),
                    Trace::Traced,
                    up(&["order_items.order_id", "orders.order_id"])
                ),
                (
                    "top".into(),
                    Trace::Traced,
                    up(&["order_items.line_number", "order_items.quantity"])
                ),
            ]
        );
    }

    #[test]
    fn what_cannot_be_followed_is_said_per_column() {
        let sql = "select c.name, o.order_id, x.value, * exclude (status) from customers c join orders o on c.id = o.customer_id join read_parquet('x.parquet') x on true";
        let got = lineage(sql, &sqlparser::dialect::DuckDbDialect {}, &project()).unwrap();
        // A node whose columns are unknown still traces by name.
        assert_eq!(got[0].status, Trace::Traced);
        assert_eq!(
            got[0].upstream,
            [(NodeId("model.p.customers".into()), "name".into())]
        );
        assert_eq!(got[1].status, Trace::Traced);
        assert_eq!(got[2].status, Trace::Untraced);
        assert!(
            got[2]
                .note
                .as_deref()
                .unwrap()
                .contains("table function `read_parquet"),
            "{got:?}"
        );
        // The star over `customers` cannot be expanded: said as one untraced `*`.
        assert!(got
            .iter()
            .any(|c| c.column == "*" && c.status == Trace::Untraced));
        assert!(!got.iter().any(|c| c.column == "status"));
        let ambiguous = lineage(
            "select order_id from orders o join order_items i on o.order_id = i.order_id",
            &sqlparser::dialect::DuckDbDialect {},
            &project(),
        )
        .unwrap();
        assert_eq!(ambiguous[0].status, Trace::Untraced);
        assert!(ambiguous[0].note.as_deref().unwrap().contains("ambiguous"));
    }

    #[test]
    fn a_column_joined_with_using_comes_from_both_sides() {
        let sql = "select order_id, quantity from orders join order_items using (order_id)";
        assert_eq!(
            traced(sql),
            [
                (
                    "order_id".into(),
                    Trace::Traced,
                    up(&["order_items.order_id", "orders.order_id"])
                ),
                (
                    "quantity".into(),
                    Trace::Traced,
                    up(&["order_items.quantity"])
                ),
            ]
        );
        let star = traced("select * from orders join order_items using (order_id)");
        assert_eq!(star.iter().filter(|(c, _, _)| c == "order_id").count(), 1);
        assert_eq!(star.len(), 7, "{star:?}");
    }

    #[test]
    fn qualified_stars_windows_cases_and_values_are_followed() {
        let sql = "select o.*, row_number() over (partition by i.order_id order by i.line_number) as rn, \
                   case when o.status = 'x' then i.net_amount else 0 end as x_amount, v.label \
                   from orders o join order_items i on o.order_id = i.order_id \
                   join (values (1, 'one')) as v (n, label) on v.n = i.line_number";
        let got = traced(sql);
        let names: Vec<&str> = got.iter().map(|(c, _, _)| c.as_str()).collect();
        assert_eq!(
            names,
            [
                "order_id",
                "customer_id",
                "order_date",
                "status",
                "rn",
                "x_amount",
                "label"
            ]
        );
        assert_eq!(
            got[4].2,
            up(&["order_items.line_number", "order_items.order_id"])
        );
        assert_eq!(got[5].2, up(&["order_items.net_amount", "orders.status"]));
        assert_eq!(got[6], ("label".into(), Trace::Traced, up(&[])));
    }

    #[test]
    fn star_replace_and_column_aliases_rename() {
        let sql = "select * replace (upper(status) as status) from (select order_id, status from orders) as t (id, status)";
        assert_eq!(
            traced(sql),
            [
                ("id".into(), Trace::Traced, up(&["orders.order_id"])),
                ("status".into(), Trace::Traced, up(&["orders.status"])),
            ]
        );
    }
}

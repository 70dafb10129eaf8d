//! Statements bounded to the warehouse's limit: a step whose statement would be longer than the
//! warehouse accepts — literal rows, file lists, IN-lists — becomes several steps of the same
//! kind over parts of its values, in the same block, so the plan shows every statement that
//! runs. The user's SQL is never cut; a table built from a query too long for the warehouse is
//! staged instead: each of the query's CTEs becomes a table of its own (built aside under the
//! run's id, dropped once the table is built, or by the next run's repair), and the query
//! reads those. A query that cannot be staged (no CTEs, recursive, or a CTE that alone is too
//! long) is the warehouse's error to report.

use std::ops::ControlFlow;

use sqlparser::ast::{Ident, ObjectName, ObjectNamePart, Statement};

use crate::adapter::{ansi, Flavour, Lowered, RelationKind, StatementKind};
use crate::plan::{aside, Filter, Plan, Source, Step};
use crate::relation::RelationName;

/// `plan` with every splittable step split to fit the flavour's statement limit.
pub fn bound(mut plan: Plan, flavour: &dyn Flavour) -> Plan {
    let Some(limit) = flavour.limits().statement_bytes else {
        return plan;
    };
    let mut count = Vec::new();
    let mut old = 0usize;
    let mut new = 0usize;
    let mut staged_drops = Vec::new();
    for block in &mut plan.blocks {
        let mut steps = Vec::with_capacity(block.steps.len());
        for step in block.steps.drain(..) {
            let (parts, counted) = match stage_ctes(flavour, &step, limit) {
                Some((parts, table_at)) => {
                    // The drops after the table also run if the plan fails first.
                    staged_drops.extend(parts[table_at + 1..].iter().cloned());
                    (parts, Some(table_at))
                }
                None => (split(flavour, step, limit), None),
            };
            if plan.count.contains(&old) {
                match counted {
                    Some(at) => count.push(new + at),
                    None => count.extend(new..new + parts.len()),
                }
            }
            old += 1;
            new += parts.len();
            steps.extend(parts);
        }
        block.steps = steps;
    }
    plan.count = count;
    plan.on_failure.extend(staged_drops);
    plan
}

fn fits(flavour: &dyn Flavour, step: &Step, limit: usize) -> bool {
    flavour
        .lower(step)
        .iter()
        .all(|l| l.text().is_none_or(|t| t.len() <= limit))
}

/// The step's values, when it has values to spread over several statements.
fn values_of(step: &Step) -> Option<usize> {
    match step {
        Step::InsertRows { rows, .. } => Some(rows.len()),
        Step::Delete {
            filter: Filter::In { values, .. },
            ..
        }
        | Step::DeletePartitions { values, .. }
        | Step::Insert {
            from:
                Source::Relation {
                    filter: Filter::In { values, .. },
                    ..
                },
            ..
        } => Some(values.len()),
        _ => None,
    }
}

/// A table built from a query too long for the warehouse, as one table per CTE, the table
/// itself from the query reading them, and the CTE tables dropped; with the index of the step
/// that builds the table. `None` when the step fits, is not such a step, or cannot be staged.
fn stage_ctes(flavour: &dyn Flavour, step: &Step, limit: usize) -> Option<(Vec<Step>, usize)> {
    let Step::CreateTableAs {
        relation,
        select,
        storage,
        replace,
    } = step
    else {
        return None;
    };
    if fits(flavour, step, limit) {
        return None;
    }
    let mut statements = sqlparser::parser::Parser::parse_sql(flavour.dialect(), select).ok()?;
    let [Statement::Query(query)] = statements.as_mut_slice() else {
        return None;
    };
    let with = query.with.take()?;
    if with.recursive || with.cte_tables.is_empty() {
        return None;
    }
    // The CTE tables take the run id of the table being built, so the next run's repair
    // drops any a killed run leaves.
    let run_id = aside::parse(&relation.identifier)
        .map(|a| a.run_id.to_string())
        .unwrap_or_else(|| crate::util::sha256_hex(select.as_bytes())[..8].to_string());
    let live = aside::parse(&relation.identifier)
        .map(|a| a.live.to_string())
        .unwrap_or_else(|| relation.identifier.clone());
    let max_length = flavour.limits().identifier_length;
    let style = flavour.quote_style(StatementKind::Dml);
    let mut staged: Vec<(String, RelationName)> = Vec::new();
    let mut steps = Vec::new();
    for (i, cte) in with.cte_tables.into_iter().enumerate() {
        let mut body = cte.query;
        point_at_tables(&mut *body, &staged, &style);
        let mut text = body.to_string();
        if !cte.alias.columns.is_empty() {
            let columns: Vec<String> = cte
                .alias
                .columns
                .iter()
                .map(|c| style.quote_identifier(&c.name.value))
                .collect();
            text = format!(
                "select * from ({text}) as {}({})",
                style.quote_identifier("cte"),
                columns.join(", ")
            );
        }
        let table = aside::name(
            &RelationName::new(
                relation.database.clone(),
                relation.schema.clone(),
                format!("{live}_cte{}", i + 1),
            ),
            aside::STAGED,
            &run_id,
            max_length,
        );
        steps.push(Step::CreateTableAs {
            relation: table.clone(),
            select: text,
            storage: flavour.scratch_storage(&table),
            replace: false,
        });
        staged.push((cte.alias.name.value.to_lowercase(), table));
    }
    point_at_tables(&mut **query, &staged, &style);
    let at = steps.len();
    steps.push(Step::CreateTableAs {
        relation: relation.clone(),
        select: query.to_string(),
        storage: storage.clone(),
        replace: *replace,
    });
    for (_, table) in &staged {
        steps.push(Step::Drop {
            relation: table.clone(),
            kind: RelationKind::Table,
            cascade: false,
        });
    }
    let all_fit = steps.iter().all(|s| fits(flavour, s, limit));
    all_fit.then_some((steps, at))
}

/// Points every one-part name of `node` that names a staged CTE at its table.
fn point_at_tables<V: sqlparser::ast::VisitMut>(
    node: &mut V,
    staged: &[(String, RelationName)],
    style: &crate::relation::QuoteStyle,
) {
    let _ = sqlparser::ast::visit_relations_mut(node, |name: &mut ObjectName| {
        if let [ObjectNamePart::Identifier(ident)] = name.0.as_slice() {
            if let Some((_, table)) = staged
                .iter()
                .find(|(cte, _)| *cte == ident.value.to_lowercase())
            {
                let mut parts = Vec::new();
                if style.include_database {
                    if let Some(database) = &table.database {
                        parts.push(database.clone());
                    }
                }
                parts.push(table.schema.clone());
                parts.push(table.identifier.clone());
                *name = ObjectName(
                    parts
                        .into_iter()
                        .map(|p| ObjectNamePart::Identifier(Ident::with_quote(style.quote, p)))
                        .collect(),
                );
            }
        }
        ControlFlow::<()>::Continue(())
    });
}

/// The same step over `range` of its values.
fn part(step: &Step, range: std::ops::Range<usize>) -> Step {
    let mut out = step.clone();
    match &mut out {
        Step::InsertRows { rows, .. } => *rows = rows[range].to_vec(),
        Step::Delete {
            filter: Filter::In { values, .. },
            ..
        }
        | Step::DeletePartitions { values, .. }
        | Step::Insert {
            from:
                Source::Relation {
                    filter: Filter::In { values, .. },
                    ..
                },
            ..
        } => *values = values[range].to_vec(),
        _ => {}
    }
    out
}

fn split(flavour: &dyn Flavour, step: Step, limit: usize) -> Vec<Step> {
    let Some(n) = values_of(&step) else {
        return vec![step];
    };
    if n < 2 || fits(flavour, &step, limit) {
        return vec![step];
    }
    if let Step::InsertRows { .. } = step {
        if let Some(parts) = split_rows(flavour, &step, limit) {
            return parts;
        }
    }
    // Halves until each part fits (or is down to one value, which the warehouse judges).
    let half = n / 2;
    let mut out = split(flavour, part(&step, 0..half), limit);
    out.extend(split(flavour, part(&step, half..n), limit));
    out
}

/// Rows packed greedily: each statement takes rows while the text stays within the limit.
/// `None` when the flavour writes inserts some other way than the shared form measured here.
fn split_rows(flavour: &dyn Flavour, step: &Step, limit: usize) -> Option<Vec<Step>> {
    let Step::InsertRows {
        relation,
        columns,
        rows,
    } = step
    else {
        return None;
    };
    let style = flavour.quote_style(StatementKind::Dml);
    let head = ansi::insert_rows_head(relation, columns, &style).len();
    let mut parts = Vec::new();
    let mut start = 0;
    let mut length = head;
    for (i, row) in rows.iter().enumerate() {
        let row_length = ansi::values_row(flavour, columns, row).len();
        let separator = if i > start { 2 } else { 0 };
        if i > start && length + separator + row_length > limit {
            parts.push(part(step, start..i));
            start = i;
            length = head + row_length;
        } else {
            length += separator + row_length;
        }
    }
    parts.push(part(step, start..rows.len()));
    // The measure must be what the flavour writes; check the first part.
    let first = parts.first()?;
    let lowered: Vec<Lowered> = flavour.lower(first);
    let matches = lowered.len() == 1
        && lowered[0].text().is_some_and(|text| {
            text.len()
                == head
                    + match first {
                        Step::InsertRows { rows, columns, .. } => {
                            rows.iter()
                                .map(|r| ansi::values_row(flavour, columns, r).len())
                                .sum::<usize>()
                                + 2 * rows.len().saturating_sub(1)
                        }
                        _ => 0,
                    }
        });
    matches.then_some(parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapter::Adjusted;
    use crate::plan::{Block, ColumnDef, Literal, Role};
    use crate::relation::RelationName;

    /// How many rows the plan's inserts of literal rows hold, summed.
    fn literal_rows(plan: &Plan) -> usize {
        plan.steps()
            .map(|s| match s {
                Step::InsertRows { rows, .. } => rows.len(),
                _ => 0,
            })
            .sum()
    }

    fn limited(bytes: usize) -> Adjusted {
        let mut flavour = Adjusted::new(crate::adapter::embedded_flavour());
        flavour.limits.statement_bytes = Some(bytes);
        flavour
    }

    #[test]
    fn long_inserts_and_in_lists_split_into_statements_that_fit() {
        let relation = RelationName::new(None, "s", "t");
        let rows: Vec<Vec<Literal>> = (0..50)
            .map(|i| vec![Literal::Int(i), Literal::Text(format!("name {i}"))])
            .collect();
        let columns = vec![
            ColumnDef {
                name: "id".into(),
                data_type: "BIGINT".into(),
            },
            ColumnDef {
                name: "name".into(),
                data_type: "VARCHAR".into(),
            },
        ];
        let delete = Step::Delete {
            from: relation.clone(),
            filter: Filter::In {
                columns: vec!["name".into()],
                values: rows.iter().map(|r| vec![r[1].clone()]).collect(),
            },
        };
        let plan = Plan {
            blocks: vec![Block::new(
                Role::Publish,
                true,
                vec![
                    delete,
                    Step::InsertRows {
                        relation,
                        columns,
                        rows,
                    },
                ],
            )],
            count: vec![1],
            ..Plan::default()
        };
        let flavour = limited(300);
        let bounded = bound(plan, &flavour);
        let steps: Vec<&Step> = bounded.steps().collect();
        assert!(steps.len() > 4, "{}", steps.len());
        for step in &steps {
            for lowered in flavour.lower(step) {
                let text = lowered.text().unwrap();
                assert!(text.len() <= 300, "{} bytes: {text}", text.len());
            }
        }
        assert_eq!(literal_rows(&bounded), 50);
        // Every insert part is counted, no delete part is.
        let inserts: Vec<usize> = steps
            .iter()
            .enumerate()
            .filter(|(_, s)| matches!(s, Step::InsertRows { .. }))
            .map(|(i, _)| i)
            .collect();
        assert_eq!(bounded.count, inserts);
    }

    /// A query of three CTEs, each `rows` rows of literal text, the last reading the first.
    fn long_query(rows: usize) -> String {
        let values = |tag: &str| {
            (0..rows)
                .map(|i| format!("({i}, '{tag} row {i} with some padding text')"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!(
            "with a as (select * from (values {}) as t(id, note)),\n\
             b(id, note) as (select * from (values {}) as t(x, y)),\n\
             c as (select id, note from a where id > 0 union all select * from (values {}) as t(id, note))\n\
             select * from a union all select * from b union all select * from c",
            values("a"),
            values("b"),
            values("c")
        )
    }

    #[test]
    fn a_table_of_a_query_too_long_is_built_from_its_ctes_staged_as_tables() {
        let relation = RelationName::new(None, "s", "orders__strata_tmp_1a2b3c4d");
        let select = long_query(40);
        let plan = Plan {
            blocks: vec![Block::new(
                Role::Publish,
                false,
                vec![Step::CreateTableAs {
                    relation: relation.clone(),
                    select: select.clone(),
                    storage: crate::plan::Storage::plain(),
                    replace: false,
                }],
            )],
            count: vec![0],
            ..Plan::default()
        };
        let limit = select.len() / 2;
        let flavour = limited(limit);
        let bounded = bound(plan, &flavour);
        let steps: Vec<&Step> = bounded.steps().collect();
        let names: Vec<String> = steps
            .iter()
            .map(|s| match s {
                Step::CreateTableAs { relation, .. } => format!("create {}", relation.identifier),
                Step::Drop { relation, .. } => format!("drop {}", relation.identifier),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            names,
            [
                "create orders_cte1__strata_tmp_1a2b3c4d",
                "create orders_cte2__strata_tmp_1a2b3c4d",
                "create orders_cte3__strata_tmp_1a2b3c4d",
                "create orders__strata_tmp_1a2b3c4d",
                "drop orders_cte1__strata_tmp_1a2b3c4d",
                "drop orders_cte2__strata_tmp_1a2b3c4d",
                "drop orders_cte3__strata_tmp_1a2b3c4d",
            ]
        );
        for step in &steps {
            for lowered in flavour.lower(step) {
                assert!(lowered.text().unwrap().len() <= limit);
            }
        }
        // The later CTE and the query read the staged tables; column aliases are kept.
        let Step::CreateTableAs { select: c, .. } = steps[2] else {
            unreachable!()
        };
        assert!(
            c.contains("\"s\".\"orders_cte1__strata_tmp_1a2b3c4d\""),
            "{c}"
        );
        let Step::CreateTableAs { select: b, .. } = steps[1] else {
            unreachable!()
        };
        assert!(b.ends_with("as \"cte\"(\"id\", \"note\")"), "{b}");
        let Step::CreateTableAs { select: last, .. } = steps[3] else {
            unreachable!()
        };
        assert!(!last.to_lowercase().contains("values"), "{last}");
        assert_eq!(bounded.count, vec![3]);
        assert_eq!(bounded.on_failure.len(), 3);
        // A query that fits is left alone, and so is one without CTEs.
        let short = bound(
            Plan {
                blocks: vec![Block::new(
                    Role::Publish,
                    false,
                    vec![Step::CreateTableAs {
                        relation: relation.clone(),
                        select: select.clone(),
                        storage: crate::plan::Storage::plain(),
                        replace: false,
                    }],
                )],
                ..Plan::default()
            },
            &limited(select.len() * 2),
        );
        assert_eq!(short.steps().count(), 1);
    }
}

//! Statements bounded to the warehouse's limit: a step whose statement would be longer than the
//! warehouse accepts — literal rows, file lists, IN-lists — becomes several steps of the same
//! kind over parts of its values, in the same block, so the plan shows every statement that
//! runs. Steps of the user's SQL are never cut: a model too long for the warehouse is the
//! warehouse's error to report.

use crate::adapter::{ansi, Flavour, Lowered, StatementKind};
use crate::plan::{Filter, Plan, Source, Step};

/// `plan` with every splittable step split to fit the flavour's statement limit.
pub fn bound(mut plan: Plan, flavour: &dyn Flavour) -> Plan {
    let Some(limit) = flavour.limits().statement_bytes else {
        return plan;
    };
    let mut count = Vec::new();
    let mut old = 0usize;
    let mut new = 0usize;
    for block in &mut plan.blocks {
        let mut steps = Vec::with_capacity(block.steps.len());
        for step in block.steps.drain(..) {
            let parts = split(flavour, step, limit);
            if plan.count.contains(&old) {
                count.extend(new..new + parts.len());
            }
            old += 1;
            new += parts.len();
            steps.extend(parts);
        }
        block.steps = steps;
    }
    plan.count = count;
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
}

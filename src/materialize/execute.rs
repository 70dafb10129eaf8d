//! Runs a plan through an adapter: its blocks in order, each in one transaction where it says
//! so; its records placed by the state store; the catalog kept up to date. When a block before
//! the result is published fails, the completed blocks' undo steps run (newest first), then the
//! plan's clean-up, and the error is returned: the relation is as it was. A failed clean-up
//! block after publishing is a warning; the next run's repair finishes it.
//!
//! This room decides nothing about what a plan contains; it only keeps its promises.

use crate::adapter::{Adapter, AdapterError, Cell, FileLoad, Lowered};
use crate::catalog::Catalog;
use crate::plan::{Block, Plan, Role, StateWrite, Step};
use crate::state::StateStore;

use super::MaterializeError;

/// What running a plan did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Executed {
    /// Rows of the plan's counted step, when the warehouse said.
    pub rows: Option<u64>,
    /// Clean-up that failed after the result was published.
    pub warnings: Vec<String>,
}

/// A block's steps with their records placed: the steps it runs, and the writes the state
/// store takes once it commits.
fn expand(state: &dyn StateStore, block: &Block) -> (Vec<(usize, Step)>, Vec<StateWrite>) {
    let mut steps = Vec::with_capacity(block.steps.len());
    let mut deferred = Vec::new();
    for (index, step) in block.steps.iter().enumerate() {
        match step {
            Step::Record(write) => match state.inline(write) {
                Some(inline) => steps.extend(inline.into_iter().map(|s| (index, s))),
                None => deferred.push(write.clone()),
            },
            other => steps.push((index, other.clone())),
        }
    }
    (steps, deferred)
}

fn first_int(table: &crate::adapter::Table) -> i64 {
    match table.rows.first().and_then(|r| r.first()) {
        Some(Cell::Int(i)) => *i,
        Some(Cell::Text(t)) => t.trim().parse().unwrap_or(0),
        _ => 0,
    }
}

/// Runs one block; returns the rows each of its steps reported (by the step's index in the
/// block), the last statement of a step speaking for it.
async fn run_block(
    adapter: &dyn Adapter,
    steps: &[(usize, Step)],
    transaction: bool,
) -> Result<Vec<(usize, Option<u64>)>, MaterializeError> {
    let flavour = adapter.flavour();
    let mut lowered: Vec<(usize, Lowered)> = Vec::new();
    for (index, step) in steps {
        for statement in flavour.lower(step) {
            lowered.push((*index, statement));
        }
    }
    let mut rows = Vec::new();
    // Checks read before anything is written.
    for (_, statement) in &lowered {
        if let Lowered::KeyCheck {
            key,
            nulls,
            duplicates,
        } = statement
        {
            let null_count = first_int(&adapter.query(nulls).await?);
            if null_count > 0 {
                return Err(MaterializeError::NullKeys {
                    key: key.join(", "),
                    count: null_count,
                });
            }
            let duplicate = adapter.query(duplicates).await?;
            if let Some(row) = duplicate.rows.first() {
                let sample = key
                    .iter()
                    .zip(row)
                    .map(|(k, v)| format!("{k} = {v}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(MaterializeError::DuplicateKeys {
                    key: key.join(", "),
                    sample,
                });
            }
        }
    }
    lowered.retain(|(_, s)| !matches!(s, Lowered::KeyCheck { .. }));
    if lowered.is_empty() {
        return Ok(rows);
    }
    // A bulk load runs with the block's other statements around it, in its transaction.
    if let Some(at) = lowered
        .iter()
        .position(|(_, s)| matches!(s, Lowered::Load { .. }))
    {
        let texts = |part: &[(usize, Lowered)]| -> Vec<String> {
            part.iter()
                .filter_map(|(_, s)| s.text().map(str::to_string))
                .collect()
        };
        let before = texts(&lowered[..at]);
        let after = texts(&lowered[at + 1..]);
        let (
            index,
            Lowered::Load {
                relation,
                path,
                format,
                columns,
            },
        ) = &lowered[at]
        else {
            unreachable!("the position found a load");
        };
        let loaded = adapter
            .load_file(&FileLoad {
                relation,
                path,
                format,
                columns,
                before: &before,
                after: &after,
            })
            .await?;
        rows.push((*index, Some(loaded)));
        return Ok(rows);
    }
    // Statements run in runs between API calls; a block with calls is not a transaction.
    let mut pending: Vec<(usize, String)> = Vec::new();
    for (index, statement) in lowered {
        match statement {
            Lowered::Sql { text, .. } => pending.push((index, text)),
            Lowered::Api(call) => {
                flush(adapter, &mut pending, transaction, &mut rows).await?;
                adapter.call(&call).await?;
            }
            Lowered::KeyCheck { .. } | Lowered::Load { .. } => {}
        }
    }
    flush(adapter, &mut pending, transaction, &mut rows).await?;
    Ok(rows)
}

async fn flush(
    adapter: &dyn Adapter,
    pending: &mut Vec<(usize, String)>,
    transaction: bool,
    rows: &mut Vec<(usize, Option<u64>)>,
) -> Result<(), AdapterError> {
    let batch = std::mem::take(pending);
    match batch.as_slice() {
        [] => {}
        // One statement commits alone atomically: no transaction round trips.
        [(index, sql)] => {
            let outcome = adapter.execute(sql).await?;
            rows.push((*index, outcome.rows_affected));
        }
        _ => {
            let statements: Vec<String> = batch.iter().map(|(_, s)| s.clone()).collect();
            let outcomes = adapter.execute_all(&statements, transaction).await?;
            for ((index, _), outcome) in batch.iter().zip(outcomes) {
                rows.push((*index, outcome.rows_affected));
            }
        }
    }
    Ok(())
}

/// Runs each step alone, ignoring errors: undo and clean-up after a failure.
async fn run_each(adapter: &dyn Adapter, catalog: &Catalog, steps: &[Step]) {
    for step in steps {
        let mut ok = true;
        for statement in adapter.flavour().lower(step) {
            let done = match &statement {
                Lowered::Sql { text, .. } => adapter.execute(text).await.map(|_| ()),
                Lowered::Api(call) => adapter.call(call).await,
                Lowered::KeyCheck { .. } | Lowered::Load { .. } => Ok(()),
            };
            ok &= done.is_ok();
        }
        if ok {
            catalog.apply(step);
        } else {
            for relation in step.changes() {
                catalog.forget(relation);
            }
        }
    }
}

/// Runs `plan`. On an error before the result is published, the relation is left as it was
/// (as far as undo steps can put it back where DDL is not transactional).
pub async fn run_plan(
    adapter: &dyn Adapter,
    catalog: &Catalog,
    state: &dyn StateStore,
    plan: &Plan,
) -> Result<Executed, MaterializeError> {
    let mut executed = Executed::default();
    let mut completed: Vec<&Block> = Vec::new();
    // The counted steps' blocks and their indexes there.
    let counted: Vec<(usize, usize)> = plan
        .count
        .iter()
        .filter_map(|&n| {
            let mut n = n;
            for (b, block) in plan.blocks.iter().enumerate() {
                if n < block.steps.len() {
                    return Some((b, n));
                }
                n -= block.steps.len();
            }
            None
        })
        .collect();
    for (b, block) in plan.blocks.iter().enumerate() {
        let (steps, deferred) = expand(state, block);
        match run_block(adapter, &steps, block.transaction).await {
            Ok(rows) => {
                for step in &block.steps {
                    catalog.apply(step);
                }
                for write in deferred {
                    state.defer(write);
                }
                for &(cb, cs) in &counted {
                    if cb != b {
                        continue;
                    }
                    if let Some((_, Some(n))) = rows.iter().rev().find(|(i, _)| *i == cs) {
                        executed.rows = Some(executed.rows.unwrap_or(0) + n);
                    }
                }
                completed.push(block);
            }
            Err(err) if block.role == Role::Cleanup => {
                executed.warnings.push(err.to_string());
                for step in &block.steps {
                    for relation in step.changes() {
                        catalog.forget(relation);
                    }
                }
            }
            Err(err) => {
                if matches!(block.role, Role::Prepare | Role::Publish) {
                    for done in completed.iter().rev() {
                        if matches!(done.role, Role::Prepare | Role::Publish) {
                            run_each(adapter, catalog, &done.undo).await;
                        }
                    }
                    run_each(adapter, catalog, &plan.on_failure).await;
                }
                for step in &block.steps {
                    for relation in step.changes() {
                        catalog.forget(relation);
                    }
                }
                return Err(err);
            }
        }
    }
    Ok(executed)
}

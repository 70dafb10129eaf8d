//! The `cdc` incremental strategy: applies batches of change rows (`I`/`U`/`D` with a commit
//! time, then optional sequence columns) keyed by `unique_key`. The last change per key wins, a final
//! delete removes the row, an update of a missing key inserts it, repeated rows are
//! idempotent, and a change older than what was already applied for its key is ignored, so
//! files arriving out of order give the same table as a full refresh over all of them.
//!
//! A change is compared with the newest one applied for its key: a live key's row in the model's
//! table carries its commit time and sequence columns, and a deleted key's newest delete is
//! kept as a tombstone in strata's state (`StateStore::tombstones`), written in the same
//! transaction as the model's table. Tombstones are few, so the state costs what the deletes
//! cost, not a second copy of every key.
//!
//! Plans only: pure functions of the model's config and what the warehouse holds.

use crate::adapter::{ColumnInfo, RelationKind, StatementKind};
use crate::plan::{aside, Block, Filter, Plan, Role, Source, Step};
use crate::relation::{QuoteStyle, RelationName};

use super::plans::{drop_table, Build};
use super::{MaterializeError, Request};

/// The ranking column the latest change per key carries until it is applied.
pub const RANK: &str = "__strata_rank";

/// The columns that drive the strategy, from the model's config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdcColumns {
    pub key: Vec<String>,
    pub operation: String,
    pub commit_time: String,
    /// Tiebreakers after the commit time, in order (`sequence_column`: one name or a list).
    pub sequence: Vec<String>,
    pub delete_value: String,
}

impl CdcColumns {
    /// The columns of a CDC model; an error where its config or its table cannot run CDC.
    pub fn from_request(request: &Request<'_>) -> Result<CdcColumns, MaterializeError> {
        if request.config.unique_key.is_empty() {
            return Err(MaterializeError::Config(
                "cdc".into(),
                "a `unique_key`".into(),
            ));
        }
        let text = |key: &str, default: &str| {
            request
                .config_map
                .get(key)
                .and_then(|v| v.as_str())
                .unwrap_or(default)
                .to_string()
        };
        Ok(CdcColumns {
            key: request.config.unique_key.clone(),
            operation: text("operation_column", "_op"),
            commit_time: text("commit_time_column", "_commit_ts"),
            sequence: crate::project::config::as_string_list(
                request.config_map.get("sequence_column"),
            ),
            delete_value: text("delete_value", "D"),
        })
    }

    /// The ordering columns, newest first when descending.
    pub fn order(&self) -> Vec<String> {
        std::iter::once(self.commit_time.clone())
            .chain(self.sequence.iter().cloned())
            .collect()
    }

    /// What a tombstone keeps: the key and the ordering columns.
    pub fn state_columns(&self) -> Vec<String> {
        self.key.iter().cloned().chain(self.order()).collect()
    }

    fn deleted(&self) -> Filter {
        Filter::Equals {
            column: self.operation.clone(),
            value: self.delete_value.clone(),
        }
    }

    fn live(&self) -> Filter {
        Filter::NotEquals {
            column: self.operation.clone(),
            value: self.delete_value.clone(),
        }
    }
}

/// CDC deletes and rewrites rows: the table's storage must allow it.
pub fn supported(
    flavour: &dyn crate::adapter::Flavour,
    storage: &crate::plan::Storage,
) -> Result<(), MaterializeError> {
    if flavour.can_delete_rows(storage) {
        return Ok(());
    }
    Err(MaterializeError::Config(
        "cdc".into(),
        format!(
            "a table whose rows can be deleted, which this {} table is not ({storage:?})",
            flavour.name()
        ),
    ))
}

/// The latest change per key of a batch, ranked: rank 1 is the newest.
pub fn latest_sql(sql: &str, columns: &CdcColumns, style: &QuoteStyle) -> String {
    let partition = columns
        .key
        .iter()
        .map(|k| style.quote_identifier(k))
        .collect::<Vec<_>>()
        .join(", ");
    let order = columns
        .order()
        .iter()
        .map(|c| format!("{} desc", style.quote_identifier(c)))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "select * from (select changes.*, row_number() over (partition by {partition} order by {order}) as {rank} from (\n{}\n) as changes) as ranked where {rank} = 1",
        crate::adapter::ansi::body(sql),
        rank = style.quote_identifier(RANK),
    )
}

fn select_from(
    relation: &RelationName,
    columns: &[String],
    filter_sql: Option<String>,
    style: &QuoteStyle,
) -> String {
    let list = crate::adapter::ansi::column_list(columns, style);
    match filter_sql {
        Some(condition) => format!(
            "select {list} from {} as target where {condition}",
            relation.render(style)
        ),
        None => format!("select {list} from {}", relation.render(style)),
    }
}

/// A first build or full refresh, before the swap: the latest change per key built aside, its
/// deletes moved out into the tombstones' table built aside too. With `unpartitioned`, the
/// rows are staged without the table's partitions, under the new-rows name, for a copy into
/// the partitioned table in batches (where one write may open only so many partitions).
pub fn full_prepare(
    b: &Build,
    sql: &str,
    columns: &CdcColumns,
    tombstones: &RelationName,
    unpartitioned: bool,
) -> (RelationName, RelationName, Plan) {
    let style = b.flavour.quote_style(StatementKind::Dml);
    let (staged, storage) = if unpartitioned {
        let scratch = b.aside(aside::NEW_ROWS);
        let storage = b.flavour.scratch_storage(&scratch);
        (scratch, storage)
    } else {
        (
            b.aside(aside::STAGED),
            b.storage.spec().aside(&b.run.run_id),
        )
    };
    let staged_tombstones = aside::name(
        tombstones,
        aside::STAGED,
        &b.run.run_id,
        b.flavour.limits().identifier_length,
    );
    let deleted = crate::adapter::ansi::condition(&columns.deleted(), "", &style, true);
    let steps = vec![
        Step::CreateTableAs {
            relation: staged.clone(),
            select: latest_sql(sql, columns, &style),
            storage,
            replace: false,
        },
        Step::CreateTableAs {
            relation: staged_tombstones.clone(),
            select: select_from(&staged, &columns.state_columns(), deleted, &style),
            storage: b.flavour.scratch_storage(&staged_tombstones),
            replace: false,
        },
        Step::Delete {
            from: staged.clone(),
            filter: columns.deleted(),
        },
        Step::DropColumns {
            relation: staged.clone(),
            columns: vec![RANK.to_string()],
        },
    ];
    let plan = Plan {
        blocks: vec![Block::new(Role::Prepare, false, steps)],
        on_failure: vec![drop_table(&staged), drop_table(&staged_tombstones)],
        count: Vec::new(),
    };
    (staged, staged_tombstones, plan)
}

/// A first build or full refresh, the swap: table and tombstones replaced together where DDL
/// is transactional, one after the other (each with a backup) where it is not.
pub fn full_swap(
    b: &Build,
    staged: &RelationName,
    staged_tombstones: &RelationName,
    tombstones: &RelationName,
    existing: Option<RelationKind>,
    tombstones_exist: bool,
) -> Plan {
    let live = b.relation;
    let caps = b.flavour.capabilities();
    let rename = |from: &RelationName, to: &RelationName| Step::Rename {
        from: from.clone(),
        to: to.identifier.clone(),
        kind: RelationKind::Table,
    };
    let cleanup = vec![drop_table(staged), drop_table(staged_tombstones)];
    if caps.transactional_ddl {
        let mut steps = Vec::new();
        if let Some(kind) = existing {
            steps.push(Step::Drop {
                relation: live.clone(),
                kind,
                cascade: caps.views_bind_to_tables,
            });
        }
        if tombstones_exist {
            steps.push(drop_table(tombstones));
        }
        steps.push(rename(staged, live));
        steps.push(rename(staged_tombstones, tombstones));
        steps.extend(b.dependents.iter().cloned().map(Step::Sql));
        steps.extend(b.after.iter().cloned());
        return Plan {
            blocks: vec![Block::new(Role::Publish, true, steps)],
            on_failure: cleanup,
            count: Vec::new(),
        };
    }
    // Each table by the rename swap: its backup is put back if a later step fails.
    let mut blocks = Vec::new();
    let mut backups = Vec::new();
    for (from, to, exists) in [
        (staged, live, existing),
        (
            staged_tombstones,
            tombstones,
            tombstones_exist.then_some(RelationKind::Table),
        ),
    ] {
        let backup = aside::name(
            to,
            aside::BACKUP,
            &b.run.run_id,
            b.flavour.limits().identifier_length,
        );
        match exists {
            Some(RelationKind::Table) => {
                blocks.push(
                    Block::new(Role::Prepare, false, vec![rename(to, &backup)])
                        .with_undo(vec![rename(&backup, to)]),
                );
                backups.push(backup);
            }
            Some(RelationKind::View) => blocks.push(Block::new(
                Role::Prepare,
                false,
                vec![Step::Drop {
                    relation: to.clone(),
                    kind: RelationKind::View,
                    cascade: false,
                }],
            )),
            None => {}
        }
        blocks.push(
            Block::new(Role::Prepare, false, vec![rename(from, to)])
                .with_undo(vec![rename(to, from)]),
        );
    }
    if let Some(last) = blocks.last_mut() {
        last.role = Role::Publish;
        last.undo.clear();
    }
    if !b.after.is_empty() {
        blocks.push(Block::new(Role::After, false, b.after.clone()));
    }
    if !backups.is_empty() {
        blocks.push(Block::new(
            Role::Cleanup,
            false,
            backups.iter().map(drop_table).collect(),
        ));
    }
    Plan {
        blocks,
        on_failure: cleanup,
        count: Vec::new(),
    }
}

/// A later run, before applying: the batch's newest change per key, with the changes not newer
/// than what was applied for their key dropped (the live row, or the key's tombstone).
pub fn batch_prepare(
    b: &Build,
    sql: &str,
    columns: &CdcColumns,
    tombstones: &RelationName,
    tombstones_exist: bool,
) -> (RelationName, Plan) {
    let style = b.flavour.quote_style(StatementKind::Dml);
    let new_rows = b.aside(aside::NEW_ROWS);
    let mut steps = vec![Step::CreateTableAs {
        relation: new_rows.clone(),
        select: latest_sql(sql, columns, &style),
        storage: b.flavour.scratch_storage(&new_rows),
        replace: false,
    }];
    if !tombstones_exist {
        steps.push(Step::CreateTableAs {
            relation: tombstones.clone(),
            select: format!(
                "{} where 1 = 0",
                select_from(&new_rows, &columns.state_columns(), None, &style)
            ),
            storage: b.flavour.scratch_storage(tombstones),
            replace: false,
        });
    }
    for applied in [tombstones, b.relation] {
        steps.push(Step::Delete {
            from: new_rows.clone(),
            filter: Filter::MatchingNotOlder {
                relation: applied.clone(),
                key: columns.key.clone(),
                order: columns.order(),
            },
        });
    }
    let plan = Plan {
        blocks: vec![Block::new(Role::Prepare, false, steps)],
        on_failure: vec![drop_table(&new_rows)],
        count: Vec::new(),
    };
    (new_rows, plan)
}

/// A later run, the apply: table and tombstones change in one commit.
pub fn batch_apply(
    b: &Build,
    new_rows: &RelationName,
    new_columns: &[ColumnInfo],
    existing: &[ColumnInfo],
    columns: &CdcColumns,
    tombstones: &RelationName,
) -> Plan {
    let live = b.relation;
    let insert_columns: Vec<String> = new_columns
        .iter()
        .filter(|c| c.name != RANK)
        .filter(|c| {
            existing
                .iter()
                .any(|e| e.name.eq_ignore_ascii_case(&c.name))
        })
        .map(|c| c.name.clone())
        .collect();
    let matching = Filter::Matching {
        relation: new_rows.clone(),
        key: columns.key.clone(),
        predicates: Vec::new(),
    };
    let steps = vec![
        Step::Delete {
            from: live.clone(),
            filter: matching.clone(),
        },
        Step::Insert {
            into: live.clone(),
            columns: insert_columns,
            from: Source::Relation {
                relation: new_rows.clone(),
                filter: columns.live(),
            },
        },
        Step::Delete {
            from: tombstones.clone(),
            filter: matching,
        },
        Step::Insert {
            into: tombstones.clone(),
            columns: columns.state_columns(),
            from: Source::Relation {
                relation: new_rows.clone(),
                filter: columns.deleted(),
            },
        },
    ];
    let mut blocks = super::plans::publish(b, steps, b.flavour.capabilities().transactions);
    blocks.push(Block::new(Role::Cleanup, false, vec![drop_table(new_rows)]));
    Plan {
        blocks,
        on_failure: vec![drop_table(new_rows)],
        count: vec![1],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_change_per_key_orders_by_commit_then_sequence() {
        let columns = CdcColumns {
            key: vec!["id".into()],
            operation: "_op".into(),
            commit_time: "_commit_ts".into(),
            sequence: vec!["_seq".into(), "_file".into()],
            delete_value: "D".into(),
        };
        let sql = latest_sql("select * from changes;", &columns, &QuoteStyle::default());
        assert!(sql.contains(
            "row_number() over (partition by \"id\" order by \"_commit_ts\" desc, \"_seq\" desc, \"_file\" desc) as \"__strata_rank\""
        ));
        assert!(sql.ends_with("where \"__strata_rank\" = 1"));
    }
}

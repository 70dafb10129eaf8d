//! The plans of every materialization, as pure functions of the node, the relation's current
//! state and the warehouse's answers. They ask the warehouse's [`Flavour`] what it can do
//! (transactions, `create or replace`, `MERGE`, how a table is swapped, its limits) and never
//! which warehouse it is. The golden plan tests call these functions directly.

use crate::adapter::{ColumnInfo, FileFormat, Flavour, RelationKind, SwapMethod};
use crate::plan::{
    aside, Block, ColumnDef, Filter, Literal, Plan, Role, RunContext, Source, Step, Storage,
};
use crate::project::config::{IncrementalStrategy, OnSchemaChange};
use crate::relation::RelationName;

use super::MaterializeError;

/// What every plan of one node's build needs.
#[derive(Debug, Clone)]
pub struct Build<'a> {
    pub flavour: &'a dyn Flavour,
    pub run: &'a RunContext,
    pub relation: &'a RelationName,
    pub storage: &'a Storage,
    /// Steps that run in the write's commit, after the write: records, then post hooks.
    pub after: Vec<Step>,
    /// Statements recreating the views a `cascade` drop of the relation removes (warehouses
    /// whose views bind to tables), run in the swap's transaction.
    pub dependents: Vec<String>,
}

impl Build<'_> {
    /// A relation built aside for this one in this run.
    pub fn aside(&self, what: &str) -> RelationName {
        aside::name(
            self.relation,
            what,
            &self.run.run_id,
            self.flavour.limits().identifier_length,
        )
    }

    fn drop(&self, relation: &RelationName, kind: RelationKind) -> Step {
        Step::Drop {
            relation: relation.clone(),
            kind,
            cascade: self.flavour.capabilities().views_bind_to_tables,
        }
    }

    fn dependents(&self) -> impl Iterator<Item = Step> + '_ {
        self.dependents.iter().cloned().map(Step::Sql)
    }
}

/// The blocks that publish `steps` with the build's records and post hooks: one transaction
/// where the warehouse has them (`transaction`), otherwise the steps and then the rest after.
pub fn publish(b: &Build, mut steps: Vec<Step>, transaction: bool) -> Vec<Block> {
    if transaction {
        steps.extend(b.after.iter().cloned());
        return vec![Block::new(Role::Publish, true, steps)];
    }
    let mut blocks = vec![Block::new(Role::Publish, false, steps)];
    if !b.after.is_empty() {
        blocks.push(Block::new(Role::After, false, b.after.clone()));
    }
    blocks
}

/// The steps that build a table at a relation, with a storage; `replace` asks the build to
/// replace what stands there in the same statement (only offered where the warehouse can).
pub type Builder<'b> = dyn Fn(&RelationName, &Storage, bool) -> Vec<Step> + 'b;

fn count_of(blocks: &[Block], block: usize, step: usize) -> usize {
    blocks[..block].iter().map(|b| b.steps.len()).sum::<usize>() + step
}

/// A table built from `build` that replaces whatever stands at the relation: in one statement
/// where the warehouse replaces tables atomically, in one transaction where its DDL is
/// transactional, and otherwise aside, then swapped by renames with a backup (or by
/// repointing the table's definition) so the table is never lost. `counted` is the index of
/// the build step whose rows the table reports.
pub fn replace_table(
    b: &Build,
    existing: Option<RelationKind>,
    build: &Builder,
    counted: usize,
) -> Plan {
    let flavour = b.flavour;
    let caps = flavour.capabilities();
    let live = b.relation;
    let single_step = build(live, b.storage, false).len() == 1;
    if caps.create_or_replace_table && caps.transactional_ddl && single_step {
        let mut steps = Vec::new();
        if existing == Some(RelationKind::View) {
            steps.push(b.drop(live, RelationKind::View));
        }
        let at = steps.len() + counted;
        steps.extend(build(
            live,
            b.storage,
            existing == Some(RelationKind::Table),
        ));
        steps.extend(b.after.iter().cloned());
        return Plan {
            blocks: vec![Block::new(Role::Publish, true, steps)],
            count: vec![at],
            ..Plan::default()
        };
    }
    match flavour.swap_method(b.storage) {
        SwapMethod::Transaction => {
            let mut steps = Vec::new();
            let at;
            match existing {
                None => {
                    at = counted;
                    steps.extend(build(live, b.storage, false));
                }
                Some(kind) => {
                    let staged = b.aside(aside::STAGED);
                    at = counted;
                    steps.extend(build(
                        &staged,
                        &b.storage.spec().aside(&b.run.run_id),
                        false,
                    ));
                    steps.push(b.drop(live, kind));
                    steps.push(Step::Rename {
                        from: staged,
                        to: live.identifier.clone(),
                        kind: RelationKind::Table,
                    });
                    steps.extend(b.dependents());
                }
            }
            steps.extend(b.after.iter().cloned());
            Plan {
                blocks: vec![Block::new(Role::Publish, true, steps)],
                count: vec![at],
                ..Plan::default()
            }
        }
        SwapMethod::Rename => rename_swap(b, existing, build, counted, single_step),
        SwapMethod::Repoint => repoint_swap(b, existing, build, counted),
    }
}

/// The swap where DDL is not transactional: build aside, move the live table to a backup,
/// move the new one in, drop the backup. Each step alone; a failure puts the backup back.
fn rename_swap(
    b: &Build,
    existing: Option<RelationKind>,
    build: &Builder,
    counted: usize,
    single_step: bool,
) -> Plan {
    let live = b.relation;
    let mut blocks = Vec::new();
    let mut on_failure = Vec::new();
    let count;
    if existing.is_none() && single_step {
        // Nothing to protect: one statement either makes the table or does not.
        let storage = b.storage.spec().aside(&b.run.run_id);
        blocks.push(Block::new(
            Role::Publish,
            false,
            build(live, &storage, false),
        ));
        count = count_of(&blocks, 0, counted);
    } else {
        let staged = b.aside(aside::STAGED);
        let storage = b.storage.spec().aside(&b.run.run_id);
        blocks.push(Block::new(
            Role::Prepare,
            false,
            build(&staged, &storage, false),
        ));
        count = count_of(&blocks, 0, counted);
        on_failure.push(Step::Drop {
            relation: staged.clone(),
            kind: RelationKind::Table,
            cascade: false,
        });
        let backup = b.aside(aside::BACKUP);
        match existing {
            Some(RelationKind::Table) => blocks.push(
                Block::new(
                    Role::Prepare,
                    false,
                    vec![Step::Rename {
                        from: live.clone(),
                        to: backup.identifier.clone(),
                        kind: RelationKind::Table,
                    }],
                )
                .with_undo(vec![Step::Rename {
                    from: backup.clone(),
                    to: live.identifier.clone(),
                    kind: RelationKind::Table,
                }]),
            ),
            Some(RelationKind::View) => blocks.push(Block::new(
                Role::Prepare,
                false,
                vec![b.drop(live, RelationKind::View)],
            )),
            None => {}
        }
        blocks.push(Block::new(
            Role::Publish,
            false,
            vec![Step::Rename {
                from: staged,
                to: live.identifier.clone(),
                kind: RelationKind::Table,
            }],
        ));
        if existing == Some(RelationKind::Table) {
            blocks.push(Block::new(
                Role::Cleanup,
                false,
                vec![Step::Drop {
                    relation: backup,
                    kind: RelationKind::Table,
                    cascade: false,
                }],
            ));
        }
    }
    let after: Vec<Step> = b.after.to_vec();
    if !after.is_empty() {
        // Before the clean-up: what the build recorded matters more than a dropped backup.
        let at = blocks
            .iter()
            .position(|block| block.role == Role::Cleanup)
            .unwrap_or(blocks.len());
        blocks.insert(at, Block::new(Role::After, false, after));
    }
    Plan {
        blocks,
        on_failure,
        count: vec![count],
    }
}

/// The swap of tables that are definitions over files: build aside in a location of its own,
/// then point the live definition at it.
fn repoint_swap(
    b: &Build,
    existing: Option<RelationKind>,
    build: &Builder,
    counted: usize,
) -> Plan {
    let live = b.relation;
    let mut blocks = Vec::new();
    let mut on_failure = Vec::new();
    let count;
    match existing {
        Some(RelationKind::Table) => {
            let staged = b.aside(aside::STAGED);
            let storage = b.storage.spec().aside(&b.run.run_id);
            blocks.push(Block::new(
                Role::Prepare,
                false,
                build(&staged, &storage, false),
            ));
            count = counted;
            on_failure.push(Step::Drop {
                relation: staged.clone(),
                kind: RelationKind::Table,
                cascade: false,
            });
            blocks.push(Block::new(
                Role::Publish,
                false,
                vec![Step::Repoint {
                    live: live.clone(),
                    from: staged,
                }],
            ));
        }
        other => {
            if other == Some(RelationKind::View) {
                blocks.push(Block::new(
                    Role::Prepare,
                    false,
                    vec![b.drop(live, RelationKind::View)],
                ));
            }
            let storage = b.storage.spec().aside(&b.run.run_id);
            count = count_of(&blocks, blocks.len(), counted);
            blocks.push(Block::new(
                Role::Publish,
                false,
                build(live, &storage, false),
            ));
        }
    }
    let after: Vec<Step> = b.after.to_vec();
    if !after.is_empty() {
        blocks.push(Block::new(Role::After, false, after));
    }
    Plan {
        blocks,
        on_failure,
        count: vec![count],
    }
}

/// A table of a SELECT's rows.
pub fn table(b: &Build, select: &str, existing: Option<RelationKind>) -> Plan {
    let build = |relation: &RelationName, storage: &Storage, replace: bool| {
        vec![Step::CreateTableAs {
            relation: relation.clone(),
            select: select.to_string(),
            storage: storage.clone(),
            replace,
        }]
    };
    replace_table(b, existing, &build, 0)
}

/// A partitioned table where the warehouse bounds the partitions one write may open: its rows
/// are built once without partitions (`scratch`, from [`new_rows`]); then, if they touch more
/// partitions than one write may open, the table is created from the first batch of them and
/// each further batch is inserted, all aside and swapped in like any table; otherwise it is
/// created from the scratch rows at once. The scratch table is dropped after.
pub fn table_from_scratch(
    b: &Build,
    scratch: &RelationName,
    columns: &[ColumnInfo],
    partitions: &[Vec<Literal>],
    existing: Option<RelationKind>,
) -> Plan {
    let build = |relation: &RelationName, storage: &Storage, replace: bool| {
        batched_copy(b, scratch, columns, partitions, relation, storage, replace)
    };
    let mut plan = replace_table(b, existing, &build, 0);
    plan.blocks
        .push(Block::new(Role::Cleanup, false, vec![drop_table(scratch)]));
    plan.on_failure.push(drop_table(scratch));
    plan
}

/// `relation` (of `storage`, partitioned) created from the rows of `scratch`: at once when they
/// touch at most as many partitions as one write may open, else from the first batch of them
/// and each further batch inserted.
pub fn batched_copy(
    b: &Build,
    scratch: &RelationName,
    columns: &[ColumnInfo],
    partitions: &[Vec<Literal>],
    relation: &RelationName,
    storage: &Storage,
    replace: bool,
) -> Vec<Step> {
    let dml = b.flavour.quote_style(crate::adapter::StatementKind::Dml);
    let partition_by = b.storage.partition_columns().to_vec();
    let limit = b
        .flavour
        .limits()
        .partitions_per_write
        .unwrap_or(usize::MAX)
        .max(1);
    let names: Vec<String> = columns.iter().map(|c| c.name.clone()).collect();
    let values = typed_partitions(partitions, &partition_by, columns);
    let batches: Vec<&[Vec<Literal>]> = values.chunks(limit).collect();
    let all = format!("select * from {}", scratch.render(&dml));
    if batches.len() <= 1 {
        return vec![Step::CreateTableAs {
            relation: relation.clone(),
            select: all,
            storage: storage.clone(),
            replace,
        }];
    }
    let mut steps = vec![Step::CreateTableAs {
        relation: relation.clone(),
        select: format!(
            "{all} where {}",
            crate::adapter::ansi::in_list(&partition_by, batches[0], &dml)
        ),
        storage: storage.clone(),
        replace: false,
    }];
    for batch in &batches[1..] {
        steps.push(Step::Insert {
            into: relation.clone(),
            columns: names.clone(),
            from: Source::Relation {
                relation: scratch.clone(),
                filter: Filter::In {
                    columns: partition_by.clone(),
                    values: batch.to_vec(),
                },
            },
        });
    }
    steps
}

/// How a seed's rows reach the warehouse, as its driver read the file.
#[derive(Debug, Clone)]
pub enum SeedSource {
    /// A SELECT the engine runs over the file itself.
    Select(String),
    /// The file, loaded by the adapter's bulk load into a table of these columns.
    File {
        path: std::path::PathBuf,
        options: crate::adapter::CsvOptions,
        columns: Vec<ColumnDef>,
    },
    /// The file's rows, inserted as literals.
    Rows {
        columns: Vec<ColumnDef>,
        rows: Vec<Vec<Literal>>,
    },
}

/// A seed's table: its rows built aside and swapped in like any table's.
pub fn seed(b: &Build, source: &SeedSource, existing: Option<RelationKind>) -> Plan {
    match source {
        SeedSource::Select(select) => table(b, select, existing),
        SeedSource::File {
            path,
            options,
            columns,
        } => {
            let load = |relation: &RelationName, storage: &Storage, _replace: bool| {
                vec![
                    Step::CreateTable {
                        relation: relation.clone(),
                        columns: columns.clone(),
                        storage: storage.clone(),
                    },
                    Step::LoadFile {
                        relation: relation.clone(),
                        path: path.clone(),
                        format: FileFormat::Csv(*options),
                        columns: Vec::new(),
                    },
                ]
            };
            replace_table(b, existing, &load, 1)
        }
        SeedSource::Rows { columns, rows } => {
            let insert = |relation: &RelationName, storage: &Storage, _replace: bool| {
                vec![
                    Step::CreateTable {
                        relation: relation.clone(),
                        columns: columns.clone(),
                        storage: storage.clone(),
                    },
                    Step::InsertRows {
                        relation: relation.clone(),
                        columns: columns.clone(),
                        rows: rows.clone(),
                    },
                ]
            };
            replace_table(b, existing, &insert, 1)
        }
    }
}

/// A view of a SELECT.
pub fn view(b: &Build, select: &str, late_binding: bool, existing: Option<RelationKind>) -> Plan {
    let caps = b.flavour.capabilities();
    let live = b.relation;
    let create = |replace: bool| Step::CreateView {
        relation: live.clone(),
        select: select.to_string(),
        late_binding,
        replace,
    };
    let mut steps = Vec::new();
    if caps.create_or_replace_view && existing != Some(RelationKind::Table) {
        steps.push(create(existing.is_some()));
    } else {
        if let Some(kind) = existing {
            steps.push(b.drop(live, kind));
        }
        steps.push(create(false));
        if existing.is_some() {
            steps.extend(b.dependents());
        }
    }
    Plan {
        blocks: publish(b, steps, caps.transactional_ddl),
        ..Plan::default()
    }
}

/// The first part of an incremental build: the new rows, built aside.
pub fn new_rows(b: &Build, select: &str) -> (RelationName, Plan) {
    let new_rows = b.aside(aside::NEW_ROWS);
    let storage = b.flavour.scratch_storage(&new_rows);
    let plan = Plan {
        blocks: vec![Block::new(
            Role::Prepare,
            false,
            vec![Step::CreateTableAs {
                relation: new_rows.clone(),
                select: select.to_string(),
                storage,
                replace: false,
            }],
        )],
        on_failure: vec![drop_table(&new_rows)],
        count: Vec::new(),
    };
    (new_rows, plan)
}

/// Drops a table strata built aside, if it is there.
pub(super) fn drop_table(relation: &RelationName) -> Step {
    Step::Drop {
        relation: relation.clone(),
        kind: RelationKind::Table,
        cascade: false,
    }
}

/// How an incremental model writes its new rows.
#[derive(Debug, Clone)]
pub struct Increment {
    pub strategy: IncrementalStrategy,
    pub unique_key: Vec<String>,
    pub on_schema_change: OnSchemaChange,
    /// The columns whose values insert_overwrite replaces (`partition_by`, or the table's
    /// partitions).
    pub partition_by: Vec<String>,
    /// `incremental_predicates` (or dbt's older `predicates`): conditions on the rows a merge
    /// or delete+insert may replace, so rows outside them are kept.
    pub predicates: Vec<String>,
    /// `merge_update_columns`: the only columns a merge updates in matched rows.
    pub update_columns: Option<Vec<String>>,
    /// `merge_exclude_columns`: columns a merge leaves as they are in matched rows.
    pub exclude_columns: Vec<String>,
}

/// Column changes between an incremental model's table and its new rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchemaDiff {
    pub added: Vec<ColumnInfo>,
    pub removed: Vec<ColumnInfo>,
    /// Columns whose type the warehouse widens in place, with the wider type.
    pub widened: Vec<ColumnInfo>,
}

impl SchemaDiff {
    pub fn between(
        flavour: &dyn Flavour,
        existing: &[ColumnInfo],
        new: &[ColumnInfo],
    ) -> SchemaDiff {
        let find = |cols: &[ColumnInfo], name: &str| {
            cols.iter()
                .find(|c| c.name.eq_ignore_ascii_case(name))
                .cloned()
        };
        SchemaDiff {
            added: new
                .iter()
                .filter(|c| find(existing, &c.name).is_none())
                .cloned()
                .collect(),
            removed: existing
                .iter()
                .filter(|c| find(new, &c.name).is_none())
                .cloned()
                .collect(),
            widened: new
                .iter()
                .filter_map(|c| {
                    let old = find(existing, &c.name)?;
                    let wider = flavour.widened_type(&old.data_type, &c.data_type)?;
                    Some(ColumnInfo {
                        name: old.name,
                        data_type: wider,
                    })
                })
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty()
    }

    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        for c in &self.added {
            parts.push(format!("+{}", c.name));
        }
        for c in &self.removed {
            parts.push(format!("-{}", c.name));
        }
        parts.join(", ")
    }
}

/// What `on_schema_change` does before an incremental write: the columns the write fills, and
/// the steps that change the table's columns first.
#[derive(Debug, Clone, Default)]
pub struct SchemaChange {
    /// The new rows' columns the write fills (names as the new rows spell them).
    pub columns: Vec<String>,
    /// Column changes that run in the write's commit.
    pub steps: Vec<Step>,
    /// Type widenings that run before it, on their own (where the warehouse cannot alter a
    /// type inside a transaction).
    pub widening: Vec<Step>,
}

impl SchemaChange {
    /// Compares the table's columns with the new rows' and applies `on_schema_change`; `fail`
    /// with a changed column set is an error before anything is written.
    pub fn plan(
        b: &Build,
        existing: &[ColumnInfo],
        new_columns: &[ColumnInfo],
        on_schema_change: OnSchemaChange,
    ) -> Result<SchemaChange, MaterializeError> {
        let flavour = b.flavour;
        let live = b.relation;
        let diff = SchemaDiff::between(flavour, existing, new_columns);
        let mut change = SchemaChange {
            columns: new_columns.iter().map(|c| c.name.clone()).collect(),
            ..SchemaChange::default()
        };
        match on_schema_change {
            _ if diff.is_empty() && diff.widened.is_empty() => {}
            OnSchemaChange::Ignore => {
                change
                    .columns
                    .retain(|c| existing.iter().any(|e| e.name.eq_ignore_ascii_case(c)));
            }
            OnSchemaChange::Fail if !diff.is_empty() => {
                return Err(MaterializeError::SchemaChanged {
                    changes: diff.describe(),
                })
            }
            OnSchemaChange::Fail => {}
            OnSchemaChange::AppendNewColumns | OnSchemaChange::SyncAllColumns => {
                if !diff.added.is_empty() {
                    change.steps.push(Step::AddColumns {
                        relation: live.clone(),
                        columns: diff.added.iter().map(ColumnDef::from).collect(),
                    });
                }
                if !diff.widened.is_empty() {
                    let widen = Step::AlterColumnTypes {
                        relation: live.clone(),
                        columns: diff.widened.iter().map(ColumnDef::from).collect(),
                    };
                    // Widening first, on its own, keeps every row: a failed write after it
                    // leaves only a wider column.
                    if flavour.capabilities().alter_type_in_transaction {
                        change.steps.push(widen);
                    } else {
                        change.widening.push(widen);
                    }
                }
                if on_schema_change == OnSchemaChange::SyncAllColumns && !diff.removed.is_empty() {
                    change.steps.push(Step::DropColumns {
                        relation: live.clone(),
                        columns: diff.removed.iter().map(|c| c.name.clone()).collect(),
                    });
                }
            }
        }
        Ok(change)
    }
}

/// The second part of an incremental build whose statements a project macro wrote: the
/// schema change, then those statements, in one commit where the warehouse has transactions;
/// the new rows dropped after. The rows reported are the last statement's (the write, in
/// every strategy dbt ships).
pub fn apply_written(
    b: &Build,
    new_rows: &RelationName,
    change: SchemaChange,
    statements: Vec<String>,
) -> Plan {
    let SchemaChange {
        mut steps,
        widening,
        ..
    } = change;
    let mut blocks = Vec::new();
    if !widening.is_empty() {
        blocks.push(Block::new(Role::Prepare, false, widening));
    }
    let first = blocks.iter().map(|b| b.steps.len()).sum::<usize>();
    let written = statements.len();
    steps.extend(statements.into_iter().map(Step::Sql));
    let count = match written {
        0 => Vec::new(),
        _ => vec![first + steps.len() - 1],
    };
    blocks.extend(publish(b, steps, b.flavour.capabilities().transactions));
    blocks.push(Block::new(Role::Cleanup, false, vec![drop_table(new_rows)]));
    Plan {
        blocks,
        on_failure: vec![drop_table(new_rows)],
        count,
    }
}

/// One batch of a microbatch model written: the rows of the batch's window deleted and the
/// batch's new rows inserted, with the schema change, the batch's record and the post hooks,
/// in one commit where the warehouse has transactions; the new rows dropped after.
pub fn apply_batch(
    b: &Build,
    new_rows: &RelationName,
    existing: &[ColumnInfo],
    new_columns: &[ColumnInfo],
    on_schema_change: OnSchemaChange,
    window: Filter,
) -> Result<Plan, MaterializeError> {
    if !b.flavour.can_delete_rows(b.storage) {
        return Err(MaterializeError::Config(
            "microbatch".into(),
            format!(
                "a table whose rows can be deleted (each batch replaces its window), which this {} table is not ({:?})",
                b.flavour.name(),
                b.storage
            ),
        ));
    }
    let SchemaChange {
        columns,
        mut steps,
        widening,
    } = SchemaChange::plan(b, existing, new_columns, on_schema_change)?;
    let mut blocks = Vec::new();
    if !widening.is_empty() {
        blocks.push(Block::new(Role::Prepare, false, widening));
    }
    let first = blocks.iter().map(|b| b.steps.len()).sum::<usize>();
    steps.push(Step::Delete {
        from: b.relation.clone(),
        filter: window,
    });
    let counted = first + steps.len();
    steps.push(Step::Insert {
        into: b.relation.clone(),
        columns,
        from: Source::Relation {
            relation: new_rows.clone(),
            filter: Filter::All,
        },
    });
    blocks.extend(publish(b, steps, b.flavour.capabilities().transactions));
    blocks.push(Block::new(Role::Cleanup, false, vec![drop_table(new_rows)]));
    Ok(Plan {
        blocks,
        on_failure: vec![drop_table(new_rows)],
        count: vec![counted],
    })
}

/// Whether the table's storage can take the strategy: where rows cannot be deleted, only
/// appends, `MERGE` and the replacement of whole partitions (`partitions_listed`) work.
pub fn check_increment(
    flavour: &dyn Flavour,
    storage: &Storage,
    increment: &Increment,
    partitions_listed: bool,
) -> Result<(), MaterializeError> {
    let deletes_rows = match increment.strategy {
        IncrementalStrategy::Merge => !flavour.can_merge(storage),
        IncrementalStrategy::DeleteInsert => true,
        IncrementalStrategy::InsertOverwrite => !partitions_listed,
        _ => false,
    };
    if deletes_rows && !flavour.can_delete_rows(storage) {
        return Err(MaterializeError::Config(
            increment.strategy.as_str().to_string(),
            format!(
                "a table whose rows can be deleted, which this {} table is not ({storage:?})",
                flavour.name()
            ),
        ));
    }
    Ok(())
}

/// The second part of an incremental build: the new rows applied to the table in one commit
/// (where the warehouse has transactions), then dropped. `partitions` are the partition values
/// the new rows touch, asked for where the warehouse bounds partitions per write.
pub fn apply_increment(
    b: &Build,
    new_rows: &RelationName,
    existing: &[ColumnInfo],
    new_columns: &[ColumnInfo],
    increment: &Increment,
    partitions: Option<&[Vec<Literal>]>,
) -> Result<Plan, MaterializeError> {
    let flavour = b.flavour;
    let caps = flavour.capabilities();
    let live = b.relation;
    let SchemaChange {
        columns,
        mut steps,
        widening,
    } = SchemaChange::plan(b, existing, new_columns, increment.on_schema_change)?;
    let mut checks = Vec::new();
    let key = &increment.unique_key;
    check_increment(flavour, b.storage, increment, partitions.is_some())?;
    let insert_all = |columns: &[String]| Step::Insert {
        into: live.clone(),
        columns: columns.to_vec(),
        from: Source::Relation {
            relation: new_rows.clone(),
            filter: Filter::All,
        },
    };
    let mut counted = Vec::new();
    // The rows of `relation` matching the new rows on `key` deleted, then the new rows inserted.
    let replace_matching = |steps: &mut Vec<Step>, counted: &mut Vec<usize>, key: &[String]| {
        steps.push(Step::Delete {
            from: live.clone(),
            filter: Filter::Matching {
                relation: new_rows.clone(),
                key: key.to_vec(),
                predicates: increment.predicates.clone(),
            },
        });
        counted.push(steps.len());
        steps.push(insert_all(&columns));
    };
    match &increment.strategy {
        IncrementalStrategy::Append => {
            counted.push(steps.len());
            steps.push(insert_all(&columns));
        }
        IncrementalStrategy::Merge | IncrementalStrategy::DeleteInsert => {
            if key.is_empty() {
                return Err(MaterializeError::Config(
                    increment.strategy.as_str().to_string(),
                    "a `unique_key`".into(),
                ));
            }
            if increment.strategy == IncrementalStrategy::Merge {
                checks.push(Step::CheckUniqueKey {
                    relation: new_rows.clone(),
                    key: key.clone(),
                });
            }
            let partial =
                increment.update_columns.is_some() || !increment.exclude_columns.is_empty();
            if partial && !flavour.can_merge(b.storage) {
                // delete+insert would replace the columns the config keeps.
                return Err(MaterializeError::Config(
                    "merge_update_columns / merge_exclude_columns".into(),
                    format!(
                        "`MERGE`, which the {} warehouse does not run on this table",
                        flavour.name()
                    ),
                ));
            }
            if increment.strategy == IncrementalStrategy::Merge && flavour.can_merge(b.storage) {
                let listed =
                    |list: &[String], c: &str| list.iter().any(|k| k.eq_ignore_ascii_case(c));
                let update: Vec<String> = columns
                    .iter()
                    .filter(|c| !listed(key, c))
                    .filter(|c| match &increment.update_columns {
                        Some(only) => listed(only, c),
                        None => true,
                    })
                    .filter(|c| !listed(&increment.exclude_columns, c))
                    .cloned()
                    .collect();
                counted.push(steps.len());
                steps.push(Step::Merge {
                    into: live.clone(),
                    using: new_rows.clone(),
                    key: key.clone(),
                    update,
                    insert: columns.clone(),
                    predicates: increment.predicates.clone(),
                });
            } else {
                replace_matching(&mut steps, &mut counted, key);
            }
        }
        IncrementalStrategy::InsertOverwrite => {
            let partition_by = &increment.partition_by;
            if partition_by.is_empty() {
                return Err(MaterializeError::Config(
                    "insert_overwrite".into(),
                    "`partition_by` (the columns whose touched values are replaced)".into(),
                ));
            }
            match partitions {
                None => replace_matching(&mut steps, &mut counted, partition_by),
                Some(values) => {
                    let values = typed_partitions(values, partition_by, new_columns);
                    let values = values.as_slice();
                    let limit = flavour
                        .limits()
                        .partitions_per_write
                        .unwrap_or(usize::MAX)
                        .max(1);
                    for batch in values.chunks(limit) {
                        steps.push(Step::DeletePartitions {
                            relation: live.clone(),
                            columns: partition_by.clone(),
                            values: batch.to_vec(),
                            storage: b.storage.clone(),
                        });
                        counted.push(steps.len());
                        steps.push(Step::Insert {
                            into: live.clone(),
                            columns: columns.clone(),
                            from: Source::Relation {
                                relation: new_rows.clone(),
                                filter: Filter::In {
                                    columns: partition_by.clone(),
                                    values: batch.to_vec(),
                                },
                            },
                        });
                    }
                }
            }
        }
        IncrementalStrategy::Cdc => {
            return Err(MaterializeError::Internal(
                "cdc batches are planned by materialize::cdc".into(),
            ))
        }
        IncrementalStrategy::Custom(name) => {
            return Err(MaterializeError::Internal(format!(
                "the custom strategy `{name}` is written by its macro, not planned here"
            )))
        }
        IncrementalStrategy::Microbatch => {
            return Err(MaterializeError::Internal(
                "microbatch batches are planned by apply_batch".into(),
            ))
        }
    }
    let mut blocks = Vec::new();
    if !checks.is_empty() {
        blocks.push(Block::new(Role::Prepare, false, checks));
    }
    if !widening.is_empty() {
        blocks.push(Block::new(Role::Prepare, false, widening));
    }
    let first = blocks.iter().map(|b| b.steps.len()).sum::<usize>();
    let count = counted.into_iter().map(|i| first + i).collect();
    blocks.extend(publish(b, steps, caps.transactions));
    blocks.push(Block::new(Role::Cleanup, false, vec![drop_table(new_rows)]));
    Ok(Plan {
        blocks,
        on_failure: vec![drop_table(new_rows)],
        count,
    })
}

/// Partition values read back as text, typed by their columns where the column is neither
/// text nor a number (dates, timestamps), so IN-lists compare like with like everywhere.
fn typed_partitions(
    values: &[Vec<Literal>],
    columns: &[String],
    types: &[ColumnInfo],
) -> Vec<Vec<Literal>> {
    let type_of = |column: &str| {
        types
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(column))
            .map(|c| c.data_type.clone())
    };
    let needs_cast = |data_type: &str| {
        let lower = data_type.to_ascii_lowercase();
        ["date", "time"].iter().any(|t| lower.contains(t))
    };
    values
        .iter()
        .map(|tuple| {
            tuple
                .iter()
                .zip(columns)
                .map(|(value, column)| match (value, type_of(column)) {
                    (Literal::Text(text), Some(data_type)) if needs_cast(&data_type) => {
                        Literal::Typed {
                            text: text.clone(),
                            data_type,
                        }
                    }
                    (value, _) => value.clone(),
                })
                .collect()
        })
        .collect()
}

/// The comments `persist_docs` stores, on the relation and the columns it has.
pub fn comments(
    flavour: &dyn Flavour,
    relation: &RelationName,
    kind: RelationKind,
    comments: &[super::Comment],
    columns: &[ColumnInfo],
) -> Plan {
    let steps: Vec<Step> = comments
        .iter()
        .filter_map(|comment| match &comment.column {
            None => Some(Step::Comment {
                relation: relation.clone(),
                kind,
                column: None,
                text: comment.text.clone(),
            }),
            // Columns documented in YAML but not produced by the SQL are skipped, as in dbt.
            Some(column) => columns
                .iter()
                .find(|c| c.name.eq_ignore_ascii_case(column))
                .map(|c| Step::Comment {
                    relation: relation.clone(),
                    kind,
                    column: Some(c.name.clone()),
                    text: comment.text.clone(),
                }),
        })
        .collect();
    after_build(flavour, steps)
}

/// The grants that make a relation's privileges what `wanted` says (privilege → grantees, as
/// in `grants:`): what others hold beyond it is revoked, what they lack is granted, as dbt
/// does. Grantee names compare without case, as the warehouse folds them.
pub fn grants(
    flavour: &dyn Flavour,
    relation: &RelationName,
    wanted: &[(String, Vec<String>)],
    current: &[(String, String)],
) -> Plan {
    let same = |a: &str, b: &str| a.trim().eq_ignore_ascii_case(b.trim());
    let mut steps = Vec::new();
    let mut privileges: Vec<&str> = wanted.iter().map(|(p, _)| p.as_str()).collect();
    for (_, privilege) in current {
        if !privileges.iter().any(|p| same(p, privilege)) {
            privileges.push(privilege);
        }
    }
    for privilege in privileges {
        let want: Vec<&String> = wanted
            .iter()
            .filter(|(p, _)| same(p, privilege))
            .flat_map(|(_, g)| g)
            .collect();
        let held: Vec<&String> = current
            .iter()
            .filter(|(_, p)| same(p, privilege))
            .map(|(g, _)| g)
            .collect();
        let revoke: Vec<String> = held
            .iter()
            .filter(|g| !want.iter().any(|w| same(w, g)))
            .map(|g| g.to_string())
            .collect();
        let grant: Vec<String> = want
            .iter()
            .filter(|w| !held.iter().any(|g| same(g, w)))
            .map(|w| w.to_string())
            .collect();
        for (grantees, revoke) in [(revoke, true), (grant, false)] {
            if !grantees.is_empty() {
                steps.push(Step::Grant {
                    relation: relation.clone(),
                    privilege: privilege.to_ascii_lowercase(),
                    grantees,
                    revoke,
                });
            }
        }
    }
    after_build(flavour, steps)
}

/// Steps applied to a relation after its build (comments, grants): one block, in one
/// transaction where DDL is transactional; no plan when there is nothing to do.
fn after_build(flavour: &dyn Flavour, steps: Vec<Step>) -> Plan {
    if steps.is_empty() {
        return Plan::default();
    }
    Plan {
        blocks: vec![Block::new(
            Role::Publish,
            flavour.capabilities().transactional_ddl,
            steps,
        )],
        ..Plan::default()
    }
}

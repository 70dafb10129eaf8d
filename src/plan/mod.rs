//! Build plans: the typed steps a materialization takes, grouped in blocks that say where
//! transactions begin and end, what undoes them, and which block publishes the result. A plan
//! names no warehouse and holds no SQL of its own but the SELECTs it writes and the user's SQL
//! (models, hooks): each warehouse lowers every step itself ([`crate::adapter::Flavour::lower`]),
//! to SQL or to API calls.
//!
//! Plans are data. `materialize/` builds them with pure functions from the node, the relation's
//! current state and the warehouse's answers; the golden plan tests snapshot them lowered for
//! every warehouse; `materialize::execute` runs them.

use std::any::Any;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::adapter::{ColumnInfo, FileFormat, RelationKind};
use crate::relation::RelationName;

/// A plan: blocks run in order.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub blocks: Vec<Block>,
    /// The steps (counted over all blocks, in order) whose rows, summed, the build reports.
    pub count: Vec<usize>,
    /// Run (each alone, errors ignored) when a block before the result is published fails,
    /// after the completed blocks' undo steps: drops of what the plan built aside. Every step
    /// here is safe whether or not the thing it removes exists.
    pub on_failure: Vec<Step>,
}

/// Steps that run together.
#[derive(Debug, Clone)]
pub struct Block {
    pub steps: Vec<Step>,
    /// Whether the steps commit as one transaction (the warehouse has them) or each alone.
    pub transaction: bool,
    pub role: Role,
    /// Steps that take back what this block did, run when a later block fails before the
    /// result is published. A block with undo steps and no transaction has one step.
    pub undo: Vec<Step>,
}

/// Where a block stands in the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Builds aside or checks: a failure undoes what ran and leaves the relation as it was.
    Prepare,
    /// Its success publishes the new relation: the last block a failure undoes.
    Publish,
    /// Runs once the result is published (post hooks and records where DDL is not
    /// transactional): a failure fails the node, but nothing is undone.
    After,
    /// Tidies up after the result is published (dropping a backup): a failure is a warning,
    /// and the next run finishes the job.
    Cleanup,
}

impl Block {
    pub fn new(role: Role, transaction: bool, steps: Vec<Step>) -> Block {
        Block {
            steps,
            transaction,
            role,
            undo: Vec::new(),
        }
    }

    pub fn with_undo(mut self, undo: Vec<Step>) -> Block {
        self.undo = undo;
        self
    }
}

impl Plan {
    /// Every step, in order.
    pub fn steps(&self) -> impl Iterator<Item = &Step> {
        self.blocks.iter().flat_map(|b| b.steps.iter())
    }
}

/// A value written into SQL as a literal (seed rows, file lists, partition values).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Literal {
    Null,
    Bool(bool),
    Int(i64),
    /// Any other value as text; the warehouse casts it to the column's type.
    Text(String),
    /// Text cast to a type, where the SQL compares it with a column of that type (a date
    /// partition value in an IN-list).
    Typed {
        text: String,
        data_type: String,
    },
}

/// A column with its type as the warehouse spells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnDef {
    pub name: String,
    pub data_type: String,
}

impl From<&ColumnInfo> for ColumnDef {
    fn from(column: &ColumnInfo) -> Self {
        ColumnDef {
            name: column.name.clone(),
            data_type: column.data_type.clone(),
        }
    }
}

/// How a table is stored, resolved by the warehouse from the model's config (`dist`, `sort`,
/// `table_type`, `partitioned_by`, …). Opaque to planners, which ask the warehouse about it;
/// lowered by the warehouse that resolved it.
#[derive(Clone)]
pub struct Storage(Arc<dyn StorageSpec>);

/// A warehouse's own storage settings for one table.
pub trait StorageSpec: fmt::Debug + Send + Sync + Any {
    /// The columns the table is partitioned by, in order (insert_overwrite replaces the
    /// partitions the new rows touch; writes are batched by them where the warehouse limits
    /// partitions per write).
    fn partition_columns(&self) -> &[String] {
        &[]
    }

    /// The same settings for a table built aside in the run `run_id` (a storage location
    /// unique to the run, where the warehouse has one).
    fn aside(&self, run_id: &str) -> Storage;

    /// The settings as `key=value` text, for plan snapshots.
    fn describe(&self) -> String;

    fn as_any(&self) -> &dyn Any;
}

impl Storage {
    pub fn new(spec: impl StorageSpec) -> Storage {
        Storage(Arc::new(spec))
    }

    /// Plain storage: the warehouse's defaults, nothing to say.
    pub fn plain() -> Storage {
        Storage::new(Plain)
    }

    pub fn spec(&self) -> &dyn StorageSpec {
        self.0.as_ref()
    }

    /// The warehouse's own settings type, when this storage is one.
    pub fn get<T: 'static>(&self) -> Option<&T> {
        self.0.as_any().downcast_ref::<T>()
    }

    pub fn partition_columns(&self) -> &[String] {
        self.0.partition_columns()
    }
}

impl fmt::Debug for Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.describe())
    }
}

/// The warehouse's default storage.
#[derive(Debug, Clone, Copy)]
struct Plain;

impl StorageSpec for Plain {
    fn aside(&self, _run_id: &str) -> Storage {
        Storage::plain()
    }

    fn describe(&self) -> String {
        String::new()
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Which rows of a relation a step reads or deletes.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    All,
    /// Rows whose `key` columns equal those of some row of `relation`, and for which every
    /// one of `predicates` holds (`incremental_predicates`: SQL in which `DBT_INTERNAL_DEST`
    /// names the filtered table's row and `DBT_INTERNAL_SOURCE` the matching row).
    Matching {
        relation: RelationName,
        key: Vec<String>,
        predicates: Vec<String>,
    },
    /// Rows whose `columns` hold one of the `values` tuples.
    In {
        columns: Vec<String>,
        values: Vec<Vec<Literal>>,
    },
    /// Rows for which `relation` holds a row of the same key whose `order` columns are at
    /// least as new (CDC: changes not newer than what was applied).
    MatchingNotOlder {
        relation: RelationName,
        key: Vec<String>,
        order: Vec<String>,
    },
    /// Rows whose text `column` is `value` (NULL counting as the empty string).
    Equals {
        column: String,
        value: String,
    },
    /// Rows whose text `column` is not `value` (NULL counting as the empty string).
    NotEquals {
        column: String,
        value: String,
    },
    /// Rows whose `column` is at or after `start` and before `end`, both SQL expressions (a
    /// microbatch batch's window).
    Window {
        column: String,
        start: String,
        end: String,
    },
}

/// What an insert reads.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// Rows of a relation, filtered.
    Relation {
        relation: RelationName,
        filter: Filter,
    },
    /// A SELECT (the model's, or one the planner wrote).
    Query(String),
}

/// What strata records about a build in its own state, committed with the build where the
/// warehouse allows (see `crate::state`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateWrite {
    /// A view stands as this fingerprint says.
    ViewFingerprint {
        view: RelationName,
        fingerprint: String,
    },
    /// The landing files a relation has consumed. `replace_all` forgets what was recorded
    /// before (a full build); otherwise the files are added, replacing rows of the same path.
    Files {
        relation: RelationName,
        replace_all: bool,
        files: Vec<RecordedFile>,
    },
    /// The batches of a microbatch model that were built (`start`, `end`, as
    /// [`crate::materialize::microbatch::Batch::bound`] writes them). `replace_all` forgets
    /// what was recorded before (a first build or a full refresh).
    Batches {
        relation: RelationName,
        replace_all: bool,
        batches: Vec<(String, String)>,
    },
}

/// One landing file a relation consumed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RecordedFile {
    pub source_name: String,
    pub table_name: String,
    pub path: String,
    pub size: u64,
}

/// One thing a plan does.
#[derive(Debug, Clone)]
pub enum Step {
    CreateSchema {
        database: Option<String>,
        schema: String,
    },
    /// Drops a schema and everything in it, if it exists (`adapter.drop_schema` in a macro).
    DropSchema {
        database: Option<String>,
        schema: String,
    },
    /// A table of a SELECT's rows; `replace` replaces the relation of that name in the same
    /// statement (warehouses with `create or replace table`).
    CreateTableAs {
        relation: RelationName,
        select: String,
        storage: Storage,
        replace: bool,
    },
    CreateView {
        relation: RelationName,
        select: String,
        /// The view resolves its relations when read, not when created (Redshift's
        /// `with no schema binding`, from `bind: false`).
        late_binding: bool,
        replace: bool,
    },
    /// An empty table of typed columns (seeds, staged landing files).
    CreateTable {
        relation: RelationName,
        columns: Vec<ColumnDef>,
        storage: Storage,
    },
    /// Literal rows; a planner splits these to fit the warehouse's statement limit.
    InsertRows {
        relation: RelationName,
        columns: Vec<ColumnDef>,
        rows: Vec<Vec<Literal>>,
    },
    /// A local file (CSV with a header, or Parquet) loaded into an existing table by the
    /// warehouse's bulk load (PostgreSQL's `COPY … FROM STDIN`, Redshift's `COPY` from S3).
    /// `columns` are the table columns the file's columns fill, in file order; every column
    /// when empty.
    LoadFile {
        relation: RelationName,
        path: PathBuf,
        format: FileFormat,
        columns: Vec<String>,
    },
    /// Files in the warehouse's own storage (an S3 prefix) loaded into an existing table, each
    /// row tagged with its file's path in `source_column`: the warehouse reads them where they
    /// lie (Athena: through an external table over `prefix`, named `reader`, dropped after).
    LoadRemote {
        relation: RelationName,
        /// The folder the files lie in, ending in `/` (`s3://bucket/landing/orders/`).
        prefix: String,
        /// The files to load, as listed (full URIs).
        files: Vec<String>,
        /// The files' columns, typed for the warehouse, in file order.
        columns: Vec<ColumnDef>,
        source_column: String,
        reader: RelationName,
    },
    Insert {
        into: RelationName,
        columns: Vec<String>,
        from: Source,
    },
    Delete {
        from: RelationName,
        filter: Filter,
    },
    /// Removes whole partitions of a table partitioned by `columns` (insert_overwrite): a row
    /// delete where rows can be deleted, the partitions themselves where the table is files
    /// in folders (Athena's Hive tables).
    DeletePartitions {
        relation: RelationName,
        columns: Vec<String>,
        values: Vec<Vec<Literal>>,
        storage: Storage,
    },
    /// Updates the rows of `into` whose key matches a row of `using`, inserts the others.
    Merge {
        into: RelationName,
        using: RelationName,
        key: Vec<String>,
        update: Vec<String>,
        insert: Vec<String>,
        /// `incremental_predicates`, added to the match condition (see [`Filter::Matching`]).
        predicates: Vec<String>,
    },
    AddColumns {
        relation: RelationName,
        columns: Vec<ColumnDef>,
    },
    DropColumns {
        relation: RelationName,
        columns: Vec<String>,
    },
    /// Widens columns in place to the given types (`varchar(10)` to `varchar(20)`).
    AlterColumnTypes {
        relation: RelationName,
        columns: Vec<ColumnDef>,
    },
    Rename {
        from: RelationName,
        to: String,
        kind: RelationKind,
    },
    /// Drops a relation if it exists; `cascade` where views bound to it go with it.
    Drop {
        relation: RelationName,
        kind: RelationKind,
        cascade: bool,
    },
    Comment {
        relation: RelationName,
        kind: RelationKind,
        column: Option<String>,
        text: String,
    },
    /// Grants (or, with `revoke`, takes back) one privilege on a relation (`grants:` config).
    /// A grantee written `group name` or `role name` is granted as such (Redshift).
    Grant {
        relation: RelationName,
        privilege: String,
        grantees: Vec<String>,
        revoke: bool,
    },
    /// Speeds up reads by one column where the warehouse has indexes (staged landing files'
    /// `_source_file`); nothing elsewhere.
    IndexColumn {
        relation: RelationName,
        column: String,
    },
    /// Fails the plan, before anything is written, when `key` is NULL or repeats in
    /// `relation` (a merge's new rows). Runs as queries.
    CheckUniqueKey {
        relation: RelationName,
        key: Vec<String>,
    },
    /// Points the definition of `live` at the data and columns of `from` in one catalog
    /// call, drops the definition of `from`, and deletes the data `live` had (warehouses whose
    /// tables are definitions over files, swapped by [`crate::adapter::SwapMethod::Repoint`]).
    Repoint {
        live: RelationName,
        from: RelationName,
    },
    /// A snapshot's staged changes applied: the versions `staged` closes (rows whose
    /// `change_type` is `update` or `delete`, matched on `scd_id`) get its `valid_to`, and the
    /// versions it opens (`insert`) are inserted with `columns`. One commit: two statements in
    /// a transaction, or one `MERGE` where the warehouse has no transactions.
    ApplySnapshot {
        relation: RelationName,
        staged: RelationName,
        columns: Vec<String>,
        scd_id: String,
        valid_to: String,
        change_type: String,
    },
    /// SQL as the user (hooks) or the warehouse (views re-created after a cascade) wrote it.
    Sql(String),
    Record(StateWrite),
}

impl Step {
    /// The relations the step changes (the catalog forgets them when a plan fails midway).
    pub fn changes(&self) -> Vec<&RelationName> {
        match self {
            Step::CreateTableAs { relation, .. }
            | Step::CreateView { relation, .. }
            | Step::CreateTable { relation, .. }
            | Step::InsertRows { relation, .. }
            | Step::LoadFile { relation, .. }
            | Step::LoadRemote { relation, .. }
            | Step::AddColumns { relation, .. }
            | Step::DropColumns { relation, .. }
            | Step::AlterColumnTypes { relation, .. }
            | Step::Drop { relation, .. }
            | Step::DeletePartitions { relation, .. }
            | Step::ApplySnapshot { relation, .. } => vec![relation],
            Step::Insert { into, .. } | Step::Merge { into, .. } => vec![into],
            Step::Delete { from, .. } => vec![from],
            Step::Rename { from, .. } => vec![from],
            Step::Repoint { live, from } => vec![live, from],
            Step::CreateSchema { .. }
            | Step::DropSchema { .. }
            | Step::Comment { .. }
            | Step::Grant { .. }
            | Step::IndexColumn { .. }
            | Step::CheckUniqueKey { .. }
            | Step::Sql(_)
            | Step::Record(_) => Vec::new(),
        }
    }
}

/// Facts about the run every plan of it shares.
#[derive(Debug, Clone)]
pub struct RunContext {
    /// A short id unique to the run: relations built aside carry it, so a killed run's leftovers
    /// are told apart from this run's and cleared.
    pub run_id: String,
    pub full_refresh: bool,
    /// The run's start: a microbatch model's current batch is the one holding it.
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// The window microbatch models build (`--event-time-start`/`--event-time-end`).
    pub event_time_start: Option<chrono::DateTime<chrono::Utc>>,
    pub event_time_end: Option<chrono::DateTime<chrono::Utc>>,
    /// A retry: the failed batches of each microbatch model, built again and no others.
    pub retry_batches:
        std::collections::HashMap<RelationName, Vec<crate::materialize::microbatch::Batch>>,
}

/// The suffix strata gives a relation built aside for `live`, and which kind of aside it is.
pub mod aside {
    use super::RelationName;

    /// Built aside, swapped in when complete.
    pub const STAGED: &str = "tmp";
    /// An incremental model's new rows, before they are applied.
    pub const NEW_ROWS: &str = "new";
    /// The previous table during a swap where DDL is not transactional.
    pub const BACKUP: &str = "backup";
    /// An empty table whose columns tell a query's column types (unit tests).
    pub const PROBE: &str = "probe";
    /// A snapshot run's changes: the versions it closes and opens, before they are applied.
    pub const CHANGES: &str = "changes";

    const MARK: &str = "__strata_";

    /// `<live>__strata_<what>_<run id>`, shortened to `max_length` characters by cutting the
    /// live name and adding a digest of it, so two long names never meet.
    pub fn name(live: &RelationName, what: &str, run_id: &str, max_length: usize) -> RelationName {
        let suffix = format!("{MARK}{what}_{run_id}");
        let identifier = if live.identifier.len() + suffix.len() <= max_length {
            format!("{}{suffix}", live.identifier)
        } else {
            let digest = crate::util::sha256_hex(live.identifier.as_bytes());
            let keep = max_length.saturating_sub(suffix.len() + 9);
            let mut cut = keep.min(live.identifier.len());
            while !live.identifier.is_char_boundary(cut) {
                cut -= 1;
            }
            format!("{}_{}{suffix}", &live.identifier[..cut], &digest[..8])
        };
        RelationName::new(live.database.clone(), live.schema.clone(), identifier)
    }

    /// What a relation name built by [`name`] says: the live name's identifier (when it was not
    /// shortened), the kind of aside and the run id. `None` for names strata did not build.
    pub fn parse(identifier: &str) -> Option<Aside<'_>> {
        let at = identifier.rfind(MARK)?;
        let (live, rest) = (&identifier[..at], &identifier[at + MARK.len()..]);
        let (what, run_id) = rest.split_once('_')?;
        let known = [
            super::aside::STAGED,
            super::aside::NEW_ROWS,
            super::aside::BACKUP,
            super::aside::PROBE,
            super::aside::CHANGES,
        ];
        if live.is_empty() || !known.contains(&what) || run_id.is_empty() {
            return None;
        }
        Some(Aside { live, what, run_id })
    }

    /// A parsed aside name.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Aside<'a> {
        pub live: &'a str,
        pub what: &'a str,
        pub run_id: &'a str,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aside_names_round_trip_and_stay_within_the_limit() {
        let live = RelationName::new(None, "s", "orders");
        let staged = aside::name(&live, aside::STAGED, "1a2b3c4d", 63);
        assert_eq!(staged.identifier, "orders__strata_tmp_1a2b3c4d");
        assert_eq!(
            aside::parse(&staged.identifier),
            Some(aside::Aside {
                live: "orders",
                what: "tmp",
                run_id: "1a2b3c4d"
            })
        );
        let long = RelationName::new(None, "s", "x".repeat(80));
        let short = aside::name(&long, aside::BACKUP, "1a2b3c4d", 63);
        assert_eq!(short.identifier.len(), 63);
        assert_ne!(
            short.identifier,
            aside::name(
                &RelationName::new(None, "s", format!("{}y", "x".repeat(79))),
                aside::BACKUP,
                "1a2b3c4d",
                63
            )
            .identifier
        );
        assert!(aside::parse("orders").is_none());
        assert!(aside::parse("orders__strata_views").is_none());
        assert!(aside::parse("__strata_tmp_1").is_none());
    }
}

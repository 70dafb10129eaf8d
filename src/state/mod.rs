//! strata's own state in the warehouse — view fingerprints, the landing files each model and
//! staged source has consumed, the batches of microbatch models built, CDC tombstones — behind
//! one interface, [`StateStore`], kept in one schema of the target set aside for strata
//! (`<target schema>_strata` unless the target's `state_schema` says otherwise), out of the
//! way of anyone browsing the models' schemas.
//!
//! Materializations say *what* to record ([`StateWrite`]); the store says *how*: as steps in the
//! build's own commit (so rows and their bookmarks commit together), or held and written in one
//! batch at the end of the run where each small write is expensive. A store has its own
//! connection handle, so a target may later keep its state elsewhere without any
//! materialization changing. Projects built by earlier versions, which kept these tables beside
//! the models, are migrated on their next run.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use crate::adapter::{Adapter, AdapterError, Cell, RelationInfo, RelationKind};
use crate::catalog::{Catalog, SchemaName};
use crate::plan::{Block, ColumnDef, Filter, Literal, Plan, Role, Source, StateWrite, Step};
use crate::relation::RelationName;

/// The table of view fingerprints.
pub const VIEWS_TABLE: &str = "strata_views";
/// The table of consumed landing files.
pub const FILES_TABLE: &str = "strata_files";
/// The table of microbatch models' built batches.
pub const BATCHES_TABLE: &str = "strata_batches";

/// What older versions kept beside the models, and what it becomes.
const LEGACY_VIEWS: &str = "strata__views";
const LEGACY_FILES_SUFFIX: &str = "__strata_files";
const LEGACY_CDC_SUFFIX: &str = "__strata_cdc";

/// Where strata's state lives in a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateLocation {
    pub database: Option<String>,
    pub schema: String,
}

impl StateLocation {
    pub fn schema_name(&self) -> SchemaName {
        SchemaName {
            database: self.database.clone(),
            schema: self.schema.clone(),
        }
    }

    fn table(&self, name: &str) -> RelationName {
        RelationName::new(self.database.clone(), self.schema.clone(), name)
    }
}

/// Recorded files of one relation: path to size.
pub type FileRecords = HashMap<String, u64>;

/// strata's state, however it is stored.
#[async_trait]
pub trait StateStore: Send + Sync + std::fmt::Debug {
    /// The schema the state lives in, listed with the run's schemas.
    fn location(&self) -> &StateLocation;

    /// Makes the state ready for a run: creates its schema and tables if missing, and moves in
    /// what older versions kept in the schemas the catalog has listed. Returns what it moved,
    /// for the run to report.
    async fn open(&self, catalog: &Catalog) -> Result<Vec<String>, AdapterError>;

    /// Every recorded view fingerprint, by view; none when a run that was changing views died
    /// before writing theirs (its views are then re-created once, which is always safe).
    async fn view_fingerprints(&self) -> Result<HashMap<RelationName, String>, AdapterError>;

    /// Marks that this run is about to change views whose fingerprints it writes only as it
    /// ends: until [`StateStore::flush`] clears the mark, no recorded fingerprint is trusted.
    async fn begin_views(&self) -> Result<(), AdapterError>;

    /// The files each of `relations` has consumed.
    async fn files(
        &self,
        relations: &[RelationName],
    ) -> Result<HashMap<RelationName, FileRecords>, AdapterError>;

    /// The batches recorded as built for a microbatch model (`start`, `end`).
    async fn batches(&self, relation: &RelationName)
        -> Result<Vec<(String, String)>, AdapterError>;

    /// Where a CDC model keeps the tombstones of its deleted keys: a table in the model's
    /// warehouse, since its build joins against it.
    fn tombstones(&self, model: &RelationName) -> RelationName;

    /// The steps that record `write` inside a build's commit; `None` when the store holds the
    /// write instead and writes it after the build commits ([`StateStore::defer`]).
    fn inline(&self, write: &StateWrite) -> Option<Vec<Step>>;

    /// Takes a write of a build that committed, which [`StateStore::inline`] did not place.
    fn defer(&self, write: StateWrite);

    /// Writes what was deferred: one delete and one insert per table, whatever the number of
    /// builds. The run calls it as it ends.
    async fn flush(&self) -> Result<(), AdapterError>;
}

/// The relation name of the row in the fingerprints' table that marks a run changing views.
const IN_FLIGHT: &str = "";

/// The state's tables and how writes to them read as plan steps: pure, so plans can be shown
/// without a connection.
#[derive(Debug, Clone)]
pub struct StateTables {
    pub location: StateLocation,
    /// `recorded_at` of every row this run writes (its start, as text).
    pub recorded_at: String,
    /// The warehouse's longest identifier (tombstone tables' names are cut to fit).
    pub identifier_length: usize,
}

/// The state as tables in the target's warehouse.
#[derive(Debug)]
pub struct WarehouseState {
    adapter: Arc<dyn Adapter>,
    tables: StateTables,
    /// Hold every write for one batch at the end of the run (warehouses where a small write is
    /// a slow commit) instead of writing it with its build.
    batch: bool,
    pending: Mutex<Vec<StateWrite>>,
    /// The run's id, once it has set the in-flight mark (the flush clears it).
    marked: Mutex<Option<String>>,
    /// A mark left by an earlier run was seen (it must be deleted before this run sets its own).
    stale_mark: std::sync::atomic::AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A state table's columns: the relation key, then `rest`, then `recorded_at`.
fn keyed_columns(rest: &[(&str, &str)]) -> Vec<ColumnDef> {
    RELATION_KEY
        .iter()
        .map(|name| (*name, "varchar(1024)"))
        .chain(rest.iter().copied())
        .chain([("recorded_at", "timestamp")])
        .map(|(name, data_type)| ColumnDef {
            name: name.into(),
            data_type: data_type.into(),
        })
        .collect()
}

fn views_columns() -> Vec<ColumnDef> {
    keyed_columns(&[("fingerprint", "varchar(64)")])
}

fn files_columns() -> Vec<ColumnDef> {
    keyed_columns(&[
        ("source_name", "varchar(256)"),
        ("table_name", "varchar(256)"),
        ("file_path", "varchar(4096)"),
        ("file_size", "bigint"),
    ])
}

fn batches_columns() -> Vec<ColumnDef> {
    keyed_columns(&[("batch_start", "varchar(64)"), ("batch_end", "varchar(64)")])
}

const RELATION_KEY: [&str; 3] = ["relation_database", "relation_schema", "relation_name"];

fn relation_key(relation: &RelationName) -> Vec<Literal> {
    vec![
        Literal::Text(relation.database.clone().unwrap_or_default()),
        Literal::Text(relation.schema.clone()),
        Literal::Text(relation.identifier.clone()),
    ]
}

fn key_columns() -> Vec<String> {
    RELATION_KEY.iter().map(|c| c.to_string()).collect()
}

/// The steps replacing rows of a table keyed by relation: every row of the `whole` relations,
/// the rows of `keyed` (relation plus one more column), then the new `rows`.
fn replacing(
    table: RelationName,
    columns: Vec<ColumnDef>,
    whole: Vec<Vec<Literal>>,
    (key_column, keyed): (&str, Vec<Vec<Literal>>),
    rows: Vec<Vec<Literal>>,
) -> Vec<Step> {
    let mut steps = Vec::new();
    if !whole.is_empty() {
        steps.push(Step::Delete {
            from: table.clone(),
            filter: Filter::In {
                columns: key_columns(),
                values: whole,
            },
        });
    }
    if !keyed.is_empty() {
        let mut key = key_columns();
        key.push(key_column.into());
        steps.push(Step::Delete {
            from: table.clone(),
            filter: Filter::In {
                columns: key,
                values: keyed,
            },
        });
    }
    if !rows.is_empty() {
        steps.push(Step::InsertRows {
            relation: table,
            columns,
            rows,
        });
    }
    steps
}

impl StateTables {
    pub fn new(
        location: StateLocation,
        started: chrono::DateTime<chrono::Utc>,
        identifier_length: usize,
    ) -> StateTables {
        StateTables {
            location,
            recorded_at: started.format("%Y-%m-%d %H:%M:%S").to_string(),
            identifier_length,
        }
    }

    pub fn views_table(&self) -> RelationName {
        self.location.table(VIEWS_TABLE)
    }

    pub fn files_table(&self) -> RelationName {
        self.location.table(FILES_TABLE)
    }

    pub fn batches_table(&self) -> RelationName {
        self.location.table(BATCHES_TABLE)
    }

    /// Where a CDC model's tombstones are kept: `cdc__<schema>__<model>`, cut to fit.
    pub fn tombstones(&self, model: &RelationName) -> RelationName {
        let limit = self.identifier_length;
        let name = format!("cdc__{}__{}", model.schema, model.identifier);
        let identifier = if name.len() <= limit {
            name
        } else {
            let digest = crate::util::sha256_hex(name.as_bytes());
            let mut cut = limit.saturating_sub(9);
            while !name.is_char_boundary(cut) {
                cut -= 1;
            }
            format!("{}_{}", &name[..cut], &digest[..8])
        };
        self.location.table(&identifier)
    }

    /// Where a write goes: the steps that record it in a build's commit, or `None` when it is
    /// held for the run's end. View fingerprints are a cache of what stands, so they are always
    /// held (one write per run instead of one per view; measured at three quarters of a DuckDB
    /// view's cost) behind an in-flight mark; landing-file records are what make a daily run
    /// read each file once, so they commit with their rows unless `batch` says each write is
    /// too slow for that.
    pub fn placement(&self, write: &StateWrite, batch: bool) -> Option<Vec<Step>> {
        match write {
            StateWrite::ViewFingerprint { .. } => None,
            StateWrite::Files { .. } | StateWrite::Batches { .. } if batch => None,
            StateWrite::Files { .. } | StateWrite::Batches { .. } => {
                Some(self.steps_for(std::slice::from_ref(write)))
            }
        }
    }

    fn marker_key() -> Vec<Literal> {
        vec![
            Literal::Text(IN_FLIGHT.into()),
            Literal::Text(IN_FLIGHT.into()),
            Literal::Text(IN_FLIGHT.into()),
        ]
    }

    /// The steps setting the in-flight mark, or (`set` false) clearing it.
    pub fn marker_steps(&self, set: bool, run_id: &str) -> Vec<Step> {
        let mut steps = vec![Step::Delete {
            from: self.views_table(),
            filter: Filter::In {
                columns: key_columns(),
                values: vec![Self::marker_key()],
            },
        }];
        if set {
            let mut row = Self::marker_key();
            row.push(Literal::Text(format!("in flight: run {run_id}")));
            row.push(Literal::Text(self.recorded_at.clone()));
            steps.push(Step::InsertRows {
                relation: self.views_table(),
                columns: views_columns(),
                rows: vec![row],
            });
        }
        steps
    }

    /// The steps recording `writes`, grouped so each table takes one delete and one insert.
    pub fn steps_for(&self, writes: &[StateWrite]) -> Vec<Step> {
        let mut view_keys = Vec::new();
        let mut view_rows = Vec::new();
        let mut file_deletes = Vec::new();
        let mut whole_deletes = Vec::new();
        let mut file_rows = Vec::new();
        let mut batch_wholes = Vec::new();
        let mut batch_deletes = Vec::new();
        let mut batch_rows = Vec::new();
        for write in writes {
            match write {
                StateWrite::ViewFingerprint { view, fingerprint } => {
                    view_keys.push(relation_key(view));
                    let mut row = relation_key(view);
                    row.push(Literal::Text(fingerprint.clone()));
                    row.push(Literal::Text(self.recorded_at.clone()));
                    view_rows.push(row);
                }
                StateWrite::Files {
                    relation,
                    replace_all,
                    files,
                } => {
                    if *replace_all {
                        whole_deletes.push(relation_key(relation));
                    } else {
                        for file in files {
                            let mut key = relation_key(relation);
                            key.push(Literal::Text(file.path.clone()));
                            file_deletes.push(key);
                        }
                    }
                    for file in files {
                        let mut row = relation_key(relation);
                        row.extend([
                            Literal::Text(file.source_name.clone()),
                            Literal::Text(file.table_name.clone()),
                            Literal::Text(file.path.clone()),
                            Literal::Int(i64::try_from(file.size).unwrap_or(i64::MAX)),
                            Literal::Text(self.recorded_at.clone()),
                        ]);
                        file_rows.push(row);
                    }
                }
                StateWrite::Batches {
                    relation,
                    replace_all,
                    batches,
                } => {
                    for (start, end) in batches {
                        let mut key = relation_key(relation);
                        key.push(Literal::Text(start.clone()));
                        if !*replace_all {
                            batch_deletes.push(key.clone());
                        }
                        key.extend([
                            Literal::Text(end.clone()),
                            Literal::Text(self.recorded_at.clone()),
                        ]);
                        batch_rows.push(key);
                    }
                    if *replace_all {
                        batch_wholes.push(relation_key(relation));
                    }
                }
            }
        }
        let mut steps = Vec::new();
        if !view_keys.is_empty() {
            steps.push(Step::Delete {
                from: self.views_table(),
                filter: Filter::In {
                    columns: key_columns(),
                    values: view_keys,
                },
            });
            steps.push(Step::InsertRows {
                relation: self.views_table(),
                columns: views_columns(),
                rows: view_rows,
            });
        }
        steps.extend(replacing(
            self.files_table(),
            files_columns(),
            whole_deletes,
            ("file_path", file_deletes),
            file_rows,
        ));
        steps.extend(replacing(
            self.batches_table(),
            batches_columns(),
            batch_wholes,
            ("batch_start", batch_deletes),
            batch_rows,
        ));
        steps
    }
}

impl WarehouseState {
    pub fn new(
        adapter: Arc<dyn Adapter>,
        location: StateLocation,
        batch: bool,
        started: chrono::DateTime<chrono::Utc>,
    ) -> WarehouseState {
        let identifier_length = adapter.flavour().limits().identifier_length;
        WarehouseState {
            adapter,
            tables: StateTables::new(location, started, identifier_length),
            batch,
            pending: Mutex::new(Vec::new()),
            marked: Mutex::new(None),
            stale_mark: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn views_table(&self) -> RelationName {
        self.tables.views_table()
    }

    fn files_table(&self) -> RelationName {
        self.tables.files_table()
    }

    fn steps_for(&self, writes: &[StateWrite]) -> Vec<Step> {
        self.tables.steps_for(writes)
    }

    /// The steps moving one schema's legacy state tables into the state schema.
    fn migration(&self, schema: &SchemaName, relations: &[RelationInfo]) -> Vec<(String, Plan)> {
        let flavour = self.adapter.flavour();
        let transaction = flavour.capabilities().transactional_ddl;
        let dml = flavour.quote_style(crate::adapter::StatementKind::Dml);
        let database = schema.database.clone().unwrap_or_default();
        let text = |value: &str| crate::relation::string_literal(value);
        let mut plans = Vec::new();
        for relation in relations {
            if relation.kind != RelationKind::Table {
                continue;
            }
            let name = &relation.name;
            let identifier = name.identifier.as_str();
            // The rows of a legacy table copied into one of the state's, keyed by relation.
            let copy = |into: RelationName,
                        columns: Vec<ColumnDef>,
                        relation_name: String,
                        rest: &str| {
                vec![Step::Insert {
                    into,
                    columns: columns.into_iter().map(|c| c.name).collect(),
                    from: Source::Query(format!(
                        "select {} as relation_database, {} as relation_schema, {relation_name} as relation_name, {rest} from {}",
                        text(&database),
                        text(&schema.schema),
                        name.render(&dml)
                    )),
                }]
            };
            let (what, steps) = if identifier == LEGACY_VIEWS {
                (
                    format!("view fingerprints of schema `{}`", schema.schema),
                    copy(
                        self.views_table(),
                        views_columns(),
                        "view_name".into(),
                        "fingerprint, recorded_at",
                    ),
                )
            } else if let Some(model) = identifier.strip_suffix(LEGACY_FILES_SUFFIX) {
                (
                    format!("file bookmarks of `{}.{model}`", schema.schema),
                    copy(
                        self.files_table(),
                        files_columns(),
                        text(model),
                        "source_name, table_name, file_path, file_size, recorded_at",
                    ),
                )
            } else if let Some(model) = identifier.strip_suffix(LEGACY_CDC_SUFFIX) {
                let live = RelationName::new(schema.database.clone(), schema.schema.clone(), model);
                let tombstones = self.tombstones(&live);
                (
                    format!("CDC tombstones of `{}.{model}`", schema.schema),
                    vec![
                        Step::Drop {
                            relation: tombstones.clone(),
                            kind: RelationKind::Table,
                            cascade: false,
                        },
                        Step::CreateTableAs {
                            relation: tombstones,
                            select: format!("select * from {}", name.render(&dml)),
                            storage: crate::plan::Storage::plain(),
                            replace: false,
                        },
                    ],
                )
            } else {
                continue;
            };
            let mut steps = steps;
            steps.push(Step::Drop {
                relation: name.clone(),
                kind: RelationKind::Table,
                cascade: false,
            });
            plans.push((
                what,
                Plan {
                    blocks: vec![Block::new(Role::Publish, transaction, steps)],
                    ..Plan::default()
                },
            ));
        }
        plans
    }
}

/// Runs one of the state's own plans (they hold no checks, so every error is the adapter's).
async fn run(
    adapter: &dyn Adapter,
    catalog: &Catalog,
    state: &dyn StateStore,
    plan: &Plan,
) -> Result<(), AdapterError> {
    crate::materialize::execute::run_plan(adapter, catalog, state, plan)
        .await
        .map(|_| ())
        .map_err(|err| match err {
            crate::materialize::MaterializeError::Adapter(err) => err,
            other => AdapterError::Internal(other.to_string()),
        })
}

#[async_trait]
impl StateStore for WarehouseState {
    fn location(&self) -> &StateLocation {
        &self.tables.location
    }

    async fn open(&self, catalog: &Catalog) -> Result<Vec<String>, AdapterError> {
        let adapter = self.adapter.as_ref();
        let state_schema = self.tables.location.schema_name();
        catalog.list([state_schema.clone()]).await?;
        let mut setup = Vec::new();
        let existing: BTreeSet<String> = catalog
            .relations_in(&state_schema)
            .into_iter()
            .map(|r| r.name.identifier)
            .collect();
        if existing.is_empty() {
            setup.push(Step::CreateSchema {
                database: self.tables.location.database.clone(),
                schema: self.tables.location.schema.clone(),
            });
        }
        for (table, columns) in [
            (self.views_table(), views_columns()),
            (self.files_table(), files_columns()),
            (self.tables.batches_table(), batches_columns()),
        ] {
            if !existing.contains(&table.identifier) {
                setup.push(Step::CreateTable {
                    relation: table,
                    columns,
                    storage: crate::plan::Storage::plain(),
                });
            }
        }
        if !setup.is_empty() {
            let plan = Plan {
                blocks: vec![Block::new(Role::Publish, false, setup)],
                ..Plan::default()
            };
            run(adapter, catalog, self, &plan).await?;
        }
        let mut moved = Vec::new();
        for schema in catalog.listed_schemas() {
            if schema == state_schema {
                continue;
            }
            let relations = catalog.relations_in(&schema);
            for (what, plan) in self.migration(&schema, &relations) {
                run(adapter, catalog, self, &plan).await?;
                moved.push(what);
            }
        }
        Ok(moved)
    }

    async fn view_fingerprints(&self) -> Result<HashMap<RelationName, String>, AdapterError> {
        let style = self
            .adapter
            .flavour()
            .quote_style(crate::adapter::StatementKind::Dml);
        let table = self
            .adapter
            .query(&format!(
                "select relation_database, relation_schema, relation_name, fingerprint from {}",
                self.views_table().render(&style)
            ))
            .await?;
        let interrupted = table.rows.iter().any(|row| {
            matches!((row.get(2), row.first()), (Some(Cell::Text(name)), Some(Cell::Text(db))) if name == IN_FLIGHT && db == IN_FLIGHT)
        });
        if interrupted {
            self.stale_mark
                .store(true, std::sync::atomic::Ordering::Relaxed);
            return Ok(HashMap::new());
        }
        Ok(table
            .rows
            .iter()
            .filter_map(
                |row| match (row.first(), row.get(1), row.get(2), row.get(3)) {
                    (
                        Some(Cell::Text(database)),
                        Some(Cell::Text(schema)),
                        Some(Cell::Text(name)),
                        Some(Cell::Text(fingerprint)),
                    ) => Some((
                        RelationName::new(
                            (!database.is_empty()).then(|| database.clone()),
                            schema.clone(),
                            name.clone(),
                        ),
                        fingerprint.clone(),
                    )),
                    _ => None,
                },
            )
            .collect())
    }

    async fn files(
        &self,
        relations: &[RelationName],
    ) -> Result<HashMap<RelationName, FileRecords>, AdapterError> {
        let mut out: HashMap<RelationName, FileRecords> = HashMap::new();
        if relations.is_empty() {
            return Ok(out);
        }
        let style = self
            .adapter
            .flavour()
            .quote_style(crate::adapter::StatementKind::Dml);
        let names: BTreeSet<&str> = relations.iter().map(|r| r.identifier.as_str()).collect();
        let listed: Vec<String> = names
            .iter()
            .map(|n| crate::relation::string_literal(n))
            .collect();
        let table = self
            .adapter
            .query(&format!(
                "select relation_database, relation_schema, relation_name, file_path, file_size from {} where relation_name in ({})",
                self.files_table().render(&style),
                listed.join(", ")
            ))
            .await?;
        for row in &table.rows {
            let (
                Some(Cell::Text(database)),
                Some(Cell::Text(schema)),
                Some(Cell::Text(name)),
                Some(Cell::Text(path)),
                Some(size),
            ) = (row.first(), row.get(1), row.get(2), row.get(3), row.get(4))
            else {
                continue;
            };
            let Some(relation) = relations.iter().find(|r| {
                r.identifier == *name
                    && r.schema == *schema
                    && r.database.clone().unwrap_or_default() == *database
            }) else {
                continue;
            };
            let size = match size {
                Cell::Int(n) => u64::try_from(*n).unwrap_or(0),
                Cell::Text(s) => s.parse().unwrap_or(0),
                _ => 0,
            };
            out.entry(relation.clone())
                .or_default()
                .insert(path.clone(), size);
        }
        Ok(out)
    }

    async fn batches(
        &self,
        relation: &RelationName,
    ) -> Result<Vec<(String, String)>, AdapterError> {
        let style = self
            .adapter
            .flavour()
            .quote_style(crate::adapter::StatementKind::Dml);
        let text = |value: &str| crate::relation::string_literal(value);
        let table = self
            .adapter
            .query(&format!(
                "select batch_start, batch_end from {} where relation_database = {} and relation_schema = {} and relation_name = {}",
                self.tables.batches_table().render(&style),
                text(relation.database.as_deref().unwrap_or_default()),
                text(&relation.schema),
                text(&relation.identifier),
            ))
            .await?;
        Ok(table
            .rows
            .iter()
            .filter_map(|row| match (row.first(), row.get(1)) {
                (Some(Cell::Text(start)), Some(Cell::Text(end))) => {
                    Some((start.clone(), end.clone()))
                }
                _ => None,
            })
            .collect())
    }

    fn tombstones(&self, model: &RelationName) -> RelationName {
        self.tables.tombstones(model)
    }

    async fn begin_views(&self) -> Result<(), AdapterError> {
        // The run is known by its start, the time every row it writes carries.
        let run_id = self.tables.recorded_at.clone();
        let mut steps = self.tables.marker_steps(true, &run_id);
        if !self.stale_mark.load(std::sync::atomic::Ordering::Relaxed) {
            // No mark stands: nothing to delete before setting one.
            steps.remove(0);
        }
        let transaction = self.adapter.flavour().capabilities().transactions;
        let plan = Plan {
            blocks: vec![Block::new(Role::Publish, transaction, steps)],
            ..Plan::default()
        };
        let catalog = Catalog::new(self.adapter.clone());
        run(self.adapter.as_ref(), &catalog, self, &plan).await?;
        *lock(&self.marked) = Some(run_id);
        Ok(())
    }

    fn inline(&self, write: &StateWrite) -> Option<Vec<Step>> {
        self.tables.placement(write, self.batch)
    }

    fn defer(&self, write: StateWrite) {
        lock(&self.pending).push(write);
    }

    async fn flush(&self) -> Result<(), AdapterError> {
        let writes = std::mem::take(&mut *lock(&self.pending));
        let marked = lock(&self.marked).take();
        if writes.is_empty() && marked.is_none() {
            return Ok(());
        }
        let mut steps = self.steps_for(&writes);
        if let Some(run_id) = &marked {
            // Cleared in the same commit as the fingerprints it guarded.
            steps.extend(self.tables.marker_steps(false, run_id));
        }
        let transaction = self.adapter.flavour().capabilities().transactions;
        let plan = Plan {
            blocks: vec![Block::new(Role::Publish, transaction, steps)],
            ..Plan::default()
        };
        let plan = crate::materialize::bounds::bound(plan, self.adapter.flavour());
        let catalog = Catalog::new(self.adapter.clone());
        run(self.adapter.as_ref(), &catalog, self, &plan).await
    }
}

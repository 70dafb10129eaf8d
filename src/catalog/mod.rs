//! What the warehouse holds, as a run knows it: every schema the run touches is listed once
//! (one catalog read per schema, not one per model, which on a warehouse where each query is a
//! polled round trip costs seconds per model), then kept up to date from the plans the run
//! executes. A relation the listing did not cover is looked up alone, once.
//!
//! This room only remembers; it never decides what to build.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::adapter::{Adapter, AdapterError, RelationInfo, RelationKind};
use crate::plan::Step;
use crate::relation::RelationName;

/// A schema, as the catalog keys it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SchemaName {
    pub database: Option<String>,
    pub schema: String,
}

impl SchemaName {
    pub fn of(relation: &RelationName) -> SchemaName {
        SchemaName {
            database: relation.database.clone(),
            schema: relation.schema.clone(),
        }
    }
}

/// What is known about one name.
#[derive(Debug, Clone)]
enum Entry {
    /// The relation, with its columns as last read; `columns_current` is false once the run
    /// changed it (its columns are read again when asked for).
    Present {
        info: RelationInfo,
        columns_current: bool,
    },
    /// The run changed it in a way it cannot follow (a failed plan): ask the warehouse.
    Unknown,
}

/// A cached answer.
enum Cached {
    /// As the warehouse has it now (`None`: it does not exist).
    Current(Option<RelationInfo>),
    /// It exists as this kind; its columns changed since they were read.
    Stale(RelationInfo),
    Unknown,
}

#[derive(Debug, Default)]
struct Listed {
    /// Schemas listed whole: a name missing from one does not exist.
    schemas: HashMap<SchemaName, HashMap<String, Entry>>,
    /// Relations looked up alone (in schemas not listed).
    single: HashMap<RelationName, Option<RelationInfo>>,
}

/// The run's view of the warehouse catalog.
#[derive(Debug)]
pub struct Catalog {
    adapter: Arc<dyn Adapter>,
    listed: Mutex<Listed>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Catalog {
    /// A catalog that knows nothing yet.
    pub fn new(adapter: Arc<dyn Adapter>) -> Catalog {
        Catalog {
            adapter,
            listed: Mutex::default(),
        }
    }

    /// Lists each schema not listed yet: one catalog read per schema.
    pub async fn list(
        &self,
        schemas: impl IntoIterator<Item = SchemaName>,
    ) -> Result<(), AdapterError> {
        for schema in schemas {
            if lock(&self.listed).schemas.contains_key(&schema) {
                continue;
            }
            let relations = self
                .adapter
                .list_schema(schema.database.as_deref(), &schema.schema)
                .await?;
            let entries = relations
                .into_iter()
                .map(|info| {
                    (
                        info.name.identifier.clone(),
                        Entry::Present {
                            info,
                            columns_current: true,
                        },
                    )
                })
                .collect();
            lock(&self.listed).schemas.insert(schema, entries);
        }
        Ok(())
    }

    /// The schemas listed so far.
    pub fn listed_schemas(&self) -> Vec<SchemaName> {
        let mut schemas: Vec<SchemaName> = lock(&self.listed).schemas.keys().cloned().collect();
        schemas.sort();
        schemas
    }

    /// Every relation of a listed schema, as known now.
    pub fn relations_in(&self, schema: &SchemaName) -> Vec<RelationInfo> {
        let listed = lock(&self.listed);
        let mut out: Vec<RelationInfo> = listed
            .schemas
            .get(schema)
            .into_iter()
            .flat_map(|entries| entries.values())
            .filter_map(|entry| match entry {
                Entry::Present { info, .. } => Some(info.clone()),
                Entry::Unknown => None,
            })
            .collect();
        out.sort_by(|a, b| a.name.identifier.cmp(&b.name.identifier));
        out
    }

    /// What the catalog holds for `relation` without asking the warehouse.
    fn cached(&self, relation: &RelationName) -> Cached {
        let listed = lock(&self.listed);
        if let Some(entries) = listed.schemas.get(&SchemaName::of(relation)) {
            let entry = entries.get(&relation.identifier).or_else(|| {
                // Catalogs fold case their own way; names strata builds are quoted exactly, so
                // a case-insensitive match is the same relation.
                entries
                    .iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case(&relation.identifier))
                    .map(|(_, entry)| entry)
            });
            return match entry {
                None => Cached::Current(None),
                Some(Entry::Present {
                    info,
                    columns_current: true,
                }) => Cached::Current(Some(info.clone())),
                Some(Entry::Present { info, .. }) => Cached::Stale(info.clone()),
                Some(Entry::Unknown) => Cached::Unknown,
            };
        }
        match listed.single.get(relation) {
            Some(known) => Cached::Current(known.clone()),
            None => Cached::Unknown,
        }
    }

    /// Whether `relation` exists and is a table or a view.
    pub async fn kind(
        &self,
        relation: &RelationName,
    ) -> Result<Option<RelationKind>, AdapterError> {
        match self.cached(relation) {
            Cached::Current(known) => Ok(known.map(|info| info.kind)),
            Cached::Stale(info) => Ok(Some(info.kind)),
            Cached::Unknown => Ok(self.lookup(relation).await?.map(|info| info.kind)),
        }
    }

    /// The relation with its current columns.
    pub async fn relation(
        &self,
        relation: &RelationName,
    ) -> Result<Option<RelationInfo>, AdapterError> {
        match self.cached(relation) {
            Cached::Current(known) => Ok(known),
            Cached::Stale(_) | Cached::Unknown => self.lookup(relation).await,
        }
    }

    /// Asks the warehouse about one relation and remembers the answer.
    async fn lookup(&self, relation: &RelationName) -> Result<Option<RelationInfo>, AdapterError> {
        let found = self.adapter.relation(relation).await?;
        self.remember(relation, found.clone());
        Ok(found)
    }

    fn remember(&self, relation: &RelationName, found: Option<RelationInfo>) {
        let mut listed = lock(&self.listed);
        match listed.schemas.get_mut(&SchemaName::of(relation)) {
            Some(entries) => match found {
                Some(info) => {
                    entries.insert(
                        relation.identifier.clone(),
                        Entry::Present {
                            info,
                            columns_current: true,
                        },
                    );
                }
                None => {
                    entries.remove(&relation.identifier);
                }
            },
            None => {
                listed.single.insert(relation.clone(), found);
            }
        }
    }

    /// Follows what an executed step did to the catalog.
    pub fn apply(&self, step: &Step) {
        match step {
            Step::CreateTableAs { relation, .. } | Step::CreateTable { relation, .. } => {
                self.created(relation, RelationKind::Table)
            }
            Step::CreateView { relation, .. } => self.created(relation, RelationKind::View),
            Step::Drop { relation, .. } => self.remember(relation, None),
            Step::Rename { from, to, kind } => {
                let target = RelationName::new(from.database.clone(), from.schema.clone(), to);
                let moved = match self.cached(from) {
                    Cached::Current(Some(info)) => Some(info),
                    _ => None,
                };
                self.remember(from, None);
                match moved {
                    Some(mut info) => {
                        info.name = target.clone();
                        self.remember(&target, Some(info));
                    }
                    None => self.created(&target, *kind),
                }
            }
            Step::AddColumns { relation, .. }
            | Step::DropColumns { relation, .. }
            | Step::AlterColumnTypes { relation, .. } => self.stale(relation),
            Step::Repoint { live, from } => {
                self.remember(from, None);
                self.stale(live);
            }
            _ => {}
        }
    }

    /// A relation the run created: it exists, its columns are read when asked for.
    fn created(&self, relation: &RelationName, kind: RelationKind) {
        let mut listed = lock(&self.listed);
        let entry = Entry::Present {
            info: RelationInfo {
                name: relation.clone(),
                kind,
                columns: Vec::new(),
            },
            columns_current: false,
        };
        match listed.schemas.get_mut(&SchemaName::of(relation)) {
            Some(entries) => {
                entries.insert(relation.identifier.clone(), entry);
            }
            None => {
                // Not listed: forget it, so the next question asks the warehouse.
                listed.single.remove(relation);
            }
        }
    }

    fn stale(&self, relation: &RelationName) {
        let mut listed = lock(&self.listed);
        if let Some(Entry::Present {
            columns_current, ..
        }) = listed
            .schemas
            .get_mut(&SchemaName::of(relation))
            .and_then(|entries| entries.get_mut(&relation.identifier))
        {
            *columns_current = false;
        }
        listed.single.remove(relation);
    }

    /// Forgets what is known of `relation`: a plan that touched it failed midway.
    pub fn forget(&self, relation: &RelationName) {
        let mut listed = lock(&self.listed);
        if let Some(entries) = listed.schemas.get_mut(&SchemaName::of(relation)) {
            entries.insert(relation.identifier.clone(), Entry::Unknown);
        }
        listed.single.remove(relation);
    }

    pub fn adapter(&self) -> &Arc<dyn Adapter> {
        &self.adapter
    }
}

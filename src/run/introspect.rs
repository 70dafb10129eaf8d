//! The warehouse as templates reach it (`run_query`, statement blocks, `adapter.get_relation`
//! and the like): the connected adapter behind the template room's [`WarehouseAccess`], its
//! answers turned into plain values and its DDL lowered by the warehouse's own flavour.
//!
//! Templates render synchronously, on rayon's threads or on the runtime's own; each call blocks
//! on the adapter's future without starving the runtime.

use std::future::Future;
use std::sync::Arc;

use serde_json::Value as Json;

use crate::adapter::{Adapter, Cell, Lowered, RelationKind};
use crate::plan::Step;
use crate::relation::RelationName;
use crate::template::warehouse::{FoundRelation, QueryResult, WarehouseAccess};

/// A connected adapter, for templates.
#[derive(Debug)]
pub struct Introspection {
    adapter: Arc<dyn Adapter>,
    handle: tokio::runtime::Handle,
}

impl Introspection {
    /// `handle` is the runtime the adapter's connections live on.
    pub fn new(adapter: Arc<dyn Adapter>, handle: tokio::runtime::Handle) -> Self {
        Introspection { adapter, handle }
    }

    fn block<F: Future>(&self, future: F) -> F::Output {
        if tokio::runtime::Handle::try_current().is_ok() {
            // On one of the runtime's workers: hand its other tasks to another worker first.
            tokio::task::block_in_place(|| self.handle.block_on(future))
        } else {
            self.handle.block_on(future)
        }
    }

    fn run_step(&self, step: &Step) -> Result<(), String> {
        for lowered in self.adapter.flavour().lower(step) {
            match lowered {
                Lowered::Sql { text, .. } => {
                    self.block(self.adapter.execute(&text))
                        .map_err(|e| e.to_string())?;
                }
                Lowered::Api(call) => {
                    self.block(self.adapter.call(&call))
                        .map_err(|e| e.to_string())?;
                }
                other => return Err(format!("cannot run `{other}` for a template")),
            }
        }
        Ok(())
    }
}

fn kind_of(relation: &FoundRelation) -> RelationKind {
    if relation.kind == "view" {
        RelationKind::View
    } else {
        RelationKind::Table
    }
}

fn found(info: crate::adapter::RelationInfo) -> FoundRelation {
    FoundRelation {
        name: info.name,
        kind: match info.kind {
            RelationKind::View => "view".into(),
            _ => "table".into(),
        },
        columns: info
            .columns
            .into_iter()
            .map(|c| (c.name, c.data_type))
            .collect(),
    }
}

/// A cell as a template sees it: decimals (which warehouses print as text) become numbers
/// where their column is numeric, as dbt's agate tables hold `Decimal`s.
fn cell(value: Cell, data_type: &str) -> Json {
    match value {
        Cell::Null => Json::Null,
        Cell::Bool(b) => Json::from(b),
        Cell::Int(i) => Json::from(i),
        Cell::Float(x) => serde_json::Number::from_f64(x).map_or(Json::Null, Json::Number),
        Cell::Text(text) => {
            let numeric = {
                let t = data_type.to_ascii_lowercase();
                [
                    "decimal", "numeric", "number", "int", "float", "double", "real",
                ]
                .iter()
                .any(|n| t.contains(n))
            };
            if numeric {
                if let Ok(i) = text.parse::<i64>() {
                    return Json::from(i);
                }
                if let Some(n) = text
                    .parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                {
                    return Json::Number(n);
                }
            }
            Json::from(text)
        }
    }
}

impl WarehouseAccess for Introspection {
    fn query(&self, sql: &str) -> Result<QueryResult, String> {
        let table = self
            .block(self.adapter.query(sql))
            .map_err(|e| e.to_string())?;
        let types: Vec<String> = table.columns.iter().map(|c| c.data_type.clone()).collect();
        Ok(QueryResult {
            columns: table
                .columns
                .into_iter()
                .map(|c| (c.name, c.data_type))
                .collect(),
            rows: table
                .rows
                .into_iter()
                .map(|row| {
                    row.into_iter()
                        .enumerate()
                        .map(|(i, v)| cell(v, types.get(i).map(String::as_str).unwrap_or("")))
                        .collect()
                })
                .collect(),
        })
    }

    fn execute(&self, sql: &str) -> Result<String, String> {
        let outcome = self
            .block(self.adapter.execute(sql))
            .map_err(|e| e.to_string())?;
        Ok(match outcome.rows_affected {
            Some(rows) => format!("OK {rows}"),
            None => "OK".into(),
        })
    }

    fn relation(&self, name: &RelationName) -> Result<Option<FoundRelation>, String> {
        self.block(self.adapter.relation(name))
            .map(|found| found.map(self::found))
            .map_err(|e| e.to_string())
    }

    fn list_relations(
        &self,
        database: Option<&str>,
        schema: &str,
    ) -> Result<Vec<FoundRelation>, String> {
        self.block(self.adapter.list_schema(database, schema))
            .map(|found| found.into_iter().map(self::found).collect())
            .map_err(|e| e.to_string())
    }

    fn query_columns(
        &self,
        sql: &str,
        near: &RelationName,
    ) -> Result<Vec<(String, String)>, String> {
        let flavour = self.adapter.flavour();
        let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
        let probe = crate::plan::aside::name(
            near,
            crate::plan::aside::PROBE,
            &run_id,
            flavour.limits().identifier_length,
        );
        self.create_schema(probe.database.as_deref(), &probe.schema)?;
        self.run_step(&Step::CreateTableAs {
            relation: probe.clone(),
            select: format!("select * from ({sql}) as strata_probe where 1 = 0"),
            storage: flavour.scratch_storage(&probe),
            replace: false,
        })?;
        let found = self.block(self.adapter.relation(&probe));
        let dropped = self.run_step(&Step::Drop {
            relation: probe.clone(),
            kind: RelationKind::Table,
            cascade: false,
        });
        let columns = found
            .map_err(|e| e.to_string())?
            .map(|info| {
                info.columns
                    .into_iter()
                    .map(|c| (c.name, c.data_type))
                    .collect()
            })
            .ok_or_else(|| format!("`{probe}`, made to read a query's columns, vanished"))?;
        dropped?;
        Ok(columns)
    }

    fn schema_exists(&self, database: Option<&str>, schema: &str) -> Result<bool, String> {
        self.block(self.adapter.schema_exists(database, schema))
            .map_err(|e| e.to_string())
    }

    fn create_schema(&self, database: Option<&str>, schema: &str) -> Result<(), String> {
        // Through the run's own once-per-schema creation: a template creating the schema a
        // node of the run is creating at the same time must not race it (on Athena and
        // PostgreSQL two concurrent `create schema if not exists` can fail).
        let relation = RelationName::new(database.map(str::to_string), schema, "");
        self.block(crate::materialize::ensure_schema(
            self.adapter.as_ref(),
            &relation,
        ))
        .map_err(|e| e.to_string())
    }

    fn drop_schema(&self, database: Option<&str>, schema: &str) -> Result<(), String> {
        self.run_step(&Step::DropSchema {
            database: database.map(str::to_string),
            schema: schema.to_string(),
        })
    }

    fn rename_relation(&self, relation: &FoundRelation, to: &str) -> Result<(), String> {
        self.run_step(&Step::Rename {
            from: relation.name.clone(),
            to: to.to_string(),
            kind: kind_of(relation),
        })
    }

    fn truncate_relation(&self, relation: &RelationName) -> Result<(), String> {
        self.run_step(&Step::Delete {
            from: relation.clone(),
            filter: crate::plan::Filter::All,
        })
    }

    fn drop_relation(&self, relation: &FoundRelation) -> Result<(), String> {
        self.run_step(&Step::Drop {
            relation: relation.name.clone(),
            kind: kind_of(relation),
            cascade: true,
        })
    }
}

//! A warehouse for tests: a real connection (embedded DuckDB, usually) seen through an adjusted
//! flavour — no transactional DDL, small limits, seeds by inserts — that can fail on demand.
//! `fail_at` makes one statement fail as a warehouse error would; `kill_after` makes every call
//! after that many statements fail, as if the process had died there: nothing more reaches
//! the warehouse, not even the undo of what ran. Every statement that ran is logged.
//!
//! The swap tests use it to show that no failure and no kill between two steps loses a table,
//! and the bounds tests to run plans against limits no embedded engine has.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::flavour::{Adjusted, Flavour};
use super::{
    Adapter, AdapterError, ApiCall, ExecOutcome, FileLoad, KnownSchemas, RelationInfo, Table,
};
use crate::relation::RelationName;

/// A table partitioned by columns, and nothing else: tests give DuckDB partitioned tables with it
/// (through [`super::flavour::Adjusted::storage`]).
#[derive(Debug, Clone)]
pub struct Partitioned(pub Vec<String>);

impl crate::plan::StorageSpec for Partitioned {
    fn partition_columns(&self) -> &[String] {
        &self.0
    }

    fn aside(&self, _run_id: &str) -> crate::plan::Storage {
        crate::plan::Storage::new(self.clone())
    }

    fn describe(&self) -> String {
        format!("partitioned by {}", self.0.join(", "))
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// A connection that fails on demand.
#[derive(Debug)]
pub struct TestWarehouse {
    inner: Arc<dyn Adapter>,
    flavour: Adjusted,
    /// Statements run so far (queries not counted).
    statements: AtomicUsize,
    fail_at: Option<usize>,
    kill_after: Option<usize>,
    log: Mutex<Vec<String>>,
}

impl TestWarehouse {
    pub fn new(inner: Arc<dyn Adapter>, flavour: Adjusted) -> TestWarehouse {
        TestWarehouse {
            inner,
            flavour,
            statements: AtomicUsize::new(0),
            fail_at: None,
            kill_after: None,
            log: Mutex::new(Vec::new()),
        }
    }

    /// The statement of this number (1-based) fails.
    pub fn failing_at(mut self, statement: usize) -> TestWarehouse {
        self.fail_at = Some(statement);
        self
    }

    /// Everything after this many statements fails.
    pub fn killed_after(mut self, statements: usize) -> TestWarehouse {
        self.kill_after = Some(statements);
        self
    }

    /// The statements that ran, in order.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn dead(&self) -> Result<(), AdapterError> {
        match self.kill_after {
            Some(limit) if self.statements.load(Ordering::SeqCst) >= limit => {
                Err(AdapterError::Database {
                    message: "the test warehouse is gone (a simulated kill)".into(),
                    retryable: false,
                })
            }
            _ => Ok(()),
        }
    }

    /// Admits the next statement, or fails it.
    fn admit(&self, sql: &str) -> Result<(), AdapterError> {
        self.dead()?;
        let number = self.statements.fetch_add(1, Ordering::SeqCst) + 1;
        if self.fail_at == Some(number) {
            return Err(AdapterError::Database {
                message: format!("injected failure of statement {number}: {sql}"),
                retryable: false,
            });
        }
        self.log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(sql.to_string());
        Ok(())
    }
}

#[async_trait]
impl Adapter for TestWarehouse {
    fn flavour(&self) -> &dyn Flavour {
        &self.flavour
    }

    async fn execute(&self, sql: &str) -> Result<ExecOutcome, AdapterError> {
        self.admit(sql)?;
        self.inner.execute(sql).await
    }

    async fn execute_all(
        &self,
        statements: &[String],
        transaction: bool,
    ) -> Result<Vec<ExecOutcome>, AdapterError> {
        if transaction && self.flavour.capabilities().transactions {
            // One transaction: it fails whole, before anything, if any statement would.
            for sql in statements {
                self.admit(sql)?;
            }
            return self.inner.execute_all(statements, true).await;
        }
        let mut outcomes = Vec::with_capacity(statements.len());
        for sql in statements {
            self.admit(sql)?;
            outcomes.push(self.inner.execute(sql).await?);
        }
        Ok(outcomes)
    }

    async fn query(&self, sql: &str) -> Result<Table, AdapterError> {
        self.dead()?;
        self.inner.query(sql).await
    }

    async fn relation(&self, name: &RelationName) -> Result<Option<RelationInfo>, AdapterError> {
        self.dead()?;
        self.inner.relation(name).await
    }

    async fn list_schema(
        &self,
        database: Option<&str>,
        schema: &str,
    ) -> Result<Vec<RelationInfo>, AdapterError> {
        self.dead()?;
        self.inner.list_schema(database, schema).await
    }

    async fn call(&self, call: &ApiCall) -> Result<(), AdapterError> {
        self.admit(&call.to_string())?;
        self.inner.call(call).await
    }

    async fn cancel(&self) -> Result<(), AdapterError> {
        self.inner.cancel().await
    }

    fn known_schemas(&self) -> Option<&KnownSchemas> {
        self.inner.known_schemas()
    }

    async fn list_remote(
        &self,
        location: &str,
    ) -> Result<Option<Vec<(String, u64)>>, AdapterError> {
        self.dead()?;
        self.inner.list_remote(location).await
    }

    async fn fetch_remote(&self, path: &str, to: &std::path::Path) -> Result<(), AdapterError> {
        self.dead()?;
        self.inner.fetch_remote(path, to).await
    }

    async fn load_file(&self, load: &FileLoad<'_>) -> Result<u64, AdapterError> {
        self.admit(&format!("load {}", load.relation))?;
        self.inner.load_file(load).await
    }

    async fn recreate_dependent_views(
        &self,
        relation: &RelationName,
    ) -> Result<Vec<String>, AdapterError> {
        self.dead()?;
        self.inner.recreate_dependent_views(relation).await
    }
}

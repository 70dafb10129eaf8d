//! Counts what each node costs the warehouse: statements (queries included) and transactions,
//! per node, through an adapter wrapped once for the run. The count goes to the node running
//! on the current task, so catalog lookups a node makes are its own; benchmarks report them
//! from `run_results.json`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;

use crate::adapter::{
    Adapter, AdapterError, ApiCall, ExecOutcome, FileLoad, Flavour, KnownSchemas, RelationInfo,
    Table,
};
use crate::relation::RelationName;

/// One node's count.
#[derive(Debug, Default)]
pub struct Counts {
    statements: AtomicUsize,
    transactions: AtomicUsize,
}

impl Counts {
    pub fn statements(&self) -> usize {
        self.statements.load(Ordering::Relaxed)
    }

    pub fn transactions(&self) -> usize {
        self.transactions.load(Ordering::Relaxed)
    }
}

tokio::task_local! {
    /// The count of the node whose work runs on this task.
    pub static NODE: Arc<Counts>;
}

fn count(statements: usize, transactions: usize) {
    let _ = NODE.try_with(|counts| {
        counts.statements.fetch_add(statements, Ordering::Relaxed);
        counts
            .transactions
            .fetch_add(transactions, Ordering::Relaxed);
    });
}

/// An adapter that counts, for the node on the current task, what passes through it.
#[derive(Debug)]
pub struct Counted(pub Arc<dyn Adapter>);

#[async_trait]
impl Adapter for Counted {
    fn flavour(&self) -> &dyn Flavour {
        self.0.flavour()
    }

    async fn execute(&self, sql: &str) -> Result<ExecOutcome, AdapterError> {
        count(1, 0);
        self.0.execute(sql).await
    }

    async fn execute_all(
        &self,
        statements: &[String],
        transaction: bool,
    ) -> Result<Vec<ExecOutcome>, AdapterError> {
        count(
            statements.len(),
            usize::from(transaction && statements.len() > 1),
        );
        self.0.execute_all(statements, transaction).await
    }

    async fn query(&self, sql: &str) -> Result<Table, AdapterError> {
        count(1, 0);
        self.0.query(sql).await
    }

    async fn relation(&self, name: &RelationName) -> Result<Option<RelationInfo>, AdapterError> {
        count(1, 0);
        self.0.relation(name).await
    }

    async fn list_schema(
        &self,
        database: Option<&str>,
        schema: &str,
    ) -> Result<Vec<RelationInfo>, AdapterError> {
        count(1, 0);
        self.0.list_schema(database, schema).await
    }

    async fn call(&self, call: &ApiCall) -> Result<(), AdapterError> {
        count(1, 0);
        self.0.call(call).await
    }

    async fn cancel(&self) -> Result<(), AdapterError> {
        self.0.cancel().await
    }

    fn busy_time(&self) -> std::time::Duration {
        self.0.busy_time()
    }

    fn known_schemas(&self) -> Option<&KnownSchemas> {
        self.0.known_schemas()
    }

    async fn lock_target(&self) -> Result<(), AdapterError> {
        self.0.lock_target().await
    }

    async fn list_remote(
        &self,
        location: &str,
    ) -> Result<Option<Vec<(String, u64)>>, AdapterError> {
        self.0.list_remote(location).await
    }

    async fn fetch_remote(&self, path: &str, to: &std::path::Path) -> Result<(), AdapterError> {
        self.0.fetch_remote(path, to).await
    }

    async fn load_file(&self, load: &FileLoad<'_>) -> Result<u64, AdapterError> {
        count(1 + load.before.len() + load.after.len(), 1);
        self.0.load_file(load).await
    }

    async fn recreate_dependent_views(
        &self,
        relation: &RelationName,
    ) -> Result<Vec<String>, AdapterError> {
        count(1, 0);
        self.0.recreate_dependent_views(relation).await
    }
}

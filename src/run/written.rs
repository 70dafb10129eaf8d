//! The project's macros a model's build calls, rendered for the materialize room on the task
//! that builds the model: a strategy macro ([`crate::materialize::WrittenStrategy`]), once
//! the new rows stand aside, and a custom materialization
//! ([`crate::materialize::WrittenMaterialization`]).

use std::sync::Arc;

use crate::adapter::ColumnInfo;
use crate::relation::RelationName;
use crate::template::context::{NodeInfo, Resolver};
use crate::template::written::{MaterializationRun, StrategyArgs};
use crate::template::Engine;

/// A model's strategy macro, with what its render needs.
#[derive(Debug)]
pub struct TemplateStrategy {
    pub engine: Arc<Engine>,
    /// The model, with its final config and `is_incremental()` true.
    pub node: NodeInfo,
    pub macro_name: String,
    pub resolver: Arc<dyn Resolver>,
    /// The project root, for the file and line of a failing macro.
    pub root: std::path::PathBuf,
}

impl crate::materialize::WrittenStrategy for TemplateStrategy {
    fn name(&self) -> &str {
        &self.macro_name
    }

    fn sql(
        &self,
        target: &RelationName,
        temp: &RelationName,
        dest_columns: &[ColumnInfo],
    ) -> Result<String, String> {
        let args = StrategyArgs {
            target: target.clone(),
            temp: temp.clone(),
            dest_columns: dest_columns
                .iter()
                .map(|c| (c.name.clone(), c.data_type.clone()))
                .collect(),
        };
        self.engine
            .strategy_sql(
                self.node.clone(),
                &self.macro_name,
                &args,
                Some(self.resolver.clone()),
            )
            .map_err(|err| describe(&err, &self.root, &self.node.name))
    }
}

/// A template error as one line: the message, where, and what to do.
fn describe(err: &crate::template::TemplateError, root: &std::path::Path, node: &str) -> String {
    let diagnostic = err.to_diagnostic(root, Some(node));
    let mut message = diagnostic.message.clone();
    if let Some(at) = &diagnostic.location {
        message.push_str(&format!(" ({at})"));
    }
    if let Some(hint) = &diagnostic.hint {
        message.push_str(&format!("; {hint}"));
    }
    message
}

/// A model's custom materialization macro, with what its render needs.
#[derive(Debug)]
pub struct TemplateMaterialization {
    pub engine: Arc<Engine>,
    pub node: NodeInfo,
    pub macro_name: String,
    pub resolver: Arc<dyn Resolver>,
    pub root: std::path::PathBuf,
}

impl crate::materialize::WrittenMaterialization for TemplateMaterialization {
    fn name(&self) -> &str {
        &self.macro_name
    }

    fn run(
        &self,
        sql: &str,
        pre_hooks: &[String],
        post_hooks: &[String],
    ) -> Result<MaterializationRun, String> {
        self.engine
            .run_materialization(
                self.node.clone(),
                &self.macro_name,
                sql,
                (pre_hooks, post_hooks),
                Some(self.resolver.clone()),
            )
            .map_err(|err| describe(&err, &self.root, &self.node.name))
    }
}

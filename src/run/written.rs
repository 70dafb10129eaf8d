//! The project's macros a model's build calls midway, rendered for the materialize room: a
//! strategy macro ([`crate::materialize::WrittenStrategy`]) is rendered with the model's
//! context once its new rows stand aside, on the task that builds it.

use std::sync::Arc;

use crate::adapter::ColumnInfo;
use crate::relation::RelationName;
use crate::template::context::{NodeInfo, Resolver};
use crate::template::written::StrategyArgs;
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
            .map_err(|err| {
                let diagnostic = err.to_diagnostic(&self.root, Some(&self.node.name));
                let mut message = diagnostic.message.clone();
                if let Some(at) = &diagnostic.location {
                    message.push_str(&format!(" ({at})"));
                }
                if let Some(hint) = &diagnostic.hint {
                    message.push_str(&format!("; {hint}"));
                }
                message
            })
    }
}

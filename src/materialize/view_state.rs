//! Which views already stand as this run would create them: a fingerprint per view, kept in a
//! `strata__views` table in the view's schema and written in the view's own transaction, so an
//! unchanged view is left alone instead of re-created (on DuckDB, re-creating a view over
//! landing files lists and sniffs every file it reads).
//!
//! The fingerprint covers the view's name, its compiled SQL and the comments stored on it;
//! where views freeze their inputs' columns at creation (PostgreSQL), also the columns of every
//! relation the SQL reads, so a parent that gained a column gets its views re-created.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use crate::adapter::{Adapter, AdapterError, Cell};
use crate::relation::{string_literal, QuoteStyle, RelationName};

use super::Comment;

/// The state table's name, in each schema that holds views strata built.
pub const STATE_TABLE: &str = "strata__views";

/// A view's fingerprints as recorded in one schema's state table: view name to fingerprint.
pub type Recorded = HashMap<String, String>;

/// The state table of the schema `view` lives in.
pub fn state_relation(view: &RelationName) -> RelationName {
    RelationName::new(view.database.clone(), view.schema.clone(), STATE_TABLE)
}

pub fn create_state_sql(state: &RelationName, style: &QuoteStyle) -> String {
    format!(
        "create table if not exists {} (view_name varchar(1024), fingerprint varchar(64), recorded_at timestamp)",
        state.render(style)
    )
}

/// Creates the state table of `state`'s schema if it is missing and reads what it records.
pub async fn load(adapter: &dyn Adapter, state: &RelationName) -> Result<Recorded, AdapterError> {
    let style = adapter.quote_style();
    super::ensure_schema(adapter, state).await?;
    adapter.execute(&create_state_sql(state, &style)).await?;
    let table = adapter
        .query(&format!(
            "select view_name, fingerprint from {}",
            state.render(&style)
        ))
        .await?;
    Ok(table
        .rows
        .iter()
        .filter_map(|row| match (row.first(), row.get(1)) {
            (Some(Cell::Text(view)), Some(Cell::Text(fingerprint))) => {
                Some((view.clone(), fingerprint.clone()))
            }
            _ => None,
        })
        .collect())
}

/// How one view of the run is checked against, and recorded in, its schema's state table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewPlan {
    pub state: RelationName,
    /// Digest of what is known before the run: name, compiled SQL, comments.
    pub base: String,
    /// Relations whose columns the view freezes (empty where views bind late).
    pub inputs: Vec<RelationName>,
    /// The fingerprint the state table holds for the view, if any.
    pub recorded: Option<String>,
}

impl ViewPlan {
    pub fn new(
        view: &RelationName,
        sql: &str,
        comments: &[Comment],
        inputs: Vec<RelationName>,
        recorded: &Recorded,
    ) -> ViewPlan {
        let mut digest = Sha256::new();
        digest.update(b"strata view 1\0");
        for part in [
            view.database.as_deref().unwrap_or(""),
            &view.schema,
            &view.identifier,
        ] {
            digest.update(part.as_bytes());
            digest.update(b"\0");
        }
        digest.update(sql.trim().as_bytes());
        digest.update(b"\0");
        for comment in comments {
            digest.update(comment.column.as_deref().unwrap_or("").as_bytes());
            digest.update(b"\0");
            digest.update(comment.text.as_bytes());
            digest.update(b"\0");
        }
        ViewPlan {
            state: state_relation(view),
            base: crate::util::hex(&digest.finalize()),
            inputs,
            recorded: recorded.get(&view.identifier).cloned(),
        }
    }

    /// The view's fingerprint now: the base digest plus, where views freeze their inputs, the
    /// columns each input has at this moment (its parents in the run are already built).
    pub async fn fingerprint(&self, adapter: &dyn Adapter) -> Result<String, AdapterError> {
        if self.inputs.is_empty() {
            return Ok(self.base.clone());
        }
        let mut digest = Sha256::new();
        digest.update(self.base.as_bytes());
        for input in &self.inputs {
            digest.update(b"\0");
            digest.update(input.dotted().as_bytes());
            match adapter.relation(input).await? {
                Some(info) => {
                    for column in &info.columns {
                        digest.update(b"\0");
                        digest.update(column.name.as_bytes());
                        digest.update(b" ");
                        digest.update(column.data_type.as_bytes());
                    }
                }
                None => digest.update(b"\0(absent)"),
            }
        }
        Ok(crate::util::hex(&digest.finalize()))
    }

    /// Statements recording `fingerprint` for the view, run in its creation's transaction.
    pub fn record_sql(
        &self,
        view: &RelationName,
        fingerprint: &str,
        style: &QuoteStyle,
    ) -> Vec<String> {
        let table = self.state.render(style);
        let name = string_literal(&view.identifier);
        vec![
            format!("delete from {table} where view_name = {name}"),
            format!(
                "insert into {table} (view_name, fingerprint, recorded_at) values ({name}, {}, current_timestamp)",
                string_literal(fingerprint)
            ),
        ]
    }
}

/// The relations a compiled query reads, as sqlparser wrote them (`db.schema.name`,
/// `schema.name` or `name`), as relation names; one-part names are taken to be in `schema`.
pub fn read_relations(read: &[String], schema: &str) -> Vec<RelationName> {
    let mut out: Vec<RelationName> = read
        .iter()
        .filter_map(|dotted| {
            let parts: Vec<&str> = dotted.split('.').collect();
            match parts[..] {
                [database, schema, name] => {
                    Some(RelationName::new(Some(database.to_string()), schema, name))
                }
                [schema, name] => Some(RelationName::new(None, schema, name)),
                [name] => Some(RelationName::new(None, schema, name)),
                _ => None,
            }
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> RelationName {
        RelationName::new(Some("db".into()), "main", "stg_orders")
    }

    #[test]
    fn the_fingerprint_changes_with_the_sql_the_name_and_the_comments() {
        let recorded = Recorded::new();
        let base = |name: &RelationName, sql: &str, comments: &[Comment]| {
            ViewPlan::new(name, sql, comments, Vec::new(), &recorded).base
        };
        let plain = base(&view(), "select 1 as a", &[]);
        assert_eq!(
            plain,
            base(&view(), "select 1 as a\n", &[]),
            "trailing space"
        );
        assert_ne!(plain, base(&view(), "select 2 as a", &[]));
        let other = RelationName::new(Some("db".into()), "main", "stg_order");
        assert_ne!(plain, base(&other, "select 1 as a", &[]));
        let comment = Comment {
            column: None,
            text: "Orders".into(),
        };
        assert_ne!(plain, base(&view(), "select 1 as a", &[comment]));
    }

    #[test]
    fn the_recorded_fingerprint_is_the_views_own() {
        let recorded: Recorded = [("stg_orders".to_string(), "abc".to_string())].into();
        let plan = ViewPlan::new(&view(), "select 1", &[], Vec::new(), &recorded);
        assert_eq!(plan.recorded.as_deref(), Some("abc"));
        assert_eq!(
            plan.state,
            RelationName::new(Some("db".into()), "main", STATE_TABLE)
        );
        let other = RelationName::new(None, "main", "stg_items");
        assert_eq!(
            ViewPlan::new(&other, "select 1", &[], Vec::new(), &recorded).recorded,
            None
        );
    }

    #[test]
    fn read_relations_qualify_one_part_names_with_the_schema() {
        let read = [
            "db.main.orders".to_string(),
            "raw.items".to_string(),
            "stores".to_string(),
            "db.main.orders".to_string(),
        ];
        assert_eq!(
            read_relations(&read, "analytics"),
            vec![
                RelationName::new(None, "analytics", "stores"),
                RelationName::new(None, "raw", "items"),
                RelationName::new(Some("db".into()), "main", "orders"),
            ]
        );
    }

    #[test]
    fn the_record_replaces_the_views_row() {
        let plan = ViewPlan::new(&view(), "select 1", &[], Vec::new(), &Recorded::new());
        let style = QuoteStyle::default();
        assert_eq!(
            plan.record_sql(&view(), "f00", &style),
            vec![
                "delete from \"db\".\"main\".\"strata__views\" where view_name = 'stg_orders'"
                    .to_string(),
                "insert into \"db\".\"main\".\"strata__views\" (view_name, fingerprint, recorded_at) values ('stg_orders', 'f00', current_timestamp)"
                    .to_string(),
            ]
        );
    }
}

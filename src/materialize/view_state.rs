//! Which views already stand as this run would create them: a fingerprint per view, kept in
//! strata's state and recorded in the view's own transaction, so an unchanged view is left
//! alone instead of re-created (on DuckDB, re-creating a view over landing files lists and
//! sniffs every file it reads).
//!
//! The fingerprint covers the view's name, its compiled SQL and the comments stored on it;
//! where views freeze their inputs' columns at creation (PostgreSQL), also the columns of every
//! relation the SQL reads, so a parent that gained a column gets its views re-created.

use sha2::{Digest, Sha256};

use crate::adapter::AdapterError;
use crate::catalog::Catalog;
use crate::plan::StateWrite;
use crate::relation::RelationName;

use super::Comment;

/// How one view of the run is checked against, and recorded in, strata's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewPlan {
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
        recorded: Option<String>,
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
            base: crate::util::hex(&digest.finalize()),
            inputs,
            recorded,
        }
    }

    /// The view's fingerprint now: the base digest plus, where views freeze their inputs, the
    /// columns each input has at this moment (its parents in the run are already built).
    pub async fn fingerprint(&self, catalog: &Catalog) -> Result<String, AdapterError> {
        if self.inputs.is_empty() {
            return Ok(self.base.clone());
        }
        let mut digest = Sha256::new();
        digest.update(self.base.as_bytes());
        for input in &self.inputs {
            digest.update(b"\0");
            digest.update(input.dotted().as_bytes());
            match catalog.relation(input).await? {
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

    /// What records `fingerprint` for the view, in its creation's transaction.
    pub fn record(&self, view: &RelationName, fingerprint: &str) -> StateWrite {
        StateWrite::ViewFingerprint {
            view: view.clone(),
            fingerprint: fingerprint.to_string(),
        }
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
        let base = |name: &RelationName, sql: &str, comments: &[Comment]| {
            ViewPlan::new(name, sql, comments, Vec::new(), None).base
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
}

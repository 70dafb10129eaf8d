//! Relation names: the database, schema and identifier a node lives at, and how each warehouse
//! quotes them. Shared by templates (rendering `ref()`), graph (selectors) and adapters.

use std::fmt;

use serde::Serialize;

/// A fully qualified relation in the warehouse.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct RelationName {
    pub database: Option<String>,
    pub schema: String,
    pub identifier: String,
}

/// How an adapter writes relation names in SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuoteStyle {
    /// The identifier quote character (`"` for DuckDB, PostgreSQL, Redshift and Athena DML).
    pub quote: char,
    /// Whether names include the database (catalog) part.
    pub include_database: bool,
}

impl Default for QuoteStyle {
    fn default() -> Self {
        QuoteStyle {
            quote: '"',
            include_database: true,
        }
    }
}

/// A SQL string literal: `'text'`, embedded quotes doubled (the same in every warehouse strata
/// speaks to).
pub fn string_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

impl QuoteStyle {
    /// Quotes one identifier, doubling embedded quote characters.
    pub fn quote_identifier(&self, identifier: &str) -> String {
        let q = self.quote;
        let escaped = identifier.replace(q, &format!("{q}{q}"));
        format!("{q}{escaped}{q}")
    }
}

impl RelationName {
    pub fn new(
        database: Option<String>,
        schema: impl Into<String>,
        identifier: impl Into<String>,
    ) -> Self {
        RelationName {
            database,
            schema: schema.into(),
            identifier: identifier.into(),
        }
    }

    /// The name as SQL: `"db"."schema"."identifier"` (parts per the style).
    pub fn render(&self, style: &QuoteStyle) -> String {
        let mut out = String::new();
        if style.include_database {
            if let Some(database) = &self.database {
                out.push_str(&style.quote_identifier(database));
                out.push('.');
            }
        }
        out.push_str(&style.quote_identifier(&self.schema));
        out.push('.');
        out.push_str(&style.quote_identifier(&self.identifier));
        out
    }

    /// Unquoted `schema.identifier` (or with database), for messages and selectors.
    pub fn dotted(&self) -> String {
        match &self.database {
            Some(db) => format!("{db}.{}.{}", self.schema, self.identifier),
            None => format!("{}.{}", self.schema, self.identifier),
        }
    }
}

impl fmt::Display for RelationName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.dotted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_quoted_parts_and_escapes_quotes() {
        let r = RelationName::new(Some("dev".into()), "main", "we\"ird");
        assert_eq!(
            r.render(&QuoteStyle::default()),
            "\"dev\".\"main\".\"we\"\"ird\""
        );
        let style = QuoteStyle {
            quote: '"',
            include_database: false,
        };
        assert_eq!(r.render(&style), "\"main\".\"we\"\"ird\"");
    }
}

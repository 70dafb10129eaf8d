//! The compiled SQL of strata's most common built-in generic tests (`unique`, `not_null`,
//! `accepted_values`, `relationships`), written directly instead of through the template engine.
//!
//! Tests are most of a project's nodes, and rendering each one's macro call costs more than the
//! SQL it yields. The text comes from `template::builtin_tests`, the writer the test macros
//! call too, so both paths give the same SQL; the compile tests check it on every fixture.
//! Anything out of the ordinary — a project override, a namespaced test, an ephemeral or
//! file-backed model, an argument that is not a plain string — returns `None` and goes through
//! the template engine.

use serde_json::Value as Json;

use crate::manifest::generic_tests::{is_builtin, is_call, simple_call, Call};
use crate::manifest::{Manifest, Node, ResourceType};
use crate::relation::RelationName;
use crate::template::builtin_tests as writer;
use crate::template::{Engine, RefCall, Resolved, Resolver};

/// A test's SQL and the relations it legitimately reads.
pub(super) struct NativeTest {
    pub sql: String,
    pub known: Vec<RelationName>,
    /// The relations the SQL reads, as the SQL check would report them, when the SQL is valid
    /// by construction: every part a user wrote is a plain identifier or a quoted literal, so
    /// parsing it could only confirm what is already known. `None` when it must be checked.
    pub relations_read: Option<Vec<String>>,
}

/// The compiled SQL of a built-in test node, or `None` when it must be rendered by the engine.
pub(super) fn render(
    engine: &Engine,
    manifest: &Manifest,
    node: &Node,
    resolver: &dyn Resolver,
) -> Option<NativeTest> {
    let test = node.test.as_ref().filter(|t| t.generic)?;
    if !is_builtin(
        engine,
        test.namespace.as_deref(),
        &test.test_name,
        &node.package_name,
    ) {
        return None;
    }
    let style = engine.shared().style;
    let args = &test.kwargs;
    let has_only = |keys: &[&str]| args.keys().all(|k| keys.contains(&k.as_str()));
    let column = plain_string(args.get("column_name")?)?;

    let mut known = Vec::with_capacity(2);
    let attached = manifest.get(test.attached_node.as_ref()?)?;
    let relation = attached_relation(attached, resolver)?;
    let mut model = relation.render(&style);
    known.push(relation);
    // Whether the SQL is valid by construction (see `NativeTest::relations_read`).
    let mut safe = is_plain_identifier(column);
    if let Some(condition) = node
        .config_map
        .get("where")
        .and_then(Json::as_str)
        .filter(|c| !c.trim().is_empty())
    {
        model = format!("(select * from {model} where {condition}) dbt_subquery");
        safe = false;
    }

    let sql = match test.test_name.as_str() {
        "not_null" if has_only(&["column_name"]) => writer::not_null(&model, column),
        "unique" if has_only(&["column_name"]) => writer::unique(&model, column),
        "accepted_values" if has_only(&["column_name", "values", "quote"]) => {
            let quote = match args.get("quote") {
                None => true,
                Some(Json::Bool(quote)) => *quote,
                Some(_) => return None,
            };
            let Json::Array(values) = args.get("values")? else {
                return None;
            };
            let listed = values
                .iter()
                .map(|value| listed_value(value, quote))
                .collect::<Option<Vec<_>>>()?;
            safe &= quote || values.iter().all(Json::is_number);
            writer::accepted_values(&model, column, &listed)
        }
        "relationships" if has_only(&["column_name", "to", "field"]) => {
            let field = plain_string(args.get("field")?)?;
            safe &= is_plain_identifier(field);
            let Json::String(to) = args.get("to")? else {
                return None;
            };
            let parent = call_relation(simple_call(to)?, resolver, &node.package_name)?;
            let to = parent.render(&style);
            known.push(parent);
            writer::relationships(&model, column, &to, field)
        }
        _ => return None,
    };
    let relations_read = safe.then(|| {
        let mut read: Vec<String> = Vec::with_capacity(known.len());
        for relation in &known {
            let name = as_read(relation, &style);
            if !read.contains(&name) {
                read.push(name);
            }
        }
        read
    });
    Some(NativeTest {
        sql,
        known,
        relations_read,
    })
}

/// A relation as the SQL check reports reading it: its rendered parts, unquoted and dotted.
fn as_read(relation: &RelationName, style: &crate::relation::QuoteStyle) -> String {
    if style.include_database {
        relation.dotted()
    } else {
        format!("{}.{}", relation.schema, relation.identifier)
    }
}

/// A column name that cannot change the shape of the SQL it is pasted into: letters, digits
/// and underscores, not starting with a digit, and not one of the words sqlparser knows as
/// keywords (a column called `order` needs quoting and is left to the SQL check).
fn is_plain_identifier(text: &str) -> bool {
    let mut chars = text.chars();
    let starts_well = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    starts_well
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && sqlparser::keywords::ALL_KEYWORDS
            .binary_search(&text.to_ascii_uppercase().as_str())
            .is_err()
}

/// The relation a test's model argument renders as: the attached node's, when it is a plain
/// relation (not ephemeral, not read from files).
fn attached_relation(attached: &Node, resolver: &dyn Resolver) -> Option<RelationName> {
    let call = match (&attached.resource_type, &attached.source) {
        (ResourceType::Source, Some(source)) => {
            Call::Source(source.source_name.clone(), source.table_name.clone())
        }
        (ResourceType::Model | ResourceType::Seed | ResourceType::Snapshot, _) => {
            Call::Ref(RefCall {
                package: Some(attached.package_name.clone()),
                name: attached.name.clone(),
                version: None,
            })
        }
        _ => return None,
    };
    call_relation(call, resolver, &attached.package_name)
}

/// What a `ref`/`source` call resolves to, when that is a plain relation name.
fn call_relation(call: Call, resolver: &dyn Resolver, from_package: &str) -> Option<RelationName> {
    match call {
        Call::Ref(call) => match resolver.resolve_ref(&call, from_package).ok()? {
            Resolved::Relation(relation) => Some(relation),
            Resolved::Ephemeral { .. } => None,
        },
        Call::Source(source, table) => {
            if resolver.source_expression(&source, &table).is_some() {
                return None;
            }
            resolver.resolve_source(&source, &table).ok()
        }
    }
}

/// A string argument printed as is (`{{ column_name }}`); not one YAML turned into a call.
fn plain_string(value: &Json) -> Option<&str> {
    match value {
        Json::String(text) if !is_call(text) => Some(text),
        _ => None,
    }
}

/// One of `accepted_values`' values as the macro prints it: through the same writer, from
/// the value the macro would receive. Strings YAML turned into calls, and anything but plain
/// strings and numbers, are left to the macro.
fn listed_value(value: &Json, quote: bool) -> Option<String> {
    match value {
        Json::String(text) if !is_call(text) => Some(writer::listed_value(
            &minijinja::Value::from(text.as_str()),
            quote,
        )),
        Json::Number(n) => {
            let value = match (n.as_i64(), n.as_u64(), n.as_f64()) {
                (Some(i), _, _) => minijinja::Value::from(i),
                (_, Some(u), _) => minijinja::Value::from(u),
                (_, _, Some(f)) => minijinja::Value::from(f),
                _ => return None,
            };
            Some(writer::listed_value(&value, quote))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_listed_as_the_macro_lists_them() {
        assert_eq!(
            listed_value(&Json::from("it's"), true).as_deref(),
            Some("'it''s'")
        );
        assert_eq!(listed_value(&Json::from(3), false).as_deref(), Some("3"));
        assert_eq!(listed_value(&Json::from(3), true).as_deref(), Some("'3'"));
        assert_eq!(
            listed_value(&Json::from(1.5), false).as_deref(),
            Some("1.5")
        );
        // A string YAML turned into a call is left to the macro.
        assert_eq!(listed_value(&Json::from("ref('x')"), true), None);
    }

    #[test]
    fn only_plain_non_keyword_names_are_safe_to_paste() {
        assert!(is_plain_identifier("customer_id"));
        assert!(is_plain_identifier("_x9"));
        for unsafe_name in [
            "order",
            "Select",
            "1st",
            "a b",
            "a-b",
            "\"q\"",
            "coalesce(a, b)",
            "",
        ] {
            assert!(!is_plain_identifier(unsafe_name), "{unsafe_name}");
        }
    }
}

//! The SQL most warehouses share for each plan step: what a [`Flavour`] lowers a step to unless
//! it says otherwise. Names are quoted by the flavour's [`QuoteStyle`] for the statement's kind.
//!
//! This is the one place strata's own DDL and DML text is written; the unit tests at the bottom
//! pin it, and the golden plan tests show it per warehouse.

use super::flavour::{Flavour, Lowered, StatementKind};
use crate::adapter::RelationKind;
use crate::plan::{ColumnDef, Filter, Literal, Source, Step};
use crate::relation::{string_literal, QuoteStyle, RelationName};

/// The alias of the relation a delete or merge changes, when its conditions name it.
pub const TARGET: &str = "target";
/// The alias of the rows a delete or merge matches against.
pub const NEW_ROWS: &str = "new_rows";

/// Lowers one step as most warehouses run it.
pub fn lower<F: Flavour + ?Sized>(flavour: &F, step: &Step) -> Vec<Lowered> {
    let ddl = flavour.quote_style(StatementKind::Ddl);
    let dml = flavour.quote_style(StatementKind::Dml);
    let ddl_sql = |text: String| vec![Lowered::sql(StatementKind::Ddl, text)];
    let dml_sql = |text: String| vec![Lowered::sql(StatementKind::Dml, text)];
    match step {
        Step::CreateSchema { database, schema } => ddl_sql(format!(
            "create schema if not exists {}",
            schema_name(database.as_deref(), schema, &ddl)
        )),
        Step::DropSchema { database, schema } => ddl_sql(format!(
            "drop schema if exists {} cascade",
            schema_name(database.as_deref(), schema, &ddl)
        )),
        Step::CreateTableAs {
            relation,
            select,
            replace,
            ..
        } => dml_sql(format!(
            "create {}table {} as (\n{}\n)",
            if *replace { "or replace " } else { "" },
            relation.render(&dml),
            body(select)
        )),
        Step::CreateView {
            relation,
            select,
            replace,
            ..
        } => dml_sql(format!(
            "create {}view {} as (\n{}\n)",
            if *replace { "or replace " } else { "" },
            relation.render(&dml),
            body(select)
        )),
        Step::CreateTable {
            relation, columns, ..
        } => ddl_sql(format!(
            "create table {} ({})",
            relation.render(&ddl),
            column_definitions(columns, &ddl)
        )),
        Step::InsertRows {
            relation,
            columns,
            rows,
        } => dml_sql(insert_rows(flavour, relation, columns, rows)),
        Step::LoadFile {
            relation,
            path,
            format,
            columns,
        } => vec![Lowered::Load {
            relation: relation.clone(),
            path: path.clone(),
            format: *format,
            columns: columns.clone(),
        }],
        // Only warehouses whose adapters list remote locations plan this step (Athena), and
        // their flavours lower it; prepare refuses remote locations elsewhere.
        Step::LoadRemote { .. } => Vec::new(),
        Step::Insert {
            into,
            columns,
            from,
        } => dml_sql(insert(into, columns, from, &dml, true)),
        Step::Delete { from, filter } => dml_sql(delete(from, filter, &dml, true)),
        Step::DeletePartitions {
            relation,
            columns,
            values,
            ..
        } => dml_sql(delete(
            relation,
            &Filter::In {
                columns: columns.clone(),
                values: values.clone(),
            },
            &dml,
            true,
        )),
        Step::Merge {
            into,
            using,
            key,
            update,
            insert,
            predicates,
        } => dml_sql(merge(into, using, key, update, insert, predicates, &dml)),
        Step::AddColumns { relation, columns } => columns
            .iter()
            .map(|c| {
                Lowered::sql(
                    StatementKind::Ddl,
                    format!(
                        "alter table {} add column {} {}",
                        relation.render(&ddl),
                        ddl.quote_identifier(&c.name),
                        c.data_type
                    ),
                )
            })
            .collect(),
        Step::DropColumns { relation, columns } => columns
            .iter()
            .map(|c| {
                Lowered::sql(
                    StatementKind::Ddl,
                    format!(
                        "alter table {} drop column {}",
                        relation.render(&ddl),
                        ddl.quote_identifier(c)
                    ),
                )
            })
            .collect(),
        Step::AlterColumnTypes { relation, columns } => columns
            .iter()
            .map(|c| {
                Lowered::sql(
                    StatementKind::Ddl,
                    format!(
                        "alter table {} alter column {} type {}",
                        relation.render(&ddl),
                        ddl.quote_identifier(&c.name),
                        c.data_type
                    ),
                )
            })
            .collect(),
        Step::Rename { from, to, kind } => ddl_sql(format!(
            "alter {} {} rename to {}",
            kind_word(*kind),
            from.render(&ddl),
            ddl.quote_identifier(to)
        )),
        Step::Drop {
            relation,
            kind,
            cascade,
        } => ddl_sql(format!(
            "drop {} if exists {}{}",
            kind_word(*kind),
            relation.render(&ddl),
            if *cascade { " cascade" } else { "" }
        )),
        Step::Comment {
            relation,
            kind,
            column,
            text,
        } => ddl_sql(match column {
            None => format!(
                "comment on {} {} is {}",
                kind_word(*kind),
                relation.render(&ddl),
                string_literal(text)
            ),
            Some(column) => format!(
                "comment on column {}.{} is {}",
                relation.render(&ddl),
                ddl.quote_identifier(column),
                string_literal(text)
            ),
        }),
        Step::Grant {
            relation,
            privilege,
            grantees,
            revoke,
        } => {
            let to: Vec<String> = grantees.iter().map(|g| grantee(g, &ddl)).collect();
            ddl_sql(format!(
                "{} {} on {} {} {}",
                if *revoke { "revoke" } else { "grant" },
                privilege_word(privilege),
                relation.render(&ddl),
                if *revoke { "from" } else { "to" },
                to.join(", ")
            ))
        }
        Step::IndexColumn { .. } | Step::Record(_) => Vec::new(),
        Step::CheckUniqueKey { relation, key } => vec![key_check(relation, key, &dml)],
        Step::ApplySnapshot {
            relation,
            staged,
            columns,
            scd_id,
            valid_to,
            change_type,
        } => {
            let q = |name: &str| dml.quote_identifier(name);
            let list = column_list(columns, &dml);
            vec![
                Lowered::sql(
                    StatementKind::Dml,
                    format!(
                        "update {} as {TARGET} set {vt} = {NEW_ROWS}.{vt} from {} as {NEW_ROWS} where {TARGET}.{id} = {NEW_ROWS}.{id} and {NEW_ROWS}.{ct} in ('update', 'delete')",
                        relation.render(&dml),
                        staged.render(&dml),
                        vt = q(valid_to),
                        id = q(scd_id),
                        ct = q(change_type),
                    ),
                ),
                Lowered::sql(
                    StatementKind::Dml,
                    format!(
                        "insert into {} ({list}) select {list} from {} where {} = 'insert'",
                        relation.render(&dml),
                        staged.render(&dml),
                        q(change_type),
                    ),
                ),
            ]
        }
        Step::Sql(text) => dml_sql(text.clone()),
        Step::Repoint { .. } => Vec::new(),
    }
}

/// A SELECT without its trailing semicolon and blank space.
pub fn body(sql: &str) -> &str {
    sql.trim().trim_end_matches(';').trim_end()
}

/// A privilege as written in `grants:` (`select`, `insert`, …), kept to letters and spaces.
fn privilege_word(privilege: &str) -> String {
    privilege
        .chars()
        .filter(|c| c.is_ascii_alphabetic() || *c == ' ')
        .collect::<String>()
        .to_ascii_lowercase()
}

/// A grantee: a quoted user or role name, or `group name` / `role name` as written.
fn grantee(name: &str, style: &QuoteStyle) -> String {
    let lower = name.trim().to_ascii_lowercase();
    for kind in ["group ", "role "] {
        if lower.starts_with(kind) {
            let rest = name.trim()[kind.len()..].trim();
            return format!("{}{}", kind, style.quote_identifier(rest));
        }
    }
    style.quote_identifier(name.trim())
}

/// The privileges others than the current user hold on a relation, from
/// `information_schema.table_privileges` (PostgreSQL and Redshift both have it).
pub fn grants_sql(relation: &RelationName) -> String {
    format!(
        "select grantee, lower(privilege_type) from information_schema.table_privileges \
         where table_schema = {} and table_name = {} and grantee <> current_user \
         order by 1, 2",
        string_literal(&relation.schema),
        string_literal(&relation.identifier)
    )
}

pub fn kind_word(kind: RelationKind) -> &'static str {
    match kind {
        RelationKind::Table => "table",
        RelationKind::View => "view",
    }
}

/// `"db"."schema"` (or `"schema"` where names leave the database out).
pub fn schema_name(database: Option<&str>, schema: &str, style: &QuoteStyle) -> String {
    match database {
        Some(database) if style.include_database => format!(
            "{}.{}",
            style.quote_identifier(database),
            style.quote_identifier(schema)
        ),
        _ => style.quote_identifier(schema),
    }
}

pub fn column_list(columns: &[String], style: &QuoteStyle) -> String {
    columns
        .iter()
        .map(|c| style.quote_identifier(c))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn column_definitions(columns: &[ColumnDef], style: &QuoteStyle) -> String {
    columns
        .iter()
        .map(|c| format!("{} {}", style.quote_identifier(&c.name), c.data_type))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A literal as every warehouse strata speaks to writes it.
pub fn literal(value: &Literal) -> String {
    match value {
        Literal::Null => "null".into(),
        Literal::Bool(b) => b.to_string(),
        Literal::Int(i) => i.to_string(),
        Literal::Text(text) => string_literal(text),
        Literal::Typed { text, data_type } => {
            format!("cast({} as {data_type})", string_literal(text))
        }
    }
}

/// The text of one `values` row.
pub fn values_row<F: Flavour + ?Sized>(
    flavour: &F,
    columns: &[ColumnDef],
    row: &[Literal],
) -> String {
    let values: Vec<String> = row
        .iter()
        .enumerate()
        .map(|(i, value)| {
            let data_type = columns.get(i).map(|c| c.data_type.as_str()).unwrap_or("");
            flavour.literal(value, data_type)
        })
        .collect();
    format!("({})", values.join(", "))
}

/// `insert into … (…) values …` without its rows, and then the rows joined: planners measure
/// the parts to split rows across statements.
pub fn insert_rows_head(
    relation: &RelationName,
    columns: &[ColumnDef],
    style: &QuoteStyle,
) -> String {
    let names: Vec<String> = columns.iter().map(|c| c.name.clone()).collect();
    format!(
        "insert into {} ({}) values ",
        relation.render(style),
        column_list(&names, style)
    )
}

fn insert_rows<F: Flavour + ?Sized>(
    flavour: &F,
    relation: &RelationName,
    columns: &[ColumnDef],
    rows: &[Vec<Literal>],
) -> String {
    let style = flavour.quote_style(StatementKind::Dml);
    let mut sql = insert_rows_head(relation, columns, &style);
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&values_row(flavour, columns, row));
    }
    sql
}

/// `insert into … (cols) select cols from …`.
pub fn insert(
    into: &RelationName,
    columns: &[String],
    from: &Source,
    style: &QuoteStyle,
    alias_target: bool,
) -> String {
    let list = column_list(columns, style);
    match from {
        Source::Relation { relation, filter } => {
            let condition = condition(filter, &relation.render(style), style, alias_target);
            let source = relation.render(style);
            match condition {
                Some(condition) => format!(
                    "insert into {} ({list}) select {list} from {source} as {TARGET} where {condition}",
                    into.render(style)
                ),
                None => format!(
                    "insert into {} ({list}) select {list} from {source}",
                    into.render(style)
                ),
            }
        }
        Source::Query(select) => format!(
            "insert into {} ({list})\nselect {list} from (\n{}\n) as {NEW_ROWS}",
            into.render(style),
            body(select)
        ),
    }
}

/// `delete from …` of the rows `filter` selects. Where the warehouse cannot alias the
/// target of a delete (`alias_target` false), conditions name it by its identifier.
pub fn delete(
    from: &RelationName,
    filter: &Filter,
    style: &QuoteStyle,
    alias_target: bool,
) -> String {
    let name = from.render(style);
    match condition(filter, &name, style, alias_target) {
        None => format!("delete from {name}"),
        Some(condition) if alias_target && needs_qualifier(filter) => {
            format!("delete from {name} as {TARGET} where {condition}")
        }
        Some(condition) => format!("delete from {name} where {condition}"),
    }
}

fn needs_qualifier(filter: &Filter) -> bool {
    matches!(
        filter,
        Filter::Matching { .. } | Filter::MatchingNotOlder { .. }
    )
}

/// The WHERE condition of a filter over the relation named `name`; `None` for every row.
pub fn condition(
    filter: &Filter,
    name: &str,
    style: &QuoteStyle,
    alias_target: bool,
) -> Option<String> {
    let target = if alias_target {
        TARGET.to_string()
    } else {
        // The relation's last part names it in its own statement.
        name.rsplit('.').next().unwrap_or(name).to_string()
    };
    let key_match = |relation_alias: &str, key: &[String]| {
        key.iter()
            .map(|k| {
                let q = style.quote_identifier(k);
                format!("{target}.{q} = {relation_alias}.{q}")
            })
            .collect::<Vec<_>>()
            .join(" and ")
    };
    match filter {
        Filter::All => None,
        Filter::Matching {
            relation,
            key,
            predicates,
        } => Some(format!(
            "exists (select 1 from {} as {NEW_ROWS} where {}{})",
            relation.render(style),
            key_match(NEW_ROWS, key),
            predicates_sql(predicates, &target)
        )),
        Filter::MatchingNotOlder {
            relation,
            key,
            order,
        } => {
            let order: Vec<String> = order.iter().map(|c| style.quote_identifier(c)).collect();
            Some(format!(
                "exists (select 1 from {} as applied where {} and ({}))",
                relation.render(style),
                key_match("applied", key),
                at_least_as_new("applied", &target, &order)
            ))
        }
        Filter::In { columns, values } => Some(in_list(columns, values, style)),
        Filter::Equals { column, value } => Some(format!(
            "coalesce({}, '') = {}",
            style.quote_identifier(column),
            string_literal(value)
        )),
        Filter::NotEquals { column, value } => Some(format!(
            "coalesce({}, '') <> {}",
            style.quote_identifier(column),
            string_literal(value)
        )),
        Filter::Window { column, start, end } => {
            let column = style.quote_identifier(column);
            Some(format!("{column} >= {start} and {column} < {end}"))
        }
    }
}

/// `"c" in (…)` for one column; for several, one conjunction per tuple, joined by `or` (not
/// every warehouse compares row values).
pub fn in_list(columns: &[String], values: &[Vec<Literal>], style: &QuoteStyle) -> String {
    if values.is_empty() {
        return "1 = 0".into();
    }
    if let [column] = columns {
        // `in (null)` matches nothing: a NULL value is matched with `is null`.
        let has_null = values
            .iter()
            .any(|tuple| matches!(tuple.first(), None | Some(Literal::Null)));
        let listed: Vec<String> = values
            .iter()
            .filter_map(|tuple| match tuple.first() {
                None | Some(Literal::Null) => None,
                Some(value) => Some(literal(value)),
            })
            .collect();
        let quoted = style.quote_identifier(column);
        return match (listed.is_empty(), has_null) {
            (true, _) => format!("{quoted} is null"),
            (false, true) => format!("({quoted} in ({}) or {quoted} is null)", listed.join(", ")),
            (false, false) => format!("{quoted} in ({})", listed.join(", ")),
        };
    }
    values
        .iter()
        .map(|tuple| {
            let parts: Vec<String> = columns
                .iter()
                .zip(tuple)
                .map(|(c, v)| match v {
                    Literal::Null => format!("{} is null", style.quote_identifier(c)),
                    v => format!("{} = {}", style.quote_identifier(c), literal(v)),
                })
                .collect();
            format!("({})", parts.join(" and "))
        })
        .collect::<Vec<_>>()
        .join(" or ")
}

/// `left`'s ordering columns are at least `right`'s, compared left to right (a tuple `>=`
/// spelled out, since not every warehouse compares row values).
pub fn at_least_as_new(left: &str, right: &str, order: &[String]) -> String {
    match order {
        [] => "1 = 1".into(),
        [last] => format!("{left}.{last} >= {right}.{last}"),
        [first, rest @ ..] => format!(
            "{left}.{first} > {right}.{first} or ({left}.{first} = {right}.{first} and ({}))",
            at_least_as_new(left, right, rest)
        ),
    }
}

/// `merge into … using … on (key) when matched then update … when not matched then insert …`.
/// A snapshot's changes applied in one `MERGE`: closed versions matched on their id,
/// opened ones inserted (where one statement is the only commit a warehouse has).
pub fn snapshot_merge(
    relation: &RelationName,
    staged: &RelationName,
    columns: &[String],
    scd_id: &str,
    valid_to: &str,
    change_type: &str,
    style: &QuoteStyle,
) -> String {
    let q = |name: &str| style.quote_identifier(name);
    let values: Vec<String> = columns
        .iter()
        .map(|c| format!("{NEW_ROWS}.{}", q(c)))
        .collect();
    format!(
        "merge into {} as {TARGET} using {} as {NEW_ROWS} on {TARGET}.{id} = {NEW_ROWS}.{id} and {NEW_ROWS}.{ct} in ('update', 'delete')
when matched then update set {vt} = {NEW_ROWS}.{vt}
when not matched and {NEW_ROWS}.{ct} = 'insert' then insert ({}) values ({})",
        relation.render(style),
        staged.render(style),
        column_list(columns, style),
        values.join(", "),
        id = q(scd_id),
        ct = q(change_type),
        vt = q(valid_to),
    )
}

pub fn merge(
    into: &RelationName,
    using: &RelationName,
    key: &[String],
    update: &[String],
    insert: &[String],
    predicates: &[String],
    style: &QuoteStyle,
) -> String {
    let on = key
        .iter()
        .map(|k| {
            let q = style.quote_identifier(k);
            format!("{TARGET}.{q} = {NEW_ROWS}.{q}")
        })
        .collect::<Vec<_>>()
        .join(" and ");
    let mut sql = format!(
        "merge into {} as {TARGET} using {} as {NEW_ROWS} on ({on}{})",
        into.render(style),
        using.render(style),
        predicates_sql(predicates, TARGET)
    );
    if !update.is_empty() {
        let sets: Vec<String> = update
            .iter()
            .map(|c| {
                let q = style.quote_identifier(c);
                format!("{q} = {NEW_ROWS}.{q}")
            })
            .collect();
        sql.push_str(&format!(
            "\nwhen matched then update set {}",
            sets.join(", ")
        ));
    }
    let values: Vec<String> = insert
        .iter()
        .map(|c| format!("{NEW_ROWS}.{}", style.quote_identifier(c)))
        .collect();
    sql.push_str(&format!(
        "\nwhen not matched then insert ({}) values ({})",
        column_list(insert, style),
        values.join(", ")
    ));
    sql
}

/// `incremental_predicates` as ` and (…)` terms, dbt's aliases replaced by the statement's:
/// `DBT_INTERNAL_DEST` by `target` (how the table's row is named), `DBT_INTERNAL_SOURCE` by
/// the new rows' alias.
pub fn predicates_sql(predicates: &[String], target: &str) -> String {
    predicates
        .iter()
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            let p = replace_word(p, "DBT_INTERNAL_DEST", target);
            format!(
                " and ({})",
                replace_word(&p, "DBT_INTERNAL_SOURCE", NEW_ROWS)
            )
        })
        .collect()
}

/// `text` with every whole-word, case-insensitive occurrence of `word` replaced.
fn replace_word(text: &str, word: &str, with: &str) -> String {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let lower = text.to_ascii_lowercase();
    let needle = word.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut rest = 0;
    let mut from = 0;
    while let Some(found) = lower[from..].find(&needle) {
        let start = from + found;
        let end = start + needle.len();
        let before = text[..start].chars().next_back().is_some_and(is_word);
        let after = text[end..].chars().next().is_some_and(is_word);
        if !before && !after {
            out.push_str(&text[rest..start]);
            out.push_str(with);
            rest = end;
        }
        from = end;
    }
    out.push_str(&text[rest..]);
    out
}

/// The two queries of a unique-key check over `relation`.
pub fn key_check(relation: &RelationName, key: &[String], style: &QuoteStyle) -> Lowered {
    let quoted: Vec<String> = key.iter().map(|k| style.quote_identifier(k)).collect();
    let nulls = quoted
        .iter()
        .map(|q| format!("{q} is null"))
        .collect::<Vec<_>>()
        .join(" or ");
    let list = quoted.join(", ");
    Lowered::KeyCheck {
        key: key.to_vec(),
        nulls: format!(
            "select count(*) from {} where {nulls}",
            relation.render(style)
        ),
        duplicates: format!(
            "select {list}, count(*) as n from {} group by {list} having count(*) > 1 limit 1",
            relation.render(style)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn style() -> QuoteStyle {
        QuoteStyle::default()
    }

    fn relation(name: &str) -> RelationName {
        RelationName::new(Some("dev".into()), "main", name)
    }

    #[test]
    fn deletes_match_on_every_key_column() {
        let filter = Filter::Matching {
            relation: relation("orders__strata_new_1"),
            key: vec!["id".into(), "line".into()],
            predicates: Vec::new(),
        };
        assert_eq!(
            delete(&relation("orders"), &filter, &style(), true),
            "delete from \"dev\".\"main\".\"orders\" as target where exists (select 1 from \"dev\".\"main\".\"orders__strata_new_1\" as new_rows where target.\"id\" = new_rows.\"id\" and target.\"line\" = new_rows.\"line\")"
        );
        assert_eq!(
            delete(&relation("orders"), &filter, &style(), false),
            "delete from \"dev\".\"main\".\"orders\" where exists (select 1 from \"dev\".\"main\".\"orders__strata_new_1\" as new_rows where \"orders\".\"id\" = new_rows.\"id\" and \"orders\".\"line\" = new_rows.\"line\")"
        );
    }

    #[test]
    fn predicates_take_the_statement_s_aliases() {
        let predicates = vec![
            "DBT_INTERNAL_DEST.order_date >= '2024-01-01'".to_string(),
            "dbt_internal_source.x = dbt_internal_dest.x and my_dbt_internal_dest = 1".into(),
            " ".into(),
        ];
        assert_eq!(
            predicates_sql(&predicates, "target"),
            " and (target.order_date >= '2024-01-01') and (new_rows.x = target.x and my_dbt_internal_dest = 1)"
        );
        let filter = Filter::Matching {
            relation: relation("orders__strata_new_1"),
            key: vec!["id".into()],
            predicates: predicates[..1].to_vec(),
        };
        assert_eq!(
            delete(&relation("orders"), &filter, &style(), false),
            "delete from \"dev\".\"main\".\"orders\" where exists (select 1 from \"dev\".\"main\".\"orders__strata_new_1\" as new_rows where \"orders\".\"id\" = new_rows.\"id\" and (\"orders\".order_date >= '2024-01-01'))"
        );
    }

    #[test]
    fn in_lists_spell_out_tuples() {
        let values = vec![
            vec![Literal::Text("2024-01-01".into()), Literal::Int(1)],
            vec![Literal::Text("it's".into()), Literal::Null],
        ];
        assert_eq!(
            in_list(&["d".into(), "n".into()], &values, &style()),
            "(\"d\" = '2024-01-01' and \"n\" = 1) or (\"d\" = 'it''s' and \"n\" is null)"
        );
        assert_eq!(
            in_list(&["d".into()], &[vec![Literal::Int(3)]], &style()),
            "\"d\" in (3)"
        );
        assert_eq!(in_list(&["d".into()], &[], &style()), "1 = 0");
        assert_eq!(
            in_list(
                &["d".into()],
                &[vec![Literal::Int(1)], vec![Literal::Null]],
                &style()
            ),
            "(\"d\" in (1) or \"d\" is null)"
        );
    }

    #[test]
    fn ordering_comparisons_are_spelt_out() {
        let order = ["\"_commit_ts\"".to_string(), "\"_seq\"".to_string()];
        assert_eq!(
            at_least_as_new("a", "b", &order),
            "a.\"_commit_ts\" > b.\"_commit_ts\" or (a.\"_commit_ts\" = b.\"_commit_ts\" and (a.\"_seq\" >= b.\"_seq\"))"
        );
    }

    #[test]
    fn merges_update_and_insert_by_key() {
        assert_eq!(
            merge(
                &relation("t"),
                &relation("n"),
                &["id".into()],
                &["v".into()],
                &["id".into(), "v".into()],
                &[],
                &style()
            ),
            "merge into \"dev\".\"main\".\"t\" as target using \"dev\".\"main\".\"n\" as new_rows on (target.\"id\" = new_rows.\"id\")\nwhen matched then update set \"v\" = new_rows.\"v\"\nwhen not matched then insert (\"id\", \"v\") values (new_rows.\"id\", new_rows.\"v\")"
        );
    }
}

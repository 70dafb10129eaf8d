//! The `cdc` incremental strategy: applies batches of change rows (`I`/`U`/`D` with a commit
//! time, then optional sequence columns) keyed by `unique_key`. The last change per key wins, a final
//! delete removes the row, an update of a missing key inserts it, repeated rows are
//! idempotent, and a change older than what was already applied for its key is ignored, so
//! files arriving out of order give the same table as a full refresh over all of them.
//!
//! A change is compared with the newest one applied for its key: a live key's row in the model's
//! table carries its commit time and sequence columns, and a deleted key's newest delete is
//! kept in a state table of tombstones beside the model (`<name>__strata_cdc`), written in the
//! same transaction as the model's table. Tombstones are few, so the state costs what the
//! deletes cost, not a second copy of every key.

use super::{
    drop_stmt, ensure_schema, rename_sql, staging_relation, MaterializeError, Outcome, Request,
};
use crate::adapter::{Adapter, AdapterError, RelationKind};
use crate::relation::{QuoteStyle, RelationName};

const RANK: &str = "__strata_rank";

/// The columns that drive the strategy, from the model's config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdcColumns {
    pub key: Vec<String>,
    pub operation: String,
    pub commit_time: String,
    /// Tiebreakers after the commit time, in order (`sequence_column`: one name or a list).
    pub sequence: Vec<String>,
    pub delete_value: String,
}

impl CdcColumns {
    pub fn from_request(request: &Request<'_>) -> Result<CdcColumns, MaterializeError> {
        if request.config.unique_key.is_empty() {
            return Err(MaterializeError::Config(
                "cdc".into(),
                "a `unique_key`".into(),
            ));
        }
        let text = |key: &str, default: Option<&str>| {
            request
                .config_map
                .get(key)
                .and_then(|v| v.as_str())
                .map(str::to_string)
                .or_else(|| default.map(str::to_string))
        };
        Ok(CdcColumns {
            key: request.config.unique_key.clone(),
            operation: text("operation_column", Some("_op")).unwrap_or_default(),
            commit_time: text("commit_time_column", Some("_commit_ts")).unwrap_or_default(),
            sequence: crate::project::config::as_string_list(
                request.config_map.get("sequence_column"),
            ),
            delete_value: text("delete_value", Some("D")).unwrap_or_default(),
        })
    }

    fn order(&self, style: &QuoteStyle) -> Vec<String> {
        std::iter::once(&self.commit_time)
            .chain(&self.sequence)
            .map(|c| style.quote_identifier(c))
            .collect()
    }

    fn state_columns(&self, style: &QuoteStyle) -> String {
        self.key
            .iter()
            .map(|k| style.quote_identifier(k))
            .chain(self.order(style))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn key_match(&self, left: &str, right: &str, style: &QuoteStyle) -> String {
        self.key
            .iter()
            .map(|k| {
                let q = style.quote_identifier(k);
                format!("{left}.{q} = {right}.{q}")
            })
            .collect::<Vec<_>>()
            .join(" and ")
    }
}

/// The latest change per key of a batch, ranked: rank 1 is the newest.
pub fn latest_sql(sql: &str, columns: &CdcColumns, style: &QuoteStyle) -> String {
    let partition = columns
        .key
        .iter()
        .map(|k| style.quote_identifier(k))
        .collect::<Vec<_>>()
        .join(", ");
    let order = columns
        .order(style)
        .iter()
        .map(|c| format!("{c} desc"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "select * from (select changes.*, row_number() over (partition by {partition} order by {order}) as {rank} from (\n{}\n) as changes) as ranked where {rank} = 1",
        sql.trim().trim_end_matches(';'),
        rank = style.quote_identifier(RANK),
    )
}

/// `left`'s ordering columns are at least `right`'s, compared left to right (a tuple `>=`
/// spelled out, since not every warehouse compares row values).
fn at_least_as_new(left: &str, right: &str, order: &[String]) -> String {
    match order {
        [] => "1 = 1".into(),
        [last] => format!("{left}.{last} >= {right}.{last}"),
        [first, rest @ ..] => format!(
            "{left}.{first} > {right}.{first} or ({left}.{first} = {right}.{first} and ({}))",
            at_least_as_new(left, right, rest)
        ),
    }
}

/// Where the newest applied delete per deleted key is kept.
pub fn state_relation(relation: &RelationName) -> RelationName {
    RelationName::new(
        relation.database.clone(),
        relation.schema.clone(),
        format!("{}__strata_cdc", relation.identifier),
    )
}

fn not_deleted(columns: &CdcColumns, style: &QuoteStyle) -> String {
    format!(
        "coalesce({}, '') <> '{}'",
        style.quote_identifier(&columns.operation),
        columns.delete_value.replace('\'', "''")
    )
}

async fn drop_tables(adapter: &dyn Adapter, tables: &[&RelationName]) -> Result<(), AdapterError> {
    for table in tables {
        adapter
            .execute(&drop_stmt(adapter, table, RelationKind::Table))
            .await?;
    }
    Ok(())
}

/// First build or full refresh: the latest change per key, deletes removed, built aside with
/// its state table and swapped in together.
pub async fn build_full(
    adapter: &dyn Adapter,
    request: &Request<'_>,
) -> Result<Outcome, MaterializeError> {
    let style = adapter.quote_style();
    let columns = CdcColumns::from_request(request)?;
    let relation = request.relation;
    let state = state_relation(relation);
    let staged = staging_relation(relation, "tmp");
    let staged_state = staging_relation(&state, "tmp");
    ensure_schema(adapter, relation).await?;
    drop_tables(adapter, &[&staged, &staged_state]).await?;
    let prepare = vec![
        format!(
            "create table {} as (\n{}\n)",
            staged.render(&style),
            latest_sql(request.sql, &columns, &style)
        ),
        format!(
            "create table {} as select {} from {} where not ({})",
            staged_state.render(&style),
            columns.state_columns(&style),
            staged.render(&style),
            not_deleted(&columns, &style)
        ),
        format!(
            "delete from {} where not ({})",
            staged.render(&style),
            not_deleted(&columns, &style)
        ),
        format!(
            "alter table {} drop column {}",
            staged.render(&style),
            style.quote_identifier(RANK)
        ),
    ];
    let prepared = adapter.execute_all(&prepare, false).await;
    if let Err(err) = prepared {
        let _ = drop_tables(adapter, &[&staged, &staged_state]).await;
        return Err(err.into());
    }
    let mut swap = Vec::new();
    if let Some(existing) = adapter.relation(relation).await? {
        swap.push(drop_stmt(adapter, relation, existing.kind));
    }
    if adapter.relation(&state).await?.is_some() {
        swap.push(drop_stmt(adapter, &state, RelationKind::Table));
    }
    swap.push(rename_sql(&staged, &relation.identifier, &style));
    swap.push(rename_sql(&staged_state, &state.identifier, &style));
    swap.extend(request.after_write());
    if let Err(err) = adapter
        .execute_all(&swap, adapter.capabilities().transactional_ddl)
        .await
    {
        let _ = drop_tables(adapter, &[&staged, &staged_state]).await;
        return Err(err.into());
    }
    let rows = adapter
        .query(&format!("select count(*) from {}", relation.render(&style)))
        .await?;
    let count = match rows.rows.first().and_then(|r| r.first()) {
        Some(crate::adapter::Cell::Int(n)) => u64::try_from(*n).ok(),
        _ => None,
    };
    Ok(Outcome {
        message: match count {
            Some(n) => format!("CREATE TABLE ({n} rows)"),
            None => "CREATE TABLE".into(),
        },
        rows_affected: count,
    })
}

/// A later run: applies the batch's newest change per key unless the state shows a newer one
/// was applied already; table and state change in one transaction.
pub async fn apply_batch(
    adapter: &dyn Adapter,
    request: &Request<'_>,
    existing: &crate::adapter::RelationInfo,
) -> Result<Outcome, MaterializeError> {
    let style = adapter.quote_style();
    let columns = CdcColumns::from_request(request)?;
    let relation = request.relation;
    let state = state_relation(relation);
    let new_rows = staging_relation(relation, "new");
    adapter
        .execute(&drop_stmt(adapter, &new_rows, RelationKind::Table))
        .await?;
    let result = async {
        adapter
            .execute(&format!(
                "create table {} as (\n{}\n)",
                new_rows.render(&style),
                latest_sql(request.sql, &columns, &style)
            ))
            .await?;
        if adapter.relation(&state).await?.is_none() {
            adapter
                .execute(&format!(
                    "create table {} as select {} from {} where 1 = 0",
                    state.render(&style),
                    columns.state_columns(&style),
                    new_rows.render(&style)
                ))
                .await?;
        }
        // Changes not newer than what was applied for their key are history: drop them. The
        // newest applied change is the live row in the table, or the key's tombstone.
        let not_newer = at_least_as_new("applied", "batch", &columns.order(&style));
        for applied in [&state, relation] {
            adapter
                .execute(&format!(
                    "delete from {} as batch where exists (select 1 from {} as applied where {} and ({not_newer}))",
                    new_rows.render(&style),
                    applied.render(&style),
                    columns.key_match("applied", "batch", &style)
                ))
                .await?;
        }
        let new_info = adapter
            .relation(&new_rows)
            .await?
            .ok_or_else(|| AdapterError::Internal("the new rows' table vanished".into()))?;
        let insert_columns: Vec<String> = new_info
            .columns
            .iter()
            .filter(|c| c.name != RANK)
            .filter(|c| {
                existing
                    .columns
                    .iter()
                    .any(|e| e.name.eq_ignore_ascii_case(&c.name))
            })
            .map(|c| style.quote_identifier(&c.name))
            .collect();
        let list = insert_columns.join(", ");
        let mut statements = vec![
            format!(
                "delete from {} as target where exists (select 1 from {} as batch where {})",
                relation.render(&style),
                new_rows.render(&style),
                columns.key_match("target", "batch", &style)
            ),
            format!(
                "insert into {} ({list}) select {list} from {} where {}",
                relation.render(&style),
                new_rows.render(&style),
                not_deleted(&columns, &style)
            ),
            format!(
                "delete from {} as applied where exists (select 1 from {} as batch where {})",
                state.render(&style),
                new_rows.render(&style),
                columns.key_match("applied", "batch", &style)
            ),
            format!(
                "insert into {} ({cols}) select {cols} from {} where not ({})",
                state.render(&style),
                new_rows.render(&style),
                not_deleted(&columns, &style),
                cols = columns.state_columns(&style)
            ),
        ];
        statements.extend(request.after_write());
        let outcomes = adapter
            .execute_all(&statements, adapter.capabilities().transactional_ddl)
            .await?;
        let inserted = outcomes.get(1).and_then(|o| o.rows_affected);
        Ok::<_, MaterializeError>(Outcome {
            message: match inserted {
                Some(n) => format!("CDC {n} upserted"),
                None => "CDC".into(),
            },
            rows_affected: inserted,
        })
    }
    .await;
    let _ = adapter
        .execute(&drop_stmt(adapter, &new_rows, RelationKind::Table))
        .await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_change_per_key_orders_by_commit_then_sequence() {
        let columns = CdcColumns {
            key: vec!["id".into()],
            operation: "_op".into(),
            commit_time: "_commit_ts".into(),
            sequence: vec!["_seq".into(), "_file".into()],
            delete_value: "D".into(),
        };
        let sql = latest_sql("select * from changes;", &columns, &QuoteStyle::default());
        assert!(sql.contains(
            "row_number() over (partition by \"id\" order by \"_commit_ts\" desc, \"_seq\" desc, \"_file\" desc) as \"__strata_rank\""
        ));
        assert_eq!(
            at_least_as_new("a", "b", &columns.order(&QuoteStyle::default())),
            "a.\"_commit_ts\" > b.\"_commit_ts\" or (a.\"_commit_ts\" = b.\"_commit_ts\" and (a.\"_seq\" > b.\"_seq\" or (a.\"_seq\" = b.\"_seq\" and (a.\"_file\" >= b.\"_file\"))))"
        );
        assert!(sql.ends_with("where \"__strata_rank\" = 1"));
    }
}

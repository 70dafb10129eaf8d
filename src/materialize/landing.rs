//! Landing files into an external source's raw table, for warehouses that do not read local
//! files: the bundled DuckDB reads the new files and writes one CSV, which the adapter's bulk
//! load (PostgreSQL's COPY) streams into the table in one transaction with the statements that
//! create or widen the table and record the files. The table never holds half a file, nor
//! rows of a file it has not recorded.

use super::{drop_stmt, ensure_schema, recreate_dependents, MaterializeError, Outcome};
use crate::adapter::{Adapter, AdapterError, CsvLoad, CsvOptions};
use crate::landing::{stage_record_sql, StagePlan, SOURCE_FILE_COLUMN};

/// Loads a stage plan's files; a plan without files does nothing.
pub async fn stage_files(
    adapter: &dyn Adapter,
    plan: &StagePlan,
) -> Result<Outcome, MaterializeError> {
    if plan.files.is_empty() {
        return Ok(Outcome {
            message: "NO NEW FILES".into(),
            rows_affected: Some(0),
        });
    }
    let style = adapter.quote_style();
    let scratch = tempfile::NamedTempFile::new()
        .map_err(|e| AdapterError::Internal(format!("cannot create a scratch file: {e}")))?;
    let reader = plan.reader.clone();
    let out = scratch.path().to_path_buf();
    let columns = tokio::task::spawn_blocking(move || {
        let columns = crate::adapter::duckdb::describe_local(&reader)?;
        crate::adapter::duckdb::export_csv(&reader, &out)?;
        Ok::<_, AdapterError>(columns)
    })
    .await
    .map_err(|e| AdapterError::Internal(format!("the file reader task failed: {e}")))??;
    // Unquoted names fold to lower case in the warehouse's SQL: name the columns that way.
    let names: Vec<String> = columns.iter().map(|c| c.name.to_lowercase()).collect();
    let table = plan.relation.render(&style);
    ensure_schema(adapter, &plan.relation).await?;
    let existing = adapter.relation(&plan.relation).await?;
    let mut before = Vec::new();
    let mut views = Vec::new();
    match &existing {
        Some(existing) if !plan.rebuild => {
            for (column, name) in columns.iter().zip(&names) {
                if !existing
                    .columns
                    .iter()
                    .any(|e| e.name.eq_ignore_ascii_case(name))
                {
                    before.push(format!(
                        "alter table {table} add column {} {}",
                        style.quote_identifier(name),
                        adapter.column_type_for(&column.data_type)
                    ));
                }
            }
            if !plan.changed.is_empty() {
                let paths: Vec<String> = plan
                    .changed
                    .iter()
                    .map(|p| format!("'{}'", p.replace('\'', "''")))
                    .collect();
                before.push(format!(
                    "delete from {table} where {} in ({})",
                    style.quote_identifier(SOURCE_FILE_COLUMN),
                    paths.join(", ")
                ));
            }
        }
        _ => {
            if let Some(existing) = &existing {
                views = recreate_dependents(adapter, &plan.relation).await?;
                before.push(drop_stmt(adapter, &plan.relation, existing.kind));
            }
            let definitions: Vec<String> = columns
                .iter()
                .zip(&names)
                .map(|(column, name)| {
                    format!(
                        "{} {}",
                        style.quote_identifier(name),
                        adapter.column_type_for(&column.data_type)
                    )
                })
                .collect();
            before.push(format!("create table {table} ({})", definitions.join(", ")));
        }
    }
    let mut after = stage_record_sql(plan, &style);
    let index = format!("{}__strata_file_idx", plan.relation.identifier);
    after.push(format!(
        "create index if not exists {} on {table} ({})",
        style.quote_identifier(&index),
        style.quote_identifier(SOURCE_FILE_COLUMN)
    ));
    after.extend(views);
    let rows = adapter
        .load_csv(&CsvLoad {
            relation: &plan.relation,
            path: scratch.path(),
            options: &CsvOptions::default(),
            columns: &names,
            before: &before,
            after: &after,
        })
        .await?;
    Ok(Outcome {
        message: format!("LOADED {} files ({rows} rows)", plan.files.len()),
        rows_affected: Some(rows),
    })
}

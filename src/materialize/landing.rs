//! Landing files into an external source's raw table, for warehouses that do not read local
//! files: the bundled DuckDB reads the new files and writes one file in the format the
//! warehouse loads (CSV for PostgreSQL's COPY, Parquet for Redshift's), which the adapter's
//! bulk load streams into the table in one transaction with the statements that
//! create or widen the table and record the files. The table never holds half a file, nor
//! rows of a file it has not recorded.

use super::{Context, MaterializeError, Outcome};
use crate::adapter::{AdapterError, FileFormat};
use crate::landing::{stage_record, StagePlan, SOURCE_FILE_COLUMN};
use crate::plan::{Block, ColumnDef, Filter, Literal, Plan, Role, Step, Storage};

/// Loads a stage plan's files; a plan without files does nothing.
pub async fn stage_files(ctx: &Context<'_>, plan: &StagePlan) -> Result<Outcome, MaterializeError> {
    if plan.files.is_empty() {
        return Ok(Outcome {
            message: "NO NEW FILES".into(),
            rows_affected: Some(0),
            warnings: Vec::new(),
        });
    }
    let adapter = ctx.adapter;
    let flavour = adapter.flavour();
    let scratch = tempfile::NamedTempFile::new()
        .map_err(|e| AdapterError::Internal(format!("cannot create a scratch file: {e}")))?;
    let reader = plan.reader.clone();
    let columns = tokio::task::spawn_blocking(move || crate::local::describe(&reader))
        .await
        .map_err(|e| AdapterError::Internal(format!("the file reader task failed: {e}")))??;
    // Unquoted names fold to lower case in the warehouse's SQL: name the columns that way.
    let names: Vec<String> = columns.iter().map(|c| c.name.to_lowercase()).collect();
    let relation = &plan.relation;
    super::ensure_schema(adapter, relation).await?;
    let existing = ctx.catalog.relation(relation).await?;
    let format = flavour.staged_file_format();
    // A Parquet load fills the table's columns by position: the file is written with exactly
    // those, in the table's order (NULL where these files lack a column the table has).
    let table_order: Vec<String> = match &existing {
        Some(existing) if !plan.rebuild => {
            let mut order: Vec<String> = existing
                .columns
                .iter()
                .map(|c| c.name.to_lowercase())
                .collect();
            for name in &names {
                if !order.contains(name) {
                    order.push(name.clone());
                }
            }
            order
        }
        _ => names.clone(),
    };
    let export = match format {
        FileFormat::Csv(_) => plan.reader.clone(),
        FileFormat::Parquet => {
            let quote = |name: &str| format!("\"{}\"", name.replace('"', "\"\""));
            let projection: Vec<String> = table_order
                .iter()
                .map(
                    |name| match columns.iter().find(|c| c.name.to_lowercase() == *name) {
                        Some(column) => format!("{} as {}", quote(&column.name), quote(name)),
                        None => format!("cast(null as varchar) as {}", quote(name)),
                    },
                )
                .collect();
            format!(
                "select {} from ({}) as files",
                projection.join(", "),
                plan.reader
            )
        }
    };
    let out = scratch.path().to_path_buf();
    tokio::task::spawn_blocking(move || crate::local::export(&export, &out, &format))
        .await
        .map_err(|e| AdapterError::Internal(format!("the file writer task failed: {e}")))??;
    let mut steps = Vec::new();
    let mut views = Vec::new();
    match &existing {
        Some(existing) if !plan.rebuild => {
            let added: Vec<ColumnDef> = columns
                .iter()
                .zip(&names)
                .filter(|(_, name)| {
                    !existing
                        .columns
                        .iter()
                        .any(|e| e.name.eq_ignore_ascii_case(name))
                })
                .map(|(column, name)| ColumnDef {
                    name: name.clone(),
                    data_type: flavour.column_type_for(&column.data_type),
                })
                .collect();
            if !added.is_empty() {
                steps.push(Step::AddColumns {
                    relation: relation.clone(),
                    columns: added,
                });
            }
            if !plan.changed.is_empty() {
                steps.push(Step::Delete {
                    from: relation.clone(),
                    filter: Filter::In {
                        columns: vec![SOURCE_FILE_COLUMN.to_string()],
                        values: plan
                            .changed
                            .iter()
                            .map(|p| vec![Literal::Text(p.clone())])
                            .collect(),
                    },
                });
            }
        }
        _ => {
            if let Some(existing) = &existing {
                if flavour.capabilities().views_bind_to_tables {
                    views = adapter.recreate_dependent_views(relation).await?;
                }
                steps.push(Step::Drop {
                    relation: relation.clone(),
                    kind: existing.kind,
                    cascade: flavour.capabilities().views_bind_to_tables,
                });
            }
            steps.push(Step::CreateTable {
                relation: relation.clone(),
                columns: columns
                    .iter()
                    .zip(&names)
                    .map(|(column, name)| ColumnDef {
                        name: name.clone(),
                        data_type: flavour.column_type_for(&column.data_type),
                    })
                    .collect(),
                storage: Storage::plain(),
            });
        }
    }
    steps.push(Step::LoadFile {
        relation: relation.clone(),
        path: scratch.path().to_path_buf(),
        format,
        columns: match format {
            FileFormat::Csv(_) => names,
            FileFormat::Parquet => table_order,
        },
    });
    let load_at = steps.len() - 1;
    steps.push(Step::Record(stage_record(plan)));
    steps.push(Step::IndexColumn {
        relation: relation.clone(),
        column: SOURCE_FILE_COLUMN.to_string(),
    });
    steps.extend(views.into_iter().map(Step::Sql));
    let load = Plan {
        blocks: vec![Block::new(Role::Publish, true, steps)],
        count: vec![load_at],
        ..Plan::default()
    };
    let executed = ctx.run(load).await?;
    let rows = executed.rows.unwrap_or(0);
    Ok(Outcome {
        message: format!("LOADED {} files ({rows} rows)", plan.files.len()),
        rows_affected: Some(rows),
        warnings: executed.warnings,
    })
}

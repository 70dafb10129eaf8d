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
            batches: None,
            message: "NO NEW FILES".into(),
            rows_affected: Some(0),
            warnings: Vec::new(),
        });
    }
    if let Some(external) = &plan.remote {
        return stage_remote(ctx, plan, external).await;
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
    let file_columns: Vec<ColumnDef> = columns
        .iter()
        .zip(&names)
        .map(|(column, name)| ColumnDef {
            name: name.clone(),
            data_type: flavour.column_type_for(&column.data_type),
        })
        .collect();
    let mut steps = Vec::new();
    let mut views = Vec::new();
    match &existing {
        Some(existing) if !plan.rebuild => {
            steps.extend(appending_steps(
                relation,
                existing,
                &file_columns,
                &plan.changed,
            ));
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
                columns: file_columns.clone(),
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
        batches: None,
        message: format!("LOADED {} files ({rows} rows)", plan.files.len()),
        rows_affected: Some(rows),
        warnings: executed.warnings,
    })
}

/// Loads files that lie in the warehouse's own storage (an S3 prefix): their columns read from
/// one of them, then the warehouse reads the new files where they lie, in the same plan as the
/// statements that create or widen the table and record the files.
async fn stage_remote(
    ctx: &Context<'_>,
    plan: &StagePlan,
    external: &crate::landing::External,
) -> Result<Outcome, MaterializeError> {
    let adapter = ctx.adapter;
    let flavour = adapter.flavour();
    if external.format != crate::landing::FileFormat::Parquet {
        return Err(AdapterError::Database {
            message: format!(
                "files at `{}` are read where they lie as Parquet only; stage CSV and JSON files from a local path",
                external.location
            ),
            retryable: false,
        }
        .into());
    }
    let Some(schema_file) = plan
        .schema_file
        .clone()
        .or_else(|| plan.files.first().map(|f| f.path.clone()))
    else {
        return Err(MaterializeError::Internal(
            "a remote load without files".into(),
        ));
    };
    let scratch = tempfile::NamedTempFile::new()
        .map_err(|e| AdapterError::Internal(format!("cannot create a scratch file: {e}")))?;
    adapter.fetch_remote(&schema_file, scratch.path()).await?;
    let reader = format!(
        "select * from read_parquet({})",
        crate::relation::string_literal(&scratch.path().to_string_lossy())
    );
    let columns = tokio::task::spawn_blocking(move || crate::local::describe(&reader))
        .await
        .map_err(|e| AdapterError::Internal(format!("the file reader task failed: {e}")))??;
    let file_columns: Vec<ColumnDef> = columns
        .iter()
        .map(|c| ColumnDef {
            name: c.name.to_lowercase(),
            data_type: flavour.column_type_for(&c.data_type),
        })
        .collect();
    let relation = &plan.relation;
    super::ensure_schema(adapter, relation).await?;
    let existing = ctx.catalog.relation(relation).await?;
    let mut steps = Vec::new();
    match &existing {
        Some(existing) if !plan.rebuild => {
            steps.extend(appending_steps(
                relation,
                existing,
                &file_columns,
                &plan.changed,
            ));
        }
        _ => {
            if let Some(existing) = &existing {
                steps.push(Step::Drop {
                    relation: relation.clone(),
                    kind: existing.kind,
                    cascade: false,
                });
            }
            let mut table_columns = file_columns.clone();
            table_columns.push(ColumnDef {
                name: SOURCE_FILE_COLUMN.to_string(),
                data_type: flavour.column_type_for("VARCHAR"),
            });
            steps.push(Step::CreateTable {
                relation: relation.clone(),
                columns: table_columns,
                storage: Storage::plain(),
            });
        }
    }
    let reader = crate::plan::aside::name(
        relation,
        crate::plan::aside::STAGED,
        &ctx.run.run_id,
        flavour.limits().identifier_length,
    );
    steps.push(Step::LoadRemote {
        relation: relation.clone(),
        prefix: external.folder(),
        files: plan.files.iter().map(|f| f.path.clone()).collect(),
        columns: file_columns,
        source_column: SOURCE_FILE_COLUMN.to_string(),
        reader: reader.clone(),
    });
    let load_at = steps.len() - 1;
    steps.push(Step::Record(stage_record(plan)));
    let load = Plan {
        blocks: vec![Block::new(Role::Publish, true, steps)],
        count: vec![load_at],
        on_failure: vec![Step::Drop {
            relation: reader,
            kind: crate::adapter::RelationKind::Table,
            cascade: false,
        }],
    };
    let executed = ctx.run(load).await?;
    let rows = executed.rows.unwrap_or(0);
    Ok(Outcome {
        batches: None,
        message: format!(
            "LOADED {} files ({rows} rows) where they lie",
            plan.files.len()
        ),
        rows_affected: Some(rows),
        warnings: executed.warnings,
    })
}

/// The steps before new files are appended to an existing raw table: the files' new columns
/// added, and the rows of files whose size changed since they were read deleted.
fn appending_steps(
    relation: &crate::relation::RelationName,
    existing: &crate::adapter::RelationInfo,
    file_columns: &[ColumnDef],
    changed: &[String],
) -> Vec<Step> {
    let mut steps = Vec::new();
    let added: Vec<ColumnDef> = file_columns
        .iter()
        .filter(|c| {
            !existing
                .columns
                .iter()
                .any(|e| e.name.eq_ignore_ascii_case(&c.name))
        })
        .cloned()
        .collect();
    if !added.is_empty() {
        steps.push(Step::AddColumns {
            relation: relation.clone(),
            columns: added,
        });
    }
    if !changed.is_empty() {
        steps.push(Step::Delete {
            from: relation.clone(),
            filter: Filter::In {
                columns: vec![SOURCE_FILE_COLUMN.to_string()],
                values: changed
                    .iter()
                    .map(|p| vec![Literal::Text(p.clone())])
                    .collect(),
            },
        });
    }
    steps
}

//! Local files read with the bundled DuckDB engine, whatever the target warehouse: the column
//! types of a seed's CSV file, its rows as text, and landing files exported to one CSV file for
//! a warehouse's bulk load. Each call opens its own in-memory database; none touches the target.

use std::path::Path;

use duckdb::Connection;

use crate::adapter::{AdapterError, ColumnInfo, CsvOptions, FileFormat};
use crate::relation::string_literal;

fn local_error(err: duckdb::Error) -> AdapterError {
    AdapterError::Database {
        message: err.to_string(),
        retryable: false,
    }
}

fn csv_reader(path: &Path, options: &CsvOptions, extra: &str) -> String {
    format!(
        "read_csv({}, header = true, auto_detect = true, delim = {}, quote = {}{extra})",
        string_literal(&path.to_string_lossy()),
        string_literal(&options.delimiter.to_string()),
        string_literal(&options.quote.to_string()),
    )
}

/// The columns DuckDB infers for a CSV file with a header, so warehouses that load files over
/// the wire (PostgreSQL's COPY) can create a typed table first.
pub fn infer_csv_columns(
    path: &Path,
    options: &CsvOptions,
) -> Result<Vec<ColumnInfo>, AdapterError> {
    describe(&format!("select * from {}", csv_reader(path, options, "")))
}

/// A CSV file's header names and its rows as text.
pub type TextRows = (Vec<String>, Vec<Vec<Option<String>>>);

/// A CSV file's rows as text (`None` for empty fields), in file order, with the header's
/// column names: seeds inserted row by row take their values from here.
pub fn read_csv_text(path: &Path, options: &CsvOptions) -> Result<TextRows, AdapterError> {
    let connection = Connection::open_in_memory().map_err(local_error)?;
    let sql = format!(
        "select * from {}",
        csv_reader(path, options, ", all_varchar = true")
    );
    let mut statement = connection.prepare(&sql).map_err(local_error)?;
    let mut rows = statement.query([]).map_err(local_error)?;
    let names: Vec<String> = match rows.as_ref() {
        Some(statement) => (0..statement.column_count())
            .map(|i| {
                statement
                    .column_name(i)
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            })
            .collect(),
        None => Vec::new(),
    };
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(local_error)? {
        let mut values = Vec::with_capacity(names.len());
        for i in 0..names.len() {
            let value: Option<String> = row.get(i).map_err(local_error)?;
            values.push(value);
        }
        out.push(values);
    }
    Ok((names, out))
}

/// A CSV file (with a header) rewritten as Parquet whose columns are all text, NULL for empty
/// fields: warehouses that read Parquet from S3 load seeds from it and cast each column to its
/// type themselves, so a value that does not fit is the warehouse's error.
pub fn csv_to_text_parquet(
    path: &Path,
    options: &CsvOptions,
    out: &Path,
) -> Result<(), AdapterError> {
    export(
        &format!(
            "select * from {}",
            csv_reader(path, options, ", all_varchar = true")
        ),
        out,
        &FileFormat::Parquet,
    )
}

/// The columns a query over local files gives (warehouses that stage landing files type their
/// tables from it).
pub fn describe(select: &str) -> Result<Vec<ColumnInfo>, AdapterError> {
    let connection = Connection::open_in_memory().map_err(local_error)?;
    let mut statement = connection
        .prepare(&format!("describe {select}"))
        .map_err(local_error)?;
    let mut rows = statement.query([]).map_err(local_error)?;
    let mut columns = Vec::new();
    while let Some(row) = rows.next().map_err(local_error)? {
        let name: String = row.get(0).map_err(local_error)?;
        let data_type: String = row.get(1).map_err(local_error)?;
        columns.push(ColumnInfo { name, data_type });
    }
    Ok(columns)
}

/// Writes a query's rows over local files to one file: CSV with a header (empty strings
/// quoted and NULLs left empty, as PostgreSQL's COPY reads them), or Parquet.
pub fn export(select: &str, out: &Path, format: &FileFormat) -> Result<(), AdapterError> {
    let options = match format {
        FileFormat::Csv(options) => format!(
            "format csv, header true, delimiter {}, quote {}",
            string_literal(&options.delimiter.to_string()),
            string_literal(&options.quote.to_string())
        ),
        FileFormat::Parquet => "format parquet".to_string(),
    };
    let connection = Connection::open_in_memory().map_err(local_error)?;
    connection
        .execute_batch(&format!(
            "copy ({select}) to {} ({options})",
            string_literal(&out.to_string_lossy())
        ))
        .map_err(local_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_files_are_typed_and_read_as_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.csv");
        std::fs::write(&path, "id,name,amount\n1,\"a, b\",1.50\n2,,3\n").unwrap();
        let options = CsvOptions::default();
        let columns = infer_csv_columns(&path, &options).unwrap();
        let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["id", "name", "amount"]);
        assert_eq!(columns[0].data_type, "BIGINT");
        let (header, rows) = read_csv_text(&path, &options).unwrap();
        assert_eq!(header, ["id", "name", "amount"]);
        assert_eq!(
            rows,
            vec![
                vec![Some("1".into()), Some("a, b".into()), Some("1.50".into())],
                vec![Some("2".into()), None, Some("3".into())],
            ]
        );
    }
}

//! Landing zones: the files behind external sources (`external: {location, format}`) — listing
//! them, the SQL that reads them, and file bookmarks: which files an incremental model has
//! consumed, kept in strata's state (`crate::state`) and recorded in the same transaction as the
//! model's rows, so a daily run reads only the day's new files.
//!
//! This room decides *which* files a model reads and hands out the statements that record them;
//! it never builds a model. A model with `bookmark: files` reads every external source it
//! reaches — directly or through the view and ephemeral models between it and the files — over
//! exactly the files listed for this run, so what it records is what it read.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use crate::manifest::{Manifest, Node, NodeId, ResourceType};
use crate::project::config::Materialization;
use crate::relation::{string_literal, QuoteStyle, RelationName};

/// The column every landing row carries: the file it came from, relative to the project.
pub const SOURCE_FILE_COLUMN: &str = "_source_file";

/// Why landing files could not be listed or planned.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LandingError {
    /// The source's `external:` block is unusable; `path` is the YAML file declaring it.
    #[error("external source `{source_name}.{table}`: {message}")]
    Spec {
        source_name: String,
        table: String,
        message: String,
        path: PathBuf,
    },
    #[error("cannot list the files of `{location}`: {message}")]
    List { location: String, message: String },
    #[error("external source `{source_name}.{table}` has no files matching `{location}`")]
    NoFiles {
        source_name: String,
        table: String,
        location: String,
    },
}

impl LandingError {
    pub fn hint(&self) -> Option<String> {
        match self {
            LandingError::Spec { .. } => Some(
                "write `external: {location: 'landing/<table>/*.parquet', format: parquet}` (format: parquet, csv or json)".into(),
            ),
            LandingError::NoFiles { .. } => Some(
                "land at least one file there (e.g. the full load `LOAD00000001.parquet`), or fix the source's `location`".into(),
            ),
            LandingError::List { .. } => Some("check that the folder exists and is readable".into()),
        }
    }
}

/// How landing files are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Parquet,
    Csv,
    Json,
}

/// An external source's `external:` block, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct External {
    /// A glob, relative to the project folder unless absolute.
    pub location: String,
    pub format: FileFormat,
    /// CSV: whether the first line names the columns (default true).
    pub header: bool,
    pub delimiter: Option<String>,
    pub quote: Option<String>,
}

impl External {
    /// Reads an `external:` block; the error says what is wrong with it.
    pub fn from_json(value: &Json) -> Result<External, String> {
        let Json::Object(map) = value else {
            return Err(format!("`external` must be a mapping, found `{value}`"));
        };
        let location = match map.get("location") {
            Some(Json::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
            Some(other) => {
                return Err(format!(
                    "`location` must be a path or glob, found `{other}`"
                ))
            }
            None => return Err("`external` needs a `location` (a path or glob of files)".into()),
        };
        let format = match map.get("format").and_then(Json::as_str) {
            Some(f) => match f.to_ascii_lowercase().as_str() {
                "parquet" => FileFormat::Parquet,
                "csv" => FileFormat::Csv,
                "json" | "ndjson" => FileFormat::Json,
                other => return Err(format!("unknown file format `{other}`")),
            },
            None if location.ends_with(".csv") || location.ends_with(".csv.gz") => FileFormat::Csv,
            None if location.ends_with(".json") || location.ends_with(".ndjson") => {
                FileFormat::Json
            }
            None => FileFormat::Parquet,
        };
        let text = |key: &str| map.get(key).and_then(Json::as_str).map(str::to_string);
        Ok(External {
            location,
            format,
            header: map.get("header").and_then(Json::as_bool).unwrap_or(true),
            delimiter: text("delimiter"),
            quote: text("quote"),
        })
    }

    /// The folder of a remote location: everything up to the last `/` before the first glob
    /// character (`s3://lake/landing/orders/` of `s3://lake/landing/orders/*.parquet`).
    pub fn folder(&self) -> String {
        crate::util::glob_folder(&self.location).to_string()
    }

    /// Whether the files lie in the warehouse's storage (`s3://…`) rather than on this machine.
    pub fn is_remote(&self) -> bool {
        self.location.contains("://")
    }

    fn is_local_relative(&self) -> bool {
        !self.location.contains("://") && !Path::new(&self.location).is_absolute()
    }
}

/// One landing file: its path as the location writes it (relative to the project folder for
/// relative locations) with `/` separators, and its size.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LandingFile {
    pub path: String,
    pub size: u64,
}

/// The files matching an external location, sorted by path (DMS names sort by time).
pub fn list_files(root: &Path, location: &str) -> Result<Vec<LandingFile>, LandingError> {
    let list_error = |message: String| LandingError::List {
        location: location.to_string(),
        message,
    };
    if location.contains("://") {
        return Err(list_error(
            "remote locations are listed by the warehouse adapters that read them; use a local path on this target".into(),
        ));
    }
    let relative = !Path::new(location).is_absolute();
    let normalized = location.replace('\\', "/");
    // The literal folders before the first glob character are where the walk starts.
    let parts: Vec<&str> = normalized.split('/').collect();
    let literal = parts
        .iter()
        .take_while(|p| !p.contains(['*', '?', '[', '{']))
        .count();
    let pattern_is_literal = literal == parts.len();
    let base_parts = if pattern_is_literal {
        &parts[..parts.len().saturating_sub(1)]
    } else {
        &parts[..literal]
    };
    let base_text = base_parts.join("/");
    let base = if relative {
        root.join(&base_text)
    } else if base_text.is_empty() {
        PathBuf::from("/")
    } else {
        PathBuf::from(&base_text)
    };
    let matcher = globset::GlobBuilder::new(&normalized)
        .literal_separator(true)
        .build()
        .map_err(|e| list_error(e.to_string()))?
        .compile_matcher();
    if !base.is_dir() {
        return Ok(Vec::new());
    }
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(&base).follow_links(true) {
        let entry = entry.map_err(|e| list_error(e.to_string()))?;
        if !entry.file_type().is_file() {
            continue;
        }
        let full = entry.path();
        let shown = if relative {
            match full.strip_prefix(root) {
                Ok(rel) => rel.to_string_lossy().replace('\\', "/"),
                Err(_) => continue,
            }
        } else {
            full.to_string_lossy().replace('\\', "/")
        };
        if !matcher.is_match(&shown) {
            continue;
        }
        let size = entry
            .metadata()
            .map_err(|e| list_error(e.to_string()))?
            .len();
        files.push(LandingFile { path: shown, size });
    }
    files.sort();
    Ok(files)
}

/// Which files a reader reads.
#[derive(Debug, Clone, Copy)]
pub enum FileSet<'a> {
    /// Every file matching the location, as the engine lists them when the query runs.
    Glob,
    /// Exactly these files (paths as [`LandingFile::path`]).
    List(&'a [String]),
    /// No rows, with the columns `schema_file` has.
    Empty { schema_file: &'a str },
}

/// DuckDB SQL reading an external source's files, each row tagged with `_source_file` (the
/// file's path relative to the project, so it is the same wherever the project lives).
pub fn duckdb_reader(root: &Path, external: &External, files: FileSet<'_>) -> String {
    let full = |path: &str| {
        if external.is_local_relative() {
            root.join(path).to_string_lossy().into_owned()
        } else {
            path.to_string()
        }
    };
    let (argument, limit) = match files {
        FileSet::Glob => (string_literal(&full(&external.location)), ""),
        FileSet::List(paths) => (
            format!(
                "[{}]",
                paths
                    .iter()
                    .map(|p| string_literal(&full(p)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "",
        ),
        FileSet::Empty { schema_file } => (string_literal(&full(schema_file)), " limit 0"),
    };
    let file_column = format!("filename = {}", string_literal(SOURCE_FILE_COLUMN));
    let reader = match external.format {
        FileFormat::Parquet => {
            format!("read_parquet({argument}, {file_column}, union_by_name = true)")
        }
        FileFormat::Csv => {
            let mut options = vec![
                file_column,
                "union_by_name = true".to_string(),
                format!("header = {}", external.header),
            ];
            if let Some(delimiter) = &external.delimiter {
                options.push(format!("delim = {}", string_literal(delimiter)));
            }
            if let Some(quote) = &external.quote {
                options.push(format!("quote = {}", string_literal(quote)));
            }
            format!("read_csv({argument}, {})", options.join(", "))
        }
        FileFormat::Json => format!("read_json_auto({argument}, {file_column})"),
    };
    if external.is_local_relative() {
        // DuckDB tags rows with the path it was given; keep the project-relative part.
        let prefix = format!("{}/", root.to_string_lossy());
        format!(
            "(select * replace (substr({col}, {start}) as {col}) from {reader}{limit})",
            col = SOURCE_FILE_COLUMN,
            start = prefix.chars().count() + 1,
        )
    } else {
        format!("(select * from {reader}{limit})")
    }
}

/// The files a bookmarked model reads from one external source in this run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFiles {
    /// Paths to read (new files, or every file on a full build).
    pub read: Vec<String>,
    /// A file to take the columns from when `read` is empty (another source has new files).
    pub schema_file: Option<String>,
}

impl SourceFiles {
    pub fn file_set(&self) -> FileSet<'_> {
        match (&self.read[..], &self.schema_file) {
            ([], Some(schema_file)) => FileSet::Empty { schema_file },
            (read, _) => FileSet::List(read),
        }
    }
}

/// Per external source (`(source name, table name)`), the files a model reads in this run.
pub type NodeFiles = BTreeMap<(String, String), SourceFiles>;

/// What a model reaches through the views and ephemerals upstream of it: the external sources
/// at the end, and the models on the way that must be inlined so they read the same files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reach {
    /// Source nodes with an `external:` block.
    pub sources: Vec<NodeId>,
    /// View and ephemeral models between the model and those sources, parents first.
    pub inline: Vec<NodeId>,
}

/// Walks up from `node` through view and ephemeral models to the external sources they read.
pub fn reach(manifest: &Manifest, node: &Node) -> Reach {
    fn external(node: &Node) -> bool {
        node.resource_type == ResourceType::Source
            && node.source.as_ref().is_some_and(|s| s.external.is_some())
    }
    fn passes(node: &Node) -> bool {
        node.resource_type == ResourceType::Model
            && matches!(
                node.config.materialized,
                Materialization::View | Materialization::Ephemeral
            )
    }
    // Returns whether `id` leads to an external source; fills `reach` in post-order.
    fn visit(
        manifest: &Manifest,
        id: &NodeId,
        seen: &mut HashMap<NodeId, bool>,
        reach: &mut Reach,
    ) -> bool {
        if let Some(known) = seen.get(id) {
            return *known;
        }
        seen.insert(id.clone(), false);
        let Some(node) = manifest.get(id) else {
            return false;
        };
        let leads = if external(node) {
            reach.sources.push(id.clone());
            true
        } else if passes(node) {
            let mut any = false;
            for dep in &node.depends_on {
                any |= visit(manifest, dep, seen, reach);
            }
            if any {
                reach.inline.push(id.clone());
            }
            any
        } else {
            false
        };
        seen.insert(id.clone(), leads);
        leads
    }
    let mut reach = Reach::default();
    let mut seen = HashMap::new();
    for dep in &node.depends_on {
        visit(manifest, dep, &mut seen, &mut reach);
    }
    reach.sources.sort();
    reach.sources.dedup();
    reach
}

/// The listed files not recorded with their current size, and the paths of those recorded
/// with another size (changed since they were read).
fn unread(
    listed: &[LandingFile],
    recorded: &HashMap<String, u64>,
) -> (Vec<LandingFile>, Vec<String>) {
    let mut files = Vec::new();
    let mut changed = Vec::new();
    for file in listed {
        match recorded.get(&file.path) {
            Some(size) if *size == file.size => continue,
            Some(_) => changed.push(file.path.clone()),
            None => {}
        }
        files.push(file.clone());
    }
    (files, changed)
}

/// One bookmarked model's files for this run and how they are recorded.
#[derive(Debug, Clone, Default)]
pub struct ModelFiles {
    pub files: NodeFiles,
    /// Records the files read, in the write's transaction.
    pub record: Option<crate::plan::StateWrite>,
    /// Files read that were not read before (all of them on a full build).
    pub new_files: usize,
    /// Files read again because their size changed since they were recorded.
    pub changed: Vec<String>,
}

impl ModelFiles {
    /// Nothing to read: the model is reported as having no new data and runs no query.
    pub fn is_empty(&self) -> bool {
        self.new_files == 0
    }
}

/// The files each external source holds now, listed once per run.
#[derive(Debug, Default)]
pub struct Listings {
    listed: HashMap<String, Vec<LandingFile>>,
}

impl Listings {
    /// Sets what a location holds, as a warehouse listed it (remote locations).
    pub fn insert(&mut self, location: &str, files: Vec<LandingFile>) {
        self.listed.insert(location.to_string(), files);
    }

    /// A source's files; none at all is an error (a reader needs at least one).
    fn source_files(
        &mut self,
        root: &Path,
        source: &ExternalSource,
    ) -> Result<&[LandingFile], LandingError> {
        let location = &source.external.location;
        if !self.listed.contains_key(location) {
            let files = list_files(root, location)?;
            self.listed.insert(location.clone(), files);
        }
        match self.listed.get(location) {
            Some(files) if !files.is_empty() => Ok(files),
            _ => Err(LandingError::NoFiles {
                source_name: source.source_name.clone(),
                table: source.table.clone(),
                location: location.clone(),
            }),
        }
    }
}

/// An external source a model reads: its names and `external:` block.
#[derive(Debug, Clone)]
pub struct ExternalSource {
    pub source_name: String,
    pub table: String,
    pub external: External,
}

/// The external sources `reach` found, resolved; an unusable `external:` block is an error
/// naming the YAML file that declares it.
pub fn external_sources(
    manifest: &Manifest,
    sources: &[NodeId],
) -> Result<Vec<ExternalSource>, LandingError> {
    let mut out = Vec::new();
    for id in sources {
        let Some(node) = manifest.get(id) else {
            continue;
        };
        let Some(info) = &node.source else { continue };
        let Some(spec) = &info.external else { continue };
        let external = External::from_json(spec).map_err(|message| LandingError::Spec {
            source_name: info.source_name.clone(),
            table: info.table_name.clone(),
            message,
            path: node.original_file_path.clone(),
        })?;
        out.push(ExternalSource {
            source_name: info.source_name.clone(),
            table: info.table_name.clone(),
            external,
        });
    }
    Ok(out)
}

/// Plans one bookmarked model: lists its sources' files and, when the model builds
/// incrementally, leaves out the files its state records (same path and size).
pub fn plan_model(
    root: &Path,
    listings: &mut Listings,
    model: &RelationName,
    sources: &[ExternalSource],
    incremental: bool,
    recorded: &HashMap<String, u64>,
) -> Result<ModelFiles, LandingError> {
    let empty = HashMap::new();
    let recorded = if incremental { recorded } else { &empty };
    let mut plan = ModelFiles::default();
    let mut consumed = Vec::new();
    for source in sources {
        let listed = listings.source_files(root, source)?;
        let (unread, changed) = unread(listed, recorded);
        plan.changed.extend(changed);
        plan.new_files += unread.len();
        plan.files.insert(
            (source.source_name.clone(), source.table.clone()),
            SourceFiles {
                read: unread.iter().map(|f| f.path.clone()).collect(),
                schema_file: listed.first().map(|f| f.path.clone()),
            },
        );
        consumed.extend(unread.into_iter().map(|f| crate::plan::RecordedFile {
            source_name: source.source_name.clone(),
            table_name: source.table.clone(),
            path: f.path,
            size: f.size,
        }));
    }
    plan.record = Some(crate::plan::StateWrite::Files {
        relation: model.clone(),
        replace_all: !incremental,
        files: consumed,
    });
    Ok(plan)
}

/// What a warehouse that does not read local files must load into an external source's raw
/// table (the source's relation) before the models that read it run.
#[derive(Debug, Clone)]
pub struct StagePlan {
    pub source_name: String,
    pub table: String,
    /// The raw table: the source's relation.
    pub relation: RelationName,
    /// Files to load: new, changed, or every file when `rebuild`.
    pub files: Vec<LandingFile>,
    /// Files loaded before whose size changed: their rows are replaced.
    pub changed: Vec<String>,
    /// The raw table is (re)created from every file (first load or `--full-refresh`).
    pub rebuild: bool,
    /// DuckDB SQL reading `files`, each row tagged with `_source_file`; empty for remote files.
    pub reader: String,
    /// The source's `external:` block, when its files lie in the warehouse's storage.
    pub remote: Option<External>,
    /// A file whose columns the source has (the first listed).
    pub schema_file: Option<String>,
}

/// Plans the load of one external source into its raw table: the listed files its state
/// does not record, or all of them when the table is new, has no record, or `full_refresh`.
pub fn plan_stage(
    root: &Path,
    listings: &mut Listings,
    source: &ExternalSource,
    relation: &RelationName,
    exists: bool,
    recorded: Option<&HashMap<String, u64>>,
    full_refresh: bool,
) -> Result<StagePlan, LandingError> {
    let rebuild = full_refresh || !exists || recorded.is_none();
    let empty = HashMap::new();
    let recorded = match recorded {
        Some(recorded) if !rebuild => recorded,
        _ => &empty,
    };
    let listed = listings.source_files(root, source)?;
    let (files, changed) = unread(listed, recorded);
    let paths: Vec<String> = files.iter().map(|f| f.path.clone()).collect();
    Ok(StagePlan {
        source_name: source.source_name.clone(),
        table: source.table.clone(),
        relation: relation.clone(),
        reader: if source.external.is_remote() {
            String::new()
        } else {
            format!(
                "select * from {}",
                duckdb_reader(root, &source.external, FileSet::List(&paths))
            )
        },
        remote: source.external.is_remote().then(|| source.external.clone()),
        schema_file: listed.first().map(|f| f.path.clone()),
        files,
        changed,
        rebuild,
    })
}

/// What records a stage plan's files in strata's state (in the load's transaction).
pub fn stage_record(plan: &StagePlan) -> crate::plan::StateWrite {
    crate::plan::StateWrite::Files {
        relation: plan.relation.clone(),
        replace_all: plan.rebuild,
        files: plan
            .files
            .iter()
            .map(|f| crate::plan::RecordedFile {
                source_name: plan.source_name.clone(),
                table_name: plan.table.clone(),
                path: f.path.clone(),
                size: f.size,
            })
            .collect(),
    }
}

/// A query of a staged raw table's rows of exactly `files` (warehouses that stage landing
/// files; `_source_file` is indexed there); `None` for every file: the table itself.
pub fn staged_reader(
    relation: &RelationName,
    files: FileSet<'_>,
    style: &QuoteStyle,
) -> Option<String> {
    let table = relation.render(style);
    let column = style.quote_identifier(SOURCE_FILE_COLUMN);
    match files {
        FileSet::Glob => None,
        FileSet::Empty { .. } | FileSet::List([]) => {
            Some(format!("select * from {table} where 1 = 0"))
        }
        FileSet::List(paths) => Some(format!(
            "select * from {table} where {column} in ({})",
            paths
                .iter()
                .map(|p| string_literal(p))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn externals_read_their_format_and_default_from_the_extension() {
        let csv = External::from_json(&serde_json::json!({"location": "landing/c/*.csv"})).unwrap();
        assert_eq!(csv.format, FileFormat::Csv);
        assert!(csv.header);
        let parquet =
            External::from_json(&serde_json::json!({"location": "l/*", "format": "PARQUET"}))
                .unwrap();
        assert_eq!(parquet.format, FileFormat::Parquet);
        let bad = External::from_json(&serde_json::json!({"location": "l/*", "format": "xlsx"}));
        assert_eq!(bad.unwrap_err(), "unknown file format `xlsx`");
        assert!(External::from_json(&serde_json::json!({"format": "csv"})).is_err());
    }

    #[test]
    fn listing_matches_the_glob_below_its_literal_folders() {
        let dir = tempfile::tempdir().unwrap();
        for path in [
            "landing/shop/orders/LOAD00000001.parquet",
            "landing/shop/orders/20240702-060000000.parquet",
            "landing/shop/orders/notes.txt",
            "landing/shop/orders/old/20240101-000000000.parquet",
            "landing/shop/customers/LOAD00000001.csv",
        ] {
            let full = dir.path().join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, b"1234").unwrap();
        }
        let files = list_files(dir.path(), "landing/shop/orders/*.parquet").unwrap();
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "landing/shop/orders/20240702-060000000.parquet",
                "landing/shop/orders/LOAD00000001.parquet"
            ]
        );
        assert_eq!(files[0].size, 4);
        let deep = list_files(dir.path(), "landing/shop/orders/**/*.parquet").unwrap();
        assert_eq!(deep.len(), 3);
        assert!(list_files(dir.path(), "landing/none/*.parquet")
            .unwrap()
            .is_empty());
        let single = list_files(dir.path(), "landing/shop/customers/LOAD00000001.csv").unwrap();
        assert_eq!(single.len(), 1);
    }

    #[test]
    fn readers_tag_rows_with_the_project_relative_file() {
        let external = External::from_json(
            &serde_json::json!({"location": "landing/o/*.csv", "delimiter": ";"}),
        )
        .unwrap();
        let root = Path::new("/p");
        let files = vec![
            "landing/o/a.csv".to_string(),
            "landing/o/b'.csv".to_string(),
        ];
        assert_eq!(
            duckdb_reader(root, &external, FileSet::List(&files)),
            "(select * replace (substr(_source_file, 4) as _source_file) from read_csv(['/p/landing/o/a.csv', '/p/landing/o/b''.csv'], filename = '_source_file', union_by_name = true, header = true, delim = ';'))"
        );
        assert!(duckdb_reader(
            root,
            &external,
            FileSet::Empty {
                schema_file: "landing/o/a.csv"
            }
        )
        .ends_with("header = true, delim = ';') limit 0)"));
    }

    #[test]
    fn staged_readers_filter_the_raw_table_by_file() {
        let raw = RelationName::new(None, "shop", "orders");
        let style = QuoteStyle::default();
        let files = vec!["landing/o/a.csv".to_string()];
        assert_eq!(
            staged_reader(&raw, FileSet::List(&files), &style).unwrap(),
            "select * from \"shop\".\"orders\" where \"_source_file\" in ('landing/o/a.csv')"
        );
        assert_eq!(
            staged_reader(&raw, FileSet::Empty { schema_file: "x" }, &style).unwrap(),
            "select * from \"shop\".\"orders\" where 1 = 0"
        );
        assert!(staged_reader(&raw, FileSet::Glob, &style).is_none());
    }
}

//! Warehouse targets: `profiles.yml` in dbt's format, strata's inline `targets:`, and the
//! embedded DuckDB default, resolved into one typed [`Target`].
//!
//! Connection settings are typed per adapter (a serde enum tagged by `type`) so a misspelt key is
//! caught here, not at connect time. Passwords and keys live in [`Secret`], which never prints.

use std::fmt;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// A value that must never reach logs or artifacts: `Debug`, `Display` and `Serialize` print `***`.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The real value, for handing to a driver. Never format it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("***")
    }
}

/// Which warehouse a target talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AdapterKind {
    Duckdb,
    Postgres,
    Redshift,
    Athena,
    Trino,
}

impl AdapterKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AdapterKind::Duckdb => "duckdb",
            AdapterKind::Postgres => "postgres",
            AdapterKind::Redshift => "redshift",
            AdapterKind::Athena => "athena",
            AdapterKind::Trino => "trino",
        }
    }
}

/// Connection settings per adapter, as written in a profile output.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ConnectionConfig {
    Duckdb(DuckdbConfig),
    Postgres(PostgresConfig),
    Redshift(RedshiftConfig),
    Athena(AthenaConfig),
    Trino(TrinoConfig),
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
pub struct DuckdbConfig {
    /// Database file; `:memory:` for an in-memory database. Default: `<target-path>/<project>.duckdb`.
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub schema: Option<String>,
    #[serde(default)]
    pub database: Option<String>,
    #[serde(default)]
    pub threads: Option<usize>,
    #[serde(default)]
    pub extensions: Vec<Json>,
    /// `SET key = value` on open (dbt-duckdb's `settings`).
    #[serde(default)]
    pub settings: IndexMap<String, Json>,
    /// Other database files to attach, so models can set `+database:` to their alias.
    #[serde(default)]
    pub attach: Vec<DuckdbAttach>,
    #[serde(flatten)]
    pub extra: IndexMap<String, Json>,
}

/// One `attach:` entry of a DuckDB target (dbt-duckdb's keys).
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
pub struct DuckdbAttach {
    pub path: String,
    /// The catalog name models use as `database`; DuckDB's default is the file's stem.
    #[serde(default)]
    pub alias: Option<String>,
    #[serde(default)]
    pub read_only: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct PostgresConfig {
    pub host: String,
    #[serde(default = "default_pg_port")]
    pub port: u16,
    #[serde(alias = "username")]
    pub user: String,
    #[serde(default, alias = "pass")]
    pub password: Option<Secret>,
    #[serde(alias = "database")]
    pub dbname: String,
    pub schema: String,
    #[serde(default)]
    pub threads: Option<usize>,
    #[serde(default)]
    pub sslmode: Option<String>,
    #[serde(default)]
    pub connect_timeout: Option<u64>,
    #[serde(default)]
    pub keepalives_idle: Option<u64>,
    #[serde(default)]
    pub search_path: Option<String>,
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub retries: Option<u32>,
    #[serde(flatten)]
    pub extra: IndexMap<String, Json>,
}

fn default_pg_port() -> u16 {
    5432
}

fn default_redshift_port() -> u16 {
    5439
}

/// A Redshift target, with dbt-redshift's keys: a cluster or Serverless workgroup over the
/// wire protocol (`method: database`, the default), or through the Data API
/// (`method: data_api`). Seeds and landing files go through `s3_staging_dir` with `iam_role`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct RedshiftConfig {
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default = "default_redshift_port")]
    pub port: u16,
    #[serde(default, alias = "username")]
    pub user: Option<String>,
    #[serde(default, alias = "pass")]
    pub password: Option<Secret>,
    #[serde(alias = "database")]
    pub dbname: String,
    pub schema: String,
    #[serde(default)]
    pub threads: Option<usize>,
    /// `database` (the wire protocol, the default) or `data_api`.
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub sslmode: Option<String>,
    #[serde(default)]
    pub connect_timeout: Option<u64>,
    #[serde(default)]
    pub keepalives_idle: Option<u64>,
    /// Retries after the first attempt of a statement that failed retryably.
    #[serde(default)]
    pub retries: Option<u32>,
    /// dbt-redshift's session autocommit. strata commits every statement or block itself, so
    /// the value changes nothing; it is accepted so profiles load unmodified.
    #[serde(default)]
    pub autocommit: Option<bool>,
    #[serde(default)]
    pub ra3_node: Option<bool>,
    /// The Data API's provisioned cluster (with `db_user` or `secret_arn`).
    #[serde(default, alias = "cluster_id")]
    pub cluster_identifier: Option<String>,
    /// The Data API's Serverless workgroup.
    #[serde(default, alias = "workgroup")]
    pub workgroup_name: Option<String>,
    #[serde(default)]
    pub db_user: Option<String>,
    #[serde(default)]
    pub secret_arn: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default, alias = "iam_profile")]
    pub aws_profile_name: Option<String>,
    /// Where seeds and landing files are put for `COPY … FROM 's3://…'`.
    #[serde(default)]
    pub s3_staging_dir: Option<String>,
    /// The role Redshift assumes to read `s3_staging_dir` in `COPY`.
    #[serde(default)]
    pub iam_role: Option<String>,
    /// Seeds this size or smaller load by batched `INSERT`s even with a staging location: one
    /// statement, against an upload and a `COPY`. Default 256 KiB.
    #[serde(default)]
    pub seed_insert_max_bytes: Option<u64>,
    #[serde(flatten)]
    pub extra: IndexMap<String, Json>,
}

impl RedshiftConfig {
    /// Whether the target uses the Data API rather than the wire protocol.
    pub fn uses_data_api(&self) -> bool {
        self.method
            .as_deref()
            .is_some_and(|m| m.eq_ignore_ascii_case("data_api"))
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct AthenaConfig {
    pub s3_staging_dir: String,
    #[serde(default)]
    pub s3_data_dir: Option<String>,
    #[serde(default)]
    pub s3_data_naming: Option<String>,
    pub region_name: String,
    pub schema: String,
    #[serde(default = "default_athena_catalog")]
    pub database: String,
    #[serde(default)]
    pub work_group: Option<String>,
    #[serde(default)]
    pub aws_profile_name: Option<String>,
    #[serde(default)]
    pub aws_access_key_id: Option<Secret>,
    #[serde(default)]
    pub aws_secret_access_key: Option<Secret>,
    #[serde(default)]
    pub threads: Option<usize>,
    #[serde(default)]
    pub num_retries: Option<u32>,
    /// Retries of a query that failed to commit to an Iceberg table (`ICEBERG_COMMIT_ERROR`).
    #[serde(default)]
    pub num_iceberg_retries: Option<u32>,
    /// Seconds between polls of a running query, at most (dbt-athena's key; the first polls
    /// come sooner).
    #[serde(default)]
    pub poll_interval: Option<f64>,
    /// Where tables strata builds for its own use in a run go (dbt-athena's key).
    #[serde(default)]
    pub s3_tmp_table_dir: Option<String>,
    /// Seconds a query may run before strata stops it.
    #[serde(default)]
    pub query_timeout: Option<u64>,
    /// A local AWS API endpoint (tests, LocalStack-style set-ups).
    #[serde(default)]
    pub endpoint_url: Option<String>,
    #[serde(flatten)]
    pub extra: IndexMap<String, Json>,
}

fn default_athena_catalog() -> String {
    "awsdatacatalog".to_string()
}

/// A Trino target, with dbt-trino's keys: the coordinator's address, the catalog (`database`)
/// and schema, session properties sent with every query.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct TrinoConfig {
    pub host: String,
    #[serde(default = "default_trino_port", deserialize_with = "port_number")]
    pub port: u16,
    pub user: String,
    #[serde(default)]
    pub password: Option<Secret>,
    /// `none` (the default) or `ldap` (HTTP basic authentication, over HTTPS only).
    #[serde(default)]
    pub method: Option<String>,
    #[serde(alias = "catalog")]
    pub database: String,
    pub schema: String,
    /// `http` or `https` (the default when a password is set).
    #[serde(default)]
    pub http_scheme: Option<String>,
    #[serde(default)]
    pub session_properties: IndexMap<String, Json>,
    #[serde(default)]
    pub threads: Option<usize>,
    #[serde(default)]
    pub retries: Option<u32>,
    /// Seconds a query may run before strata cancels it.
    #[serde(default)]
    pub query_timeout: Option<u64>,
    /// Where tables' data goes, when not where the catalog places it.
    #[serde(default)]
    pub s3_data_dir: Option<String>,
    #[serde(default)]
    pub s3_data_naming: Option<String>,
    #[serde(flatten)]
    pub extra: IndexMap<String, Json>,
}

fn default_trino_port() -> u16 {
    8080
}

/// A port written as a number, or as text (what `{{ env_var(…) }}` renders to).
fn port_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u16, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Port {
        Number(u16),
        Text(String),
    }
    match Port::deserialize(deserializer)? {
        Port::Number(n) => Ok(n),
        Port::Text(text) => text.trim().parse().map_err(|_| {
            serde::de::Error::custom(format!("port `{text}` is not a number from 1 to 65535"))
        }),
    }
}

impl ConnectionConfig {
    pub fn kind(&self) -> AdapterKind {
        match self {
            ConnectionConfig::Duckdb(_) => AdapterKind::Duckdb,
            ConnectionConfig::Postgres(_) => AdapterKind::Postgres,
            ConnectionConfig::Redshift(_) => AdapterKind::Redshift,
            ConnectionConfig::Athena(_) => AdapterKind::Athena,
            ConnectionConfig::Trino(_) => AdapterKind::Trino,
        }
    }

    pub fn threads(&self) -> Option<usize> {
        match self {
            ConnectionConfig::Duckdb(c) => c.threads,
            ConnectionConfig::Postgres(c) => c.threads,
            ConnectionConfig::Redshift(c) => c.threads,
            ConnectionConfig::Athena(c) => c.threads,
            ConnectionConfig::Trino(c) => c.threads,
        }
    }

    fn extra_mut(&mut self) -> &mut IndexMap<String, Json> {
        match self {
            ConnectionConfig::Duckdb(c) => &mut c.extra,
            ConnectionConfig::Postgres(c) => &mut c.extra,
            ConnectionConfig::Redshift(c) => &mut c.extra,
            ConnectionConfig::Athena(c) => &mut c.extra,
            ConnectionConfig::Trino(c) => &mut c.extra,
        }
    }

    /// Keys written in the profile that this adapter does not know.
    pub fn unknown_keys(&self) -> Vec<&str> {
        let extra = match self {
            ConnectionConfig::Duckdb(c) => &c.extra,
            ConnectionConfig::Postgres(c) => &c.extra,
            ConnectionConfig::Redshift(c) => &c.extra,
            ConnectionConfig::Athena(c) => &c.extra,
            ConnectionConfig::Trino(c) => &c.extra,
        };
        extra
            .keys()
            .map(String::as_str)
            .filter(|k| !matches!(*k, "target_name" | "profile_name"))
            .collect()
    }
}

/// The resolved target a command runs against.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    /// The target's name (`dev`, `prod`, …).
    pub name: String,
    /// The profile it came from, if any.
    pub profile_name: Option<String>,
    pub connection: ConnectionConfig,
    /// The schema models land in unless configured otherwise.
    pub schema: String,
    /// The database (catalog) name relations are qualified with.
    pub database: String,
    pub threads: usize,
    /// Where the target came from, for `debug` and error messages.
    pub origin: TargetOrigin,
    /// The schema strata keeps its own state in (`state_schema:`), when not the default
    /// `<schema>_strata`.
    pub state_schema: Option<String>,
}

/// Where a target's settings were read.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "path")]
pub enum TargetOrigin {
    Profiles(PathBuf),
    ProjectFile(PathBuf),
    Default,
}

impl Target {
    pub fn kind(&self) -> AdapterKind {
        self.connection.kind()
    }

    /// Builds a target from a connection config, filling the derived fields.
    pub fn from_connection(
        name: String,
        profile_name: Option<String>,
        mut connection: ConnectionConfig,
        origin: TargetOrigin,
        project_root: &Path,
        target_path: &Path,
        project_name: &str,
    ) -> Target {
        let (schema, database) = match &mut connection {
            ConnectionConfig::Duckdb(c) => {
                let path = c.path.clone().unwrap_or_else(|| {
                    target_path
                        .join(format!("{project_name}.duckdb"))
                        .to_string_lossy()
                        .into_owned()
                });
                let path = if path == ":memory:" || Path::new(&path).is_absolute() {
                    path
                } else {
                    project_root.join(&path).to_string_lossy().into_owned()
                };
                let database = c.database.clone().unwrap_or_else(|| {
                    if path == ":memory:" {
                        "memory".to_string()
                    } else {
                        Path::new(&path)
                            .file_stem()
                            .map(|s| s.to_string_lossy().into_owned())
                            .unwrap_or_else(|| "main".into())
                    }
                });
                c.path = Some(path);
                for attached in &mut c.attach {
                    let relative = attached.path != ":memory:"
                        && !attached.path.contains("://")
                        && !Path::new(&attached.path).is_absolute();
                    if relative {
                        attached.path = project_root
                            .join(&attached.path)
                            .to_string_lossy()
                            .into_owned();
                    }
                }
                (c.schema.clone().unwrap_or_else(|| "main".into()), database)
            }
            ConnectionConfig::Postgres(c) => (c.schema.clone(), c.dbname.clone()),
            ConnectionConfig::Redshift(c) => (c.schema.clone(), c.dbname.clone()),
            ConnectionConfig::Athena(c) => (c.schema.clone(), c.database.clone()),
            ConnectionConfig::Trino(c) => (c.schema.clone(), c.database.clone()),
        };
        let threads = connection.threads().unwrap_or(4).max(1);
        let state_schema = connection
            .extra_mut()
            .shift_remove("state_schema")
            .and_then(|v| v.as_str().map(str::to_string))
            .filter(|s| !s.trim().is_empty());
        Target {
            name,
            profile_name,
            connection,
            schema,
            database,
            threads,
            origin,
            state_schema,
        }
    }

    /// `target` as dbt's Jinja context shows it: no secrets.
    pub fn jinja_value(&self) -> Json {
        let mut map = serde_json::Map::new();
        if let Ok(Json::Object(conn)) = serde_json::to_value(&self.connection) {
            for (key, value) in conn {
                if value != Json::String("***".into()) {
                    map.insert(key, value);
                }
            }
        }
        map.insert("name".into(), Json::from(self.name.clone()));
        map.insert("target_name".into(), Json::from(self.name.clone()));
        map.insert("type".into(), Json::from(self.kind().as_str()));
        map.insert("schema".into(), Json::from(self.schema.clone()));
        map.insert("database".into(), Json::from(self.database.clone()));
        map.insert("dbname".into(), Json::from(self.database.clone()));
        map.insert("threads".into(), Json::from(self.threads));
        map.insert(
            "profile_name".into(),
            Json::from(self.profile_name.clone().unwrap_or_default()),
        );
        Json::Object(map)
    }
}

/// A `profiles.yml` profile: the default target name and its outputs.
#[derive(Debug, Deserialize)]
pub struct ProfileSpec {
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub outputs: IndexMap<String, Json>,
}

/// Where strata looks for `profiles.yml` when `--profiles-dir` is not given, in order.
pub fn profile_search_dirs(project_root: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![project_root.to_path_buf()];
    if let Some(home) = std::env::var_os("HOME").map(PathBuf::from) {
        dirs.push(home.join(".strata"));
        dirs.push(home.join(".dbt"));
    }
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let config: PostgresConfig = serde_json::from_value(serde_json::json!({
            "host": "h", "user": "u", "password": "hunter2", "dbname": "d", "schema": "s"
        }))
        .unwrap();
        let shown = format!("{config:?} {}", serde_json::to_string(&config).unwrap());
        assert!(!shown.contains("hunter2"), "{shown}");
        assert_eq!(config.password.unwrap().expose(), "hunter2");
    }
}

//! Helpers for running the real `strata` binary against fixture projects in temp folders.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The output of one `strata` run.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// stderr with the temp folder replaced by `[PROJECT]` and timings by `[T]s`, for snapshots.
    pub fn stderr_redacted(&self, root: &Path) -> String {
        redact(&self.stderr, root)
    }
}

pub fn redact(text: &str, root: &Path) -> String {
    let mut out = text.replace(&root.to_string_lossy().to_string(), "[PROJECT]");
    if let Ok(canonical) = std::fs::canonicalize(root) {
        out = out.replace(&canonical.to_string_lossy().to_string(), "[PROJECT]");
    }
    let mut result = String::with_capacity(out.len());
    for line in out.lines() {
        let words: Vec<String> = line
            .split(' ')
            .map(|w| {
                let trimmed = w.trim_end_matches(['s', ',', ')']);
                let suffix = &w[trimmed.len()..];
                if suffix.starts_with('s')
                    && trimmed.contains('.')
                    && trimmed.parse::<f64>().is_ok()
                {
                    format!("[T]{suffix}")
                } else {
                    w.to_string()
                }
            })
            .collect();
        result.push_str(&words.join(" "));
        result.push('\n');
    }
    result
}

/// Runs `strata ARGS` in `dir` with a clean environment for strata's variables.
pub fn strata(dir: &Path, args: &[&str]) -> Run {
    strata_env(dir, args, &[])
}

pub fn strata_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_strata"));
    command.current_dir(dir).args(args);
    for var in [
        "STRATA_PROJECT_DIR",
        "DBT_PROJECT_DIR",
        "STRATA_PROFILES_DIR",
        "DBT_PROFILES_DIR",
        "STRATA_TARGET",
    ] {
        command.env_remove(var);
    }
    // Profiles in the home folder must not leak into tests.
    command.env("HOME", dir.join(".no-home"));
    command.env("NO_COLOR", "1");
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().expect("the strata binary runs");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Copies a fixture project into a fresh temp folder.
pub fn fixture(name: &str) -> tempfile::TempDir {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let dir = tempfile::tempdir().expect("temp dir");
    copy_dir(&source, dir.path());
    dir
}

/// Copies a folder and everything under it.
pub fn copy_tree(from: &Path, to: &Path) {
    copy_dir(from, to)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read fixture dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy fixture file");
        }
    }
}

/// Writes a small project from (path, contents) pairs into a fresh temp folder.
pub fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (path, contents) in files {
        let full = dir.path().join(path);
        std::fs::create_dir_all(full.parent().expect("parent")).expect("create dir");
        std::fs::write(full, contents).expect("write file");
    }
    dir
}

/// Every file under `dir`, relative, sorted.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if !dir.exists() {
        return out;
    }
    for entry in walkdir(dir) {
        out.push(entry.strip_prefix(dir).expect("under dir").to_path_buf());
    }
    out.sort();
    out
}

fn walkdir(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walkdir(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// The `results` of a `run_results.json` (`path` relative to the project, e.g.
/// `target/run_results.json`).
pub fn run_results(dir: &Path, path: &str) -> Vec<serde_json::Value> {
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(path)).expect("run_results.json"))
            .expect("run_results.json is JSON");
    results["results"].as_array().cloned().expect("results")
}

/// One table of an `expected.json` a fixture's `expect.sh` wrote from dbt-core's build: its
/// columns, and its rows as text (`NULL` for nulls), sorted.
pub fn expected_table(want: &serde_json::Value) -> (Vec<String>, Vec<Vec<String>>) {
    let columns = want["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .map(|c| c.as_str().expect("a column name").to_string())
        .collect();
    let mut rows: Vec<Vec<String>> = want["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            r.as_array()
                .expect("a row")
                .iter()
                .map(|v| v.as_str().unwrap_or("NULL").to_string())
                .collect()
        })
        .collect();
    rows.sort();
    (columns, rows)
}

/// The tables of a fixture's `expected.json` (written by dbt-core, see its `expect.sh`): name,
/// columns and rows sorted.
pub fn expected_tables(fixture: &str) -> Vec<(String, Vec<String>, Vec<Vec<String>>)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(fixture)
        .join("expected.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("expected.json"))
            .expect("expected.json is JSON");
    json.as_object()
        .expect("tables")
        .iter()
        .map(|(table, want)| {
            let (columns, rows) = expected_table(want);
            (table.clone(), columns, rows)
        })
        .collect()
}

/// Values compare as numbers where both are (PostgreSQL prints `0` and `30` where DuckDB
/// prints `0.0`), else as text.
pub fn same_value(a: &str, b: &str) -> bool {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// Whether two sorted row sets hold the same values, numbers compared by value.
pub fn same_rows(got: &[Vec<String>], want: &[Vec<String>]) -> bool {
    got.len() == want.len()
        && got
            .iter()
            .zip(want)
            .all(|(g, w)| g.len() == w.len() && g.iter().zip(w).all(|(a, b)| same_value(a, b)))
}

/// Runs `sql` on a DuckDB file and returns every value as text (`NULL` for nulls).
pub fn query(db: &std::path::Path, sql: &str) -> Vec<Vec<String>> {
    let connection = duckdb::Connection::open(db).expect("open the built database");
    let mut statement = connection.prepare(sql).expect("prepare");
    let mut rows = statement.query([]).expect("query");
    let mut out = Vec::new();
    while let Some(row) = rows.next().expect("row") {
        let count = row.as_ref().column_count();
        let mut values = Vec::new();
        for i in 0..count {
            let value: duckdb::types::Value = row.get(i).expect("value");
            values.push(match value {
                duckdb::types::Value::Null => "NULL".to_string(),
                duckdb::types::Value::Text(s) => s,
                duckdb::types::Value::Int(i) => i.to_string(),
                duckdb::types::Value::BigInt(i) => i.to_string(),
                other => format!("{other:?}"),
            });
        }
        out.push(values);
    }
    out
}

/// A `strata` process started in the background, its stderr read up to a given line.
pub struct Running {
    pub child: std::process::Child,
    stderr: std::io::BufReader<std::process::ChildStderr>,
    /// stderr so far.
    pub seen: String,
}

impl Running {
    /// Starts `strata ARGS` in `dir` and reads stderr until a line contains `needle` (or the
    /// process ends).
    pub fn until(dir: &Path, args: &[&str], needle: &str) -> Running {
        Running::until_env(dir, args, &[], needle)
    }

    /// [`Running::until`] with environment variables set.
    pub fn until_env(dir: &Path, args: &[&str], env: &[(&str, &str)], needle: &str) -> Running {
        use std::io::BufRead;
        let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
            .current_dir(dir)
            .args(args)
            .env("HOME", dir.join(".no-home"))
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn strata");
        let mut stderr = std::io::BufReader::new(child.stderr.take().expect("stderr"));
        let mut seen = String::new();
        loop {
            let mut line = String::new();
            if stderr.read_line(&mut line).expect("read stderr") == 0 {
                break;
            }
            seen.push_str(&line);
            if line.contains(needle) {
                break;
            }
        }
        Running {
            child,
            stderr,
            seen,
        }
    }

    /// Sends SIGINT (Ctrl-C) and waits; returns the exit code and the whole stderr.
    pub fn interrupt(mut self) -> (Option<i32>, String) {
        use std::io::Read;
        let sent = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .expect("kill -INT");
        assert!(sent.success());
        let _ = self.stderr.read_to_string(&mut self.seen);
        let status = self.child.wait().expect("wait");
        (status.code(), self.seen)
    }

    /// Kills the process (SIGKILL) and waits.
    pub fn kill(mut self) {
        self.child.kill().expect("kill strata");
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request to a stand-in's control API at `address`; the status and the body.
pub fn http(address: &str, method: &str, path: &str, body: &str) -> Result<(u16, String), String> {
    let mut stream = std::net::TcpStream::connect(address).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    std::io::Write::write_all(&mut stream, request.as_bytes()).map_err(|e| e.to_string())?;
    let mut response = String::new();
    std::io::Read::read_to_string(&mut stream, &mut response).map_err(|e| e.to_string())?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not an HTTP response: {response}"))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

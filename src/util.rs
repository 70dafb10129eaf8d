//! Small helpers shared across rooms: hashing, atomic file writes, glob folders, Python's
//! JSON spelling, the HTTP(S) connector the HTTP clients share.

use std::io::Write;
use std::path::Path;

use serde_json::Value as Json;
use sha2::{Digest, Sha256};

/// The folder of a path or URI glob: everything up to the last `/` before the first glob
/// character (`s3://lake/landing/orders/` of `s3://lake/landing/orders/*.parquet`).
pub fn glob_folder(location: &str) -> &str {
    let literal = location
        .find(['*', '?', '[', '{'])
        .map_or(location, |at| &location[..at]);
    match literal.rfind('/') {
        Some(at) => &literal[..=at],
        None => literal,
    }
}

/// Serializes `(key, value)` pairs as a JSON object in their order (`#[serde(serialize_with)]`
/// for borrowed artifact entries, without building a map first).
pub fn pairs_as_map<S: serde::Serializer, T: serde::Serialize>(
    pairs: &[(&str, T)],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_map(pairs.iter().map(|(k, v)| (k, v)))
}

/// Hex SHA-256 of `bytes`, as dbt's checksums.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Lower-case hex of `bytes` (digests).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

/// Writes `contents` to `path` through a temporary file and a rename, so readers never see a
/// half-written artifact and a killed run leaves the previous file intact.
pub fn write_atomic(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    write_atomic_with(path, |file| file.write_all(contents))
}

/// Like [`write_atomic`], with the contents streamed by `write` (large artifacts are never held
/// in memory whole). A failed write removes the temporary file and leaves `path` as it was.
pub fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "artifact".into());
    let tmp = path.with_file_name(format!(".{file_name}.{}.tmp", std::process::id()));
    let written = std::fs::File::create(&tmp).and_then(|file| {
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        write(&mut out)?;
        out.flush()
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, path)
}

/// JSON as Python's `json.dumps(value, sort_keys=…)` writes it (`", "` and `": "`
/// separators, non-ASCII escaped): dbt's `tojson`, and the lock file's hash.
pub fn python_json(value: &Json, sort_keys: bool) -> String {
    let mut out = String::new();
    write_python_json(value, sort_keys, &mut out);
    out
}

fn write_python_json(value: &Json, sort_keys: bool, out: &mut String) {
    match value {
        Json::Null => out.push_str("null"),
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Json::Number(n) => out.push_str(&n.to_string()),
        Json::String(s) => write_python_string(s, out),
        Json::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_python_json(item, sort_keys, out);
            }
            out.push(']');
        }
        Json::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            if sort_keys {
                keys.sort();
            }
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_python_string(key, out);
                out.push_str(": ");
                write_python_json(&map[key], sort_keys, out);
            }
            out.push('}');
        }
    }
}

/// A string as Python's `json.dumps` escapes it (`ensure_ascii`: non-ASCII as `\uXXXX`).
fn write_python_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The connector of strata's HTTP clients (Trino, package downloads, alert webhooks): HTTP or
/// HTTPS with rustls and the system's root certificates, HTTP/1.1. `Err` says what failed.
pub fn https_connector(
) -> Result<hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>, String>
{
    use hyper_rustls::ConfigBuilderExt;
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up failed: {e}"))?
        .with_native_roots()
        .map_err(|e| format!("cannot read the system's root certificates: {e}"))?
        .with_no_client_auth();
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .build())
}

#[cfg(test)]
mod tests {
    use super::python_json;

    #[test]
    fn sha256_matches_known_digest() {
        assert_eq!(
            super::sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn a_failed_streamed_write_keeps_the_previous_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("manifest.json");
        super::write_atomic(&path, b"old").expect("first write");
        let failed = super::write_atomic_with(&path, |out| {
            std::io::Write::write_all(out, b"half")?;
            Err(std::io::Error::other("serializer failed"))
        });
        assert!(failed.is_err());
        assert_eq!(std::fs::read(&path).expect("read"), b"old");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("manifest.json")]);
        super::write_atomic_with(&path, |out| std::io::Write::write_all(out, b"new"))
            .expect("streamed write");
        assert_eq!(std::fs::read(&path).expect("read"), b"new");
    }

    #[test]
    fn python_json_matches_json_dumps() {
        let value = serde_json::json!({"b": [1, "x"], "a": null, "é": true});
        assert_eq!(
            python_json(&value, true),
            r#"{"a": null, "b": [1, "x"], "\u00e9": true}"#
        );
        assert_eq!(
            python_json(&value, false),
            r#"{"b": [1, "x"], "a": null, "\u00e9": true}"#
        );
    }
}

//! Getting package files: HTTP(S) downloads (the hub's index and tarballs), `.tar.gz`
//! extraction, and git (the `git` program, as dbt uses it, so the user's credentials and
//! URL rewrites apply).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::DepsError;
use crate::project::packages::redact_url;

/// Downloads `url` (following up to five redirects), with a timeout per request.
pub fn http_get(url: &str) -> Result<Vec<u8>, DepsError> {
    let failed = |message: String| DepsError::Fetch {
        what: redact_url(url),
        message,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| failed(e.to_string()))?;
    runtime.block_on(async {
        let connector = crate::util::https_connector().map_err(failed)?;
        let client: Client<_, Empty<Bytes>> =
            Client::builder(TokioExecutor::new()).build(connector);
        let mut current = url.to_string();
        for _ in 0..6 {
            let uri: hyper::Uri = current
                .parse()
                .map_err(|e| failed(format!("not a URL: {e}")))?;
            let request = hyper::Request::get(uri)
                .header("user-agent", concat!("strata/", env!("CARGO_PKG_VERSION")))
                .body(Empty::new())
                .map_err(|e| failed(e.to_string()))?;
            let response = tokio::time::timeout(Duration::from_secs(60), client.request(request))
                .await
                .map_err(|_| failed("no answer within 60 s".into()))?
                .map_err(|e| failed(format!("{e}")))?;
            let status = response.status();
            if status.is_redirection() {
                let Some(location) = response
                    .headers()
                    .get(hyper::header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                else {
                    return Err(failed(format!("{status} without a location")));
                };
                current = location.to_string();
                continue;
            }
            if !status.is_success() {
                return Err(failed(format!("the server answered {status}")));
            }
            let body =
                tokio::time::timeout(Duration::from_secs(300), response.into_body().collect())
                    .await
                    .map_err(|_| failed("the download took over 300 s".into()))?
                    .map_err(|e| failed(e.to_string()))?;
            return Ok(body.to_bytes().to_vec());
        }
        Err(failed("too many redirects".into()))
    })
}

/// Unpacks a `.tar.gz` into `dest` (created), dropping the archive's single top folder as
/// dbt does (hub tarballs hold `dbt-utils-1.1.1/…`). Entries that would land outside `dest`
/// are refused by the `tar` crate.
pub fn untar(bytes: &[u8], dest: &Path, what: &str) -> Result<(), DepsError> {
    let failed = |message: String| DepsError::Fetch {
        what: what.to_string(),
        message,
    };
    let scratch = dest.with_extension("unpack");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).map_err(|e| failed(e.to_string()))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    for entry in archive
        .entries()
        .map_err(|e| failed(format!("not a .tar.gz: {e}")))?
    {
        let mut entry = entry.map_err(|e| failed(format!("a damaged archive: {e}")))?;
        entry
            .unpack_in(&scratch)
            .map_err(|e| failed(format!("cannot unpack: {e}")))?;
    }
    let tops: Vec<PathBuf> = std::fs::read_dir(&scratch)
        .map_err(|e| failed(e.to_string()))?
        .filter_map(Result::ok)
        .filter(|e| {
            !e.file_name()
                .to_string_lossy()
                .starts_with("pax_global_header")
        })
        .map(|e| e.path())
        .collect();
    let root = match tops.as_slice() {
        [one] if one.is_dir() => one.clone(),
        _ => scratch.clone(),
    };
    std::fs::rename(&root, dest).map_err(|e| failed(e.to_string()))?;
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(())
}

/// Runs git with `args`, returning its standard output.
fn git(args: &[&str], dir: Option<&Path>, url: &str) -> Result<String, DepsError> {
    let mut command = Command::new("git");
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    command
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(std::process::Stdio::null());
    let output = command.output().map_err(|e| DepsError::Fetch {
        what: redact_url(url),
        message: format!("cannot run git ({e}); install git to use git packages"),
    })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(DepsError::Fetch {
            what: redact_url(url),
            message: format!(
                "git {} failed: {}",
                args.first().copied().unwrap_or(""),
                redact_in(stderr.trim(), url)
            ),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// A message with the URL's credentials taken out.
fn redact_in(text: &str, url: &str) -> String {
    text.replace(url, &redact_url(url))
}

/// Clones `url` into `dest` at `revision` (a branch, tag or commit; the default branch when
/// `None`) and returns the commit checked out. The clone's `.git` is removed.
pub fn git_checkout(url: &str, revision: Option<&str>, dest: &Path) -> Result<String, DepsError> {
    let dest_text = dest.to_string_lossy().into_owned();
    git(&["clone", "--quiet", url, &dest_text], None, url)?;
    if let Some(revision) = revision {
        git(&["checkout", "--quiet", revision], Some(dest), url)?;
    }
    let commit = git(&["rev-parse", "HEAD"], Some(dest), url)?;
    let _ = std::fs::remove_dir_all(dest.join(".git"));
    Ok(commit)
}

/// Copies a folder's files (following nothing outside it) into `dest`.
pub fn copy_dir(from: &Path, dest: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dest)?;
    for entry in walkdir::WalkDir::new(from).min_depth(1) {
        let entry = entry.map_err(std::io::Error::other)?;
        let rel = entry
            .path()
            .strip_prefix(from)
            .map_err(std::io::Error::other)?;
        let target = dest.join(rel);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target)?;
        } else if entry.file_type().is_file() {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

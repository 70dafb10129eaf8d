//! Alerts: the project's `on-failure:` notifications of a run — an HTTP webhook (a POST of a
//! JSON summary: project, target, the failed nodes with their messages and files, counts,
//! links to the artifacts) and/or a command (the same JSON on its stdin) — each with a timeout
//! and retries. Delivering them never changes a run's exit code: what fails is a warning, with
//! the webhook's address cut to its host so no token in it reaches a log.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value as Json;

/// The `on-failure:` block, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertConfig {
    pub webhook: Option<Webhook>,
    /// Run with `sh -c`, the JSON summary on stdin.
    pub command: Option<String>,
    /// Notify after every run, not only failed ones.
    pub every_run: bool,
    /// Seconds one attempt may take.
    pub timeout: u64,
    /// Attempts after the first.
    pub retries: u32,
    /// Where the artifacts can be seen (a CI job's page): links are this plus their names.
    pub artifacts_url: Option<String>,
}

#[derive(Clone, PartialEq, Eq)]
pub struct Webhook {
    pub url: String,
    pub headers: BTreeMap<String, String>,
}

/// Header values and the URL's path may hold secrets: neither is printed.
impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("url", &shown_url(&self.url))
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .finish()
    }
}

const KEYS: &[&str] = &[
    "webhook",
    "command",
    "every_run",
    "timeout",
    "retries",
    "artifacts_url",
];

/// A URL as messages may show it: its scheme and host, nothing that could be a token.
pub fn shown_url(url: &str) -> String {
    match url.parse::<hyper::Uri>() {
        Ok(uri) => format!(
            "{}://{}/…",
            uri.scheme_str().unwrap_or("http"),
            uri.host().unwrap_or("?")
        ),
        Err(_) => "(the webhook URL)".into(),
    }
}

fn number(map: &serde_json::Map<String, Json>, key: &str, default: u64) -> Result<u64, String> {
    match map.get(key) {
        None | Some(Json::Null) => Ok(default),
        Some(Json::Number(n)) => n
            .as_u64()
            .ok_or_else(|| format!("`on-failure.{key}` must be a whole number, not {n}")),
        Some(Json::String(s)) => s
            .trim()
            .parse()
            .map_err(|_| format!("`on-failure.{key}` must be a whole number, not `{s}`")),
        Some(other) => Err(format!(
            "`on-failure.{key}` must be a whole number, not `{other}`"
        )),
    }
}

fn flag(value: Option<&Json>, key: &str) -> Result<bool, String> {
    match value {
        None | Some(Json::Null) => Ok(false),
        Some(Json::Bool(b)) => Ok(*b),
        Some(Json::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" | "" => Ok(false),
            other => Err(format!(
                "`on-failure.{key}` is `{other}`: use true or false"
            )),
        },
        Some(other) => Err(format!(
            "`on-failure.{key}` is `{other}`: use true or false"
        )),
    }
}

fn text(value: Option<&Json>) -> Option<String> {
    value
        .and_then(Json::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

impl AlertConfig {
    /// Reads the `on-failure:` block (strings already rendered, `env_var` included);
    /// `Ok(None)` when there is none, or when it names neither a webhook nor a command (an
    /// `env_var` default left empty turns alerts off).
    pub fn from_json(value: Option<&Json>) -> Result<Option<AlertConfig>, String> {
        let map = match value {
            None | Some(Json::Null) => return Ok(None),
            Some(Json::Object(map)) => map,
            Some(other) => {
                return Err(format!(
                    "`on-failure` must be a mapping (`webhook`, `command`, …), not `{other}`"
                ))
            }
        };
        crate::diagnostic::unknown_key(map.keys(), KEYS, "on-failure")?;
        let webhook = match map.get("webhook") {
            None | Some(Json::Null) => None,
            Some(Json::String(url)) => text(Some(&Json::String(url.clone()))).map(|url| Webhook {
                url,
                headers: BTreeMap::new(),
            }),
            Some(Json::Object(hook)) => {
                for key in hook.keys() {
                    if !["url", "headers"].contains(&key.as_str()) {
                        return Err(format!(
                            "unknown key `{key}` in `on-failure.webhook` (keys: url, headers)"
                        ));
                    }
                }
                let headers = match hook.get("headers") {
                    None | Some(Json::Null) => BTreeMap::new(),
                    Some(Json::Object(h)) => h
                        .iter()
                        .map(|(k, v)| {
                            let value = match v {
                                Json::String(s) => s.clone(),
                                other => other.to_string(),
                            };
                            (k.clone(), value)
                        })
                        .collect(),
                    Some(_) => {
                        return Err(
                            "`on-failure.webhook.headers` must be a mapping of names to values"
                                .into(),
                        )
                    }
                };
                text(hook.get("url")).map(|url| Webhook { url, headers })
            }
            Some(_) => {
                return Err(
                    "`on-failure.webhook` must be a URL or a mapping with `url` and `headers`"
                        .into(),
                )
            }
        };
        if let Some(hook) = &webhook {
            match hook.url.parse::<hyper::Uri>() {
                Ok(uri) if matches!(uri.scheme_str(), Some("http" | "https")) => {}
                _ => {
                    return Err(format!(
                        "`on-failure.webhook` is not an http(s) URL ({})",
                        shown_url(&hook.url)
                    ))
                }
            }
        }
        let command = text(map.get("command"));
        if webhook.is_none() && command.is_none() {
            return Ok(None);
        }
        Ok(Some(AlertConfig {
            webhook,
            command,
            every_run: flag(map.get("every_run"), "every_run")?,
            timeout: number(map, "timeout", 10)?.max(1),
            retries: u32::try_from(number(map, "retries", 2)?).unwrap_or(u32::MAX),
            artifacts_url: text(map.get("artifacts_url")),
        }))
    }
}

/// A node that failed, as the summary lists it.
#[derive(Debug, Clone)]
pub struct Failure {
    pub unique_id: Option<String>,
    pub name: String,
    pub status: String,
    pub message: String,
    /// The node's file (or the file an error points at), relative to the project.
    pub file: Option<String>,
}

/// What a run tells its alerts.
#[derive(Debug, Clone)]
pub struct Summary {
    pub project: String,
    pub target: String,
    pub command: String,
    pub invocation_id: String,
    pub failed: bool,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub elapsed: f64,
    /// Nodes by status (`success`, `error`, …).
    pub counts: BTreeMap<String, usize>,
    pub failures: Vec<Failure>,
    /// The artifacts the run wrote (`run_results.json`, …), absolute.
    pub artifacts: Vec<std::path::PathBuf>,
}

impl Summary {
    /// The JSON posted and handed to the command. `text` reads as a chat message (Slack's and
    /// Teams' incoming webhooks show it as it is).
    pub fn to_json(&self, artifacts_url: Option<&str>) -> Json {
        let names: Vec<&str> = self.failures.iter().map(|f| f.name.as_str()).collect();
        let total: usize = self.counts.values().sum();
        let text = if self.failed {
            let listed = if names.len() > 5 {
                format!("{}, and {} more", names[..5].join(", "), names.len() - 5)
            } else {
                names.join(", ")
            };
            format!(
                "strata {} of {} on target {} failed: {} of {total} nodes failed ({listed})",
                self.command,
                self.project,
                self.target,
                self.failures.len()
            )
        } else {
            format!(
                "strata {} of {} on target {} passed: {total} nodes",
                self.command, self.project, self.target
            )
        };
        let links: Vec<Json> = self
            .artifacts
            .iter()
            .map(|path| {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let url = match artifacts_url {
                    Some(base) => format!("{}/{name}", base.trim_end_matches('/')),
                    None => format!("file://{}", path.display()),
                };
                serde_json::json!({"name": name, "path": path, "url": url})
            })
            .collect();
        serde_json::json!({
            "text": text,
            "project": self.project,
            "target": self.target,
            "command": self.command,
            "invocation_id": self.invocation_id,
            "status": if self.failed { "error" } else { "success" },
            "started_at": self.started_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "elapsed_seconds": self.elapsed,
            "counts": self.counts,
            "failures": self.failures.iter().map(|f| serde_json::json!({
                "unique_id": f.unique_id,
                "name": f.name,
                "status": f.status,
                "message": f.message,
                "file": f.file,
            })).collect::<Vec<_>>(),
            "artifacts": links,
        })
    }
}

/// Sends the run's notifications where `config` says, if the run calls for one; the
/// warnings of what could not be delivered.
pub async fn notify(config: &AlertConfig, summary: &Summary, root: &Path) -> Vec<String> {
    if !summary.failed && !config.every_run {
        return Vec::new();
    }
    let body = summary.to_json(config.artifacts_url.as_deref()).to_string();
    let timeout = Duration::from_secs(config.timeout);
    let mut warnings = Vec::new();
    if let Some(hook) = &config.webhook {
        if let Err(e) = retrying(config.retries, || post(hook, &body, timeout)).await {
            warnings.push(format!(
                "the on-failure webhook ({}) was not notified: {e}",
                shown_url(&hook.url)
            ));
        }
    }
    if let Some(command) = &config.command {
        if let Err(e) = retrying(config.retries, || {
            run_command(command, &body, timeout, root)
        })
        .await
        {
            warnings.push(format!("the on-failure command did not succeed: {e}"));
        }
    }
    warnings
}

/// What a failed attempt says, and whether another could succeed.
struct Attempt {
    message: String,
    retry: bool,
}

async fn retrying<F, Fut>(retries: u32, mut attempt: F) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), Attempt>>,
{
    let mut tries = 0u32;
    loop {
        match attempt().await {
            Ok(()) => return Ok(()),
            Err(failed) if failed.retry && tries < retries => {
                tries += 1;
                // 1 s, 2 s, 4 s, … at most 30 s between attempts.
                let wait = Duration::from_secs((1u64 << (tries - 1).min(5)).min(30));
                tokio::time::sleep(wait).await;
            }
            Err(failed) => {
                let attempts = tries + 1;
                return Err(format!(
                    "{} ({attempts} attempt{})",
                    failed.message,
                    if attempts == 1 { "" } else { "s" }
                ));
            }
        }
    }
}

async fn post(hook: &Webhook, body: &str, timeout: Duration) -> Result<(), Attempt> {
    let fatal = |message: String| Attempt {
        message,
        retry: false,
    };
    let connector = crate::util::https_connector().map_err(fatal)?;
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
    let uri: hyper::Uri = hook.url.parse().map_err(|_| fatal("not a URL".into()))?;
    let mut request = hyper::Request::post(uri)
        .header("content-type", "application/json")
        .header("user-agent", concat!("strata/", env!("CARGO_PKG_VERSION")));
    for (name, value) in &hook.headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let request = request
        .body(Full::new(Bytes::from(body.to_string())))
        .map_err(|_| fatal("a header name or value is not valid HTTP".into()))?;
    let response = match tokio::time::timeout(timeout, client.request(request)).await {
        Err(_) => {
            return Err(Attempt {
                message: format!("no answer within {} s", timeout.as_secs()),
                retry: true,
            })
        }
        // The error's text may name the URL: only its kind is said.
        Ok(Err(e)) => {
            return Err(Attempt {
                message: if e.is_connect() {
                    "cannot connect".into()
                } else {
                    "the request failed".into()
                },
                retry: true,
            })
        }
        Ok(Ok(response)) => response,
    };
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(Attempt {
            message: format!("the webhook answered {status}"),
            retry: status.is_server_error() || status.as_u16() == 429,
        })
    }
}

async fn run_command(
    command: &str,
    body: &str,
    timeout: Duration,
    root: &Path,
) -> Result<(), Attempt> {
    let (command, body, root) = (command.to_string(), body.to_string(), root.to_path_buf());
    tokio::task::spawn_blocking(move || run_command_blocking(&command, &body, timeout, &root))
        .await
        .unwrap_or_else(|e| {
            Err(Attempt {
                message: e.to_string(),
                retry: false,
            })
        })
}

fn run_command_blocking(
    command: &str,
    body: &str,
    timeout: Duration,
    root: &Path,
) -> Result<(), Attempt> {
    use std::io::{Read, Write};
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(root)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| Attempt {
            message: format!("cannot start `sh`: {e}"),
            retry: false,
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A command that does not read its input is fine.
        let _ = stdin.write_all(body.as_bytes());
    }
    let deadline = std::time::Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if std::time::Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Attempt {
                    message: format!(
                        "it did not finish within {} s and was killed",
                        timeout.as_secs()
                    ),
                    retry: true,
                });
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => {
                return Err(Attempt {
                    message: e.to_string(),
                    retry: true,
                })
            }
        }
    };
    if status.success() {
        return Ok(());
    }
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    let last = stderr.lines().last().unwrap_or_default().trim().to_string();
    Err(Attempt {
        message: format!(
            "it exited with {status}{}",
            if last.is_empty() {
                String::new()
            } else {
                format!(": {last}")
            }
        ),
        retry: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_block_reads_a_webhook_a_command_and_their_limits() {
        let config = AlertConfig::from_json(Some(&json!({
            "webhook": {"url": "https://hooks.example.com/services/T0/B0/secret", "headers": {"Authorization": "Bearer x"}},
            "command": "cat > alert.json",
            "timeout": "5",
            "retries": 1,
            "every_run": "false",
        })))
        .unwrap()
        .unwrap();
        assert_eq!(config.timeout, 5);
        assert_eq!(config.retries, 1);
        assert!(!config.every_run);
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("secret") && !shown.contains("Bearer"),
            "{shown}"
        );
        assert_eq!(
            shown_url("https://hooks.example.com/services/T0/B0/secret"),
            "https://hooks.example.com/…"
        );
        // An empty env_var default turns alerts off.
        assert_eq!(
            AlertConfig::from_json(Some(&json!({"webhook": ""}))).unwrap(),
            None
        );
        assert!(AlertConfig::from_json(Some(&json!({"webhok": "http://x"})))
            .unwrap_err()
            .contains("did you mean `webhook`"));
        assert!(
            AlertConfig::from_json(Some(&json!({"webhook": "ftp://x/y"})))
                .unwrap_err()
                .contains("not an http(s) URL")
        );
    }
}

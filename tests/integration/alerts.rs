//! Alerts: the project's `on-failure` webhook, tested against an HTTP server on 127.0.0.1
//! (a failing run posts one notification listing its failures, a passing run none unless
//! `every_run`, retries on a 5xx, a timeout, a hook that is down leaves the exit code alone),
//! and the command hook fed the same JSON.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value as Json;

use crate::common::{project, strata_env};

/// One request the server saw.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    headers: Vec<(String, String)>,
    body: Json,
}

/// What the server does with each request in turn (the last one repeats).
#[derive(Clone, Copy)]
enum Answer {
    Status(u16),
    /// Never answers within the client's timeout.
    Hang,
}

/// A webhook receiver on a free port of 127.0.0.1.
struct Hook {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Hook {
    fn start(answers: &[Answer]) -> Hook {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().expect("address").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let answers = answers.to_vec();
        let record = seen.clone();
        std::thread::spawn(move || {
            for (n, stream) in listener.incoming().enumerate() {
                let Ok(stream) = stream else { continue };
                let answer = *answers
                    .get(n)
                    .or(answers.last())
                    .unwrap_or(&Answer::Status(200));
                let record = record.clone();
                std::thread::spawn(move || serve(stream, answer, &record));
            }
        });
        Hook { port, seen }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }
}

fn serve(stream: TcpStream, answer: Answer, record: &Mutex<Vec<Seen>>) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    record.lock().expect("lock").push(Seen {
        path: request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string(),
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Json::Null),
    });
    let status = match answer {
        Answer::Status(status) => status,
        Answer::Hang => {
            std::thread::sleep(Duration::from_secs(5));
            200
        }
    };
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
    );
}

/// `good` builds, `bad` fails, `after_bad` is skipped behind it.
const MODELS: &[(&str, &str)] = &[
    ("models/good.sql", "select 1 as id\n"),
    (
        "models/bad.sql",
        "select no_such_column from {{ ref('good') }}\n",
    ),
    ("models/after_bad.sql", "select * from {{ ref('bad') }}\n"),
];

const ON_FAILURE: &str = "name: shop\non-failure:\n  webhook:\n    url: \"{{ env_var('ALERT_URL') }}\"\n    headers:\n      Authorization: \"Bearer {{ env_var('ALERT_TOKEN') }}\"\n  timeout: 2\n  retries: 1\n";

fn shop(project_yml: &str) -> tempfile::TempDir {
    let mut files = MODELS.to_vec();
    files.push(("project.yml", project_yml));
    project(&files)
}

fn env(url: &str) -> [(&'static str, String); 2] {
    [("ALERT_URL", url.into()), ("ALERT_TOKEN", "s3cr3t".into())]
}

fn run(dir: &std::path::Path, args: &[&str], env: &[(&'static str, String)]) -> crate::common::Run {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    strata_env(dir, args, &env)
}

#[test]
fn a_failing_run_posts_one_notification_listing_its_failures() {
    let hook = Hook::start(&[Answer::Status(200)]);
    let dir = shop(ON_FAILURE);
    let built = run(
        dir.path(),
        &["build"],
        &env(&hook.url("/services/T0/B0/token")),
    );
    assert_eq!(built.code, 1, "{}", built.stderr);
    assert!(!built.stderr.contains("webhook"), "{}", built.stderr);
    let seen = hook.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let alert = &seen[0];
    assert_eq!(alert.path, "/services/T0/B0/token");
    assert!(alert
        .headers
        .contains(&("authorization".into(), "Bearer s3cr3t".into())));
    assert!(alert
        .headers
        .contains(&("content-type".into(), "application/json".into())));
    let body = &alert.body;
    assert_eq!(body["project"], "shop");
    assert_eq!(body["target"], "dev");
    assert_eq!(body["command"], "build");
    assert_eq!(body["status"], "error");
    assert_eq!(body["counts"]["success"], 1);
    assert_eq!(body["counts"]["error"], 1);
    assert_eq!(body["counts"]["skipped"], 1);
    let failures = body["failures"].as_array().expect("failures");
    assert_eq!(failures.len(), 1, "{body}");
    assert_eq!(failures[0]["unique_id"], "model.shop.bad");
    assert_eq!(failures[0]["file"], "models/bad.sql");
    assert!(
        failures[0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("no_such_column"),
        "{body}"
    );
    assert!(
        body["text"]
            .as_str()
            .unwrap_or_default()
            .contains("1 of 3 nodes failed (bad)"),
        "{body}"
    );
    let artifacts: Vec<&str> = body["artifacts"]
        .as_array()
        .expect("artifacts")
        .iter()
        .filter_map(|a| a["name"].as_str())
        .collect();
    assert!(artifacts.contains(&"run_results.json"), "{body}");
    // The secret is in no artifact.
    for name in ["run_results.json", "manifest.json"] {
        let text = std::fs::read_to_string(dir.path().join("target").join(name)).expect(name);
        assert!(!text.contains("s3cr3t"), "{name}");
    }
}

#[test]
fn a_passing_run_posts_nothing_unless_every_run_is_set() {
    let hook = Hook::start(&[Answer::Status(200)]);
    let dir = shop(ON_FAILURE);
    let passed = run(
        dir.path(),
        &["run", "--select", "good"],
        &env(&hook.url("/x")),
    );
    assert_eq!(passed.code, 0, "{}", passed.stderr);
    assert_eq!(hook.seen().len(), 0);

    let every = ON_FAILURE.replace("  timeout: 2\n", "  timeout: 2\n  every_run: true\n");
    let dir = shop(&every);
    let passed = run(
        dir.path(),
        &["run", "--select", "good"],
        &env(&hook.url("/x")),
    );
    assert_eq!(passed.code, 0, "{}", passed.stderr);
    let seen = hook.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].body["status"], "success");
    assert_eq!(seen[0].body["failures"], serde_json::json!([]));
    // Commands that run nothing never notify.
    assert_eq!(run(dir.path(), &["ls"], &env(&hook.url("/x"))).code, 0);
    assert_eq!(hook.seen().len(), 1);
}

/// A hook that is down is a warning that does not show the URL's token; the exit code is the
/// run's, whether it passed or failed.
#[test]
fn a_webhook_that_is_down_does_not_change_the_exit_code() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let url = format!("http://127.0.0.1:{port}/services/T0/B0/token");
    let every = ON_FAILURE.replace("  timeout: 2\n", "  timeout: 2\n  every_run: true\n");
    let dir = shop(&every);
    let passed = run(dir.path(), &["run", "--select", "good"], &env(&url));
    assert_eq!(passed.code, 0, "{}", passed.stderr);
    let failed = run(dir.path(), &["run"], &env(&url));
    assert_eq!(failed.code, 1, "{}", failed.stderr);
    for stderr in [&passed.stderr, &failed.stderr] {
        assert!(
            stderr.contains(
                "the on-failure webhook (http://127.0.0.1/…) was not notified: cannot connect (2 attempts)"
            ),
            "{stderr}"
        );
        assert!(
            !stderr.contains("token") && !stderr.contains("s3cr3t"),
            "{stderr}"
        );
    }
}

#[test]
fn a_server_error_is_retried_and_a_hanging_hook_times_out() {
    let hook = Hook::start(&[Answer::Status(503), Answer::Status(200)]);
    let dir = shop(ON_FAILURE);
    let failed = run(dir.path(), &["run"], &env(&hook.url("/x")));
    assert_eq!(failed.code, 1, "{}", failed.stderr);
    assert!(!failed.stderr.contains("webhook"), "{}", failed.stderr);
    let seen = hook.seen();
    assert_eq!(seen.len(), 2, "one 503, then the retry");
    assert_eq!(seen[0].body, seen[1].body);

    let hanging = Hook::start(&[Answer::Hang]);
    let once = ON_FAILURE.replace("  retries: 1\n", "  retries: 0\n");
    let dir = shop(&once);
    let started = std::time::Instant::now();
    let failed = run(dir.path(), &["run"], &env(&hanging.url("/x")));
    assert_eq!(failed.code, 1, "{}", failed.stderr);
    assert!(
        failed
            .stderr
            .contains("was not notified: no answer within 2 s (1 attempt)"),
        "{}",
        failed.stderr
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(hanging.seen().len(), 1);
}

/// The command hook gets the same JSON on its stdin; a run that stops before its first node
/// (a ref to nothing) still notifies, naming the file.
#[test]
fn the_command_hook_gets_the_summary_and_errors_before_the_run_notify_too() {
    let dir = shop("name: shop\non-failure:\n  command: cat > alert.json\n");
    let failed = run(dir.path(), &["run"], &[]);
    assert_eq!(failed.code, 1, "{}", failed.stderr);
    let alert: Json = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("alert.json")).expect("the command ran"),
    )
    .expect("json");
    assert_eq!(alert["failures"][0]["name"], "bad");
    assert_eq!(alert["command"], "run");

    std::fs::remove_file(dir.path().join("alert.json")).expect("remove");
    std::fs::write(
        dir.path().join("models/after_bad.sql"),
        "select * from {{ ref('no_such_model') }}\n",
    )
    .expect("write");
    let stopped = run(dir.path(), &["build"], &[]);
    assert_eq!(stopped.code, 1, "{}", stopped.stderr);
    let alert: Json = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("alert.json")).expect("the command ran"),
    )
    .expect("json");
    assert_eq!(alert["status"], "error");
    let failure = &alert["failures"][0];
    assert_eq!(failure["file"], "models/after_bad.sql", "{alert}");
    assert!(
        failure["message"]
            .as_str()
            .unwrap_or_default()
            .contains("no_such_model"),
        "{alert}"
    );

    // A command that fails is a warning with its last line of stderr.
    let dir = shop("name: shop\non-failure:\n  command: echo nope >&2; exit 3\n  retries: 0\n");
    let failed = run(dir.path(), &["run"], &[]);
    assert_eq!(failed.code, 1, "{}", failed.stderr);
    assert!(
        failed.stderr.contains(
            "the on-failure command did not succeed: it exited with exit status: 3: nope"
        ),
        "{}",
        failed.stderr
    );
}

#[test]
fn a_mistake_in_the_on_failure_block_names_the_project_file_line() {
    let dir = shop("name: shop\n\non-failure:\n  webhok: http://127.0.0.1:9/x\n");
    let run = run(dir.path(), &["run"], &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("unknown key `webhok` in `on-failure` (did you mean `webhook`?)"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("project.yml:3"), "{}", run.stderr);
    assert!(!dir.path().join("target/shop.duckdb").exists());
}

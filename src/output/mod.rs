//! The printer: the one owner of stdout and stderr. Data (listings, compiled SQL) goes to stdout;
//! progress, warnings and errors go to stderr. Output reads well without colour; colour is used
//! only on a terminal and never when `NO_COLOR` is set or `--no-color` is passed. With
//! `--log-format json` every stderr line is a JSON object for machines.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};

use crate::diagnostic::{Diagnostic, Severity};

/// How stderr lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Writes everything the user sees.
#[derive(Debug, Clone)]
pub struct Printer {
    quiet: bool,
    color: bool,
    format: LogFormat,
    /// Whether a progress bar may be drawn (text on a terminal, not quiet).
    interactive: bool,
    /// `(done, total)` while a run's progress bar is shown.
    progress: Arc<Mutex<Option<(usize, usize)>>>,
}

impl Printer {
    pub fn new(quiet: bool, no_color: bool, format: LogFormat) -> Self {
        let color = !no_color
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            && std::io::stderr().is_terminal()
            && format == LogFormat::Text;
        let interactive = !quiet && format == LogFormat::Text && std::io::stderr().is_terminal();
        Printer {
            quiet,
            color,
            format,
            interactive,
            progress: Arc::new(Mutex::new(None)),
        }
    }

    /// Writes stderr text, keeping the progress bar (if any) as the last line.
    fn stderr(&self, text: &str) {
        let progress = *self.progress.lock().unwrap_or_else(|p| p.into_inner());
        let mut err = std::io::stderr().lock();
        match progress {
            Some((done, total)) if self.interactive => {
                let _ = write!(err, "\r\x1b[2K{text}\n{}", bar(done, total));
            }
            _ => {
                let _ = writeln!(err, "{text}");
            }
        }
        let _ = err.flush();
    }

    /// Shows (or advances) a progress bar under the log lines when stderr is a terminal.
    pub fn progress(&self, done: usize, total: usize) {
        *self.progress.lock().unwrap_or_else(|p| p.into_inner()) = Some((done, total));
        if self.interactive {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K{}", bar(done, total));
            let _ = err.flush();
        }
    }

    /// Removes the progress bar.
    pub fn finish_progress(&self) {
        let shown = self
            .progress
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .is_some();
        if shown && self.interactive {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
    }

    /// A run event: a progress line in text mode; in JSON mode the line plus `fields`
    /// (`event`, `unique_id`, `status`, timings) for machines.
    pub fn event(&self, message: &str, fields: serde_json::Value) {
        if self.quiet {
            return;
        }
        match self.format {
            LogFormat::Text => self.stderr(message),
            LogFormat::Json => {
                let mut object = serde_json::json!({
                    "level": "info",
                    "message": message,
                    "ts": chrono::Utc::now().to_rfc3339(),
                });
                if let (Some(target), serde_json::Value::Object(extra)) =
                    (object.as_object_mut(), fields)
                {
                    target.extend(extra);
                }
                eprintln!("{object}");
            }
        }
    }

    /// A line of data on stdout.
    pub fn data(&self, line: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
    }

    /// Many lines of data on stdout, written in one go.
    pub fn data_lines<'a>(&self, lines: impl IntoIterator<Item = &'a str>) {
        let mut buffer = String::new();
        for line in lines {
            buffer.push_str(line);
            buffer.push('\n');
        }
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(buffer.as_bytes());
    }

    /// A progress or summary line on stderr (suppressed by `-q`).
    pub fn info(&self, message: &str) {
        if self.quiet {
            return;
        }
        match self.format {
            LogFormat::Text => self.stderr(message),
            LogFormat::Json => eprintln!(
                "{}",
                serde_json::json!({"level": "info", "message": message, "ts": chrono::Utc::now().to_rfc3339()})
            ),
        }
    }

    /// A diagnostic on stderr; warnings are suppressed by `-q`, errors never are.
    pub fn diagnostic(&self, diagnostic: &Diagnostic) {
        if self.quiet && diagnostic.severity == Severity::Warning {
            return;
        }
        match self.format {
            LogFormat::Json => {
                let level = match diagnostic.severity {
                    Severity::Error => "error",
                    Severity::Warning => "warning",
                };
                let location = diagnostic.location.as_ref().map(|l| {
                    serde_json::json!({"path": l.path.to_string_lossy(), "line": l.line, "column": l.column})
                });
                eprintln!(
                    "{}",
                    serde_json::json!({
                        "level": level,
                        "message": diagnostic.message,
                        "location": location,
                        "hint": diagnostic.hint,
                        "ts": chrono::Utc::now().to_rfc3339(),
                    })
                );
            }
            LogFormat::Text => {
                let text = diagnostic.to_string();
                if self.color {
                    self.stderr(&self.colorize(&text, diagnostic.severity));
                } else {
                    self.stderr(&text);
                }
            }
        }
    }

    pub fn diagnostics<'a>(&self, diagnostics: impl IntoIterator<Item = &'a Diagnostic>) {
        for diagnostic in diagnostics {
            self.diagnostic(diagnostic);
        }
    }

    fn colorize(&self, text: &str, severity: Severity) -> String {
        let mut lines = text.lines();
        let mut out = String::new();
        if let Some(first) = lines.next() {
            let (label, code) = match severity {
                Severity::Error => ("error:", "\x1b[1;31m"),
                Severity::Warning => ("warning:", "\x1b[1;33m"),
            };
            out.push_str(&first.replacen(label, &format!("{code}{label}\x1b[0m\x1b[1m"), 1));
            out.push_str("\x1b[0m");
        }
        for line in lines {
            out.push('\n');
            if let Some(hint) = line.strip_prefix("  hint:") {
                out.push_str(&format!("  \x1b[36mhint:\x1b[0m{hint}"));
            } else if line.starts_with("  -->") {
                out.push_str(&format!("\x1b[34m{line}\x1b[0m"));
            } else {
                out.push_str(line);
            }
        }
        out
    }
}

/// `[=========>          ] 12/40`
fn bar(done: usize, total: usize) -> String {
    const WIDTH: usize = 30;
    let filled = (done * WIDTH)
        .checked_div(total)
        .unwrap_or(WIDTH)
        .min(WIDTH);
    format!(
        "[{}{}] {done}/{total}",
        "=".repeat(filled),
        " ".repeat(WIDTH - filled)
    )
}

/// Rows as an aligned text table (header, rule, rows), cells cut at `max_width` characters.
pub fn format_table(headers: &[String], rows: &[Vec<String>], max_width: usize) -> String {
    let cut = |cell: &str| -> String {
        if cell.chars().count() > max_width {
            let mut short: String = cell.chars().take(max_width.saturating_sub(1)).collect();
            short.push('…');
            short
        } else {
            cell.to_string()
        }
    };
    let headers: Vec<String> = headers.iter().map(|h| cut(h)).collect();
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| row.iter().map(|c| cut(c)).collect())
        .collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(width) = widths.get_mut(i) {
                *width = (*width).max(cell.chars().count());
            }
        }
    }
    let line = |cells: &[String]| -> String {
        cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| {
                let pad = width.saturating_sub(cell.chars().count());
                format!("{cell}{}", " ".repeat(pad))
            })
            .collect::<Vec<_>>()
            .join(" | ")
            .trim_end()
            .to_string()
    };
    let mut out = vec![line(&headers)];
    out.push(
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("-+-"),
    );
    out.extend(rows.iter().map(|row| line(row)));
    out.join("\n")
}

//! The printer: the one owner of stdout and stderr. Data (listings, compiled SQL) goes to stdout;
//! progress, warnings and errors go to stderr. Output reads well without colour; colour is used
//! only on a terminal and never when `NO_COLOR` is set or `--no-color` is passed. With
//! `--log-format json` every stderr line is a JSON object for machines.

use std::io::{IsTerminal, Write};

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
}

impl Printer {
    pub fn new(quiet: bool, no_color: bool, format: LogFormat) -> Self {
        let color = !no_color
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            && std::io::stderr().is_terminal()
            && format == LogFormat::Text;
        Printer {
            quiet,
            color,
            format,
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
            LogFormat::Text => eprintln!("{message}"),
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
                    eprintln!("{}", self.colorize(&text, diagnostic.severity));
                } else {
                    eprintln!("{text}");
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

//! User-facing diagnostics: a message, where it happened (file, line, column) and what to do.
//!
//! Every room reports user mistakes as typed errors; they all convert into [`Diagnostic`] so the
//! printer renders one shape (`path:line:col`, a code frame, a `hint:`). Diagnostics are data: no
//! module prints them itself.

use std::fmt;
use std::path::{Path, PathBuf};

/// How bad a diagnostic is. Warnings never stop a command; errors make it exit non-zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Warning,
    Error,
}

/// A place in a user's file. Lines and columns are 1-based.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Location {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub column: Option<usize>,
}

impl Location {
    /// A whole file, no line known.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Location {
            path: path.into(),
            line: None,
            column: None,
        }
    }

    /// A line (and optionally a column) in a file.
    pub fn at(path: impl Into<PathBuf>, line: usize, column: Option<usize>) -> Self {
        Location {
            path: path.into(),
            line: Some(line),
            column,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        Ok(())
    }
}

/// One message for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub message: String,
    /// Boxed to keep `Result<_, Diagnostic>` small.
    pub location: Option<Box<Location>>,
    pub hint: Option<String>,
    /// The source line(s) the location points into, when known, for a code frame.
    pub frame: Option<String>,
}

impl Diagnostic {
    pub fn error(message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            message: message.into(),
            location: None,
            hint: None,
            frame: None,
        }
    }

    pub fn warning(message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(message)
        }
    }

    pub fn at(mut self, location: Location) -> Self {
        self.location = Some(Box::new(location));
        self
    }

    pub fn at_file(self, path: impl Into<PathBuf>) -> Self {
        self.at(Location::file(path))
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn with_hint_opt(mut self, hint: Option<String>) -> Self {
        self.hint = hint;
        self
    }

    /// Attaches a code frame read from `source` around the diagnostic's line.
    pub fn with_frame_from(mut self, source: &str) -> Self {
        if let Some(line) = self.location.as_ref().and_then(|l| l.line) {
            self.frame = code_frame(source, line, self.location.as_ref().and_then(|l| l.column));
        }
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{label}: {}", self.message)?;
        if let Some(location) = &self.location {
            write!(f, "\n  --> {location}")?;
        }
        if let Some(frame) = &self.frame {
            write!(f, "\n{frame}")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// A few lines of `source` around 1-based `line`, numbered, with a caret under `column`.
pub fn code_frame(source: &str, line: usize, column: Option<usize>) -> Option<String> {
    let lines: Vec<&str> = source.lines().collect();
    if line == 0 || line > lines.len() {
        return None;
    }
    let first = line.saturating_sub(2).max(1);
    let last = (line + 1).min(lines.len());
    let width = last.to_string().len();
    let mut out = String::new();
    for n in first..=last {
        let text = lines[n - 1];
        let marker = if n == line { ">" } else { " " };
        out.push_str(&format!("{marker} {n:>width$} | {text}\n"));
        if n == line {
            if let Some(column) = column.filter(|c| *c > 0) {
                out.push_str(&format!(
                    "  {:>width$} | {}^\n",
                    "",
                    " ".repeat(column - 1),
                    width = width
                ));
            }
        }
    }
    out.pop();
    Some(out)
}

/// A growing list of diagnostics, collected across a whole pass so users see every problem at once.
#[derive(Debug, Default, Clone)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.items.push(diagnostic);
    }

    pub fn extend(&mut self, other: impl IntoIterator<Item = Diagnostic>) {
        self.items.extend(other);
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(Diagnostic::is_error)
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter()
    }

    /// Errors first, then by file and line, so output is stable whatever the thread order.
    pub fn sorted(mut self) -> Vec<Diagnostic> {
        self.items.sort_by(|a, b| {
            let key = |d: &Diagnostic| {
                (
                    std::cmp::Reverse(d.severity),
                    d.location.as_ref().map(|l| (l.path.clone(), l.line)),
                    d.message.clone(),
                )
            };
            key(a).cmp(&key(b))
        });
        self.items.dedup();
        self.items
    }

    pub fn into_vec(self) -> Vec<Diagnostic> {
        self.items
    }
}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

/// The closest candidates to `wanted` among `candidates`, for "did you mean" hints.
pub fn did_you_mean<'a>(
    wanted: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    let mut best: Option<(f64, &str)> = None;
    for candidate in candidates {
        let score = strsim::jaro_winkler(wanted, candidate);
        if score >= 0.8 && best.is_none_or(|(s, _)| score > s) {
            best = Some((score, candidate));
        }
    }
    best.map(|(_, c)| format!("did you mean `{c}`?"))
}

/// The first of `found` that is not one of `keys`, as the message for a project-file block
/// (`unknown key `x` in `run-log` (did you mean …?)`, else the keys it takes).
pub fn unknown_key<'a>(
    found: impl IntoIterator<Item = &'a String>,
    keys: &[&str],
    block: &str,
) -> Result<(), String> {
    match found.into_iter().find(|key| !keys.contains(&key.as_str())) {
        None => Ok(()),
        Some(key) => Err(format!(
            "unknown key `{key}` in `{block}`{}",
            did_you_mean(key, keys.iter().copied())
                .map(|d| format!(" ({d})"))
                .unwrap_or_else(|| format!(" (keys: {})", keys.join(", ")))
        )),
    }
}

/// Makes `path` relative to `base` for display when it lies under it.
pub fn display_path(path: &Path, base: &Path) -> PathBuf {
    path.strip_prefix(base)
        .map(Path::to_path_buf)
        .unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_frame_marks_line_and_column() {
        let frame = code_frame("a\nbcd\ne\nf", 2, Some(2)).unwrap();
        assert_eq!(frame, "  1 | a\n> 2 | bcd\n    |  ^\n  3 | e");
    }

    #[test]
    fn did_you_mean_finds_close_names() {
        assert_eq!(
            did_you_mean("dim_custmer", ["dim_customer", "fact_sales"]).as_deref(),
            Some("did you mean `dim_customer`?")
        );
        assert_eq!(did_you_mean("zzz", ["dim_customer"]), None);
    }
}

//! JUnit XML of a run's results, for PR checks and CI dashboards: one test suite, one test case
//! per model, seed and data test; failing tests and errors carry their message, skipped nodes
//! are marked skipped, warnings pass with the warning in `system-out`.

use std::fmt::Write as _;
use std::path::Path;

use crate::manifest::Manifest;
use crate::run::{NodeResult, Status};

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 cannot carry most control characters, even escaped.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// The XML text for `results`.
pub fn render(manifest: &Manifest, results: &[NodeResult], elapsed: f64) -> String {
    let count = |statuses: &[Status]| {
        results
            .iter()
            .filter(|r| statuses.contains(&r.status))
            .count()
    };
    let failures = count(&[Status::Fail]);
    let errors = count(&[Status::Error]);
    let skipped = count(&[Status::Skipped]);
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        xml,
        "<testsuites name=\"strata\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{elapsed:.3}\">",
        results.len()
    );
    let _ = writeln!(
        xml,
        "  <testsuite name=\"strata\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{elapsed:.3}\">",
        results.len()
    );
    for result in results {
        let node = manifest.get(&result.unique_id);
        let name = node.map_or(result.unique_id.0.as_str(), |n| n.name.as_str());
        let class = node.map_or("node", |n| n.resource_type.as_str());
        let file = node
            .map(|n| n.original_file_path.display().to_string())
            .unwrap_or_default();
        let _ = write!(
            xml,
            "    <testcase classname=\"{}\" name=\"{}\" file=\"{}\" time=\"{:.3}\"",
            escape(class),
            escape(name),
            escape(&file),
            result.execution_time
        );
        let message = escape(&result.message);
        match result.status {
            Status::Success | Status::Pass => xml.push_str("/>\n"),
            Status::Warn => {
                let _ = writeln!(
                    xml,
                    ">\n      <system-out>{message}</system-out>\n    </testcase>"
                );
            }
            Status::Fail => {
                let _ = writeln!(
                    xml,
                    ">\n      <failure message=\"{message}\" type=\"test_failure\">{} failing row(s)</failure>\n    </testcase>",
                    result.failures.unwrap_or(0)
                );
            }
            Status::Error => {
                let _ = writeln!(
                    xml,
                    ">\n      <error message=\"{message}\" type=\"error\">{message}</error>\n    </testcase>"
                );
            }
            Status::Skipped => {
                let _ = writeln!(
                    xml,
                    ">\n      <skipped message=\"{message}\"/>\n    </testcase>"
                );
            }
        }
    }
    xml.push_str("  </testsuite>\n</testsuites>\n");
    xml
}

/// Writes the XML for `results` to `path` (its folder is created).
pub fn write(
    path: &Path,
    manifest: &Manifest,
    results: &[NodeResult],
    elapsed: f64,
) -> std::io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    crate::util::write_atomic(path, render(manifest, results, elapsed).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_control_characters() {
        assert_eq!(escape("a<b & \"c\"\u{1}"), "a&lt;b &amp; &quot;c&quot; ");
    }
}

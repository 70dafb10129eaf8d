//! Reading YAML with errors users can act on: file, line and column from the parser, and
//! `env_var()`/`var()` rendered inside string values as dbt does.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde_json::Value as Json;

use super::ProjectError;

/// Keys whose string values keep their Jinja for later phases (descriptions render `doc()` at
/// docs time, hooks and test arguments render with the node they run for), or for nobody.
const DEFERRED_KEYS: &[&str] = &[
    "description",
    "pre-hook",
    "post-hook",
    "+pre-hook",
    "+post-hook",
    "pre_hook",
    "post_hook",
    "+pre_hook",
    "+post_hook",
    "on-run-start",
    "on-run-end",
    "data_tests",
    "tests",
    "where",
    "sql_header",
    // The project file's vars render when a node reads them, with the node's context.
    "vars",
    // The semantic layer's filters (`{{ Dimension('order__is_food') }}`) are its own Jinja,
    // which dbt leaves unrendered; strata does not read these sections.
    "semantic_models",
    "metrics",
    "saved_queries",
    "filter",
];

/// Deserializes `text` (read from `path`, shown relative to the project) into `T`. Strings holding
/// `{{ … }}` are rendered with `render` first, except under [`DEFERRED_KEYS`].
pub fn parse<T: DeserializeOwned>(
    text: &str,
    path: &Path,
    render: &dyn Fn(&str) -> Result<String, String>,
) -> Result<T, ProjectError> {
    let located = |err: serde_yaml::Error| {
        let location = err.location();
        ProjectError::Yaml {
            path: path.to_path_buf(),
            line: location.as_ref().map(|l| l.line()),
            column: location.as_ref().map(|l| l.column()),
            message: clean_message(&err.to_string()),
        }
    };
    if text.trim().is_empty() {
        return serde_yaml::from_str("{}").map_err(located);
    }
    if !text.contains("{{") {
        return serde_yaml::from_str(text).map_err(located);
    }
    // Parse once as typed YAML first so shape errors keep their line numbers, then render.
    let _: T = serde_yaml::from_str(text).map_err(located)?;
    let mut value: Json = serde_yaml::from_str(text).map_err(located)?;
    render_strings(&mut value, render, false).map_err(|(key, message)| {
        ProjectError::YamlJinja {
            path: path.to_path_buf(),
            line: find_line(text, &key),
            message,
        }
    })?;
    serde_json::from_value(value).map_err(|err| ProjectError::Yaml {
        path: path.to_path_buf(),
        line: None,
        column: None,
        message: err.to_string(),
    })
}

/// Renders `{{ … }}` in the string values of `value`, a part of the YAML file `path` (whose
/// `text` locates errors). Profiles use it to render only the target in use, as dbt does, so
/// another target's unset `env_var()` is not an error.
pub fn render_value(
    value: &mut Json,
    text: &str,
    path: &Path,
    render: &dyn Fn(&str) -> Result<String, String>,
) -> Result<(), ProjectError> {
    render_strings(value, render, false).map_err(|(key, message)| ProjectError::YamlJinja {
        path: path.to_path_buf(),
        line: find_line(text, &key),
        message,
    })
}

fn render_strings(
    value: &mut Json,
    render: &dyn Fn(&str) -> Result<String, String>,
    deferred: bool,
) -> Result<(), (String, String)> {
    match value {
        Json::String(s) if !deferred && s.contains("{{") => {
            let rendered = render(s).map_err(|message| (s.clone(), message))?;
            *s = rendered;
        }
        Json::Array(items) => {
            for item in items {
                render_strings(item, render, deferred)?;
            }
        }
        Json::Object(map) => {
            for (key, item) in map.iter_mut() {
                let defer = deferred || DEFERRED_KEYS.contains(&key.as_str());
                render_strings(item, render, defer)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// serde_yaml appends "at line X column Y" to messages; the location is shown separately.
fn clean_message(message: &str) -> String {
    match message.find(" at line ") {
        Some(at) => message[..at].to_string(),
        None => message.to_string(),
    }
}

/// The first 1-based line of `text` containing `needle`.
pub fn find_line(text: &str, needle: &str) -> Option<usize> {
    text.lines()
        .position(|line| line.contains(needle))
        .map(|i| i + 1)
}

/// The name a `- name: <name>` (or `name: <name>`) line declares.
fn entry_name(line: &str) -> Option<&str> {
    let trimmed = line.trim_start().trim_start_matches('-').trim_start();
    trimmed
        .strip_prefix("name:")
        .map(|rest| rest.trim().trim_matches(|c| c == '"' || c == '\''))
}

/// The line of the list entry `- name: <name>` in `text`, for pointing at a YAML entry.
pub fn entry_line(text: &str, name: &str) -> Option<usize> {
    text.lines()
        .position(|line| entry_name(line) == Some(name))
        .map(|i| i + 1)
}

/// Every `name:` entry of a YAML file by name, with its 1-based lines in order: built once per
/// file so pointing thousands of tests at their entries stays linear.
#[derive(Debug, Default, Clone)]
pub struct EntryIndex(std::collections::HashMap<String, Vec<usize>>);

impl EntryIndex {
    pub fn build(text: &str) -> EntryIndex {
        let mut index: std::collections::HashMap<String, Vec<usize>> =
            std::collections::HashMap::new();
        for (i, line) in text.lines().enumerate() {
            if let Some(name) = entry_name(line) {
                index.entry(name.to_string()).or_default().push(i + 1);
            }
        }
        EntryIndex(index)
    }

    /// The first entry named `name`.
    pub fn first(&self, name: &str) -> Option<usize> {
        self.0.get(name).and_then(|lines| lines.first().copied())
    }

    /// The first entry named `name` after line `after` (a column below its model).
    pub fn first_after(&self, name: &str, after: usize) -> Option<usize> {
        self.0
            .get(name)
            .and_then(|lines| lines.iter().copied().find(|l| *l > after))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    struct Doc {
        a: String,
        description: Option<String>,
    }

    fn render(s: &str) -> Result<String, String> {
        Ok(s.replace("{{ x }}", "X"))
    }

    #[test]
    fn renders_jinja_in_values_but_not_descriptions() {
        let doc: Doc = parse(
            "a: '{{ x }}'\ndescription: '{{ x }}'\n",
            Path::new("f.yml"),
            &render,
        )
        .unwrap();
        assert_eq!(doc.a, "X");
        assert_eq!(doc.description.as_deref(), Some("{{ x }}"));
    }

    #[test]
    fn syntax_errors_carry_line_and_column() {
        let err = parse::<Doc>("a: [1,\nb: :\n", Path::new("f.yml"), &render).unwrap_err();
        match err {
            ProjectError::Yaml { line, .. } => assert!(line.is_some()),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn entry_line_finds_list_entries() {
        let text = "models:\n  - name: a\n    columns:\n      - name: \"b\"\n";
        assert_eq!(entry_line(text, "a"), Some(2));
        assert_eq!(entry_line(text, "b"), Some(4));
        assert_eq!(entry_line(text, "c"), None);
        let index = EntryIndex::build(
            "- name: a\n  columns:\n    - name: id\n- name: b\n  columns:\n    - name: id\n",
        );
        assert_eq!(index.first("id"), Some(3));
        assert_eq!(index.first_after("id", 4), Some(6));
        assert_eq!(index.first_after("a", 1), None);
    }
}

//! The macros a template's source names, read without rendering it, and each project macro's
//! own text: what a state comparison needs to tell which nodes a macro change reaches.
//!
//! A render records the macros it called (`RenderInputs::macros`), but only along the path it
//! took: a branch on `target.name` or `is_incremental()` may call others. The source names
//! every macro any path may call, so a node's macros are both: what its render called, and
//! what its source and those macros' sources name, closed over. Names that are not macros of
//! the project or its packages (`ref`, `config`, strata's built-ins) are dropped.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

/// A call a template's source makes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Call {
    /// `name(…)`, or `{% call name(…) %}`.
    Bare(String),
    /// `namespace.name(…)`: a package's macro (or a method, which resolves to nothing).
    Namespaced(String, String),
    /// `adapter.dispatch('name', …)`: whichever implementation the warehouse picks.
    Dispatch(String),
}

/// Every call in the Jinja of `source` (`{{ … }}` and `{% … %}`; comments and string literals
/// are skipped), in order of appearance, repeated ones once.
pub fn calls(source: &str) -> Vec<Call> {
    let mut found: Vec<Call> = Vec::new();
    let mut rest = source;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let close = match after.chars().next() {
            Some('{') => "}}",
            Some('%') => "%}",
            Some('#') => {
                rest = after.find("#}").map_or("", |end| &after[end + 2..]);
                continue;
            }
            _ => {
                rest = after;
                continue;
            }
        };
        let code = &after[1..];
        let end = code.find(close).unwrap_or(code.len());
        scan_code(&code[..end], &mut found);
        rest = code.get(end + 2..).unwrap_or("");
    }
    found
}

/// The calls in one stretch of Jinja code.
fn scan_code(code: &str, found: &mut Vec<Call>) {
    let bytes = code.as_bytes();
    let mut i = 0;
    let mut push = |call: Call| {
        if !found.contains(&call) {
            found.push(call);
        }
    };
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'\'' || c == b'"' {
            i = skip_string(bytes, i);
            continue;
        }
        if !(c.is_ascii_alphabetic() || c == b'_') {
            i += 1;
            continue;
        }
        // A dotted name: `a`, `a.b`, `a.b.c`.
        let start = i;
        while i < bytes.len()
            && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b'.')
        {
            i += 1;
        }
        // An attribute of something before it (`x.y` after `)` or `]`) is not a name.
        let preceded = start > 0 && matches!(bytes[start - 1], b'.' | b')' | b']');
        let name = code[start..i].trim_end_matches('.');
        let mut j = i;
        while j < bytes.len() && bytes[j].is_ascii_whitespace() {
            j += 1;
        }
        if preceded || bytes.get(j) != Some(&b'(') {
            continue;
        }
        let parts: Vec<&str> = name.split('.').collect();
        match parts.as_slice() {
            [single] => push(Call::Bare((*single).to_string())),
            ["adapter", "dispatch"] => {
                if let Some(target) = first_string_argument(&code[j + 1..]) {
                    push(Call::Dispatch(target));
                }
            }
            [namespace, macro_name] => push(Call::Namespaced(
                (*namespace).to_string(),
                (*macro_name).to_string(),
            )),
            _ => {}
        }
    }
}

/// The index just past the string literal opening at `start`.
fn skip_string(bytes: &[u8], start: usize) -> usize {
    let quote = bytes[start];
    let mut i = start + 1;
    while i < bytes.len() && bytes[i] != quote {
        if bytes[i] == b'\\' {
            i += 1;
        }
        i += 1;
    }
    i + 1
}

/// `'name'` in `'name', 'ns')` or `macro_name='name')`.
fn first_string_argument(args: &str) -> Option<String> {
    let args = args.trim_start();
    let args = args
        .strip_prefix("macro_name")
        .map(|rest| rest.trim_start().trim_start_matches('=').trim_start())
        .unwrap_or(args);
    let quote = args.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let body = &args[1..];
    body.find(quote).map(|end| body[..end].to_string())
}

/// One `{% macro %}` (or `{% test %}`, `{% materialization %}`) block of a file: its public
/// name and its text from the opening tag through the closing one (as dbt's `macro_sql`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacroBlock {
    pub name: String,
    pub text: String,
}

/// The macro blocks of a macro file, in order.
pub fn macro_blocks(source: &str) -> Vec<MacroBlock> {
    let mut blocks = Vec::new();
    let mut at = 0;
    while let Some(found) = source[at..].find("{%") {
        let open = at + found;
        let Some(close) = source[open..].find("%}").map(|c| open + c + 2) else {
            break;
        };
        let inner = source[open + 2..close - 2]
            .trim_matches(|c: char| c == '-' || c == '+' || c.is_whitespace());
        let (name, end_tag) = if let Some(rest) = inner.strip_prefix("macro ") {
            (identifier(rest), "endmacro")
        } else if let Some(rest) = inner.strip_prefix("test ") {
            (format!("test_{}", identifier(rest)), "endtest")
        } else if let Some(rest) = inner.strip_prefix("materialization ") {
            let adapter = rest
                .split("adapter")
                .nth(1)
                .and_then(|a| a.split(['\'', '"']).nth(1))
                .unwrap_or("default");
            (
                format!("materialization_{}_{adapter}", identifier(rest)),
                "endmaterialization",
            )
        } else {
            at = close;
            continue;
        };
        let end = closing_tag(source, close, end_tag).unwrap_or(source.len());
        blocks.push(MacroBlock {
            name,
            text: source[open..end].to_string(),
        });
        at = end;
    }
    blocks
}

fn identifier(text: &str) -> String {
    text.trim_start()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// The end of the first `{% <end_tag> %}` at or after `from`.
fn closing_tag(source: &str, from: usize, end_tag: &str) -> Option<usize> {
    let mut at = from;
    while let Some(found) = source[at..].find("{%") {
        let open = at + found;
        let close = source[open..].find("%}").map(|c| open + c + 2)?;
        let inner = source[open + 2..close - 2]
            .trim_matches(|c: char| c == '-' || c == '+' || c.is_whitespace());
        if inner == end_tag || inner.starts_with(&format!("{end_tag} ")) {
            return Some(close);
        }
        at = close;
    }
    None
}

/// A macro of the project or a package, as state comparison knows it.
#[derive(Debug, Clone)]
pub struct MacroFacts {
    /// `macro.<package>.<name>`, as dbt's manifest names it.
    pub unique_id: String,
    pub package: String,
    /// SHA-256 of its block's text.
    pub checksum: String,
    /// What its text calls.
    pub calls: Vec<Call>,
}

/// Every project and package macro, and which macros each one reaches.
#[derive(Debug, Default)]
pub struct MacroGraph {
    root: String,
    /// `(package, name)` → the macro.
    by_name: HashMap<(String, String), MacroFacts>,
    /// Macro file path → its package.
    packages_by_path: HashMap<String, String>,
    /// Every macro a macro reaches, itself included, once worked out.
    closures: Mutex<HashMap<String, Arc<BTreeSet<String>>>>,
}

impl MacroGraph {
    /// Reads each macro file (`path`, package, source) of the project and its packages.
    pub fn new<'a>(
        root: &str,
        files: impl IntoIterator<Item = (&'a str, &'a str, &'a str)>,
    ) -> Self {
        let mut graph = MacroGraph {
            root: root.to_string(),
            ..MacroGraph::default()
        };
        for (path, package, source) in files {
            graph
                .packages_by_path
                .insert(path.to_string(), package.to_string());
            for block in macro_blocks(source) {
                let facts = MacroFacts {
                    unique_id: format!("macro.{package}.{}", block.name),
                    package: package.to_string(),
                    checksum: crate::util::sha256_hex(block.text.as_bytes()),
                    calls: calls(&block.text),
                };
                graph
                    .by_name
                    .insert((package.to_string(), block.name), facts);
            }
        }
        graph
    }

    /// Every macro, by unique id.
    pub fn macros(&self) -> impl Iterator<Item = &MacroFacts> {
        self.by_name.values()
    }

    /// The macros a call from a template of `package` may reach directly.
    fn resolve(&self, package: &str, call: &Call) -> Vec<&MacroFacts> {
        let get =
            |package: &str, name: &str| self.by_name.get(&(package.to_string(), name.to_string()));
        match call {
            Call::Bare(name) => get(package, name)
                .filter(|_| package != self.root)
                .or_else(|| get(&self.root, name))
                .into_iter()
                .collect(),
            Call::Namespaced(namespace, name) => get(namespace, name).into_iter().collect(),
            Call::Dispatch(name) => {
                let suffix = format!("__{name}");
                self.by_name
                    .iter()
                    .filter(|((_, macro_name), _)| {
                        macro_name == name || macro_name.ends_with(&suffix)
                    })
                    .map(|(_, facts)| facts)
                    .collect()
            }
        }
    }

    /// Every macro `facts` reaches, itself included.
    fn closure(&self, facts: &MacroFacts) -> Arc<BTreeSet<String>> {
        if let Some(done) = self
            .closures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&facts.unique_id)
        {
            return done.clone();
        }
        let mut seen: BTreeSet<String> = BTreeSet::new();
        let mut stack: Vec<&MacroFacts> = vec![facts];
        while let Some(next) = stack.pop() {
            if !seen.insert(next.unique_id.clone()) {
                continue;
            }
            for call in &next.calls {
                stack.extend(self.resolve(&next.package, call));
            }
        }
        let seen = Arc::new(seen);
        self.closures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(facts.unique_id.clone(), seen.clone());
        seen
    }

    /// The unique ids of every macro a node of `package` reaches: through the calls its source
    /// makes, and the macros its render called (`(template, name)`), closed over what those
    /// macros call in turn.
    pub fn reached<'a>(
        &self,
        package: &str,
        source_calls: &[Call],
        rendered: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> BTreeSet<String> {
        let mut direct: Vec<&MacroFacts> = source_calls
            .iter()
            .flat_map(|call| self.resolve(package, call))
            .collect();
        for (template, name) in rendered {
            if let Some(owner) = self.packages_by_path.get(template) {
                if let Some(facts) = self.by_name.get(&(owner.clone(), name.to_string())) {
                    direct.push(facts);
                }
            }
        }
        let mut all = BTreeSet::new();
        for facts in direct {
            all.extend(self.closure(facts).iter().cloned());
        }
        all
    }

    /// A macro by package and name.
    pub fn get(&self, package: &str, name: &str) -> Option<&MacroFacts> {
        self.by_name.get(&(package.to_string(), name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_read_from_jinja_only() {
        let source = "select 'n(1)' as x, {{ money(amount) }} {# skipped(1) #}\n{% if is_incremental() %}{{ pkg.helper(x, 'y(z)') }}{% endif %}\n{% call statement('s') %}q(1){% endcall %}\n{{ adapter.dispatch('fmt', 'pkg')(1) }} {{ this.render() }} {{ x.y.z(1) }}";
        assert_eq!(
            calls(source),
            vec![
                Call::Bare("money".into()),
                Call::Bare("is_incremental".into()),
                Call::Namespaced("pkg".into(), "helper".into()),
                Call::Bare("statement".into()),
                Call::Dispatch("fmt".into()),
                Call::Namespaced("this".into(), "render".into()),
            ]
        );
    }

    #[test]
    fn blocks_span_from_their_tag_to_their_end_tag() {
        let source = "{% macro a(x) %}{{ b(x) }}{% endmacro %}\n{%- test positive(model) -%}\nselect 1\n{%- endtest -%}\n{% materialization m, adapter='duckdb' %}x{% endmaterialization %}";
        let blocks = macro_blocks(source);
        let names: Vec<&str> = blocks.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["a", "test_positive", "materialization_m_duckdb"]);
        assert_eq!(blocks[0].text, "{% macro a(x) %}{{ b(x) }}{% endmacro %}");
        assert!(blocks[1].text.ends_with("{%- endtest -%}"));
    }

    #[test]
    fn a_node_reaches_macros_through_other_macros_and_dispatch() {
        let files = [
            (
                "macros/a.sql",
                "shop",
                "{% macro outer() %}{{ inner() }}{% endmacro %}{% macro inner() %}{{ adapter.dispatch('fmt')() }}{% endmacro %}{% macro default__fmt() %}1{% endmacro %}{% macro alone() %}2{% endmacro %}",
            ),
            (
                "dbt_packages/pkg/macros/p.sql",
                "pkg",
                "{% macro helper() %}{{ own() }}{% endmacro %}{% macro own() %}3{% endmacro %}",
            ),
        ];
        let graph = MacroGraph::new("shop", files);
        let reached = graph.reached("shop", &calls("{{ outer() }} {{ pkg.helper() }}"), []);
        assert_eq!(
            reached.into_iter().collect::<Vec<_>>(),
            [
                "macro.pkg.helper",
                "macro.pkg.own",
                "macro.shop.default__fmt",
                "macro.shop.inner",
                "macro.shop.outer"
            ]
        );
        let rendered = graph.reached("shop", &[], [("macros/a.sql", "alone")]);
        assert_eq!(
            rendered.into_iter().collect::<Vec<_>>(),
            ["macro.shop.alone"]
        );
    }
}

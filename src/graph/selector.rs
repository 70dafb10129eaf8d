//! dbt's node selection grammar: `name`, `folder.sub`, `path:`, `tag:`, `config.<key>:`,
//! `source:`, `resource_type:`, `test_type:`, `test_name:`, `package:`, `file:`, graph operators
//! `+x`, `x+`, `n+x`, `x+n`, `@x`, union by space, intersection by comma, `--exclude`, and named
//! selectors from `selectors.yml`.
//!
//! Parsing is separate from evaluation so a bad selector is reported with its position before any
//! work starts. `state:` and `result:` parse already; they evaluate once run artifacts exist.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use globset::{Glob, GlobMatcher};
use serde_json::Value as Json;

use super::Graph;
use crate::diagnostic::{did_you_mean, Diagnostic};
use crate::manifest::{Manifest, Node, NodeId, ResourceType};

/// A selector the user got wrong, with the 1-based character position of the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid selector `{input}` at position {position}: {message}")]
pub struct SelectorError {
    pub input: String,
    pub position: usize,
    pub message: String,
    pub hint: Option<String>,
}

impl SelectorError {
    pub fn to_diagnostic(&self) -> Diagnostic {
        let caret = format!(
            "  {}\n  {}^",
            self.input,
            " ".repeat(self.position.saturating_sub(1))
        );
        let mut diagnostic = Diagnostic::error(self.to_string()).with_hint_opt(self.hint.clone());
        diagnostic.frame = Some(caret);
        diagnostic
    }
}

/// How an atom matches nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// No method given: a name, an FQN (`gold`, `shop.gold.dim_customer`) or, with a `/`, a path.
    Default,
    Fqn,
    Path,
    File,
    Tag,
    Config(String),
    Source,
    ResourceType,
    TestType,
    TestName,
    Package,
    /// `state:modified`, … — needs `--state` artifacts.
    State,
    /// `result:error`, … — needs a previous run's results.
    Result,
    /// `source_status:fresher` — needs the previous and the current `sources.json`.
    SourceStatus,
}

const METHODS: &[&str] = &[
    "fqn",
    "path",
    "file",
    "tag",
    "config",
    "source",
    "resource_type",
    "test_type",
    "test_name",
    "package",
    "state",
    "result",
    "source_status",
];

/// How far a graph operator reaches: `None` for all the way.
pub type Depth = Option<usize>;

/// One selector term: `[@][n+]method:value[+n]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Atom {
    pub method: Method,
    pub value: String,
    pub parents: Option<Depth>,
    pub children: Option<Depth>,
    pub childrens_parents: bool,
}

/// A parsed selection: a union of intersections of atoms.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selection {
    pub union: Vec<Vec<Atom>>,
}

impl Selection {
    /// Parses one `--select`/`--exclude` value (terms separated by spaces).
    pub fn parse(input: &str) -> Result<Selection, SelectorError> {
        let mut union = Vec::new();
        let mut offset = 0;
        for term in input.split(' ') {
            let start = offset;
            offset += term.chars().count() + 1;
            if term.is_empty() {
                continue;
            }
            let mut intersection = Vec::new();
            let mut atom_offset = start;
            for atom in term.split(',') {
                if atom.is_empty() {
                    return Err(SelectorError {
                        input: input.to_string(),
                        position: atom_offset + 1,
                        message: "empty selector between commas".into(),
                        hint: Some("write `a,b` to select what is in both a and b".into()),
                    });
                }
                intersection.push(parse_atom(atom, input, atom_offset)?);
                atom_offset += atom.chars().count() + 1;
            }
            union.push(intersection);
        }
        Ok(Selection { union })
    }

    /// Parses several values (repeated `--select a --select b` or `--select a b`).
    pub fn parse_all(values: &[String]) -> Result<Selection, SelectorError> {
        let mut union = Vec::new();
        for value in values {
            union.extend(Selection::parse(value)?.union);
        }
        Ok(Selection { union })
    }

    pub fn is_empty(&self) -> bool {
        self.union.is_empty()
    }
}

fn parse_atom(atom: &str, input: &str, offset: usize) -> Result<Atom, SelectorError> {
    let err = |position: usize, message: String, hint: Option<String>| SelectorError {
        input: input.to_string(),
        position: offset + position + 1,
        message,
        hint,
    };
    let mut rest = atom;
    let mut consumed = 0;
    let childrens_parents = rest.starts_with('@');
    if childrens_parents {
        rest = &rest[1..];
        consumed += 1;
    }
    // Leading `n+` / `+`.
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    let mut parents = None;
    if rest[digits.len()..].starts_with('+') {
        parents = Some(if digits.is_empty() {
            None
        } else {
            Some(
                digits
                    .parse::<usize>()
                    .map_err(|_| err(consumed, "depth is too large".into(), None))?,
            )
        });
        consumed += digits.len() + 1;
        rest = &rest[digits.len() + 1..];
    } else if !digits.is_empty() && rest.len() == digits.len() {
        // A bare number is a name; fine.
    }
    if childrens_parents && parents.is_some() {
        return Err(err(
            0,
            "`@` cannot be combined with a leading `+`".into(),
            Some("`@x` already includes the parents of x's children".into()),
        ));
    }
    // Trailing `+` / `+n`.
    let mut children = None;
    if let Some(plus) = rest.rfind('+') {
        let tail = &rest[plus + 1..];
        if tail.chars().all(|c| c.is_ascii_digit()) {
            children = Some(if tail.is_empty() {
                None
            } else {
                Some(
                    tail.parse::<usize>()
                        .map_err(|_| err(consumed + plus, "depth is too large".into(), None))?,
                )
            });
            rest = &rest[..plus];
        }
    }
    if rest.is_empty() {
        return Err(err(
            consumed,
            "missing a node name or method".into(),
            Some("e.g. `my_model+`, `+tag:gold`, `path:models/gold`".into()),
        ));
    }
    let (method, value) = match rest.split_once(':') {
        Some((method_name, value)) => {
            let method = match method_name {
                "fqn" => Method::Fqn,
                "path" => Method::Path,
                "file" => Method::File,
                "tag" => Method::Tag,
                "source" => Method::Source,
                "resource_type" => Method::ResourceType,
                "test_type" => Method::TestType,
                "test_name" => Method::TestName,
                "package" => Method::Package,
                "state" => Method::State,
                "result" => Method::Result,
                "source_status" => Method::SourceStatus,
                m if m.starts_with("config.") && m.len() > "config.".len() => {
                    Method::Config(m["config.".len()..].to_string())
                }
                other => {
                    return Err(err(
                        consumed,
                        format!("unknown selector method `{other}`"),
                        did_you_mean(other, METHODS.iter().copied())
                            .or(Some(format!("methods: {}", METHODS.join(", ")))),
                    ))
                }
            };
            if value.is_empty() {
                return Err(err(
                    consumed + method_name.len() + 1,
                    format!("`{method_name}:` needs a value"),
                    None,
                ));
            }
            (method, value.to_string())
        }
        None => (Method::Default, rest.to_string()),
    };
    match &method {
        Method::ResourceType if ResourceType::parse(&value).is_none() => {
            return Err(err(
                consumed,
                format!("unknown resource type `{value}`"),
                did_you_mean(&value, ResourceType::ALL.iter().copied()),
            ))
        }
        Method::TestType
            if !["generic", "singular", "data", "schema", "unit"].contains(&value.as_str()) =>
        {
            return Err(err(
                consumed,
                format!("unknown test type `{value}`"),
                Some("use `generic` or `singular`".into()),
            ))
        }
        Method::State if !STATE_VALUES.contains(&value.as_str()) => {
            return Err(err(
                consumed,
                format!("unknown state `{value}`"),
                did_you_mean(&value, STATE_VALUES.iter().copied())
                    .or(Some(format!("use one of {}", STATE_VALUES.join(", ")))),
            ))
        }
        Method::SourceStatus if value != "fresher" => {
            return Err(err(
                consumed,
                format!("unknown source status `{value}`"),
                Some("dbt's one source status is `fresher`: `source_status:fresher+`".into()),
            ))
        }
        Method::Result if !RESULT_VALUES.contains(&value.as_str()) => {
            return Err(err(
                consumed,
                format!("unknown result `{value}`"),
                did_you_mean(&value, RESULT_VALUES.iter().copied())
                    .or(Some(format!("use one of {}", RESULT_VALUES.join(", ")))),
            ))
        }
        _ => {}
    }
    Ok(Atom {
        method,
        value,
        parents,
        children,
        childrens_parents,
    })
}

/// What to select: the parsed flags of a command.
#[derive(Debug, Clone, Default)]
pub struct SelectionSpec {
    pub select: Selection,
    pub exclude: Selection,
    /// Restrict the result to these resource types (empty: all).
    pub resource_types: Vec<ResourceType>,
    /// Add tests whose parents are selected (dbt's eager indirect selection).
    pub indirect_tests: bool,
    /// A previous run to compare with (`--state`): what `state:` and `result:` select.
    pub previous: Option<std::sync::Arc<PreviousRun>>,
}

/// What changed in one node since a previous run, part by part (dbt's `state:modified.*`,
/// with `vars` for the vars and environment variables its render read).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Changes {
    pub body: bool,
    pub configs: bool,
    pub relation: bool,
    pub persisted_descriptions: bool,
    pub macros: bool,
    pub contract: bool,
    pub vars: bool,
}

impl Changes {
    pub fn any(&self) -> bool {
        self.body
            || self.configs
            || self.relation
            || self.persisted_descriptions
            || self.macros
            || self.contract
            || self.vars
    }

    /// The part a `state:modified.<part>` selector names.
    fn part(&self, part: &str) -> bool {
        match part {
            "body" => self.body,
            "configs" => self.configs,
            "relation" => self.relation,
            "persisted_descriptions" => self.persisted_descriptions,
            "macros" => self.macros,
            "contract" => self.contract,
            "vars" => self.vars,
            _ => false,
        }
    }
}

/// A previous run as `state:` and `result:` selectors see it (built by `changes`).
#[derive(Debug, Clone, Default)]
pub struct PreviousRun {
    /// Nodes it did not have.
    pub new: BTreeSet<NodeId>,
    /// Nodes it had.
    pub old: BTreeSet<NodeId>,
    /// Nodes it had that changed since, and how.
    pub changed: BTreeMap<NodeId, Changes>,
    /// Each node's status in its `run_results.json`, where there was one.
    pub results: Option<BTreeMap<NodeId, String>>,
    /// The sources loaded since it, by the two runs' `sources.json`, where both are there.
    pub fresher: Option<BTreeSet<NodeId>>,
}

/// `state:` values.
const STATE_VALUES: &[&str] = &[
    "new",
    "old",
    "modified",
    "unmodified",
    "modified.body",
    "modified.configs",
    "modified.relation",
    "modified.persisted_descriptions",
    "modified.macros",
    "modified.contract",
    "modified.vars",
];

/// `result:` values: the statuses `run_results.json` records.
const RESULT_VALUES: &[&str] = &["success", "error", "fail", "skipped", "pass", "warn"];

/// Why evaluation failed (parsing already succeeded).
#[derive(Debug, Clone, thiserror::Error)]
pub enum SelectError {
    #[error("{0}")]
    Selector(#[from] SelectorError),
    #[error("`{method}:` selectors need {needs}")]
    Unavailable { method: String, needs: String },
}

impl SelectError {
    pub fn to_diagnostic(&self) -> Diagnostic {
        match self {
            SelectError::Selector(e) => e.to_diagnostic(),
            SelectError::Unavailable { method, .. } => Diagnostic::error(self.to_string())
                .with_hint(match method.as_str() {
                    "state" => "pass `--state DIR` with the manifest of the run to compare against",
                    "source_status" => "run `strata source freshness` in production (keep its target folder as the --state) and again here before selecting",
                    _ => "run the selection once so `run_results.json` exists in the target folder",
                }),
        }
    }
}

/// Evaluates a selection to node ids, in a stable (sorted) order.
pub fn select(
    manifest: &Manifest,
    graph: &Graph,
    spec: &SelectionSpec,
) -> Result<Vec<NodeId>, SelectError> {
    let indirect = spec.indirect_tests.then(|| TestIndex::new(manifest));
    let mut selected: BTreeSet<NodeId> = if spec.select.is_empty() {
        manifest.nodes.keys().cloned().collect()
    } else {
        evaluate(
            manifest,
            graph,
            &spec.select,
            indirect.as_ref(),
            spec.previous.as_deref(),
        )?
    };
    if !spec.exclude.is_empty() {
        let excluded = evaluate(
            manifest,
            graph,
            &spec.exclude,
            indirect.as_ref(),
            spec.previous.as_deref(),
        )?;
        selected.retain(|id| !excluded.contains(id));
    }
    if !spec.resource_types.is_empty() {
        selected.retain(|id| {
            manifest
                .get(id)
                .is_some_and(|n| spec.resource_types.contains(&n.resource_type))
        });
    }
    Ok(selected.into_iter().collect())
}

/// Tests by the nodes they depend on, for dbt's eager indirect selection: a test comes along
/// when any of its parents is selected.
struct TestIndex<'a> {
    by_parent: std::collections::HashMap<&'a NodeId, Vec<&'a NodeId>>,
}

impl<'a> TestIndex<'a> {
    fn new(manifest: &'a Manifest) -> Self {
        let mut by_parent: std::collections::HashMap<&NodeId, Vec<&NodeId>> =
            std::collections::HashMap::new();
        for node in manifest.nodes.values() {
            match node.resource_type {
                ResourceType::Test => {
                    for parent in &node.depends_on {
                        by_parent.entry(parent).or_default().push(&node.unique_id);
                    }
                }
                // A unit test comes along with the model it tests, not with its inputs.
                ResourceType::UnitTest => {
                    if let Some(model) = node.test.as_ref().and_then(|t| t.attached_node.as_ref()) {
                        by_parent.entry(model).or_default().push(&node.unique_id);
                    }
                }
                _ => {}
            }
        }
        TestIndex { by_parent }
    }

    fn expand(&self, set: &mut BTreeSet<NodeId>) {
        let tests: Vec<NodeId> = set
            .iter()
            .filter_map(|id| self.by_parent.get(id))
            .flatten()
            .map(|id| (*id).clone())
            .collect();
        set.extend(tests);
    }
}

/// Each atom's nodes, plus (with indirect selection) the tests of those nodes, are combined
/// by intersection and union, as dbt combines direct and indirect selections per criterion.
fn evaluate(
    manifest: &Manifest,
    graph: &Graph,
    selection: &Selection,
    indirect: Option<&TestIndex<'_>>,
    previous: Option<&PreviousRun>,
) -> Result<BTreeSet<NodeId>, SelectError> {
    let mut union = BTreeSet::new();
    for intersection in &selection.union {
        let mut acc: Option<BTreeSet<NodeId>> = None;
        for atom in intersection {
            let mut matched = evaluate_atom(manifest, graph, atom, previous)?;
            if let Some(index) = indirect {
                index.expand(&mut matched);
            }
            acc = Some(match acc {
                None => matched,
                Some(prev) => prev.intersection(&matched).cloned().collect(),
            });
        }
        union.extend(acc.unwrap_or_default());
    }
    Ok(union)
}

fn evaluate_atom(
    manifest: &Manifest,
    graph: &Graph,
    atom: &Atom,
    previous: Option<&PreviousRun>,
) -> Result<BTreeSet<NodeId>, SelectError> {
    let base: BTreeSet<NodeId> = match &atom.method {
        Method::State => {
            let Some(previous) = previous else {
                return Err(SelectError::Unavailable {
                    method: "state".into(),
                    needs: "`--state` artifacts from a previous run".into(),
                });
            };
            let value = atom.value.as_str();
            manifest
                .nodes
                .keys()
                .filter(|id| match value {
                    "new" => previous.new.contains(*id),
                    "old" => previous.old.contains(*id),
                    "modified" => {
                        previous.new.contains(*id)
                            || previous.changed.get(*id).is_some_and(Changes::any)
                    }
                    "unmodified" => {
                        previous.old.contains(*id) && !previous.changed.contains_key(*id)
                    }
                    other => other.strip_prefix("modified.").is_some_and(|part| {
                        previous.changed.get(*id).is_some_and(|c| c.part(part))
                    }),
                })
                .cloned()
                .collect()
        }
        Method::SourceStatus => {
            let Some(fresher) = previous.and_then(|p| p.fresher.as_ref()) else {
                return Err(SelectError::Unavailable {
                    method: "source_status".into(),
                    needs: "`sources.json` from `strata source freshness` both in the --state folder and in this project's target folder".into(),
                });
            };
            fresher
                .iter()
                .filter(|id| manifest.nodes.contains_key(*id))
                .cloned()
                .collect()
        }
        Method::Result => {
            let Some(results) = previous.and_then(|p| p.results.as_ref()) else {
                return Err(SelectError::Unavailable {
                    method: "result".into(),
                    needs: "the results of a previous run".into(),
                });
            };
            manifest
                .nodes
                .keys()
                .filter(|id| results.get(*id).map(String::as_str) == Some(atom.value.as_str()))
                .cloned()
                .collect()
        }
        _ => {
            let matcher = Matcher::new(atom);
            manifest
                .nodes
                .values()
                .filter(|node| matcher.matches(node, &manifest.project_name))
                .map(|node| node.unique_id.clone())
                .collect()
        }
    };
    let mut out = base.clone();
    for id in &base {
        if let Some(depth) = atom.parents {
            out.extend(graph.ancestors(id, depth));
        }
        if let Some(depth) = atom.children {
            out.extend(graph.descendants(id, depth));
        }
        if atom.childrens_parents {
            let descendants = graph.descendants(id, None);
            for child in &descendants {
                out.extend(graph.ancestors(child, None));
            }
            out.extend(descendants);
        }
    }
    Ok(out)
}

/// Matches one atom's method and value against nodes.
struct Matcher<'a> {
    atom: &'a Atom,
    glob: Option<GlobMatcher>,
}

impl<'a> Matcher<'a> {
    fn new(atom: &'a Atom) -> Self {
        let glob = if atom.value.contains(['*', '?', '[']) {
            Glob::new(&atom.value).ok().map(|g| g.compile_matcher())
        } else {
            None
        };
        Matcher { atom, glob }
    }

    fn text_matches(&self, candidate: &str) -> bool {
        match &self.glob {
            Some(glob) => glob.is_match(candidate),
            None => candidate == self.atom.value,
        }
    }

    fn matches(&self, node: &Node, project: &str) -> bool {
        let value = self.atom.value.as_str();
        match &self.atom.method {
            Method::Default => {
                let looks_like_path = value.contains('/')
                    || value.contains(std::path::MAIN_SEPARATOR)
                    || [".sql", ".csv", ".yml", ".yaml", ".py"]
                        .iter()
                        .any(|e| value.ends_with(e));
                if looks_like_path {
                    self.path_matches(node)
                } else {
                    self.fqn_matches(node, project)
                }
            }
            Method::Fqn => self.fqn_matches(node, project),
            Method::Path => self.path_matches(node),
            Method::File => {
                let path = &node.original_file_path;
                path.file_name()
                    .is_some_and(|f| self.text_matches(&f.to_string_lossy()))
                    || path
                        .file_stem()
                        .is_some_and(|f| self.text_matches(&f.to_string_lossy()))
            }
            Method::Tag => node.tags().iter().any(|t| self.text_matches(t)),
            Method::Config(key) => match node
                .config_map
                .get(&crate::project::config::normalize_key(key))
            {
                Some(Json::Array(items)) => items.iter().any(|i| self.json_matches(i)),
                Some(other) => self.json_matches(other),
                None => match key.as_str() {
                    "materialized" => self.text_matches(node.config.materialized.as_str()),
                    "enabled" => value == "true",
                    _ => false,
                },
            },
            Method::Source => {
                let Some(source) = &node.source else {
                    return false;
                };
                let parts: Vec<&str> = value.split('.').collect();
                match parts.as_slice() {
                    [name] => self.glob_part(name, &source.source_name),
                    [name, table] => {
                        self.glob_part(name, &source.source_name)
                            && self.glob_part(table, &source.table_name)
                    }
                    [package, name, table] => {
                        *package == node.package_name
                            && self.glob_part(name, &source.source_name)
                            && self.glob_part(table, &source.table_name)
                    }
                    _ => false,
                }
            }
            Method::ResourceType => ResourceType::parse(value) == Some(node.resource_type),
            Method::TestType => match (&node.test, node.resource_type) {
                (_, ResourceType::UnitTest) => value == "unit",
                (Some(test), _) => match value {
                    "generic" | "schema" => test.generic,
                    "singular" | "data" => !test.generic,
                    _ => false,
                },
                (None, _) => false,
            },
            Method::TestName => node
                .test
                .as_ref()
                .is_some_and(|t| self.text_matches(&t.test_name)),
            Method::Package => self.text_matches(&node.package_name),
            Method::State | Method::Result | Method::SourceStatus => false,
        }
    }

    fn json_matches(&self, value: &Json) -> bool {
        match value {
            Json::String(s) => self.text_matches(s),
            other => self.text_matches(&other.to_string()),
        }
    }

    fn glob_part(&self, pattern: &str, candidate: &str) -> bool {
        if pattern.contains(['*', '?', '[']) {
            Glob::new(pattern)
                .map(|g| g.compile_matcher().is_match(candidate))
                .unwrap_or(false)
        } else {
            pattern == candidate
        }
    }

    /// dbt's FQN rule: the name itself, or the dotted parts as a prefix of the FQN (with or
    /// without the project name in front).
    fn fqn_matches(&self, node: &Node, project: &str) -> bool {
        let value = &self.atom.value;
        if node.resource_type != ResourceType::Source && self.text_matches(&node.name) {
            return true;
        }
        let parts: Vec<&str> = value.split('.').collect();
        let fqn: Vec<&str> = node.fqn.iter().map(String::as_str).collect();
        let prefix_of = |fqn: &[&str]| {
            parts.len() <= fqn.len() && parts.iter().zip(fqn).all(|(p, f)| self.glob_part(p, f))
        };
        if prefix_of(&fqn) {
            return true;
        }
        fqn.first() == Some(&project) && prefix_of(&fqn[1..])
    }

    fn path_matches(&self, node: &Node) -> bool {
        let value = self.atom.value.trim_end_matches('/');
        let path = &node.original_file_path;
        if let Some(glob) = &self.glob {
            return glob.is_match(path);
        }
        let wanted = Path::new(value);
        path == wanted || path.starts_with(wanted)
    }
}

/// `selectors.yml`: named selectors for `--selector NAME`.
#[derive(Debug, serde::Deserialize)]
pub struct SelectorsFile {
    #[serde(default)]
    pub selectors: Vec<NamedSelector>,
}

#[derive(Debug, serde::Deserialize)]
pub struct NamedSelector {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub default: Option<bool>,
    pub definition: Json,
}

/// Turns a named selector's `definition` into a select and an exclude [`Selection`].
pub fn definition_to_selection(definition: &Json) -> Result<(Selection, Selection), SelectorError> {
    let mut select = Selection::default();
    let mut exclude = Selection::default();
    collect_definition(definition, &mut select, &mut exclude)?;
    Ok((select, exclude))
}

fn collect_definition(
    definition: &Json,
    select: &mut Selection,
    exclude: &mut Selection,
) -> Result<(), SelectorError> {
    match definition {
        Json::String(s) => select.union.extend(Selection::parse(s)?.union),
        Json::Object(map) => {
            if let Some(Json::Array(items)) = map.get("union") {
                for item in items {
                    if let Some(excluded) = item.as_object().and_then(|m| m.get("exclude")) {
                        collect_exclude(excluded, exclude)?;
                    } else {
                        collect_definition(item, select, exclude)?;
                    }
                }
            } else if let Some(Json::Array(items)) = map.get("intersection") {
                let mut intersection = Vec::new();
                for item in items {
                    let mut inner = Selection::default();
                    collect_definition(item, &mut inner, exclude)?;
                    for atoms in inner.union {
                        intersection.extend(atoms);
                    }
                }
                select.union.push(intersection);
            } else if let Some(method) = map.get("method").and_then(Json::as_str) {
                let value = map
                    .get("value")
                    .map(|v| match v {
                        Json::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .unwrap_or_default();
                let mut text = String::new();
                if map.get("childrens_parents").and_then(Json::as_bool) == Some(true) {
                    text.push('@');
                }
                if map.get("parents").and_then(Json::as_bool) == Some(true) {
                    text.push('+');
                }
                if method == "fqn" {
                    text.push_str(&value);
                } else {
                    text.push_str(&format!("{method}:{value}"));
                }
                if map.get("children").and_then(Json::as_bool) == Some(true) {
                    text.push('+');
                }
                select.union.extend(Selection::parse(&text)?.union);
            } else if let Some(excluded) = map.get("exclude") {
                collect_exclude(excluded, exclude)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn collect_exclude(excluded: &Json, exclude: &mut Selection) -> Result<(), SelectorError> {
    match excluded {
        Json::Array(items) => {
            for item in items {
                let mut ignored = Selection::default();
                collect_definition(item, exclude, &mut ignored)?;
            }
        }
        other => {
            let mut ignored = Selection::default();
            collect_definition(other, exclude, &mut ignored)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_graph_operators() {
        let s = Selection::parse("2+tag:gold+1").unwrap();
        let atom = &s.union[0][0];
        assert_eq!(atom.method, Method::Tag);
        assert_eq!(atom.value, "gold");
        assert_eq!(atom.parents, Some(Some(2)));
        assert_eq!(atom.children, Some(Some(1)));
        let s = Selection::parse("@dim_customer +a,b+ config.materialized:table").unwrap();
        assert!(s.union[0][0].childrens_parents);
        assert_eq!(s.union[1].len(), 2);
        assert_eq!(s.union[2][0].method, Method::Config("materialized".into()));
    }

    #[test]
    fn reports_position_of_errors() {
        let err = Selection::parse("gold tagg:x").unwrap_err();
        assert_eq!(err.position, 6);
        assert_eq!(err.hint.as_deref(), Some("did you mean `tag`?"));
        let err = Selection::parse("tag:").unwrap_err();
        assert_eq!(err.position, 5);
        let err = Selection::parse("a,,b").unwrap_err();
        assert_eq!(err.position, 3);
        assert!(Selection::parse("@+x").is_err());
    }
}

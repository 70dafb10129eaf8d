//! `strata lineage`: each selected model's columns and the input columns each is computed
//! from, as text or JSON. Needs no warehouse: `*` expands to the columns traced upstream, a
//! seed's CSV header or a source's documented columns.

use super::args::LineageArgs;
use super::session;
use super::settings::Settings;
use super::{EXIT_FAILURE, EXIT_OK};
use crate::lineage::Trace;
use crate::manifest::ResourceType;

pub fn run(settings: &Settings, args: &LineageArgs) -> anyhow::Result<u8> {
    let printer = &settings.printer;
    let session = match session::open(settings, session::Next::Lineage) {
        Ok(session) => session,
        Err(code) => return Ok(code),
    };
    let selected = match session::select(
        &session,
        settings,
        &args.selection,
        vec![ResourceType::Model, ResourceType::Snapshot],
    ) {
        Ok(selected) => selected,
        Err(code) => return Ok(code),
    };
    let lineage = crate::docs::project_lineage(
        &session.project,
        &session.manifest,
        &session.graph,
        None,
        &Default::default(),
    );
    // Sources by `source.table`, as they are written in `source()`.
    let name = |id: &crate::manifest::NodeId| match session.manifest.get(id) {
        Some(node) => match &node.source {
            Some(source) => format!("{}.{}", source.source_name, source.table_name),
            None => node.name.clone(),
        },
        None => id.0.clone(),
    };
    let wanted = |column: &str| {
        args.column
            .as_deref()
            .is_none_or(|c| c.eq_ignore_ascii_case(column))
    };
    let mut failed = false;
    if args.output == "json" {
        let mut out = serde_json::Map::new();
        for id in &selected {
            let value = match lineage.get(id) {
                Some(Ok(columns)) => serde_json::json!({
                    "columns": columns.iter().filter(|c| wanted(&c.column)).map(|c| serde_json::json!({
                        "column": c.column,
                        "status": c.status,
                        "note": c.note,
                        "upstream": c.upstream.iter().map(|(n, col)| serde_json::json!({"node": n.0, "column": col})).collect::<Vec<_>>(),
                    })).collect::<Vec<_>>(),
                }),
                Some(Err(e)) => serde_json::json!({"error": e.to_string()}),
                None => continue,
            };
            out.insert(id.0.clone(), value);
        }
        printer.data(&serde_json::to_string_pretty(&out)?);
        return Ok(EXIT_OK);
    }
    let mut text = String::new();
    for id in &selected {
        let Some(result) = lineage.get(id) else {
            continue;
        };
        text.push_str(&name(id));
        text.push('\n');
        match result {
            Ok(columns) => {
                for c in columns.iter().filter(|c| wanted(&c.column)) {
                    let sources: Vec<String> = c
                        .upstream
                        .iter()
                        .map(|(n, col)| format!("{}.{col}", name(n)))
                        .collect();
                    let arrow = if sources.is_empty() {
                        "(no input column)".to_string()
                    } else {
                        format!("<- {}", sources.join(", "))
                    };
                    let note = match (c.status, &c.note) {
                        (Trace::Traced, _) | (_, None) => String::new(),
                        (status, Some(note)) => format!(
                            "  [{}: {note}]",
                            if status == Trace::Partial {
                                "partial"
                            } else {
                                "untraced"
                            }
                        ),
                    };
                    text.push_str(&format!("  {}  {arrow}{note}\n", c.column));
                }
            }
            Err(e) => {
                failed = true;
                text.push_str(&format!("  (cannot trace: {e})\n"));
            }
        }
    }
    printer.data(text.trim_end());
    session.finish(lineage);
    Ok(if failed { EXIT_FAILURE } else { EXIT_OK })
}

//! `strata ls` / `strata list`: print selected nodes, one per line, sorted.

use super::args::{LsArgs, LsOutput};
use super::session;
use super::settings::Settings;
use super::{EXIT_OK, EXIT_USAGE};
use crate::diagnostic::{did_you_mean, Diagnostic};
use crate::manifest::{Node, ResourceType};

pub fn run(settings: &Settings, args: &LsArgs) -> anyhow::Result<u8> {
    let mut resource_types = Vec::new();
    for name in &args.resource_types {
        if name == "all" || name == "default" {
            continue;
        }
        match ResourceType::parse(name) {
            Some(kind) => resource_types.push(kind),
            None => {
                settings.printer.diagnostic(
                    &Diagnostic::error(format!("unknown resource type `{name}`")).with_hint_opt(
                        did_you_mean(name, ResourceType::ALL.iter().copied())
                            .or(Some(format!("use one of {}", ResourceType::ALL.join(", ")))),
                    ),
                );
                return Ok(EXIT_USAGE);
            }
        }
    }
    let session = match session::open(settings, session::Next::Inspect) {
        Ok(session) => session,
        Err(code) => return Ok(code),
    };
    let selected = match session::select(&session, settings, &args.selection, resource_types) {
        Ok(selected) => selected,
        Err(code) => return Ok(code),
    };
    let mut lines: Vec<String> = selected
        .iter()
        .filter_map(|id| session.manifest.get(id))
        .map(|node| line_for(node, args.output))
        .collect();
    lines.sort();
    lines.dedup();
    settings
        .printer
        .data_lines(lines.iter().map(String::as_str));
    session.finish((selected, lines));
    Ok(EXIT_OK)
}

fn line_for(node: &Node, output: LsOutput) -> String {
    match output {
        LsOutput::Name => match &node.source {
            Some(source) => format!("{}.{}", source.source_name, source.table_name),
            None => node.name.clone(),
        },
        LsOutput::Path => node.original_file_path.to_string_lossy().replace('\\', "/"),
        LsOutput::Selector => node.selector_name(),
        LsOutput::Json => serde_json::json!({
            "name": node.name,
            "resource_type": node.resource_type,
            "package_name": node.package_name,
            "original_file_path": node.original_file_path.to_string_lossy().replace('\\', "/"),
            "unique_id": node.unique_id,
            "alias": node.relation.as_ref().map(|r| r.identifier.clone()),
            "config": node.config_map,
            "tags": node.config.tags,
            "depends_on": {"nodes": node.depends_on},
        })
        .to_string(),
    }
}

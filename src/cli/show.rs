//! `strata show`: compiles one model (or inline SQL), runs it with a row limit and prints the
//! rows as a table on stdout. Nothing is built or written to the warehouse.

use super::args::ShowArgs;
use super::session;
use super::settings::Settings;
use super::{EXIT_FAILURE, EXIT_OK};
use crate::compile::CompileOptions;
use crate::diagnostic::Diagnostic;
use crate::manifest::ResourceType;

pub fn run(settings: &Settings, args: &ShowArgs) -> anyhow::Result<u8> {
    let printer = &settings.printer;
    let session = match session::open(settings, session::Next::Inspect) {
        Ok(session) => session,
        Err(code) => return Ok(code),
    };
    let project = &session.project;
    let manifest = &session.manifest;
    let sql = if let Some(inline) = &args.inline {
        match crate::compile::compile_inline(project, manifest, &session.engine, inline) {
            Ok(sql) => sql,
            Err(diagnostics) => {
                printer.diagnostics(&diagnostics.sorted());
                return Ok(EXIT_FAILURE);
            }
        }
    } else {
        let selection = super::args::SelectArgs {
            select: args.select.iter().cloned().collect(),
            ..Default::default()
        };
        let types = vec![
            ResourceType::Model,
            ResourceType::Seed,
            ResourceType::Snapshot,
            ResourceType::Analysis,
            ResourceType::Test,
        ];
        let selected = match session::select(&session, settings, &selection, types) {
            Ok(selected) => selected,
            Err(code) => return Ok(code),
        };
        let [id] = selected.as_slice() else {
            printer.diagnostic(
                &Diagnostic::error(format!(
                    "`show --select` needs exactly one node; `{}` selects {}",
                    args.select.as_deref().unwrap_or_default(),
                    selected.len()
                ))
                .with_hint("name one model, e.g. `strata show --select dim_customer`"),
            );
            return Ok(EXIT_FAILURE);
        };
        let node = &manifest.nodes[id];
        if node.resource_type == ResourceType::Seed {
            match &node.relation {
                Some(relation) => format!(
                    "select * from {}",
                    relation.render(&crate::relation::QuoteStyle::default())
                ),
                None => return Ok(EXIT_FAILURE),
            }
        } else {
            let options = CompileOptions::default();
            let _connected = match manifest.get(id).is_some_and(|n| n.compile_late) {
                true => match super::session::connect_for_templates(&session) {
                    Ok(runtime) => Some(runtime),
                    Err(diagnostic) => {
                        printer.diagnostic(&diagnostic);
                        return Ok(EXIT_FAILURE);
                    }
                },
                false => None,
            };
            match crate::compile::compile(
                project,
                manifest,
                &session.engine,
                std::slice::from_ref(id),
                &options,
            ) {
                Ok(compiled) => match compiled.nodes.get(id) {
                    // A microbatch model previews every batch from `begin` to the current one.
                    Some(compiled) => crate::materialize::microbatch::whole_window(
                        &compiled.sql,
                        &node.config_map,
                        crate::adapter::flavour_for(&project.target).as_ref(),
                        chrono::Utc::now(),
                    ),
                    None => return Ok(EXIT_FAILURE),
                },
                Err(diagnostics) => {
                    printer.diagnostics(&diagnostics.sorted());
                    return Ok(EXIT_FAILURE);
                }
            }
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let adapter = match crate::adapter::connect(&project.target).await {
            Ok(adapter) => adapter,
            Err(err) => {
                printer.diagnostic(&Diagnostic::error(err.to_string()).with_hint_opt(err.hint()));
                return Ok(EXIT_FAILURE);
            }
        };
        let body = sql.trim().trim_end_matches(';').trim_end();
        let limited = format!(
            "select * from (\n{body}\n) as strata_show limit {}",
            args.limit
        );
        match adapter.query(&limited).await {
            Ok(table) => {
                printer.data(&table.to_text(60));
                Ok(EXIT_OK)
            }
            Err(err) => {
                printer.diagnostic(&Diagnostic::error(err.to_string()).with_hint_opt(err.hint()));
                Ok(EXIT_FAILURE)
            }
        }
    })
}

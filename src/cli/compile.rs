//! `strata compile`: render selected nodes to SQL files under the target path.

use super::args::CompileArgs;
use super::session;
use super::settings::Settings;
use super::{EXIT_FAILURE, EXIT_OK};
use crate::compile::CompileOptions;
use crate::diagnostic::Diagnostic;
use crate::manifest::ResourceType;

pub fn run(settings: &Settings, args: &CompileArgs) -> anyhow::Result<u8> {
    let session = match session::open(settings, session::Next::Compile) {
        Ok(session) => session,
        Err(code) => return Ok(code),
    };
    let selected = match session::select(&session, settings, &args.selection, Vec::new()) {
        Ok(selected) => selected,
        Err(code) => return Ok(code),
    };
    // A node whose templates may query the warehouse (`run_query`, `{% if execute %}`) needs
    // a connection to compile, as in dbt; the rest compile without one.
    let _runtime = if selected
        .iter()
        .filter_map(|id| session.manifest.get(id))
        .any(|n| n.compile_late)
    {
        match session::connect_for_templates(&session) {
            Ok(runtime) => Some(runtime),
            Err(diagnostic) => {
                settings.printer.diagnostic(&diagnostic);
                return Ok(EXIT_FAILURE);
            }
        }
    } else {
        None
    };
    let deferred = match deferral(settings, &session) {
        None => Default::default(),
        Some(deferral) => match deferred_parents(&session, &selected, &deferral) {
            Ok(deferred) => deferred,
            Err(diagnostic) => {
                settings.printer.diagnostic(&diagnostic);
                return Ok(EXIT_FAILURE);
            }
        },
    };
    let options = CompileOptions {
        write: true,
        deferred,
        ..CompileOptions::default()
    };
    let compiled = match crate::compile::compile(
        &session.project,
        &session.manifest,
        &session.engine,
        &selected,
        &options,
    ) {
        Ok(compiled) => compiled,
        Err(diagnostics) => {
            let sorted = diagnostics.sorted();
            let errors = sorted.iter().filter(|d| d.is_error()).count();
            settings.printer.diagnostics(&sorted);
            let noun = if errors == 1 { "error" } else { "errors" };
            settings.printer.info(&format!(
                "strata compile stopped: {errors} {noun}; only the compiled SQL of failing nodes was written, for inspection"
            ));
            return Ok(EXIT_FAILURE);
        }
    };
    for node in compiled.nodes.values() {
        for message in &node.logs {
            settings.printer.info(message);
        }
    }
    settings.printer.diagnostics(&compiled.warnings);
    // The compiled files and the manifest are written side by side: one is mostly file
    // creation in the kernel, the other one thread serializing tens of MB on large projects.
    let (files, manifest) = rayon::join(
        || crate::compile::write_files(&session.project, &compiled),
        || {
            crate::artifacts::write_manifest(
                &session.project,
                &session.manifest,
                &session.engine,
                Some(&compiled),
            )
        },
    );
    let mut failed = false;
    if let Err(diagnostics) = files {
        settings.printer.diagnostics(&diagnostics.sorted());
        failed = true;
    }
    if let Err(e) = manifest {
        settings.printer.diagnostic(&Diagnostic::error(format!(
            "cannot write `manifest.json`: {e}"
        )));
        failed = true;
    }
    if failed {
        return Ok(EXIT_FAILURE);
    }
    // A single selected model prints its SQL, as `dbt compile -s x` does.
    let models: Vec<_> = compiled
        .nodes
        .values()
        .filter(|c| {
            session
                .manifest
                .get(&c.unique_id)
                .is_some_and(|n| n.resource_type != ResourceType::Test)
        })
        .collect();
    if !args.selection.select.is_empty() && models.len() == 1 {
        settings.printer.data(models[0].sql.trim_end());
    }
    settings.printer.info(&format!(
        "compiled {} nodes in {:.2}s",
        compiled.nodes.len(),
        session.started.elapsed().as_secs_f64()
    ));
    session.finish(compiled);
    Ok(EXIT_OK)
}

/// `--defer`'s previous run, where the command asks for it.
pub fn deferral(
    settings: &Settings,
    session: &session::Session,
) -> Option<crate::run::prepare::Deferral> {
    match (settings.defer, &session.baseline) {
        (super::settings::Defer::Off, _) | (_, None) => None,
        (defer, Some(baseline)) => Some(crate::run::prepare::Deferral {
            relations: baseline.relations(),
            always: defer == super::settings::Defer::Always,
        }),
    }
}

/// The parents a compile reads from the `--state` run: it connects to see which the
/// target lacks, as dbt does, unless `--favor-state` takes them all from there.
fn deferred_parents(
    session: &session::Session,
    selected: &[crate::manifest::NodeId],
    deferral: &crate::run::prepare::Deferral,
) -> Result<
    std::collections::HashMap<crate::manifest::NodeId, crate::relation::RelationName>,
    Diagnostic,
> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Diagnostic::error(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        if deferral.always {
            return crate::run::prepare::deferred_parents(&session.manifest, selected, None, deferral)
                .await
                .map_err(|e| Diagnostic::error(e.to_string()));
        }
        let adapter = crate::adapter::connect(&session.project.target)
            .await
            .map_err(|e| {
                Diagnostic::error(format!(
                    "cannot connect to target `{}` to see which parents --defer reads from the --state run: {e}",
                    session.project.target.name
                ))
                .with_hint_opt(e.hint())
            })?;
        let catalog = crate::catalog::Catalog::new(adapter);
        crate::run::prepare::deferred_parents(&session.manifest, selected, Some(&catalog), deferral)
            .await
            .map_err(|e| Diagnostic::error(e.to_string()).with_hint_opt(e.hint()))
    })
}

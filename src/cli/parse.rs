//! `strata parse`: load and render every node, check the DAG, write `manifest.json`.

use super::session;
use super::settings::Settings;
use super::{EXIT_FAILURE, EXIT_OK};
use crate::diagnostic::Diagnostic;
use crate::manifest::ResourceType;

pub fn run(settings: &Settings) -> anyhow::Result<u8> {
    let session = match session::open(settings, session::Next::Inspect) {
        Ok(session) => session,
        Err(code) => return Ok(code),
    };
    if let Err(e) =
        crate::artifacts::write_manifest(&session.project, &session.manifest, &session.engine, None)
    {
        settings.printer.diagnostic(&Diagnostic::error(format!(
            "cannot write `manifest.json`: {e}"
        )));
        return Ok(EXIT_FAILURE);
    }
    let count = |kind: ResourceType| {
        session
            .manifest
            .nodes
            .values()
            .filter(|n| n.resource_type == kind)
            .count()
    };
    settings.printer.info(&format!(
        "parsed {} models, {} seeds, {} snapshots, {} sources, {} tests, {} macros in {:.2}s",
        count(ResourceType::Model),
        count(ResourceType::Seed),
        count(ResourceType::Snapshot),
        count(ResourceType::Source),
        count(ResourceType::Test),
        session.engine.macros().len(),
        session.started.elapsed().as_secs_f64()
    ));
    session.finish(());
    Ok(EXIT_OK)
}

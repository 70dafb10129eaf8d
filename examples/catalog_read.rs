//! The catalog-read arm of `bench/docs.sh`: what reading a built project's catalog costs alone,
//! in a process of its own, with the code `strata docs generate` uses (connect to the target,
//! list the schemas, read the row counts). The relations asked for are the manifest's.
//!
//! `cargo run --release --example catalog_read -- PROJECT_DIR MANIFEST`
//!
//! Prints the seconds the connection and the read took (on stderr: the relations found).

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use strata::relation::RelationName;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [project, manifest] = args.as_slice() else {
        eprintln!("usage: catalog_read PROJECT_DIR MANIFEST");
        return ExitCode::from(2);
    };
    match run(Path::new(project), Path::new(manifest)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(project_dir: &Path, manifest: &Path) -> Result<(), String> {
    let project = strata::project::load(&strata::project::LoadOptions {
        project_dir: project_dir.to_path_buf(),
        ..Default::default()
    })
    .map_err(|errors| format!("the project does not load ({} errors)", errors.len()))?;
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(manifest).map_err(|e| format!("cannot read the manifest: {e}"))?,
    )
    .map_err(|e| e.to_string())?;
    let text = |node: &serde_json::Value, key: &str| -> Option<String> {
        node.get(key).and_then(|v| v.as_str()).map(str::to_string)
    };
    // What docs generate asks for: every node with a relation of its own.
    let mut wanted = Vec::new();
    for section in ["nodes", "sources"] {
        for node in manifest[section]
            .as_object()
            .into_iter()
            .flat_map(|m| m.values())
        {
            let kind = text(node, "resource_type").unwrap_or_default();
            let materialized = text(&node["config"], "materialized").unwrap_or_default();
            if kind == "test" || kind == "analysis" || materialized == "ephemeral" {
                continue;
            }
            let identifier = text(node, "identifier").or_else(|| text(node, "alias"));
            if let (Some(schema), Some(identifier)) = (text(node, "schema"), identifier) {
                wanted.push(RelationName::new(
                    text(node, "database"),
                    schema,
                    identifier,
                ));
            }
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let clock = Instant::now();
    let (catalog, adapter) = runtime.block_on(async {
        let adapter = strata::adapter::connect(&project.target)
            .await
            .map_err(|e| e.to_string())?;
        let catalog = strata::docs::read_catalog(adapter.clone(), wanted)
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>((catalog, adapter))
    })?;
    println!("{:.3}", clock.elapsed().as_secs_f64());
    eprintln!("{} relations", catalog.len());
    // The process exits without closing the database, as `docs generate` does.
    std::mem::forget((catalog, adapter, runtime));
    std::process::exit(0)
}

//! The catalog-read arm of `bench/docs.sh`: what reading a built project's catalog costs alone,
//! in a process of its own, with the code `strata docs generate` uses (connect to the target,
//! list the schemas, read the row counts), asking for the relations docs generate asks for.
//!
//! `cargo run --release --example catalog_read -- PROJECT_DIR`
//!
//! Prints the seconds the connection and the read took (on stderr: the relations found).

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [project] = args.as_slice() else {
        eprintln!("usage: catalog_read PROJECT_DIR");
        return ExitCode::from(2);
    };
    match run(Path::new(project)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(project_dir: &Path) -> Result<(), String> {
    let project = strata::project::load(&strata::project::LoadOptions {
        project_dir: project_dir.to_path_buf(),
        ..Default::default()
    })
    .map_err(|errors| format!("the project does not load ({} errors)", errors.len()))?;
    let engine = strata::template::Engine::new(&project, Default::default())
        .map_err(|errors| format!("the project's macros do not load ({} errors)", errors.len()))?;
    let manifest = strata::manifest::build(
        &project,
        &engine,
        strata::manifest::ParseOptions {
            check_sql_ahead: false,
            reference: false,
            keep_lineage: false,
        },
    )
    .map_err(|_| "the project does not parse".to_string())?;
    // What docs generate asks for, from the same function.
    let wanted = strata::docs::wanted_relations(&manifest);
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

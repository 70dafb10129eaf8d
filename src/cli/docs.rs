//! `strata docs generate` (compile, catalog, lineage, site) and `strata docs serve`.

use std::sync::Arc;

use super::args::{DocsGenerateArgs, DocsServeArgs};
use super::session;
use super::settings::Settings;
use super::{EXIT_FAILURE, EXIT_OK};
use crate::compile::CompileOptions;
use crate::diagnostic::Diagnostic;
use crate::lineage::Trace;

pub fn generate(settings: &Settings, args: &DocsGenerateArgs) -> anyhow::Result<u8> {
    let printer = &settings.printer;
    let fail = |diagnostic: Diagnostic| {
        printer.diagnostic(&diagnostic);
        Ok(EXIT_FAILURE)
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    // One connection, for the templates that query the warehouse and for the catalog, opened
    // while the project parses (opening a DuckDB file of 10,000 tables alone takes a quarter
    // of a second, a remote warehouse a handshake or two) unless that would create the
    // warehouse: a project that does not parse must leave nothing behind.
    let mut connecting = None;
    let session = match session::open_with(settings, session::Next::Lineage, |project| {
        if !args.empty_catalog {
            let target = project.target.clone();
            connecting = Some(runtime.spawn(async move {
                let clock = std::time::Instant::now();
                let adapter = crate::adapter::connect_existing(&target).await;
                (adapter, clock.elapsed().as_secs_f64())
            }));
        }
    }) {
        Ok(session) => session,
        Err(code) => {
            // Not waiting for a connection nobody will use.
            runtime.shutdown_background();
            return Ok(code);
        }
    };
    let loaded = session.started.elapsed().as_secs_f64();
    let mut phases: Vec<(&str, f64)> = vec![("load", loaded)];
    let connect_failed = |e: &crate::adapter::AdapterError| {
        Diagnostic::error(format!(
            "cannot connect to target `{}` to read its catalog: {e}",
            session.project.target.name
        ))
        .with_hint("check the target with `strata debug`, or pass --empty-catalog")
    };
    // A node whose templates query the warehouse compiles with the connection, as in
    // `strata compile`; otherwise the compile phase does not wait for it.
    let templates_query = session.manifest.nodes.values().any(|n| n.compile_late);
    let connecting = match connecting {
        Some(task) if templates_query => {
            let opened = match runtime.block_on(task) {
                Ok((Ok(Some(adapter)), seconds)) => {
                    phases.push(("connected alongside", seconds));
                    Ok(adapter)
                }
                // The warehouse is not there yet: made now, as `strata compile` would.
                Ok((Ok(None), _)) => {
                    runtime.block_on(crate::adapter::connect(&session.project.target))
                }
                Ok((Err(e), _)) => Err(e),
                Err(e) => anyhow::bail!("the connection attempt stopped: {e}"),
            };
            let adapter = match opened {
                Ok(adapter) => adapter,
                Err(e) => return fail(connect_failed(&e)),
            };
            session
                .engine
                .attach_warehouse(Arc::new(crate::run::introspect::Introspection::new(
                    adapter.clone(),
                    runtime.handle().clone(),
                )));
            phases.push((
                "connection wait",
                session.started.elapsed().as_secs_f64() - loaded,
            ));
            Some(runtime.spawn(async move { (Ok(Some(adapter)), 0.0) }))
        }
        other => other,
    };
    let mut clock = std::time::Instant::now();
    let mut lap = |phases: &mut Vec<(&str, f64)>, name: &'static str| {
        phases.push((name, clock.elapsed().as_secs_f64()));
        clock = std::time::Instant::now();
    };
    let all: Vec<_> = session.manifest.nodes.keys().cloned().collect();
    // The catalog is read, once connected, while the project compiles. A warehouse that is
    // not there yet has an empty one.
    let reading = connecting.map(|connecting| {
        let wanted = crate::docs::wanted_relations(&session.manifest);
        runtime.spawn(async move {
            let (adapter, connect_seconds) = connecting.await.map_err(CatalogFailure::Stopped)?;
            let Some(adapter) = adapter.map_err(CatalogFailure::Connect)? else {
                return Ok(None);
            };
            let clock = std::time::Instant::now();
            let catalog = crate::docs::read_catalog(adapter.clone(), wanted)
                .await
                .map_err(CatalogFailure::Read)?;
            // The connection is handed back, to be left open at exit like the session's.
            Ok::<_, CatalogFailure>(Some((catalog, adapter, connect_seconds, clock.elapsed())))
        })
    });
    let options = CompileOptions {
        write: true,
        ..CompileOptions::default()
    };
    let compiled = match crate::compile::compile(
        &session.project,
        &session.manifest,
        &session.engine,
        &all,
        &options,
    ) {
        Ok(compiled) => compiled,
        Err(diagnostics) => {
            let sorted = diagnostics.sorted();
            printer.diagnostics(&sorted);
            printer.info("strata docs generate stopped: the project does not compile");
            runtime.shutdown_background();
            return Ok(EXIT_FAILURE);
        }
    };
    printer.diagnostics(&compiled.warnings);
    lap(&mut phases, "compile");
    let mut connection = None;
    let catalog = match reading.map(|task| runtime.block_on(task)) {
        None | Some(Ok(Ok(None))) => Default::default(),
        Some(Ok(Ok(Some((catalog, adapter, connect_seconds, read))))) => {
            if !templates_query {
                phases.push(("connected alongside", connect_seconds));
            }
            phases.push(("catalog read alongside", read.as_secs_f64()));
            connection = Some(adapter);
            catalog
        }
        Some(Ok(Err(CatalogFailure::Connect(e)))) => return fail(connect_failed(&e)),
        Some(Ok(Err(CatalogFailure::Read(e)))) => {
            return fail(Diagnostic::error(format!(
                "cannot read the catalog of target `{}`: {e}",
                session.project.target.name
            )))
        }
        Some(Ok(Err(CatalogFailure::Stopped(e)))) | Some(Err(e)) => {
            anyhow::bail!("the catalog read stopped: {e}")
        }
    };
    lap(&mut phases, "catalog wait");
    let generated_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let target = &session.project.target_path;
    // manifest.json, the longest single write, on one side; the compiled files, the lineage
    // and site, and catalog.json on the other.
    let site_and_files = || {
        let (site, files) = rayon::join(
            || {
                let clock = std::time::Instant::now();
                let lineage = crate::docs::project_lineage(
                    &session.project,
                    &session.manifest,
                    &session.graph,
                    Some(&compiled),
                    &catalog,
                );
                let traced = clock.elapsed().as_secs_f64();
                let data = crate::docs::site_data(
                    &session.project,
                    &session.manifest,
                    Some(&compiled),
                    &catalog,
                    &lineage,
                    &generated_at,
                );
                let written = crate::docs::write_site(target, &data).map_err(|e| e.to_string());
                drop(data);
                written.map(|()| (lineage, traced))
            },
            || {
                crate::compile::write_files(&session.project, &compiled).map_err(|d| {
                    d.sorted()
                        .iter()
                        .map(|d| d.message.clone())
                        .collect::<Vec<_>>()
                        .join("; ")
                })
            },
        );
        let catalog_file = crate::artifacts::write_catalog(
            &session.project,
            &session.manifest,
            &session.engine,
            &catalog,
        )
        .map_err(|e| e.to_string());
        files.and(catalog_file).and(site)
    };
    let (site, manifest_file) = rayon::join(site_and_files, || {
        crate::artifacts::write_manifest(
            &session.project,
            &session.manifest,
            &session.engine,
            Some(&compiled),
        )
        .map(|_| ())
        .map_err(|e| e.to_string())
    });
    let (lineage, traced) = match site.and_then(|site| manifest_file.map(|()| site)) {
        Ok(site) => site,
        Err(e) => {
            return fail(Diagnostic::error(format!(
                "cannot write the docs to `{}`: {e}",
                target.display()
            )))
        }
    };
    lap(&mut phases, "lineage, site and artifacts");
    phases.push(("of which lineage", traced));
    let (mut columns, mut partial, mut untraced) = (0usize, 0usize, 0usize);
    for result in lineage.values() {
        match result {
            Ok(list) => {
                for column in list {
                    columns += 1;
                    match column.status {
                        Trace::Traced => {}
                        Trace::Partial => partial += 1,
                        Trace::Untraced => untraced += 1,
                    }
                }
            }
            Err(_) => untraced += 1,
        }
    }
    printer.info(&format!(
        "docs of {} nodes written to {} in {:.2}s: {} relations in the catalog; lineage of {columns} columns ({partial} partial, {untraced} untraced)",
        session.manifest.nodes.len(),
        crate::diagnostic::display_path(&target.join("index.html"), &session.project.root)
            .display(),
        session.started.elapsed().as_secs_f64(),
        catalog.len(),
    ));
    printer.info(&format!(
        "  {}",
        phases
            .iter()
            .map(|(name, seconds)| format!("{name} {seconds:.2}s"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    printer.info("open it in a browser, or run `strata docs serve`");
    session.finish((compiled, lineage, catalog, connection));
    Ok(EXIT_OK)
}

/// Why the catalog could not be read.
enum CatalogFailure {
    Connect(crate::adapter::AdapterError),
    Read(crate::adapter::AdapterError),
    /// The connection task itself stopped (a panic in the adapter).
    Stopped(tokio::task::JoinError),
}

pub fn serve(settings: &Settings, args: &DocsServeArgs) -> anyhow::Result<u8> {
    let printer = &settings.printer;
    let project_dir = &settings.load.project_dir;
    let target_path = crate::project::packages::project_field(project_dir, "target-path")
        .unwrap_or_else(|| "target".into());
    let dir = project_dir.join(target_path);
    if !dir.join("index.html").is_file() || !dir.join("docs-data.js").is_file() {
        printer.diagnostic(
            &Diagnostic::error(format!("no docs site in `{}`", dir.display()))
                .with_hint("run `strata docs generate` first"),
        );
        return Ok(EXIT_FAILURE);
    }
    let listener = match crate::docs::serve::bind(args.port) {
        Ok(listener) => listener,
        Err(e) => {
            printer.diagnostic(
                &Diagnostic::error(format!("cannot listen on 127.0.0.1:{}: {e}", args.port))
                    .with_hint("pick another port with --port (0: any free port)"),
            );
            return Ok(EXIT_FAILURE);
        }
    };
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(args.port);
    printer.info(&format!(
        "serving the docs at http://127.0.0.1:{port}/ (Ctrl-C stops)"
    ));
    crate::docs::serve::serve(listener, &dir);
    Ok(EXIT_OK)
}

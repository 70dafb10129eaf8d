//! `strata clean`: deletes the target folder and the project's `clean-targets`, refusing any
//! path outside the project folder so a stray `clean-targets: [..]` cannot delete the user's files.

use std::path::{Component, Path};

use super::settings::Settings;
use super::{EXIT_FAILURE, EXIT_OK};
use crate::diagnostic::Diagnostic;

fn inside(root: &Path, relative: &Path) -> bool {
    !relative.is_absolute()
        && !relative.as_os_str().is_empty()
        && relative
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
        && relative
            .components()
            .any(|c| matches!(c, Component::Normal(_)))
        && root.join(relative) != root
}

pub fn run(settings: &Settings) -> anyhow::Result<u8> {
    let printer = &settings.printer;
    // A stale package install is no reason not to clean (`clean-targets` often holds it).
    let options = crate::project::LoadOptions {
        skip_package_check: true,
        skip_version_check: true,
        ..settings.load.clone()
    };
    let project = match super::session::load_project_with(settings, &options) {
        Ok(project) => project,
        Err(code) => return Ok(code),
    };
    let root = &project.root;
    let mut paths: Vec<std::path::PathBuf> = project
        .file
        .clean_targets
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(Into::into)
        .collect();
    if let Ok(target) = project.target_path.strip_prefix(root) {
        paths.push(target.to_path_buf());
    }
    paths.sort();
    paths.dedup();
    let mut code = EXIT_OK;
    for path in paths {
        if !inside(root, &path) {
            printer.diagnostic(
                &Diagnostic::error(format!(
                    "refusing to clean `{}`: it is not a folder inside the project",
                    path.display()
                ))
                .at_file(project.project_file.clone())
                .with_hint("list folders relative to the project in `clean-targets`"),
            );
            code = EXIT_FAILURE;
            continue;
        }
        let full = root.join(&path);
        match std::fs::remove_dir_all(&full) {
            Ok(()) => printer.info(&format!("cleaned `{}`", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                printer.diagnostic(&Diagnostic::error(format!(
                    "cannot delete `{}`: {e}",
                    path.display()
                )));
                code = EXIT_FAILURE;
            }
        }
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_folders_inside_the_project_are_cleaned() {
        let root = Path::new("/p");
        assert!(inside(root, Path::new("target")));
        assert!(inside(root, Path::new("dbt_packages/x")));
        assert!(!inside(root, Path::new("..")));
        assert!(!inside(root, Path::new("../other")));
        assert!(!inside(root, Path::new("/etc")));
        assert!(!inside(root, Path::new(".")));
        assert!(!inside(root, Path::new("")));
    }
}

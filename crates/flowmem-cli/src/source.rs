//! Workflow files: a JSON definition or a WfCommons trace, told apart by their top-level keys; and the
//! `validate` and `export` commands.

use std::{collections::HashMap, path::Path};

use flowmem_engine::{TaskAction, WfImport, Workflow, import_wfcommons};

use crate::{Exit, ExportFormat, Failure, TaskKind, TraceArgs};

/// A workflow read from a file.
pub(crate) struct Loaded {
    pub(crate) workflow: Workflow,
    /// What the file was, for messages: "JSON definition" or "WfCommons 1.5 trace".
    pub(crate) kind: String,
    /// The import's findings, for a trace.
    pub(crate) import: Option<WfImport>,
}

/// Reads `path` as a JSON definition (an object with `nodes`) or a WfCommons trace (an object with
/// `workflow`).
pub(crate) fn load(path: &Path, trace: TraceArgs) -> Result<Loaded, Failure> {
    let bytes = std::fs::read(path)
        .map_err(|e| Failure::new(Exit::BadInput, format!("{}: {e}", path.display())))?;
    let top: serde_json::Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        // The engine's loader words a JSON error with the file, line and column.
        Err(_) => {
            return Err(match Workflow::from_json_file(path) {
                Err(e) => Failure::new(Exit::BadInput, e),
                Ok(_) => Failure::new(Exit::BadInput, format!("{}: not JSON", path.display())),
            });
        }
    };
    let is = |key: &str| top.as_object().is_some_and(|o| o.contains_key(key));
    if is("nodes") {
        let workflow =
            Workflow::from_json_file(path).map_err(|e| Failure::new(Exit::BadInput, e))?;
        return Ok(Loaded {
            workflow,
            kind: "JSON definition".into(),
            import: None,
        });
    }
    if is("workflow") {
        if !(trace.scale.is_finite() && trace.scale >= 0.0) {
            return Err(Failure::new(
                Exit::BadInput,
                format!("--scale {} is not a factor of zero or more", trace.scale),
            ));
        }
        let action = match trace.tasks {
            TaskKind::Noop => TaskAction::Noop,
            TaskKind::Sleep => TaskAction::Sleep { scale: trace.scale },
            TaskKind::Spin => TaskAction::Spin { scale: trace.scale },
        };
        let import = import_wfcommons(&bytes, action)
            .map_err(|e| Failure::new(Exit::BadInput, format!("{}: {e}", path.display())))?;
        return Ok(Loaded {
            workflow: import.workflow.clone(),
            kind: format!("WfCommons {} trace", import.schema_version),
            import: Some(import),
        });
    }
    Err(Failure::new(
        Exit::BadInput,
        format!(
            "{}: neither a JSON workflow definition (an object with `name` and `nodes`) nor a \
             WfCommons trace (an object with `workflow`)",
            path.display()
        ),
    ))
}

/// The most nodes on one chain of dependencies.
fn longest_chain(workflow: &Workflow) -> usize {
    let mut depth: HashMap<&str, usize> = HashMap::with_capacity(workflow.len());
    for node in workflow.topological_order() {
        let d = workflow
            .dependencies(node)
            .unwrap_or_default()
            .iter()
            .filter_map(|dep| depth.get(dep))
            .max()
            .map_or(1, |d| d + 1);
        depth.insert(node, d);
    }
    depth.values().copied().max().unwrap_or(0)
}

/// `flowmem validate FILE`.
pub(crate) fn validate(path: &Path, trace: TraceArgs) -> Result<Exit, Failure> {
    let loaded = load(path, trace)?;
    let w = &loaded.workflow;
    println!(
        "valid: workflow `{}` ({}, {}): {} nodes, {} edges, {} roots, longest chain {} nodes",
        w.name(),
        path.display(),
        loaded.kind,
        w.len(),
        w.edges(),
        w.roots().len(),
        longest_chain(w)
    );
    if let Some(import) = &loaded.import {
        if !import.disagreements.is_empty() {
            println!(
                "note: {} edges are listed on one side only (parents or children); imported",
                import.disagreements.len()
            );
        }
        for (task, name) in &import.unknown_tasks {
            println!(
                "warning: task `{task}` lists `{name}`, which is no task of the file; ignored"
            );
        }
        if import.missing_runtimes > 0 {
            println!(
                "note: {} tasks have no recorded runtime (they run for no time)",
                import.missing_runtimes
            );
        }
    }
    Ok(Exit::Ok)
}

/// `flowmem export FILE --dot | --mermaid | --json`.
pub(crate) fn export(
    path: &Path,
    format: &ExportFormat,
    trace: TraceArgs,
) -> Result<Exit, Failure> {
    let loaded = load(path, trace)?;
    let w = &loaded.workflow;
    let text = if format.dot {
        w.to_dot()
    } else if format.mermaid {
        w.to_mermaid()
    } else {
        w.to_json().map_err(|e| Failure::new(Exit::BadInput, e))?
    };
    print!("{text}");
    if !text.ends_with('\n') {
        println!();
    }
    Ok(Exit::Ok)
}

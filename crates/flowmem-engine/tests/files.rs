//! Workflows from files: JSON definitions with a registry, WfCommons traces, and DOT / Mermaid export.

use std::path::PathBuf;

use flowmem_engine::{
    ActionError, DefinitionError, Executor, LoadError, NodeCtx, Registry, RunStatus, TaskAction,
    Workflow, import_wfcommons, import_wfcommons_file,
};

fn registry() -> Registry {
    let r = Registry::new();
    r.register("noop", |_: &mut NodeCtx<'_>| Ok::<(), ActionError>(()));
    r.register("double", |ctx: &mut NodeCtx<'_>| {
        let mut n = 0;
        ctx.for_each_input(|_, v| n += v.as_u64().unwrap_or(1));
        ctx.set_output(n.max(1) * 2);
        Ok::<(), ActionError>(())
    });
    r
}

#[test]
fn a_json_definition_builds_and_runs_with_registered_actions() {
    let w = Workflow::from_json_with(
        r#"{"name": "pipeline", "nodes": [
            {"name": "a", "action": "double"},
            {"name": "b", "action": "double", "after": ["a"],
             "retry": {"max_retries": 2, "initial_ms": 1, "max_delay_ms": 5, "jitter": false},
             "timeout_ms": 1000}
        ]}"#,
        &registry(),
    )
    .unwrap();
    let report = Executor::new(2).run(&w);
    assert_eq!(report.status, RunStatus::Completed);
    assert_eq!(report.output("b").unwrap().as_u64(), Some(4));
}

#[test]
fn bad_json_says_where_and_unknown_actions_say_what_exists() {
    let r = registry();
    match Workflow::from_json_with(
        "{\n  \"name\": \"x\",\n  \"nodes\": [ {\"name\": 1} ]\n}",
        &r,
    ) {
        Err(
            e @ LoadError::Json {
                line: 3,
                column: 23,
                ..
            },
        ) => {
            // Issue 14, bug 9: the position once, in front (serde_json's own suffix is dropped).
            let text = e.to_string();
            assert!(text.starts_with("line 3, column 23: "), "{text}");
            assert!(!text.contains(" at line "), "{text}");
        }
        other => panic!("expected a JSON error, got {other:?}"),
    }
    let typo = Workflow::from_json_with(
        r#"{"name": "x", "nodes": [{"name": "a", "action": "noop", "afterr": []}]}"#,
        &r,
    );
    assert!(typo.unwrap_err().to_string().contains("afterr"));
    let unknown = Workflow::from_json_with(
        r#"{"name": "x", "nodes": [{"name": "a", "action": "nope"}]}"#,
        &r,
    )
    .unwrap_err();
    assert_eq!(
        unknown.to_string(),
        "node `a` names the action `nope`, which is not registered (registered: double, noop)"
    );
    let cycle = Workflow::from_json_with(
        r#"{"name": "x", "nodes": [
            {"name": "a", "action": "noop", "after": ["b"]},
            {"name": "b", "action": "noop", "after": ["a"]}]}"#,
        &r,
    )
    .unwrap_err();
    assert!(matches!(
        cycle,
        LoadError::Definition(DefinitionError::Cycle { .. })
    ));
}

#[test]
fn a_trace_whose_parents_and_children_disagree_imports_the_union_and_says_so() {
    // c lists a as a parent, but a does not list c as a child; b is a's child only by a's word.
    let trace = br#"{"schemaVersion": "1.5", "name": "tiny", "workflow": {
        "specification": {"tasks": [
            {"name": "a", "id": "a", "parents": [], "children": ["b"]},
            {"name": "b", "id": "b", "parents": [], "children": []},
            {"name": "c", "id": "c", "parents": ["a"], "children": []}
        ], "files": []},
        "execution": {"tasks": [{"id": "a", "runtimeInSeconds": 2.0}, {"id": "b", "runtimeInSeconds": 1.0}]}
    }}"#;
    let imported = import_wfcommons(trace, TaskAction::Noop).unwrap();
    assert_eq!((imported.tasks, imported.edges), (3, 2));
    assert_eq!(
        imported.disagreements,
        [
            ("a".to_string(), "b".to_string()),
            ("a".to_string(), "c".to_string())
        ]
    );
    assert_eq!(imported.missing_runtimes, 1);
    assert_eq!(imported.workflow.dependencies("b").unwrap(), ["a"]);
    assert_eq!(imported.workflow.dependencies("c").unwrap(), ["a"]);
}

#[test]
fn importing_a_trace_twice_gives_the_same_workflow_and_fingerprint() {
    // Many parents per task: the union of parents and children is a set, its order must not leak.
    let tasks: Vec<String> = (0..40)
        .map(|i| {
            let parents: Vec<String> = (0..i).map(|p| format!("\"t{p}\"")).collect();
            format!(
                r#"{{"name": "t{i}", "id": "t{i}", "parents": [{}], "children": []}}"#,
                parents.join(",")
            )
        })
        .collect();
    let trace = format!(
        r#"{{"schemaVersion": "1.5", "name": "wide", "workflow": {{"specification": {{"tasks": [{}]}}}}}}"#,
        tasks.join(",")
    );
    let first = import_wfcommons(trace.as_bytes(), TaskAction::Noop).unwrap();
    let deps = first.workflow.dependencies("t39").unwrap();
    let expected: Vec<String> = (0..39).map(|p| format!("t{p}")).collect();
    assert_eq!(deps, expected, "dependencies in file order");
    for _ in 0..5 {
        let again = import_wfcommons(trace.as_bytes(), TaskAction::Noop).unwrap();
        assert_eq!(again.workflow.fingerprint(), first.workflow.fingerprint());
    }
}

#[test]
fn a_fingerprint_ignores_the_order_dependencies_are_listed_in() {
    let build = |order: [&str; 2]| {
        let mut b = Workflow::builder("w");
        b.node("a", |_: &mut NodeCtx<'_>| Ok::<(), ActionError>(()));
        b.node("b", |_: &mut NodeCtx<'_>| Ok::<(), ActionError>(()));
        b.node("c", |_: &mut NodeCtx<'_>| Ok::<(), ActionError>(()))
            .after(order);
        b.build().unwrap()
    };
    assert_eq!(
        build(["a", "b"]).fingerprint(),
        build(["b", "a"]).fingerprint()
    );
    let mut other = Workflow::builder("w");
    other.node("a", |_: &mut NodeCtx<'_>| Ok::<(), ActionError>(()));
    other.node("b", |_: &mut NodeCtx<'_>| Ok::<(), ActionError>(()));
    other
        .node("c", |_: &mut NodeCtx<'_>| Ok::<(), ActionError>(()))
        .after(["a"]);
    assert_ne!(
        other.build().unwrap().fingerprint(),
        build(["a", "b"]).fingerprint()
    );
}

#[test]
fn schema_1_4_and_version_errors() {
    let v14 = br#"{"schemaVersion": "1.4", "workflow": {"tasks": [
        {"name": "x", "parents": [], "children": ["y"], "runtime": 0.001},
        {"name": "y", "parents": ["x"], "children": [], "runtime": 0.001}]}}"#;
    let imported = import_wfcommons(v14, TaskAction::Sleep { scale: 1.0 }).unwrap();
    assert_eq!(
        (imported.tasks, imported.edges, imported.missing_runtimes),
        (2, 1, 0)
    );
    let report = Executor::new(2).run(&imported.workflow);
    assert_eq!(report.status, RunStatus::Completed);
    assert!(report.duration.as_micros() >= 2000, "{:?}", report.duration);
    let future = br#"{"schemaVersion": "2.0", "workflow": {"tasks": []}}"#;
    assert!(matches!(
        import_wfcommons(future, TaskAction::Noop),
        Err(LoadError::UnsupportedSchema { .. })
    ));
    let broken = b"{\"workflow\": [";
    assert!(matches!(
        import_wfcommons(broken, TaskAction::Noop),
        Err(LoadError::Json { line: 1, .. })
    ));
}

/// Issue 14, bug 9: a name in `parents` or `children` that is no task of the file was dropped silently
/// (the JSON loader refuses the same); now it is reported.
#[test]
fn a_trace_naming_tasks_it_does_not_have_says_which() {
    let trace = br#"{"schemaVersion": "1.5", "name": "dangling", "workflow": {
        "specification": {"tasks": [
            {"name": "a", "id": "a", "parents": ["ghost"], "children": ["b", "phantom"]},
            {"name": "b", "id": "b", "parents": ["a"], "children": []}
        ], "files": []}
    }}"#;
    let imported = import_wfcommons(trace, TaskAction::Noop).unwrap();
    assert_eq!(
        imported.unknown_tasks,
        [
            ("a".to_string(), "ghost".to_string()),
            ("a".to_string(), "phantom".to_string())
        ]
    );
    assert_eq!((imported.tasks, imported.edges), (2, 1));
    assert!(imported.disagreements.is_empty());
}

/// The traces of `../shared/wfcommons` (beside the clone). CI sets `FLOWMEM_REQUIRE_WFCOMMONS=1`, so a
/// missing folder fails there; elsewhere the test says it checked nothing.
fn wfcommons_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/wfcommons");
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("FLOWMEM_REQUIRE_WFCOMMONS").is_none_or(|v| v == "0"),
        "FLOWMEM_REQUIRE_WFCOMMONS is set and {} is absent",
        dir.display()
    );
    None
}

#[test]
fn every_wfcommons_trace_imports_and_runs() {
    let Some(dir) = wfcommons_dir() else {
        println!(
            "SKIPPED: ../shared/wfcommons is absent, no trace was checked (set FLOWMEM_REQUIRE_WFCOMMONS=1 \
             to make this a failure, as CI does)"
        );
        return;
    };
    // tasks and edges per file, as the folder's README lists them.
    let expected = [
        ("helloworld-chain-5-chameleon.json", 5, 4),
        ("helloworld-forkjoin-10-chameleon.json", 10, 16),
        ("montage-chameleon-2mass-005d-001.json", 58, 114),
        ("montage-chameleon-2mass-01d-001.json", 103, 231),
        ("montage-chameleon-dss-15d-001.json", 2122, 6114),
        ("epigenomics-chameleon-ilmn-6seq-50k-001.json", 1695, 2108),
        ("1000genome-chameleon-2ch-100k-001.json", 52, 76),
        ("1000genome-chameleon-22ch-250k-001.json", 902, 1166),
    ];
    let executor = Executor::new(2);
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let imported = import_wfcommons_file(&path, TaskAction::Noop)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        if let Some((_, tasks, edges)) = expected.iter().find(|(f, ..)| *f == file) {
            assert_eq!((imported.tasks, imported.edges), (*tasks, *edges), "{file}");
        }
        assert_eq!(imported.unknown_tasks, [], "{file}");
        let report = executor.run(&imported.workflow);
        assert_eq!(report.status, RunStatus::Completed, "{file}");
        assert_eq!(
            imported.workflow.to_dot().matches(" -> ").count(),
            imported.edges
        );
        seen += 1;
    }
    assert!(seen >= expected.len(), "{seen} traces in {}", dir.display());
}

#[test]
fn built_in_actions_run_from_a_definition_without_code() {
    let text = r#"{"name": "builtins", "nodes": [
        {"name": "nap", "action": "sleep:3ms"},
        {"name": "burn", "action": "spin:1ms", "after": ["nap"]},
        {"name": "shaky", "action": "flaky:2", "after": ["burn"], "retry": {"max_retries": 2}},
        {"name": "boom", "action": "fail:disk full", "after": ["shaky"]}
    ]}"#;
    let w = Workflow::from_json(text).unwrap();
    let report = Executor::new(1).run(&w);
    assert_eq!(report.status, RunStatus::Failed);
    let node = |n: &str| report.node(n).unwrap();
    assert!(node("nap").duration >= std::time::Duration::from_millis(3));
    assert_eq!(node("shaky").attempts, 3);
    assert_eq!(node("shaky").status, flowmem_engine::NodeStatus::Completed);
    assert_eq!(node("boom").error.as_ref().unwrap().message(), "disk full");

    let bad = Workflow::from_json(
        r#"{"name": "b", "nodes": [{"name": "nap", "action": "sleep:forever"}]}"#,
    )
    .unwrap_err();
    assert!(matches!(bad, LoadError::BadActionArgument { .. }));
    assert_eq!(
        bad.to_string(),
        "node `nap` names the action `sleep:forever`: `forever` is not a duration (a number and a \
         unit: 250ms, 1.5s)"
    );
    let unknown =
        Workflow::from_json(r#"{"name": "b", "nodes": [{"name": "x", "action": "nap:1s"}]}"#)
            .unwrap_err();
    assert!(unknown.to_string().contains("sleep:…"), "{unknown}");
}

#[test]
fn a_definition_written_back_reads_as_the_same_workflow() {
    let text = r#"{"name": "round-trip", "nodes": [
        {"name": "a", "action": "noop"},
        {"name": "b", "action": "double", "after": ["a"],
         "retry": {"max_retries": 2, "initial_ms": 10, "multiplier": 3.0, "max_delay_ms": 50, "jitter": false},
         "timeout_ms": 1000},
        {"name": "c", "action": "double", "after": ["b", "a"]}
    ]}"#;
    let r = registry();
    let w = Workflow::from_json_with(text, &r).unwrap();
    let written = w.to_json().unwrap();
    let again = Workflow::from_json_with(&written, &r).unwrap();
    assert_eq!(again.fingerprint(), w.fingerprint());
    assert_eq!(again.to_json().unwrap(), written);
    assert_eq!(again.dependencies("c").unwrap(), ["b", "a"]);
    let value: serde_json::Value = serde_json::from_str(&written).unwrap();
    assert_eq!(value["nodes"][1]["retry"]["multiplier"], 3.0);
    assert_eq!(value["nodes"][1]["timeout_ms"], 1000);
    assert!(value["nodes"][0].get("retry").is_none());

    let mut b = Workflow::builder("coded");
    b.node("closure", |_| Ok(()));
    let error = b.build().unwrap().to_json().unwrap_err();
    assert_eq!(error.node, "closure");
    assert!(error.to_string().contains("given in code"), "{error}");
}

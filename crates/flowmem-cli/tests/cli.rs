//! The real `flowmem` binary, end to end: every command, its output and its exit code, a run killed and
//! resumed from its store, and a damaged store.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

const BIN: &str = env!("CARGO_BIN_EXE_flowmem");

/// A scratch directory of this test, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("flowmem-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn flowmem(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    Command::new(BIN)
        .args(args.iter().map(|a| a.as_ref()))
        .output()
        .expect("the flowmem binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exited, not killed")
}

fn etl() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/etl.json")
}

fn trace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../flowmem/examples/data/fork-join.json")
}

#[test]
fn help_names_the_commands_and_the_exit_codes() {
    let out = flowmem(&[&"--help"]);
    assert_eq!(code(&out), 0);
    let help = text(&out.stdout);
    for word in [
        "run",
        "validate",
        "export",
        "inspect",
        "Exit codes: 0 done; 1",
    ] {
        assert!(help.contains(word), "{help}");
    }
    let out = flowmem(&[&"run"]);
    assert_eq!(code(&out), 2, "a missing FILE is a usage error");
    assert!(text(&out.stderr).contains("<FILE>"));
}

#[test]
fn a_definition_runs_and_reports() {
    let out = flowmem(&[&"run", &etl(), &"--workers", &"2"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let summary = text(&out.stdout);
    assert!(
        summary.starts_with("Completed: workflow `nightly-etl` (JSON definition, 8 nodes)"),
        "{summary}"
    );
    // `fetch_rates` is `flaky:2` with retries: 8 nodes, 10 attempts.
    assert!(
        summary.contains(
            "8 tasks run, 0 restored · 8 completed, 0 failed, 0 skipped, 0 cancelled · 10 attempts"
        ),
        "{summary}"
    );

    let out = flowmem(&[&"run", &etl(), &"--json"]);
    assert_eq!(code(&out), 0);
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("the report as JSON");
    assert_eq!(report["status"], "Completed");
    assert_eq!(report["workflow"], "nightly-etl");
    let nodes = report["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 8);
    let rates = nodes.iter().find(|n| n["name"] == "fetch_rates").unwrap();
    assert_eq!(rates["attempts"], 3);
}

#[test]
fn a_failed_run_exits_1_and_names_the_node() {
    let dir = Scratch::new("failed");
    let file = dir.file(
        "bad.json",
        r#"{"name": "doomed", "nodes": [
            {"name": "a", "action": "noop"},
            {"name": "b", "action": "fail:disk full", "after": ["a"]},
            {"name": "c", "action": "noop", "after": ["b"]},
            {"name": "d", "action": "sleep:1ms", "after": ["a"]}
        ]}"#,
    );
    let out = flowmem(&[&"run", &file, &"--keep-going"]);
    assert_eq!(code(&out), 1);
    let summary = text(&out.stdout);
    assert!(summary.starts_with("Failed:"), "{summary}");
    assert!(summary.contains("3 tasks run"), "{summary}");
    assert!(summary.contains("1 skipped"), "{summary}");
    assert!(
        summary.contains("failed: `b` after 1 attempts: Failed: disk full"),
        "{summary}"
    );
}

#[test]
fn validate_says_where_and_names_cycles() {
    let out = flowmem(&[&"validate", &etl()]);
    assert_eq!(code(&out), 0);
    assert!(
        text(&out.stdout).contains("8 nodes, 10 edges, 1 roots, longest chain 4 nodes"),
        "{}",
        text(&out.stdout)
    );
    let dir = Scratch::new("validate");
    let broken = dir.file("broken.json", "{\n  \"name\": \"x\",\n  \"nodes\": [\n    {\"name\": \"a\" \"action\": \"noop\"}\n  ]\n}\n");
    let out = flowmem(&[&"validate", &broken]);
    assert_eq!(code(&out), 2);
    let error = text(&out.stderr);
    assert!(error.contains("broken.json: line 4, column"), "{error}");
    let cyclic = dir.file(
        "cycle.json",
        r#"{"name": "loop", "nodes": [
            {"name": "a", "action": "noop", "after": ["c"]},
            {"name": "b", "action": "noop", "after": ["a"]},
            {"name": "c", "action": "noop", "after": ["b"]},
            {"name": "d", "action": "noop"}
        ]}"#,
    );
    let out = flowmem(&[&"validate", &cyclic]);
    assert_eq!(code(&out), 2);
    let error = text(&out.stderr);
    assert!(
        error.contains("cycle") && ["`a`", "`b`", "`c`"].iter().all(|n| error.contains(n)),
        "{error}"
    );
    assert!(!error.contains("`d`"), "{error}");
    let unknown = dir.file(
        "unknown.json",
        r#"{"name": "u", "nodes": [{"name": "a", "action": "teleport"}]}"#,
    );
    let out = flowmem(&[&"validate", &unknown]);
    assert_eq!(code(&out), 2);
    assert!(
        text(&out.stderr).contains("`teleport`, which is not registered"),
        "{}",
        text(&out.stderr)
    );
    let out = flowmem(&[&"validate", &dir.path("missing.json")]);
    assert_eq!(code(&out), 2);
    assert!(
        text(&out.stderr).contains("missing.json: No such file"),
        "{}",
        text(&out.stderr)
    );
    let neither = dir.file("neither.json", r#"{"hello": 1}"#);
    let out = flowmem(&[&"validate", &neither]);
    assert_eq!(code(&out), 2);
    assert!(text(&out.stderr).contains("neither a JSON workflow definition"));
}

#[test]
fn export_writes_dot_mermaid_and_a_definition_that_reads_back() {
    let dot = text(&flowmem(&[&"export", &etl(), &"--dot"]).stdout);
    assert!(
        dot.starts_with("digraph") && dot.contains("\"plan\""),
        "{dot}"
    );
    let mermaid = text(&flowmem(&[&"export", &etl(), &"--mermaid"]).stdout);
    assert!(mermaid.starts_with("flowchart"), "{mermaid}");
    let out = flowmem(&[&"export", &etl(), &"--dot", &"--mermaid"]);
    assert_eq!(code(&out), 2, "one format at a time");

    let dir = Scratch::new("export");
    let first = text(&flowmem(&[&"export", &etl(), &"--json"]).stdout);
    let written = dir.file("etl-again.json", &first);
    let second = text(&flowmem(&[&"export", &written, &"--json"]).stdout);
    assert_eq!(first, second);
    // A trace's tasks become built-in nodes, so the trace exports as a definition that runs.
    let from_trace = text(&flowmem(&[&"export", &trace(), &"--json", &"--tasks", &"noop"]).stdout);
    let from_trace = dir.file("trace.json", &from_trace);
    let out = flowmem(&[&"run", &from_trace]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("6 tasks run"));
}

#[test]
fn timeline_writes_one_bar_per_attempt() {
    let dir = Scratch::new("timeline");
    let svg = dir.path("run.svg");
    let out = flowmem(&[&"run", &etl(), &"--timeline", &svg]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("timeline: "),
        "{}",
        text(&out.stdout)
    );
    let image = std::fs::read_to_string(&svg).unwrap();
    assert!(image.starts_with("<svg") && image.trim_end().ends_with("</svg>"));
    assert_eq!(image.matches("<rect class=\"attempt").count(), 10);
    let out = flowmem(&[
        &"run",
        &etl(),
        &"--timeline",
        &dir.path("no/such/dir/run.svg"),
    ]);
    assert_eq!(code(&out), 4);
    assert!(
        text(&out.stderr).contains("run.svg"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_trace_runs_with_the_chosen_task_action() {
    let out = flowmem(&[&"run", &trace(), &"--tasks", &"noop", &"--json"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["nodes"].as_array().unwrap().len(), 6);
    let out = flowmem(&[&"run", &trace(), &"--scale", &"-1"]);
    assert_eq!(code(&out), 2);
    assert!(text(&out.stderr).contains("--scale -1"));
}

/// A chain of `n` nodes, each sleeping `ms`.
fn chain(dir: &Scratch, n: usize, ms: u64) -> PathBuf {
    let nodes: Vec<String> = (0..n)
        .map(|i| {
            let after = if i == 0 {
                String::new()
            } else {
                format!(r#", "after": ["n{}"]"#, i - 1)
            };
            format!(r#"{{"name": "n{i}", "action": "sleep:{ms}ms"{after}}}"#)
        })
        .collect();
    dir.file(
        "chain.json",
        &format!(r#"{{"name": "chain", "nodes": [{}]}}"#, nodes.join(",")),
    )
}

fn inspect_json(store: &Path) -> serde_json::Value {
    let out = flowmem(&[&"inspect", &store, &"--json"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_run_killed_mid_way_resumes_from_its_store() {
    let dir = Scratch::new("resume");
    let file = chain(&dir, 60, 25);
    let store = dir.path("runs.fms");
    let mut child = Command::new(BIN)
        .arg("run")
        .arg(&file)
        .arg("--store")
        .arg(&store)
        .args(["--workers", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it (SIGKILL) once some nodes are checkpointed, well before the chain's 1.5 s ends.
    let limit = Instant::now() + Duration::from_secs(60);
    loop {
        std::thread::sleep(Duration::from_millis(20));
        let done = std::fs::metadata(&store).is_ok()
            && inspect_json(&store)["runs"][0]["checkpointed"]
                .as_u64()
                .unwrap_or(0)
                >= 5;
        if done {
            break;
        }
        assert!(Instant::now() < limit, "no checkpoint within a minute");
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(
        status.code().is_none(),
        "killed by a signal, not finished: {status:?}"
    );
    let seen = inspect_json(&store);
    let checkpointed = seen["runs"][0]["checkpointed"].as_u64().unwrap();
    assert!((5..60).contains(&checkpointed), "{seen}");

    let out = flowmem(&[&"run", &file, &"--store", &store, &"--json"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let nodes = report["nodes"].as_array().unwrap();
    let restored = nodes.iter().filter(|n| n["restored"] == true).count() as u64;
    let ran = nodes
        .iter()
        .filter(|n| n["attempts"].as_u64() > Some(0))
        .count() as u64;
    assert!(
        restored >= checkpointed,
        "restored {restored}, checkpointed {checkpointed}"
    );
    assert_eq!(restored + ran, 60, "every node once: restored or run");
    assert_eq!(report["status"], "Completed");
    let seen = inspect_json(&store);
    assert_eq!(seen["runs"][0]["checkpointed"], 60);
    assert_eq!(seen["runs"][0]["workflow"], "chain");

    // Run again: nothing runs; --fresh runs it all.
    let out = flowmem(&[&"run", &file, &"--store", &store]);
    assert!(
        text(&out.stdout).contains("0 tasks run, 60 restored"),
        "{}",
        text(&out.stdout)
    );
    let out = flowmem(&[
        &"run",
        &file,
        &"--store",
        &store,
        &"--fresh",
        &"--workers",
        &"2",
    ]);
    assert!(
        text(&out.stdout).contains("60 tasks run, 0 restored"),
        "{}",
        text(&out.stdout)
    );
    let human = text(&flowmem(&[&"inspect", &store]).stdout);
    assert!(
        human.contains("60/60 nodes checkpointed (every node checkpointed)"),
        "{human}"
    );
}

#[test]
fn the_store_of_another_workflow_and_a_damaged_store_exit_3() {
    let dir = Scratch::new("store");
    let store = dir.path("runs.fms");
    let out = flowmem(&[&"run", &etl(), &"--store", &store, &"--run-id", &"shared"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let other = chain(&dir, 3, 1);
    let out = flowmem(&[&"run", &other, &"--store", &store, &"--run-id", &"shared"]);
    assert_eq!(code(&out), 3);
    assert!(
        text(&out.stderr).contains("nightly-etl"),
        "{}",
        text(&out.stderr)
    );

    // Damage a byte in the middle of the file: records after it are valid, so it is damage, not a
    // torn tail.
    let mut bytes = std::fs::read(&store).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xFF;
    std::fs::write(&store, &bytes).unwrap();
    let out = flowmem(&[&"inspect", &store]);
    assert_eq!(code(&out), 3);
    let error = text(&out.stderr);
    assert!(error.contains("offset"), "{error}");
    let out = flowmem(&[&"run", &etl(), &"--store", &store]);
    assert_eq!(code(&out), 3);

    // A torn tail (a crash mid-append) is reported, not an error.
    let store = dir.path("torn.fms");
    assert_eq!(code(&flowmem(&[&"run", &etl(), &"--store", &store])), 0);
    let mut bytes = std::fs::read(&store).unwrap();
    bytes.truncate(bytes.len() - 5);
    std::fs::write(&store, &bytes).unwrap();
    let out = flowmem(&[&"inspect", &store]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("torn tail: "),
        "{}",
        text(&out.stdout)
    );
}

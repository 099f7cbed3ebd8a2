//! DAG shapes for the engine benches, as plain adjacency lists that every executor under test (flowmem,
//! tokio, rayon, dagx) is built from: generated chains, fan-outs and layers, and the WfCommons traces of
//! `../shared/wfcommons` (read straight from their JSON here; the engine's own importer is separate).

use std::{collections::HashMap, path::Path, sync::Arc};

use flowmem_engine::{Action, ActionError, NodeCtx, Workflow};

/// The workload of the allocation counts (target E2): defined once, in `flowmem-testing`, for the
/// engine's zero-allocation test and the counts alike.
pub use flowmem_testing::engine::busy_workflow;

/// A DAG: node `i` depends on `deps[i]` (indices of earlier or later nodes; acyclic).
#[derive(Debug, Clone)]
pub struct Dag {
    /// Its name.
    pub name: String,
    /// Node names.
    pub names: Vec<String>,
    /// Dependencies of each node.
    pub deps: Vec<Vec<u32>>,
}

impl Dag {
    fn new(name: &str, n: usize) -> Dag {
        Dag {
            name: name.to_string(),
            names: (0..n).map(|i| format!("n{i}")).collect(),
            deps: vec![Vec::new(); n],
        }
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether there is no node.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Number of edges.
    pub fn edges(&self) -> usize {
        self.deps.iter().map(Vec::len).sum()
    }

    /// `n` nodes, each depending on the one before.
    pub fn chain(n: usize) -> Dag {
        let mut d = Dag::new("chain", n);
        for i in 1..n {
            d.deps[i].push(i as u32 - 1);
        }
        d
    }

    /// One root and `n` nodes depending on it.
    pub fn fan_out(n: usize) -> Dag {
        let mut d = Dag::new("fan_out", n + 1);
        for i in 1..=n {
            d.deps[i].push(0);
        }
        d
    }

    /// `layers` layers of `width` nodes; each node past the first layer depends on two of the layer
    /// before (in-degree 2, so that dagx's fixed-arity dependencies can express it too).
    pub fn layered(layers: usize, width: usize) -> Dag {
        let mut d = Dag::new("layered", layers * width);
        for l in 1..layers {
            for i in 0..width {
                let prev = (l - 1) * width;
                d.deps[l * width + i] = vec![(prev + i) as u32, (prev + (i + 1) % width) as u32];
            }
        }
        d
    }

    /// A montage-like mosaic workflow of `tiles` images: project each tile, fit each overlapping pair,
    /// one concatenation of all fits (fan-in), one background model, a correction per tile (depending on
    /// its projection and the model), one table of all corrections, then add, shrink and render.
    pub fn montage_like(tiles: usize) -> Dag {
        let mut names = Vec::new();
        let mut deps: Vec<Vec<u32>> = Vec::new();
        let mut add = |name: String, d: Vec<u32>| {
            names.push(name);
            deps.push(d);
            deps.len() as u32 - 1
        };
        let project: Vec<u32> = (0..tiles)
            .map(|i| add(format!("mProject{i}"), vec![]))
            .collect();
        let fits: Vec<u32> = (0..tiles * 2)
            .map(|i| {
                let a = project[i % tiles];
                let b = project[(i / 2 + 1 + i % 3) % tiles];
                add(
                    format!("mDiffFit{i}"),
                    if a == b { vec![a] } else { vec![a, b] },
                )
            })
            .collect();
        let concat = add("mConcatFit".into(), fits);
        let model = add("mBgModel".into(), vec![concat]);
        let background: Vec<u32> = (0..tiles)
            .map(|i| add(format!("mBackground{i}"), vec![project[i], model]))
            .collect();
        let table = add("mImgtbl".into(), background);
        let sum = add("mAdd".into(), vec![table]);
        let shrink = add("mShrink".into(), vec![sum]);
        add("mViewer".into(), vec![shrink]);
        Dag {
            name: "montage_like".into(),
            names,
            deps,
        }
    }

    /// A WfCommons WfFormat file's DAG: tasks by id, dependencies the union of each task's `parents` and
    /// of the tasks naming it among their `children`.
    pub fn from_wfcommons(path: &Path) -> Result<Dag, String> {
        let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let json: serde_json::Value =
            serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let workflow = &json["workflow"];
        let tasks = workflow["specification"]["tasks"]
            .as_array()
            .or_else(|| workflow["tasks"].as_array())
            .ok_or_else(|| format!("{}: no workflow tasks", path.display()))?;
        let id = |t: &serde_json::Value| {
            t["id"]
                .as_str()
                .or_else(|| t["name"].as_str())
                .map(str::to_string)
        };
        let names: Vec<String> = tasks.iter().filter_map(id).collect();
        let index: HashMap<&str, u32> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i as u32))
            .collect();
        let mut deps: Vec<Vec<u32>> = vec![Vec::new(); names.len()];
        let list = |t: &serde_json::Value, field: &str| -> Vec<u32> {
            t[field]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().and_then(|s| index.get(s).copied()))
                        .collect()
                })
                .unwrap_or_default()
        };
        for (i, t) in tasks.iter().enumerate() {
            for p in list(t, "parents") {
                if !deps[i].contains(&p) {
                    deps[i].push(p);
                }
            }
            for c in list(t, "children") {
                if !deps[c as usize].contains(&(i as u32)) {
                    deps[c as usize].push(i as u32);
                }
            }
        }
        let name = path
            .file_stem()
            .map_or("wfcommons".into(), |s| s.to_string_lossy().into_owned());
        Ok(Dag { name, names, deps })
    }

    /// The DAG as a flowmem workflow whose nodes all run `action` (one shared allocation).
    pub fn to_workflow(&self, action: Arc<dyn Action>) -> Workflow {
        let mut b = Workflow::builder(self.name.clone());
        for (name, deps) in self.names.iter().zip(&self.deps) {
            b.node_shared(name.clone(), Arc::clone(&action))
                .after(deps.iter().map(|d| self.names[*d as usize].as_str()));
        }
        b.build().expect("bench DAGs are valid")
    }

    /// Dependents of each node.
    pub fn dependents(&self) -> Vec<Vec<u32>> {
        let mut out = vec![Vec::new(); self.len()];
        for (i, deps) in self.deps.iter().enumerate() {
            for d in deps {
                out[*d as usize].push(i as u32);
            }
        }
        out
    }
}

/// The no-op action of the benches.
pub fn noop() -> Arc<dyn Action> {
    Arc::new(|_: &mut NodeCtx<'_>| Ok::<(), ActionError>(()))
}

/// `../shared/wfcommons` beside the repository, if present.
pub fn wfcommons_dir() -> Option<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/wfcommons");
    dir.is_dir().then_some(dir)
}

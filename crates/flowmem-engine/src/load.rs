//! Workflows from files: a JSON definition whose nodes name registered actions, and WfCommons WfFormat
//! traces (schema 1.4 to 1.6) with every task mapped to one chosen action.

use std::{
    borrow::Cow,
    collections::{HashMap, HashSet},
    fmt,
    path::{Path, PathBuf},
    sync::{Arc, OnceLock, PoisonError, RwLock},
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize};

use crate::{Action, ActionError, DefinitionError, NodeCtx, RetryPolicy, Workflow};

/// Why a workflow file could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The text is not valid JSON, or not of the expected shape.
    #[error("{}line {line}, column {column}: {message}", origin(path))]
    Json {
        /// The file, when loaded from one.
        path: Option<PathBuf>,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A node names an action the registry does not have.
    #[error("node `{node}` names the action `{action}`, which is not registered (registered: {})", known.join(", "))]
    UnknownAction {
        /// The node.
        node: String,
        /// The action it names.
        action: String,
        /// The registered names, sorted.
        known: Vec<String>,
    },
    /// A node names a family of actions (`sleep:…`) with an argument the family refuses.
    #[error("node `{node}` names the action `{action}`: {message}")]
    BadActionArgument {
        /// The node.
        node: String,
        /// The action it names.
        action: String,
        /// What is wrong with the argument.
        message: String,
    },
    /// A WfFormat file of a schema version this build does not read.
    #[error("WfFormat schema version {version} is not supported (1.4 to 1.6 are)")]
    UnsupportedSchema {
        /// The version found.
        version: String,
    },
    /// The graph the file describes is not a valid workflow.
    #[error(transparent)]
    Definition(#[from] DefinitionError),
}

fn origin(path: &Option<PathBuf>) -> String {
    path.as_ref()
        .map_or(String::new(), |p| format!("{}: ", p.display()))
}

fn json_error(e: serde_json::Error, path: Option<&Path>) -> LoadError {
    // serde_json's text ends with the position, which the error already gives in front.
    let text = e.to_string();
    let position = format!(" at line {} column {}", e.line(), e.column());
    let message = text.strip_suffix(&position).unwrap_or(&text).to_string();
    LoadError::Json {
        path: path.map(Path::to_path_buf),
        line: e.line(),
        column: e.column(),
        message,
    }
}

/// Makes the action a family's name and argument stand for (`sleep` and `250ms` for `sleep:250ms`), or
/// says what is wrong with the argument.
type Family = Arc<dyn Fn(&str) -> Result<Arc<dyn Action>, String> + Send + Sync>;

/// Actions by name, for workflows loaded from files. Use the process-wide [`registry()`] (which has the
/// built-in actions: `noop`, `sleep:DURATION`, `spin:DURATION`, `fail`, `flaky:N`, `panic`; see
/// [`Registry::with_builtins`]) or one of your own.
#[derive(Default)]
pub struct Registry {
    actions: RwLock<HashMap<String, Arc<dyn Action>>>,
    /// Families of actions named `family:argument`.
    families: RwLock<HashMap<String, Family>>,
}

/// The process-wide registry (created on first use, with the built-in actions).
pub fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Registry::with_builtins)
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// A registry with the built-in actions, which a JSON definition can name without any code:
    ///
    /// | name | does |
    /// |---|---|
    /// | `noop` | nothing |
    /// | `sleep:DURATION` | sleeps, holding its worker (an I/O stand-in), e.g. `sleep:250ms` |
    /// | `spin:DURATION` | busy-waits (a CPU stand-in), e.g. `spin:2ms` |
    /// | `fail`, `fail:MESSAGE` | fails (retries apply) |
    /// | `flaky:N` | fails its first `N` attempts, then completes |
    /// | `panic`, `panic:MESSAGE` | panics (the node fails with kind `Panicked`) |
    ///
    /// A duration is a number and a unit: `ns`, `us` (or `µs`), `ms`, `s`, `m`, `h` (`1.5s`, `250ms`).
    ///
    /// ```
    /// use flowmem_engine::{Executor, NodeStatus, Registry, Workflow};
    ///
    /// let workflow = Workflow::from_json_with(r#"{"name": "demo", "nodes": [
    ///     {"name": "wait", "action": "sleep:2ms"},
    ///     {"name": "retry", "action": "flaky:1", "after": ["wait"], "retry": {"max_retries": 1}}
    /// ]}"#, &Registry::with_builtins())?;
    /// let report = Executor::new(1).run(&workflow);
    /// assert_eq!(report.node("retry").map(|n| (n.status, n.attempts)), Some((NodeStatus::Completed, 2)));
    /// # Ok::<(), flowmem_engine::LoadError>(())
    /// ```
    pub fn with_builtins() -> Self {
        let registry = Self::new();
        crate::builtin::register_builtins(&registry);
        registry
    }

    /// Registers a family of actions: a node's action `name:argument` is made by `make(argument)`, which
    /// may refuse the argument with a message (the load fails with
    /// [`LoadError::BadActionArgument`] naming the node). An action registered under the whole name wins.
    pub fn register_family(
        &self,
        name: impl Into<String>,
        make: impl Fn(&str) -> Result<Arc<dyn Action>, String> + Send + Sync + 'static,
    ) {
        self.families
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.into(), Arc::new(make));
    }

    /// The action `name` stands for: registered under it, or made by the family before its `:`.
    /// `Ok(None)` if neither is registered.
    fn resolve(&self, name: &str) -> Result<Option<Arc<dyn Action>>, String> {
        if let Some(action) = self.get(name) {
            return Ok(Some(action));
        }
        let Some((family, argument)) = name.split_once(':') else {
            return Ok(None);
        };
        let make = self
            .families
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(family)
            .cloned();
        make.map(|make| make(argument)).transpose()
    }

    /// Registers `action` under `name`, returning the action it replaces.
    pub fn register(
        &self,
        name: impl Into<String>,
        action: impl Action,
    ) -> Option<Arc<dyn Action>> {
        self.register_shared(name, Arc::new(action))
    }

    /// Registers a shared action under `name`, returning the action it replaces.
    pub fn register_shared(
        &self,
        name: impl Into<String>,
        action: Arc<dyn Action>,
    ) -> Option<Arc<dyn Action>> {
        self.actions
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.into(), action)
    }

    /// The action registered under `name`.
    pub fn get(&self, name: &str) -> Option<Arc<dyn Action>> {
        self.actions
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    /// The registered names, sorted; a family shows as `name:…`.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .actions
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect();
        names.extend(
            self.families
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .keys()
                .map(|f| format!("{f}:…")),
        );
        names.sort();
        names
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("actions", &self.names())
            .finish()
    }
}

/// The JSON definition of a workflow.
#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Definition {
    name: String,
    nodes: Vec<NodeDefinition>,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct NodeDefinition {
    name: String,
    action: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    after: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retry: Option<RetryDefinition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    timeout_ms: Option<u64>,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RetryDefinition {
    max_retries: u32,
    #[serde(default)]
    initial_ms: u64,
    #[serde(default)]
    multiplier: Option<f64>,
    #[serde(default)]
    max_delay_ms: Option<u64>,
    #[serde(default = "yes")]
    jitter: bool,
}

/// Why a workflow cannot be written as a JSON definition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "node `{node}` of workflow `{workflow}` runs an action given in code, which a JSON definition cannot name (only nodes loaded from a JSON definition know their action's registry name)"
)]
pub struct UnnamedAction {
    /// The workflow.
    pub workflow: String,
    /// The first node whose action has no registry name.
    pub node: String,
}

fn yes() -> bool {
    true
}

impl Workflow {
    /// A workflow from its JSON definition, each node's `action` looked up in the process-wide
    /// [`registry()`].
    ///
    /// ```
    /// use flowmem_engine::{ActionError, NodeCtx, Workflow, registry};
    ///
    /// registry().register("noop", |_: &mut NodeCtx<'_>| Ok::<(), ActionError>(()));
    /// let workflow = Workflow::from_json(r#"{
    ///     "name": "etl",
    ///     "nodes": [
    ///         {"name": "extract", "action": "noop"},
    ///         {"name": "load", "action": "noop", "after": ["extract"],
    ///          "retry": {"max_retries": 3, "initial_ms": 100}, "timeout_ms": 5000}
    ///     ]
    /// }"#)?;
    /// assert_eq!(workflow.dependencies("load").unwrap(), ["extract"]);
    ///
    /// let error = Workflow::from_json("{\n  \"name\": 7\n}").unwrap_err();
    /// assert!(error.to_string().starts_with("line 2, column"));
    /// # Ok::<(), flowmem_engine::LoadError>(())
    /// ```
    pub fn from_json(text: &str) -> Result<Workflow, LoadError> {
        Self::from_json_with(text, registry())
    }

    /// [`from_json`](Self::from_json) with actions from `registry`.
    pub fn from_json_with(text: &str, registry: &Registry) -> Result<Workflow, LoadError> {
        Self::definition(text, registry, None)
    }

    /// A workflow from a JSON definition file (actions from the process-wide registry).
    pub fn from_json_file(path: impl AsRef<Path>) -> Result<Workflow, LoadError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::definition(&text, registry(), Some(path))
    }

    /// The workflow as a JSON definition (pretty-printed), which [`from_json`](Self::from_json) reads
    /// back into the same workflow: names, actions, dependencies in order, retries (whole milliseconds)
    /// and timeouts.
    ///
    /// ```
    /// use flowmem_engine::Workflow;
    ///
    /// let text = r#"{"name": "etl", "nodes": [
    ///     {"name": "extract", "action": "sleep:1ms"},
    ///     {"name": "load", "action": "noop", "after": ["extract"], "timeout_ms": 500}
    /// ]}"#;
    /// let workflow = Workflow::from_json(text)?;
    /// let again = Workflow::from_json(&workflow.to_json()?)?;
    /// assert_eq!(again.fingerprint(), workflow.fingerprint());
    /// assert_eq!(again.to_json()?, workflow.to_json()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`UnnamedAction`] naming the first node whose action was given in code (it has no registry name).
    pub fn to_json(&self) -> Result<String, UnnamedAction> {
        let g = &self.graph;
        let nodes = (0..g.nodes.len())
            .map(|i| {
                let def = &g.nodes[i];
                let action = def.registered_as.as_deref().ok_or_else(|| UnnamedAction {
                    workflow: g.name.to_string(),
                    node: def.name.to_string(),
                })?;
                let retry = (def.retry.max_retries() > 0).then(|| {
                    let (initial, multiplier, max_delay, jitter) = def.retry.parts();
                    RetryDefinition {
                        max_retries: def.retry.max_retries(),
                        initial_ms: initial.as_millis() as u64,
                        multiplier: Some(multiplier),
                        max_delay_ms: Some(max_delay.as_millis() as u64),
                        jitter,
                    }
                });
                Ok(NodeDefinition {
                    name: def.name.to_string(),
                    action: action.to_string(),
                    after: g
                        .deps(i as u32)
                        .iter()
                        .map(|d| g.nodes[*d as usize].name.to_string())
                        .collect(),
                    retry,
                    timeout_ms: def.timeout.map(|t| t.as_millis() as u64),
                })
            })
            .collect::<Result<Vec<_>, UnnamedAction>>()?;
        let definition = Definition {
            name: g.name.to_string(),
            nodes,
        };
        Ok(serde_json::to_string_pretty(&definition).expect("a definition is plain JSON"))
    }

    fn definition(
        text: &str,
        registry: &Registry,
        path: Option<&Path>,
    ) -> Result<Workflow, LoadError> {
        let def: Definition = serde_json::from_str(text).map_err(|e| json_error(e, path))?;
        let mut builder = Workflow::builder(def.name);
        for node in def.nodes {
            let action = registry
                .resolve(&node.action)
                .map_err(|message| LoadError::BadActionArgument {
                    node: node.name.clone(),
                    action: node.action.clone(),
                    message,
                })?
                .ok_or_else(|| LoadError::UnknownAction {
                    node: node.name.clone(),
                    action: node.action.clone(),
                    known: registry.names(),
                })?;
            let mut handle = builder
                .node_shared(node.name, action)
                .registered_as(&node.action)
                .after(&node.after);
            if let Some(r) = node.retry {
                let mut policy =
                    RetryPolicy::exponential(r.max_retries, Duration::from_millis(r.initial_ms))
                        .jitter(r.jitter);
                if let Some(m) = r.multiplier {
                    policy = policy.multiplier(m);
                }
                if let Some(max) = r.max_delay_ms {
                    policy = policy.max_delay(Duration::from_millis(max));
                }
                handle = handle.retry(policy);
            }
            if let Some(ms) = node.timeout_ms {
                handle.timeout(Duration::from_millis(ms));
            }
        }
        Ok(builder.build()?)
    }
}

/// What each task of an imported WfCommons trace does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TaskAction {
    /// Nothing (measures the engine alone).
    Noop,
    /// Busy-waits for the task's recorded runtime times `scale` (CPU-bound stand-in).
    Spin {
        /// Factor applied to each runtime (e.g. 0.001: a second becomes a millisecond).
        scale: f64,
    },
    /// Sleeps for the task's recorded runtime times `scale` (I/O-bound stand-in).
    Sleep {
        /// Factor applied to each runtime.
        scale: f64,
    },
}

/// A WfCommons trace imported as a workflow.
#[derive(Debug, Clone)]
pub struct WfImport {
    /// The workflow: one node per task, named by the task's id.
    pub workflow: Workflow,
    /// The file's `schemaVersion`.
    pub schema_version: String,
    /// Tasks imported.
    pub tasks: usize,
    /// Dependency edges (the union of `parents` and `children`).
    pub edges: usize,
    /// Edges listed on one side only (`(parent, child)`, a `parents` entry without the matching
    /// `children` entry or the reverse); they are imported.
    pub disagreements: Vec<(String, String)>,
    /// Names in a task's `parents` or `children` that are no task of the file (`(task, name)`, sorted);
    /// those edges are not imported.
    pub unknown_tasks: Vec<(String, String)>,
    /// Tasks with no recorded runtime (they run for zero time under `Spin` and `Sleep`).
    pub missing_runtimes: usize,
}

#[derive(Deserialize)]
struct WfFile<'a> {
    #[serde(rename = "schemaVersion", borrow, default)]
    schema_version: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    workflow: WfWorkflow<'a>,
}

#[derive(Deserialize)]
struct WfWorkflow<'a> {
    #[serde(borrow, default)]
    specification: Option<WfTasks<'a>>,
    #[serde(borrow, default)]
    execution: Option<WfExecution<'a>>,
    /// Schema 1.4: tasks directly under `workflow`.
    #[serde(borrow, default)]
    tasks: Option<Vec<WfTask<'a>>>,
}

#[derive(Deserialize)]
struct WfTasks<'a> {
    #[serde(borrow)]
    tasks: Vec<WfTask<'a>>,
}

#[derive(Deserialize)]
struct WfTask<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    parents: Vec<Cow<'a, str>>,
    #[serde(borrow, default)]
    children: Vec<Cow<'a, str>>,
    /// Schema 1.4 keeps the runtime on the task.
    #[serde(rename = "runtimeInSeconds", alias = "runtime", default)]
    runtime: Option<f64>,
}

#[derive(Deserialize)]
struct WfExecution<'a> {
    #[serde(borrow, default)]
    tasks: Vec<WfExecTask<'a>>,
}

#[derive(Deserialize)]
struct WfExecTask<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(rename = "runtimeInSeconds", alias = "runtime", default)]
    runtime: Option<f64>,
}

fn spin(d: Duration) {
    let start = Instant::now();
    while start.elapsed() < d {
        std::hint::spin_loop();
    }
}

/// Imports a WfCommons WfFormat trace (schema 1.4 to 1.6): every task becomes a node running `action`;
/// dependencies are the union of `parents` and `children` (disagreements are reported, not fatal).
///
/// ```no_run
/// use flowmem_engine::{TaskAction, import_wfcommons_file};
///
/// let imported = import_wfcommons_file(
///     "../shared/wfcommons/montage-chameleon-dss-15d-001.json",
///     TaskAction::Spin { scale: 0.0001 },
/// )?;
/// println!("{} tasks, {} edges", imported.tasks, imported.edges);
/// # Ok::<(), flowmem_engine::LoadError>(())
/// ```
pub fn import_wfcommons(json: &[u8], action: TaskAction) -> Result<WfImport, LoadError> {
    import(json, action, None)
}

/// [`import_wfcommons`] from a file.
pub fn import_wfcommons_file(
    path: impl AsRef<Path>,
    action: TaskAction,
) -> Result<WfImport, LoadError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    import(&bytes, action, Some(path))
}

fn import(json: &[u8], action: TaskAction, path: Option<&Path>) -> Result<WfImport, LoadError> {
    let file: WfFile<'_> = serde_json::from_slice(json).map_err(|e| json_error(e, path))?;
    let schema_version = file
        .schema_version
        .as_deref()
        .unwrap_or("unknown")
        .to_string();
    if let Some(v) = &file.schema_version
        && !["1.4", "1.5", "1.6"].contains(&v.as_ref())
    {
        return Err(LoadError::UnsupportedSchema {
            version: v.to_string(),
        });
    }
    let tasks = match (file.workflow.specification, file.workflow.tasks) {
        (Some(spec), _) => spec.tasks,
        (None, Some(tasks)) => tasks,
        (None, None) => Vec::new(),
    };
    let key = |t: &WfTask<'_>| -> String { t.id.as_deref().unwrap_or(&t.name).to_string() };
    let names: Vec<String> = tasks.iter().map(key).collect();
    let index: HashMap<&str, usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    let mut runtimes: HashMap<&str, f64> = HashMap::new();
    for (t, name) in tasks.iter().zip(&names) {
        if let Some(r) = t.runtime {
            runtimes.insert(name.as_str(), r);
        }
    }
    if let Some(exec) = &file.workflow.execution {
        for t in &exec.tasks {
            if let (Some(r), Some((name, _))) = (t.runtime, index.get_key_value(t.id.as_ref())) {
                runtimes.insert(name, r);
            }
        }
    }
    // Edges from both sides; an edge named on one side only is a disagreement.
    let mut from_parents: HashSet<(usize, usize)> = HashSet::new();
    let mut from_children: HashSet<(usize, usize)> = HashSet::new();
    let mut unknown_tasks: Vec<(String, String)> = Vec::new();
    for (i, t) in tasks.iter().enumerate() {
        for p in &t.parents {
            match index.get(p.as_ref()) {
                Some(&j) => drop(from_parents.insert((j, i))),
                None => unknown_tasks.push((names[i].clone(), p.to_string())),
            }
        }
        for c in &t.children {
            match index.get(c.as_ref()) {
                Some(&j) => drop(from_children.insert((i, j))),
                None => unknown_tasks.push((names[i].clone(), c.to_string())),
            }
        }
    }
    unknown_tasks.sort();
    unknown_tasks.dedup();
    let mut disagreements: Vec<(String, String)> = from_parents
        .symmetric_difference(&from_children)
        .map(|(p, c)| (names[*p].clone(), names[*c].clone()))
        .collect();
    disagreements.sort();
    let mut deps: Vec<Vec<usize>> = vec![Vec::new(); names.len()];
    for (p, c) in from_parents.union(&from_children) {
        deps[*c].push(*p);
    }
    // In file order, whatever the set's iteration order: importing a file twice gives the same workflow
    // (the same fingerprint, so a durable run of it resumes).
    deps.iter_mut().for_each(|d| d.sort_unstable());
    let edges = deps.iter().map(Vec::len).sum();
    let noop: Arc<dyn Action> = Arc::new(|_: &mut NodeCtx<'_>| Ok::<(), ActionError>(()));
    let mut missing_runtimes = 0;
    let workflow_name = file.name.as_deref().unwrap_or("wfcommons").to_string();
    let mut builder = Workflow::builder(workflow_name);
    for (i, name) in names.iter().enumerate() {
        let runtime = runtimes.get(name.as_str()).copied();
        missing_runtimes += usize::from(runtime.is_none());
        let seconds = runtime.unwrap_or(0.0).max(0.0);
        // Each task's action with the built-in name that stands for it, so that the workflow can be
        // written back as a JSON definition (`Workflow::to_json`).
        let (node_action, builtin): (Arc<dyn Action>, String) = match action {
            TaskAction::Noop => (Arc::clone(&noop), "noop".into()),
            TaskAction::Spin { scale } => {
                let d = Duration::try_from_secs_f64(seconds * scale).unwrap_or_default();
                let run = Arc::new(move |_: &mut NodeCtx<'_>| {
                    spin(d);
                    Ok::<(), ActionError>(())
                });
                (run, format!("spin:{}ns", d.as_nanos()))
            }
            TaskAction::Sleep { scale } => {
                let d = Duration::try_from_secs_f64(seconds * scale).unwrap_or_default();
                let run = Arc::new(move |_: &mut NodeCtx<'_>| {
                    std::thread::sleep(d);
                    Ok::<(), ActionError>(())
                });
                (run, format!("sleep:{}ns", d.as_nanos()))
            }
        };
        builder
            .node_shared(name.clone(), node_action)
            .registered_as(&builtin)
            .after(deps[i].iter().map(|d| names[*d].as_str()));
    }
    Ok(WfImport {
        workflow: builder.build()?,
        schema_version,
        tasks: names.len(),
        edges,
        disagreements,
        unknown_tasks,
        missing_runtimes,
    })
}

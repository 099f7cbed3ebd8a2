//! Workflow definitions: the builder, validation (duplicates, unknown dependencies, cycles), and the graph
//! the executor walks.

use std::{
    collections::HashMap,
    fmt,
    sync::{
        Arc, Mutex, PoisonError, Weak,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use crate::{
    Action, ActionError, AsyncAction, AsyncCtx, DefinitionError, NodeCtx, RetryPolicy,
    action::Work, executor::StatePool,
};

/// A validated workflow: named nodes, each with an action, its dependencies, a retry policy and an optional
/// timeout. Cheap to clone (shared); immutable.
///
/// A workflow owns its names (its own and its nodes'): they are not interned, so a program that builds
/// workflows with generated names (`shard-{n}`) gets their memory back when it drops them. Dropping the
/// last handle also drops the run states executors recycled for it (the `pooled_node_state` memory
/// option); a run still in flight keeps what it needs until it ends.
///
/// ```
/// use flowmem_engine::{ActionError, NodeCtx, Workflow};
///
/// let mut builder = Workflow::builder("etl");
/// builder.node("extract", |ctx: &mut NodeCtx<'_>| {
///     ctx.set_output(1200u64);
///     Ok::<(), ActionError>(())
/// });
/// builder.node("load", |_: &mut NodeCtx<'_>| Ok(())).after(["extract"]);
/// let workflow = builder.build()?;
/// assert_eq!(workflow.len(), 2);
/// assert_eq!(workflow.dependencies("load").unwrap(), ["extract"]);
/// # Ok::<(), flowmem_engine::DefinitionError>(())
/// ```
pub struct Workflow {
    pub(crate) graph: Arc<Graph>,
}

impl Clone for Workflow {
    fn clone(&self) -> Self {
        self.graph.handles.fetch_add(1, Ordering::Relaxed);
        Workflow {
            graph: Arc::clone(&self.graph),
        }
    }
}

impl Drop for Workflow {
    fn drop(&mut self) {
        if self.graph.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.graph.let_go();
        }
    }
}

/// The graph of a workflow, in the layout the executor wants: nodes by index, dependencies and dependents
/// as compressed adjacency lists.
pub(crate) struct Graph {
    pub(crate) name: Arc<str>,
    pub(crate) nodes: Box<[NodeDef]>,
    dep_start: Box<[u32]>,
    dep_list: Box<[u32]>,
    out_start: Box<[u32]>,
    out_list: Box<[u32]>,
    pub(crate) roots: Box<[u32]>,
    pub(crate) order: Box<[u32]>,
    index: HashMap<Arc<str>, u32, foldhash::fast::FixedState>,
    /// Live `Workflow` handles (the executor's own references to the graph are not handles): when the
    /// last goes, nobody can submit a run of it again, and the executors that recycle run states for it
    /// drop them.
    handles: AtomicUsize,
    /// The executors' pools that keep recycled run states of this graph.
    recyclers: Mutex<Vec<Weak<StatePool>>>,
}

/// One node of a built workflow.
pub(crate) struct NodeDef {
    pub(crate) name: Arc<str>,
    pub(crate) work: Work,
    pub(crate) retry: RetryPolicy,
    pub(crate) timeout: Option<Duration>,
    /// The registry name of its action, if it was loaded from a JSON definition.
    pub(crate) registered_as: Option<Box<str>>,
}

impl Graph {
    /// Indices of node `i`'s dependencies.
    pub(crate) fn deps(&self, i: u32) -> &[u32] {
        let i = i as usize;
        &self.dep_list[self.dep_start[i] as usize..self.dep_start[i + 1] as usize]
    }

    /// Indices of the nodes that depend on node `i`.
    pub(crate) fn dependents(&self, i: u32) -> &[u32] {
        let i = i as usize;
        &self.out_list[self.out_start[i] as usize..self.out_start[i + 1] as usize]
    }

    pub(crate) fn index_of(&self, name: &str) -> Option<u32> {
        self.index.get(name).copied()
    }

    /// Registers `pool` as keeping recycled run states of this graph (once per pool).
    pub(crate) fn add_recycler(&self, pool: &Arc<StatePool>) {
        let mut recyclers = self
            .recyclers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        recyclers.retain(|r| r.strong_count() > 0);
        if !recyclers
            .iter()
            .any(|r| std::ptr::eq(r.as_ptr(), Arc::as_ptr(pool)))
        {
            recyclers.push(Arc::downgrade(pool));
        }
    }

    /// The last handle is gone: the executors drop the run states they keep for this graph.
    fn let_go(&self) {
        let recyclers = std::mem::take(
            &mut *self
                .recyclers
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for pool in recyclers.iter().filter_map(Weak::upgrade) {
            pool.forget(self);
        }
    }
}

impl Workflow {
    /// A builder for a workflow called `name`.
    pub fn builder(name: impl Into<String>) -> WorkflowBuilder {
        WorkflowBuilder {
            name: name.into(),
            nodes: Vec::new(),
        }
    }

    /// The workflow's name.
    pub fn name(&self) -> &str {
        &self.graph.name
    }

    /// The number of nodes.
    pub fn len(&self) -> usize {
        self.graph.nodes.len()
    }

    /// Always `false`: a workflow has at least one node.
    pub fn is_empty(&self) -> bool {
        self.graph.nodes.is_empty()
    }

    /// The node names, in the order they were added.
    pub fn nodes(&self) -> impl Iterator<Item = &str> + '_ {
        self.graph.nodes.iter().map(|n| &*n.name)
    }

    /// Whether the workflow has a node called `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.index(name).is_some()
    }

    fn index(&self, name: &str) -> Option<u32> {
        self.graph.index_of(name)
    }

    /// The names of `node`'s dependencies, as listed; `None` if there is no such node.
    pub fn dependencies(&self, node: &str) -> Option<Vec<&str>> {
        let i = self.index(node)?;
        Some(self.names(self.graph.deps(i)))
    }

    /// The names of the nodes that depend on `node`; `None` if there is no such node.
    pub fn dependents(&self, node: &str) -> Option<Vec<&str>> {
        let i = self.index(node)?;
        Some(self.names(self.graph.dependents(i)))
    }

    /// The nodes with no dependency.
    pub fn roots(&self) -> Vec<&str> {
        self.names(&self.graph.roots)
    }

    /// The node names in an order where every node comes after its dependencies.
    pub fn topological_order(&self) -> Vec<&str> {
        self.names(&self.graph.order)
    }

    /// The number of dependency edges.
    pub fn edges(&self) -> usize {
        self.graph.dep_list.len()
    }

    fn names(&self, indices: &[u32]) -> Vec<&str> {
        indices
            .iter()
            .map(|i| &*self.graph.nodes[*i as usize].name)
            .collect()
    }
}

impl fmt::Debug for Workflow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Workflow")
            .field("name", &self.name())
            .field("nodes", &self.len())
            .field("edges", &self.edges())
            .finish()
    }
}

/// Collects nodes, then [`build`](Self::build)s a validated [`Workflow`].
pub struct WorkflowBuilder {
    name: String,
    nodes: Vec<NodeSpec>,
}

struct NodeSpec {
    name: String,
    work: Work,
    deps: Vec<String>,
    retry: RetryPolicy,
    timeout: Option<Duration>,
    registered_as: Option<Box<str>>,
}

/// Options of the node just added: its dependencies, retries and timeout.
pub struct NodeBuilder<'b> {
    spec: &'b mut NodeSpec,
}

impl NodeBuilder<'_> {
    /// Adds dependencies: the node runs once all of them have completed. Names may refer to nodes added
    /// later; listing one twice is the same as once.
    pub fn after<I>(self, dependencies: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        // Duplicates are dropped by `build`, in one pass over all edges (a scan here per dependency made a
        // node of 100k dependencies take seconds).
        self.spec
            .deps
            .extend(dependencies.into_iter().map(|d| d.as_ref().to_string()));
        self
    }

    /// The node's retry policy (default: no retry).
    pub fn retry(self, policy: RetryPolicy) -> Self {
        self.spec.retry = policy;
        self
    }

    /// Records the registry name its action was found under (JSON definitions), so that
    /// [`Workflow::to_json`] can write it back.
    pub(crate) fn registered_as(self, action: &str) -> Self {
        self.spec.registered_as = Some(action.into());
        self
    }

    /// Fails an attempt that runs longer than `limit` (default: no limit). The action is told through
    /// [`NodeCtx::is_cancelled`](crate::NodeCtx::is_cancelled) and its result is discarded.
    pub fn timeout(self, limit: Duration) -> Self {
        self.spec.timeout = Some(limit);
        self
    }
}

impl fmt::Debug for NodeBuilder<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeBuilder")
            .field("name", &self.spec.name)
            .field("after", &self.spec.deps)
            .finish_non_exhaustive()
    }
}

impl WorkflowBuilder {
    /// Adds a node called `name` that runs the closure `action`. The closure's argument and error types are
    /// inferred: no annotations needed.
    ///
    /// ```
    /// use flowmem_engine::Workflow;
    ///
    /// let mut builder = Workflow::builder("inferred");
    /// builder.node("a", |ctx| {
    ///     ctx.set_output(1u64);
    ///     Ok(())
    /// });
    /// assert_eq!(builder.build()?.len(), 1);
    /// # Ok::<(), flowmem_engine::DefinitionError>(())
    /// ```
    pub fn node<F>(&mut self, name: impl Into<String>, action: F) -> NodeBuilder<'_>
    where
        F: Fn(&mut NodeCtx<'_>) -> Result<(), ActionError> + Send + Sync + 'static,
    {
        self.node_shared(name, Arc::new(action))
    }

    /// Adds a node called `name` that runs `action`, a type implementing [`Action`] (for a closure,
    /// [`node`](Self::node) infers its types).
    pub fn node_action(&mut self, name: impl Into<String>, action: impl Action) -> NodeBuilder<'_> {
        self.node_shared(name, Arc::new(action))
    }

    /// Adds a node whose action is shared with other nodes (one allocation for many nodes).
    pub fn node_shared(
        &mut self,
        name: impl Into<String>,
        action: Arc<dyn Action>,
    ) -> NodeBuilder<'_> {
        self.add(name.into(), Work::Sync(action))
    }

    /// Adds an async node called `name`: `action` returns a future, which the executor polls on its
    /// workers and parks while it waits (it holds no thread then); its waker queues the node again. Sync and
    /// async nodes mix freely in a workflow. A future that uses tokio's timers or I/O needs a tokio
    /// runtime: see [`ExecutorBuilder::tokio`](crate::ExecutorBuilder::tokio).
    ///
    /// ```
    /// use flowmem_engine::{Executor, Workflow};
    ///
    /// let mut b = Workflow::builder("mixed");
    /// b.node_async("fetch", |ctx| async move {
    ///     let (tx, rx) = futures::channel::oneshot::channel();
    ///     std::thread::spawn(move || tx.send(41u64));
    ///     ctx.set_output(rx.await.unwrap_or(0));
    ///     Ok(())
    /// });
    /// b.node("add", |ctx| {
    ///     ctx.set_output(ctx.input_u64("fetch").unwrap_or(0) + 1);
    ///     Ok(())
    /// })
    /// .after(["fetch"]);
    /// let report = Executor::new(2).run(&b.build()?);
    /// assert_eq!(report.output("add").and_then(|v| v.as_u64()), Some(42));
    /// # Ok::<(), flowmem_engine::DefinitionError>(())
    /// ```
    pub fn node_async<F, Fut>(&mut self, name: impl Into<String>, action: F) -> NodeBuilder<'_>
    where
        F: Fn(AsyncCtx) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<(), ActionError>> + Send + 'static,
    {
        self.add(name.into(), Work::Async(Arc::new(action)))
    }

    /// Adds an async node running `action`, a type implementing [`AsyncAction`].
    pub fn node_async_action(
        &mut self,
        name: impl Into<String>,
        action: impl AsyncAction,
    ) -> NodeBuilder<'_> {
        self.add(name.into(), Work::Async(Arc::new(action)))
    }

    fn add(&mut self, name: String, work: Work) -> NodeBuilder<'_> {
        self.nodes.push(NodeSpec {
            name,
            work,
            deps: Vec::new(),
            retry: RetryPolicy::NONE,
            timeout: None,
            registered_as: None,
        });
        let spec = self.nodes.last_mut().expect("just pushed");
        NodeBuilder { spec }
    }

    /// The number of nodes added so far.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether no node was added yet.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Validates and builds the workflow.
    ///
    /// # Errors
    /// [`DefinitionError::Empty`], [`DuplicateNode`](DefinitionError::DuplicateNode),
    /// [`UnknownDependency`](DefinitionError::UnknownDependency), or [`Cycle`](DefinitionError::Cycle)
    /// with the nodes of one cycle in order.
    pub fn build(self) -> Result<Workflow, DefinitionError> {
        let workflow = self.name;
        let n = self.nodes.len();
        if n == 0 {
            return Err(DefinitionError::Empty { workflow });
        }
        if n >= u32::MAX as usize {
            // Indices are u32; no real workflow comes near.
            return Err(DefinitionError::Empty { workflow });
        }
        let mut index: HashMap<Arc<str>, u32, foldhash::fast::FixedState> =
            HashMap::with_capacity_and_hasher(n, Default::default());
        let names: Vec<Arc<str>> = self
            .nodes
            .iter()
            .map(|spec| Arc::from(spec.name.as_str()))
            .collect();
        for (i, (spec, name)) in self.nodes.iter().zip(&names).enumerate() {
            if index.insert(Arc::clone(name), i as u32).is_some() {
                return Err(DefinitionError::DuplicateNode {
                    workflow,
                    node: spec.name.clone(),
                });
            }
        }
        let mut dep_start = Vec::with_capacity(n + 1);
        let mut dep_list = Vec::new();
        // Which node last listed each dependency (node index + 1): a dependency listed twice counts once.
        let mut listed_by = vec![0u32; n];
        for (i, spec) in self.nodes.iter().enumerate() {
            dep_start.push(dep_list.len() as u32);
            for d in &spec.deps {
                let found = index.get(d.as_str());
                match found {
                    Some(j) if listed_by[*j as usize] == i as u32 + 1 => {}
                    Some(j) => {
                        listed_by[*j as usize] = i as u32 + 1;
                        dep_list.push(*j);
                    }
                    None => {
                        return Err(DefinitionError::UnknownDependency {
                            workflow,
                            node: spec.name.clone(),
                            dependency: d.clone(),
                        });
                    }
                }
            }
        }
        dep_start.push(dep_list.len() as u32);
        // Dependents: the same edges, reversed (counting sort by dependency).
        let mut out_count = vec![0u32; n + 1];
        for d in &dep_list {
            out_count[*d as usize + 1] += 1;
        }
        for i in 0..n {
            out_count[i + 1] += out_count[i];
        }
        let out_start = out_count.clone();
        let mut cursor = out_count;
        let mut out_list = vec![0u32; dep_list.len()];
        for i in 0..n {
            for d in &dep_list[dep_start[i] as usize..dep_start[i + 1] as usize] {
                out_list[cursor[*d as usize] as usize] = i as u32;
                cursor[*d as usize] += 1;
            }
        }
        // Kahn's algorithm: an order, or the nodes left on cycles.
        let mut pending: Vec<u32> = (0..n).map(|i| dep_start[i + 1] - dep_start[i]).collect();
        let roots: Vec<u32> = (0..n as u32)
            .filter(|i| pending[*i as usize] == 0)
            .collect();
        let mut order = roots.clone();
        let mut next = 0;
        while next < order.len() {
            let i = order[next] as usize;
            next += 1;
            for d in &out_list[out_start[i] as usize..out_start[i + 1] as usize] {
                pending[*d as usize] -= 1;
                if pending[*d as usize] == 0 {
                    order.push(*d);
                }
            }
        }
        if order.len() < n {
            let cycle = find_cycle(&pending, &dep_start, &dep_list);
            return Err(DefinitionError::Cycle {
                workflow,
                nodes: cycle
                    .into_iter()
                    .map(|i| self.nodes[i as usize].name.clone())
                    .collect(),
            });
        }
        let nodes = self
            .nodes
            .into_iter()
            .zip(names)
            .map(|(spec, name)| NodeDef {
                name,
                work: spec.work,
                retry: spec.retry,
                timeout: spec.timeout,
                registered_as: spec.registered_as,
            })
            .collect();
        Ok(Workflow {
            graph: Arc::new(Graph {
                name: Arc::from(workflow),
                nodes,
                dep_start: dep_start.into(),
                dep_list: dep_list.into(),
                out_start: out_start.into(),
                out_list: out_list.into(),
                roots: roots.into(),
                order: order.into(),
                index,
                handles: AtomicUsize::new(1),
                recyclers: Mutex::new(Vec::new()),
            }),
        })
    }
}

/// One cycle among the nodes Kahn's algorithm could not order (`pending > 0`): every such node has a
/// dependency that is also one, so walking dependencies from any of them must come back to a node already
/// seen. Returns the cycle's nodes, each depending on the next.
fn find_cycle(pending: &[u32], dep_start: &[u32], dep_list: &[u32]) -> Vec<u32> {
    let stuck = |i: u32| pending[i as usize] > 0;
    let start = (0..pending.len() as u32)
        .find(|i| stuck(*i))
        .expect("a node is left");
    let mut position = vec![usize::MAX; pending.len()];
    let mut path = Vec::new();
    let mut at = start;
    loop {
        if position[at as usize] != usize::MAX {
            return path.split_off(position[at as usize]);
        }
        position[at as usize] = path.len();
        path.push(at);
        let deps = &dep_list[dep_start[at as usize] as usize..dep_start[at as usize + 1] as usize];
        at = *deps
            .iter()
            .find(|d| stuck(**d))
            .expect("a stuck node has a stuck dependency");
    }
}

impl fmt::Debug for WorkflowBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkflowBuilder")
            .field("name", &self.name)
            .field("nodes", &self.nodes.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ActionError, NodeCtx};

    fn noop(_: &mut NodeCtx<'_>) -> Result<(), ActionError> {
        Ok(())
    }

    fn build(edges: &[(&str, &[&str])]) -> Result<Workflow, DefinitionError> {
        let mut b = Workflow::builder("test");
        for (node, deps) in edges {
            b.node(*node, noop).after(deps.iter());
        }
        b.build()
    }

    #[test]
    fn a_diamond_builds_with_its_order_roots_and_dependents() {
        let w = build(&[
            ("a", &[]),
            ("b", &["a"]),
            ("c", &["a"]),
            ("d", &["b", "c", "b"]),
        ])
        .unwrap();
        assert_eq!(w.roots(), ["a"]);
        assert_eq!(w.dependencies("d").unwrap(), ["b", "c"]);
        assert_eq!(w.dependents("a").unwrap(), ["b", "c"]);
        assert_eq!(w.edges(), 4);
        let order = w.topological_order();
        let pos = |n: &str| order.iter().position(|x| *x == n).unwrap();
        assert!(pos("a") < pos("b") && pos("b") < pos("d") && pos("c") < pos("d"));
        assert_eq!(w.dependencies("nope"), None);
    }

    /// Issue 14, bug 7: `after` scanned the node's list for each dependency (100k dependencies took 12 s).
    /// Now one pass at `build`, duplicates (here every dependency listed twice) dropped there.
    #[test]
    fn a_node_with_100k_dependencies_builds_in_one_pass() {
        let names: Vec<String> = (0..100_000).map(|i| format!("dep-{i}")).collect();
        let mut b = Workflow::builder("wide");
        for name in &names {
            b.node(name.as_str(), noop);
        }
        b.node("sink", noop).after(&names).after(names.iter().rev());
        let w = b.build().unwrap();
        assert_eq!(w.edges(), 100_000);
        let deps = w.dependencies("sink").unwrap();
        assert_eq!(
            (deps.len(), deps[0], deps[99_999]),
            (100_000, "dep-0", "dep-99999")
        );
    }

    #[test]
    fn each_bad_definition_gets_its_own_error() {
        assert!(matches!(build(&[]), Err(DefinitionError::Empty { .. })));
        assert_eq!(
            build(&[("a", &[]), ("a", &[])]).unwrap_err().to_string(),
            "workflow `test`: two nodes are named `a`"
        );
        assert_eq!(
            build(&[("a", &["ghost"])]).unwrap_err().to_string(),
            "workflow `test`: node `a` depends on `ghost`, which is not a node of it"
        );
    }

    #[test]
    fn a_cycle_is_named_node_by_node() {
        let e = build(&[
            ("start", &[]),
            ("a", &["start", "c"]),
            ("b", &["a"]),
            ("c", &["b"]),
            ("end", &["c"]),
        ])
        .unwrap_err();
        let DefinitionError::Cycle { nodes, .. } = &e else {
            panic!("{e}");
        };
        // Some rotation of a -> c -> b -> a ("a depends on c depends on b depends on a").
        let at = nodes.iter().position(|n| n == "a").unwrap();
        let rotated: Vec<&str> = nodes[at..]
            .iter()
            .chain(&nodes[..at])
            .map(String::as_str)
            .collect();
        assert_eq!(rotated, ["a", "c", "b"]);
        let own = build(&[("self", &["self"])]).unwrap_err();
        assert_eq!(
            own.to_string(),
            "workflow `test` has a cycle: `self` depends on `self`"
        );
    }

    #[test]
    fn a_long_chain_and_a_wide_fan_out_build_quickly() {
        let mut b = Workflow::builder("chain");
        b.node("n0", noop);
        for i in 1..10_000 {
            b.node(format!("n{i}"), noop).after([format!("n{}", i - 1)]);
        }
        let chain = b.build().unwrap();
        assert_eq!(
            (chain.len(), chain.edges(), chain.roots().len()),
            (10_000, 9_999, 1)
        );
        let mut b = Workflow::builder("fan");
        b.node("root", noop);
        for i in 0..10_000 {
            b.node(format!("leaf{i}"), noop).after(["root"]);
        }
        let fan = b.build().unwrap();
        assert_eq!(fan.dependents("root").unwrap().len(), 10_000);
    }
}

//! One attempt of one node, outside any executor and run: for a scale-out worker (flowmem-postgres'
//! shared runs) that keeps a run's state elsewhere and only needs the node's action run with its inputs.

use std::{
    cell::RefCell,
    panic::AssertUnwindSafe,
    sync::atomic::AtomicBool,
    time::{Duration, Instant},
};

use flowmem_alloc::Arena;
use flowmem_pool::BufferPool;

use crate::{
    ActionError, NodeCtx, RetryPolicy, Value, Workflow,
    action::{Inputs, Work},
    executor::panic_message,
};

/// Why a node cannot be invoked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvokeError {
    /// The workflow has no node of that name.
    #[error("workflow `{workflow}` has no node `{node}`")]
    UnknownNode {
        /// The workflow.
        workflow: String,
        /// The name asked for.
        node: String,
    },
    /// The node is async: its future needs an executor's run (`AsyncCtx` reaches the run's state).
    #[error(
        "node `{node}` of workflow `{workflow}` is async; only sync nodes can be invoked outside an executor"
    )]
    AsyncNode {
        /// The workflow.
        workflow: String,
        /// The node.
        node: String,
    },
}

/// What one invoked attempt did ([`Workflow::invoke`]).
#[derive(Debug, Clone)]
pub struct Invoked {
    /// How it ended: `Ok` if the action succeeded within the node's timeout; a panic or a timeout is an
    /// `ActionError` of that kind, as on an executor.
    pub result: Result<(), ActionError>,
    /// The output it set (`Unit` if none).
    pub output: Value,
    /// The context values it put, in order.
    pub puts: Vec<(String, Value)>,
    /// Time in the action.
    pub took: Duration,
}

/// The inputs of an invoked node: its dependencies' outputs and a context given by the caller; its puts
/// collected.
struct Given<'a> {
    inputs: &'a [(String, Value)],
    context: &'a [(String, Value)],
    puts: RefCell<Vec<(String, Value)>>,
}

impl Inputs for Given<'_> {
    fn input(&self, name: &str) -> Option<&Value> {
        self.inputs.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    fn for_each_input(&self, f: &mut dyn FnMut(&str, &Value)) {
        for (n, v) in self.inputs {
            f(n, v);
        }
    }

    fn put(&self, key: &str, value: Value) -> Result<Option<Value>, ActionError> {
        let mut puts = self.puts.borrow_mut();
        let before = puts
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .or_else(|| self.fetch_given(key));
        puts.push((key.to_string(), value));
        Ok(before)
    }

    fn fetch(&self, key: &str) -> Option<Value> {
        self.puts
            .borrow()
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .or_else(|| self.fetch_given(key))
    }

    fn scratch_arena(&self) -> Box<Arena> {
        Box::new(Arena::new())
    }

    fn buffer_pool(&self) -> Option<&BufferPool> {
        None
    }
}

impl Given<'_> {
    fn fetch_given(&self, key: &str) -> Option<Value> {
        self.context
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    }
}

impl Workflow {
    /// Runs attempt `attempt` of node `name` on this thread, outside any executor: its action sees
    /// `inputs` as its dependencies' outputs (by dependency name) and `context` as the run's context; what
    /// it puts is returned in [`Invoked::puts`], not stored. Panics are caught and the node's timeout
    /// applies, as on an executor (an attempt past it is `TimedOut`, and the action sees
    /// `is_cancelled()` once it has passed). For scale-out workers that keep a run's state elsewhere
    /// (flowmem-postgres' shared runs); an executor does all this itself.
    ///
    /// ```
    /// use flowmem_engine::{Value, Workflow};
    ///
    /// let mut b = Workflow::builder("sum");
    /// b.node("a", |ctx| { ctx.set_output(2u64); Ok(()) });
    /// b.node("double", |ctx| {
    ///     let a = ctx.input_u64("a").unwrap_or(0);
    ///     ctx.put("seen", a);
    ///     ctx.set_output(a * 2);
    ///     Ok(())
    /// })
    /// .after(["a"]);
    /// let workflow = b.build()?;
    /// let done = workflow.invoke("double", 1, &[("a".into(), Value::from(21u64))], &[])?;
    /// assert!(done.result.is_ok());
    /// assert_eq!(done.output.as_u64(), Some(42));
    /// assert_eq!(done.puts[0].0, "seen");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`InvokeError::UnknownNode`], or [`InvokeError::AsyncNode`] for an async node.
    pub fn invoke(
        &self,
        name: &str,
        attempt: u32,
        inputs: &[(String, Value)],
        context: &[(String, Value)],
    ) -> Result<Invoked, InvokeError> {
        let g = &self.graph;
        let index = g.index_of(name).ok_or_else(|| InvokeError::UnknownNode {
            workflow: g.name.to_string(),
            node: name.to_string(),
        })?;
        let def = &g.nodes[index as usize];
        let Work::Sync(action) = &def.work else {
            return Err(InvokeError::AsyncNode {
                workflow: g.name.to_string(),
                node: name.to_string(),
            });
        };
        let given = Given {
            inputs,
            context,
            puts: RefCell::new(Vec::new()),
        };
        let cancelled = AtomicBool::new(false);
        let started = Instant::now();
        let deadline = def.timeout.and_then(|t| started.checked_add(t));
        let mut ctx = NodeCtx::new(&def.name, attempt.max(1), &given, &cancelled, deadline);
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| action.run(&mut ctx)));
        let took = started.elapsed();
        let (output, deferred, _) = ctx.into_parts();
        let result = match outcome {
            Ok(result) => result.and(deferred),
            Err(payload) => Err(ActionError::panicked(panic_message(payload.as_ref()))),
        };
        let result = match def.timeout {
            Some(limit) if took > limit => Err(ActionError::timed_out(limit)),
            _ => result,
        };
        Ok(Invoked {
            result,
            output,
            puts: given.puts.into_inner(),
            took,
        })
    }

    /// Node `name`'s retry policy and timeout, if the workflow has it.
    pub fn node_policy(&self, name: &str) -> Option<(RetryPolicy, Option<Duration>)> {
        let def = &self.graph.nodes[self.graph.index_of(name)? as usize];
        Some((def.retry, def.timeout))
    }

    /// Node `name`'s index in the workflow's order ([`nodes`](Self::nodes)).
    pub fn node_index(&self, name: &str) -> Option<usize> {
        self.graph.index_of(name).map(|i| i as usize)
    }

    /// The name of node `index` (in the order of [`nodes`](Self::nodes)); `None` past the last.
    pub fn node_name(&self, index: usize) -> Option<&str> {
        self.graph.nodes.get(index).map(|n| &*n.name)
    }

    /// The indices of node `index`'s dependents (the nodes that list it in `after`).
    pub fn dependents_of(&self, index: usize) -> &[u32] {
        if index < self.graph.nodes.len() {
            self.graph.dependents(index as u32)
        } else {
            &[]
        }
    }

    /// The indices of node `index`'s dependencies.
    pub fn dependencies_of(&self, index: usize) -> &[u32] {
        if index < self.graph.nodes.len() {
            self.graph.deps(index as u32)
        } else {
            &[]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invoked_nodes_fail_panic_and_time_out_as_on_an_executor() {
        let mut b = Workflow::builder("w");
        b.node("fails", |_| Err(ActionError::new("no")));
        b.node("panics", |_| panic!("boom"));
        b.node("slow", |ctx| {
            while !ctx.is_cancelled() {
                std::thread::sleep(Duration::from_millis(1));
            }
            Ok(())
        })
        .timeout(Duration::from_millis(10));
        b.node_async("later", |_| async { Ok(()) });
        let w = b.build().unwrap();
        let kind = |n: &str| w.invoke(n, 1, &[], &[]).unwrap().result.unwrap_err().kind();
        assert_eq!(kind("fails"), crate::ActionErrorKind::Failed);
        assert_eq!(kind("panics"), crate::ActionErrorKind::Panicked);
        assert_eq!(kind("slow"), crate::ActionErrorKind::TimedOut);
        assert!(matches!(
            w.invoke("later", 1, &[], &[]),
            Err(InvokeError::AsyncNode { .. })
        ));
        let e = w.invoke("nope", 1, &[], &[]).unwrap_err();
        assert_eq!(e.to_string(), "workflow `w` has no node `nope`");
        assert_eq!(w.node_index("slow"), Some(2));
        assert_eq!(w.dependents_of(99), &[] as &[u32]);
    }

    #[test]
    fn puts_are_collected_and_read_back() {
        let mut b = Workflow::builder("w");
        b.node("p", |ctx| {
            assert_eq!(ctx.fetch("k").and_then(|v| v.as_u64()), Some(1));
            ctx.put("k", 2u64);
            assert_eq!(ctx.fetch("k").and_then(|v| v.as_u64()), Some(2));
            Ok(())
        });
        let w = b.build().unwrap();
        let done = w
            .invoke("p", 1, &[], &[("k".into(), Value::from(1u64))])
            .unwrap();
        assert!(done.result.is_ok());
        assert_eq!(done.puts.len(), 1);
    }
}

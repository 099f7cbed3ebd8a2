//! Workloads of the engine shared by its tests and the benches (feature `engine`).

use flowmem_engine::{ActionError, NodeCtx, Workflow};

/// A 50-node workflow (5 layers of 10, in-degree 2) whose every action uses what the executor's memory
/// options recycle: the run's context, scratch memory, a byte buffer, and an output. The workload of the
/// allocation counts (target E2, `memory_options/*` in the counts) and of the engine's zero-allocation
/// test: one definition, so the test checks what the bench measures.
pub fn busy_workflow() -> Workflow {
    // The context key is a constant of the workflow's domain, interned once, as a program declares its
    // well-known names: with `interned_names` a `put` under it allocates nothing.
    flowmem_intern::intern("last_node_bytes");
    let mut b = Workflow::builder("busy");
    for layer in 0..5 {
        for i in 0..10 {
            let node = b.node(format!("l{layer}n{i}"), |ctx: &mut NodeCtx<'_>| {
                let name = ctx.scratch_str(ctx.node_name());
                let mut buffer = ctx.buffer(4096);
                buffer.extend_from_slice(name.as_bytes());
                let mut inputs = 0;
                ctx.for_each_input(|_, v| inputs += v.as_u64().unwrap_or(0));
                ctx.put("last_node_bytes", buffer.len() as u64);
                ctx.set_output(inputs + 1);
                Ok::<(), ActionError>(())
            });
            if layer > 0 {
                node.after([
                    format!("l{}n{i}", layer - 1),
                    format!("l{}n{}", layer - 1, (i + 1) % 10),
                ]);
            }
        }
    }
    b.build().expect("a valid workflow")
}

//! Export of a workflow's graph: Graphviz DOT and Mermaid.

use std::fmt::Write;

use crate::Workflow;

/// `s` as a DOT double-quoted string's content.
fn dot_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// `s` as a Mermaid quoted label's content (Mermaid has entity codes, not backslash escapes).
fn mermaid_escape(s: &str) -> String {
    s.replace('"', "#quot;")
}

impl Workflow {
    /// The graph in Graphviz DOT: one node statement per node (in the order they were added), one edge
    /// per dependency, from the dependency to the dependent.
    ///
    /// ```
    /// use flowmem_engine::{ActionError, NodeCtx, Workflow};
    ///
    /// let noop = |_: &mut NodeCtx<'_>| Ok::<(), ActionError>(());
    /// let mut b = Workflow::builder("etl");
    /// b.node("extract", noop);
    /// b.node("load", noop).after(["extract"]);
    /// let dot = b.build()?.to_dot();
    /// assert!(dot.contains("\"extract\" -> \"load\";"));
    /// # Ok::<(), flowmem_engine::DefinitionError>(())
    /// ```
    pub fn to_dot(&self) -> String {
        let g = &self.graph;
        let mut out = String::new();
        let _ = writeln!(out, "digraph \"{}\" {{", dot_escape(self.name()));
        out.push_str("  rankdir=LR;\n");
        for n in g.nodes.iter() {
            let _ = writeln!(out, "  \"{}\";", dot_escape(&n.name));
        }
        for (i, n) in g.nodes.iter().enumerate() {
            for d in g.deps(i as u32) {
                let _ = writeln!(
                    out,
                    "  \"{}\" -> \"{}\";",
                    dot_escape(&g.nodes[*d as usize].name),
                    dot_escape(&n.name)
                );
            }
        }
        out.push_str("}\n");
        out
    }

    /// The graph as a Mermaid flowchart (left to right): nodes get ids `n0`, `n1`, ... and their names as
    /// labels, so any name is safe.
    ///
    /// ```
    /// use flowmem_engine::{ActionError, NodeCtx, Workflow};
    ///
    /// let noop = |_: &mut NodeCtx<'_>| Ok::<(), ActionError>(());
    /// let mut b = Workflow::builder("etl");
    /// b.node("extract", noop);
    /// b.node("load", noop).after(["extract"]);
    /// let chart = b.build()?.to_mermaid();
    /// assert!(chart.starts_with("flowchart LR\n"));
    /// assert!(chart.contains("n0 --> n1"));
    /// # Ok::<(), flowmem_engine::DefinitionError>(())
    /// ```
    pub fn to_mermaid(&self) -> String {
        let g = &self.graph;
        let mut out = String::from("flowchart LR\n");
        for (i, n) in g.nodes.iter().enumerate() {
            let _ = writeln!(out, "  n{i}[\"{}\"]", mermaid_escape(&n.name));
        }
        for i in 0..g.nodes.len() {
            for d in g.deps(i as u32) {
                let _ = writeln!(out, "  n{d} --> n{i}");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use crate::{ActionError, NodeCtx, Workflow};

    fn noop(_: &mut NodeCtx<'_>) -> Result<(), ActionError> {
        Ok(())
    }

    #[test]
    fn every_node_and_edge_is_exported_and_odd_names_are_escaped() {
        let mut b = Workflow::builder("odd \"name\"");
        b.node("a", noop);
        b.node("say \"hi\"\\now", noop).after(["a"]);
        b.node("c", noop).after(["a", "say \"hi\"\\now"]);
        let w = b.build().unwrap();
        let dot = w.to_dot();
        assert!(dot.starts_with("digraph \"odd \\\"name\\\"\" {"));
        assert!(dot.contains("\"a\" -> \"say \\\"hi\\\"\\\\now\";"));
        assert_eq!(dot.matches(" -> ").count(), w.edges());
        let mermaid = w.to_mermaid();
        assert!(mermaid.contains("n1[\"say #quot;hi#quot;\\now\"]"));
        assert_eq!(mermaid.matches(" --> ").count(), w.edges());
        assert!(mermaid.contains("n0 --> n2") && mermaid.contains("n1 --> n2"));
    }
}

//! The command line of the measuring binaries `counts` and `paired`, which `cargo xtask bench` runs after
//! the criterion groups: `[LAYER...] [--filter SUBSTRING]`.

/// The layers and the filter a measuring binary was given.
#[derive(Debug, Clone, Default)]
pub struct MeasuringArgs {
    /// The layers named (none: every layer).
    pub layers: Vec<String>,
    /// A substring, or several separated by `|` (as in a criterion filter such as `intern_hit|pool_memory`).
    pub filter: Option<String>,
}

impl MeasuringArgs {
    /// The arguments of this process.
    pub fn from_env() -> Self {
        Self::parse(std::env::args().skip(1))
    }

    /// `args`: layer names, and `--filter` followed by the filter.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Self {
        let mut parsed = Self::default();
        let mut args = args.into_iter();
        while let Some(a) = args.next() {
            if a == "--filter" {
                parsed.filter = args.next();
            } else {
                parsed.layers.push(a);
            }
        }
        parsed
    }

    /// Whether the measurement `id` passes the filter.
    pub fn wants(&self, id: &str) -> bool {
        self.filter
            .as_deref()
            .is_none_or(|f| f.split('|').any(|part| id.contains(part)))
    }

    /// Whether `layer` was named, or no layer was.
    pub fn wants_layer(&self, layer: &str) -> bool {
        self.layers.is_empty() || self.layers.iter().any(|l| l == layer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_and_a_filter_of_several_parts() {
        let args =
            MeasuringArgs::parse(["map", "--filter", "exchange|read_only"].map(String::from));
        assert_eq!(args.layers, ["map"]);
        assert!(args.wants_layer("map") && !args.wants_layer("pool"));
        assert!(args.wants("paired/exchange/scc_2t") && args.wants("paired/read_only/read_map_2t"));
        assert!(!args.wants("paired/rapid_grow/scc_2t"));
        let all = MeasuringArgs::parse(Vec::new());
        assert!(all.wants_layer("pool") && all.wants("anything"));
    }
}

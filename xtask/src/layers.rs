//! `cargo xtask layers`: a crate may depend only on crates of a lower layer.

use serde_json::Value;

use crate::Result;

/// The layer order, lowest first. The facade sits on top.
pub(crate) const LAYERS: &[&str] = &[
    "flowmem-alloc",
    "flowmem-intern",
    "flowmem-pool",
    "flowmem-map",
    "flowmem-store",
    "flowmem-engine",
    "flowmem-postgres",
    "flowmem",
    "flowmem-cli",
];

fn layer_of(name: &str) -> Option<usize> {
    LAYERS.iter().position(|l| *l == name)
}

/// One crate's dependencies on workspace layers: `(crate, [(dependency, kind)])`.
pub(crate) type Manifest = (String, Vec<(String, String)>);

/// Every violation of the layer order among `manifests`, as a sentence each.
pub(crate) fn violations(manifests: &[Manifest]) -> Vec<String> {
    let mut found = Vec::new();
    for (name, deps) in manifests {
        let Some(layer) = layer_of(name) else {
            continue; // benches and xtask stand outside the layers
        };
        for (dep, kind) in deps {
            // A crate's dev dependency on itself only turns on features for its tests.
            if dep == name && kind == "dev" {
                continue;
            }
            if let Some(dep_layer) = layer_of(dep)
                && dep_layer >= layer
            {
                found.push(format!(
                    "{name} (layer {layer}) has a {kind} dependency on {dep} (layer {dep_layer}): \
                     a crate may depend only on lower layers"
                ));
            }
        }
    }
    found
}

/// The workspace's manifests, from `cargo metadata`.
pub(crate) fn workspace_manifests() -> Result<Vec<Manifest>> {
    let out = crate::cargo()
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(crate::workspace_root())
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let meta: Value = serde_json::from_slice(&out.stdout)?;
    let packages = meta["packages"]
        .as_array()
        .ok_or("cargo metadata: no packages")?;
    Ok(packages
        .iter()
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|d| {
                    (
                        d["name"].as_str().unwrap_or_default().to_string(),
                        d["kind"].as_str().unwrap_or("normal").to_string(),
                    )
                })
                .collect();
            (p["name"].as_str().unwrap_or_default().to_string(), deps)
        })
        .collect())
}

pub(crate) fn run() -> Result<()> {
    let manifests = workspace_manifests()?;
    let missing: Vec<_> = LAYERS
        .iter()
        .filter(|l| !manifests.iter().any(|(n, _)| n == *l))
        .collect();
    if !missing.is_empty() {
        return Err(format!("layer crates missing from the workspace: {missing:?}").into());
    }
    let found = violations(&manifests);
    if !found.is_empty() {
        return Err(found.join("\n").into());
    }
    println!(
        "layers: {} crates, each depends only on lower layers",
        LAYERS.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(name: &str, deps: &[&str]) -> Manifest {
        (
            name.to_string(),
            deps.iter()
                .map(|d| (d.to_string(), "normal".to_string()))
                .collect(),
        )
    }

    #[test]
    fn the_workspace_respects_the_layer_order() {
        let manifests = workspace_manifests().expect("cargo metadata runs");
        assert_eq!(violations(&manifests), Vec::<String>::new());
        for layer in LAYERS {
            assert!(manifests.iter().any(|(n, _)| n == layer), "{layer} missing");
        }
    }

    #[test]
    fn reaching_up_or_sideways_is_a_violation() {
        let manifests = [
            manifest("flowmem-pool", &["flowmem-alloc", "flowmem-map", "serde"]),
            manifest("flowmem-map", &["flowmem-map"]),
            manifest("flowmem", &["flowmem-engine"]),
            manifest("xtask", &["flowmem"]),
        ];
        let found = violations(&manifests);
        assert_eq!(found.len(), 2, "{found:#?}");
        assert!(
            found[0].contains("flowmem-pool (layer 2)")
                && found[0].contains("flowmem-map (layer 3)")
        );
        assert!(found[1].starts_with("flowmem-map (layer 3)"));
        // A dev dependency on itself (to turn on features for its tests) is not a violation; a normal
        // one is (above).
        let dev_self = (
            "flowmem-postgres".to_string(),
            vec![("flowmem-postgres".to_string(), "dev".to_string())],
        );
        assert!(violations(&[dev_self]).is_empty());
    }
}

//! Where a workflow's allocations come from: an engine run with a memory option off (`pooled_buffers`),
//! profiled by sampled allocation sites. Writes the report (`sites.txt`), folded stacks
//! (`sites.txt.folded`), a file for DHAT's viewer (`sites.txt.dhat.json`) and, with the `flamegraph`
//! feature, a flamegraph (`sites.txt.svg`), then says which site allocated most.
//!
//! `cargo run --release -p flowmem --example alloc_sites --features flamegraph -- [OUT_DIR]`
//! (default `target/alloc-sites`). docs/alloc.md explains how to read the report.

use flowmem::{
    alloc::{Tracking, sites},
    engine::{Executor, MemoryOptions, RunStatus, Workflow},
};

#[global_allocator]
static GLOBAL: Tracking<std::alloc::System> = Tracking::new(std::alloc::System);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::path::PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "target/alloc-sites".to_string()),
    );
    std::fs::create_dir_all(&out)?;

    // An ETL-like chain: each step serialises a record into a 16 KiB buffer and keeps a scratch label.
    let mut builder = Workflow::builder("etl");
    for step in 0..20 {
        let node = builder.node(format!("step-{step}"), move |ctx| {
            let mut buf = ctx.buffer(16 * 1024);
            for i in 0..1_000u32 {
                buf.extend_from_slice(&(i ^ step).to_le_bytes());
            }
            let label = ctx.scratch_str("serialised");
            ctx.set_output(buf.len() + label.len());
            Ok(())
        });
        if step > 0 {
            node.after([format!("step-{}", step - 1)]);
        }
    }
    let workflow = builder.build()?;
    // `pooled_buffers` off: every `ctx.buffer` is a new Vec, which the profile should show.
    let executor = Executor::with_memory(
        2,
        MemoryOptions {
            pooled_buffers: false,
            ..MemoryOptions::default()
        },
    );

    sites::start(sites::SiteOptions::new().mean_interval(64 * 1024))?;
    for _ in 0..500 {
        let report = executor.run(&workflow);
        assert_eq!(report.status, RunStatus::Completed);
    }
    sites::stop();

    let report = sites::report();
    let path = out.join("sites.txt");
    report.write_files(&path)?;
    println!("{report}");
    println!(
        "wrote {} (and .folded, .dhat.json{})",
        path.display(),
        if cfg!(feature = "flamegraph") {
            ", .svg"
        } else {
            "; build with --features flamegraph for the .svg"
        }
    );
    let share = report.share_of("NodeCtx::buffer");
    println!(
        "NodeCtx::buffer allocated {:.0} % of the sampled bytes: turn pooled_buffers back on",
        share * 100.0
    );
    assert!(share > 0.5, "the buffers of the run are its main site");
    assert_eq!(sites::reentered(), 0);
    Ok(())
}

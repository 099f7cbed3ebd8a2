//! A program's own pre-interned strings: the same symbols in every pool made with the set, frozen pools
//! included, under concurrent interning; the process-wide pool refuses a set once it was made without it.

use flowmem_intern::{InternError, Preinterned, StringPool, sym};

flowmem_intern::preinterned! {
    /// A VM's statuses, as a service would declare them.
    pub mod vm_status {
        RUNNING = "running",
        STOPPED = "stopped",
        MIGRATING = "migrating",
    }
}

#[test]
fn the_constants_are_the_symbols_of_their_strings_in_every_pool_made_with_the_set() {
    let pools: Vec<StringPool> = (0..4)
        .map(|_| StringPool::with_preinterned(vm_status::SET))
        .collect();
    for pool in &pools {
        assert_eq!(pool.get("running"), Some(vm_status::RUNNING));
        assert_eq!(pool.intern("migrating"), vm_status::MIGRATING);
        assert_eq!(pool.resolve(vm_status::STOPPED), "stopped");
        // The well-known strings keep theirs.
        assert_eq!(pool.intern("FAILED"), sym::FAILED);
        assert!(pool.is_empty());
        assert_eq!(pool.len(), sym::WELL_KNOWN.len() + 3);
    }
    let first_own = pools[0].intern("web-server-1");
    assert_eq!(first_own.index() as usize, sym::WELL_KNOWN.len() + 3);
    assert!(!pools[0].is_empty());
    assert_eq!(pools[0].preinterned(), vm_status::SET);
    assert_eq!(StringPool::new().preinterned(), Preinterned::EMPTY);
}

#[test]
fn a_frozen_pool_keeps_the_constants() {
    let pool = StringPool::with_preinterned(vm_status::SET);
    let own = pool.intern("tenant-7");
    let frozen = pool.freeze();
    assert_eq!(frozen.get("stopped"), Some(vm_status::STOPPED));
    assert_eq!(frozen.resolve(vm_status::MIGRATING), "migrating");
    assert_eq!(frozen.get("tenant-7"), Some(own));
    assert!(!frozen.is_empty());
    assert!(
        StringPool::with_preinterned(vm_status::SET)
            .freeze()
            .is_empty()
    );
}

#[test]
fn threads_interning_the_sets_strings_get_the_constants() {
    let pool = StringPool::with_preinterned(vm_status::SET);
    std::thread::scope(|s| {
        for t in 0..4 {
            let pool = &pool;
            s.spawn(move || {
                for i in 0..2_000 {
                    let word = ["running", "stopped", "migrating"][(i + t) % 3];
                    let want =
                        [vm_status::RUNNING, vm_status::STOPPED, vm_status::MIGRATING][(i + t) % 3];
                    assert_eq!(pool.intern(word), want);
                    pool.intern(&format!("vm-{t}-{i}"));
                }
            });
        }
    });
    assert_eq!(pool.len(), sym::WELL_KNOWN.len() + 3 + 8_000);
}

#[test]
fn the_memory_limit_counts_the_sets_strings_and_the_pool_stays_usable() {
    let pool = StringPool::with_preinterned(vm_status::SET);
    let limit = pool.memory_usage() + 10;
    let pool = pool.with_memory_limit(limit);
    assert_eq!(pool.try_intern("running"), Ok(vm_status::RUNNING));
    assert!(matches!(
        pool.try_intern(&"a string that needs a new chunk ".repeat(40)),
        Err(InternError::MemoryLimit { .. })
    ));
}

/// The process-wide pool is made once: after anything interned, a set cannot take its symbols.
#[test]
fn the_process_wide_pool_refuses_a_set_once_it_was_made_without_it() {
    flowmem_intern::intern("made-first");
    let err = flowmem_intern::preintern_global(vm_status::SET).unwrap_err();
    assert!(
        matches!(err, InternError::GlobalStarted { wanted: 3, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("before anything interns"), "{err}");
    // Nothing changed: the strings are not at the constants' symbols.
    assert_eq!(flowmem_intern::get("running"), None);
}

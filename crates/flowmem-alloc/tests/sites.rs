//! Sampled allocation sites with `Tracking` as the real global allocator: estimates close to the truth on
//! known sites, nothing allocated inside the allocator while sampling, live-at-peak figures, reports
//! written while many threads allocate, and the report files.

use std::{hint::black_box, sync::Mutex};

use flowmem_alloc::{
    AllocError, Tracking,
    sites::{self, Metric, SiteOptions},
};
use flowmem_testing::sites::{KNOWN_SHARES, known_shares};

#[global_allocator]
static GLOBAL: Tracking<std::alloc::System> = Tracking::new(std::alloc::System);

/// Sampling is process-wide: the tests take turns.
static TURN: Mutex<()> = Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    TURN.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[test]
fn shares_of_known_sites_are_estimated_within_five_points() {
    let _t = turn();
    let before = sites::report();
    sites::start(SiteOptions::new().mean_interval(4 * 1024)).unwrap();
    // 60/30/10 % of about 100 MB (10 MB under valgrind), interleaved.
    let rounds = flowmem_testing::iterations(100);
    known_shares(rounds as usize);
    sites::stop();
    let report = sites::report().since(&before);
    assert!(report.samples > 1_000, "{}", report.samples);
    let shares: Vec<f64> = KNOWN_SHARES
        .iter()
        .map(|(function, _)| report.share_of(function))
        .collect();
    let sum: f64 = shares.iter().sum();
    for (share, (_, truth)) in shares.iter().zip(KNOWN_SHARES) {
        let share = share / sum;
        assert!((share - truth).abs() <= 0.05, "{shares:?}\n{report}");
    }
    // The estimate of the bytes is close to what was allocated (about 120 MB at these three sites).
    let estimated: u64 = report
        .sites
        .iter()
        .filter(|s| s.passes_through("share_"))
        .map(|s| s.bytes)
        .sum();
    let actual = rounds * 1_000 * (603 + 302 + 101);
    let error = (estimated as f64 - actual as f64).abs() / actual as f64;
    assert!(error < 0.05, "estimated {estimated}, allocated {actual}");
    // The named site is the test's function, not the allocator's or Vec's.
    let top = report.top(Metric::Bytes, 1)[0];
    assert!(
        top.site().unwrap().function.contains("share_sixty"),
        "{report}"
    );
    assert_eq!(sites::reentered(), 0, "the sampler allocated");
    for s in report.sites.iter().filter(|s| s.passes_through("share_")) {
        assert_eq!(s.live_bytes, 0, "all freed: {s:?}");
    }
}

#[test]
fn the_sampler_never_allocates_while_many_threads_allocate_and_reports_are_written() {
    let _t = turn();
    sites::start(SiteOptions::new().mean_interval(1024)).unwrap();
    std::thread::scope(|s| {
        for t in 0..6 {
            s.spawn(move || {
                let mut keep = Vec::new();
                for i in 0..flowmem_testing::iterations(20_000) {
                    let v = vec![t as u8; 16 + (i as usize * 7) % 2048];
                    if i % 10 == 0 {
                        keep.push(v);
                    }
                    if keep.len() > 500 {
                        keep.clear();
                    }
                }
            });
        }
        s.spawn(|| {
            for _ in 0..20 {
                let report = sites::report();
                assert!(!report.to_string().is_empty());
            }
        });
    });
    sites::stop();
    assert_eq!(sites::reentered(), 0, "the sampler allocated");
    let report = sites::report();
    assert!(report.samples > 100);
    assert_eq!(report.dropped, 0, "{report}");
}

#[inline(never)]
fn held_at_the_peak() -> Vec<Vec<u8>> {
    (0..2_000).map(|_| vec![7u8; 4096]).collect()
}

#[inline(never)]
fn freed_at_once() {
    for _ in 0..flowmem_testing::iterations(20_000) {
        black_box(vec![8u8; 4096]);
    }
}

#[test]
fn live_at_peak_names_what_was_held_not_what_was_churned() {
    let _t = turn();
    sites::start(SiteOptions::new().mean_interval(8 * 1024)).unwrap();
    freed_at_once();
    let held = held_at_the_peak();
    let at_peak = sites::report();
    drop(held);
    freed_at_once();
    sites::stop();
    let after = sites::report();
    let peak = after.top(Metric::PeakBytes, 1)[0];
    assert!(peak.passes_through("held_at_the_peak"), "{after}");
    // About 8 MB held: the estimate of what is live at the peak is of that order.
    let held_estimate: u64 = at_peak
        .sites
        .iter()
        .filter(|s| s.passes_through("held_at_the_peak"))
        .map(|s| s.live_bytes)
        .sum();
    assert!(
        (6_000_000..11_000_000).contains(&held_estimate),
        "{held_estimate}\n{at_peak}"
    );
    // Freed: nothing of it is live any more, while the churned site allocated more in total.
    let live_now: u64 = after
        .sites
        .iter()
        .filter(|s| s.passes_through("held_at_the_peak"))
        .map(|s| s.live_bytes)
        .sum();
    assert_eq!(live_now, 0);
    let churned = after
        .top(Metric::Bytes, 3)
        .iter()
        .any(|s| s.passes_through("freed_at_once"));
    assert!(churned, "{after}");
}

#[test]
fn report_files_hold_the_text_the_folded_stacks_and_a_dhat_file() {
    let _t = turn();
    sites::start(SiteOptions::new().mean_interval(4 * 1024)).unwrap();
    known_shares(5);
    sites::stop();
    let report = sites::report();
    let dir = std::env::temp_dir().join(format!("flowmem-sites-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("sites.txt");
    report.write_files(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("flowmem allocation sites: "), "{text}");
    assert!(text.contains("Top sites by bytes allocated"));
    let folded = std::fs::read_to_string(dir.join("sites.txt.folded")).unwrap();
    let line = folded
        .lines()
        .find(|l| l.contains("share_ten"))
        .expect("a folded stack through share_ten");
    let (stack, value) = line.rsplit_once(' ').unwrap();
    assert!(value.parse::<u64>().unwrap() > 0);
    assert!(
        stack.find("share_ten") < stack.rfind(';'),
        "root first: {stack}"
    );
    let dhat = std::fs::read_to_string(dir.join("sites.txt.dhat.json")).unwrap();
    assert!(dhat.starts_with("{\"dhatFileVersion\":2"));
    assert!(dhat.contains("share_ten"));
    #[cfg(feature = "flamegraph")]
    {
        let svg = std::fs::read_to_string(dir.join("sites.txt.svg")).unwrap();
        assert!(svg.contains("<svg") && svg.contains("share_ten"));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_mean_interval_from_the_environment_must_be_a_positive_number() {
    let _t = turn();
    // SAFETY: the tests of this file take turns (TURN), and no other thread reads the environment.
    unsafe {
        std::env::set_var(sites::ENV_PATH, "unused.txt");
        std::env::set_var(sites::ENV_MEAN, "lots");
    }
    let err = sites::from_env().unwrap_err();
    assert!(
        matches!(
            err,
            AllocError::BadEnvironment {
                variable: sites::ENV_MEAN,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("\"lots\""), "{err}");
    // SAFETY: as above.
    unsafe {
        std::env::remove_var(sites::ENV_PATH);
        std::env::remove_var(sites::ENV_MEAN);
    }
    assert!(
        sites::from_env().unwrap().is_none(),
        "off without the variable"
    );
}

//! Figures that say when they cannot be trusted: the CPU time other processes took while a benchmark was
//! being measured.
//!
//! On a 2-core machine a two-thread figure taken while another process used a core is meaningless (one
//! thread of the two waits for the core). While criterion measures a benchmark (from its "Collecting"
//! line to its "Analyzing" line), the machine's busy time (`/proc/stat`) minus the CPU time of this
//! process tree (xtask, cargo, the bench binary: `/proc/<pid>/stat`) is the CPU others took. A benchmark
//! during which others took more than [`DISTURBED_CORES`] on average is *disturbed*: the bench measures it
//! again, and a target whose figure stays disturbed is reported as such instead of being judged. The
//! paired binary (ratios from alternating runs) prints the same progress lines around each ratio's
//! rounds, and its ratios are watched and measured again alike.

use std::{collections::HashMap, fs, time::Instant};

/// Others' average CPU use, in cores, above which a measurement is disturbed. The services this machine
/// runs idle below 0.05 cores together; a competing compile or test run takes a whole core.
pub(crate) const DISTURBED_CORES: f64 = 0.15;

/// Whether others' CPU use during a measurement (`None`: not known) makes its figure untrustworthy.
pub(crate) fn is_disturbed(others_cores: Option<f64>) -> bool {
    others_cores.is_some_and(|c| c > DISTURBED_CORES)
}

/// Clock ticks per second of `/proc` CPU times (`USER_HZ`: 100 on Linux, whatever `CONFIG_HZ`).
const TICKS_PER_SECOND: f64 = 100.0;

/// The machine's and this process tree's CPU time at one moment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CpuSample {
    /// Busy ticks of every CPU (user, nice, system, irq, softirq, steal).
    busy: u64,
    /// Ticks of this process and its descendants alive now.
    ours: u64,
    at: Instant,
}

/// A sample now; `None` where `/proc` does not tell (not Linux).
pub(crate) fn sample() -> Option<CpuSample> {
    let busy = machine_busy(&fs::read_to_string("/proc/stat").ok()?)?;
    let ours = tree_ticks(std::process::id())?;
    Some(CpuSample {
        busy,
        ours,
        at: Instant::now(),
    })
}

/// Others' average CPU use between two samples, in cores (0 when the window is too short to tell).
pub(crate) fn others_cores(before: &CpuSample, after: &CpuSample) -> f64 {
    let seconds = after.at.duration_since(before.at).as_secs_f64();
    if seconds < 0.05 {
        return 0.0;
    }
    let busy = after.busy.saturating_sub(before.busy);
    let ours = after.ours.saturating_sub(before.ours);
    busy.saturating_sub(ours) as f64 / TICKS_PER_SECOND / seconds
}

/// Busy ticks from the first line of `/proc/stat` (`cpu user nice system idle iowait irq softirq steal
/// guest guest_nice`; guest time is already in user time).
fn machine_busy(stat: &str) -> Option<u64> {
    let line = stat.lines().next()?;
    let mut fields = line.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    let v: Vec<u64> = fields.map(|f| f.parse().unwrap_or(0)).collect();
    let at = |i: usize| v.get(i).copied().unwrap_or(0);
    Some(at(0) + at(1) + at(2) + at(5) + at(6) + at(7))
}

/// `(ppid, utime + stime)` from a `/proc/<pid>/stat` line (the command name, in parentheses, may hold
/// spaces: fields are counted after its closing one).
fn parse_stat(line: &str) -> Option<(u32, u64)> {
    let rest = &line[line.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(0) ppid(1) ... utime(11) stime(12).
    let ppid = f.get(1)?.parse().ok()?;
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some((ppid, utime + stime))
}

/// CPU ticks of `root` and every live descendant of it.
fn tree_ticks(root: u32) -> Option<u64> {
    let mut procs: HashMap<u32, (u32, u64)> = HashMap::new();
    for entry in fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        // A process may end between the listing and the read: skip it.
        if let Some(parsed) = fs::read_to_string(entry.path().join("stat"))
            .ok()
            .as_deref()
            .and_then(parse_stat)
        {
            procs.insert(pid, parsed);
        }
    }
    let in_tree = |mut pid: u32| {
        for _ in 0..64 {
            if pid == root {
                return true;
            }
            match procs.get(&pid) {
                Some((ppid, _)) if *ppid != pid && *ppid != 0 => pid = *ppid,
                _ => return false,
            }
        }
        false
    };
    Some(
        procs
            .iter()
            .filter(|(pid, _)| in_tree(**pid))
            .map(|(_, (_, ticks))| ticks)
            .sum(),
    )
}

/// Follows criterion's progress lines of one bench process: a sample at each benchmark's "Collecting"
/// line and another at its "Analyzing" line give others' CPU use during its measurement.
#[derive(Debug, Default)]
pub(crate) struct Watch {
    open: Option<(String, CpuSample)>,
    /// Others' average CPU use (cores) during each benchmark's measurement, by id.
    pub(crate) seen: HashMap<String, f64>,
}

impl Watch {
    /// Looks at one line of criterion's output.
    pub(crate) fn line(&mut self, line: &str) {
        let Some(rest) = line.strip_prefix("Benchmarking ") else {
            return;
        };
        let Some((id, what)) = rest.split_once(": ") else {
            return;
        };
        if what.starts_with("Collecting") {
            self.open = sample().map(|s| (id.to_string(), s));
        } else if what.starts_with("Analyzing")
            && let Some((open_id, before)) = self.open.take()
            && open_id == id
            && let Some(after) = sample()
        {
            self.seen.insert(open_id, others_cores(&before, &after));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_lines_parse() {
        let stat = "cpu  100 5 50 1000 7 3 2 1 0 0\ncpu0 50 2 25 500 3 1 1 0 0 0\n";
        assert_eq!(machine_busy(stat), Some(100 + 5 + 50 + 3 + 2 + 1));
        assert_eq!(machine_busy("intr 1 2 3"), None);
        let line =
            "4242 (cargo bench (x)) S 4200 4242 4200 0 -1 4194304 100 0 0 0 70 30 0 0 20 0 4 0";
        assert_eq!(parse_stat(line), Some((4200, 100)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn this_process_is_in_its_own_tree_and_burns_ticks() {
        let before = tree_ticks(std::process::id()).unwrap();
        let start = Instant::now();
        let mut x = 0u64;
        while start.elapsed().as_millis() < 120 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let after = tree_ticks(std::process::id()).unwrap();
        assert!(after > before, "{before} -> {after}");
    }

    #[test]
    fn a_watch_measures_from_collecting_to_analyzing() {
        let mut w = Watch::default();
        w.line("Benchmarking g/f");
        w.line("Benchmarking g/f: Warming up for 3.0000 s");
        w.line("Benchmarking g/f: Collecting 100 samples in estimated 5.0 s (10k iterations)");
        std::thread::sleep(std::time::Duration::from_millis(80));
        w.line("Benchmarking g/f: Analyzing");
        let cores = w.seen["g/f"];
        assert!((0.0..=2.5).contains(&cores), "{cores}");
        // An "Analyzing" line of another benchmark than the open one is not paired with it.
        w.line("Benchmarking g/h: Collecting 10 samples");
        w.line("Benchmarking g/i: Analyzing");
        assert!(!w.seen.contains_key("g/i") && !w.seen.contains_key("g/h"));
    }
}

//! [`SiteReport`]: the sampled sites with their symbols, as text, folded stacks, a flamegraph or a DHAT
//! file. Built outside the allocator: it allocates freely.

use std::{
    collections::HashMap,
    fmt::{self, Write as _},
    io,
    path::Path,
    sync::atomic::Ordering::Relaxed,
};

use super::{
    sampler,
    table::{self, MAX_FRAMES, SITES},
};

/// One frame of a site's stack.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Frame {
    /// The function, demangled (`"??"` when the symbol is unknown).
    pub function: String,
    /// Its source file, when debug information has it.
    pub file: Option<String>,
    /// Its line, when debug information has it.
    pub line: Option<u32>,
}

impl fmt::Display for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.function)?;
        match (&self.file, self.line) {
            (Some(file), Some(line)) => write!(f, " ({file}:{line})"),
            (Some(file), None) => write!(f, " ({file})"),
            _ => Ok(()),
        }
    }
}

/// What was sampled at one site (one stack), as estimates of the whole: each sample weighted by the
/// inverse of its chance to be sampled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteStats {
    /// The stack, innermost (the allocating function) first; the allocator's own frames are left out.
    pub stack: Vec<Frame>,
    /// Samples taken here.
    pub samples: u64,
    /// Estimated bytes allocated here.
    pub bytes: u64,
    /// Estimated allocations made here.
    pub allocations: u64,
    /// Estimated bytes allocated here and live when the report was made.
    pub live_bytes: u64,
    /// Estimated bytes allocated here and live at the peak of the sampled live total.
    pub peak_bytes: u64,
    /// Estimated allocations live at that peak.
    pub peak_allocations: u64,
}

impl SiteStats {
    /// The frame that names the site: the first one outside the standard library's allocation and
    /// collection code (`alloc::`, `core::`, `hashbrown::`, ...), or the innermost frame.
    pub fn site(&self) -> Option<&Frame> {
        self.stack
            .iter()
            .find(|f| !is_library(&f.function))
            .or_else(|| self.stack.first())
    }

    /// Whether any frame's function name contains `text`.
    pub fn passes_through(&self, text: &str) -> bool {
        self.stack.iter().any(|f| f.function.contains(text))
    }

    fn value(&self, metric: Metric) -> u64 {
        match metric {
            Metric::Bytes => self.bytes,
            Metric::Allocations => self.allocations,
            Metric::PeakBytes => self.peak_bytes,
        }
    }
}

/// Which figure a ranking or a folded file is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Estimated bytes allocated in total.
    Bytes,
    /// Estimated allocations in total.
    Allocations,
    /// Estimated bytes live at the peak.
    PeakBytes,
}

/// Every sampled site, from [`report`](super::report).
#[derive(Debug, Clone, PartialEq)]
pub struct SiteReport {
    /// The mean interval sampling ran with (the last [`start`](super::start)'s).
    pub mean_interval: u64,
    /// Samples taken.
    pub samples: u64,
    /// Samples whose stack found no room in the site table (counted nowhere else).
    pub dropped: u64,
    /// Samples whose allocation found no room in the live table (in totals, not in live figures).
    pub untracked_live: u64,
    /// Estimated bytes of sampled allocations live at the peak.
    pub peak_live_bytes: u64,
    /// Estimated bytes of sampled allocations live now.
    pub live_bytes: u64,
    /// The sites, most bytes first (identical stacks once the allocator's frames are cut are merged).
    pub sites: Vec<SiteStats>,
}

/// Function names of the allocation path itself: the sampler, `Tracking`, the global allocator shims.
fn is_allocator(function: &str) -> bool {
    let f = function.trim_start_matches('<');
    [
        "flowmem_alloc::sites",
        "flowmem_alloc::tracking",
        "backtrace::",
        "__rustc::__rust_",
        "__rust_alloc",
        "__rust_realloc",
        "__rdl_",
    ]
    .iter()
    .any(|p| f.starts_with(p))
}

/// Function names of the standard library's allocation and collection code.
fn is_library(function: &str) -> bool {
    let in_library = |path: &str| {
        ["alloc::", "core::", "std::", "hashbrown::"]
            .iter()
            .any(|p| path.starts_with(p))
    };
    let f = function.trim_start_matches('<');
    match f.split_once(" as ") {
        // `<Type as Trait>::method`: the type's crate decides, unless the type is a primitive (`u8`,
        // `str`, `[T]`), whose impls are the trait's crate's.
        Some((ty, tr)) => {
            in_library(ty) || (!ty.contains("::") && in_library(tr.trim_start_matches('<')))
        }
        None => in_library(f),
    }
}

/// The frames of return address `ip` (more than one where calls were inlined), innermost first.
fn resolve(ip: usize, cache: &mut HashMap<usize, Vec<Frame>>) -> Vec<Frame> {
    cache
        .entry(ip)
        .or_insert_with(|| {
            let mut frames = Vec::new();
            // A return address points after the call: look up the call itself.
            backtrace::resolve(ip.saturating_sub(1) as *mut std::ffi::c_void, |symbol| {
                frames.push(Frame {
                    function: symbol
                        .name()
                        .map_or_else(|| "??".to_string(), |n| format!("{n:#}")),
                    file: symbol.filename().map(|p| p.display().to_string()),
                    line: symbol.lineno(),
                });
            });
            if frames.is_empty() {
                frames.push(Frame {
                    function: format!("{ip:#x}"),
                    file: None,
                    line: None,
                });
            }
            frames
        })
        .clone()
}

pub(super) fn build() -> SiteReport {
    let mut cache = HashMap::new();
    let mut merged: HashMap<Vec<Frame>, SiteStats> = HashMap::new();
    let mut raw = [0usize; MAX_FRAMES];
    for site in &SITES {
        let Some(depth) = site.frames(&mut raw) else {
            continue;
        };
        let mut stack: Vec<Frame> = raw[..depth]
            .iter()
            .flat_map(|ip| resolve(*ip, &mut cache))
            .collect();
        if let Some(last) = stack.iter().rposition(|f| is_allocator(&f.function)) {
            stack.drain(..=last);
        }
        let entry = merged.entry(stack.clone()).or_insert_with(|| SiteStats {
            stack,
            samples: 0,
            bytes: 0,
            allocations: 0,
            live_bytes: 0,
            peak_bytes: 0,
            peak_allocations: 0,
        });
        entry.samples += site.samples.load(Relaxed);
        entry.bytes += site.bytes.load(Relaxed);
        entry.allocations += site.count_milli.load(Relaxed) / 1000;
        entry.live_bytes += site.live_bytes.load(Relaxed).max(0) as u64;
        entry.peak_bytes += site.peak_bytes.load(Relaxed).max(0) as u64;
        entry.peak_allocations += site.peak_count_milli.load(Relaxed).max(0) as u64 / 1000;
    }
    let mut sites: Vec<SiteStats> = merged.into_values().filter(|s| s.samples > 0).collect();
    sites.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(b.samples.cmp(&a.samples)));
    SiteReport {
        mean_interval: sampler::MEAN.load(Relaxed),
        samples: sampler::SAMPLES.load(Relaxed),
        dropped: table::DROPPED_SITES.load(Relaxed),
        untracked_live: table::UNTRACKED_LIVE.load(Relaxed),
        peak_live_bytes: table::PEAK_BYTES.load(Relaxed).max(0) as u64,
        live_bytes: table::live_bytes().max(0) as u64,
        sites,
    }
}

impl SiteReport {
    /// Estimated bytes allocated at all sites.
    pub fn total_bytes(&self) -> u64 {
        self.sites.iter().map(|s| s.bytes).sum()
    }

    /// Estimated allocations at all sites.
    pub fn total_allocations(&self) -> u64 {
        self.sites.iter().map(|s| s.allocations).sum()
    }

    /// The `n` sites with most of `metric`.
    pub fn top(&self, metric: Metric, n: usize) -> Vec<&SiteStats> {
        let mut sites: Vec<&SiteStats> =
            self.sites.iter().filter(|s| s.value(metric) > 0).collect();
        sites.sort_by_key(|s| std::cmp::Reverse(s.value(metric)));
        sites.truncate(n);
        sites
    }

    /// The share of estimated bytes allocated by sites whose stack passes through a function whose name
    /// contains `function` (0 when nothing was sampled).
    pub fn share_of(&self, function: &str) -> f64 {
        let total = self.total_bytes();
        if total == 0 {
            return 0.0;
        }
        let part: u64 = self
            .sites
            .iter()
            .filter(|s| s.passes_through(function))
            .map(|s| s.bytes)
            .sum();
        part as f64 / total as f64
    }

    /// What was sampled after `earlier` (an earlier report of the same process): totals are subtracted
    /// site by site; live and peak figures are this report's.
    pub fn since(&self, earlier: &SiteReport) -> SiteReport {
        let before: HashMap<&[Frame], &SiteStats> = earlier
            .sites
            .iter()
            .map(|s| (s.stack.as_slice(), s))
            .collect();
        let mut sites: Vec<SiteStats> = self
            .sites
            .iter()
            .map(|s| {
                let mut s = s.clone();
                if let Some(b) = before.get(s.stack.as_slice()) {
                    s.samples = s.samples.saturating_sub(b.samples);
                    s.bytes = s.bytes.saturating_sub(b.bytes);
                    s.allocations = s.allocations.saturating_sub(b.allocations);
                }
                s
            })
            .filter(|s| s.samples > 0)
            .collect();
        sites.sort_by_key(|s| std::cmp::Reverse(s.bytes));
        SiteReport {
            samples: self.samples.saturating_sub(earlier.samples),
            dropped: self.dropped.saturating_sub(earlier.dropped),
            untracked_live: self.untracked_live.saturating_sub(earlier.untracked_live),
            sites,
            ..self.clone()
        }
    }

    /// Folded stacks of `metric` (`outer;...;inner value` per line, root first): the input of
    /// flamegraph tools (inferno, Brendan Gregg's `flamegraph.pl`, speedscope).
    pub fn folded(&self, metric: Metric) -> String {
        let mut out = String::new();
        for s in &self.sites {
            let value = s.value(metric);
            if value == 0 {
                continue;
            }
            let names: Vec<String> = s
                .stack
                .iter()
                .rev()
                .map(|f| f.function.replace(';', ":"))
                .collect();
            let _ = writeln!(
                out,
                "{} {value}",
                if names.is_empty() {
                    "??".to_string()
                } else {
                    names.join(";")
                }
            );
        }
        out
    }

    /// A flamegraph SVG of `metric`, drawn by inferno.
    ///
    /// # Errors
    ///
    /// inferno's, or the writer's.
    #[cfg(feature = "flamegraph")]
    pub fn flamegraph(&self, metric: Metric, out: impl io::Write) -> io::Result<()> {
        let folded = self.folded(metric);
        let mut options = inferno::flamegraph::Options::default();
        options.title = match metric {
            Metric::Bytes => "Bytes allocated (sampled estimate)",
            Metric::Allocations => "Allocations (sampled estimate)",
            Metric::PeakBytes => "Bytes live at the peak (sampled estimate)",
        }
        .to_string();
        options.count_name = match metric {
            Metric::Allocations => "allocations",
            _ => "bytes",
        }
        .to_string();
        inferno::flamegraph::from_lines(&mut options, folded.lines(), out)
            .map_err(|e| io::Error::other(format!("flamegraph: {e}")))
    }

    /// A file DHAT's viewer (`dh_view.html`, from valgrind) opens: one program point per site, with total
    /// and at-peak bytes and blocks (estimates; lifetimes are not sampled and show as 0).
    ///
    /// # Errors
    ///
    /// The writer's.
    pub fn write_dhat(&self, mut out: impl io::Write) -> io::Result<()> {
        let mut frames: Vec<String> = vec!["[root]".to_string()];
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut points = String::new();
        for (n, s) in self.sites.iter().enumerate() {
            let mut ids = Vec::new();
            for f in &s.stack {
                let text = f.to_string();
                let id = *index.entry(text.clone()).or_insert_with(|| {
                    frames.push(text);
                    frames.len() - 1
                });
                ids.push(id.to_string());
            }
            let _ = write!(
                points,
                "{}{{\"tb\":{},\"tbk\":{},\"tl\":0,\"mb\":{},\"mbk\":{},\"gb\":{},\"gbk\":{},\"eb\":{},\"ebk\":0,\"fs\":[{}]}}",
                if n == 0 { "" } else { ",\n" },
                s.bytes,
                s.allocations,
                s.peak_bytes,
                s.peak_allocations,
                s.peak_bytes,
                s.peak_allocations,
                s.live_bytes,
                ids.join(",")
            );
        }
        let ftbl: Vec<String> = frames.iter().map(|f| json_string(f)).collect();
        write!(
            out,
            "{{\"dhatFileVersion\":2,\"mode\":\"rust-heap\",\"verb\":\"Allocated\",\"bklt\":true,\"bkacc\":false,\
             \"tu\":\"µs\",\"Mtu\":\"s\",\"tuth\":10,\"cmd\":{},\"pid\":{},\"te\":0,\"tg\":0,\n\"pps\":[\n{points}\n],\n\"ftbl\":[\n{}\n]}}\n",
            json_string(&std::env::args().collect::<Vec<_>>().join(" ")),
            std::process::id(),
            ftbl.join(",\n")
        )
    }

    /// Writes `path` (this report as text), `path.folded` (folded stacks of bytes), `path.dhat.json` (for
    /// DHAT's viewer) and, with the `flamegraph` feature, `path.svg`.
    ///
    /// # Errors
    ///
    /// The first file that could not be written, named in the error.
    pub fn write_files(&self, path: &Path) -> io::Result<()> {
        let named =
            |p: &Path, e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", p.display()));
        let with = |ext: &str| {
            let mut p = path.as_os_str().to_owned();
            p.push(ext);
            std::path::PathBuf::from(p)
        };
        std::fs::write(path, self.to_string()).map_err(|e| named(path, e))?;
        let folded = with(".folded");
        std::fs::write(&folded, self.folded(Metric::Bytes)).map_err(|e| named(&folded, e))?;
        let dhat = with(".dhat.json");
        let mut buf = Vec::new();
        self.write_dhat(&mut buf)?;
        std::fs::write(&dhat, buf).map_err(|e| named(&dhat, e))?;
        #[cfg(feature = "flamegraph")]
        {
            let svg = with(".svg");
            let mut buf = Vec::new();
            self.flamegraph(Metric::Bytes, &mut buf)
                .map_err(|e| named(&svg, e))?;
            std::fs::write(&svg, buf).map_err(|e| named(&svg, e))?;
        }
        Ok(())
    }

    fn table(
        &self,
        f: &mut fmt::Formatter<'_>,
        metric: Metric,
        title: &str,
        n: usize,
    ) -> fmt::Result {
        let top = self.top(metric, n);
        writeln!(f, "\n{title}")?;
        if top.is_empty() {
            return writeln!(f, "  (none sampled)");
        }
        let total: u64 = self
            .sites
            .iter()
            .map(|s| s.value(metric))
            .sum::<u64>()
            .max(1);
        writeln!(
            f,
            "  {:>3}  {:>12}  {:>6}  {:>12}  {:>7}  site",
            "#", "bytes", "share", "allocations", "samples"
        )?;
        for (i, s) in top.iter().enumerate() {
            let (bytes, allocations) = match metric {
                Metric::PeakBytes => (s.peak_bytes, s.peak_allocations),
                _ => (s.bytes, s.allocations),
            };
            writeln!(
                f,
                "  {:>3}  {:>12}  {:>5.1}%  {:>12}  {:>7}  {}",
                i + 1,
                human_bytes(bytes),
                100.0 * s.value(metric) as f64 / total as f64,
                allocations,
                s.samples,
                s.site().map_or_else(|| "??".to_string(), Frame::to_string)
            )?;
            let start = s
                .site()
                .and_then(|site| s.stack.iter().position(|x| x == site))
                .unwrap_or(0);
            for caller in s.stack.iter().skip(start + 1).take(3) {
                writeln!(f, "  {:>52}  <- {caller}", "")?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for SiteReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "flowmem allocation sites: {} samples (one per {} on average), estimated {} in {} allocations; \
             live at peak {}, live now {}",
            self.samples,
            human_bytes(self.mean_interval),
            human_bytes(self.total_bytes()),
            self.total_allocations(),
            human_bytes(self.peak_live_bytes),
            human_bytes(self.live_bytes),
        )?;
        if self.dropped > 0 || self.untracked_live > 0 {
            writeln!(
                f,
                "({} samples found no room in the site table, {} none in the live table)",
                self.dropped, self.untracked_live
            )?;
        }
        self.table(
            f,
            Metric::Bytes,
            "Top sites by bytes allocated (estimates)",
            10,
        )?;
        self.table(
            f,
            Metric::Allocations,
            "Top sites by allocations (estimates)",
            10,
        )?;
        self.table(
            f,
            Metric::PeakBytes,
            "Top sites by bytes live at the peak (estimates)",
            10,
        )
    }
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_string("a\"b\\c\nd\u{1}"), "\"a\\\"b\\\\c\\nd\\u0001\"");
    }

    #[test]
    fn bytes_read_as_people_write_them() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
    }

    #[test]
    fn library_frames_do_not_name_a_site() {
        let frame = |name: &str| Frame {
            function: name.into(),
            file: None,
            line: None,
        };
        let s = SiteStats {
            stack: vec![
                frame("alloc::raw_vec::RawVec<T,A>::grow_one"),
                frame("<u8 as alloc::vec::spec_from_elem::SpecFromElem>::from_elem"),
                frame("<alloc::vec::Vec<T> as Clone>::clone"),
                frame("my_app::parse"),
                frame("main"),
            ],
            samples: 1,
            bytes: 10,
            allocations: 1,
            live_bytes: 0,
            peak_bytes: 0,
            peak_allocations: 0,
        };
        assert_eq!(s.site().unwrap().function, "my_app::parse");
        assert!(!is_library("<my_app::Row as core::clone::Clone>::clone"));
        assert!(s.passes_through("parse") && !s.passes_through("load"));
    }
}

//! What the examples in `benches/examples/` share: their command-line checks and a timed loop.

/// One example's command line: its name and usage line, for the messages that refuse a bad argument.
#[derive(Debug, Clone, Copy)]
pub struct CommandLine {
    /// The example's name, which starts each message.
    pub program: &'static str,
    /// Its arguments, as the usage line shows them.
    pub usage: &'static str,
}

impl CommandLine {
    /// Prints what was wrong with the command line and the usage line, and exits with status 2.
    pub fn refuse(&self, message: &str) -> ! {
        eprintln!("{}: {message}", self.program);
        eprintln!("usage: {} {}", self.program, self.usage);
        std::process::exit(2);
    }

    /// `arg` as a positive number, or `default` when it is absent; anything else is refused, naming the
    /// argument and the value.
    pub fn count(&self, arg: Option<&str>, name: &str, default: u64) -> u64 {
        match arg.map(str::parse::<u64>) {
            None => default,
            Some(Ok(n)) if n > 0 => n,
            Some(_) => self.refuse(&format!(
                "{name} must be a positive number, not {:?}",
                arg.unwrap_or_default()
            )),
        }
    }
}

/// Runs `once` `n` times and returns the nanoseconds each took on average.
pub fn ns_each(n: u64, mut once: impl FnMut()) -> f64 {
    let start = std::time::Instant::now();
    for _ in 0..n {
        once();
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

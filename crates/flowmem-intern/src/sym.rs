//! Pre-interned well-known strings.
//!
//! Every [`StringPool`](crate::StringPool) interns [`WELL_KNOWN`] first, in this order, so the constants
//! below are the symbols of those strings in every pool: code can match on `sym::COMPLETED` without a
//! lookup, and symbols from different pools agree on them.

use crate::Symbol;

macro_rules! well_known {
    ($($name:ident = $text:literal),* $(,)?) => {
        /// The pre-interned strings, in interning order: `WELL_KNOWN[i]` has the symbol of index `i`.
        pub const WELL_KNOWN: &[&str] = &[$($text),*];
        well_known!(@next 0u32; $($name = $text),*);
    };
    (@next $i:expr; $name:ident = $text:literal $(, $rest:ident = $rest_text:literal)*) => {
        #[doc = concat!("`\"", $text, "\"`, pre-interned in every pool.")]
        pub const $name: Symbol = Symbol::from_index($i);
        well_known!(@next $i + 1; $($rest = $rest_text),*);
    };
    (@next $i:expr;) => {};
}

well_known! {
    PENDING = "PENDING",
    READY = "READY",
    RUNNING = "RUNNING",
    COMPLETED = "COMPLETED",
    FAILED = "FAILED",
    SKIPPED = "SKIPPED",
    CANCELLED = "CANCELLED",
    RETRYING = "RETRYING",
    TIMED_OUT = "TIMED_OUT",
    INPUT = "input",
    OUTPUT = "output",
    ERROR = "error",
    RESULT = "result",
    STATUS = "status",
    ATTEMPT = "attempt",
    DURATION = "duration",
    NODE = "node",
    WORKFLOW = "workflow",
    RUN = "run",
    DEFAULT = "default",
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_follow_the_table() {
        let constants = [
            PENDING, READY, RUNNING, COMPLETED, FAILED, SKIPPED, CANCELLED, RETRYING, TIMED_OUT,
            INPUT, OUTPUT, ERROR, RESULT, STATUS, ATTEMPT, DURATION, NODE, WORKFLOW, RUN, DEFAULT,
        ];
        assert_eq!(constants.len(), WELL_KNOWN.len());
        for (i, c) in constants.iter().enumerate() {
            assert_eq!(c.index() as usize, i);
        }
        let mut sorted = WELL_KNOWN.to_vec();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), WELL_KNOWN.len(), "no string twice");
    }
}

//! The built-in actions a JSON definition can name without any code: `noop`, `sleep:DURATION`,
//! `spin:DURATION`, `fail`, `fail:MESSAGE`, `flaky:N`, `panic`, `panic:MESSAGE`.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use crate::{Action, ActionError, NodeCtx, Registry};

/// Registers the built-in actions in `registry` (the process-wide [`registry()`](crate::registry) has
/// them from the start):
///
/// | name | does |
/// |---|---|
/// | `noop` | nothing |
/// | `sleep:DURATION` | sleeps (an I/O stand-in that holds its worker), e.g. `sleep:250ms` |
/// | `spin:DURATION` | busy-waits (a CPU stand-in), e.g. `spin:2ms` |
/// | `fail`, `fail:MESSAGE` | fails (retries apply) |
/// | `flaky:N` | fails its first `N` attempts, then completes |
/// | `panic`, `panic:MESSAGE` | panics (the node fails with kind `Panicked`) |
///
/// A duration is a number and a unit: `ns`, `us` (or `µs`), `ms`, `s`, `m`, `h` (`1.5s`, `250ms`).
pub(crate) fn register_builtins(registry: &Registry) {
    registry.register("noop", |_: &mut NodeCtx<'_>| Ok::<(), ActionError>(()));
    registry.register("fail", |_: &mut NodeCtx<'_>| {
        Err::<(), _>(ActionError::new("the built-in action `fail` failed"))
    });
    registry.register("panic", |_: &mut NodeCtx<'_>| -> Result<(), ActionError> {
        panic!("the built-in action `panic` panicked")
    });
    registry.register_family("sleep", |arg| {
        let d = parse_duration(arg)?;
        Ok(Arc::new(move |_: &mut NodeCtx<'_>| {
            std::thread::sleep(d);
            Ok::<(), ActionError>(())
        }) as Arc<dyn Action>)
    });
    registry.register_family("spin", |arg| {
        let d = parse_duration(arg)?;
        Ok(Arc::new(move |_: &mut NodeCtx<'_>| {
            let start = Instant::now();
            while start.elapsed() < d {
                std::hint::spin_loop();
            }
            Ok::<(), ActionError>(())
        }) as Arc<dyn Action>)
    });
    registry.register_family("fail", |arg| {
        let message: Arc<str> = Arc::from(arg);
        Ok(
            Arc::new(move |_: &mut NodeCtx<'_>| Err::<(), _>(ActionError::new(&message)))
                as Arc<dyn Action>,
        )
    });
    registry.register_family("panic", |arg| {
        let message: Arc<str> = Arc::from(arg);
        Ok(
            Arc::new(move |_: &mut NodeCtx<'_>| -> Result<(), ActionError> { panic!("{message}") })
                as Arc<dyn Action>,
        )
    });
    registry.register_family("flaky", |arg| {
        let failures: u32 = arg
            .parse()
            .map_err(|_| format!("`{arg}` is not a number of attempts to fail"))?;
        Ok(Arc::new(move |ctx: &mut NodeCtx<'_>| {
            if ctx.attempt() <= failures {
                Err(ActionError::new(format!(
                    "the built-in action `flaky:{failures}` failed attempt {}",
                    ctx.attempt()
                )))
            } else {
                Ok(())
            }
        }) as Arc<dyn Action>)
    });
}

/// Parses `250ms`, `1.5s`, `10us`, `2m`.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (a number and a unit: 250ms, 1.5s)"))?;
    let seconds = match unit.trim() {
        "ns" => 1e-9,
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "" => return Err(format!("`{text}` has no unit (ns, us, ms, s, m, h)")),
        other => {
            return Err(format!(
                "`{other}` in `{text}` is not a unit (ns, us, ms, s, m, h)"
            ));
        }
    };
    Duration::try_from_secs_f64(value * seconds)
        .map_err(|_| format!("`{text}` is out of range for a duration"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_their_unit() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("10us"), Ok(Duration::from_micros(10)));
        assert_eq!(parse_duration("10µs"), Ok(Duration::from_micros(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("7ns"), Ok(Duration::from_nanos(7)));
        assert!(parse_duration("12").unwrap_err().contains("no unit"));
        assert!(
            parse_duration("1.5 fortnights")
                .unwrap_err()
                .contains("not a unit")
        );
        assert!(parse_duration("ms").unwrap_err().contains("not a duration"));
        assert!(parse_duration("1e400s").is_err());
    }
}

//! The log: `tracing` events on stderr. `siyu serve` writes them as text for people or
//! JSON lines for a collector; the other commands write warnings only, as short lines
//! beside their output. Events carry ids, routes and counts, never a customer's name or
//! phone, and no customer id either (a request's span names its route's template, not its
//! path).

use tracing_subscriber::EnvFilter;

/// How `siyu serve` writes its log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One line per event for people: time, level, where, message and fields.
    #[default]
    Text,
    /// One JSON object per line, with the event's fields and its spans'.
    Json,
}

/// The variable that chooses what is logged, as `RUST_LOG` would (`info` when unset;
/// `debug` adds a line per request and per store job).
pub const FILTER_VAR: &str = "SIYU_LOG__FILTER";

/// Sends the process's `tracing` events to stderr in `format`. Once per process; a second
/// call (tests that start several servers in one process) leaves the first in place.
pub fn init(format: LogFormat) -> anyhow::Result<()> {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter("info")?)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    Ok(())
}

/// The log of a command other than `siyu serve`: warnings (a saved rule that no longer
/// reads, …) as `WARN …` lines on stderr, without times or module paths.
pub fn init_command() -> anyhow::Result<()> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter("warn")?)
        .with_writer(std::io::stderr)
        .without_time()
        .with_target(false)
        .try_init();
    Ok(())
}

fn filter(default: &str) -> anyhow::Result<EnvFilter> {
    match std::env::var(FILTER_VAR) {
        Ok(text) => EnvFilter::try_new(&text)
            .map_err(|e| anyhow::anyhow!("{FILTER_VAR}: '{text}' is not a log filter: {e}")),
        Err(_) => Ok(EnvFilter::new(default)),
    }
}

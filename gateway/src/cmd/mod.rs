//! The subcommands of the `gateway` binary: parsing ([`cli`]), exit statuses ([`exit`]), and one
//! module per subcommand ([`serve`], [`sweep`], [`presign`], [`events`], [`upload`]),
//! and what they share: flags
//! layered over the environment ([`layered`]) and the log set-up ([`init_tracing`], with its
//! filter for other crates' lines about a peer's missteps, [`log_filter`]).

pub mod cli;
pub mod events;
pub mod exit;
pub mod log_filter;
pub mod presign;
pub mod serve;
pub mod sweep;
pub mod upload;

use exit::Exit;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// A lookup reading `overrides` (a subcommand's flags, as `(variable, value)` pairs) first and
/// `env` for the rest: a flag wins over its variable.
pub fn layered<'a>(
    overrides: &'a [(&'static str, String)],
    env: &'a dyn Fn(&str) -> Option<String>,
) -> impl Fn(&str) -> Option<String> + 'a {
    move |k: &str| {
        overrides
            .iter()
            .find(|(name, _)| *name == k)
            .map(|(_, v)| v.clone())
            .or_else(|| env(k))
    }
}

/// Logs to stderr, filtered by `DRAFTSTORE_LOG` as `get` finds it (the environment, under a
/// subcommand's flags; default `info`); JSON lines when `json`. A second call does nothing.
///
/// # Errors
/// `DRAFTSTORE_LOG` set to something that is not a filter (exit 64), rather than logging at
/// `info` without a word.
pub fn init_tracing(json: bool, get: &dyn Fn(&str) -> Option<String>) -> Result<(), Exit> {
    let name = crate::config::name::DRAFTSTORE_LOG;
    let filter = match get(name) {
        Some(value) => tracing_subscriber::EnvFilter::try_new(&value)
            .map_err(|e| Exit::usage(format!("{name} is not a log filter: {e}")))?,
        None => tracing_subscriber::EnvFilter::new("info"),
    };
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let lines = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let lines = if json {
        lines.json().boxed()
    } else {
        lines.boxed()
    };
    // JSON lines hold each message as one escaped string already: no quotes of our own.
    crate::http::layer::observe::quote_messages(!json);
    // The level filter first: a line it drops takes nothing from the budget.
    let budget = log_filter::PeerFaultLines::new(&crate::http::layer::log_budget::CLIENT_FAULTS);
    let _ = tracing_subscriber::registry()
        .with(lines.with_filter(budget).with_filter(filter))
        .try_init();
    Ok(())
}

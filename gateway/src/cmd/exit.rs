//! How the binary ends on failure: one line on stderr and a sysexits-style code.

use std::process::ExitCode;

/// `EX_USAGE`: bad arguments, bad configuration, missing credentials.
pub const USAGE: u8 = 64;
/// `EX_UNAVAILABLE`: a port could not be bound, the runtime could not start.
pub const UNAVAILABLE: u8 = 69;
/// `EX_TEMPFAIL`: `serve` stopped, but the drain (grace period, or a second SIGTERM/SIGINT)
/// cut requests off; their clients may retry.
pub const DRAIN_CUT: u8 = 75;

/// A failure to report: the message (one line) and the exit code.
#[derive(Debug, PartialEq, Eq)]
pub struct Exit {
    /// The process exit status (0, 1, [`USAGE`] or [`UNAVAILABLE`]).
    pub code: u8,
    /// One line for stderr.
    pub message: String,
}

impl Exit {
    /// Bad input or configuration: exit [`USAGE`] (64).
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            code: USAGE,
            message: message.into(),
        }
    }

    /// A service or resource is missing (a port, a folder): exit [`UNAVAILABLE`] (69).
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self {
            code: UNAVAILABLE,
            message: message.into(),
        }
    }

    /// Prints the message (already one line) and returns the code. Help and version output
    /// (code 0) go to stdout.
    pub fn report(self) -> ExitCode {
        if self.code == 0 {
            print!("{}", self.message);
        } else {
            eprintln!("gateway: {}", self.message);
        }
        ExitCode::from(self.code)
    }
}

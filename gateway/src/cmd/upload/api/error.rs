//! Why an API call failed, and its one mapping to the client's exit statuses.

use crate::api::code::Code;
use crate::cmd::exit::Exit;
use crate::cmd::upload::failed;
use serde::Deserialize;

/// REST's error body, `{"error": {"code", "message"}}`.
#[derive(Deserialize)]
pub(super) struct ErrorBody {
    pub(super) error: ErrorFields,
}

#[derive(Deserialize)]
pub(super) struct ErrorFields {
    pub(super) code: String,
    pub(super) message: String,
}

/// Why a call failed.
#[derive(Debug)]
pub(super) enum CallError {
    /// No connection was ever made: exit 69.
    Unreachable(String),
    /// The server answered with an error.
    Refused {
        route: String,
        status: u16,
        code: Option<String>,
        message: String,
    },
    /// The connection broke, or the answer could not be read.
    Broken(String),
}

impl CallError {
    /// Whether the server does not serve the route at all (an older gateway).
    pub(super) fn no_such_route(&self) -> bool {
        matches!(self, Self::Refused { code: Some(code), .. } if code == Code::NoSuchRoute.as_str())
    }
}

impl From<CallError> for Exit {
    fn from(error: CallError) -> Self {
        match error {
            CallError::Unreachable(message) => Exit::unavailable(message),
            CallError::Broken(message) => failed(message),
            CallError::Refused {
                route,
                status,
                code,
                message,
            } => {
                let hint = match status {
                    401 => " (check the token: DRAFTSTORE_TOKEN or --token-file)",
                    403 => " (the token is not allowed this)",
                    404 if code.as_deref() == Some(Code::NoSuchRoute.as_str()) => {
                        " (this server has no such route: an older DraftStore?)"
                    }
                    _ => "",
                };
                let code = code.map(|c| format!("{c}: ")).unwrap_or_default();
                failed(format!("{route} refused: {status} {code}{message}{hint}"))
            }
        }
    }
}

/// A transport error in one line, with its causes but never the URL (a presigned URL's query
/// is a credential).
#[must_use]
pub fn describe(error: &reqwest::Error) -> String {
    let mut text = if error.is_connect() {
        "connection failed"
    } else if error.is_timeout() {
        "timed out"
    } else if error.is_body() {
        "sending the body failed"
    } else if error.is_decode() {
        "unreadable answer"
    } else {
        "request failed"
    }
    .to_owned();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

//! Event settings: webhooks (`DRAFTSTORE_WEBHOOK_*`) and the pre-confirm check
//! (`DRAFTSTORE_PRECONFIRM_*`). Both off unless their URL is set.

use super::{err, name, number, ConfigError, Lookup};
use base64::Engine as _;
use draftstore_core::events::{EventType, DEFAULT_SCHEDULE};
use std::fmt;
use std::time::Duration;

/// One webhook endpoint: where events go, and which types it gets.
#[derive(Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `http(s)://…`, without the fragment.
    pub url: String,
    /// The types it gets (the URL's fragment, `+`-separated); `None`: every type.
    pub types: Option<Vec<EventType>>,
}

impl Endpoint {
    /// True when this endpoint takes events of `kind`.
    #[must_use]
    pub fn wants(&self, kind: EventType) -> bool {
        self.types.as_ref().is_none_or(|t| t.contains(&kind))
    }

    /// What the event queue records for this endpoint once it has an event (`done`): `sha256:`
    /// and the first 16 bytes of SHA-256 over the URL, in hex. Stable across replicas and
    /// restarts, and never the URL itself, whose path or query may hold a token: queue records
    /// live in the draft bucket and `gateway events list` prints them.
    #[must_use]
    pub fn fingerprint(&self) -> String {
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(self.url.as_bytes());
        format!(
            "sha256:{}",
            hex::encode(digest.get(..16).unwrap_or_default())
        )
    }

    /// True when `done` (a queue record's list) says this endpoint has the event: its
    /// [`fingerprint`](Self::fingerprint), or its URL, as records written by earlier versions held it.
    #[must_use]
    pub fn is_done(&self, done: &[String]) -> bool {
        let fingerprint = self.fingerprint();
        done.iter().any(|d| *d == fingerprint || *d == self.url)
    }

    /// The host and port, for logs and labels (a URL's path or query may hold a token).
    #[must_use]
    pub fn host(&self) -> String {
        reqwest::Url::parse(&self.url)
            .ok()
            .and_then(|u| {
                u.host_str()
                    .map(|h| format!("{h}:{}", u.port_or_known_default().unwrap_or(0)))
            })
            .unwrap_or_default()
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("host", &self.host())
            .field("types", &self.types)
            .finish_non_exhaustive()
    }
}

/// The signing keys (`whsec_<base64>`, several for rotation): one `v1,` signature each.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secrets(pub Vec<Vec<u8>>);

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secrets({} redacted)", self.0.len())
    }
}

/// What the pre-confirm check does when the checker does not answer a 2xx or 4xx.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Refuse the confirm (503 / `UNAVAILABLE`): fail closed, the default.
    Reject,
    /// Confirm anyway: fail open.
    Allow,
}

/// The pre-confirm check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preconfirm {
    /// Where the check is POSTed.
    pub url: String,
    /// The longest wait for its answer.
    pub timeout: Duration,
    /// Timeout, 5xx, unreachable: refuse or allow.
    pub on_error: OnError,
}

/// Every event setting.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventsConfig {
    /// Webhook endpoints (`DRAFTSTORE_WEBHOOK_URLS`); empty: no events are queued.
    pub endpoints: Vec<Endpoint>,
    /// `DRAFTSTORE_WEBHOOK_SECRET`.
    pub secrets: Secrets,
    /// The waits before each attempt (`DRAFTSTORE_WEBHOOK_RETRY_SCHEDULE_MS`; default the
    /// Standard Webhooks schedule).
    pub schedule: Vec<Duration>,
    /// How often `serve` looks for due events (`DRAFTSTORE_WEBHOOK_POLL_MS`).
    pub poll: Duration,
    /// `DRAFTSTORE_PRECONFIRM_*`.
    pub preconfirm: Option<Preconfirm>,
}

impl EventsConfig {
    /// True when webhooks are on.
    #[must_use]
    pub fn webhooks(&self) -> bool {
        !self.endpoints.is_empty()
    }
}

fn http_url(var: &str, text: &str) -> Result<String, ConfigError> {
    match reqwest::Url::parse(text) {
        // Credentials in the URL would be sent in the clear to every redirect-free hop and
        // printed wherever the URL is: refused, and never echoed.
        Ok(u) if !u.username().is_empty() || u.password().is_some() => Err(err(format!(
            "{var}: a URL must not hold a user name or password (user:password@); put a token in its path or query instead"
        ))),
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {
            Ok(text.to_owned())
        }
        _ => Err(err(format!(
            "{var}: each URL must be http(s)://host[:port]/path (entry {} bytes long)",
            text.len()
        ))),
    }
}

fn endpoint(text: &str) -> Result<Endpoint, ConfigError> {
    let var = name::DRAFTSTORE_WEBHOOK_URLS;
    let (url, types) = match text.split_once('#') {
        None => (text, None),
        Some((url, fragment)) => {
            let types = fragment
                .split('+')
                .map(|t| {
                    EventType::parse(t.trim()).ok_or_else(|| {
                        err(format!(
                            "{var}: unknown event type {t:?} after '#' (known: object.confirmed, draft.expired, multipart.aborted, draft.uploaded)"
                        ))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            (url, Some(types))
        }
    };
    Ok(Endpoint {
        url: http_url(var, url)?,
        types,
    })
}

fn secrets(get: Lookup<'_>) -> Result<Secrets, ConfigError> {
    let var = name::DRAFTSTORE_WEBHOOK_SECRET;
    let Some(text) = get(var) else {
        return Ok(Secrets::default());
    };
    text.split_whitespace()
        .map(|s| {
            s.strip_prefix("whsec_")
                .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                .filter(|k| (16..=64).contains(&k.len()))
                .ok_or_else(|| {
                    err(format!(
                        "{var}: each secret must be whsec_ and the base64 of 16 to 64 bytes (space-separated for rotation)"
                    ))
                })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Secrets)
}

fn schedule(get: Lookup<'_>) -> Result<Vec<Duration>, ConfigError> {
    let var = name::DRAFTSTORE_WEBHOOK_RETRY_SCHEDULE_MS;
    let Some(text) = get(var).filter(|v| !v.trim().is_empty()) else {
        return Ok(DEFAULT_SCHEDULE.to_vec());
    };
    let waits: Vec<Duration> = text
        .split(',')
        .map(|n| n.trim().parse::<u64>().ok().filter(|n| *n <= 86_400_000))
        .collect::<Option<Vec<u64>>>()
        .filter(|w| (1..=32).contains(&w.len()))
        .ok_or_else(|| {
            err(format!(
                "{var} must be 1 to 32 comma-separated waits in milliseconds (each at most 86400000)"
            ))
        })?
        .into_iter()
        .map(Duration::from_millis)
        .collect();
    Ok(waits)
}

/// Reads the event settings.
///
/// # Errors
/// A URL that is not `http(s)://host…` (never echoed: it may hold a token), an unknown event
/// type, a secret that is not `whsec_<base64>`, webhooks or a check without a secret, a bad
/// schedule, timeout or `ON_ERROR`.
pub fn events(get: Lookup<'_>) -> Result<EventsConfig, ConfigError> {
    let var = |k: &str| get(k).filter(|v| !v.trim().is_empty());
    let endpoints = var(name::DRAFTSTORE_WEBHOOK_URLS)
        .map(|urls| {
            urls.split(',')
                .map(str::trim)
                .enumerate()
                .map(|(i, u)| {
                    if u.is_empty() {
                        return Err(err(format!(
                            "{}: entry {} is empty (a stray comma?)",
                            name::DRAFTSTORE_WEBHOOK_URLS,
                            i + 1
                        )));
                    }
                    endpoint(u)
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?
        .unwrap_or_default();
    let secrets = secrets(get)?;
    let timeout = Duration::from_millis(number(
        get,
        name::DRAFTSTORE_PRECONFIRM_TIMEOUT_MS,
        5000,
        1..=60_000,
    )?);
    let on_error = match var(name::DRAFTSTORE_PRECONFIRM_ON_ERROR)
        .as_deref()
        .map(str::trim)
    {
        None | Some("reject") => OnError::Reject,
        Some("allow") => OnError::Allow,
        Some(_) => {
            return Err(err(format!(
                "{} must be reject or allow",
                name::DRAFTSTORE_PRECONFIRM_ON_ERROR
            )))
        }
    };
    let preconfirm = var(name::DRAFTSTORE_PRECONFIRM_URL)
        .map(|url| {
            Ok::<_, ConfigError>(Preconfirm {
                url: http_url(name::DRAFTSTORE_PRECONFIRM_URL, url.trim())?,
                timeout,
                on_error,
            })
        })
        .transpose()?;
    if (!endpoints.is_empty() || preconfirm.is_some()) && secrets.0.is_empty() {
        return Err(err(format!(
            "{} (whsec_…) is needed to sign webhooks and pre-confirm checks",
            name::DRAFTSTORE_WEBHOOK_SECRET
        )));
    }
    Ok(EventsConfig {
        endpoints,
        secrets,
        schedule: schedule(get)?,
        poll: Duration::from_millis(number(
            get,
            name::DRAFTSTORE_WEBHOOK_POLL_MS,
            5000,
            10..=3_600_000,
        )?),
        preconfirm,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<EventsConfig, ConfigError> {
        events(&|k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    #[test]
    fn off_by_default_and_parsed_when_set() {
        let c = parse(&[]).unwrap();
        assert!(!c.webhooks() && c.preconfirm.is_none());
        assert_eq!(c.schedule, DEFAULT_SCHEDULE.to_vec());
        let c = parse(&[
            (
                "DRAFTSTORE_WEBHOOK_URLS",
                "http://127.0.0.1:9/a?token=hunter2, https://h.example/b#object.confirmed+draft.expired",
            ),
            ("DRAFTSTORE_WEBHOOK_SECRET", &format!("{SECRET} {SECRET}")),
            ("DRAFTSTORE_WEBHOOK_RETRY_SCHEDULE_MS", "0,100,200"),
            ("DRAFTSTORE_PRECONFIRM_URL", "http://127.0.0.1:9/check"),
            ("DRAFTSTORE_PRECONFIRM_ON_ERROR", "allow"),
        ])
        .unwrap();
        assert_eq!(c.endpoints.len(), 2);
        assert!(c.endpoints[0].wants(EventType::DraftUploaded));
        assert!(!c.endpoints[1].wants(EventType::DraftUploaded));
        assert!(c.endpoints[1].wants(EventType::DraftExpired));
        assert_eq!(c.secrets.0.len(), 2);
        assert_eq!(c.schedule.len(), 3);
        let p = c.preconfirm.as_ref().unwrap();
        assert_eq!(
            (p.timeout, p.on_error),
            (Duration::from_secs(5), OnError::Allow)
        );
        let debug = format!("{c:?}");
        assert!(
            !debug.contains("hunter2") && !debug.contains("MfKQ"),
            "{debug}"
        );
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (pairs, var) in [
            (
                vec![("DRAFTSTORE_WEBHOOK_URLS", "ftp://x/hunter2")],
                "DRAFTSTORE_WEBHOOK_URLS",
            ),
            (
                vec![("DRAFTSTORE_WEBHOOK_URLS", "http://x/#object.deleted")],
                "DRAFTSTORE_WEBHOOK_URLS",
            ),
            (
                vec![("DRAFTSTORE_WEBHOOK_URLS", "http://x/a,,http://x/b")],
                "DRAFTSTORE_WEBHOOK_URLS",
            ),
            (
                vec![("DRAFTSTORE_WEBHOOK_URLS", "http://u:hunter2@x/a")],
                "DRAFTSTORE_WEBHOOK_URLS",
            ),
            (
                vec![("DRAFTSTORE_PRECONFIRM_URL", "http://hunter2@x/check")],
                "DRAFTSTORE_PRECONFIRM_URL",
            ),
            (
                vec![("DRAFTSTORE_WEBHOOK_URLS", "http://x/")],
                "DRAFTSTORE_WEBHOOK_SECRET",
            ),
            (
                vec![("DRAFTSTORE_WEBHOOK_SECRET", "hunter2hunter2hunter2")],
                "DRAFTSTORE_WEBHOOK_SECRET",
            ),
            (
                vec![("DRAFTSTORE_WEBHOOK_RETRY_SCHEDULE_MS", "1,x")],
                "DRAFTSTORE_WEBHOOK_RETRY_SCHEDULE_MS",
            ),
            (
                vec![
                    ("DRAFTSTORE_PRECONFIRM_URL", "http://x/"),
                    ("DRAFTSTORE_WEBHOOK_SECRET", SECRET),
                    ("DRAFTSTORE_PRECONFIRM_ON_ERROR", "maybe"),
                ],
                "DRAFTSTORE_PRECONFIRM_ON_ERROR",
            ),
        ] {
            let e = parse(&pairs).unwrap_err().to_string();
            assert!(e.contains(var), "{pairs:?}: {e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
    }
}

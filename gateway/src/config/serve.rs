//! `gateway serve`'s settings: the original DraftStore's variables keep their meaning.

use super::{err, flag, number, ConfigError, Lookup, S3Config};
use draftstore_core::Buckets;
use draftstore_signer::Expiry;
use std::net::IpAddr;
use std::time::Duration;

/// Request and connection limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest REST request body (JSON requests are small).
    pub max_body: usize,
    /// Largest gRPC message.
    pub max_grpc_message: usize,
    /// Time for one request, handler included.
    pub request_timeout: Duration,
    /// Time for a client to send its request head.
    pub header_timeout: Duration,
    pub max_concurrent_streams: u32,
    pub max_header_list: u32,
    /// Requests handled at once; more wait up to `request_timeout`, then get 503.
    pub max_in_flight: usize,
}

#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub buckets: Buckets,
    pub bind: IpAddr,
    /// Serves REST and gRPC.
    pub http_port: u16,
    /// Another port serving the same, when set and different.
    pub grpc_port: Option<u16>,
    pub upload_ttl: Expiry,
    pub download_ttl: Expiry,
    /// Seconds a draft lives before `gateway sweep` removes it.
    pub object_lifetime: u64,
    pub s3: S3Config,
    pub limits: Limits,
    /// In-flight requests get this long to finish after SIGTERM.
    pub shutdown_grace: Duration,
    pub log_json: bool,
}

impl ServeConfig {
    /// # Errors
    /// A [`ConfigError`] naming the first bad variable.
    pub fn from_lookup(get: Lookup<'_>) -> Result<Self, ConfigError> {
        let var = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let main = var("BUCKET_NAME").unwrap_or_else(|| "main".into());
        let buckets = Buckets::new(&main, var("DRAFT_BUCKET").as_deref())
            .map_err(|e| err(format!("BUCKET_NAME/DRAFT_BUCKET: {e}")))?;
        let bind = match var("DRAFTSTORE_BIND") {
            None => IpAddr::from([0, 0, 0, 0]),
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| err("DRAFTSTORE_BIND must be an IP address"))?,
        };
        let port = |name: &str, default: u64| {
            number(get, name, default, 0..=65_535).map(|p| u16::try_from(p).unwrap_or(0))
        };
        let http_port = port("HTTP_PORT", 8080)?;
        let grpc_port = match var("GRPC_PORT") {
            None => None,
            Some(_) => Some(port("GRPC_PORT", 0)?).filter(|p| *p != http_port),
        };
        let ttl = |name: &str| -> Result<Expiry, ConfigError> {
            let secs = number(get, name, 3600, 1..=u64::from(Expiry::MAX_SECS))?;
            Expiry::new(secs).map_err(|e| err(format!("{name}: {e}")))
        };
        let limits = Limits {
            max_body: usize::try_from(number(
                get,
                "DRAFTSTORE_MAX_BODY_BYTES",
                64 * 1024,
                1024..=1024 * 1024,
            )?)
            .unwrap_or(65_536),
            max_grpc_message: usize::try_from(number(
                get,
                "DRAFTSTORE_MAX_GRPC_MESSAGE_BYTES",
                64 * 1024,
                1024..=4 * 1024 * 1024,
            )?)
            .unwrap_or(65_536),
            request_timeout: Duration::from_millis(number(
                get,
                "DRAFTSTORE_REQUEST_TIMEOUT_MS",
                30_000,
                100..=600_000,
            )?),
            header_timeout: Duration::from_millis(number(
                get,
                "DRAFTSTORE_HEADER_TIMEOUT_MS",
                10_000,
                100..=120_000,
            )?),
            max_concurrent_streams: u32::try_from(number(
                get,
                "DRAFTSTORE_MAX_CONCURRENT_STREAMS",
                256,
                1..=10_000,
            )?)
            .unwrap_or(256),
            max_header_list: 16 * 1024,
            max_in_flight: usize::try_from(number(
                get,
                "DRAFTSTORE_MAX_IN_FLIGHT",
                4096,
                1..=1_000_000,
            )?)
            .unwrap_or(4096),
        };
        Ok(Self {
            buckets,
            bind,
            http_port,
            grpc_port,
            upload_ttl: ttl("UPLOAD_TTL")?,
            download_ttl: ttl("DOWNLOAD_TTL")?,
            object_lifetime: number(get, "OBJECT_LIFETIME", 86_400, 1..=10 * 365 * 86_400)?,
            s3: S3Config::from_lookup(get)?,
            limits,
            shutdown_grace: Duration::from_millis(number(
                get,
                "DRAFTSTORE_SHUTDOWN_GRACE_MS",
                20_000,
                0..=600_000,
            )?),
            log_json: flag(get, "DRAFTSTORE_LOG_JSON", false)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(pairs: &[(&str, &str)]) -> Result<ServeConfig, ConfigError> {
        let mut map: HashMap<String, String> =
            [("AWS_ACCESS_KEY_ID", "AK"), ("AWS_SECRET_ACCESS_KEY", "SK")]
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect();
        map.extend(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        ServeConfig::from_lookup(&|k| map.get(k).cloned())
    }

    #[test]
    fn the_originals_defaults() {
        let c = parse(&[]).unwrap();
        assert_eq!(
            (c.buckets.main.as_str(), c.buckets.draft.as_str()),
            ("main", "main-draft")
        );
        assert_eq!((c.http_port, c.grpc_port), (8080, None));
        assert_eq!(
            (
                c.upload_ttl.secs(),
                c.download_ttl.secs(),
                c.object_lifetime
            ),
            (3600, 3600, 86_400)
        );
        let c = parse(&[
            ("BUCKET_NAME", "photos"),
            ("GRPC_PORT", "9090"),
            ("HTTP_PORT", "8081"),
            ("UPLOAD_TTL", "600"),
        ])
        .unwrap();
        assert_eq!(
            (
                c.buckets.draft.as_str(),
                c.http_port,
                c.grpc_port,
                c.upload_ttl.secs()
            ),
            ("photos-draft", 8081, Some(9090), 600)
        );
        assert_eq!(
            parse(&[("GRPC_PORT", "8080")]).unwrap().grpc_port,
            None,
            "the same port serves both"
        );
    }

    #[test]
    fn bad_values_are_one_line_naming_the_variable() {
        for (name, value) in [
            ("BUCKET_NAME", "Bad_Bucket"),
            ("HTTP_PORT", "eighty"),
            ("HTTP_PORT", "70000"),
            ("UPLOAD_TTL", "0"),
            ("DOWNLOAD_TTL", "604801"),
            ("OBJECT_LIFETIME", "-1"),
            ("DRAFTSTORE_MAX_BODY_BYTES", "10485760"),
            ("DRAFTSTORE_LOG_JSON", "yes"),
            ("DRAFTSTORE_BIND", "localhost"),
        ] {
            let e = parse(&[(name, value)]).unwrap_err().to_string();
            let want = if name == "BUCKET_NAME" {
                "BUCKET_NAME"
            } else {
                name
            };
            assert!(e.contains(want), "{name}={value}: {e}");
            assert_eq!(e.lines().count(), 1);
        }
    }
}

//! `gateway presign`: one presigned URL on stdout, nothing else. Credentials: static keys from
//! the environment, else the AWS credential chain (profiles, web identity, container, IMDSv2),
//! given [`CHAIN_BUDGET`] to answer. A URL never outlives its credentials: a TTL they cut is
//! reported on stderr.

use crate::cmd::cli::PresignArgs;
use crate::cmd::exit::Exit;
use crate::config::CredentialSource;
use crate::store::s3::chain::Chain;
use crate::store::s3::credentials::URL_MARGIN_SECS;
use draftstore_signer::{
    Addressing, Credentials, Endpoint, Expiry, Method, Request, Signer, Timestamp,
};
use std::time::Duration;

/// Time the credential chain gets before `presign` gives up naming what it tried.
pub const CHAIN_BUDGET: Duration = Duration::from_millis(1800);

/// Runs the command with environment lookups from `env`; returns the URL.
///
/// # Errors
/// One line and exit 64 for bad arguments or missing credentials (naming what was tried).
pub fn run(args: &PresignArgs, env: &dyn Fn(&str) -> Option<String>) -> Result<String, Exit> {
    let method = Method::parse(&args.method.to_ascii_uppercase())
        .ok_or_else(|| Exit::usage("--method must be GET, PUT, HEAD, DELETE or POST"))?;
    let endpoint =
        Endpoint::parse(&args.endpoint).map_err(|e| Exit::usage(format!("--endpoint: {e}")))?;
    let mut expires =
        Expiry::new(args.expires).map_err(|e| Exit::usage(format!("--expires: {e}")))?;
    let now = match &args.time {
        Some(t) => Timestamp::parse_amz(t).map_err(|e| Exit::usage(format!("--time: {e}")))?,
        None => system_now()?,
    };
    let headers = split_all(&args.headers, ':', "--header", "'name: value'")?;
    let query = split_all(&args.query, '=', "--query", "'name=value'")?;
    let usage = |e: crate::config::ConfigError| Exit::usage(e.to_string());
    let region = match &args.region {
        Some(region) => region.clone(),
        None => crate::config::region(env).map_err(usage)?,
    };
    let (credentials, expires_at) = match crate::config::credentials(env).map_err(usage)? {
        CredentialSource::Static(keys) => (keys, None),
        CredentialSource::Chain => from_chain(&region)?,
    };
    if let Some(deadline) = expires_at.map(|e| e.saturating_sub(URL_MARGIN_SECS)) {
        expires = cut(expires, now, deadline)?;
    }
    let signer =
        Signer::new(credentials, &region, &args.service).map_err(|e| Exit::usage(e.to_string()))?;

    let addressing = if args.virtual_host {
        Addressing::VirtualHost
    } else {
        Addressing::Path
    };
    let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.trim())).collect();
    let mut req = Request::new(method, &endpoint, addressing, &args.bucket, &args.key);
    req.headers = &headers;
    req.query = &query;
    let explained = signer
        .presign_explained(&req, expires, now)
        .map_err(|e| Exit::usage(e.to_string()))?;
    if args.explain {
        eprintln!(
            "canonical request:\n{}\n\nstring to sign:\n{}\n",
            explained.canonical_request, explained.string_to_sign
        );
    }
    Ok(explained.url)
}

/// Credentials (and their expiry) from the AWS chain, within [`CHAIN_BUDGET`].
fn from_chain(region: &str) -> Result<(Credentials, Option<i64>), Exit> {
    crate::store::s3::chain::keep_sts_off_the_s3_endpoint();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Exit::unavailable(format!("cannot start the runtime: {e}")))?;
    let fetched = runtime
        .block_on(Chain::new(region).fetch(CHAIN_BUDGET))
        .map_err(|e| Exit::usage(e.to_string()))?;
    Ok((fetched.credentials, fetched.expires_at))
}

/// `expires`, or what is left before `deadline` (Unix seconds) when that is sooner, said on
/// stderr.
fn cut(expires: Expiry, now: Timestamp, deadline: i64) -> Result<Expiry, Exit> {
    let left = deadline.saturating_sub(now.unix());
    if left >= i64::from(expires.secs()) {
        return Ok(expires);
    }
    let cut = u64::try_from(left)
        .ok()
        .and_then(|s| Expiry::new(s).ok())
        .ok_or_else(|| Exit::usage("the AWS credentials expire before the URL could be used"))?;
    eprintln!(
        "gateway presign: --expires {} cut to {} s: the credentials expire at {}",
        expires.secs(),
        cut.secs(),
        Timestamp::from_unix(deadline + URL_MARGIN_SECS)
            .map(|t| t.rfc3339())
            .unwrap_or_default()
    );
    Ok(cut)
}

fn split_all<'a>(
    items: &'a [String],
    sep: char,
    flag: &str,
    form: &str,
) -> Result<Vec<(&'a str, &'a str)>, Exit> {
    items
        .iter()
        .map(|item| {
            item.split_once(sep)
                .ok_or_else(|| Exit::usage(format!("{flag} takes {form}")))
        })
        .collect()
}

fn system_now() -> Result<Timestamp, Exit> {
    crate::clock::timestamp_now().ok_or_else(|| Exit::usage("the system clock is out of range"))
}

//! `gateway presign`: one presigned URL on stdout, nothing else.

use crate::cmd::cli::PresignArgs;
use crate::cmd::exit::Exit;
use draftstore_signer::{Addressing, Endpoint, Expiry, Method, Request, Signer, Timestamp};

/// Runs the command with environment lookups from `env`; returns the URL.
///
/// # Errors
/// One line and exit 64 for bad arguments or missing credentials.
pub fn run(args: &PresignArgs, env: &dyn Fn(&str) -> Option<String>) -> Result<String, Exit> {
    let method = Method::parse(&args.method.to_ascii_uppercase())
        .ok_or_else(|| Exit::usage("--method must be GET, PUT, HEAD, DELETE or POST"))?;
    let endpoint =
        Endpoint::parse(&args.endpoint).map_err(|e| Exit::usage(format!("--endpoint: {e}")))?;
    let expires = Expiry::new(args.expires).map_err(|e| Exit::usage(format!("--expires: {e}")))?;
    let now = match &args.time {
        Some(t) => Timestamp::parse_amz(t).map_err(|e| Exit::usage(format!("--time: {e}")))?,
        None => system_now()?,
    };
    let headers = split_all(&args.headers, ':', "--header", "'name: value'")?;
    let query = split_all(&args.query, '=', "--query", "'name=value'")?;
    let usage = |e: crate::config::ConfigError| Exit::usage(e.to_string());
    let credentials = crate::config::credentials(env).map_err(usage)?;
    let region = match &args.region {
        Some(region) => region.clone(),
        None => crate::config::region(env).map_err(usage)?,
    };
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

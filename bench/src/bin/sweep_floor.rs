//! The floor `gateway sweep` is measured against (`bench/sweep.sh`): the same S3 requests as a
//! sweep — ListObjectsV2 pages of 1000, an ETag-conditional DeleteObjects batch per page, and
//! one ListMultipartUploads (the stale uploads sweep aborts) — issued one after the other by a plain loop of `reqwest` and our signer, with none of the
//! gateway's code in the way (no retries, metrics or storage trait).
//!
//! Usage (the server and keys come from the gateway's own variables, `AWS_ENDPOINT_URL`, …):
//! - `sweep-floor fill BUCKET N [CONCURRENCY=64]`: creates BUCKET and puts N drafts of 100 bytes.
//! - `sweep-floor floor BUCKET`: deletes every object in BUCKET as above and prints
//!   `{"deleted", "failed", "requests", "duration_ms", "list_ms", "delete_ms"}` on stdout (the
//!   last two: time spent waiting for listings, of drafts and uploads, and for batch deletes).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use base64::Engine;
use draftstore_core::{BucketName, PutOptions, Storage};
use draftstore_gateway::config::S3Config;
use draftstore_gateway::store::s3::S3Storage;
use draftstore_signer::{Method, Payload, Request, Signer, Timestamp};
use futures_util::stream::{self, StreamExt};
use md5::{Digest as _, Md5};
use quick_xml::escape::escape;
use serde::Deserialize;
use sha2::Sha256;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct ListBucketResult {
    contents: Vec<Contents>,
    is_truncated: bool,
    next_continuation_token: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct Contents {
    key: String,
    #[serde(rename = "ETag")]
    etag: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct DeleteResult {
    deleted: Vec<Keyed>,
    error: Vec<Keyed>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct Keyed {
    #[allow(dead_code)]
    key: String,
}

struct Floor {
    http: reqwest::Client,
    signer: Signer,
    config: S3Config,
    requests: u64,
}

impl Floor {
    async fn send(
        &mut self,
        method: Method,
        bucket: &str,
        query: &[(&str, &str)],
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Vec<u8> {
        let hash = hex::encode(Sha256::digest(&body));
        let request = Request {
            method,
            endpoint: &self.config.endpoint,
            addressing: self.config.addressing,
            bucket,
            key: "",
            headers,
            query,
            payload: Payload::Sha256Hex(&hash),
        };
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let now = Timestamp::from_unix(i64::try_from(secs).unwrap()).unwrap();
        let signed = self.signer.sign_headers(&request, now).unwrap();
        let mut builder = self.http.request(
            reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap(),
            &signed.url,
        );
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        for (name, value) in &signed.headers {
            builder = builder.header(*name, value);
        }
        self.requests += 1;
        let response = builder.body(body).send().await.unwrap();
        let status = response.status();
        let body = response.bytes().await.unwrap().to_vec();
        assert!(
            status.is_success(),
            "{status}: {}",
            String::from_utf8_lossy(&body)
        );
        body
    }
}

fn decode(key: &str) -> String {
    percent_encoding::percent_decode_str(&key.replace('+', " "))
        .decode_utf8()
        .unwrap()
        .into_owned()
}

async fn floor(config: S3Config, bucket: &str) {
    let http = reqwest::Client::builder().build().unwrap();
    let draftstore_gateway::config::CredentialSource::Static(keys) = &config.credentials else {
        eprintln!("sweep-floor: the floor signs with static keys (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)");
        std::process::exit(64);
    };
    let signer = Signer::new(keys.clone(), &config.region, "s3").unwrap();
    let mut floor = Floor {
        http,
        signer,
        config,
        requests: 0,
    };
    let (mut deleted, mut failed) = (0_u64, 0_u64);
    // Where the time goes: waiting for listings, waiting for deletes.
    let (mut list_time, mut delete_time) = (Duration::ZERO, Duration::ZERO);
    let mut continuation: Option<String> = None;
    let started = Instant::now();
    loop {
        let mut query = vec![
            ("list-type", "2"),
            ("encoding-type", "url"),
            ("max-keys", "1000"),
            ("prefix", ""),
        ];
        if let Some(token) = &continuation {
            query.push(("continuation-token", token));
        }
        let asked = Instant::now();
        let body = floor
            .send(Method::Get, bucket, &query, &[], Vec::new())
            .await;
        let listed_in = asked.elapsed();
        list_time += listed_in;
        let page: ListBucketResult =
            quick_xml::de::from_str(std::str::from_utf8(&body).unwrap()).unwrap();
        if !page.contents.is_empty() {
            let mut xml = String::from(
                "<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Quiet>false</Quiet>",
            );
            for c in &page.contents {
                xml.push_str("<Object><Key>");
                xml.push_str(&escape(decode(&c.key)));
                xml.push_str("</Key><ETag>\"");
                xml.push_str(&escape(c.etag.trim_matches('"')));
                xml.push_str("\"</ETag></Object>");
            }
            xml.push_str("</Delete>");
            let md5 = base64::engine::general_purpose::STANDARD.encode(Md5::digest(xml.as_bytes()));
            let headers = [
                ("content-md5", md5.as_str()),
                ("content-type", "application/xml"),
            ];
            let asked = Instant::now();
            let body = floor
                .send(
                    Method::Post,
                    bucket,
                    &[("delete", "")],
                    &headers,
                    xml.into_bytes(),
                )
                .await;
            let deleted_in = asked.elapsed();
            delete_time += deleted_in;
            eprintln!(
                "page of {}: listed in {} ms, deleted in {} ms",
                page.contents.len(),
                listed_in.as_millis(),
                deleted_in.as_millis()
            );
            let result: DeleteResult =
                quick_xml::de::from_str(std::str::from_utf8(&body).unwrap()).unwrap();
            deleted += result.deleted.len() as u64;
            failed += result.error.len() as u64;
        }
        continuation = page.next_continuation_token.filter(|_| page.is_truncated);
        if continuation.is_none() {
            break;
        }
    }
    // Sweep also looks for stale multipart uploads: so does the floor, after the drafts.
    let asked = Instant::now();
    floor
        .send(
            Method::Get,
            bucket,
            &[("uploads", ""), ("encoding-type", "url")],
            &[],
            Vec::new(),
        )
        .await;
    list_time += asked.elapsed();
    let duration_ms = started.elapsed().as_millis();
    println!(
        "{{\"deleted\": {deleted}, \"failed\": {failed}, \"requests\": {}, \"duration_ms\": {duration_ms}, \"list_ms\": {}, \"delete_ms\": {}}}",
        floor.requests,
        list_time.as_millis(),
        delete_time.as_millis()
    );
}

async fn fill(config: S3Config, bucket: &str, n: usize, concurrency: usize) {
    let s3 = S3Storage::new(config).unwrap();
    let bucket = BucketName::parse(bucket).unwrap();
    s3.create_bucket(&bucket).await.unwrap();
    stream::iter(0..n)
        .for_each_concurrent(concurrency, |i| {
            let (s3, bucket) = (&s3, &bucket);
            async move {
                s3.put_object(
                    bucket,
                    &format!("drafts/{i:07}.bin"),
                    vec![b'x'; 100],
                    &PutOptions::default(),
                )
                .await
                .unwrap();
            }
        })
        .await;
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = S3Config::from_env().expect("S3 settings in AWS_* variables");
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["fill", bucket, n, rest @ ..] => {
            let concurrency = rest.first().map_or(64, |c| c.parse().unwrap());
            fill(config, bucket, n.parse().unwrap(), concurrency).await;
        }
        ["floor", bucket] => floor(config, bucket).await,
        _ => {
            eprintln!("usage: sweep-floor fill BUCKET N [CONCURRENCY] | floor BUCKET");
            std::process::exit(64);
        }
    }
}

//! Confirm throughput and sweep deletes per second against a real S3-compatible server, with a
//! floor measured in the same run: the three S3 calls of a confirm (HEAD, copy, DELETE) issued
//! by hand. Reads the server from the gateway's own variables (`AWS_ENDPOINT_URL`, keys).
//! `bench/s3-load.sh` starts SeaweedFS and runs it.
//!
//! Usage: s3-load [objects=2000] [concurrency=16] [sweep_objects=10000]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use draftstore_core::{
    confirm, BucketName, Buckets, ConfirmOptions, CopyCondition, CopyRequest, MetadataDirective,
    ObjectName, PutOptions, Storage, SweepOptions,
};
use draftstore_gateway::config::S3Config;
use draftstore_gateway::store::s3::S3Storage;
use futures_util::stream::{self, StreamExt};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

fn arg(n: usize, default: usize) -> usize {
    std::env::args()
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

async fn fill(s3: &S3Storage, bucket: &BucketName, n: usize, concurrency: usize) {
    stream::iter(0..n)
        .for_each_concurrent(concurrency, |i| async move {
            s3.put_object(
                bucket,
                &format!("obj/{i:06}.bin"),
                vec![b'x'; 1024],
                &PutOptions::default(),
            )
            .await
            .unwrap();
        })
        .await;
}

#[tokio::main]
async fn main() {
    let (objects, concurrency, sweep_objects) = (arg(1, 2000), arg(2, 16), arg(3, 10_000));
    let s3 = S3Storage::new(S3Config::from_env().expect("S3 settings")).expect("S3 client");
    let run = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        % 1_000_000;
    let buckets = Buckets::new(&format!("load-{run}-main"), None).unwrap();
    let floor_bucket = BucketName::parse(&format!("load-{run}-floor")).unwrap();
    for b in [&buckets.main, &buckets.draft, &floor_bucket] {
        s3.create_bucket(b).await.unwrap();
    }

    // Floor: HEAD, copy, DELETE by hand, on the same objects and concurrency.
    fill(&s3, &floor_bucket, objects, concurrency).await;
    let started = Instant::now();
    stream::iter(0..objects)
        .for_each_concurrent(concurrency, |i| {
            let (s3, floor_bucket, main) = (&s3, &floor_bucket, &buckets.main);
            async move {
                let key = format!("obj/{i:06}.bin");
                let info = s3.head_object(floor_bucket, &key).await.unwrap();
                let to = format!("floor/{key}");
                let request = CopyRequest {
                    from_bucket: floor_bucket,
                    from_key: &key,
                    to_bucket: main,
                    to_key: &to,
                    source_size: info.size,
                    source_etag: Some(&info.etag),
                    metadata: MetadataDirective::Copy,
                    condition: CopyCondition::IfAbsent,
                    source_version: None,
                    source_version_id: None,
                };
                s3.copy_object(&request).await.unwrap();
                s3.delete_object(floor_bucket, &key).await.unwrap();
            }
        })
        .await;
    let floor = started.elapsed();

    fill(&s3, &buckets.draft, objects, concurrency).await;
    let before = s3.attempts();
    let started = Instant::now();
    stream::iter(0..objects)
        .for_each_concurrent(concurrency, |i| {
            let (s3, buckets) = (&s3, &buckets);
            async move {
                let name = ObjectName::parse(&format!("obj/{i:06}.bin")).unwrap();
                confirm(s3, buckets, &name, ConfirmOptions::default())
                    .await
                    .unwrap();
            }
        })
        .await;
    let confirm_time = started.elapsed();
    let calls = (s3.attempts() - before) as f64 / objects as f64;

    fill(&s3, &buckets.draft, sweep_objects, concurrency).await;
    let before = s3.attempts();
    let started = Instant::now();
    let now = i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
        + 3600;
    let report = draftstore_core::sweep(
        &s3,
        &buckets.draft,
        SweepOptions::new(now, 60),
        &|| true,
        &mut |_| {},
    )
    .await;
    let sweep_time = started.elapsed();
    assert!(
        report.is_clean() && report.deleted == sweep_objects as u64,
        "{report:?}"
    );

    let per_sec = |n: usize, t: std::time::Duration| n as f64 / t.as_secs_f64();
    println!("objects {objects}, concurrency {concurrency}");
    println!(
        "floor (HEAD+copy+DELETE by hand): {:.0} objects/s",
        per_sec(objects, floor)
    );
    println!("confirm:                          {:.0} objects/s = {:.2}x the floor's time, {calls:.2} S3 calls per confirm", per_sec(objects, confirm_time), confirm_time.as_secs_f64() / floor.as_secs_f64());
    println!(
        "sweep: {} drafts deleted in {:.2}s = {:.0} deletes/s with {} S3 calls ({} list pages + {} batch deletes + uploads listing)",
        report.deleted,
        sweep_time.as_secs_f64(),
        per_sec(sweep_objects, sweep_time),
        s3.attempts() - before,
        sweep_objects.div_ceil(1000),
        sweep_objects.div_ceil(1000),
    );
}

//! The S3 backend behind a fault-injecting proxy in front of SeaweedFS: retries ride out 503s,
//! dropped connections and timeouts; and with retries off, a failure at any request of a
//! confirm loses nothing and a retry converges, against the real server.

use crate::proxy::{Proxy, ProxyFault};
use crate::s3::{env, prefix, storage};
use draftstore_core::{
    confirm, BucketName, Buckets, ConfirmOptions, ObjectName, PutOptions, Storage, StorageError,
};
use std::time::Duration;

async fn behind_proxy(
    extra: &[(&str, &str)],
) -> Option<(
    Proxy,
    draftstore_gateway::store::s3::S3Storage,
    draftstore_gateway::store::s3::S3Storage,
)> {
    let direct_env = env(extra)?;
    let proxy = Proxy::start(direct_env["AWS_ENDPOINT_URL"].clone()).await;
    let mut proxied_env = direct_env.clone();
    proxied_env.insert("AWS_ENDPOINT_URL".into(), proxy.url());
    Some((proxy, storage(&proxied_env), storage(&direct_env)))
}

#[tokio::test]
async fn retries_ride_out_503s_drops_and_timeouts() {
    let Some((proxy, s3, direct)) = behind_proxy(&[
        ("DRAFTSTORE_S3_MAX_ATTEMPTS", "4"),
        ("DRAFTSTORE_S3_TIMEOUT_MS", "400"),
    ])
    .await
    else {
        return;
    };
    let bucket = BucketName::parse(&prefix("flt")).unwrap();
    direct.create_bucket(&bucket).await.unwrap();
    direct
        .put_object(&bucket, "k", b"v".to_vec(), &PutOptions::default())
        .await
        .unwrap();

    proxy.push([ProxyFault::Status(503), ProxyFault::Status(500)]);
    assert_eq!(s3.head_object(&bucket, "k").await.unwrap().size, 1);
    assert_eq!((s3.attempts(), proxy.requests()), (3, 3));

    proxy.push([ProxyFault::Drop]);
    assert_eq!(s3.get_object(&bucket, "k").await.unwrap(), b"v");

    proxy.push([ProxyFault::Delay(Duration::from_millis(1500))]);
    let started = std::time::Instant::now();
    assert!(s3.head_bucket(&bucket).await.is_ok());
    assert!(
        started.elapsed() < Duration::from_millis(1400),
        "the slow attempt was cut at the timeout"
    );

    proxy.push([ProxyFault::Status(503); 4]);
    let err = s3.head_bucket(&bucket).await.unwrap_err();
    assert!(
        matches!(err, StorageError::Unavailable { .. }),
        "after the budget: {err:?}"
    );
}

/// With one attempt per call, fail each request of a confirm in turn (before the server acts,
/// and after it acted with the answer lost): the bytes stay in draft or main, and a clean retry
/// ends Confirmed with the same bytes.
#[tokio::test]
async fn confirm_keeps_its_invariants_against_the_real_server_with_faults() {
    let Some((proxy, s3, direct)) = behind_proxy(&[("DRAFTSTORE_S3_MAX_ATTEMPTS", "1")]).await
    else {
        return;
    };
    let p = prefix("cfl");
    let buckets = Buckets::new(&format!("{p}-main"), None).unwrap();
    direct.create_bucket(&buckets.main).await.unwrap();
    direct.create_bucket(&buckets.draft).await.unwrap();
    let mut case = 0;
    for step in 1..=3 {
        for fault in [
            ProxyFault::Status(500),
            ProxyFault::Drop,
            ProxyFault::DropAfter,
        ] {
            case += 1;
            let key = format!("case {case}/ሴ+.bin");
            let body = format!("bytes of case {case}").into_bytes();
            direct
                .put_object(&buckets.draft, &key, body.clone(), &PutOptions::default())
                .await
                .unwrap();
            let mut faults = vec![ProxyFault::Pass; step - 1];
            faults.push(fault);
            proxy.push(faults);
            let name = ObjectName::parse(&key).unwrap();
            let first = confirm(&s3, &buckets, &name, ConfirmOptions::default()).await;
            let ctx = format!("request {step} {fault:?}: first confirm {first:?}");
            let in_draft = direct.get_object(&buckets.draft, &key).await.ok();
            let in_main = direct.get_object(&buckets.main, &key).await.ok();
            assert!(in_draft.is_some() || in_main.is_some(), "lost: {ctx}");
            for copy in [&in_draft, &in_main].into_iter().flatten() {
                assert_eq!(copy, &body, "{ctx}");
            }
            let done = confirm(&s3, &buckets, &name, ConfirmOptions::default())
                .await
                .unwrap_or_else(|e| panic!("{ctx}: retry {e}"));
            assert_eq!(done.size, body.len() as u64, "{ctx}");
            assert_eq!(
                direct.get_object(&buckets.main, &key).await.unwrap(),
                body,
                "{ctx}"
            );
            assert!(
                direct.head_object(&buckets.draft, &key).await.is_err(),
                "{ctx}: draft gone"
            );
        }
    }
}

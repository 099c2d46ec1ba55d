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

/// Some S3-compatible servers answer CreateBucket of a bucket the caller already owns with 409
/// `BucketAlreadyExists`: the fault proxy rewrites the real answer so. The gateway then asks
/// HeadBucket with its own credentials, and a bucket it can use is a success, over REST and
/// gRPC; a name HeadBucket refuses (someone else's bucket) stays a 409 / ALREADY_EXISTS.
#[tokio::test]
async fn bucket_already_exists_for_our_own_bucket_is_a_success() {
    use draftstore_proto::draft::v1 as pb;
    use draftstore_proto::prost::Message;
    use ProxyFault::{Answer, Pass, Rewrite};
    let Some(direct_env) = env(&[]) else {
        return;
    };
    let proxy = Proxy::start(direct_env["AWS_ENDPOINT_URL"].clone()).await;
    let Some(server) = crate::harness::start_s3(&[("AWS_ENDPOINT_URL", &proxy.url())]).await else {
        return;
    };
    let owned = Rewrite(409, "BucketAlreadyExists");
    let rest = || async {
        let resp = crate::harness::http1()
            .post(server.url("/api/v1/draft-bucket"))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let body: serde_json::Value = resp.json().await.unwrap();
        (status, body["error"]["code"].as_str().map(str::to_owned))
    };
    let grpc = || async {
        let framed = [
            &[0_u8, 0, 0, 0, 0][..],
            &pb::CreateDraftBucketRequest {}.encode_to_vec(),
        ]
        .concat();
        let resp = crate::harness::h2c()
            .post(server.url(pb::paths::CREATE_DRAFT_BUCKET))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(framed)
            .send()
            .await
            .unwrap();
        resp.headers()
            .get("grpc-status")
            .map_or("0".to_owned(), |v| v.to_str().unwrap().to_owned())
    };

    // Fresh buckets: the creation happened, its answer says 409; HeadBucket says ours.
    proxy.push([owned, Pass, owned, Pass]);
    let before = proxy.requests();
    assert_eq!(rest().await, (200, None));
    assert_eq!(
        proxy.requests() - before,
        6,
        "CreateBucket + HeadBucket, twice, then the draft bucket's versioning and CORS rules (reported)"
    );
    // Existing buckets, the same dialect, over gRPC.
    proxy.push([owned, Pass, owned, Pass]);
    assert_eq!(grpc().await, "0");
    // The buckets exist, and plain repeats stay successes.
    assert_eq!(rest().await, (200, None));
    let direct = server.storage();
    direct
        .head_bucket(&server.config.buckets.main)
        .await
        .unwrap();
    direct
        .head_bucket(&server.config.buckets.draft)
        .await
        .unwrap();

    // Someone else's bucket: HeadBucket with our credentials is refused, the 409 stands.
    proxy.push([owned, Answer(403, "AccessDenied")]);
    assert_eq!(rest().await, (409, Some("CONFLICT".to_owned())));
    proxy.push([owned, Answer(403, "AccessDenied")]);
    assert_eq!(grpc().await, "6", "ALREADY_EXISTS");
    server.stop().await;
}

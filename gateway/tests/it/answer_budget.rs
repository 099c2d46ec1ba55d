//! The byte budget of HTTP/2 answers not yet taken by their clients (`http::layer::unsent`),
//! scaled down: 256 places make a total of 4 MiB and a fair share of at most 1 MiB; an answer
//! of 1000 part URLs is about 468 KB. Peers are distinct 127.0.0.x addresses.

use crate::harness::{start, Running};
use crate::stalled_streams::h2c_from;
use std::time::Duration;

const HOG: [u8; 4] = [127, 0, 0, 2];
const OTHER: [u8; 4] = [127, 0, 0, 3];
const NEWCOMER: [u8; 4] = [127, 0, 0, 4];

async fn server() -> Option<(Running, serde_json::Value)> {
    server_with("256").await
}

async fn server_with(places: &str) -> Option<(Running, serde_json::Value)> {
    // No stream is reset for idleness during a test.
    let server = start(&[
        ("DRAFTSTORE_IDLE_TIMEOUT_MS", "60000"),
        ("DRAFTSTORE_MAX_IN_FLIGHT", places),
    ])
    .await?;
    let upload = crate::harness::create_multipart(&server.url("/api/v1/multipart-upload")).await;
    Some((server, upload))
}

/// Opens, on a connection of its own from `source`, an HTTP/2 `part-urls` call for 1000 parts
/// with a 1 KiB window never reopened; returns its status and a task that ends when the stream
/// does, saying how (it keeps the connection open until then).
async fn unread(
    server: &Running,
    source: [u8; 4],
    upload: &serde_json::Value,
) -> (u16, tokio::task::JoinHandle<String>) {
    let tcp = crate::harness::connect_from(server.addr, source).await;
    let (mut client, connection) = crate::harness::h2_windowed(tcp, 1024).await;
    let url = server.url("/api/v1/multipart-upload/part-urls");
    let (response, send) = crate::harness::send_part_urls(&mut client, &url, upload);
    let response = response.await.unwrap();
    let status = response.status().as_u16();
    let mut body = response.into_body();
    let ended = tokio::spawn(async move {
        let _open = (send, client);
        let how = loop {
            match body.data().await {
                Some(Ok(_)) => {}
                Some(Err(e)) => break format!("reset: {:?}", e.reason()),
                None => break "ended".to_owned(),
            }
        };
        connection.abort();
        how
    });
    (status, ended)
}

fn part_urls(
    server: &Running,
    client: &reqwest::Client,
    upload: &serde_json::Value,
) -> reqwest::RequestBuilder {
    client
        .post(server.url("/api/v1/multipart-upload/part-urls"))
        .json(&crate::harness::part_urls_call(upload))
}

fn upload_url(server: &Running, client: &reqwest::Client) -> reqwest::RequestBuilder {
    client
        .post(server.url("/api/v1/upload-url"))
        .json(&serde_json::json!({"object_name": "a.bin"}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_reading_many_big_answers_at_once_is_never_shed() {
    let Some((server, upload)) = server().await else {
        return;
    };
    // One connection with HTTP/2's default 64 KiB windows, reopened as data is read (as any
    // client does), 8 big answers at once (3.7 MB: more than the 1 MiB share, less than the
    // total), five times over.
    let tcp = crate::harness::connect_from(server.addr, HOG).await;
    let (client, connection) = crate::harness::h2_windowed(tcp, 65_535).await;
    let url = server.url("/api/v1/multipart-upload/part-urls");
    for round in 0..5 {
        let calls = (0..8).map(|_| {
            let mut client = client.clone();
            let (url, upload) = (&url, &upload);
            async move {
                client = client.ready().await.unwrap();
                let (response, _send) = crate::harness::send_part_urls(&mut client, url, upload);
                let (head, mut body) = response.await.unwrap().into_parts();
                let mut len = 0;
                while let Some(data) = body.data().await {
                    let data = data.unwrap();
                    len += data.len();
                    body.flow_control().release_capacity(data.len()).unwrap();
                }
                (head.status.as_u16(), len)
            }
        });
        for (status, len) in futures_util::future::join_all(calls).await {
            assert_eq!(
                status, 200,
                "round {round}: a client that reads is not shed"
            );
            assert!(len > 400_000, "{len}");
        }
    }
    connection.abort();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_budget_sheds_the_peers_over_their_share_and_makes_room_for_a_newcomer() {
    let Some((server, upload)) = server().await else {
        return;
    };
    // Two peers that never read fill the total: 6 answers and 3 (4.2 MB).
    let mut hog = Vec::new();
    for _ in 0..6 {
        let (status, ended) = unread(&server, HOG, &upload).await;
        assert_eq!(
            status, 200,
            "work-conserving: charged while the total has room"
        );
        hog.push(ended);
    }
    let mut other = Vec::new();
    for _ in 0..3 {
        let (status, ended) = unread(&server, OTHER, &upload).await;
        assert_eq!(status, 200);
        other.push(ended);
    }
    for (name, source) in [("hog", HOG), ("other", OTHER)] {
        let refused = upload_url(&server, &h2c_from(source)).send().await.unwrap();
        assert_eq!(
            refused.status(),
            503,
            "{name} is over its share of a full budget"
        );
        assert_eq!(refused.headers()["retry-after"], "1");
        let error: serde_json::Value = refused.json().await.unwrap();
        assert_eq!(error["error"]["code"], "OVERLOADED", "{error}");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains("holds its fair share"), "{message}");
    }
    // A newcomer is served, small answers and big ones: room is made for its big answer by
    // resetting the hog's stalest streams, not the other's, once they have been stale a while.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let newcomer = h2c_from(NEWCOMER);
    for _ in 0..10 {
        let status = upload_url(&server, &newcomer)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200, "a newcomer is never shut out");
    }
    let big = part_urls(&server, &newcomer, &upload).send().await.unwrap();
    assert_eq!(big.status(), 200);
    assert!(big.bytes().await.unwrap().len() > 400_000);
    // Its answer needed 0.5 MB more than the total had: two of the hog's answers (the
    // stalest, each time of the peer holding most) were reset, within a moment.
    let first = tokio::time::timeout(Duration::from_secs(20), hog.remove(0))
        .await
        .expect("the hog's stalest answer is reset at once, not at the idle limit")
        .unwrap();
    assert_eq!(first, "reset: Some(CANCEL)");
    let second = tokio::time::timeout(Duration::from_secs(20), hog.remove(0))
        .await
        .expect("and its next stalest")
        .unwrap();
    assert_eq!(second, "reset: Some(CANCEL)");
    assert!(
        hog.iter().chain(&other).all(|open| !open.is_finished()),
        "no other answer is reset"
    );
    for open in hog.into_iter().chain(other) {
        open.abort();
    }
    server.stop().await;
}

/// Asks one `part-urls` answer on `client` and takes it frame by frame: each frame's window
/// given back after `hold`, then `after` before the next frame is awaited. `Ok(status)` once it
/// ended whole (or at once for a refusal), `Err` when it was reset.
async fn take_paced(
    mut client: h2::client::SendRequest<bytes::Bytes>,
    url: String,
    upload: serde_json::Value,
    hold: Duration,
    after: Duration,
) -> Result<u16, String> {
    client = client.ready().await.map_err(|e| e.to_string())?;
    let (response, _send) = crate::harness::send_part_urls(&mut client, &url, &upload);
    let (head, mut body) = response.await.map_err(|e| e.to_string())?.into_parts();
    while let Some(data) = body.data().await {
        let data = data.map_err(|e| format!("reset mid-body: {:?}", e.reason()))?;
        if !hold.is_zero() {
            tokio::time::sleep(hold).await;
        }
        let _ = body.flow_control().release_capacity(data.len());
        if !after.is_zero() {
            tokio::time::sleep(after).await;
        }
    }
    Ok(head.status.as_u16())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_taking_its_answers_is_never_reset_to_make_room_for_newcomers() {
    // 128 places: a total of 2 MiB (bound 2.5 MiB), which the reader's three answers of
    // 468 KB and two attackers' fill.
    let Some((server, upload)) = server_with("128").await else {
        return;
    };
    let url = server.url("/api/v1/multipart-upload/part-urls");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // The reader: three answers at a time on one connection with HTTP/2's default window,
    // read steadily until the attack is over.
    let reader = tokio::spawn({
        let (stop, url, upload, addr) = (stop.clone(), url.clone(), upload.clone(), server.addr);
        async move {
            let tcp = crate::harness::connect_from(addr, HOG).await;
            let (client, connection) = crate::harness::h2_windowed(tcp, 65_535).await;
            let mut statuses = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // Steadily: a frame, its window given back, 2 ms.
                let calls = (0..3).map(|_| {
                    let steady = Duration::from_millis(2);
                    take_paced(
                        client.clone(),
                        url.clone(),
                        upload.clone(),
                        Duration::ZERO,
                        steady,
                    )
                });
                statuses.extend(futures_util::future::join_all(calls).await);
            }
            connection.abort();
            statuses
        }
    });
    // Attackers on other addresses, each asking an answer it never reads, one after another;
    // then, once theirs are stale, newcomers.
    let mut attackers = Vec::new();
    for i in 1..=12 {
        attackers.push(unread(&server, [127, 0, 1, i], &upload).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut newcomers = Vec::new();
    for i in 1..=4 {
        newcomers.push(unread(&server, [127, 0, 2, i], &upload).await);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let statuses = reader.await.unwrap();
    for status in &statuses {
        assert!(
            matches!(status, Ok(200 | 503)),
            "a reader taking its answer is served or shed, never reset: {statuses:?}"
        );
    }
    assert!(statuses.contains(&Ok(200)), "{statuses:?}");
    // Room was made from the attackers' stale answers: a newcomer was served, an attacker reset.
    assert!(
        newcomers.iter().any(|(status, _)| *status == 200),
        "a newcomer is served"
    );
    let mut reset = 0;
    for (status, ended) in attackers {
        if status == 200 && ended.is_finished() {
            assert_eq!(ended.await.unwrap(), "reset: Some(CANCEL)");
            reset += 1;
        } else {
            ended.abort();
        }
    }
    assert!(reset > 0, "an attacker's stale answer made room");
    for (_, ended) in newcomers {
        ended.abort();
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_trickling_its_windows_open_does_not_lock_a_newcomer_out() {
    // 128 places: a total of 2 MiB, filled by five answers of 468 KB.
    let Some((server, upload)) = server_with("128").await else {
        return;
    };
    let url = server.url("/api/v1/multipart-upload/part-urls");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // The attacker: one connection, a 16 KiB window per stream (the connection's is ample),
    // asking a new big answer every 20 ms (shed while the budget is full, charged as soon as
    // it has room) and trickling every answer it gets: a frame taken from each every half
    // second, so none ever goes a second without progress.
    let attacker = tokio::spawn({
        let (stop, url, upload, addr) = (stop.clone(), url.clone(), upload.clone(), server.addr);
        async move {
            let tcp = crate::harness::connect_from(addr, HOG).await;
            let (client, connection) =
                crate::harness::h2_with_windows(tcp, 16 * 1024, 16 << 20).await;
            let mut calls = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // A trickler: 16 KiB of window (one frame) every half second, 32 KiB/s, half
                // the floor rate.
                let half_second = Duration::from_millis(500);
                calls.push(tokio::spawn(take_paced(
                    client.clone(),
                    url.clone(),
                    upload.clone(),
                    half_second,
                    Duration::ZERO,
                )));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (calls, connection)
        }
    });
    // Every answer it holds has had a frame taken within the last second; the first ones
    // are 2 s behind the floor-rate clock.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let newcomer = h2c_from(NEWCOMER);
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let response = part_urls(&server, &newcomer, &upload).send().await.unwrap();
        let status = response.status().as_u16();
        let len = response.bytes().await.unwrap().len();
        statuses.push((status, len));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (calls, connection) = attacker.await.unwrap();
    let reset = {
        let mut reset = 0;
        for call in calls {
            if call.is_finished() {
                if let Ok(Err(e)) = call.await {
                    assert!(e.contains("CANCEL"), "{e}");
                    reset += 1;
                }
            } else {
                call.abort();
            }
        }
        reset
    };
    connection.abort();
    assert!(
        statuses
            .iter()
            .any(|&(status, len)| status == 200 && len > 400_000),
        "the newcomer is served: {statuses:?}"
    );
    assert!(reset > 0, "room was made from the trickler's answers");
    server.stop().await;
}

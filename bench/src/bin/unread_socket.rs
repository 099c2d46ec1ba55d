//! The client of `bench/rss.sh`'s fifth flood: HTTP/2 connections that open their windows wide
//! (1 GiB, stream and connection) and then never read their socket (a 4 KiB receive buffer,
//! no read after the handshake), each sending POSTs of one body at a steady rate and keeping
//! every stream open. h2 takes such a client's answers as soon as the window has room, whether
//! or not the socket can write them; this measures what the server keeps queued for it.
//!
//! Usage: `unread-socket URL BODY_FILE CONNECTIONS STREAMS INTERVAL_MS SECONDS`: CONNECTIONS
//! connections to URL (`http://127.0.0.1:PORT/path`), each sending up to STREAMS requests
//! (`content-type: application/json`, body BODY_FILE), one every INTERVAL_MS, the connections'
//! starts spread over one interval; all are dropped after SECONDS. Prints the requests sent.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use bytes::Bytes;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A TCP stream that is never read.
struct Unread(TcpStream);

impl AsyncRead for Unread {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Poll::Pending
    }
}

impl AsyncWrite for Unread {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

const WIDE: u32 = 1 << 30;

async fn connection(
    url: http::Uri,
    body: Bytes,
    streams: usize,
    interval: Duration,
    sent: Arc<AtomicUsize>,
) {
    let authority = url
        .authority()
        .expect("URL with host and port")
        .as_str()
        .to_string();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let Ok(tcp) = socket
        .connect(authority.parse().expect("127.0.0.1:PORT"))
        .await
    else {
        return;
    };
    let Ok((client, driver)) = h2::client::Builder::new()
        .initial_window_size(WIDE)
        .initial_connection_window_size(WIDE)
        .handshake::<_, Bytes>(Unread(tcp))
        .await
    else {
        return;
    };
    tokio::spawn(driver);
    let mut open = Vec::with_capacity(streams);
    let mut tick = tokio::time::interval(interval);
    for _ in 0..streams {
        tick.tick().await;
        let request = http::Request::post(url.clone())
            .header("content-type", "application/json")
            .body(())
            .unwrap();
        let Ok(mut ready) = client.clone().ready().await else {
            break;
        };
        let Ok((response, mut send)) = ready.send_request(request, false) else {
            break;
        };
        if send.send_data(body.clone(), true).is_err() {
            break;
        }
        sent.fetch_add(1, Ordering::Relaxed);
        open.push((response, send));
    }
    std::future::pending::<()>().await;
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, body, connections, streams, interval, seconds] = args.as_slice() else {
        eprintln!("usage: unread-socket URL BODY_FILE CONNECTIONS STREAMS INTERVAL_MS SECONDS");
        std::process::exit(2);
    };
    let url: http::Uri = url.parse().expect("URL");
    let body = Bytes::from(std::fs::read(body).expect("BODY_FILE"));
    let connections: usize = connections.parse().expect("CONNECTIONS");
    let streams: usize = streams.parse().expect("STREAMS");
    let interval = Duration::from_millis(interval.parse().expect("INTERVAL_MS"));
    let seconds = Duration::from_secs(seconds.parse().expect("SECONDS"));
    let sent = Arc::new(AtomicUsize::new(0));
    let spread = interval / u32::try_from(connections.max(1)).unwrap_or(u32::MAX);
    for _ in 0..connections {
        tokio::spawn(connection(
            url.clone(),
            body.clone(),
            streams,
            interval,
            sent.clone(),
        ));
        tokio::time::sleep(spread).await;
    }
    tokio::time::sleep(seconds).await;
    println!("{}", sent.load(Ordering::Relaxed));
}

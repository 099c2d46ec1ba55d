//! The gRPC load baseline: a tonic unary service (tonic's framing, codec and status handling)
//! served by hyper, answering GetUploadURL with the name it was given and a URL of URL_BYTES
//! (as long as a real presigned URL, so both send as much). Usage: `tonic-echo PORT [URL_BYTES]`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use draftstore_proto::draft::v1::{GetUploadUrlRequest, GetUploadUrlResponse, Result as ApiResult};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::future::{ready, Ready};

#[derive(Clone)]
struct Echo {
    url: String,
}

impl tonic::server::UnaryService<GetUploadUrlRequest> for Echo {
    type Response = GetUploadUrlResponse;
    type Future = Ready<Result<tonic::Response<GetUploadUrlResponse>, tonic::Status>>;

    fn call(&mut self, request: tonic::Request<GetUploadUrlRequest>) -> Self::Future {
        let name = request.into_inner().object_name;
        ready(Ok(tonic::Response::new(GetUploadUrlResponse {
            result: Some(ApiResult {
                success: true,
                ..Default::default()
            }),
            url: self.url.clone(),
            object_name: name,
            expires_at: "2026-11-27T13:00:00Z".into(),
            method: "PUT".into(),
            ..Default::default()
        })))
    }
}

#[tokio::main]
async fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(8091);
    let url_len: usize = std::env::args()
        .nth(2)
        .and_then(|p| p.parse().ok())
        .unwrap_or(5);
    let echo = Echo {
        url: "u".repeat(url_len),
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    loop {
        let (stream, _) = listener.accept().await.unwrap();
        let _ = stream.set_nodelay(true);
        let echo = echo.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let echo = echo.clone();
                async move {
                    let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::<
                        GetUploadUrlResponse,
                        GetUploadUrlRequest,
                    >::default());
                    Ok::<_, Infallible>(grpc.unary(echo, req).await)
                }
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

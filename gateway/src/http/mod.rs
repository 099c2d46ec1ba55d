//! The HTTP transport: one hyper listener for REST and gRPC ([`server`]) and what every request
//! pays on the way: the socket's write mode, stall timer and count of bytes written
//! ([`socket`]), the bound on the answer bytes an HTTP/2 connection queues before its socket
//! writes them ([`queued`]), each connection's requests ([`activity`]), the progress watch of HTTP/2
//! streams ([`watch`]), the end of a drain as its cut answers see it ([`drain`]), time limits
//! ([`deadline`]), bounded bodies ([`body`]), response helpers ([`response`]), JSON text
//! ([`json`]), CORS ([`cors`]), places shared fairly between peers and tenants ([`shares`]) and TLS with certificate reload ([`tls`]); the request path's
//! cross-cutting rules as tower layers ([`layer`]).

pub mod activity;
pub mod body;
pub mod cors;
pub mod deadline;
pub mod drain;
pub mod json;
pub mod layer;
pub mod queued;
pub mod response;
pub mod server;
pub mod shares;
pub mod socket;
pub mod tls;
pub mod watch;

//! Standard Webhooks signatures (<https://www.standardwebhooks.com/>, "Signature scheme"):
//! `webhook-signature: v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>`, one per
//! secret, space-separated (rotation), with `webhook-id` and `webhook-timestamp` (Unix seconds).

use crate::config::Secrets;
use base64::Engine as _;
use draftstore_core::events::signed_content;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// `webhook-id`.
pub const ID: &str = "webhook-id";
/// `webhook-timestamp`.
pub const TIMESTAMP: &str = "webhook-timestamp";
/// `webhook-signature`.
pub const SIGNATURE: &str = "webhook-signature";

/// Signatures a receiver accepts only within this many seconds of its clock.
pub const TOLERANCE_SECS: i64 = 300;

fn mac(key: &[u8], content: &[u8]) -> Option<Vec<u8>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).ok()?;
    mac.update(content);
    Some(mac.finalize().into_bytes().to_vec())
}

/// The `webhook-signature` value: `v1,<base64>` per secret, space-separated.
#[must_use]
pub fn signature(secrets: &Secrets, id: &str, timestamp: i64, body: &[u8]) -> String {
    let content = signed_content(id, timestamp, body);
    secrets
        .0
        .iter()
        .filter_map(|key| mac(key, &content))
        .map(|m| format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(m)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The three headers of a signed request.
#[must_use]
pub fn headers(
    secrets: &Secrets,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> [(&'static str, String); 3] {
    [
        (ID, id.to_owned()),
        (TIMESTAMP, timestamp.to_string()),
        (SIGNATURE, signature(secrets, id, timestamp, body)),
    ]
}

/// A receiver's check: the timestamp is within [`TOLERANCE_SECS`] of `now` and one of the
/// `v1,` signatures in `signature_header` is the HMAC of the content with one of `secrets`
/// (compared in constant time).
#[must_use]
pub fn verify(
    secrets: &Secrets,
    id: &str,
    timestamp: &str,
    signature_header: &str,
    body: &[u8],
    now: i64,
) -> bool {
    let Ok(ts) = timestamp.parse::<i64>() else {
        return false;
    };
    if (now - ts).abs() > TOLERANCE_SECS {
        return false;
    }
    let content = signed_content(id, ts, body);
    let given: Vec<Vec<u8>> = signature_header
        .split_whitespace()
        .filter_map(|s| s.strip_prefix("v1,"))
        .filter_map(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .collect();
    secrets.0.iter().any(|key| {
        given.iter().any(|g| {
            Hmac::<Sha256>::new_from_slice(key).is_ok_and(|mut m| {
                m.update(&content);
                m.verify_slice(g).is_ok()
            })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks reference libraries' tests.
    #[test]
    fn matches_the_reference_example() {
        let key = base64::engine::general_purpose::STANDARD
            .decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .unwrap();
        let secrets = Secrets(vec![key]);
        let body = br#"{"test": 2432232314}"#;
        let sig = signature(
            &secrets,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            body,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(verify(
            &secrets,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "1614265330",
            &sig,
            body,
            1_614_265_330
        ));
        assert!(!verify(
            &secrets,
            "msg_other",
            "1614265330",
            &sig,
            body,
            1_614_265_330
        ));
        assert!(!verify(
            &secrets,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "1614265330",
            &sig,
            body,
            1_614_265_330 + 301
        ));
    }

    #[test]
    fn one_signature_per_secret() {
        let secrets = Secrets(vec![vec![1; 32], vec![2; 32]]);
        let sig = signature(&secrets, "msg_1", 10, b"{}");
        assert_eq!(sig.split(' ').count(), 2);
        let old_only = Secrets(vec![vec![1; 32]]);
        assert!(verify(&old_only, "msg_1", "10", &sig, b"{}", 10));
    }
}

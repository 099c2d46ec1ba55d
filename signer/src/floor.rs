//! The *floor* the benchmarks measure presigning against (feature `floor`: `bench/` and the
//! `interleaved` example use it; no signing path does): what any SigV4 presign must hash, namely
//! SHA-256 (FIPS 180-4) of its canonical request and one HMAC-SHA256 (RFC 2104) of its string to
//! sign under the day's signing key, derived beforehand. It writes no canonical request, string
//! to sign, URL or hex (they are made once, by [`Signer::floor`]), so it is a lower bound, not a
//! competitor; it does key a fresh HMAC state on every call (two SHA-256 blocks), which the
//! signer's key cache saves. The libraries are the signer's own (`sha2`, `hmac`), so a ratio to
//! the floor is the signer's overhead.

use crate::signing_key::{signing_key, unreachable_mac, HmacSha256};
use crate::{Error, Expiry, Request, Signer, Timestamp};
use hmac::Mac;
use sha2::{Digest, Sha256};

/// One presigned URL's floor: its canonical request and string to sign, written beforehand,
/// and the signing key of its (date, region, service). No `Debug`: it holds a signing key.
pub struct Floor {
    canonical_request: Vec<u8>,
    string_to_sign: Vec<u8>,
    key: [u8; 32],
}

impl Signer {
    /// The floor of `self.presign(req, expires, now)`: that URL's canonical request and string
    /// to sign, and the signing key of `now`'s day.
    ///
    /// # Errors
    /// Those of [`Signer::presign`].
    pub fn floor(
        &self,
        req: &Request<'_>,
        expires: Expiry,
        now: Timestamp,
    ) -> Result<Floor, Error> {
        let explained = self.presign_explained(req, expires, now)?;
        Ok(Floor {
            canonical_request: explained.canonical_request.into_bytes(),
            string_to_sign: explained.string_to_sign.into_bytes(),
            key: signing_key(
                self.credentials.secret(),
                now.date_stamp(),
                &self.region,
                &self.service,
            ),
        })
    }
}

impl Floor {
    /// Hashes once: SHA-256 of the canonical request and HMAC-SHA256 of the string to sign
    /// (the URL's signature, as bytes), 32 bytes each.
    #[inline]
    #[must_use]
    pub fn hash(&self) -> ([u8; 32], [u8; 32]) {
        let hash = Sha256::digest(&self.canonical_request);
        let mut mac = HmacSha256::new_from_slice(&self.key).unwrap_or_else(|_| unreachable_mac());
        mac.update(&self.string_to_sign);
        (hash.into(), mac.finalize().into_bytes().into())
    }
}

#[cfg(test)]
mod tests {
    use crate::{Addressing, Credentials, Endpoint, Expiry, Method, Request, Signer, Timestamp};

    #[test]
    fn the_floor_hashes_what_the_presign_signed() {
        let creds = Credentials::new(
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            None,
        )
        .unwrap();
        let signer = Signer::new(creds, "us-east-1", "s3").unwrap();
        let endpoint = Endpoint::parse("https://s3.amazonaws.com").unwrap();
        let req = Request::new(
            Method::Put,
            &endpoint,
            Addressing::Path,
            "b",
            "photo of cat.jpg",
        );
        let now = Timestamp::parse_amz("20261127T120000Z").unwrap();
        let expires = Expiry::new(3600).unwrap();
        let explained = signer.presign_explained(&req, expires, now).unwrap();
        let (hash, signature) = signer.floor(&req, expires, now).unwrap().hash();
        // The string to sign ends with the canonical request's hash; the URL with the signature.
        assert!(explained.string_to_sign.ends_with(&hex::encode(hash)));
        assert!(explained
            .url
            .ends_with(&format!("X-Amz-Signature={}", hex::encode(signature))));
    }
}

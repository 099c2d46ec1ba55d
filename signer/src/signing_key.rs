//! Stage 3 and 4: the signing key (four chained HMACs) and the signature. The key depends only on
//! (secret, date, region, service), so [`KeyCache`] derives it once a day and keeps the HMAC
//! already keyed with it (`hmac::Hmac<sha2::Sha256>`, RFC 2104): a warm signature costs one
//! clone of that state and one SHA-256 pass over the string to sign.

use crate::canonical::Sink;
use crate::encode::Hex32;
use crate::string_to_sign::write_prefix;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::sync::{Arc, PoisonError, RwLock};

pub(crate) type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this never fails.
    let mut mac = HmacSha256::new_from_slice(key).unwrap_or_else(|_| unreachable_mac());
    mac.update(data);
    mac.finalize().into_bytes().into()
}

#[cold]
pub(crate) fn unreachable_mac() -> HmacSha256 {
    // new_from_slice only fails for fixed-size keys; Hmac takes any length. Keep a defined value.
    <HmacSha256 as hmac::digest::KeyInit>::new(&Default::default())
}

/// `kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")`.
pub(crate) fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let mut first = Vec::with_capacity(4 + secret.len());
    first.extend_from_slice(b"AWS4");
    first.extend_from_slice(secret.as_bytes());
    let k_date = hmac(&first, date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

/// `date/region/service/aws4_request`.
pub(crate) fn scope(date: &str, region: &str, service: &str) -> String {
    format!("{date}/{region}/{service}/aws4_request")
}

/// A derived key ready to sign: the HMAC state keyed with it, its scope, and the encoded
/// `X-Amz-Credential` value (`access_key%2Fscope`), which is the same for the whole day.
pub(crate) struct DerivedKey {
    /// `HMAC(kSigning, ·)` with the key absorbed once: cloned for each signature or check.
    pub(crate) mac: HmacSha256,
    pub(crate) scope: String,
    pub(crate) credential_param: String,
    /// `access_key/scope`, unencoded: a POST form's `x-amz-credential`.
    pub(crate) credential: String,
    /// `X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=…&X-Amz-Date=`: the head of every
    /// presigned query without extra parameters, written in one piece.
    pub(crate) query_head: String,
    /// A POST policy's algorithm and credential conditions and the head of its date condition
    /// (see `post::policy::day_conditions`), the same for the whole day.
    pub(crate) post_conditions: String,
}

impl DerivedKey {
    pub(crate) fn new(secret: &str, date: &str, region: &str, service: &str) -> Self {
        let key = signing_key(secret, date, region, service);
        Self {
            mac: HmacSha256::new_from_slice(&key).unwrap_or_else(|_| unreachable_mac()),
            scope: scope(date, region, service),
            credential_param: String::new(),
            credential: String::new(),
            query_head: String::new(),
            post_conditions: String::new(),
        }
    }

    /// Also precomputes the encoded credential of `access_key`.
    pub(crate) fn with_access_key(mut self, access_key: &str) -> Self {
        let mut param = String::with_capacity(access_key.len() + self.scope.len() * 2);
        crate::encode::encode_into(&mut param, access_key, false);
        param.push_str("%2F");
        crate::encode::encode_into(&mut param, &self.scope, false);
        self.query_head = format!(
            "X-Amz-Algorithm={}&X-Amz-Credential={param}&X-Amz-Date=",
            crate::string_to_sign::ALGORITHM
        );
        self.credential_param = param;
        self.credential = format!("{access_key}/{}", self.scope);
        self.post_conditions = crate::post::day_conditions(&self.credential);
        self
    }

    pub(crate) fn date(&self) -> &str {
        self.scope.get(..8).unwrap_or_default()
    }

    /// Stage 4: hex `HMAC(kSigning, string_to_sign)`, streaming the string to sign.
    pub(crate) fn signature(&self, amz_date: &str, canonical_hash: &Hex32) -> Hex32 {
        let mut mac = self.mac.clone();
        write_prefix(&mut mac, amz_date, &self.scope);
        mac.put_hex(canonical_hash);
        Hex32::new(&mac.finalize().into_bytes())
    }

    /// As [`DerivedKey::signature`], reusing the HMAC state after the string-to-sign prefix
    /// when `cache` holds it for this second (many presigns share a second on a busy server;
    /// the prefix fills SHA-256's first block, so this saves one block per signature).
    pub(crate) fn signature_cached(
        &self,
        amz_date: &str,
        canonical_hash: &Hex32,
        cache: &mut SecondCache,
    ) -> Hex32 {
        let slot = &mut cache.second;
        let mut mac = match slot {
            Some((second, mac)) if second.as_slice() == amz_date.as_bytes() => mac.clone(),
            _ => {
                let mut mac = self.mac.clone();
                write_prefix(&mut mac, amz_date, &self.scope);
                let mut second = [0_u8; 16];
                if let Some(dst) = second.get_mut(..amz_date.len()) {
                    dst.copy_from_slice(amz_date.as_bytes());
                }
                *slot = Some((second, mac.clone()));
                mac
            }
        };
        mac.put_hex(canonical_hash);
        Hex32::new(&mac.finalize().into_bytes())
    }

    /// Constant-time check of a hex signature against the one this key gives.
    pub(crate) fn verify(&self, amz_date: &str, canonical_hash: &Hex32, signature: &[u8]) -> bool {
        let mut mac = self.mac.clone();
        write_prefix(&mut mac, amz_date, &self.scope);
        mac.put_hex(canonical_hash);
        mac.verify_slice(signature).is_ok()
    }

    /// Hex `HMAC(kSigning, data)`: the signature of a POST policy, whose string to sign is the
    /// base64 policy itself. (Signing streams the policy instead; tests check vectors with this.)
    #[cfg(test)]
    pub(crate) fn sign_bytes(&self, data: &[u8]) -> Hex32 {
        let mut mac = self.mac.clone();
        mac.update(data);
        Hex32::new(&mac.finalize().into_bytes())
    }

    /// Whether `signature` (32 raw bytes) is `HMAC(kSigning, data)`, compared in constant time.
    pub(crate) fn verify_bytes(&self, data: &[u8], signature: &[u8]) -> bool {
        let mut mac = self.mac.clone();
        mac.update(data);
        mac.verify_slice(signature).is_ok()
    }
}

/// One second's HMAC state after the string-to-sign prefix (`X-Amz-Date` → state), and this
/// thread's scratch buffer for canonical requests (kept, so signing allocates none).
#[derive(Default)]
pub(crate) struct SecondCache {
    pub(crate) second: Option<([u8; 16], HmacSha256)>,
    pub(crate) scratch: String,
}

/// One day's key, shared by every thread. A new date replaces it.
#[derive(Default)]
pub(crate) struct KeyCache {
    current: RwLock<Option<Arc<DerivedKey>>>,
}

impl KeyCache {
    pub(crate) fn get(
        &self,
        access_key: &str,
        secret: &str,
        date: &str,
        region: &str,
        service: &str,
    ) -> Arc<DerivedKey> {
        {
            let guard = self.current.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(key) = guard.as_ref().filter(|k| k.date() == date) {
                return Arc::clone(key);
            }
        }
        let key =
            Arc::new(DerivedKey::new(secret, date, region, service).with_access_key(access_key));
        let mut guard = self.current.write().unwrap_or_else(PoisonError::into_inner);
        // Keep the newest date when two threads race across midnight.
        if guard.as_ref().is_none_or(|k| k.date() <= date) {
            *guard = Some(Arc::clone(&key));
        }
        key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signing_key_matches_aws_documentation() {
        // From the AWS SigV4 docs ("Examples of how to derive a signing key").
        let key = signing_key(
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "20120215",
            "us-east-1",
            "iam",
        );
        assert_eq!(
            hex::encode(key),
            "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
        );
    }

    #[test]
    fn signature_of_the_s3_documentation_example() {
        let key = DerivedKey::new(
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "20130524",
            "us-east-1",
            "s3",
        );
        let hash =
            Hex32::from_text("3bfa292879f6447bbcda7001decf97f4a54dc650c8942174ae0a9121cf58ad04");
        let sig = key.signature("20130524T000000Z", &hash);
        assert_eq!(
            sig.as_str(),
            "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
        );
        assert!(key.verify(
            "20130524T000000Z",
            &hash,
            &hex::decode(sig.as_str()).unwrap()
        ));
    }

    #[test]
    fn the_per_second_state_gives_the_same_signatures() {
        let key = DerivedKey::new("secret", "20261127", "us-east-1", "s3");
        let mut cache = SecondCache::default();
        for (second, hash) in [
            ("20261127T120000Z", "a"),
            ("20261127T120000Z", "b"),
            ("20261127T120001Z", "b"),
            ("20261127T120000Z", "c"),
        ] {
            let hash = Hex32::new(&[hash.as_bytes()[0]; 32]);
            let cached = key.signature_cached(second, &hash, &mut cache);
            assert_eq!(
                cached.as_str(),
                key.signature(second, &hash).as_str(),
                "{second}"
            );
            assert_eq!(
                cache.second.as_ref().map(|(s, _)| s.as_slice()),
                Some(second.as_bytes())
            );
        }
    }

    #[test]
    fn cache_derives_once_per_date() {
        let cache = KeyCache::default();
        let a = cache.get("ak", "s", "20261127", "r", "s3");
        let b = cache.get("ak", "s", "20261127", "r", "s3");
        assert!(Arc::ptr_eq(&a, &b));
        let c = cache.get("ak", "s", "20261128", "r", "s3");
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(c.scope, "20261128/r/s3/aws4_request");
        assert_eq!(c.credential_param, "ak%2F20261128%2Fr%2Fs3%2Faws4_request");
        // An older date still signs correctly but does not evict the newer key.
        let d = cache.get("ak", "s", "20261127", "r", "s3");
        assert_eq!(d.scope, "20261127/r/s3/aws4_request");
        assert!(Arc::ptr_eq(
            &cache.get("ak", "s", "20261128", "r", "s3"),
            &c
        ));
    }
}

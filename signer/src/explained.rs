//! [`Explained`]: the intermediate texts of one signature, for debugging a mismatch.

use crate::encode::Hex32;
use crate::string_to_sign::write_string_to_sign;

/// A signed URL with the canonical request and string to sign that produced it. Contains no
/// secret: both texts are what S3 itself echoes back in a `SignatureDoesNotMatch` error.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Explained {
    /// The presigned URL.
    pub url: String,
    /// Stage 1: the canonical request whose SHA-256 was signed.
    pub canonical_request: String,
    /// Stage 2: the string to sign.
    pub string_to_sign: String,
}

impl Explained {
    pub(crate) fn record(&mut self, creq: &str, amz_date: &str, scope: &str, hash: &Hex32) {
        self.canonical_request.clear();
        self.canonical_request.push_str(creq);
        self.string_to_sign.clear();
        write_string_to_sign(&mut self.string_to_sign, amz_date, scope, hash);
    }
}

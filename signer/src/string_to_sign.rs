//! Stage 2: the string to sign — algorithm, timestamp, credential scope, canonical hash.

use crate::canonical::Sink;
use crate::encode::Hex32;

pub(crate) const ALGORITHM: &str = "AWS4-HMAC-SHA256";

pub(crate) fn write_string_to_sign(
    sink: &mut impl Sink,
    amz_date: &str,
    scope: &str,
    canonical_hash: &Hex32,
) {
    write_prefix(sink, amz_date, scope);
    sink.put_hex(canonical_hash);
}

/// Everything before the canonical hash: the same for every request signed in one second
/// with one key, so its HMAC state can be kept (see `signing_key::SecondCache`).
pub(crate) fn write_prefix(sink: &mut impl Sink, amz_date: &str, scope: &str) {
    sink.put(ALGORITHM);
    sink.put("\n");
    sink.put(amz_date);
    sink.put("\n");
    sink.put(scope);
    sink.put("\n");
}

#[cfg(test)]
pub(crate) fn string_to_sign(amz_date: &str, scope: &str, canonical_hash: &str) -> String {
    let mut s = String::new();
    write_string_to_sign(&mut s, amz_date, scope, &Hex32::from_text(canonical_hash));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_the_aws_documentation_example() {
        assert_eq!(
            string_to_sign(
                "20130524T000000Z",
                "20130524/us-east-1/s3/aws4_request",
                "3bfa292879f6447bbcda7001decf97f4a54dc650c8942174ae0a9121cf58ad04"
            ),
            "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n\
             3bfa292879f6447bbcda7001decf97f4a54dc650c8942174ae0a9121cf58ad04"
        );
    }
}

//! The POST policy parser and form verifier on arbitrary input: Ok or a typed error, never a
//! panic or a hang. Half the inputs start from a validly signed form and replace one field's
//! value and appending arbitrary fields, so the deep checks (conditions, size) are reached.
#![no_main]

use arbitrary::Arbitrary;
use draftstore_signer::{Credentials, Expiry, Policy, PostPolicy, PostVerifier, Signer, Timestamp};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    document: &'a str,
    mutate_valid: bool,
    fields: Vec<(&'a str, &'a str)>,
    replace: u8,
    value: &'a str,
    size: u64,
    now_offset: i32,
}

fuzz_target!(|i: Input<'_>| {
    let _ = Policy::parse(i.document);
    let base = 1_795_780_800_i64;
    let Ok(now) = Timestamp::from_unix(base + i64::from(i.now_offset)) else { return };
    let verifier = PostVerifier::new("us-east-1", "s3", 900).unwrap();
    let lookup = |ak: &str| (ak == "AKIDEXAMPLE").then_some("secret");
    if !i.mutate_valid {
        let _ = verifier.verify("drafts", &i.fields, now, lookup).map(|v| v.check_size(i.size));
        return;
    }
    let signer = Signer::new(Credentials::new("AKIDEXAMPLE", "secret", None).unwrap(), "us-east-1", "s3").unwrap();
    let policy = PostPolicy {
        bucket: "drafts",
        key: "t/a b.png",
        content_type: Some("image/png"),
        length_range: Some((1, 1 << 20)),
        metadata: &[("owner", "alice")],
    };
    let form = signer.presign_post(&policy, Expiry::new(3600).unwrap(), Timestamp::from_unix(base).unwrap()).unwrap();
    let mut fields: Vec<(&str, &str)> = form.fields().collect();
    if let Some(slot) = fields.get_mut(usize::from(i.replace) % (form.fields().len() + 1)) {
        slot.1 = i.value;
    }
    fields.extend(i.fields.iter().copied());
    if let Ok(v) = verifier.verify("drafts", &fields, now, lookup) {
        let _ = v.check_size(i.size);
    }
});

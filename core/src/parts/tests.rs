use super::*;
use crate::multipart::{MAX_PART_NUMBER as MAX_PARTS, MAX_PART_SIZE, MIN_PART_SIZE};
use proptest::prelude::*;

const MB5: u64 = 5 * MIB;
const SUM: &str = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";

fn stored(sizes: &[(u32, u64)]) -> Vec<(u32, String, u64)> {
    sizes
        .iter()
        .map(|&(n, size)| (n, format!("\"etag{n}\""), size))
        .collect()
}

fn refs(parts: &[(u32, String, u64)]) -> Vec<StoredPart<'_>> {
    parts
        .iter()
        .map(|(number, etag, size)| StoredPart {
            number: *number,
            etag,
            size: *size,
        })
        .collect()
}

#[test]
fn the_server_chooses_8_mib_or_what_keeps_10000_parts() {
    assert_eq!(
        plan(None, None),
        Ok(PartPlan {
            part_size: DEFAULT_PART_SIZE,
            part_count: None
        })
    );
    assert_eq!(plan(Some(0), None).map(|p| p.part_count), Ok(Some(1)));
    assert_eq!(
        plan(Some(11 * MIB), None).map(|p| p.part_count),
        Ok(Some(2))
    );
    // 1 TiB: 10 000 parts of 8 MiB are not enough; 105 MiB parts are.
    let tib = 1024 * 1024 * MIB;
    let p = plan(Some(tib), None).unwrap();
    assert_eq!(p.part_size, 105 * MIB);
    assert_eq!(p.part_count, Some(9987));
    let p = plan(Some(crate::MAX_OBJECT_SIZE), None).unwrap();
    assert!(p.part_size <= MAX_PART_SIZE && p.part_count <= Some(MAX_PARTS));
}

#[test]
fn a_given_part_size_is_checked() {
    assert_eq!(plan(Some(11 * MIB), Some(MB5)).unwrap().part_count, Some(3));
    for size in [0, MB5 - 1, MAX_PART_SIZE + 1, u64::MAX] {
        assert_eq!(plan(None, Some(size)), Err(PartError::PartSize { size }));
    }
    assert_eq!(
        plan(None, Some(MAX_PART_SIZE)).unwrap().part_size,
        MAX_PART_SIZE
    );
    let e = plan(Some(MB5 * 10_001), Some(MB5)).unwrap_err();
    assert_eq!(
        e,
        PartError::TooManyParts {
            length: MB5 * 10_001,
            part_size: MB5,
            count: 10_001
        }
    );
    assert!(e.to_string().contains("at most 10000"), "{e}");
    assert_eq!(
        plan(Some(MB5 * 10_000), Some(MB5)).unwrap().part_count,
        Some(10_000)
    );
}

#[test]
fn a_whole_object_checksum_is_refused_saying_checksums_are_per_part() {
    let declared =
        UploadConstraints::new(None, Some(3), Some(SUM.into()), Metadata::new()).unwrap();
    let e = check_declared(&declared).unwrap_err();
    assert!(e.to_string().contains("checksums are per part"), "{e}");
    check_declared(&UploadConstraints::default()).unwrap();
}

#[test]
fn part_urls_keep_the_order_asked_and_sign_each_checksum() {
    let none = BTreeMap::new();
    let pairs = |parts: Vec<PartToSign<'_>>| -> Vec<(u32, Option<String>)> {
        parts
            .into_iter()
            .map(|p| (p.part_number, p.checksum_sha256.map(str::to_owned)))
            .collect()
    };
    assert_eq!(
        pairs(part_urls(&[3, 1, 2], &none, None).unwrap()),
        vec![(3, None), (1, None), (2, None)]
    );
    let sums: BTreeMap<String, String> =
        [("1".into(), SUM.into()), ("3".into(), SUM.into())].into();
    assert_eq!(
        pairs(part_urls(&[3, 1], &sums, Some(true)).unwrap()),
        vec![(3, Some(SUM.into())), (1, Some(SUM.into()))]
    );
    // Not known yet (no part stored): what is given is signed, nothing is required.
    let three: BTreeMap<String, String> = [("3".to_owned(), SUM.to_owned())].into();
    assert_eq!(
        pairs(part_urls(&[3, 2], &three, None).unwrap()),
        vec![(3, Some(SUM.into())), (2, None)]
    );
    assert_eq!(
        pairs(part_urls(&[2], &none, Some(false)).unwrap()),
        vec![(2, None)]
    );
    // The ends of the range, and the largest call, each number once.
    let all: Vec<u64> = (9001..=10_000).collect();
    assert_eq!(part_urls(&all, &none, None).unwrap().len(), 1000);
    assert_eq!(
        part_urls(&[10_000, 1, 10_000], &none, None),
        Err(PartError::Duplicate { number: 10_000 })
    );
}

#[test]
fn part_url_errors_name_the_part_and_the_rule() {
    let none = BTreeMap::new();
    let sums = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    let many: Vec<u64> = (1..=1001).collect();
    for (result, want) in [
        (
            part_urls(&[], &none, None),
            PartError::UrlCount { count: 0 },
        ),
        (
            part_urls(&many, &none, None),
            PartError::UrlCount { count: 1001 },
        ),
        (
            part_urls(&[0], &none, None),
            PartError::PartNumber { number: 0 },
        ),
        (
            part_urls(&[10_001], &none, None),
            PartError::PartNumber { number: 10_001 },
        ),
        (
            part_urls(&[u64::MAX], &none, None),
            PartError::PartNumber { number: u64::MAX },
        ),
        (
            part_urls(&[2, 1, 2], &none, None),
            PartError::Duplicate { number: 2 },
        ),
        (
            part_urls(&[1], &sums(&[("1", SUM)]), Some(false)),
            PartError::ChecksumNotDeclared,
        ),
        (
            part_urls(&[1, 2], &sums(&[("1", SUM)]), Some(true)),
            PartError::ChecksumMissing { number: 2 },
        ),
        (
            part_urls(&[1], &sums(&[("1", SUM), ("2", SUM)]), Some(true)),
            PartError::ChecksumUnrequested { key: "2".into() },
        ),
        (
            part_urls(&[1], &sums(&[("01", SUM)]), None),
            PartError::ChecksumUnrequested { key: "01".into() },
        ),
        (
            part_urls(&[1], &sums(&[("1", "bm9wZQ==")]), None),
            PartError::ChecksumFormat { number: 1 },
        ),
        (
            part_urls(&[1], &sums(&[("1", "%%%")]), Some(true)),
            PartError::ChecksumFormat { number: 1 },
        ),
    ] {
        assert_eq!(result, Err(want));
    }
    let e = part_urls(&[10_001], &none, None).unwrap_err().to_string();
    assert!(e.contains("part 10001") && e.contains("1 to 10000"), "{e}");
}

#[test]
fn complete_with_every_part_sorts_them_and_adds_their_sizes() {
    // Uploaded in the order 3, 1, 2 (as the proof does).
    let parts = stored(&[(3, MIB), (1, MB5), (2, MB5)]);
    let done = assemble(&refs(&parts), None).unwrap();
    assert_eq!(
        done.parts,
        vec![
            (1, "\"etag1\"".to_owned()),
            (2, "\"etag2\"".to_owned()),
            (3, "\"etag3\"".to_owned())
        ]
    );
    assert_eq!(done.size, 11 * MIB);
    // Explicit parts, ETags with or without quotes; a subset is allowed.
    let chosen = vec![(1, "etag1".to_owned()), (3, "\"etag3\"".to_owned())];
    let done = assemble(&refs(&parts), Some(&chosen)).unwrap();
    assert_eq!(done.size, MB5 + MIB);
    assert_eq!(done.parts.len(), 2);
}

#[test]
fn complete_errors_name_the_part_and_the_rule() {
    let parts = stored(&[(1, MB5), (2, MIB), (3, MIB)]);
    let ok = stored(&[(1, MB5), (2, MB5), (3, MIB)]);
    let pick = |list: &[(u64, &str)]| -> Vec<(u64, String)> {
        list.iter().map(|(n, e)| (*n, (*e).to_owned())).collect()
    };
    let cases = [
        (assemble(&[], None), PartError::NoParts),
        (assemble(&refs(&ok), Some(&[])), PartError::NoParts),
        (
            assemble(&refs(&parts), None),
            PartError::TooSmall {
                number: 2,
                size: MIB,
            },
        ),
        (
            assemble(&refs(&stored(&[(1, MAX_PART_SIZE + 1)])), None),
            PartError::TooLarge {
                number: 1,
                size: MAX_PART_SIZE + 1,
            },
        ),
        (
            assemble(&refs(&ok), Some(&pick(&[(2, "etag2"), (1, "etag1")]))),
            PartError::Order {
                number: 1,
                after: 2,
            },
        ),
        (
            assemble(&refs(&ok), Some(&pick(&[(1, "etag1"), (1, "etag1")]))),
            PartError::Duplicate { number: 1 },
        ),
        (
            assemble(&refs(&ok), Some(&pick(&[(1, "etag1"), (4, "etag4")]))),
            PartError::NotUploaded { number: 4 },
        ),
        (
            assemble(&refs(&ok), Some(&pick(&[(1, "etag1"), (2, "nope")]))),
            PartError::ETag {
                number: 2,
                given: "nope".into(),
                uploaded: "etag2".into(),
            },
        ),
        (
            assemble(&refs(&ok), Some(&pick(&[(10_001, "x")]))),
            PartError::PartNumber { number: 10_001 },
        ),
    ];
    for (result, want) in cases {
        assert_eq!(result, Err(want));
    }
    let e = PartError::TooSmall {
        number: 2,
        size: MIB,
    }
    .to_string();
    assert!(e.contains("part 2") && e.contains("at least 5 MiB"), "{e}");
}

#[test]
fn a_multipart_draft_carries_the_single_upload_stamp_and_is_checked_by_it() {
    let declared = UploadConstraints::new(
        Some("video/mp4".into()),
        Some(11 * MIB),
        None,
        [("k".to_owned(), "v".to_owned())].into(),
    )
    .unwrap();
    let metadata = upload_metadata(&declared);
    // The same stamp a single upload's URL requires.
    let single: Vec<(String, String)> = declared
        .required_headers()
        .into_iter()
        .filter_map(|(n, v)| n.strip_prefix("x-amz-meta-").map(|k| (k.to_owned(), v)))
        .collect();
    assert_eq!(metadata.clone().into_iter().collect::<Vec<_>>(), single);
    let object = |size| ObjectInfo {
        size,
        etag: "9b2cf535f27731c974343645a3985328-3".into(),
        last_modified: 0,
        content_type: Some("video/mp4".into()),
        metadata: metadata.clone(),
        checksum_sha256: None,
        version_id: None,
    };
    check_completed(&object(11 * MIB)).unwrap();
    assert_eq!(
        check_completed(&object(10 * MIB)),
        Err(ConstraintViolation::Size {
            declared: 11 * MIB,
            actual: 10 * MIB
        })
    );
    // Nothing declared: no stamp, nothing to check.
    assert!(upload_metadata(&UploadConstraints::default()).is_empty());
}

proptest! {
    /// Whatever the length (up to S3's 5 TiB), the chosen size is within S3's limits and the
    /// parts cover the length with at most 10 000 of them, none of them wasted.
    #[test]
    fn chosen_part_sizes_fit_s3(length in prop_oneof![0..=crate::MAX_OBJECT_SIZE, 0..=100 * MIB]) {
        let p = plan(Some(length), None).unwrap();
        let count = u64::from(p.part_count.unwrap());
        prop_assert!((MIN_PART_SIZE..=MAX_PART_SIZE).contains(&p.part_size));
        prop_assert!(count <= u64::from(MAX_PARTS));
        prop_assert!(count * p.part_size >= length);
        prop_assert!(count == 1 || (count - 1) * p.part_size < length);
    }

    /// A given size is accepted exactly when S3 would take it for that length.
    #[test]
    fn given_part_sizes_are_accepted_exactly_within_the_limits(
        length in 0..=crate::MAX_OBJECT_SIZE,
        size in prop_oneof![0..=2 * MAX_PART_SIZE, MB5 - 2..MB5 + 2],
    ) {
        let fits = (MIN_PART_SIZE..=MAX_PART_SIZE).contains(&size)
            && length.div_ceil(size).max(1) <= u64::from(MAX_PARTS);
        prop_assert_eq!(plan(Some(length), Some(size)).is_ok(), fits);
    }

    /// Any distinct numbers in 1..=10 000 (up to 1000) come back in the order asked.
    #[test]
    fn distinct_part_numbers_are_signed_in_the_order_asked(
        numbers in proptest::collection::btree_set(1..=u64::from(MAX_PARTS), 1..=50)
            .prop_map(|set| set.into_iter().collect::<Vec<u64>>())
            .prop_shuffle(),
    ) {
        let none = BTreeMap::new();
        let got = part_urls(&numbers, &none, None).unwrap();
        let got: Vec<u64> = got.into_iter().map(|p| u64::from(p.part_number)).collect();
        prop_assert_eq!(got, numbers);
    }

    /// Completing every stored part succeeds exactly when every part but the last is at least
    /// 5 MiB; the size is then their sum, and the parts are in ascending order.
    #[test]
    fn completing_every_part_follows_the_size_rule(
        sizes in proptest::collection::btree_map(1..=MAX_PARTS, prop_oneof![0..=MIB, MB5..=MB5 + MIB], 0..20),
    ) {
        let parts: Vec<(u32, u64)> = sizes.into_iter().collect();
        let owned = stored(&parts);
        let result = assemble(&refs(&owned), None);
        let small_before_last = parts.iter().rev().skip(1).any(|(_, s)| *s < MIN_PART_SIZE);
        match result {
            Ok(done) => {
                prop_assert!(!small_before_last);
                prop_assert_eq!(done.size, parts.iter().map(|(_, s)| s).sum::<u64>());
                prop_assert!(done.parts.windows(2).all(|w| w[0].0 < w[1].0));
            }
            Err(PartError::NoParts) => prop_assert!(parts.is_empty()),
            Err(PartError::TooSmall { number, .. }) => {
                prop_assert!(small_before_last);
                prop_assert!(parts.last().is_some_and(|(n, _)| *n != number));
            }
            Err(e) => prop_assert!(false, "unexpected {e}"),
        }
    }
}

//! The draft lifecycle as an explicit state machine. State is derived from what storage holds
//! (a HEAD of the draft and of main, plus the stamp the service writes on the main copy), so no
//! database is needed and any replica can continue any draft.
//!
//! ```text
//! Absent ──upload──▶ Uploaded ──copy──▶ Promoting ──delete draft──▶ Confirmed
//!                       │                                (main only, stamped)
//!                       └──sweep (older than the lifetime)──▶ Absent (expired)
//! ```
//! `Conflict` is a draft whose name main already holds with another object.
//!
//! Confirm is [`next_step`], a pure function from what has been observed to the next action;
//! `confirm.rs` performs the actions. Every step is tested here without IO.

use crate::confirm::ConfirmOutcome;
use crate::constraints::{user_metadata, ConstraintViolation, UploadConstraints};
use crate::limits::{metadata_bytes, MAX_METADATA_BYTES};
use crate::storage::{CopyCondition, Metadata, MetadataDirective, ObjectInfo};
use sha2::{Digest, Sha256};

/// Stamped on the main copy: the draft's ETag (without quotes).
pub const SOURCE_ETAG_KEY: &str = "draftstore-source-etag";
/// Stamped on the main copy: the draft's size in bytes (decimal).
pub const SOURCE_SIZE_KEY: &str = "draftstore-source-size";
/// Stamped on the main copy: the draft's version ([`draft_version`], 32 hex digits), which
/// says which upload main holds a copy of, not only which bytes.
pub const SOURCE_VERSION_KEY: &str = "draftstore-source-version";

/// Hex digits of a [`draft_version`].
pub const DRAFT_VERSION_LEN: usize = 32;

/// Where a name stands, from a HEAD of the draft bucket and of main: the states of the diagram
/// in the module doc. Borrowed from what confirm observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DraftState<'a> {
    /// Neither bucket holds the name.
    Absent,
    /// Only the draft bucket holds it.
    Uploaded {
        /// The draft.
        draft: &'a ObjectInfo,
    },
    /// Copied to main (main carries this draft's version stamp), draft not yet deleted.
    Promoting {
        /// The draft.
        draft: &'a ObjectInfo,
        /// Its stamped copy in main.
        main: &'a ObjectInfo,
    },
    /// Only main holds it.
    Confirmed {
        /// The object in main.
        main: &'a ObjectInfo,
    },
    /// Both hold it, and main's object is not a copy of this draft (another upload, even of
    /// the same bytes).
    Conflict {
        /// The draft.
        draft: &'a ObjectInfo,
        /// The different object in main.
        main: &'a ObjectInfo,
    },
}

impl<'a> DraftState<'a> {
    /// The state of a name from a HEAD of the draft bucket and of main (`None`: not there).
    #[must_use]
    pub fn derive(draft: Option<&'a ObjectInfo>, main: Option<&'a ObjectInfo>) -> Self {
        match (draft, main) {
            (None, None) => Self::Absent,
            (Some(draft), None) => Self::Uploaded { draft },
            (None, Some(main)) => Self::Confirmed { main },
            (Some(draft), Some(main)) if is_promoted_copy(main, draft) => {
                Self::Promoting { draft, main }
            }
            (Some(draft), Some(main)) => Self::Conflict { draft, main },
        }
    }
}

/// The identity of one upload of a draft, as a HEAD shows it: SHA-256 over its ETag, size,
/// Last-Modified (Unix seconds), content type and every metadata entry (DraftStore's
/// declaration included), each length-prefixed, cut to 128 bits: [`DRAFT_VERSION_LEN`]
/// lowercase hex digits.
///
/// The same bytes uploaded again with another type or metadata, or in a later second, are
/// another version; every HEAD of one stored upload gives the same version, whatever path
/// uploaded it (presigned PUT, POST form, multipart, Companion) and on every store. Where the
/// store tells uploads apart ([`ObjectInfo::version_id`]: the embedded and memory stores, a
/// versioned S3 bucket) its id is hashed last, so every upload is its own version; on an
/// unversioned S3 bucket two uploads of the same bytes, type and metadata within one second
/// (Last-Modified has whole seconds) are one version.
#[must_use]
pub fn draft_version(draft: &ObjectInfo) -> String {
    let size = draft.size.to_string();
    let at = draft.last_modified.to_string();
    let content_type = draft
        .content_type
        .as_deref()
        .map_or(String::new(), |t| format!("={t}"));
    // Only when the store has one, so versions of objects without it stay what they were.
    let id = draft.version_id.as_deref().map(|id| format!("#{id}"));
    let fields = [draft.etag.as_str(), &size, &at, &content_type];
    let entries = draft
        .metadata
        .iter()
        .flat_map(|(k, v)| [k.as_str(), v.as_str()]);
    let mut hash = Sha256::new();
    for field in fields.into_iter().chain(entries).chain(id.as_deref()) {
        hash.update((field.len() as u64).to_be_bytes());
        hash.update(field.as_bytes());
    }
    let digest = hash.finalize();
    hex::encode(digest.get(..DRAFT_VERSION_LEN / 2).unwrap_or_default())
}

/// True when `main` is the service's copy of this very `draft`: the same size and the draft's
/// [`draft_version`] stamped on it. A main copy stamped before versions were (no
/// [`SOURCE_VERSION_KEY`]) is matched by what such a copy carried: the draft's stamped ETag,
/// its content type and its metadata.
#[must_use]
pub fn is_promoted_copy(main: &ObjectInfo, draft: &ObjectInfo) -> bool {
    if main.size != draft.size {
        return false;
    }
    match main.metadata.get(SOURCE_VERSION_KEY) {
        Some(version) => *version == draft_version(draft),
        None => {
            main.metadata.get(SOURCE_ETAG_KEY) == Some(&draft.etag)
                && main.content_type == draft.content_type
                && user_metadata(&main.metadata) == user_metadata(&draft.metadata)
        }
    }
}

/// True when a draft stored at `last_modified` is older than `lifetime` seconds at `now`.
#[must_use]
pub fn is_expired(last_modified: i64, now: i64, lifetime: u64) -> bool {
    let lifetime = i64::try_from(lifetime).unwrap_or(i64::MAX);
    now.saturating_sub(last_modified) > lifetime
}

/// The metadata of the main copy: the draft's own, without DraftStore's declaration stamp,
/// plus the source stamp (the draft's ETag, size and [`draft_version`]).
#[must_use]
pub fn promoted_user_metadata(draft: &ObjectInfo) -> Metadata {
    let mut metadata = user_metadata(&draft.metadata);
    metadata.insert(SOURCE_ETAG_KEY.to_owned(), draft.etag.clone());
    metadata.insert(SOURCE_SIZE_KEY.to_owned(), draft.size.to_string());
    metadata.insert(SOURCE_VERSION_KEY.to_owned(), draft_version(draft));
    metadata
}

/// How the copy into main sets metadata: the draft's content type and
/// [`promoted_user_metadata`], replacing what the store would copy.
#[must_use]
pub fn promoted_metadata(draft: &ObjectInfo) -> MetadataDirective {
    MetadataDirective::Replace {
        content_type: draft.content_type.clone(),
        metadata: promoted_user_metadata(draft),
    }
}

/// What confirm has seen so far; `None` is "not looked at (or no longer trusted)".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// The HEAD of the draft: `Some(None)` when it is not there.
    pub draft: Option<Option<ObjectInfo>>,
    /// The HEAD of main: `Some(None)` when it is not there.
    pub main: Option<Option<ObjectInfo>>,
    /// This confirm's copy put the draft into main: it is the one confirm that moved the
    /// object (see [`ConfirmOutcome::Moved`]).
    pub moved: bool,
    /// A conditional copy was refused: main must be looked at before copying again.
    pub copy_refused: bool,
}

/// How confirm may act.
#[derive(Debug, Clone, Copy, Default)]
pub struct Policy<'a> {
    /// Replace a different object main holds under the name.
    pub overwrite: bool,
    /// Constraints the caller expects now, on top of those stamped at upload.
    pub expect: Option<&'a UploadConstraints>,
    /// The store enforces copy conditions atomically.
    pub conditional_copy: bool,
}

/// The next action of a confirm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// HEAD the draft bucket.
    HeadDraft,
    /// HEAD main.
    HeadMain,
    /// Copy the draft into main under this condition, with [`promoted_metadata`].
    Copy(CopyCondition),
    /// Delete the draft (only if it still has the ETag that was copied).
    DeleteDraft,
    /// Finished: main holds `main`.
    Done {
        /// The object in main.
        main: ObjectInfo,
        /// Whether this confirm moved it.
        outcome: ConfirmOutcome,
    },
    /// Neither bucket holds the name.
    NotFound,
    /// Main holds a different object and the caller did not ask to overwrite.
    Conflict,
    /// The draft breaks its declared (or expected) constraints.
    Violation(ConstraintViolation),
}

/// Decides the next action from what has been observed: looks until the [`DraftState`] is
/// known (or, with conditional copies, copies optimistically), then acts on the state.
#[must_use]
pub fn next_step(seen: &Observed, policy: &Policy<'_>) -> Step {
    let Some(draft) = &seen.draft else {
        return Step::HeadDraft;
    };
    if let Some(draft) = draft {
        if let Err(v) = check_constraints(draft, policy.expect) {
            return Step::Violation(v);
        }
    }
    let Some(main) = &seen.main else {
        // With a draft, a store that refuses to overwrite main atomically lets confirm copy
        // before looking (`If-None-Match: *`): one call fewer. Once this confirm has copied,
        // main is looked at instead: a copy whose ETag differs from the draft's (a multipart
        // draft's `…-N`, a multipart copy) is verified by main's stamp, not copied again.
        let optimistic =
            policy.conditional_copy && !policy.overwrite && !seen.copy_refused && !seen.moved;
        return match draft {
            Some(_) if optimistic => Step::Copy(CopyCondition::IfAbsent),
            _ => Step::HeadMain,
        };
    };
    match DraftState::derive(draft.as_ref(), main.as_ref()) {
        DraftState::Absent => Step::NotFound,
        DraftState::Uploaded { .. } if policy.conditional_copy => {
            Step::Copy(CopyCondition::IfAbsent)
        }
        DraftState::Uploaded { .. } => Step::Copy(CopyCondition::Always),
        DraftState::Promoting { .. } => Step::DeleteDraft,
        DraftState::Confirmed { main } => Step::Done {
            main: main.clone(),
            outcome: if seen.moved {
                ConfirmOutcome::Moved
            } else {
                ConfirmOutcome::Already
            },
        },
        DraftState::Conflict { main, .. } if policy.overwrite && policy.conditional_copy => {
            Step::Copy(CopyCondition::IfMatch(main.etag.clone()))
        }
        DraftState::Conflict { .. } if policy.overwrite => Step::Copy(CopyCondition::Always),
        DraftState::Conflict { .. } => Step::Conflict,
    }
}

fn check_constraints(
    draft: &ObjectInfo,
    expect: Option<&UploadConstraints>,
) -> Result<(), ConstraintViolation> {
    if let Some(declared) = UploadConstraints::from_stamp(draft) {
        declared.check(draft)?;
    }
    // A store that does not enforce S3's metadata limit may hold a draft whose copy S3 would
    // refuse: refuse it here, the same on every store.
    let size = metadata_bytes(&promoted_user_metadata(draft));
    if size > MAX_METADATA_BYTES {
        return Err(ConstraintViolation::MetadataTooLarge { size });
    }
    expect.map_or(Ok(()), |e| e.check(draft))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(etag: &str, size: u64) -> ObjectInfo {
        ObjectInfo {
            size,
            etag: etag.into(),
            last_modified: 100,
            content_type: None,
            metadata: Metadata::new(),
            checksum_sha256: None,
            version_id: None,
        }
    }

    fn stamped(from: &ObjectInfo) -> ObjectInfo {
        let mut main = obj("main-etag", from.size);
        main.metadata = promoted_user_metadata(from);
        main
    }

    const COND: Policy<'static> = Policy {
        overwrite: false,
        expect: None,
        conditional_copy: true,
    };
    const PLAIN: Policy<'static> = Policy {
        overwrite: false,
        expect: None,
        conditional_copy: false,
    };

    #[test]
    fn derive_each_state() {
        let (d, m, s, other) = (obj("d", 3), obj("m", 1), stamped(&obj("d", 3)), obj("m", 3));
        assert_eq!(DraftState::derive(None, None), DraftState::Absent);
        assert!(matches!(
            DraftState::derive(Some(&d), None),
            DraftState::Uploaded { .. }
        ));
        assert!(matches!(
            DraftState::derive(None, Some(&m)),
            DraftState::Confirmed { .. }
        ));
        assert!(matches!(
            DraftState::derive(Some(&d), Some(&s)),
            DraftState::Promoting { .. }
        ));
        assert!(matches!(
            DraftState::derive(Some(&d), Some(&other)),
            DraftState::Conflict { .. }
        ));
    }

    #[test]
    fn happy_path_is_head_copy_delete_with_conditional_copy() {
        let d = obj("d", 3);
        let mut seen = Observed::default();
        assert_eq!(next_step(&seen, &COND), Step::HeadDraft);
        seen.draft = Some(Some(d.clone()));
        assert_eq!(next_step(&seen, &COND), Step::Copy(CopyCondition::IfAbsent));
        seen.main = Some(Some(stamped(&d)));
        seen.moved = true;
        assert_eq!(next_step(&seen, &COND), Step::DeleteDraft);
        seen.draft = Some(None);
        assert!(matches!(
            next_step(&seen, &COND),
            Step::Done {
                outcome: ConfirmOutcome::Moved,
                ..
            }
        ));
    }

    /// A confirm that finds the copy already made (a concurrent or crashed confirm copied) and
    /// only deletes the draft did not move the object: it is `Already`, so each object counts
    /// as moved once.
    #[test]
    fn finishing_another_confirms_copy_is_already() {
        let d = obj("d", 3);
        let mut seen = Observed {
            draft: Some(Some(d.clone())),
            main: Some(Some(stamped(&d))),
            copy_refused: true,
            ..Observed::default()
        };
        assert_eq!(next_step(&seen, &COND), Step::DeleteDraft);
        seen.draft = Some(None);
        assert!(matches!(
            next_step(&seen, &COND),
            Step::Done {
                outcome: ConfirmOutcome::Already,
                ..
            }
        ));
    }

    /// A multipart draft's ETag (`<md5 of md5s>-N`) is never the copy's: after the copy main
    /// is looked at once, its stamp names the draft, and confirm deletes the draft without a
    /// second copy.
    #[test]
    fn a_multipart_draft_is_verified_by_mains_stamp_after_one_copy() {
        for policy in [COND, PLAIN] {
            let d = obj("9b2cf535f27731c974343645a3985328-3", 11 * 1024 * 1024);
            let seen = Observed {
                draft: Some(Some(d.clone())),
                main: None,
                moved: true,
                copy_refused: false,
            };
            assert_eq!(next_step(&seen, &policy), Step::HeadMain);
            let seen = Observed {
                main: Some(Some(stamped(&d))),
                ..seen
            };
            assert_eq!(next_step(&seen, &policy), Step::DeleteDraft);
            let seen = Observed {
                draft: Some(None),
                ..seen
            };
            assert!(matches!(
                next_step(&seen, &policy),
                Step::Done {
                    outcome: ConfirmOutcome::Moved,
                    ..
                }
            ));
        }
    }

    #[test]
    fn a_refused_copy_makes_confirm_look_at_main() {
        let seen = Observed {
            draft: Some(Some(obj("d", 3))),
            copy_refused: true,
            ..Observed::default()
        };
        assert_eq!(next_step(&seen, &COND), Step::HeadMain);
    }

    #[test]
    fn without_conditional_copy_main_is_looked_at_first() {
        let seen = Observed {
            draft: Some(Some(obj("d", 3))),
            ..Observed::default()
        };
        assert_eq!(next_step(&seen, &PLAIN), Step::HeadMain);
        let seen = Observed {
            main: Some(None),
            ..seen
        };
        assert_eq!(next_step(&seen, &PLAIN), Step::Copy(CopyCondition::Always));
    }

    #[test]
    fn no_draft_is_confirmed_or_not_found() {
        let seen = Observed {
            draft: Some(None),
            ..Observed::default()
        };
        assert_eq!(next_step(&seen, &COND), Step::HeadMain);
        let gone = Observed {
            main: Some(None),
            ..seen.clone()
        };
        assert_eq!(next_step(&gone, &COND), Step::NotFound);
        let done = Observed {
            main: Some(Some(obj("m", 1))),
            ..seen
        };
        assert!(matches!(
            next_step(&done, &COND),
            Step::Done {
                outcome: ConfirmOutcome::Already,
                ..
            }
        ));
    }

    #[test]
    fn a_different_main_object_is_a_conflict_unless_overwriting() {
        let d = obj("d", 3);
        let seen = Observed {
            draft: Some(Some(d)),
            main: Some(Some(obj("other", 3))),
            ..Observed::default()
        };
        assert_eq!(next_step(&seen, &COND), Step::Conflict);
        let over = Policy {
            overwrite: true,
            ..COND
        };
        assert_eq!(
            next_step(&seen, &over),
            Step::Copy(CopyCondition::IfMatch("other".into()))
        );
        let over_plain = Policy {
            overwrite: true,
            ..PLAIN
        };
        assert_eq!(
            next_step(&seen, &over_plain),
            Step::Copy(CopyCondition::Always)
        );
        // Overwrite looks at main before copying, even with conditional copy.
        let unknown = Observed { main: None, ..seen };
        assert_eq!(next_step(&unknown, &over), Step::HeadMain);
    }

    /// Issue 18: the same bytes uploaded again with another type or metadata are another
    /// draft. Main holding the copy of the first is not "already done" for the second: a
    /// conflict, or with `overwrite` a copy over main.
    #[test]
    fn the_same_bytes_with_other_metadata_are_not_the_copy_main_holds() {
        let first = obj("d", 3);
        let main = stamped(&first);
        let mut retyped = first.clone();
        retyped.content_type = Some("text/csv".into());
        let mut annotated = first.clone();
        annotated.metadata.insert("owner".into(), "bob".into());
        let mut later = first.clone();
        later.last_modified += 1;
        for second in [&retyped, &annotated, &later] {
            assert_ne!(draft_version(second), draft_version(&first), "{second:?}");
            assert!(!is_promoted_copy(&main, second), "{second:?}");
            let seen = Observed {
                draft: Some(Some(second.clone())),
                main: Some(Some(main.clone())),
                ..Observed::default()
            };
            assert_eq!(next_step(&seen, &COND), Step::Conflict);
            let over = Policy {
                overwrite: true,
                ..COND
            };
            assert_eq!(
                next_step(&seen, &over),
                Step::Copy(CopyCondition::IfMatch("main-etag".into()))
            );
        }
        // The draft itself, HEADed again (a retry after a crash between copy and delete).
        assert!(is_promoted_copy(&main, &first.clone()));
        let seen = Observed {
            draft: Some(Some(first.clone())),
            main: Some(Some(main)),
            ..Observed::default()
        };
        assert_eq!(next_step(&seen, &COND), Step::DeleteDraft);
    }

    /// A version is 32 lowercase hex digits; `None` and an empty content type differ, and
    /// metadata entries cannot be shifted from key to value.
    #[test]
    fn draft_versions_are_hex_and_unambiguous() {
        let d = obj("d", 3);
        let v = draft_version(&d);
        assert_eq!(v.len(), DRAFT_VERSION_LEN);
        assert!(v
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        let mut empty_type = d.clone();
        empty_type.content_type = Some(String::new());
        assert_ne!(draft_version(&empty_type), v);
        let mut a = d.clone();
        a.metadata.insert("ab".into(), "c".into());
        let mut b = d;
        b.metadata.insert("a".into(), "bc".into());
        assert_ne!(draft_version(&a), draft_version(&b));
    }

    /// A main copy stamped before versions were (ETag and size only) is still recognised as
    /// the copy of its draft, so a confirm interrupted across an upgrade completes; the same
    /// bytes with another type or metadata are not.
    #[test]
    fn a_copy_stamped_without_a_version_is_matched_by_etag_type_and_metadata() {
        let mut d = obj("d", 3);
        d.metadata.insert("owner".into(), "ann".into());
        d.metadata
            .insert("draftstore-declared".into(), "len=3".into());
        let mut old = stamped(&d);
        old.metadata.remove(SOURCE_VERSION_KEY);
        assert!(is_promoted_copy(&old, &d));
        let mut other = d.clone();
        other.etag = "e".into();
        assert!(!is_promoted_copy(&old, &other));
        let mut retyped = d.clone();
        retyped.content_type = Some("text/csv".into());
        assert!(!is_promoted_copy(&old, &retyped));
        let mut annotated = d;
        annotated.metadata.insert("owner".into(), "bob".into());
        assert!(!is_promoted_copy(&old, &annotated));
    }

    #[test]
    fn constraint_mismatch_stops_before_any_copy() {
        let mut d = obj("d", 3);
        d.metadata
            .insert("draftstore-declared".into(), "len=4".into());
        let seen = Observed {
            draft: Some(Some(d)),
            ..Observed::default()
        };
        assert_eq!(
            next_step(&seen, &COND),
            Step::Violation(ConstraintViolation::Size {
                declared: 4,
                actual: 3
            })
        );
        let expect = UploadConstraints {
            content_type: Some("image/png".into()),
            ..UploadConstraints::default()
        };
        let seen = Observed {
            draft: Some(Some(obj("d", 3))),
            ..Observed::default()
        };
        assert!(matches!(
            next_step(
                &seen,
                &Policy {
                    expect: Some(&expect),
                    ..COND
                }
            ),
            Step::Violation(_)
        ));
    }

    /// A draft whose copy would pass S3's 2 KiB of metadata once stamped is refused before
    /// any copy (a store that does not enforce the limit would take it; S3 would not).
    #[test]
    fn a_draft_too_large_to_stamp_is_refused_before_the_copy() {
        let mut d = obj("0123456789abcdef0123456789abcdef", 7);
        let stamp = SOURCE_ETAG_KEY.len()
            + 32
            + SOURCE_SIZE_KEY.len()
            + 1
            + SOURCE_VERSION_KEY.len()
            + DRAFT_VERSION_LEN;
        d.metadata
            .insert("note".into(), "x".repeat(2048 - stamp - 4));
        let seen = Observed {
            draft: Some(Some(d.clone())),
            ..Observed::default()
        };
        assert_eq!(next_step(&seen, &COND), Step::Copy(CopyCondition::IfAbsent));
        d.metadata
            .insert("note".into(), "x".repeat(2048 - stamp - 3));
        let seen = Observed {
            draft: Some(Some(d)),
            ..Observed::default()
        };
        assert_eq!(
            next_step(&seen, &COND),
            Step::Violation(ConstraintViolation::MetadataTooLarge { size: 2049 })
        );
    }

    #[test]
    fn promoted_metadata_keeps_user_metadata_and_drops_the_declaration() {
        let mut d = obj("etag1", 9);
        d.content_type = Some("image/jpeg".into());
        d.metadata.insert("owner".into(), "ann".into());
        d.metadata
            .insert("draftstore-declared".into(), "len=9".into());
        let MetadataDirective::Replace {
            content_type,
            metadata,
        } = promoted_metadata(&d)
        else {
            panic!()
        };
        assert_eq!(content_type.as_deref(), Some("image/jpeg"));
        assert_eq!(metadata.get("owner").map(String::as_str), Some("ann"));
        assert_eq!(
            metadata.get(SOURCE_ETAG_KEY).map(String::as_str),
            Some("etag1")
        );
        assert_eq!(metadata.get(SOURCE_SIZE_KEY).map(String::as_str), Some("9"));
        assert_eq!(metadata.get(SOURCE_VERSION_KEY), Some(&draft_version(&d)));
        assert!(!metadata.contains_key("draftstore-declared"));
    }

    #[test]
    fn expiry_is_strictly_older_than_the_lifetime() {
        assert!(!is_expired(100, 100, 0));
        assert!(is_expired(100, 101, 0));
        assert!(!is_expired(100, 200, 100));
        assert!(is_expired(100, 201, 100));
        assert!(!is_expired(300, 200, 100), "from the future: not expired");
        assert!(!is_expired(0, i64::MAX, u64::MAX));
        assert!(is_expired(i64::MIN, i64::MAX, 5));
    }
}

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

use crate::constraints::{user_metadata, ConstraintViolation, UploadConstraints};
use crate::storage::{CopyCondition, Metadata, MetadataDirective, ObjectInfo};

/// Stamped on the main copy: the draft's ETag and size.
pub const SOURCE_ETAG_KEY: &str = "draftstore-source-etag";
pub const SOURCE_SIZE_KEY: &str = "draftstore-source-size";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DraftState {
    Absent,
    Uploaded {
        draft: ObjectInfo,
    },
    /// Copied to main, draft not yet deleted.
    Promoting {
        draft: ObjectInfo,
        main: ObjectInfo,
    },
    Confirmed {
        main: ObjectInfo,
    },
    Conflict {
        draft: ObjectInfo,
        main: ObjectInfo,
    },
}

impl DraftState {
    /// The state of a name from a HEAD of the draft bucket and of main.
    #[must_use]
    pub fn derive(draft: Option<ObjectInfo>, main: Option<ObjectInfo>) -> Self {
        match (draft, main) {
            (None, None) => Self::Absent,
            (Some(draft), None) => Self::Uploaded { draft },
            (None, Some(main)) => Self::Confirmed { main },
            (Some(draft), Some(main)) if is_promoted_copy(&main, &draft) => {
                Self::Promoting { draft, main }
            }
            (Some(draft), Some(main)) => Self::Conflict { draft, main },
        }
    }
}

/// True when `main` is the service's copy of `draft` (same stamped ETag and size).
#[must_use]
pub fn is_promoted_copy(main: &ObjectInfo, draft: &ObjectInfo) -> bool {
    main.size == draft.size
        && main.metadata.get(SOURCE_ETAG_KEY).map(String::as_str) == Some(draft.etag.as_str())
}

/// True when a draft stored at `last_modified` is older than `lifetime` seconds at `now`.
#[must_use]
pub fn is_expired(last_modified: i64, now: i64, lifetime: u64) -> bool {
    let lifetime = i64::try_from(lifetime).unwrap_or(i64::MAX);
    now.saturating_sub(last_modified) > lifetime
}

/// The metadata of the main copy: the draft's own, without DraftStore's declaration stamp,
/// plus the source stamp.
#[must_use]
pub fn promoted_user_metadata(draft: &ObjectInfo) -> Metadata {
    let mut metadata = user_metadata(&draft.metadata);
    metadata.insert(SOURCE_ETAG_KEY.to_owned(), draft.etag.clone());
    metadata.insert(SOURCE_SIZE_KEY.to_owned(), draft.size.to_string());
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
    pub draft: Option<Option<ObjectInfo>>,
    pub main: Option<Option<ObjectInfo>>,
    /// This confirm promoted the draft (so the result is not "already confirmed").
    pub promoted_now: bool,
    /// A conditional copy was refused: main must be looked at before copying again.
    pub copy_refused: bool,
}

/// How confirm may act.
#[derive(Debug, Clone, Copy, Default)]
pub struct Policy<'a> {
    pub overwrite: bool,
    /// Constraints the caller expects now, on top of those stamped at upload.
    pub expect: Option<&'a UploadConstraints>,
    /// The store enforces copy conditions atomically.
    pub conditional_copy: bool,
}

/// The next action of a confirm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    HeadDraft,
    HeadMain,
    Copy(CopyCondition),
    DeleteDraft,
    Done { main: ObjectInfo, already: bool },
    NotFound,
    Conflict,
    Violation(ConstraintViolation),
}

/// Decides the next action from what has been observed.
#[must_use]
pub fn next_step(seen: &Observed, policy: &Policy<'_>) -> Step {
    let Some(draft) = &seen.draft else {
        return Step::HeadDraft;
    };
    let Some(draft) = draft else {
        return match &seen.main {
            None => Step::HeadMain,
            Some(None) => Step::NotFound,
            Some(Some(main)) => Step::Done {
                main: main.clone(),
                already: !seen.promoted_now,
            },
        };
    };
    if let Err(v) = check_constraints(draft, policy.expect) {
        return Step::Violation(v);
    }
    match &seen.main {
        None if policy.conditional_copy && !policy.overwrite && !seen.copy_refused => {
            Step::Copy(CopyCondition::IfAbsent)
        }
        None => Step::HeadMain,
        Some(None) if policy.conditional_copy => Step::Copy(CopyCondition::IfAbsent),
        Some(None) => Step::Copy(CopyCondition::Always),
        Some(Some(main)) if is_promoted_copy(main, draft) => Step::DeleteDraft,
        Some(Some(main)) if policy.overwrite && policy.conditional_copy => {
            Step::Copy(CopyCondition::IfMatch(main.etag.clone()))
        }
        Some(Some(_)) if policy.overwrite => Step::Copy(CopyCondition::Always),
        Some(Some(_)) => Step::Conflict,
    }
}

fn check_constraints(
    draft: &ObjectInfo,
    expect: Option<&UploadConstraints>,
) -> Result<(), ConstraintViolation> {
    if let Some(declared) = UploadConstraints::from_stamp(draft) {
        declared.check(draft)?;
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
        let d = obj("d", 3);
        assert_eq!(DraftState::derive(None, None), DraftState::Absent);
        assert!(matches!(
            DraftState::derive(Some(d.clone()), None),
            DraftState::Uploaded { .. }
        ));
        assert!(matches!(
            DraftState::derive(None, Some(obj("m", 1))),
            DraftState::Confirmed { .. }
        ));
        assert!(matches!(
            DraftState::derive(Some(d.clone()), Some(stamped(&d))),
            DraftState::Promoting { .. }
        ));
        assert!(matches!(
            DraftState::derive(Some(d), Some(obj("m", 3))),
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
        assert_eq!(next_step(&seen, &COND), Step::DeleteDraft);
        seen.draft = Some(None);
        seen.promoted_now = true;
        assert!(matches!(
            next_step(&seen, &COND),
            Step::Done { already: false, .. }
        ));
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
            Step::Done { already: true, .. }
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

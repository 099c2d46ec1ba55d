//! Model-based property test: random operation sequences against the in-memory store, checked
//! after every step against a simple model. Invariants: no confirmed object is lost or changed;
//! a confirmed object's bytes equal the uploaded bytes; main holds the copy of one upload, and
//! the same bytes uploaded at another time are another draft (a conflict without overwrite);
//! sweep never deletes a draft younger than the lifetime nor anything in main; confirm
//! converges once faults stop. 1000 sequences in CI.

use draftstore_core::*;
use proptest::prelude::*;
use std::collections::BTreeMap;

const NAMES: [&str; 3] = ["a.jpg", "dir/b c.png", "ሴ/😀"];
const LIFETIME: u64 = 100;

#[derive(Debug, Clone)]
enum Op {
    Upload {
        name: usize,
        content: u8,
    },
    Confirm {
        name: usize,
        overwrite: bool,
    },
    CrashConfirm {
        name: usize,
        overwrite: bool,
        at: u64,
        after: bool,
    },
    ConcurrentConfirm {
        name: usize,
    },
    Advance {
        secs: u16,
    },
    Sweep,
    SweepDuringConfirm {
        name: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let name = 0..NAMES.len();
    prop_oneof![
        3 => (name.clone(), 0_u8..4).prop_map(|(name, content)| Op::Upload { name, content }),
        3 => (name.clone(), any::<bool>()).prop_map(|(name, overwrite)| Op::Confirm { name, overwrite }),
        3 => (name.clone(), any::<bool>(), 1_u64..=4, any::<bool>())
            .prop_map(|(name, overwrite, at, after)| Op::CrashConfirm { name, overwrite, at, after }),
        1 => name.clone().prop_map(|name| Op::ConcurrentConfirm { name }),
        // Exactly the lifetime and one second more hit the expiry edge.
        2 => prop_oneof![0_u16..150, Just(LIFETIME as u16), Just(1)].prop_map(|secs| Op::Advance { secs }),
        1 => Just(Op::Sweep),
        1 => name.prop_map(|name| Op::SweepDuringConfirm { name }),
    ]
}

/// The model's own expiry rule (not core's): strictly older than the lifetime.
fn expired(uploaded_at: i64, now: i64) -> bool {
    now - uploaded_at > LIFETIME as i64
}

fn body(content: u8) -> Vec<u8> {
    format!("content #{content} of an upload").into_bytes()
}

/// One upload: its content, the time it was stored and a count of uploads (the draft's
/// identity: the same bytes uploaded again, even in the same second, are another draft).
type Upload = (u8, i64, u64);

/// What each name holds: the draft, and the upload main holds a copy of.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Slot {
    draft: Option<Upload>,
    main: Option<Upload>,
}

#[derive(Debug, PartialEq, Eq)]
enum Expect {
    Ok,
    NotFound,
    Conflict,
}

impl Slot {
    /// What a fault-free confirm does.
    fn confirm(&self, overwrite: bool) -> (Expect, Self) {
        match (self.draft, self.main) {
            (None, Some(_)) => (Expect::Ok, self.clone()),
            (None, None) => (Expect::NotFound, self.clone()),
            (Some(d), Some(m)) if m != d && !overwrite => (Expect::Conflict, self.clone()),
            (Some(d), _) => (
                Expect::Ok,
                Self {
                    draft: None,
                    main: Some(d),
                },
            ),
        }
    }
}

struct World {
    storage: MemoryStorage,
    buckets: Buckets,
    model: BTreeMap<usize, Slot>,
    now: i64,
    uploads: u64,
}

fn content_of(bytes: Option<Vec<u8>>) -> Option<u8> {
    bytes.map(|b| {
        (0..4)
            .find(|c| body(*c) == b)
            .expect("storage holds bytes nobody uploaded")
    })
}

impl World {
    async fn actual(&self, name: usize) -> (Option<u8>, Option<u8>) {
        let key = NAMES[name];
        let draft = content_of(self.storage.get_object(&self.buckets.draft, key).await.ok());
        let main = content_of(self.storage.get_object(&self.buckets.main, key).await.ok());
        (draft, main)
    }

    async fn check(&self, context: &str) {
        for (name, key) in NAMES.iter().enumerate() {
            let slot = self.model.get(&name).cloned().unwrap_or_default();
            let (draft, main) = self.actual(name).await;
            assert_eq!(
                draft,
                slot.draft.map(|(c, _, _)| c),
                "{context}: draft of {}",
                NAMES[name]
            );
            assert_eq!(
                main,
                slot.main.map(|(c, _, _)| c),
                "{context}: main of {key}"
            );
        }
    }

    async fn confirm(&self, name: usize, overwrite: bool) -> Result<Confirmed, ConfirmError> {
        let options = ConfirmOptions {
            overwrite,
            expect: None,
        };
        confirm(
            &self.storage,
            &self.buckets,
            &ObjectName::parse(NAMES[name]).unwrap(),
            options,
        )
        .await
    }

    /// The version of the draft of `name` now, if there is one.
    async fn draft_version(&self, name: usize) -> Option<String> {
        let info = self
            .storage
            .head_object(&self.buckets.draft, NAMES[name])
            .await;
        info.ok().map(|i| draft_version(&i))
    }

    /// The upload main holds a copy of after a step that started from `before` with a draft
    /// of version `version`: that draft's if main is stamped with it, else what main held.
    async fn main_upload(
        &self,
        name: usize,
        before: &Slot,
        version: Option<&str>,
    ) -> Option<Upload> {
        let info = self
            .storage
            .head_object(&self.buckets.main, NAMES[name])
            .await
            .ok()?;
        let stamped = info.metadata.get(SOURCE_VERSION_KEY).map(String::as_str);
        if stamped.is_some() && stamped == version {
            before.draft
        } else {
            before.main
        }
    }

    fn slot(&self, name: usize) -> Slot {
        self.model.get(&name).cloned().unwrap_or_default()
    }

    async fn sweep(&self) -> SweepReport {
        let options = SweepOptions {
            page_size: 2,
            batch_size: 2,
            ..SweepOptions::new(self.now, LIFETIME)
        };
        sweep(
            &self.storage,
            &self.buckets.draft,
            options,
            &|| true,
            &mut |_| {},
        )
        .await
    }

    fn swept_model(&mut self) -> u64 {
        let mut count = 0;
        for slot in self.model.values_mut() {
            if slot.draft.is_some_and(|(_, at, _)| expired(at, self.now)) {
                slot.draft = None;
                count += 1;
            }
        }
        count
    }

    async fn apply(&mut self, op: &Op) {
        let context = format!("{op:?}");
        match *op {
            Op::Upload { name, content } => {
                self.storage
                    .put_object(
                        &self.buckets.draft,
                        NAMES[name],
                        body(content),
                        &PutOptions::default(),
                    )
                    .await
                    .unwrap();
                self.uploads += 1;
                self.model.entry(name).or_default().draft = Some((content, self.now, self.uploads));
            }
            Op::Confirm { name, overwrite } => {
                let (expect, after) = self.slot(name).confirm(overwrite);
                let got = self.confirm(name, overwrite).await;
                assert_eq!(classify(&got), expect, "{context}: {got:?}");
                self.model.insert(name, after);
            }
            Op::ConcurrentConfirm { name } => {
                let (expect, after) = self.slot(name).confirm(false);
                let (a, b) = tokio::join!(self.confirm(name, false), self.confirm(name, false));
                assert_eq!(classify(&a), expect, "{context}: first {a:?}");
                assert_eq!(classify(&b), expect, "{context}: second {b:?}");
                self.model.insert(name, after);
            }
            Op::CrashConfirm {
                name,
                overwrite,
                at,
                after,
            } => {
                let before = self.slot(name);
                let (expect, success) = before.confirm(overwrite);
                let version = self.draft_version(name).await;
                let error = StorageError::Unavailable {
                    reason: "injected crash".into(),
                };
                self.storage.fail_call(
                    at,
                    if after {
                        Fault::FailAfter(error)
                    } else {
                        Fault::FailBefore(error)
                    },
                );
                let _ = self.confirm(name, overwrite).await;
                self.storage.clear_faults();
                let (draft, _) = self.actual(name).await;
                let main = self.main_upload(name, &before, version.as_deref()).await;
                let unchanged = (draft, main) == (before.draft.map(|(c, _, _)| c), before.main);
                let promoting = expect == Expect::Ok
                    && draft == before.draft.map(|(c, _, _)| c)
                    && main == success.main;
                let done = (draft, main) == (None, success.main);
                assert!(
                    unchanged || promoting || (expect == Expect::Ok && done),
                    "{context}: {before:?} became draft {draft:?} main {main:?}"
                );
                // The model follows what the crash left; the next confirm must finish the job.
                let uploaded_at = before.draft.map(|(_, t, n)| (t, n));
                self.model.insert(
                    name,
                    Slot {
                        draft: draft.zip(uploaded_at).map(|(c, (t, n))| (c, t, n)),
                        main,
                    },
                );
            }
            Op::Advance { secs } => {
                self.storage.advance(i64::from(secs));
                self.now += i64::from(secs);
            }
            Op::Sweep => {
                let report = self.sweep().await;
                let count = self.swept_model();
                assert!(report.is_clean(), "{context}: {report:?}");
                assert_eq!(report.deleted, count, "{context}: {report:?}");
            }
            Op::SweepDuringConfirm { name } => {
                let before = self.slot(name);
                let old = before.draft.is_some_and(|(_, at, _)| expired(at, self.now));
                let (_, success) = before.confirm(false);
                let version = self.draft_version(name).await;
                let (report, _) = tokio::join!(self.sweep(), self.confirm(name, false));
                assert!(report.is_clean(), "{context}: {report:?}");
                let (draft, _) = self.actual(name).await;
                let main = self.main_upload(name, &before, version.as_deref()).await;
                self.swept_model();
                let swept = Slot {
                    draft: None,
                    main: before.main,
                };
                let ended = Slot {
                    draft: draft
                        .zip(before.draft.map(|(_, t, n)| (t, n)))
                        .map(|(c, (t, n))| (c, t, n)),
                    main,
                };
                // Young: exactly what a confirm does alone. Old: confirmed or expired, never lost.
                let allowed = if old {
                    ended == success || ended == swept
                } else {
                    ended == success
                };
                assert!(
                    allowed,
                    "{context}: {before:?} (old: {old}) became {ended:?}"
                );
                self.model.insert(name, ended);
            }
        }
        self.check(&context).await;
    }
}

fn classify(result: &Result<Confirmed, ConfirmError>) -> Expect {
    match result {
        Ok(_) => Expect::Ok,
        Err(ConfirmError::NotFound { .. }) => Expect::NotFound,
        Err(ConfirmError::Conflict { .. }) => Expect::Conflict,
        Err(e) => panic!("unexpected confirm error without faults: {e}"),
    }
}

fn config() -> ProptestConfig {
    let in_ci = std::env::var("CI").as_deref() == Ok("true");
    ProptestConfig {
        cases: if in_ci { 1000 } else { 256 },
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_sequences_keep_every_invariant(
        ops in proptest::collection::vec(op(), 1..40),
        conditional in any::<bool>(),
    ) {
        crate::block_on(async {
            let caps = Capabilities { conditional_copy: conditional, conditional_delete: conditional, conditional_put: conditional, version_conditions: conditional, version_ids: false };
            let storage = MemoryStorage::with_capabilities(caps);
            storage.set_time(1_000_000);
            let buckets = Buckets::new("main", None).unwrap();
            storage.create_bucket(&buckets.main).await.unwrap();
            storage.create_bucket(&buckets.draft).await.unwrap();
            let mut world = World { storage, buckets, model: BTreeMap::new(), now: 1_000_000, uploads: 0 };
            for op in &ops {
                world.apply(op).await;
            }
            // Once faults stop, confirm converges for every name with a draft.
            for name in 0..NAMES.len() {
                if world.slot(name).draft.is_some() {
                    world.apply(&Op::Confirm { name, overwrite: true }).await;
                    assert!(world.slot(name).draft.is_none());
                }
            }
        });
    }
}

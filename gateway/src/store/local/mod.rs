//! The embedded local store: [`Storage`] on a local folder, serving the presigned URLs it hands
//! out itself (on the gateway's port, under `/_store/`), checked with our SigV4 `verify`. For a
//! newcomer's machine and tests, not production: one process owns the folder, one disk holds it.
//!
//! Files: `files` (layout, scratch files, commits, start-up scrub), `commits` (the lock and the
//! gate tying a change to its caller), `presign` (the URLs it hands out), `http` (serving them:
//! PUT/GET/HEAD and their rules: stall timeout, size limit, checksums, conditional and range
//! requests; `http/parts` serves UploadPart), `uploads` (multipart uploads as files, kept
//! across restarts), `endpoint` (what the server mounts).

mod commits;
mod endpoint;
mod files;
mod http;
mod presign;
mod uploads;

pub use endpoint::Endpoint;

use crate::config::LocalConfig;
use draftstore_core::{
    draft_version, BucketName, Capabilities, Completed, CompletedPart, Copied, CopyCondition,
    CopyRequest, DeleteOutcome, DeleteTarget, ListPage, ListedObject, MetadataDirective,
    MultipartOptions, ObjectInfo, Part, PutOptions, Storage, StorageError, UploadChecksum,
    UploadPage,
};
use draftstore_signer::{Credentials, Signer, Verifier};
use files::{commit, io_error, read_meta, remove, require_bucket, write_atomic, Meta, Scratch};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The access key of the URLs the local store signs.
pub const ACCESS_KEY: &str = "draftstore-local";
/// The path prefix the local store serves; no other module knows it (the server asks
/// [`Endpoint::owns`]).
const PREFIX: &str = "/_store/";

/// The embedded store: [`Storage`] on the folder `root`, and the server of the presigned URLs
/// it signs (see [`LocalStorage::serve`]).
pub struct LocalStorage {
    root: PathBuf,
    public_url: draftstore_signer::Endpoint,
    signer: Signer,
    verifier: Verifier,
    /// Checks POST form uploads (same region, service and clock skew as `verifier`).
    post_verifier: draftstore_signer::PostVerifier,
    secret: String,
    max_object: u64,
    /// An upload that sends no byte for this long is cut.
    stall_timeout: Duration,
    /// Serialises changes, so conditional operations are atomic (see [`commits`]).
    lock: Arc<commits::Commits>,
    /// `<root>/.lock`, held by the one `gateway serve` of this folder (`None` for a sweep).
    _serving: Option<Arc<std::fs::File>>,
    /// Told of every upload stored through a presigned URL or a completed multipart upload
    /// (webhooks' `draft.uploaded`).
    uploaded: std::sync::OnceLock<UploadHook>,
}

/// An upload stored through one of the store's presigned URLs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploaded {
    /// The bucket.
    pub bucket: String,
    /// The key.
    pub key: String,
    /// Bytes.
    pub size: u64,
    /// Without quotes.
    pub etag: String,
}

/// What [`LocalStorage::on_upload`] calls, once per stored upload, after it is committed.
pub type UploadHook = Box<dyn Fn(Uploaded) + Send + Sync>;

/// Seconds since 1970 for `stored_at`; a clock before 1970 (not seen on a real host) records 0.
fn now() -> i64 {
    crate::clock::unix_now().unwrap_or(0)
}

impl LocalStorage {
    /// Calls `hook` after each upload its presigned URLs store and each completed multipart
    /// upload (set once; later calls are ignored).
    pub fn on_upload(&self, hook: UploadHook) {
        let _ = self.uploaded.set(hook);
    }

    /// Opens (creating) the data folder; the signing secret is the configured one, else the one
    /// kept in `<root>/.secret` (mode 0600), made at first start.
    ///
    /// # Errors
    /// The folder or the secret cannot be created or read.
    pub fn open(config: &LocalConfig) -> Result<Self, String> {
        let root = &config.data_dir;
        files::create_dirs(&root.join("buckets"))
            .map_err(|e| format!("cannot create {}: {e}", root.display()))?;
        #[cfg(unix)]
        {
            // A folder made by an older version (0755) is closed too.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| format!("cannot protect {}: {e}", root.display()))?;
        }
        let serving = serve_lock(root)?;
        let store = Self {
            _serving: Some(Arc::new(serving)),
            ..Self::at(config)?
        };
        // What a crash could leave: temporary files, data without metadata. A sweep may run
        // beside us: under the lock.
        let removed = {
            let _guard = store.lock.lock().map_err(|e| e.to_string())?;
            files::scrub(root)
                .and_then(|n| Ok(n + uploads::scrub(root)?))
                .map_err(|e| format!("cannot clean {}: {e}", root.display()))?
        };
        if removed > 0 {
            tracing::info!(
                removed,
                "removed files a stopped server left in the data folder"
            );
        }
        Ok(store)
    }

    /// Opens the store `gateway serve` keeps in `config.data_dir`, for `gateway sweep`: fails
    /// when there is none (a sweep run in the wrong folder must not make an empty store and
    /// report nothing to do) and leaves temporary files alone (the running server may be
    /// writing them).
    ///
    /// # Errors
    /// No store there; the secret cannot be read.
    pub fn open_existing(config: &LocalConfig) -> Result<Self, String> {
        let buckets = config.data_dir.join("buckets");
        if !buckets.is_dir() {
            return Err(format!(
                "no local store in {}: run where `gateway serve` keeps its data, or set DRAFTSTORE_DATA_DIR",
                config.data_dir.display()
            ));
        }
        Self::at(config)
    }

    fn at(config: &LocalConfig) -> Result<Self, String> {
        let root = config.data_dir.clone();
        let secret = match &config.secret {
            Some(s) => s.clone(),
            None => load_or_make_secret(&root)?,
        };
        let credentials =
            Credentials::new(ACCESS_KEY, secret.clone(), None).map_err(|e| e.to_string())?;
        let public_url = draftstore_signer::Endpoint::parse(&config.public_url)
            .map_err(|e| format!("DRAFTSTORE_PUBLIC_URL: {e}"))?;
        Ok(Self {
            root,
            public_url,
            signer: Signer::new(credentials, "us-east-1", "s3").map_err(|e| e.to_string())?,
            verifier: Verifier::new("us-east-1", "s3", 60).map_err(|e| e.to_string())?,
            post_verifier: draftstore_signer::PostVerifier::new("us-east-1", "s3", 60)
                .map_err(|e| e.to_string())?,
            secret,
            max_object: config.max_object,
            stall_timeout: config.stall_timeout,
            lock: Arc::new(commits::Commits::open(&config.data_dir)?),
            _serving: None,
            uploaded: std::sync::OnceLock::new(),
        })
    }

    /// The data folder.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn signer(&self) -> &Signer {
        &self.signer
    }

    pub(crate) fn public_url(&self) -> &draftstore_signer::Endpoint {
        &self.public_url
    }

    /// Runs blocking file work on the blocking pool. The [`commits::Gate`] closes when the
    /// returned future is dropped: a change must [`commits::Gate::enter`] it before committing.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Path, &commits::Commits, commits::Gate) -> Result<T, StorageError>
            + Send
            + 'static,
    ) -> Result<T, StorageError> {
        let (root, lock) = (self.root.clone(), self.lock.clone());
        let (_waiter, gate) = commits::waiting();
        tokio::task::spawn_blocking(move || f(&root, &lock, gate))
            .await
            .map_err(|e| StorageError::Backend {
                reason: format!("file task failed: {e}"),
            })?
    }
}

/// Takes `<root>/.lock` for this process, held until it exits: conditional writes are atomic
/// only within one process, and a second server would also clear the first one's uploads in
/// progress when it starts.
fn serve_lock(root: &Path) -> Result<std::fs::File, String> {
    let path = root.join(".lock");
    let file = commits::lock_file(&path)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(format!(
            "another gateway serves {} (it holds {}): one server per data folder",
            root.display(),
            path.display()
        )),
        Err(std::fs::TryLockError::Error(e)) => Err(format!("cannot lock {}: {e}", path.display())),
    }
}

fn load_or_make_secret(root: &Path) -> Result<String, String> {
    let path = root.join(".secret");
    if let Ok(s) = std::fs::read_to_string(&path) {
        let s = s.trim().to_owned();
        if !s.is_empty() {
            return Ok(s);
        }
    }
    // The key to every presigned URL of this store: from the operating system's CSPRNG.
    let mut bytes = [0_u8; 32];
    getrandom::getrandom(&mut bytes).map_err(|e| format!("no random bytes for a secret: {e}"))?;
    let secret = hex::encode(bytes);
    write_atomic(&path, secret.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| format!("cannot protect {}: {e}", path.display()))?;
    }
    Ok(secret)
}

/// Whether `condition` lets a copy replace what `bucket/key` holds now.
fn copy_allowed(
    root: &Path,
    bucket: &str,
    key: &str,
    condition: &CopyCondition,
) -> Result<(), StorageError> {
    let existing = match read_meta(root, bucket, key) {
        Ok((_, m)) => Some(m.etag),
        Err(StorageError::NotFound { .. }) => None,
        Err(e) => return Err(e),
    };
    condition.check(existing.as_deref(), bucket, key)
}

/// Copies `source` into a new scratch file and fsyncs it.
fn copy_to_scratch(root: &Path, source: &Path) -> std::io::Result<Scratch> {
    let mut from = std::fs::File::open(source)?;
    let (tmp, mut to) = Scratch::create(root)?;
    std::io::copy(&mut from, &mut to)?;
    to.sync_all()?;
    Ok(tmp)
}

fn info(meta: &Meta) -> ObjectInfo {
    ObjectInfo {
        size: meta.size,
        etag: meta.etag.clone(),
        last_modified: meta.stored_at,
        content_type: meta.content_type.clone(),
        metadata: meta.metadata.clone(),
        checksum_sha256: meta.checksum_sha256.clone(),
        // Each commit places the bytes under a new random file name: an upload's own id.
        version_id: (!meta.data.is_empty()).then(|| meta.data.clone()),
    }
}

impl Storage for LocalStorage {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            conditional_copy: true,
            conditional_delete: true,
            conditional_put: true,
            version_conditions: true,
            version_ids: false,
        }
    }

    async fn create_bucket(&self, bucket: &BucketName) -> Result<(), StorageError> {
        let bucket = bucket.to_string();
        self.blocking(move |root, _, _| {
            files::create_dirs(&files::bucket_dir(root, &bucket))
                .map_err(|e| io_error("create bucket", &e))
        })
        .await
    }

    async fn head_bucket(&self, bucket: &BucketName) -> Result<(), StorageError> {
        let bucket = bucket.to_string();
        self.blocking(move |root, _, _| require_bucket(root, &bucket))
            .await
    }

    async fn head_object(
        &self,
        bucket: &BucketName,
        key: &str,
    ) -> Result<ObjectInfo, StorageError> {
        let (bucket, key) = (bucket.to_string(), key.to_owned());
        self.blocking(move |root, _, _| read_meta(root, &bucket, &key).map(|(_, m)| info(&m)))
            .await
    }

    async fn put_object(
        &self,
        bucket: &BucketName,
        key: &str,
        body: Vec<u8>,
        options: &PutOptions,
    ) -> Result<String, StorageError> {
        let (bucket, key, options) = (bucket.to_string(), key.to_owned(), options.clone());
        self.blocking(move |root, lock, gate| {
            use std::io::Write;
            let etag = hex::encode(<md5::Md5 as md5::Digest>::digest(&body));
            let (tmp, mut file) = Scratch::create(root).map_err(|e| io_error("write", &e))?;
            file.write_all(&body)
                .and_then(|()| file.sync_all())
                .map_err(|e| io_error("write", &e))?;
            let meta = Meta {
                key,
                data: String::new(),
                size: body.len() as u64,
                etag: etag.clone(),
                content_type: options.content_type,
                metadata: options.metadata,
                checksum_sha256: None,
                stored_at: now(),
            };
            let _guard = lock.lock()?;
            gate.enter()?;
            commit(root, &bucket, meta, tmp)?;
            Ok(etag)
        })
        .await
    }

    /// The condition is checked and the object committed under the store's lock.
    async fn put_object_if(
        &self,
        bucket: &BucketName,
        key: &str,
        body: Vec<u8>,
        options: &PutOptions,
        condition: &CopyCondition,
    ) -> Result<String, StorageError> {
        let (bucket, key, options, condition) = (
            bucket.to_string(),
            key.to_owned(),
            options.clone(),
            condition.clone(),
        );
        self.blocking(move |root, lock, gate| {
            use std::io::Write;
            require_bucket(root, &bucket)?;
            let etag = hex::encode(<md5::Md5 as md5::Digest>::digest(&body));
            let (tmp, mut file) = Scratch::create(root).map_err(|e| io_error("write", &e))?;
            file.write_all(&body)
                .and_then(|()| file.sync_all())
                .map_err(|e| io_error("write", &e))?;
            let meta = Meta {
                key: key.clone(),
                data: String::new(),
                size: body.len() as u64,
                etag: etag.clone(),
                content_type: options.content_type,
                metadata: options.metadata,
                checksum_sha256: None,
                stored_at: now(),
            };
            let _guard = lock.lock()?;
            copy_allowed(root, &bucket, &key, &condition)?;
            gate.enter()?;
            commit(root, &bucket, meta, tmp)?;
            Ok(etag)
        })
        .await
    }

    async fn get_object(&self, bucket: &BucketName, key: &str) -> Result<Vec<u8>, StorageError> {
        let (bucket, key) = (bucket.to_string(), key.to_owned());
        self.blocking(move |root, _, _| {
            let (dir, meta) = read_meta(root, &bucket, &key)?;
            std::fs::read(dir.join(&meta.data)).map_err(|e| io_error("read", &e))
        })
        .await
    }

    async fn copy_object(&self, r: &CopyRequest<'_>) -> Result<Copied, StorageError> {
        let (from_bucket, from_key, to_bucket, to_key) = (
            r.from_bucket.to_string(),
            r.from_key.to_owned(),
            r.to_bucket.to_string(),
            r.to_key.to_owned(),
        );
        let source_version = r.source_version.map(str::to_owned);
        let (source_etag, metadata, condition) = (
            r.source_etag.map(str::to_owned),
            r.metadata.clone(),
            r.condition.clone(),
        );
        // The copy and its fsync happen outside the lock (a big confirm must not stall other
        // uploads); under it, the source and the condition are checked again, then committed.
        self.blocking(move |root, lock, gate| {
            let (dir, source) = read_meta(root, &from_bucket, &from_key)?;
            let changed = || StorageError::PreconditionFailed {
                what: format!("{from_bucket}/{from_key} changed"),
            };
            // The same bytes uploaded again (another type, metadata or time) keep the ETag:
            // the version tells the uploads apart.
            let same_upload = |m: &Meta| {
                source_etag.as_ref().is_none_or(|e| *e == m.etag)
                    && source_version
                        .as_ref()
                        .is_none_or(|v| *v == draft_version(&info(m)))
            };
            if !same_upload(&source) {
                return Err(changed());
            }
            require_bucket(root, &to_bucket)?;
            // Before the copy too, so a conflict costs no copy.
            copy_allowed(root, &to_bucket, &to_key, &condition)?;
            let tmp = copy_to_scratch(root, &dir.join(&source.data)).map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    changed()
                } else {
                    io_error("copy", &e)
                }
            })?;
            let (content_type, metadata) = match metadata {
                MetadataDirective::Copy => (source.content_type.clone(), source.metadata.clone()),
                MetadataDirective::Replace {
                    content_type,
                    metadata,
                } => (content_type, metadata),
            };
            let meta = Meta {
                key: to_key.clone(),
                content_type,
                metadata,
                stored_at: now(),
                ..source.clone()
            };
            let _guard = lock.lock()?;
            let now_there = read_meta(root, &from_bucket, &from_key)?.1;
            if now_there.etag != source.etag || !same_upload(&now_there) {
                return Err(changed());
            }
            copy_allowed(root, &to_bucket, &to_key, &condition)?;
            gate.enter()?;
            commit(root, &to_bucket, meta, tmp)?;
            Ok(Copied { etag: source.etag })
        })
        .await
    }

    async fn delete_object(&self, bucket: &BucketName, key: &str) -> Result<(), StorageError> {
        let (bucket, key) = (bucket.to_string(), key.to_owned());
        self.blocking(move |root, lock, gate| {
            let _guard = lock.lock()?;
            gate.enter()?;
            remove(root, &bucket, &key)
        })
        .await
    }

    async fn delete_objects(
        &self,
        bucket: &BucketName,
        targets: &[DeleteTarget],
    ) -> Result<Vec<DeleteOutcome>, StorageError> {
        draftstore_core::check_delete_batch(targets)?;
        let (bucket, targets) = (bucket.to_string(), targets.to_vec());
        self.blocking(move |root, lock, gate| {
            require_bucket(root, &bucket)?;
            let _guard = lock.lock()?;
            gate.enter()?;
            Ok(targets
                .into_iter()
                .map(|t| {
                    let current = read_meta(root, &bucket, &t.key).ok().map(|(_, m)| info(&m));
                    let result = t
                        .may_delete(&bucket, current.as_ref())
                        .and_then(|()| remove(root, &bucket, &t.key));
                    DeleteOutcome { key: t.key, result }
                })
                .collect())
        })
        .await
    }

    /// Reads every metadata file of the bucket (a development store: fine for thousands of
    /// objects, not for millions), then pages through them in key order.
    async fn list_objects(
        &self,
        bucket: &BucketName,
        prefix: &str,
        continuation: Option<&str>,
        max_keys: u16,
    ) -> Result<ListPage, StorageError> {
        let (bucket, prefix, after) = (
            bucket.to_string(),
            prefix.to_owned(),
            continuation.map(str::to_owned),
        );
        // DraftStore's own keys (the event queue) are listed only when asked for by prefix.
        let own = draftstore_core::events::is_reserved(&prefix);
        self.blocking(move |root, _, _| {
            require_bucket(root, &bucket)?;
            let mut all: Vec<ListedObject> = Vec::new();
            for shard in std::fs::read_dir(files::bucket_dir(root, &bucket))
                .map_err(|e| io_error("list", &e))?
                .flatten()
            {
                let Ok(entries) = std::fs::read_dir(shard.path()) else {
                    continue;
                };
                for entry in entries.flatten() {
                    let path = entry.path();
                    if path.extension().is_none_or(|e| e != "json") {
                        continue;
                    }
                    let Ok(text) = std::fs::read(&path) else {
                        continue;
                    };
                    let Ok(meta) = serde_json::from_slice::<Meta>(&text) else {
                        continue;
                    };
                    let hidden = !own && draftstore_core::events::is_reserved(&meta.key);
                    if !hidden
                        && meta.key.starts_with(&prefix)
                        && after.as_ref().is_none_or(|a| meta.key > *a)
                    {
                        all.push(ListedObject {
                            key: meta.key,
                            size: meta.size,
                            etag: meta.etag,
                            last_modified: meta.stored_at,
                        });
                    }
                }
            }
            all.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(ListPage::of(all, max_keys))
        })
        .await
    }

    async fn list_uploads(
        &self,
        bucket: &BucketName,
        prefix: &str,
        continuation: Option<&(String, String)>,
    ) -> Result<UploadPage, StorageError> {
        let (bucket, prefix, after) =
            (bucket.to_string(), prefix.to_owned(), continuation.cloned());
        self.blocking(move |root, _, _| uploads::list(root, &bucket, &prefix, after.as_ref()))
            .await
    }

    async fn create_multipart_upload(
        &self,
        bucket: &BucketName,
        key: &str,
        options: &MultipartOptions,
    ) -> Result<String, StorageError> {
        let (bucket, key, options) = (bucket.to_string(), key.to_owned(), options.clone());
        self.blocking(move |root, _, _| uploads::create(root, &bucket, &key, &options, now()))
            .await
    }

    async fn upload_part(
        &self,
        bucket: &BucketName,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: Vec<u8>,
        checksum_sha256: Option<&str>,
    ) -> Result<Part, StorageError> {
        let (bucket, key, id) = (bucket.to_string(), key.to_owned(), upload_id.to_owned());
        let declared = checksum_sha256.map(|s| s.trim().to_owned());
        self.blocking(move |root, lock, gate| {
            let target = (bucket.as_str(), key.as_str(), id.as_str());
            uploads::put_part(root, (lock, &gate), target, part_number, &body, declared)
        })
        .await
    }

    async fn list_parts(
        &self,
        bucket: &BucketName,
        key: &str,
        upload_id: &str,
    ) -> Result<Vec<Part>, StorageError> {
        let (bucket, key, id) = (bucket.to_string(), key.to_owned(), upload_id.to_owned());
        self.blocking(move |root, _, _| {
            let (dir, _) = uploads::read_upload(root, &bucket, &key, &id)?;
            Ok(uploads::read_parts(&dir)?
                .iter()
                .map(uploads::PartMeta::part)
                .collect())
        })
        .await
    }

    async fn upload_checksum(
        &self,
        bucket: &BucketName,
        key: &str,
        upload_id: &str,
    ) -> Result<UploadChecksum, StorageError> {
        let (bucket, key, id) = (bucket.to_string(), key.to_owned(), upload_id.to_owned());
        // The upload's own record says it (and its parts list their checksums): no part is
        // read, so a call for part URLs costs the same however many parts are stored.
        self.blocking(move |root, _, _| {
            let (_, upload) = uploads::read_upload(root, &bucket, &key, &id)?;
            Ok(UploadChecksum::Known(upload.sha256))
        })
        .await
    }

    async fn complete_multipart_upload(
        &self,
        bucket: &BucketName,
        key: &str,
        upload_id: &str,
        parts: &[CompletedPart],
    ) -> Result<Completed, StorageError> {
        let (bucket, key, id) = (bucket.to_string(), key.to_owned(), upload_id.to_owned());
        let (parts, max_object) = (parts.to_vec(), self.max_object);
        let (told_bucket, told_key) = (bucket.clone(), key.clone());
        let completed = self
            .blocking(move |root, lock, gate| {
                uploads::complete(
                    root,
                    lock,
                    &gate,
                    (&bucket, &key, &id),
                    &parts,
                    (max_object, now()),
                )
            })
            .await?;
        // A multipart upload is an upload too (REST, gRPC, Companion, `gateway upload` and the
        // store's own CompleteMultipartUpload all complete here).
        if let Some(hook) = self.uploaded.get() {
            hook(Uploaded {
                bucket: told_bucket,
                key: told_key,
                size: completed.size,
                etag: completed.etag.clone(),
            });
        }
        Ok(completed)
    }

    async fn abort_upload(
        &self,
        bucket: &BucketName,
        key: &str,
        upload_id: &str,
    ) -> Result<(), StorageError> {
        let (name, owned_key, id) = (bucket.to_string(), key.to_owned(), upload_id.to_owned());
        self.blocking(move |root, lock, gate| {
            uploads::abort(root, lock, &gate, (&name, &owned_key, &id))
        })
        .await?;
        // The checksums the gateway kept for it, whoever aborts (sweep included).
        draftstore_core::kept_parts::forget(self, bucket, key, upload_id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use draftstore_core::{CopyCondition, CopyRequest, MetadataDirective, PutOptions};

    fn store(dir: &Path) -> LocalStorage {
        LocalStorage::open(&LocalConfig {
            data_dir: dir.to_owned(),
            public_url: "http://127.0.0.1:1".into(),
            secret: Some("test-secret".into()),
            max_object: 1 << 30,
            stall_timeout: Duration::from_secs(20),
        })
        .unwrap()
    }

    async fn with_draft(dir: &Path, bytes: usize) -> (LocalStorage, BucketName, BucketName) {
        let store = store(dir);
        let (draft, main) = (
            BucketName::parse("main-draft").unwrap(),
            BucketName::parse("main").unwrap(),
        );
        store.create_bucket(&draft).await.unwrap();
        store.create_bucket(&main).await.unwrap();
        store
            .put_object(&draft, "k", vec![5; bytes], &PutOptions::default())
            .await
            .unwrap();
        (store, draft, main)
    }

    fn copy<'a>(draft: &'a BucketName, main: &'a BucketName) -> CopyRequest<'a> {
        CopyRequest {
            from_bucket: draft,
            from_key: "k",
            to_bucket: main,
            to_key: "k",
            source_size: 0,
            source_etag: None,
            source_version: None,
            source_version_id: None,
            metadata: MetadataDirective::Copy,
            condition: CopyCondition::IfAbsent,
        }
    }

    /// Waits, bounded so that a regression fails rather than hangs.
    fn eventually(what: &str, mut done: impl FnMut() -> bool) {
        let started = std::time::Instant::now();
        while !done() {
            assert!(started.elapsed() < Duration::from_secs(30), "never: {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn tmp_sizes(root: &Path) -> Vec<u64> {
        std::fs::read_dir(files::tmp_dir(root))
            .unwrap()
            .flatten()
            .map(|e| e.metadata().unwrap().len())
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_confirm_copies_and_syncs_outside_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let (store, draft, main) = with_draft(dir.path(), 1 << 20).await;
        let store = Arc::new(store);
        let held = store.lock.clone();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let (locked, is_locked) = std::sync::mpsc::channel();
        // Another change holds the lock until the copy is complete in tmp/.
        let holder = std::thread::spawn(move || {
            let _guard = held.lock().unwrap();
            locked.send(()).unwrap();
            released.recv().unwrap();
        });
        is_locked.recv().unwrap();
        let copying = {
            let store = store.clone();
            let (draft, main) = (draft.clone(), main.clone());
            tokio::spawn(async move { store.copy_object(&copy(&draft, &main)).await })
        };
        let root = dir.path().to_owned();
        eventually("the whole copy is made while the lock is held", || {
            tmp_sizes(&root) == [1 << 20]
        });
        assert!(
            store.head_object(&main, "k").await.is_err(),
            "not committed yet"
        );
        release.send(()).unwrap();
        holder.join().unwrap();
        copying.await.unwrap().unwrap();
        assert_eq!(
            store.get_object(&main, "k").await.unwrap(),
            vec![5; 1 << 20]
        );
        assert!(tmp_sizes(dir.path()).is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_confirm_whose_caller_stopped_waiting_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (store, draft, main) = with_draft(dir.path(), 1000).await;
        let held = store.lock.clone();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let (locked, is_locked) = std::sync::mpsc::channel();
        let holder = std::thread::spawn(move || {
            let _guard = held.lock().unwrap();
            locked.send(()).unwrap();
            released.recv().unwrap();
        });
        is_locked.recv().unwrap();
        // The caller's deadline passes while the commit waits for the lock.
        let answer = tokio::time::timeout(
            Duration::from_millis(200),
            store.copy_object(&copy(&draft, &main)),
        )
        .await;
        assert!(answer.is_err(), "timed out");
        release.send(()).unwrap();
        holder.join().unwrap();
        // Under the lock again: the copy's thread has made its decision by then.
        let again = store.lock.clone();
        tokio::task::spawn_blocking(move || drop(again.lock().unwrap()))
            .await
            .unwrap();
        assert!(
            store.head_object(&main, "k").await.is_err(),
            "an answer of timeout means nothing changed"
        );
        let root = dir.path().to_owned();
        eventually("the copy is removed", || tmp_sizes(&root).is_empty());
        // And a later confirm works.
        store.copy_object(&copy(&draft, &main)).await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_part_replaced_during_a_completion_makes_it_fail_and_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(store(dir.path()));
        let draft = BucketName::parse("main-draft").unwrap();
        store.create_bucket(&draft).await.unwrap();
        let id = store
            .create_multipart_upload(&draft, "k", &MultipartOptions::default())
            .await
            .unwrap();
        let first = store
            .upload_part(&draft, "k", &id, 1, vec![1; 1 << 20], None)
            .await
            .unwrap();
        let held = store.lock.clone();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let (locked, is_locked) = std::sync::mpsc::channel();
        let root = dir.path().to_owned();
        let id2 = id.clone();
        // Holds the lock while the completion copies part 1, then re-uploads part 1 under it.
        let holder = std::thread::spawn(move || {
            let guard = held.lock().unwrap();
            locked.send(()).unwrap();
            released.recv().unwrap();
            let (tmp, mut file) = Scratch::create(&root).unwrap();
            std::io::Write::write_all(&mut file, b"new").unwrap();
            let part = uploads::PartMeta {
                part_number: 1,
                data: String::new(),
                size: 3,
                etag: "n".into(),
                checksum_sha256: None,
            };
            let upload = ("main-draft", "k", id2.as_str());
            let (_waiter, gate) = commits::waiting();
            let staged = uploads::stage_part(&root, upload, part, tmp).unwrap();
            let placed = staged.place(&root, &gate, upload).unwrap();
            drop(guard);
            placed.finish().unwrap();
        });
        is_locked.recv().unwrap();
        let completing = {
            let (store, draft, id) = (store.clone(), draft.clone(), id.clone());
            let parts = vec![CompletedPart::from(&first)];
            tokio::spawn(async move {
                store
                    .complete_multipart_upload(&draft, "k", &id, &parts)
                    .await
            })
        };
        let root = dir.path().to_owned();
        eventually("the parts are copied while the lock is held", || {
            tmp_sizes(&root) == [1 << 20]
        });
        release.send(()).unwrap();
        holder.join().unwrap();
        let r = completing.await.unwrap();
        assert!(
            matches!(r, Err(StorageError::InvalidPart { part_number: 1, .. })),
            "{r:?}"
        );
        assert!(store.head_object(&draft, "k").await.is_err(), "no object");
        assert!(tmp_sizes(dir.path()).is_empty(), "the copy is gone");
        let parts = store.list_parts(&draft, "k", &id).await.unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].size, 3, "the new part stays");
    }
}

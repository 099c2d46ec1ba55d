//! The embedded local store: [`Storage`] on a local folder, serving the presigned URLs it hands
//! out itself (on the gateway's port, under `/_store/`), checked with our SigV4 `verify`. For a
//! newcomer's machine and tests, not production: one process owns the folder, one disk holds it.
//!
//! Files: `commits` (the lock that makes changes atomic), `files` (layout, atomic writes),
//! `presign` (the URLs it hands out), `http` (serving them: PUT/GET/HEAD), `endpoint` (what the
//! server mounts).

mod commits;
mod endpoint;
mod files;
mod http;
mod presign;

pub use endpoint::Endpoint;

use crate::config::LocalConfig;
use draftstore_core::{
    BucketName, Capabilities, Copied, CopyCondition, CopyRequest, DeleteOutcome, DeleteTarget,
    ListPage, ListedObject, MetadataDirective, ObjectInfo, PutOptions, Storage, StorageError,
    UploadPage,
};
use draftstore_signer::{Credentials, Signer, Verifier};
use files::{object_place, write_atomic, Meta};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The access key of the URLs the local store signs.
pub const ACCESS_KEY: &str = "draftstore-local";
/// The path prefix the local store serves; no other module knows it (the server asks
/// [`Endpoint::owns`]).
const PREFIX: &str = "/_store/";

/// The embedded store on a local folder (see the module doc).
pub struct LocalStorage {
    root: PathBuf,
    public_url: draftstore_signer::Endpoint,
    signer: Signer,
    verifier: Verifier,
    secret: String,
    max_object: u64,
    /// Serialises changes, so conditional operations are atomic (see [`commits`]).
    lock: Arc<commits::Commits>,
    /// `<root>/.lock`, held by the one `gateway serve` of this folder (`None` for a sweep).
    _serving: Option<Arc<std::fs::File>>,
}

fn io_error(what: &str, e: &std::io::Error) -> StorageError {
    StorageError::Backend {
        reason: format!("{what}: {e}"),
    }
}

/// Seconds since 1970 for `stored_at`; a clock before 1970 (not seen on a real host) records 0.
fn now() -> i64 {
    crate::clock::unix_now().unwrap_or(0)
}

impl LocalStorage {
    /// Opens (creating) the data folder; the signing secret is the configured one, else the one
    /// kept in `<root>/.secret` (mode 0600), made at first start.
    ///
    /// # Errors
    /// The folder or the secret cannot be created or read.
    pub fn open(config: &LocalConfig) -> Result<Self, String> {
        let root = &config.data_dir;
        std::fs::create_dir_all(root.join("buckets"))
            .map_err(|e| format!("cannot create {}: {e}", root.display()))?;
        let serving = serve_lock(root)?;
        let tmp = files::tmp_dir(root);
        // Uploads cut short by a crash left only temporary files: clear them.
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp)
            .map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
        Ok(Self {
            _serving: Some(Arc::new(serving)),
            ..Self::at(config)?
        })
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
            secret,
            max_object: config.max_object,
            lock: Arc::new(commits::Commits::open(&config.data_dir)?),
            _serving: None,
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

    /// Runs blocking file work on the blocking pool.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Path, &commits::Commits) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, StorageError> {
        let (root, lock) = (self.root.clone(), self.lock.clone());
        tokio::task::spawn_blocking(move || f(&root, &lock))
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

fn require_bucket(root: &Path, bucket: &str) -> Result<(), StorageError> {
    if files::bucket_dir(root, bucket).is_dir() {
        Ok(())
    } else {
        Err(StorageError::NotFound {
            what: bucket.to_owned(),
        })
    }
}

fn read_meta(root: &Path, bucket: &str, key: &str) -> Result<(PathBuf, Meta), StorageError> {
    require_bucket(root, bucket)?;
    let (dir, stem) = object_place(root, bucket, key);
    let text = match std::fs::read(dir.join(format!("{stem}.json"))) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(StorageError::NotFound {
                what: format!("{bucket}/{key}"),
            })
        }
        Err(e) => return Err(io_error("read metadata", &e)),
    };
    let meta: Meta = serde_json::from_slice(&text).map_err(|e| StorageError::Backend {
        reason: format!("corrupt metadata of {bucket}/{key}: {e}"),
    })?;
    Ok((dir, meta))
}

fn info(meta: &Meta) -> ObjectInfo {
    ObjectInfo {
        size: meta.size,
        etag: meta.etag.clone(),
        last_modified: meta.stored_at,
        content_type: meta.content_type.clone(),
        metadata: meta.metadata.clone(),
        checksum_sha256: meta.checksum_sha256.clone(),
    }
}

/// Makes `data_file` (already complete and fsynced, anywhere on the same file system) the bytes
/// of `bucket/key` with `meta`, atomically; removes the bytes it replaces. Caller holds the lock.
pub(crate) fn commit(
    root: &Path,
    bucket: &str,
    mut meta: Meta,
    data_file: &Path,
) -> Result<(), StorageError> {
    require_bucket(root, bucket)?;
    let (dir, stem) = object_place(root, bucket, &meta.key);
    std::fs::create_dir_all(&dir).map_err(|e| io_error("create folder", &e))?;
    let data_name = format!("{stem}.{:016x}.data", fastrand::u64(..));
    std::fs::rename(data_file, dir.join(&data_name)).map_err(|e| io_error("place data", &e))?;
    let old = read_meta(root, bucket, &meta.key).ok().map(|(_, m)| m.data);
    meta.data = data_name;
    let text = serde_json::to_vec(&meta).map_err(|e| StorageError::Backend {
        reason: e.to_string(),
    })?;
    write_atomic(&dir.join(format!("{stem}.json")), &text)
        .map_err(|e| io_error("write metadata", &e))?;
    if let Some(old) = old.filter(|o| *o != meta.data) {
        let _ = std::fs::remove_file(dir.join(old));
    }
    Ok(())
}

fn remove(root: &Path, bucket: &str, key: &str) -> Result<(), StorageError> {
    match read_meta(root, bucket, key) {
        Ok((dir, meta)) => {
            let stem = files::object_place(root, bucket, key).1;
            std::fs::remove_file(dir.join(format!("{stem}.json")))
                .map_err(|e| io_error("delete", &e))?;
            let _ = std::fs::remove_file(dir.join(&meta.data));
            Ok(())
        }
        Err(StorageError::NotFound { .. }) => require_bucket(root, bucket),
        Err(e) => Err(e),
    }
}

impl Storage for LocalStorage {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            conditional_copy: true,
            conditional_delete: true,
        }
    }

    async fn create_bucket(&self, bucket: &BucketName) -> Result<(), StorageError> {
        let bucket = bucket.to_string();
        self.blocking(move |root, _| {
            std::fs::create_dir_all(files::bucket_dir(root, &bucket))
                .map_err(|e| io_error("create bucket", &e))
        })
        .await
    }

    async fn head_bucket(&self, bucket: &BucketName) -> Result<(), StorageError> {
        let bucket = bucket.to_string();
        self.blocking(move |root, _| require_bucket(root, &bucket))
            .await
    }

    async fn head_object(
        &self,
        bucket: &BucketName,
        key: &str,
    ) -> Result<ObjectInfo, StorageError> {
        let (bucket, key) = (bucket.to_string(), key.to_owned());
        self.blocking(move |root, _| read_meta(root, &bucket, &key).map(|(_, m)| info(&m)))
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
        self.blocking(move |root, lock| {
            let etag = hex::encode(<md5::Md5 as md5::Digest>::digest(&body));
            let tmp = files::tmp_dir(root).join(files::tmp_name());
            write_atomic(&tmp, &body).map_err(|e| io_error("write", &e))?;
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
            commit(root, &bucket, meta, &tmp).inspect_err(|_| {
                let _ = std::fs::remove_file(&tmp);
            })?;
            Ok(etag)
        })
        .await
    }

    async fn get_object(&self, bucket: &BucketName, key: &str) -> Result<Vec<u8>, StorageError> {
        let (bucket, key) = (bucket.to_string(), key.to_owned());
        self.blocking(move |root, _| {
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
        let (source_etag, metadata, condition) = (
            r.source_etag.map(str::to_owned),
            r.metadata.clone(),
            r.condition.clone(),
        );
        self.blocking(move |root, lock| {
            let _guard = lock.lock()?;
            let (dir, source) = read_meta(root, &from_bucket, &from_key)?;
            if source_etag.as_ref().is_some_and(|e| *e != source.etag) {
                return Err(StorageError::PreconditionFailed {
                    what: format!("{from_bucket}/{from_key} changed"),
                });
            }
            require_bucket(root, &to_bucket)?;
            let existing = read_meta(root, &to_bucket, &to_key)
                .ok()
                .map(|(_, m)| m.etag);
            let allowed = match &condition {
                CopyCondition::Always => true,
                CopyCondition::IfAbsent => existing.is_none(),
                CopyCondition::IfMatch(etag) => existing.as_ref() == Some(etag),
            };
            if !allowed {
                return Err(StorageError::PreconditionFailed {
                    what: format!("{to_bucket}/{to_key}"),
                });
            }
            let tmp = files::tmp_dir(root).join(files::tmp_name());
            std::fs::copy(dir.join(&source.data), &tmp).map_err(|e| io_error("copy", &e))?;
            std::fs::File::open(&tmp)
                .and_then(|f| f.sync_all())
                .map_err(|e| io_error("sync copy", &e))?;
            let (content_type, metadata) = match metadata {
                MetadataDirective::Copy => (source.content_type.clone(), source.metadata.clone()),
                MetadataDirective::Replace {
                    content_type,
                    metadata,
                } => (content_type, metadata),
            };
            let meta = Meta {
                key: to_key,
                content_type,
                metadata,
                stored_at: now(),
                ..source.clone()
            };
            commit(root, &to_bucket, meta, &tmp).inspect_err(|_| {
                let _ = std::fs::remove_file(&tmp);
            })?;
            Ok(Copied { etag: source.etag })
        })
        .await
    }

    async fn delete_object(&self, bucket: &BucketName, key: &str) -> Result<(), StorageError> {
        let (bucket, key) = (bucket.to_string(), key.to_owned());
        self.blocking(move |root, lock| {
            let _guard = lock.lock()?;
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
        self.blocking(move |root, lock| {
            require_bucket(root, &bucket)?;
            let _guard = lock.lock()?;
            Ok(targets
                .into_iter()
                .map(|t| {
                    let current = read_meta(root, &bucket, &t.key).ok().map(|(_, m)| m.etag);
                    let result = t
                        .may_delete(&bucket, current.as_deref())
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
        self.blocking(move |root, _| {
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
                    if meta.key.starts_with(&prefix) && after.as_ref().is_none_or(|a| meta.key > *a)
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

    /// The local store has no multipart uploads.
    async fn list_uploads(
        &self,
        bucket: &BucketName,
        _continuation: Option<&(String, String)>,
    ) -> Result<UploadPage, StorageError> {
        self.head_bucket(bucket).await?;
        Ok(UploadPage::default())
    }

    async fn abort_upload(
        &self,
        _bucket: &BucketName,
        _key: &str,
        _upload_id: &str,
    ) -> Result<(), StorageError> {
        Ok(())
    }
}

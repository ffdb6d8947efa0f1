//! [`S3DocumentStorage`]: cold documents as a snapshot object plus one object per update,
//! kept consistent with conditional puts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{self, StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutPayload};
use teleportal_storage::{
    AppendOptions, AppendReceipt, DocumentId, DocumentMetadata, DocumentStorage, Seq, StorageError,
    StoredDocument, StoredUpdate,
};

use crate::S3Config;
use crate::error::S3Error;
use crate::keys;
use crate::manifest::{Manifest, ManifestRead};

/// How many tail updates `load` fetches at once.
const FETCH_CONCURRENCY: usize = 8;
/// How often an operation retries after losing a race before it gives up. Every lost race
/// means another writer made progress, so this bounds starvation, not correctness.
const MAX_ATTEMPTS: u32 = 1000;
/// How many documents' tail hints a store keeps before it forgets them all.
const MAX_HINTS: usize = 4096;

/// Documents in an S3-compatible bucket: meant for **cold** documents, read in whole now and
/// then and written rarely, not for a document being edited live.
///
/// # Layout
/// Under `documents/<document>/` (the full layout is in `docs/storage.md`):
/// - `updates/<seq>`: one object per appended update, the key its zero-padded [`Seq`].
/// - `snapshots/<seq>-<nonce>`: the merged snapshot of everything up to `seq`.
/// - `manifest`: small JSON naming the snapshot and the **floor**, the highest `Seq` folded
///   into it (or deleted). The tail is every update object above the floor.
///
/// # How concurrent writers stay correct without transactions
/// - **Append** lists the updates above the floor and creates the next key with
///   `If-None-Match: *` (`PutMode::Create`). Creating the object *is* the commit: of two
///   writers racing for one `Seq` exactly one succeeds, and the other lists again and takes
///   the next. No update is lost and no `Seq` is handed out twice. The size limit is checked
///   against the tail the key was chosen from, so it is atomic with respect to other
///   appends. The store remembers each document's tail while the manifest stays the same, so
///   the `LIST` is only needed when another writer appended meanwhile (or on first contact).
/// - **Compact** and **delete** write a new snapshot object under a fresh key, then replace
///   the manifest with `If-Match: <etag>` (`PutMode::Update`), then delete what the new floor
///   covers. The manifest only moves forward: a `compact` whose `upto` is not above the
///   floor changes nothing, and `delete` raises the floor to the last `Seq`, so a compaction
///   loaded before a delete cannot bring content back, and later appends get higher numbers.
/// - **Load** reads the manifest, the snapshot and the tail, then the manifest again; if it
///   changed (a compaction or delete ran meanwhile and may have removed objects already read
///   past), it starts over.
/// - An append that created key `s` checks the manifest once more: if the floor has passed
///   `s` meanwhile, a compaction either folded its update in or had deleted an older object
///   at `s` before this append recreated the key (a writer that listed long ago). The two
///   cannot be told apart, so the append deletes its object and appends again with a new
///   `Seq`. At worst the update is then stored twice, which changes nothing: applying a Yjs
///   update twice is a no-op.
///
/// The server must make `If-None-Match: *` and `If-Match` atomic, as AWS S3, MinIO, Cloudflare
/// R2 and Ceph RGW do. A server that checks the condition and then writes (s3s-fs, as of
/// 0.14) lets two racing creates both succeed, and so loses updates under concurrent appends.
///
/// # Costs
/// Each call is several requests; S3 bills per request and answers each in tens of
/// milliseconds:
///
/// | operation  | requests                                                         |
/// |------------|------------------------------------------------------------------|
/// | `append`   | `GET` manifest, `PUT` update, `GET` manifest (+ `LIST` tail when another writer appended) |
/// | `load`     | `GET` manifest, `GET` snapshot, `LIST` tail, `GET` per update, `GET` manifest |
/// | `metadata` | `GET` manifest, `LIST` tail, `GET` manifest                       |
/// | `compact`  | `GET` manifest, `HEAD` update, `PUT` snapshot, `PUT` manifest, deletes |
/// | `delete`   | `GET` manifest, `LIST` tail, `PUT` manifest, deletes              |
///
/// One `PUT` per append is why this store belongs behind
/// [`VirtualStorage`](teleportal_storage::VirtualStorage), which batches appends, or as the
/// cold tier under a hot store, and why [`DocumentStore`](teleportal_storage::DocumentStore)'s
/// compaction should keep tails short.
///
/// "Durable" is S3's: an append resolves once the service has acknowledged the object.
///
/// ```no_run
/// use bytes::Bytes;
/// use teleportal_s3::{S3Config, S3DocumentStorage};
/// use teleportal_storage::{DocumentId, DocumentStore};
///
/// #[tokio::main]
/// async fn main() -> Result<(), teleportal_storage::StorageError> {
///     let config = S3Config::from_url("s3://documents?endpoint=http://127.0.0.1:9000")?
///         .credentials("minioadmin", "minioadmin");
///     let store = DocumentStore::new(S3DocumentStorage::new(&config)?);
///     let doc = DocumentId::from("room/notes");
///     store.append(&doc, Bytes::from_static(&[0, 0])).await?;
///     println!("{} bytes", store.read(&doc).await?.update.len());
///     Ok(())
/// }
/// ```
#[derive(Debug, Clone)]
pub struct S3DocumentStorage {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    hints: Arc<Mutex<HashMap<DocumentId, TailHint>>>,
}

/// What this process last knew of a document's tail, so an append can skip the `LIST`.
///
/// Valid only while the manifest is byte-equal to `manifest`: compaction and delete change it,
/// and nothing else removes tail objects. Appends by other writers only add keys above
/// `last_seq`, and then creating `last_seq + 1` fails and the append lists after all. So a
/// create that succeeds proves the hint was complete, and the size it checked was exact.
#[derive(Debug, Clone)]
struct TailHint {
    manifest: Option<Bytes>,
    last_seq: Seq,
    tail_updates: u64,
    tail_bytes: u64,
}

/// What one consistent look at a document found: its manifest and the tail above the floor.
struct Listing {
    manifest: ManifestRead,
    /// `(seq, stored bytes)` of every update above the floor, by `seq`.
    tail: Vec<(Seq, u64)>,
}

impl Listing {
    fn last_seq(&self) -> Seq {
        self.tail
            .last()
            .map_or(self.manifest.manifest.floor, |(seq, _)| *seq)
    }

    fn tail_bytes(&self) -> u64 {
        self.tail.iter().map(|(_, len)| len).sum()
    }

    fn size(&self) -> u64 {
        self.manifest.manifest.snapshot_len() + self.tail_bytes()
    }

    fn is_empty(&self) -> bool {
        self.manifest.manifest.snapshot.is_none() && self.tail.is_empty()
    }

    fn hint(&self) -> TailHint {
        TailHint {
            manifest: self.manifest.raw.clone(),
            last_seq: self.last_seq(),
            tail_updates: self.tail.len() as u64,
            tail_bytes: self.tail_bytes(),
        }
    }
}

impl S3DocumentStorage {
    /// Documents in the bucket `config` describes, under its prefix.
    ///
    /// # Errors
    /// [`StorageError::Backend`] when the client cannot be built from `config`.
    pub fn new(config: &S3Config) -> Result<Self, StorageError> {
        Ok(Self::with_store(
            config.object_store()?,
            config.key_prefix(),
        ))
    }

    /// Documents in any [`ObjectStore`] (for instance one client shared with an
    /// [`S3FileStorage`](crate::S3FileStorage)), under `prefix`. The store must support
    /// `PutMode::Create` and `PutMode::Update`, atomically.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use teleportal_s3::S3DocumentStorage;
    ///
    /// let documents =
    ///     S3DocumentStorage::with_store(Arc::new(object_store::memory::InMemory::new()), "docs");
    /// # let _ = documents;
    /// ```
    pub fn with_store(store: Arc<dyn ObjectStore>, prefix: &str) -> Self {
        S3DocumentStorage {
            store,
            prefix: crate::config::prefix_path(prefix),
            hints: Arc::default(),
        }
    }

    fn hints(&self) -> std::sync::MutexGuard<'_, HashMap<DocumentId, TailHint>> {
        // Hints are replaced whole under the lock; a poisoned one is still a consistent map.
        self.hints.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The hint for `doc` if it matches the manifest just read.
    fn hint(&self, doc: &DocumentId, manifest: &ManifestRead) -> Option<TailHint> {
        self.hints()
            .get(doc)
            .filter(|h| h.manifest == manifest.raw)
            .cloned()
    }

    fn remember(&self, doc: &DocumentId, hint: TailHint) {
        let mut hints = self.hints();
        if hints.len() >= MAX_HINTS && !hints.contains_key(doc) {
            hints.clear(); // A bound, not a cache policy: a forgotten hint costs one LIST.
        }
        hints.insert(doc.clone(), hint);
    }

    fn forget(&self, doc: &DocumentId) {
        self.hints().remove(doc);
    }

    fn dir(&self, doc: &DocumentId) -> Path {
        keys::document_dir(&self.prefix, doc)
    }

    async fn manifest(&self, dir: &Path) -> Result<ManifestRead, StorageError> {
        ManifestRead::get(&*self.store, &keys::manifest(dir)).await
    }

    /// Every update key above `floor`, with its size, by `seq`.
    async fn list_tail(&self, dir: &Path, floor: Seq) -> Result<Vec<(Seq, u64)>, StorageError> {
        let updates = keys::updates_dir(dir);
        let mut tail: Vec<(Seq, u64)> = self
            .store
            .list_with_offset(Some(&updates), &keys::update(dir, floor))
            .map_err(|e| StorageError::from(S3Error::request("LIST", &updates, e)))
            .try_filter_map(|meta| async move {
                Ok(keys::seq_of_update(&meta.location)
                    .filter(|seq| *seq > floor)
                    .map(|seq| (seq, meta.size)))
            })
            .try_collect()
            .await?;
        tail.sort_unstable();
        Ok(tail)
    }

    /// The manifest and the tail, read so that no compaction or delete ran in between.
    async fn listing(&self, doc: &DocumentId, dir: &Path) -> Result<Listing, StorageError> {
        for _ in 0..MAX_ATTEMPTS {
            let manifest = self.manifest(dir).await?;
            let tail = self.list_tail(dir, manifest.manifest.floor).await?;
            if self.manifest(dir).await?.raw == manifest.raw {
                let listing = Listing { manifest, tail };
                self.remember(doc, listing.hint());
                return Ok(listing);
            }
        }
        Err(contended("list", doc))
    }

    /// Reads the snapshot and every listed update; `None` when one of them is gone (a
    /// compaction or delete removed it after the listing).
    async fn fetch(
        &self,
        dir: &Path,
        listing: &Listing,
    ) -> Result<Option<StoredDocument>, StorageError> {
        let manifest = &listing.manifest.manifest;
        let snapshot = match &manifest.snapshot {
            None => None,
            Some(snapshot) => {
                let key = keys::snapshot(dir, manifest.floor, snapshot.nonce);
                match get(&*self.store, &key).await? {
                    Some(bytes) => Some(bytes),
                    None => return Ok(None),
                }
            }
        };
        // Owned items: a stream of borrows here would not be `Send` through `async_trait`.
        let seqs: Vec<Seq> = listing.tail.iter().map(|(seq, _)| *seq).collect();
        let updates: Vec<Option<StoredUpdate>> = stream::iter(seqs)
            .map(|seq| async move {
                let update = get(&*self.store, &keys::update(dir, seq)).await?;
                Ok::<_, StorageError>(update.map(|update| StoredUpdate { seq, update }))
            })
            .buffered(FETCH_CONCURRENCY)
            .try_collect()
            .await?;
        let Some(tail) = updates.into_iter().collect::<Option<Vec<_>>>() else {
            return Ok(None);
        };
        Ok(Some(StoredDocument {
            snapshot,
            snapshot_seq: manifest.floor,
            tail,
        }))
    }

    /// Replaces the manifest read as `current` by `next`. `Ok(true)` when it took effect,
    /// `Ok(false)` when another writer changed the manifest first.
    async fn swap_manifest(
        &self,
        dir: &Path,
        current: &ManifestRead,
        next: &Manifest,
    ) -> Result<bool, StorageError> {
        let key = keys::manifest(dir);
        let body = next.to_bytes()?;
        let mode = match &current.version {
            None => PutMode::Create,
            Some(version) => PutMode::Update(version.clone()),
        };
        match self
            .store
            .put_opts(&key, PutPayload::from(body.clone()), mode.into())
            .await
        {
            Ok(_) => Ok(true),
            Err(
                object_store::Error::Precondition { .. }
                | object_store::Error::AlreadyExists { .. },
            ) => {
                // Lost the race, or won it and the client retried the request after a lost
                // response: the manifest then holds exactly what this call wrote (every
                // manifest carries a new generation, so no other writer's is equal).
                Ok(self.manifest(dir).await?.raw.as_deref() == Some(&body[..]))
            }
            Err(e) => Err(S3Error::request("PUT", &key, e).into()),
        }
    }

    /// Deletes snapshots other than `keep` and updates up to `floor`, after the manifest moved
    /// past them. Failures only leave garbage that loads never read, so they are logged.
    async fn clean_up(&self, dir: &Path, floor: Seq, keep: Option<&Path>) {
        let snapshots = keys::snapshots_dir(dir);
        let updates = keys::updates_dir(dir);
        let keep = keep.cloned();
        let doomed = self
            .store
            .list(Some(&snapshots))
            .chain(self.store.list(Some(&updates)))
            .try_filter(move |meta| {
                let location = &meta.location;
                let doomed = if location.prefix_matches(&snapshots) {
                    keys::seq_of_snapshot(location).is_some_and(|seq| seq <= floor)
                        && Some(location) != keep.as_ref()
                } else {
                    keys::seq_of_update(location).is_some_and(|seq| seq <= floor)
                };
                std::future::ready(doomed)
            })
            .map_ok(|meta| meta.location)
            .boxed();
        let mut deleted = self.store.delete_stream(doomed);
        while let Some(result) = deleted.next().await {
            match result {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(error) => {
                    tracing::warn!(%dir, error = %teleportal_storage::ErrorChain::new(&error), "S3 clean-up after compaction failed; garbage stays");
                    return;
                }
            }
        }
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl DocumentStorage for S3DocumentStorage {
    /// Creates `updates/<next seq>` with `If-None-Match: *` (see the type's docs).
    ///
    /// # Cancel safety
    /// Dropping the future leaves the update either stored (its object created) or not.
    async fn append(
        &self,
        doc: &DocumentId,
        update: Bytes,
        options: AppendOptions,
    ) -> Result<AppendReceipt, StorageError> {
        let dir = self.dir(doc);
        let len = update.len() as u64;
        for _ in 0..MAX_ATTEMPTS {
            let before = self.manifest(&dir).await?;
            let known = match self.hint(doc, &before) {
                Some(hint) => hint,
                None => Listing {
                    tail: self.list_tail(&dir, before.manifest.floor).await?,
                    manifest: before.clone(),
                }
                .hint(),
            };
            let size = before.manifest.snapshot_len() + known.tail_bytes + len;
            if let Some(limit) = options.max_size
                && size > limit
            {
                return Err(StorageError::DocumentTooLarge {
                    doc: doc.clone(),
                    size,
                    limit,
                });
            }
            let seq = known.last_seq + 1;
            let key = keys::update(&dir, seq);
            match self
                .store
                .put_opts(
                    &key,
                    PutPayload::from(update.clone()),
                    PutMode::Create.into(),
                )
                .await
            {
                Ok(_) => {}
                // Another writer took `seq` first: list again and take the next one.
                Err(
                    object_store::Error::AlreadyExists { .. }
                    | object_store::Error::Precondition { .. },
                ) => {
                    self.forget(doc);
                    continue;
                }
                Err(e) => return Err(S3Error::request("PUT", &key, e).into()),
            }

            let after = self.manifest(&dir).await?;
            if after.raw == before.raw {
                let hint = TailHint {
                    manifest: before.raw,
                    last_seq: seq,
                    tail_updates: known.tail_updates + 1,
                    tail_bytes: known.tail_bytes + len,
                };
                let receipt = AppendReceipt::new(seq, size, hint.tail_updates, hint.tail_bytes);
                self.remember(doc, hint);
                return Ok(receipt);
            }
            if after.manifest.floor < seq {
                // A compaction or delete ran, but below this update: it stands.
                let now = self.listing(doc, &dir).await?;
                return Ok(AppendReceipt::new(
                    seq,
                    now.size(),
                    now.tail.len() as u64,
                    now.tail_bytes(),
                ));
            }
            // The floor passed `seq` while this append ran: folded in, or a stale key reused.
            // Loads never read at or below the floor, so the object can go; append again.
            if let Err(error) = self.store.delete(&key).await {
                tracing::debug!(%key, error = %teleportal_storage::ErrorChain::new(&error), "deleting an update below the floor failed");
            }
        }
        Err(contended("append", doc))
    }

    async fn load(&self, doc: &DocumentId) -> Result<StoredDocument, StorageError> {
        let dir = self.dir(doc);
        for _ in 0..MAX_ATTEMPTS {
            let listing = self.listing(doc, &dir).await?;
            let Some(stored) = self.fetch(&dir, &listing).await? else {
                continue;
            };
            if self.manifest(&dir).await?.raw == listing.manifest.raw {
                return Ok(stored);
            }
        }
        Err(contended("load", doc))
    }

    async fn metadata(&self, doc: &DocumentId) -> Result<Option<DocumentMetadata>, StorageError> {
        let listing = self.listing(doc, &self.dir(doc)).await?;
        if listing.is_empty() {
            return Ok(None);
        }
        Ok(Some(DocumentMetadata::new(
            listing.size(),
            listing.last_seq(),
            listing.manifest.manifest.floor,
            listing.tail.len() as u64,
            listing.tail_bytes(),
        )))
    }

    /// Writes the snapshot object, moves the manifest's floor to `upto` with `If-Match`, then
    /// deletes the updates and the snapshot it replaced.
    ///
    /// # Cancel safety
    /// Dropping the future leaves the document either compacted or unchanged (perhaps with an
    /// unreferenced snapshot object, which the next compaction deletes).
    async fn compact(
        &self,
        doc: &DocumentId,
        upto: Seq,
        snapshot: Bytes,
    ) -> Result<(), StorageError> {
        let dir = self.dir(doc);
        for _ in 0..MAX_ATTEMPTS {
            let current = self.manifest(&dir).await?;
            if upto <= current.manifest.floor {
                return Ok(()); // Another compaction or a delete got there first.
            }
            // Updates above the floor are contiguous, so `upto` existing means all up to it do.
            let last = keys::update(&dir, upto);
            match self.store.head(&last).await {
                Ok(_) => {}
                Err(object_store::Error::NotFound { .. }) => {
                    if self.manifest(&dir).await?.raw == current.raw {
                        return Ok(()); // `upto` is past the tail: nothing to fold.
                    }
                    continue;
                }
                Err(e) => return Err(S3Error::request("HEAD", &last, e).into()),
            }
            let next = current.manifest.compacted(upto, snapshot.len() as u64);
            let key = next
                .snapshot
                .as_ref()
                .map(|s| keys::snapshot(&dir, upto, s.nonce))
                .ok_or_else(|| StorageError::corrupt("a compacted manifest has no snapshot"))?;
            self.store
                .put(&key, PutPayload::from(snapshot.clone()))
                .await
                .map_err(|e| S3Error::request("PUT", &key, e))?;
            if self.swap_manifest(&dir, &current, &next).await? {
                self.clean_up(&dir, upto, Some(&key)).await;
                return Ok(());
            }
            if let Err(error) = self.store.delete(&key).await {
                tracing::debug!(%key, error = %teleportal_storage::ErrorChain::new(&error), "deleting a losing snapshot failed");
            }
        }
        Err(contended("compact", doc))
    }

    /// Moves the floor to the last `Seq` and drops the snapshot (one manifest write with
    /// `If-Match`), then deletes every object below the floor.
    ///
    /// # Cancel safety
    /// Dropping the future leaves the document either deleted or unchanged; objects below the
    /// floor may remain as garbage that loads never read.
    async fn delete(&self, doc: &DocumentId) -> Result<(), StorageError> {
        let dir = self.dir(doc);
        for _ in 0..MAX_ATTEMPTS {
            let listing = self.listing(doc, &dir).await?;
            if listing.is_empty() {
                return Ok(());
            }
            let last = listing.last_seq();
            let next = listing.manifest.manifest.deleted(last);
            if self.swap_manifest(&dir, &listing.manifest, &next).await? {
                self.clean_up(&dir, last, None).await;
                return Ok(());
            }
        }
        Err(contended("delete", doc))
    }
    async fn close(&self) -> Result<(), StorageError> {
        Ok(()) // Nothing queued: every acknowledged write is already in place.
    }
}

/// The object's bytes, or `None` when it does not exist.
async fn get(store: &dyn ObjectStore, location: &Path) -> Result<Option<Bytes>, StorageError> {
    match store.get(location).await {
        Ok(result) => Ok(Some(
            result
                .bytes()
                .await
                .map_err(|e| S3Error::request("GET", location, e))?,
        )),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(S3Error::request("GET", location, e).into()),
    }
}

fn contended(operation: &'static str, doc: &DocumentId) -> StorageError {
    S3Error::Contended {
        operation,
        doc: doc.to_string(),
        attempts: MAX_ATTEMPTS,
    }
    .into()
}

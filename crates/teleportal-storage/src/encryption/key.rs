//! Keys: [`KeyId`], [`EncryptionKey`], the [`KeyProvider`] trait and [`StaticKeys`].

use std::borrow::Borrow;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use aes_gcm::aead::OsRng;
use aes_gcm::aead::rand_core::RngCore;

use crate::StorageError;

/// The longest key id a record can carry (its length is one byte).
pub const MAX_KEY_ID_LEN: usize = 255;

/// A key's name, written in clear into every record it encrypts: 1 to 255 bytes of UTF-8.
///
/// ```
/// use teleportal_storage::encryption::KeyId;
///
/// assert_eq!(KeyId::new("2025-01")?.as_str(), "2025-01");
/// assert!(KeyId::new("").is_err());
/// # Ok::<(), teleportal_storage::StorageError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(Arc<str>);

impl KeyId {
    /// A key id.
    ///
    /// # Errors
    /// [`StorageError::InvalidRequest`] for an empty id or one longer than
    /// [`MAX_KEY_ID_LEN`] bytes.
    pub fn new(id: impl AsRef<str>) -> Result<Self, StorageError> {
        let id = id.as_ref();
        if id.is_empty() || id.len() > MAX_KEY_ID_LEN {
            return Err(StorageError::InvalidRequest {
                reason: format!(
                    "a key id must be 1 to {MAX_KEY_ID_LEN} bytes, not {}",
                    id.len()
                ),
            });
        }
        Ok(KeyId(Arc::from(id)))
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for KeyId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A 256-bit AES-GCM key and its id. `Debug` shows the id, never the key.
#[derive(Clone, PartialEq, Eq)]
pub struct EncryptionKey {
    id: KeyId,
    key: [u8; 32],
}

impl EncryptionKey {
    /// A key from its 32 bytes.
    pub fn new(id: KeyId, key: [u8; 32]) -> Self {
        EncryptionKey { id, key }
    }

    /// A fresh random key from the operating system's generator.
    ///
    /// # Errors
    /// [`StorageError::Backend`] if the generator fails.
    pub fn generate(id: KeyId) -> Result<Self, StorageError> {
        let mut key = [0; 32];
        OsRng
            .try_fill_bytes(&mut key)
            .map_err(|e| StorageError::backend("encryption", e.to_string()))?;
        Ok(EncryptionKey { id, key })
    }

    /// The key's id.
    pub fn id(&self) -> &KeyId {
        &self.id
    }

    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.key
    }
}

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptionKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Where [`EncryptedStorage`](super::EncryptedStorage) gets its keys: the current key for new
/// records, and any key by id for reading old ones.
///
/// The trait is synchronous. It is asked once per record — a load of a long tail asks hundreds
/// of times — so keys must already be in memory: an `async` method would box a future per
/// record and invite a network round trip per record. A provider backed by a KMS fetches or
/// unwraps its keys at startup and on rotation, and serves them from memory here.
///
/// # Contract
/// - `current_key` is the key new records are encrypted with; it changes on rotation.
/// - `key(id)` returns every key that may still have records, including the current one and
///   earlier current ones, until those records are re-encrypted or deleted. `Ok(None)` means
///   the key is unknown: such records read as [`StorageError::Corrupt`].
/// - Errors mean the provider itself failed (a backend error, not corrupt data); they are
///   returned as they are.
pub trait KeyProvider: Send + Sync + 'static {
    /// The key to encrypt new records with.
    ///
    /// # Errors
    /// The provider's failure.
    fn current_key(&self) -> Result<EncryptionKey, StorageError>;

    /// The key with this id, or `None` if the provider does not have it.
    ///
    /// # Errors
    /// The provider's failure.
    fn key(&self, id: &str) -> Result<Option<EncryptionKey>, StorageError>;
}

/// A fixed set of keys in memory, one of them current, with rotation.
///
/// Rotating makes a new key current: new records use it, records under earlier keys still
/// read as long as those keys stay in the set.
///
/// ```
/// use std::sync::Arc;
/// use teleportal_storage::encryption::{EncryptionKey, KeyId, KeyProvider, StaticKeys};
///
/// let keys = Arc::new(StaticKeys::new(EncryptionKey::new(KeyId::new("k1")?, [1; 32])));
/// keys.rotate(EncryptionKey::new(KeyId::new("k2")?, [2; 32]))?;
/// assert_eq!(keys.current_key()?.id().as_str(), "k2");
/// assert!(keys.key("k1")?.is_some(), "old records still decrypt");
/// # Ok::<(), teleportal_storage::StorageError>(())
/// ```
pub struct StaticKeys {
    set: RwLock<KeySet>,
}

struct KeySet {
    current: KeyId,
    keys: HashMap<KeyId, EncryptionKey>,
}

impl StaticKeys {
    /// A set holding one key, which is current.
    pub fn new(current: EncryptionKey) -> Self {
        let id = current.id.clone();
        StaticKeys {
            set: RwLock::new(KeySet {
                current: id.clone(),
                keys: HashMap::from([(id, current)]),
            }),
        }
    }

    /// A set with one fresh random key, for tests and throwaway stores.
    ///
    /// # Errors
    /// [`StorageError::Backend`] if the random generator fails.
    pub fn generate(id: KeyId) -> Result<Self, StorageError> {
        Ok(StaticKeys::new(EncryptionKey::generate(id)?))
    }

    fn read(&self) -> RwLockReadGuard<'_, KeySet> {
        // Writers below check before they change anything and change one field at a time, so
        // a poisoned lock still guards a consistent set.
        self.set.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, KeySet> {
        self.set.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a key for reading records written under it; the current key is unchanged.
    /// Adding a key that is already there is a no-op.
    ///
    /// # Errors
    /// [`StorageError::InvalidRequest`] if a different key has the same id: replacing it would
    /// make every record under it unreadable.
    pub fn insert(&self, key: EncryptionKey) -> Result<(), StorageError> {
        let mut set = self.write();
        match set.keys.get(&key.id) {
            Some(existing) if *existing != key => Err(StorageError::InvalidRequest {
                reason: format!("a different key with id {} exists", key.id),
            }),
            Some(_) => Ok(()),
            None => {
                set.keys.insert(key.id.clone(), key);
                Ok(())
            }
        }
    }

    /// Adds `key` (if new) and makes it current. Records under earlier keys still read.
    ///
    /// # Errors
    /// As [`insert`](Self::insert).
    pub fn rotate(&self, key: EncryptionKey) -> Result<(), StorageError> {
        let id = key.id.clone();
        self.insert(key)?;
        self.write().current = id;
        Ok(())
    }

    /// Removes a key; records under it then read as [`StorageError::Corrupt`]. Returns whether
    /// it was there.
    ///
    /// # Errors
    /// [`StorageError::InvalidRequest`] for the current key: rotate first.
    pub fn remove(&self, id: &str) -> Result<bool, StorageError> {
        let mut set = self.write();
        if set.current.as_str() == id {
            return Err(StorageError::InvalidRequest {
                reason: format!("key {id} is current; rotate to another key first"),
            });
        }
        Ok(set.keys.remove(id).is_some())
    }

    /// The ids of every key in the set, sorted.
    pub fn ids(&self) -> Vec<KeyId> {
        let mut ids: Vec<KeyId> = self.read().keys.keys().cloned().collect();
        ids.sort();
        ids
    }
}

impl KeyProvider for StaticKeys {
    fn current_key(&self) -> Result<EncryptionKey, StorageError> {
        let set = self.read();
        set.keys
            .get(&set.current)
            .cloned()
            // `new` inserts the current key, `rotate` inserts before switching, and `remove`
            // refuses the current one, so this lookup always succeeds.
            .ok_or_else(|| StorageError::InvalidRequest {
                reason: format!("current key {} is missing", set.current),
            })
    }

    fn key(&self, id: &str) -> Result<Option<EncryptionKey>, StorageError> {
        Ok(self.read().keys.get(id).cloned())
    }
}

impl fmt::Debug for StaticKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let current = self.read().current.clone();
        f.debug_struct("StaticKeys")
            .field("current", &current)
            .field("ids", &self.ids())
            .finish()
    }
}

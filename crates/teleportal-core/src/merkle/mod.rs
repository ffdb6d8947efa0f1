//! Merkle trees over file chunks (spec §12.1–12.3, §12.7).
//!
//! A file is cut into chunks ([`chunks`], [`total_chunks`]); each on-wire chunk (ciphertext for
//! encrypted files) becomes a leaf hash, and the tree over those leaves names the file: its
//! root in base64 is the file id ([`file_id`]). Downloads carry one proof per chunk, checked
//! with [`verify_proof`] against the trusted root before anything is decrypted.
//!
//! ```
//! use std::num::NonZeroUsize;
//! use teleportal_core::merkle::{chunks, file_id, verify_proof, MerkleTree, Sha256Hasher};
//!
//! let data = b"hello teleportal file";
//! let size = NonZeroUsize::new(4).unwrap();
//! // Only the 32-byte leaf hashes are kept, never the file.
//! let tree = MerkleTree::from_chunks(&Sha256Hasher, chunks(data, size)).unwrap();
//! assert_eq!(tree.leaf_count(), 6);
//! assert_eq!(file_id(&tree.root()).len(), 44);
//!
//! let proof = tree.proof(2).unwrap();
//! assert!(verify_proof(&Sha256Hasher, b"lepo", &proof, &tree.root(), 2, 6));
//! assert!(!verify_proof(&Sha256Hasher, b"lepO", &proof, &tree.root(), 2, 6));
//! ```
//!
//! [`Rechunk`], [`TreeBuilder`], [`WithProofs`] and [`VerifyChunks`] do the same over streams
//! of bytes in bounded memory, and `Blake3Hasher` (feature `blake3`) is a faster hasher for
//! deployments that need no Teleportal-compatible file ids.
//!
//! # Why this shape
//! The tree is built from leaf hashes, so a server can recompute it from stored chunks one at
//! a time; a hasher trait keeps the tree logic apart from SHA-256. Node indices are `u32`
//! because the storage format (§12.7) stores them so.

#[cfg(feature = "blake3")]
mod blake3_hasher;
mod stream;

use std::fmt;
use std::num::NonZeroUsize;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::{BufMut, Bytes, BytesMut};
use sha2::{Digest, Sha256};

use crate::DecodeError;
use crate::lib0::Reader;

#[cfg(feature = "blake3")]
pub use blake3_hasher::Blake3Hasher;
pub use stream::{
    ChunkError, ProvenChunk, Rechunk, TooManyChunks, TreeBuilder, VerifyChunks, WithProofs,
};

/// The default wire chunk size: 1 MiB (`CHUNK_SIZE` of the reference).
pub const DEFAULT_CHUNK_SIZE: usize = 1_048_576;

/// What AES-GCM adds to each encrypted chunk: a 12-byte IV and a 16-byte tag.
pub const AES_GCM_OVERHEAD: usize = 28;

/// The largest file either side accepts: 1 GiB.
pub const MAX_FILE_SIZE: u64 = 1_073_741_824;

/// A 32-byte node hash.
pub type Hash = [u8; 32];

/// Marks "no child" in the serialized tree (§12.7).
const NONE: u32 = u32::MAX;

/// Bytes per serialized node: hash, left, right.
const NODE_LEN: usize = 32 + 4 + 4;

/// The most leaves a tree can have: `2n − 1` nodes must leave `0xFFFFFFFF` free for "none".
pub const MAX_LEAVES: u32 = 1 << 31;

/// How leaves and internal nodes are hashed.
///
/// # Contract
/// Leaf and node hashes must be domain-separated, so that no leaf can pass for an internal
/// node. Both methods are pure: the same input always gives the same hash.
pub trait MerkleHasher {
    /// The hash of one on-wire chunk.
    fn leaf(&self, chunk: &[u8]) -> Hash;
    /// The hash of an internal node from its two children.
    fn node(&self, left: &Hash, right: &Hash) -> Hash;
}

/// SHA-256 with RFC 6962 domain separation (§12.2): `leaf = SHA-256(00 ‖ chunk)`,
/// `node = SHA-256(01 ‖ left ‖ right)`.
///
/// ```
/// use teleportal_core::merkle::{MerkleHasher, Sha256Hasher};
///
/// // The leaf of the empty chunk is SHA-256 of the single byte 00.
/// assert_eq!(Sha256Hasher.leaf(b"")[..4], [0x6e, 0x34, 0x0b, 0x9c]);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sha256Hasher;

impl MerkleHasher for Sha256Hasher {
    fn leaf(&self, chunk: &[u8]) -> Hash {
        let mut h = Sha256::new();
        h.update([0x00]);
        h.update(chunk);
        h.finalize().into()
    }

    fn node(&self, left: &Hash, right: &Hash) -> Hash {
        let mut h = Sha256::new();
        h.update([0x01]);
        h.update(left);
        h.update(right);
        h.finalize().into()
    }
}

/// The plaintext chunk size for a wire chunk size (§12.1): the same for plain files, 28 bytes
/// less for encrypted ones so that each ciphertext chunk fits the wire size.
///
/// `None` when no plaintext fits (a wire size of 0, or ≤ 28 when encrypted).
pub fn plaintext_chunk_size(wire_chunk_size: usize, encrypted: bool) -> Option<NonZeroUsize> {
    let plain = if encrypted {
        wire_chunk_size.checked_sub(AES_GCM_OVERHEAD)?
    } else {
        wire_chunk_size
    };
    NonZeroUsize::new(plain)
}

/// How many chunks a file of `size` bytes has (§12.1): 1 for an empty file (one empty chunk),
/// else `ceil(size / plaintext_chunk_size)`.
pub fn total_chunks(size: u64, plaintext_chunk_size: NonZeroUsize) -> u64 {
    // usize is at most 64 bits on every supported target; saturate rather than cast.
    let chunk = u64::try_from(plaintext_chunk_size.get()).unwrap_or(u64::MAX);
    size.div_ceil(chunk).max(1)
}

/// Cuts `data` into chunks of `chunk_size` bytes (the last may be shorter). An empty input
/// gives one empty chunk, as the reference does.
///
/// ```
/// use std::num::NonZeroUsize;
/// use teleportal_core::merkle::chunks;
///
/// let four = NonZeroUsize::new(4).unwrap();
/// assert_eq!(chunks(b"abcdefghij", four).collect::<Vec<_>>(), [&b"abcd"[..], b"efgh", b"ij"]);
/// assert_eq!(chunks(b"", four).collect::<Vec<_>>(), [&b""[..]]);
/// ```
pub fn chunks(data: &[u8], chunk_size: NonZeroUsize) -> Chunks<'_> {
    Chunks {
        rest: data,
        size: chunk_size,
        first: true,
    }
}

/// The iterator of [`chunks`].
#[derive(Debug, Clone)]
pub struct Chunks<'a> {
    rest: &'a [u8],
    size: NonZeroUsize,
    first: bool,
}

impl<'a> Iterator for Chunks<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.rest.is_empty() && !self.first {
            return None;
        }
        self.first = false;
        let (chunk, rest) = self
            .rest
            .split_at_checked(self.size.get())
            .unwrap_or((self.rest, &[]));
        self.rest = rest;
        Some(chunk)
    }
}

/// The file id (content id) of a root: standard base64 with padding, 44 characters.
pub fn file_id(root: &Hash) -> String {
    STANDARD.encode(root)
}

/// The root a file id names; `None` unless it is the base64 of exactly 32 bytes.
pub fn parse_file_id(id: &str) -> Option<Hash> {
    STANDARD.decode(id).ok()?.try_into().ok()
}

/// Checks that `chunk` is chunk `index` of the `leaf_count`-leaf tree with root `root` (§12.3).
///
/// The proof holds the sibling hashes bottom-up, with nothing for levels where the node is the
/// carried odd one; it must be consumed exactly. False for an index outside the tree.
pub fn verify_proof<H: MerkleHasher + ?Sized>(
    hasher: &H,
    chunk: &[u8],
    proof: &[Hash],
    root: &Hash,
    index: u64,
    leaf_count: u64,
) -> bool {
    index < leaf_count
        && verify_leaf_proof(hasher, &hasher.leaf(chunk), proof, root, index, leaf_count)
}

/// [`verify_proof`] for a chunk whose leaf hash the caller has already computed (say, while
/// the chunk was being written elsewhere), so the chunk is hashed once.
///
/// ```
/// use teleportal_core::merkle::{MerkleHasher, MerkleTree, Sha256Hasher, verify_leaf_proof};
///
/// let chunks = [b"a".as_slice(), b"b", b"c"];
/// let tree = MerkleTree::from_chunks(&Sha256Hasher, chunks).unwrap();
/// let leaf = Sha256Hasher.leaf(b"c");
/// let proof = tree.proof(2).unwrap();
/// assert!(verify_leaf_proof(&Sha256Hasher, &leaf, &proof, &tree.root(), 2, 3));
/// assert!(!verify_leaf_proof(&Sha256Hasher, &leaf, &proof, &tree.root(), 1, 3));
/// ```
pub fn verify_leaf_proof<H: MerkleHasher + ?Sized>(
    hasher: &H,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
    index: u64,
    leaf_count: u64,
) -> bool {
    if index >= leaf_count {
        return false;
    }
    let mut current = *leaf;
    let mut siblings = proof.iter();
    let (mut pos, mut size) = (index, leaf_count);
    while size > 1 {
        let carried = pos == size - 1 && size % 2 == 1;
        if !carried {
            let Some(sibling) = siblings.next() else {
                return false;
            };
            current = if pos % 2 == 0 {
                hasher.node(&current, sibling)
            } else {
                hasher.node(sibling, &current)
            };
        }
        pos /= 2;
        size = size.div_ceil(2);
    }
    siblings.next().is_none() && current == *root
}

/// One node of a [`MerkleTree`], as the storage format keeps it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct MerkleNode {
    /// The node's hash.
    pub hash: Hash,
    /// Index of the left child; `None` for a leaf.
    pub left: Option<u32>,
    /// Index of the right child; `None` for a leaf.
    pub right: Option<u32>,
}

impl fmt::Debug for MerkleNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut hex = String::with_capacity(64);
        for b in self.hash {
            hex.push_str(&format!("{b:02x}"));
        }
        f.debug_struct("MerkleNode")
            .field("hash", &hex)
            .field("left", &self.left)
            .field("right", &self.right)
            .finish()
    }
}

/// A Merkle tree over at least one leaf, with nodes in creation order (leaves, then internal
/// nodes level by level, root last).
///
/// Pairs are formed left to right; an odd trailing node is carried up unchanged (it keeps its
/// index and is never duplicated), so a tree of `n` leaves has `2n − 1` nodes.
///
/// ```
/// use bytes::Bytes;
/// use teleportal_core::merkle::{MerkleHasher, MerkleTree, Sha256Hasher};
///
/// let leaves = [b"chunk-0", b"chunk-1", b"chunk-2"].map(|c| Sha256Hasher.leaf(c)).to_vec();
/// let tree = MerkleTree::from_leaves(&Sha256Hasher, leaves).unwrap();
/// assert_eq!(tree.nodes().len(), 5);
/// // Leaf 2 is carried past the first level: its proof has one hash, not two.
/// assert_eq!(tree.proof(2).unwrap().len(), 1);
///
/// let stored = tree.to_bytes();
/// assert_eq!(MerkleTree::decode(Bytes::from(stored))?, tree);
/// # Ok::<(), teleportal_core::DecodeError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerkleTree {
    leaf_count: u32,
    nodes: Vec<MerkleNode>,
    /// `parents[i]`: the node whose child node `i` is; `NONE` for the root. Carried nodes
    /// get their parent only at the level where they are finally paired, which is what
    /// makes proofs skip carried levels.
    parents: Vec<u32>,
}

/// The `(left, right)` children of every internal node in creation order, for `leaf_count`
/// leaves. The shape depends on the leaf count alone.
fn pairings(leaf_count: u32) -> Vec<(u32, u32)> {
    let mut level: Vec<u32> = (0..leaf_count).collect();
    let mut next_index = leaf_count;
    let mut out = Vec::with_capacity(level.len().saturating_sub(1));
    while level.len() > 1 {
        let mut next = Vec::with_capacity(level.len().div_ceil(2));
        for pair in level.chunks(2) {
            match *pair {
                [left, right] => {
                    out.push((left, right));
                    next.push(next_index);
                    // At most 2^31 − 1 internal nodes after 2^31 leaves: no overflow.
                    next_index += 1;
                }
                [carried] => next.push(carried),
                _ => {}
            }
        }
        level = next;
    }
    out
}

fn index(i: u32) -> usize {
    // u32 fits in usize on every target this crate supports (16-bit is not one).
    usize::try_from(i).unwrap_or(usize::MAX)
}

impl MerkleTree {
    /// Builds the tree over leaf hashes. `None` for no leaves or more than [`MAX_LEAVES`].
    pub fn from_leaves<H: MerkleHasher + ?Sized>(hasher: &H, leaves: Vec<Hash>) -> Option<Self> {
        let leaf_count = u32::try_from(leaves.len()).ok()?;
        if leaf_count == 0 || leaf_count > MAX_LEAVES {
            return None;
        }
        let pairs = pairings(leaf_count);
        let mut nodes = Vec::with_capacity(leaves.len() + pairs.len());
        nodes.extend(leaves.into_iter().map(|hash| MerkleNode {
            hash,
            left: None,
            right: None,
        }));
        for (left, right) in pairs {
            let hash = hasher.node(
                &nodes.get(index(left))?.hash,
                &nodes.get(index(right))?.hash,
            );
            nodes.push(MerkleNode {
                hash,
                left: Some(left),
                right: Some(right),
            });
        }
        Some(Self::with_parents(leaf_count, nodes))
    }

    /// Hashes each chunk as it comes and builds the tree; only the leaf hashes are kept.
    /// `None` for no chunks or more than [`MAX_LEAVES`].
    pub fn from_chunks<H, I>(hasher: &H, chunks: I) -> Option<Self>
    where
        H: MerkleHasher + ?Sized,
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        let leaves = chunks
            .into_iter()
            .map(|c| hasher.leaf(c.as_ref()))
            .collect();
        Self::from_leaves(hasher, leaves)
    }

    fn with_parents(leaf_count: u32, nodes: Vec<MerkleNode>) -> Self {
        let mut parents = vec![NONE; nodes.len()];
        for (i, node) in (0u32..).zip(&nodes) {
            for child in [node.left, node.right].into_iter().flatten() {
                if let Some(slot) = parents.get_mut(index(child)) {
                    *slot = i;
                }
            }
        }
        Self {
            leaf_count,
            nodes,
            parents,
        }
    }

    /// The number of leaves (chunks), at least 1.
    pub fn leaf_count(&self) -> u32 {
        self.leaf_count
    }

    /// The root hash (the leaf itself for a one-leaf tree).
    pub fn root(&self) -> Hash {
        // A tree always has at least one node; the fallback is never taken.
        self.nodes.last().map(|n| n.hash).unwrap_or_default()
    }

    /// The file id of this tree: base64 of the root.
    pub fn file_id(&self) -> String {
        file_id(&self.root())
    }

    /// Every node in creation order: leaves first, root last.
    pub fn nodes(&self) -> &[MerkleNode] {
        &self.nodes
    }

    /// The leaf hashes in chunk order.
    pub fn leaf_hashes(&self) -> impl Iterator<Item = &Hash> {
        self.nodes
            .iter()
            .take(index(self.leaf_count))
            .map(|n| &n.hash)
    }

    /// The leaf hash of chunk `leaf`, or `None` outside the tree.
    pub fn leaf_hash(&self, leaf: u32) -> Option<&Hash> {
        if leaf >= self.leaf_count {
            return None;
        }
        self.nodes.get(index(leaf)).map(|n| &n.hash)
    }

    /// The proof for chunk `leaf` (§12.3): sibling hashes bottom-up, nothing for levels where
    /// the node is carried. `None` for an index outside the tree.
    pub fn proof(&self, leaf: u32) -> Option<Vec<Hash>> {
        if leaf >= self.leaf_count {
            return None;
        }
        let mut proof = Vec::new();
        let mut current = leaf;
        loop {
            let parent = *self.parents.get(index(current))?;
            if parent == NONE {
                return Some(proof);
            }
            let node = self.nodes.get(index(parent))?;
            let sibling = if node.left == Some(current) {
                node.right
            } else {
                node.left
            }?;
            proof.push(self.nodes.get(index(sibling))?.hash);
            current = parent;
        }
    }

    /// Whether every internal node's hash is the hash of its children: a decoded tree is only
    /// checked for shape, this checks its content.
    pub fn verify_hashes<H: MerkleHasher + ?Sized>(&self, hasher: &H) -> bool {
        self.nodes.iter().all(|n| match (n.left, n.right) {
            (Some(l), Some(r)) => match (self.nodes.get(index(l)), self.nodes.get(index(r))) {
                (Some(l), Some(r)) => hasher.node(&l.hash, &r.hash) == n.hash,
                _ => false,
            },
            _ => true,
        })
    }

    /// The length of [`encode`](Self::encode)'s output.
    pub fn encoded_len(&self) -> usize {
        4 + self.nodes.len() * NODE_LEN
    }

    /// Appends the storage form (§12.7): `u32 LE leafCount`, then per node
    /// `hash[32] ‖ u32 LE left ‖ u32 LE right` (`0xFFFFFFFF` = none).
    pub fn encode(&self, buf: &mut impl BufMut) {
        buf.put_u32_le(self.leaf_count);
        for node in &self.nodes {
            buf.put_slice(&node.hash);
            buf.put_u32_le(node.left.unwrap_or(NONE));
            buf.put_u32_le(node.right.unwrap_or(NONE));
        }
    }

    /// The storage form as one buffer.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut buf = BytesMut::with_capacity(self.encoded_len());
        self.encode(&mut buf);
        buf.to_vec()
    }

    /// Decodes the storage form of [`encode`](Self::encode).
    ///
    /// Total: the length must be exactly `4 + (2n − 1) × 40` for `n` leaves and every child
    /// link must be the one the leaf count implies, so a decoded tree always gives proofs.
    /// Hashes are taken as stored; [`verify_hashes`](Self::verify_hashes) checks them.
    ///
    /// # Errors
    /// A leaf count of 0 or above [`MAX_LEAVES`], a wrong length, or a wrong child link.
    pub fn decode(bytes: Bytes) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let leaf_count = r.read_u32_le("merkle tree leaf count")?;
        if leaf_count == 0 || leaf_count > MAX_LEAVES {
            return Err(DecodeError::OutOfRange {
                field: "merkle tree leaf count",
            });
        }
        // 2n − 1 ≤ 2^32 − 1 nodes; checked against the input before anything is allocated.
        let node_count = 2 * u64::from(leaf_count) - 1;
        let declared = node_count * 40;
        let available = r.remaining();
        if u64::try_from(available).map_or(true, |a| a < declared) {
            return Err(DecodeError::LengthExceedsInput {
                field: "merkle tree nodes",
                declared,
                available,
            });
        }
        if u64::try_from(available).map_or(true, |a| a > declared) {
            return Err(DecodeError::OutOfRange {
                field: "merkle tree length",
            });
        }
        let mut expected = (0..leaf_count)
            .map(|_| (NONE, NONE))
            .chain(pairings(leaf_count));
        let mut nodes = Vec::with_capacity(available / NODE_LEN);
        while !r.is_empty() {
            let hash = r.read_array::<32>("merkle node hash")?;
            let left = r.read_u32_le("merkle node left")?;
            let right = r.read_u32_le("merkle node right")?;
            if expected.next() != Some((left, right)) {
                return Err(DecodeError::OutOfRange {
                    field: "merkle node children",
                });
            }
            nodes.push(MerkleNode {
                hash,
                left: (left != NONE).then_some(left),
                right: (right != NONE).then_some(right),
            });
        }
        Ok(Self::with_parents(leaf_count, nodes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(n: usize) -> NonZeroUsize {
        NonZeroUsize::new(n).unwrap()
    }

    fn tree_of(n: u8) -> (Vec<Vec<u8>>, MerkleTree) {
        let chunks: Vec<Vec<u8>> = (0..n).map(|i| vec![i; 3]).collect();
        let tree = MerkleTree::from_chunks(&Sha256Hasher, &chunks).unwrap();
        (chunks, tree)
    }

    #[test]
    fn one_chunk_root_is_its_leaf() {
        let tree = MerkleTree::from_chunks(&Sha256Hasher, [b"x"]).unwrap();
        assert_eq!(tree.root(), Sha256Hasher.leaf(b"x"));
        assert_eq!(tree.proof(0), Some(vec![]));
    }

    #[test]
    fn odd_trailing_node_is_carried_not_duplicated() {
        let h = Sha256Hasher;
        let (chunks, tree) = tree_of(3);
        let l: Vec<Hash> = chunks.iter().map(|c| h.leaf(c)).collect();
        assert_eq!(tree.root(), h.node(&h.node(&l[0], &l[1]), &l[2]));
        assert_eq!(tree.nodes().len(), 5);
    }

    #[test]
    fn every_proof_verifies_for_many_sizes() {
        for n in 1..=33u8 {
            let (chunks, tree) = tree_of(n);
            for (i, chunk) in (0u32..).zip(&chunks) {
                let proof = tree.proof(i).unwrap();
                assert!(
                    verify_proof(
                        &Sha256Hasher,
                        chunk,
                        &proof,
                        &tree.root(),
                        i.into(),
                        n.into()
                    ),
                    "leaf {i} of {n}"
                );
            }
            assert_eq!(tree.proof(n.into()), None);
        }
    }

    #[test]
    fn proof_fails_for_wrong_chunk_index_proof_or_count() {
        let (chunks, tree) = tree_of(5);
        let root = tree.root();
        let proof = tree.proof(1).unwrap();
        let h = &Sha256Hasher;
        assert!(verify_proof(h, &chunks[1], &proof, &root, 1, 5));
        assert!(!verify_proof(h, &chunks[2], &proof, &root, 1, 5));
        assert!(!verify_proof(h, &chunks[1], &proof, &root, 0, 5));
        assert!(!verify_proof(h, &chunks[1], &proof, &root, 1, 4));
        assert!(!verify_proof(h, &chunks[1], &proof, &root, 5, 5));
        assert!(!verify_proof(h, &chunks[1], &proof, &root, 1, 0));
        let mut altered = proof.clone();
        altered[0][0] ^= 1;
        assert!(!verify_proof(h, &chunks[1], &altered, &root, 1, 5));
        assert!(!verify_proof(h, &chunks[1], &proof[..2], &root, 1, 5));
        let mut longer = proof.clone();
        longer.push([0; 32]);
        assert!(!verify_proof(h, &chunks[1], &longer, &root, 1, 5));
        assert!(!verify_proof(h, &chunks[1], &proof, &[0; 32], 1, 5));
    }

    #[test]
    fn chunking_follows_the_total_chunks_rule() {
        for len in [0usize, 1, 3, 4, 5, 8, 9, 100] {
            let data = vec![7u8; len];
            let n = chunks(&data, size(4)).count() as u64;
            assert_eq!(n, total_chunks(len as u64, size(4)), "length {len}");
            assert_eq!(chunks(&data, size(4)).map(<[u8]>::len).sum::<usize>(), len);
        }
        assert_eq!(total_chunks(0, size(DEFAULT_CHUNK_SIZE)), 1);
        assert_eq!(total_chunks(1_048_577, size(DEFAULT_CHUNK_SIZE)), 2);
    }

    #[test]
    fn encrypted_plaintext_chunk_leaves_room_for_iv_and_tag() {
        assert_eq!(plaintext_chunk_size(64, true), Some(size(36)));
        assert_eq!(plaintext_chunk_size(64, false), Some(size(64)));
        assert_eq!(plaintext_chunk_size(28, true), None);
        assert_eq!(plaintext_chunk_size(0, false), None);
    }

    #[test]
    fn empty_leaf_list_builds_no_tree() {
        assert_eq!(MerkleTree::from_leaves(&Sha256Hasher, Vec::new()), None);
    }

    #[test]
    fn file_id_round_trips() {
        let (_, tree) = tree_of(2);
        let id = tree.file_id();
        assert_eq!(id.len(), 44);
        assert_eq!(parse_file_id(&id), Some(tree.root()));
        assert_eq!(parse_file_id("AAAA"), None);
        assert_eq!(parse_file_id("not base64!"), None);
    }

    #[test]
    fn serialized_tree_round_trips_for_many_sizes() {
        for n in 1..=17u8 {
            let (_, tree) = tree_of(n);
            let bytes = tree.to_bytes();
            assert_eq!(bytes.len(), tree.encoded_len());
            let back = MerkleTree::decode(Bytes::from(bytes)).unwrap();
            assert_eq!(back, tree);
            assert!(back.verify_hashes(&Sha256Hasher));
        }
    }

    #[test]
    fn malformed_serialized_trees_are_rejected() {
        let (_, tree) = tree_of(3);
        let good = tree.to_bytes();
        for cut in 0..good.len() {
            assert!(MerkleTree::decode(Bytes::copy_from_slice(&good[..cut])).is_err());
        }
        let mut longer = good.clone();
        longer.push(0);
        assert!(MerkleTree::decode(Bytes::from(longer)).is_err());
        // The root's left child pointing elsewhere.
        let mut relinked = good.clone();
        let at = 4 + 4 * NODE_LEN + 32;
        relinked[at..at + 4].copy_from_slice(&1u32.to_le_bytes());
        assert!(MerkleTree::decode(Bytes::from(relinked)).is_err());
        // Zero leaves, and a leaf count far beyond the input.
        assert!(MerkleTree::decode(Bytes::from_static(&[0, 0, 0, 0])).is_err());
        assert!(MerkleTree::decode(Bytes::from_static(&[0xff, 0xff, 0xff, 0x7f])).is_err());
    }

    #[test]
    fn tampered_stored_hash_fails_verify_hashes() {
        let (_, tree) = tree_of(4);
        let mut bytes = tree.to_bytes();
        bytes[4] ^= 1; // first leaf hash
        let back = MerkleTree::decode(Bytes::from(bytes)).unwrap();
        assert!(!back.verify_hashes(&Sha256Hasher));
    }

    proptest::proptest! {
        #[test]
        fn decoding_any_bytes_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            let _ = MerkleTree::decode(Bytes::from(bytes));
        }
    }
}

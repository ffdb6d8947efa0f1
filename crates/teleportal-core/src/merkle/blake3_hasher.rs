//! A BLAKE3 [`MerkleHasher`] for deployments that need no Teleportal-compatible file ids.

use super::{Hash, MerkleHasher};

/// BLAKE3 with the same domain separation as [`Sha256Hasher`](super::Sha256Hasher):
/// `leaf = BLAKE3(00 ‖ chunk)`, `node = BLAKE3(01 ‖ left ‖ right)`.
///
/// Several times faster than SHA-256 on large chunks (docs/benchmarks.md), but its roots are
/// not the reference's file ids: use it only where every peer uses it.
///
/// ```
/// use teleportal_core::merkle::{Blake3Hasher, MerkleHasher, MerkleTree, Sha256Hasher};
///
/// let chunks = [&b"one"[..], b"two", b"three"];
/// let blake = MerkleTree::from_chunks(&Blake3Hasher, chunks).unwrap();
/// let sha = MerkleTree::from_chunks(&Sha256Hasher, chunks).unwrap();
/// assert_ne!(blake.root(), sha.root());
/// assert_eq!(blake.leaf_hashes().next(), Some(&Blake3Hasher.leaf(b"one")));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Blake3Hasher;

impl MerkleHasher for Blake3Hasher {
    fn leaf(&self, chunk: &[u8]) -> Hash {
        let mut h = blake3::Hasher::new();
        h.update(&[0x00]);
        // Large chunks hash on several lanes at once (SIMD), without threads.
        h.update(chunk);
        *h.finalize().as_bytes()
    }

    fn node(&self, left: &Hash, right: &Hash) -> Hash {
        let mut h = blake3::Hasher::new();
        h.update(&[0x01]);
        h.update(left);
        h.update(right);
        *h.finalize().as_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaves_and_nodes_are_domain_separated() {
        let left = Blake3Hasher.leaf(b"a");
        let right = Blake3Hasher.leaf(b"b");
        let mut as_chunk = Vec::new();
        as_chunk.extend_from_slice(&left);
        as_chunk.extend_from_slice(&right);
        // A leaf whose bytes are two child hashes is not their parent node.
        assert_ne!(
            Blake3Hasher.leaf(&as_chunk),
            Blake3Hasher.node(&left, &right)
        );
        assert_eq!(
            Blake3Hasher.leaf(b"a"),
            *blake3::hash(&[0x00, b'a']).as_bytes()
        );
    }
}

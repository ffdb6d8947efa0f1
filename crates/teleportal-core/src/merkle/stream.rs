//! Streaming file transfer in bounded memory, as runtime-agnostic [`Stream`] adapters.
//!
//! Upload side: [`Rechunk`] cuts any byte stream into wire chunks; a first pass feeds them to
//! a [`TreeBuilder`] (32 bytes kept per chunk) to learn the root, and a second pass over the
//! same bytes goes through [`WithProofs`], which pairs each chunk with its proof and checks it
//! is the chunk the tree was built from. Download side: [`VerifyChunks`] takes proven chunks
//! and yields their bytes only after each proof checked out against the trusted root, in
//! order, failing on the first bad, missing, extra or misplaced chunk. Neither side holds
//! more than one chunk.
//!
//! ```
//! use std::num::NonZeroUsize;
//! use std::sync::Arc;
//!
//! use bytes::Bytes;
//! use futures::{TryStreamExt, stream};
//! use teleportal_core::merkle::{Rechunk, Sha256Hasher, TreeBuilder, VerifyChunks, WithProofs};
//!
//! # futures::executor::block_on(async {
//! let size = NonZeroUsize::new(4).unwrap();
//! let source = || stream::iter(["hel", "lo tele", "portal"].map(|s| Ok::<_, std::io::Error>(Bytes::from(s))));
//!
//! // Pass 1: the tree (leaf hashes only).
//! let mut builder = TreeBuilder::new(Sha256Hasher);
//! let mut chunks = Rechunk::new(source(), size);
//! while let Some(chunk) = chunks.try_next().await? {
//!     builder.push(&chunk)?;
//! }
//! let tree = Arc::new(builder.finish());
//!
//! // Pass 2: chunks with proofs, as an uploader sends them…
//! let proven = WithProofs::new(Rechunk::new(source(), size), Arc::clone(&tree), Sha256Hasher);
//! // …and a downloader's check against the root it trusts.
//! let verified = VerifyChunks::new(proven, Sha256Hasher, tree.root(), tree.leaf_count());
//! let bytes: Vec<Bytes> = verified.try_collect().await?;
//! assert_eq!(bytes.concat(), b"hello teleportal");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

use std::num::NonZeroUsize;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use futures_core::Stream;
use pin_project_lite::pin_project;

use super::{Hash, MAX_LEAVES, MerkleHasher, MerkleTree, verify_proof};

/// One wire chunk with its index in the file and its proof (sibling hashes bottom-up, §12.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvenChunk {
    /// The chunk's index, from 0.
    pub index: u32,
    /// The chunk's bytes (ciphertext for encrypted files).
    pub data: Bytes,
    /// The proof that the chunk is leaf `index` of the file's tree.
    pub proof: Vec<Hash>,
}

/// Why a chunk stream failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChunkError<E> {
    /// The underlying stream failed.
    #[error("chunk source failed")]
    Source(#[source] E),
    /// A chunk's proof does not lead to the trusted root.
    #[error("chunk {index} failed its Merkle proof")]
    ProofFailed {
        /// The chunk.
        index: u32,
    },
    /// A chunk arrived out of place.
    #[error("expected chunk {expected}, got chunk {got}")]
    OutOfOrder {
        /// The next chunk due.
        expected: u32,
        /// The chunk that came.
        got: u32,
    },
    /// The stream ended before every chunk came.
    #[error("stream ended after {got} of {expected} chunks")]
    Missing {
        /// How many chunks the tree has.
        expected: u32,
        /// How many came.
        got: u32,
    },
    /// More chunks came than the tree has leaves.
    #[error("more chunks than the tree's {leaves} leaves")]
    Extra {
        /// How many leaves the tree has.
        leaves: u32,
    },
    /// A chunk differs from the one the tree was built from (the source changed between
    /// passes).
    #[error("chunk {index} differs from the chunk the tree was built from")]
    Changed {
        /// The chunk.
        index: u32,
    },
}

/// More chunks than a tree can hold ([`MAX_LEAVES`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a file has at most {MAX_LEAVES} chunks")]
pub struct TooManyChunks;

/// Builds a [`MerkleTree`] from chunks as they come, keeping only their leaf hashes.
#[derive(Debug, Clone)]
pub struct TreeBuilder<H> {
    hasher: H,
    leaves: Vec<Hash>,
}

impl<H: MerkleHasher> TreeBuilder<H> {
    /// An empty builder.
    pub fn new(hasher: H) -> Self {
        TreeBuilder {
            hasher,
            leaves: Vec::new(),
        }
    }

    /// Hashes the next chunk.
    ///
    /// # Errors
    /// Past [`MAX_LEAVES`] chunks.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), TooManyChunks> {
        if self.leaves.len() >= MAX_LEAVES as usize {
            return Err(TooManyChunks);
        }
        self.leaves.push(self.hasher.leaf(chunk));
        Ok(())
    }

    /// How many chunks were pushed.
    pub fn len(&self) -> usize {
        self.leaves.len()
    }

    /// Whether no chunk was pushed.
    pub fn is_empty(&self) -> bool {
        self.leaves.is_empty()
    }

    /// The tree. With no chunk pushed, the tree of one empty chunk: an empty file (§12.1).
    pub fn finish(mut self) -> MerkleTree {
        if self.leaves.is_empty() {
            self.leaves.push(self.hasher.leaf(&[]));
        }
        MerkleTree::from_leaves(&self.hasher, self.leaves)
            // 1..=MAX_LEAVES leaves, guarded by `push`.
            .unwrap_or_else(|| unreachable!("a builder holds 1..=MAX_LEAVES leaves"))
    }
}

pin_project! {
    /// Cuts a stream of byte buffers of any sizes into chunks of exactly `chunk_size` bytes
    /// (the last may be shorter; an empty stream gives one empty chunk, an empty file's).
    #[derive(Debug)]
    pub struct Rechunk<S> {
        #[pin]
        inner: S,
        size: NonZeroUsize,
        buffer: BytesMut,
        emitted: bool,
        done: bool,
    }
}

impl<S> Rechunk<S> {
    /// Rechunks `inner` into `chunk_size` pieces.
    pub fn new(inner: S, chunk_size: NonZeroUsize) -> Self {
        Rechunk {
            inner,
            size: chunk_size,
            buffer: BytesMut::new(),
            emitted: false,
            done: false,
        }
    }
}

impl<S, E> Stream for Rechunk<S>
where
    S: Stream<Item = Result<Bytes, E>>,
{
    type Item = Result<Bytes, E>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        let size = this.size.get();
        loop {
            if this.buffer.len() >= size {
                *this.emitted = true;
                return Poll::Ready(Some(Ok(this.buffer.split_to(size).freeze())));
            }
            if *this.done {
                if !this.buffer.is_empty() || !*this.emitted {
                    *this.emitted = true;
                    return Poll::Ready(Some(Ok(this.buffer.split().freeze())));
                }
                return Poll::Ready(None);
            }
            match ready!(this.inner.as_mut().poll_next(cx)) {
                Some(Ok(bytes)) => {
                    // Whole chunks straight from the input need no copy.
                    if this.buffer.is_empty() && bytes.len() == size {
                        *this.emitted = true;
                        return Poll::Ready(Some(Ok(bytes)));
                    }
                    this.buffer.extend_from_slice(&bytes);
                }
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                None => *this.done = true,
            }
        }
    }
}

pin_project! {
    /// Pairs each chunk of a stream with its proof from a tree built over the same chunks
    /// (upload side), checking each chunk's hash against the tree's leaf.
    #[derive(Debug)]
    pub struct WithProofs<S, H> {
        #[pin]
        inner: S,
        tree: Arc<MerkleTree>,
        hasher: H,
        next: u32,
        finished: bool,
    }
}

impl<S, H> WithProofs<S, H> {
    /// Proves the chunks of `inner` against `tree`.
    pub fn new(inner: S, tree: Arc<MerkleTree>, hasher: H) -> Self {
        WithProofs {
            inner,
            tree,
            hasher,
            next: 0,
            finished: false,
        }
    }

    /// Starts at chunk `index` (resuming an upload): `inner` must yield chunks from there on.
    #[must_use]
    pub fn starting_at(mut self, index: u32) -> Self {
        self.next = index;
        self
    }
}

impl<S, H, E> Stream for WithProofs<S, H>
where
    S: Stream<Item = Result<Bytes, E>>,
    H: MerkleHasher,
{
    type Item = Result<ProvenChunk, ChunkError<E>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.project();
        if *this.finished {
            return Poll::Ready(None);
        }
        let leaves = this.tree.leaf_count();
        let item = match ready!(this.inner.poll_next(cx)) {
            None if *this.next == leaves => None,
            None => Some(Err(ChunkError::Missing {
                expected: leaves,
                got: *this.next,
            })),
            Some(Err(e)) => Some(Err(ChunkError::Source(e))),
            Some(Ok(data)) => {
                let index = *this.next;
                match (this.tree.leaf_hash(index), this.tree.proof(index)) {
                    (Some(leaf), Some(proof)) if *leaf == this.hasher.leaf(&data) => {
                        *this.next += 1;
                        return Poll::Ready(Some(Ok(ProvenChunk { index, data, proof })));
                    }
                    (Some(_), Some(_)) => Some(Err(ChunkError::Changed { index })),
                    _ => Some(Err(ChunkError::Extra { leaves })),
                }
            }
        };
        // The first error, or the end, finishes the stream.
        *this.finished = true;
        Poll::Ready(item)
    }
}

pin_project! {
    /// Yields the bytes of proven chunks (download side) once each proof checked out against
    /// the trusted root, in order from chunk 0; fails on the first bad, misplaced, extra or
    /// missing chunk, and yields nothing after.
    #[derive(Debug)]
    pub struct VerifyChunks<S, H> {
        #[pin]
        inner: S,
        hasher: H,
        root: Hash,
        leaf_count: u32,
        next: u32,
        finished: bool,
    }
}

impl<S, H> VerifyChunks<S, H> {
    /// Verifies the chunks of `inner` against `root`, a tree of `leaf_count` leaves.
    pub fn new(inner: S, hasher: H, root: Hash, leaf_count: u32) -> Self {
        VerifyChunks {
            inner,
            hasher,
            root,
            leaf_count,
            next: 0,
            finished: false,
        }
    }

    /// Expects chunk `index` first (resuming a download).
    #[must_use]
    pub fn starting_at(mut self, index: u32) -> Self {
        self.next = index;
        self
    }
}

impl<S, H, E> Stream for VerifyChunks<S, H>
where
    S: Stream<Item = Result<ProvenChunk, E>>,
    H: MerkleHasher,
{
    type Item = Result<Bytes, ChunkError<E>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.project();
        if *this.finished {
            return Poll::Ready(None);
        }
        let expected = *this.next;
        let item = match ready!(this.inner.poll_next(cx)) {
            None if expected == *this.leaf_count => None,
            None => Some(Err(ChunkError::Missing {
                expected: *this.leaf_count,
                got: expected,
            })),
            Some(Err(e)) => Some(Err(ChunkError::Source(e))),
            Some(Ok(_)) if expected >= *this.leaf_count => Some(Err(ChunkError::Extra {
                leaves: *this.leaf_count,
            })),
            Some(Ok(chunk)) if chunk.index != expected => Some(Err(ChunkError::OutOfOrder {
                expected,
                got: chunk.index,
            })),
            Some(Ok(chunk)) => {
                let valid = verify_proof(
                    &*this.hasher,
                    &chunk.data,
                    &chunk.proof,
                    this.root,
                    u64::from(chunk.index),
                    u64::from(*this.leaf_count),
                );
                if valid {
                    *this.next += 1;
                    return Poll::Ready(Some(Ok(chunk.data)));
                }
                Some(Err(ChunkError::ProofFailed { index: chunk.index }))
            }
        };
        *this.finished = true;
        Poll::Ready(item)
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use futures::executor::block_on;
    use futures::{StreamExt, TryStreamExt, stream};

    use super::*;
    use crate::merkle::{Sha256Hasher, chunks};

    fn size(n: usize) -> NonZeroUsize {
        NonZeroUsize::new(n).unwrap()
    }

    fn pieces(data: &[u8], cuts: &[usize]) -> Vec<Result<Bytes, Infallible>> {
        let mut out = Vec::new();
        let mut rest = data;
        for &cut in cuts.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (head, tail) = rest.split_at(cut.min(rest.len()));
            out.push(Ok(Bytes::copy_from_slice(head)));
            rest = tail;
        }
        out
    }

    fn rechunked(data: &[u8], cuts: &[usize], chunk: usize) -> Vec<Bytes> {
        block_on(Rechunk::new(stream::iter(pieces(data, cuts)), size(chunk)).try_collect()).unwrap()
    }

    fn proven(data: &[u8], chunk: usize) -> (Arc<MerkleTree>, Vec<ProvenChunk>) {
        let tree =
            Arc::new(MerkleTree::from_chunks(&Sha256Hasher, chunks(data, size(chunk))).unwrap());
        let source = stream::iter(pieces(data, &[3, 7]));
        let proven = WithProofs::new(
            Rechunk::new(source, size(chunk)),
            Arc::clone(&tree),
            Sha256Hasher,
        );
        (tree, block_on(proven.try_collect()).unwrap())
    }

    fn verify(
        tree: &MerkleTree,
        chunks: Vec<ProvenChunk>,
    ) -> Result<Vec<Bytes>, ChunkError<Infallible>> {
        let input = stream::iter(chunks.into_iter().map(Ok::<_, Infallible>));
        block_on(
            VerifyChunks::new(input, Sha256Hasher, tree.root(), tree.leaf_count()).try_collect(),
        )
    }

    #[test]
    fn rechunk_matches_chunks_for_any_input_cuts() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        for cuts in [&[1][..], &[7, 3], &[64], &[999, 1], &[1000], &[4096]] {
            for chunk in [1, 5, 64, 1000, 1024] {
                let expected: Vec<&[u8]> = chunks(&data, size(chunk)).collect();
                assert_eq!(
                    rechunked(&data, cuts, chunk),
                    expected,
                    "cuts {cuts:?} chunk {chunk}"
                );
            }
        }
        assert_eq!(rechunked(b"", &[1], 4), vec![Bytes::new()]);
    }

    #[test]
    fn proven_chunks_verify_and_rebuild_the_file() {
        let data: Vec<u8> = (0..100u8).collect();
        let (tree, proven) = proven(&data, 8);
        assert_eq!(proven.len(), 13);
        assert_eq!(verify(&tree, proven).unwrap().concat(), data);
    }

    #[test]
    fn a_tampered_chunk_is_rejected_and_nothing_after_it_passes() {
        let data: Vec<u8> = (0..100u8).collect();
        let (tree, mut proven) = proven(&data, 8);
        let mut bad = proven[3].data.to_vec();
        bad[0] ^= 1;
        proven[3].data = Bytes::from(bad);
        let input = stream::iter(proven.into_iter().map(Ok::<_, Infallible>));
        let mut verified = VerifyChunks::new(input, Sha256Hasher, tree.root(), tree.leaf_count());
        for _ in 0..3 {
            assert!(block_on(verified.next()).unwrap().is_ok());
        }
        assert!(matches!(
            block_on(verified.next()),
            Some(Err(ChunkError::ProofFailed { index: 3 }))
        ));
        assert!(block_on(verified.next()).is_none());
    }

    #[test]
    fn misplaced_missing_and_extra_chunks_are_rejected() {
        let data: Vec<u8> = (0..40u8).collect();
        let (tree, proven) = proven(&data, 8);
        let mut swapped = proven.clone();
        swapped.swap(1, 2);
        assert!(matches!(
            verify(&tree, swapped),
            Err(ChunkError::OutOfOrder {
                expected: 1,
                got: 2
            })
        ));
        // A chunk's proof under another index does not verify either.
        let mut relabelled = proven.clone();
        relabelled[1].index = 2;
        relabelled.remove(2);
        assert!(verify(&tree, relabelled).is_err());
        let short = proven[..4].to_vec();
        assert!(matches!(
            verify(&tree, short),
            Err(ChunkError::Missing {
                expected: 5,
                got: 4
            })
        ));
        let mut long = proven.clone();
        long.push(proven[4].clone());
        assert!(matches!(
            verify(&tree, long),
            Err(ChunkError::Extra { leaves: 5 })
        ));
    }

    #[test]
    fn with_proofs_notices_a_source_that_changed_between_passes() {
        let data: Vec<u8> = (0..40u8).collect();
        let tree =
            Arc::new(MerkleTree::from_chunks(&Sha256Hasher, chunks(&data, size(8))).unwrap());
        let mut changed = data.clone();
        changed[20] ^= 0xff;
        let source = Rechunk::new(stream::iter(pieces(&changed, &[40])), size(8));
        let result: Result<Vec<_>, _> =
            block_on(WithProofs::new(source, tree, Sha256Hasher).try_collect());
        assert!(matches!(result, Err(ChunkError::Changed { index: 2 })));
    }

    #[test]
    fn resumed_transfers_start_mid_file() {
        let data: Vec<u8> = (0..40u8).collect();
        let (tree, proven) = proven(&data, 8);
        let rest = stream::iter(proven[2..].iter().cloned().map(Ok::<_, Infallible>));
        let verified: Vec<Bytes> = block_on(
            VerifyChunks::new(rest, Sha256Hasher, tree.root(), tree.leaf_count())
                .starting_at(2)
                .try_collect(),
        )
        .unwrap();
        assert_eq!(verified.concat(), data[16..]);
    }

    #[test]
    fn builder_matches_from_chunks_and_an_empty_file_has_one_leaf() {
        let data: Vec<u8> = (0..100u8).collect();
        let mut builder = TreeBuilder::new(Sha256Hasher);
        for chunk in chunks(&data, size(7)) {
            builder.push(chunk).unwrap();
        }
        let expected = MerkleTree::from_chunks(&Sha256Hasher, chunks(&data, size(7))).unwrap();
        assert_eq!(builder.finish(), expected);
        let empty = TreeBuilder::new(Sha256Hasher).finish();
        assert_eq!(
            empty,
            MerkleTree::from_chunks(&Sha256Hasher, [b""]).unwrap()
        );
    }
}

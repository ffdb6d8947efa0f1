//! Yjs updates without a Yjs document: merge, diff, state vectors, metadata and V1 ⇄ V2
//! conversion, byte for byte as yjs 13.6 computes them.
//!
//! The server never loads a `Y.Doc`; it works on encoded updates. These functions read an
//! update as a stream of structs whose content stays a slice of the input (text, binary,
//! `Any` values), so what a client wrote is what every other client reads: an object's keys
//! keep their order, numbers keep their tags. Where yjs itself rewrites content on these
//! paths (it decodes JSON and `Any` values into JavaScript objects and encodes them again),
//! we rewrite it the same way, so our output is yjs's output; the test suite checks that on
//! generated histories against yjs itself (`crates/teleportal-core/tests/yjs_oracle.rs`).
//!
//! ```
//! use teleportal_core::yjs;
//!
//! // Two updates from one client (as `Y.encodeStateAsUpdate` would give them): "a", then "b"
//! // typed after it, in the root text "t".
//! let a = [1, 1, 7, 0, 4, 1, 1, b't', 1, b'a', 0];
//! let b = [1, 1, 7, 1, 0x84, 7, 0, 1, b'b', 0];
//! let merged = yjs::merge_updates_v1(&[&a, &b])?;
//! assert_eq!(yjs::encode_state_vector_from_update_v1(&merged)?, [1, 7, 2]);
//! // What a client that has "a" still needs:
//! assert_eq!(yjs::diff_update_v1(&merged, &[1, 7, 1])?, b);
//! // The same update in the V2 encoding, and back.
//! let v2 = yjs::convert_update_v1_to_v2(&merged)?;
//! assert_eq!(yjs::convert_update_v2_to_v1(&v2)?, merged);
//! # Ok::<(), teleportal_core::yjs::UpdateError>(())
//! ```
//!
//! # Limits
//! Every function is total: any bytes give a result or an [`UpdateError`], never a panic,
//! and nothing is allocated by a length the input merely declares. Nested arrays and objects
//! in one value may go [`MAX_NESTING`] levels deep (yjs's JavaScript decoder overflows its
//! stack a few thousand levels down and then loads the document empty, so such an update
//! must never be stored); an update may hold at most about 16 structs per byte (V2 can
//! declare billions of structs in a few bytes); it must list each client once, highest id
//! first, as yjs and yrs write them (yjs's merge drops structs listed otherwise).
//!
//! # Merging and compacting
//! yjs's `mergeUpdates` keeps every item it is given as its own struct, even a run of
//! single characters typed one after another; a document that applies the result joins them.
//! [`compact_updates_v1`] / [`compact_updates_v2`] merge the same way and also join those
//! runs, so a stored snapshot is as small as the document's own encoding. A document that
//! applies a compacted update is the document that applies yjs's merge.

mod any_span;
mod coder;
mod cursor;
mod delete_set;
mod ops;
mod rle;
mod structs;
mod utf16;
mod value;

pub use value::MAX_NESTING;

use coder::{DecoderV1, DecoderV2, EncoderV1, EncoderV2};

/// Why an update could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UpdateError {
    /// The update ends in the middle of a field.
    #[error("update ends early (reading {0})")]
    UnexpectedEnd(&'static str),
    /// A number is larger than JavaScript can hold exactly (2^53 − 1), or a clock overflows.
    #[error("integer out of range (reading {0})")]
    IntegerOutOfRange(&'static str),
    /// A string is not UTF-8.
    #[error("string is not UTF-8 (reading {0})")]
    InvalidUtf8(&'static str),
    /// An item's content has a kind yjs does not know.
    #[error("unknown content kind {0}")]
    UnknownContent(u8),
    /// A shared type has a kind yjs does not know.
    #[error("unknown shared type {0}")]
    UnknownTypeRef(u64),
    /// A lib0 `Any` value has a tag yjs does not know.
    #[error("unknown value tag {0}")]
    UnknownAnyTag(u8),
    /// Arrays and objects nest deeper than [`MAX_NESTING`] levels.
    #[error("value nests deeper than {max} levels")]
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// Content that should be JSON is not.
    #[error("content is not valid JSON")]
    InvalidJson,
    /// A value cannot be written as JSON (a bigint, or `undefined` where a value is needed).
    #[error("{0} cannot be written as JSON")]
    NotJson(&'static str),
    /// The update declares more structs than its size can honestly hold.
    #[error("update holds too many structs for its size")]
    TooManyStructs,
    /// A struct of length zero (yjs never writes one).
    #[error("update holds an empty struct")]
    EmptyStruct,
    /// Something yjs would fail on or write wrongly.
    #[error("unsupported update: {0}")]
    Unsupported(&'static str),
}

/// An id of one unit of content: the client that made it and its clock there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Id {
    pub(crate) client: u64,
    pub(crate) clock: u64,
}

impl Id {
    pub(crate) fn offset(self, by: u64) -> Id {
        Id {
            client: self.client,
            clock: self.clock + by,
        }
    }
}

/// What `parseUpdateMeta` tells: per client, the first clock an update holds and the clock
/// after its last struct, clients in the order the update lists them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpdateMeta {
    /// `(client, first clock)`.
    pub from: Vec<(u64, u64)>,
    /// `(client, clock after the last struct)`.
    pub to: Vec<(u64, u64)>,
}

/// `Y.mergeUpdates`: V1 updates merged into one V1 update (one update is returned as it is).
pub fn merge_updates_v1(updates: &[&[u8]]) -> Result<Vec<u8>, UpdateError> {
    ops::merge::<DecoderV1, EncoderV1>(updates, false)
}

/// `Y.mergeUpdatesV2`.
pub fn merge_updates_v2(updates: &[&[u8]]) -> Result<Vec<u8>, UpdateError> {
    ops::merge::<DecoderV2, EncoderV2>(updates, false)
}

/// [`merge_updates_v1`], with runs of items joined as a document would join them; also for a
/// single update.
///
/// ```
/// use teleportal_core::yjs;
/// // "a" then "b" typed after it, as two updates: merged they stay two items, compacted one.
/// let a = [1, 1, 7, 0, 4, 1, 1, b't', 1, b'a', 0];
/// let b = [1, 1, 7, 1, 0x84, 7, 0, 1, b'b', 0];
/// assert!(yjs::compact_updates_v1(&[&a, &b])?.len() < yjs::merge_updates_v1(&[&a, &b])?.len());
/// assert_eq!(yjs::compact_updates_v1(&[&a, &b])?, [1, 1, 7, 0, 4, 1, 1, b't', 2, b'a', b'b', 0]);
/// # Ok::<(), yjs::UpdateError>(())
/// ```
pub fn compact_updates_v1(updates: &[&[u8]]) -> Result<Vec<u8>, UpdateError> {
    ops::merge::<DecoderV1, EncoderV1>(updates, true)
}

/// [`merge_updates_v2`] with runs of items joined; see [`compact_updates_v1`].
pub fn compact_updates_v2(updates: &[&[u8]]) -> Result<Vec<u8>, UpdateError> {
    ops::merge::<DecoderV2, EncoderV2>(updates, true)
}

/// `Y.diffUpdate`: what of `update` a peer with state vector `sv` (V1 encoding) lacks.
pub fn diff_update_v1(update: &[u8], sv: &[u8]) -> Result<Vec<u8>, UpdateError> {
    ops::diff::<DecoderV1, EncoderV1>(update, sv)
}

/// `Y.diffUpdateV2`.
pub fn diff_update_v2(update: &[u8], sv: &[u8]) -> Result<Vec<u8>, UpdateError> {
    ops::diff::<DecoderV2, EncoderV2>(update, sv)
}

/// `Y.encodeStateVectorFromUpdate`: the V1 state vector of what `update` holds.
pub fn encode_state_vector_from_update_v1(update: &[u8]) -> Result<Vec<u8>, UpdateError> {
    ops::state_vector::<DecoderV1>(update)
}

/// `Y.encodeStateVectorFromUpdateV2` (the state vector has one encoding for both).
pub fn encode_state_vector_from_update_v2(update: &[u8]) -> Result<Vec<u8>, UpdateError> {
    ops::state_vector::<DecoderV2>(update)
}

/// `Y.convertUpdateFormatV1ToV2`.
pub fn convert_update_v1_to_v2(update: &[u8]) -> Result<Vec<u8>, UpdateError> {
    ops::convert::<DecoderV1, EncoderV2>(update)
}

/// `Y.convertUpdateFormatV2ToV1`.
pub fn convert_update_v2_to_v1(update: &[u8]) -> Result<Vec<u8>, UpdateError> {
    ops::convert::<DecoderV2, EncoderV1>(update)
}

/// `Y.parseUpdateMeta`.
pub fn parse_update_meta_v1(update: &[u8]) -> Result<UpdateMeta, UpdateError> {
    ops::meta::<DecoderV1>(update)
}

/// `Y.parseUpdateMetaV2`.
pub fn parse_update_meta_v2(update: &[u8]) -> Result<UpdateMeta, UpdateError> {
    ops::meta::<DecoderV2>(update)
}

/// Whether a V1 update carries nothing: no structs and no deletions (`[0, 0]` and its
/// equivalents). A client that may not write can still send one, as a sync reply. Reads only
/// as far as it must: an update with a struct is not empty, whatever follows.
pub fn is_empty_update_v1(update: &[u8]) -> Result<bool, UpdateError> {
    is_empty::<DecoderV1>(update)
}

/// [`is_empty_update_v1`] for V2.
pub fn is_empty_update_v2(update: &[u8]) -> Result<bool, UpdateError> {
    is_empty::<DecoderV2>(update)
}

fn is_empty<'a, D: coder::Decoder<'a>>(update: &'a [u8]) -> Result<bool, UpdateError> {
    let mut reader = structs::StructReader::new(D::open(update)?, update.len(), false)?;
    if reader.curr.is_some() {
        return Ok(false);
    }
    let ds = delete_set::DeleteSet::read(&mut reader.decoder)?;
    Ok(!ds
        .clients
        .iter()
        .any(|(_, ranges)| ranges.iter().any(|r| r.len > 0)))
}

#[cfg(test)]
mod tests;

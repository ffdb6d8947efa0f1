//! Operations on encoded Yjs updates, without ever building a document.
//!
//! Everything goes through [`teleportal_core::yjs`], which reads an update's structs with
//! their content as slices of the input: what a client wrote is what is stored and what every
//! other client reads, byte for byte. Stored merges are compactions
//! ([`teleportal_core::yjs::compact_updates_v1`]): yjs's own merge keeps every typed character
//! as its own struct, a compaction joins them as a document would.

use bytes::Bytes;
use teleportal_core::yjs;

use crate::error::BoxError;

/// How many updates one merge call takes; results are merged the same way. Keeps each
/// merge's working set (one reader per update) small.
pub const MERGE_BATCH: usize = 500;

/// yjs's encoding of an empty document in V2 (`Y.encodeStateAsUpdateV2(new Y.Doc())`).
const EMPTY_V2: &[u8] = &[0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];

/// The Yjs update encoding a store holds. Every update of one store uses the same encoding.
///
/// ```
/// use teleportal_storage::UpdateEncoding;
///
/// let empty = UpdateEncoding::V1.empty_update();
/// let merged = UpdateEncoding::V1.merge(&[empty.clone(), empty])?;
/// assert_eq!(UpdateEncoding::V1.state_vector(&merged)?.as_ref(), &[0]);
/// assert!(UpdateEncoding::V1.is_empty(&merged)?);
/// # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum UpdateEncoding {
    /// Yjs update format V1, what `y-websocket` clients send.
    #[default]
    V1,
    /// Yjs update format V2, what Teleportal clients put in content envelopes.
    V2,
}

impl UpdateEncoding {
    /// The update of an empty document, as yjs encodes it.
    pub fn empty_update(self) -> Bytes {
        match self {
            UpdateEncoding::V1 => Bytes::from_static(&[0, 0]),
            UpdateEncoding::V2 => Bytes::from_static(EMPTY_V2),
        }
    }

    /// Checks that `update` is a whole update in this encoding that yjs clients can load:
    /// every struct and the delete set read, no value nested deeper than
    /// [`yjs::MAX_NESTING`] levels.
    ///
    /// # Errors
    /// A [`yjs::UpdateError`] saying what is wrong.
    pub fn validate(self, update: &[u8]) -> Result<(), BoxError> {
        self.state_vector(update).map(drop)
    }

    /// Whether `update` carries nothing: no structs and no deletions.
    ///
    /// # Errors
    /// A [`yjs::UpdateError`] for bytes that are not an update.
    pub fn is_empty(self, update: &[u8]) -> Result<bool, BoxError> {
        Ok(match self {
            UpdateEncoding::V1 => yjs::is_empty_update_v1(update)?,
            UpdateEncoding::V2 => yjs::is_empty_update_v2(update)?,
        })
    }

    /// `update` in the encoding `to` (the same bytes if it is already in it).
    ///
    /// # Errors
    /// A [`yjs::UpdateError`] for bytes that are not an update.
    pub fn convert(self, update: Bytes, to: UpdateEncoding) -> Result<Bytes, BoxError> {
        Ok(match (self, to) {
            (UpdateEncoding::V1, UpdateEncoding::V2) => {
                Bytes::from(yjs::convert_update_v1_to_v2(&update)?)
            }
            (UpdateEncoding::V2, UpdateEncoding::V1) => {
                Bytes::from(yjs::convert_update_v2_to_v1(&update)?)
            }
            _ => {
                self.validate(&update)?;
                update
            }
        })
    }

    /// Merges updates into one compacted update, in batches of at most [`MERGE_BATCH`].
    ///
    /// An empty list gives the empty update; a single update comes back unchanged.
    ///
    /// # Errors
    /// A [`yjs::UpdateError`] for an update that cannot be read.
    pub fn merge(self, updates: &[Bytes]) -> Result<Bytes, BoxError> {
        match updates {
            [] => return Ok(self.empty_update()),
            [one] => return Ok(one.clone()),
            _ => {}
        }
        let mut level: Vec<Bytes> = updates
            .chunks(MERGE_BATCH)
            .map(|batch| self.merge_once(batch))
            .collect::<Result<_, _>>()?;
        while level.len() > 1 {
            level = level
                .chunks(MERGE_BATCH)
                .map(|batch| self.merge_once(batch))
                .collect::<Result<_, _>>()?;
        }
        // `updates` is non-empty, so each level keeps at least one element.
        Ok(level.pop().unwrap_or_else(|| self.empty_update()))
    }

    fn merge_once(self, batch: &[Bytes]) -> Result<Bytes, BoxError> {
        if let [one] = batch {
            return Ok(one.clone());
        }
        let refs: Vec<&[u8]> = batch.iter().map(Bytes::as_ref).collect();
        let merged = match self {
            UpdateEncoding::V1 => yjs::compact_updates_v1(&refs)?,
            UpdateEncoding::V2 => yjs::compact_updates_v2(&refs)?,
        };
        Ok(Bytes::from(merged))
    }

    /// The state vector (V1 encoding, as on the wire) of what `update` contains.
    ///
    /// # Errors
    /// A [`yjs::UpdateError`] for bytes that are not an update.
    pub fn state_vector(self, update: &[u8]) -> Result<Bytes, BoxError> {
        let sv = match self {
            UpdateEncoding::V1 => yjs::encode_state_vector_from_update_v1(update)?,
            UpdateEncoding::V2 => yjs::encode_state_vector_from_update_v2(update)?,
        };
        Ok(Bytes::from(sv))
    }

    /// What `update` holds that a peer with `state_vector` (V1 encoding) lacks.
    ///
    /// # Errors
    /// A [`yjs::UpdateError`] for an update or state vector that cannot be read.
    pub fn diff(self, update: &[u8], state_vector: &[u8]) -> Result<Bytes, BoxError> {
        let diff = match self {
            UpdateEncoding::V1 => yjs::diff_update_v1(update, state_vector)?,
            UpdateEncoding::V2 => yjs::diff_update_v2(update, state_vector)?,
        };
        Ok(Bytes::from(diff))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history() -> Vec<Bytes> {
        let data = include_bytes!("../fixtures/yjs-history-1k.bin");
        let mut out = Vec::new();
        let mut rest = &data[..];
        while rest.len() >= 4 {
            let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
            out.push(Bytes::copy_from_slice(&rest[4..4 + len]));
            rest = &rest[4 + len..];
        }
        out
    }

    #[test]
    fn batched_merge_equals_one_merge() {
        let updates = history();
        assert!(
            updates.len() > MERGE_BATCH,
            "the history spans several batches"
        );
        let refs: Vec<&[u8]> = updates.iter().map(Bytes::as_ref).collect();
        let once = Bytes::from(yjs::compact_updates_v1(&refs).unwrap());
        let batched = UpdateEncoding::V1.merge(&updates).unwrap();
        let sv = |u: &Bytes| UpdateEncoding::V1.state_vector(u).unwrap();
        assert_eq!(sv(&once), sv(&batched));
        // Each holds everything the other does.
        let empty_diff = |a: &Bytes, b: &Bytes| {
            let d = UpdateEncoding::V1.diff(a, &sv(b)).unwrap();
            UpdateEncoding::V1.state_vector(&d).unwrap()
        };
        assert_eq!(empty_diff(&once, &batched).as_ref(), &[0]);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(UpdateEncoding::V1.validate(&[0xff, 0xff, 0xff]).is_err());
        assert!(
            UpdateEncoding::V1
                .merge(&[Bytes::from_static(&[9, 9]), Bytes::from_static(&[0, 0])])
                .is_err()
        );
    }

    #[test]
    fn empty_updates_are_valid_in_both_encodings() {
        for encoding in [UpdateEncoding::V1, UpdateEncoding::V2] {
            let empty = encoding.empty_update();
            encoding.validate(&empty).unwrap();
            assert_eq!(encoding.state_vector(&empty).unwrap().as_ref(), &[0]);
            let merged = encoding.merge(&[empty.clone(), empty]).unwrap();
            assert_eq!(encoding.state_vector(&merged).unwrap().as_ref(), &[0]);
        }
    }

    #[test]
    fn v2_state_vectors_and_diffs_use_v1_state_vectors() {
        let v1 = history();
        let merged_v1 = UpdateEncoding::V1.merge(&v1).unwrap();
        let as_v2 = |u: &Bytes| {
            UpdateEncoding::V1
                .convert(u.clone(), UpdateEncoding::V2)
                .unwrap()
        };
        let merged_v2 = as_v2(&merged_v1);
        let sv = UpdateEncoding::V1.state_vector(&merged_v1).unwrap();
        assert_eq!(UpdateEncoding::V2.state_vector(&merged_v2).unwrap(), sv);
        // A peer with the first half misses the same content in either encoding.
        let half = UpdateEncoding::V1.merge(&v1[..v1.len() / 2]).unwrap();
        let half_sv = UpdateEncoding::V1.state_vector(&half).unwrap();
        let diff_v1 = UpdateEncoding::V1.diff(&merged_v1, &half_sv).unwrap();
        let diff_v2 = UpdateEncoding::V2.diff(&merged_v2, &half_sv).unwrap();
        assert_eq!(
            UpdateEncoding::V1.state_vector(&diff_v1).unwrap(),
            UpdateEncoding::V2.state_vector(&diff_v2).unwrap()
        );
    }

    /// A V1 update setting root map "m" key "k" to one `Any` value.
    fn map_update(any: &[u8]) -> Bytes {
        let mut u = vec![1, 1, 9, 0, 0x28, 1, 1, b'm', 1, b'k', 1];
        u.extend_from_slice(any);
        u.push(0);
        Bytes::from(u)
    }

    #[test]
    fn stored_values_keep_their_bytes() {
        // {"n": 174, "by": 2}: yrs stored this with its keys in another order.
        let any = [118, 2, 1, b'n', 125, 0x80 | 46, 2, 2, b'b', b'y', 125, 2];
        let mut updates = history();
        updates.push(map_update(&any));
        for encoding in [UpdateEncoding::V1, UpdateEncoding::V2] {
            let updates: Vec<Bytes> = updates
                .iter()
                .map(|u| UpdateEncoding::V1.convert(u.clone(), encoding).unwrap())
                .collect();
            let merged = encoding.merge(&updates).unwrap();
            assert!(merged.windows(any.len()).any(|w| w == any), "{encoding:?}");
        }
    }

    #[test]
    fn values_nested_too_deep_are_refused() {
        let mut any = [117u8, 1].repeat(8_000);
        any.push(126);
        let deep = map_update(&any);
        let err = UpdateEncoding::V1.validate(&deep).unwrap_err();
        assert!(err.to_string().contains("deeper than 512"), "{err}");
        assert!(
            UpdateEncoding::V1
                .merge(&[deep.clone(), history()[0].clone()])
                .is_err()
        );
    }
}

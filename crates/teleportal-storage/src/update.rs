//! Operations on encoded Yjs updates, without ever building a document.
//!
//! yrs merges, diffs and reads state vectors straight from encoded updates (`yrs::alt`). One
//! merge over a long history grows superlinearly (on a 2-core machine: ~3 ms for 1k small
//! updates, ~300 ms for 10k), so [`UpdateEncoding::merge`] merges in bounded batches and then
//! merges the batch results, which gives the same document in a fraction of the time.

use bytes::Bytes;
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;

use crate::error::BoxError;

/// How many updates one `merge_updates` call takes; results are merged the same way.
pub const MERGE_BATCH: usize = 500;

/// The Yjs update encoding a store holds. Every update of one store uses the same encoding.
///
/// ```
/// use teleportal_storage::UpdateEncoding;
///
/// let empty = UpdateEncoding::V1.empty_update();
/// let merged = UpdateEncoding::V1.merge(&[empty.clone(), empty])?;
/// assert_eq!(UpdateEncoding::V1.state_vector(&merged)?.as_ref(), &[0]);
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
    /// The update of an empty document.
    pub fn empty_update(self) -> Bytes {
        match self {
            UpdateEncoding::V1 => Bytes::from_static(yrs::Update::EMPTY_V1),
            UpdateEncoding::V2 => Bytes::from_static(yrs::Update::EMPTY_V2),
        }
    }

    /// Checks that `update` decodes as an update in this encoding.
    ///
    /// # Errors
    /// What yrs reports for bytes that are not an update.
    pub fn validate(self, update: &[u8]) -> Result<(), BoxError> {
        self.decode(update).map(drop)
    }

    /// Decodes an update's structs (no document is built), for callers that re-encode it in
    /// another encoding. The one place bytes from the network become a `yrs::Update`: a panic
    /// in yrs on crafted input is reported as an error.
    ///
    /// # Errors
    /// What yrs reports for bytes that are not an update in this encoding.
    pub fn decode(self, update: &[u8]) -> Result<yrs::Update, BoxError> {
        guarded(|| match self {
            UpdateEncoding::V1 => yrs::Update::decode_v1(update),
            UpdateEncoding::V2 => yrs::Update::decode_v2(update),
        })
    }

    /// Merges updates into one, in batches of at most [`MERGE_BATCH`].
    ///
    /// An empty list gives the empty update; a single update comes back unchanged.
    ///
    /// # Errors
    /// What yrs reports for an update it cannot decode.
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
        let refs = batch.iter().map(Bytes::as_ref);
        let merged = guarded(|| match self {
            UpdateEncoding::V1 => yrs::merge_updates_v1(refs),
            UpdateEncoding::V2 => yrs::merge_updates_v2(refs),
        })?;
        Ok(Bytes::from(merged))
    }

    /// The state vector (V1 encoding, as on the wire) of what `update` contains.
    ///
    /// # Errors
    /// What yrs reports for bytes that are not an update.
    pub fn state_vector(self, update: &[u8]) -> Result<Bytes, BoxError> {
        // yrs encodes a V2 update's state vector in V2 too; the wire (and Yjs) always uses V1.
        let sv = guarded(|| match self {
            UpdateEncoding::V1 => yrs::encode_state_vector_from_update_v1(update),
            UpdateEncoding::V2 => {
                yrs::Update::decode_v2(update).map(|u| u.state_vector().encode_v1())
            }
        })?;
        Ok(Bytes::from(sv))
    }

    /// What `update` holds that a peer with `state_vector` (V1 encoding) lacks.
    ///
    /// # Errors
    /// What yrs reports for an update or state vector it cannot decode.
    pub fn diff(self, update: &[u8], state_vector: &[u8]) -> Result<Bytes, BoxError> {
        let diff = guarded(|| match self {
            UpdateEncoding::V1 => yrs::diff_updates_v1(update, state_vector),
            UpdateEncoding::V2 => yrs::StateVector::decode_v1(state_vector)
                .and_then(|sv| yrs::diff_updates_v2(update, &sv.encode_v2())),
        })?;
        Ok(Bytes::from(diff))
    }
}

/// Runs a yrs operation on bytes that may come from the network. yrs reports most bad input
/// as errors, but a panic on some crafted update must not take a server task down with it:
/// it becomes an error like any other bad input.
fn guarded<T, E>(op: impl FnOnce() -> Result<T, E>) -> Result<T, BoxError>
where
    E: std::error::Error + Send + Sync + 'static,
{
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(op)) {
        Ok(result) => result.map_err(Into::into),
        Err(_) => Err("yrs panicked on this update".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history() -> Vec<Bytes> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/vectors/yjs-history-1k.bin"
        );
        let data = std::fs::read(path).expect("shared history fixture beside the repository");
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
        let once = UpdateEncoding::V1.merge_once(&updates).unwrap();
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
    fn a_panic_inside_yrs_becomes_an_error() {
        let result: Result<(), BoxError> =
            guarded(|| -> Result<(), std::fmt::Error> { panic!("simulated yrs bug") });
        assert_eq!(
            result.unwrap_err().to_string(),
            "yrs panicked on this update"
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
        let as_v2 = |u: &[u8]| Bytes::from(yrs::Update::decode_v1(u).unwrap().encode_v2());
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
}

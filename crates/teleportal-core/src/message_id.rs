//! Message ids (spec §9): a content hash of the complete encoded envelope.

use std::fmt;

/// A message id: two 32-bit FNV-1a-style lanes over the encoded bytes, shown as 16 lowercase
/// hex characters. ACKs and RPC responses name messages by it.
///
/// Lane 1 is FNV-1a-32; lane 2 starts from the FNV-32 prime and multiplies by the low 32 bits
/// of the FNV-64 prime. It is not FNV-1a-64.
///
/// ```
/// use teleportal_core::MessageId;
///
/// assert_eq!(MessageId::of(b"").to_string(), "811c9dc501000193");
/// assert_eq!(MessageId::of(b"a").to_string(), "e40c292cd3034e36");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId {
    lane1: u32,
    lane2: u32,
}

const LANE1_SEED: u32 = 0x811c_9dc5;
const LANE2_SEED: u32 = 0x0100_0193;
const LANE1_PRIME: u32 = 0x0100_0193;
const LANE2_PRIME: u32 = 0x1000_01b3;

impl MessageId {
    /// The id of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        let mut hasher = MessageIdHasher::new();
        hasher.update(bytes);
        hasher.finish()
    }

    /// Parses the 16-character hex form.
    pub fn parse(s: &str) -> Option<Self> {
        if s.len() != 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let lane1 = u32::from_str_radix(s.get(..8)?, 16).ok()?;
        let lane2 = u32::from_str_radix(s.get(8..)?, 16).ok()?;
        Some(Self { lane1, lane2 })
    }
}

/// A [`MessageId`] computed over bytes given in pieces, in order.
///
/// The id is byte-serial: each byte's step waits for the previous one (a XOR and a multiply),
/// so one message cannot be hashed faster than that chain, whatever the core. Two messages can:
/// [`update_pair`](MessageIdHasher::update_pair) runs their chains side by side in one loop,
/// which a core executes at nearly twice the throughput of hashing them one after the other.
///
/// ```
/// use teleportal_core::{MessageId, MessageIdHasher};
///
/// let (a, b) = (b"first message".as_slice(), b"second".as_slice());
/// let (mut x, mut y) = (MessageIdHasher::new(), MessageIdHasher::new());
/// x.update_pair(&a[..6], &mut y, b); // any split: pieces just have to come in order
/// x.update(&a[6..]);
/// assert_eq!((x.finish(), y.finish()), (MessageId::of(a), MessageId::of(b)));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct MessageIdHasher {
    lane1: u32,
    lane2: u32,
}

impl MessageIdHasher {
    /// The state before any byte: the id of the empty message.
    pub const fn new() -> Self {
        MessageIdHasher {
            lane1: LANE1_SEED,
            lane2: LANE2_SEED,
        }
    }

    /// Feeds the next bytes of the message.
    pub fn update(&mut self, bytes: &[u8]) {
        let (mut lane1, mut lane2) = (self.lane1, self.lane2);
        for &b in bytes {
            lane1 = (lane1 ^ u32::from(b)).wrapping_mul(LANE1_PRIME);
            lane2 = (lane2 ^ u32::from(b)).wrapping_mul(LANE2_PRIME);
        }
        (self.lane1, self.lane2) = (lane1, lane2);
    }

    /// Feeds `mine` to this hasher and `theirs` to `other`, interleaved in one pass; the
    /// longer input's rest is fed alone.
    pub fn update_pair(&mut self, mine: &[u8], other: &mut Self, theirs: &[u8]) {
        let both = mine.len().min(theirs.len());
        let (mut a1, mut a2) = (self.lane1, self.lane2);
        let (mut b1, mut b2) = (other.lane1, other.lane2);
        for (&x, &y) in mine[..both].iter().zip(&theirs[..both]) {
            a1 = (a1 ^ u32::from(x)).wrapping_mul(LANE1_PRIME);
            a2 = (a2 ^ u32::from(x)).wrapping_mul(LANE2_PRIME);
            b1 = (b1 ^ u32::from(y)).wrapping_mul(LANE1_PRIME);
            b2 = (b2 ^ u32::from(y)).wrapping_mul(LANE2_PRIME);
        }
        (self.lane1, self.lane2) = (a1, a2);
        (other.lane1, other.lane2) = (b1, b2);
        self.update(&mine[both..]);
        other.update(&theirs[both..]);
    }

    /// The id of everything fed so far.
    pub fn finish(self) -> MessageId {
        MessageId {
            lane1: self.lane1,
            lane2: self.lane2,
        }
    }
}

impl Default for MessageIdHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}{:08x}", self.lane1, self.lane2)
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageId({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_is_the_inverse_of_display() {
        let id = MessageId::of(b"hello");
        assert_eq!(MessageId::parse(&id.to_string()), Some(id));
        assert_eq!(MessageId::parse("not an id"), None);
    }

    /// The byte-by-byte definition of §9, written out again independently of the hasher.
    fn reference(bytes: &[u8]) -> MessageId {
        let (mut h1, mut h2) = (0x811c_9dc5_u32, 0x0100_0193_u32);
        for &b in bytes {
            h1 = (h1 ^ u32::from(b)).wrapping_mul(0x0100_0193);
            h2 = (h2 ^ u32::from(b)).wrapping_mul(0x1000_01b3);
        }
        MessageId {
            lane1: h1,
            lane2: h2,
        }
    }

    proptest::proptest! {
        #[test]
        fn pieces_and_pairs_give_the_id_of_the_whole(
            a in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
            b in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
            cut_a in 0usize..300,
            cut_b in 0usize..300,
        ) {
            let (cut_a, cut_b) = (cut_a.min(a.len()), cut_b.min(b.len()));
            proptest::prop_assert_eq!(MessageId::of(&a), reference(&a));
            let (mut x, mut y) = (MessageIdHasher::new(), MessageIdHasher::new());
            x.update_pair(&a[..cut_a], &mut y, &b[..cut_b]);
            x.update_pair(&a[cut_a..], &mut y, &b[cut_b..]);
            proptest::prop_assert_eq!(x.finish(), reference(&a));
            proptest::prop_assert_eq!(y.finish(), reference(&b));
            let mut z = MessageIdHasher::new();
            z.update(&a[..cut_a]);
            z.update(&a[cut_a..]);
            proptest::prop_assert_eq!(z.finish(), reference(&a));
        }
    }
}

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

impl MessageId {
    /// The id of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        let mut lane1: u32 = 0x811c_9dc5;
        let mut lane2: u32 = 0x0100_0193;
        for &b in bytes {
            lane1 = (lane1 ^ u32::from(b)).wrapping_mul(0x0100_0193);
            lane2 = (lane2 ^ u32::from(b)).wrapping_mul(0x1000_01b3);
        }
        Self { lane1, lane2 }
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
}

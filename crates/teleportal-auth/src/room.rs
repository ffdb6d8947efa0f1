//! Room-namespaced document ids that cannot collide across rooms (spec §15.3, fixed).
//!
//! The reference joins `<room>/<document>`, so room `a` with document `b/c` and room `a/b`
//! with document `c` share the id `a/b/c`: a token for one room reaches the other's document.
//! Here the room is length-prefixed instead:
//!
//! ```text
//! document_key(room, document) = <byte length of room, decimal> ":" <room> "/" <document>
//! ```
//!
//! `None` and `Some("")` are the same (no room, as an absent `room` claim reads as empty) and
//! give `0:/<document>`. Reading a key back is unambiguous: the digits before the first `:`
//! say how many bytes the room has, so the room ends at a known offset whatever it contains
//! (`/`, `%2F`, `../`, `:`, digits, any Unicode), and the rest after the separating `/` is the
//! document. Two different `(room, document)` pairs therefore never share a key, which a
//! property test checks. Nothing is normalized: look-alike Unicode names and `..` segments
//! stay distinct bytes and so distinct documents, and never climb out of their room.
//!
//! Every document of a server that uses rooms should go through this function, including
//! documents of room-less tokens: a plain name in the same key space could spell another
//! room's key (`3:abc/x`).

/// The server's internal id of `document` in `room`, injective over all pairs.
///
/// ```
/// use teleportal_auth::document_key;
///
/// assert_eq!(document_key(Some("acme"), "notes"), "4:acme/notes");
/// assert_eq!(document_key(None, "notes"), "0:/notes");
/// // The reference's collision is gone:
/// assert_ne!(document_key(Some("a"), "b/c"), document_key(Some("a/b"), "c"));
/// ```
pub fn document_key(room: Option<&str>, document: &str) -> String {
    let mut key = room_prefix(room);
    key.push_str(document);
    key
}

/// The part of [`document_key`] that depends on the room only (`<len>:<room>/`): every key
/// of the room starts with it, and no key of another room does.
///
/// ```
/// use teleportal_auth::{document_key, room_prefix};
///
/// let prefix = room_prefix(Some("acme"));
/// assert!(document_key(Some("acme"), "x").starts_with(&prefix));
/// assert!(!document_key(Some("acme/x"), "").starts_with(&prefix));
/// ```
pub fn room_prefix(room: Option<&str>) -> String {
    let room = room.unwrap_or_default();
    format!("{}:{room}/", room.len())
}

/// The `(room, document)` a key from [`document_key`] was made of (room `""` for none), or
/// `None` if `key` is not such a key.
///
/// ```
/// use teleportal_auth::{document_key, split_document_key};
///
/// let key = document_key(Some("a/b"), "c");
/// assert_eq!(split_document_key(&key), Some(("a/b", "c")));
/// assert_eq!(split_document_key("a/b/c"), None);
/// ```
pub fn split_document_key(key: &str) -> Option<(&str, &str)> {
    let (len, rest) = key.split_once(':')?;
    // Only the canonical decimal form, so that one pair has one key.
    if len.is_empty() || (len.len() > 1 && len.starts_with('0')) {
        return None;
    }
    if !len.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let len: usize = len.parse().ok()?;
    let room = rest.get(..len)?;
    let document = rest.get(len..)?.strip_prefix('/')?;
    Some((room, document))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Names built from the pieces that break naive joins.
    fn name() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just(String::new()),
            Just("/".to_owned()),
            Just("../".to_owned()),
            Just("%2F".to_owned()),
            Just("%".to_owned()),
            Just(":".to_owned()),
            Just("1".to_owned()),
            Just("0:".to_owned()),
            Just("a".to_owned()),
            Just("\u{0430}".to_owned()), // Cyrillic a, looks like Latin a
            Just("\u{2215}".to_owned()), // division slash, looks like /
            ".{0,3}",
        ];
        proptest::collection::vec(piece, 0..5).prop_map(|pieces| pieces.concat())
    }

    proptest! {
        #[test]
        fn distinct_pairs_never_share_a_key(
            a in (name(), name()),
            b in (name(), name()),
        ) {
            let key_a = document_key(Some(&a.0), &a.1);
            let key_b = document_key(Some(&b.0), &b.1);
            prop_assert_eq!(key_a == key_b, a == b);
        }

        #[test]
        fn key_splits_back_into_its_pair(room in name(), document in name()) {
            let key = document_key(Some(&room), &document);
            prop_assert_eq!(split_document_key(&key), Some((room.as_str(), document.as_str())));
        }
    }

    #[test]
    fn reference_collision_is_gone() {
        assert_ne!(
            document_key(Some("a"), "b/c"),
            document_key(Some("a/b"), "c")
        );
        assert_ne!(
            document_key(Some("a"), "../b/x"),
            document_key(Some("b"), "x")
        );
        assert_ne!(
            document_key(Some("a%2Fb"), "c"),
            document_key(Some("a/b"), "c")
        );
    }

    #[test]
    fn no_room_and_empty_room_are_the_same() {
        assert_eq!(document_key(None, "d"), document_key(Some(""), "d"));
        assert_eq!(document_key(None, ""), "0:/");
    }

    #[test]
    fn room_less_name_cannot_spell_a_room_key() {
        let roomed = document_key(Some("abc"), "x");
        assert_eq!(roomed, "3:abc/x");
        assert_ne!(document_key(None, &roomed), roomed);
    }

    #[test]
    fn non_canonical_lengths_do_not_split() {
        assert_eq!(split_document_key("01:a/b"), None);
        assert_eq!(split_document_key("+1:a/b"), None);
        assert_eq!(split_document_key(":a/b"), None);
        assert_eq!(split_document_key("9:a/b"), None);
        assert_eq!(split_document_key("1:ab"), None);
    }

    #[test]
    fn length_counts_bytes_so_unicode_rooms_split() {
        let key = document_key(Some("\u{00e9}"), "d");
        assert_eq!(key, "2:\u{00e9}/d");
        assert_eq!(split_document_key(&key), Some(("\u{00e9}", "d")));
    }
}

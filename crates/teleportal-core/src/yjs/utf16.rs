//! Yjs measures and cuts strings in UTF-16 code units (JavaScript's `length`); we keep them
//! as UTF-8 and count.

/// The UTF-16 length of `s`: one unit per character, two for those beyond the BMP.
pub(crate) fn len(s: &str) -> u64 {
    s.as_bytes()
        .iter()
        .map(|&b| u64::from(b & 0xc0 != 0x80) + u64::from(b >= 0xf0))
        .sum()
}

/// Where `units` UTF-16 units from the start of a string end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cut {
    /// Bytes of whole characters before the cut.
    pub(crate) byte_len: usize,
    /// The cut falls between the halves of a surrogate pair: the character at `byte_len`
    /// is split, its high half on the left.
    pub(crate) splits_pair: bool,
}

/// The cut after `units` UTF-16 units of `s`, or `None` if `s` is shorter.
pub(crate) fn cut(s: &str, units: u64) -> Option<Cut> {
    let bytes = s.as_bytes();
    let mut left = units;
    let mut i = 0;
    while left > 0 {
        let b = *bytes.get(i)?;
        let width = match b {
            0x00..=0x7f => 1,
            0xc0..=0xdf => 2,
            0xe0..=0xef => 3,
            _ => 4,
        };
        if width == 4 {
            if left == 1 {
                return Some(Cut {
                    byte_len: i,
                    splits_pair: true,
                });
            }
            left -= 2;
        } else {
            left -= 1;
        }
        i += width;
    }
    Some(Cut {
        byte_len: i,
        splits_pair: false,
    })
}

/// What JavaScript's `s.slice(units)` gives, encoded again as UTF-8: a low surrogate left
/// at the start becomes U+FFFD. `None` if `s` is shorter than `units`.
pub(crate) fn slice_from(s: &str, units: u64) -> Option<std::borrow::Cow<'_, str>> {
    let c = cut(s, units)?;
    if c.splits_pair {
        let mut owned = String::with_capacity(s.len() - c.byte_len);
        owned.push(char::REPLACEMENT_CHARACTER);
        owned.push_str(&s[c.byte_len + 4..]);
        Some(std::borrow::Cow::Owned(owned))
    } else {
        Some(std::borrow::Cow::Borrowed(&s[c.byte_len..]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_like_javascript() {
        assert_eq!(len("abc"), 3);
        assert_eq!(len("é"), 1);
        assert_eq!(len("€"), 1);
        assert_eq!(len("😀"), 2);
        assert_eq!(len("a😀b"), 4);
    }

    #[test]
    fn cuts_inside_a_pair_are_reported() {
        assert_eq!(
            cut("a😀b", 2),
            Some(Cut {
                byte_len: 1,
                splits_pair: true
            })
        );
        assert_eq!(
            cut("a😀b", 3),
            Some(Cut {
                byte_len: 5,
                splits_pair: false
            })
        );
        assert_eq!(cut("ab", 3), None);
        assert_eq!(slice_from("a😀b", 2).unwrap(), "\u{fffd}b");
        assert_eq!(slice_from("a😀b", 1).unwrap(), "😀b");
    }
}

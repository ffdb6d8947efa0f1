//! Topic ⇄ NATS subject: a reversible, collision-free encoding.
//!
//! Topics are arbitrary strings (`document/<id>` with any characters in the id), but NATS
//! subjects split on `.`, treat `*` and `>` as wildcards and cannot hold whitespace or empty
//! tokens. So a topic travels as **one** token: `t` followed by the topic's UTF-8 bytes in
//! unpadded base64url (RFC 4648 §5, alphabet `A–Z a–z 0–9 - _`), after the configured prefix:
//!
//! ```text
//! topic "document/room notes.v2"  →  subject "teleportal.tZG9jdW1lbnQvcm9vbSBub3Rlcy52Mg"
//! ```
//!
//! base64url is a bijection on byte strings, so distinct topics never share a subject and
//! [`subject_topic`] recovers the topic; the `t` keeps the token non-empty for the empty
//! topic. Every subject of the bus is one token below the prefix, so `<prefix>.>` covers them
//! all (the JetStream stream's subject) and no subscription can match another topic's frames.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The subject `topic` travels on under `prefix`.
///
/// ```
/// use teleportal_nats::{subject_topic, topic_subject};
///
/// let subject = topic_subject("teleportal", "document/a.b c");
/// assert_eq!(subject, "teleportal.tZG9jdW1lbnQvYS5iIGM");
/// assert_eq!(subject_topic("teleportal", &subject).as_deref(), Some("document/a.b c"));
/// ```
pub fn topic_subject(prefix: &str, topic: &str) -> String {
    format!("{prefix}.t{}", URL_SAFE_NO_PAD.encode(topic))
}

/// The topic a subject under `prefix` carries, or `None` when it is not one of the bus's.
pub fn subject_topic(prefix: &str, subject: &str) -> Option<String> {
    let token = subject.strip_prefix(prefix)?.strip_prefix(".t")?;
    let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
    String::from_utf8(bytes).ok()
}

/// Whether `prefix` is a valid literal subject: dot-separated, non-empty tokens without
/// wildcards or whitespace.
pub(crate) fn is_valid_prefix(prefix: &str) -> bool {
    prefix.split('.').all(|token| {
        !token.is_empty()
            && !token
                .chars()
                .any(|c| c.is_whitespace() || c == '*' || c == '>')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_round_trip_through_subjects() {
        for topic in [
            "",
            "document/x",
            "a.b",
            "a b",
            "*",
            ">",
            "doc/ü✓",
            "t",
            "..",
            "a\tb",
        ] {
            let subject = topic_subject("tp.bus", topic);
            assert_eq!(subject_topic("tp.bus", &subject).as_deref(), Some(topic));
            let token = subject.strip_prefix("tp.bus.").expect("under the prefix");
            assert!(
                !token.is_empty()
                    && token
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                "{topic:?} gave the token {token:?}"
            );
        }
    }

    #[test]
    fn distinct_topics_get_distinct_subjects() {
        let topics = [
            "doc.x", "doc/x", "doc_x", "doc x", "doc*", "doc>", "Doc", "doc", "",
        ];
        let mut subjects: Vec<String> = topics.iter().map(|t| topic_subject("p", t)).collect();
        subjects.sort();
        subjects.dedup();
        assert_eq!(subjects.len(), topics.len());
    }

    #[test]
    fn foreign_subjects_have_no_topic() {
        assert_eq!(subject_topic("p", "other.tYQ"), None);
        assert_eq!(subject_topic("p", "p.xYQ"), None);
        assert_eq!(subject_topic("p", "p.t*"), None);
    }

    #[test]
    fn prefixes_must_be_literal_subjects() {
        assert!(is_valid_prefix("teleportal"));
        assert!(is_valid_prefix("app.teleportal"));
        for bad in ["", "a..b", "a.", "a.*", "a.>", "a b"] {
            assert!(!is_valid_prefix(bad), "{bad:?}");
        }
    }
}

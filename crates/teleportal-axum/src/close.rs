//! The close frame that tells a client why the engine ended its connection.

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes};

/// WebSocket close codes are 16 bits and the reason at most 123 bytes of UTF-8 (RFC 6455 §5.5).
const MAX_CLOSE_REASON: usize = 123;

/// A close frame with `code` and `reason` (cut to what a close frame carries).
pub(crate) fn close_frame_with(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from(truncate_utf8(reason, MAX_CLOSE_REASON)),
    }))
}

/// The longest prefix of `s` within `max` bytes that ends on a character boundary.
fn truncate_utf8(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_frame_says_going_away_with_the_reason() {
        let reason = teleportal_server::CloseReason::ShuttingDown;
        let Message::Close(Some(close)) = close_frame_with(reason.code(), &reason.to_string())
        else {
            panic!("not a close frame");
        };
        assert_eq!(close.code, 1001);
        assert_eq!(close.reason.as_str(), "server is shutting down");
    }

    #[test]
    fn close_reason_is_cut_on_a_character_boundary() {
        let reason = "é".repeat(100);
        let cut = truncate_utf8(&reason, 123);
        assert_eq!(cut.len(), 122);
        assert!(cut.chars().all(|c| c == 'é'));
    }

    #[test]
    fn short_close_reason_is_kept_whole() {
        assert_eq!(
            truncate_utf8("server shutting down", 123),
            "server shutting down"
        );
    }
}

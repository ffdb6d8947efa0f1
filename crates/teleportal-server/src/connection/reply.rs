//! The frames a connection answers with: ACKs, NACKs and permission denials.

use teleportal_core::{AckMessage, DocMessage, Frame, Message, MessageId};

use super::permission_denied_reason;

/// The NACK text for a message past [`ServerConfig::max_message_size`](crate::ServerConfig)
/// (spec §7).
pub(crate) fn too_large(size: usize, max: usize) -> String {
    format!("message-too-large: {size} > {max} bytes")
}

pub(super) fn doc_frame(document: &str, doc: DocMessage) -> Frame {
    Frame::Message(Message::doc(document, doc))
}

pub(crate) fn ack(id: MessageId) -> Frame {
    Frame::Message(Message::ack(AckMessage::positive(id)))
}

pub(crate) fn nack(id: MessageId, error: impl Into<String>) -> Frame {
    Frame::Message(Message::ack(AckMessage::error(id, error)))
}

pub(super) fn denied(id: MessageId, document: &str) -> Vec<Frame> {
    let reason = permission_denied_reason(document);
    vec![
        doc_frame(
            document,
            DocMessage::Auth {
                allowed: false,
                reason: reason.clone(),
            },
        ),
        nack(id, reason),
    ]
}

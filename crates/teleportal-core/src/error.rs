//! The one error type of this crate.

/// Why bytes could not be decoded.
///
/// Small and `Copy`: rejecting garbage from the network must be cheap. Every decoder in this
/// crate returns it instead of panicking, whatever the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended inside a field.
    #[error("unexpected end of input while reading {field}")]
    UnexpectedEnd {
        /// The field being read.
        field: &'static str,
    },
    /// A length prefix declares more bytes than the input holds.
    #[error("{field} declares {declared} bytes but only {available} remain")]
    LengthExceedsInput {
        /// The field being read.
        field: &'static str,
        /// The declared length.
        declared: u64,
        /// The bytes left in the input.
        available: usize,
    },
    /// A variable-length integer is larger than 2^53 − 1 (the range lib0 supports).
    #[error("variable-length integer in {field} exceeds 2^53 - 1")]
    IntegerOverflow {
        /// The field being read.
        field: &'static str,
    },
    /// A string is not valid UTF-8.
    #[error("{field} is not valid UTF-8")]
    InvalidUtf8 {
        /// The field being read.
        field: &'static str,
    },
    /// The message does not start with the `YJS` magic.
    #[error("message does not start with the YJS magic")]
    BadMagic,
    /// The envelope's wire version is not 1.
    #[error("unsupported wire version {version}")]
    UnsupportedVersion {
        /// The version byte found.
        version: u8,
    },
    /// The envelope's message type is not one of doc, awareness, ack, presence, rpc.
    #[error("unknown message type {message_type}")]
    UnknownMessageType {
        /// The type byte found.
        message_type: u8,
    },
    /// A sub-type byte is out of range for its message.
    #[error("unknown {message} sub-type {sub_type}")]
    UnknownSubType {
        /// Which message's sub-type.
        message: &'static str,
        /// The sub-type found.
        sub_type: u64,
    },
    /// A lib0 `Any` tag outside 116..=127.
    #[error("unknown lib0 Any tag {tag:#04x}")]
    UnknownAnyTag {
        /// The tag byte found.
        tag: u8,
    },
    /// A lib0 `Any` nests deeper than this crate accepts.
    #[error("lib0 Any nests deeper than {max} levels")]
    NestingTooDeep {
        /// The accepted maximum depth.
        max: usize,
    },
    /// Presence data is not a plain object.
    #[error("presence data must be an object")]
    PresenceDataNotObject,
    /// A versioned structure carries a version this crate does not know.
    #[error("unsupported {structure} version {version}")]
    UnsupportedStructureVersion {
        /// Which structure.
        structure: &'static str,
        /// The version found.
        version: u64,
    },
    /// A JSON string inside the message is not valid JSON.
    #[error("{field} is not valid JSON")]
    InvalidJson {
        /// The field being read.
        field: &'static str,
    },
    /// A frame is larger than the configured limit.
    #[error("message of {size} bytes exceeds the limit of {max} bytes")]
    MessageTooLarge {
        /// The declared or actual size.
        size: u64,
        /// The configured maximum.
        max: usize,
    },
    /// A value is out of range for its field.
    #[error("{field} is out of range")]
    OutOfRange {
        /// The field being read.
        field: &'static str,
    },
}

/// An error and its causes ([`source`](std::error::Error::source) after source), joined by
/// `": "`: what a log line needs, since an error's own `Display` names only its layer.
///
/// ```
/// use teleportal_core::ErrorChain;
///
/// #[derive(Debug, thiserror::Error)]
/// #[error("storage failed")]
/// struct Storage(#[source] std::io::Error);
/// let error = Storage(std::io::Error::other("disk full"));
/// assert_eq!(ErrorChain::new(&error).to_string(), "storage failed: disk full");
///
/// // A layer that already prints its cause does not get it twice.
/// #[derive(Debug, thiserror::Error)]
/// #[error("protocol error: {0}")]
/// struct Loud(#[source] std::io::Error);
/// let error = Storage(std::io::Error::other(Loud(std::io::Error::other("reset"))));
/// assert_eq!(
///     ErrorChain::new(&error).to_string(),
///     "storage failed: protocol error: reset"
/// );
/// ```
#[derive(Clone, Copy)]
pub struct ErrorChain<'a>(&'a (dyn std::error::Error + 'a));

impl<'a> ErrorChain<'a> {
    /// The chain of `error` (pass `&*boxed` for a boxed error).
    pub fn new(error: &'a (dyn std::error::Error + 'a)) -> Self {
        ErrorChain(error)
    }
}

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut shown = self.0.to_string();
        f.write_str(&shown)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            let text = cause.to_string();
            // Some libraries (tungstenite, axum) print their cause in their own message and
            // also return it as the source: say it once.
            if !shown.ends_with(&text) {
                write!(f, ": {text}")?;
            }
            shown = text;
            source = cause.source();
        }
        Ok(())
    }
}

impl std::fmt::Debug for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

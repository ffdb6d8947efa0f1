//! Composable `Stream`/`Sink` layers that carry Teleportal messages over any transport.
//!
//! [`ws::WsFramed`] carries one message per binary WebSocket frame (spec §2, §21) over any
//! WebSocket library through [`ws::WsMessage`];
//! [`MaxMessageSize`] wraps any transport.
#![doc(test(attr(deny(warnings))))]
#![forbid(unsafe_code)]

mod error;
mod limit;
mod size;
pub mod ws;

pub use error::{BoxError, TransportError};
pub use limit::{MaxMessageSize, MaxMessageSizeLayer};
pub use size::EncodedLen;
pub use teleportal_core::codec::MessageArrayCodec;
pub use tower_layer::Layer;

//! Composable `Stream`/`Sink` layers that carry Teleportal messages over any transport.
//!
//! [`ws::WsFramed`] carries one message per binary WebSocket frame (spec §2, §21) over any
//! WebSocket library through [`ws::WsMessage`]; [`MaxMessageSize`], [`Inspect`] and
//! [`Metered`] wrap any transport.
#![doc(test(attr(deny(warnings))))]
#![forbid(unsafe_code)]

mod error;
mod inspect;
mod limit;
mod metrics;
mod size;
pub mod ws;

pub use error::{BoxError, TransportError};
pub use inspect::{Direction, Inspect, InspectLayer, Inspection};
pub use limit::{MaxMessageSize, MaxMessageSizeLayer};
pub use metrics::{Metered, MeteredLayer, MetricsSnapshot, TransportMetrics};
pub use size::EncodedLen;
pub use teleportal_core::codec::MessageArrayCodec;
pub use tower_layer::Layer;

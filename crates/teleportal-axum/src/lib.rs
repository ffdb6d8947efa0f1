//! An axum router that mounts a Teleportal server (WebSocket for Teleportal and `y-websocket`
//! clients, HTTP and SSE transports).
//!
//! This crate will be filled by the server issue. Until then it names the ping frame a
//! WebSocket handler answers.
//!
//! ```
//! assert_eq!(&teleportal_axum::PING, b"YJSping");
//! ```
#![doc(test(attr(deny(warnings))))]
#![forbid(unsafe_code)]

pub use teleportal_core::frame::{PING, PONG};

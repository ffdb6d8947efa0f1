//! The engine that drives Teleportal sessions, over any transport.
//!
//! A [`Server`] keeps one session per open document — created when a client first touches the
//! document, dropped after [`ServerConfig::idle_timeout`] without clients — and never holds a
//! whole `Y.Doc`: updates go to a [`DocumentStore`](teleportal_storage::DocumentStore) as
//! encoded bytes and sync answers come from it. Transports (WebSocket, MessageArray over a
//! byte stream, HTTP) hand each connection's messages to [`serve`] (Teleportal protocol) or
//! [`serve_y_protocols`] (standard y-websocket clients).
#![doc(test(attr(deny(warnings))))]
#![forbid(unsafe_code)]

mod config;
mod permission;

pub use config::ServerConfig;
pub use permission::{Access, AllowAll, PermissionChecker};
pub use teleportal_core::{Frame, Message, YMessage};

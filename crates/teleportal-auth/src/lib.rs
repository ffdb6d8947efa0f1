//! Authentication and authorization for Teleportal servers.
//!
//! ```
//! use teleportal_auth::{DocumentAccess, Permission, TokenConfig, has_document_permission};
//!
//! // The application backend mints a token for a user...
//! let config = TokenConfig::new("shared-secret");
//! let access = vec![DocumentAccess::new("room-1/*", &[Permission::Read, Permission::Write])];
//! let now = 1_700_000_000;
//! let token = config.mint(&config.claims("alice", "room-1", Some(access), now))?;
//!
//! // ...and the sync server verifies it on connect and checks each document it touches.
//! let claims = config.verify(&token, now + 60)?;
//! assert_eq!(claims.user_id, "alice");
//! assert!(has_document_permission(&claims, "room-1/notes", Permission::Write));
//! assert!(!has_document_permission(&claims, "room-2/notes", Permission::Read));
//! # Ok::<(), teleportal_auth::AuthError>(())
//! ```
//!
//! # Why this shape
//!
//! Tokens are the reference's HS256 JWTs, byte for byte (spec §15.1), so a Rust server accepts
//! tokens minted by an existing TypeScript backend and the other way round; RS256, ES256 and
//! EdDSA are there for teams that keep the signing key off sync servers. Each configuration
//! pins one algorithm, so `alg: none` and algorithm confusion are refused up front. Verification
//! takes the current time as an argument instead of reading the clock, which keeps it
//! deterministic in tests and lets a server use one cached clock per connection burst.
//! Every rejection is its own [`AuthError`] variant so servers can tell expired tokens
//! (refresh and retry) from forged ones (log and alert).
//!
//! Rooms get collision-free internal document ids from [`document_key`] (the reference's
//! `room/doc` join lets two rooms name the same document). Rate limits ([`rate_limit`]) are
//! counters plus a transport layer, so they sit in front of any engine and answer with the
//! spec's `retryAfter` NACK themselves.
//!
//! # Features
//! - `server`: [`TokenPermissionChecker`], the `teleportal-server` permission hook fed by
//!   verified claims. This crate depends on the server, never the reverse.
//! - `redis`: `RedisRateLimiter`, the rate-limit rules with counters in Redis shared by
//!   every node (one atomic script per message).
#![doc(test(attr(deny(warnings))))]
#![forbid(unsafe_code)]

#[cfg(feature = "server")]
mod checker;
mod error;
mod permission;
pub mod rate_limit;
mod room;
pub mod token;

#[cfg(feature = "server")]
pub use checker::TokenPermissionChecker;
pub use error::AuthError;
pub use permission::{Permission, has_document_permission};
#[cfg(feature = "redis")]
pub use rate_limit::RedisRateLimiter;
#[cfg(feature = "server")]
pub use rate_limit::{HeldBack, RateLimitLayer};
pub use rate_limit::{
    MemoryRateLimiter, RateLimitAlgorithm, RateLimitCheck, RateLimitExceeded, RateLimitKey,
    RateLimitRule, RateLimited, RateLimiter,
};
pub use room::{document_key, room_prefix, split_document_key};
pub use token::{
    DEFAULT_ISSUER, DEFAULT_LIFETIME_SECS, DocumentAccess, TokenAlgorithm, TokenClaims, TokenConfig,
};
pub use tower_layer::Layer;

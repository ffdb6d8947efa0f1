//! Authentication and authorization for Teleportal servers.
//!
//! This crate will hold JWT verification with document patterns and rooms, permission
//! checkers and rate limits (see the auth issue).
//!
//! ```
//! assert_eq!(teleportal_auth::DEFAULT_ISSUER, "teleportal");
//! ```
#![doc(test(attr(deny(warnings))))]

/// The issuer and audience the reference puts in tokens by default.
pub const DEFAULT_ISSUER: &str = "teleportal";

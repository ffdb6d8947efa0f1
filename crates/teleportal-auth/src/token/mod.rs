//! Teleportal access tokens: JWTs with the reference's claims (spec §15.1).
//!
//! A token is minted by an application backend holding the key and verified by the sync
//! server on connect; the verified claims become the connection's context (`userId`, `room`,
//! `documentAccess`).
//!
//! HS256 with a shared secret is the reference's algorithm and the default. Teams that keep
//! the signing key away from sync servers can use RS256, ES256 (P-256) or EdDSA (Ed25519):
//! the server then holds only the public key (PEM) and can verify but not mint.
//!
//! Wire details that matter for interoperability, all pinned by shared test vectors:
//!
//! * the header is exactly `{"alg":"HS256"}` (no `typ`; likewise `RS256`, `ES256`, `EdDSA`);
//! * the claims appear in the order `userId, room, documentAccess, exp, iat, iss, aud`,
//!   so a token minted here from the same inputs is byte-identical to the reference's;
//! * a verifier accepts its one configured algorithm only (never `none`, never HS256 against
//!   an RSA key or the other way round, which closes the classic algorithm-confusion attack)
//!   and checks the signature, `iss`, `aud`, `exp` and, when present, `nbf`.
//!
//! Time is always an argument (`now`, seconds since the Unix epoch) rather than read from the
//! system clock, so tests and vectors are deterministic and servers can use a cached clock.

mod algorithm;
mod claims;
mod config;
mod keys;
#[cfg(test)]
mod tests;
mod verify;

pub use algorithm::TokenAlgorithm;
pub use claims::{DocumentAccess, TokenClaims};
pub use config::TokenConfig;

/// The issuer and audience the reference puts in tokens by default.
pub const DEFAULT_ISSUER: &str = "teleportal";

/// The lifetime of a minted token unless configured otherwise: one hour, as in the reference.
pub const DEFAULT_LIFETIME_SECS: u64 = 3600;

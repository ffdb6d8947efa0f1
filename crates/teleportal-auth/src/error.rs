//! The crate's one error type.

/// Why a token was refused (or, rarely, could not be minted).
///
/// Every rejection reason has its own variant so that a server can log and count them apart;
/// what it tells the client is its own choice (the reference answers every failure alike).
/// Variants carry what the caller acts on: the expected issuer or audience, the offending
/// algorithm, the timestamps compared.
///
/// ```
/// use teleportal_auth::{AuthError, TokenConfig};
///
/// let token = TokenConfig::new("secret").mint(
///     &TokenConfig::new("secret").claims("alice", "", None, 1_700_000_000),
/// )?;
/// // Checked one hour and one second later (the default lifetime is one hour).
/// let err = TokenConfig::new("secret").verify(&token, 1_700_003_601).unwrap_err();
/// assert!(matches!(err, AuthError::Expired { exp: 1_700_003_600, .. }));
/// # Ok::<(), AuthError>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The token is not a well-formed compact JWT with the expected claims: wrong number of
    /// segments, bad base64url, JSON that is not an object, a claim of the wrong type, or a
    /// `crit` header (no extension is understood, so RFC 7515 §4.1.11 requires refusing it).
    #[error("malformed token: {reason}")]
    Malformed {
        /// What was wrong, for logs.
        reason: &'static str,
    },
    /// The header says `alg: none` (any casing): an unsigned token, never accepted.
    #[error("token is unsigned (alg none)")]
    UnsignedToken,
    /// The header names an algorithm other than the configured one: HS512 against HS256 as
    /// in the reference's vectors, or HS256 against an RS256 public key (the algorithm
    /// confusion attack, where the public key would be used as an HMAC secret).
    #[error("token algorithm {alg:?} is not allowed (only {expected} is)")]
    AlgorithmNotAllowed {
        /// The `alg` header value as sent.
        alg: String,
        /// The configured algorithm.
        expected: &'static str,
    },
    /// The signature does not match: a different key, an altered header or payload, or an
    /// altered signature. These are one variant on purpose: a MAC or signature check cannot
    /// tell which part changed, and a verifier that claimed to would be guessing.
    #[error("token signature verification failed")]
    BadSignature,
    /// `exp` is at or before `now` (minus the configured leeway).
    #[error("token expired at {exp} (now {now})")]
    Expired {
        /// The token's `exp` claim, in seconds since the Unix epoch.
        exp: u64,
        /// The time the token was checked at.
        now: u64,
    },
    /// `nbf` is after `now` (plus the configured leeway).
    #[error("token not valid before {nbf} (now {now})")]
    NotYetValid {
        /// The token's `nbf` claim, in seconds since the Unix epoch.
        nbf: u64,
        /// The time the token was checked at.
        now: u64,
    },
    /// The `iss` claim is not the configured issuer.
    #[error("token issuer is not {expected:?}")]
    WrongIssuer {
        /// The issuer this verifier accepts.
        expected: String,
    },
    /// The `aud` claim is not (or does not contain) the configured audience.
    #[error("token audience is not {expected:?}")]
    WrongAudience {
        /// The audience this verifier accepts.
        expected: String,
    },
    /// A claim the verifier requires (`exp`, `iss` or `aud`) is absent.
    #[error("token has no {claim:?} claim")]
    MissingClaim {
        /// The claim's name.
        claim: &'static str,
    },
    /// A PEM key could not be read as a key of the configured algorithm.
    #[error("invalid {algorithm} key: {reason}")]
    InvalidKey {
        /// The algorithm the key was meant for.
        algorithm: &'static str,
        /// What the key parser reported.
        reason: String,
    },
    /// [`TokenConfig::mint`](crate::TokenConfig::mint) on a verifier that holds only a
    /// public key.
    #[error("no {algorithm} signing key configured")]
    NoSigningKey {
        /// The configured algorithm.
        algorithm: &'static str,
    },
    /// A rate-limit backend (Redis) failed.
    #[error("{backend} rate-limit backend failed")]
    Backend {
        /// Which backend.
        backend: &'static str,
        /// What it reported.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Signing failed. With an HMAC key and the claim types of this crate this does not
    /// happen; the variant exists so that minting never panics.
    #[error("could not sign the token")]
    Signing {
        /// What the JWT library reported.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

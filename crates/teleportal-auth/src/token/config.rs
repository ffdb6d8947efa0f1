//! [`TokenConfig`]: one key and one pinned algorithm, its settings, and minting tokens with it.

use jsonwebtoken::{DecodingKey, EncodingKey, Header};

use super::{DEFAULT_ISSUER, DEFAULT_LIFETIME_SECS, DocumentAccess, TokenAlgorithm, TokenClaims};
use crate::AuthError;

/// Mints and verifies tokens with one key and one pinned algorithm.
///
/// [`new`](Self::new) takes an HS256 shared secret (mint and verify);
/// [`rs256`](Self::rs256), [`es256`](Self::es256) and [`eddsa`](Self::eddsa) take a public key
/// in PEM (verify only) and [`with_signing_key`](Self::with_signing_key) adds the private key
/// for minting. Defaults follow the reference: issuer and audience [`DEFAULT_ISSUER`], a lifetime of
/// [`DEFAULT_LIFETIME_SECS`] and no clock leeway. `Debug` never prints the secret.
///
/// ```
/// use teleportal_auth::{DocumentAccess, Permission, TokenConfig};
///
/// let config = TokenConfig::new("test-secret-please-change");
/// let access = vec![DocumentAccess::new("room-1/*", &[Permission::Read])];
/// let claims = config.claims("user-alice", "room-1", Some(access), 1_700_000_000);
/// let token = config.mint(&claims)?;
/// assert!(token.starts_with("eyJhbGciOiJIUzI1NiJ9.")); // {"alg":"HS256"}
///
/// let verified = config.verify(&token, 1_700_000_100)?;
/// assert_eq!(verified, claims);
/// assert_eq!(verified.exp, 1_700_003_600);
/// # Ok::<(), teleportal_auth::AuthError>(())
/// ```
#[derive(Clone)]
pub struct TokenConfig {
    pub(super) algorithm: TokenAlgorithm,
    /// `None` for a verifier holding only a public key.
    pub(super) encoding: Option<EncodingKey>,
    pub(super) decoding: DecodingKey,
    pub(super) issuer: String,
    pub(super) audience: String,
    lifetime: u64,
    pub(super) leeway: u64,
}

impl std::fmt::Debug for TokenConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenConfig")
            .field("algorithm", &self.algorithm)
            .field("key", &"[redacted]")
            .field("can_mint", &self.encoding.is_some())
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("lifetime", &self.lifetime)
            .field("leeway", &self.leeway)
            .finish()
    }
}

impl TokenConfig {
    pub(super) fn with_keys(
        algorithm: TokenAlgorithm,
        encoding: Option<EncodingKey>,
        decoding: DecodingKey,
    ) -> Self {
        Self {
            algorithm,
            encoding,
            decoding,
            issuer: DEFAULT_ISSUER.to_owned(),
            audience: DEFAULT_ISSUER.to_owned(),
            lifetime: DEFAULT_LIFETIME_SECS,
            leeway: 0,
        }
    }

    /// The one algorithm this configuration mints and accepts.
    pub fn algorithm(&self) -> TokenAlgorithm {
        self.algorithm
    }

    /// Sets the issuer written by [`claims`](Self::claims) and required by
    /// [`verify`](Self::verify).
    #[must_use]
    pub fn with_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = issuer.into();
        self
    }

    /// Sets the audience written by [`claims`](Self::claims) and required by
    /// [`verify`](Self::verify).
    #[must_use]
    pub fn with_audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = audience.into();
        self
    }

    /// Sets how long tokens from [`claims`](Self::claims) stay valid, in seconds.
    #[must_use]
    pub fn with_lifetime(mut self, seconds: u64) -> Self {
        self.lifetime = seconds;
        self
    }

    /// Tolerates clocks this many seconds apart when checking `exp` and `nbf` (default 0, as
    /// jose's `clockTolerance` in the reference).
    #[must_use]
    pub fn with_leeway(mut self, seconds: u64) -> Self {
        self.leeway = seconds;
        self
    }

    /// The issuer tokens are minted with and must carry.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The audience tokens are minted with and must carry.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The lifetime of minted tokens, in seconds.
    pub fn lifetime(&self) -> u64 {
        self.lifetime
    }

    /// The claims the reference's `generateToken` would sign at time `now`: `iat = now`,
    /// `exp = now + lifetime` and this configuration's issuer and audience.
    pub fn claims(
        &self,
        user_id: impl Into<String>,
        room: impl Into<String>,
        document_access: Option<Vec<DocumentAccess>>,
        now: u64,
    ) -> TokenClaims {
        TokenClaims {
            user_id: user_id.into(),
            room: room.into(),
            document_access,
            exp: now.saturating_add(self.lifetime),
            iat: Some(now),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
        }
    }

    /// Signs `claims` as a compact JWT with header `{"alg":"<algorithm>"}`.
    ///
    /// The claims are signed as given (their `iss`/`aud` need not match this configuration).
    ///
    /// # Errors
    /// [`AuthError::NoSigningKey`] for a verifier without a private key;
    /// [`AuthError::Signing`] if the JWT library fails, which it does not for HMAC keys.
    pub fn mint(&self, claims: &TokenClaims) -> Result<String, AuthError> {
        let Some(encoding) = &self.encoding else {
            return Err(AuthError::NoSigningKey {
                algorithm: self.algorithm.as_str(),
            });
        };
        // The reference's header has no `typ`; jsonwebtoken adds `"typ":"JWT"` by default.
        let mut header = Header::new(self.algorithm.to_jwt());
        header.typ = None;
        jsonwebtoken::encode(&header, claims, encoding).map_err(|e| AuthError::Signing {
            source: Box::new(e),
        })
    }
}

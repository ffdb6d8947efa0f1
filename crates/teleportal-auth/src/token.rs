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

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::AuthError;

/// The issuer and audience the reference puts in tokens by default.
pub const DEFAULT_ISSUER: &str = "teleportal";

/// The lifetime of a minted token unless configured otherwise: one hour, as in the reference.
pub const DEFAULT_LIFETIME_SECS: u64 = 3600;

/// The signature algorithms a [`TokenConfig`] can be pinned to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenAlgorithm {
    /// HMAC-SHA256 with a shared secret: the reference's algorithm.
    Hs256,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// ECDSA on P-256 with SHA-256.
    Es256,
    /// Ed25519.
    EdDsa,
}

impl TokenAlgorithm {
    /// The `alg` header value, as RFC 7518 spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenAlgorithm::Hs256 => "HS256",
            TokenAlgorithm::Rs256 => "RS256",
            TokenAlgorithm::Es256 => "ES256",
            TokenAlgorithm::EdDsa => "EdDSA",
        }
    }

    fn to_jwt(self) -> Algorithm {
        match self {
            TokenAlgorithm::Hs256 => Algorithm::HS256,
            TokenAlgorithm::Rs256 => Algorithm::RS256,
            TokenAlgorithm::Es256 => Algorithm::ES256,
            TokenAlgorithm::EdDsa => Algorithm::EdDSA,
        }
    }
}

/// One `documentAccess` entry: a document-name pattern and the permissions it grants.
///
/// A pattern starting with `!` is an exclusion (its permissions are ignored). Permissions are
/// kept as the strings the token carries (`read`, `write`, `comment`, `suggest`, `admin`); a
/// name this crate does not know is preserved and simply grants nothing, as in the reference,
/// which never validates them. See [`has_document_permission`](crate::has_document_permission).
///
/// ```
/// use teleportal_auth::{DocumentAccess, Permission};
///
/// let access = DocumentAccess::new("room-1/*", &[Permission::Read, Permission::Write]);
/// assert_eq!(access.permissions, ["read", "write"]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentAccess {
    /// The document-name pattern (spec §15.2).
    pub pattern: String,
    /// The permissions granted on matching documents.
    pub permissions: Vec<String>,
}

impl DocumentAccess {
    /// An entry granting `permissions` on documents matching `pattern`.
    pub fn new(pattern: impl Into<String>, permissions: &[crate::Permission]) -> Self {
        Self {
            pattern: pattern.into(),
            permissions: permissions.iter().map(|p| p.as_str().to_owned()).collect(),
        }
    }
}

/// The claims of a Teleportal token, in wire order.
///
/// Serialization writes the fields in declaration order with the reference's camelCase names;
/// `documentAccess` and `iat` are left out when `None`. Deserialization ignores claims it does
/// not know (`nbf` is checked by [`TokenConfig::verify`] but not kept).
///
/// ```
/// use teleportal_auth::TokenClaims;
///
/// let claims = TokenClaims {
///     user_id: "alice".into(),
///     room: "room-1".into(),
///     document_access: None,
///     exp: 1_700_003_600,
///     iat: Some(1_700_000_000),
///     iss: "teleportal".into(),
///     aud: "teleportal".into(),
/// };
/// assert_eq!(
///     serde_json::to_string(&claims)?,
///     r#"{"userId":"alice","room":"room-1","exp":1700003600,"iat":1700000000,"iss":"teleportal","aud":"teleportal"}"#
/// );
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenClaims {
    /// Who the token was issued to.
    pub user_id: String,
    /// The room (tenant) the connection belongs to; empty for none. A non-empty room prefixes
    /// every document id inside the server (`<room>/<document>`, spec §15.3). Absent in the
    /// token reads as empty.
    #[serde(default)]
    pub room: String,
    /// Which documents the token grants what on. `None` (claim absent) allows everything;
    /// `Some(vec![])` allows nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_access: Option<Vec<DocumentAccess>>,
    /// Expiry, in seconds since the Unix epoch. Required: a token without one is refused.
    pub exp: u64,
    /// Issue time, in seconds since the Unix epoch. Informative only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// The issuer; must equal the verifier's.
    pub iss: String,
    /// The audience; must equal the verifier's.
    pub aud: String,
}

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
    algorithm: TokenAlgorithm,
    /// `None` for a verifier holding only a public key.
    encoding: Option<EncodingKey>,
    decoding: DecodingKey,
    issuer: String,
    audience: String,
    lifetime: u64,
    leeway: u64,
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
    /// A configuration signing and verifying with `secret` (the UTF-8 bytes of a string
    /// secret, as the reference uses them), with the reference's defaults.
    pub fn new(secret: impl AsRef<[u8]>) -> Self {
        let secret = secret.as_ref();
        Self::with_keys(
            TokenAlgorithm::Hs256,
            Some(EncodingKey::from_secret(secret)),
            DecodingKey::from_secret(secret),
        )
    }

    /// A verifier for RS256 tokens signed by the private half of `public_pem` (a PEM
    /// `PUBLIC KEY` or `RSA PUBLIC KEY`).
    ///
    /// # Errors
    /// [`AuthError::InvalidKey`] if the PEM is not an RSA public key.
    pub fn rs256(public_pem: impl AsRef<[u8]>) -> Result<Self, AuthError> {
        let decoding = DecodingKey::from_rsa_pem(public_pem.as_ref())
            .map_err(|e| invalid_key(TokenAlgorithm::Rs256, e))?;
        Ok(Self::with_keys(TokenAlgorithm::Rs256, None, decoding))
    }

    /// A verifier for ES256 tokens signed by the private half of `public_pem` (a PEM P-256
    /// `PUBLIC KEY`).
    ///
    /// # Errors
    /// [`AuthError::InvalidKey`] if the PEM is not an EC public key.
    pub fn es256(public_pem: impl AsRef<[u8]>) -> Result<Self, AuthError> {
        let decoding = DecodingKey::from_ec_pem(public_pem.as_ref())
            .map_err(|e| invalid_key(TokenAlgorithm::Es256, e))?;
        Ok(Self::with_keys(TokenAlgorithm::Es256, None, decoding))
    }

    /// A verifier for EdDSA tokens signed by the private half of `public_pem` (a PEM Ed25519
    /// `PUBLIC KEY`).
    ///
    /// # Errors
    /// [`AuthError::InvalidKey`] if the PEM is not an Ed25519 public key.
    pub fn eddsa(public_pem: impl AsRef<[u8]>) -> Result<Self, AuthError> {
        let decoding = DecodingKey::from_ed_pem(public_pem.as_ref())
            .map_err(|e| invalid_key(TokenAlgorithm::EdDsa, e))?;
        Ok(Self::with_keys(TokenAlgorithm::EdDsa, None, decoding))
    }

    /// Adds the private key (PEM, PKCS#8 `PRIVATE KEY`; PKCS#1 `RSA PRIVATE KEY` also for
    /// RS256) so that [`mint`](Self::mint) works on an asymmetric configuration. For HS256
    /// the secret given to [`new`](Self::new) already signs; this replaces nothing there and
    /// fails.
    ///
    /// The key pair is not cross-checked here: a mismatched pair mints tokens that
    /// [`verify`](Self::verify) refuses with [`AuthError::BadSignature`].
    ///
    /// # Errors
    /// [`AuthError::InvalidKey`] if the PEM is not a private key of this algorithm.
    pub fn with_signing_key(mut self, private_pem: impl AsRef<[u8]>) -> Result<Self, AuthError> {
        let pem = private_pem.as_ref();
        let key = match self.algorithm {
            TokenAlgorithm::Hs256 => {
                return Err(AuthError::InvalidKey {
                    algorithm: "HS256",
                    reason: "HS256 signs with the shared secret given to TokenConfig::new".into(),
                });
            }
            TokenAlgorithm::Rs256 => EncodingKey::from_rsa_pem(pem),
            TokenAlgorithm::Es256 => EncodingKey::from_ec_pem(pem),
            TokenAlgorithm::EdDsa => EncodingKey::from_ed_pem(pem),
        }
        .map_err(|e| invalid_key(self.algorithm, e))?;
        self.encoding = Some(key);
        Ok(self)
    }

    fn with_keys(
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

    /// Verifies `token` at time `now` (seconds since the Unix epoch) and returns its claims.
    ///
    /// Checks, in order: the shape and the `alg` header (`none` refused as
    /// [`AuthError::UnsignedToken`], any algorithm but the configured one as
    /// [`AuthError::AlgorithmNotAllowed`]), the signature, the
    /// presence of `exp`, `iss` and `aud`, the issuer, the audience, `exp > now` and, when
    /// present, `nbf <= now` (both widened by the leeway), and finally the claim types.
    ///
    /// # Errors
    /// One [`AuthError`] variant per reason; see its documentation.
    pub fn verify(&self, token: &str, now: u64) -> Result<TokenClaims, AuthError> {
        check_header(token, self.algorithm)?;
        let mut validation = Validation::new(self.algorithm.to_jwt());
        // jsonwebtoken would compare exp/nbf with the system clock: we do it against `now`.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        let data = jsonwebtoken::decode::<Value>(token, &self.decoding, &validation)
            .map_err(|e| self.map_error(e.kind()))?;
        let payload = data.claims;

        let claims: TokenClaims =
            serde_json::from_value(payload.clone()).map_err(|_| AuthError::Malformed {
                reason: "claims do not have the token claim types",
            })?;
        if claims.exp.saturating_add(self.leeway) <= now {
            return Err(AuthError::Expired {
                exp: claims.exp,
                now,
            });
        }
        if let Some(nbf) = payload.get("nbf") {
            let nbf = nbf.as_u64().ok_or(AuthError::Malformed {
                reason: "nbf is not a whole number of seconds",
            })?;
            if nbf > now.saturating_add(self.leeway) {
                return Err(AuthError::NotYetValid { nbf, now });
            }
        }
        Ok(claims)
    }

    fn map_error(&self, kind: &ErrorKind) -> AuthError {
        match kind {
            ErrorKind::InvalidSignature => AuthError::BadSignature,
            ErrorKind::InvalidIssuer => AuthError::WrongIssuer {
                expected: self.issuer.clone(),
            },
            ErrorKind::InvalidAudience => AuthError::WrongAudience {
                expected: self.audience.clone(),
            },
            ErrorKind::MissingRequiredClaim(claim) => match claim.as_str() {
                "exp" => AuthError::MissingClaim { claim: "exp" },
                "iss" => AuthError::MissingClaim { claim: "iss" },
                "aud" => AuthError::MissingClaim { claim: "aud" },
                _ => AuthError::Malformed {
                    reason: "a required claim is missing",
                },
            },
            // `check_header` already refused every other algorithm; kept for safety.
            ErrorKind::InvalidAlgorithm => AuthError::AlgorithmNotAllowed {
                alg: String::from("(rejected by the JWT library)"),
                expected: self.algorithm.as_str(),
            },
            // The signature segment does not even decode as one of this algorithm's (e.g. an
            // ECDSA signature of the wrong length): as good as a wrong signature.
            ErrorKind::InvalidEcdsaKey
            | ErrorKind::InvalidEddsaKey
            | ErrorKind::InvalidRsaKey(_) => AuthError::BadSignature,
            ErrorKind::Base64(_) => AuthError::Malformed {
                reason: "a segment is not base64url",
            },
            ErrorKind::Json(_) | ErrorKind::Utf8(_) => AuthError::Malformed {
                reason: "header or claims are not a JSON object",
            },
            _ => AuthError::Malformed {
                reason: "not a compact JWS",
            },
        }
    }
}

fn invalid_key(algorithm: TokenAlgorithm, error: jsonwebtoken::errors::Error) -> AuthError {
    AuthError::InvalidKey {
        algorithm: algorithm.as_str(),
        reason: error.to_string(),
    }
}

/// Refuses what jsonwebtoken cannot name or would not refuse itself: anything but three
/// segments, `alg: none` (which jsonwebtoken cannot even parse, so checking here gives it its
/// own error), an `alg` other than the configured one and a `crit` header.
fn check_header(token: &str, expected: TokenAlgorithm) -> Result<(), AuthError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::Malformed {
            reason: "not three dot-separated segments",
        });
    };
    let header = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| AuthError::Malformed {
            reason: "header is not base64url",
        })?;
    let header: serde_json::Map<String, Value> =
        serde_json::from_slice(&header).map_err(|_| AuthError::Malformed {
            reason: "header is not a JSON object",
        })?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(AuthError::Malformed {
            reason: "header has no alg",
        })?;
    // RFC 7518 spells it `none`; refuse every casing, as some libraries accept `None`.
    if alg.eq_ignore_ascii_case("none") {
        return Err(AuthError::UnsignedToken);
    }
    if alg != expected.as_str() {
        return Err(AuthError::AlgorithmNotAllowed {
            alg: alg.to_owned(),
            expected: expected.as_str(),
        });
    }
    if header.contains_key("crit") {
        return Err(AuthError::Malformed {
            reason: "crit header parameter is not supported",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Permission;

    const SECRET: &str = "test-secret-please-change";
    const NOW: u64 = 1_700_000_000;

    fn config() -> TokenConfig {
        TokenConfig::new(SECRET)
    }

    fn example_claims() -> TokenClaims {
        config().claims(
            "user-alice",
            "room-1",
            Some(vec![
                DocumentAccess::new("room-1/*", &[Permission::Read, Permission::Write]),
                DocumentAccess::new("!room-1/private", &[]),
            ]),
            NOW,
        )
    }

    fn b64(json: &str) -> String {
        URL_SAFE_NO_PAD.encode(json)
    }

    /// A token with the given header and payload JSON, signed with HS256 over `SECRET`
    /// whatever the header says.
    fn signed(header: &str, payload: &str) -> String {
        let message = format!("{}.{}", b64(header), b64(payload));
        let key = EncodingKey::from_secret(SECRET.as_bytes());
        let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &key, Algorithm::HS256)
            .expect("HMAC signing does not fail");
        format!("{message}.{signature}")
    }

    #[test]
    fn minted_token_matches_reference_bytes() {
        let token = config().mint(&example_claims()).unwrap();
        assert_eq!(
            token,
            "eyJhbGciOiJIUzI1NiJ9.eyJ1c2VySWQiOiJ1c2VyLWFsaWNlIiwicm9vbSI6InJvb20tMSIsImRvY3VtZW50QWNjZXNzIjpbeyJwYXR0ZXJuIjoicm9vbS0xLyoiLCJwZXJtaXNzaW9ucyI6WyJyZWFkIiwid3JpdGUiXX0seyJwYXR0ZXJuIjoiIXJvb20tMS9wcml2YXRlIiwicGVybWlzc2lvbnMiOltdfV0sImV4cCI6MTcwMDAwMzYwMCwiaWF0IjoxNzAwMDAwMDAwLCJpc3MiOiJ0ZWxlcG9ydGFsIiwiYXVkIjoidGVsZXBvcnRhbCJ9.bYyYEDMfMUP_5M9Uc8NlN-NJ2yMLA2SjokOckJW-lnM"
        );
    }

    #[test]
    fn minted_token_verifies_to_its_claims() {
        let claims = example_claims();
        let token = config().mint(&claims).unwrap();
        assert_eq!(config().verify(&token, NOW).unwrap(), claims);
    }

    #[test]
    fn token_is_valid_until_the_second_before_exp() {
        let token = config().mint(&example_claims()).unwrap();
        assert!(config().verify(&token, NOW + 3599).is_ok());
    }

    #[test]
    fn token_at_exp_is_expired() {
        let token = config().mint(&example_claims()).unwrap();
        let err = config().verify(&token, NOW + 3600).unwrap_err();
        assert!(matches!(
            err,
            AuthError::Expired {
                exp: 1_700_003_600,
                now: 1_700_003_600
            }
        ));
    }

    #[test]
    fn leeway_extends_expiry() {
        let token = config().mint(&example_claims()).unwrap();
        assert!(config().with_leeway(5).verify(&token, NOW + 3604).is_ok());
    }

    #[test]
    fn wrong_secret_is_a_bad_signature() {
        let token = config().mint(&example_claims()).unwrap();
        let err = TokenConfig::new("wrong").verify(&token, NOW).unwrap_err();
        assert!(matches!(err, AuthError::BadSignature));
    }

    #[test]
    fn tampered_payload_is_a_bad_signature() {
        let token = config().mint(&example_claims()).unwrap();
        let mut claims = example_claims();
        claims.user_id = "mallory".into();
        let forged = config().mint(&claims).unwrap();
        let mut parts: Vec<&str> = forged.split('.').collect();
        parts[2] = token.split('.').nth(2).unwrap();
        let err = config().verify(&parts.join("."), NOW).unwrap_err();
        assert!(matches!(err, AuthError::BadSignature));
    }

    #[test]
    fn wrong_audience_is_refused() {
        let token = config().mint(&example_claims()).unwrap();
        let err = config().with_audience("x").verify(&token, NOW).unwrap_err();
        assert!(matches!(err, AuthError::WrongAudience { expected } if expected == "x"));
    }

    #[test]
    fn wrong_issuer_is_refused() {
        let token = config().mint(&example_claims()).unwrap();
        let err = config()
            .with_issuer("other")
            .verify(&token, NOW)
            .unwrap_err();
        assert!(matches!(err, AuthError::WrongIssuer { expected } if expected == "other"));
    }

    #[test]
    fn alg_none_is_refused() {
        let payload = serde_json::to_string(&example_claims()).unwrap();
        let token = format!("{}.{}.", b64(r#"{"alg":"none"}"#), b64(&payload));
        let err = config().verify(&token, NOW).unwrap_err();
        assert!(matches!(err, AuthError::UnsignedToken));
    }

    #[test]
    fn hs512_is_refused_even_with_a_valid_signature() {
        // From the shared vector jwt_reject_hs512: HS512 over the right secret.
        let token = "eyJhbGciOiJIUzUxMiJ9.eyJ1c2VySWQiOiJ1Iiwicm9vbSI6InIiLCJpYXQiOjE3MDAwMDAwMDAsImV4cCI6MTcwMDAwMDA2MCwiaXNzIjoidGVsZXBvcnRhbCIsImF1ZCI6InRlbGVwb3J0YWwifQ.zCII_-E4IAJfSlYr92b22vGO_-sO99i37bkKrtOG3cL7Eu-NQvJ5A_rUlvoaDxJZUznX0A-bXy_GYy8q25n40A";
        let err = config().verify(token, NOW).unwrap_err();
        assert!(
            matches!(err, AuthError::AlgorithmNotAllowed { alg, expected: "HS256" } if alg == "HS512")
        );
    }

    #[test]
    fn crit_header_is_refused() {
        let payload = serde_json::to_string(&example_claims()).unwrap();
        let token = signed(r#"{"alg":"HS256","crit":["b64"],"b64":false}"#, &payload);
        let err = config().verify(&token, NOW).unwrap_err();
        assert!(matches!(err, AuthError::Malformed { .. }));
    }

    #[test]
    fn header_with_typ_is_accepted() {
        let payload = serde_json::to_string(&example_claims()).unwrap();
        let token = signed(r#"{"alg":"HS256","typ":"JWT"}"#, &payload);
        assert_eq!(config().verify(&token, NOW).unwrap(), example_claims());
    }

    #[test]
    fn missing_exp_is_refused() {
        let token = signed(
            r#"{"alg":"HS256"}"#,
            r#"{"userId":"u","room":"r","iss":"teleportal","aud":"teleportal"}"#,
        );
        let err = config().verify(&token, NOW).unwrap_err();
        assert!(matches!(err, AuthError::MissingClaim { claim: "exp" }));
    }

    #[test]
    fn missing_audience_is_refused() {
        let token = signed(
            r#"{"alg":"HS256"}"#,
            r#"{"userId":"u","room":"r","exp":1700000060,"iss":"teleportal"}"#,
        );
        let err = config().verify(&token, NOW).unwrap_err();
        assert!(matches!(err, AuthError::MissingClaim { claim: "aud" }));
    }

    #[test]
    fn future_nbf_is_refused() {
        let token = signed(
            r#"{"alg":"HS256"}"#,
            r#"{"userId":"u","room":"r","exp":1700000060,"nbf":1700000001,"iss":"teleportal","aud":"teleportal"}"#,
        );
        let err = config().verify(&token, NOW).unwrap_err();
        assert!(matches!(
            err,
            AuthError::NotYetValid {
                nbf: 1_700_000_001,
                now: NOW
            }
        ));
        assert!(config().verify(&token, NOW + 1).is_ok());
    }

    #[test]
    fn claims_of_the_wrong_type_are_malformed() {
        let token = signed(
            r#"{"alg":"HS256"}"#,
            r#"{"userId":42,"room":"r","exp":1700000060,"iss":"teleportal","aud":"teleportal"}"#,
        );
        let err = config().verify(&token, NOW).unwrap_err();
        assert!(matches!(err, AuthError::Malformed { .. }));
    }

    #[test]
    fn absent_room_and_document_access_read_as_defaults() {
        let token = signed(
            r#"{"alg":"HS256"}"#,
            r#"{"userId":"u","exp":1700000060,"iss":"teleportal","aud":"teleportal"}"#,
        );
        let claims = config().verify(&token, NOW).unwrap();
        assert_eq!(claims.room, "");
        assert_eq!(claims.document_access, None);
        assert_eq!(claims.iat, None);
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        for token in [
            "",
            ".",
            "..",
            "a.b.c.d",
            "!!!.e30.",
            "e30.e30.",
            "bnVsbA.e30.",
            "eyJhbGciOiJIUzI1NiJ9.!!!.abc",
            "eyJhbGciOiJIUzI1NiJ9.e30.!!!",
        ] {
            let err = config().verify(token, NOW).unwrap_err();
            assert!(
                matches!(err, AuthError::Malformed { .. } | AuthError::BadSignature),
                "{token:?} gave {err:?}"
            );
        }
    }

    const RSA_PRIVATE: &str = include_str!("../tests/keys/rsa-private.pem");
    const RSA_PUBLIC: &str = include_str!("../tests/keys/rsa-public.pem");
    const RSA_OTHER_PUBLIC: &str = include_str!("../tests/keys/rsa-other-public.pem");
    const EC_PRIVATE: &str = include_str!("../tests/keys/ec-private.pem");
    const EC_PUBLIC: &str = include_str!("../tests/keys/ec-public.pem");
    const ED_PRIVATE: &str = include_str!("../tests/keys/ed25519-private.pem");
    const ED_PUBLIC: &str = include_str!("../tests/keys/ed25519-public.pem");

    fn asymmetric() -> [(TokenConfig, &'static str); 3] {
        [
            (
                TokenConfig::rs256(RSA_PUBLIC)
                    .unwrap()
                    .with_signing_key(RSA_PRIVATE)
                    .unwrap(),
                "RS256",
            ),
            (
                TokenConfig::es256(EC_PUBLIC)
                    .unwrap()
                    .with_signing_key(EC_PRIVATE)
                    .unwrap(),
                "ES256",
            ),
            (
                TokenConfig::eddsa(ED_PUBLIC)
                    .unwrap()
                    .with_signing_key(ED_PRIVATE)
                    .unwrap(),
                "EdDSA",
            ),
        ]
    }

    /// Flips one character of segment `index` to another base64url character.
    fn tamper(token: &str, index: usize) -> String {
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let segment = &mut parts[index];
        // The first character carries six whole bits, so changing it changes the bytes.
        let first = if segment.starts_with('A') { "B" } else { "A" };
        segment.replace_range(0..1, first);
        parts.join(".")
    }

    #[test]
    fn asymmetric_tokens_mint_and_verify_with_their_header() {
        for (config, alg) in asymmetric() {
            let token = config.mint(&example_claims()).unwrap();
            let header = URL_SAFE_NO_PAD
                .decode(token.split('.').next().unwrap())
                .unwrap();
            assert_eq!(header, format!(r#"{{"alg":"{alg}"}}"#).as_bytes(), "{alg}");
            assert_eq!(
                config.verify(&token, NOW).unwrap(),
                example_claims(),
                "{alg}"
            );
        }
    }

    #[test]
    fn tampered_signature_is_a_bad_signature_for_every_algorithm() {
        let mut configs = asymmetric().to_vec();
        configs.push((config(), "HS256"));
        for (config, alg) in configs {
            let token = tamper(&config.mint(&example_claims()).unwrap(), 2);
            let err = config.verify(&token, NOW).unwrap_err();
            assert!(matches!(err, AuthError::BadSignature), "{alg}: {err:?}");
        }
    }

    #[test]
    fn tampered_payload_is_a_bad_signature_for_every_algorithm() {
        for (config, alg) in asymmetric() {
            let token = config.mint(&example_claims()).unwrap();
            let mut claims = example_claims();
            claims.document_access = None;
            let forged_payload = config.mint(&claims).unwrap();
            let mut parts: Vec<&str> = token.split('.').collect();
            parts[1] = forged_payload.split('.').nth(1).unwrap();
            let err = config.verify(&parts.join("."), NOW).unwrap_err();
            assert!(matches!(err, AuthError::BadSignature), "{alg}: {err:?}");
        }
    }

    #[test]
    fn token_from_another_key_pair_is_a_bad_signature() {
        let (signer, _) = asymmetric().into_iter().next().unwrap();
        let token = signer.mint(&example_claims()).unwrap();
        let other = TokenConfig::rs256(RSA_OTHER_PUBLIC).unwrap();
        assert!(matches!(
            other.verify(&token, NOW).unwrap_err(),
            AuthError::BadSignature
        ));
    }

    #[test]
    fn hs256_token_keyed_with_the_public_key_is_refused_by_an_rs256_verifier() {
        // The algorithm confusion attack: sign HS256 using the verifier's public key as the
        // HMAC secret and hope the verifier follows the header.
        let forged = TokenConfig::new(RSA_PUBLIC)
            .mint(&example_claims())
            .unwrap();
        let err = TokenConfig::rs256(RSA_PUBLIC)
            .unwrap()
            .verify(&forged, NOW)
            .unwrap_err();
        assert!(
            matches!(err, AuthError::AlgorithmNotAllowed { ref alg, expected: "RS256" } if alg == "HS256"),
            "{err:?}"
        );
    }

    #[test]
    fn es256_token_is_refused_by_an_eddsa_verifier() {
        let (es, _) = asymmetric().into_iter().nth(1).unwrap();
        let token = es.mint(&example_claims()).unwrap();
        let err = TokenConfig::eddsa(ED_PUBLIC)
            .unwrap()
            .verify(&token, NOW)
            .unwrap_err();
        assert!(matches!(
            err,
            AuthError::AlgorithmNotAllowed {
                expected: "EdDSA",
                ..
            }
        ));
    }

    #[test]
    fn alg_none_in_any_casing_is_unsigned() {
        let payload = serde_json::to_string(&example_claims()).unwrap();
        for alg in ["none", "None", "NONE"] {
            let token = format!(
                "{}.{}.",
                b64(&format!(r#"{{"alg":"{alg}"}}"#)),
                b64(&payload)
            );
            let err = TokenConfig::rs256(RSA_PUBLIC)
                .unwrap()
                .verify(&token, NOW)
                .unwrap_err();
            assert!(matches!(err, AuthError::UnsignedToken), "{alg}");
        }
    }

    #[test]
    fn asymmetric_expiry_and_audience_are_checked_too() {
        for (config, alg) in asymmetric() {
            let token = config.mint(&example_claims()).unwrap();
            assert!(
                matches!(
                    config.verify(&token, NOW + 3600),
                    Err(AuthError::Expired { .. })
                ),
                "{alg}"
            );
            let other = config.clone().with_audience("elsewhere");
            assert!(
                matches!(
                    other.verify(&token, NOW),
                    Err(AuthError::WrongAudience { .. })
                ),
                "{alg}"
            );
        }
    }

    #[test]
    fn verifier_without_private_key_cannot_mint() {
        let err = TokenConfig::es256(EC_PUBLIC)
            .unwrap()
            .mint(&example_claims())
            .unwrap_err();
        assert!(matches!(
            err,
            AuthError::NoSigningKey { algorithm: "ES256" }
        ));
    }

    #[test]
    fn wrong_kind_of_pem_is_an_invalid_key() {
        assert!(matches!(
            TokenConfig::rs256(EC_PUBLIC),
            Err(AuthError::InvalidKey {
                algorithm: "RS256",
                ..
            })
        ));
        assert!(matches!(
            TokenConfig::eddsa("not a pem"),
            Err(AuthError::InvalidKey {
                algorithm: "EdDSA",
                ..
            })
        ));
        assert!(matches!(
            config().with_signing_key(EC_PRIVATE),
            Err(AuthError::InvalidKey {
                algorithm: "HS256",
                ..
            })
        ));
    }

    #[test]
    fn tampered_signature_is_a_bad_signature() {
        let token = tamper(&config().mint(&example_claims()).unwrap(), 2);
        assert!(matches!(
            config().verify(&token, NOW).unwrap_err(),
            AuthError::BadSignature
        ));
    }

    #[test]
    fn debug_does_not_print_the_secret() {
        assert!(!format!("{:?}", config()).contains(SECRET));
    }
}

//! [`TokenConfig::verify`]: checking a token's header, signature and claims.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Validation;
use jsonwebtoken::errors::ErrorKind;
use serde_json::Value;

use super::{TokenAlgorithm, TokenClaims, TokenConfig};
use crate::AuthError;

impl TokenConfig {
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
